//! [`Queue`]: the operations on one named queue, in the spirit of the
//! reference's Python `Queue` class.

use std::time::Duration;

use crate::broker::{check_size, Broker};
use crate::delivery::{self, DeliveryError, Pacing, Sink};
use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::iter::{PeekIter, ReadIter};
use crate::lease::{NackOutcome, QueueConfig, Receipt, ReceiptError};
use crate::message::{Filter, Message, Outgoing};

/// Messages fetched per round trip when peeking through a queue.
const PEEK_PAGE: usize = 1000;

/// A handle on one queue of a [`Broker`].
pub struct Queue<'b> {
    broker: &'b mut Broker,
    name: String,
    last_id: Option<i64>,
}

impl<'b> Queue<'b> {
    pub(crate) fn new(broker: &'b mut Broker, name: String) -> Self {
        Queue {
            broker,
            name,
            last_id: None,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends a message and returns its id.
    pub fn write(&mut self, body: &str) -> Result<i64> {
        Ok(self.write_many(&[body])?[0])
    }

    /// Appends several messages in one transaction; returns their ids in order.
    pub fn write_many(&mut self, bodies: &[&str]) -> Result<Vec<i64>> {
        let batch: Vec<Outgoing<'_>> = bodies.iter().map(|b| Outgoing::body(b)).collect();
        self.write_batch(&batch)
    }

    /// Appends a message with headers and/or a delay: it stays invisible to
    /// every reader until `delay` has passed. Returns its id.
    pub fn write_with(
        &mut self,
        body: &str,
        headers: &Headers,
        delay: Option<Duration>,
    ) -> Result<i64> {
        let msg = Outgoing {
            body,
            headers: Some(headers),
            delay,
        };
        Ok(self.write_batch(&[msg])?[0])
    }

    /// Appends messages in one transaction; returns their ids in order.
    pub fn write_batch(&mut self, batch: &[Outgoing<'_>]) -> Result<Vec<i64>> {
        batch.iter().try_for_each(|m| check_size(m.body))?;
        let ids = self.broker.backend().write(&self.name, batch)?;
        self.last_id = ids.last().copied().or(self.last_id);
        Ok(ids)
    }

    /// Appends messages in one transaction, at most once per idempotency
    /// `key` within `keep`: a repeat of a write that committed less than
    /// `keep` ago writes nothing and answers that write's ids, with `true`.
    pub fn write_once(
        &mut self,
        key: &str,
        keep: Duration,
        batch: &[Outgoing<'_>],
    ) -> Result<(Vec<i64>, bool)> {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(Error::InvalidRequest(format!(
                "an idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} bytes"
            )));
        }
        batch.iter().try_for_each(|m| check_size(m.body))?;
        let (ids, repeated) = self
            .broker
            .backend()
            .write_once(&self.name, key, keep, batch)?;
        self.last_id = ids.last().copied().or(self.last_id);
        Ok((ids, repeated))
    }

    /// Leases up to `limit` of the oldest visible messages passing `filter`
    /// for `visibility` (`None`: the queue's configured timeout, 30 s by
    /// default). Each returned message carries its [`Receipt`] and receive
    /// count; it is invisible to every reader until acked, nacked or expired.
    pub fn lease(
        &mut self,
        filter: &Filter,
        limit: usize,
        visibility: Option<Duration>,
    ) -> Result<Vec<Message>> {
        check_visibility(visibility)?;
        self.broker
            .backend()
            .lease(&self.name, filter, limit, visibility)
    }

    /// Like [`Self::deliver`], for leases: what the sink did not take is
    /// returned at once (its receive not counted); what it took stays leased.
    pub fn deliver_leased<S: Sink>(
        &mut self,
        filter: &Filter,
        pacing: Pacing,
        visibility: Option<Duration>,
        sink: &mut S,
    ) -> std::result::Result<usize, DeliveryError<S::Error>> {
        check_visibility(visibility)?;
        delivery::deliver_leased(
            self.broker.backend(),
            &self.name,
            filter,
            pacing,
            visibility,
            sink,
        )
    }

    /// Acknowledges a delivery: the message is consumed for good.
    pub fn ack(&mut self, receipt: &Receipt) -> Result<()> {
        let mut results = self.ack_many(std::slice::from_ref(receipt))?;
        Ok(results.pop().unwrap_or(Ok(()))?)
    }

    /// Acknowledges several deliveries in one transaction; one result each.
    pub fn ack_many(
        &mut self,
        receipts: &[Receipt],
    ) -> Result<Vec<std::result::Result<(), ReceiptError>>> {
        self.broker.backend().ack(&self.name, receipts)
    }

    /// Gives a delivery back: visible again now (or after `delay`) in its
    /// original position, or dead-lettered if it reached the queue's maximum.
    pub fn nack(&mut self, receipt: &Receipt, delay: Option<Duration>) -> Result<NackOutcome> {
        self.broker.backend().nack(&self.name, receipt, delay)
    }

    /// Returns a delivery its consumer never started on: visible again in
    /// place, its receive not counted.
    pub fn give_back(&mut self, receipt: &Receipt) -> Result<()> {
        self.broker
            .backend()
            .give_back(&self.name, std::slice::from_ref(receipt))
    }

    /// Moves a leased message to `dlq` now, with `reason` recorded.
    pub fn dead_letter(&mut self, receipt: &Receipt, dlq: &str, reason: &str) -> Result<()> {
        crate::name::validate_queue_name(dlq)?;
        if dlq == self.name {
            return Err(Error::QueueConfig(format!(
                "queue '{dlq}' cannot be its own dead-letter queue"
            )));
        }
        self.broker
            .backend()
            .dead_letter(&self.name, receipt, dlq, reason)
    }

    /// Extends a live lease: it now expires `visibility` from now.
    pub fn extend(&mut self, receipt: &Receipt, visibility: Duration) -> Result<()> {
        check_visibility(Some(visibility))?;
        self.broker
            .backend()
            .extend(&self.name, receipt, visibility)
    }

    /// This queue's delivery settings.
    pub fn config(&mut self) -> Result<QueueConfig> {
        self.broker.backend().queue_config(&self.name)
    }

    /// Removes and returns the oldest message, exactly once: it is consumed
    /// when this returns, whatever the caller does next.
    pub fn read(&mut self) -> Result<Option<Message>> {
        Ok(self.read_many(&Filter::all(), 1)?.pop())
    }

    /// Removes and returns up to `limit` of the oldest messages passing `filter`.
    pub fn read_many(&mut self, filter: &Filter, limit: usize) -> Result<Vec<Message>> {
        self.broker.backend().read(&self.name, filter, limit)
    }

    /// Delivers messages into `sink` with custody: each is consumed only once
    /// the sink has taken it, and whatever it did not take stays in place.
    pub fn deliver<S: Sink>(
        &mut self,
        filter: &Filter,
        pacing: Pacing,
        sink: &mut S,
    ) -> std::result::Result<usize, DeliveryError<S::Error>> {
        delivery::deliver(self.broker.backend(), &self.name, filter, pacing, sink)
    }

    /// The oldest visible message passing `filter`, left in place.
    pub fn peek(&mut self, filter: &Filter) -> Result<Option<Message>> {
        Ok(self.broker.backend().peek(&self.name, filter, 0, 1)?.pop())
    }

    /// Every visible message passing `filter`, oldest first, fetched page by
    /// page so that memory stays bounded however long the queue is.
    pub fn peek_each(
        &mut self,
        filter: &Filter,
        mut visit: impl FnMut(&Message) -> Result<()>,
    ) -> Result<usize> {
        let (mut after, mut seen) = (0, 0);
        loop {
            let page = self
                .broker
                .backend()
                .peek(&self.name, filter, after, PEEK_PAGE)?;
            let Some(last) = page.last() else {
                return Ok(seen);
            };
            after = last.seq;
            seen += page.len();
            page.iter().try_for_each(&mut visit)?;
        }
    }

    /// Up to `limit` stored messages from where `from` says (after a storage
    /// position, oldest first, or before one, newest first), visible, leased
    /// and delayed alike, without consuming or leasing (an inventory, e.g. a
    /// server listing a queue with each message's state). Page on with the
    /// last message's `seq`.
    pub fn browse(
        &mut self,
        from: crate::backend::BrowseFrom,
        limit: usize,
    ) -> Result<Vec<crate::backend::Browsed>> {
        self.broker.backend().browse(&self.name, from, limit)
    }

    /// Replaces the body and headers of message `id` (visible, leased or
    /// delayed) in place, keeping its position, receive count and lease.
    /// False if the queue has no such message.
    pub fn replace(&mut self, id: i64, body: &str, headers: &Headers) -> Result<bool> {
        check_size(body)?;
        headers.check_size()?;
        self.broker
            .backend()
            .replace_message(&self.name, id, body, headers)
    }

    /// Iterates over visible messages passing `filter`, oldest first, without consuming.
    pub fn peek_iter(&mut self, filter: &Filter) -> PeekIter<'_> {
        PeekIter::new(self.broker.backend(), self.name.clone(), *filter)
    }

    /// Iterates over messages passing `filter`, consuming each as it is yielded;
    /// messages not yet yielded when the iterator is dropped stay in the queue.
    pub fn read_iter(&mut self, filter: &Filter) -> ReadIter<'_> {
        ReadIter::new(self.broker.backend(), self.name.clone(), *filter)
    }

    /// Moves up to `limit` messages passing `filter` to `dst`, oldest first.
    /// With an exact id (`filter.id`), a consumed message is moved too and so revived.
    pub fn move_to(&mut self, dst: &str, filter: &Filter, limit: usize) -> Result<Vec<Message>> {
        crate::name::validate_queue_name(dst)?;
        crate::name::check_distinct(&self.name, dst)?;
        let revive = filter.id.is_some();
        self.broker
            .backend()
            .move_messages(&self.name, dst, filter, limit, revive)
    }

    /// Deletes every message of the queue.
    pub fn delete(&mut self) -> Result<u64> {
        self.broker.backend().delete_queue(&self.name)
    }

    /// Consumes the visible message `id`; false if there is none.
    pub fn delete_message(&mut self, id: i64) -> Result<bool> {
        self.broker.backend().delete_message(&self.name, id)
    }

    /// A new id from the database's sequence, without writing a message.
    pub fn generate_id(&mut self) -> Result<i64> {
        let id = self.broker.generate_id()?;
        self.last_id = Some(id);
        Ok(id)
    }

    /// The most recent id this handle has seen (`None` until it writes,
    /// generates or refreshes).
    pub fn last_id(&self) -> Option<i64> {
        self.last_id
    }

    /// How long until the next leased or delayed message becomes visible by
    /// itself (no commit announces that); `None` if there is none.
    pub fn until_visible(&mut self) -> Result<Option<Duration>> {
        self.broker.backend().until_visible(&self.name)
    }

    /// Re-reads the database's id high-water mark (detects other writers).
    pub fn refresh_last_id(&mut self) -> Result<i64> {
        let id = self.broker.last_id()?;
        self.last_id = Some(id);
        Ok(id)
    }
}

/// The longest idempotency key accepted, bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;

/// The longest lease accepted (as SQS: 12 hours).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// Refuses a zero lease (it would expire before anyone could ack it) and one
/// over [`MAX_VISIBILITY`].
pub(crate) fn check_visibility(visibility: Option<Duration>) -> Result<()> {
    match visibility {
        Some(v) if v.is_zero() => Err(Error::QueueConfig(
            "a lease must last longer than zero".into(),
        )),
        Some(v) if v > MAX_VISIBILITY => Err(Error::QueueConfig(format!(
            "a lease cannot last longer than {}",
            crate::duration::format_duration(MAX_VISIBILITY)
        ))),
        _ => Ok(()),
    }
}

/// The checks a delivery setup of `queue` must pass wherever it comes from
/// (`queue config`, `run`): a usable lease length, a dead-letter queue with
/// a valid name other than `queue`, a receive limit of at least one. Whether
/// a limit has a dead-letter queue to go with it is the caller's to say, in
/// its own words.
pub(crate) fn check_delivery(
    queue: &str,
    visibility: Option<Duration>,
    dead_letter: Option<&str>,
    max_receives: Option<u32>,
) -> Result<()> {
    check_visibility(visibility)?;
    if let Some(dlq) = dead_letter {
        crate::name::validate_queue_name(dlq)?;
        if dlq == queue {
            return Err(Error::QueueConfig(format!(
                "queue '{queue}' cannot be its own dead-letter queue"
            )));
        }
    }
    if max_receives == Some(0) {
        return Err(Error::QueueConfig("max receives must be at least 1".into()));
    }
    Ok(())
}
