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
/// `lb_holders`: processes currently holding messages (see [`crate::holder`]);
/// a message with `claimed = -token` belongs to the holder `token`.
pub const LITEBROKER_DDL: &str = "
CREATE TABLE IF NOT EXISTS lb_holders (
    token INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    host TEXT NOT NULL,
    created_ns INTEGER NOT NULL
);
";
