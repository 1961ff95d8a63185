//! `broker write <queue> <message|-> [--delay D] [-H key=value]...`

use anyhow::Result;
use litebroker::duration::parse_duration;
use litebroker::Headers;

use super::{message_body, precheck_queue, Ctx};
use crate::args::WriteArgs;
use crate::exit::Outcome;

/// Appends one message; prints nothing. Bad headers or delays are refused
/// before the database is touched.
pub fn run(ctx: &Ctx, args: &WriteArgs) -> Result<Outcome> {
    precheck_queue(&args.queue)?;
    let headers = Headers::from_assignments(&args.headers)?;
    let delay = args.delay.as_deref().map(parse_duration).transpose()?;
    let body = message_body(&args.message)?;
    let mut broker = ctx.open()?;
    let queue = broker.resolve(&args.queue)?;
    let mut q = broker.queue(&queue)?;
    if headers.is_empty() && delay.is_none() {
        q.write(&body)?;
    } else {
        q.write_with(&body, &headers, delay)?;
    }
    Ok(Outcome::Done)
}
