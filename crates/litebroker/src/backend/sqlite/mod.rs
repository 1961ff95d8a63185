//! The default backend: one SQLite file in SimpleBroker's format.

mod admin;
mod busy;
mod deferred;
pub mod feed;
pub mod holder;
mod holders;
pub mod location;
mod messages;
mod open;
mod pubsub;
pub mod retry;
pub mod schema;
mod select;
mod spans;
mod vacuum_lock;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use self::holder::ProcessIdentity;
use self::retry::with_retry;
use self::select::States;
use super::{Backend, DbCounters, DeferredCounts, SeqRange};
use crate::broker::QueueStats;
use crate::clock::{self, Clock};
use crate::config::{Settings, SyncMode};
use crate::error::{Error, Result};
use crate::lease::{NackOutcome, QueueConfig, Receipt, ReceiptError};
use crate::message::{Filter, Message, Outgoing, QueuedMessage};
use crate::pubsub::{NewSubscription, Published, Retention, SubscriptionInfo, TopicInfo};

pub use open::is_broker_database;

/// Opens connections to one SQLite database file, and owns its change feed.
pub struct SqliteConnector {
    path: PathBuf,
    settings: Settings,
    clock: Arc<dyn Clock>,
    feed: std::sync::OnceLock<super::ChangeFeed>,
}

impl SqliteConnector {
    /// A connector for the database file at `path` (created on first connect).
    pub fn new(path: &Path, settings: &Settings) -> Self {
        SqliteConnector {
            path: path.to_path_buf(),
            settings: settings.clone(),
            clock: clock::system(),
            feed: std::sync::OnceLock::new(),
        }
    }

    /// Measures leases and delays of every connection on `clock` (tests move
    /// time by hand; for a file on one host the database's clock is the host's).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a connection with this connector's settings and clock.
    pub fn open(&self) -> Result<SqliteBackend> {
        let mut backend = SqliteBackend::open(&self.path, &self.settings)?;
        backend.clock = self.clock.clone();
        Ok(backend)
    }
}

impl super::Connector for SqliteConnector {
    fn connect(&self) -> Result<Box<dyn Backend>> {
        Ok(Box::new(self.open()?))
    }

