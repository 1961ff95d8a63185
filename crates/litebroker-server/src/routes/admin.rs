//! Queue settings, moves, redrive and aliases, under `/v1`: what `broker
//! queue config`, `move`, `redrive` and `alias` do, remotely.

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::Router;
use litebroker::message::Filter;
use litebroker::QueueConfig;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Caller, Perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::routes::queues::{MessageOut, MessagesOut, MAX_BATCH};
use crate::AppState;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/queues/{queue}/config", get(get_config).put(put_config))
        .route("/v1/queues/{queue}/move", post(move_messages))
        .route("/v1/queues/{queue}/redrive", post(redrive))
        .route("/v1/aliases", get(list_aliases).post(add_alias))
        .route("/v1/aliases/{alias}", delete(remove_alias))
}

/// A queue's delivery settings.
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    /// Lease length when none is asked for (a duration: `30s`, `5m`).
    #[serde(default)]
    pub visibility: Option<String>,
    /// Deliveries after which an unacknowledged message is dead-lettered.
    #[serde(default)]
    pub max_receives: Option<u32>,
    /// Where such messages go.
    #[serde(default)]
    pub dead_letter: Option<String>,
}

/// A queue's delivery settings.
#[utoipa::path(get, path = "/v1/queues/{queue}/config", tag = "admin",
    params(("queue" = String, Path)), responses((status = 200, body = ConfigBody)))]
async fn get_config(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
) -> ApiResult<Json<ConfigBody>> {
    caller.require(&queue, Perm::Read)?;
    let config = state
        .pool
        .run(move |b| Ok(b.queue(&queue)?.config()?))
        .await?;
    Ok(Json(ConfigBody {
        visibility: config.visibility.map(litebroker::duration::format_duration),
        max_receives: config.max_receives,
        dead_letter: config.dead_letter,
    }))
}

/// Replace a queue's delivery settings (all of them: absent ones are unset).
#[utoipa::path(put, path = "/v1/queues/{queue}/config", tag = "admin",
    params(("queue" = String, Path)), request_body = ConfigBody,
    responses((status = 200, body = ConfigBody)))]
async fn put_config(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Json(body): Json<ConfigBody>,
) -> ApiResult<Json<ConfigBody>> {
    caller.require(&queue, Perm::Manage)?;
    let visibility = body
        .visibility
        .as_deref()
        .map(|v| {
            litebroker::duration::parse_duration(v)
                .map_err(|e| ApiError::invalid(format!("visibility: {e}")))
        })
        .transpose()?;
    let config = QueueConfig {
        visibility,
        max_receives: body.max_receives,
        dead_letter: body.dead_letter.clone(),
    };
    state
        .pool
        .run(move |b| Ok(b.configure_queue(&queue, &config)?))
        .await?;
    Ok(Json(body))
}

/// What to move.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// The destination queue.
    pub to: String,
    /// How many, oldest first (default 1, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only this message (by id); a consumed one is revived, as `move -m`.
    #[serde(default)]
    pub id: Option<i64>,
}

/// Move messages to another queue, keeping their ids and order.
#[utoipa::path(post, path = "/v1/queues/{queue}/move", tag = "admin",
    params(("queue" = String, Path)), request_body = MoveRequest,
    responses((status = 200, body = MessagesOut)))]
async fn move_messages(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Json(req): Json<MoveRequest>,
) -> ApiResult<Json<MessagesOut>> {
    caller.require(&queue, Perm::Read)?;
    caller.require(&queue, Perm::Delete)?;
    caller.require(&req.to, Perm::Write)?;
    let limit = req.limit.unwrap_or(1);
    if limit == 0 || limit > MAX_BATCH {
        return Err(ApiError::invalid(format!("limit must be 1 to {MAX_BATCH}")));
    }
    let filter = match req.id {
        Some(id) => Filter::by_id(id),
        None => Filter::all(),
    };
    let moved = state
        .pool
        .run(move |b| Ok(b.queue(&queue)?.move_to(&req.to, &filter, limit)?))
        .await?;
    Ok(Json(MessagesOut {
        messages: moved.into_iter().map(MessageOut::from).collect(),
    }))
}

/// Where to redrive to.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// Move everything here instead of back to each message's source queue.
    #[serde(default)]
    pub to: Option<String>,
}

/// How many moved.
#[derive(Serialize, ToSchema)]
pub struct RedriveOut {
    /// Messages moved back.
    pub moved: u64,
}

/// Move a dead-letter queue's messages back to where they came from.
#[utoipa::path(post, path = "/v1/queues/{queue}/redrive", tag = "admin",
    params(("queue" = String, Path)), request_body = RedriveRequest,
    responses((status = 200, body = RedriveOut)))]
async fn redrive(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Json(req): Json<RedriveRequest>,
) -> ApiResult<Json<RedriveOut>> {
    caller.require(&queue, Perm::Manage)?;
    if let Some(to) = &req.to {
        caller.require(to, Perm::Write)?;
    }
    let moved = state
        .pool
        .run(move |b| Ok(b.redrive(&queue, req.to.as_deref())?))
        .await?;
    Ok(Json(RedriveOut { moved }))
}

/// An alias.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasBody {
    /// The alias (used as `@alias` by the CLI).
    pub alias: String,
    /// The queue it names.
    pub target: String,
}

/// Aliases.
#[derive(Serialize, ToSchema)]
pub struct AliasesOut {
    /// Those whose target the caller may read.
    pub aliases: Vec<AliasBody>,
}

/// List aliases.
#[utoipa::path(get, path = "/v1/aliases", tag = "admin",
    responses((status = 200, body = AliasesOut)))]
async fn list_aliases(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AliasesOut>> {
    let all = state.pool.run(|b| Ok(b.aliases(None)?)).await?;
    let aliases = all
        .into_iter()
        .filter(|(_, target)| caller.allows(target, Perm::Read))
        .map(|(alias, target)| AliasBody { alias, target })
        .collect();
    Ok(Json(AliasesOut { aliases }))
}

/// Add an alias.
#[utoipa::path(post, path = "/v1/aliases", tag = "admin", request_body = AliasBody,
    responses((status = 200, body = AliasBody), (status = 409, description = "taken, or a cycle")))]
async fn add_alias(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<AliasBody>,
) -> ApiResult<Json<AliasBody>> {
    caller.require(&req.alias, Perm::Manage)?;
    caller.require(&req.target, Perm::Manage)?;
    let (alias, target) = (req.alias.clone(), req.target.clone());
    state
        .pool
        .run(move |b| Ok(b.alias_add(&alias, &target)?))
        .await?;
    Ok(Json(req))
}

/// Removed.
#[derive(Serialize, ToSchema)]
pub struct AliasRemovedOut {
    /// Always true (a missing alias is a 404).
    pub removed: bool,
}

/// Remove an alias.
#[utoipa::path(delete, path = "/v1/aliases/{alias}", tag = "admin",
    params(("alias" = String, Path)),
    responses((status = 200, body = AliasRemovedOut), (status = 404)))]
async fn remove_alias(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    caller: Caller,
) -> ApiResult<Json<AliasRemovedOut>> {
    caller.require(&alias, Perm::Manage)?;
    state.pool.run(move |b| Ok(b.alias_remove(&alias)?)).await?;
    Ok(Json(AliasRemovedOut { removed: true }))
}

/// The documented operations of this group.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    get_config,
    put_config,
    move_messages,
    redrive,
    list_aliases,
    add_alias,
    remove_alias
))]
pub struct Doc;
