//! `broker list [--stats] [--pattern GLOB]`

use anyhow::Result;
use litebroker::glob;

use super::Ctx;
use crate::args::ListArgs;
use crate::exit::Outcome;

/// Prints queues with their pending counts (and totals with `--stats`).
pub fn run(ctx: &Ctx, args: &ListArgs) -> Result<Outcome> {
    let mut broker = ctx.open()?;
    let queues = broker.list()?;
    let mut out = String::new();
    for q in &queues {
        if args
            .pattern
            .as_deref()
            .is_some_and(|p| !glob::matches(p, &q.name))
        {
            continue;
        }
        if args.stats && q.claimed() > 0 {
            out += &format!(
                "{}: {} ({} total, {} claimed)\n",
                q.name,
                q.pending,
                q.total,
                q.claimed()
            );
        } else if args.stats || q.pending > 0 {
            out += &format!("{}: {}\n", q.name, q.pending);
        }
    }
    if args.stats {
        let consumed = broker.backend().consumed_count()?;
        let total = broker.status()?.total_messages;
        if consumed > 0 {
            out += &format!("\nTotal claimed messages: {consumed}/{total}\n");
        }
    }
    print!("{out}");
    Ok(Outcome::Done)
}
