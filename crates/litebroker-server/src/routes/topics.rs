//! Topics and subscriptions, under `/v1`. Permissions on topics work as on
//! queues: publishing needs `write` on the topic's name, a subscription is
//! a queue (reading it needs `read` on its name), creating or removing one
//! needs `manage` on its name. A topic's retention needs `read` on the
//! topic (or pattern) to see and `manage` to change; a request needs
//! `write` on the topic (its reply comes through an inbox of its own).

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::Router;
use std::time::Duration;

use litebroker::message::Filter;
use litebroker::pubsub::{NewSubscription, Retention, StartFrom, CORRELATION_ID, REPLY_TO};
use litebroker::{HeaderValue, Headers};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::{Caller, Perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::routes::queues::MessageOut;
use crate::wait::{parse_wait, poll};
use crate::AppState;

/// The topic routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/topics", get(topics))
        .route("/v1/topics/{topic}/publish", post(publish))
        .route("/v1/topics/{topic}/request", post(request))
        .route(
            "/v1/topics/{topic}/retention",
            get(get_retention).put(put_retention),
        )
        .route("/v1/subscriptions", get(list).post(create))
        .route("/v1/subscriptions/{name}", delete(remove))
}

/// A message to publish.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The body.
    pub body: String,
    /// Headers: string keys, scalar values.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Value>,
}

/// Where a published message went.
#[derive(Serialize, ToSchema)]
pub struct PublishOut {
    /// The message's id.
    pub id: i64,
    /// Its offset in the topic's log.
    pub offset: i64,
    /// How many subscriptions got a copy.
    pub delivered: usize,
}

/// Publish to a topic: every matching subscription gets a copy.
#[utoipa::path(post, path = "/v1/topics/{topic}/publish", tag = "topics",
    params(("topic" = String, Path)), request_body = PublishRequest,
    responses((status = 200, body = PublishOut)))]
async fn publish(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    caller: Caller,
    Json(req): Json<PublishRequest>,
) -> ApiResult<Json<PublishOut>> {
    caller.require(&topic, Perm::Write)?;
    let headers = match req.headers {
        None | Some(Value::Null) => litebroker::Headers::new(),
        Some(v) => litebroker::Headers::from_json_value(&v)
            .map_err(|e| ApiError::invalid(e.to_string()))?,
    };
    let published = state
        .pool
        .run(move |b| Ok(b.publish(&topic, &req.body, &headers)?))
        .await?;
    Ok(Json(PublishOut {
        id: published.id,
        offset: published.offset,
        delivered: published.delivered,
    }))
}

/// A subscription.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionOut {
    /// Its name (also the name of its queue).
    pub name: String,
    /// The topic pattern it follows.
    pub pattern: String,
    /// Messages waiting in it.
    pub depth: u64,
}

/// The subscriptions.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionsOut {
    /// Those the caller may read, by name.
    pub subscriptions: Vec<SubscriptionOut>,
}

/// List subscriptions.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "topics",
    responses((status = 200, body = SubscriptionsOut)))]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<SubscriptionsOut>> {
    let all = state.pool.run(|b| Ok(b.subscriptions()?)).await?;
    let subscriptions = all
        .into_iter()
        .filter(|s| caller.allows(&s.name, Perm::Read))
        .map(|s| SubscriptionOut {
            name: s.name,
            pattern: s.pattern,
            depth: s.depth,
        })
        .collect();
    Ok(Json(SubscriptionsOut { subscriptions }))
}

/// A subscription to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Its name (a queue name, not taken by a queue).
    pub name: String,
    /// The topic pattern (`=` one word, `+` one or more).
    pub pattern: String,
    /// Where to start: `latest` (default), `earliest`, an offset, or a time.
    #[serde(default)]
    pub from: Option<String>,
}

/// Created.
#[derive(Serialize, ToSchema)]
pub struct CreatedOut {
    /// Retained messages copied into it from its start position.
    pub replayed: u64,
}

