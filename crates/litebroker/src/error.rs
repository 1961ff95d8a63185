//! The library's typed errors, and the one classification of them.
//!
//! Every error has a [`ErrorKind`]: callers map the kind to an exit code (the
//! CLI) or an HTTP status (the server) in one place each, and never look at
//! the wording. Storage failures are opaque ([`Error::Storage`]): the backend's
//! own error travels inside, its text in the message, its type hidden from
//! everything above the seam.

use std::path::PathBuf;

/// What sort of failure an error is: the one thing a transport needs to
/// decide how to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request was malformed or contradictory: a bad name, duration,
    /// header, time bound, setting or record. Retrying it will not help.
    InvalidInput,
    /// What the request names does not exist (an alias, a subscription, a
    /// leased message).
    NotFound,
    /// The request collides with what exists (an alias or subscription name
    /// already taken, an alias cycle).
    Conflict,
    /// A receipt whose lease has ended: the delivery it named is over.
    Stale,
    /// The storage stayed busy (locked by others) beyond every retry; the
    /// same request may succeed later.
    Busy,
    /// A message or request body over the size limit.
    TooLarge,
    /// The database is not one litebroker can use (not SQLite, another
    /// program's, a newer schema).
    Incompatible,
    /// The storage failed (I/O error, disk full, corruption, lost connection).
    Storage,
    /// The database cannot be reached right now (server down or restarting,
    /// connection lost): worth retrying later; a server answers 503.
    Unavailable,
}

