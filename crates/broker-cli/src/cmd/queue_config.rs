//! `broker queue config <queue> [--visibility D] [--max-receives N] [--dead-letter Q] [--clear] [--json]`

use anyhow::Result;
use litebroker::duration::{format_duration, parse_duration};
use litebroker::QueueConfig;

use super::{precheck_queue, Ctx};
use crate::args::QueueConfigArgs;
use crate::exit::Outcome;
use crate::output::push_json_string;

/// Changes the settings given (keeping the others, unless `--clear`), then
/// prints the settings in force.
pub fn run(ctx: &Ctx, args: &QueueConfigArgs) -> Result<Outcome> {
    precheck_queue(&args.queue)?;
    if let Some(dlq) = &args.delivery.dead_letter {
        precheck_queue(dlq)?;
    }
    let visibility = args
        .delivery
        .visibility
        .as_deref()
        .map(parse_duration)
        .transpose()?;
    let mut broker = ctx.open()?;
    let queue = broker.resolve(&args.queue)?;
    let mut config = if args.clear {
        QueueConfig::default()
    } else {
        broker.queue(&queue)?.config()?
    };
    let changing = args.clear
        || visibility.is_some()
        || args.delivery.max_receives.is_some()
        || args.delivery.dead_letter.is_some();
    if changing {
        config.visibility = visibility.or(config.visibility);
        config.max_receives = args.delivery.max_receives.or(config.max_receives);
        if let Some(dlq) = &args.delivery.dead_letter {
            config.dead_letter = Some(broker.resolve(dlq)?);
        }
        broker.configure_queue(&queue, &config)?;
    }
    print!("{}", render(&queue, &config, args.json));
    Ok(Outcome::Done)
}

/// The settings as `key: value` lines, or one JSON object.
pub fn render(queue: &str, config: &QueueConfig, json: bool) -> String {
    let visibility = config.effective_visibility();
    if json {
        let mut out = b"{\"queue\": ".to_vec();
        push_json_string(&mut out, queue);
        out.extend_from_slice(
            format!(
                ", \"visibility_ms\": {}, \"max_receives\": ",
                visibility.as_millis()
            )
            .as_bytes(),
        );
        match config.max_receives {
            Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b", \"dead_letter\": ");
        match &config.dead_letter {
            Some(d) => push_json_string(&mut out, d),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}\n");
        return String::from_utf8(out).expect("JSON is UTF-8");
    }
    let default = if config.visibility.is_none() {
        " (default)"
    } else {
        ""
    };
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".into());
    format!(
        "queue: {queue}\nvisibility: {}{default}\nmax_receives: {}\ndead_letter: {}\n",
        format_duration(visibility),
        or_none(config.max_receives.map(|n| n.to_string())),
        or_none(config.dead_letter.clone()),
    )
}
