//! Group commit for PUBLISH: publishes that arrive while a commit is under
//! way wait for the next one and share it (one transaction, one sync per
//! topic), so durable throughput grows with the number of publishers while a
//! lone publisher waits for no one.

use std::collections::HashMap;
use std::sync::Arc;

use litebroker::message::MAX_MESSAGE_SIZE;
use litebroker::{Error, Headers, Outgoing, Published};
use tokio::sync::{mpsc, oneshot};

use crate::store::Store;

/// Publishes committed together at most.
const MAX_BATCH: usize = 512;
/// Bytes of bodies committed together at most (about).
const MAX_BATCH_BYTES: usize = 16 << 20;

struct Job {
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
    pub fn start(store: Arc<Store>) -> Committer {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(commit_loop(store, rx));
        Committer { jobs }
    }

    /// Publishes one message, durable when this returns `Ok`. What could
    /// fail one message alone (its topic, its size) is checked here, so that
    /// a shared commit fails only for reasons shared by all (the error is
    /// then shared too).
    pub async fn publish(
        &self,
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

async fn commit_loop(store: Arc<Store>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut bytes = first.body.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.body.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
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
            .call(move |b| {
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
        match committed {
            Ok(results) => {
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
