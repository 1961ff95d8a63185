//! `--since` / `--after` / `--before` time bounds and strict `-m` ids.
//!
//! Properties: never panics; a `-m` id is exactly 19 characters and
//! non-negative; a native id (>= 2^44, < 2^63) written as plain ASCII digits
//! is used as the bound unchanged, by both parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use litebroker::timebound::{parse_message_id, parse_time_bound};

const NATIVE_BOUNDARY: i64 = 1 << 44;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_time_bound(text);
    if let Some(id) = parse_message_id(text) {
        assert_eq!(text.chars().count(), 19, "-m accepted {text:?}");
        assert!(id >= 0);
        if text.bytes().all(|b| b.is_ascii_digit()) && id >= NATIVE_BOUNDARY {
            assert_eq!(parse_time_bound(text), Ok(id), "native id {text:?}");
        }
    }
    // Any id in the native range, printed canonically, round-trips.
    if data.len() >= 8 {
        let raw = i64::from_le_bytes(data[..8].try_into().unwrap()) & i64::MAX;
        if raw >= NATIVE_BOUNDARY {
            let printed = raw.to_string();
            assert_eq!(parse_time_bound(&printed), Ok(raw), "{printed}");
            if printed.len() == 19 {
                assert_eq!(parse_message_id(&printed), Some(raw), "{printed}");
            }
        }
    }
});
