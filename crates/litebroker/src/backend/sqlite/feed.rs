//! The SQLite change source: `PRAGMA data_version` is the source of truth (it
//! changes whenever another connection commits); a file-change notification
//! on the database's directory is a hint that lets an idle feed sleep
//! without missing anything, and wake within a millisecond of a write.
//!
//! Without a hint the schedule is the reference's: `initial_checks` quick
//! checks `burst_sleep` apart, then a delay growing linearly to `max_interval`,
//! with jitter. With a hint, the source sleeps until the hint fires or the
//! same delay runs out, whichever comes first, so a lost hint costs latency,
//! never a message. One source serves every waiter of a connector (see
//! [`crate::backend::feed`]).

use std::path::Path;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use rusqlite::Connection;

use crate::backend::feed::ChangeSource;
use crate::config::Settings;
use crate::error::Result;

/// Notices commits of other connections to one SQLite database.
pub struct SqliteSource {
    conn: Connection,
    hint: Option<Hint>,
    schedule: Schedule,
    version: i64,
    idle: u64,
}

impl SqliteSource {
    /// A source on database `db`, starting from its current version.
    pub fn open(db: &Path, settings: &Settings) -> Result<Self> {
        let conn = super::open::open_database(db, settings)?;
        let version = data_version(&conn)?;
        Ok(SqliteSource {
            conn,
            hint: Hint::new(db),
            schedule: Schedule::from_settings(settings),
            version,
            idle: 0,
        })
    }
}

fn data_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
}

impl ChangeSource for SqliteSource {
    fn wait_change(&mut self, longest: Duration) -> Result<bool> {
        let started = Instant::now();
        loop {
            // Clear stale hints, then look: a write after this look sends a fresh hint.
            if let Some(h) = &self.hint {
                h.clear();
            }
            let now = data_version(&self.conn)?;
            if now != self.version {
                self.version = now;
                self.idle = 0;
                return Ok(true);
            }
            let left = longest.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(false);
            }
            let pause = self.schedule.delay(self.idle).min(left);
            self.idle += 1;
            match &self.hint {
                Some(h) if self.idle > self.schedule.initial_checks => {
                    if h.wait(pause) {
                        // The hint fires when a writer writes its WAL frames,
                        // before its commit's fsync makes them visible (through
                        // the mmapped -shm, which sends no notification): check
                        // quickly again for a while instead of sleeping it out.
                        self.idle = 0;
                    }
                }
                _ => std::thread::sleep(pause),
            }
        }
    }

    fn quicken(&mut self) {
        self.idle = 0;
    }
}

/// The polling schedule, from the `BROKER_*` watcher settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Idle checks made `burst_sleep` apart before backing off.
    pub initial_checks: u64,
    /// The longest pause between checks.
    pub max_interval: Duration,
    /// The pause during the burst.
    pub burst_sleep: Duration,
    /// Relative jitter applied to backed-off pauses.
    pub jitter: f64,
}

impl Schedule {
    /// The schedule the settings describe (out-of-range values clamped).
    pub fn from_settings(s: &Settings) -> Self {
        let secs = |v: f64, default: f64| {
            if v.is_finite() && v >= 0.0 {
                Duration::from_secs_f64(v.min(3600.0))
            } else {
                Duration::from_secs_f64(default)
            }
        };
        Schedule {
            initial_checks: s.poll.initial_checks,
            max_interval: secs(s.poll.max_interval_s, 0.1),
            burst_sleep: secs(s.poll.burst_sleep_s, 0.00001),
            // NaN means no jitter (clamp would keep it, and mul_f64 panics on it).
            jitter: match s.poll.jitter_factor {
                j if j.is_nan() => 0.0,
                j => j.clamp(0.0, 1.0),
            },
        }
    }

    /// The pause after `idle` consecutive checks that found nothing.
    pub fn delay(&self, idle: u64) -> Duration {
        if idle < self.initial_checks {
            return self.burst_sleep;
        }
        let ramp = ((idle - self.initial_checks) as f64 / 100.0).min(1.0);
        let base = self.max_interval.mul_f64(ramp).max(self.burst_sleep);
        let wobble = 1.0 + self.jitter * (2.0 * unit_random() - 1.0);
        base.mul_f64(wobble.max(0.0))
            .min(self.max_interval.mul_f64(1.0 + self.jitter))
    }
}

