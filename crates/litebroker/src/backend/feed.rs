//! [`ChangeFeed`]: one per database, it wakes every waiter when another
//! connection commits.
//!
//! A backend says *how* to notice a commit ([`ChangeSource`]: SQLite polls
//! `data_version` with file-change hints, PostgreSQL would use LISTEN/NOTIFY);
//! this module does the rest once for all backends: one driver thread that
//! runs the source only while someone waits, a generation counter that grows
//! with every change seen, and a broadcast to any number of blocked waiters
//! and registered listeners (a server bridges a listener to its async tasks),
//! so a thousand waiting clients cost one thread, not a thousand.
//!
//! A waiter reads [`ChangeFeed::generation`] *before* it looks at the data,
//! then [`ChangeFeed::wait`]s for the generation to move past what it read:
//! a commit that lands between the look and the wait is never missed.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Result;

/// How a backend notices commits by other connections.
pub trait ChangeSource: Send {
    /// Blocks until the storage may have changed since the last call
    /// (`Ok(true)`) or `longest` has passed without a sign of change
    /// (`Ok(false)`). A spurious `true` costs a waiter a useless look; a
    /// missed change costs latency until its next timeout, never a message.
    fn wait_change(&mut self, longest: Duration) -> Result<bool>;

    /// Something just happened (a waiter found messages, a listener joined):
    /// check quickly for a while rather than backing off.
    fn quicken(&mut self) {}
}

/// Opens a [`ChangeSource`] (on the feed's thread, when first needed).
pub type SourceFactory = Box<dyn Fn() -> Result<Box<dyn ChangeSource>> + Send + Sync>;

/// The longest the driver blocks in its source before it re-checks whether
/// anyone still waits.
const SLICE: Duration = Duration::from_millis(250);

/// How long the driver keeps watching after the last waiter left, so that a
/// waiter that loops (look, wait, look, wait) does not restart it each time.
const LINGER: Duration = Duration::from_secs(2);

/// Pause after a source failed (e.g. the database is down) before retrying.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Wakes waiters when the database changes. Cheap to clone (shared).
#[derive(Clone)]
pub struct ChangeFeed {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("generation", &self.generation())
            .finish()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Waiters sleep here; notified on every new generation.
    changed: Condvar,
    /// The driver sleeps here while nobody waits.
    wanted: Condvar,
    factory: SourceFactory,
}

struct State {
    generation: u64,
    /// Threads blocked in `wait` right now.
    waiting: usize,
    /// When the last waiter left (the driver lingers a little).
    last_wait: Option<Instant>,
    /// Ask the source for quick checks.
    quicken: bool,
    listeners: Vec<(u64, Arc<dyn Fn() + Send + Sync>)>,
    next_listener: u64,
    driver: Option<JoinHandle<()>>,
    closed: bool,
}

impl State {
    fn wanted(&self) -> bool {
        self.waiting > 0
            || !self.listeners.is_empty()
            || self.last_wait.is_some_and(|t| t.elapsed() < LINGER)
    }
}

