//! Durations and times: the flag duration parser, Prometheus's duration grammar, Go's duration
//! format, the times the command line accepts, and checked conversions to and from Unix seconds.
//!
//! Times here lie between 1970 and the end of year 9999: RFC 3339 (humantime, `metav1.Time`)
//! prints nothing outside, so conversions clamp to that range or refuse.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a flag's duration (`30s`, `1m`, `1h30m`, `500ms`, `7d`), as humantime reads them,
/// or as Go's `time.ParseDuration` does (`1.5m`, `0`), so prometheus-adapter's values parse.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).or_else(|e| {
        match parse_go_duration(text)
            .ok()
            .and_then(|n| u64::try_from(n).ok())
        {
            Some(nanos) => Ok(Duration::from_nanos(nanos)),
            None => Err(format!("invalid duration {text:?}: {e}")),
        }
    })
}

/// [`parse_duration`] for flags where zero would break the program (a timeout every call
/// exceeds, an interval that spins): zero is refused, saying so.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!(
            "{text:?} is zero; this duration must be more than 0"
        )),
        d => Ok(d),
    }
}

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers with units `ns`, `us`
/// (`µs`), `ms`, `s`, `m`, `h` (`300ms`, `1.5h`, `2h45m`, `-1m`; `0` alone needs no unit).
/// Returns nanoseconds.
pub fn parse_go_duration(value: &str) -> Result<i64, String> {
    let err = || {
        format!(
            "{value:?} is not a Go duration (a number with a unit: ns, us, ms, s, m, h, e.g. 30s, 1m30s, 1.5h)"
        )
    };
    let (negative, mut rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole = &rest[..whole_len];
        rest = &rest[whole_len..];
        let mut fraction = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            fraction = &after_dot[..len];
            rest = &after_dot[len..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(err());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| err())?
        };
        let mut part = whole.checked_mul(unit).ok_or_else(err)?;
        let mut scale = unit;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            part += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(part).ok_or_else(err)?;
    }
    let total = i64::try_from(total).map_err(|_| err())?;
    Ok(if negative { -total } else { total })
}

/// Parses a Prometheus duration as the config's windows and forecast fields are written
/// (`30s`, `5m`, `1h30m`, `1d`, `500ms`, `0`): whole numbers, units from largest to smallest.
pub fn prom_duration(text: &str) -> Option<Duration> {
    const UNITS: &[(&str, u64)] = &[
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut millis: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || letters == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let unit = &rest[digits..digits + letters];
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        if idx < next_unit {
            return None;
        }
        next_unit = idx + 1;
        millis = millis.checked_add(n.checked_mul(UNITS[idx].1)?)?;
        rest = &rest[digits + letters..];
    }
    Some(Duration::from_millis(millis))
}

/// Go's `time.Duration.String()`: `5m0s`, `1h0m0s`, `30s`, `1.5s`, `250ms`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (unit, scale) = if nanos < 1_000 {
            ("ns", 1)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(nanos, scale));
    }
    let total_secs = d.as_secs();
    let (hours, minutes) = (total_secs / 3600, (total_secs / 60) % 60);
    let seconds = fraction(
        u128::from(total_secs % 60) * 1_000_000_000 + u128::from(d.subsec_nanos()),
        1_000_000_000,
    );
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{seconds}s"));
    out
}

/// `value / scale` with the fraction's trailing zeros removed (`1.5`, `30`).
fn fraction(value: u128, scale: u128) -> String {
    let (whole, rest) = (value / scale, value % scale);
    if rest == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The forms [`parse_time`] accepts, for its error messages and the flags' help.
pub const TIME_FORMS: &str =
    "RFC 3339 (2024-01-01T00:00:00Z), Unix seconds (1704067200), now or now-<duration> (now-7d)";

/// Parses a time given on the command line (`--start`, `--end`): RFC 3339, Unix seconds
/// (fractions allowed), `now`, or `now-<duration>` relative to `now`. Times before 1970 or
/// after year 9999 are errors.
pub fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    let at = if text == "now" {
        now
    } else if let Some(ago) = text.strip_prefix("now-") {
        let ago = parse_duration(ago).map_err(|e| format!("time {text:?}: {e}"))?;
        now.checked_sub(ago)
            .ok_or_else(|| format!("time {text:?} is before 1970"))?
    } else if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() {
            return Err(format!(
                "time {text:?} is not a finite number of Unix seconds"
            ));
        }
        if seconds < 0.0 {
            return Err(format!("time {text:?} is before 1970"));
        }
        from_unix_f64(seconds).ok_or_else(|| format!("time {text:?} is too far in the future"))?
    } else {
        humantime::parse_rfc3339_weak(text)
            .map_err(|e| format!("time {text:?}: {e}; expected {TIME_FORMS}"))?
    };
    if at < UNIX_EPOCH {
        return Err(format!("time {text:?} is before 1970"));
    }
    Ok(at)
}

