//! `broker write <queue> <message|->`

use anyhow::Result;

use super::{message_body, precheck_queue, Ctx};
use crate::args::WriteArgs;
use crate::exit::Outcome;

/// Appends one message; prints nothing.
pub fn run(ctx: &Ctx, args: &WriteArgs) -> Result<Outcome> {
    precheck_queue(&args.queue)?;
    let body = message_body(&args.message)?;
    let mut broker = ctx.open()?;
    let queue = broker.resolve(&args.queue)?;
    broker.queue(&queue)?.write(&body)?;
    Ok(Outcome::Done)
}
