//! Responses: the ACK frames that answer requests, and the one place where a
//! library error becomes a protocol error.

use litebroker::ErrorKind;

use crate::frame::{Frame, Kind, Properties};

/// A successful answer to request `seq`, with `pairs` after `status=success`.
pub fn success(seq: u64, pairs: &[(&str, String)]) -> Frame {
    let mut props = Properties::new();
    props.set("status", "success");
    for (k, v) in pairs {
        props.set(*k, v.clone());
    }
    Frame::new(Kind::Ack, seq, props, Vec::new())
}

/// A refusal of request `seq`: `status=error`, `error=<message>` and a
/// machine-readable `code`.
pub fn error(seq: u64, code: &str, message: impl Into<String>) -> Frame {
    let mut props = Properties::new();
    props.set("status", "error");
    props.set("error", clean(message.into()));
    props.set("code", code);
    Frame::new(Kind::Ack, seq, props, Vec::new())
}

/// A refusal for a request the protocol itself rejects (missing or bad
/// property, unknown type).
pub fn bad_request(seq: u64, message: impl Into<String>) -> Frame {
    error(seq, "invalid_input", message)
}

/// A library error as a refusal: the one mapping from [`ErrorKind`] to the
/// protocol's `code`.
pub fn from_error(seq: u64, e: &litebroker::Error) -> Frame {
    let code = match e.kind() {
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Stale => "stale",
        ErrorKind::Busy => "busy",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::Incompatible => "incompatible",
        ErrorKind::Storage => "storage",
        ErrorKind::Unavailable => "unavailable",
    };
    error(seq, code, e.to_string())
}

/// A message fit for a property value (no NUL).
fn clean(message: String) -> String {
    if message.contains('\0') {
        message.replace('\0', "\\0")
    } else {
        message
    }
}
