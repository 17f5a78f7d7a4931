//! RFC 3339 timestamps (the protocol's `updatedAt`) to milliseconds since the epoch, for last-writer-wins.
//!
//! Days from a civil date use Howard Hinnant's `days_from_civil` algorithm; only the `Z` and `±hh:mm` forms
//! the protocol allows are accepted. Every field must be digits within its range (a day its month has, an offset
//! under 24 hours): times come from servers and caches, and a malformed one is `None`, never a panic (a wasm
//! module does not survive one) nor a date that silently rolled over into another.

/// Milliseconds since the Unix epoch, or `None` when `s` is not an RFC 3339 date-time.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| decimal(&b[from..to]);
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Bytes 17 and 18 are digits, so byte 19 starts a character.
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms_digits: String = frac[..digits].chars().chain("000".chars()).take(3).collect();
        millis = ms_digits.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest.as_bytes() {
        [b'Z'] | [b'z'] => 0,
        [sign, h1, h2, b':', m1, m2] => {
            let (h, m) = (decimal(&[*h1, *h2])?, decimal(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            match sign {
                b'+' => h * 60 + m,
                b'-' => -(h * 60 + m),
                _ => return None,
            }
        }
        _ => return None,
    };
    // Every field has at most 4 digits, so none of this comes near the range of an i64.
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// The value of a run of ASCII digits (no sign, no space), or None; None too past an i64.
fn decimal(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0i64, |n, &d| {
        let d = d.is_ascii_digit().then(|| i64::from(d - b'0'))?;
        n.checked_mul(10)?.checked_add(d)
    })
}

/// Days in `month` (1 to 12) of `year` in the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_timestamps_parse_to_epoch_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2026-11-22T01:40:48.094365Z"), Some(1_795_311_648_094));
        assert_eq!(parse_rfc3339_ms("2000-02-29T12:00:00.5+01:00"), Some(951_822_000_500));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z"), Some(-1000));
        assert_eq!(parse_rfc3339_ms("2000-02-29T00:00:00-23:59"), Some(951_868_740_000));
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-11-22",
            "2026-11-22T01:40:48",
            "2026-11-22T01:40:48.Z",
            "x026-11-22T01:40:48Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "+026-11-22T01:40:48Z",
            "2026-11-22T01:40:48+24:00",
            "2026-11-22T01:40:48+00:60",
            "2026-11-22T01:40:48*01:00",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn offset_digits_that_are_not_digits_are_refused_not_a_panic() {
        // Each of these subtracted below 0 or multiplied past 255 in a u8 before the digits were checked.
        for offset in ["+ 1:00", "+/0:00", "+J0:00", "+0 :00", "+00: 1", "+00:Z0", "-\u{7f}0:00"] {
            let s = format!("2026-11-22T01:40:48{offset}");
            assert_eq!(parse_rfc3339_ms(&s), None, "{s}");
        }
        assert_eq!(decimal(b""), None);
        assert_eq!(decimal(b"+1"), None);
        assert_eq!(decimal(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(decimal(b"9223372036854775808"), None);
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds (`2026-11-22T01:40:48.094Z`).
pub fn format_rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn formatting_round_trips_through_parsing() {
        for ms in [0, 1_795_311_648_094, 951_822_000_500, -1000, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(format_rfc3339_ms(1_795_311_648_094), "2026-11-22T01:40:48.094Z");
    }
}
