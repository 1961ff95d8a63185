//! The web dashboard: a page at `/` and its assets under `/assets/`
//! (embedded in the binary, served with a strict Content-Security-Policy),
//! and the few routes under `/v1/dashboard/` that it needs beyond the rest
//! of `/v1`: an overview of every queue (with a live Server-Sent Events
//! stream of it), a queue's messages in every state, one message's whole
//! body, deleting one message, and topics with their subscriptions.
//!
//! The page and assets need no key (they hold no data); every data route
//! takes the same `X-API-Key` as the rest of the API and shows only what
//! the key may read. Message ids are answered as strings, since they do not
//! fit a JavaScript number.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use futures_util::Stream;
use litebroker::message::Filter;
use litebroker::{Broker, Message, QueueStats};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{Caller, Perm, KEY_HEADER};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::traffic::{QueueTraffic, Timeline};
use crate::AppState;

const INDEX_HTML: &str = include_str!("../../dashboard/index.html");
const APP_JS: &str = include_str!("../../dashboard/app.js");
const APP_CSS: &str = include_str!("../../dashboard/app.css");

/// The policy every dashboard answer carries: nothing but this server's
/// own files, no inline script or style, no eval, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// How often the overview stream sends a fresh overview even without a
/// change (leases and delays end without a commit).
const REFRESH: Duration = Duration::from_secs(5);

/// The least time between two overviews on one stream (a busy database
/// commits far more often than anyone can read, and an overview of
/// 10,000 queues is over a megabyte).
const MIN_GAP: Duration = Duration::from_secs(1);

/// Most messages one page of a queue shows.
const MAX_PAGE: usize = 500;

/// A body longer than this is cut in listings (the whole body is one
/// request away).
const PREVIEW_CHARS: usize = 200;

/// What the dashboard's routes of one server share: when it started, and
/// the latest look at every queue, which concurrent overviews reuse rather
/// than each reading 10,000 queues again.
pub struct Shared {
    started: Instant,
    started_at: SystemTime,
    latest: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
}

/// Every queue as last read, before any key's filter.
pub struct Snapshot {
    /// When the read began.
    taken: Instant,
    now_ns: i64,
    queues: Vec<QueueStats>,
    /// When each queue's oldest visible message was written (Unix ms).
    oldest_ms: HashMap<String, i64>,
}

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    let shared = Arc::new(Shared {
        started: Instant::now(),
        started_at: SystemTime::now(),
        latest: tokio::sync::Mutex::new(None),
    });
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .route("/v1/dashboard/overview", get(overview))
        .route("/v1/dashboard/stream", get(stream))
        .route("/v1/dashboard/queues/{queue}/messages", get(messages))
        .route(
            "/v1/dashboard/queues/{queue}/messages/{id}",
            get(message).delete(delete_message),
        )
        .route("/v1/dashboard/topics", get(topics))
        .layer(Extension(shared))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The assets change with the binary: revalidate rather than go stale.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// One queue in the overview.
#[derive(Serialize, Clone, PartialEq, utoipa::ToSchema)]
pub struct QueueRow {
    /// Name.
    pub name: String,
    /// Visible messages.
    pub pending: u64,
    /// Leased messages.
    pub leased: u64,
    /// Delayed messages.
    pub delayed: u64,
    /// Messages in this queue's dead-letter queue (if it has one).
    pub dead_letters: Option<u64>,
    /// Its dead-letter queue.
    pub dead_letter_queue: Option<String>,
    /// Whether some queue dead-letters into this one.
    pub is_dead_letter_queue: bool,
    /// When the oldest visible message was written (Unix ms), if any.
    pub oldest_ms: Option<i64>,
    /// Messages in and out per interval of [`Overview::traffic`]; absent
    /// for a queue without traffic in that time.
    pub traffic: Option<QueueTraffic>,
}

/// The overview: every queue the key may read, totals, the server.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Overview {
    /// The server's version.
    pub version: &'static str,
    /// Seconds since the server started.
    pub uptime_seconds: u64,
    /// When the server started (Unix ms).
    pub started_ms: i64,
    /// The database's clock now (Unix ms).
    pub now_ms: i64,
    /// Totals over the queues shown.
    pub totals: Totals,
    /// The intervals traffic is counted in (absent until the server has
    /// sampled twice).
    pub traffic: Option<Timeline>,
    /// Messages in and out over the queues shown, per interval.
    pub total_traffic: Option<QueueTraffic>,
    /// The queues, by name.
    pub queues: Vec<QueueRow>,
}

