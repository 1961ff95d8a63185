//! The message model shared by every backend and every front end.

use crate::headers::Headers;
use crate::lease::{DeadLetter, Receipt};
use crate::pubsub::Origin;

/// One stored message, as a reader receives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// The public id: a hybrid timestamp, unique across the database.
    pub id: i64,
    /// The body, UTF-8 text (any content, including newlines and NUL).
    pub body: String,
    /// Storage position (insertion order). FIFO order is by `seq`, not by `id`:
    /// under concurrency the two can differ, exactly as in the reference.
    pub seq: i64,
    /// Headers given when it was written (empty for most messages).
    pub headers: Headers,
    /// How many times it has been leased (0 if never).
    pub receives: u32,
    /// Set when this delivery is a lease: what acks, nacks or extends it.
    pub receipt: Option<Receipt>,
    /// Set when the message was moved to a dead-letter queue.
    pub dead_letter: Option<DeadLetter>,
    /// Set when it reached this queue through a subscription: topic and offset.
    pub origin: Option<Origin>,
}

impl Message {
    /// A plain message (no headers, never leased).
    pub fn new(id: i64, body: impl Into<String>, seq: i64) -> Self {
        Message {
            id,
            body: body.into(),
            seq,
            ..Message::default()
        }
    }
}

/// A message to be written: its body, and optionally headers and a delay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outgoing<'a> {
    /// The body.
    pub body: &'a str,
    /// Headers to store with it.
    pub headers: Option<&'a Headers>,
    /// Invisible for this long after it is written, if set (measured on the
    /// database's clock, so hosts with skewed clocks agree).
    pub delay: Option<std::time::Duration>,
}

impl<'a> Outgoing<'a> {
    /// A plain message.
    pub fn body(body: &'a str) -> Self {
        Outgoing {
            body,
            ..Outgoing::default()
        }
    }
}

/// A message together with the queue it lives in (dumps, broadcasts).
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    /// The queue holding the message.
    pub queue: String,
    /// The message itself.
    pub message: Message,
}

/// Largest body the broker accepts, in bytes of UTF-8 (10 MiB, as the reference).
pub const MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;

/// Which messages of a queue an operation applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only the message with this id.
    pub id: Option<i64>,
    /// Only messages with `id > after` (`--since` / `--after`).
    pub after: Option<i64>,
    /// Only messages with `id < before` (`--before`).
    pub before: Option<i64>,
}

impl Filter {
    /// Matches every message.
    pub fn all() -> Self {
        Filter::default()
    }

    /// Matches the message with id `id` only.
    pub fn by_id(id: i64) -> Self {
        Filter {
            id: Some(id),
            ..Filter::default()
        }
    }

    /// Whether `id` passes this filter (used by backends that filter in memory).
    pub fn matches(&self, id: i64) -> bool {
        self.id.is_none_or(|want| want == id)
            && self.after.is_none_or(|a| id > a)
            && self.before.is_none_or(|b| id < b)
    }
}
