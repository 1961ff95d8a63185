//! `broker list [--stats] [--pattern GLOB]`

use anyhow::Result;
use litebroker::duration::format_duration;
use litebroker::{glob, QueueStats};

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
                "{}: {} ({} total, {} claimed){}\n",
                q.name,
                q.pending,
                q.total,
                q.claimed(),
                delivery_details(q)
            );
        } else if args.stats {
            out += &format!("{}: {}{}\n", q.name, q.pending, delivery_details(q));
        } else if q.pending > 0 {
            out += &format!("{}: {}\n", q.name, q.pending);
        }
    }
    if args.stats {
        let consumed = broker.consumed_count()?;
        // Every row belongs to some queue: the database-wide total is already here.
        let total: u64 = queues.iter().map(|q| q.total).sum();
        if consumed > 0 {
            out += &format!("\nTotal claimed messages: {consumed}/{total}\n");
        }
    }
    print!("{out}");
    Ok(Outcome::Done)
}

/// What `--stats` adds for litebroker's own features, only when there is any
/// (so a reference database lists exactly as the reference lists it):
/// ` [leased 2, delayed 1, visibility 10s, max receives 5, dead letter q.dlq]`.
fn delivery_details(q: &QueueStats) -> String {
    let mut parts = Vec::new();
    if q.leased > 0 {
        parts.push(format!("leased {}", q.leased));
    }
    if q.delayed > 0 {
        parts.push(format!("delayed {}", q.delayed));
    }
    if let Some(v) = q.config.visibility {
        parts.push(format!("visibility {}", format_duration(v)));
    }
    if let Some(n) = q.config.max_receives {
        parts.push(format!("max receives {n}"));
    }
    if let Some(d) = &q.config.dead_letter {
        parts.push(format!("dead letter {d}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", parts.join(", "))
    }
}
