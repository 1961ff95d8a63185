//! The storage seam: a [`Connector`] that opens connections and hands out
//! the database's [`ChangeFeed`], and the transactional primitives every
//! connection ([`Backend`]) provides.
//!
//! Each `Backend` method is one atomic unit (one transaction). Higher layers
//! ([`crate::Queue`], [`crate::Broker`], [`crate::watch::Watcher`],
//! [`crate::worker::Worker`]) compose them and hold no storage logic of
//! their own; the rules (dead letters, retention, receipt fencing) come from
//! [`crate::policy`], so a PostgreSQL backend only implements storage.

pub mod feed;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

pub use feed::{ChangeFeed, ChangeSource, Listener};

/// Opens connections to one database and owns its change feed. Shared by
/// every part of a process that works on that database (`Send + Sync`):
/// a watcher, a worker's heartbeat, a server's request handlers each
/// [`connect`](Connector::connect) their own connection, and every waiter
/// blocks on the one [`ChangeFeed`].
pub trait Connector: Send + Sync {
    /// A new connection (its own transactions, its own custody).
    fn connect(&self) -> Result<Box<dyn Backend>>;

    /// The feed that wakes waiters when any connection commits (one per
    /// connector; created on first use).
    fn changes(&self) -> ChangeFeed;

    /// Where the database is, for messages (a path, a URL without password).
    fn describe(&self) -> String;

    /// How often an idle waiter looks again without any sign of change: no
    /// commit announces that a holder died (its messages come back when
    /// someone next takes) or that a lease ran out.
    fn rescan_every(&self) -> std::time::Duration {
        crate::watch::RESCAN_EVERY
    }
}

use std::sync::Arc;
use std::time::Duration;

use crate::broker::QueueStats;
use crate::clock::Clock;
use crate::error::Result;
use crate::lease::{NackOutcome, QueueConfig, Receipt, ReceiptError};
use crate::message::{Filter, Message, Outgoing, QueuedMessage};
use crate::pubsub::{NewSubscription, Published, Retention, SubscriptionInfo, TopicInfo};

/// An inclusive range of storage positions ([`Message::seq`]).
pub type SeqRange = std::ops::RangeInclusive<i64>;

/// Whole-database counters for `--status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbCounters {
    /// Every stored message row, consumed ones included.
    pub total_messages: u64,
    /// The id high-water mark (`meta.last_ts`).
    pub last_id: i64,
}

/// Per-queue counts of messages that are stored but not visible for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredCounts {
    /// Queue name.
    pub queue: String,
    /// Messages leased to a consumer right now.
    pub leased: u64,
    /// Messages waiting out a delay (delayed writes, nacks with a delay).
    pub delayed: u64,
}

/// Messages written since an id, per queue ([`Backend::arrivals`]): what
/// a server counts as traffic in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arrivals {
    /// Per queue with any, how many (by name).
    pub queues: Vec<(String, u64)>,
    /// The highest id among them (the `after_id` given, if none): where the
    /// next count starts.
    pub last_id: i64,
}

/// Where [`Backend::browse`] starts, and which way it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowseFrom {
    /// Messages after this storage position, oldest first (0: from the oldest).
    After(i64),
    /// Messages before this storage position, newest first (`i64::MAX`: from
    /// the newest).
    Before(i64),
}

/// A stored message as [`Backend::browse`] sees it: visible, leased or delayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Browsed {
    /// The message (headers and receive count filled in; never a receipt).
    pub message: Message,
    /// When a leased or delayed message becomes visible again (Unix ns on
    /// the database's clock); `None` for a visible one.
    pub visible_at: Option<i64>,
}

/// An API key as stored: never its secret, only a hash of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key's name (unique).
    pub name: String,
    /// A hash of the secret (the server's business: storage compares nothing).
    pub secret_hash: String,
    /// What the key may do, in the server's notation (opaque to storage).
    pub grants: String,
    /// When it was created (Unix ns).
    pub created_ns: i64,
}

/// Storage operations. Every method is atomic.
pub trait Backend: Send {
    /// Uses `clock` for lease expiry and delays (message ids always use the real clock).
    fn set_clock(&mut self, clock: Arc<dyn Clock>);

