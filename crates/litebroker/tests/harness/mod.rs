//! The backend harness of the conformance suite: every library-behaviour
//! test (queues, leases, delivery, watch, pub/sub, workers) gets its database
//! from [`harness()`], never from a path, so the same tests run on every
//! backend.
//!
//! The backend is chosen by the environment variable [`BACKEND_VAR`]
//! (`LITEBROKER_TEST_BACKEND`): `sqlite` (the default) gives a
//! [`SqliteHarness`], a fresh `.broker.db` in a temporary directory per test.
//! An unknown name fails every test at once with the list of known ones.
//!
//! Adding a backend (PostgreSQL, an in-memory test backend) is one more
//! `impl Harness` below and one more arm in [`harness()`] (and its name in
//! [`KNOWN`]); no test changes. Its `connector` must give a fresh, empty
//! database per harness (e.g. a schema of its own) and its
//! `connector_with_clock` must measure leases, delays and expiry on the clock
//! given.
//!
//! Tests that are about SQLite itself (the file format, `-wal` and holder
//! files, raw table access, PRAGMAs) live in `tests/sqlite_backend.rs` and do
//! not use this module.
//!
//! Each test file includes it with `mod harness;`; not every file uses every
//! item, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use litebroker::backend::postgres::{PostgresConnector, PostgresOptions};
use litebroker::backend::sqlite::SqliteConnector;
use litebroker::backend::Connector;
use litebroker::clock::Clock;
use litebroker::message::Filter;
use litebroker::{Broker, Headers, Message, Published, Settings};

/// The environment variable that names the backend the suite runs on.
pub const BACKEND_VAR: &str = "LITEBROKER_TEST_BACKEND";

/// The backends [`harness()`] knows, the default first.
pub const KNOWN: &[&str] = &["sqlite", "postgres"];

/// The PostgreSQL server the `postgres` harness uses (`scripts/test.sh`
/// starts a throwaway cluster and sets it).
pub const POSTGRES_URL_VAR: &str = "BROKER_TEST_POSTGRES_URL";

/// One fresh database on one backend, for one test.
pub trait Harness {
    /// A connector to this harness's database: fresh and empty when the
    /// harness was made; every call returns connectors to that same database.
    fn connector(&self) -> Arc<dyn Connector>;

    /// The same database, with leases, delays and expiry measured on `clock`
    /// (on every connection of the returned connector).
    fn connector_with_clock(&self, clock: Arc<dyn Clock>) -> Arc<dyn Connector>;

    /// A connection to the database (each call a new one).
    fn broker(&self) -> Broker {
        Broker::connect(self.connector())
            .unwrap_or_else(|e| panic!("connect to the {} test database: {e}", self.name()))
    }

    /// A connection whose leases and delays are measured on `clock`.
    fn broker_with_clock(&self, clock: Arc<dyn Clock>) -> Broker {
        Broker::connect(self.connector_with_clock(clock))
            .unwrap_or_else(|e| panic!("connect to the {} test database: {e}", self.name()))
    }

    /// The backend's name, as [`BACKEND_VAR`] spells it.
    fn name(&self) -> &'static str;
}

/// A boxed harness is one too, so helpers can take `&dyn Harness` and be
/// called with `&harness()`'s box.
impl<H: Harness + ?Sized> Harness for Box<H> {
    fn connector(&self) -> Arc<dyn Connector> {
        (**self).connector()
    }

    fn connector_with_clock(&self, clock: Arc<dyn Clock>) -> Arc<dyn Connector> {
        (**self).connector_with_clock(clock)
    }

    fn broker(&self) -> Broker {
        (**self).broker()
    }

