//! litebroker: a message broker library that is file-compatible with SimpleBroker.
//!
//! The library never prints and never exits; the `broker` binary and the server
//! are thin layers over it. Storage sits behind [`backend::Backend`] so that a
//! PostgreSQL backend can be added without touching callers.

pub mod backend;
pub mod broker;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod duration;
pub mod error;
pub mod glob;
pub mod headers;
pub mod holder;
pub mod id;
pub mod iter;
pub mod lease;
pub mod location;
pub mod message;
pub mod name;
pub mod pubsub;
pub mod pynum;
pub mod queue;
pub mod ticker;
pub mod timebound;
pub mod topic;
pub mod watch;
pub mod worker;

pub use broker::{Broker, QueueStats, Status, VacuumReport};
pub use config::{PollOptions, Settings, SqliteOptions};
pub use error::{Error, Result};
pub use headers::{HeaderValue, Headers};
pub use lease::{NackOutcome, QueueConfig, Receipt};
pub use location::LocationOptions;
pub use message::{Message, Outgoing};
pub use pubsub::{Published, StartFrom, Subscription};
pub use queue::Queue;