    /// Appends `messages` to `queue` in one transaction and returns their new ids.
    fn write(&mut self, queue: &str, messages: &[Outgoing<'_>]) -> Result<Vec<i64>>;

    /// Like [`Backend::write`], at most once per `key` and queue within
    /// `keep`: if a write with the same key to the same queue committed less
    /// than `keep` ago (on the database's clock), nothing is written and the
    /// ids that write got are returned with `true`. The record of the key
    /// commits with the messages, in one transaction.
    fn write_once(
        &mut self,
        queue: &str,
        key: &str,
        keep: Duration,
        messages: &[Outgoing<'_>],
    ) -> Result<(Vec<i64>, bool)>;

    /// Inserts messages with the ids they already have (restoring a dump), in
    /// one transaction, raising the id high-water mark past them. Fails, writing
    /// nothing, if a record is malformed or an id is already taken.
    fn insert_with_ids(
        &mut self,
        records: &mut dyn Iterator<Item = Result<QueuedMessage>>,
    ) -> Result<u64>;

    /// Reserves and returns a new id without writing a message.
    fn generate_id(&mut self) -> Result<i64>;

    /// The id high-water mark as currently stored.
    fn last_id(&mut self) -> Result<i64>;

    /// Consumes up to `limit` visible messages (oldest first) and returns them:
    /// exactly-once, committed before they are returned.
    fn read(&mut self, queue: &str, filter: &Filter, limit: usize) -> Result<Vec<Message>>;

    /// Takes up to `limit` visible messages (oldest first) into this handle's
    /// custody: invisible to everyone else until [`Backend::settle`] consumes or
    /// releases them, or until this process is found dead by a later reader.
    fn hold(&mut self, queue: &str, filter: &Filter, limit: usize) -> Result<Vec<Message>>;

    /// Ends custody of the messages this handle holds whose storage positions
    /// ([`Message::seq`]) lie in the given inclusive ranges: `consumed` ones are
    /// gone for good, `released` ones become visible again in their original
    /// position. Ranges keep a batch acknowledgement one statement, not one per message.
    fn settle(&mut self, consumed: Option<SeqRange>, released: Option<SeqRange>) -> Result<()>;

    /// Notes, without a transaction, that every held message up to storage
    /// position `seq` has been delivered. If this process dies before settling,
    /// whoever releases its messages consumes those instead of redelivering them.
    fn record_progress(&mut self, seq: i64) -> Result<()>;

    /// Visible messages of `queue` after storage position `after_seq`, oldest
    /// first, without consuming them.
    fn peek(
        &mut self,
        queue: &str,
        filter: &Filter,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Message>>;

    /// How many messages each queue got with an id above `after_id`, in any
    /// state (consumed ones count until a vacuum removes them). Ids follow
    /// commit order on every backend, so counting from the returned
    /// `last_id` next time misses nothing committed in between.
    fn arrivals(&mut self, after_id: i64) -> Result<Arrivals>;

    /// Every stored message of `queue` that is visible, leased or delayed
    /// (never a consumed or held one), from where `from` says (after a
    /// storage position, oldest first; or before one, newest first), without
    /// consuming or leasing anything. Leases that are due have ended first,
    /// as for a reader. Receipts are never returned.
    fn browse(&mut self, queue: &str, from: BrowseFrom, limit: usize) -> Result<Vec<Browsed>>;

    /// Replaces, in place, the body and headers of message `id` of `queue`
    /// if it is visible, leased or delayed: its position, receive count and
    /// lease stay as they were. False if there is no such message.
    fn replace_message(
        &mut self,
        queue: &str,
        id: i64,
        body: &str,
        headers: &crate::headers::Headers,
    ) -> Result<bool>;

    /// Moves up to `limit` messages from `src` to `dst`, keeping ids and
    /// positions. `include_consumed` lets an exact-id move revive a consumed message.
    fn move_messages(
        &mut self,
        src: &str,
        dst: &str,
        filter: &Filter,
        limit: usize,
        include_consumed: bool,
    ) -> Result<Vec<Message>>;

    /// Physically deletes every row of `queue`; returns how many.
    fn delete_queue(&mut self, queue: &str) -> Result<u64>;

    /// Physically deletes every message of every queue; returns how many.
    fn delete_all(&mut self) -> Result<u64>;

    /// Consumes the visible message `id` of `queue`; false if there is none.
    fn delete_message(&mut self, queue: &str, id: i64) -> Result<bool>;

    /// Every queue that has rows, sorted by name (bytes), with its pending
    /// and total counts filled in (the rest is left to [`Backend::deferred_counts`]
    /// and [`Backend::queue_configs`]).
    fn queue_counts(&mut self) -> Result<Vec<QueueStats>>;

    /// Writes `body` to every queue that has rows and whose name passes `accept`,
    /// in name order, in one transaction. Returns the number of queues reached.
    fn broadcast(&mut self, body: &str, accept: &dyn Fn(&str) -> bool) -> Result<usize>;

    /// Database-wide counters.
    fn counters(&mut self) -> Result<DbCounters>;

    /// Number of consumed rows awaiting vacuum.
    fn consumed_count(&mut self) -> Result<u64>;

    /// Deletes consumed rows in batches and gives the space back (`compact`:
    /// rebuild the whole store). Returns how many rows went. Does nothing if
    /// another process is vacuuming the same database.
    fn vacuum(&mut self, compact: bool) -> Result<u64>;

    /// All aliases as `(alias, target)`, sorted by alias.
    fn aliases(&mut self) -> Result<Vec<(String, String)>>;

    /// Adds an alias after checking the alias rules atomically.
    fn alias_add(&mut self, alias: &str, target: &str) -> Result<()>;

    /// Removes an alias; false if it did not exist.
    fn alias_remove(&mut self, alias: &str) -> Result<bool>;

    /// The target of `alias`, if defined.
    fn alias_target(&mut self, alias: &str) -> Result<Option<String>>;

    /// Every message of the given queues (all queues if empty), visible ones
    /// only, in storage order, passed to `sink` one at a time.
    fn dump(
        &mut self,
        queues: &[String],
        sink: &mut dyn FnMut(QueuedMessage) -> Result<()>,
    ) -> Result<()>;

    /// Leases up to `limit` visible messages (oldest first) for `visibility`
    /// (`None`: the queue's configured timeout); each comes with a receipt.
    fn lease(
        &mut self,
        queue: &str,
        filter: &Filter,
        limit: usize,
        visibility: Option<Duration>,
    ) -> Result<Vec<Message>>;

    /// Acknowledges deliveries, in one transaction; one result per receipt
    /// (a refused receipt does not stop the others).
    fn ack(
        &mut self,
        queue: &str,
        receipts: &[Receipt],
    ) -> Result<Vec<std::result::Result<(), ReceiptError>>>;

    /// Gives a delivery back, visible now or after `delay`; dead-letters it
    /// if it reached the queue's maximum receives.
    fn nack(
        &mut self,
        queue: &str,
        receipt: &Receipt,
        delay: Option<Duration>,
    ) -> Result<NackOutcome>;

    /// Moves a leased message to `dlq` now, recording `reason` (a consumer's
    /// own retry limit, e.g. `broker run --max-receives`).
    fn dead_letter(
        &mut self,
        queue: &str,
        receipt: &Receipt,
        dlq: &str,
        reason: &str,
    ) -> Result<()>;

    /// Gives back deliveries that never reached their consumer: visible again
    /// in place, their receives not counted.
    fn give_back(&mut self, queue: &str, receipts: &[Receipt]) -> Result<()>;

    /// Sets a live lease to expire `visibility` from now.
    fn extend(&mut self, queue: &str, receipt: &Receipt, visibility: Duration) -> Result<()>;

    /// The delivery settings of `queue`.
    fn queue_config(&mut self, queue: &str) -> Result<QueueConfig>;

    /// Stores the delivery settings of `queue` (already validated).
    fn set_queue_config(&mut self, queue: &str, config: &QueueConfig) -> Result<()>;

    /// Every configured queue, by name.
    fn queue_configs(&mut self) -> Result<Vec<(String, QueueConfig)>>;

    /// Moves dead letters of `dlq` back to their source queues (or all to
    /// `target`); returns how many.
    fn redrive(&mut self, dlq: &str, target: Option<&str>) -> Result<u64>;

    /// Leased and delayed counts of every queue that has any.
    fn deferred_counts(&mut self) -> Result<Vec<DeferredCounts>>;

    /// How long until the next leased or delayed message of `queue` becomes
    /// visible by itself, on the database's clock; `None` if there is none.
    fn until_visible(&mut self, queue: &str) -> Result<Option<Duration>>;

    /// The database's clock, Unix nanoseconds: every deadline (leases,
    /// delays, retention, expiry) is measured on it, never on the caller's.
    fn now_ns(&mut self) -> Result<i64>;

    /// How much room the stored data takes, in bytes, if the backend can say.
    fn storage_size(&mut self) -> Result<Option<u64>>;

    /// Appends `batch` to `topic`'s log and copies each message into every
    /// subscription whose pattern matches, in one transaction.
    fn publish(&mut self, topic: &str, batch: &[Outgoing<'_>]) -> Result<Vec<Published>>;

    /// Creates `topic` with an empty log (its next offset 0); false, changing
    /// nothing, if the topic exists already (it was created or published to).
    fn create_topic(&mut self, topic: &str) -> Result<bool>;

    /// Creates a subscription (refused if the name is taken by a subscription
    /// or a queue) and replays the retained log from its start position into
    /// it, in one transaction. Returns how many messages were replayed.
    fn create_subscription(&mut self, sub: &NewSubscription<'_>) -> Result<u64>;

    /// Removes a subscription and its pending messages; false if none.
    fn delete_subscription(&mut self, name: &str) -> Result<bool>;

    /// Every subscription, by name (stale ephemeral ones are removed first).
    fn subscriptions(&mut self) -> Result<Vec<SubscriptionInfo>>;

    /// Every topic, by name.
    fn topics(&mut self) -> Result<Vec<TopicInfo>>;

    /// Sets (or with an unbounded retention, removes) the retention of a topic or pattern.
    fn set_retention(&mut self, pattern: &str, retention: &Retention) -> Result<()>;

    /// The retention stored for exactly `pattern`.
    fn retention_setting(&mut self, pattern: &str) -> Result<Retention>;

    /// Records that a subscription's consumer is alive; false if there is no
    /// such subscription.
    fn touch_subscription(&mut self, name: &str) -> Result<bool>;

    /// Every stored API key, by name.
    fn api_keys(&mut self) -> Result<Vec<StoredKey>>;

    /// Stores a new API key; refused ([`crate::Error::KeyExists`]) if its
    /// name or its hash is taken.
    fn api_key_add(&mut self, key: &StoredKey) -> Result<()>;

    /// Removes the API key `name`; false if there was none.
    fn api_key_revoke(&mut self, name: &str) -> Result<bool>;
}
