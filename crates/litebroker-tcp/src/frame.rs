//! The frame codec: the TCP Message Broker's binary format.
//!
//! `[u32 total_length][u32 message_type][u64 sequence_number][u64 timestamp_ms]
//! [u32 properties_length][u32 body_length][properties][body]`, big-endian,
//! a 32-byte header. Properties are `key=value\0` pairs in UTF-8, read the
//! way the original client reads them (trailing NULs dropped, an entry
//! without `=` ignored, a repeated key replacing the earlier value).

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 32;

/// The message types of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A message delivered to a subscriber.
    Data = 1,
    /// A response (or, from a subscriber that asked for it, an acknowledgement).
    Ack = 2,
    /// Keep-alive, echoed.
    Heartbeat = 3,
    /// Create a topic.
    CreateTopic = 4,
    /// Create a subscription (consumer group).
    CreateSubscription = 5,
    /// Delete a subscription.
    DeleteSubscription = 6,
    /// Join a subscription as a member.
    Subscribe = 7,
    /// Leave a subscription.
    Unsubscribe = 8,
    /// Publish to a topic.
    Publish = 9,
}

impl Kind {
    /// The type with this number, if the protocol has one.
    pub fn from_u32(n: u32) -> Option<Kind> {
        Some(match n {
            1 => Kind::Data,
            2 => Kind::Ack,
            3 => Kind::Heartbeat,
            4 => Kind::CreateTopic,
            5 => Kind::CreateSubscription,
            6 => Kind::DeleteSubscription,
            7 => Kind::Subscribe,
            8 => Kind::Unsubscribe,
            9 => Kind::Publish,
            _ => return None,
        })
    }
}

/// Ordered `key=value` properties (a repeated key replaces the earlier value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties(Vec<(String, String)>);

impl Properties {
    /// No properties.
    pub fn new() -> Self {
        Properties::default()
    }

    /// Sets `key`, replacing an earlier value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
        self
    }

    /// Sets `key` unless it is set already.
    pub fn set_default(&mut self, key: &str, value: impl Into<String>) {
        if self.get(key).is_none() {
            self.set(key, value);
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every property, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Parses the wire form; `None` if it is not UTF-8.
    pub fn parse(data: &[u8]) -> Option<Properties> {
        let text = std::str::from_utf8(data).ok()?;
        let mut props = Properties::new();
        for entry in text.trim_end_matches('\0').split('\0') {
            if let Some((k, v)) = entry.split_once('=') {
                props.set(k, v);
            }
        }
        Some(props)
    }

    /// The wire form. A key or value holding NUL cannot be written; callers
    /// leave such properties out (see [`Properties::representable`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for (k, v) in &self.0 {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
    }

    /// Whether `key=value` survives the wire form unchanged.
    pub fn representable(key: &str, value: &str) -> bool {
        !key.is_empty() && !key.contains(['\0', '=']) && !value.contains('\0')
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message type as sent (unknown numbers are answered with an error).
    pub kind: u32,
    /// Matches a response to its request; a DATA frame's topic offset.
    pub seq: u64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// The properties.
    pub properties: Properties,
    /// The body, any bytes.
    pub body: Vec<u8>,
}

/// Now, as the protocol writes it: milliseconds, and `created_at` (seconds
/// with a fraction, as Python's `str(time.time())`).
pub fn now() -> (u64, String) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (
        since.as_millis() as u64,
        format!("{}.{:06}", since.as_secs(), since.subsec_micros()),
    )
}

impl Frame {
    /// A frame stamped now, with the `created_at` and `version` every frame carries.
    pub fn new(kind: Kind, seq: u64, mut properties: Properties, body: Vec<u8>) -> Frame {
        let (ms, created_at) = now();
        properties.set_default("created_at", created_at);
        properties.set_default("version", "1.0");
        Frame {
            kind: kind as u32,
            seq,
            timestamp_ms: ms,
            properties,
            body,
        }
    }

