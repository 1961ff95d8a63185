//! Push: a Server-Sent Events stream per queue (a subscription is a queue).
//!
//! The clients streaming one queue form a consumer group. One dispatcher
//! task per queue leases messages (on the queue's visibility timeout) only
//! while some member has room (`prefetch`, default 1) and hands each to the
//! next member with room, round-robin. A delivery is a lease: the member
//! acks it with `POST /v1/queues/{queue}/ack` (which frees its room). When a
//! member disconnects, its unacked deliveries are nacked at once and go to
//! another member; if that fails (a crash of the server), the leases run out
//! and the messages come back by themselves: nothing is lost, and a message
//! is delivered twice only when its lease ended unacked.
//!
//! Each event has `event: message`, `id: <receipt>` and the message as JSON
//! in `data`; the stream opens with `retry: 1000` (reconnect after a second).
//!
//! Resuming: when a member's connection drops, its unacked deliveries are
//! parked for a grace time ([`crate::Config::sse_resume_grace`], 5 s by
//! default, never past their leases) instead of going to the others. A
//! client that reconnects within it with `Last-Event-ID` set to the id of an
//! event of that stream (the last one it saw, as `EventSource` sends it)
//! gets those deliveries first, with the same receipts, then new ones. If no
//! one resumes, they are given to the group when the grace ends; at
//! shutdown, at once.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::{Stream, StreamExt};
use litebroker::message::Filter;
use litebroker::{Message, Receipt};
use serde::Deserialize;
use tokio::sync::{mpsc, Notify};

use crate::auth::{Caller, Perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::routes::queues::MessageOut;
use crate::AppState;

/// Most deliveries one member may hold unacked.
pub const MAX_PREFETCH: usize = 100;
/// Most members streaming at once, over all queues.
pub const MAX_STREAMS: usize = 10_000;

/// The event route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/queues/{queue}/events", get(events))
}

/// Every consumer group of the server, by queue.
pub struct Groups {
    map: Mutex<HashMap<String, Arc<Group>>>,
    streams: std::sync::atomic::AtomicUsize,
    /// Unacked deliveries of dropped members, by queue, awaiting a resume.
    parked: Mutex<HashMap<String, Vec<Parked>>>,
    next_parked: std::sync::atomic::AtomicU64,
    /// How long they wait.
    grace: Duration,
}

/// The unacked deliveries of a member whose connection dropped.
struct Parked {
    key: u64,
    /// The event ids that resume it: its unacked receipts and its last one.
    ids: Vec<Receipt>,
    /// In delivery order, with their lease ends.
    deliveries: Vec<(Message, Instant)>,
}

impl Default for Groups {
    fn default() -> Self {
        Groups::new(Duration::from_secs(5))
    }
}

impl Groups {
    /// Consumer groups whose dropped members may resume within `grace`.
    pub fn new(grace: Duration) -> Self {
        Groups {
            map: Mutex::default(),
            streams: Default::default(),
            parked: Mutex::default(),
            next_parked: Default::default(),
            grace,
        }
    }

    /// Takes the parked deliveries that `last_event_id` resumes, if any.
    fn resume(&self, queue: &str, last_event_id: &Receipt) -> Vec<(Message, Instant)> {
        let mut parked = lock(&self.parked);
        let Some(list) = parked.get_mut(queue) else {
            return Vec::new();
        };
        let Some(at) = list.iter().position(|p| p.ids.contains(last_event_id)) else {
            return Vec::new();
        };
        let found = list.remove(at);
        if list.is_empty() {
            parked.remove(queue);
        }
        let now = Instant::now();
        found
            .deliveries
            .into_iter()
            .filter(|(_, deadline)| *deadline > now)
            .collect()
    }

    /// Takes the parked entry `key` of `queue` if no one resumed it.
    fn unpark(&self, queue: &str, key: u64) -> Option<Parked> {
        let mut parked = lock(&self.parked);
        let list = parked.get_mut(queue)?;
        let at = list.iter().position(|p| p.key == key)?;
        let found = list.remove(at);
        if list.is_empty() {
            parked.remove(queue);
        }
        Some(found)
    }

