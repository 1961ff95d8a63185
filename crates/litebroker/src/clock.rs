//! The clock that leases, delays and visibility timeouts are measured on.
//!
//! Message ids always come from the real clock (they must agree with other
//! processes, the Python reference included), but *when a lease expires* is a
//! question tests want to answer exactly, without sleeping: a [`ManualClock`]
//! lets them move time by hand.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A source of "now" in Unix nanoseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, Unix nanoseconds.
    fn now_ns(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        crate::id::now_ns()
    }
}

/// A clock that only moves when told to (tests). Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at the current wall-clock time.
    pub fn new() -> Self {
        ManualClock(Arc::new(AtomicI64::new(crate::id::now_ns())))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ns = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The default clock, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// The time `delay` after `now_ns`, or `None` when there is no delay (none or zero).
pub fn deadline(now_ns: i64, delay: Option<Duration>) -> Option<i64> {
    delay.filter(|d| !d.is_zero()).map(|d| after(now_ns, d))
}

/// How long from `now_ns` until `at_ns` (zero once it has passed).
pub fn until(now_ns: i64, at_ns: i64) -> Duration {
    Duration::from_nanos(at_ns.saturating_sub(now_ns).max(0) as u64)
}

/// `now + d` in nanoseconds, saturating.
pub fn after(now_ns: i64, d: Duration) -> i64 {
    now_ns.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new();
        let t0 = c.now_ns();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(c.now_ns(), t0);
        let shared = c.clone();
        c.advance(Duration::from_secs(30));
        assert_eq!(shared.now_ns(), t0 + 30_000_000_000);
    }

    #[test]
    fn deadlines_and_waits() {
        assert_eq!(deadline(10, None), None);
        assert_eq!(deadline(10, Some(Duration::ZERO)), None);
        assert_eq!(deadline(10, Some(Duration::from_nanos(5))), Some(15));
        assert_eq!(until(10, 15), Duration::from_nanos(5));
        assert_eq!(until(20, 15), Duration::ZERO);
    }

    #[test]
    fn after_saturates() {
        assert_eq!(after(i64::MAX - 1, Duration::from_secs(1)), i64::MAX);
        assert_eq!(after(5, Duration::from_nanos(7)), 12);
    }
}
