//! A real SQS API server for the tests: moto's server (`scripts/moto.sh` installs it once, or `PLUTOS_MOTO_PYTHON`
//! names the Python that has it), started on a free loopback port and stopped when dropped; queues made and read
//! with boto3 (`tests/common/sqs_client.py`), not with plutos's own client; and a proxy that fails chosen entries
//! of `SendMessageBatch` requests the way SQS does (in its answer's `Failed`).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

/// The credentials the collector and boto3 sign with (moto checks no signature unless asked to).
pub const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "plutos-test"),
    ("AWS_SECRET_ACCESS_KEY", "plutos-test"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| super::installed("PLUTOS_MOTO_PYTHON", "moto.sh"))
}

pub struct Moto {
    child: Child,
    /// Closing it ends the server.
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
}

/// One message as boto3 received it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Message {
    pub body: String,
    pub attributes: HashMap<String, String>,
    pub group: Option<String>,
    pub dedup: Option<String>,
}

impl Message {
    pub fn record(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_on(0)
    }

    /// A server that checks every request's SigV4 signature against the IAM users it knows: the first
    /// `unchecked` requests (making a user and a queue) are let through.
    pub fn start_checking_signatures(unchecked: u32) -> Moto {
        Moto::launch(0, Some(unchecked))
    }

    /// On `port` (0: a free one); the same port again after `stop` is an outage that ends (moto keeps its
    /// queues in memory, so they are made again).
    pub fn start_on(port: u16) -> Moto {
        Moto::launch(port, None)
    }

