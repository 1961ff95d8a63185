//! `broker broadcast <message|-> [--pattern GLOB]`

use anyhow::Result;

use super::{message_body, Ctx};
use crate::args::BroadcastArgs;
use crate::exit::Outcome;

/// Copies a message into every existing queue (matching the pattern); exit 2 if none.
pub fn run(ctx: &Ctx, args: &BroadcastArgs) -> Result<Outcome> {
    let body = message_body(&args.message)?;
    let mut broker = ctx.open()?;
    match broker.broadcast(&body, args.pattern.as_deref())? {
        0 => Ok(Outcome::Nothing),
        _ => Ok(Outcome::Done),
    }
}
