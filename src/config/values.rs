//! The value forms settings take, as clap value parsers: listen addresses, byte sizes, fsync modes, CPU lists,
//! Plutos's boolean words. clap puts each error on one line that names the setting.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::Fsync;

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

/// Plutos's booleans: `true`, `1`, `yes` / `false`, `0`, `no`.
pub fn flag(value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
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
}
