//! The consumer-group dispatcher: who is a member of which subscription, and
//! one task per subscription with members that leases its messages and hands
//! them round-robin to the members that have room.
//!
//! Delivery is a litebroker lease underneath. In the default mode (the
//! original client, which never acknowledges DATA) a message counts as
//! delivered once its frame is written to the member's socket: the writer
//! acknowledges the lease after the write. With `ack=manual` the member
//! acknowledges each DATA by its sequence number; the lease lasts the
//! subscription's visibility timeout (`broker queue config`, 30 s by
//! default) and an unacknowledged message comes back when it expires. A
//! member that leaves, disconnects or falls silent gives back what it has
//! not been written (uncounted) and, with manual acks, nacks what it has not
//! acknowledged: nothing is lost, it goes to the other members.
//!
//! A dispatcher sleeps until something can change its answer: a commit on
//! the database's change feed (bridged from `ChangeFeed::listen` into a
//! tokio watch channel), a member joining, leaving or freeing room, the
//! moment the next lease of the subscription expires, or the connector's
//! rescan interval (what no commit announces: a dead holder's messages).
//! No member polls.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use litebroker::message::Filter;
use litebroker::{HeaderValue, Message, Receipt};
use tokio::sync::{watch, Notify};

use crate::acker::Acker;
use crate::body;
use crate::commit::Committer;
use crate::frame::{Frame, Kind, Properties};
use crate::store::Store;
use crate::{count, Config};

/// Messages leased per round trip at most.
const LEASE_BATCH: usize = 1024;
/// Bytes of bodies leased per round trip, about (judged from the largest
/// body of the previous round, so large messages are leased a few at a time).
const LEASE_BYTES: usize = 16 << 20;
/// Bytes of DATA waiting for one member's writer, at most (about).
const QUEUED_BYTES: usize = 16 << 20;
/// Pause after a failed lease before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The part of a connection the dispatcher and the writer share.
pub struct Conn {
    /// DATA frames waiting for the connection's writer.
    outbox: Mutex<VecDeque<Delivery>>,
    /// Wakes the writer: DATA is waiting.
    pub data_ready: Notify,
    /// Requests read and not yet answered: DATA waits while any is.
    pub pending: AtomicUsize,
    /// Wakes the reader when the writer failed.
    pub broken: Notify,
}

impl Conn {
    /// A new connection's shared state.
    pub fn new() -> Arc<Conn> {
        Arc::new(Conn {
            outbox: Mutex::new(VecDeque::new()),
            data_ready: Notify::new(),
            pending: AtomicUsize::new(0),
            broken: Notify::new(),
        })
    }

    /// Says the writer can no longer write.
    pub fn mark_broken(&self) {
        self.broken.notify_one();
    }

    /// Takes up to `max` waiting deliveries (about `max_bytes` at most).
    pub fn take_batch(&self, max: usize, max_bytes: usize) -> Vec<Delivery> {
        let mut outbox = lock(&self.outbox);
        let mut out = Vec::new();
        let mut bytes = 0;
        while out.len() < max && bytes < max_bytes {
            let Some(d) = outbox.pop_front() else { break };
            bytes += d.bytes.len();
            d.member.queued.fetch_sub(1, Ordering::SeqCst);
            d.member
                .queued_bytes
                .fetch_sub(d.bytes.len(), Ordering::SeqCst);
            out.push(d);
        }
        out
    }

    fn take_for(&self, member: &Arc<Member>) -> Vec<Delivery> {
        let mut outbox = lock(&self.outbox);
        let (mine, rest): (VecDeque<_>, VecDeque<_>) = outbox
            .drain(..)
            .partition(|d| Arc::ptr_eq(&d.member, member));
        *outbox = rest;
        mine.into()
    }
}

/// One DATA frame on its way to a member.
pub struct Delivery {
    /// Whom it is for.
    pub member: Arc<Member>,
    /// The encoded frame.
    pub bytes: Vec<u8>,
    /// Its lease.
    pub receipt: Receipt,
}

struct Unacked {
    topic: Option<String>,
    offset: u64,
    receipt: Receipt,
}

