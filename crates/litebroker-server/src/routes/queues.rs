//! litebroker's own API for queues, messages and leases, under `/v1`.
//!
//! Durations are litebroker durations (`30s`, `500ms`, `1h30m`, a bare
//! number is seconds). `wait=` long-polls up to the server's maximum (20 s
//! by default) and answers as soon as a message arrives.

use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use litebroker::message::Filter;
use litebroker::{Headers, Message, NackOutcome, Outgoing, QueueStats, Receipt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Perm};
use crate::commit::{Prepared, Take};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::wait::{parse_wait, poll_take};
use crate::AppState;

/// Most messages one request may take or write.
pub const MAX_BATCH: usize = 1000;

/// The queue routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/queues", get(list_queues))
        .route("/v1/queues/{queue}", get(queue_stats).delete(delete_queue))
        .route("/v1/queues/{queue}/messages", post(write).get(peek))
        .route("/v1/queues/{queue}/read", post(read))
        .route("/v1/queues/{queue}/lease", post(lease))
        .route("/v1/queues/{queue}/ack", post(ack))
        .route("/v1/queues/{queue}/nack", post(nack))
        .route("/v1/queues/{queue}/extend", post(extend))
}

/// A message as this API shows it.
#[derive(Serialize, ToSchema)]
pub struct MessageOut {
    /// The 64-bit id (a hybrid timestamp), as a number.
    pub id: i64,
    /// The body.
    pub body: String,
    /// Headers (string keys, scalar values).
    #[schema(value_type = Object)]
    pub headers: Value,
    /// How many times it has been leased.
    pub receives: u32,
    /// The lease's receipt, when this delivery is a lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// The topic it was published to, when it came through a subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Its offset in that topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Where it came from, when dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_source: Option<String>,
    /// Why it was dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_reason: Option<String>,
}

impl From<Message> for MessageOut {
    fn from(m: Message) -> Self {
        MessageOut {
            id: m.id,
            headers: m.headers.to_json_value(),
            receives: m.receives,
            receipt: m.receipt.map(|r| r.to_string()),
            topic: m.origin.as_ref().map(|o| o.topic.clone()),
            offset: m.origin.as_ref().map(|o| o.offset),
            dead_letter_source: m.dead_letter.as_ref().map(|d| d.source.clone()),
            dead_letter_reason: m.dead_letter.as_ref().map(|d| d.reason.clone()),
            body: m.body,
        }
    }
}

/// Messages answered.
#[derive(Serialize, ToSchema)]
pub struct MessagesOut {
    /// The messages, oldest first.
    pub messages: Vec<MessageOut>,
}

/// A queue's counts and settings.
#[derive(Serialize, ToSchema)]
pub struct QueueOut {
    /// Name.
    pub name: String,
    /// Visible messages.
    pub pending: u64,
    /// Leased messages.
    pub leased: u64,
    /// Delayed messages.
    pub delayed: u64,
    /// Lease length when none is asked for, seconds (if configured).
    pub visibility_seconds: Option<f64>,
    /// Deliveries before dead-lettering (if configured).
    pub max_receives: Option<u32>,
    /// The dead-letter queue (if configured).
    pub dead_letter: Option<String>,
}

impl From<QueueStats> for QueueOut {
    fn from(q: QueueStats) -> Self {
        QueueOut {
            pending: q.pending,
            leased: q.leased,
            delayed: q.delayed,
            visibility_seconds: q.config.visibility.map(|d| d.as_secs_f64()),
            max_receives: q.config.max_receives,
            dead_letter: q.config.dead_letter.clone(),
            name: q.name,
        }
    }
}

/// The queues.
#[derive(Serialize, ToSchema)]
pub struct QueuesOut {
    /// Every queue the caller may read, by name.
    pub queues: Vec<QueueOut>,
}

/// List the queues the caller may read, with their counts.
#[utoipa::path(get, path = "/v1/queues", tag = "queues",
    responses((status = 200, body = QueuesOut)))]
async fn list_queues(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<QueuesOut>> {
    let all = state.pool.run(|b| Ok(b.list()?)).await?;
    let queues = all
        .into_iter()
        .filter(|q| caller.allows(&q.name, Perm::Read))
        .map(QueueOut::from)
        .collect();
    Ok(Json(QueuesOut { queues }))
}

/// One queue's counts and settings.
#[utoipa::path(get, path = "/v1/queues/{queue}", tag = "queues",
    params(("queue" = String, Path)),
    responses((status = 200, body = QueueOut)))]
