//! CREATE_TOPIC `topic` [`partitions`] [`retention_hours`]: creates a
//! litebroker topic with an empty log; an existing topic is an error (as in
//! the original). `retention_hours` bounds the topic's log by age (0 keeps
//! it whole); litebroker has no partitions, so the answer says
//! `partitions=1` whatever was asked.

use litebroker::pubsub::Retention;
use std::time::Duration;

use super::{required, Session};
use crate::frame::Frame;
use crate::reply;

pub async fn handle(session: &Session, frame: Frame) -> Frame {
    let seq = frame.seq;
    let topic = match required(&frame, "topic") {
        Ok(t) => t.to_owned(),
        Err(refusal) => return refusal,
    };
    let retention = match frame.properties.get("retention_hours") {
        None | Some("") => None,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(0) => None,
            Ok(h) if h <= 24 * 365 * 100 => Some(Retention {
                max_count: None,
                max_age: Some(Duration::from_secs(h * 3600)),
            }),
            _ => {
                return reply::bad_request(
                    seq,
                    format!("retention_hours must be a whole number of hours, not '{text}'"),
                )
            }
        },
    };
    let t = topic.clone();
    let created = session
        .hub
        .store
        .call(move |b| {
            let created = b.create_topic(&t)?;
            if let (true, Some(r)) = (created, retention) {
                b.set_retention(&t, &r)?;
            }
            Ok(created)
        })
        .await;
    match created {
        Ok(true) => {
            session.hub.topic_created(&topic);
            reply::success(seq, &[("topic", topic), ("partitions", "1".to_owned())])
        }
        Ok(false) => {
            session.hub.topic_created(&topic);
            reply::error(seq, "conflict", format!("Topic '{topic}' already exists"))
        }
        Err(e) => reply::from_error(seq, &e),
    }
}
