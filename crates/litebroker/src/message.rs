//! The message model shared by every backend and every front end.

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The public id: a hybrid timestamp, unique across the database.
    pub id: i64,
    /// The body, UTF-8 text (any content, including newlines and NUL).
    pub body: String,
    /// Storage position (insertion order). FIFO order is by `seq`, not by `id`:
    /// under concurrency the two can differ, exactly as in the reference.
    pub seq: i64,
}

/// A message together with the queue it lives in (dumps, broadcasts).
#[derive(Debug, Clone, PartialEq, Eq)]
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
