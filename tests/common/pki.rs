//! A test certificate authority: a CA and a server certificate it signed for `127.0.0.1` and `localhost`,
//! written as PEM files into a directory (rcgen, ECDSA P-256).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

pub struct Pki {
    /// The CA certificate a client trusts.
    pub ca: PathBuf,
    /// base64(sha256(the CA's SubjectPublicKeyInfo)): what Chromium's `--ignore-certificate-errors-spki-list`
    /// takes to trust a chain through this CA.
    pub ca_spki_sha256: String,
    /// The server's certificate and its private key (PKCS#8).
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// A fresh CA named `name` and a server certificate it signed (ECDSA P-256), into `dir`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        Pki::with_server_key(dir, name, KeyPair::generate().unwrap())
    }

    /// The same with an RSA 2048 server key (`tests/data/rsa-2048.key`: ring signs with RSA but does not make
    /// RSA keys).
    pub fn rsa(dir: &Path, name: &str) -> Pki {
        let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rsa-2048.key")).unwrap();
        Pki::with_server_key(dir, name, KeyPair::from_pem(&pem).unwrap())
    }

    /// The same with a server certificate that expires `days` from now.
    pub fn expiring(dir: &Path, name: &str, days: u64) -> Pki {
        Pki::issue(dir, name, KeyPair::generate().unwrap(), Some(days))
    }

    fn with_server_key(dir: &Path, name: &str, server_key: KeyPair) -> Pki {
        Pki::issue(dir, name, server_key, None)
    }

    /// `expires_in_days`: the server certificate's `notAfter` that many days from now (else rcgen's, far off).
    fn issue(dir: &Path, name: &str, server_key: KeyPair, expires_in_days: Option<u64>) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        let ca_key = KeyPair::generate().unwrap();
        let ca_spki_sha256 = {
            use base64::Engine;
            use sha2::Digest;
            base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&ca_key)))
        };
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        server_params.distinguished_name.push(DnType::CommonName, "localhost");
        if let Some(days) = expires_in_days {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
            server_params.not_after =
                rcgen::date_time_ymd(1970, 1, 1) + (now + std::time::Duration::from_secs(days * 86_400));
        }
        let server = server_params.signed_by(&server_key, &ca).unwrap();
        let write = |file: &str, pem: String| {
            let path = dir.join(format!("{name}-{file}"));
            std::fs::write(&path, pem).unwrap();
            path
        };
        Pki {
            ca_spki_sha256,
            ca: write("ca.pem", ca.pem()),
            // The chain as servers serve it: the server certificate, then the CA.
            cert: write("cert.pem", server.pem() + &ca.pem()),
            key: write("key.pem", server_key.serialize_pem()),
        }
    }
}

impl Pki {
    /// A rustls client that trusts this CA (TLS 1.3 and 1.2, or only `versions`), offering `alpn`.
    pub fn client(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> std::sync::Arc<rustls::ClientConfig> {
        client_trusting(&[self], versions, alpn)
    }

    /// The certificate and key in one PEM file (`TLS_CERT` and `TLS_KEY` may name the same file, so one rename
    /// replaces both).
    pub fn combined(&self, path: &Path) {
        let pem = [std::fs::read(&self.cert).unwrap(), std::fs::read(&self.key).unwrap()].concat();
        std::fs::write(path, pem).unwrap();
    }

    /// A rustls server with this server certificate (for test servers other than plutos).
    pub fn server(&self) -> std::sync::Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        let chain = rustls::pki_types::CertificateDer::pem_file_iter(&self.cert).unwrap().map(Result::unwrap).collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&self.key).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        std::sync::Arc::new(config)
    }

    /// The server certificate, DER.
    pub fn cert_der(&self) -> Vec<u8> {
        let pem = std::fs::read(&self.cert).unwrap();
        let cert: rustls::pki_types::CertificateDer = rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
        cert.to_vec()
    }
}

/// A rustls client that trusts every CA of `pkis`.
pub fn client_trusting(
    pkis: &[&Pki],
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for pki in pkis {
        let ca = std::fs::read(&pki.ca).unwrap();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    std::sync::Arc::new(config)
}
