//! The PyQueue server's API, for its existing clients (`pyqueue-client`'s
//! `RemoteQueueClient`), under `/api/v1`.
//!
//! How PyQueue messages live in litebroker: a PyQueue message is a
//! litebroker message of the queue of the same name whose body is the JSON
//! text of `message_body`, with two headers: `pyqueue.id` (the client's id)
//! and `pyqueue.timestamp` (the client's timestamp, as sent). A message
//! written by other means (the CLI) shows its litebroker id as its PyQueue
//! id, its body as `message_body` if that is a JSON object and as
//! `{"content": body}` otherwise. Receiving is a litebroker lease: the
//! receipt handle is the lease's receipt, `receive_count` its receive count.
//! Ids are found by browsing the queue (visible, leased and delayed
//! messages alike), so a lookup costs a scan of the queue.

use std::collections::HashSet;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use litebroker::backend::Browsed;
use litebroker::message::Filter;
use litebroker::{Broker, HeaderValue, Headers, Message, Receipt};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Caller, Perm};
use crate::commit::Take;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::{iso, AppState};

/// The header holding the client's message id.
pub const ID_HEADER: &str = "pyqueue.id";
/// The header holding the client's timestamp.
pub const TIMESTAMP_HEADER: &str = "pyqueue.timestamp";

/// Messages browsed per round trip while looking for ids.
const PAGE: usize = 1000;
/// Longest client id accepted, bytes.
const MAX_ID_LEN: usize = 1024;
/// Most ids one existence check may ask about.
const MAX_CHECK_IDS: usize = 10_000;

/// The PyQueue routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(global_health))
        .route("/api/v1/queues", get(list_queues))
        .route(
            "/api/v1/queues/{queue}/messages",
            post(add).get(list).delete(clear),
        )
        .route("/api/v1/queues/{queue}/message/{id}", get(get_one))
        .route(
            "/api/v1/queues/{queue}/messages/check-existence",
            post(check_existence),
        )
        .route("/api/v1/queues/{queue}/messages/receive", post(receive))
        .route(
            "/api/v1/queues/{queue}/messages/{receipt}",
            axum::routing::delete(delete_by_receipt),
        )
        .route(
            "/api/v1/queues/{queue}/messages/by-id/{id}",
            axum::routing::delete(delete_by_id).put(update),
        )
        .route("/api/v1/queues/{queue}/info", get(info))
        .route("/api/v1/queues/{queue}/health", get(queue_health))
}

/// The PyQueue id of a stored message.
fn pyqueue_id(m: &Message) -> String {
    m.headers
        .get_str(ID_HEADER)
        .map_or_else(|| m.id.to_string(), str::to_owned)
}

/// A message in PyQueue's shape.
fn to_json(m: &Message, visible_at: Option<i64>, status: &str, receipt: Option<String>) -> Value {
    let body = match serde_json::from_str::<Value>(&m.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"content": m.body}),
    };
    let timestamp = m.headers.get_str(TIMESTAMP_HEADER).map_or_else(
        || iso::format_ns(litebroker::id::id_time_ns(m.id)),
        str::to_owned,
    );
    json!({
        "id": pyqueue_id(m),
        "message_body": body,
        "timestamp": timestamp,
        "status": status,
        "visibility_timeout": visible_at.map(iso::format_ns),
        "receipt_handle": receipt,
        "receive_count": m.receives,
    })
}

fn status_of(b: &Browsed) -> &'static str {
    if b.visible_at.is_some() {
        "in_flight"
    } else {
        "available"
    }
}

/// Visits every stored message of `queue` (visible, leased, delayed), oldest first.
fn browse_all(
    broker: &mut Broker,
    queue: &str,
    mut visit: impl FnMut(Browsed) -> bool,
) -> ApiResult<()> {
    let mut q = broker.queue(queue)?;
    let mut after = 0;
    loop {
        let page = q.browse(litebroker::BrowseFrom::After(after), PAGE)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.message.seq;
        for b in page {
            if !visit(b) {
                return Ok(());
            }
        }
    }
}

/// The stored message whose PyQueue id is `id`.
fn find(broker: &mut Broker, queue: &str, id: &str) -> ApiResult<Option<Browsed>> {
    let mut found = None;
    browse_all(broker, queue, |b| {
        if pyqueue_id(&b.message) == id {
            found = Some(b);
            false
        } else {
            true
        }
    })?;
    Ok(found)
}

/// The body to store for a PyQueue `message_body`: an object as its JSON
/// text; a string as `{"content": string}` (as the original server does).
fn stored_body(message_body: Value) -> ApiResult<String> {
    match message_body {
        Value::Object(_) => Ok(message_body.to_string()),
        Value::String(s) => Ok(json!({ "content": s }).to_string()),
        _ => Err(ApiError::invalid(
            "message_body must be a JSON object or a string",
        )),
    }
}

