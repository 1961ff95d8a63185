//! The PostgreSQL backend: the same broker on a database many hosts share.
//!
//! Selected by a `postgres://` URL (`BROKER_DATABASE_URL`, `--db`). All of
//! litebroker's tables live in one schema of their own (`litebroker` unless
//! [`PostgresOptions::schema`] says otherwise), created on first use,
//! versioned, and migrated forward by [`PostgresConnector::init`].
//!
//! How the semantics carry over from one file to many hosts:
//! - exactly-once reads and at-least-once leases: `UPDATE ... WHERE seq IN
//!   (SELECT ... FOR UPDATE SKIP LOCKED)`, each method one transaction;
//! - ids: the `meta.last_ts` row, raised under its row lock from the
//!   database's clock, so ids are unique and follow commit order on every
//!   host (`messages::reserve_ids`);
//! - deadlines (leases, delays, retention, expiry) on the database's clock;
//! - custody: a session-level advisory lock per holder (`custody.rs`);
//! - the change feed: `LISTEN`/`NOTIFY` ([`feed`]).

mod admin;
mod conn;
mod custody;
pub mod feed;
mod leases;
mod messages;
mod pubsub;
pub mod schema;

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use self::conn::{Conn, Tx};
use self::schema::{HELD, LOCK_CLASS, MAGIC, MIGRATIONS, SCHEMA_VERSION};
use super::{Backend, DbCounters, DeferredCounts, SeqRange};
use crate::broker::QueueStats;
use crate::clock::{self, Clock};
use crate::error::{Error, Result};
use crate::lease::{NackOutcome, QueueConfig, Receipt, ReceiptError};
use crate::message::{Filter, Message, Outgoing, QueuedMessage};
use crate::pubsub::{NewSubscription, Published, Retention, SubscriptionInfo, TopicInfo};

/// The environment variable that selects PostgreSQL by URL.
pub const DATABASE_URL_VAR: &str = "BROKER_DATABASE_URL";
/// The environment variable that names litebroker's schema.
pub const SCHEMA_VAR: &str = "BROKER_DATABASE_SCHEMA";
/// The schema litebroker uses unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "litebroker";

/// Whether `text` is a PostgreSQL connection URL.
pub fn is_postgres_url(text: &str) -> bool {
    let lower = text.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Options of the PostgreSQL backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The schema that holds litebroker's tables.
    pub schema: String,
    /// Consumed rows deleted per transaction by vacuum.
    pub vacuum_batch: i64,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: DEFAULT_SCHEMA.to_owned(),
            vacuum_batch: 1000,
        }
    }
}

impl PostgresOptions {
    /// Options from the environment (`BROKER_DATABASE_SCHEMA`).
    pub fn from_env() -> Result<Self> {
        let mut options = PostgresOptions::default();
        if let Ok(schema) = std::env::var(SCHEMA_VAR) {
            if !schema.is_empty() {
                options.schema = schema;
            }
        }
        Ok(options)
    }
}

/// Opens connections to one PostgreSQL database (`Send + Sync`).
pub struct PostgresConnector {
    link: Arc<Link>,
    clock: Option<Arc<dyn Clock>>,
    checked: OnceLock<()>,
    feed: OnceLock<super::ChangeFeed>,
}

/// How to reach the database: shared by the connector and every connection,
/// which reconnects through it after the server went away.
struct Link {
    config: postgres::Config,
    describe: String,
    options: PostgresOptions,
    /// Whether this user may wait for flushes on its own (asked once).
    can_wait_durable: OnceLock<bool>,
}

impl Link {
    fn channel(&self) -> String {
        format!("litebroker_{}", self.options.schema)
    }

    fn raw_connect(&self) -> Result<postgres::Client> {
        self.config.connect(postgres::NoTls).map_err(|e| {
            let unavailable = conn::is_unavailable(&e);
            let text = format!("cannot connect to {}: {}", self.describe, conn::PgError(e));
            if unavailable {
                Error::Unavailable(text.into())
            } else {
                Error::Storage(text.into())
            }
        })
    }

    /// A new connection with litebroker's schema on its search path.
    fn open_conn(&self) -> Result<Conn> {
        let mut client = self.raw_connect()?;
        client.batch_execute(&format!(
            "SET search_path TO \"{}\", pg_catalog",
            self.options.schema
        ))?;
        let can_wait = match self.can_wait_durable.get() {
            Some(can) => *can,
            None => {
                let can: bool = client.query_one(messages::CAN_WAIT_DURABLE, &[])?.get(0);
                *self.can_wait_durable.get_or_init(|| can)
            }
        };
        Ok(Conn::new(client, self.channel(), can_wait))
    }
}

