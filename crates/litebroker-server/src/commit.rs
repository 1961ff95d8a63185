//! Group commit for queue writes, takes and acks: requests that arrive while
//! a commit is under way wait for the next one and share it, one
//! transaction (so one sync) per queue and kind of work for all of them.
//! Durable throughput then grows with the number of concurrent clients,
//! while a lone client waits for no one: the committer takes whatever is
//! queued the moment the previous commit ends.
//!
//! The same idea as the TCP server's publish committer
//! (`litebroker-tcp/src/commit.rs`), for queues:
//! - **writes**: each request is answered with its own ids, and only after
//!   the commit that holds them;
//! - **takes** (`read`: receive + delete, exactly once; `lease`): the
//!   requests waiting for one queue (leases: with one lease length) are
//!   served by one `read_many`/`lease` for the sum of their limits; the
//!   messages are dealt out oldest first in arrival order, each request
//!   getting at most its own limit. A request whose client has gone before
//!   its commit starts is left out, so it takes nothing;
//! - **acks**: the receipts of the requests for one queue are acknowledged
//!   in one `ack_many`, each request answered with its own receipts'
//!   outcomes.
//!
//! When a shared commit fails, every request in it gets the error and
//! nothing of it happened (the transaction is all or nothing): no message
//! stored, none taken (they stay pending), none acknowledged. What could
//! fail one request alone (a queue's name, a body's size) is checked before
//! it joins a group, so that a group fails only for reasons shared by all
//! of its requests. When fewer requests are waiting than the previous
//! commit answered or saw arrive, the committer waits a moment (no longer
//! than that commit took, at most a millisecond) for the rest to come back,
//! so that the clients are not split into groups that take turns.
//!
//! After a write commit, long-polls and event streams are woken at once
//! rather than when the change feed notices the commit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use litebroker::lease::ReceiptError;
use litebroker::message::{Filter, MAX_MESSAGE_SIZE};
use litebroker::{Headers, Message, Outgoing, Receipt};
use tokio::sync::{mpsc, oneshot};

use crate::changes::Changes;
use crate::error::{ApiError, ApiResult};
use crate::pool::Pool;

/// Messages committed together at most (writes: messages; takes: their
/// limits; acks: receipts). A request is never split, so one commit may
/// hold more when a single request does.
const MAX_MESSAGES: usize = 4096;
/// Bytes of bodies committed together at most (about: the last request in
/// may pass it).
const MAX_BYTES: usize = 16 << 20;

/// The longest a commit waits for the clients the previous one answered
/// (see `commit_loop`).
const MAX_LINGER: Duration = Duration::from_millis(1);

/// When a take finds fewer messages than asked and cannot tell when the
/// next leased or delayed one becomes visible (that look failed after the
/// take committed), its waiters look again after this long.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// One message to write, checked.
pub struct Prepared {
    /// The body.
    pub body: String,
    /// Its headers (empty: none).
    pub headers: Headers,
    /// Invisible for this long first.
    pub delay: Option<Duration>,
}

/// How a take consumes what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Take {
    /// Receive and delete, exactly once (`Queue::read_many`).
    Read,
    /// Lease for this long (`None`: the queue's lease length).
    Lease(Option<Duration>),
}

/// What a take got.
#[derive(Debug)]
pub struct Taken {
    /// The messages, oldest first (possibly none).
    pub messages: Vec<Message>,
    /// When it got none: how long until a leased or delayed message of the
    /// queue becomes visible by itself, if one will.
    pub next_visible: Option<Duration>,
}

/// One outcome per receipt of an ack, in order.
pub type AckOutcomes = Vec<Result<(), ReceiptError>>;

type Answer<T> = oneshot::Sender<ApiResult<T>>;

enum Work {
    Write(Vec<Prepared>, Answer<Vec<i64>>),
    Take(Take, usize, Answer<Taken>),
    Ack(Vec<Receipt>, Answer<AckOutcomes>),
}

impl Work {
    /// (messages, bytes) this work adds to a commit.
    fn size(&self) -> (usize, usize) {
        match self {
            Work::Write(messages, _) => {
                (messages.len(), messages.iter().map(|m| m.body.len()).sum())
            }
            Work::Take(_, limit, _) => (*limit, 0),
            Work::Ack(receipts, _) => (receipts.len(), 0),
        }
    }
}

struct Job {
    queue: String,
    work: Work,
}

