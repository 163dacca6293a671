//! Numbers, durations and times as the pages show them: short, with units, and the same on every
//! page (the JS file formats live figures the same way).

/// A latency given in microseconds, in ms (or s past 10 s), with about three significant digits.
pub(crate) fn latency(us: f64) -> String {
    let ms = us / 1000.0;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// A number for a chart's tick label: no trailing zeros, at most three decimals.
pub(crate) fn tick(value: f64) -> String {
    let mut s = format!("{value:.3}");
    while s.contains('.') && (s.ends_with('0') || s.ends_with('.')) {
        s.pop();
    }
    if s == "-0" { "0".to_owned() } else { s }
}

/// A signed relative change: `−12.3 %` (a true minus sign), `+4.0 %`.
pub(crate) fn signed_pct(value: f64) -> String {
    format!("{} %", signed(value, 1))
}

/// A signed difference in percentage points, `+0.02 pp`.
pub(crate) fn signed_pp(value: f64) -> String {
    format!("{} pp", signed(value, 2))
}

/// Confidence bounds, `[−15.1, −9.4]`.
pub(crate) fn bounds(lower: f64, upper: f64, decimals: usize) -> String {
    format!("[{}, {}]", signed(lower, decimals), signed(upper, decimals))
}

fn signed(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let zero = text.chars().all(|c| c == '0' || c == '.');
    if zero {
        text
    } else if value < 0.0 {
        format!("\u{2212}{text}")
    } else {
        format!("+{text}")
    }
}

/// An error rate in percent with two decimals, `0.16 %`.
pub(crate) fn rate_pct(errors: u64, requests: u64) -> String {
    if requests == 0 {
        "–".to_owned()
    } else {
        format!("{:.2} %", errors as f64 / requests as f64 * 100.0)
    }
}

/// A count with thousands separators, `12,345`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in seconds, `45 s`, `4 min 12 s`, `1 h 05 min`, `3 days`.
pub(crate) fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 2 * 86_400 {
        format!("{} days", s / 86_400)
    } else if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

/// An RFC 3339 UTC time as a page shows it, `2026-11-26 19:30 UTC` (the text as given when it is
/// not RFC 3339).
pub(crate) fn time(rfc3339: &str) -> String {
    if parse_utc(rfc3339).is_some() {
        format!("{} UTC", rfc3339[..16].replace('T', " "))
    } else {
        rfc3339.to_owned()
    }
}

/// An RFC 3339 UTC time to the second, `2026-11-26 19:30:05 UTC`.
pub(crate) fn time_seconds(rfc3339: &str) -> String {
    if parse_utc(rfc3339).is_some() {
        format!("{} UTC", rfc3339[..19].replace('T', " "))
    } else {
        rfc3339.to_owned()
    }
}

/// The time of day of an RFC 3339 UTC time, `19:30:05`, for rows within one run.
pub(crate) fn clock(rfc3339: &str) -> String {
    if parse_utc(rfc3339).is_some() {
        rfc3339[11..19].to_owned()
    } else {
        rfc3339.to_owned()
    }
}

pub(crate) use smart_core::audit::parse_utc;

/// A Unix time for a chart tick, as precise as a span of `span_s` seconds needs (UTC):
/// `HH:MM:SS` within an hour, `MM-DD HH:MM` within a week, `YYYY-MM-DD` beyond.
pub(crate) fn tick_time(unix: f64, span_s: f64) -> String {
    let Ok(at) = jiff::Timestamp::from_second(unix.floor() as i64) else {
        return String::new();
    };
    let format = if span_s <= 3600.0 {
        "%H:%M:%S"
    } else if span_s <= 7.0 * 86_400.0 {
        "%m-%d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    at.strftime(format).to_string()
}

/// How a run ended, as a clause that reads after "; " ("the run completed"): the live box and a
/// run page say it the same way, and so does the live script (`END` in `assets/dashboard.js`).
pub(crate) fn run_end(end: smart_core::engine::RunEnd) -> &'static str {
    use smart_core::engine::RunEnd;
    match end {
        RunEnd::Completed => "the run completed",
        RunEnd::TimedOut => "the run stopped at its time limit",
        RunEnd::Cancelled => "the run was cancelled",
        RunEnd::BaselineUnsound => "the run stopped because the baseline was unsound",
        RunEnd::Failed => "the run failed",
        RunEnd::Recovered => "the run was interrupted and later recovered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_keep_three_digits() {
        for (us, want) in [
            (432.0, "0.43 ms"),
            (4_321.0, "4.32 ms"),
            (43_210.0, "43.2 ms"),
            (432_100.0, "432 ms"),
            (12_345_000.0, "12.3 s"),
        ] {
            assert_eq!(latency(us), want, "{us}");
        }
    }

    #[test]
    fn signs_use_a_true_minus_and_no_sign_on_zero() {
        assert_eq!(signed_pct(-12.34), "\u{2212}12.3 %");
        assert_eq!(signed_pct(4.0), "+4.0 %");
        assert_eq!(signed_pct(-0.01), "0.0 %");
        assert_eq!(signed_pp(0.016), "+0.02 pp");
        assert_eq!(bounds(-15.06, 2.0, 1), "[\u{2212}15.1, +2.0]");
    }

    #[test]
    fn counts_durations_and_ticks() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(duration(45.4), "45 s");
        assert_eq!(duration(252.0), "4 min 12 s");
        assert_eq!(duration(3900.0), "1 h 05 min");
        assert_eq!(duration(47.0 * 3600.0), "47 h 00 min");
        assert_eq!(duration(3.5 * 86_400.0), "3 days");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(10.0), "10");
        assert_eq!(tick(0.001), "0.001");
        assert_eq!(rate_pct(2, 1000), "0.20 %");
        assert_eq!(rate_pct(0, 0), "–");
    }

    #[test]
    fn times_parse_and_print_in_utc() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_utc("2026-01-01T00:00:00Z"), Some(1_767_225_600.0));
        assert_eq!(parse_utc("2026-01-01T00:00:01.500Z"), Some(1_767_225_601.5));
        assert_eq!(
            parse_utc("2026-01-01T00:00:00+00:00"),
            Some(1_767_225_600.0)
        );
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(parse_utc("2026-01-01T00:00:00+02:00"), None);
        assert_eq!(time("2026-11-26T19:30:05.123Z"), "2026-11-26 19:30 UTC");
        assert_eq!(time("soon"), "soon");
        assert_eq!(
            time_seconds("2026-11-26T19:30:05.123Z"),
            "2026-11-26 19:30:05 UTC"
        );
        assert_eq!(clock("2026-11-26T19:30:05.123Z"), "19:30:05");
        let t = 1_767_225_600.0 + 3661.0;
        assert_eq!(tick_time(t, 600.0), "01:01:01");
        assert_eq!(tick_time(t, 86_400.0), "01-01 01:01");
        assert_eq!(tick_time(t, 30.0 * 86_400.0), "2026-01-01");
    }
}