impl PostgresConnector {
    /// A connector for `url` (`postgres://user:password@host:port/db`,
    /// or with `?host=/path/to/socket/dir`). Nothing connects yet.
    pub fn new(url: &str, options: PostgresOptions) -> Result<Self> {
        if !schema::valid_schema_name(&options.schema) {
            return Err(Error::InvalidRequest(format!(
                "invalid schema name '{}' ({SCHEMA_VAR}): use lower-case letters, digits and _",
                options.schema
            )));
        }
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| Error::InvalidRequest(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("litebroker");
        }
        let describe = describe(&config, &options.schema);
        Ok(PostgresConnector {
            link: Arc::new(Link {
                config,
                describe,
                options,
                can_wait_durable: OnceLock::new(),
            }),
            clock: None,
            checked: OnceLock::new(),
            feed: OnceLock::new(),
        })
    }

    /// Measures leases, delays and expiry on `clock` instead of the
    /// database's (tests that move time by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The schema litebroker uses.
    pub fn schema(&self) -> &str {
        &self.link.options.schema
    }

    fn open(&self) -> Result<PostgresBackend> {
        let mut conn = self.link.open_conn()?;
        if self.checked.get().is_none() {
            let link = &self.link;
            ensure_schema(&mut conn, &link.options.schema, &link.describe, false)?;
            let _ = self.checked.set(());
        }
        Ok(PostgresBackend {
            link: self.link.clone(),
            conn: Some(conn),
            clock: self.clock.clone(),
            custody: None,
        })
    }

    /// Creates the schema if it is missing and runs every forward migration
    /// (`broker init`). Refuses, touching nothing, a schema that is newer
    /// than this build or is not litebroker's. Returns (from, to) versions.
    pub fn init(&self) -> Result<(i64, i64)> {
        let mut conn = self.link.open_conn()?;
        ensure_schema(
            &mut conn,
            &self.link.options.schema,
            &self.link.describe,
            true,
        )
    }

    /// Drops litebroker's schema and everything in it (`--cleanup`).
    pub fn drop_schema(&self) -> Result<bool> {
        let mut client = self.link.raw_connect()?;
        let exists = schema_exists(&mut client, self.schema())?;
        if exists {
            client.batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema()))?;
        }
        Ok(exists)
    }

    /// The server's version string (`--status`).
    pub fn server_version(&self) -> Result<String> {
        let mut client = self.link.raw_connect()?;
        Ok(client.query_one("SHOW server_version", &[])?.get(0))
    }
}

fn describe(config: &postgres::Config, schema: &str) -> String {
    use postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db} (schema {schema})")
}

fn schema_exists(client: &mut postgres::Client, schema: &str) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )?
        .get(0))
}

/// Checks litebroker's schema, creating it when missing; with `migrate`,
/// runs forward migrations too. Returns (version found, version now).
fn ensure_schema(
    conn: &mut Conn,
    schema: &str,
    describe: &str,
    migrate: bool,
) -> Result<(i64, i64)> {
    let incompatible = |reason: String| Error::Incompatible {
        location: describe.to_owned(),
        reason,
    };
    let client = &mut conn.client;
    let mut tx = client.transaction()?;
    // One process creates or migrates at a time.
    tx.execute("SELECT pg_advisory_xact_lock($1, 1)", &[&(LOCK_CLASS + 1)])?;
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )?
        .get(0);
    let found = if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))?;
        0
    } else {
        let has_meta: bool = tx
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'meta')",
                &[&schema],
            )?
            .get(0);
        let empty: bool = tx
            .query_one(
                "SELECT NOT EXISTS(SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1)",
                &[&schema],
            )?
            .get(0);
        if empty {
            0
        } else if !has_meta {
            return Err(incompatible(format!(
                "schema '{schema}' exists but holds tables that are not litebroker's; \
                 choose another with {}",
                SCHEMA_VAR
            )));
        } else {
            let magic = tx.query_opt("SELECT note FROM meta WHERE key = 'magic'", &[]);
            let magic: Option<String> = match magic {
                Ok(row) => row.and_then(|r| r.get(0)),
                Err(_) => None,
            };
            if magic.as_deref() != Some(MAGIC) {
                return Err(incompatible(format!(
                    "schema '{schema}' has a table 'meta' that is not litebroker's; \
                     choose another schema with {SCHEMA_VAR}"
                )));
            }
            tx.query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])?
                .get(0)
        }
    };
    if found > SCHEMA_VERSION {
        return Err(incompatible(format!(
            "its schema version {found} is newer than this broker's ({SCHEMA_VERSION}); \
             upgrade litebroker"
        )));
    }
    if found == SCHEMA_VERSION {
        tx.commit()?;
        return Ok((found, found));
    }
    if found > 0 && !migrate {
        return Err(incompatible(format!(
            "its schema version {found} is older than this broker's ({SCHEMA_VERSION}); \
             run `broker init` to migrate it"
        )));
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(step)?;
        tx.execute(
            "UPDATE meta SET value = $1 WHERE key = 'schema_version'",
            &[&(i as i64 + 1)],
        )?;
    }
    tx.commit()?;
    Ok((found, SCHEMA_VERSION))
}