/// Whole Unix seconds of `t` (rounded down); times before 1970 clamp to 0, times past
/// `i64::MAX` seconds to `i64::MAX`.
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The last second RFC 3339 can print: 9999-12-31T23:59:59Z.
pub const LATEST_UNIX: i64 = 253_402_300_799;

/// The time `seconds` after the epoch, clamped to 1970 ..= [`LATEST_UNIX`] (times read from
/// a clock are always inside).
pub fn from_unix(seconds: i64) -> SystemTime {
    let seconds = seconds.clamp(0, LATEST_UNIX).unsigned_abs();
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// The time `seconds` (fractions allowed) after the epoch, or `None` when it is not finite,
/// before 1970 or after [`LATEST_UNIX`]: the checked form for untrusted input.
pub fn from_unix_f64(seconds: f64) -> Option<SystemTime> {
    if !(seconds.is_finite() && seconds >= 0.0 && seconds < (LATEST_UNIX + 1) as f64) {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(seconds).ok()?)
}

/// [`from_unix_f64`] with an error that says why: for sample times read from a backend.
pub fn checked_unix_f64(seconds: f64) -> Result<SystemTime, String> {
    from_unix_f64(seconds).ok_or_else(|| {
        format!(
            "Unix time {seconds} is out of range (expected seconds from 0, 1970-01-01T00:00:00Z, to {LATEST_UNIX}, 9999-12-31T23:59:59Z)"
        )
    })
}

/// RFC 3339 with second precision in UTC (`2024-01-01T00:00:00Z`), as `metav1.Time` marshals;
/// times outside 1970 ..= [`LATEST_UNIX`] are clamped (humantime would panic on them).
pub fn rfc3339(at: SystemTime) -> String {
    let at = at.clamp(UNIX_EPOCH, from_unix(LATEST_UNIX));
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn durations_as_time_parse_go_duration() {
        let s = 1_000_000_000;
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("30s"), Ok(30 * s));
        assert_eq!(parse_go_duration("1m30s"), Ok(90 * s));
        assert_eq!(parse_go_duration("1.5h"), Ok(5400 * s));
        assert_eq!(parse_go_duration("2h45m"), Ok(9900 * s));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("1µs"), Ok(1000));
        assert_eq!(parse_go_duration("1us"), Ok(1000));
        assert_eq!(parse_go_duration("-1m"), Ok(-60 * s));
        assert_eq!(parse_go_duration(".5s"), Ok(s / 2));
        assert_eq!(parse_go_duration("1h0m0s"), Ok(3600 * s));
        for bad in ["", "10", "1d", "s", "1 m", "abc", "1m-", "3000000h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_is_refused_where_it_breaks_things() {
        assert_eq!(positive_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(
            positive_duration("0s"),
            Err("\"0s\" is zero; this duration must be more than 0".to_owned())
        );
        assert!(positive_duration("0").is_err());
        assert!(positive_duration("ten").is_err_and(|e| e.starts_with("invalid duration \"ten\"")));
        // Go's syntax too, as prometheus-adapter's flags take it.
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-1m").is_err());
    }

    #[test]
    fn flag_durations_are_humantime() {
        assert_eq!(parse_duration("5m1s"), Ok(Duration::from_secs(301)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(
            parse_duration("5 parsecs"),
            Err("invalid duration \"5 parsecs\": unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)".to_owned())
        );
    }

    #[test]
    fn prometheus_durations_follow_the_prometheus_grammar() {
        for (text, millis) in [
            ("30s", 30_000),
            ("5m", 300_000),
            ("1d", 86_400_000),
            ("0", 0),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("1y", 31_536_000_000),
            ("2w", 1_209_600_000),
        ] {
            assert_eq!(
                prom_duration(text),
                Some(Duration::from_millis(millis)),
                "{text}"
            );
        }
        for bad in [
            "",
            "5",
            "m",
            "1m1h",
            "5 minutes",
            "1.5m",
            "1s1s",
            "-1m",
            "99999999999999999999y",
            "584942418y",
        ] {
            assert_eq!(prom_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn go_durations() {
        let cases = [
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(5430), "1h30m30s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(1500), "1.5µs"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::ZERO, "0s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn times_parse_in_every_documented_form() {
        let now = at(1_000_000);
        let parse = |s: &str| parse_time(s, now);
        assert_eq!(parse("now"), Ok(now));
        assert_eq!(parse(" now-1h "), Ok(at(1_000_000 - 3600)));
        assert_eq!(parse("805392000"), Ok(at(805_392_000)));
        assert_eq!(parse("1.5"), Ok(UNIX_EPOCH + Duration::from_millis(1500)));
        assert_eq!(parse("1995-07-10T16:00:00Z"), Ok(at(805_392_000)));
        assert_eq!(parse("2024-01-01T00:00:00Z"), Ok(at(1_704_067_200)));
    }

    #[test]
    fn bad_times_say_what_is_accepted() {
        let now = at(1_000_000);
        let parse = |s: &str| parse_time(s, now);
        assert_eq!(
            parse("yesterday"),
            Err("time \"yesterday\": timestamp format is invalid; expected RFC 3339 (2024-01-01T00:00:00Z), Unix seconds (1704067200), now or now-<duration> (now-7d)".to_owned())
        );
        assert_eq!(parse("-5"), Err("time \"-5\" is before 1970".to_owned()));
        assert_eq!(
            parse("now-100y"),
            Err("time \"now-100y\" is before 1970".to_owned())
        );
        assert_eq!(
            parse("now-soon"),
            Err("time \"now-soon\": invalid duration \"soon\": expected number at 0".to_owned())
        );
        assert_eq!(
            parse("inf"),
            Err("time \"inf\" is not a finite number of Unix seconds".to_owned())
        );
        assert_eq!(
            parse("NaN"),
            Err("time \"NaN\" is not a finite number of Unix seconds".to_owned())
        );
        // Before: `UNIX_EPOCH + Duration::from_secs_f64(1e300)` panicked.
        assert_eq!(
            parse("1e300"),
            Err("time \"1e300\" is too far in the future".to_owned())
        );
        assert_eq!(
            parse("1e19"),
            Err("time \"1e19\" is too far in the future".to_owned())
        );
    }

    #[test]
    fn unix_seconds_convert_both_ways_without_panicking() {
        assert_eq!(unix(at(1_704_067_200)), 1_704_067_200);
        assert_eq!(unix(UNIX_EPOCH + Duration::from_millis(1999)), 1);
        assert_eq!(unix(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(from_unix(1_704_067_200), at(1_704_067_200));
        assert_eq!(from_unix(-5), UNIX_EPOCH);
        assert_eq!(unix(from_unix(i64::MAX)), LATEST_UNIX);
        assert_eq!(
            from_unix_f64(1.5),
            Some(UNIX_EPOCH + Duration::from_millis(1500))
        );
        assert_eq!(
            from_unix_f64(LATEST_UNIX as f64),
            Some(from_unix(LATEST_UNIX))
        );
        for bad in [
            -1.0,
            f64::NAN,
            f64::INFINITY,
            253_402_300_800.0,
            1e19,
            1e300,
        ] {
            assert_eq!(from_unix_f64(bad), None, "{bad}");
        }
        assert_eq!(
            checked_unix_f64(3e11),
            Err("Unix time 300000000000 is out of range (expected seconds from 0, 1970-01-01T00:00:00Z, to 253402300799, 9999-12-31T23:59:59Z)".to_owned())
        );
        assert_eq!(
            checked_unix_f64(1.5),
            Ok(UNIX_EPOCH + Duration::from_millis(1500))
        );
    }

    #[test]
    fn rfc3339_has_second_precision_and_no_time_before_1970() {
        assert_eq!(rfc3339(at(1_704_067_200)), "2024-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_704_067_200_900)),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00Z"
        );
        // Before: humantime's formatter panicked past year 9999.
        assert_eq!(rfc3339(at(1 << 40)), "9999-12-31T23:59:59Z");
    }
}