fn pyqueue_headers(id: &str, timestamp: Option<String>) -> ApiResult<Headers> {
    let mut headers = Headers::new();
    let ts = timestamp.unwrap_or_else(|| iso::format_ns(iso::now_ns()));
    if ts.len() > 64 {
        return Err(ApiError::invalid("timestamp is too long"));
    }
    headers
        .insert(ID_HEADER, HeaderValue::Str(id.to_owned()))
        .and_then(|_| headers.insert(TIMESTAMP_HEADER, HeaderValue::Str(ts)))
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(headers)
}

fn check_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.contains('\0') {
        return Err(ApiError::invalid(format!(
            "a message id must be 1 to {MAX_ID_LEN} bytes, without NUL"
        )));
    }
    Ok(())
}

/// A new id in the shape of a UUID4, as the original server makes.
fn new_id() -> String {
    let a = litebroker::lease::random_nonce() & !(0xf << 12) | (0x4 << 12); // version 4
    let b = litebroker::lease::random_nonce() & !(0x3 << 62) | (0x2 << 62); // variant 10
    let v = (u128::from(a) << 64) | u128::from(b);
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn valid_queue(queue: &str) -> ApiResult<()> {
    litebroker::name::validate_queue_name(queue).map_err(ApiError::from)
}

fn ok(message: &str) -> Json<Value> {
    Json(json!({"status": "success", "message": message}))
}

async fn global_health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<Json<Value>> {
    state.pool.run(|b| Ok(b.now_ns()?)).await?;
    Ok(Json(json!({
        "status": "healthy",
        "queue_name": null,
        "timestamp": iso::format_ns(iso::now_ns()),
    })))
}

async fn list_queues(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let queues = state.pool.run(|b| Ok(b.list()?)).await?;
    let mut out = Vec::new();
    for q in queues {
        let perms: Vec<&str> = Perm::ALL
            .into_iter()
            .filter(|p| caller.allows(&q.name, *p))
            .map(Perm::name)
            .collect();
        if perms.is_empty() {
            continue;
        }
        out.push(json!({
            "queue_name": q.name,
            "message_count": q.pending + q.leased + q.delayed,
            "available_messages": q.pending,
            "in_flight_messages": q.leased + q.delayed,
            "permissions": perms,
        }));
    }
    let description = match &caller {
        Caller::Key(k) => k.description.clone(),
        Caller::Anyone => String::new(),
    };
    Ok(Json(
        json!({"count": out.len(), "queues": out, "api_key_description": description}),
    ))
}

/// `POST .../messages`: the request body.
#[derive(Deserialize)]
struct AddRequest {
    #[serde(default)]
    id: Option<String>,
    message_body: Value,
    #[serde(default)]
    timestamp: Option<String>,
}

async fn add(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Json(req): Json<AddRequest>,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Write)?;
    valid_queue(&queue)?;
    let id = req.id.unwrap_or_else(new_id);
    check_id(&id)?;
    let body = stored_body(req.message_body)?;
    let headers = pyqueue_headers(&id, req.timestamp)?;
    // One send per queue at a time in this server: the look for the id and
    // the write cannot interleave with another send of the same id.
    let lock = state.pyqueue_lock(&queue);
    let _serialized = lock.lock().await;
    let id2 = id.clone();
    state
        .pool
        .run(move |b| {
            if find(b, &queue, &id2)?.is_none() {
                b.queue(&queue)?.write_with(&body, &headers, None)?;
            }
            Ok(())
        })
        .await?;
    Ok(Json(
        json!({"id": id, "status": "success", "receipt_handle": null}),
    ))
}

/// `GET .../messages`: paging.
#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    max_messages: Option<i64>,
}

fn in_range(name: &str, v: i64, lo: i64, hi: i64) -> ApiResult<i64> {
    if v < lo || v > hi {
        return Err(ApiError::invalid(format!(
            "{name} must be between {lo} and {hi}"
        )));
    }
    Ok(v)
}

async fn list(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Read)?;
    valid_queue(&queue)?;
    let limit = in_range("limit", q.limit.or(q.max_messages).unwrap_or(10), 1, 100)? as usize;
    let offset = in_range("offset", q.offset.unwrap_or(0), 0, i64::MAX)? as usize;
    let (messages, total) = state
        .pool
        .run(move |b| {
            let (mut page, mut total) = (Vec::new(), 0usize);
            browse_all(b, &queue, |m| {
                if total >= offset && page.len() < limit {
                    page.push(to_json(&m.message, m.visible_at, status_of(&m), None));
                }
                total += 1;
                true
            })?;
            Ok((page, total))
        })
        .await?;
    let count = messages.len();
    Ok(Json(json!({
        "messages": messages,
        "count": count,
        "total": total,
        "offset": offset,
        "limit": limit,
        "has_more": offset + count < total,
    })))
}

