//! The one field of a certificate plutos reads itself: its `notAfter`, for the expiry metric and warning.
//! rustls checks everything else; a DER walk to one field is smaller than an X.509 parser in the tree.
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
//! TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity, … }
//! Validity ::= SEQUENCE { notBefore Time, notAfter Time }     Time: UTCTime (YYMMDDHHMMSSZ) | GeneralizedTime
//! ```

use crate::event::timestamp::{days_from_civil, days_in_month};

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter` in Unix seconds; `None` when the DER is not a certificate's shape.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (SEQUENCE, certificate, _) = element(der)? else { return None };
    let (SEQUENCE, tbs, _) = element(certificate)? else { return None };
    let (tag, _, after_version) = element(tbs)?;
    let mut rest = if tag == VERSION { after_version } else { tbs };
    // serialNumber, signature, issuer
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (SEQUENCE, validity, _) = element(rest)? else { return None };
    let not_before_end = element(validity)?.2;
    let (tag, time, _) = element(not_before_end)?;
    time_seconds(tag, time)
}

/// One DER element: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |len, &b| len << 8 | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn time_seconds(tag: u8, time: &[u8]) -> Option<i64> {
    let number =
        |digits: &[u8]| digits.iter().try_fold(0i64, |n, &d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')));
    let (year, rest) = match (tag, time.len()) {
        // RFC 5280: two-digit years 50–99 are 19xx, 00–49 are 20xx.
        (UTC_TIME, 13) => match number(&time[..2])? {
            yy @ 50.. => (1900 + yy, &time[2..]),
            yy => (2000 + yy, &time[2..]),
        },
        (GENERALIZED_TIME, 15) => (number(&time[..4])?, &time[4..]),
        _ => return None,
    };
    let [m1, m2, d1, d2, h1, h2, n1, n2, s1, s2, b'Z'] = *rest else { return None };
    let (month, day) = (number(&[m1, m2])?, number(&[d1, d2])?);
    let (hour, minute, second) = (number(&[h1, h2])?, number(&[n1, n2])?, number(&[s1, s2])?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_encodings() {
        assert_eq!(time_seconds(UTC_TIME, b"300102030405Z"), Some(1_893_553_445));
        assert_eq!(time_seconds(UTC_TIME, b"991231235959Z"), Some(946_684_799));
        assert_eq!(time_seconds(GENERALIZED_TIME, b"20510301000000Z"), Some(2_561_241_600));
        assert_eq!(time_seconds(UTC_TIME, b"300230000000Z"), None, "30 February");
        assert_eq!(time_seconds(UTC_TIME, b"3001020304Z"), None);
        assert_eq!(time_seconds(0x04, b"300102030405Z"), None);
    }

    #[test]
    fn lengths_past_the_input_are_refused() {
        assert_eq!(element(&[0x30, 0x82, 0x01]), None);
        assert_eq!(element(&[0x30, 0x05, 1, 2]), None);
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x00]), None);
    }
}
