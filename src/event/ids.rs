//! Identifiers: the host name and boot id that make chunk keys unique across hosts and restarts, and the
//! per-event UUIDv7 request id.
//!
//! A request id is a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 bits that are ours. We fill
//! them with the worker number, 32 random bits drawn once per boot, and a per-worker counter, so two events
//! can only collide if two boots draw the same random bits and emit the same counter value in the same
//! millisecond on the same worker. No shared state, no syscall per event.

use std::fs::File;
use std::io::Read;

/// 64 random bits from the kernel. Falls back to a time/pid mix only if /dev/urandom cannot be read.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_ok() {
        return u64::from_le_bytes(bytes);
    }
    let t = crate::event::clock::unix_micros() as u64;
    t.rotate_left(17) ^ u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `{unix-ms in hex}{32 random bits}`: sortable by start time, 20 hex digits.
pub fn new_boot_id() -> String {
    let ms = (crate::event::clock::unix_micros() / 1000) as u64 & 0xFFFF_FFFF_FFFF;
    format!("{ms:012x}{:08x}", random_u64() & 0xFFFF_FFFF)
}

/// One worker's UUIDv7 generator. Only the timestamp (once per millisecond) and the counter (8 hex digits per
/// event) change; the rest of the text is rendered once.
pub struct RequestIds {
    text: [u8; 36],
    millis: u64,
    counter: u32,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl RequestIds {
    pub fn new(worker: usize, boot_random: u32) -> RequestIds {
        let worker = worker as u64 & 0xFFFF;
        // rand_a (12 bits): low worker bits; rand_b (62 bits): 4 more worker bits, 26 random bits, counter.
        let rand_a = worker & 0x0FFF;
        let rand_b = ((worker >> 12) << 58) | (u64::from(boot_random & 0x03FF_FFFF) << 32);
        let high = (0x7 << 12) | rand_a;
        let low = (0b10 << 62) | rand_b;
        let value = (u128::from(high) << 64) | u128::from(low);
        let mut text = [0u8; 36];
        let mut nibble = 0;
        for (i, slot) in text.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                *slot = b'-';
                continue;
            }
            *slot = HEX[((value >> (124 - 4 * nibble)) & 0xF) as usize];
            nibble += 1;
        }
        let mut ids = RequestIds { text, millis: u64::MAX, counter: 0 };
        ids.set_millis(0);
        ids
    }

    fn set_millis(&mut self, millis: u64) {
        self.millis = millis;
        // 48 bits of milliseconds: text[0..8] and text[9..13].
        let (first, rest) = self.text.split_at_mut(8);
        for (k, slot) in first.iter_mut().chain(rest[1..5].iter_mut()).enumerate() {
            *slot = HEX[((millis >> (44 - 4 * k)) & 0xF) as usize];
        }
    }

    /// Appends the next id as 36 characters of canonical UUID text.
    pub fn append_next(&mut self, unix_micros: i64, out: &mut Vec<u8>) {
        let millis = (unix_micros / 1000) as u64 & 0xFFFF_FFFF_FFFF;
        if millis != self.millis {
            self.set_millis(millis);
        }
        let counter = self.counter;
        self.counter = self.counter.wrapping_add(1);
        for (k, slot) in self.text[28..].iter_mut().enumerate() {
            *slot = HEX[((counter >> (28 - 4 * k)) & 0xF) as usize];
        }
        out.extend_from_slice(&self.text);
    }
}

/// The host name for object keys.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = if rc == 0 { String::from_utf8_lossy(&buf[..end]).into_owned() } else { String::new() };
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    if clean.is_empty() { "localhost".to_string() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_v7_time_ordered_and_distinct_per_worker() {
        let mut w0 = RequestIds::new(0, 0xABCDEF);
        let mut w1 = RequestIds::new(1, 0xABCDEF);
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut c = Vec::new();
        w0.append_next(1_764_124_014_084_108, &mut a);
        w1.append_next(1_764_124_014_084_108, &mut b);
        w0.append_next(1_764_124_014_085_000, &mut c);
        let a = String::from_utf8(a).unwrap();
        let b = String::from_utf8(b).unwrap();
        let c = String::from_utf8(c).unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7", "version nibble in {a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "variant in {a}");
        // 1764124014084 ms = 0x19abdfc3604
        assert_eq!(&a[..13], "019abdfc-3604");
        assert_ne!(a, b);
        assert!(c > a, "{c} sorts after {a}");
        assert!(a.ends_with("00000000") && c.ends_with("00000001"), "{a} {c}: the worker's counter");
        assert_eq!(a[14..28], c[14..28], "worker and boot bits stay");
    }

    #[test]
    fn boot_ids_differ() {
        assert_ne!(new_boot_id(), new_boot_id());
        assert_eq!(new_boot_id().len(), 20);
    }
}
