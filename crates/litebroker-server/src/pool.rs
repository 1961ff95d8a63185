//! The bounded blocking pool: the library is synchronous, so every call runs
//! on tokio's blocking threads, at most `size` at a time (a semaphore), on a
//! connection taken from a small free list and given back afterwards.

use std::sync::{Arc, Mutex};

use litebroker::{Broker, Connector};
use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};

/// Runs library calls off the async threads, bounded.
pub struct Pool {
    /// Always `Some` until dropped (taken then, to be let go off the async threads).
    connector: Option<Arc<dyn Connector>>,
    idle: Mutex<Vec<Broker>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    /// A pool of at most `size` concurrent calls on `connector`'s database.
    pub fn new(connector: Arc<dyn Connector>, size: usize) -> Self {
        Pool {
            connector: Some(connector),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// Runs `f` on a connection on a blocking thread, waiting for a free
    /// slot first. A connection whose call failed in storage is dropped
    /// rather than reused.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Broker) -> ApiResult<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::shutting_down())?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut broker = match pool.take() {
                Ok(b) => b,
                Err(e) => return Err(ApiError::from(e)),
            };
            let result = f(&mut broker);
            let storage_failed = matches!(&result, Err(e) if e.code == "storage");
            if !storage_failed {
                pool.give_back(broker);
            }
            result
        })
        .await
        .map_err(|e| ApiError::internal(format!("worker thread failed: {e}")))?
    }

    fn take(&self) -> litebroker::Result<Broker> {
        let reused = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match reused {
            Some(b) => Ok(b),
            None => Broker::connect(self.connector.clone().expect("pool in use")),
        }
    }

    fn give_back(&self, broker: Broker) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(broker);
    }
}

impl Drop for Pool {
    /// Closes the idle connections, and lets go of the connector, on a plain
    /// thread: a backend whose synchronous client runs its own runtime must
    /// not close connections on an async thread.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        let connector = self.connector.take();
        let _ = std::thread::Builder::new()
            .name("litebroker-close".into())
            .spawn(move || {
                drop(idle);
                drop(connector);
            });
    }
}
