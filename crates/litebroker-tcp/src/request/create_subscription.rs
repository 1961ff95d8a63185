//! CREATE_SUBSCRIPTION `subscription_id` `topic` [`start_offset`]: a durable
//! litebroker subscription named `subscription_id`, fed by `topic` (a topic,
//! or a litebroker pattern), starting at `start_offset` (default 0, as the
//! original; also `earliest`, `latest` or a time). What the log retains
//! from there is replayed into it at once; it waits for its first member.

use litebroker::pubsub::{NewSubscription, StartFrom};

use super::{required, Session};
use crate::frame::Frame;
use crate::reply;

pub async fn handle(session: &Session, frame: Frame) -> Frame {
    let seq = frame.seq;
    let (name, topic) = match (
        required(&frame, "subscription_id"),
        required(&frame, "topic"),
    ) {
        (Ok(n), Ok(t)) => (n.to_owned(), t.to_owned()),
        (Err(refusal), _) | (_, Err(refusal)) => return refusal,
    };
    let start_text = frame
        .properties
        .get("start_offset")
        .unwrap_or("0")
        .to_owned();
    let from = match StartFrom::parse(&start_text) {
        Ok(from) => from,
        Err(_) => {
            return reply::bad_request(
                seq,
                format!(
                "start_offset must be an offset, earliest, latest or a time, not '{start_text}'"
            ),
            )
        }
    };
    let (n, t) = (name.clone(), topic.clone());
    let created = session
        .hub
        .store
        .call(move |b| {
            b.create_subscription(&NewSubscription {
                name: &n,
                pattern: &t,
                from,
                ephemeral: None,
            })
        })
        .await;
    match created {
        Ok(replayed) => {
            session.hub.nudge();
            reply::success(
                seq,
                &[
                    ("subscription_id", name),
                    ("topic", topic),
                    ("start_offset", start_text),
                    ("replayed", replayed.to_string()),
                ],
            )
        }
        Err(e) => reply::from_error(seq, &e),
    }
}
