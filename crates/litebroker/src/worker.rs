//! [`Worker`]: a consumer loop on leases. Each message is leased, handed to a
//! handler, then acknowledged if the handler succeeded, or given back with an
//! exponential backoff if it failed; a message that keeps failing goes to a
//! dead-letter queue. While the handler runs, a heartbeat keeps the lease
//! alive, so a long job is not delivered twice. `broker run` is this loop with
//! a child process as the handler.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::Connector;
use crate::error::{Error, Result};
use crate::lease::{NackOutcome, Receipt};
use crate::message::{Filter, Message};
use crate::name::validate_queue_name;
use crate::policy;
use crate::ticker::Ticker;
use crate::watch::{NoticeFn, Outage, StopHandle, Waiter};
use crate::Broker;

/// The longest backoff between two attempts at a failing message (as SQS's longest delay).
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// How a worker leases and retries.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Lease length (`None`: the queue's visibility timeout).
    pub visibility: Option<Duration>,
    /// Receives after which a failing message is dead-lettered.
    pub max_receives: Option<u32>,
    /// Where such messages go (`None`: the queue's configured dead-letter queue).
    pub dead_letter: Option<String>,
    /// Delay before the first retry; it doubles with every receive, up to [`MAX_BACKOFF`].
    pub backoff: Duration,
    /// Stop once nothing is visible (and no retry this worker scheduled is
    /// still waiting out its backoff) instead of waiting for more.
    pub drain: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            visibility: None,
            max_receives: None,
            dead_letter: None,
            backoff: Duration::from_secs(1),
            drain: false,
        }
    }
}

/// What the handler made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Processed: acknowledge it.
    Done,
    /// Failed for this reason: retry later, or dead-letter past the limit.
    Failed(String),
    /// Not attempted (e.g. the worker is shutting down): give it back at once, uncounted.
    GiveBack,
}

/// What the worker did with a message after its handler returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged: gone for good.
    Acked,
    /// Given back; visible again after this delay.
    Retry(Duration),
    /// Moved to this dead-letter queue.
    DeadLettered(String),
    /// Given back at once, its receive not counted.
    GivenBack,
    /// The lease had already ended (so the message will be delivered again).
    LeaseLost(String),
}

/// Counts of what a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages acknowledged.
    pub acked: u64,
    /// Failures given back for a retry.
    pub retried: u64,
    /// Messages moved to a dead-letter queue.
    pub dead_lettered: u64,
}

/// What one pass of [`Worker::run`] did.
enum Pass {
    /// Handled a message, or waited.
    Went,
    /// `drain`: nothing is left.
    Drained,
}

/// A consumer loop over one queue (see the module docs).
#[derive(Clone)]
pub struct Worker {
    connector: Arc<dyn Connector>,
    queue: String,
    options: WorkerOptions,
    /// The retry limit and where messages go past it.
    limit: Option<(u32, String)>,
    stop: StopHandle,
    notices: Option<NoticeFn>,
}

impl Worker {
    /// A worker on `queue` of the database `connector` opens. Refuses a receive limit without a
    /// dead-letter queue (neither given nor configured for the queue): the
    /// messages past it would have nowhere to go.
    pub fn new(connector: Arc<dyn Connector>, queue: &str, options: WorkerOptions) -> Result<Self> {
        validate_queue_name(queue)?;
        let mut broker = Broker::connect(connector.clone())?;
        let config = broker.queue(queue)?.config()?;
        let dlq = options.dead_letter.clone().or(config.dead_letter);
        crate::queue::check_delivery(
            queue,
            options.visibility,
            dlq.as_deref(),
            options.max_receives,
        )?;
        let limit = match (options.max_receives, dlq) {
            (Some(max), Some(dlq)) => Some((max, dlq)),
            (Some(_), None) => {
                return Err(Error::QueueConfig(format!(
                    "--max-receives needs a dead-letter queue: pass --dead-letter or set one \
                     with 'broker queue config {queue} --dead-letter <queue>'"
                )))
            }
            (None, _) => None,
        };
        Ok(Worker {
            connector,
            queue: queue.to_owned(),
            options,
            limit,
            stop: StopHandle::new(),
            notices: None,
        })
    }

    /// A handle that stops the worker after the message it is on.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Uses `stop` instead of the worker's own stop handle.
    pub fn with_stop(mut self, stop: StopHandle) -> Self {
        self.stop = stop;
        self
    }

    /// Hears when the database becomes unavailable and when it is back (the
    /// worker keeps going meanwhile; a lease it could not settle runs out and
    /// the message is delivered again).
    pub fn with_notices(mut self, notices: NoticeFn) -> Self {
        self.notices = Some(notices);
        self
    }

    /// Runs until stopped (or, with `drain`, until nothing is visible).
    /// `observe` hears what became of every message.
    pub fn run(
        &self,
        mut handler: impl FnMut(&Message) -> Verdict,
        mut observe: impl FnMut(&Message, &Outcome),
    ) -> Result<Summary> {
        let mut broker = Broker::connect(self.connector.clone())?;
        let mut waiter = Waiter::new(broker.changes());
        let mut summary = Summary::default();
        // With `drain`, retries this worker scheduled are waited for: draining
        // means every message was acked or dead-lettered, not merely postponed.
        let mut retries_due = i64::MIN;
        let mut outage = Outage::default();
        while !self.stop.is_stopped() {
            let pass = self.pass(
                &mut broker,
                &mut waiter,
                &mut summary,
                &mut retries_due,
                &mut handler,
                &mut observe,
            );
            match pass {
                Ok(Pass::Drained) => break,
                Ok(Pass::Went) => outage.recovered(self.notices.as_ref()),
                Err(e) => outage.ride(e, &self.stop, self.notices.as_ref())?,
            }
        }
        Ok(summary)
    }

