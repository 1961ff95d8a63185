//! [`Watcher`]: deliver messages as they arrive, in consume, peek or move mode,
//! without losing any.
//!
//! Consume mode uses the same custody as `read` (see [`crate::delivery`]): a
//! message is consumed only after the sink or handler took it, a failure puts
//! it back in place, and a killed watcher costs at most a redelivery. Waiting
//! is cheap: every waiter of a database blocks on its one
//! [`ChangeFeed`] (see [`Waiter`]).

mod thread;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use thread::{HandlerFailure, HandlerSink, WatcherThread};

use crate::backend::{ChangeFeed, Connector};
use crate::delivery::{deliver, DeliveryError, Pacing, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::message::Filter;
use crate::name::validate_queue_name;
use crate::Broker;

/// What a watcher does with the messages it sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Deliver and remove each message (exactly one watcher gets it).
    Consume,
    /// Deliver without removing; each message is shown once per watcher.
    Peek,
    /// Move each message to this queue, then deliver it.
    Move(String),
}

/// Stops a running watcher from any thread (or a signal handler's flag).
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A handle that is not stopped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the watcher to stop after the message it is on.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether stop was asked.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a watcher stopped early: the same two causes as any delivery run.
pub type WatchError<E> = DeliveryError<E>;

/// How often an idle waiter (watcher, worker) re-checks even without any
/// sign of change, so that messages released by a dead reader are picked up.
pub const RESCAN_EVERY: Duration = Duration::from_secs(1);

/// The longest a waiter blocks before it looks at its stop handle again.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Waits on a database's [`ChangeFeed`] for a watcher or worker loop:
/// [`mark`](Waiter::mark) before looking at the data, then
/// [`wait`](Waiter::wait); a commit in between is never missed.
pub struct Waiter {
    feed: ChangeFeed,
    seen: u64,
}

impl Waiter {
    /// A waiter on `feed`, which starts watching now.
    pub fn new(feed: ChangeFeed) -> Self {
        feed.start();
        let seen = feed.generation();
        Waiter { feed, seen }
    }

    /// Call before looking at the data: changes from here on end the next wait.
    pub fn mark(&mut self) {
        self.seen = self.feed.generation();
    }

    /// Something was found: the feed checks quickly for a while.
    pub fn activity(&self) {
        self.feed.quicken();
    }

    /// Returns once the database changed since the last [`mark`](Self::mark),
    /// `stop` is asked, or `longest` has passed, whichever comes first.
    pub fn wait(&mut self, stop: &StopHandle, longest: Duration) {
        let deadline = std::time::Instant::now() + longest;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if stop.is_stopped() || left.is_zero() {
                return;
            }
            let now = self.feed.wait(self.seen, left.min(STOP_CHECK));
            if now != self.seen {
                self.seen = now;
                return;
            }
        }
    }
}

/// What a long-running loop (watcher, worker) tells its user about the
/// database going away and coming back; it keeps running meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The database cannot be reached (the error's text); retrying with backoff.
    Unavailable(String),
    /// The database answers again; the loop looked at everything anew.
    Reconnected,
}

/// A receiver of [`Notice`]s.
pub type NoticeFn = Arc<dyn Fn(&Notice) + Send + Sync>;

/// The first pause after an outage is seen, doubled up to [`OUTAGE_PAUSE_MAX`].
const OUTAGE_PAUSE: Duration = Duration::from_millis(200);
/// The longest pause between attempts while the database is unavailable.
const OUTAGE_PAUSE_MAX: Duration = Duration::from_secs(5);

/// Rides out a database outage in a loop: an [`ErrorKind::Unavailable`]
/// error pauses the loop (with backoff) instead of ending it; the next pass
/// reconnects and rescans, so nothing committed meanwhile is missed.
#[derive(Default)]
pub(crate) struct Outage {
    pause: Option<Duration>,
}

