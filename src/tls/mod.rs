//! HTTPS: the certificate and key a worker terminates TLS with (rustls, ring provider), reloaded without a
//! restart.
//!
//! Every worker holds a `Follower` of one published `rustls::ServerConfig` and gives each new connection on the
//! TLS listener a `ServerConnection` of it; the connection is driven sans-IO by the worker's own loop
//! (`worker::connection`). The configuration: TLS 1.3 and 1.2, ALPN `http/1.1`, no 0-RTT (a replayed POST would
//! store its events twice), and one ticketer and session cache for every worker and every reload, so a client
//! that reconnects to another core, or after a certificate reload, resumes its session.
//!
//! A reload (SIGHUP, or a file replaced) loads the pair again; a pair that fails to load or does not match keeps
//! the old one and logs one line. The certificate's `notAfter` is in `/metrics`, and a line warns once a day
//! from 14 days before it.

mod expiry;
pub mod records;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};

use crate::reload::{FileIdentity, Published, Reloadable};

/// From when on an expiring certificate is warned of, and how often.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);
const WARN_EVERY: Duration = Duration::from_secs(24 * 3600);
/// TLS 1.2 sessions kept for resumption by session id (TLS 1.3 and ticket-capable clients use tickets).
const SESSION_CACHE: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error("TLS_CERT {cert} / TLS_KEY {key}: {reason}")]
pub struct TlsError {
    pub cert: String,
    pub key: String,
    pub reason: String,
}

/// The pair in service.
pub struct Served {
    pub config: Arc<ServerConfig>,
    /// With `QUIC_PORT`: the same pair for QUIC (TLS 1.3 only, ALPN `h3`, no 0-RTT), with the same tickets.
    pub quic: Option<Arc<quinn_proto::crypto::rustls::QuicServerConfig>>,
    /// The certificate's `notAfter`, Unix seconds.
    pub not_after: i64,
    /// The files as they were when read (a reload that finds them unchanged keeps this).
    files: [FileIdentity; 2],
}

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    pub published: Published<Served>,
    /// Shared by every configuration built, so sessions survive a reload.
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
    /// The protocols ALPN offers, preferred first: `h2` (with `HTTP2=on`), then `http/1.1`.
    alpn: Vec<Vec<u8>>,
    /// A configuration for QUIC is built too (`QUIC_PORT`).
    quic: bool,
    pub not_after: AtomicI64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    last_warned: Mutex<Option<Instant>>,
}

impl Tls {
    /// Loads the pair; an error names both files and the reason (at start the process stops on it). `http2`:
    /// ALPN offers `h2` before `http/1.1`; `quic`: a configuration for QUIC's handshakes is built as well.
    pub fn load(cert: &Path, key: &Path, http2: bool, quic: bool) -> Result<Tls, TlsError> {
        let error =
            |reason: String| TlsError { cert: cert.display().to_string(), key: key.display().to_string(), reason };
        let ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| error(e.to_string()))?;
        let sessions: Arc<dyn StoresServerSessions> = ServerSessionMemoryCache::new(SESSION_CACHE);
        let alpn = match http2 {
            true => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            false => vec![b"http/1.1".to_vec()],
        };
        let served = load_pair(cert, key, &ticketer, &sessions, &alpn, quic).map_err(error)?;
        let tls = Tls {
            alpn,
            quic,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            not_after: AtomicI64::new(served.not_after),
            published: Published::new(served),
            ticketer,
            sessions,
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            last_warned: Mutex::new(None),
        };
        tls.warn_if_expiring();
        Ok(tls)
    }

    fn warn_if_expiring(&self) {
        let not_after = self.not_after.load(Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        if not_after - now > EXPIRY_WARNING.as_secs() as i64 {
            return;
        }
        let mut last = self.last_warned.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let days = (not_after - now) as f64 / 86_400.0;
        match days > 0.0 {
            true => tracing::warn!(cert = %self.cert.display(), "the TLS certificate expires in {days:.1} days"),
            false => tracing::error!(cert = %self.cert.display(), "the TLS certificate has expired"),
        }
    }
}

impl Reloadable for Tls {
    fn what(&self) -> &'static str {
        "the TLS certificate"
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![self.cert.clone(), self.key.clone()]
    }

    fn reload(&self, forced: bool) {
        let unchanged = [&self.cert, &self.key]
            .iter()
            .zip(self.published.current().files)
            .all(|(path, was)| FileIdentity::of(path).is_ok_and(|now| now == was));
        if unchanged && !forced {
            return;
        }
        match load_pair(&self.cert, &self.key, &self.ticketer, &self.sessions, &self.alpn, self.quic) {
            Ok(served) => {
                tracing::info!(cert = %self.cert.display(), not_after = served.not_after, "TLS certificate reloaded");
                self.not_after.store(served.not_after, Ordering::Relaxed);
                self.published.publish(served);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                *self.last_warned.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            Err(reason) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    cert = %self.cert.display(),
                    key = %self.key.display(),
                    "TLS certificate not reloaded ({reason}); the one loaded before stays in service"
                );
            }
        }
    }

    fn tick(&self) {
        self.warn_if_expiring();
    }
}