    /// The protocol type, if known.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_u32(self.kind)
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        self.properties.encode(out);
        let props_len = out.len() - start - HEADER_LEN;
        out.extend_from_slice(&self.body);
        let total = out.len() - start;
        let header = &mut out[start..start + HEADER_LEN];
        header[0..4].copy_from_slice(&(total as u32).to_be_bytes());
        header[4..8].copy_from_slice(&self.kind.to_be_bytes());
        header[8..16].copy_from_slice(&self.seq.to_be_bytes());
        header[16..24].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        header[24..28].copy_from_slice(&(props_len as u32).to_be_bytes());
        header[28..32].copy_from_slice(&(self.body.len() as u32).to_be_bytes());
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len() + 64);
        self.encode(&mut out);
        out
    }
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The stream ended inside a frame, or failed.
    Broken,
    /// The frame cannot be read and the stream cannot be resynchronised
    /// (too large, lengths that disagree): answer `seq` with `reason`, close.
    Fatal {
        /// The sequence number from the header.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The frame was read whole but is unusable (properties not UTF-8):
    /// answer `seq` with `reason` and go on reading.
    Invalid {
        /// The sequence number from the header.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Reads one frame; `Ok(None)` at a clean end of stream (between frames).
/// Refuses a frame over `max_len` bytes before reading (or allocating) it.
pub async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    max_len: usize,
) -> Result<Option<Frame>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let first = rd.read(&mut header).await.map_err(|_| FrameError::Broken)?;
    if first == 0 {
        return Ok(None);
    }
    rd.read_exact(&mut header[first..])
        .await
        .map_err(|_| FrameError::Broken)?;
    let u32_at = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_be_bytes(header[i..i + 8].try_into().unwrap());
    let (total, kind, seq, timestamp_ms) = (u32_at(0), u32_at(4), u64_at(8), u64_at(16));
    let (props_len, body_len) = (u32_at(24), u32_at(28));
    if total as u64 > max_len as u64 {
        return Err(FrameError::Fatal {
            seq,
            reason: format!("frame of {total} bytes exceeds the limit of {max_len} bytes"),
        });
    }
    if total as u64 != HEADER_LEN as u64 + props_len as u64 + body_len as u64 {
        return Err(FrameError::Fatal {
            seq,
            reason: format!(
                "total_length {total} disagrees with the header ({HEADER_LEN}) + properties ({props_len}) + body ({body_len})"
            ),
        });
    }
    let props = read_part(rd, props_len).await?;
    let body = read_part(rd, body_len).await?;
    let Some(properties) = Properties::parse(&props) else {
        return Err(FrameError::Invalid {
            seq,
            reason: "properties are not valid UTF-8".into(),
        });
    };
    Ok(Some(Frame {
        kind,
        seq,
        timestamp_ms,
        properties,
        body,
    }))
}

/// Reads exactly `len` bytes, growing the buffer as they arrive: a header
/// that announces a large frame costs nothing until its bytes come.
async fn read_part<R: AsyncRead + Unpin>(rd: &mut R, len: u32) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity((len as usize).min(64 * 1024));
    let got = (&mut *rd)
        .take(len as u64)
        .read_to_end(&mut out)
        .await
        .map_err(|_| FrameError::Broken)?;
    if got != len as usize {
        return Err(FrameError::Broken);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        let mut p = Properties::new();
        for (k, v) in pairs {
            p.set(*k, *v);
        }
        p
    }

    #[tokio::test]
    async fn round_trip_with_binary_body() {
        let body: Vec<u8> = (0..=255).collect();
        let f = Frame::new(
            Kind::Publish,
            7,
            props(&[("topic", "t"), ("k", "a=b")]),
            body,
        );
        let bytes = f.to_bytes();
        assert_eq!(
            u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize,
            bytes.len()
        );
        let back = read_frame(&mut &bytes[..], 1 << 20).await.unwrap().unwrap();
        assert_eq!(back, f);
        assert_eq!(back.properties.get("k"), Some("a=b"));
        assert_eq!(back.properties.get("version"), Some("1.0"));
        assert!(back.properties.get("created_at").is_some());
    }

    #[tokio::test]
    async fn clean_end_truncation_and_limits() {
        assert!(read_frame(&mut &b""[..], 100).await.unwrap().is_none());
        let bytes = Frame::new(Kind::Heartbeat, 1, Properties::new(), b"xyz".to_vec()).to_bytes();
        for cut in [1, 20, HEADER_LEN, bytes.len() - 1] {
            assert!(matches!(
                read_frame(&mut &bytes[..cut], 1 << 20).await,
                Err(FrameError::Broken)
            ));
        }
        assert!(matches!(
            read_frame(&mut &bytes[..], 40).await,
            Err(FrameError::Fatal { seq: 1, .. })
        ));
        let mut wrong = bytes.clone();
        wrong[3] += 1;
        assert!(matches!(
            read_frame(&mut &wrong[..], 1 << 20).await,
            Err(FrameError::Fatal { seq: 1, .. })
        ));
    }

    #[tokio::test]
    async fn invalid_utf8_properties_are_read_whole_and_refused() {
        let mut f = Frame::new(Kind::Publish, 3, Properties::new(), b"b".to_vec());
        f.properties = Properties::new();
        let mut bytes = f.to_bytes();
        // Splice in properties "\xff=1\0".
        let bad = b"\xff=1\0";
        bytes.splice(HEADER_LEN..HEADER_LEN, bad.iter().copied());
        let total = bytes.len() as u32;
        bytes[0..4].copy_from_slice(&total.to_be_bytes());
        bytes[24..28].copy_from_slice(&(bad.len() as u32).to_be_bytes());
        let mut rd = &bytes[..];
        assert!(matches!(
            read_frame(&mut rd, 1 << 20).await,
            Err(FrameError::Invalid { seq: 3, .. })
        ));
        assert!(rd.is_empty(), "the whole frame was consumed");
    }

    #[test]
    fn properties_parse_like_the_original() {
        let p = Properties::parse(b"a=1\0junk\0b=x=y\0a=2\0\0\0").unwrap();
        assert_eq!(p.get("a"), Some("2"));
        assert_eq!(p.get("b"), Some("x=y"));
        assert_eq!(p.get("junk"), None);
        assert!(Properties::parse(b"").unwrap().iter().next().is_none());
        assert!(!Properties::representable("k", "a\0b"));
        assert!(!Properties::representable("k=", "v"));
    }
}