/// The requests of one commit: one queue, one kind of work.
enum Group {
    Write(Vec<(Vec<Prepared>, Answer<Vec<i64>>)>),
    Take(Take, Vec<(usize, Answer<Taken>)>),
    Ack(Vec<(Vec<Receipt>, Answer<AckOutcomes>)>),
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Kind {
    Write,
    Take(Take),
    Ack,
}

/// Requests and the transactions they took, for one kind of work.
#[derive(Default)]
pub struct Counts {
    /// Requests committed or failed.
    pub requests: AtomicU64,
    /// Transactions they took.
    pub commits: AtomicU64,
}

impl Counts {
    fn add(&self, requests: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(requests as u64, Ordering::Relaxed);
    }
}

/// Counts that show whether requests are being grouped (in `/metrics`).
#[derive(Default)]
pub struct CommitStats {
    /// Queue writes.
    pub writes: Counts,
    /// Reads and leases.
    pub takes: Counts,
    /// Acks.
    pub acks: Counts,
}

/// The way into the group committer.
#[derive(Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    stats: Arc<CommitStats>,
    /// Jobs sent to the committer so far.
    submitted: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the committer task on `pool` (on the current runtime); after
    /// each write commit it wakes `changes`' waiters.
    pub fn start(pool: Arc<Pool>, changes: Arc<Changes>) -> GroupCommit {
        let (jobs, rx) = mpsc::channel(4 * MAX_MESSAGES);
        let stats = Arc::new(CommitStats::default());
        let submitted = Arc::new(AtomicU64::new(0));
        tokio::spawn(commit_loop(
            pool,
            changes,
            rx,
            stats.clone(),
            submitted.clone(),
        ));
        GroupCommit {
            jobs,
            stats,
            submitted,
        }
    }

    /// How grouped the requests have been.
    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    async fn submit<T>(&self, queue: String, work: impl FnOnce(Answer<T>) -> Work) -> ApiResult<T> {
        let (done, result) = oneshot::channel();
        let job = Job {
            queue,
            work: work(done),
        };
        self.submitted.fetch_add(1, Ordering::Relaxed);
        self.jobs
            .send(job)
            .await
            .map_err(|_| ApiError::shutting_down())?;
        // A dropped sender means the commit never happened (the task ended).
        result.await.map_err(|_| ApiError::shutting_down())?
    }

    /// Writes `messages` to `queue` in order, durable when this returns
    /// their ids.
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
        self.submit(queue, |done| Work::Write(messages, done)).await
    }

    /// Takes up to `limit` of `queue`'s oldest visible messages; a read's
    /// are consumed, a lease's leased, durably, when this returns them.
    pub async fn take(&self, queue: String, how: Take, limit: usize) -> ApiResult<Taken> {
        litebroker::name::validate_queue_name(&queue)?;
        if limit == 0 {
            return Err(ApiError::invalid("a take asks for at least one message"));
        }
        self.submit(queue, |done| Work::Take(how, limit, done))
            .await
    }

    /// Acknowledges `receipts` of `queue`: one outcome per receipt.
    pub async fn ack(&self, queue: String, receipts: Vec<Receipt>) -> ApiResult<AckOutcomes> {
        litebroker::name::validate_queue_name(&queue)?;
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(queue, |done| Work::Ack(receipts, done)).await
    }
}

