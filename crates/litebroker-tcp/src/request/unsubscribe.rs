//! UNSUBSCRIBE `subscriber_id`: the member (joined on this connection)
//! leaves; what it was not written, or did not acknowledge with manual
//! acks, goes to the other members.

use super::{required, Session};
use crate::frame::Frame;
use crate::reply;

pub async fn handle(session: &Session, frame: Frame) -> Frame {
    let seq = frame.seq;
    let subscriber = match required(&frame, "subscriber_id") {
        Ok(s) => s.to_owned(),
        Err(refusal) => return refusal,
    };
    match session.hub.member_on(&session.conn, &subscriber) {
        Some(member) => {
            session.hub.leave(&member, true).await;
            let mut pairs = vec![("subscriber_id", subscriber)];
            pairs.push(("subscription_id", member.subscription.clone()));
            reply::success(seq, &pairs)
        }
        None => reply::error(
            seq,
            "not_found",
            format!("Subscriber '{subscriber}' is not a member on this connection"),
        ),
    }
}
