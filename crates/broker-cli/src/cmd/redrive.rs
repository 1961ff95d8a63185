//! `broker redrive <dlq> [<queue>]`: dead letters back to where they came from.

use anyhow::Result;

use super::{precheck_queue, Ctx};
use crate::args::RedriveArgs;
use crate::exit::Outcome;

/// Moves the visible messages of the dead-letter queue back (to their source
/// queues, or all to the queue given); exit 2 when there was nothing to move.
pub fn run(ctx: &Ctx, args: &RedriveArgs) -> Result<Outcome> {
    precheck_queue(&args.dlq)?;
    if let Some(q) = &args.queue {
        precheck_queue(q)?;
    }
    let mut broker = ctx.open()?;
    let dlq = broker.resolve(&args.dlq)?;
    let target = super::resolve_optional(&mut broker, args.queue.as_deref())?;
    let moved = broker.redrive(&dlq, target.as_deref())?;
    if moved == 0 {
        return Ok(Outcome::Nothing);
    }
    ctx.info(&format!(
        "Redrove {} from '{dlq}'",
        super::count(moved, "message")
    ));
    Ok(Outcome::Done)
}