    fn changes(&self) -> super::ChangeFeed {
        self.feed
            .get_or_init(|| {
                let (path, settings) = (self.path.clone(), self.settings.clone());
                super::ChangeFeed::new(Box::new(move || {
                    Ok(Box::new(feed::SqliteSource::open(&path, &settings)?)
                        as Box<dyn super::ChangeSource>)
                }))
            })
            .clone()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A connection to a SimpleBroker-format SQLite database.
pub struct SqliteBackend {
    conn: Connection,
    path: PathBuf,
    settings: Settings,
    me: Option<ProcessIdentity>,
    /// Set while this handle holds messages.
    custody: Option<Custody>,
    /// Lease expiry and delays are measured on this clock.
    clock: Arc<dyn Clock>,
    /// Whether `synchronous` is currently lowered to NORMAL (see [`Self::immediate_relaxed`]).
    relaxed: std::cell::Cell<bool>,
    /// Progress files to remove once the running transaction commits.
    after_commit: holders::AfterCommit,
}

/// This handle's holder record while it holds a batch: one record per
/// batch, ended by the batch's settle whatever became of its messages
/// (deleted or moved away meanwhile), so a later batch never inherits a
/// record, nor its progress.
struct Custody {
    key: holders::HolderKey,
    /// The storage positions held (messages has no index on `claimed`:
    /// every statement on held rows is bounded by this range).
    held: SeqRange,
    /// Created on the first progress record.
    progress: Option<holders::ProgressFile>,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, settings: &Settings) -> Result<Self> {
        let conn = open::open_database(path, settings)?;
        Ok(SqliteBackend {
            conn,
            path: path.to_path_buf(),
            settings: settings.clone(),
            me: None,
            custody: None,
            clock: clock::system(),
            relaxed: std::cell::Cell::new(false),
            after_commit: holders::AfterCommit::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn me(&mut self) -> &ProcessIdentity {
        self.me.get_or_insert_with(ProcessIdentity::current)
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction, retried as a whole while
    /// the database is busy, committed with the configured durability.
    fn immediate<T>(&self, body: impl FnMut(&Connection) -> Result<T>) -> Result<T> {
        self.set_relaxed(false)?;
        self.transaction(body)
    }

    /// Like [`Self::immediate`] but committed without waiting for the disk when
    /// the configured mode is FULL. Used only for custody and leases (holding,
    /// settling, leasing, acking, nacking, extending), where losing the commit
    /// to a power failure means a redelivery, never a loss. New messages are
    /// still written FULL.
    fn immediate_relaxed<T>(&self, body: impl FnMut(&Connection) -> Result<T>) -> Result<T> {
        self.set_relaxed(self.settings.sqlite.sync_mode == SyncMode::Full)?;
        self.transaction(body)
    }

    /// Switches `synchronous` only when it changes: a short-lived `read`
    /// process then pays one pragma, not two per transaction.
    fn set_relaxed(&self, relaxed: bool) -> Result<()> {
        if self.relaxed.get() != relaxed {
            let mode = if relaxed { "NORMAL" } else { "FULL" };
            self.conn
                .execute_batch(&format!("PRAGMA synchronous={mode}"))?;
            self.relaxed.set(relaxed);
        }
        Ok(())
    }

    fn transaction<T>(&self, mut body: impl FnMut(&Connection) -> Result<T>) -> Result<T> {
        let conn = &self.conn;
        with_retry(|| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let result = body(conn).and_then(|v| {
                conn.execute_batch("COMMIT")?;
                Ok(v)
            });
            if result.is_err() && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            match &result {
                Ok(_) => self.after_commit.committed(),
                Err(_) => self.after_commit.rolled_back(),
            }
            result
        })
    }

    /// A write that repairs a lagging id high-water mark once on a unique-id conflict.
    fn write_ids(&self, queue: &str, batch: &[Outgoing<'_>]) -> Result<Vec<i64>> {
        let now = self.now();
        self.write_retrying_ids(|c| messages::write(c, queue, batch, now))
    }

    /// Runs a transaction that allocates ids; on a unique-id conflict (a
    /// lagging `meta.last_ts`, as the reference can leave it) repairs the
    /// high-water mark once and tries again.
    fn write_retrying_ids<T>(&self, mut body: impl FnMut(&Connection) -> Result<T>) -> Result<T> {
        match self.immediate(&mut body) {
            Err(e) if is_unique_violation(&e) => {
                self.immediate(messages::repair_last_id)?;
                self.immediate(body)
            }
            other => other,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ns()
    }

    /// Before a read-only look (peek, counts, dump): makes due leased and
    /// delayed messages visible, paying for a write transaction only when
    /// something is due.
    fn promote_if_due(&self) -> Result<()> {
        let now = self.now();
        if deferred::has_due(&self.conn, now)? {
            self.immediate(|c| deferred::promote_due(c, now))?;
        }
        Ok(())
    }

    /// What every consuming transaction does first: settle dead holders'
    /// messages and return due leased and delayed ones to their queues.
    fn prepare_take(&mut self) -> Take {
        Take {
            me: self.me().clone(),
            db: self.path.clone(),
            now: self.now(),
        }
    }
}

/// What a consuming transaction needs to know to tidy up first (see
/// [`SqliteBackend::prepare_take`]).
struct Take {
    me: ProcessIdentity,
    db: PathBuf,
    now: i64,
}

impl Take {
    fn before(&self, c: &Connection, after: &holders::AfterCommit) -> Result<()> {
        holders::release_dead(c, &self.db, &self.me, after)?;
        deferred::promote_due(c, self.now)?;
        Ok(())
    }
}

/// The lowest and highest storage positions of `held` (`(1, 0)`, an empty
/// range, for none).
fn seq_bounds(held: &[Message]) -> (i64, i64) {
    let lo = held.iter().map(|m| m.seq).min().unwrap_or(1);
    let hi = held.iter().map(|m| m.seq).max().unwrap_or(0);
    (lo, hi)
}

fn is_unique_violation(e: &Error) -> bool {
    matches!(
        e.storage_source::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

/// SQLite's errors are storage errors: opaque above the seam, their text in the message.
/// A failed write (full disk, `ulimit -f`, an I/O error while writing) is
/// told apart, so that the CLI can say what to change.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        let write_failed = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE
                || f.code == rusqlite::ErrorCode::DiskFull);
        if write_failed {
            Error::WriteFailed(Box::new(e))
        } else {
            Error::storage(e)
        }
    }
}

impl Backend for SqliteBackend {
    fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    fn write(&mut self, queue: &str, batch: &[Outgoing<'_>]) -> Result<Vec<i64>> {
        self.write_ids(queue, batch)
    }

    fn write_once(
        &mut self,
        queue: &str,
        key: &str,
        keep: Duration,
        batch: &[Outgoing<'_>],
    ) -> Result<(Vec<i64>, bool)> {
        let now = self.now();
        let expires = crate::clock::after(now, keep);
        self.write_retrying_ids(|c| {
            c.execute_batch(schema::SERVER_DDL)?;
            messages::write_once(c, queue, key, batch, now, expires)
        })
    }

    fn insert_with_ids(
        &mut self,
        records: &mut dyn Iterator<Item = Result<QueuedMessage>>,
    ) -> Result<u64> {
        // Not retried: the iterator is consumed by the first attempt.
        self.set_relaxed(false)?;
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = messages::insert_with_ids(&self.conn, records).and_then(|n| {
            self.conn
                .execute_batch("COMMIT")
                .map(|_| n)
                .map_err(Error::from)
        });
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    fn generate_id(&mut self) -> Result<i64> {
        self.immediate(|c| {
            let id = crate::id::next_id_now(messages::last_id(c)?);
            messages::raise_last_id(c, id)?;
            Ok(id)
        })
    }

    fn last_id(&mut self) -> Result<i64> {
        messages::last_id(&self.conn)
    }

    fn read(&mut self, queue: &str, filter: &Filter, limit: usize) -> Result<Vec<Message>> {
        let take = self.prepare_take();
        self.immediate(|c| {
            take.before(c, &self.after_commit)?;
            messages::take(c, queue, filter, limit, schema::CONSUMED)
        })
    }

    fn hold(&mut self, queue: &str, filter: &Filter, limit: usize) -> Result<Vec<Message>> {
        if limit > 1 {
            // Streaming a long queue: drop cached pages of the previous batch so
            // memory stays flat instead of growing to the whole cache size.
            self.conn.execute_batch("PRAGMA shrink_memory")?;
        }
        let take = self.prepare_take();
        let existing = self.custody.as_ref().map(|c| c.key);
        let taken = self.immediate_relaxed(|c| {
            take.before(c, &self.after_commit)?;
            let key = match existing {
                Some(k) => k,
                // Nothing to hold: no holder record, so an idle poll writes nothing.
                None if !messages::any_visible(c, queue, filter)? => return Ok(None),
                None => holders::register(c, &take.me)?,
            };
            Ok(Some((
                key,
                messages::take(c, queue, filter, limit, -key.token)?,
            )))
        })?;
        let Some((key, held)) = taken else {
            return Ok(Vec::new());
        };
        let (lo, hi) = seq_bounds(&held);
        let custody = self.custody.get_or_insert(Custody {
            key,
            held: lo..=hi,
            progress: None,
        });
        custody.held = (*custody.held.start()).min(lo)..=(*custody.held.end()).max(hi);
        if held.is_empty() && existing.is_none() {
            self.end_custody()?; // registered, then found nothing after all
        }
        Ok(held)
    }

    fn settle(&mut self, consumed: Option<SeqRange>, released: Option<SeqRange>) -> Result<()> {
        let Some(custody) = &self.custody else {
            return Ok(());
        };
        let (token, held) = (custody.key.token, custody.held.clone());
        let db = self.path.clone();
        self.immediate_relaxed(|c| {
            messages::settle(c, token, consumed.as_ref(), released.as_ref())?;
            // Anything the ranges did not cover is returned, and the record goes.
            messages::settle(c, token, None, Some(&held))?;
            holders::unregister(c, &db, token, &self.after_commit)
        })?;
        self.custody = None;
        Ok(())
    }

    fn record_progress(&mut self, seq: i64) -> Result<()> {
        let Some(custody) = self.custody.as_mut() else {
            return Ok(());
        };
        if custody.progress.is_none() {
            custody.progress = holders::ProgressFile::create(&self.path, custody.key).ok();
        }
        let recorded = custody.progress.as_ref().map(|p| p.record(seq));
        if let Some(Ok(())) = recorded {
            return Ok(());
        }
        // No progress file (full disk, no permission, a directory in its
        // place): acknowledge in the database instead, slower but as safe.
        let (token, first) = (custody.key.token, *custody.held.start());
        self.immediate_relaxed(|c| messages::settle(c, token, Some(&(first..=seq)), None))
            .map(|_| ())
    }

    fn peek(
        &mut self,
        queue: &str,
        filter: &Filter,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.promote_if_due()?;
        messages::peek(&self.conn, queue, filter, after_seq, limit)
    }

    fn browse(
        &mut self,
        queue: &str,
        from: crate::backend::BrowseFrom,
        limit: usize,
    ) -> Result<Vec<crate::backend::Browsed>> {
        self.promote_if_due()?;
        messages::browse(&self.conn, queue, from, limit)
    }

    fn replace_message(
        &mut self,
        queue: &str,
        id: i64,
        body: &str,
        headers: &crate::headers::Headers,
    ) -> Result<bool> {
        crate::broker::check_size(body)?;
        self.immediate(|c| messages::replace(c, queue, id, body, headers))
    }

    fn move_messages(
        &mut self,
        src: &str,
        dst: &str,
        filter: &Filter,
        limit: usize,
        include_consumed: bool,
    ) -> Result<Vec<Message>> {
        let states = if include_consumed {
            States::PendingOrConsumed
        } else {
            States::Pending
        };
        let take = self.prepare_take();
        self.immediate(|c| {
            take.before(c, &self.after_commit)?;
            messages::move_to(c, src, dst, filter, limit, states)
        })
    }

    fn delete_queue(&mut self, queue: &str) -> Result<u64> {
        self.immediate(|c| admin::delete_queue(c, queue))
    }

    fn delete_all(&mut self) -> Result<u64> {
        self.immediate(admin::delete_all)
    }

    fn delete_message(&mut self, queue: &str, id: i64) -> Result<bool> {
        self.immediate(|c| admin::delete_message(c, queue, id))
    }

    fn queue_counts(&mut self) -> Result<Vec<QueueStats>> {
        self.promote_if_due()?;
        admin::queue_counts(&self.conn)
    }

    fn broadcast(&mut self, body: &str, accept: &dyn Fn(&str) -> bool) -> Result<usize> {
        self.immediate(|c| admin::broadcast(c, body, accept))
    }

    fn counters(&mut self) -> Result<DbCounters> {
        self.promote_if_due()?;
        admin::counters(&self.conn)
    }

    fn consumed_count(&mut self) -> Result<u64> {
        admin::consumed_count(&self.conn)
    }

    fn arrivals(&mut self, after_id: i64) -> Result<crate::backend::Arrivals> {
        admin::arrivals(&self.conn, after_id)
    }

    fn vacuum(&mut self, compact: bool) -> Result<u64> {
        let batch_size = self.settings.sqlite.vacuum_batch_size;
        let timeout = std::time::Duration::from_secs(self.settings.sqlite.vacuum_lock_timeout_s);
        let _lock = vacuum_lock::VacuumLock::acquire(&self.path, timeout)?
            .map_err(|held| Error::InvalidRequest(vacuum_lock::busy_message(&self.path, &held)))?;
        let db = self.path.clone();
        self.immediate(|c| holders::release_orphans(c, &db, &self.after_commit))?;
        self.promote_if_due()?;
        let mut deleted = 0;
        loop {
            let n = self.immediate(|c| admin::delete_consumed(c, batch_size.max(1)))?;
            deleted += n;
            if n == 0 {
                break;
            }
        }
        self.immediate(|c| {
            deferred::forget_finished(c)?;
            if pubsub::tables_exist(c)? {
                spans::forget_finished(c)?;
            }
            Ok(())
        })?;
        self.reclaim_space(compact)?;
        Ok(deleted)
    }

    fn api_keys(&mut self) -> Result<Vec<crate::backend::StoredKey>> {
        if !admin::has_server_tables(&self.conn)? {
            return Ok(Vec::new());
        }
        admin::api_keys(&self.conn)
    }

    fn api_key_add(&mut self, key: &crate::backend::StoredKey) -> Result<()> {
        self.immediate(|c| {
            c.execute_batch(schema::SERVER_DDL)?;
            admin::api_key_add(c, key)
        })
    }

    fn api_key_revoke(&mut self, name: &str) -> Result<bool> {
        if !admin::has_server_tables(&self.conn)? {
            return Ok(false);
        }
        self.immediate(|c| admin::api_key_revoke(c, name))
    }

    fn aliases(&mut self) -> Result<Vec<(String, String)>> {
        admin::aliases(&self.conn)
    }

    fn alias_add(&mut self, alias: &str, target: &str) -> Result<()> {
        self.immediate(|c| admin::alias_add(c, alias, target))
    }

    fn alias_remove(&mut self, alias: &str) -> Result<bool> {
        self.immediate(|c| admin::alias_remove(c, alias))
    }

    fn alias_target(&mut self, alias: &str) -> Result<Option<String>> {
        admin::alias_target(&self.conn, alias)
    }

    fn dump(
        &mut self,
        queues: &[String],
        sink: &mut dyn FnMut(QueuedMessage) -> Result<()>,
    ) -> Result<()> {
        self.promote_if_due()?;
        let mut after = 0;
        loop {
            let page = messages::dump_page(&self.conn, queues, after, 1000)?;
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
        let take = self.prepare_take();
        self.immediate_relaxed(|c| {
            take.before(c, &self.after_commit)?;
            let config = match visibility {
                Some(_) => QueueConfig::default(),
                None => deferred::config(c, queue)?,
            };
            let until = crate::policy::lease_deadline(take.now, visibility, &config);
            deferred::lease(c, queue, filter, limit, until)
        })
    }

    fn ack(
        &mut self,
        queue: &str,
        receipts: &[Receipt],
    ) -> Result<Vec<std::result::Result<(), ReceiptError>>> {
        self.immediate_relaxed(|c| {
            receipts
                .iter()
                .map(|r| crate::lease::per_receipt(deferred::ack(c, queue, r)))
                .collect()
        })
    }

    fn nack(
        &mut self,
        queue: &str,
        receipt: &Receipt,
        delay: Option<Duration>,
    ) -> Result<NackOutcome> {
        let until = clock::deadline(self.now(), delay);
        self.immediate_relaxed(|c| {
            let config = deferred::config(c, queue)?;
            deferred::nack(c, queue, receipt, until, &config)
        })
    }

    fn dead_letter(
        &mut self,
        queue: &str,
        receipt: &Receipt,
        dlq: &str,
        reason: &str,
    ) -> Result<()> {
        self.immediate_relaxed(|c| deferred::dead_letter_lease(c, queue, receipt, dlq, reason))
    }

    fn give_back(&mut self, queue: &str, receipts: &[Receipt]) -> Result<()> {
        self.immediate_relaxed(|c| {
            receipts
                .iter()
                .try_for_each(|r| deferred::give_back(c, queue, r))
        })
    }

    fn extend(&mut self, queue: &str, receipt: &Receipt, visibility: Duration) -> Result<()> {
        let until = clock::after(self.now(), visibility);
        self.immediate_relaxed(|c| deferred::extend(c, queue, receipt, until))
    }

    fn queue_config(&mut self, queue: &str) -> Result<QueueConfig> {
        deferred::config(&self.conn, queue)
    }

    fn set_queue_config(&mut self, queue: &str, config: &QueueConfig) -> Result<()> {
        self.immediate(|c| deferred::set_config(c, queue, config))
    }

    fn queue_configs(&mut self) -> Result<Vec<(String, QueueConfig)>> {
        deferred::configs(&self.conn)
    }

    fn redrive(&mut self, dlq: &str, target: Option<&str>) -> Result<u64> {
        let take = self.prepare_take();
        self.immediate(|c| {
            take.before(c, &self.after_commit)?;
            deferred::redrive(c, dlq, target)
        })
    }

    fn deferred_counts(&mut self) -> Result<Vec<DeferredCounts>> {
        self.promote_if_due()?;
        let rows = deferred::deferred_counts(&self.conn)?;
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
        let now = self.now();
        let next = deferred::next_visible_at(&self.conn, queue)?;
        Ok(next.map(|at| clock::until(now, at)))
    }

    fn now_ns(&mut self) -> Result<i64> {
        Ok(self.now())
    }

    fn storage_size(&mut self) -> Result<Option<u64>> {
        Ok(std::fs::metadata(&self.path).ok().map(|m| m.len()))
    }

    fn publish(&mut self, topic: &str, batch: &[Outgoing<'_>]) -> Result<Vec<Published>> {
        let take = self.prepare_take();
        self.write_retrying_ids(|c| {
            pubsub::ensure_tables(c)?;
            pubsub::publish(c, topic, batch, &take.me, take.now)
        })
    }

    fn create_topic(&mut self, topic: &str) -> Result<bool> {
        self.immediate(|c| {
            pubsub::ensure_tables(c)?;
            pubsub::create_topic(c, topic)
        })
    }

    fn create_subscription(&mut self, sub: &NewSubscription<'_>) -> Result<u64> {
        let take = self.prepare_take();
        self.write_retrying_ids(|c| {
            pubsub::ensure_tables(c)?;
            pubsub::create_subscription(c, sub, &take.me, take.now)
        })
    }

    // The readers below answer "none" until some writer above has created
    // the pub/sub tables (see `schema::PUBSUB_DDL`).

    fn delete_subscription(&mut self, name: &str) -> Result<bool> {
        self.immediate(|c| Ok(pubsub::tables_exist(c)? && pubsub::delete_subscription(c, name)?))
    }

    fn subscriptions(&mut self) -> Result<Vec<SubscriptionInfo>> {
        if !pubsub::tables_exist(&self.conn)? {
            return Ok(Vec::new());
        }
        let take = self.prepare_take();
        self.immediate(|c| pubsub::reap(c, &take.me, take.now))?;
        pubsub::subscriptions(&self.conn)
    }

    fn topics(&mut self) -> Result<Vec<TopicInfo>> {
        if !pubsub::tables_exist(&self.conn)? {
            return Ok(Vec::new());
        }
        pubsub::topics(&self.conn)
    }

    fn set_retention(&mut self, pattern: &str, retention: &Retention) -> Result<()> {
        let now = self.now();
        self.immediate(|c| {
            pubsub::ensure_tables(c)?;
            pubsub::set_retention(c, pattern, retention, now)
        })
    }

    fn retention_setting(&mut self, pattern: &str) -> Result<Retention> {
        if !pubsub::tables_exist(&self.conn)? {
            return Ok(Retention::default());
        }
        pubsub::retention_setting(&self.conn, pattern)
    }

    fn touch_subscription(&mut self, name: &str) -> Result<bool> {
        let now = self.now();
        self.immediate(|c| Ok(pubsub::tables_exist(c)? && pubsub::touch(c, name, now)?))
    }
}

impl SqliteBackend {
    /// Gives freed pages back: incremental vacuum always, a full rebuild when asked.
    fn reclaim_space(&self, compact: bool) -> Result<()> {
        self.set_relaxed(false)?;
        if compact {
            with_retry(|| self.conn.execute_batch("PRAGMA auto_vacuum=2; VACUUM;"))?;
        } else {
            let mode: i64 = self
                .conn
                .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
            if mode == 2 {
                with_retry(|| self.incremental_vacuum())?;
            }
        }
        with_retry(|| self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))?;
        Ok(())
    }

    /// Frees every page on the free list. The pragma frees one page per step,
    /// so it must be stepped to completion (a single `execute` frees one page).
    fn incremental_vacuum(&self) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        Ok(())
    }

    /// Ends custody as a dead holder's is ended: what the progress record
    /// says was delivered is consumed, the rest returns in place.
    fn end_custody(&mut self) -> Result<()> {
        if let Some(custody) = self.custody.take() {
            let db = self.path.clone();
            self.immediate(|c| holders::close(c, &db, custody.key, &self.after_commit))?;
        }
        Ok(())
    }
}

impl Drop for SqliteBackend {
    /// A handle dropped with messages still held gives them back, so an early
    /// return in a caller can never strand messages until a later reader notices.
    fn drop(&mut self) {
        let _ = self.end_custody();
    }
}
