//! A real Kafka-protocol broker for the tests: tansu (scripts/tansu.sh installs it once), started on a free
//! loopback port with in-memory storage and stopped when dropped, and a reader of a topic's partitions (no
//! consumer group: each partition assigned directly, read from the start to its end).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::DEADLINE;
use super::pki::Pki;

fn tansu() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| super::installed("PLUTOS_TANSU", "tansu.sh"))
}

pub struct Broker {
    child: Child,
    /// The broker's own plaintext listener.
    pub addr: SocketAddr,
    /// With `start_tls`: the TLS front that the broker advertises, and the front's process.
    pub tls_addr: Option<SocketAddr>,
    front: Option<Child>,
    /// The CA the front's certificate chains to.
    ca: Option<PathBuf>,
}

/// One message as read back.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Read {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_on(Broker::free_port())
    }

    /// A loopback port nothing listens on now (tansu advertises the address it is given, so the port is chosen
    /// before it starts).
    pub fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    pub fn start_on(port: u16) -> Broker {
        Broker::launch(port, port, false)
    }

    /// A broker reached through a TLS front holding `pki`'s server certificate (the broker advertises the
    /// front). With `authentication` the broker requires SASL and knows no user, so every credential is wrong.
    pub fn start_tls(pki: &Pki, authentication: bool) -> Broker {
        let port = Broker::free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/tls_front.py");
        let mut front = Command::new("python3")
            .arg(script)
            .args([&pki.cert, &pki.key])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the TLS front");
        let mut line = String::new();
        BufReader::new(front.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let front_port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("the TLS front's port, not {line:?}"));
        let mut broker = Broker::launch(port, front_port, authentication);
        broker.tls_addr = Some(SocketAddr::from(([127, 0, 0, 1], front_port)));
        broker.front = Some(front);
        broker.ca = Some(pki.ca.clone());
        broker
    }

    fn launch(port: u16, advertised: u16, authentication: bool) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{advertised}");
        let child = Command::new(tansu())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", "memory://tansu/"])
            .args(authentication.then_some("--authentication"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(start.elapsed() < DEADLINE, "tansu did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, addr, tls_addr: None, front: None, ca: None }
    }

    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let status = Command::new(tansu())
            .args(["topic", "create", topic, "--broker", &self.url(), "--partitions", &partitions.to_string()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "tansu topic create {topic}");
    }

    /// Every message of `topic`: each partition assigned directly from its start and read until librdkafka
    /// reports its end (tansu's watermarks count batches, not messages, so they cannot tell the end).
    pub fn read_all(&self, topic: &str) -> Vec<Read> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.addr.to_string())
            .set("group.id", "plutos-tests-unused")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true");
        if let Some(ca) = &self.ca {
            // The broker advertises its TLS front: every connection after the first goes there.
            config.set("bootstrap.servers", self.tls_addr.unwrap().to_string());
            config.set("security.protocol", "ssl").set("ssl.ca.location", ca.display().to_string());
        }
        let consumer: BaseConsumer = config.create().unwrap();
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        let partitions: Vec<i32> =
            metadata.topics().iter().find(|t| t.name() == topic).unwrap().partitions().iter().map(|p| p.id()).collect();
        let mut list = TopicPartitionList::new();
        for &partition in &partitions {
            list.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
        }
        consumer.assign(&list).unwrap();
        let mut ended = std::collections::HashSet::new();
        let mut out = Vec::new();
        let start = Instant::now();
        while ended.len() < partitions.len() {
            assert!(
                start.elapsed() < DEADLINE,
                "{topic}: {} of {} partitions read to their end",
                ended.len(),
                partitions.len()
            );
            let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
            let message = match message {
                Ok(message) => message,
                Err(KafkaError::PartitionEOF(partition)) => {
                    ended.insert(partition);
                    continue;
                }
                Err(e) => panic!("reading {topic}: {e}"),
            };
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Read {
                partition: message.partition(),
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.child).chain(self.front.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