async fn queue_stats(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
) -> ApiResult<Json<QueueOut>> {
    caller.require(&queue, Perm::Read)?;
    litebroker::name::validate_queue_name(&queue)?;
    let name = queue.clone();
    let stats = state
        .pool
        .run(move |b| Ok(b.list()?.into_iter().find(|s| s.name == queue)))
        .await?;
    let stats = stats.unwrap_or(QueueStats {
        name,
        ..QueueStats::default()
    });
    Ok(Json(stats.into()))
}

/// Deleted.
#[derive(Serialize, ToSchema)]
pub struct DeletedOut {
    /// How many messages went.
    pub deleted: u64,
}

/// Delete every message of a queue.
#[utoipa::path(delete, path = "/v1/queues/{queue}", tag = "queues",
    params(("queue" = String, Path)),
    responses((status = 200, body = DeletedOut)))]
async fn delete_queue(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
) -> ApiResult<Json<DeletedOut>> {
    caller.require(&queue, Perm::Manage)?;
    let deleted = state
        .pool
        .run(move |b| Ok(b.queue(&queue)?.delete()?))
        .await?;
    Ok(Json(DeletedOut { deleted }))
}

/// One message to write.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// The body (UTF-8 text, up to 10 MiB).
    pub body: String,
    /// Headers: string keys, scalar values.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Value>,
    /// Invisible for this long (a duration: `30s`, `5m`).
    #[serde(default)]
    pub delay: Option<String>,
}

/// A write: one message, or a batch written in one transaction.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum WriteRequest {
    /// A batch.
    Batch {
        /// The messages, in order.
        messages: Vec<NewMessage>,
    },
    /// One message.
    One(NewMessage),
}

/// Ids of written messages.
#[derive(Serialize, ToSchema)]
pub struct WrittenOut {
    /// The new ids, in order.
    pub ids: Vec<i64>,
    /// True when the `Idempotency-Key` had written already: nothing was
    /// written, `ids` are the first write's.
    pub repeated: bool,
}

/// The header that makes a write happen at most once.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_KEEP: Duration = Duration::from_secs(24 * 3600);

fn parse_duration(what: &str, text: &str) -> ApiResult<Duration> {
    litebroker::duration::parse_duration(text)
        .map_err(|e| ApiError::invalid(format!("{what}: {e}")))
}

fn parse_headers(v: Option<Value>) -> ApiResult<Headers> {
    match v {
        None | Some(Value::Null) => Ok(Headers::new()),
        Some(v) => Headers::from_json_value(&v).map_err(|e| ApiError::invalid(e.to_string())),
    }
}

/// Write one message or a batch; a 2xx means they are durable. With an
/// `Idempotency-Key` header, a retry of the same write within 24 hours
/// writes nothing and answers the first write's ids.
#[utoipa::path(post, path = "/v1/queues/{queue}/messages", tag = "messages",
    params(("queue" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "writes at most once per key (24 h)")),
    request_body = WriteRequest,
    responses((status = 200, body = WrittenOut), (status = 413, description = "a message over 10 MiB")))]
async fn write(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Json(req): Json<WriteRequest>,
) -> ApiResult<Json<WrittenOut>> {
    caller.require(&queue, Perm::Write)?;
    let key = match headers.get(IDEMPOTENCY_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key must be visible ASCII"))?
                .to_owned(),
        ),
    };
    let batch = match req {
        WriteRequest::Batch { messages } => messages,
        WriteRequest::One(m) => vec![m],
    };
    if batch.is_empty() || batch.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "a write takes 1 to {MAX_BATCH} messages"
        )));
    }
    let mut prepared = Vec::with_capacity(batch.len());
    for m in batch {
        let headers = parse_headers(m.headers)?;
        let delay = m
            .delay
            .as_deref()
            .map(|d| parse_duration("delay", d))
            .transpose()?;
        prepared.push(Prepared {
            body: m.body,
            headers,
            delay,
        });
    }
    let Some(key) = key else {
        // Committed together with the writes that arrive meanwhile.
        let ids = state.commits.write(queue, prepared).await?;
        return Ok(Json(WrittenOut {
            ids,
            repeated: false,
        }));
    };
    let (ids, repeated) = state
        .pool
        .run(move |b| {
            let out: Vec<Outgoing<'_>> = prepared
                .iter()
                .map(|m| Outgoing {
                    body: &m.body,
                    headers: (!m.headers.is_empty()).then_some(&m.headers),
                    delay: m.delay,
                })
                .collect();
            Ok(b.queue(&queue)?.write_once(&key, IDEMPOTENCY_KEEP, &out)?)
        })
        .await?;
    Ok(Json(WrittenOut { ids, repeated }))
}

/// Which messages to look at.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeekQuery {
    /// How many (default 10, at most 1000).
    limit: Option<usize>,
    /// Only messages after this id or time (`--since`'s forms).
    since: Option<String>,
    /// Only messages before this id or time.
    before: Option<String>,
}

