//! The database layout: SimpleBroker's schema v4, byte-compatible, plus the
//! tables litebroker adds. Added tables are invisible to the reference, which
//! tolerates unknown tables and meta keys.

/// The `meta.magic` value that marks a SimpleBroker database.
pub const MAGIC: &str = "simplebroker-v1";

/// The schema version we write and the newest we accept.
pub const SCHEMA_VERSION: i64 = 4;

/// `messages.claimed` for a visible message.
pub const PENDING: i64 = 0;
/// `messages.claimed` for a consumed message (awaiting vacuum).
pub const CONSUMED: i64 = 1;
/// `messages.claimed` for a leased or delayed message: invisible to readers
/// (ours and the reference's) until it becomes visible again, never vacuumed.
/// Its details live in `lb_message_ext`.
pub const DEFERRED: i64 = 2;
// Negative `claimed` values mean "held by holder token -claimed": the reference
// only ever selects `claimed = 0` and only vacuums `claimed = 1`, so a held
// message is invisible to it and never deleted by it.

/// Every object our schema needs; if all exist the open path skips the DDL.
pub const REQUIRED_OBJECTS: &[&str] = &[
    "messages",
    "meta",
    "queue_aliases",
    "idx_messages_queue_ts_id",
    "idx_messages_unclaimed",
    "idx_messages_ts_unique",
    "idx_queue_aliases_target",
    "lb_holders",
    "lb_message_ext",
    "idx_lb_message_ext_visible",
    "lb_queue_config",
];

/// The reference's tables and indexes, exactly as it creates them.
pub const REFERENCE_DDL: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    ts INTEGER NOT NULL UNIQUE,
    claimed INTEGER DEFAULT 0
);
DROP INDEX IF EXISTS idx_messages_queue_ts;
DROP INDEX IF EXISTS idx_queue_id;
DROP INDEX IF EXISTS idx_queue_ts;
CREATE INDEX IF NOT EXISTS idx_messages_queue_ts_id ON messages(queue, ts, id);
CREATE INDEX IF NOT EXISTS idx_messages_unclaimed ON messages(queue, claimed, id) WHERE claimed = 0;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_ts', 0);
CREATE TABLE IF NOT EXISTS queue_aliases (
    alias TEXT PRIMARY KEY,
    target TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_queue_aliases_target ON queue_aliases(target);
INSERT OR IGNORE INTO meta (key, value) VALUES ('alias_version', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('magic', 'simplebroker-v1');
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 4);
";

/// The unique index on `ts` (schema v3), created separately because the
/// reference creates it without `IF NOT EXISTS` after checking for it.
pub const TS_UNIQUE_INDEX: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_messages_ts_unique ON messages(ts)";

/// Tables litebroker adds.
///
/// `lb_holders`: processes currently holding messages (see [`crate::backend::sqlite::holder`]);
/// a message with `claimed = -token` belongs to the holder `token`.
///
/// `lb_message_ext`: what litebroker knows about a message beyond the
/// reference's columns, keyed by `messages.id` (kept by `move`): headers (JSON),
/// receive count, when a leased or delayed message (`claimed = 2`) becomes
/// visible again, the current lease's nonce, and the dead-letter record.
///
/// `lb_queue_config`: per-queue visibility timeout, maximum receives and
/// dead-letter queue.
///
/// The pub/sub tables are in [`PUBSUB_DDL`].
pub const LITEBROKER_DDL: &str = "
CREATE TABLE IF NOT EXISTS lb_holders (
    token INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    host TEXT NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lb_message_ext (
    msg INTEGER PRIMARY KEY,
    headers TEXT,
    receives INTEGER NOT NULL DEFAULT 0,
    visible_at INTEGER,
    receipt INTEGER,
    dead_source TEXT,
    dead_reason TEXT,
    topic TEXT,
    topic_offset INTEGER
);
CREATE INDEX IF NOT EXISTS idx_lb_message_ext_visible
    ON lb_message_ext(visible_at) WHERE visible_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS lb_queue_config (
    queue TEXT PRIMARY KEY,
    visibility_ns INTEGER,
    max_receives INTEGER,
    dead_letter TEXT
);
";

/// The pub/sub tables, created together by the first operation that writes
/// one (publish, create a topic or subscription, set retention), not on
/// open: SQLite parses every object of the schema in every process, and a
/// database that never uses pub/sub should not pay for them on each
/// `broker write`. Until then every reader sees no topic, subscription or
/// published copy (`pubsub::tables_exist`).
///
/// `lb_topics`, `lb_topic_log`: each topic's next offset and its retained log
/// (keyed by the published message's id, so the log reads in publish order).
/// `lb_subscriptions`: durable and ephemeral subscriptions (an ephemeral one
/// records its owner process and when it was last touched).
/// `lb_topic_config`: retention per topic or pattern.
/// `lb_copy_spans`: runs of consecutive storage positions holding the copies
/// of consecutive offsets of one topic (see `spans.rs`).
pub const PUBSUB_DDL: &str = "
CREATE TABLE IF NOT EXISTS lb_topics (
    topic TEXT PRIMARY KEY,
    next_offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lb_topic_log (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    topic_offset INTEGER NOT NULL,
    body TEXT NOT NULL,
    headers TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_lb_topic_log_offset ON lb_topic_log(topic, topic_offset);
CREATE TABLE IF NOT EXISTS lb_subscriptions (
    name TEXT PRIMARY KEY,
    pattern TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    ephemeral INTEGER NOT NULL DEFAULT 0,
    touched_ns INTEGER NOT NULL,
    expire_ns INTEGER,
    pid INTEGER,
    start_time INTEGER,
    boot_id TEXT,
    host TEXT
);
CREATE TABLE IF NOT EXISTS lb_topic_config (
    pattern TEXT PRIMARY KEY,
    retain_count INTEGER,
    retain_ns INTEGER
);
CREATE TABLE IF NOT EXISTS lb_copy_spans (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    first_offset INTEGER NOT NULL
);
";

/// Tables only the server uses, created by the first operation that needs
/// them (not on open: SQLite parses every object of the schema in every
/// process, and a one-shot `broker write` should not pay for the server's).
///
/// `lb_idempotency`: idempotency keys of recent writes (`write_once`) and
/// the ids those writes got, until they expire.
/// `lb_api_keys`: the server's API keys (a hash of each secret, never the secret).
pub const SERVER_DDL: &str = "
CREATE TABLE IF NOT EXISTS lb_idempotency (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    ids TEXT NOT NULL,
    expires_ns INTEGER NOT NULL,
    PRIMARY KEY (queue, key)
);
CREATE INDEX IF NOT EXISTS idx_lb_idempotency_expires ON lb_idempotency(expires_ns);
CREATE TABLE IF NOT EXISTS lb_api_keys (
    name TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    grants TEXT NOT NULL,
    created_ns INTEGER NOT NULL
);
";
