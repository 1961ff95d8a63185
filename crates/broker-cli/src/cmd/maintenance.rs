//! The global actions: `--cleanup`, `--vacuum [--compact]`, `--status [--json]`.

use std::time::Instant;

use anyhow::{Context, Result};

use super::Ctx;
use crate::exit::Outcome;
use crate::progress::Progress;

/// Deletes the database file (only that file), whether or not it existed.
pub fn cleanup(ctx: &Ctx) -> Result<Outcome> {
    let path = ctx.db_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => ctx.info(&format!("Database cleaned up: {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ctx.info(&format!(
            "Database not found, nothing to clean up: {}",
            path.display()
        )),
        Err(e) => return Err(e).with_context(|| format!("cannot delete {}", path.display())),
    }
    Ok(Outcome::Done)
}

/// Removes consumed messages and gives the space back.
pub fn vacuum(ctx: &Ctx, compact: bool) -> Result<Outcome> {
    let path = ctx.db_path()?;
    if !path.exists() {
        ctx.info(&format!("Database not found: {}", path.display()));
        return Ok(Outcome::Done);
    }
    let mut broker = ctx.open()?;
    let started = Instant::now();
    let spinner = Progress::spinner("vacuuming");
    let report = broker.vacuum(compact)?;
    spinner.finish();
    let elapsed = started.elapsed().as_secs_f64();
    if report.consumed_before > 0 {
        println!(
            "Vacuumed {} claimed messages in {elapsed:.1}s",
            report.consumed_before
        );
    } else if !compact {
        println!("No claimed messages to vacuum");
    }
    if compact {
        println!("Database compacted in {elapsed:.1}s");
    }
    Ok(Outcome::Done)
}

/// Prints message count, last id and file size.
pub fn status(ctx: &Ctx, json: bool) -> Result<Outcome> {
    let mut broker = ctx.open()?;
    let s = broker.status()?;
    // Leased and delayed counts appear only when there are some, so a
    // reference database reports exactly what the reference reports.
    let extra = [
        ("leased_messages", s.leased),
        ("delayed_messages", s.delayed),
    ];
    let extra = extra.iter().filter(|(_, n)| *n > 0);
    if json {
        let tail: String = extra.map(|(k, n)| format!(", \"{k}\": {n}")).collect();
        println!(
            "{{\"total_messages\": {}, \"last_timestamp\": {}, \"db_size\": {}{tail}}}",
            s.total_messages, s.last_id, s.db_size
        );
    } else {
        println!("total_messages: {}", s.total_messages);
        println!("last_timestamp: {}", s.last_id);
        println!("db_size: {}", s.db_size);
        extra.for_each(|(k, n)| println!("{k}: {n}"));
    }
    Ok(Outcome::Done)
}