impl Outage {
    /// Waits out `err` if it is an outage (`Ok`), or gives it back.
    pub(crate) fn ride(
        &mut self,
        err: Error,
        stop: &StopHandle,
        notices: Option<&NoticeFn>,
    ) -> Result<()> {
        if err.kind() != ErrorKind::Unavailable {
            return Err(err);
        }
        let pause = match self.pause {
            None => {
                if let Some(n) = notices {
                    n(&Notice::Unavailable(err.to_string()));
                }
                OUTAGE_PAUSE
            }
            Some(p) => (p * 2).min(OUTAGE_PAUSE_MAX),
        };
        self.pause = Some(pause);
        let until = std::time::Instant::now() + pause;
        while !stop.is_stopped() && std::time::Instant::now() < until {
            std::thread::sleep(STOP_CHECK.min(pause));
        }
        Ok(())
    }

    /// A pass succeeded: if an outage was being ridden out, it is over.
    pub(crate) fn recovered(&mut self, notices: Option<&NoticeFn>) {
        if self.pause.take().is_some() {
            if let Some(n) = notices {
                n(&Notice::Reconnected);
            }
        }
    }
}

/// Watches one or more queues of one database.
#[derive(Clone)]
pub struct Watcher {
    connector: Arc<dyn Connector>,
    queues: Vec<String>,
    mode: Mode,
    since: Option<i64>,
    batch: usize,
    stop: StopHandle,
    notices: Option<NoticeFn>,
}

impl Watcher {
    /// A watcher of `queue` in the database `connector` opens.
    pub fn new(connector: Arc<dyn Connector>, queue: &str, mode: Mode) -> Result<Self> {
        Self::on_queues(connector, &[queue], mode)
    }

    /// A watcher of several queues, served in turn.
    pub fn on_queues(connector: Arc<dyn Connector>, queues: &[&str], mode: Mode) -> Result<Self> {
        if queues.is_empty() {
            return Err(Error::InvalidRequest(
                "a watcher needs at least one queue".into(),
            ));
        }
        for q in queues {
            validate_queue_name(q)?;
        }
        if let Mode::Move(dest) = &mode {
            validate_queue_name(dest)?;
            if queues.contains(&dest.as_str()) {
                return Err(Error::InvalidRequest(
                    "Cannot move messages to the same queue".into(),
                ));
            }
        }
        Ok(Watcher {
            connector,
            queues: queues.iter().map(|q| q.to_string()).collect(),
            mode,
            since: None,
            batch: 100,
            stop: StopHandle::new(),
            notices: None,
        })
    }

    /// Only messages newer than `bound`. Refused in move mode, which must drain
    /// everything (a filter would strand older messages).
    pub fn since(mut self, bound: i64) -> Result<Self> {
        if matches!(self.mode, Mode::Move(_)) {
            return Err(Error::InvalidRequest(
                "--since cannot be used with --move".into(),
            ));
        }
        self.since = Some(bound);
        Ok(self)
    }

    /// Messages taken per transaction (default 100). Smaller shares a busy
    /// queue more evenly between competing watchers with slow consumers.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Uses `stop` instead of the watcher's own stop handle.
    pub fn with_stop(mut self, stop: StopHandle) -> Self {
        self.stop = stop;
        self
    }

    /// Hears when the database becomes unavailable and when it is back (the
    /// watcher keeps waiting meanwhile).
    pub fn with_notices(mut self, notices: NoticeFn) -> Self {
        self.notices = Some(notices);
        self
    }