    /// Frees the room of acked (or nacked) deliveries of `queue`.
    pub fn settled(&self, queue: &str, receipts: &[Receipt]) {
        let group = lock(&self.map).get(queue).cloned();
        if let Some(group) = group {
            let mut members = lock(&group.members);
            for m in members.list.iter_mut() {
                for r in receipts {
                    m.outstanding.remove(r);
                }
                m.sent
                    .retain(|s| !receipts.iter().any(|r| Some(*r) == s.receipt));
            }
            drop(members);
            group.wake.notify_one();
        }
    }

    /// A lease of `queue` now ends `visibility` from now (extend).
    pub fn extended(&self, queue: &str, receipt: &Receipt, visibility: Duration) {
        let group = lock(&self.map).get(queue).cloned();
        if let Some(group) = group {
            for m in lock(&group.members).list.iter_mut() {
                if let Some(deadline) = m.outstanding.get_mut(receipt) {
                    *deadline = Instant::now() + visibility;
                }
            }
        }
    }
}

struct Group {
    queue: String,
    members: Mutex<Members>,
    /// A member joined, left or got room back.
    wake: Notify,
}

#[derive(Default)]
struct Members {
    next_id: u64,
    list: Vec<Member>,
    turn: usize,
}

struct Member {
    id: u64,
    tx: mpsc::Sender<Message>,
    prefetch: usize,
    /// Unacked deliveries and when their leases end.
    outstanding: HashMap<Receipt, Instant>,
    /// The messages delivered and not yet settled, in order (to park).
    sent: Vec<Message>,
    /// The receipt of the last event sent.
    last_sent: Option<Receipt>,
}

impl Member {
    fn room(&mut self, now: Instant) -> usize {
        self.outstanding.retain(|_, deadline| *deadline > now);
        self.prefetch.saturating_sub(self.outstanding.len())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How to stream.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Deliveries this member may hold unacked (default 1, at most 100).
    prefetch: Option<usize>,
}

/// Leaves the group when the stream ends (dropped with the connection).
struct Membership {
    state: AppState,
    group: Arc<Group>,
    id: u64,
    /// Counts this member on the dashboard while it streams.
    _attendance: litebroker::presence::Attendance,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.state
            .groups
            .streams
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let mut members = lock(&self.group.members);
        let Some(at) = members.list.iter().position(|m| m.id == self.id) else {
            return;
        };
        let gone = members.list.remove(at);
        drop(members);
        self.group.wake.notify_one();
        let now = Instant::now();
        let deliveries: Vec<(Message, Instant)> = gone
            .sent
            .into_iter()
            .filter_map(|m| {
                let deadline = *gone.outstanding.get(m.receipt.as_ref()?)?;
                (deadline > now).then_some((m, deadline))
            })
            .collect();
        if deliveries.is_empty() {
            return;
        }
        let groups = &self.state.groups;
        let mut stopping = self.state.stopping.clone();
        if !groups.grace.is_zero() && !*stopping.borrow() {
            // Parked for a resume; given to the group if none comes.
            let key = groups
                .next_parked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut ids: Vec<Receipt> = deliveries.iter().filter_map(|(m, _)| m.receipt).collect();
            ids.extend(gone.last_sent);
            let grace = deliveries
                .iter()
                .map(|(_, d)| d.saturating_duration_since(now))
                .min()
                .unwrap_or_default()
                .min(groups.grace);
            lock(&groups.parked)
                .entry(self.group.queue.clone())
                .or_default()
                .push(Parked {
                    key,
                    ids,
                    deliveries,
                });
            let (state, queue) = (self.state.clone(), self.group.queue.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(grace) => {}
                    _ = stopping.wait_for(|s| *s) => {}
                }
                if let Some(p) = state.groups.unpark(&queue, key) {
                    let receipts = p.deliveries.iter().filter_map(|(m, _)| m.receipt).collect();
                    give_to_group(&state, queue, receipts).await;
                }
            });
            return;
        }
        let receipts = deliveries.iter().filter_map(|(m, _)| m.receipt).collect();
        let (state, queue) = (self.state.clone(), self.group.queue.clone());
        tokio::spawn(async move { give_to_group(&state, queue, receipts).await });
    }
}

