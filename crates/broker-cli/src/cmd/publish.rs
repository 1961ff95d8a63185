//! `broker publish`, `broker request`, `broker reply`: sending to topics.

use anyhow::{bail, Context, Result};
use litebroker::duration::parse_duration;
use litebroker::{Headers, Message};
use serde_json::Value;

use super::{message_body, Ctx};
use crate::args::{PublishArgs, ReplyArgs, RequestArgs};
use crate::exit::Outcome;
use crate::output::{format_message, raw_stdout, Format};

/// Publishes one message; prints how many subscriptions it reached (`-q`: nothing).
pub fn publish(ctx: &Ctx, args: &PublishArgs) -> Result<Outcome> {
    litebroker::topic::validate_topic(&args.topic)?;
    let headers = Headers::from_assignments(&args.headers)?;
    let body = message_body(&args.message)?;
    let mut broker = ctx.open()?;
    let published = broker.publish(&args.topic, &body, &headers)?;
    ctx.info(&published.delivered.to_string());
    Ok(Outcome::Done)
}

/// Sends a request and prints the first reply; exit 2 when none came in time.
pub fn request(ctx: &Ctx, args: &RequestArgs) -> Result<Outcome> {
    litebroker::topic::validate_topic(&args.topic)?;
    let headers = Headers::from_assignments(&args.headers)?;
    let timeout = parse_duration(&args.timeout)?;
    let body = message_body(&args.message)?;
    let mut broker = ctx.open()?;
    match broker.request(&args.topic, &body, &headers, timeout)? {
        Some(reply) => {
            print_one(&reply, Format::from_flags(args.json, args.timestamps))?;
            Ok(Outcome::Done)
        }
        None => Ok(Outcome::Nothing),
    }
}

/// Answers a request given as the JSON line a consumer printed for it.
pub fn reply(ctx: &Ctx, args: &ReplyArgs) -> Result<Outcome> {
    if args.request == "-" && args.message == "-" {
        bail!("only one of the request and the reply can come from stdin");
    }
    let headers = Headers::from_assignments(&args.headers)?;
    let request = parse_request(&message_body(&args.request)?)?;
    let body = message_body(&args.message)?;
    let mut broker = ctx.open()?;
    let published = broker.reply(&request, &body, &headers)?;
    ctx.info(&published.delivered.to_string());
    Ok(Outcome::Done)
}

/// The request message (only its headers matter) from a `--json` line.
fn parse_request(text: &str) -> Result<Message> {
    let value: Value =
        serde_json::from_str(text.trim()).context("the request is not valid JSON")?;
    let Some(fields) = value.as_object() else {
        bail!("the request must be a JSON object as printed by --json");
    };
    let mut msg = Message::new(
        fields.get("timestamp").and_then(Value::as_i64).unwrap_or(0),
        fields
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        0,
    );
    if let Some(h) = fields.get("headers") {
        msg.headers = Headers::from_json_value(h)?;
    }
    Ok(msg)
}

fn print_one(msg: &Message, format: Format) -> Result<()> {
    use std::io::Write;
    let mut out = Vec::new();
    format_message(&mut out, msg, format);
    raw_stdout()
        .write_all(&out)
        .context("cannot write to stdout")
}
