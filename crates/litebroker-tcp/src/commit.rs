//! Group commit for PUBLISH: publishes that arrive while a commit is under
//! way wait for the next one and share it (one transaction, one sync per
//! topic), so durable throughput grows with the number of publishers while a
//! lone publisher waits for no one.
//!
//! Publishers wait for each answer, so they come back in step: those
//! answered by one commit send their next publish within a round trip of
//! each other. Taking only what has arrived when the first of them is back
//! would split them (one commits alone while the rest queue behind it, then
//! they alternate, about two per commit however many publish). So when a
//! connection that published in one of the last two commits has not yet
//! sent its next publish, the committer waits for it, at most as long as the
//! last commit took and never past [`MAX_GATHER`]. That never delays the
//! straggler: had we committed without it, it would have waited for that
//! whole commit and then its own. A lone publisher never waits (it is
//! there); a connection that stops publishing costs at most two such waits.
//! When a shared commit fails, every publish in it gets the error and none
//! is stored (the transaction is all or nothing).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use litebroker::message::MAX_MESSAGE_SIZE;
use litebroker::{Error, Headers, Outgoing, Published};
use tokio::sync::{mpsc, oneshot};

use crate::store::Store;
use crate::{count, Stats};

/// Publishes committed together at most.
const MAX_BATCH: usize = 512;
/// Bytes of bodies committed together at most (about).
const MAX_BATCH_BYTES: usize = 16 << 20;
/// The longest a commit waits for publishers expected back.
const MAX_GATHER: Duration = Duration::from_millis(2);

struct Job {
    /// The publishing connection.
    from: usize,
    topic: String,
    body: String,
    headers: Headers,
    done: oneshot::Sender<Result<Published, Arc<Error>>>,
}

/// The way into the group committer.
#[derive(Clone)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the committer task over `store`.
    pub fn start(store: Arc<Store>, stats: Arc<Stats>) -> Committer {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(commit_loop(store, rx, stats));
        Committer { jobs }
    }

    /// Publishes one message, durable when this returns `Ok`. What could
    /// fail one message alone (its topic, its size) is checked here, so that
    /// a shared commit fails only for reasons shared by all (the error is
    /// then shared too).
    /// `from` names the publishing connection (any number unique among
    /// the open ones).
    pub async fn publish(
        &self,
        from: usize,
        topic: String,
        body: String,
        headers: Headers,
    ) -> Result<Published, Arc<Error>> {
        litebroker::topic::validate_topic(&topic).map_err(|e| Arc::new(e.into()))?;
        if body.len() > MAX_MESSAGE_SIZE {
            return Err(Arc::new(Error::MessageTooLarge {
                limit: MAX_MESSAGE_SIZE,
            }));
        }
        let (done, result) = oneshot::channel();
        let job = Job {
            from,
            topic,
            body,
            headers,
            done,
        };
        let closed = || Arc::new(Error::InvalidRequest("the server is shutting down".into()));
        self.jobs.send(job).await.map_err(|_| closed())?;
        result.await.map_err(|_| closed())?
    }
}

async fn commit_loop(store: Arc<Store>, mut rx: mpsc::Receiver<Job>, stats: Arc<Stats>) {
    // The connections of the last two commits (with publishers out of step,
    // each holds some of them), and how long the last commit took.
    let mut recent: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    let mut took = Duration::ZERO;
    while let Some(first) = rx.recv().await {
        let mut bytes = first.body.len();
        let mut batch = vec![first];
        let full =
            |batch: &Vec<Job>, bytes: usize| batch.len() >= MAX_BATCH || bytes >= MAX_BATCH_BYTES;
        while !full(&batch, bytes) {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.body.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let mut expected: Vec<usize> = recent.concat();
        expected.sort_unstable();
        expected.dedup();
        let missing =
            |batch: &Vec<Job>| expected.iter().any(|c| !batch.iter().any(|j| j.from == *c));
        if missing(&batch) {
            let until = tokio::time::Instant::now() + took.min(MAX_GATHER);
            while missing(&batch) && !full(&batch, bytes) {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(job)) => {
                        bytes += job.body.len();
                        batch.push(job);
                    }
                    _ => break,
                }
            }
        }
        recent.swap(0, 1);
        recent[1] = batch.iter().map(|j| j.from).collect();
        count(&stats.publishes, batch.len() as u64);
        let started = tokio::time::Instant::now();
        // Per topic, in arrival order.
        let mut order: Vec<String> = Vec::new();
        let mut by_topic: HashMap<String, Vec<Job>> = HashMap::new();
        for job in batch {
            if !by_topic.contains_key(&job.topic) {
                order.push(job.topic.clone());
            }
            by_topic.entry(job.topic.clone()).or_default().push(job);
        }
        let groups: Vec<(String, Vec<Job>)> = order
            .into_iter()
            .map(|t| {
                let jobs = by_topic.remove(&t).unwrap_or_default();
                (t, jobs)
            })
            .collect();
        let committed = store
            .write(move |b| {
                let mut out = Vec::new();
                for (topic, jobs) in groups {
                    let msgs: Vec<Outgoing<'_>> = jobs
                        .iter()
                        .map(|j| Outgoing {
                            body: &j.body,
                            headers: Some(&j.headers),
                            delay: None,
                        })
                        .collect();
                    let result = b.publish_batch(&topic, &msgs);
                    drop(msgs);
                    out.push((jobs, result));
                }
                Ok(out)
            })
            .await;
        took = started.elapsed();
        match committed {
            Ok(results) => {
                count(&stats.publish_commits, results.len() as u64);
                for (jobs, result) in results {
                    match result {
                        Ok(published) => {
                            for (job, p) in jobs.into_iter().zip(published) {
                                let _ = job.done.send(Ok(p));
                            }
                        }
                        Err(e) => {
                            let shared = Arc::new(e);
                            for job in jobs {
                                let _ = job.done.send(Err(shared.clone()));
                            }
                        }
                    }
                }
            }
            // The blocking call itself failed: its jobs were dropped with it,
            // and their publishers hear "shutting down" from the closed channel.
            Err(e) => tracing::warn!("a group commit failed: {e}"),
        }
    }
}
