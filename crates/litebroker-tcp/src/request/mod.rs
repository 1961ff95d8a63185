//! The requests, one file each. Every request is answered with an ACK frame
//! (a HEARTBEAT with a HEARTBEAT) carrying the request's sequence number;
//! a refusal is `status=error` with `error` and `code`.

use std::sync::Arc;

use crate::dispatch::{Conn, Hub};
use crate::frame::{Frame, Kind};
use crate::reply;

mod ack;
mod create_subscription;
mod create_topic;
mod delete_subscription;
mod heartbeat;
mod publish;
mod subscribe;
mod unsubscribe;

/// What a request sees: the server's hub and its own connection.
pub struct Session {
    /// Shared server state.
    pub hub: Arc<Hub>,
    /// This connection.
    pub conn: Arc<Conn>,
}

/// A frame for the connection's writer.
pub struct Reply {
    /// The frame.
    pub frame: Frame,
    /// Whether it answers a request counted in [`Conn::pending`].
    pub answers: bool,
    /// Run once the frame has been written.
    pub then: Option<Box<dyn FnOnce() + Send>>,
}

impl Reply {
    /// An answer to a counted request.
    pub fn answer(frame: Frame) -> Reply {
        Reply {
            frame,
            answers: true,
            then: None,
        }
    }
}

/// Whether a frame of this type is a request that is always answered
/// (and so holds DATA back until it is).
pub fn is_request(kind: u32) -> bool {
    kind != Kind::Ack as u32
}

/// Handles one frame; `None` when nothing is to be answered.
pub async fn handle(session: &Session, frame: Frame) -> Option<Reply> {
    let seq = frame.seq;
    let answer = match frame.kind() {
        Some(Kind::Ack) => {
            return ack::handle(session, frame).await.map(|frame| Reply {
                frame,
                answers: false,
                then: None,
            })
        }
        Some(Kind::Heartbeat) => heartbeat::handle(frame),
        Some(Kind::CreateTopic) => create_topic::handle(session, frame).await,
        Some(Kind::Publish) => publish::handle(session, frame).await,
        Some(Kind::CreateSubscription) => create_subscription::handle(session, frame).await,
        Some(Kind::DeleteSubscription) => delete_subscription::handle(session, frame).await,
        Some(Kind::Subscribe) => return Some(subscribe::handle(session, frame).await),
        Some(Kind::Unsubscribe) => unsubscribe::handle(session, frame).await,
        Some(Kind::Data) => {
            reply::bad_request(seq, "DATA frames are sent by the server, not to it")
        }
        None => reply::bad_request(seq, format!("unknown message type {}", frame.kind)),
    };
    Some(Reply::answer(answer))
}

/// The property `key`, or a refusal naming it (the original's wording).
pub fn required<'f>(frame: &'f Frame, key: &str) -> Result<&'f str, Frame> {
    match frame.properties.get(key) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(reply::bad_request(
            frame.seq,
            format!("Missing '{key}' property"),
        )),
    }
}