    /// A handle that stops this watcher.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Watches until stopped or the sink fails, on the current thread.
    pub fn run<S: Sink>(&self, sink: &mut S) -> std::result::Result<(), WatchError<S::Error>> {
        let mut broker = Broker::connect(self.connector.clone())?;
        let mut waiter = Waiter::new(broker.changes());
        let mut marks = vec![self.since.unwrap_or(0); self.queues.len()];
        let mut outage = Outage::default();
        while !self.stop.is_stopped() {
            match self.pass(&mut broker, &mut waiter, &mut marks, sink) {
                Ok(()) => outage.recovered(self.notices.as_ref()),
                Err(DeliveryError::Backend(e)) => outage
                    .ride(e, &self.stop, self.notices.as_ref())
                    .map_err(DeliveryError::Backend)?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Takes what is there, or waits for a change.
    fn pass<S: Sink>(
        &self,
        broker: &mut Broker,
        waiter: &mut Waiter,
        marks: &mut [i64],
        sink: &mut S,
    ) -> std::result::Result<(), WatchError<S::Error>> {
        waiter.mark();
        if self.drain_all(broker, marks, sink)? > 0 {
            waiter.activity();
            return Ok(());
        }
        let longest = self
            .until_next_due(broker)?
            .min(self.connector.rescan_every());
        waiter.wait(&self.stop, longest);
        Ok(())
    }

    /// How long until a leased or delayed message of a watched queue becomes
    /// visible by itself (no commit announces that).
    fn until_next_due(&self, broker: &mut Broker) -> Result<Duration> {
        let mut soonest = Duration::MAX;
        for q in &self.queues {
            if let Some(wait) = broker.queue(q)?.until_visible()? {
                soonest = soonest.min(wait);
            }
        }
        Ok(soonest)
    }

    /// One pass over every queue; returns how many messages were handled.
    fn drain_all<S: Sink>(
        &self,
        broker: &mut Broker,
        marks: &mut [i64],
        sink: &mut S,
    ) -> std::result::Result<usize, WatchError<S::Error>> {
        let mut handled = 0;
        for (queue, mark) in self.queues.iter().zip(marks.iter_mut()) {
            if self.stop.is_stopped() {
                break;
            }
            handled += match &self.mode {
                Mode::Consume => self.consume(broker, queue, sink)?,
                Mode::Peek => self.peek(broker, queue, mark, sink)?,
                Mode::Move(dest) => self.move_to(broker, queue, dest, sink)?,
            };
        }
        Ok(handled)
    }

    fn consume<S: Sink>(
        &self,
        broker: &mut Broker,
        queue: &str,
        sink: &mut S,
    ) -> std::result::Result<usize, WatchError<S::Error>> {
        let filter = Filter {
            after: self.since,
            ..Filter::all()
        };
        let pacing = Pacing {
            max: Some(self.batch),
            batch: self.batch,
            ack_every: 1,
        };
        deliver(broker.backend(), queue, &filter, pacing, sink)
    }

    fn peek<S: Sink>(
        &self,
        broker: &mut Broker,
        queue: &str,
        mark: &mut i64,
        sink: &mut S,
    ) -> std::result::Result<usize, WatchError<S::Error>> {
        let filter = Filter {
            after: Some(*mark),
            ..Filter::all()
        };
        let page = broker.backend().peek(queue, &filter, 0, self.batch)?;
        for msg in &page {
            sink.accept(msg).map_err(WatchError::Sink)?;
            sink.flush().map_err(|(_, e)| WatchError::Sink(e))?;
            *mark = (*mark).max(msg.id);
        }
        Ok(page.len())
    }

    fn move_to<S: Sink>(
        &self,
        broker: &mut Broker,
        queue: &str,
        dest: &str,
        sink: &mut S,
    ) -> std::result::Result<usize, WatchError<S::Error>> {
        let moved =
            broker
                .backend()
                .move_messages(queue, dest, &Filter::all(), self.batch, false)?;
        for msg in &moved {
            sink.accept(msg).map_err(WatchError::Sink)?;
        }
        sink.flush().map_err(|(_, e)| WatchError::Sink(e))?;
        Ok(moved.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recorder() -> (NoticeFn, Arc<Mutex<Vec<Notice>>>) {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        (Arc::new(move |n| h.lock().unwrap().push(n.clone())), heard)
    }

    #[test]
    fn an_outage_is_ridden_out_and_announced_once() {
        let (notices, heard) = recorder();
        let stop = StopHandle::new();
        let mut outage = Outage::default();
        let down = || Error::Unavailable("server closed the connection".into());
        let started = std::time::Instant::now();
        assert!(outage.ride(down(), &stop, Some(&notices)).is_ok());
        assert!(outage.ride(down(), &stop, Some(&notices)).is_ok());
        // 200 ms, then 400 ms: backoff between attempts.
        assert!(started.elapsed() >= Duration::from_millis(600));
        outage.recovered(Some(&notices));
        outage.recovered(Some(&notices));
        assert_eq!(
            *heard.lock().unwrap(),
            vec![
                Notice::Unavailable("database unavailable: server closed the connection".into()),
                Notice::Reconnected
            ]
        );
    }

    #[test]
    fn other_errors_end_the_loop() {
        let mut outage = Outage::default();
        let err = Error::InvalidRequest("no".into());
        assert!(outage.ride(err, &StopHandle::new(), None).is_err());
    }
}