/// Reads the chain and key and builds the configuration every connection of this pair gets.
fn load_pair(
    cert: &Path,
    key: &Path,
    ticketer: &Arc<dyn ProducesTickets>,
    sessions: &Arc<dyn StoresServerSessions>,
    alpn: &[Vec<u8>],
    quic: bool,
) -> Result<Served, String> {
    let files = [FileIdentity::of(cert), FileIdentity::of(key)];
    let [Ok(cert_file), Ok(key_file)] = files else {
        return Err("cannot read the files".into());
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("certificate: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err("no certificate in TLS_CERT".into());
    };
    let not_after = expiry::not_after(leaf).ok_or("the certificate's validity cannot be read")?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("private key: {e}"))?;
    let build = |versions: &[&'static rustls::SupportedProtocolVersion], alpn: &[Vec<u8>]| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            // Also checks that the key is the certificate's.
            .with_single_cert(chain.clone(), private_key.clone_key())
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = alpn.to_vec();
        config.max_early_data_size = 0;
        config.ticketer = ticketer.clone();
        config.session_storage = sessions.clone();
        Ok::<_, String>(config)
    };
    let config = build(&[&rustls::version::TLS13, &rustls::version::TLS12], alpn)?;
    let quic = match quic {
        true => {
            let config = build(&[&rustls::version::TLS13], &[b"h3".to_vec()])?;
            let quic = quinn_proto::crypto::rustls::QuicServerConfig::try_from(config).map_err(|e| e.to_string())?;
            Some(Arc::new(quic))
        }
        false => None,
    };
    Ok(Served { config: Arc::new(config), quic, not_after, files: [cert_file, key_file] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, date_time_ymd};

    fn pair(dir: &Path, name: &str, year: i32) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_after = date_time_ymd(year, 5, 6);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    #[test]
    fn a_pair_loads_with_its_expiry_and_a_mismatched_or_broken_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a", 2031);
        let tls = Tls::load(&cert, &key, false, false).unwrap();
        assert_eq!(tls.not_after.load(Ordering::Relaxed), 1_935_792_000, "2031-05-06 (UTCTime)");
        assert_eq!(tls.published.current().config.alpn_protocols, [b"http/1.1".to_vec()]);
        let (late_cert, late_key) = pair(dir.path(), "late", 2051);
        let late = Tls::load(&late_cert, &late_key, true, true).unwrap();
        assert_eq!(late.not_after.load(Ordering::Relaxed), 2_566_944_000, "2051-05-06 (GeneralizedTime)");
        assert_eq!(late.published.current().config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()], "HTTP2=on");

        let mismatched = Tls::load(&cert, &late_key, false, false).err().unwrap().to_string();
        assert!(mismatched.contains("TLS_CERT") && mismatched.contains("a.pem"), "{mismatched}");
        std::fs::write(dir.path().join("broken.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
        assert!(Tls::load(&dir.path().join("broken.pem"), &key, false, false).is_err());
        assert!(Tls::load(&dir.path().join("absent.pem"), &key, false, false).is_err());
    }

    #[test]
    fn a_reload_switches_to_a_good_pair_and_keeps_the_old_one_over_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a", 2031);
        let tls = Tls::load(&cert, &key, false, false).unwrap();
        let mut follower = tls.published.follow();
        tls.reload(false);
        assert!(!follower.refresh(&tls.published), "unchanged files are not reloaded");

        let (new_cert, new_key) = pair(dir.path(), "b", 2032);
        std::fs::rename(&new_cert, &cert).unwrap();
        std::fs::rename(&new_key, &key).unwrap();
        tls.reload(false);
        assert!(follower.refresh(&tls.published));
        assert_eq!(follower.value.not_after, 1_967_414_400, "2032-05-06");
        let ticketer = follower.value.config.ticketer.clone();

        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        tls.reload(false);
        assert!(!follower.refresh(&tls.published), "a broken key keeps the pair in service");
        assert_eq!(tls.reload_failures.load(Ordering::Relaxed), 1);
        assert!(Arc::ptr_eq(&ticketer, &tls.ticketer), "one ticketer across reloads");
    }
}
