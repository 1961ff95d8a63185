//! How a connection waits for a lock another connection holds.
//!
//! SQLite's built-in busy timeout sleeps 1, 2, 5, 10, 15, 20, 25, ... ms
//! between attempts. Broker transactions hold the write lock for well under a
//! millisecond, so those sleeps, not the lock, set the latency whenever a
//! publisher and a consumer meet (measured: hundreds of 1-10 ms sleeps in a
//! 300-message publish→deliver run). This handler first retries every 50 µs,
//! then backs off, and gives up after `BROKER_BUSY_TIMEOUT` as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;

/// `BROKER_BUSY_TIMEOUT` in ms: a process-wide setting, read by the handler
/// (SQLite takes a plain function, which cannot carry it).
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(5000);

/// Installs the handler on `conn`, waiting up to `timeout` per busy episode.
pub fn install(conn: &Connection, timeout: Duration) -> rusqlite::Result<()> {
    TIMEOUT_MS.store(timeout.as_millis() as u64, Ordering::Relaxed);
    conn.busy_handler(Some(wait))
}

/// The pause before attempt `n` of one busy episode.
fn pause(n: u32) -> Duration {
    match n {
        0..40 => Duration::from_micros(50),    // the first 2 ms
        40..100 => Duration::from_micros(500), // the next 30 ms
        _ => Duration::from_millis(5),
    }
}

/// Total time waited before attempt `n`.
fn waited(n: u32) -> Duration {
    let fast = n.min(40);
    let medium = n.clamp(40, 100) - 40;
    let slow = n.saturating_sub(100);
    pause(0) * fast + pause(40) * medium + pause(100) * slow
}

/// SQLite's busy callback: true means "try again".
fn wait(attempt: i32) -> bool {
    let n = attempt.max(0) as u32;
    let limit = Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed));
    if waited(n) >= limit {
        return false;
    }
    std::thread::sleep(pause(n));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_pauses_first_then_longer() {
        assert_eq!(pause(0), Duration::from_micros(50));
        assert_eq!(waited(40), Duration::from_millis(2));
        assert_eq!(waited(100), Duration::from_millis(32));
        assert_eq!(waited(110), Duration::from_millis(82));
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
