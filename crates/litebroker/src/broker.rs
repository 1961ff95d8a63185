//! [`Broker`]: a handle on one database and the operations that span queues.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::backend::sqlite::SqliteConnector;
use crate::backend::{Backend, ChangeFeed, Connector};
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{AliasError, Error, Result};
use crate::lease::QueueConfig;
use crate::message::QueuedMessage;
use crate::name::{alias_reference, validate_queue_name};
use crate::queue::Queue;

/// Counts for one queue, as `list --stats` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Queue name.
    pub name: String,
    /// Messages a reader would get.
    pub pending: u64,
    /// All stored rows, including consumed rows awaiting vacuum and held ones.
    pub total: u64,
    /// Messages leased to consumers right now (counted in `total`, not `pending`).
    pub leased: u64,
    /// Messages waiting out a delay (counted in `total`, not `pending`).
    pub delayed: u64,
    /// The queue's delivery settings.
    pub config: QueueConfig,
}

impl QueueStats {
    /// Rows that are not pending (consumed or held).
    pub fn claimed(&self) -> u64 {
        self.total - self.pending
    }
}

/// What `--status` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Every stored row.
    pub total_messages: u64,
    /// The id high-water mark (0 for a new database).
    pub last_id: i64,
    /// Size of the main database file in bytes (not counting the WAL).
    pub db_size: u64,
    /// Messages leased to consumers right now.
    pub leased: u64,
    /// Messages waiting out a delay.
    pub delayed: u64,
}

/// What a vacuum did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VacuumReport {
    /// Consumed rows found before vacuuming (what the reference reports).
    pub consumed_before: u64,
    /// Rows actually deleted (0 if another vacuum held the lock).
    pub deleted: u64,
}

/// A handle on one broker database: one connection, plus the connector it
/// came from (so that watchers, workers and subscriptions can open their own).
pub struct Broker {
    backend: Box<dyn Backend>,
    connector: Arc<dyn Connector>,
}

impl Broker {
    /// Opens (creating if needed) the SQLite database at `path`: the
    /// embedded default, and the convenience the CLI uses.
    pub fn open(path: &Path, settings: &Settings) -> Result<Self> {
        Self::connect(Arc::new(SqliteConnector::new(path, settings)))
    }

    /// Opens a connection through `connector` (any backend).
    pub fn connect(connector: Arc<dyn Connector>) -> Result<Self> {
        let backend = connector.connect()?;
        Ok(Broker { backend, connector })
    }

    /// The connector this broker's connection came from.
    pub fn connector(&self) -> Arc<dyn Connector> {
        self.connector.clone()
    }

    /// The database's change feed (see [`ChangeFeed`]).
    pub fn changes(&self) -> ChangeFeed {
        self.connector.changes()
    }

