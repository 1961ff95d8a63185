//! ACK from a member that joined with `ack=manual`: acknowledges the DATA
//! with that sequence number (its topic offset; `topic` and
//! `subscription_id` narrow it when several could match). Nothing is sent
//! back on success; a refusal is an error ACK with the same sequence number.

use super::Session;
use crate::frame::Frame;
use crate::reply;

pub async fn handle(session: &Session, frame: Frame) -> Option<Frame> {
    match session
        .hub
        .client_ack(&session.conn, frame.seq, &frame.properties)
        .await
    {
        Ok(()) => None,
        Err(e) => Some(reply::from_error(frame.seq, &e)),
    }
}
