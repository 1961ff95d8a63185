//! Bounded retry with jitter for "database is locked".
//!
//! SQLite's busy timeout already waits for a lock; this covers what it cannot
//! (a busy error returned immediately, e.g. on a WAL upgrade or a deadlock
//! avoidance), so that "database is locked" never reaches the user while
//! another process is merely busy.

use std::time::Duration;

use rusqlite::ErrorCode;

use crate::error::{Error, Result};

/// How many times an operation is attempted before giving up.
pub const MAX_ATTEMPTS: u32 = 10;

/// Runs `op`, retrying on busy/locked errors with exponential backoff and jitter.
pub fn with_retry<T, E>(mut op: impl FnMut() -> std::result::Result<T, E>) -> Result<T>
where
    E: Into<Error>,
{
    let mut attempt = 0;
    loop {
        match op().map_err(Into::into) {
            Err(e) if is_busy(&e) && attempt + 1 < MAX_ATTEMPTS => {
                std::thread::sleep(backoff(attempt));
                attempt += 1;
            }
            Err(e) if is_busy(&e) => {
                return Err(Error::Busy {
                    attempts: MAX_ATTEMPTS,
                })
            }
            other => return other,
        }
    }
}

/// Whether `e` means "someone else holds the lock right now".
pub fn is_busy(e: &Error) -> bool {
    matches!(
        e.storage_source::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// 50 ms · 2^attempt, capped at 2 s, plus up to 25 ms of jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(6)).min(2000);
    Duration::from_millis(base + jitter_ms(25))
}

/// A cheap pseudo-random number in `0..=max` (no RNG dependency needed for jitter).
pub fn jitter_ms(max: u64) -> u64 {
    let nanos = crate::id::now_ns() as u64;
    let mixed = nanos ^ (u64::from(std::process::id()) << 17);
    mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) % (max + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> Error {
        Error::storage(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        ))
    }

    #[test]
    fn retries_busy_then_succeeds() {
        let mut calls = 0;
        let out: Result<i32> = with_retry(|| {
            calls += 1;
            if calls < 3 {
                Err(busy())
            } else {
                Ok(7)
            }
        });
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls, 3);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut calls = 0;
        let out: Result<()> = with_retry(|| {
            calls += 1;
            Err(Error::InvalidRequest("no".into()))
        });
        assert!(out.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn backoff_is_bounded() {
        assert!(backoff(0) >= Duration::from_millis(50));
        assert!(backoff(30) <= Duration::from_millis(2025));
    }
}