/// Sums over the queues shown.
#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct Totals {
    /// Queues.
    pub queues: u64,
    /// Visible messages.
    pub pending: u64,
    /// Leased messages.
    pub leased: u64,
    /// Delayed messages.
    pub delayed: u64,
    /// Messages in dead-letter queues.
    pub dead_letters: u64,
}

fn ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

/// Reads every queue: counts, settings, and the age of the oldest visible
/// message of each queue that has one.
fn read_snapshot(b: &mut Broker) -> ApiResult<Snapshot> {
    let taken = Instant::now();
    let queues = b.list()?;
    let now_ns = b.now_ns()?;
    let mut oldest_ms = HashMap::new();
    for q in queues.iter().filter(|q| q.pending > 0) {
        let oldest = b.backend().peek(&q.name, &Filter::all(), 0, 1)?;
        if let Some(m) = oldest.first() {
            oldest_ms.insert(q.name.clone(), ms(litebroker::id::id_time_ns(m.id)));
        }
    }
    Ok(Snapshot {
        taken,
        now_ns,
        queues,
        oldest_ms,
    })
}

/// A snapshot begun no earlier than `not_before`: the latest one if it is
/// recent enough (another request just read it), otherwise a new one.
async fn snapshot(
    state: &AppState,
    shared: &Shared,
    not_before: Instant,
) -> ApiResult<Arc<Snapshot>> {
    let mut latest = shared.latest.lock().await;
    if let Some(s) = latest.as_ref().filter(|s| s.taken >= not_before) {
        return Ok(s.clone());
    }
    let fresh = Arc::new(state.pool.run(read_snapshot).await?);
    *latest = Some(fresh.clone());
    Ok(fresh)
}

/// The overview of `snap` that `caller` may see.
fn overview_for(state: &AppState, snap: &Snapshot, shared: &Shared, caller: &Caller) -> Overview {
    let all = &snap.queues;
    let depth: HashMap<&str, u64> = all
        .iter()
        .map(|q| (q.name.as_str(), q.pending + q.leased + q.delayed))
        .collect();
    let dlqs: HashSet<&str> = all
        .iter()
        .filter_map(|q| q.config.dead_letter.as_deref())
        .collect();
    let mut rows = Vec::new();
    let mut totals = Totals::default();
    let (timeline, mut traffic): (_, HashMap<String, QueueTraffic>) = state.traffic.with(|t| {
        let names = all.iter().filter(|q| caller.allows(&q.name, Perm::Read));
        let each = names
            .filter_map(|q| Some((q.name.clone(), t.queue(&q.name)?)))
            .collect();
        (t.timeline(), each)
    });
    let mut total_traffic = timeline.as_ref().map(|t| QueueTraffic {
        r#in: vec![0; t.ends_ms.len()],
        out: vec![0; t.ends_ms.len()],
    });
    for q in all {
        if !caller.allows(&q.name, Perm::Read) {
            continue;
        }
        let is_dlq = dlqs.contains(q.name.as_str());
        let dead_letter_queue = q.config.dead_letter.clone();
        // The count of a dead-letter queue the key may not read stays hidden.
        let dead_letters = dead_letter_queue
            .as_deref()
            .filter(|d| caller.allows(d, Perm::Read))
            .map(|d| depth.get(d).copied().unwrap_or(0));
        rows.push(QueueRow {
            name: q.name.clone(),
            pending: q.pending,
            leased: q.leased,
            delayed: q.delayed,
            dead_letters,
            dead_letter_queue,
            is_dead_letter_queue: is_dlq,
            oldest_ms: snap.oldest_ms.get(&q.name).copied(),
            traffic: traffic.remove(&q.name).inspect(|t| {
                if let Some(sum) = total_traffic.as_mut() {
                    sum.r#in.iter_mut().zip(&t.r#in).for_each(|(s, n)| *s += n);
                    sum.out.iter_mut().zip(&t.out).for_each(|(s, n)| *s += n);
                }
            }),
        });
        totals.queues += 1;
        totals.pending += q.pending;
        totals.leased += q.leased;
        totals.delayed += q.delayed;
        if is_dlq {
            totals.dead_letters += q.pending + q.leased + q.delayed;
        }
    }
    Overview {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: shared.started.elapsed().as_secs(),
        started_ms: shared
            .started_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        now_ms: ms(snap.now_ns),
        totals,
        traffic: timeline,
        total_traffic,
        queues: rows,
    }
}

/// Every queue the key may read, with counts, oldest message, traffic in
/// and out, and totals.
#[utoipa::path(get, path = "/v1/dashboard/overview", tag = "dashboard",
    responses((status = 200, body = Overview)))]