async fn get_one(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Read)?;
    valid_queue(&queue)?;
    let found = state.pool.run(move |b| find(b, &queue, &id)).await?;
    match found {
        Some(b) => Ok(Json(to_json(&b.message, b.visible_at, status_of(&b), None))),
        None => Err(ApiError::not_found("Message not found")),
    }
}

#[derive(Deserialize)]
struct CheckRequest {
    message_ids: Vec<String>,
}

async fn check_existence(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Json(req): Json<CheckRequest>,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Read)?;
    valid_queue(&queue)?;
    if req.message_ids.len() > MAX_CHECK_IDS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_CHECK_IDS} ids per check"
        )));
    }
    let existing = state
        .pool
        .run(move |b| {
            let wanted: HashSet<&str> = req.message_ids.iter().map(String::as_str).collect();
            let mut present = HashSet::new();
            browse_all(b, &queue, |m| {
                let id = pyqueue_id(&m.message);
                if wanted.contains(id.as_str()) {
                    present.insert(id);
                }
                present.len() < wanted.len()
            })?;
            let mut seen = HashSet::new();
            Ok(req
                .message_ids
                .iter()
                .filter(|id| present.contains(*id) && seen.insert(id.as_str()))
                .cloned()
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Json(json!({ "existing_ids": existing })))
}

#[derive(Deserialize)]
struct ReceiveQuery {
    max_messages: Option<i64>,
    visibility_timeout: Option<i64>,
    delete_after_receive: Option<bool>,
    only_new: Option<bool>,
}

async fn receive(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
    Query(q): Query<ReceiveQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Read)?;
    let delete = q.delete_after_receive.unwrap_or(false);
    if delete {
        caller.require(&queue, Perm::Delete)?;
    }
    valid_queue(&queue)?;
    let max = in_range("max_messages", q.max_messages.unwrap_or(10), 1, 100)? as usize;
    let secs = in_range(
        "visibility_timeout",
        q.visibility_timeout.unwrap_or(30),
        1,
        43_200,
    )?;
    let visibility = Duration::from_secs(secs as u64);
    let only_new = q.only_new.unwrap_or(false);
    let messages = if only_new {
        take_new(&state, queue, max, delete, visibility).await?
    } else {
        // The oldest visible ones, together with the other receives of
        // this queue that arrive meanwhile.
        let how = if delete {
            Take::Read
        } else {
            Take::Lease(Some(visibility))
        };
        let taken = state.commits.take(queue, how, max).await?;
        shown(taken.messages, delete, visibility)
    };
    let count = messages.len();
    Ok(Json(json!({
        "messages": messages,
        "count": count,
        "total": count,
        "offset": 0,
        "limit": max,
        "has_more": count == max,
    })))
}

/// Received messages as PyQueue shows them: consumed (`delete`) or in
/// flight for `visibility`.
fn shown(messages: Vec<Message>, delete: bool, visibility: Duration) -> Vec<Value> {
    let until = litebroker::id::now_ns() + visibility.as_nanos() as i64;
    messages
        .into_iter()
        .map(|m| {
            if delete {
                // Consumed in the same transaction that returned it.
                let mut shown = to_json(&m, None, "processed", None);
                shown["receive_count"] = json!(m.receives + 1);
                shown
            } else {
                let receipt = m.receipt.map(|r| r.to_string());
                to_json(&m, Some(until), "in_flight", receipt)
            }
        })
        .collect()
}

/// `only_new`: the oldest visible messages never received before, each
/// taken by its id.
async fn take_new(
    state: &AppState,
    queue: String,
    max: usize,
    delete: bool,
    visibility: Duration,
) -> ApiResult<Vec<Value>> {
    state
        .pool
        .run(move |b| {
            let mut ids = Vec::new();
            browse_all(b, &queue, |m| {
                if m.visible_at.is_none() && m.message.receives == 0 {
                    ids.push(Filter::by_id(m.message.id));
                }
                ids.len() < max
            })?;
            let mut out = Vec::new();
            let mut q = b.queue(&queue)?;
            for filter in ids {
                let got = if delete {
                    q.read_many(&filter, 1)?
                } else {
                    q.lease(&filter, 1, Some(visibility))?
                };
                out.extend(shown(got, delete, visibility));
            }
            Ok(out)
        })
        .await
}

