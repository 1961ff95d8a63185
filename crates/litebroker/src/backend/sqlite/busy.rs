//! How a connection waits for a lock another connection holds.
//!
//! SQLite's built-in busy timeout sleeps 1, 2, 5, 10, 15, 20, 25, ... ms
//! between attempts. Broker transactions hold the write lock for well under a
//! millisecond, so those sleeps, not the lock, set the latency whenever a
//! publisher and a consumer meet (measured: hundreds of 1-10 ms sleeps in a
//! 300-message publish→deliver run). This handler first retries every 50 µs,
//! then backs off, and gives up after `BROKER_BUSY_TIMEOUT` as before; the
//! retries around it stop at the same deadline (see [`super::retry`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// `BROKER_BUSY_TIMEOUT` in ms: a process-wide setting, read by the handler
/// (SQLite takes a plain function, which cannot carry it).
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(5000);

/// Installs the handler on `conn`, waiting up to `timeout` per busy episode.
pub fn install(conn: &Connection, timeout: Duration) -> rusqlite::Result<()> {
    TIMEOUT_MS.store(timeout.as_millis() as u64, Ordering::Relaxed);
    conn.busy_handler(Some(wait))
}

/// `BROKER_BUSY_TIMEOUT`: how long one operation may wait for a lock in all,
/// SQLite's waiting and [`super::retry::with_retry`]'s retries together.
pub fn timeout() -> Duration {
    Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed))
}

/// The pause before attempt `n` of one busy episode.
fn pause(n: u32) -> Duration {
    match n {
        0..40 => Duration::from_micros(50),    // the first 2 ms
        40..100 => Duration::from_micros(500), // the next 30 ms
        _ => Duration::from_millis(5),
    }
}

thread_local! {
    /// When the current busy episode of this thread's connection began.
    static EPISODE_START: std::cell::Cell<Instant> = std::cell::Cell::new(Instant::now());
}

/// SQLite's busy callback: true means "try again". Measures the real time
/// waited (sleeps overshoot, so counting nominal pauses waited ~30% longer).
fn wait(attempt: i32) -> bool {
    let now = Instant::now();
    if attempt <= 0 {
        EPISODE_START.with(|s| s.set(now));
    }
    let waited = now.duration_since(EPISODE_START.with(std::cell::Cell::get));
    let limit = timeout();
    if waited >= limit {
        return false;
    }
    std::thread::sleep(pause(attempt.max(0) as u32).min(limit - waited));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_pauses_first_then_longer() {
        assert_eq!(pause(0), Duration::from_micros(50));
        assert_eq!(pause(40), Duration::from_micros(500));
        assert_eq!(pause(100), Duration::from_millis(5));
    }

    #[test]
    fn a_busy_database_waits_about_the_timeout_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let a = Connection::open(&path).unwrap();
        a.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        let b = Connection::open(&path).unwrap();
        install(&b, Duration::from_millis(200)).unwrap();
        let started = std::time::Instant::now();
        let err = b.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        let took = started.elapsed();
        assert!(err.to_string().contains("locked"), "{err}");
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(2),
            "{took:?}"
        );
        a.execute_batch("COMMIT").unwrap();
        b.execute_batch("BEGIN IMMEDIATE; COMMIT").unwrap();
    }
}
