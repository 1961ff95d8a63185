//! `broker topics` and `broker topic config`.

use anyhow::Result;
use litebroker::duration::format_duration;
use litebroker::pubsub::Retention;

use super::Ctx;
use crate::args::TopicConfigArgs;
use crate::exit::Outcome;

/// One line per topic: `topic: N messages (offsets F-L)` or, with nothing
/// retained, `(next offset N)`; the retention in force, if any, in brackets.
pub fn list(ctx: &Ctx) -> Result<Outcome> {
    let mut broker = ctx.open()?;
    let mut out = String::new();
    for t in broker.topics()? {
        let range = match t.first_offset {
            Some(first) => format!("offsets {first}-{}", t.next_offset - 1),
            None => format!("next offset {}", t.next_offset),
        };
        out += &format!(
            "{}: {} ({range})",
            t.topic,
            super::count(t.retained, "message")
        );
        if !t.retention.is_unbounded() {
            out += &format!(" [retain {}]", describe(&t.retention));
        }
        out.push('\n');
    }
    print!("{out}");
    Ok(Outcome::Done)
}

/// Sets (`--retain`, `--unlimited`) or shows the retention of a topic or pattern.
pub fn config(ctx: &Ctx, args: &TopicConfigArgs) -> Result<Outcome> {
    litebroker::topic::validate_pattern(&args.pattern)?;
    let retention = args.retain.as_deref().map(Retention::parse).transpose()?;
    let mut broker = ctx.open()?;
    if let Some(r) = retention {
        broker.set_retention(&args.pattern, &r)?;
    } else if args.unlimited {
        broker.set_retention(&args.pattern, &Retention::default())?;
    }
    let shown = broker.retention_setting(&args.pattern)?;
    println!("topic: {}\nretain: {}", args.pattern, describe(&shown));
    Ok(Outcome::Done)
}

fn describe(r: &Retention) -> String {
    let mut parts = Vec::new();
    if let Some(n) = r.max_count {
        parts.push(super::count(n, "message"));
    }
    if let Some(d) = r.max_age {
        parts.push(format_duration(d));
    }
    if parts.is_empty() {
        "unlimited".into()
    } else {
        parts.join(", ")
    }
}
