//! A small MaxMind DB writer for the tests: known networks with known records, written as a real `.mmdb`
//! (IPv6 tree, IPv4 under `::/96`, 32-bit records), so the collector reads exactly what a test expects.
//! Format: MaxMind DB File Format Specification 2.0 (a binary trie, 16 zero bytes, the data section, then the
//! metadata after its marker).

use std::net::IpAddr;

use serde_json::Value;

const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

#[derive(Clone, Copy)]
enum Child {
    Empty,
    Node(u32),
    Data(u32),
}

/// A database under construction.
pub struct MmdbWriter {
    nodes: Vec<[Child; 2]>,
    data: Vec<u8>,
    database_type: String,
    build_epoch: u64,
}

impl MmdbWriter {
    pub fn new(database_type: &str, build_epoch: u64) -> MmdbWriter {
        MmdbWriter {
            nodes: vec![[Child::Empty; 2]],
            data: Vec::new(),
            database_type: database_type.into(),
            build_epoch,
        }
    }

    /// `network` like `81.2.69.0/24` or `2a02:8010::/32` holds `record` (a JSON object; integers are written
    /// as uint32, floats as doubles). Networks must not overlap.
    pub fn insert(&mut self, network: &str, record: &Value) -> &mut MmdbWriter {
        let (addr, len) = network.split_once('/').unwrap();
        let addr: IpAddr = addr.parse().unwrap();
        let len: u32 = len.parse().unwrap();
        let (bits, len) = match addr {
            IpAddr::V4(v4) => (u128::from(v4.to_bits()), len + 96),
            IpAddr::V6(v6) => (v6.to_bits(), len),
        };
        let offset = self.data.len() as u32;
        encode(record, &mut self.data);
        let mut node = 0usize;
        for depth in 0..len {
            let bit = ((bits >> (127 - depth)) & 1) as usize;
            if depth == len - 1 {
                assert!(matches!(self.nodes[node][bit], Child::Empty), "{network} overlaps another network");
                self.nodes[node][bit] = Child::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Child::Node(next) => next as usize,
                Child::Empty => {
                    self.nodes.push([Child::Empty; 2]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][bit] = Child::Node(next as u32);
                    next
                }
                Child::Data(_) => panic!("{network} is inside another network"),
            };
        }
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let node_count = self.nodes.len() as u32;
        let mut out = Vec::new();
        for node in &self.nodes {
            for child in node {
                let record = match *child {
                    Child::Empty => node_count,
                    Child::Node(n) => n,
                    Child::Data(offset) => node_count + 16 + offset,
                };
                out.extend_from_slice(&record.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(METADATA_MARKER);
        let metadata = serde_json::json!({
            "node_count": node_count,
            "record_size": 32,
            "ip_version": 6,
            "database_type": self.database_type,
            "languages": ["en"],
            "binary_format_major_version": 2,
            "binary_format_minor_version": 0,
            "build_epoch": Value::from(self.build_epoch),
            "description": {"en": "plutos test database"},
        });
        encode_with(&metadata, &mut out, |name| match name {
            "record_size" | "ip_version" | "binary_format_major_version" | "binary_format_minor_version" => Width::U16,
            "build_epoch" => Width::U64,
            _ => Width::U32,
        });
        out
    }
}

#[derive(Clone, Copy)]
enum Width {
    U16,
    U32,
    U64,
}

fn encode(value: &Value, out: &mut Vec<u8>) {
    encode_with(value, out, |_| Width::U32);
}

/// `width` says how a map member's unsigned integer is typed, by the member's name.
fn encode_with(value: &Value, out: &mut Vec<u8>, width: fn(&str) -> Width) {
    encode_value(value, out, width, Width::U32);
}

fn encode_value(value: &Value, out: &mut Vec<u8>, width: fn(&str) -> Width, int: Width) {
    match value {
        Value::String(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Number(n) if n.is_u64() => {
            let n = n.as_u64().unwrap();
            let (kind, bytes) = match int {
                Width::U16 => (5, 2),
                Width::U32 => (6, 4),
                Width::U64 => (9, 8),
            };
            let be = n.to_be_bytes();
            let significant: Vec<u8> = be[8 - bytes..].iter().copied().skip_while(|&b| b == 0).collect();
            control(out, kind, significant.len());
            out.extend_from_slice(&significant);
        }
        Value::Number(n) => {
            control(out, 3, 8);
            out.extend_from_slice(&n.as_f64().unwrap().to_be_bytes());
        }
        Value::Bool(b) => control(out, 14, usize::from(*b)),
        Value::Array(items) => {
            control(out, 11, items.len());
            for item in items {
                encode_value(item, out, width, Width::U32);
            }
        }
        Value::Object(members) => {
            control(out, 7, members.len());
            for (name, member) in members {
                encode_value(&Value::String(name.clone()), out, width, Width::U32);
                encode_value(member, out, width, width(name));
            }
        }
        Value::Null => panic!("MaxMind DB has no null"),
    }
}

/// A control byte (and its extensions) for a value of type `kind` and `size`.
fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (size_bits, extra): (u8, Vec<u8>) = match size {
        0..29 => (size as u8, vec![]),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
    };
    if kind <= 7 {
        out.push((kind << 5) | size_bits);
    } else {
        out.push(size_bits);
        out.push(kind - 7);
    }
    out.extend_from_slice(&extra);
}