/// Everything that can go wrong in a broker operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A queue name broke the naming rules (see [`crate::name`]).
    #[error("Invalid queue name: {0}")]
    InvalidQueueName(String),

    /// A message body is larger than the 10 MiB limit.
    #[error("Message exceeds maximum size of {limit} bytes")]
    MessageTooLarge {
        /// The limit in bytes.
        limit: usize,
    },

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

    /// A subscription operation was refused.
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),

    /// A lease receipt was malformed, unknown or stale.
    #[error(transparent)]
    Receipt(#[from] crate::lease::ReceiptError),

    /// A queue's delivery settings were refused (e.g. its own dead-letter queue).
    #[error("{0}")]
    QueueConfig(String),

    /// An alias operation was refused.
    #[error(transparent)]
    Alias(#[from] AliasError),

    /// An API key of that name (or secret) exists already.
    #[error("an API key named '{0}' already exists")]
    KeyExists(String),

    /// The request itself is contradictory (e.g. moving a queue onto itself).
    #[error("{0}")]
    InvalidRequest(String),

    /// A file exists at the database path but is not a SQLite database.
    #[error("File at {0} exists but is not a valid SQLite database")]
    NotSqlite(PathBuf),

    /// A SQLite database that belongs to some other program or a newer schema.
    #[error("Database at {path} is not a SimpleBroker database ({reason})")]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },

    /// A database this build cannot use as it is: a schema that is newer,
    /// older (needs `broker init`), or not litebroker's.
    #[error("Database at {location} cannot be used: {reason}")]
    Incompatible {
        /// Where the database is (no password).
        location: String,
        /// Why, and what to do.
        reason: String,
    },

    /// Configuration or path resolution failed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// A `dump`/`load` record could not be parsed.
    #[error("line {line}: {reason}")]
    BadRecord {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// The database stayed locked by other processes beyond every retry.
    #[error("database is locked (gave up after {attempts} attempts)")]
    Busy {
        /// How many times the operation was tried.
        attempts: u32,
    },

    /// The storage engine failed; its own error is inside, opaque.
    #[error("database error: {0}")]
    Storage(Box<dyn std::error::Error + Send + Sync>),

    /// The database server cannot be reached or dropped the connection; the
    /// operation in flight may or may not have committed.
    #[error("database unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),

    /// The storage could not write: the disk is full, a file size limit
    /// (`ulimit -f`) was reached, or the write itself failed. Nothing of the
    /// failed transaction was kept.
    #[error("database error: {0}")]
    WriteFailed(Box<dyn std::error::Error + Send + Sync>),

    /// Stored data contradicts itself (e.g. a topic log edited by hand).
    #[error("{0}")]
    Integrity(String),

    /// A filesystem failure (creating the file, the vacuum lock, ...).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Why an alias operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    /// `@name` with no name.
    #[error("Alias name cannot be empty")]
    Empty,
    /// `@name` where no alias `name` is defined.
    #[error("Alias '{0}' is not defined")]
    Undefined(String),
    /// Removing an alias that does not exist.
    #[error("alias '{0}' does not exist")]
    NoSuchAlias(String),
    /// An alias named after its own target.
    #[error("Alias and target must differ")]
    SameAsTarget,
    /// An alias or target written with a leading `@`.
    #[error("Alias and target cannot start with '@'")]
    LeadingAt,
    /// The alias name is taken.
    #[error("Alias '{0}' already exists")]
    Exists(String),
    /// The target is itself an alias.
    #[error("Cannot target another alias")]
    TargetIsAlias,
    /// Adding the alias would close a loop.
    #[error("Alias cycle detected for '{0}'")]
    Cycle(String),
}

/// Why a subscription operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// A subscription of that name exists already.
    #[error("subscription '{0}' already exists")]
    Exists(String),
    /// The name is taken by a plain queue.
    #[error("a queue named '{0}' already exists; a subscription needs a name of its own")]
    NameIsQueue(String),
    /// No subscription of that name.
    #[error("no subscription named '{0}'")]
    Unknown(String),
}

impl Error {
    /// Wraps an I/O error with a short description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a storage engine's own error.
    pub fn storage(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Storage(Box::new(source))
    }

    /// The storage engine's own error, if this is one of type `E`.
    pub fn storage_source<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Storage(inner) | Error::WriteFailed(inner) | Error::Unavailable(inner) => {
                inner.downcast_ref::<E>()
            }
            _ => None,
        }
    }

    /// What sort of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        use crate::lease::ReceiptError;
        match self {
            Error::InvalidQueueName(_)
            | Error::TimeBound(_)
            | Error::Duration(_)
            | Error::Header(_)
            | Error::Topic(_)
            | Error::QueueConfig(_)
            | Error::InvalidRequest(_)
            | Error::Config(_)
            | Error::BadRecord { .. } => ErrorKind::InvalidInput,
            Error::MessageTooLarge { .. } => ErrorKind::TooLarge,
            Error::Receipt(ReceiptError::Malformed(_)) => ErrorKind::InvalidInput,
            Error::Receipt(ReceiptError::Unknown { .. }) => ErrorKind::NotFound,
            Error::Receipt(ReceiptError::Stale(_)) => ErrorKind::Stale,
            Error::Alias(a) => match a {
                AliasError::Undefined(_) | AliasError::NoSuchAlias(_) => ErrorKind::NotFound,
                AliasError::Exists(_) | AliasError::Cycle(_) | AliasError::TargetIsAlias => {
                    ErrorKind::Conflict
                }
                AliasError::Empty | AliasError::SameAsTarget | AliasError::LeadingAt => {
                    ErrorKind::InvalidInput
                }
            },
            Error::Subscription(s) => match s {
                SubscriptionError::Unknown(_) => ErrorKind::NotFound,
                SubscriptionError::Exists(_) | SubscriptionError::NameIsQueue(_) => {
                    ErrorKind::Conflict
                }
            },
            Error::KeyExists(_) => ErrorKind::Conflict,
            Error::NotSqlite(_) | Error::ForeignDatabase { .. } | Error::Incompatible { .. } => {
                ErrorKind::Incompatible
            }
            Error::Busy { .. } => ErrorKind::Busy,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Storage(_) | Error::WriteFailed(_) | Error::Io { .. } | Error::Integrity(_) => {
                ErrorKind::Storage
            }
        }
    }
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_kind_per_meaning() {
        assert_eq!(
            Error::from(AliasError::Undefined("a".into())).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            Error::from(AliasError::SameAsTarget).kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            Error::from(AliasError::Exists("a".into())).kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            Error::from(SubscriptionError::Unknown("s".into())).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            Error::MessageTooLarge { limit: 1 }.kind(),
            ErrorKind::TooLarge
        );
        assert_eq!(Error::Busy { attempts: 3 }.kind(), ErrorKind::Busy);
        let io = std::io::Error::other("disk on fire");
        let storage = Error::storage(io);
        assert_eq!(storage.kind(), ErrorKind::Storage);
        assert!(storage.to_string().contains("disk on fire"));
        assert!(storage.storage_source::<std::io::Error>().is_some());
    }
}
