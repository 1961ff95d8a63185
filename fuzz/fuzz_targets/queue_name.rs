//! Queue names (every queue operand; `@alias` references).
//!
//! Property: `validate_queue_name` agrees with the reference's rule
//! `^[A-Za-z0-9_][A-Za-z0-9_.-]*$`, at most 512 characters, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use litebroker::name::{alias_reference, validate_queue_name, MAX_QUEUE_NAME_LEN};

fn oracle(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_QUEUE_NAME_LEN
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(validate_queue_name(text).is_ok(), oracle(text), "{text:?}");
    if let Some(alias) = alias_reference(text) {
        assert_eq!(format!("@{alias}"), text);
        let _ = validate_queue_name(alias);
    }
});
