//! The database's change feed, bridged to tokio: one feed listener (on the
//! feed's own thread) wakes every waiting request through a `Notify`, and is
//! registered while at least one request waits, and for [`LINGER`] after
//! the last one left (so that a client that long-polls again and again does
//! not register it anew, on a blocking thread, for each request).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use litebroker::backend::Listener;
use litebroker::ChangeFeed;
use tokio::sync::Notify;

/// How long the feed listener stays registered after the last waiter left.
pub const LINGER: Duration = Duration::from_secs(2);

/// Wakes long-polling requests when the database changes.
pub struct Changes {
    feed: ChangeFeed,
    notify: Arc<Notify>,
    listening: Mutex<Listening>,
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
            listening: Mutex::new(Listening::default()),
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
            state.waiters += 1;
            state.idle_since = None;
            state.listener.is_none()
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
                self.listening
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .listener = Some(listener);
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

/// Who waits, and the listener registered for them.
#[derive(Default)]
struct Listening {
    waiters: usize,
    listener: Option<Listener>,
    /// When the last waiter left (the listener lingers).
    idle_since: Option<Instant>,
}

impl Changes {
    /// Lets go of the listener if nobody has waited for [`LINGER`].
    fn release_if_idle(&self) {
        let released = {
            let mut state = self.listening.lock().unwrap_or_else(|p| p.into_inner());
            if state.waiters == 0 && state.idle_since.is_some_and(|t| t.elapsed() >= LINGER) {
                state.idle_since = None;
                state.listener.take()
            } else {
                None
            }
        };
        drop(released); // outside our lock (it takes the feed's)
    }
}

/// Keeps the feed listener registered while it lives (and for [`LINGER`]
/// after the last guard is dropped).
pub struct WatchGuard {
    changes: Arc<Changes>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let released = {
            let mut state = self
                .changes
                .listening
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            state.waiters -= 1;
            if state.waiters > 0 {
                return;
            }
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    state.idle_since = Some(Instant::now());
                    let changes = self.changes.clone();
                    runtime.spawn(async move {
                        tokio::time::sleep(LINGER).await;
                        changes.release_if_idle();
                    });
                    None
                }
                // No runtime to linger on: let go now.
                Err(_) => state.listener.take(),
            }
        };
        drop(released);
    }
}