    /// Leases and handles one message, or waits for one.
    fn pass(
        &self,
        broker: &mut Broker,
        waiter: &mut Waiter,
        summary: &mut Summary,
        retries_due: &mut i64,
        handler: &mut impl FnMut(&Message) -> Verdict,
        observe: &mut impl FnMut(&Message, &Outcome),
    ) -> Result<Pass> {
        waiter.mark();
        let leased =
            broker
                .queue(&self.queue)?
                .lease(&Filter::all(), 1, self.options.visibility)?;
        let Some(msg) = leased.into_iter().next() else {
            if self.options.drain && broker.now_ns()? >= *retries_due {
                return Ok(Pass::Drained);
            }
            let longest = self
                .until_next_due(broker)?
                .min(self.connector.rescan_every());
            waiter.wait(&self.stop, longest);
            return Ok(Pass::Went);
        };
        waiter.activity();
        let outcome = self.handle(broker, &msg, handler)?;
        match outcome {
            Outcome::Acked => summary.acked += 1,
            Outcome::Retry(delay) => {
                let due = crate::clock::after(broker.now_ns()?, delay);
                *retries_due = (*retries_due).max(due);
                summary.retried += 1;
            }
            Outcome::DeadLettered(_) => summary.dead_lettered += 1,
            Outcome::GivenBack | Outcome::LeaseLost(_) => {}
        }
        observe(&msg, &outcome);
        Ok(Pass::Went)
    }

    fn handle(
        &self,
        broker: &mut Broker,
        msg: &Message,
        handler: &mut impl FnMut(&Message) -> Verdict,
    ) -> Result<Outcome> {
        let receipt = msg.receipt.expect("a leased message has a receipt");
        if let Some((max, dlq)) = &self.limit {
            if let Some(reason) = policy::consumer_gives_up(msg.receives, *max, None) {
                return self.give_up(broker, &receipt, dlq, &reason);
            }
        }
        let visibility = match self.options.visibility {
            Some(v) => v,
            None => broker.queue(&self.queue)?.config()?.effective_visibility(),
        };
        let verdict = {
            let _heartbeat = heartbeat(self, receipt, visibility);
            handler(msg)
        };
        self.settle(broker, msg, &receipt, verdict)
    }

    fn settle(
        &self,
        broker: &mut Broker,
        msg: &Message,
        receipt: &Receipt,
        verdict: Verdict,
    ) -> Result<Outcome> {
        let mut q = broker.queue(&self.queue)?;
        let result = match verdict {
            Verdict::Done => q.ack(receipt).map(|()| Outcome::Acked),
            Verdict::GiveBack => q.give_back(receipt).map(|()| Outcome::GivenBack),
            Verdict::Failed(reason) => {
                let limit = self.limit.as_ref().and_then(|(max, dlq)| {
                    policy::consumer_gives_up(msg.receives, *max, Some(&reason))
                        .map(|why| (dlq, why))
                });
                match limit {
                    Some((dlq, why)) => return self.give_up(broker, receipt, dlq, &why),
                    None => self.retry(&mut q, msg, receipt),
                }
            }
        };
        lease_lost_is_an_outcome(result)
    }

    /// Gives a failed message back, visible again after the backoff.
    fn retry(&self, q: &mut crate::Queue<'_>, msg: &Message, receipt: &Receipt) -> Result<Outcome> {
        let delay = backoff(self.options.backoff, msg.receives);
        q.nack(receipt, Some(delay)).map(|out| match out {
            NackOutcome::DeadLettered(dlq) => Outcome::DeadLettered(dlq),
            NackOutcome::Requeued | NackOutcome::Delayed(_) => Outcome::Retry(delay),
        })
    }

    fn give_up(
        &self,
        broker: &mut Broker,
        receipt: &Receipt,
        dlq: &str,
        reason: &str,
    ) -> Result<Outcome> {
        let result = broker
            .queue(&self.queue)?
            .dead_letter(receipt, dlq, reason)
            .map(|()| Outcome::DeadLettered(dlq.to_owned()));
        lease_lost_is_an_outcome(result)
    }

    fn until_next_due(&self, broker: &mut Broker) -> Result<Duration> {
        let wait = broker.queue(&self.queue)?.until_visible()?;
        Ok(wait.unwrap_or(Duration::MAX))
    }
}

/// A receipt refused because the lease ended is something that happened to
/// the message, not a failure of the worker.
fn lease_lost_is_an_outcome(result: Result<Outcome>) -> Result<Outcome> {
    match result {
        Err(Error::Receipt(e)) => Ok(Outcome::LeaseLost(e.to_string())),
        other => other,
    }
}

/// The delay before retrying a message that failed on its `receives`-th delivery.
pub fn backoff(first: Duration, receives: u32) -> Duration {
    policy::backoff(first, receives, MAX_BACKOFF)
}

/// Keeps one lease alive while its handler runs: every third of the lease it
/// extends it by a whole lease, on its own connection (opened only once a
/// handler outlives a third of its lease). Stops when dropped.
fn heartbeat(worker: &Worker, receipt: Receipt, visibility: Duration) -> Ticker {
    let queue = worker.queue.clone();
    let every = (visibility / 3).max(Duration::from_millis(10));
    crate::ticker::on_own_connection(worker.connector.clone(), every, move |b| {
        // A refused extension means the lease is gone: nothing left to keep alive.
        b.queue(&queue)
            .and_then(|mut q| q.extend(&receipt, visibility))
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Duration::from_secs(1);
        assert_eq!(backoff(s, 1), s);
        assert_eq!(backoff(s, 2), s * 2);
        assert_eq!(backoff(s, 4), s * 8);
        assert_eq!(backoff(s, 40), MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 5), Duration::ZERO);
    }
}
