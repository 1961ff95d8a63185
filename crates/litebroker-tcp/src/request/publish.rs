//! PUBLISH `topic` + `publisher_id` (or `client_id`, which the original
//! client sends) + any properties: appended to the litebroker topic (which
//! must exist) with the properties as headers, durable before the answer.
//! The answer carries the message's `offset` and `delivered_to` (how many
//! subscriptions received a copy). Concurrent publishes share a commit
//! (see `commit.rs`).

use litebroker::{HeaderValue, Headers};

use super::{required, Session};
use crate::body;
use crate::frame::Frame;
use crate::reply;

/// Properties that belong to the protocol, not to the message.
const NOT_HEADERS: &[&str] = &["topic", "version"];

pub async fn handle(session: &Session, frame: Frame) -> Frame {
    let seq = frame.seq;
    let topic = match required(&frame, "topic") {
        Ok(t) => t.to_owned(),
        Err(refusal) => return refusal,
    };
    if frame
        .properties
        .get("publisher_id")
        .is_none_or(str::is_empty)
        && frame.properties.get("client_id").is_none_or(str::is_empty)
    {
        return reply::bad_request(seq, "Missing 'publisher_id' property");
    }
    if frame.properties.get(body::ENCODING).is_some() {
        return reply::bad_request(
            seq,
            format!("the property '{}' is reserved", body::ENCODING),
        );
    }
    let mut headers = Headers::new();
    for (k, v) in frame.properties.iter() {
        if NOT_HEADERS.contains(&k) {
            continue;
        }
        if let Err(e) = headers.insert(k, HeaderValue::Str(v.to_owned())) {
            return reply::from_error(seq, &e.into());
        }
    }
    match session.hub.topic_exists(&topic).await {
        Ok(true) => {}
        Ok(false) => {
            return reply::error(seq, "not_found", format!("Topic '{topic}' does not exist"))
        }
        Err(e) => return reply::from_error(seq, &e),
    }
    let (text, encoded) = body::to_stored(frame.body);
    if encoded {
        if let Err(e) = body::mark(&mut headers) {
            return reply::from_error(seq, &e);
        }
    }
    let published = session
        .hub
        .committer
        .publish(
            std::sync::Arc::as_ptr(&session.conn) as usize,
            topic.clone(),
            text,
            headers,
        )
        .await;
    match published {
        Ok(p) => {
            session.hub.nudge();
            reply::success(
                seq,
                &[
                    ("topic", topic),
                    ("offset", p.offset.to_string()),
                    ("delivered_to", p.delivered.to_string()),
                ],
            )
        }
        Err(e) => reply::from_error(seq, &e),
    }
}