/// Makes unacked deliveries visible again at once (acked ones answer
/// stale: ignored), for the group's other members.
async fn give_to_group(state: &AppState, queue: String, receipts: Vec<Receipt>) {
    let group = lock(&state.groups.map).get(&queue).cloned();
    let _ = state
        .pool
        .run(move |b| {
            let mut q = b.queue(&queue)?;
            for r in &receipts {
                let _ = q.nack(r, None);
            }
            Ok(())
        })
        .await;
    if let Some(g) = group {
        g.wake.notify_one();
    }
}

/// Join the queue's consumer group: its messages are pushed as
/// Server-Sent Events (`event: message`, `id: <receipt>`, `data: <message
/// JSON>`), each a lease to ack with `POST /v1/queues/{queue}/ack`.
#[utoipa::path(get, path = "/v1/queues/{queue}/events", tag = "leases",
    params(("queue" = String, Path), EventsQuery),
    responses((status = 200, content_type = "text/event-stream", description = "a stream of leased messages")))]
async fn events(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Query(q): Query<EventsQuery>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require(&queue, Perm::Read)?;
    caller.require(&queue, Perm::Delete)?; // acking what it receives
    litebroker::name::validate_queue_name(&queue)?;
    let prefetch = q.prefetch.unwrap_or(1);
    if prefetch == 0 || prefetch > MAX_PREFETCH {
        return Err(ApiError::invalid(format!(
            "prefetch must be 1 to {MAX_PREFETCH}"
        )));
    }
    let streams = state
        .groups
        .streams
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if streams >= MAX_STREAMS {
        state
            .groups
            .streams
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many open event streams",
        ));
    }
    // A resume: the dropped stream's unacked deliveries come first. An id
    // that is not a receipt, or resumes nothing, is a fresh start.
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<Receipt>().ok())
        .map(|r| state.groups.resume(&queue, &r))
        .unwrap_or_default();
    let (tx, rx) = mpsc::channel(prefetch.max(resumed.len()).max(1));
    let mut outstanding = HashMap::new();
    let mut sent = Vec::new();
    let mut last_sent = None;
    for (msg, deadline) in resumed {
        if let Some(receipt) = msg.receipt {
            outstanding.insert(receipt, deadline);
            last_sent = Some(receipt);
            sent.push(msg.clone());
            let _ = tx.try_send(msg); // room for all: the channel was sized for them
        }
    }
    let (group, id, start) = {
        let mut groups = lock(&state.groups.map);
        let (group, start) = match groups.get(&queue) {
            Some(g) => (g.clone(), false),
            None => {
                let g = Arc::new(Group {
                    queue: queue.clone(),
                    members: Mutex::new(Members::default()),
                    wake: Notify::new(),
                });
                groups.insert(queue.clone(), g.clone());
                (g, true)
            }
        };
        let mut members = lock(&group.members);
        members.next_id += 1;
        let id = members.next_id;
        members.list.push(Member {
            id,
            tx,
            prefetch,
            outstanding,
            sent,
            last_sent,
        });
        drop(members);
        (group, id, start)
    };
    group.wake.notify_one();
    if start {
        tokio::spawn(dispatch(state.clone(), group.clone()));
    }
    let membership = Membership {
        _attendance: state
            .presence
            .join(&queue, litebroker::presence::Transport::Http),
        state: state.clone(),
        group,
        id,
    };
    let stopping = state.stopping.clone();
    let retry = futures_util::stream::once(async {
        Ok::<_, Infallible>(Event::default().retry(Duration::from_secs(1)))
    });
    let stream = futures_util::stream::unfold(
        (rx, stopping, membership),
        |(mut rx, mut stopping, membership)| async move {
            if *stopping.borrow() {
                return None;
            }
            let msg = tokio::select! {
                m = rx.recv() => m?,
                _ = stopping.changed() => return None,
            };
            let receipt = msg.receipt.map(|r| r.to_string()).unwrap_or_default();
            let data = serde_json::to_string(&MessageOut::from(msg)).unwrap_or_default();
            let event = Event::default().event("message").id(receipt).data(data);
            Some((Ok(event), (rx, stopping, membership)))
        },
    );
    Ok(
        Sse::new(retry.chain(stream))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    )
}

