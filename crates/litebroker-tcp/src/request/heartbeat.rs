//! HEARTBEAT: echoed with the same sequence number. Any frame keeps a
//! connection alive; the original client sends one every 30 s.

use crate::frame::{Frame, Kind, Properties};

pub fn handle(frame: Frame) -> Frame {
    Frame::new(Kind::Heartbeat, frame.seq, Properties::new(), Vec::new())
}