    fn launch(port: u16, unchecked: Option<u32>) -> Moto {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/moto_server.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .envs(AWS_ENV)
            .envs(unchecked.map(|n| ("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto's server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("moto's port, not {line:?}"));
        let stdin = child.stdin.take();
        Moto { child, stdin, addr: SocketAddr::from(([127, 0, 0, 1], port)) }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn client(&self, args: &[&str]) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/sqs_client.py");
        let output = Command::new(python())
            .arg(script)
            .arg(args[0])
            .arg(self.endpoint())
            .args(&args[1..])
            .envs(AWS_ENV)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(output.status.success(), "sqs_client.py {args:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// Creates a queue (FIFO when its name ends in `.fifo`); its URL.
    pub fn create_queue(&self, name: &str) -> String {
        let fifo = if name.ends_with(".fifo") { "fifo" } else { "standard" };
        self.client(&["create", name, fifo]).trim().to_string()
    }

    /// An IAM user allowed every SQS action: its access key id and secret.
    pub fn create_user(&self, name: &str) -> (String, String) {
        let out = self.client(&["user", name]);
        let (id, secret) = out.trim().split_once(' ').expect("an access key id and a secret");
        (id.to_string(), secret.to_string())
    }

    /// Every message in the queue, received without deleting it (hidden for 10 minutes: read a queue once); a
    /// FIFO queue's are deleted as received, since a group serves its next messages only then.
    pub fn receive_all(&self, queue_url: &str) -> Vec<Message> {
        self.client(&["receive", queue_url]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Every message of the queue read by boto3 as an S3 event notification: `Records[0].s3`'s bucket, key and
    /// size, and `Records[0].plutos`.
    pub fn notifications(&self, queue_url: &str) -> Vec<Value> {
        self.client(&["notifications", queue_url]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// The environment of a collector sending to `queue_url` through `endpoint`.
    pub fn collector_env(queue_url: &str) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = AWS_ENV.iter().map(|(k, v)| (*k, v.to_string())).collect();
        env.extend([("DRIVER", "sqs".to_string()), ("SQS_QUEUE_URL", queue_url.to_string())]);
        env
    }

    pub fn stop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sets the AWS variables of this test process (the in-process `TestServer` reads its credentials from it).
pub fn set_aws_env() {
    for (name, value) in AWS_ENV {
        // SAFETY: set before any collector of this test starts; every test of the binary sets the same values.
        unsafe { std::env::set_var(name, value) };
    }
}

/// An HTTP proxy in front of moto that fails, once each, the `SendMessageBatch` entries whose body contains
/// `marker`: they are taken out of the request moto sees and named in the answer's `Failed` (`SenderFault`
/// false, as SQS fails an entry it could not store). It counts how often each message body was sent.
pub struct EntryFailingProxy {
    pub addr: SocketAddr,
    /// Times each body reached the proxy.
    pub sent: Arc<Mutex<HashMap<String, usize>>>,
    /// Entries per `SendMessageBatch` request.
    pub batch_sizes: Arc<Mutex<Vec<usize>>>,
}

impl EntryFailingProxy {
    pub fn start(upstream: SocketAddr, marker: &'static str) -> EntryFailingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = EntryFailingProxy {
            addr: listener.local_addr().unwrap(),
            sent: Arc::default(),
            batch_sizes: Arc::default(),
        };
        let (sent, sizes) = (proxy.sent.clone(), proxy.batch_sizes.clone());
        let failed_once = Arc::new(Mutex::new(HashSet::new()));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (sent, sizes, failed_once) = (sent.clone(), sizes.clone(), failed_once.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(client.try_clone().unwrap());
                    let mut client = client;
                    while let Some((head, body)) = read_request(&mut reader) {
                        let batch = head.to_ascii_lowercase().contains("amazonsqs.sendmessagebatch");
                        let mut failed = Vec::new();
                        let body = if batch {
                            let mut request: Value = serde_json::from_slice(&body).unwrap();
                            let entries = request["Entries"].as_array().unwrap().clone();
                            sizes.lock().unwrap().push(entries.len());
                            let mut kept = Vec::new();
                            for entry in entries {
                                let text = entry["MessageBody"].as_str().unwrap().to_string();
                                *sent.lock().unwrap().entry(text.clone()).or_insert(0) += 1;
                                if text.contains(marker) && failed_once.lock().unwrap().insert(text) {
                                    failed.push(entry["Id"].clone());
                                } else {
                                    kept.push(entry);
                                }
                            }
                            request["Entries"] = Value::Array(kept);
                            serde_json::to_vec(&request).unwrap()
                        } else {
                            body
                        };
                        let (status, mut answer) = if batch && body_entries(&body) == 0 {
                            ("200 OK".to_string(), serde_json::json!({ "Successful": [], "Failed": [] }))
                        } else {
                            forward(upstream, &head, &body)
                        };
                        if !failed.is_empty() {
                            let list = answer["Failed"].as_array().cloned().unwrap_or_default();
                            let injected = failed.into_iter().map(|id| {
                                serde_json::json!({ "Id": id, "SenderFault": false, "Code": "InternalError", "Message": "injected" })
                            });
                            answer["Failed"] = Value::Array(list.into_iter().chain(injected).collect());
                        }
                        let text = answer.to_string();
                        let response = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        if client.write_all(response.as_bytes()).is_err() {
                            break;
                        }
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

fn body_entries(body: &[u8]) -> usize {
    serde_json::from_slice::<Value>(body).unwrap()["Entries"].as_array().map_or(0, Vec::len)
}

/// One HTTP/1.1 request: its head (without the blank line) and body (by Content-Length); `None` at the end.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Sends the request (with its body's new length) to moto on a connection of its own; the answer's status and
/// JSON.
fn forward(upstream: SocketAddr, head: &str, body: &[u8]) -> (String, Value) {
    let mut request: String = head
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("content-length:") && !l.starts_with("connection:")
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    request.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let mut server = TcpStream::connect(upstream).unwrap();
    server.write_all(request.as_bytes()).unwrap();
    server.write_all(body).unwrap();
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status_line = String::from_utf8_lossy(&answer[..split]).lines().next().unwrap().to_string();
    let status = status_line.split_once(' ').unwrap().1.to_string();
    (status, serde_json::from_slice(&answer[split + 4..]).unwrap_or(Value::Null))
}