/// Leases for the group while it has members with room, and deals the
/// messages out round-robin. Ends when the last member leaves or the
/// server stops.
async fn dispatch(state: AppState, group: Arc<Group>) {
    let queue = group.queue.clone();
    let _watching = state.changes.watch().await;
    let mut stopping = state.stopping.clone();
    loop {
        let changed = state.changes.notify().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let woken = group.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        let (room, visibility_hint) = {
            let mut groups = lock(&state.groups.map);
            let mut members = lock(&group.members);
            if members.list.is_empty() || *stopping.borrow() {
                if members.list.is_empty() {
                    groups.remove(&queue);
                }
                return;
            }
            let now = Instant::now();
            let room: usize = members.list.iter_mut().map(|m| m.room(now)).sum();
            // The earliest lease end frees room by itself.
            let next_free = members
                .list
                .iter()
                .flat_map(|m| m.outstanding.values())
                .min()
                .copied();
            (room, next_free)
        };
        let mut until = Instant::now() + Duration::from_secs(5);
        if room > 0 {
            let q = queue.clone();
            let found = state
                .pool
                .run(move |b| {
                    let mut q = b.queue(&q)?;
                    let visibility = q.config()?.effective_visibility();
                    let got = q.lease(&Filter::all(), room, None)?;
                    let next = if got.is_empty() {
                        q.until_visible()?
                    } else {
                        None
                    };
                    Ok((got, visibility, next))
                })
                .await;
            match found {
                Ok((got, visibility, _)) if !got.is_empty() => {
                    deal(&state, &group, got, visibility).await;
                    continue;
                }
                Ok((_, _, Some(next))) => until = until.min(Instant::now() + next),
                Ok(_) => {}
                Err(e) => tracing::warn!(code = e.code, "event dispatch failed"),
            }
        } else if let Some(at) = visibility_hint {
            until = until.min(at);
        }
        tokio::select! {
            _ = &mut changed, if room > 0 => {}
            _ = &mut woken => {}
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// Hands each leased message to the next member with room; gives back
/// (uncounted) what no member can take.
async fn deal(state: &AppState, group: &Group, messages: Vec<Message>, visibility: Duration) {
    let mut undelivered = Vec::new();
    {
        let mut members = lock(&group.members);
        let now = Instant::now();
        for msg in messages {
            let Some(receipt) = msg.receipt else {
                continue;
            };
            let n = members.list.len();
            let mut placed = false;
            for step in 0..n {
                let at = (members.turn + step) % n;
                let member = &mut members.list[at];
                if member.room(now) == 0 {
                    continue;
                }
                if member.tx.try_send(msg.clone()).is_ok() {
                    member.outstanding.insert(receipt, now + visibility);
                    member.sent.push(msg.clone());
                    member.last_sent = Some(receipt);
                    members.turn = (at + 1) % n;
                    placed = true;
                    break;
                }
            }
            if !placed {
                undelivered.push(receipt);
            }
        }
    }
    if !undelivered.is_empty() {
        let queue = group.queue.clone();
        let _ = state
            .pool
            .run(move |b| {
                let mut q = b.queue(&queue)?;
                for r in &undelivered {
                    let _ = q.give_back(r);
                }
                Ok(())
            })
            .await;
    }
}

/// The documented operations of this group.
#[derive(utoipa::OpenApi)]
#[openapi(paths(events))]
pub struct Doc;
