//! Group commit for queue writes: writes that arrive while a commit is under
//! way wait for the next one and share it, one transaction (so one sync)
//! per queue for all of them. Durable throughput then grows with the number
//! of concurrent writers, while a lone writer waits for no one: the
//! committer takes whatever is queued the moment the previous commit ends.
//!
//! The same idea as the TCP server's publish committer
//! (`litebroker-tcp/src/commit.rs`), for queues: each request is answered
//! with its own ids, and only after the commit that holds them; when a
//! shared commit fails, every request in it gets the error and none of its
//! messages is stored (the transaction is all or nothing).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use litebroker::message::MAX_MESSAGE_SIZE;
use litebroker::{Headers, Outgoing};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ApiError, ApiResult};
use crate::pool::Pool;

/// Messages committed together at most (a request's batch is never split,
/// so one commit may hold more when a single request does).
const MAX_MESSAGES: usize = 4096;
/// Bytes of bodies committed together at most (about: the last request in
/// may pass it).
const MAX_BYTES: usize = 16 << 20;

/// One message to write, checked.
pub struct Prepared {
    /// The body.
    pub body: String,
    /// Its headers (empty: none).
    pub headers: Headers,
    /// Invisible for this long first.
    pub delay: Option<Duration>,
}

struct Job {
    queue: String,
    messages: Vec<Prepared>,
    done: oneshot::Sender<ApiResult<Vec<i64>>>,
}

/// Counts that show whether writes are being grouped (in `/metrics`).
#[derive(Default)]
pub struct CommitStats {
    /// Write requests committed or failed.
    pub requests: AtomicU64,
    /// Transactions they took.
    pub commits: AtomicU64,
}

/// The way into the group committer.
#[derive(Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    stats: Arc<CommitStats>,
}

impl GroupCommit {
    /// Starts the committer task on `pool` (on the current runtime).
    pub fn start(pool: Arc<Pool>) -> GroupCommit {
        let (jobs, rx) = mpsc::channel(4 * MAX_MESSAGES);
        let stats = Arc::new(CommitStats::default());
        tokio::spawn(commit_loop(pool, rx, stats.clone()));
        GroupCommit { jobs, stats }
    }

    /// How grouped the writes have been.
    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Writes `messages` to `queue` in order, durable when this returns
    /// their ids. What could fail one request alone (the queue's name, a
    /// body's size) is checked here, so that a shared commit fails only for
    /// reasons shared by all of its requests.
    pub async fn write(&self, queue: String, messages: Vec<Prepared>) -> ApiResult<Vec<i64>> {
        litebroker::name::validate_queue_name(&queue)?;
        if messages.is_empty() {
            return Err(ApiError::invalid("a write takes at least one message"));
        }
        if messages.iter().any(|m| m.body.len() > MAX_MESSAGE_SIZE) {
            return Err(litebroker::Error::MessageTooLarge {
                limit: MAX_MESSAGE_SIZE,
            }
            .into());
        }
        let (done, result) = oneshot::channel();
        let job = Job {
            queue,
            messages,
            done,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| ApiError::shutting_down())?;
        // A dropped sender means the commit never happened (the task ended).
        result.await.map_err(|_| ApiError::shutting_down())?
    }
}

async fn commit_loop(pool: Arc<Pool>, mut rx: mpsc::Receiver<Job>, stats: Arc<CommitStats>) {
    while let Some(first) = rx.recv().await {
        let mut count = first.messages.len();
        let mut bytes: usize = first.messages.iter().map(|m| m.body.len()).sum();
        let mut batch = vec![first];
        while count < MAX_MESSAGES && bytes < MAX_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.messages.len();
                    bytes += job.messages.iter().map(|m| m.body.len()).sum::<usize>();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        // Per queue, in arrival order: one transaction each, run side by
        // side on the pool (a backend that serializes writes serializes them).
        let mut order: Vec<String> = Vec::new();
        let mut by_queue: HashMap<String, Vec<Job>> = HashMap::new();
        for job in batch {
            if !by_queue.contains_key(&job.queue) {
                order.push(job.queue.clone());
            }
            by_queue.entry(job.queue.clone()).or_default().push(job);
        }
        let commits = order.into_iter().map(|queue| {
            let jobs = by_queue.remove(&queue).unwrap_or_default();
            commit_one(&pool, &stats, queue, jobs)
        });
        futures_util::future::join_all(commits).await;
    }
}

/// Commits the jobs of one queue in one transaction and answers each.
async fn commit_one(pool: &Arc<Pool>, stats: &CommitStats, queue: String, jobs: Vec<Job>) {
    let (messages, answers): (Vec<Vec<Prepared>>, Vec<_>) =
        jobs.into_iter().map(|j| (j.messages, j.done)).unzip();
    let sizes: Vec<usize> = messages.iter().map(Vec::len).collect();
    let result = pool
        .run(move |b| {
            let all: Vec<Outgoing<'_>> = messages
                .iter()
                .flatten()
                .map(|m| Outgoing {
                    body: &m.body,
                    headers: (!m.headers.is_empty()).then_some(&m.headers),
                    delay: m.delay,
                })
                .collect();
            Ok(b.queue(&queue)?.write_batch(&all)?)
        })
        .await;
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats
        .requests
        .fetch_add(answers.len() as u64, Ordering::Relaxed);
    match result {
        Ok(ids) if ids.len() == sizes.iter().sum::<usize>() => {
            let mut ids = ids.into_iter();
            for (answer, n) in answers.into_iter().zip(sizes) {
                let _ = answer.send(Ok(ids.by_ref().take(n).collect()));
            }
        }
        Ok(ids) => {
            let e = ApiError::internal(format!(
                "a group commit returned {} ids for {} messages",
                ids.len(),
                sizes.iter().sum::<usize>()
            ));
            for answer in answers {
                let _ = answer.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for answer in answers {
                let _ = answer.send(Err(e.clone()));
            }
        }
    }
}
