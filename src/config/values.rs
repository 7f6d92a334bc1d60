//! The value forms settings take, as clap value parsers: listen addresses, byte sizes, fsync modes, CPU lists,
//! Plutos's boolean words. clap puts each error on one line that names the setting.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use ipnet::IpNet;

use crate::enrich::{BotPolicy, GeoPrecision};
use crate::event::client::IpMode;
use crate::http::response::ResponseKind;
use crate::spool::{Codec, Durability, Fsync};

/// `:8080`, `127.0.0.1:8080`, `[::1]:8080`, a host name with a port, or a bare port.
pub fn listen(value: &str) -> Result<SocketAddr, String> {
    let bad = || format!("expected :8080, 127.0.0.1:8080, [::1]:8080 or 8080, got {value:?}");
    if let Ok(port) = value.parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Some(port) = value.strip_prefix(':') {
        let port = port.parse::<u16>().map_err(|_| bad())?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    value.to_socket_addrs().ok().and_then(|mut addrs| addrs.next()).ok_or_else(bad)
}

/// A listen address, or none (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

pub fn listen_or_off(value: &str) -> Result<Listen, String> {
    match value.trim() {
        "off" => Ok(Listen(None)),
        value => listen(value).map(|addr| Listen(Some(addr))),
    }
}

/// `1048576`, `64KiB`, `64MiB`, `4GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB`, all binary).
pub fn bytes(value: &str) -> Result<u64, String> {
    let bad = || format!("expected bytes like 1048576 or 64MiB, got {value:?}");
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    digits.parse::<u64>().ok().and_then(|n| n.checked_mul(multiplier)).ok_or_else(bad)
}

/// `never`, `always`, or an interval in milliseconds.
pub fn fsync(value: &str) -> Result<Fsync, String> {
    match value {
        "never" => Ok(Fsync::Never),
        "always" => Ok(Fsync::Always),
        ms => match ms.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Fsync::Every(Duration::from_millis(n))),
            _ => Err(format!("expected never, always or an interval in milliseconds, got {value:?}")),
        },
    }
}

/// A list of CPU ids (one value to clap, not one per id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// `0-3,6` → `[0, 1, 2, 3, 6]`.
pub fn cpu_list(list: &str) -> Result<CpuList, String> {
    let bad = || format!("expected a list like 0-3,6, got {list:?}");
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) =
                    (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?);
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    cpus.dedup();
    if cpus.is_empty() { Err(bad()) } else { Ok(CpuList(cpus)) }
}

/// A list of CIDR blocks (one value to clap).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CidrList(pub Vec<IpNet>);

/// `TRUSTED_PROXIES` as given: CIDR blocks or single addresses, separated by commas.
pub fn parse_cidrs(value: &str) -> Result<CidrList, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<IpNet>()
                .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| format!("expected CIDR blocks like 10.0.0.0/8,2001:db8::/32, got {v:?}"))
        })
        .collect::<Result<_, _>>()
        .map(CidrList)
}

/// A comma-separated list of words (one value to clap): write keys, header names.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Words(pub Vec<String>);

/// Write keys can be secrets: a `Words` never prints its contents.
impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Words({} items)", self.0.len())
    }
}

/// `a,b , c` → `["a", "b", "c"]`; a word may not contain whitespace or control bytes.
pub fn words(value: &str) -> Result<Words, String> {
    let words: Vec<String> = value.split(',').map(str::trim).filter(|w| !w.is_empty()).map(String::from).collect();
    match words.iter().position(|w| w.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())) {
        Some(i) => Err(format!("item {} of the list contains whitespace", i + 1)),
        None => Ok(Words(words)),
    }
}

/// Header names (RFC 9110 tokens), lower-cased.
pub fn header_names(value: &str) -> Result<Words, String> {
    let Words(names) = words(value)?;
    match names.iter().find(|n| !n.bytes().all(crate::http::is_token)) {
        Some(bad) => Err(format!("{bad:?} is not a header name")),
        None => Ok(Words(names.iter().map(|n| n.to_ascii_lowercase()).collect())),
    }
}

