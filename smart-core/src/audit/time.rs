//! RFC 3339 UTC timestamps, as the audit log, the run records and the status file write them
//! (jiff does the calendar).

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `time` as RFC 3339 UTC with milliseconds (truncated), e.g.
/// `2026-11-26T19:30:00.123Z`; a time before 1970 (a broken clock) as the epoch.
pub fn format_utc(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let at = jiff::Timestamp::try_from(UNIX_EPOCH + since).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    at.strftime("%Y-%m-%dT%H:%M:%S.%3fZ").to_string()
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time (`2026-11-26T19:30:00Z`, fractions
/// allowed, `Z` or `+00:00`); `None` when it is not one.
pub fn parse_utc(text: &str) -> Option<f64> {
    if !(text.ends_with('Z') || text.ends_with("+00:00")) {
        return None;
    }
    let at: jiff::Timestamp = text.parse().ok()?;
    // nanoseconds / 1e9 is the double nearest the decimal fraction, as parsing it was.
    Some(at.as_second() as f64 + f64::from(at.subsec_nanosecond()) / 1e9)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_utc_times() {
        let check = |secs: u64, millis: u64, want: &str| {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis);
            assert_eq!(format_utc(t), want);
        };
        check(0, 0, "1970-01-01T00:00:00.000Z");
        check(951_782_400, 5, "2000-02-29T00:00:00.005Z");
        check(1_700_000_000, 123, "2023-11-14T22:13:20.123Z");
        check(4_102_444_799, 999, "2099-12-31T23:59:59.999Z");
        // Milliseconds are truncated, never rounded up into the next second.
        let late = UNIX_EPOCH + Duration::from_secs(59) + Duration::from_nanos(999_999_999);
        assert_eq!(format_utc(late), "1970-01-01T00:00:59.999Z");
    }
}
