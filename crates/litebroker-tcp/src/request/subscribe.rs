//! SUBSCRIBE `subscription_id` `subscriber_id` [`ack=auto|manual`]: joins
//! the subscription as a member. Subscriber ids are unique across the
//! server (as in the original). The answer is written first; DATA follows
//! only after a grace period, because the original client registers the
//! member's handler only once it has processed the answer, and drops DATA
//! that arrives before (see the README).

use std::sync::Arc;

use super::{required, Reply, Session};
use crate::dispatch::JoinError;
use crate::frame::Frame;
use crate::reply;

pub async fn handle(session: &Session, frame: Frame) -> Reply {
    let seq = frame.seq;
    let (name, subscriber) = match (
        required(&frame, "subscription_id"),
        required(&frame, "subscriber_id"),
    ) {
        (Ok(n), Ok(s)) => (n.to_owned(), s.to_owned()),
        (Err(refusal), _) | (_, Err(refusal)) => return Reply::answer(refusal),
    };
    let manual = match frame.properties.get("ack") {
        None | Some("auto") => false,
        Some("manual") => true,
        Some(other) => {
            return Reply::answer(reply::bad_request(
                seq,
                format!("ack must be 'auto' or 'manual', not '{other}'"),
            ))
        }
    };
    let n = name.clone();
    let pattern = session
        .hub
        .store
        .call(move |b| {
            Ok(b.subscriptions()?
                .into_iter()
                .find(|s| s.name == n)
                .map(|s| s.pattern))
        })
        .await;
    let pattern = match pattern {
        Ok(Some(p)) => p,
        Ok(None) => {
            return Reply::answer(reply::error(
                seq,
                "not_found",
                format!("Subscription '{name}' does not exist"),
            ))
        }
        Err(e) => return Reply::answer(reply::from_error(seq, &e)),
    };
    let member = match session.hub.join(&session.conn, &subscriber, &name, manual) {
        Ok(m) => m,
        Err(JoinError::Taken) => {
            return Reply::answer(reply::error(
                seq,
                "conflict",
                format!("Subscriber '{subscriber}' already exists"),
            ))
        }
        Err(JoinError::Closing) => {
            return Reply::answer(reply::error(seq, "busy", "the server is shutting down"))
        }
    };
    let hub = session.hub.clone();
    let grace = hub.config.grace;
    let ready = Arc::downgrade(&member);
    let mut answer = Reply::answer(reply::success(
        seq,
        &[
            ("subscription_id", name),
            ("subscriber_id", subscriber),
            ("topic", pattern),
            ("ack", if manual { "manual" } else { "auto" }.to_owned()),
        ],
    ));
    answer.then = Some(Box::new(move || {
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(member) = ready.upgrade() {
                hub.make_ready(&member);
            }
        });
    }));
    answer
}