impl super::Connector for PostgresConnector {
    fn connect(&self) -> Result<Box<dyn Backend>> {
        Ok(Box::new(self.open()?))
    }

    fn changes(&self) -> super::ChangeFeed {
        self.feed
            .get_or_init(|| {
                let config = self.link.config.clone();
                let channel = self.link.channel();
                super::ChangeFeed::new(Box::new(move || {
                    let client = config.connect(postgres::NoTls)?;
                    Ok(Box::new(feed::PgSource::listen(client, &channel)?)
                        as Box<dyn super::ChangeSource>)
                }))
            })
            .clone()
    }

    fn describe(&self) -> String {
        self.link.describe.clone()
    }

    /// Every commit that gives a waiter something to take notifies it, so
    /// an idle waiter only looks again now and then, for what no commit
    /// announces: a holder whose session died (its messages come back at
    /// the next take on any host) and leases or delays running out (which
    /// waiters also time by `until_visible`).
    fn rescan_every(&self) -> Duration {
        IDLE_RESCAN
    }
}

/// How often an idle waiter on PostgreSQL looks again without a `NOTIFY`.
pub const IDLE_RESCAN: Duration = Duration::from_secs(10);

/// One PostgreSQL connection. If the server goes away, the next operation
/// fails with [`Error::Unavailable`] and the one after it connects anew (an
/// operation whose `BEGIN` failed is retried on the new connection at once:
/// nothing of it ran).
pub struct PostgresBackend {
    link: Arc<Link>,
    conn: Option<Conn>,
    clock: Option<Arc<dyn Clock>>,
    custody: Option<Custody>,
}

struct Custody {
    token: i64,
    held: SeqRange,
}

/// What a taking transaction learned first.
struct Before {
    now: i64,
}

impl PostgresBackend {
    /// The test clock's now, if one is set (else the database decides).
    fn fixed_now(&self) -> Option<i64> {
        self.clock.as_ref().map(|c| c.now_ns())
    }

    fn now(&mut self) -> Result<i64> {
        if let Some(now) = self.fixed_now() {
            return Ok(now);
        }
        self.transaction(|tx| {
            Ok(tx
                .one(
                    "SELECT ((EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000)",
                    &[],
                )?
                .get(0))
        })
    }

