//! Human durations for leases, delays and backoffs: `30s`, `500ms`, `2m`,
//! `1h30m`, `1.5s`, or a bare number of seconds.
//!
//! One parser for every flag that takes a duration, so `--lease`, `--delay`,
//! `--visibility` and the server all accept exactly the same spellings.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid duration '{text}': {reason} (use e.g. 30s, 500ms, 2m, 1h30m)")]
pub struct DurationError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The longest duration accepted anywhere (one year): far beyond any sensible
/// lease or delay, and small enough that `now + d` never overflows nanoseconds.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `text` as a sequence of `<number><unit>` parts (units `ns`, `us`,
/// `ms`, `s`, `m`, `h`, `d`); a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError {
        text: text.to_owned(),
        reason,
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(fail("empty"));
    }
    if let Some(secs) = parse_number(s) {
        return to_duration(secs, 1e9).ok_or_else(|| fail("out of range"));
    }
    let mut total_ns = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| fail("missing unit"))?;
        let number = parse_number(&rest[..digits]).ok_or_else(|| fail("not a number"))?;
        let after = &rest[digits..];
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let scale = unit_scale(&after[..unit_len]).ok_or_else(|| fail("unknown unit"))?;
        total_ns += number * scale;
        rest = &after[unit_len..];
    }
    to_duration(total_ns, 1.0).ok_or_else(|| fail("out of range"))
}

/// A non-negative decimal number (`12`, `1.5`, `.5`); no sign, no exponent.
fn parse_number(s: &str) -> Option<f64> {
    let valid = !s.is_empty()
        && s != "."
        && s.chars().all(|c| c.is_ascii_digit() || c == '.')
        && s.matches('.').count() <= 1;
    valid.then(|| s.parse().ok()).flatten()
}

fn unit_scale(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        _ => return None,
    })
}

fn to_duration(value: f64, scale_to_ns: f64) -> Option<Duration> {
    let ns = value * scale_to_ns;
    (ns.is_finite() && ns <= MAX_DURATION.as_nanos() as f64)
        .then(|| Duration::from_nanos(ns.round() as u64))
}

/// Formats a duration the way it is usually typed (`30s`, `1500ms`, `2m`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if d.subsec_nanos() % 1_000_000 != 0 {
        format!("{}ns", d.as_nanos())
    } else if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u128 {
        parse_duration(text).unwrap().as_millis()
    }

    #[test]
    fn units() {
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("2m"), 120_000);
        assert_eq!(ms("1h"), 3_600_000);
        assert_eq!(ms("1d"), 86_400_000);
        assert_eq!(parse_duration("250us").unwrap().as_nanos(), 250_000);
        assert_eq!(parse_duration("7ns").unwrap().as_nanos(), 7);
    }

    #[test]
    fn bare_numbers_are_seconds_and_decimals_work() {
        assert_eq!(ms("5"), 5000);
        assert_eq!(ms("1.5s"), 1500);
        assert_eq!(ms(".5s"), 500);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms(" 10s "), 10_000);
    }

    #[test]
    fn compound() {
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("1m30s500ms"), 90_500);
    }

    #[test]
    fn refused() {
        for bad in [
            "", " ", "abc", "-5s", "5x", "s", "1.2.3s", "1e3s", "5 s", ".", "ms5", "10y",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_duration("400d").is_err(), "over a year");
        let e = parse_duration("5x").unwrap_err();
        assert!(e.to_string().contains("'5x'"));
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["30s", "500ms", "2m", "1h", "1500ms", "0s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }
}
