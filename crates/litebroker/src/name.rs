//! Queue names: the rules every queue operand must pass.
//!
//! The reference accepts `^[A-Za-z0-9_][A-Za-z0-9_.-]*$` (ASCII) up to 512
//! characters; the error texts are the reference's.

use crate::error::{Error, Result};

/// The longest queue name the reference accepts.
pub const MAX_QUEUE_NAME_LEN: usize = 512;

/// Checks `name` against the queue naming rules.
pub fn validate_queue_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidQueueName("cannot be empty".into()));
    }
    if name.len() > MAX_QUEUE_NAME_LEN {
        return Err(Error::InvalidQueueName(format!(
            "exceeds {MAX_QUEUE_NAME_LEN} characters"
        )));
    }
    let first_ok = name.as_bytes()[0].is_ascii_alphanumeric() || name.starts_with('_');
    let rest_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !first_ok || !rest_ok {
        return Err(Error::InvalidQueueName(
            "must contain only letters, numbers, periods, underscores, and hyphens. \
             Cannot begin with a hyphen or a period"
                .into(),
        ));
    }
    Ok(())
}

/// Refuses a move (or redrive) of a queue onto itself: the one place this
/// rule and its wording (the reference's) live. Names are checked apart.
pub fn check_distinct(source: &str, target: &str) -> Result<()> {
    if source == target {
        return Err(Error::InvalidRequest(
            "Source and destination queues cannot be the same".into(),
        ));
    }
    Ok(())
}

/// Splits an `@alias` operand into the alias name, or returns `None` for a plain queue name.
pub fn alias_reference(operand: &str) -> Option<&str> {
    operand.strip_prefix('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_reference_names() {
        for name in ["q", "Q1", "_x", "a.b-c_d", "0", &"a".repeat(512)] {
            assert!(validate_queue_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        let long = "a".repeat(513);
        for name in ["", "-q", ".q", "a b", "é", "a/b", "a@b", "@a", &long] {
            assert!(validate_queue_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn error_texts_match_reference() {
        let err = validate_queue_name("").unwrap_err().to_string();
        assert_eq!(err, "Invalid queue name: cannot be empty");
        let err = validate_queue_name(&"a".repeat(513))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "Invalid queue name: exceeds 512 characters");
    }

    #[test]
    fn alias_reference_strips_at() {
        assert_eq!(alias_reference("@x"), Some("x"));
        assert_eq!(alias_reference("@"), Some(""));
        assert_eq!(alias_reference("x"), None);
    }
}
