//! Headers: `-H key=value` assignments and stored/loaded JSON objects.
//!
//! Properties: never panics; accepted headers survive `to_json` ->
//! `from_json` unchanged (what `dump`, `load`, `move` and leases rely on),
//! stay within `MAX_HEADERS_SIZE`, and floats are finite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use litebroker::headers::{HeaderValue, Headers, MAX_HEADERS_SIZE};

fn check_round_trip(headers: &Headers, origin: &str) {
    let json = headers.to_json();
    let back = Headers::from_json(&json)
        .unwrap_or_else(|e| panic!("{origin:?}: stored JSON {json:?} refused: {e}"));
    assert_eq!(&back, headers, "{origin:?} -> {json:?}");
    for (_, value) in headers.iter() {
        if let HeaderValue::Float(f) = value {
            assert!(f.is_finite(), "{origin:?}: non-finite float");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As JSON (stored headers, `load` records).
    if let Ok(headers) = Headers::from_json(text) {
        assert!(headers.to_json().len() <= MAX_HEADERS_SIZE);
        check_round_trip(&headers, text);
    }
    // As `-H` assignments, one per line.
    let items: Vec<&str> = text.split('\n').collect();
    if let Ok((key, value)) = Headers::parse_assignment(items[0]) {
        let mut one = Headers::new();
        if one.insert(&key, value).is_ok() {
            check_round_trip(&one, items[0]);
        }
    }
    if let Ok(headers) = Headers::from_assignments(&items) {
        assert!(headers.to_json().len() <= MAX_HEADERS_SIZE);
        check_round_trip(&headers, text);
    }
});
