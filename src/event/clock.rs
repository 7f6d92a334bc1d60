//! Wall-clock formatting owned by one worker: the RFC 3339 `written_at` of records, the HTTP `Date` header and
//! the Hive partition of chunk keys. The per-second parts are re-rendered only when the second changes, so a
//! request costs one `clock_gettime` (vDSO) and a few byte copies.

use std::time::{SystemTime, UNIX_EPOCH};

const DAY_NAMES: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTH_NAMES: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// A civil UTC date and time of day, from Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Thursday (1970-01-01 was a Thursday).
    weekday: usize,
}

impl Civil {
    pub fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's days_from_civil inverse: exact for the proleptic Gregorian calendar.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            weekday: days.rem_euclid(7) as usize,
        }
    }

    /// `created_date=YYYY-MM-DD/hour=HH`, the partition part of an object key.
    pub fn partition(&self) -> String {
        format!("created_date={:04}-{:02}-{:02}/hour={:02}", self.year, self.month, self.day, self.hour)
    }
}

/// Microseconds since the Unix epoch, now.
pub fn unix_micros() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// The worker's cached clock. `refresh` once per event-loop iteration.
pub struct Clock {
    micros: i64,
    second: i64,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`.
    rfc3339_second: [u8; 19],
    /// `Thu, 26 Nov 2026 02:26:54 GMT` of `second`.
    http_date: [u8; 29],
}

impl Clock {
    pub fn new() -> Clock {
        let mut clock = Clock { micros: 0, second: i64::MIN, rfc3339_second: [b'0'; 19], http_date: [b' '; 29] };
        clock.refresh();
        clock
    }

    pub fn refresh(&mut self) {
        self.set_micros(unix_micros());
    }

    fn set_micros(&mut self, micros: i64) {
        self.micros = micros;
        let second = micros.div_euclid(1_000_000);
        if second != self.second {
            self.second = second;
            let c = Civil::from_unix(second);
            let mut s = [0u8; 19];
            put_digits(&mut s[0..4], c.year.rem_euclid(10_000) as u32);
            s[4] = b'-';
            put_digits(&mut s[5..7], c.month);
            s[7] = b'-';
            put_digits(&mut s[8..10], c.day);
            s[10] = b'T';
            put_digits(&mut s[11..13], c.hour);
            s[13] = b':';
            put_digits(&mut s[14..16], c.minute);
            s[16] = b':';
            put_digits(&mut s[17..19], c.second);
            self.rfc3339_second = s;

            let mut d = [b' '; 29];
            d[0..3].copy_from_slice(DAY_NAMES[c.weekday]);
            d[3] = b',';
            put_digits(&mut d[5..7], c.day);
            d[8..11].copy_from_slice(MONTH_NAMES[c.month as usize - 1]);
            put_digits(&mut d[12..16], c.year.rem_euclid(10_000) as u32);
            put_digits(&mut d[17..19], c.hour);
            d[19] = b':';
            put_digits(&mut d[20..22], c.minute);
            d[22] = b':';
            put_digits(&mut d[23..25], c.second);
            d[26..29].copy_from_slice(b"GMT");
            self.http_date = d;
        }
    }

    pub fn unix_seconds(&self) -> i64 {
        self.second
    }

    pub fn unix_micros(&self) -> i64 {
        self.micros
    }

    pub fn http_date(&self) -> &[u8; 29] {
        &self.http_date
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.ffffffZ` (27 bytes).
    pub fn append_rfc3339_micros(&self, out: &mut Vec<u8>) {
        let mut frac = [0u8; 8];
        frac[0] = b'.';
        put_digits(&mut frac[1..7], self.micros.rem_euclid(1_000_000) as u32);
        frac[7] = b'Z';
        out.extend_from_slice(&self.rfc3339_second);
        out.extend_from_slice(&frac);
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Writes `value` as zero-padded decimal filling `dst` exactly.
pub(crate) fn put_digits(dst: &mut [u8], mut value: u32) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_instants() {
        #[allow(clippy::type_complexity)]
        let table: &[(i64, (i64, u32, u32, u32, u32, u32))] = &[
            (0, (1970, 1, 1, 0, 0, 0)),
            (951_782_400, (2000, 2, 29, 0, 0, 0)),
            (1_795_998_414, (2026, 11, 30, 0, 26, 54)),
            (4_107_542_399, (2100, 2, 28, 23, 59, 59)),
            (-1, (1969, 12, 31, 23, 59, 59)),
        ];
        for &(secs, (y, mo, d, h, mi, s)) in table {
            let c = Civil::from_unix(secs);
            assert_eq!((c.year, c.month, c.day, c.hour, c.minute, c.second), (y, mo, d, h, mi, s), "{secs}");
        }
    }

    #[test]
    fn formats_rfc3339_with_micros_and_http_date() {
        let mut clock = Clock::new();
        clock.set_micros(1_764_124_014_084_108); // 2025-11-26T02:26:54.084108Z, a Wednesday
        let mut out = Vec::new();
        clock.append_rfc3339_micros(&mut out);
        assert_eq!(out, b"2025-11-26T02:26:54.084108Z");
        assert_eq!(clock.http_date(), b"Wed, 26 Nov 2025 02:26:54 GMT");
        assert_eq!(Civil::from_unix(clock.unix_seconds()).partition(), "created_date=2025-11-26/hour=02");
    }
}
