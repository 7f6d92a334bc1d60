//! Parsers for the value forms settings take: listen addresses, byte sizes, numbers, durations, CPU lists.
//! Each error names its setting in one line.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::{ConfigError, Fsync, invalid};

pub fn parse_listen(value: &str) -> Result<SocketAddr, ConfigError> {
    let bad = || invalid("PORT (--port)", format!("{value:?}: expected :8080, 127.0.0.1:8080, [::1]:8080 or 8080"));
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

pub fn parse_number(setting: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(setting, format!("{value:?}: expected a whole number from {min} to {max}"))),
    }
}

pub fn seconds(setting: &'static str, value: &str, min: u64) -> Result<Duration, ConfigError> {
    parse_number(setting, value, min, 86_400).map(Duration::from_secs)
}

/// `1048576`, `64KiB`, `64MiB`, `4GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB`, all binary).
pub fn parse_bytes(setting: &'static str, value: &str) -> Result<u64, ConfigError> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(invalid(setting, format!("{value:?}: expected bytes like 1048576 or 64MiB")));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| invalid(setting, format!("{value:?}: expected bytes like 1048576 or 64MiB")))
}

pub fn parse_fsync(value: &str) -> Result<Fsync, ConfigError> {
    match value {
        "never" => Ok(Fsync::Never),
        "always" => Ok(Fsync::Always),
        ms => match ms.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Fsync::Every(Duration::from_millis(n))),
            _ => Err(invalid(
                "FSYNC (--fsync)",
                format!("{value:?}: expected never, always or an interval in milliseconds"),
            )),
        },
    }
}

pub fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?);
                if a > b || b - a > 4096 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    cpus.dedup();
    (!cpus.is_empty()).then_some(cpus)
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
            assert_eq!(parse_listen(input).unwrap().to_string(), want, "{input}");
        }
        assert!(parse_listen(":http").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("X", "1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("X", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("X", "4 GiB").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("X", "10k").unwrap(), 10 << 10);
        assert!(parse_bytes("X", "ten").is_err());
        assert!(parse_bytes("X", "5PB").is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list(""), None);
    }
}