/// A member of a subscription: one `subscriber_id` on one connection.
pub struct Member {
    /// The subscriber id (unique across the server, as in the original).
    pub id: String,
    /// The subscription it joined.
    pub subscription: String,
    /// The connection it was joined on.
    pub conn: Arc<Conn>,
    /// Whether it acknowledges each DATA itself.
    pub manual: bool,
    ready: AtomicBool,
    gone: AtomicBool,
    queued: AtomicUsize,
    queued_bytes: AtomicUsize,
    unacked: Mutex<Vec<Unacked>>,
    wake: Arc<Notify>,
    /// Counts this member on the dashboard until it is removed.
    attendance: Mutex<Option<litebroker::presence::Attendance>>,
}

impl Member {
    fn has_room(&self, window: usize) -> bool {
        if !self.ready.load(Ordering::SeqCst)
            || self.gone.load(Ordering::SeqCst)
            || self.queued_bytes.load(Ordering::SeqCst) >= QUEUED_BYTES
        {
            return false;
        }
        let used = if self.manual {
            lock(&self.unacked).len()
        } else {
            self.queued.load(Ordering::SeqCst)
        };
        used < window
    }
}

struct Group {
    members: Vec<Arc<Member>>,
    next: usize,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct State {
    members: HashMap<String, Arc<Member>>,
    groups: HashMap<String, Group>,
}

/// Why a join was refused.
pub enum JoinError {
    /// The subscriber id is a member already.
    Taken,
    /// The server is shutting down.
    Closing,
}

/// Everything the connections share: the store, the members, the topics known.
pub struct Hub {
    /// The database.
    pub store: Arc<Store>,
    /// Limits and timings.
    pub config: Config,
    /// Group commit for publishes.
    pub committer: Committer,
    /// Acknowledges written DATA.
    pub acker: Acker,
    changes: watch::Sender<u64>,
    state: Mutex<State>,
    topics: Mutex<HashSet<String>>,
    shutdown: watch::Receiver<bool>,
}

impl Hub {
    /// A hub over `store`; `shutdown` turns true when the server stops.
    pub fn new(store: Arc<Store>, config: Config, shutdown: watch::Receiver<bool>) -> Arc<Hub> {
        Arc::new(Hub {
            committer: Committer::start(store.clone(), config.stats.clone()),
            acker: Acker::start(store.clone(), config.stats.clone()),
            store,
            config,
            changes: watch::channel(0).0,
            state: Mutex::new(State::default()),
            topics: Mutex::new(HashSet::new()),
            shutdown,
        })
    }

