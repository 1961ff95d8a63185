//! Bounded retry with jitter for "database is locked".
//!
//! SQLite's busy timeout already waits for a lock; this covers what it cannot
//! (a busy error returned immediately, e.g. on a WAL upgrade or a deadlock
//! avoidance), so that "database is locked" never reaches the user while
//! another process is merely busy. Both stop at one deadline,
//! `BROKER_BUSY_TIMEOUT` after the operation started: a write blocked by a
//! lock another process keeps gives up after that long (it used to be ten
//! busy timeouts plus backoff, about 62 s for the default 5 s).

use std::time::{Duration, Instant};

use rusqlite::ErrorCode;

use crate::error::{Error, Result};

/// How many times an operation is attempted at most before giving up.
pub const MAX_ATTEMPTS: u32 = 10;

/// Runs `op`, retrying on busy/locked errors with exponential backoff and
/// jitter until [`super::busy::timeout`] has passed since the first attempt.
pub fn with_retry<T, E>(op: impl FnMut() -> std::result::Result<T, E>) -> Result<T>
where
    E: Into<Error>,
{
    retry_until(super::busy::timeout(), op)
}

fn retry_until<T, E>(
    limit: Duration,
    mut op: impl FnMut() -> std::result::Result<T, E>,
) -> Result<T>
where
    E: Into<Error>,
{
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        match op().map_err(Into::into) {
            Err(e) if is_busy(&e) => {
                attempt += 1;
                let pause = backoff(attempt - 1);
                let left = limit.saturating_sub(started.elapsed());
                if attempt >= MAX_ATTEMPTS || left.is_zero() {
                    return Err(Error::Busy { attempts: attempt });
                }
                std::thread::sleep(pause.min(left));
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
        let out: Result<i32> = retry_until(Duration::from_secs(5), || {
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
    fn retries_stop_at_the_deadline() {
        let started = Instant::now();
        let mut calls = 0;
        let out: Result<()> = retry_until(Duration::from_millis(120), || {
            calls += 1;
            Err(busy())
        });
        assert!(matches!(out, Err(Error::Busy { .. })), "{out:?}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(120), "{took:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
        assert!(calls >= 2, "{calls}");
    }

    #[test]
    fn backoff_is_bounded() {
        assert!(backoff(0) >= Duration::from_millis(50));
        assert!(backoff(30) <= Duration::from_millis(2025));
    }
}
