//! [`Ticker`]: run a small job on a background thread at a fixed period
//! until it says stop or the ticker is dropped. Timeouts (stop a watcher
//! after D) and heartbeats (keep a lease alive) are both this.

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// A background job run every `period`; dropping the ticker cancels it at
/// once and joins the thread.
pub struct Ticker {
    cancel: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Calls `tick` after every `period` until it returns false or the ticker is dropped.
    pub fn every(period: Duration, mut tick: impl FnMut() -> bool + Send + 'static) -> Self {
        let (tx, rx) = channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(period) {
                if !tick() {
                    return;
                }
            }
        });
        Ticker {
            cancel: Some(tx),
            thread: Some(thread),
        }
    }

    /// Calls `job` once after `delay`, unless dropped first.
    pub fn once(delay: Duration, job: impl FnOnce() + Send + 'static) -> Self {
        let mut job = Some(job);
        Self::every(delay, move || {
            if let Some(j) = job.take() {
                j();
            }
            false
        })
    }
}

/// Calls `tick` with a connection of its own every `period` until it
/// returns false or the ticker is dropped. The connection is opened on the
/// first tick (most tickers never tick), and a tick that cannot get one
/// ends the ticker.
pub fn on_own_connection(
    connector: std::sync::Arc<dyn crate::backend::Connector>,
    period: Duration,
    mut tick: impl FnMut(&mut crate::Broker) -> bool + Send + 'static,
) -> Ticker {
    let mut broker = None;
    Ticker::every(period, move || {
        if broker.is_none() {
            broker = crate::Broker::connect(connector.clone()).ok();
        }
        broker.as_mut().is_some_and(&mut tick)
    })
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn ticks_until_told_to_stop() {
        let n = Arc::new(AtomicUsize::new(0));
        let seen = n.clone();
        let t = Ticker::every(Duration::from_millis(1), move || {
            seen.fetch_add(1, Ordering::SeqCst) < 2
        });
        std::thread::sleep(Duration::from_millis(200));
        drop(t);
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn dropping_cancels_a_pending_job() {
        let n = Arc::new(AtomicUsize::new(0));
        let seen = n.clone();
        let started = std::time::Instant::now();
        drop(Ticker::once(Duration::from_secs(10), move || {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no wait for the delay"
        );
        assert_eq!(n.load(Ordering::SeqCst), 0);
    }
}
