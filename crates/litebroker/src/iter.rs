//! Iterators over many messages, the Rust form of the reference's generators.
//!
//! [`PeekIter`] pages through a queue without consuming. [`ReadIter`] consumes
//! with custody: a batch is held, each message counts as delivered once the
//! iterator has yielded it, and whatever was not yielded when the iterator is
//! dropped goes back to the queue in place. Breaking out of a loop early never
//! loses messages.

use std::collections::VecDeque;

use crate::backend::Backend;
use crate::error::Result;
use crate::message::{Filter, Message};

/// Messages fetched or held per round trip.
const PAGE: usize = 100;

/// Visible messages, oldest first, without consuming them.
pub struct PeekIter<'a> {
    backend: &'a mut dyn Backend,
    queue: String,
    filter: Filter,
    after_seq: i64,
    page: VecDeque<Message>,
    done: bool,
}

impl<'a> PeekIter<'a> {
    pub(crate) fn new(backend: &'a mut dyn Backend, queue: String, filter: Filter) -> Self {
        PeekIter {
            backend,
            queue,
            filter,
            after_seq: 0,
            page: VecDeque::new(),
            done: false,
        }
    }
}

impl Iterator for PeekIter<'_> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Result<Message>> {
        if self.page.is_empty() && !self.done {
            match self
                .backend
                .peek(&self.queue, &self.filter, self.after_seq, PAGE)
            {
                Ok(page) => {
                    self.done = page.len() < PAGE;
                    self.page = page.into();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let msg = self.page.pop_front()?;
        self.after_seq = msg.seq;
        Some(Ok(msg))
    }
}

/// Messages consumed one by one with custody (see the module docs).
pub struct ReadIter<'a> {
    backend: &'a mut dyn Backend,
    queue: String,
    filter: Filter,
    /// The held batch and how many of it were yielded.
    batch: Vec<Message>,
    yielded: usize,
    failed: bool,
}

impl<'a> ReadIter<'a> {
    pub(crate) fn new(backend: &'a mut dyn Backend, queue: String, filter: Filter) -> Self {
        ReadIter {
            backend,
            queue,
            filter,
            batch: Vec::new(),
            yielded: 0,
            failed: false,
        }
    }

    /// Consumes the yielded part of the batch and releases the rest.
    fn settle_batch(&mut self) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let yielded = std::mem::take(&mut self.yielded);
        if batch.is_empty() {
            return Ok(());
        }
        let consumed = (yielded > 0).then(|| batch[0].seq..=batch[yielded - 1].seq);
        let released =
            (yielded < batch.len()).then(|| batch[yielded].seq..=batch[batch.len() - 1].seq);
        self.backend.settle(consumed, released)
    }
}

impl Iterator for ReadIter<'_> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Result<Message>> {
        if self.failed {
            return None;
        }
        if self.yielded == self.batch.len() {
            let refill = self
                .settle_batch()
                .and_then(|()| self.backend.hold(&self.queue, &self.filter, PAGE));
            match refill {
                Ok(batch) => self.batch = batch,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        let msg = self.batch.get(self.yielded)?.clone();
        self.yielded += 1;
        Some(Ok(msg))
    }
}

impl Drop for ReadIter<'_> {
    fn drop(&mut self) {
        let _ = self.settle_batch();
    }
}
