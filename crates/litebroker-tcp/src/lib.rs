//! The TCP Message Broker's binary protocol, served on litebroker's own
//! topics and subscriptions, so that the original `BrokerClient` and its CLI
//! work unchanged against a litebroker database, and what they publish is
//! what `broker` and the HTTP API see (and the other way round).
//!
//! - [`frame`]: the codec (32-byte header, `key=value\0` properties, body).
//! - [`connection`]: one connection's reader and its single writer.
//! - `request/`: one file per request type.
//! - [`dispatch`]: members, consumer groups, round-robin delivery on leases,
//!   woken by the database's change feed.
//! - [`store`]: library calls on a bounded blocking pool; [`commit`]: group
//!   commit for publishes; [`acker`]: acknowledging written DATA.
//! - [`reply`]: answers, and the one mapping from `ErrorKind` to an error code.
//! - [`body`]: bytes on the wire, UTF-8 text in litebroker.
//!
//! ```no_run
//! # async fn demo(connector: std::sync::Arc<dyn litebroker::Connector>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9999").await?;
//! litebroker_tcp::run(listener, connector, std::future::pending::<()>()).await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use litebroker::Connector;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub mod acker;
pub mod body;
pub mod commit;
pub mod connection;
pub mod dispatch;
pub mod frame;
pub mod reply;
mod request;
pub mod store;

/// Limits and timings of the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest frame accepted, in bytes; a larger one is answered with an
    /// error and the connection closed.
    pub max_frame: usize,
    /// A connection that sends no frame for this long is closed and its
    /// members removed (the original drops members silent for 60 s; its
    /// client sends a heartbeat every 30 s).
    pub idle_timeout: Duration,
    /// How long after a member's SUBSCRIBE answer was written its first
    /// DATA may follow.
    pub grace: Duration,
    /// DATA frames a member may have queued (auto acks) or unacknowledged
    /// (manual acks) at once.
    pub window: usize,
    /// Library calls running at once on the blocking pool.
    pub blocking_calls: usize,
    /// Counters the server adds to as it works (keep a clone of the `Arc`
    /// to read them while it runs).
    pub stats: Arc<Stats>,
    /// Where connected subscribers are counted (share it with the HTTP
    /// server in the same process, so its dashboard shows both).
    pub presence: litebroker::Presence,
}

/// What the server has done, counted: whether publishes share commits and
/// how many frames each write to a socket carries.
#[derive(Debug, Default)]
pub struct Stats {
    /// Publishes committed (or failed) by the group committer.
    pub publishes: AtomicU64,
    /// Transactions those publishes took.
    pub publish_commits: AtomicU64,
    /// DATA frames written to members' sockets.
    pub data_frames: AtomicU64,
    /// Writes to sockets that carried DATA.
    pub data_writes: AtomicU64,
    /// Lease transactions of the dispatchers that leased something.
    pub leases: AtomicU64,
    /// Transactions that acknowledged written DATA (default mode).
    pub ack_commits: AtomicU64,
    /// Microseconds spent in the dispatchers' lease transactions (on the
    /// blocking pool, from start to commit), all together.
    pub lease_micros: AtomicU64,
    /// Microseconds spent in the acknowledging transactions, all together.
    pub ack_micros: AtomicU64,
}

impl Stats {
    /// The counters as (name, value) pairs, in a stable order.
    pub fn snapshot(&self) -> [(&'static str, u64); 8] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("publishes", get(&self.publishes)),
            ("publish_commits", get(&self.publish_commits)),
            ("data_frames", get(&self.data_frames)),
            ("data_writes", get(&self.data_writes)),
            ("leases", get(&self.leases)),
            ("ack_commits", get(&self.ack_commits)),
            ("lease_micros", get(&self.lease_micros)),
            ("ack_micros", get(&self.ack_micros)),
        ]
    }
}

/// Adds `n` to a counter.
pub(crate) fn count(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame: litebroker::message::MAX_MESSAGE_SIZE + (1 << 20),
            idle_timeout: Duration::from_secs(60),
            grace: Duration::from_millis(250),
            window: 512,
            blocking_calls: 16,
            stats: Arc::default(),
            presence: litebroker::Presence::new(),
        }
    }
}

/// Serves the protocol on `listener` until `shutdown` completes, with the
/// default [`Config`].
pub async fn run(listener: TcpListener, connector: Arc<dyn Connector>, shutdown: impl Future) {
    run_with(listener, connector, Config::default(), shutdown).await
}

/// Serves the protocol on `listener` until `shutdown` completes; then stops
/// accepting, closes every connection (their members' undelivered messages
/// go back to their subscriptions) and returns.
pub async fn run_with(
    listener: TcpListener,
    connector: Arc<dyn Connector>,
    config: Config,
    shutdown: impl Future,
) {
    let (stop, stopped) = watch::channel(false);
    let store = store::Store::new(connector.clone(), config.blocking_calls);
    let hub = dispatch::Hub::new(store, config, stopped.clone());
    // One listener on the database's change feed wakes every dispatcher.
    // Registering may open the feed's first connection, a blocking call (on
    // PostgreSQL the synchronous client runs its own runtime): not on this one.
    let woken = hub.clone();
    let feed = connector.clone();
    let _listening =
        tokio::task::spawn_blocking(move || feed.changes().listen(move || woken.nudge()))
            .await
            .ok();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection::serve(stream, hub.clone(), stopped.clone()));
                }
                Err(e) => {
                    // Out of descriptors and the like: wait a little, go on.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    // What was written is acknowledged before we return.
    hub.acker.flush().await;
}
