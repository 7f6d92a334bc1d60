//! A real S3 API server for the tests: s3s-fs 0.14.1 (built once by `scripts/s3s-fs.sh`, or `PLUTOS_S3S_FS`) on
//! a free loopback port with a temp root and access keys, so every request's SigV4 signature is checked; a
//! client (object_store with explicit keys) to read what plutos shipped; and a fault-injecting TCP proxy that
//! can break or swallow chosen requests on their way to the real server.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, GetOptions, ObjectStore, ObjectStoreExt, PutPayload};

use super::*;

pub const ACCESS_KEY: &str = "plutos-test-key";
pub const SECRET_KEY: &str = "plutos-test-secret";
pub const BUCKET: &str = "events";

fn s3s_fs() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| super::installed("PLUTOS_S3S_FS", "s3s-fs.sh"))
}

/// s3s-fs serving the bucket `BUCKET` from a temp root.
pub struct S3Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
}

impl S3Server {
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let (child, addr) = Self::spawn(&root, 0);
        S3Server { child: Some(child), addr, root }
    }

    fn spawn(root: &tempfile::TempDir, port: u16) -> (Child, SocketAddr) {
        let mut child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(at) = line.find("server is running at http://") {
                    let addr = line[at + "server is running at http://".len()..].trim().to_string();
                    let _ = tx.try_send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let addr = rx.recv_timeout(DEADLINE).expect("s3s-fs to report its address");
        (child, addr)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the server (an outage); `start_again` brings it back on the same port with the same data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "stopped first");
        let (child, addr) = Self::spawn(&self.root, self.addr.port());
        assert_eq!(addr, self.addr);
        self.child = Some(child);
    }

    /// The environment of a collector that ships here (`endpoint` may be a proxy in front of it).
    pub fn collector_env(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("DRIVER", "s3".into()),
            ("S3_BUCKET", BUCKET.into()),
            ("S3_ENDPOINT", endpoint.into()),
            ("S3_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ]
    }

    pub fn client(&self) -> S3Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        S3Client { store, runtime }
    }

    /// Multipart uploads s3s-fs still holds (started, neither completed nor aborted).
    pub fn open_multipart_uploads(&self) -> usize {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.starts_with(".upload-") && name.ends_with(".json")
            })
            .count()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An object as S3 serves it.
pub struct Object {
    pub key: String,
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub metadata: HashMap<String, String>,
}

pub struct S3Client {
    store: AmazonS3,
    runtime: tokio::runtime::Runtime,
}

impl S3Client {
    pub fn keys(&self) -> Vec<String> {
        use futures_util::StreamExt;
        self.runtime.block_on(async {
            let mut keys: Vec<String> =
                self.store.list(None).map(|meta| meta.unwrap().location.to_string()).collect().await;
            keys.sort();
            keys
        })
    }

    pub fn get(&self, key: &str) -> Object {
        self.runtime.block_on(async {
            let result = self.store.get_opts(&ObjectPath::from(key), GetOptions::default()).await.unwrap();
            let attribute = |a: &Attribute| result.attributes.get(a).map(|v| v.to_string());
            let content_type = attribute(&Attribute::ContentType);
            let content_encoding = attribute(&Attribute::ContentEncoding);
            let metadata = result
                .attributes
                .iter()
                .filter_map(|(a, v)| match a {
                    Attribute::Metadata(name) => Some((name.to_string(), v.to_string())),
                    _ => None,
                })
                .collect();
            let bytes = result.bytes().await.unwrap().to_vec();
            Object { key: key.to_string(), bytes, content_type, content_encoding, metadata }
        })
    }

    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        self.runtime.block_on(async {
            self.store.put(&ObjectPath::from(key), PutPayload::from(bytes)).await.unwrap();
        });
    }
}