    fn broker_with_clock(&self, clock: Arc<dyn Clock>) -> Broker {
        (**self).broker_with_clock(clock)
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

/// A fresh database on the backend [`BACKEND_VAR`] names (default `sqlite`).
pub fn harness() -> Box<dyn Harness> {
    let chosen = match std::env::var(BACKEND_VAR) {
        Ok(name) if !name.is_empty() => name,
        Ok(_) | Err(std::env::VarError::NotPresent) => KNOWN[0].to_owned(),
        Err(std::env::VarError::NotUnicode(raw)) => {
            panic!("{BACKEND_VAR}={raw:?} is not a backend name; known: {KNOWN:?}")
        }
    };
    match chosen.as_str() {
        "sqlite" => Box::new(SqliteHarness::new()),
        "postgres" => Box::new(PostgresHarness::new()),
        other => panic!(
            "{BACKEND_VAR}={other:?} names no test backend; known: {}",
            KNOWN.join(", ")
        ),
    }
}

/// The default backend: a SimpleBroker-format file, `.broker.db` in a
/// temporary directory that lives as long as the harness.
pub struct SqliteHarness {
    dir: tempfile::TempDir,
    path: PathBuf,
    /// Shared by every `connector()` call, as one process shares one
    /// connector (and so one change feed) per database.
    connector: Arc<SqliteConnector>,
}

impl SqliteHarness {
    /// A new, empty database file (created on first connect).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(".broker.db");
        let connector = Arc::new(SqliteConnector::new(&path, &Settings::default()));
        SqliteHarness {
            dir,
            path,
            connector,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for SqliteHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness for SqliteHarness {
    fn connector(&self) -> Arc<dyn Connector> {
        self.connector.clone()
    }

    fn connector_with_clock(&self, clock: Arc<dyn Clock>) -> Arc<dyn Connector> {
        Arc::new(SqliteConnector::new(&self.path, &Settings::default()).with_clock(clock))
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }
}

/// PostgreSQL: a schema of its own per harness on the server
/// [`POSTGRES_URL_VAR`] names, dropped when the harness goes.
pub struct PostgresHarness {
    url: String,
    options: PostgresOptions,
    connector: Arc<PostgresConnector>,
}

impl PostgresHarness {
    /// A new, empty schema (created on first connect).
    pub fn new() -> Self {
        let url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!("{BACKEND_VAR}=postgres needs {POSTGRES_URL_VAR} (scripts/test.sh sets both)")
        });
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let options = PostgresOptions {
            schema: format!(
                "lbt_{}_{n}_{}",
                std::process::id(),
                litebroker::id::now_ns() % 1_000_000
            ),
            ..PostgresOptions::default()
        };
        let connector = Arc::new(PostgresConnector::new(&url, options.clone()).unwrap());
        PostgresHarness {
            url,
            options,
            connector,
        }
    }
}

impl Default for PostgresHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PostgresHarness {
    fn drop(&mut self) {
        let _ = self.connector.drop_schema();
    }
}

impl Harness for PostgresHarness {
    fn connector(&self) -> Arc<dyn Connector> {
        self.connector.clone()
    }

    fn connector_with_clock(&self, clock: Arc<dyn Clock>) -> Arc<dyn Connector> {
        Arc::new(
            PostgresConnector::new(&self.url, self.options.clone())
                .unwrap()
                .with_clock(clock),
        )
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}

/// Writes `m0`..`m{n-1}` to `queue` in one batch.
pub fn fill(broker: &mut Broker, queue: &str, n: usize) {
    let bodies: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    broker.queue(queue).unwrap().write_many(&refs).unwrap();
}

/// Reads (consumes) up to `n` messages of `queue`.
pub fn read_up_to(broker: &mut Broker, queue: &str, n: usize) -> Vec<Message> {
    broker
        .queue(queue)
        .unwrap()
        .read_many(&Filter::all(), n)
        .unwrap()
}

/// Reads (consumes) every message of `queue`; their bodies, in order.
pub fn drain(broker: &mut Broker, queue: &str) -> Vec<String> {
    read_up_to(broker, queue, usize::MAX)
        .into_iter()
        .map(|m| m.body)
        .collect()
}

/// Publishes `body` to `topic` without headers.
pub fn publish(broker: &mut Broker, topic: &str, body: &str) -> Published {
    broker.publish(topic, body, &Headers::new()).unwrap()
}

/// (body, topic, offset, value of header "k") of every message, in order.
pub fn origins(messages: &[Message]) -> Vec<(String, String, i64, Option<String>)> {
    messages
        .iter()
        .map(|m| {
            let o = m.origin.clone().expect("a published copy has an origin");
            let k = m.headers.get_str("k").map(str::to_owned);
            (m.body.clone(), o.topic, o.offset, k)
        })
        .collect()
}

/// What `publish_batches` leaves in a subscription of "t", for `offsets`:
/// (body, topic, offset, header k).
pub fn expected(offsets: std::ops::Range<i64>) -> Vec<(String, String, i64, Option<String>)> {
    offsets
        .map(|o| {
            let k = (o % 3 == 1).then(|| format!("h{o}"));
            (format!("m{o}"), "t".to_owned(), o, k)
        })
        .collect()
}

/// Publishes m0..m{n} to "t" in batches of `batch`; every third message
/// (offsets 1, 4, 7, ...) has a header k=h{offset}.
pub fn publish_batches(b: &mut Broker, n: i64, batch: usize) {
    let bodies: Vec<String> = (0..n).map(|o| format!("m{o}")).collect();
    let headers: Vec<Headers> = (0..n)
        .map(|o| {
            if o % 3 == 1 {
                Headers::from_assignments(&[format!("k=h{o}").as_str()]).unwrap()
            } else {
                Headers::new()
            }
        })
        .collect();
    let all: Vec<litebroker::Outgoing<'_>> = bodies
        .iter()
        .zip(&headers)
        .map(|(body, h)| litebroker::Outgoing {
            body,
            headers: (!h.is_empty()).then_some(h),
            delay: None,
        })
        .collect();
    for chunk in all.chunks(batch) {
        let published = b.publish_batch("t", chunk).unwrap();
        assert_eq!(published.len(), chunk.len());
    }
}

/// Creates a durable subscription.
pub fn subscribe(
    b: &mut Broker,
    name: &str,
    pattern: &str,
    from: litebroker::pubsub::StartFrom,
) -> u64 {
    b.create_subscription(&litebroker::pubsub::NewSubscription {
        name,
        pattern,
        from,
        ephemeral: None,
    })
    .unwrap()
}

/// The bodies visible in `queue`, oldest first, left in place.
pub fn pending(db: &dyn Harness, queue: &str) -> Vec<String> {
    let mut broker = db.broker();
    let mut q = broker.queue(queue).unwrap();
    q.peek_iter(&Filter::all())
        .map(|m| m.unwrap().body)
        .collect()
}