/// Plutos's booleans: `true`, `1`, `yes` / `false`, `0`, `no`.
pub fn flag(value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}

/// `on` / `off` (and Plutos's boolean words).
pub fn switch(value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        other => flag(other).map_err(|_| format!("expected on or off, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_address_forms() {
        let table = [
            (":8080", "0.0.0.0:8080"),
            ("9000", "0.0.0.0:9000"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:8080", "[::1]:8080"),
        ];
        for (input, want) in table {
            assert_eq!(listen(input).unwrap().to_string(), want, "{input}");
        }
        assert!(listen(":http").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(bytes("4 GiB").unwrap(), 4 << 30);
        assert_eq!(bytes("10k").unwrap(), 10 << 10);
        assert!(bytes("ten").is_err());
        assert!(bytes("5PB").is_err());
        assert!(bytes("99999999999999999999GiB").is_err());
    }

    #[test]
    fn cpu_lists_fsync_and_flags() {
        assert_eq!(cpu_list("0-3,6"), Ok(CpuList(vec![0, 1, 2, 3, 6])));
        assert_eq!(cpu_list("1"), Ok(CpuList(vec![1])));
        assert!(cpu_list("3-1").is_err());
        assert!(cpu_list("").is_err());
        assert_eq!(fsync("250"), Ok(Fsync::Every(Duration::from_millis(250))));
        assert!(fsync("0").is_err() && fsync("sometimes").is_err());
        assert_eq!((flag("yes"), flag("0")), (Ok(true), Ok(false)));
        assert!(flag("maybe").is_err());
    }

    #[test]
    fn lists() {
        let CidrList(nets) = parse_cidrs("10.0.0.0/8, 192.0.2.1 ,2001:db8::/32,10.1.2.3/16").unwrap();
        assert_eq!(nets.len(), 4);
        assert_eq!(nets[1].to_string(), "192.0.2.1/32");
        assert_eq!(nets[3].to_string(), "10.1.0.0/16");
        assert!(parse_cidrs("10.0.0.0/33").is_err());
        assert!(parse_cidrs("proxy.local").is_err());
        assert_eq!(words(" a, b,,c "), Ok(Words(vec!["a".into(), "b".into(), "c".into()])));
        assert!(words("a b").is_err());
        assert_eq!(format!("{:?}", words("secret").unwrap()), "Words(1 items)");
        assert_eq!(header_names("Referer,X-Request-Id"), Ok(Words(vec!["referer".into(), "x-request-id".into()])));
        assert!(header_names("Bad:Name").is_err());
    }
}

/// Lets clap parse a setting straight into the type of the module that owns the concept (and list its values in
/// `--help`), so that module needs nothing of clap or of the configuration.
macro_rules! value_enum {
    ($ty:ty { $($variant:path => $name:literal),* $(,)? }) => {
        impl clap::ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),*]
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(match self {
                    $($variant => $name),*
                }))
            }
        }
    };
}

value_enum!(Codec { Codec::Gzip => "gzip", Codec::Zstd => "zstd", Codec::None => "none" });
value_enum!(Durability { Durability::Spool => "spool", Durability::Memory => "memory" });
value_enum!(ResponseKind { ResponseKind::Empty => "empty", ResponseKind::Pixel => "pixel", ResponseKind::NoContent => "no-content" });
value_enum!(IpMode { IpMode::Full => "full", IpMode::Truncate => "truncate", IpMode::Hash => "hash", IpMode::Drop => "drop" });
value_enum!(GeoPrecision { GeoPrecision::Auto => "auto", GeoPrecision::Country => "country", GeoPrecision::Region => "region", GeoPrecision::City => "city" });
value_enum!(BotPolicy { BotPolicy::Keep => "keep", BotPolicy::Flag => "flag", BotPolicy::Drop => "drop" });
