//! `/health` (liveness, no key), `/ready` (the database answers, no key),
//! `/metrics` (Prometheus text; a valid key when keys are configured) and
//! `/openapi.json` (generated from the handlers' annotations).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use utoipa::OpenApi;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Json;
use crate::AppState;

/// The system routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    state.pool.run(|b| Ok(b.now_ns()?)).await?;
    Ok(Json(json!({"status": "ready"})))
}

async fn metrics(State(state): State<AppState>, _caller: Caller) -> ApiResult<impl IntoResponse> {
    let queues = state.pool.run(|b| Ok(b.list()?)).await?;
    let mut out = String::new();
    crate::metrics::render_queues(&mut out, &queues);
    state.metrics.render_requests(&mut out);
    crate::metrics::render_commits(&mut out, state.commits.stats());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

/// litebroker's own API (`/v1`), as documented by the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "litebroker",
        description = "litebroker's HTTP API (`broker serve`)."
    ),
    nest()
)]
struct ApiDoc;

/// The OpenAPI document of `/v1`.
pub fn openapi_doc() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::routes::queues::Doc::openapi());
    doc.merge(crate::routes::topics::Doc::openapi());
    doc.merge(crate::routes::admin::Doc::openapi());
    doc.merge(crate::routes::events::Doc::openapi());
    doc.merge(crate::routes::keys::Doc::openapi());
    doc.merge(crate::routes::dashboard::Doc::openapi());
    doc
}

async fn openapi() -> impl IntoResponse {
    Json(openapi_doc())
}
