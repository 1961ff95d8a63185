//! Topics and subscriptions, under `/v1`. Permissions on topics work as on
//! queues: publishing needs `write` on the topic's name, a subscription is
//! a queue (reading it needs `read` on its name), creating or removing one
//! needs `manage` on its name.

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::Router;
use litebroker::pubsub::{NewSubscription, StartFrom};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::{Caller, Perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::AppState;

/// The topic routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/topics/{topic}/publish", post(publish))
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

/// The documented operations of this group.
#[derive(utoipa::OpenApi)]
#[openapi(paths(publish, list, create, remove))]
pub struct Doc;
