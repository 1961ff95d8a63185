//! Acknowledges written DATA (members in the default mode) off the writers'
//! path: receipts from every connection are gathered and acknowledged per
//! subscription in one transaction. A crash before that costs a redelivery,
//! never a loss; a clean stop flushes them.

use std::collections::HashMap;
use std::sync::Arc;

use litebroker::Receipt;
use tokio::sync::{mpsc, oneshot};

use crate::store::Store;
use crate::Stats;

/// Receipts acknowledged together at most.
const MAX_BATCH: usize = 4096;

enum Job {
    Ack(String, Vec<Receipt>),
    Flush(oneshot::Sender<()>),
}

/// The way into the acknowledging task.
#[derive(Clone)]
pub struct Acker {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Acker {
    /// Starts the task over `store`.
    pub fn start(store: Arc<Store>, stats: Arc<Stats>) -> Acker {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(ack_loop(store, rx, stats));
        Acker { jobs }
    }

    /// Queues the acknowledgement of deliveries of `queue`.
    pub fn ack(&self, queue: &str, receipts: Vec<Receipt>) {
        if !receipts.is_empty() {
            let _ = self.jobs.send(Job::Ack(queue.to_owned(), receipts));
        }
    }

    /// Waits until everything queued before this call is acknowledged.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.jobs.send(Job::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }
}

async fn ack_loop(store: Arc<Store>, mut rx: mpsc::UnboundedReceiver<Job>, stats: Arc<Stats>) {
    while let Some(first) = rx.recv().await {
        let mut by_queue: HashMap<String, Vec<Receipt>> = HashMap::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        let mut count = 0;
        while let Some(job) = next.take() {
            match job {
                Job::Ack(queue, receipts) => {
                    count += receipts.len();
                    by_queue.entry(queue).or_default().extend(receipts);
                }
                Job::Flush(done) => flushes.push(done),
            }
            if count < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !by_queue.is_empty() {
            crate::count(&stats.ack_commits, 1);
            let counted = stats.clone();
            let acked = store
                .write(move |b| {
                    let started = std::time::Instant::now();
                    let acked = by_queue.iter().try_for_each(|(queue, receipts)| {
                        b.queue(queue)?.ack_many(receipts).map(drop)
                    });
                    crate::count(&counted.ack_micros, started.elapsed().as_micros() as u64);
                    acked
                })
                .await;
            if let Err(e) = acked {
                tracing::warn!("could not acknowledge written DATA (it will be redelivered): {e}");
            }
        }
        flushes.into_iter().for_each(|done| {
            let _ = done.send(());
        });
    }
}
