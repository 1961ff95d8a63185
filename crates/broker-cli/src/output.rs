//! How messages are printed: plain, `-t` and `--json`, byte-for-byte as the
//! reference prints them, plus the stdout sink that lets delivery know exactly
//! which messages reached the reader.

use std::io::{self, Write};

use litebroker::delivery::Sink;
use litebroker::Message;

use crate::pipe::Pipe;

/// The three output layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `<body>\n`
    Plain,
    /// `<id>\t<body>\n`
    Timestamps,
    /// `{"message": <string>, "timestamp": <integer>}\n`
    Json,
}

impl Format {
    /// `--json` wins over `-t`.
    pub fn from_flags(json: bool, timestamps: bool) -> Self {
        match (json, timestamps) {
            (true, _) => Format::Json,
            (false, true) => Format::Timestamps,
            _ => Format::Plain,
        }
    }
}

/// Appends `msg` in `format` to `out`.
pub fn format_message(out: &mut Vec<u8>, msg: &Message, format: Format) {
    match format {
        Format::Plain => {
            out.extend_from_slice(msg.body.as_bytes());
        }
        Format::Timestamps => {
            out.extend_from_slice(msg.id.to_string().as_bytes());
            out.push(b'\t');
            out.extend_from_slice(msg.body.as_bytes());
        }
        Format::Json => {
            out.extend_from_slice(b"{\"message\": ");
            push_json_string(out, &msg.body);
            out.extend_from_slice(b", \"timestamp\": ");
            out.extend_from_slice(msg.id.to_string().as_bytes());
            push_json_extensions(out, msg);
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

/// The keys litebroker adds to a JSON message, each only when it carries
/// something, so a plain message prints exactly as the reference prints it.
fn push_json_extensions(out: &mut Vec<u8>, msg: &Message) {
    if !msg.headers.is_empty() {
        out.extend_from_slice(b", \"headers\": ");
        push_json_value(out, &msg.headers.to_json_value());
    }
    if let Some(receipt) = &msg.receipt {
        out.extend_from_slice(b", \"receipt\": ");
        push_json_string(out, &receipt.to_string());
    }
    if msg.receives > 0 {
        out.extend_from_slice(format!(", \"receives\": {}", msg.receives).as_bytes());
    }
    if let Some(origin) = &msg.origin {
        out.extend_from_slice(b", \"topic\": ");
        push_json_string(out, &origin.topic);
        out.extend_from_slice(format!(", \"offset\": {}", origin.offset).as_bytes());
    }
    if let Some(dead) = &msg.dead_letter {
        out.extend_from_slice(b", \"dead_letter\": {\"source\": ");
        push_json_string(out, &dead.source);
        out.extend_from_slice(b", \"reason\": ");
        push_json_string(out, &dead.reason);
        out.push(b'}');
    }
}

/// Appends a JSON value with the reference's separators (`", "`, `": "`).
pub fn push_json_value(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => push_json_string(out, s),
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                push_json_string(out, k);
                out.extend_from_slice(b": ");
                push_json_value(out, v);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                push_json_value(out, v);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// Appends `s` as a JSON string the way Python's `json.dumps(ensure_ascii=False)`
/// writes it: short escapes for `" \ \n \r \t \b \f`, `\u00XX` (lowercase) for
/// other control characters, everything else raw.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Raw, unbuffered standard output: every `write` is one system call, so we
/// know exactly how many bytes the reader accepted (std's `Stdout` buffers).
pub struct RawStdout;

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: fd 1 is open for the life of the process and `buf` is valid for its length.
        let n = unsafe { libc::write(1, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Unbuffered stdout (see [`RawStdout`]).
pub fn raw_stdout() -> RawStdout {
    RawStdout
}

/// Whether an I/O error means the reader went away (not worth a message).
pub fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// A [`Sink`] on stdout that records where each message ends, so that after a
/// failed write it can say precisely which messages got through in full.
///
/// When stdout is a pipe, a message written is only in transit until the
/// reader has read it, and only so many may be in transit at once (see
/// [`crate::pipe`]): `flush` writes as far as the window allows, waiting for
/// the reader as needed, and `confirm` waits until the reader has read
/// everything or went away. Anything else (a file, a terminal, `/dev/null`)
/// has a message once it is written.
pub struct StdoutSink {
    format: Format,
    buffer: Vec<u8>,
    /// End offset in `buffer` of each message accepted since the last flush.
    ends: Vec<usize>,
    newline_warning: NewlineWarning,
    /// Stdout as a pipe, when it is one.
    pipe: Option<Pipe>,
}

impl StdoutSink {
    /// A sink printing in `format`; `warn_newlines` enables the reference's
    /// one-time stderr warning for plain bodies containing newlines.
    pub fn new(format: Format, warn_newlines: bool) -> Self {
        StdoutSink {
            format,
            buffer: Vec::with_capacity(64 * 1024),
            ends: Vec::new(),
            newline_warning: NewlineWarning::new(warn_newlines && format == Format::Plain),
            pipe: Pipe::open(1),
        }
    }

    /// Writes the whole buffer; on failure, how many messages got out in full.
    fn write_buffer(&mut self) -> Result<(), (usize, io::Error)> {
        let written = write_fully(&self.buffer);
        let result = written.1.map_or(Ok(()), Err);
        let through = self
            .ends
            .iter()
            .take_while(|&&end| end <= written.0)
            .count();
        self.buffer.clear();
        self.ends.clear();
        result.map_err(|e| (through, e))
    }

    /// Writes the buffer into the pipe as the window allows, waiting for the
    /// reader whenever the window is full. `Ok`: how many messages are in
    /// transit; `Err`: how many of those not confirmed before reached the
    /// reader in full (what is in transit then is forgotten).
    fn write_into_pipe(&mut self) -> Result<usize, (usize, io::Error)> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(0);
        };
        let mut confirmed = 0;
        let mut next: usize = 0; // self.ends[..next] are admitted
        let result = loop {
            let from = next;
            let start = from.checked_sub(1).map_or(0, |i| self.ends[i]);
            let mut end = start;
            while next < self.ends.len() && pipe.transit.admit(self.ends[next] - end) {
                end = self.ends[next];
                next += 1;
            }
            if next == from {
                if next == self.ends.len() {
                    break Ok(());
                }
                match pipe.wait_for_reader() {
                    Ok(n) => confirmed += n,
                    Err(e) => break Err(e),
                }
                continue;
            }
            let (written, error) = write_fully(&self.buffer[start..end]);
            pipe.transit.wrote(written);
            if let Some(e) = error {
                break Err(e);
            }
            match pipe.look() {
                Ok(n) => confirmed += n,
                Err(e) => break Err(e),
            }
        };
        self.buffer.clear();
        self.ends.clear();
        result.map(|()| pipe.transit.len()).map_err(|e| {
            confirmed += pipe.look().unwrap_or(0);
            pipe.transit.abandon();
            (confirmed, e)
        })
    }
}

/// Writes `bytes` to stdout, retrying short writes; how many bytes went out,
/// and the error that stopped it short.
fn write_fully(bytes: &[u8]) -> (usize, Option<io::Error>) {
    let mut out = raw_stdout();
    let mut written = 0;
    while written < bytes.len() {
        match out.write(&bytes[written..]) {
            Ok(0) => return (written, Some(io::Error::from(io::ErrorKind::WriteZero))),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Some(e)),
        }
    }
    (written, None)
}

impl Sink for StdoutSink {
    type Error = io::Error;

    fn accept(&mut self, msg: &Message) -> Result<(), io::Error> {
        self.newline_warning.check(&msg.body);
        format_message(&mut self.buffer, msg, self.format);
        self.ends.push(self.buffer.len());
        Ok(())
    }

    fn flush(&mut self) -> Result<usize, (usize, io::Error)> {
        if self.pipe.is_some() {
            return self.write_into_pipe();
        }
        self.write_buffer().map(|()| 0)
    }

    fn confirm(&mut self) -> Result<(), (usize, io::Error)> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(());
        };
        let mut confirmed = 0;
        while !pipe.transit.is_empty() {
            match pipe.wait_for_reader() {
                Ok(n) => confirmed += n,
                Err(e) => {
                    pipe.transit.abandon();
                    return Err((confirmed, e));
                }
            }
        }
        Ok(())
    }
}

/// The reference warns once per process, on stderr, when a plain-mode
/// multi-message output contains a body with a newline.
pub struct NewlineWarning {
    armed: bool,
}

impl NewlineWarning {
    /// `enabled`: whether this output path warns at all.
    pub fn new(enabled: bool) -> Self {
        NewlineWarning { armed: enabled }
    }

    /// Warns (once) if `body` contains a newline.
    pub fn check(&mut self, body: &str) {
        if self.armed && body.contains('\n') {
            self.armed = false;
            eprintln!(
                "broker: warning: Message contains newline characters which may break shell \
                 pipelines. Consider using --json for safe handling of special characters."
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: &str) -> String {
        let mut out = Vec::new();
        push_json_string(&mut out, body);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_escapes_match_python() {
        assert_eq!(json("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(json("\u{0}\u{1}\u{1f}"), r#""\u0000\u0001\u001f""#);
        assert_eq!(json("\u{7f}é🚀\u{2028}"), "\"\u{7f}é🚀\u{2028}\"");
        assert_eq!(json(""), "\"\"");
    }

    #[test]
    fn formats() {
        let msg = Message::new(1837025672140161024, "hi", 1);
        let render = |f| {
            let mut out = Vec::new();
            format_message(&mut out, &msg, f);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(render(Format::Plain), "hi\n");
        assert_eq!(render(Format::Timestamps), "1837025672140161024\thi\n");
        assert_eq!(
            render(Format::Json),
            "{\"message\": \"hi\", \"timestamp\": 1837025672140161024}\n"
        );
    }

    #[test]
    fn json_extensions_only_when_present() {
        let mut msg = Message::new(7, "hi", 1);
        msg.headers = litebroker::Headers::from_assignments(&["p=high", "n=3", "ok=true"]).unwrap();
        msg.receives = 2;
        msg.receipt = Some(litebroker::Receipt {
            id: 7,
            receives: 2,
            nonce: 255,
        });
        msg.dead_letter = Some(litebroker::lease::DeadLetter {
            source: "q".into(),
            reason: "why".into(),
        });
        let mut out = Vec::new();
        format_message(&mut out, &msg, Format::Json);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"message\": \"hi\", \"timestamp\": 7, \"headers\": {\"p\": \"high\", \"n\": 3, \"ok\": true}, \
             \"receipt\": \"7.2.00000000000000ff\", \"receives\": 2, \
             \"dead_letter\": {\"source\": \"q\", \"reason\": \"why\"}}\n"
        );
    }

    #[test]
    fn json_wins_over_timestamps() {
        assert_eq!(Format::from_flags(true, true), Format::Json);
    }
}