async fn delete_by_receipt(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path((queue, receipt)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Delete)?;
    valid_queue(&queue)?;
    // A receipt handle is opaque to PyQueue clients: one that is not ours
    // names no message.
    let Ok(receipt) = receipt.parse::<Receipt>() else {
        return Err(ApiError::not_found("Message not found"));
    };
    let acked = state.commits.ack(queue.clone(), vec![receipt]).await?;
    state.groups.settled(&queue, &[receipt]);
    match acked.first() {
        Some(Ok(())) => Ok(ok("Message deleted")),
        _ => Err(ApiError::not_found(
            "Message not found (unknown receipt, or its lease has ended)",
        )),
    }
}

async fn delete_by_id(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Delete)?;
    valid_queue(&queue)?;
    state
        .pool
        .run(move |b| {
            let Some(found) = find(b, &queue, &id)? else {
                return Err(ApiError::not_found("Message not found"));
            };
            if found.visible_at.is_some() {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "in_flight",
                    "the message is in flight: delete it with its receipt handle, \
                     or once its visibility timeout has passed",
                ));
            }
            if b.queue(&queue)?.delete_message(found.message.id)? {
                Ok(())
            } else {
                Err(ApiError::not_found("Message not found"))
            }
        })
        .await?;
    Ok(ok("Message deleted"))
}

#[derive(Deserialize)]
struct UpdateRequest {
    message_body: Value,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<String>,
}

async fn update(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path((queue, id)): Path<(String, String)>,
    caller: Caller,
    Json(req): Json<UpdateRequest>,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Write)?;
    valid_queue(&queue)?;
    let body = stored_body(req.message_body)?;
    let lock = state.pyqueue_lock(&queue);
    let _serialized = lock.lock().await;
    state
        .pool
        .run(move |b| {
            let Some(found) = find(b, &queue, &id)? else {
                return Err(ApiError::not_found("Message not found"));
            };
            let mut headers = found.message.headers.clone();
            let ts = req
                .timestamp
                .unwrap_or_else(|| iso::format_ns(iso::now_ns()));
            let fresh = pyqueue_headers(&id, Some(ts))?;
            for (k, v) in fresh.iter() {
                headers
                    .insert(k, v.clone())
                    .map_err(|e| ApiError::invalid(e.to_string()))?;
            }
            if b.queue(&queue)?
                .replace(found.message.id, &body, &headers)?
            {
                Ok(())
            } else {
                Err(ApiError::not_found("Message not found"))
            }
        })
        .await?;
    Ok(ok("Message updated"))
}

async fn clear(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Manage)?;
    valid_queue(&queue)?;
    state
        .pool
        .run(move |b| Ok(b.queue(&queue)?.delete()?))
        .await?;
    Ok(ok("Queue cleared"))
}

async fn info(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Read)?;
    valid_queue(&queue)?;
    let name = queue.clone();
    let (stats, bytes, first, last) = state
        .pool
        .run(move |b| {
            let stats = b.list()?.into_iter().find(|s| s.name == queue);
            let (mut bytes, mut first, mut last) = (0u64, None, None);
            browse_all(b, &queue, |m| {
                bytes += m.message.body.len() as u64;
                let t = litebroker::id::id_time_ns(m.message.id);
                first = Some(first.map_or(t, |f: i64| f.min(t)));
                last = Some(last.map_or(t, |l: i64| l.max(t)));
                true
            })?;
            Ok((stats.unwrap_or_default(), bytes, first, last))
        })
        .await?;
    let now = iso::now_ns();
    Ok(Json(json!({
        "queue_name": name,
        "message_count": stats.pending + stats.leased + stats.delayed,
        "available_messages": stats.pending,
        "in_flight_messages": stats.leased + stats.delayed,
        "queue_size_bytes": bytes,
        "created_timestamp": iso::format_ns(first.unwrap_or(now)),
        "last_modified": iso::format_ns(last.unwrap_or(now)),
    })))
}

async fn queue_health(
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(queue): Path<String>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    caller.require(&queue, Perm::Read)?;
    valid_queue(&queue)?;
    state.pool.run(|b| Ok(b.now_ns()?)).await?;
    Ok(Json(json!({
        "status": "healthy",
        "queue_name": queue,
        "timestamp": iso::format_ns(iso::now_ns()),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_look_like_uuid4() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(new_id(), id);
    }

    #[test]
    fn bodies_are_objects_or_strings() {
        assert_eq!(stored_body(json!({"a": 1})).unwrap(), r#"{"a":1}"#);
        assert_eq!(stored_body(json!("hi")).unwrap(), r#"{"content":"hi"}"#);
        assert!(stored_body(json!([1])).is_err());
        assert!(stored_body(json!(null)).is_err());
    }
}
