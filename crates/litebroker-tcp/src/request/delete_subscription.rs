//! DELETE_SUBSCRIPTION `subscription_id`: removes the litebroker
//! subscription and what it still holds; its members stop receiving. An
//! unknown subscription is an error (as in the original).

use super::{required, Session};
use crate::frame::Frame;
use crate::reply;

pub async fn handle(session: &Session, frame: Frame) -> Frame {
    let seq = frame.seq;
    let name = match required(&frame, "subscription_id") {
        Ok(n) => n.to_owned(),
        Err(refusal) => return refusal,
    };
    let n = name.clone();
    match session
        .hub
        .store
        .call(move |b| b.delete_subscription(&n))
        .await
    {
        Ok(true) => {
            session.hub.drop_subscription(&name).await;
            reply::success(seq, &[("subscription_id", name)])
        }
        Ok(false) => reply::error(
            seq,
            "not_found",
            format!("Subscription '{name}' does not exist"),
        ),
        Err(e) => reply::from_error(seq, &e),
    }
}
