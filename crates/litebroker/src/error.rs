//! The library's typed errors.
//!
//! Callers (the CLI, the server) map these to exit codes or HTTP statuses in one
//! place each; the library itself never decides how an error is shown.

use std::path::PathBuf;

/// Everything that can go wrong in a broker operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A queue name broke the naming rules (see [`crate::name`]).
    #[error("Invalid queue name: {0}")]
    InvalidQueueName(String),

    /// A message body is larger than the 10 MiB limit.
    #[error("Message exceeds maximum size of {limit} bytes")]
    MessageTooLarge { limit: usize },

    /// A time bound could not be parsed.
    #[error(transparent)]
    TimeBound(#[from] crate::timebound::TimeBoundError),

    /// A duration (lease, delay, visibility) could not be parsed.
    #[error(transparent)]
    Duration(#[from] crate::duration::DurationError),

    /// A header was malformed or too large.
    #[error(transparent)]
    Header(#[from] crate::headers::HeaderError),

    /// A topic name or subscription pattern broke the naming rules.
    #[error(transparent)]
    Topic(#[from] crate::topic::TopicError),

    /// A subscription operation was refused (name taken, unknown subscription).
    #[error("{0}")]
    Subscription(String),

    /// A lease receipt was malformed, unknown or stale.
    #[error(transparent)]
    Receipt(#[from] crate::lease::ReceiptError),

    /// A queue's delivery settings were refused (e.g. its own dead-letter queue).
    #[error("{0}")]
    QueueConfig(String),

    /// An alias operation was refused (duplicate, cycle, unknown alias, ...).
    #[error("{0}")]
    Alias(String),

    /// The request itself is contradictory (e.g. moving a queue onto itself).
    #[error("{0}")]
    InvalidRequest(String),

    /// A file exists at the database path but is not a SQLite database.
    #[error("File at {0} exists but is not a valid SQLite database")]
    NotSqlite(PathBuf),

    /// A SQLite database that belongs to some other program or a newer schema.
    #[error("Database at {path} is not a SimpleBroker database ({reason})")]
    ForeignDatabase { path: PathBuf, reason: String },

    /// Configuration or path resolution failed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// A `dump`/`load` record could not be parsed.
    #[error("line {line}: {reason}")]
    BadRecord { line: usize, reason: String },

    /// The database stayed locked by other processes beyond every retry.
    #[error("database is locked (gave up after {attempts} attempts)")]
    Locked { attempts: u32 },

    /// Any other SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// A filesystem failure (creating the file, the vacuum lock, ...).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with a short description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
