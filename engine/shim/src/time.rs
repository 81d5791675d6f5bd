//! RFC 3339 times in UTC as Docker writes them, without a date crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;
/// Every run of 400 Gregorian years has this many days.
const CYCLE_DAYS: i64 = 146_097;

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_year(year: i64) -> i64 {
    if is_leap(year) { 366 } else { 365 }
}

fn days_in_month(year: i64, month: u32) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Splits seconds since the epoch into (year, month, day, second of day).
fn split(secs: i64) -> (i64, u32, i64, i64) {
    let mut days = secs.div_euclid(DAY);
    let second_of_day = secs.rem_euclid(DAY);
    let mut year = 1970 + 400 * days.div_euclid(CYCLE_DAYS);
    days = days.rem_euclid(CYCLE_DAYS);
    while days >= days_in_year(year) {
        days -= days_in_year(year);
        year += 1;
    }
    let mut month = 1;
    while days >= days_in_month(year, month) {
        days -= days_in_month(year, month);
        month += 1;
    }
    (year, month, days + 1, second_of_day)
}

/// Seconds since the epoch of a UTC calendar date and time.
fn join(year: i64, month: u32, day: i64, second_of_day: i64) -> i64 {
    let cycles = (year - 1970).div_euclid(400);
    let mut days = cycles * CYCLE_DAYS;
    for y in 1970 + cycles * 400..year {
        days += days_in_year(y);
    }
    for m in 1..month {
        days += days_in_month(year, m);
    }
    (days + day - 1) * DAY + second_of_day
}

fn epoch_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    }
}

fn base(secs: i64) -> String {
    let (y, mo, d, sod) = split(secs);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// `2026-11-28T04:25:18.123456789Z`: always nine fraction digits (exit status, state).
pub fn format_nanos(t: SystemTime) -> String {
    let (secs, nanos) = epoch_parts(t);
    format!("{}.{nanos:09}Z", base(secs))
}

/// Go's RFC3339Nano as Docker's json-file writes it: trailing zeros of the fraction dropped.
pub fn format_docker(t: SystemTime) -> String {
    let (secs, nanos) = epoch_parts(t);
    if nanos == 0 {
        return format!("{}Z", base(secs));
    }
    let frac = format!("{nanos:09}");
    format!("{}.{}Z", base(secs), frac.trim_end_matches('0'))
}

/// Parses RFC 3339 (`Z` or `+hh:mm` offsets, any fraction length).
pub fn parse(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let field = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (field(0, 4)?, field(5, 7)?, field(8, 10)?);
    let (hour, minute, second) = (field(11, 13)?, field(14, 16)?, field(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month as u32) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, c) in frac.bytes().take(digits).enumerate() {
            if i < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
        }
        for _ in digits..9 {
            nanos *= 10;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let h: i64 = o.get(1..3)?.parse().ok()?;
            let m: i64 = o.get(4..6)?.parse().ok()?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let secs = join(year, month as u32, day, hour * 3600 + minute * 60 + second) - offset;
    Some(from_parts(secs, nanos))
}

/// A SystemTime from seconds (possibly negative) and nanoseconds since the epoch.
pub fn from_parts(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.into())
    }
}

/// Nanoseconds since the epoch (negative before 1970), as the local log format stores them.
pub fn to_unix_nanos(t: SystemTime) -> i64 {
    let (secs, nanos) = epoch_parts(t);
    secs.saturating_mul(1_000_000_000)
        .saturating_add(nanos.into())
}

/// The inverse of [`to_unix_nanos`].
pub fn from_unix_nanos(ns: i64) -> SystemTime {
    from_parts(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let t = from_parts(1_795_839_918, 123_456_789);
        assert_eq!(format_nanos(t), "2026-11-28T04:25:18.123456789Z");
        assert_eq!(format_docker(t), "2026-11-28T04:25:18.123456789Z");
        let t = from_parts(1_795_839_918, 120_000_000);
        assert_eq!(format_docker(t), "2026-11-28T04:25:18.12Z");
        assert_eq!(format_docker(from_parts(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_nanos(from_parts(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            format_nanos(from_parts(-1, 0)),
            "1969-12-31T23:59:59.000000000Z"
        );
    }

    #[test]
    fn parses_what_it_formats() {
        for secs in [
            0i64,
            1,
            951_782_400,
            1_795_839_918,
            4_102_444_800,
            13_000_000_000,
        ] {
            let t = from_parts(secs, 987_654_321);
            assert_eq!(parse(&format_nanos(t)), Some(t), "{secs}");
            assert_eq!(parse(&format_docker(t)), Some(t), "{secs}");
        }
        assert_eq!(
            parse("2026-11-28T05:25:18.5+01:00"),
            parse("2026-11-28T04:25:18.500Z")
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00",
            "x026-01-01T00:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn unix_nanos_round_trip() {
        let t = from_parts(1_795_839_918, 42);
        assert_eq!(from_unix_nanos(to_unix_nanos(t)), t);
    }
}
