//! `broker ack <queue> <receipt>...`, `broker nack <queue> <receipt> [--delay D]`,
//! `broker extend <queue> <receipt> <duration>`: settling leases by receipt.

use anyhow::{bail, Result};
use litebroker::duration::parse_duration;
use litebroker::{NackOutcome, Receipt};

use super::{precheck_queue, Ctx};
use crate::args::{AckArgs, ExtendArgs, NackArgs};
use crate::exit::Outcome;

/// Acknowledges every valid receipt (one transaction); any refused receipt is
/// reported on stderr and makes the exit status 1.
pub fn ack(ctx: &Ctx, args: &AckArgs) -> Result<Outcome> {
    precheck_queue(&args.queue)?;
    let receipts = args
        .receipts
        .iter()
        .map(|r| r.parse::<Receipt>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut broker = ctx.open()?;
    let queue = broker.resolve(&args.queue)?;
    let results = broker.queue(&queue)?.ack_many(&receipts)?;
    let refused: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    match refused.as_slice() {
        [] => Ok(Outcome::Done),
        [one] => bail!("{one}"),
        many => bail!("{} receipts refused:\n  {}", many.len(), many.join("\n  ")),
    }
}

/// Gives a leased message back; says so on stdout when it was dead-lettered instead.
pub fn nack(ctx: &Ctx, args: &NackArgs) -> Result<Outcome> {
    precheck_queue(&args.queue)?;
    let receipt: Receipt = args.receipt.parse()?;
    let delay = args.delay.as_deref().map(parse_duration).transpose()?;
    let mut broker = ctx.open()?;
    let queue = broker.resolve(&args.queue)?;
    if let NackOutcome::DeadLettered(dlq) = broker.queue(&queue)?.nack(&receipt, delay)? {
        ctx.info(&format!(
            "Message {} reached the maximum receives of '{queue}': moved to '{dlq}'",
            receipt.id
        ));
    }
    Ok(Outcome::Done)
}

/// Sets a live lease to end `duration` from now.
pub fn extend(ctx: &Ctx, args: &ExtendArgs) -> Result<Outcome> {
    precheck_queue(&args.queue)?;
    let receipt: Receipt = args.receipt.parse()?;
    let duration = parse_duration(&args.duration)?;
    let mut broker = ctx.open()?;
    let queue = broker.resolve(&args.queue)?;
    broker.queue(&queue)?.extend(&receipt, duration)?;
    Ok(Outcome::Done)
}
