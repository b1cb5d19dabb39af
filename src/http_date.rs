//! HTTP dates (waitress's `build_http_date` /
//! `parse_http_date`), cached per second for the `Date` header.
//!
//! Thread: any (the cache is per thread).

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats seconds since the epoch as an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 section 5.6.7).
pub fn build_http_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days.rem_euclid(7)) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parses an IMF-fixdate (and, as RFC 9110 asks of recipients, the obsolete
/// RFC 850 and asctime forms) into seconds since the epoch.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let month = |m: &str| {
        MONTHS
            .iter()
            .position(|x| x.eq_ignore_ascii_case(m))
            .map(|i| i as u32 + 1)
    };
    let hms = |t: &str| -> Option<(u64, u64, u64)> {
        let mut it = t.split(':');
        let h = it.next()?.parse().ok()?;
        let mi = it.next()?.parse().ok()?;
        let se = it.next()?.parse().ok()?;
        if it.next().is_some() || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        Some((h, mi, se))
    };
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (y, m, d, t) = match parts.as_slice() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, mo, y, t, "GMT"] => (
            y.parse::<i64>().ok()?,
            month(mo)?,
            d.parse::<u32>().ok()?,
            *t,
        ),
        // Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT"] => {
            let mut it = dmy.split('-');
            let d = it.next()?.parse::<u32>().ok()?;
            let mo = month(it.next()?)?;
            let yy = it.next()?.parse::<i64>().ok()?;
            let y = if yy < 70 {
                2000 + yy
            } else if yy < 100 {
                1900 + yy
            } else {
                yy
            };
            (y, mo, d, *t)
        }
        // Sun Nov  6 08:49:37 1994
        [_, mo, d, t, y] => (
            y.parse::<i64>().ok()?,
            month(mo)?,
            d.parse::<u32>().ok()?,
            *t,
        ),
        _ => return None,
    };
    if !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    let (h, mi, se) = hms(t)?;
    let days = days_from_civil(y, m, d);
    u64::try_from(days)
        .ok()
        .map(|days| days * 86_400 + h * 3600 + mi * 60 + se)
}

/// `n` in decimal, written at the end of `buf` (no allocation).
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or(&[])
}

thread_local! {
    static DATE_CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// The `Date` header value for now, formatted once per second per thread.
pub(crate) fn with_http_date_now<R>(f: impl FnOnce(&str) -> R) -> R {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    DATE_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            *c = (secs, build_http_date(secs));
        }
        f(&c.1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc_example() {
        assert_eq!(
            build_http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(build_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            build_http_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }

    #[test]
    fn parses_all_three_forms() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
    }

    #[test]
    fn round_trips() {
        for secs in [0u64, 1, 86_399, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_http_date(&build_http_date(secs)), Some(secs));
        }
    }

    #[test]
    fn cache_gives_a_date() {
        with_http_date_now(|d| {
            assert_eq!(d.len(), 29);
            assert!(d.ends_with(" GMT"));
        });
    }
}