async fn commit_loop(
    pool: Arc<Pool>,
    changes: Arc<Changes>,
    mut rx: mpsc::Receiver<Job>,
    stats: Arc<CommitStats>,
    submitted: Arc<AtomicU64>,
) {
    // Jobs taken from the channel so far.
    let mut received: u64 = 0;
    // The previous commit: how many clients it concerned (the requests it
    // answered, and those that arrived meanwhile), how long it took.
    let (mut clients, mut last_took) = (0usize, Duration::ZERO);
    while let Some(first) = rx.recv().await {
        let (mut count, mut bytes) = first.work.size();
        let mut batch = vec![first];
        let mut room = count < MAX_MESSAGES && bytes < MAX_BYTES;
        let mut add = |job: Job, batch: &mut Vec<Job>| {
            let (c, b) = job.work.size();
            count += c;
            bytes += b;
            batch.push(job);
            count < MAX_MESSAGES && bytes < MAX_BYTES
        };
        while room {
            match rx.try_recv() {
                Ok(job) => room = add(job, &mut batch),
                Err(_) => break,
            }
        }
        // The clients the previous commit answered come back a round trip
        // later; without waiting for them, this commit starts with those
        // that arrived during the previous one, and the clients split into
        // two groups that take turns, each commit serving part of them. So
        // when fewer requests are here than the previous commit concerned
        // (answered, or saw arrive), wait a little for the rest: at most as
        // long as that commit took (and MAX_LINGER). A lone client (one
        // request answered, none arrived) never waits.
        if clients > 1 && batch.len() < clients && room {
            let until = tokio::time::Instant::now() + last_took.min(MAX_LINGER);
            while room && batch.len() < clients {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(job)) => room = add(job, &mut batch),
                    _ => break,
                }
            }
        }
        let (requests, started) = (batch.len(), std::time::Instant::now());
        received += requests as u64;
        // How many arrived during this commit, counted before its first
        // answer goes out (an answered client may come back at once).
        let arrived = Arrived {
            submitted: &submitted,
            received,
            seen: std::sync::OnceLock::new(),
        };
        // Per queue and kind, in arrival order: one transaction each, run
        // side by side on the pool (a backend that serializes writes
        // serializes them).
        let mut order: Vec<(String, Kind)> = Vec::new();
        let mut groups: HashMap<(String, Kind), Group> = HashMap::new();
        for Job { queue, work } in batch {
            let kind = match &work {
                Work::Write(..) => Kind::Write,
                Work::Take(how, ..) => Kind::Take(*how),
                Work::Ack(..) => Kind::Ack,
            };
            let key = (queue, kind);
            let group = groups.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                match key.1 {
                    Kind::Write => Group::Write(Vec::new()),
                    Kind::Take(how) => Group::Take(how, Vec::new()),
                    Kind::Ack => Group::Ack(Vec::new()),
                }
            });
            match (group, work) {
                (Group::Write(jobs), Work::Write(messages, done)) => jobs.push((messages, done)),
                (Group::Take(_, jobs), Work::Take(_, limit, done)) => jobs.push((limit, done)),
                (Group::Ack(jobs), Work::Ack(receipts, done)) => jobs.push((receipts, done)),
                _ => unreachable!("a group holds one kind of work, by its key"),
            }
        }
        let commits = order.into_iter().map(|key| {
            let group = groups.remove(&key).expect("every key has its group");
            let (pool, changes, stats, arrived) = (&pool, &changes, &stats, &arrived);
            async move {
                match group {
                    Group::Write(jobs) => {
                        if commit_writes(pool, &stats.writes, arrived, key.0, jobs).await {
                            // Waiters see it now, not when the feed notices.
                            changes.wake_all();
                        }
                    }
                    Group::Take(how, jobs) => {
                        commit_takes(pool, &stats.takes, arrived, key.0, how, jobs).await
                    }
                    Group::Ack(jobs) => commit_acks(pool, &stats.acks, arrived, key.0, jobs).await,
                }
            }
        });
        futures_util::future::join_all(commits).await;
        (clients, last_took) = (requests + arrived.count(), started.elapsed());
    }
}

/// Counts the jobs that arrived during a commit, once, before its first
/// answer goes out.
struct Arrived<'a> {
    submitted: &'a AtomicU64,
    received: u64,
    seen: std::sync::OnceLock<usize>,
}

impl Arrived<'_> {
    /// Notes how many jobs wait now (the first call counts).
    fn note(&self) {
        self.seen.get_or_init(|| {
            let sent = self.submitted.load(Ordering::Relaxed);
            sent.saturating_sub(self.received) as usize
        });
    }

    /// The count noted (none if no commit ran).
    fn count(&self) -> usize {
        self.seen.get().copied().unwrap_or(0)
    }
}

/// Commits the writes of one queue in one transaction and answers each;
/// true if they committed.
async fn commit_writes(
    pool: &Arc<Pool>,
    counts: &Counts,
    arrived: &Arrived<'_>,
    queue: String,
    jobs: Vec<(Vec<Prepared>, Answer<Vec<i64>>)>,
) -> bool {
    let (messages, answers): (Vec<Vec<Prepared>>, Vec<_>) = jobs.into_iter().unzip();
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
    arrived.note();
    counts.add(answers.len());
    match result {
        Ok(ids) if ids.len() == sizes.iter().sum::<usize>() => {
            let mut ids = ids.into_iter();
            for (answer, n) in answers.into_iter().zip(sizes) {
                let _ = answer.send(Ok(ids.by_ref().take(n).collect()));
            }
            true
        }
        Ok(ids) => {
            let e = ApiError::internal(format!(
                "a group commit returned {} ids for {} messages",
                ids.len(),
                sizes.iter().sum::<usize>()
            ));
            fail_all(answers, e);
            // Something was stored: let waiters look.
            true
        }
        Err(e) => {
            fail_all(answers, e);
            false
        }
    }
}

