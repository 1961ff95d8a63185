//! litebroker's schema in a PostgreSQL database: its own schema (namespace,
//! `litebroker` unless configured), versioned in its `meta` table, created on
//! first use and migrated forward by `broker init`.
//!
//! Tables:
//! - `meta(key, value, note)`: `magic` (in `note`), `schema_version`, `last_ts` (the id
//!   high-water mark every writer raises under its row lock, so ids follow
//!   commit order on every host), `alias_version`.
//! - `messages`: one row per message. `seq` is the storage position (FIFO
//!   order), `id` the 64-bit hybrid timestamp; `state` is pending (0),
//!   consumed (1, awaiting vacuum), deferred (2: leased, or delayed until
//!   `visible_at`) or held (3, in custody of `holder`). A consumed message
//!   moves to `consumed` (same columns, awaiting vacuum): a take is then a
//!   DELETE and an INSERT, and the queue's indexes never hold consumed rows. Headers, receive
//!   count, lease nonce, dead-letter record and origin live on the row.
//! - `holders`: the sessions that hold messages; each keeps an advisory lock
//!   on its token for as long as its connection lives, so a holder whose
//!   lock is gone is dead, on whatever host it ran.
//! - `aliases`, `queue_config`, `topics`, `topic_log`, `subscriptions`,
//!   `topic_config`: as on SQLite.
//! - `idempotency`: keys of recent `write_once` writes and their ids;
//!   `api_keys`: the server's keys (hashes only).

/// The `meta.magic` value that marks litebroker's schema.
pub const MAGIC: &str = "litebroker-postgres";

/// Each migration takes the schema from version `i` to `i + 1` (index 0
/// creates it). The last index + 1 is the version this build writes.
pub const MIGRATIONS: &[&str] = &[V1];

/// The schema version this build writes and the newest it accepts.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Message states (`messages.state`).
pub const PENDING: i16 = 0;
/// Consumed: the row has moved to the `consumed` table (awaiting vacuum).
pub const CONSUMED: i16 = 1;
/// Leased (`nonce` set) or delayed, invisible until `visible_at`.
pub const DEFERRED: i16 = 2;
/// In the custody of `holder`.
pub const HELD: i16 = 3;

/// The advisory-lock class (first key) litebroker uses: holders lock
/// `(LOCK_CLASS, token)`, vacuum locks `(LOCK_CLASS + 1, 0)`, schema
/// creation `(LOCK_CLASS + 1, 1)`, the owner of an ephemeral subscription
/// `(LOCK_CLASS + 2, owner_key)`.
pub const LOCK_CLASS: i32 = 0x6c62_0000;

const V1: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL DEFAULT 0,
    note TEXT
);
CREATE TABLE messages (
    seq BIGSERIAL PRIMARY KEY,
    id BIGINT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body BYTEA NOT NULL,
    state SMALLINT NOT NULL DEFAULT 0,
    holder BIGINT,
    headers TEXT,
    receives INTEGER NOT NULL DEFAULT 0,
    visible_at BIGINT,
    nonce BIGINT,
    dead_source TEXT,
    dead_reason TEXT,
    topic TEXT,
    topic_offset BIGINT
);
CREATE INDEX messages_pending ON messages (queue, seq) WHERE state = 0;
CREATE INDEX messages_deferred ON messages (visible_at) WHERE visible_at IS NOT NULL;
CREATE INDEX messages_held ON messages (holder) WHERE holder IS NOT NULL;
CREATE TABLE consumed (
    seq BIGINT NOT NULL,
    id BIGINT PRIMARY KEY,
    queue TEXT NOT NULL,
    body BYTEA NOT NULL,
    headers TEXT,
    receives INTEGER NOT NULL DEFAULT 0,
    dead_source TEXT,
    dead_reason TEXT,
    topic TEXT,
    topic_offset BIGINT
);
CREATE TABLE holders (
    token BIGSERIAL PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    created_ns BIGINT NOT NULL,
    progress BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE aliases (
    alias TEXT PRIMARY KEY,
    target TEXT NOT NULL
);
CREATE TABLE queue_config (
    queue TEXT PRIMARY KEY,
    visibility_ns BIGINT,
    max_receives BIGINT,
    dead_letter TEXT
);
CREATE TABLE topics (
    topic TEXT PRIMARY KEY,
    next_offset BIGINT NOT NULL
);
CREATE TABLE topic_log (
    id BIGINT PRIMARY KEY,
    topic TEXT NOT NULL,
    topic_offset BIGINT NOT NULL,
    body BYTEA NOT NULL,
    headers TEXT,
    UNIQUE (topic, topic_offset)
);
CREATE TABLE subscriptions (
    name TEXT PRIMARY KEY,
    pattern TEXT NOT NULL,
    created_ns BIGINT NOT NULL,
    ephemeral BOOLEAN NOT NULL DEFAULT FALSE,
    touched_ns BIGINT NOT NULL,
    expire_ns BIGINT,
    owner_key INTEGER
);
CREATE SEQUENCE owner_keys AS INTEGER CYCLE;
CREATE TABLE topic_config (
    pattern TEXT PRIMARY KEY,
    retain_count BIGINT,
    retain_ns BIGINT
);
CREATE TABLE idempotency (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    ids BIGINT[] NOT NULL,
    expires_ns BIGINT NOT NULL,
    PRIMARY KEY (queue, key)
);
CREATE INDEX idempotency_expires ON idempotency (expires_ns);
CREATE TABLE api_keys (
    name TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    grants TEXT NOT NULL,
    created_ns BIGINT NOT NULL
);
INSERT INTO meta (key, value, note) VALUES
    ('magic', 0, 'litebroker-postgres'),
    ('schema_version', 1, NULL),
    ('last_ts', 0, NULL),
    ('alias_version', 0, NULL);
";

/// Whether `name` may name litebroker's schema: a plain lower-case SQL
/// identifier, so it never needs quoting rules beyond double quotes.
pub fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(valid_schema_name("litebroker"));
        assert!(valid_schema_name("lb_test_1"));
        for bad in ["", "1x", "Lite", "a-b", "a b", "x\"y", &"a".repeat(64)] {
            assert!(!valid_schema_name(bad), "{bad:?}");
        }
    }
}