async fn overview(
    State(state): State<AppState>,
    Extension(shared): Extension<Arc<Shared>>,
    caller: Caller,
) -> ApiResult<Json<Overview>> {
    state.traffic.viewed();
    let snap = snapshot(&state, &shared, Instant::now()).await?;
    Ok(Json(overview_for(&state, &snap, &shared, &caller)))
}

/// The overview, then a fresh one after every change to the database (at
/// most one a second), and at least every five seconds; ends when the
/// server stops. Events are named `overview` (`error` if the database
/// fails meanwhile).
#[utoipa::path(get, path = "/v1/dashboard/stream", tag = "dashboard",
    responses((status = 200, content_type = "text/event-stream",
        description = "`overview` events (an Overview each), `error` events")))]
async fn stream(
    State(state): State<AppState>,
    Extension(shared): Extension<Arc<Shared>>,
    mut caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let presented = headers
        .get(KEY_HEADER)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    // Refuse at once (not in the stream) if the database does not answer.
    let mut woken = Instant::now();
    let first = snapshot(&state, &shared, woken).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(1);
    tokio::spawn(async move {
        let _watching = state.changes.watch().await;
        let mut stopping = state.stopping.clone();
        let mut next = Some(first);
        loop {
            // Listen before looking, so a commit while looking is not missed.
            let notified = state.changes.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // A key revoked since the stream began sees nothing more.
            if matches!(caller, Caller::Key(_)) {
                let refused = match reauthenticate(&state, &presented).await {
                    Ok(Some(fresh)) => {
                        caller = fresh;
                        None
                    }
                    Ok(None) => Some(ApiError::unauthorized("invalid API key")),
                    Err(e) => Some(e),
                };
                if let Some(e) = refused {
                    let _ = tx.send(error_event(&e)).await;
                    return;
                }
            }
            let snap = match next.take() {
                Some(s) => Ok(s),
                None => snapshot(&state, &shared, woken).await,
            };
            state.traffic.viewed();
            let event = match snap {
                Ok(s) => Event::default().event("overview").data(
                    serde_json::to_string(&overview_for(&state, &s, &shared, &caller))
                        .unwrap_or_default(),
                ),
                Err(e) => error_event(&e),
            };
            if tx.send(event).await.is_err() {
                return; // the client left
            }
            tokio::select! {
                _ = tokio::time::sleep(MIN_GAP) => {}
                _ = stopping.changed() => return,
                _ = tx.closed() => return,
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(REFRESH) => {}
                _ = stopping.changed() => return,
                _ = tx.closed() => return,
            }
            if *stopping.borrow() {
                return;
            }
            // A snapshot begun after this wake-up shows what woke it.
            woken = Instant::now();
        }
    });
    let events =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The caller `presented` (a key's secret) stands for now, if still valid.
async fn reauthenticate(state: &AppState, presented: &[u8]) -> ApiResult<Option<Caller>> {
    if let Some(key) = state.keys.as_ref().and_then(|k| k.find(presented)) {
        return Ok(Some(Caller::Key(key)));
    }
    let Some(stored) = &state.stored_keys else {
        return Ok(None);
    };
    Ok(stored
        .current(&state.pool)
        .await?
        .find(presented)
        .map(Caller::Key))
}

/// An `error` event: `{"error": {"code", "message"}}`.
fn error_event(e: &ApiError) -> Event {
    let body = serde_json::json!({"error": {"code": e.code, "message": e.message}});
    Event::default().event("error").data(body.to_string())
}

/// A message as the dashboard shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageRow {
    /// The id, as a string.
    pub id: String,
    /// Its storage position (paging: `after=`).
    pub seq: i64,
    /// When it was written (Unix ms).
    pub written_ms: i64,
    /// `visible`, `leased` or `delayed`.
    pub state: &'static str,
    /// When a leased or delayed message becomes visible (Unix ms).
    pub visible_at_ms: Option<i64>,
    /// How many times it has been leased.
    pub receives: u32,
    /// Headers.
    pub headers: Value,
    /// The body, or its first 200 characters in a listing.
    pub body: String,
    /// Whether `body` is cut.
    pub truncated: bool,
    /// The body's length in bytes.
    pub bytes: usize,
    /// Where it came from, when dead-lettered.
    pub dead_letter_source: Option<String>,
    /// Why it was dead-lettered.
    pub dead_letter_reason: Option<String>,
    /// The topic it was published to, if any.
    pub topic: Option<String>,
}

fn row(m: Message, visible_at: Option<i64>, cut: bool) -> MessageRow {
    let state = match visible_at {
        None => "visible",
        // A nack with a delay also counts a receive; it shows as leased.
        Some(_) if m.receives > 0 => "leased",
        Some(_) => "delayed",
    };
    let bytes = m.body.len();
    let (body, truncated) = match m.body.char_indices().nth(PREVIEW_CHARS) {
        Some((at, _)) if cut => (m.body[..at].to_owned(), true),
        _ => (m.body, false),
    };
    MessageRow {
        id: m.id.to_string(),
        seq: m.seq,
        written_ms: ms(litebroker::id::id_time_ns(m.id)),
        state,
        visible_at_ms: visible_at.map(ms),
        receives: m.receives,
        headers: m.headers.to_json_value(),
        body,
        truncated,
        bytes,
        dead_letter_source: m.dead_letter.as_ref().map(|d| d.source.clone()),
        dead_letter_reason: m.dead_letter.as_ref().map(|d| d.reason.clone()),
        topic: m.origin.as_ref().map(|o| o.topic.clone()),
    }
}

/// Which way a queue's messages are listed.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum Order {
    /// Oldest first (the order readers get them).
    #[default]
    Oldest,
    /// Newest first.
    Newest,
}

