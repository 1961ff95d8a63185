//! Times as the PyQueue server wrote them: Python's `datetime.isoformat()`
//! of a naive UTC time, `2025-01-15T10:30:00.123456`.

/// `ns` (Unix nanoseconds) as `YYYY-MM-DDTHH:MM:SS.ffffff`.
pub fn format_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

/// Now, Unix nanoseconds (the server's clock: only for timestamps shown).
pub fn now_ns() -> i64 {
    litebroker::id::now_ns()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_ns(0), "1970-01-01T00:00:00.000000");
        assert_eq!(
            format_ns(1_736_937_000_123_456_789),
            "2025-01-15T10:30:00.123456"
        );
        assert_eq!(
            format_ns(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000"
        );
    }
}