    /// Measures this connection's leases and delays on `clock` from now on.
    /// Only this connection: watchers, workers and subscriptions open their
    /// own through the connector, so a test that moves time for all of them
    /// gives the connector the clock (`SqliteConnector::with_clock`).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.backend.set_clock(clock);
    }

    /// Now, on the database's clock (Unix ns): what leases and delays are measured on.
    pub fn now_ns(&mut self) -> Result<i64> {
        self.backend.now_ns()
    }

    /// Direct access to the storage primitives of this connection.
    pub fn backend(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    /// A handle on queue `name` (a plain name; validated).
    pub fn queue(&mut self, name: &str) -> Result<Queue<'_>> {
        validate_queue_name(name)?;
        Ok(Queue::new(self, name.to_owned()))
    }

    /// Turns a command-line operand into a queue name: `@alias` resolves one hop
    /// to its target; a plain name is validated and returned as is.
    pub fn resolve(&mut self, operand: &str) -> Result<String> {
        let Some(alias) = alias_reference(operand) else {
            validate_queue_name(operand)?;
            return Ok(operand.to_owned());
        };
        if alias.is_empty() {
            return Err(AliasError::Empty.into());
        }
        match self.backend.alias_target(alias)? {
            Some(target) => Ok(target),
            None => Err(AliasError::Undefined(alias.to_owned()).into()),
        }
    }

    /// Every queue that has rows or settings, by name (byte order), with its
    /// leased and delayed counts and settings.
    pub fn list(&mut self) -> Result<Vec<QueueStats>> {
        let mut queues: BTreeMap<String, QueueStats> = BTreeMap::new();
        for counted in self.backend.queue_counts()? {
            queues.insert(counted.name.clone(), counted);
        }
        for d in self.backend.deferred_counts()? {
            let q = stats_entry(&mut queues, d.queue);
            (q.leased, q.delayed) = (d.leased, d.delayed);
        }
        for (name, config) in self.backend.queue_configs()? {
            stats_entry(&mut queues, name).config = config;
        }
        Ok(queues.into_values().collect())
    }

    /// Every queue with delivery settings, by name.
    pub fn queue_configs(&mut self) -> Result<Vec<(String, QueueConfig)>> {
        self.backend.queue_configs()
    }

    /// Replaces the delivery settings of `queue`, after checking them: a
    /// dead-letter queue must be a valid name other than the queue itself,
    /// a maximum of receives needs a dead-letter queue to send messages to,
    /// and a visibility timeout must be a usable lease length.
    pub fn configure_queue(&mut self, queue: &str, config: &QueueConfig) -> Result<()> {
        validate_queue_name(queue)?;
        crate::queue::check_delivery(
            queue,
            config.visibility,
            config.dead_letter.as_deref(),
            config.max_receives,
        )?;
        if config.max_receives.is_some() && config.dead_letter.is_none() {
            return Err(Error::QueueConfig(format!(
                "a maximum of receives needs a dead-letter queue for queue '{queue}' (--dead-letter)"
            )));
        }
        self.backend.set_queue_config(queue, config)
    }

    /// Moves the dead letters of `dlq` back to the queues they came from, or
    /// all of its messages to `target`; their receive counts start again.
    pub fn redrive(&mut self, dlq: &str, target: Option<&str>) -> Result<u64> {
        validate_queue_name(dlq)?;
        if let Some(t) = target {
            validate_queue_name(t)?;
            crate::name::check_distinct(dlq, t)?;
        }
        self.backend.redrive(dlq, target)
    }

    /// Writes `body` to every existing queue whose name matches `pattern`
    /// (fnmatch glob; all queues if `None`). Returns how many queues got it.
    pub fn broadcast(&mut self, body: &str, pattern: Option<&str>) -> Result<usize> {
        check_size(body)?;
        let accept = |name: &str| pattern.is_none_or(|p| crate::glob::matches(p, name));
        self.backend.broadcast(body, &accept)
    }

    /// Deletes every message of every queue.
    pub fn delete_all(&mut self) -> Result<u64> {
        self.backend.delete_all()
    }

    /// Adds alias `alias` for queue `target`.
    pub fn alias_add(&mut self, alias: &str, target: &str) -> Result<()> {
        if alias == target {
            return Err(AliasError::SameAsTarget.into());
        }
        if alias.starts_with('@') || target.starts_with('@') {
            return Err(AliasError::LeadingAt.into());
        }
        validate_queue_name(alias)?;
        self.backend.alias_add(alias, target)
    }

    /// Removes alias `alias`.
    pub fn alias_remove(&mut self, alias: &str) -> Result<()> {
        if self.backend.alias_remove(alias)? {
            Ok(())
        } else {
            Err(AliasError::NoSuchAlias(alias.to_owned()).into())
        }
    }

    /// All aliases as `(alias, target)`, sorted by alias; only those of `target` if given.
    pub fn aliases(&mut self, target: Option<&str>) -> Result<Vec<(String, String)>> {
        let all = self.backend.aliases()?;
        Ok(all
            .into_iter()
            .filter(|(_, t)| target.is_none_or(|want| t == want))
            .collect())
    }

    /// Consumed rows still stored (awaiting vacuum), database-wide.
    pub fn consumed_count(&mut self) -> Result<u64> {
        self.backend.consumed_count()
    }

    /// Deletes consumed rows and gives the space back.
    pub fn vacuum(&mut self, compact: bool) -> Result<VacuumReport> {
        let consumed_before = self.backend.consumed_count()?;
        let deleted = if consumed_before == 0 && !compact {
            0
        } else {
            self.backend.vacuum(compact)?
        };
        Ok(VacuumReport {
            consumed_before,
            deleted,
        })
    }

    /// Totals for `--status`.
    pub fn status(&mut self) -> Result<Status> {
        let counters = self.backend.counters()?;
        let db_size = self.backend.storage_size()?.unwrap_or(0);
        let deferred = self.backend.deferred_counts()?;
        Ok(Status {
            total_messages: counters.total_messages,
            last_id: counters.last_id,
            db_size,
            leased: deferred.iter().map(|d| d.leased).sum(),
            delayed: deferred.iter().map(|d| d.delayed).sum(),
        })
    }

    /// Streams every unconsumed message of `queues` (all if empty) to `sink`, in storage order.
    pub fn dump(
        &mut self,
        queues: &[String],
        sink: &mut dyn FnMut(QueuedMessage) -> Result<()>,
    ) -> Result<()> {
        for q in queues {
            validate_queue_name(q)?;
        }
        self.backend.dump(queues, sink)
    }

    /// Restores messages with their ids, all or nothing. Returns how many.
    pub fn load(
        &mut self,
        records: &mut dyn Iterator<Item = Result<QueuedMessage>>,
    ) -> Result<u64> {
        let mut checked = records.map(|r| {
            let r = r?;
            validate_queue_name(&r.queue)?;
            check_size(&r.message.body)?;
            Ok(r)
        });
        self.backend.insert_with_ids(&mut checked)
    }

    /// A new id, reserved in the database's sequence, without writing a message.
    pub fn generate_id(&mut self) -> Result<i64> {
        self.backend.generate_id()
    }

    /// Every stored API key (hashes, never secrets), by name.
    pub fn api_keys(&mut self) -> Result<Vec<crate::backend::StoredKey>> {
        self.backend.api_keys()
    }

    /// Stores a new API key (its name validated like a queue name).
    pub fn api_key_add(&mut self, key: &crate::backend::StoredKey) -> Result<()> {
        validate_queue_name(&key.name)?;
        self.backend.api_key_add(key)
    }

    /// Removes the API key `name`; false if there was none.
    pub fn api_key_revoke(&mut self, name: &str) -> Result<bool> {
        self.backend.api_key_revoke(name)
    }

    /// The id high-water mark as stored now.
    pub fn last_id(&mut self) -> Result<i64> {
        self.backend.last_id()
    }
}

/// The stats of queue `name`, zero until filled in.
fn stats_entry(map: &mut BTreeMap<String, QueueStats>, name: String) -> &mut QueueStats {
    map.entry(name.clone()).or_insert_with(|| QueueStats {
        name,
        ..QueueStats::default()
    })
}

/// Refuses bodies over the 10 MiB limit.
pub(crate) fn check_size(body: &str) -> Result<()> {
    if body.len() > crate::message::MAX_MESSAGE_SIZE {
        return Err(Error::MessageTooLarge {
            limit: crate::message::MAX_MESSAGE_SIZE,
        });
    }
    Ok(())
}