/// Which page of a queue.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// `oldest` (default) or `newest` first.
    #[serde(default)]
    order: Order,
    /// Oldest first: messages after this storage position (the previous
    /// page's `next`).
    after: Option<i64>,
    /// Newest first: messages before this storage position (the previous
    /// page's `next`).
    before: Option<i64>,
    /// How many (default 50, at most 500).
    limit: Option<usize>,
}

impl PageQuery {
    /// Where the page starts, checked against its order.
    fn from(&self) -> ApiResult<litebroker::BrowseFrom> {
        use litebroker::BrowseFrom;
        match (self.order, self.after, self.before) {
            (_, Some(_), Some(_)) => Err(ApiError::invalid("give after= or before=, not both")),
            (Order::Oldest, _, Some(_)) => Err(ApiError::invalid(
                "before= pages newest first: add order=newest",
            )),
            (Order::Newest, Some(_), _) => Err(ApiError::invalid(
                "after= pages oldest first: drop order=newest",
            )),
            (_, Some(a), _) if a < 0 => {
                Err(ApiError::invalid("after= is a storage position, 0 or more"))
            }
            (_, _, Some(b)) if b <= 0 => {
                Err(ApiError::invalid("before= is a positive storage position"))
            }
            (Order::Oldest, after, None) => Ok(BrowseFrom::After(after.unwrap_or(0))),
            (Order::Newest, None, before) => Ok(BrowseFrom::Before(before.unwrap_or(i64::MAX))),
        }
    }
}

/// One page of a queue.
#[derive(Serialize, utoipa::ToSchema)]
struct Page {
    messages: Vec<MessageRow>,
    /// `after=` (oldest first) or `before=` (newest first) for the next
    /// page; absent on the last one.
    next: Option<i64>,
}

/// A queue's stored messages in every state (visible, leased, delayed),
/// oldest or newest first, bodies cut to a preview.
#[utoipa::path(get, path = "/v1/dashboard/queues/{queue}/messages", tag = "dashboard",
    params(("queue" = String, Path), PageQuery),
    responses((status = 200, body = Page), (status = 400)))]
async fn messages(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page>> {
    caller.require(&queue, Perm::Read)?;
    litebroker::name::validate_queue_name(&queue)?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid(format!("limit must be 1 to {MAX_PAGE}")));
    }
    let from = q.from()?;
    let page = state
        .pool
        .run(move |b| {
            // One more than asked tells whether there is a next page.
            let mut found = b.backend().browse(&queue, from, limit + 1)?;
            let more = found.len() > limit;
            found.truncate(limit);
            let next = more.then(|| found.last().map(|m| m.message.seq)).flatten();
            let messages = found
                .into_iter()
                .map(|m| row(m.message, m.visible_at, true))
                .collect();
            Ok(Page { messages, next })
        })
        .await?;
    Ok(Json(page))
}

fn parse_id(text: &str) -> ApiResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("a message id is a positive integer"))
}

/// Where to find one message: its storage position (from a listing).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OneQuery {
    seq: i64,
}

/// One message with its whole body (found by its storage position and
/// checked by id; 404 once it is gone).
#[utoipa::path(get, path = "/v1/dashboard/queues/{queue}/messages/{id}", tag = "dashboard",
    params(("queue" = String, Path), ("id" = String, Path), OneQuery),
    responses((status = 200, body = MessageRow), (status = 404)))]