    /// Something changed in the database: every dispatcher looks again.
    pub fn nudge(&self) {
        self.changes.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Whether `topic` exists (created, or ever published to by anyone).
    pub async fn topic_exists(&self, topic: &str) -> litebroker::Result<bool> {
        if lock(&self.topics).contains(topic) {
            return Ok(true);
        }
        let all = self.store.call(|b| b.topics()).await?;
        let mut known = lock(&self.topics);
        known.extend(all.into_iter().map(|t| t.topic));
        Ok(known.contains(topic))
    }

    /// Remembers that `topic` exists.
    pub fn topic_created(&self, topic: &str) {
        lock(&self.topics).insert(topic.to_owned());
    }

    /// Adds a member (not yet ready for DATA: see [`Hub::make_ready`]),
    /// starting the subscription's dispatcher if it has none.
    pub fn join(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        subscriber_id: &str,
        subscription: &str,
        manual: bool,
    ) -> Result<Arc<Member>, JoinError> {
        if *self.shutdown.borrow() {
            return Err(JoinError::Closing);
        }
        let mut state = lock(&self.state);
        if state.members.contains_key(subscriber_id) {
            return Err(JoinError::Taken);
        }
        let group = state
            .groups
            .entry(subscription.to_owned())
            .or_insert_with(|| {
                let wake = Arc::new(Notify::new());
                tokio::spawn(dispatch(
                    self.clone(),
                    subscription.to_owned(),
                    wake.clone(),
                ));
                Group {
                    members: Vec::new(),
                    next: 0,
                    wake,
                }
            });
        let member = Arc::new(Member {
            id: subscriber_id.to_owned(),
            subscription: subscription.to_owned(),
            conn: conn.clone(),
            manual,
            ready: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            unacked: Mutex::new(Vec::new()),
            wake: group.wake.clone(),
            attendance: Mutex::new(Some(
                self.config
                    .presence
                    .join(subscription, litebroker::presence::Transport::Tcp),
            )),
        });
        group.members.push(member.clone());
        state
            .members
            .insert(subscriber_id.to_owned(), member.clone());
        Ok(member)
    }

    /// The member may now receive DATA (its SUBSCRIBE answer was written and
    /// the grace period has passed).
    pub fn make_ready(&self, member: &Member) {
        member.ready.store(true, Ordering::SeqCst);
        member.wake.notify_one();
    }

    /// The member `subscriber_id` if it was joined on `conn`.
    pub fn member_on(&self, conn: &Arc<Conn>, subscriber_id: &str) -> Option<Arc<Member>> {
        lock(&self.state)
            .members
            .get(subscriber_id)
            .filter(|m| Arc::ptr_eq(&m.conn, conn))
            .cloned()
    }

    /// Removes a member. With `give_back`, what it was not written goes
    /// back uncounted and (manual acks) what it did not acknowledge is
    /// nacked, both to be delivered to the other members.
    pub async fn leave(&self, member: &Arc<Member>, give_back: bool) {
        {
            let mut state = lock(&self.state);
            if member.gone.swap(true, Ordering::SeqCst) {
                return;
            }
            if state
                .members
                .get(&member.id)
                .is_some_and(|m| Arc::ptr_eq(m, member))
            {
                state.members.remove(&member.id);
            }
            if let Some(group) = state.groups.get_mut(&member.subscription) {
                group.members.retain(|m| !Arc::ptr_eq(m, member));
                group.wake.notify_one();
            }
        }
        lock(&member.attendance).take();
        let unwritten: Vec<Receipt> = member
            .conn
            .take_for(member)
            .into_iter()
            .map(|d| d.receipt)
            .collect();
        let unacked: Vec<Receipt> = lock(&member.unacked)
            .drain(..)
            .map(|u| u.receipt)
            .filter(|r| !unwritten.contains(r))
            .collect();
        if !give_back || (unwritten.is_empty() && unacked.is_empty()) {
            return;
        }
        let queue = member.subscription.clone();
        let returned = self
            .store
            .write(move |b| {
                if !unwritten.is_empty() {
                    b.backend().give_back(&queue, &unwritten)?;
                }
                let mut q = b.queue(&queue)?;
                for r in &unacked {
                    // A receipt whose lease already ended is someone else's now.
                    let _ = q.nack(r, None);
                }
                Ok(())
            })
            .await;
        if let Err(e) = returned {
            tracing::warn!(member = %member.id, "could not give messages back (their leases will expire): {e}");
        }
    }

    /// Removes every member joined on `conn`, giving their messages back.
    pub async fn leave_connection(&self, conn: &Arc<Conn>) {
        let mine: Vec<Arc<Member>> = lock(&self.state)
            .members
            .values()
            .filter(|m| Arc::ptr_eq(&m.conn, conn))
            .cloned()
            .collect();
        for m in mine {
            self.leave(&m, true).await;
        }
    }

    /// A subscription was deleted: its members are dropped (their messages
    /// went with it).
    pub async fn drop_subscription(&self, name: &str) {
        let members: Vec<Arc<Member>> = lock(&self.state)
            .groups
            .get(name)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        for m in members {
            self.leave(&m, false).await;
        }
    }

    /// A member on `conn` acknowledges the DATA with sequence number `seq`
    /// (`topic` and `subscription_id` narrow it when given). `Err` says why
    /// nothing was acknowledged.
    pub async fn client_ack(
        &self,
        conn: &Arc<Conn>,
        seq: u64,
        props: &Properties,
    ) -> Result<(), litebroker::Error> {
        let members: Vec<Arc<Member>> = lock(&self.state)
            .members
            .values()
            .filter(|m| Arc::ptr_eq(&m.conn, conn) && m.manual)
            .filter(|m| {
                props
                    .get("subscription_id")
                    .is_none_or(|s| s == m.subscription)
            })
            .cloned()
            .collect();
        let topic = props.get("topic");
        for m in members {
            let found = {
                let mut unacked = lock(&m.unacked);
                // The newest delivery first: an older one of the same message is stale.
                let at = unacked.iter().rposition(|u| {
                    u.offset == seq && topic.is_none_or(|t| u.topic.as_deref() == Some(t))
                });
                at.map(|i| unacked.remove(i).receipt)
            };
            let Some(receipt) = found else { continue };
            let queue = m.subscription.clone();
            let done = self
                .store
                .write(move |b| b.queue(&queue)?.ack(&receipt))
                .await;
            m.wake.notify_one();
            return done;
        }
        Err(litebroker::Error::InvalidRequest(format!(
            "no unacknowledged DATA with sequence number {seq} on this connection"
        )))
    }

    /// The writer wrote these deliveries: auto-ack members' leases end
    /// (delivered); manual ones wait for the member's ACK.
    pub fn written(&self, batch: Vec<Delivery>) {
        count(&self.config.stats.data_frames, batch.len() as u64);
        // Per member, in order: one acknowledgement job and one wake-up each.
        let mut i = 0;
        while i < batch.len() {
            let member = &batch[i].member;
            let run = batch[i..]
                .iter()
                .take_while(|d| Arc::ptr_eq(&d.member, member))
                .count();
            if !member.manual {
                let receipts = batch[i..i + run].iter().map(|d| d.receipt).collect();
                self.acker.ack(&member.subscription, receipts);
            }
            member.wake.notify_one();
            i += run;
        }
    }

    /// The writer could not write these: they go back, uncounted.
    pub async fn unwritten(&self, batch: Vec<Delivery>) {
        let mut by_queue: HashMap<String, Vec<Receipt>> = HashMap::new();
        for d in batch {
            if d.member.manual {
                lock(&d.member.unacked).retain(|u| u.receipt != d.receipt);
            }
            by_queue
                .entry(d.member.subscription.clone())
                .or_default()
                .push(d.receipt);
        }
        for (queue, receipts) in by_queue {
            let q = queue.clone();
            let back = self
                .store
                .write(move |b| b.backend().give_back(&q, &receipts))
                .await;
            if let Err(e) = back {
                tracing::warn!(subscription = %queue, "could not give DATA back (its lease will expire): {e}");
            }
        }
    }

    /// Room for more DATA across the subscription's members; `None` if it
    /// has no members any more (the group is then closed, under the lock, so
    /// that a joining member starts a new dispatcher).
    fn room(&self, name: &str) -> Option<usize> {
        let mut state = lock(&self.state);
        let group = state.groups.get(name)?;
        if group.members.is_empty() {
            state.groups.remove(name);
            return None;
        }
        let window = self.config.window;
        Some(
            group
                .members
                .iter()
                .filter(|m| m.has_room(window))
                .map(|m| {
                    let used = if m.manual {
                        lock(&m.unacked).len()
                    } else {
                        m.queued.load(Ordering::SeqCst)
                    };
                    window.saturating_sub(used)
                })
                .sum(),
        )
    }

    /// Hands leased messages round-robin to members with room; returns the
    /// receipts nobody could take.
    fn assign(&self, name: &str, messages: Vec<Message>) -> Vec<Receipt> {
        let window = self.config.window;
        let mut state = lock(&self.state);
        let Some(group) = state.groups.get_mut(name) else {
            return messages.iter().filter_map(|m| m.receipt).collect();
        };
        let mut left = Vec::new();
        for msg in messages {
            let Some(receipt) = msg.receipt else { continue };
            let n = group.members.len();
            let chosen = (0..n)
                .map(|i| (group.next + i) % n)
                .find(|&i| group.members[i].has_room(window));
            let Some(i) = chosen else {
                left.push(receipt);
                continue;
            };
            group.next = (i + 1) % n;
            // A new lease ends any earlier one of the same message (it expired).
            for m in group.members.iter().filter(|m| m.manual) {
                lock(&m.unacked).retain(|u| u.receipt.id != receipt.id);
            }
            let member = group.members[i].clone();
            let (bytes, topic, offset) = data_frame(msg, name, member.manual, receipt);
            if member.manual {
                lock(&member.unacked).push(Unacked {
                    topic,
                    offset,
                    receipt,
                });
            }
            member.queued.fetch_add(1, Ordering::SeqCst);
            member.queued_bytes.fetch_add(bytes.len(), Ordering::SeqCst);
            let conn = member.conn.clone();
            lock(&conn.outbox).push_back(Delivery {
                member,
                bytes,
                receipt,
            });
            conn.data_ready.notify_one();
        }
        left
    }
}

/// A stored message as a DATA frame: sequence number = topic offset,
/// properties = the publisher's (from its headers) plus `topic` and
/// `subscription_id` (and `receipt` for manual acks).
fn data_frame(
    msg: Message,
    subscription: &str,
    manual: bool,
    receipt: Receipt,
) -> (Vec<u8>, Option<String>, u64) {
    let mut props = Properties::new();
    for (k, v) in msg.headers.iter() {
        if k == body::ENCODING {
            continue;
        }
        let text = match v {
            HeaderValue::Str(s) => s.clone(),
            HeaderValue::Int(i) => i.to_string(),
            HeaderValue::Float(f) => f.to_string(),
            HeaderValue::Bool(b) => b.to_string(),
            HeaderValue::Null => "null".into(),
        };
        if Properties::representable(k, &text) {
            props.set(k, text);
        }
    }
    let (topic, offset) = match &msg.origin {
        Some(o) => (Some(o.topic.clone()), o.offset.max(0) as u64),
        None => (None, 0),
    };
    if let Some(t) = &topic {
        props.set("topic", t.clone());
    }
    props.set("subscription_id", subscription);
    props.set("version", "1.0");
    if manual {
        props.set("receipt", receipt.to_string());
    }
    let ns = litebroker::id::id_time_ns(msg.id).max(0);
    props.set_default(
        "created_at",
        format!("{}.{:06}", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000),
    );
    let body = body::from_stored(msg.body, &msg.headers);
    let mut frame = Frame::new(Kind::Data, offset, props, body);
    frame.timestamp_ms = (ns / 1_000_000) as u64;
    (frame.to_bytes(), topic, offset)
}

/// One subscription's dispatcher: runs while the subscription has members.
async fn dispatch(hub: Arc<Hub>, name: String, wake: Arc<Notify>) {
    let mut changes = hub.changes.subscribe();
    let mut shutdown = hub.shutdown.clone();
    let mut largest = 1usize;
    let mut expiry_due = true;
    // No commit announces that a lease ran out or that another process
    // holding messages died: look again this often (the connector's rhythm).
    let rescan = hub.store.connector().rescan_every();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Look at the generation before the data, so a commit in between wakes us.
        changes.borrow_and_update();
        let Some(room) = hub.room(&name) else { return };
        let mut pause = rescan;
        if room > 0 {
            let want = room.min(LEASE_BATCH).min((LEASE_BYTES / largest).max(1));
            let queue = name.clone();
            // A look first (a read, no write lock): most wake-ups are for
            // other subscriptions' commits. After a timed wait, lease anyway:
            // a lease that expired is made visible by the lease itself.
            let look_first = !expiry_due;
            let stats = hub.config.stats.clone();
            let leased = hub
                .store
                .write(move |b| {
                    let started = std::time::Instant::now();
                    let mut q = b.queue(&queue)?;
                    if look_first && q.peek(&Filter::all())?.is_none() {
                        return Ok(Vec::new());
                    }
                    let leased = q.lease(&Filter::all(), want, None);
                    count(&stats.lease_micros, started.elapsed().as_micros() as u64);
                    leased
                })
                .await;
            expiry_due = false;
            match leased {
                Ok(messages) => {
                    let got = messages.len();
                    if let Some(max) = messages.iter().map(|m| m.body.len()).max() {
                        largest = max.max(1);
                    }
                    if got > 0 {
                        count(&hub.config.stats.leases, 1);
                        let left = hub.assign(&name, messages);
                        if !left.is_empty() {
                            let queue = name.clone();
                            let _ = hub
                                .store
                                .write(move |b| b.backend().give_back(&queue, &left))
                                .await;
                        }
                    }
                    if got == want {
                        continue; // more may be waiting
                    }
                    // Drained: sleep at most until a lease of this subscription expires.
                    let queue = name.clone();
                    if let Ok(Some(until)) = hub
                        .store
                        .call(move |b| b.queue(&queue)?.until_visible())
                        .await
                    {
                        pause = until + Duration::from_millis(5);
                    }
                }
                Err(e) => {
                    tracing::warn!(subscription = %name, "lease failed: {e}");
                    pause = RETRY_PAUSE;
                }
            }
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause.min(rescan)) => expiry_due = true,
            _ = shutdown.changed() => {}
        }
    }
}