/// Look at the oldest visible messages without taking them.
#[utoipa::path(get, path = "/v1/queues/{queue}/messages", tag = "messages",
    params(("queue" = String, Path), PeekQuery),
    responses((status = 200, body = MessagesOut)))]
async fn peek(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Query(q): Query<PeekQuery>,
) -> ApiResult<Json<MessagesOut>> {
    caller.require(&queue, Perm::Read)?;
    let limit = batch_limit(q.limit)?;
    let filter = Filter {
        id: None,
        after: q.since.as_deref().map(parse_bound).transpose()?,
        before: q.before.as_deref().map(parse_bound).transpose()?,
    };
    let messages = state
        .pool
        .run(move |b| {
            Ok(b.backend()
                .peek(&queue_checked(&queue)?, &filter, 0, limit)?)
        })
        .await?;
    Ok(Json(MessagesOut {
        messages: messages.into_iter().map(MessageOut::from).collect(),
    }))
}

fn parse_bound(text: &str) -> ApiResult<i64> {
    litebroker::timebound::parse_time_bound(text)
        .map_err(|e| ApiError::from(litebroker::Error::from(e)))
}

fn queue_checked(queue: &str) -> ApiResult<String> {
    litebroker::name::validate_queue_name(queue)?;
    Ok(queue.to_owned())
}

fn batch_limit(limit: Option<usize>) -> ApiResult<usize> {
    let limit = limit.unwrap_or(10);
    if limit == 0 || limit > MAX_BATCH {
        return Err(ApiError::invalid(format!("limit must be 1 to {MAX_BATCH}")));
    }
    Ok(limit)
}

/// How many to take, and how long to wait for them.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TakeQuery {
    /// How many (default 1, at most 1000).
    limit: Option<usize>,
    /// Long-poll: wait this long for a message (at most 20 s).
    wait: Option<String>,
    /// Lease length (lease only; default: the queue's, 30 s if unset).
    visibility: Option<String>,
}

/// Take (consume) the oldest visible messages: exactly once.
#[utoipa::path(post, path = "/v1/queues/{queue}/read", tag = "messages",
    params(("queue" = String, Path), TakeQuery),
    responses((status = 200, body = MessagesOut)))]
async fn read(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Query(q): Query<TakeQuery>,
) -> ApiResult<Json<MessagesOut>> {
    caller.require(&queue, Perm::Read)?;
    caller.require(&queue, Perm::Delete)?;
    if q.visibility.is_some() {
        return Err(ApiError::invalid(
            "visibility is for leases (POST .../lease)",
        ));
    }
    let limit = batch_limit(Some(q.limit.unwrap_or(1)))?;
    let wait = parse_wait(&state, q.wait.as_deref())?;
    let queue = queue_checked(&queue)?;
    // Together with the other takes of this queue that arrive meanwhile.
    let messages = poll_take(&state, wait, &queue, Take::Read, limit).await?;
    Ok(Json(MessagesOut {
        messages: messages.into_iter().map(MessageOut::from).collect(),
    }))
}

/// Lease the oldest visible messages: each comes with a receipt to ack,
/// nack or extend; unacked, it comes back when the lease ends.
#[utoipa::path(post, path = "/v1/queues/{queue}/lease", tag = "leases",
    params(("queue" = String, Path), TakeQuery),
    responses((status = 200, body = MessagesOut)))]
async fn lease(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Query(q): Query<TakeQuery>,
) -> ApiResult<Json<MessagesOut>> {
    caller.require(&queue, Perm::Read)?;
    let limit = batch_limit(Some(q.limit.unwrap_or(1)))?;
    let wait = parse_wait(&state, q.wait.as_deref())?;
    let visibility = q
        .visibility
        .as_deref()
        .map(|v| parse_duration("visibility", v))
        .transpose()?;
    let queue = queue_checked(&queue)?;
    let messages = poll_take(&state, wait, &queue, Take::Lease(visibility), limit).await?;
    Ok(Json(MessagesOut {
        messages: messages.into_iter().map(MessageOut::from).collect(),
    }))
}

fn parse_receipt(text: &str) -> ApiResult<Receipt> {
    text.parse::<Receipt>()
        .map_err(|e| ApiError::from(litebroker::Error::from(e)))
}

/// Receipts to acknowledge.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// The receipts (at most 1000), acknowledged in one transaction.
    pub receipts: Vec<String>,
}

