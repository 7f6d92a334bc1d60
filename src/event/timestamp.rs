//! The times a client reports, and the record's `timestamp`: when the event happened, as well as it can be told.
//!
//! A device's clock can be wrong by hours, but it measures the interval from an event to its sending well enough.
//! So when an event carries both its own time (`client_ts`) and the time its batch was sent (`sent_at`), the
//! event happened `sent_at − client_ts` before plutos received it: `timestamp = received − (sent_at − client_ts)`,
//! on plutos's clock. The client's clock is believed no further than this:
//!
//! | what the event carries | `timestamp` |
//! |---|---|
//! | both, `0 ≤ sent_at − client_ts ≤ 30 days` | `received − (sent_at − client_ts)` |
//! | both, `client_ts` after `sent_at` (a coarse or moved clock) | `received` |
//! | both, more than 30 days apart (a historical import) | `client_ts` as given |
//! | `client_ts` only | `client_ts` as given |
//! | neither, or nothing that parses | `received` |
//!
//! and any result after `received` or before 2000-01-01 is `received`. Times parse as RFC 3339 / ISO 8601
//! (`2026-12-02T14:37:04.171+00:00`, `…Z`, no offset = UTC, a space for the `T`) or as Unix epoch numbers
//! (seconds, or milliseconds from 10^11 on, as Snowplow's `dtm` and `stm` are).

use crate::event::clock::{Civil, put_digits};

/// The longest interval between an event and its sending that is taken as an offline queue, not a wrong clock.
pub const MAX_SEND_DELAY_MICROS: i64 = 30 * 86_400 * 1_000_000;
/// 2000-01-01T00:00:00Z: nothing plutos collects happened before.
const EARLIEST_MICROS: i64 = 946_684_800 * 1_000_000;

/// The times one event carries, as parsed (microseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientTimes {
    pub client: Option<i64>,
    pub sent: Option<i64>,
}

impl ClientTimes {
    /// The record's `timestamp` for an event received at `received` (see the module's table).
    pub fn timestamp(self, received: i64) -> i64 {
        let best = match (self.client, self.sent) {
            (Some(client), Some(sent)) => match sent.checked_sub(client) {
                Some(delay) if delay < 0 => received,
                Some(delay) if delay <= MAX_SEND_DELAY_MICROS => received - delay,
                _ => client,
            },
            (Some(client), None) => client,
            _ => received,
        };
        if (EARLIEST_MICROS..=received).contains(&best) { best } else { received }
    }
}

/// A client's time, from a JSON string's contents or a number's text.
pub fn parse(bytes: &[u8]) -> Option<i64> {
    if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) {
        return parse_epoch(bytes);
    }
    parse_rfc3339(bytes)
}