async fn message(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    caller: Caller,
    Query(q): Query<OneQuery>,
) -> ApiResult<Json<MessageRow>> {
    caller.require(&queue, Perm::Read)?;
    litebroker::name::validate_queue_name(&queue)?;
    let id = parse_id(&id)?;
    if q.seq <= 0 {
        return Err(ApiError::invalid("seq is a positive integer"));
    }
    let found = state
        .pool
        .run(move |b| {
            let found = b
                .backend()
                .browse(&queue, litebroker::BrowseFrom::After(q.seq - 1), 1)?;
            Ok(found
                .into_iter()
                .find(|m| m.message.id == id)
                .map(|m| row(m.message, m.visible_at, false)))
        })
        .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such message (consumed or moved?)"))
}

/// Deleted.
#[derive(Serialize, utoipa::ToSchema)]
struct Deleted {
    deleted: bool,
}

/// Deletes (consumes) one visible message; 404 if it is not there or is
/// leased or delayed.
#[utoipa::path(delete, path = "/v1/dashboard/queues/{queue}/messages/{id}", tag = "dashboard",
    params(("queue" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404)))]
async fn delete_message(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<Json<Deleted>> {
    caller.require(&queue, Perm::Delete)?;
    litebroker::name::validate_queue_name(&queue)?;
    let id = parse_id(&id)?;
    let deleted = state
        .pool
        .run(move |b| Ok(b.backend().delete_message(&queue, id)?))
        .await?;
    if !deleted {
        return Err(ApiError::not_found(
            "no such visible message (consumed, leased or delayed?)",
        ));
    }
    Ok(Json(Deleted { deleted: true }))
}

/// A topic.
#[derive(Serialize, utoipa::ToSchema)]
struct TopicRow {
    topic: String,
    retained: u64,
    next_offset: i64,
    /// Most messages kept, if bounded.
    retention_count: Option<u64>,
    /// Longest time kept (seconds), if bounded.
    retention_seconds: Option<u64>,
}

/// A subscription.
#[derive(Serialize, utoipa::ToSchema)]
struct SubscriptionRow {
    name: String,
    pattern: String,
    ephemeral: bool,
    /// Messages waiting in it (its lag).
    lag: u64,
    /// Per topic, the next offset it will receive (`[topic, offset]` pairs).
    #[schema(value_type = Vec<Vec<Object>>)]
    positions: Vec<(String, i64)>,
    /// Members streaming from it through this server, by transport.
    connected: Connected,
}

/// Members connected to a subscription through this server.
#[derive(Serialize, utoipa::ToSchema)]
struct Connected {
    /// Server-Sent Events streams (HTTP).
    http: u32,
    /// Subscribers of the TCP protocol (`--tcp`).
    tcp: u32,
}

impl From<litebroker::presence::Connected> for Connected {
    fn from(c: litebroker::presence::Connected) -> Self {
        Connected {
            http: c.http,
            tcp: c.tcp,
        }
    }
}

/// Topics and subscriptions.
#[derive(Serialize, utoipa::ToSchema)]
struct TopicsOut {
    topics: Vec<TopicRow>,
    subscriptions: Vec<SubscriptionRow>,
}

/// Topics and subscriptions the key may read (a topic by its name, a
/// subscription by its queue name).
#[utoipa::path(get, path = "/v1/dashboard/topics", tag = "dashboard",
    responses((status = 200, body = TopicsOut)))]
async fn topics(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TopicsOut>> {
    let (topics, subs) = state
        .pool
        .run(|b| Ok((b.backend().topics()?, b.backend().subscriptions()?)))
        .await?;
    let topics = topics
        .into_iter()
        .filter(|t| caller.allows(&t.topic, Perm::Read))
        .map(|t| TopicRow {
            retention_count: t.retention.max_count,
            retention_seconds: t.retention.max_age.map(|d| d.as_secs()),
            topic: t.topic,
            retained: t.retained,
            next_offset: t.next_offset,
        })
        .collect();
    let connected = state.presence.connected();
    let subscriptions = subs
        .into_iter()
        .filter(|s| caller.allows(&s.name, Perm::Read))
        .map(|s| SubscriptionRow {
            connected: connected.get(&s.name).copied().unwrap_or_default().into(),
            name: s.name,
            pattern: s.pattern,
            ephemeral: s.ephemeral,
            lag: s.depth,
            positions: s.next_offsets,
        })
        .collect();
    Ok(Json(TopicsOut {
        topics,
        subscriptions,
    }))
}

/// The documented operations of this group (the page and its assets are
/// not API).
#[derive(utoipa::OpenApi)]
#[openapi(paths(overview, stream, messages, message, delete_message, topics))]
pub struct Doc;
