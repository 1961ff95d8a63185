//! Bodies: the protocol's are bytes, litebroker's are UTF-8 text. A UTF-8
//! body is stored as it is (what `broker read` and the HTTP API show); any
//! other body is stored as base64 with the header [`ENCODING`]`=base64` and
//! decoded again on its way out as DATA, so every byte survives.

use base64::Engine;
use litebroker::{HeaderValue, Headers};

/// The header marking a body stored as base64. Reserved: a PUBLISH may not
/// set it as a property.
pub const ENCODING: &str = "lb-body-encoding";

/// The text to store for `body`, and whether it had to be base64-encoded.
pub fn to_stored(body: Vec<u8>) -> (String, bool) {
    match String::from_utf8(body) {
        Ok(text) => (text, false),
        Err(e) => (
            base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
            true,
        ),
    }
}

/// Marks `headers` for a base64-stored body.
pub fn mark(headers: &mut Headers) -> litebroker::Result<()> {
    headers.insert(ENCODING, HeaderValue::Str("base64".into()))?;
    Ok(())
}

/// The bytes of a stored body (decoded if its headers say base64; a body
/// that says so but is not base64 is sent as its text).
pub fn from_stored(body: String, headers: &Headers) -> Vec<u8> {
    if headers.get_str(ENCODING) == Some("base64") {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
            return bytes;
        }
    }
    body.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_bytes_survive() {
        assert_eq!(
            to_stored(b"hello\0\n".to_vec()),
            ("hello\0\n".into(), false)
        );
        let all: Vec<u8> = (0..=255).collect();
        let (stored, encoded) = to_stored(all.clone());
        assert!(encoded);
        let mut h = Headers::new();
        mark(&mut h).unwrap();
        assert_eq!(from_stored(stored.clone(), &h), all);
        assert_eq!(
            from_stored(stored.clone(), &Headers::new()),
            stored.into_bytes()
        );
    }
}
