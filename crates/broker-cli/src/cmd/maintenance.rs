//! The global actions: `--cleanup`, `--vacuum [--compact]`, `--status [--json]`.

use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::exit::Outcome;
use crate::progress::Progress;

/// Deletes the database file (only that file), whether or not it existed.
/// On PostgreSQL: drops litebroker's schema, only with `--yes`.
pub fn cleanup(ctx: &Ctx, yes: bool) -> Result<Outcome> {
    if let Some(pg) = ctx.database.postgres()? {
        let where_ = litebroker::Connector::describe(&pg);
        if !yes {
            bail!(
                "--cleanup on PostgreSQL drops schema '{}' and every message in it ({where_}); \
                 add --yes to confirm",
                pg.schema()
            );
        }
        if pg.drop_schema()? {
            ctx.info(&format!("Database cleaned up: {where_}"));
        } else {
            ctx.info(&format!(
                "Database not found, nothing to clean up: {where_}"
            ));
        }
        return Ok(Outcome::Done);
    }
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
    if ctx.database.postgres()?.is_none() {
        let path = ctx.db_path()?;
        if !path.exists() {
            ctx.info(&format!("Database not found: {}", path.display()));
            return Ok(Outcome::Done);
        }
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
    // PostgreSQL adds what makes sense there: the server and schema versions.
    let mut server = Vec::new();
    if let Some(pg) = ctx.database.postgres()? {
        server.push((
            "backend",
            "\"postgresql\"".to_owned(),
            "postgresql".to_owned(),
        ));
        let version = pg.server_version()?;
        server.push(("server_version", serde_json::to_string(&version)?, version));
        let schema = pg.schema().to_owned();
        server.push(("schema", serde_json::to_string(&schema)?, schema));
        let v = litebroker::backend::postgres::schema::SCHEMA_VERSION.to_string();
        server.push(("schema_version", v.clone(), v));
    }
    // Leased and delayed counts appear only when there are some, so a
    // reference database reports exactly what the reference reports.
    let extra = [
        ("leased_messages", s.leased),
        ("delayed_messages", s.delayed),
    ];
    let extra = extra.iter().filter(|(_, n)| *n > 0);
    let mut out = String::new();
    if json {
        let mut tail: String = extra.map(|(k, n)| format!(", \"{k}\": {n}")).collect();
        for (k, json, _) in &server {
            tail.push_str(&format!(", \"{k}\": {json}"));
        }
        out.push_str(&format!(
            "{{\"total_messages\": {}, \"last_timestamp\": {}, \"db_size\": {}{tail}}}\n",
            s.total_messages, s.last_id, s.db_size
        ));
    } else {
        out.push_str(&format!("total_messages: {}\n", s.total_messages));
        out.push_str(&format!("last_timestamp: {}\n", s.last_id));
        out.push_str(&format!("db_size: {}\n", s.db_size));
        extra.for_each(|(k, n)| out.push_str(&format!("{k}: {n}\n")));
        for (k, _, text) in &server {
            out.push_str(&format!("{k}: {text}\n"));
        }
    }
    // A closed pipe (`| head -1`) is an error main treats as a quiet exit.
    std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes())
        .context("cannot write the status")?;
    Ok(Outcome::Done)
}