/// A number in `[0, 1)` that varies from call to call (jitter needs no more).
fn unit_random() -> f64 {
    super::retry::jitter_ms(999_999) as f64 / 1_000_000.0
}

/// File-change hints for one database.
pub struct Hint {
    events: Receiver<()>,
    _watcher: RecommendedWatcher,
}

impl Hint {
    /// Watches the directory of `db` for changes to the database or its WAL.
    /// `None` if notifications are unavailable: polling alone still works.
    pub fn new(db: &Path) -> Option<Self> {
        let dir = db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = db.file_name()?.to_string_lossy().into_owned();
        // Only the database and its WAL: not the -shm, the holders' progress
        // files or the vacuum lock, which change without a commit to look at.
        let wal = format!("{name}-wal");
        let (tx, events) = channel();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let relevant = res.is_ok_and(|ev| {
                ev.paths.iter().any(|p| {
                    p.file_name()
                        .is_some_and(|f| f.to_str().is_some_and(|f| f == name || f == wal))
                })
            });
            if relevant {
                let _ = tx.send(());
            }
        })
        .ok()?;
        watcher.watch(dir, RecursiveMode::NonRecursive).ok()?;
        Some(Hint {
            events,
            _watcher: watcher,
        })
    }

    /// Waits up to `timeout` for a change; true if one was signalled.
    pub fn wait(&self, timeout: Duration) -> bool {
        let woke = match self.events.recv_timeout(timeout) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                false
            }
        };
        self.clear();
        woke
    }

    /// Drops hints already queued (our own commits cause some too).
    pub fn clear(&self) {
        while self.events.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            initial_checks: 100,
            max_interval: Duration::from_millis(100),
            burst_sleep: Duration::from_micros(10),
            jitter: 0.15,
        }
    }

    #[test]
    fn burst_then_linear_backoff_capped() {
        let s = schedule();
        assert_eq!(s.delay(0), Duration::from_micros(10));
        assert_eq!(s.delay(99), Duration::from_micros(10));
        let mid = s.delay(150);
        assert!(
            mid > Duration::from_millis(40) && mid < Duration::from_millis(60),
            "{mid:?}"
        );
        for idle in [200, 1000, 1_000_000] {
            let d = s.delay(idle);
            assert!(
                d >= Duration::from_millis(85) && d <= Duration::from_millis(115),
                "{d:?}"
            );
        }
    }

    #[test]
    fn settings_are_clamped() {
        let mut settings = Settings::default();
        settings.poll.max_interval_s = f64::NAN;
        settings.poll.burst_sleep_s = -1.0;
        settings.poll.jitter_factor = 7.0;
        let s = Schedule::from_settings(&settings);
        assert_eq!(s.max_interval, Duration::from_millis(100));
        assert_eq!(s.jitter, 1.0);
        settings.poll.jitter_factor = f64::NAN;
        let s = Schedule::from_settings(&settings);
        assert_eq!(s.jitter, 0.0, "NaN means no jitter");
        assert_eq!(s.delay(1_000), Duration::from_millis(100));
    }

    #[test]
    fn hint_fires_on_a_write_next_to_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let hint = Hint::new(&db).expect("inotify available");
        std::fs::write(dir.path().join("q.db-wal"), b"x").unwrap();
        assert!(hint.wait(Duration::from_secs(5)));
        // One write raises several events (create, modify, close): let them all arrive.
        std::thread::sleep(Duration::from_millis(100));
        hint.clear();
        std::fs::write(dir.path().join("other.txt"), b"x").unwrap();
        assert!(!hint.wait(Duration::from_millis(50)));
        std::fs::write(dir.path().join("q.db.holder-3"), b"x").unwrap();
        assert!(
            !hint.wait(Duration::from_millis(50)),
            "progress records are no change"
        );
    }
}
