//! Library calls on a bounded blocking pool: the core is synchronous, so
//! every call runs on tokio's blocking threads, at most `limit` at once, each
//! on a connection taken from a small pool of open ones.
//!
//! The server's own write transactions (publishes, leases, acks, give-backs)
//! take turns on an async lock ([`Store::write`]): the database has one
//! writer at a time anyway, and waiting in line here hands the turn over the
//! moment the previous transaction ends, where colliding on the database's
//! lock would leave the loser polling it (SQLite's busy handler sleeps
//! between attempts, and those sleeps become idle time of the one writer).

use std::sync::{Arc, Mutex};

use litebroker::{Broker, Connector};
use tokio::sync::{Mutex as AsyncMutex, Semaphore};

/// The database, as the server's tasks reach it.
pub struct Store {
    connector: Arc<dyn Connector>,
    idle: Mutex<Vec<Broker>>,
    permits: Semaphore,
    writer: AsyncMutex<()>,
}

impl Store {
    /// At most `limit` library calls run at once.
    pub fn new(connector: Arc<dyn Connector>, limit: usize) -> Arc<Store> {
        Arc::new(Store {
            connector,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(limit.max(1)),
            writer: AsyncMutex::new(()),
        })
    }

    /// The connector (for its change feed).
    pub fn connector(&self) -> &Arc<dyn Connector> {
        &self.connector
    }

    /// Runs `f`, which writes, after the server's other writes (see the
    /// module doc).
    pub async fn write<T, F>(self: &Arc<Self>, f: F) -> litebroker::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Broker) -> litebroker::Result<T> + Send + 'static,
    {
        let _turn = self.writer.lock().await;
        self.call(f).await
    }

    /// Runs `f` on a pooled connection on the blocking pool.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> litebroker::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Broker) -> litebroker::Result<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the pool is never closed");
        let store = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let pooled = store.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut broker = match pooled {
                Some(b) => b,
                None => Broker::connect(store.connector.clone())?,
            };
            let out = f(&mut broker);
            // A connection whose storage failed may be unusable: open a new one next time.
            let healthy = !matches!(&out, Err(e) if matches!(
                e.kind(),
                litebroker::ErrorKind::Storage | litebroker::ErrorKind::Unavailable
            ));
            if healthy {
                store
                    .idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(broker);
            }
            out
        })
        .await;
        match joined {
            Ok(out) => out,
            // A library call that panicked: the server's fault, not the request's.
            Err(e) => Err(litebroker::Error::Integrity(format!(
                "the request failed inside the server: {e}"
            ))),
        }
    }
}

impl Drop for Store {
    /// Pooled connections are closed on a thread of their own when a runtime
    /// is about: closing one may block (the synchronous PostgreSQL client runs
    /// its own runtime, which may not be entered from an async task).
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        if idle.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            // A plain thread: the runtime may be shutting down, when it
            // would drop a blocking task (and so the connections) right here.
            Ok(_) => drop(std::thread::spawn(move || drop(idle))),
            Err(_) => drop(idle),
        }
    }
}