/// One receipt's outcome.
#[derive(Serialize, ToSchema)]
pub struct AckResult {
    /// The receipt.
    pub receipt: String,
    /// Whether it was acknowledged.
    pub ok: bool,
    /// Why not (`not_found`, `stale_receipt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// Outcomes, one per receipt, in order.
#[derive(Serialize, ToSchema)]
pub struct AckOut {
    /// The outcomes.
    pub results: Vec<AckResult>,
}

/// Acknowledge leased messages (gone for good); one outcome per receipt.
#[utoipa::path(post, path = "/v1/queues/{queue}/ack", tag = "leases",
    params(("queue" = String, Path)), request_body = AckRequest,
    responses((status = 200, body = AckOut)))]
async fn ack(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Json(req): Json<AckRequest>,
) -> ApiResult<Json<AckOut>> {
    caller.require(&queue, Perm::Delete)?;
    if req.receipts.is_empty() || req.receipts.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "ack takes 1 to {MAX_BATCH} receipts"
        )));
    }
    let receipts = req
        .receipts
        .iter()
        .map(|r| parse_receipt(r))
        .collect::<ApiResult<Vec<_>>>()?;
    let queue = queue_checked(&queue)?;
    // Together with the other acks of this queue that arrive meanwhile.
    let outcomes = state.commits.ack(queue.clone(), receipts.clone()).await?;
    state.groups.settled(&queue, &receipts);
    let results = req
        .receipts
        .into_iter()
        .zip(outcomes)
        .map(|(receipt, outcome)| AckResult {
            receipt,
            ok: outcome.is_ok(),
            error: outcome
                .err()
                .map(|e| crate::error::status_for(litebroker::Error::from(e).kind()).1),
        })
        .collect();
    Ok(Json(AckOut { results }))
}

/// A receipt to give back.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NackRequest {
    /// The lease's receipt.
    pub receipt: String,
    /// Visible again only after this long (a duration).
    #[serde(default)]
    pub delay: Option<String>,
}

/// What became of a nacked message.
#[derive(Serialize, ToSchema)]
pub struct NackOut {
    /// `requeued`, `delayed` or `dead_lettered`.
    pub outcome: &'static str,
    /// The dead-letter queue, when dead-lettered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<String>,
}

/// Give a leased message back: visible again now, after `delay`, or
/// dead-lettered at the queue's maximum receives.
#[utoipa::path(post, path = "/v1/queues/{queue}/nack", tag = "leases",
    params(("queue" = String, Path)), request_body = NackRequest,
    responses((status = 200, body = NackOut), (status = 409, description = "the lease has ended")))]
async fn nack(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Json(req): Json<NackRequest>,
) -> ApiResult<Json<NackOut>> {
    caller.require(&queue, Perm::Read)?;
    let receipt = parse_receipt(&req.receipt)?;
    let delay = req
        .delay
        .as_deref()
        .map(|d| parse_duration("delay", d))
        .transpose()?;
    let queue = queue_checked(&queue)?;
    let q = queue.clone();
    let outcome = state
        .pool
        .run(move |b| Ok(b.queue(&q)?.nack(&receipt, delay)?))
        .await?;
    state.groups.settled(&queue, &[receipt]);
    Ok(Json(match outcome {
        NackOutcome::Requeued => NackOut {
            outcome: "requeued",
            dead_letter_queue: None,
        },
        NackOutcome::Delayed(_) => NackOut {
            outcome: "delayed",
            dead_letter_queue: None,
        },
        NackOutcome::DeadLettered(q) => NackOut {
            outcome: "dead_lettered",
            dead_letter_queue: Some(q),
        },
    }))
}

/// A lease to extend.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// The lease's receipt.
    pub receipt: String,
    /// The lease then ends this long from now (a duration).
    pub visibility: String,
}

/// Extended.
#[derive(Serialize, ToSchema)]
pub struct ExtendOut {
    /// Always true.
    pub extended: bool,
}

/// Make a lease end `visibility` from now.
#[utoipa::path(post, path = "/v1/queues/{queue}/extend", tag = "leases",
    params(("queue" = String, Path)), request_body = ExtendRequest,
    responses((status = 200, body = ExtendOut), (status = 409, description = "the lease has ended")))]
async fn extend(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Json(req): Json<ExtendRequest>,
) -> ApiResult<Json<ExtendOut>> {
    caller.require(&queue, Perm::Read)?;
    let receipt = parse_receipt(&req.receipt)?;
    let visibility = parse_duration("visibility", &req.visibility)?;
    let queue = queue_checked(&queue)?;
    let q = queue.clone();
    state
        .pool
        .run(move |b| Ok(b.queue(&q)?.extend(&receipt, visibility)?))
        .await?;
    state.groups.extended(&queue, &receipt, visibility);
    Ok(Json(ExtendOut { extended: true }))
}

/// The documented operations of this group.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_queues,
    queue_stats,
    delete_queue,
    write,
    peek,
    read,
    lease,
    ack,
    nack,
    extend
))]
pub struct Doc;