/// Create a durable subscription.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "topics",
    request_body = CreateRequest,
    responses((status = 200, body = CreatedOut), (status = 409, description = "the name is taken")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateRequest>,
) -> ApiResult<Json<CreatedOut>> {
    caller.require(&req.name, Perm::Manage)?;
    let from = match req.from.as_deref() {
        None => StartFrom::Latest,
        Some(text) => StartFrom::parse(text)?,
    };
    let replayed = state
        .pool
        .run(move |b| {
            Ok(b.create_subscription(&NewSubscription {
                name: &req.name,
                pattern: &req.pattern,
                from,
                ephemeral: None,
            })?)
        })
        .await?;
    Ok(Json(CreatedOut { replayed }))
}

/// Removed.
#[derive(Serialize, ToSchema)]
pub struct RemovedOut {
    /// Always true (a missing subscription is a 404).
    pub removed: bool,
}

/// Remove a subscription and its pending messages.
#[utoipa::path(delete, path = "/v1/subscriptions/{name}", tag = "topics",
    params(("name" = String, Path)),
    responses((status = 200, body = RemovedOut), (status = 404)))]
async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RemovedOut>> {
    caller.require(&name, Perm::Manage)?;
    let n = name.clone();
    let removed = state
        .pool
        .run(move |b| Ok(b.delete_subscription(&n)?))
        .await?;
    if !removed {
        return Err(ApiError::not_found(format!(
            "no subscription named '{name}'"
        )));
    }
    Ok(Json(RemovedOut { removed }))
}

/// A retention: how much of a topic's log is kept.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    /// Keep at most this many messages (none: no bound).
    #[serde(default)]
    pub max_count: Option<u64>,
    /// Keep messages younger than this (a duration: `7d`, `12h`; none: no bound).
    #[serde(default)]
    pub max_age: Option<String>,
}

impl From<Retention> for RetentionBody {
    fn from(r: Retention) -> Self {
        RetentionBody {
            max_count: r.max_count,
            max_age: r.max_age.map(litebroker::duration::format_duration),
        }
    }
}

/// A topic.
#[derive(Serialize, ToSchema)]
pub struct TopicOut {
    /// Its name.
    pub topic: String,
    /// Messages still in its log.
    pub retained: u64,
    /// The oldest retained offset.
    pub first_offset: Option<i64>,
    /// The offset the next publish gets (how many were ever published).
    pub next_offset: i64,
    /// The retention in force (the tightest of the settings that match it).
    pub retention: RetentionBody,
}

/// The topics.
#[derive(Serialize, ToSchema)]
pub struct TopicsOut {
    /// Those the caller may read, by name.
    pub topics: Vec<TopicOut>,
}

/// List the topics ever published to, with their logs' extent and retention.
#[utoipa::path(get, path = "/v1/topics", tag = "topics",
    responses((status = 200, body = TopicsOut)))]
async fn topics(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TopicsOut>> {
    let all = state.pool.run(|b| Ok(b.topics()?)).await?;
    let topics = all
        .into_iter()
        .filter(|t| caller.allows(&t.topic, Perm::Read))
        .map(|t| TopicOut {
            topic: t.topic,
            retained: t.retained,
            first_offset: t.first_offset,
            next_offset: t.next_offset,
            retention: t.retention.into(),
        })
        .collect();
    Ok(Json(TopicsOut { topics }))
}

/// The retention stored for exactly this topic or pattern (no bounds if none).
#[utoipa::path(get, path = "/v1/topics/{topic}/retention", tag = "topics",
    params(("topic" = String, Path, description = "a topic or a pattern")),
    responses((status = 200, body = RetentionBody)))]
async fn get_retention(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RetentionBody>> {
    caller.require(&topic, Perm::Read)?;
    let r = state
        .pool
        .run(move |b| Ok(b.retention_setting(&topic)?))
        .await?;
    Ok(Json(r.into()))
}

/// Bound the logs of the topics a topic or pattern matches; no bounds
/// removes the setting. Applies from the next publish.
#[utoipa::path(put, path = "/v1/topics/{topic}/retention", tag = "topics",
    params(("topic" = String, Path, description = "a topic or a pattern")),
    request_body = RetentionBody,
    responses((status = 200, body = RetentionBody)))]
