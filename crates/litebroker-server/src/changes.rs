//! The database's change feed, bridged to tokio: one feed listener (on the
//! feed's own thread) wakes every waiting request through a `Notify`, and is
//! registered only while at least one request waits.

use std::sync::{Arc, Mutex};

use litebroker::backend::Listener;
use litebroker::ChangeFeed;
use tokio::sync::Notify;

/// Wakes long-polling requests when the database changes.
pub struct Changes {
    feed: ChangeFeed,
    notify: Arc<Notify>,
    listening: Mutex<(usize, Option<Listener>)>,
    /// Serializes registrations, so that a waiter returns from
    /// [`Changes::watch`] only once the listener is registered.
    registering: tokio::sync::Mutex<()>,
}

impl Changes {
    /// Bridges `feed`.
    pub fn new(feed: ChangeFeed) -> Self {
        Changes {
            feed,
            notify: Arc::new(Notify::new()),
            listening: Mutex::new((0, None)),
            registering: tokio::sync::Mutex::new(()),
        }
    }

    /// Registers a waiter: from now until the guard is dropped, every change
    /// wakes [`Changes::notify`]'s waiters. Take it before the first look at
    /// the data, so a commit between the look and the wait is not missed.
    ///
    /// The listener is registered on a blocking thread: starting the feed
    /// opens the backend's change source, which may block (a network round
    /// trip) or, for a synchronous client with its own runtime, must not run
    /// on an async thread.
    pub async fn watch(self: &Arc<Self>) -> WatchGuard {
        let _one_at_a_time = self.registering.lock().await;
        let needed = {
            let mut state = self.listening.lock().unwrap_or_else(|p| p.into_inner());
            state.0 += 1;
            state.1.is_none()
        };
        let guard = WatchGuard {
            changes: self.clone(),
        };
        if needed {
            let (feed, notify) = (self.feed.clone(), self.notify.clone());
            let listener =
                tokio::task::spawn_blocking(move || feed.listen(move || notify.notify_waiters()))
                    .await;
            if let Ok(listener) = listener {
                // Our own count keeps it above zero: the guard is alive.
                self.listening.lock().unwrap_or_else(|p| p.into_inner()).1 = Some(listener);
            }
        }
        guard
    }

    /// What waiters wait on (call `notified()` and `enable()` it before looking).
    pub fn notify(&self) -> &Notify {
        &self.notify
    }

    /// Wakes every waiter now (shutdown).
    pub fn wake_all(&self) {
        self.notify.notify_waiters();
    }
}

/// Keeps the feed listener registered while it lives.
pub struct WatchGuard {
    changes: Arc<Changes>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut state = self
            .changes
            .listening
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        state.0 -= 1;
        if state.0 == 0 {
            state.1 = None;
        }
    }
}