/// Decodes every object: each must carry `Content-Type: application/x-ndjson`, the Content-Encoding of its key's
/// extension, and metadata that matches its content (events, sha256, sequence range, host/boot/worker of its
/// key). Returns the objects' records in key order.
pub fn shipped_objects(client: &S3Client) -> Vec<(Object, Vec<serde_json::Value>)> {
    client
        .keys()
        .iter()
        .map(|key| {
            let object = client.get(key);
            assert_eq!(object.content_type.as_deref(), Some("application/x-ndjson"), "{key}");
            let codec = Codec::from_file_name(key).unwrap_or_else(|| panic!("{key}: not a chunk key"));
            assert_eq!(object.content_encoding.as_deref(), codec.content_encoding(), "{key}");
            let mut text = Vec::new();
            plutos::spool::encoder::decode(codec, &object.bytes, &mut text).unwrap_or_else(|e| panic!("{key}: {e}"));
            let records: Vec<serde_json::Value> =
                String::from_utf8(text).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let meta = |name: &str| object.metadata.get(name).unwrap_or_else(|| panic!("{key}: no {name}")).clone();
            assert_eq!(meta("events"), records.len().to_string(), "{key}");
            let sha: String = Sha256::digest(&object.bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(meta("sha256"), sha, "{key}");
            let (first, last): (u64, u64) = (meta("first-seq").parse().unwrap(), meta("last-seq").parse().unwrap());
            assert_eq!(last - first + 1, records.len() as u64, "{key}");
            let name = key.rsplit('/').next().unwrap();
            assert!(name.starts_with(&format!("{}-{}-w{}-", meta("host"), meta("boot"), meta("worker"))), "{key}");
            (object, records)
        })
        .collect()
}

/// The `id` of every shipped record, counted (duplicates show as counts above 1).
pub fn shipped_id_counts(client: &S3Client) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (_, records) in shipped_objects(client) {
        for record in records {
            *counts.entry(record["raw_data"]["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// A TCP proxy in front of s3s-fs that forwards bytes both ways and, when told to, breaks the connection that
/// carries the second part of a multipart upload, or swallows the answers to whole-object PUTs (the server
/// stores the object; the client never hears so).
pub struct FaultProxy {
    pub addr: SocketAddr,
    pub fail_second_parts: Arc<AtomicBool>,
    /// Second parts are taken but never forwarded: the upload hangs.
    pub stall_second_parts: Arc<AtomicBool>,
    pub swallow_put_answers: Arc<AtomicBool>,
    /// Connections broken at a second part so far.
    pub broken: Arc<AtomicU64>,
    /// Whole-object PUTs whose answer was swallowed so far.
    pub swallowed: Arc<AtomicU64>,
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = FaultProxy {
            addr: listener.local_addr().unwrap(),
            fail_second_parts: Arc::default(),
            stall_second_parts: Arc::default(),
            swallow_put_answers: Arc::default(),
            broken: Arc::default(),
            swallowed: Arc::default(),
        };
        let stall = proxy.stall_second_parts.clone();
        let (fail, swallow, broken, swallowed) = (
            proxy.fail_second_parts.clone(),
            proxy.swallow_put_answers.clone(),
            proxy.broken.clone(),
            proxy.swallowed.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else { continue }; // dropped: connection refused-ish
                let hold = Arc::new(AtomicBool::new(false));
                let (fail, swallow, broken, swallowed) =
                    (fail.clone(), swallow.clone(), broken.clone(), swallowed.clone());
                let stall = stall.clone();
                let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let held = hold.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut stalled = false;
                    loop {
                        let n = match from_client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let data = &buf[..n];
                        let request_line = data.split(|&b| b == b'\n').next().unwrap_or(b"");
                        stalled |= stall.load(Ordering::SeqCst) && contains(request_line, b"partNumber=2&");
                        if stalled {
                            continue; // taken, never forwarded
                        }
                        if fail.load(Ordering::SeqCst) && contains(request_line, b"partNumber=2&") {
                            broken.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        if swallow.load(Ordering::SeqCst)
                            && request_line.starts_with(format!("PUT /{BUCKET}/").as_bytes())
                            && !contains(request_line, b"?")
                        {
                            swallowed.fetch_add(1, Ordering::SeqCst);
                            held.store(true, Ordering::SeqCst);
                        }
                        if to_server.write_all(data).is_err() {
                            break;
                        }
                    }
                    let _ = from_client.shutdown(Shutdown::Both);
                    let _ = to_server.shutdown(Shutdown::Both);
                });
                let (mut from_server, mut to_client) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match from_server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if hold.load(Ordering::SeqCst) {
                            continue; // swallowed: the client waits for an answer that never comes
                        }
                        if to_client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    if !hold.load(Ordering::SeqCst) {
                        let _ = to_client.shutdown(Shutdown::Both);
                    }
                });
            }
        });
        proxy
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