    /// The connection, connecting anew if there is none (the last one was lost).
    fn conn(&mut self) -> Result<&mut Conn> {
        if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            // A holder's lock died with its session: whoever takes next
            // (this connection included) returns what it held.
            self.custody = None;
            self.conn = None;
            self.conn = Some(self.link.open_conn()?);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Forgets a connection that failed with [`Error::Unavailable`].
    fn check<T>(&mut self, result: Result<T>) -> Result<T> {
        if matches!(&result, Err(Error::Unavailable(_))) {
            self.conn = None;
            self.custody = None;
        }
        result
    }

    fn transaction<T>(&mut self, mut body: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let result = self.conn()?.transaction(&mut body);
        let stale = matches!(&result, Err(Error::Unavailable(_)))
            && self.conn.as_ref().is_some_and(|c| c.begin_failed);
        let result = self.check(result);
        if stale {
            // The connection had died while idle (a server restart): nothing
            // ran, so run it once on a new connection.
            let again = self.conn()?.transaction(&mut body);
            return self.check(again);
        }
        result
    }

    fn promote_if_due(&mut self) -> Result<()> {
        let fixed = self.fixed_now();
        let me = self.custody.as_ref().map(|c| c.token);
        self.transaction(|tx| before(tx, fixed, me).map(|_| ()))
    }

    fn end_custody(&mut self) -> Result<()> {
        if let Some(c) = self.custody.take() {
            self.transaction(|tx| {
                custody::settle(tx, c.token, &c.held, false)?;
                custody::unregister(tx, c.token)?;
                custody::unlock(tx, c.token)
            })?;
        }
        Ok(())
    }
}

/// First steps of every transaction that takes messages: read the clock,
/// return dead holders' messages, make due deferred messages visible
/// (whether any is due: one index entry, as in [`messages::read_quick`]).
fn before(tx: &mut Tx<'_>, fixed: Option<i64>, me: Option<i64>) -> Result<Before> {
    let row = tx.one(
        "SELECT n, COALESCE((SELECT min(visible_at) FROM messages) <= n, false), \
         EXISTS(SELECT 1 FROM holders WHERE token <> COALESCE($2::bigint, -1)) \
         FROM (SELECT COALESCE($1::bigint, \
         (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000) AS n) t",
        &[&fixed, &me],
    )?;
    let (now, due, others): (i64, bool, bool) = (row.get(0), row.get(1), row.get(2));
    if others {
        custody::release_dead(tx, me)?;
    }
    if due {
        leases::promote_due(tx, now)?;
    }
    Ok(Before { now })
}

impl Backend for PostgresBackend {
    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = Some(clock);
    }