async fn put_retention(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    caller: Caller,
    Json(req): Json<RetentionBody>,
) -> ApiResult<Json<RetentionBody>> {
    caller.require(&topic, Perm::Manage)?;
    let max_age = req
        .max_age
        .as_deref()
        .map(|t| {
            litebroker::duration::parse_duration(t)
                .map_err(|e| ApiError::invalid(format!("max_age: {e}")))
        })
        .transpose()?;
    if max_age.is_some_and(|d| d.is_zero()) || req.max_count == Some(0) {
        return Err(ApiError::invalid(
            "a retention bound must be above zero (leave it out for none)",
        ));
    }
    let retention = Retention {
        max_count: req.max_count,
        max_age,
    };
    state
        .pool
        .run(move |b| Ok(b.set_retention(&topic, &retention)?))
        .await?;
    Ok(Json(retention.into()))
}

/// How long to wait for a reply.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// Wait this long for the reply (default 5 s, at most the long-poll
    /// maximum, 20 s).
    timeout: Option<String>,
}

/// The reply to a request.
#[derive(Serialize, ToSchema)]
pub struct ReplyOut {
    /// The first reply.
    pub reply: MessageOut,
}

/// Request/reply: publish a request carrying `reply-to` and
/// `correlation-id` headers and wait for the first reply (a responder
/// publishes it to the `reply-to` topic with the same `correlation-id`,
/// e.g. through `POST /v1/topics/{reply-to}/publish`). 504 `no_reply` when
/// none comes in time.
#[utoipa::path(post, path = "/v1/topics/{topic}/request", tag = "topics",
    params(("topic" = String, Path), RequestQuery), request_body = PublishRequest,
    responses((status = 200, body = ReplyOut), (status = 504, description = "no reply in time")))]
async fn request(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    caller: Caller,
    Query(q): Query<RequestQuery>,
    Json(req): Json<PublishRequest>,
) -> ApiResult<Json<ReplyOut>> {
    caller.require(&topic, Perm::Write)?;
    litebroker::topic::validate_topic(&topic)
        .map_err(|e| ApiError::from(litebroker::Error::from(e)))?;
    let timeout = match q.timeout.as_deref() {
        None => Duration::from_secs(5).min(state.max_wait),
        text => parse_wait(&state, text)?,
    };
    let mut headers = match req.headers {
        None | Some(Value::Null) => Headers::new(),
        Some(v) => Headers::from_json_value(&v).map_err(|e| ApiError::invalid(e.to_string()))?,
    };
    let token = format!("{:016x}", litebroker::lease::random_nonce());
    let reply_topic = format!("reply.http-{token}");
    let inbox = format!("lb.reply.http-{token}");
    headers
        .insert(REPLY_TO, HeaderValue::Str(reply_topic.clone()))
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    headers
        .insert(CORRELATION_ID, HeaderValue::Str(token.clone()))
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    // The inbox first, so that no reply can come before it.
    let name = inbox.clone();
    state
        .pool
        .run(move |b| {
            b.create_subscription(&NewSubscription {
                name: &name,
                pattern: &reply_topic,
                from: StartFrom::Latest,
                // Expires by itself should the removal below not happen.
                ephemeral: Some(timeout + Duration::from_secs(60)),
            })?;
            b.publish(&topic, &req.body, &headers)?;
            Ok(())
        })
        .await?;
    let name = inbox.clone();
    let wanted = token.clone();
    let found = poll(&state, timeout.max(Duration::from_millis(1)), || {
        let (name, wanted) = (name.clone(), wanted.clone());
        state.pool.run(move |b| {
            let got = b.queue(&name)?.read_many(&Filter::all(), 100)?;
            let reply: Vec<_> = got
                .into_iter()
                .filter(|m| m.headers.get_str(CORRELATION_ID) == Some(wanted.as_str()))
                .take(1)
                .collect();
            Ok((reply, None))
        })
    })
    .await;
    let removed = state
        .pool
        .run(move |b| Ok(b.delete_subscription(&inbox)?))
        .await;
    let reply = found?.into_iter().next();
    removed?;
    match reply {
        Some(m) => Ok(Json(ReplyOut { reply: m.into() })),
        None => Err(ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            "no_reply",
            "no reply came in time",
        )),
    }
}

/// The documented operations of this group.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    publish,
    list,
    create,
    remove,
    topics,
    get_retention,
    put_retention,
    request
))]
pub struct Doc;
