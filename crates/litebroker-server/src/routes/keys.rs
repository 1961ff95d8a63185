//! API keys kept in the database, managed over HTTP by a key that holds
//! `manage` through a `*` grant (on every queue). The secret is answered
//! once, at creation; only its hash is stored.

use axum::extract::State;
use axum::routing::{delete, get};
use axum::Router;
use litebroker::backend::StoredKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{self, Caller, Perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::AppState;

/// The key routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", get(list).post(create))
        .route("/v1/keys/{name}", delete(revoke))
}

fn require_admin(caller: &Caller) -> ApiResult<()> {
    caller.require("*", Perm::Manage)
}

/// A key to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Its name (letters, digits, `_ . -`).
    pub name: String,
    /// Grants, `PATTERN=PERM,PERM` (`orders.*=read,write`).
    pub allow: Vec<String>,
}

/// A created key: the only time its secret is shown.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// Its name.
    pub name: String,
    /// The secret, for the `X-API-Key` header.
    pub secret: String,
    /// Its grants.
    pub allow: Vec<String>,
}

/// A stored key (never its secret).
#[derive(Serialize, ToSchema)]
pub struct KeyOut {
    /// Its name.
    pub name: String,
    /// Its grants.
    pub allow: Vec<String>,
    /// When it was created (Unix ns).
    pub created_ns: i64,
}

/// The stored keys.
#[derive(Serialize, ToSchema)]
pub struct KeysOut {
    /// By name.
    pub keys: Vec<KeyOut>,
}

/// Create a key; its secret is in this answer only.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 200, body = CreatedKey), (status = 409, description = "the name is taken")))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateKey>,
) -> ApiResult<Json<CreatedKey>> {
    require_admin(&caller)?;
    let grants = auth::parse_grants(&req.allow).map_err(ApiError::invalid)?;
    let text = auth::grants_text(&grants);
    let secret = auth::new_secret();
    let stored = StoredKey {
        name: req.name.clone(),
        secret_hash: auth::hash_secret(&secret),
        grants: text.clone(),
        created_ns: crate::iso::now_ns(),
    };
    state.pool.run(move |b| Ok(b.api_key_add(&stored)?)).await?;
    if let Some(s) = &state.stored_keys {
        s.invalidate().await;
    }
    Ok(Json(CreatedKey {
        name: req.name,
        secret,
        allow: text.lines().map(str::to_owned).collect(),
    }))
}

/// List the stored keys.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = KeysOut)))]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<KeysOut>> {
    require_admin(&caller)?;
    let stored = state.pool.run(|b| Ok(b.api_keys()?)).await?;
    Ok(Json(KeysOut {
        keys: stored
            .into_iter()
            .map(|k| KeyOut {
                allow: k.grants.lines().map(str::to_owned).collect(),
                name: k.name,
                created_ns: k.created_ns,
            })
            .collect(),
    }))
}

/// Revoked.
#[derive(Serialize, ToSchema)]
pub struct RevokedOut {
    /// Always true (an unknown key is a 404).
    pub revoked: bool,
}

/// Revoke a key: it stops working within a second everywhere.
#[utoipa::path(delete, path = "/v1/keys/{name}", tag = "keys", params(("name" = String, Path)),
    responses((status = 200, body = RevokedOut), (status = 404)))]
async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> ApiResult<Json<RevokedOut>> {
    require_admin(&caller)?;
    let n = name.clone();
    let revoked = state.pool.run(move |b| Ok(b.api_key_revoke(&n)?)).await?;
    if let Some(s) = &state.stored_keys {
        s.invalidate().await;
    }
    if !revoked {
        return Err(ApiError::not_found(format!("no API key named '{name}'")));
    }
    Ok(Json(RevokedOut { revoked }))
}

/// The documented operations of this group.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, revoke))]
pub struct Doc;