/// Takes for the requests of one queue in one transaction and deals the
/// messages out, oldest first, in arrival order.
async fn commit_takes(
    pool: &Arc<Pool>,
    counts: &Counts,
    arrived: &Arrived<'_>,
    queue: String,
    how: Take,
    jobs: Vec<(usize, Answer<Taken>)>,
) {
    // A request whose client has gone takes nothing.
    let jobs: Vec<_> = jobs
        .into_iter()
        .filter(|(_, answer)| !answer.is_closed())
        .collect();
    if jobs.is_empty() {
        return;
    }
    let total: usize = jobs.iter().map(|(limit, _)| limit).sum();
    let q = queue.clone();
    let result = pool
        .run(move |b| {
            let mut q = b.queue(&q)?;
            let got = match how {
                Take::Read => q.read_many(&Filter::all(), total)?,
                Take::Lease(visibility) => q.lease(&Filter::all(), total, visibility)?,
            };
            // Taken and committed: from here on nothing may fail the group.
            let next = if got.len() < total {
                q.until_visible().unwrap_or(Some(LOOK_AGAIN))
            } else {
                None
            };
            Ok((got, next))
        })
        .await;
    arrived.note();
    counts.add(jobs.len());
    let (got, next) = match result {
        Ok(found) => found,
        Err(e) => return fail_all(jobs.into_iter().map(|(_, a)| a), e),
    };
    let mut got = got.into_iter();
    let mut unanswered: Vec<Message> = Vec::new();
    for (limit, answer) in jobs {
        let messages: Vec<Message> = got.by_ref().take(limit).collect();
        let next_visible = if messages.is_empty() { next } else { None };
        if let Err(Ok(lost)) = answer.send(Ok(Taken {
            messages,
            next_visible,
        })) {
            unanswered.extend(lost.messages);
        }
    }
    if unanswered.is_empty() {
        return;
    }
    match how {
        // Leased for a client that left meanwhile: give them back, uncounted.
        Take::Lease(_) => {
            let _ = pool
                .run(move |b| {
                    let mut q = b.queue(&queue)?;
                    for m in &unanswered {
                        if let Some(r) = &m.receipt {
                            let _ = q.give_back(r);
                        }
                    }
                    Ok(())
                })
                .await;
        }
        // Consumed: as with any receive-and-delete whose answer is lost on
        // the way (use leases for at-least-once).
        Take::Read => tracing::warn!(
            messages = unanswered.len(),
            "read messages whose client left during the commit"
        ),
    }
}

/// Acknowledges the receipts of one queue's requests in one transaction
/// and answers each with its own outcomes.
async fn commit_acks(
    pool: &Arc<Pool>,
    counts: &Counts,
    arrived: &Arrived<'_>,
    queue: String,
    jobs: Vec<(Vec<Receipt>, Answer<AckOutcomes>)>,
) {
    let (receipts, answers): (Vec<Vec<Receipt>>, Vec<_>) = jobs.into_iter().unzip();
    let sizes: Vec<usize> = receipts.iter().map(Vec::len).collect();
    let all: Vec<Receipt> = receipts.into_iter().flatten().collect();
    let expected = all.len();
    let result = pool
        .run(move |b| Ok(b.queue(&queue)?.ack_many(&all)?))
        .await;
    arrived.note();
    counts.add(answers.len());
    match result {
        Ok(outcomes) if outcomes.len() == expected => {
            let mut outcomes = outcomes.into_iter();
            for (answer, n) in answers.into_iter().zip(sizes) {
                let _ = answer.send(Ok(outcomes.by_ref().take(n).collect()));
            }
        }
        Ok(outcomes) => fail_all(
            answers,
            ApiError::internal(format!(
                "a group ack returned {} outcomes for {expected} receipts",
                outcomes.len()
            )),
        ),
        Err(e) => fail_all(answers, e),
    }
}

fn fail_all<T>(answers: impl IntoIterator<Item = Answer<T>>, e: ApiError) {
    for answer in answers {
        let _ = answer.send(Err(e.clone()));
    }
}