    fn write(&mut self, queue: &str, batch: &[Outgoing<'_>]) -> Result<Vec<i64>> {
        let now = if batch.iter().any(|m| m.delay.is_some()) {
            self.now()?
        } else {
            0
        };
        let result = messages::write(self.conn()?, queue, batch, now);
        self.check(result)
    }

    fn write_once(
        &mut self,
        queue: &str,
        key: &str,
        keep: Duration,
        batch: &[Outgoing<'_>],
    ) -> Result<(Vec<i64>, bool)> {
        let now = self.now()?;
        let expires = clock::after(now, keep);
        self.transaction(|tx| messages::write_once(tx, queue, key, batch, now, expires))
    }

    fn browse(
        &mut self,
        queue: &str,
        from: super::BrowseFrom,
        limit: usize,
    ) -> Result<Vec<super::Browsed>> {
        self.promote_if_due()?;
        self.transaction(|tx| messages::browse(tx, queue, from, limit))
    }

    fn replace_message(
        &mut self,
        queue: &str,
        id: i64,
        body: &str,
        headers: &crate::headers::Headers,
    ) -> Result<bool> {
        crate::broker::check_size(body)?;
        self.transaction(|tx| messages::replace(tx, queue, id, body, headers))
    }

    fn api_keys(&mut self) -> Result<Vec<super::StoredKey>> {
        self.transaction(admin::api_keys)
    }

    fn api_key_add(&mut self, key: &super::StoredKey) -> Result<()> {
        self.transaction(|tx| admin::api_key_add(tx, key))
    }

    fn api_key_revoke(&mut self, name: &str) -> Result<bool> {
        self.transaction(|tx| admin::api_key_revoke(tx, name))
    }

    fn insert_with_ids(
        &mut self,
        records: &mut dyn Iterator<Item = Result<QueuedMessage>>,
    ) -> Result<u64> {
        // Not retried: the iterator is consumed by the first attempt.
        let mut records = Some(records);
        self.transaction(|tx| match records.take() {
            Some(r) => messages::insert_with_ids(tx, r),
            None => Err(Error::InvalidRequest(
                "loading was interrupted by a database conflict; nothing was loaded".into(),
            )),
        })
    }

    fn generate_id(&mut self) -> Result<i64> {
        self.transaction(|tx| messages::reserve_ids(tx, 1))
    }

    fn last_id(&mut self) -> Result<i64> {
        self.transaction(messages::last_id)
    }

    fn read(&mut self, queue: &str, filter: &Filter, limit: usize) -> Result<Vec<Message>> {
        let fixed = self.fixed_now();
        let me = self.custody.as_ref().map(|c| c.token);
        let quick = messages::read_quick(self.conn()?, queue, filter, limit, fixed, me);
        if let Some(taken) = self.check(quick)? {
            return Ok(taken);
        }
        self.transaction(|tx| {
            before(tx, fixed, me)?;
            messages::take(tx, queue, filter, limit, schema::CONSUMED, None)
        })
    }

    fn hold(&mut self, queue: &str, filter: &Filter, limit: usize) -> Result<Vec<Message>> {
        let fixed = self.fixed_now();
        let existing = self.custody.as_ref().map(|c| c.token);
        let taken = self.transaction(|tx| {
            let b = before(tx, fixed, existing)?;
            let token = match existing {
                Some(t) => t,
                None if !messages::any_visible(tx, queue, filter)? => return Ok(None),
                None => custody::register(tx, b.now)?,
            };
            Ok(Some((
                token,
                messages::take(tx, queue, filter, limit, HELD, Some(token))?,
            )))
        })?;
        let Some((token, held)) = taken else {
            return Ok(Vec::new());
        };
        let lo = held.iter().map(|m| m.seq).min().unwrap_or(1);
        let hi = held.iter().map(|m| m.seq).max().unwrap_or(0);
        let custody = self.custody.get_or_insert(Custody {
            token,
            held: lo..=hi,
        });
        custody.held = (*custody.held.start()).min(lo)..=(*custody.held.end()).max(hi);
        if held.is_empty() && existing.is_none() {
            self.end_custody()?;
        }
        Ok(held)
    }

    fn settle(&mut self, consumed: Option<SeqRange>, released: Option<SeqRange>) -> Result<()> {
        let Some(c) = self.custody.as_ref() else {
            return Ok(());
        };
        let (token, held) = (c.token, c.held.clone());
        self.transaction(|tx| {
            if let Some(r) = &consumed {
                custody::settle(tx, token, r, true)?;
            }
            if let Some(r) = &released {
                custody::settle(tx, token, r, false)?;
            }
            // Anything the ranges did not cover is returned, and the record goes.
            custody::settle(tx, token, &held, false)?;
            custody::unregister(tx, token)?;
            custody::unlock(tx, token)
        })?;
        self.custody = None;
        Ok(())
    }

    fn record_progress(&mut self, seq: i64) -> Result<()> {
        let Some(c) = self.custody.as_ref() else {
            return Ok(());
        };
        // A progress mark need not wait for its own fsync: if the server
        // crashes before it reaches disk, those messages are redelivered
        // (duplicates bounded by one batch), never lost.
        let sql = format!(
            "BEGIN; SET LOCAL synchronous_commit = off; \
             UPDATE holders SET progress = GREATEST(progress, {seq}) WHERE token = {}; COMMIT",
            c.token
        );
        let result = self.conn()?.client.batch_execute(&sql).map_err(Error::from);
        self.check(result)
    }

    fn peek(
        &mut self,
        queue: &str,
        filter: &Filter,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.promote_if_due()?;
        self.transaction(|tx| messages::peek(tx, queue, filter, after_seq, limit))
    }

    fn move_messages(
        &mut self,
        src: &str,
        dst: &str,
        filter: &Filter,
        limit: usize,
        include_consumed: bool,
    ) -> Result<Vec<Message>> {
        let fixed = self.fixed_now();
        let me = self.custody.as_ref().map(|c| c.token);
        self.transaction(|tx| {
            before(tx, fixed, me)?;
            messages::move_to(tx, src, dst, filter, limit, include_consumed)
        })
    }

    fn delete_queue(&mut self, queue: &str) -> Result<u64> {
        self.transaction(|tx| admin::delete_queue(tx, queue))
    }

    fn delete_all(&mut self) -> Result<u64> {
        self.transaction(admin::delete_all)
    }

    fn delete_message(&mut self, queue: &str, id: i64) -> Result<bool> {
        self.transaction(|tx| admin::delete_message(tx, queue, id))
    }

    fn queue_counts(&mut self) -> Result<Vec<QueueStats>> {
        self.promote_if_due()?;
        self.transaction(admin::queue_counts)
    }

    fn broadcast(&mut self, body: &str, accept: &dyn Fn(&str) -> bool) -> Result<usize> {
        self.transaction(|tx| admin::broadcast(tx, body, accept))
    }

    fn counters(&mut self) -> Result<DbCounters> {
        self.promote_if_due()?;
        self.transaction(|tx| {
            Ok(DbCounters {
                total_messages: admin::total_count(tx)?,
                last_id: messages::last_id(tx)?,
            })
        })
    }

    fn consumed_count(&mut self) -> Result<u64> {
        self.transaction(admin::consumed_count)
    }

    fn arrivals(&mut self, after_id: i64) -> Result<super::Arrivals> {
        self.transaction(|tx| admin::arrivals(tx, after_id))
    }

    fn vacuum(&mut self, compact: bool) -> Result<u64> {
        let locked = self
            .conn()?
            .client
            .query_one("SELECT pg_try_advisory_lock($1, 0)", &[&(LOCK_CLASS + 1)])
            .map_err(Error::from);
        if !self.check(locked)?.get::<_, bool>(0) {
            return Ok(0); // another process is vacuuming this database
        }
        let result = self.vacuum_locked(compact);
        if let Some(conn) = self.conn.as_mut() {
            let _ = conn
                .client
                .execute("SELECT pg_advisory_unlock($1, 0)", &[&(LOCK_CLASS + 1)]);
        }
        result
    }

    fn aliases(&mut self) -> Result<Vec<(String, String)>> {
        self.transaction(admin::aliases)
    }

    fn alias_add(&mut self, alias: &str, target: &str) -> Result<()> {
        self.transaction(|tx| admin::alias_add(tx, alias, target))
    }

    fn alias_remove(&mut self, alias: &str) -> Result<bool> {
        self.transaction(|tx| admin::alias_remove(tx, alias))
    }

    fn alias_target(&mut self, alias: &str) -> Result<Option<String>> {
        self.transaction(|tx| admin::alias_target(tx, alias))
    }

    fn dump(
        &mut self,
        queues: &[String],
        sink: &mut dyn FnMut(QueuedMessage) -> Result<()>,
    ) -> Result<()> {
        self.promote_if_due()?;
        let mut after = 0;
        loop {
            let page = self.transaction(|tx| messages::dump_page(tx, queues, after, 1000))?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.message.seq;
            page.into_iter().try_for_each(&mut *sink)?;
        }
    }

    fn lease(
        &mut self,
        queue: &str,
        filter: &Filter,
        limit: usize,
        visibility: Option<Duration>,
    ) -> Result<Vec<Message>> {
        let fixed = self.fixed_now();
        let me = self.custody.as_ref().map(|c| c.token);
        if let Some(v) = visibility {
            let quick = leases::lease_quick(self.conn()?, queue, filter, limit, v, fixed, me);
            if let Some(taken) = self.check(quick)? {
                return Ok(taken);
            }
        }
        self.transaction(|tx| {
            let b = before(tx, fixed, me)?;
            let config = match visibility {
                Some(_) => QueueConfig::default(),
                None => leases::config(tx, queue)?,
            };
            let until = crate::policy::lease_deadline(b.now, visibility, &config);
            leases::lease(tx, queue, filter, limit, until)
        })
    }

    fn ack(
        &mut self,
        queue: &str,
        receipts: &[Receipt],
    ) -> Result<Vec<std::result::Result<(), ReceiptError>>> {
        let quick = leases::ack_quick(self.conn()?, queue, receipts);
        let done = self.check(quick)?;
        if done.iter().all(|d| *d) {
            return Ok(receipts.iter().map(|_| Ok(())).collect());
        }
        // The refused ones: the transaction asks policy::fence why.
        self.transaction(|tx| {
            receipts
                .iter()
                .zip(&done)
                .map(|(r, done)| match done {
                    true => Ok(Ok(())),
                    false => crate::lease::per_receipt(leases::ack(tx, queue, r)),
                })
                .collect()
        })
    }

    fn nack(
        &mut self,
        queue: &str,
        receipt: &Receipt,
        delay: Option<Duration>,
    ) -> Result<NackOutcome> {
        let now = self.now()?;
        let until = clock::deadline(now, delay);
        self.transaction(|tx| {
            let config = leases::config(tx, queue)?;
            leases::nack(tx, queue, receipt, until, &config)
        })
    }

    fn dead_letter(
        &mut self,
        queue: &str,
        receipt: &Receipt,
        dlq: &str,
        reason: &str,
    ) -> Result<()> {
        self.transaction(|tx| leases::dead_letter_lease(tx, queue, receipt, dlq, reason))
    }

    fn give_back(&mut self, queue: &str, receipts: &[Receipt]) -> Result<()> {
        self.transaction(|tx| {
            receipts
                .iter()
                .try_for_each(|r| leases::give_back(tx, queue, r))
        })
    }

    fn extend(&mut self, queue: &str, receipt: &Receipt, visibility: Duration) -> Result<()> {
        let until = clock::after(self.now()?, visibility);
        self.transaction(|tx| leases::extend(tx, queue, receipt, until))
    }

    fn queue_config(&mut self, queue: &str) -> Result<QueueConfig> {
        self.transaction(|tx| leases::config(tx, queue))
    }

    fn set_queue_config(&mut self, queue: &str, config: &QueueConfig) -> Result<()> {
        self.transaction(|tx| leases::set_config(tx, queue, config))
    }

    fn queue_configs(&mut self) -> Result<Vec<(String, QueueConfig)>> {
        self.transaction(leases::configs)
    }

    fn redrive(&mut self, dlq: &str, target: Option<&str>) -> Result<u64> {
        let fixed = self.fixed_now();
        let me = self.custody.as_ref().map(|c| c.token);
        self.transaction(|tx| {
            before(tx, fixed, me)?;
            leases::redrive(tx, dlq, target)
        })
    }

    fn deferred_counts(&mut self) -> Result<Vec<DeferredCounts>> {
        self.promote_if_due()?;
        let rows = self.transaction(leases::deferred_counts)?;
        Ok(rows
            .into_iter()
            .map(|(queue, leased, delayed)| DeferredCounts {
                queue,
                leased,
                delayed,
            })
            .collect())
    }

    fn until_visible(&mut self, queue: &str) -> Result<Option<Duration>> {
        let now = self.now()?;
        let next = self.transaction(|tx| leases::next_visible_at(tx, queue))?;
        Ok(next.map(|at| clock::until(now, at)))
    }

    fn now_ns(&mut self) -> Result<i64> {
        self.now()
    }

    fn storage_size(&mut self) -> Result<Option<u64>> {
        let size: i64 = self.transaction(|tx| {
            Ok(tx
                .one(
                    "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                    &[],
                )?
                .get(0))
        })?;
        Ok(Some(size.max(0) as u64))
    }

    fn publish(&mut self, topic: &str, batch: &[Outgoing<'_>]) -> Result<Vec<Published>> {
        let now = self.now()?;
        self.transaction(|tx| pubsub::publish(tx, topic, batch, now))
    }

    fn create_topic(&mut self, topic: &str) -> Result<bool> {
        self.transaction(|tx| pubsub::create_topic(tx, topic))
    }

    fn create_subscription(&mut self, sub: &NewSubscription<'_>) -> Result<u64> {
        let now = self.now()?;
        self.transaction(|tx| pubsub::create_subscription(tx, sub, now))
    }

    fn delete_subscription(&mut self, name: &str) -> Result<bool> {
        self.transaction(|tx| pubsub::delete_subscription(tx, name))
    }

    fn subscriptions(&mut self) -> Result<Vec<SubscriptionInfo>> {
        let now = self.now()?;
        self.transaction(|tx| {
            pubsub::reap(tx, now)?;
            pubsub::subscriptions(tx)
        })
    }

    fn topics(&mut self) -> Result<Vec<TopicInfo>> {
        self.transaction(pubsub::topics)
    }

    fn set_retention(&mut self, pattern: &str, retention: &Retention) -> Result<()> {
        let now = self.now()?;
        self.transaction(|tx| pubsub::set_retention(tx, pattern, retention, now))
    }

    fn retention_setting(&mut self, pattern: &str) -> Result<Retention> {
        self.transaction(|tx| pubsub::retention_setting(tx, pattern))
    }

    fn touch_subscription(&mut self, name: &str) -> Result<bool> {
        let now = self.now()?;
        self.transaction(|tx| pubsub::touch(tx, name, now))
    }
}

impl PostgresBackend {
    fn vacuum_locked(&mut self, compact: bool) -> Result<u64> {
        self.transaction(|tx| custody::release_dead(tx, None).map(|_| ()))?;
        self.promote_if_due()?;
        let batch = self.link.options.vacuum_batch.max(1);
        let mut deleted = 0;
        loop {
            let n = self.transaction(|tx| admin::delete_consumed(tx, batch))?;
            deleted += n;
            if n == 0 {
                break;
            }
        }
        if compact {
            let done = self
                .conn()?
                .client
                .batch_execute("VACUUM FULL messages")
                .map_err(Error::from);
            self.check(done)?;
        }
        Ok(deleted)
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        let _ = self.end_custody();
    }
}
