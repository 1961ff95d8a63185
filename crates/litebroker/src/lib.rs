//! litebroker: a message broker library that is file-compatible with SimpleBroker.
//!
//! The library never prints and never exits; the `broker` binary and the
//! servers are thin layers over it. Storage sits behind a seam
//! ([`backend::Connector`] opens connections, [`backend::Backend`] is one
//! connection's transactions, [`backend::ChangeFeed`] wakes waiters), so a
//! backend or a transport is added without touching the callers. The rules
//! that must not differ between backends live in [`policy`].
//! `ARCHITECTURE.md` at the repository root is the map; the glossary there
//! fixes one name per idea.
//!
//! # Layout, in reading order
//!
//! **The model** — what a message and a queue are:
//! - [`message`]: [`Message`], [`Outgoing`], [`message::Filter`].
//! - [`id`]: 64-bit hybrid-timestamp ids, shared with the reference.
//! - [`name`], [`topic`], [`glob`]: the naming rules and the matchers.
//! - [`headers`], [`lease`] (receipts, queue settings), [`error`] (kinds).
//!
//! **The API** — what a caller uses:
//! - [`broker`]: [`Broker`], one connection plus its connector; cross-queue
//!   operations, aliases, vacuum, dump/load.
//! - [`queue`]: [`Queue`], the operations on one queue (write, read, peek,
//!   move, lease, ack, nack, ...).
//! - [`pubsub`]: topics, subscriptions, request/reply.
//! - [`delivery`]: lossless delivery into a [`delivery::Sink`] (hold,
//!   deliver, settle).
//! - [`iter`]: paged iterators over a queue.
//!
//! **The rules** — decided once, above the seam:
//! - [`policy`]: dead letters and their reasons, lease deadlines, receipt
//!   fencing, retention, retry backoff.
//!
//! **Running things** — loops that wait for messages, given a connector:
//! - [`watch`]: [`watch::Watcher`] and the [`watch::Waiter`] on the change feed.
//! - [`worker`]: [`worker::Worker`], the loop behind `broker run`.
//! - [`ticker`]: timeouts and heartbeats on their own thread/connection.
//! - [`presence`]: which members are connected to what through this
//!   process's servers (for the dashboard).
//!
//! **Parsing user input**:
//! - [`timebound`] (`--since`), [`duration`] (`30s`, `1h30m`), [`pynum`]
//!   (the one port of Python's `int()`/`float()`), [`config`] (`BROKER_*`
//!   settings: SQLite options, polling options); [`location`] (where the
//!   database file is: `-d`/`-f`, project scope) lives with the SQLite backend.
//!
//! **The seam and the backends**:
//! - [`backend`]: `Connector`, `Backend`, `ChangeFeed`;
//!   [`backend::sqlite`]: the file (pragmas, `data_version` + inotify,
//!   holder files, the schema shared with the reference);
//!   [`backend::postgres`]: many hosts on one PostgreSQL database (SKIP
//!   LOCKED, advisory-lock custody, LISTEN/NOTIFY).
//! - [`clock`]: the clock deadlines are measured on (tests move it by hand).

#![warn(missing_docs)]

// The model.
pub mod error;
pub mod glob;
pub mod headers;
pub mod id;
pub mod lease;
pub mod message;
pub mod name;
pub mod topic;
// The API.
pub mod broker;
pub mod delivery;
pub mod iter;
pub mod pubsub;
pub mod queue;
// The rules.
pub mod policy;
// Running things.
pub mod presence;
pub mod ticker;
pub mod watch;
pub mod worker;
// Parsing user input.
pub mod config;
pub mod duration;
pub mod pynum;
pub mod timebound;
// The seam and the backends.
pub mod backend;
pub mod clock;

/// Where the SQLite database file is (`-d`/`-f`, project scope), like
/// SimpleBroker: a concern of the file backend, re-exported for the CLI.
pub use backend::sqlite::location;
pub use backend::{BrowseFrom, ChangeFeed, Connector};
pub use broker::{Broker, QueueStats, Status, VacuumReport};
pub use config::{PollOptions, Settings, SqliteOptions};
pub use error::{Error, ErrorKind, Result};
pub use headers::{HeaderValue, Headers};
pub use lease::{NackOutcome, QueueConfig, Receipt};
pub use location::LocationOptions;
pub use message::{Message, Outgoing};
pub use presence::Presence;
pub use pubsub::{Published, StartFrom, Subscription};
pub use queue::Queue;
