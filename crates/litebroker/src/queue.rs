//! [`Queue`]: the operations on one named queue, in the spirit of the
//! reference's Python `Queue` class.

use crate::broker::{check_size, Broker};
use crate::delivery::{self, DeliveryError, Pacing, Sink};
use crate::error::{Error, Result};
use crate::iter::{PeekIter, ReadIter};
use crate::message::{Filter, Message};

/// Messages fetched per round trip when peeking through a queue.
const PEEK_PAGE: usize = 1000;

/// A handle on one queue of a [`Broker`].
pub struct Queue<'b> {
    broker: &'b mut Broker,
    name: String,
    last_ts: Option<i64>,
}

impl<'b> Queue<'b> {
    pub(crate) fn new(broker: &'b mut Broker, name: String) -> Self {
        Queue {
            broker,
            name,
            last_ts: None,
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
        bodies.iter().try_for_each(|b| check_size(b))?;
        let ids = self.broker.backend().write(&self.name, bodies)?;
        self.last_ts = ids.last().copied().or(self.last_ts);
        Ok(ids)
    }

    /// Removes and returns the oldest message, exactly once: it is consumed
    /// when this returns, whatever the caller does next.
    pub fn read(&mut self) -> Result<Option<Message>> {
        Ok(self.read_many(&Filter::all(), 1)?.pop())
    }

    /// Removes and returns up to `limit` of the oldest messages passing `filter`.
    pub fn read_many(&mut self, filter: &Filter, limit: usize) -> Result<Vec<Message>> {
        self.broker.backend().claim(&self.name, filter, limit)
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
        if dst == self.name {
            return Err(Error::InvalidRequest(
                "Source and target queues cannot be the same".into(),
            ));
        }
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
    pub fn generate_timestamp(&mut self) -> Result<i64> {
        let id = self.broker.generate_timestamp()?;
        self.last_ts = Some(id);
        Ok(id)
    }

    /// The most recent id this handle has seen (`None` until it writes,
    /// generates or refreshes).
    pub fn last_ts(&self) -> Option<i64> {
        self.last_ts
    }

    /// Re-reads the database's id high-water mark (detects other writers).
    pub fn refresh_last_ts(&mut self) -> Result<i64> {
        let id = self.broker.last_timestamp()?;
        self.last_ts = Some(id);
        Ok(id)
    }
}