impl ChangeFeed {
    /// A feed driven by sources that `factory` opens.
    pub fn new(factory: SourceFactory) -> Self {
        ChangeFeed {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    generation: 0,
                    waiting: 0,
                    last_wait: None,
                    quicken: false,
                    listeners: Vec::new(),
                    next_listener: 0,
                    driver: None,
                    closed: false,
                }),
                changed: Condvar::new(),
                wanted: Condvar::new(),
                factory,
            }),
        }
    }

    /// The number of changes seen so far. Read it before looking at the
    /// data, then wait for it to move.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Blocks until the generation is past `seen` or `timeout` passes;
    /// returns the generation then.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        self.ensure_driver();
        let mut state = self.lock();
        if state.generation != seen {
            return state.generation;
        }
        state.waiting += 1;
        self.shared.wanted.notify_all();
        while state.generation == seen && !state.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match self.shared.changed.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.waiting -= 1;
        state.last_wait = Some(Instant::now());
        state.generation
    }

    /// Says something just happened: the source checks quickly for a while.
    pub fn quicken(&self) {
        self.lock().quicken = true;
    }

    /// Starts watching now (a waiter calls this before its first look, so
    /// that a commit between that look and its first wait is seen).
    pub fn start(&self) {
        self.ensure_driver();
        self.lock().last_wait = Some(Instant::now());
        self.shared.wanted.notify_all();
    }

    /// Calls `on_change` (on the feed's thread; it must not block) after
    /// every change, until the returned guard is dropped. While any listener
    /// is registered the feed keeps watching.
    pub fn listen(&self, on_change: impl Fn() + Send + Sync + 'static) -> Listener {
        self.ensure_driver();
        let mut state = self.lock();
        let id = state.next_listener;
        state.next_listener += 1;
        state.listeners.push((id, Arc::new(on_change)));
        drop(state);
        self.shared.wanted.notify_all();
        Listener {
            feed: Arc::downgrade(&self.shared),
            id,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// Starts the driver thread if it is not running. The source is opened
    /// here, on the caller's thread and outside the feed's lock (opening may
    /// take a network round trip), so that it starts from the database as
    /// the caller is about to see it: no commit falls between the two.
    fn ensure_driver(&self) {
        if self.lock().driver.is_some() {
            return;
        }
        let source = (self.shared.factory)().ok();
        let mut state = self.lock();
        if state.driver.is_none() && !state.closed {
            let weak = Arc::downgrade(&self.shared);
            state.driver = std::thread::Builder::new()
                .name("litebroker-feed".into())
                .spawn(move || drive(weak, source))
                .ok();
        }
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The driver thread: runs the source while someone waits, publishes every
/// change it sees, and ends when the feed is dropped.
fn drive(weak: Weak<Shared>, mut source: Option<Box<dyn ChangeSource>>) {
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let quicken = {
            let mut state = lock(&shared);
            while !state.wanted() && !state.closed {
                state = match shared.wanted.wait_timeout(state, LINGER) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
                if Arc::strong_count(&shared) == 1 {
                    return; // only this thread still knows the feed
                }
            }
            if state.closed {
                return;
            }
            std::mem::take(&mut state.quicken)
        };
        let changed = match source.as_mut() {
            None => match (shared.factory)() {
                // Whatever happened while there was no source is unknown: look.
                Ok(s) => {
                    source = Some(s);
                    true
                }
                Err(_) => {
                    drop(shared);
                    std::thread::sleep(RETRY_PAUSE);
                    continue;
                }
            },
            Some(src) => {
                if quicken {
                    src.quicken();
                }
                // Block in the source without keeping the feed alive.
                drop(shared);
                match src.wait_change(SLICE) {
                    Ok(changed) => changed,
                    Err(_) => {
                        source = None; // reopen: the connection may have been lost
                        std::thread::sleep(RETRY_PAUSE);
                        true // waiters look again (and meet the error themselves)
                    }
                }
            }
        };
        if changed {
            let Some(shared) = weak.upgrade() else {
                return;
            };
            let listeners: Vec<_> = {
                let mut state = lock(&shared);
                state.generation += 1;
                state.listeners.iter().map(|(_, f)| f.clone()).collect()
            };
            shared.changed.notify_all();
            listeners.iter().for_each(|f| f());
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        state.closed = true;
        // The driver holds only a weak reference: it notices on its next
        // slice and ends by itself; joining here could deadlock if the last
        // reference is dropped on the driver thread.
        drop(state.driver.take());
    }
}

/// Keeps a [`ChangeFeed::listen`] callback registered; dropping it unregisters.
pub struct Listener {
    feed: Weak<Shared>,
    id: u64,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(shared) = self.feed.upgrade() {
            lock(&shared).listeners.retain(|(id, _)| *id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// A source that reports a change whenever the shared counter moved.
    struct Counter {
        value: Arc<AtomicU64>,
        seen: u64,
    }

    impl ChangeSource for Counter {
        fn wait_change(&mut self, longest: Duration) -> Result<bool> {
            let until = Instant::now() + longest;
            while Instant::now() < until {
                let now = self.value.load(Ordering::SeqCst);
                if now != self.seen {
                    self.seen = now;
                    return Ok(true);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(false)
        }
    }

    fn feed() -> (ChangeFeed, Arc<AtomicU64>) {
        let value = Arc::new(AtomicU64::new(0));
        let v = value.clone();
        let feed = ChangeFeed::new(Box::new(move || {
            Ok(Box::new(Counter {
                value: v.clone(),
                seen: v.load(Ordering::SeqCst),
            }) as Box<dyn ChangeSource>)
        }));
        (feed, value)
    }

    #[test]
    fn wait_times_out_without_change() {
        let (feed, _) = feed();
        let g = feed.generation();
        let started = Instant::now();
        assert_eq!(feed.wait(g, Duration::from_millis(50)), g);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn one_change_wakes_every_waiter() {
        let (feed, value) = feed();
        let g = feed.generation();
        let woke = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..50)
            .map(|_| {
                let (feed, woke) = (feed.clone(), woke.clone());
                std::thread::spawn(move || {
                    if feed.wait(g, Duration::from_secs(20)) > g {
                        woke.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        value.fetch_add(1, Ordering::SeqCst);
        waiters.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(woke.load(Ordering::SeqCst), 50);
    }

    #[test]
    fn a_change_before_the_wait_is_not_missed() {
        let (feed, value) = feed();
        let g = feed.generation();
        // Start the driver, let it see the change, then wait on the old generation.
        let _l = feed.listen(|| {});
        std::thread::sleep(Duration::from_millis(50));
        value.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        assert!(feed.wait(g, Duration::from_secs(20)) > g);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn listeners_hear_changes_until_dropped() {
        let (feed, value) = feed();
        let heard = Arc::new(AtomicUsize::new(0));
        let h = heard.clone();
        let listener = feed.listen(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(50));
        value.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while heard.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(heard.load(Ordering::SeqCst), 1);
        drop(listener);
        value.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(heard.load(Ordering::SeqCst), 1);
    }
}
