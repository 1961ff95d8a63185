//! Durations (`--lease`, `--delay`, `--visibility`, `--backoff`, `--timeout`).
//!
//! Properties: never panics; an accepted duration is at most `MAX_DURATION`;
//! `format_duration` output parses back to exactly the same duration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use litebroker::duration::{format_duration, parse_duration, MAX_DURATION};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_duration(text) {
        assert!(d <= MAX_DURATION, "{text:?} -> {d:?}");
        let printed = format_duration(d);
        assert_eq!(
            parse_duration(&printed),
            Ok(d),
            "{text:?} -> {d:?} -> {printed:?}"
        );
    }
});