/// Unix seconds, or milliseconds from 10^11 on (10^11 seconds is the year 5138; 10^11 milliseconds is 1973).
fn parse_epoch(digits: &[u8]) -> Option<i64> {
    if digits.len() > 16 {
        return None;
    }
    let n: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    if n >= 100_000_000_000 { n.checked_mul(1_000) } else { n.checked_mul(1_000_000) }
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM|±HHMM|±HH]`; no offset is UTC.
fn parse_rfc3339(s: &[u8]) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second (…:60) is read as the last microsecond of its minute's 59th second.
    let second = second.min(60);
    let mut rest = &s[19..];
    let mut micros = 0;
    if let [b'.', fraction @ ..] = rest {
        let digits = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for (i, &d) in fraction[..digits].iter().take(6).enumerate() {
            micros += i64::from(d - b'0') * 10_i64.pow(5 - i as u32);
        }
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), zone @ ..] => {
            let two = |d: &[u8]| match d {
                [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                    Some(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
                }
                _ => None,
            };
            // ±HH, ±HHMM or ±HH:MM
            let (h, m) = match zone {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (two(&[*h1, *h2])?, two(&[*m1, *m2])?),
                [h1, h2] => (two(&[*h1, *h2])?, 0),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if *sign == b'-' { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let (second, leap) = if second == 60 { (59, 999_999) } else { (second, 0) };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1_000_000 + micros.max(leap))
}

pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm; the inverse of
/// `Civil::from_unix`).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Appends `"YYYY-MM-DDTHH:MM:SS.ffffffZ"` (quotes included) for `micros` since the Unix epoch.
pub fn append_json(out: &mut Vec<u8>, micros: i64) {
    let c = Civil::from_unix(micros.div_euclid(1_000_000));
    let mut s = *b"\"0000-00-00T00:00:00.000000Z\"";
    put_digits(&mut s[1..5], c.year.rem_euclid(10_000) as u32);
    put_digits(&mut s[6..8], c.month);
    put_digits(&mut s[9..11], c.day);
    put_digits(&mut s[12..14], c.hour);
    put_digits(&mut s[15..17], c.minute);
    put_digits(&mut s[18..20], c.second);
    put_digits(&mut s[21..27], micros.rem_euclid(1_000_000) as u32);
    out.extend_from_slice(&s);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * 1_000_000;

    fn text(micros: i64) -> String {
        let mut out = Vec::new();
        append_json(&mut out, micros);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn client_times_in_the_shapes_sdks_send() {
        let table: &[(&str, Option<&str>)] = &[
            ("2026-12-02T14:37:04.171+00:00", Some("2026-12-02T14:37:04.171000Z")),
            ("2026-12-02T14:37:04.171Z", Some("2026-12-02T14:37:04.171000Z")),
            ("2026-12-02T14:37:05.356243+00:00", Some("2026-12-02T14:37:05.356243Z")),
            ("2026-12-02T14:37:05.3562439Z", Some("2026-12-02T14:37:05.356243Z")),
            ("2026-12-02T14:37:04", Some("2026-12-02T14:37:04.000000Z")),
            ("2026-12-02 14:37:04z", Some("2026-12-02T14:37:04.000000Z")),
            ("2026-12-02T16:37:04+02:00", Some("2026-12-02T14:37:04.000000Z")),
            ("2026-12-02T09:07:04-0530", Some("2026-12-02T14:37:04.000000Z")),
            ("2026-12-02T15:37:04+01", Some("2026-12-02T14:37:04.000000Z")),
            ("2024-02-29T00:00:00Z", Some("2024-02-29T00:00:00.000000Z")),
            ("2016-12-31T23:59:60Z", Some("2016-12-31T23:59:59.999999Z")),
            ("1796222225372", Some("2026-12-02T14:37:05.372000Z")),
            ("1796222225", Some("2026-12-02T14:37:05.000000Z")),
            ("0", Some("1970-01-01T00:00:00.000000Z")),
            ("2023-02-29T00:00:00Z", None),
            ("2026-13-02T14:37:04Z", None),
            ("2026-12-02T24:00:00Z", None),
            ("2026-12-02T14:37:04.Z", None),
            ("2026-12-02T14:37:04+2:00", None),
            ("2026-12-02T14:37:04+25:00", None),
            ("2026-12-02T14:37:04 UTC", None),
            ("2026-12-02", None),
            ("yesterday", None),
            ("-5", None),
            ("99999999999999999999", None),
            ("", None),
        ];
        for (input, want) in table {
            assert_eq!(parse(input.as_bytes()).map(text).as_deref().map(|t| t.trim_matches('"')), *want, "{input}");
        }
    }

    #[test]
    fn parsing_agrees_with_the_calendar_of_the_formatter() {
        // Every day boundary over four centuries, through both directions.
        for day in (-200 * 365..250 * 365).step_by(37) {
            let micros = day * DAY + 12_345_678;
            let rendered = text(micros);
            assert_eq!(parse(rendered.trim_matches('"').as_bytes()), Some(micros), "{rendered}");
        }
    }

    #[test]
    fn the_timestamp_corrects_the_device_clock_within_bounds() {
        let received = parse(b"2026-12-02T12:00:00Z").unwrap();
        let at = |t: &str| parse(t.as_bytes());
        let table: &[(Option<i64>, Option<i64>, &str, &str)] = &[
            // A device 2 hours fast that sent its event 5 s after it happened.
            (at("2026-12-02T14:00:00Z"), at("2026-12-02T14:00:05Z"), "2026-12-02T11:59:55.000000Z", "skew"),
            // Sent at once: the received time.
            (at("2026-12-02T14:00:00Z"), at("2026-12-02T14:00:00Z"), "2026-12-02T12:00:00.000000Z", "no delay"),
            // A queue held for 29 days.
            (at("2026-11-03T12:00:00Z"), at("2026-12-02T12:00:00Z"), "2026-11-03T12:00:00.000000Z", "offline"),
            // The event's time after its sending (Snowplow's Python tracker rounds stm to the second).
            (at("1796222225372"), at("1796222225000"), "2026-12-02T12:00:00.000000Z", "created after sent"),
            // Years apart: a historical import keeps its time.
            (at("2019-05-01T00:00:00Z"), at("2026-12-02T12:00:00Z"), "2019-05-01T00:00:00.000000Z", "import"),
            (at("2026-12-01T08:00:00Z"), None, "2026-12-01T08:00:00.000000Z", "client only"),
            (None, at("2026-12-02T14:00:00Z"), "2026-12-02T12:00:00.000000Z", "sent only"),
            (None, None, "2026-12-02T12:00:00.000000Z", "neither"),
            // Never after the receipt, never before 2000.
            (at("2026-12-03T08:00:00Z"), None, "2026-12-02T12:00:00.000000Z", "future"),
            (at("1970-01-01T00:00:00Z"), None, "2026-12-02T12:00:00.000000Z", "epoch zero"),
            (at("1999-12-31T00:00:00Z"), at("1999-12-31T00:00:01Z"), "2026-12-02T11:59:59.000000Z", "old clock"),
            (Some(i64::MIN), Some(i64::MAX), "2026-12-02T12:00:00.000000Z", "overflow"),
        ];
        for &(client, sent, want, what) in table {
            let t = ClientTimes { client, sent }.timestamp(received);
            assert_eq!(text(t).trim_matches('"'), want, "{what}");
        }
        let limit =
            ClientTimes { client: Some(received - 5 * DAY), sent: Some(received - 5 * DAY + MAX_SEND_DELAY_MICROS) };
        assert_eq!(limit.timestamp(received), received - MAX_SEND_DELAY_MICROS, "30 days is still a queue");
        let past = ClientTimes {
            client: Some(received - 5 * DAY - 1),
            sent: Some(received - 5 * DAY + MAX_SEND_DELAY_MICROS),
        };
        assert_eq!(past.timestamp(received), received - 5 * DAY - 1, "one microsecond more is an import");
    }
}
