//! `broker load [FILE]`: restore a `dump`, keeping ids and order, all or nothing.

use std::io::{BufRead, BufReader};

use anyhow::{Context, Result};
use litebroker::message::QueuedMessage;
use litebroker::{Error, Headers, Message};
use serde_json::Value;

use super::Ctx;
use crate::args::LoadArgs;
use crate::exit::Outcome;
use crate::progress::Progress;

/// Reads NDJSON records and inserts them in one transaction.
pub fn run(ctx: &Ctx, args: &LoadArgs) -> Result<Outcome> {
    let input: Box<dyn BufRead> = if args.file == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file))?;
        Box::new(BufReader::new(file))
    };
    let mut broker = ctx.open()?;
    let progress = Progress::counter("loading");
    let mut records = input
        .lines()
        .enumerate()
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(i, line)| {
            progress.inc();
            let line = line.map_err(|e| Error::io("cannot read input", e))?;
            parse_record(&line).map_err(|reason| Error::BadRecord {
                line: i + 1,
                reason,
            })
        });
    let loaded = broker.load(&mut records)?;
    progress.finish();
    ctx.info(&format!(
        "Loaded {}",
        super::count(loaded as u64, "message")
    ));
    Ok(Outcome::Done)
}

/// Parses one dump line. Unknown fields are refused rather than silently dropped.
pub fn parse_record(line: &str) -> Result<QueuedMessage, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("expected a JSON object".into());
    };
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "queue" | "id" | "body" | "headers"))
    {
        return Err(format!("unsupported field '{key}'"));
    }
    let queue = map
        .get("queue")
        .and_then(Value::as_str)
        .ok_or("missing string field 'queue'")?;
    let id = map
        .get("id")
        .and_then(Value::as_i64)
        .ok_or("missing integer field 'id'")?;
    if id <= 0 {
        return Err(format!("invalid id {id}"));
    }
    let body = map
        .get("body")
        .and_then(Value::as_str)
        .ok_or("missing string field 'body'")?;
    let mut message = Message::new(id, body, 0);
    if let Some(headers) = map.get("headers") {
        message.headers = Headers::from_json_value(headers).map_err(|e| e.to_string())?;
    }
    Ok(QueuedMessage {
        queue: queue.to_owned(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_dump_line() {
        let r =
            parse_record(r#"{"queue": "q", "id": 1837025672140161024, "body": "a\nb"}"#).unwrap();
        assert_eq!(r.queue, "q");
        assert_eq!(r.message.id, 1837025672140161024);
        assert_eq!(r.message.body, "a\nb");
        assert!(r.message.headers.is_empty());
        let r =
            parse_record(r#"{"queue": "q", "id": 5, "body": "x", "headers": {"n": 3}}"#).unwrap();
        assert_eq!(r.message.headers.to_json(), r#"{"n":3}"#);
    }

    #[test]
    fn refuses_bad_lines() {
        for bad in [
            "not json",
            "[1]",
            r#"{"queue": "q", "id": "1", "body": "x"}"#,
            r#"{"queue": "q", "body": "x"}"#,
            r#"{"queue": "q", "id": 5, "body": 7}"#,
            r#"{"queue": "q", "id": -5, "body": "x"}"#,
            r#"{"queue": "q", "id": 5, "body": "x", "extra": 1}"#,
            r#"{"queue": "q", "id": 5, "body": "x", "headers": [1]}"#,
            r#"{"queue": "q", "id": 5, "body": "x", "headers": {"a": {"b": 1}}}"#,
        ] {
            assert!(parse_record(bad).is_err(), "{bad}");
        }
    }
}
