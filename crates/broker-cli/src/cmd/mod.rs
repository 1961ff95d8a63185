//! One module per sub-command; each parses nothing (clap did), calls the
//! library, and prints. [`Ctx`] carries what every command needs.

pub mod alias;
pub mod broadcast;
pub mod delete;
pub mod dump;
pub mod generate;
pub mod init;
pub mod keys;
pub mod lease;
pub mod list;
pub mod load;
pub mod maintenance;
pub mod move_cmd;
pub mod publish;
pub mod queue_config;
pub mod read;
pub mod redrive;
pub mod run;
pub mod serve;
pub mod subscribe;
pub mod topics;
pub mod watch;
pub mod write;

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use std::sync::Arc;

use litebroker::location;
use litebroker::message::{Filter, MAX_MESSAGE_SIZE};
use litebroker::Connector;
use litebroker::Settings;
use litebroker::{name, timebound, Broker};

use crate::args::Selection;
use crate::database::Database;
use crate::exit::Bare;

/// What every command needs: the settings and where the database is.
pub struct Ctx {
    /// Parsed `BROKER_*` settings.
    pub settings: Settings,
    /// The SQLite file (`-d` / `-f` as given) or a PostgreSQL URL.
    pub database: Database,
    /// `-q`.
    pub quiet: bool,
}

impl Ctx {
    /// The database file this invocation works on (SQLite only).
    pub fn db_path(&self) -> Result<PathBuf> {
        let Database::File(request) = &self.database else {
            bail!("this needs the SQLite file, but PostgreSQL is selected (--db / BROKER_DATABASE_URL)");
        };
        let cwd = std::env::current_dir().context("cannot determine the current directory")?;
        Ok(location::resolve_db_path(
            request,
            &self.settings.location,
            &cwd,
        )?)
    }

    /// A connector to the database (nothing opened yet).
    pub fn connector(&self) -> Result<Arc<dyn Connector>> {
        self.database.connector(|| self.db_path(), &self.settings)
    }

    /// Opens (creating if needed) the database.
    pub fn open(&self) -> Result<Broker> {
        Ok(Broker::connect(self.connector()?)?)
    }

    /// Prints an informational line unless `-q`.
    pub fn info(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

/// Tells the user on stderr when a long-running command (watch, listen, run)
/// loses the database and when it is back; the command keeps waiting.
pub fn outage_notices() -> litebroker::watch::NoticeFn {
    Arc::new(|notice| match notice {
        litebroker::watch::Notice::Unavailable(why) => {
            eprintln!("broker: {why}; waiting for the database to come back")
        }
        litebroker::watch::Notice::Reconnected => eprintln!("broker: database reachable again"),
    })
}

/// `1 message`, `2 messages`: a count with its noun in the right number.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// Validates a plain queue operand before anything is opened, so bad input
/// never creates or touches a database. `@alias` operands are checked on resolution.
pub fn precheck_queue(operand: &str) -> Result<()> {
    if name::alias_reference(operand).is_none() {
        name::validate_queue_name(operand)?;
    }
    Ok(())
}

/// Resolves an optional second queue operand (`@alias` or a plain name),
/// as `run --dead-letter`, `watch --move` and `redrive <dlq> [queue]` take.
pub fn resolve_optional(broker: &mut Broker, operand: Option<&str>) -> Result<Option<String>> {
    Ok(operand.map(|q| broker.resolve(q)).transpose()?)
}

/// A message body from the command line, or from stdin when it is `-`.
pub fn message_body(arg: &str) -> Result<String> {
    if arg != "-" {
        if arg.len() > MAX_MESSAGE_SIZE {
            bail!("Message exceeds maximum size of {MAX_MESSAGE_SIZE} bytes");
        }
        return Ok(arg.to_owned());
    }
    body_from_stdin()
}

/// The body `-` names. Its own function with no buffer on the stack: a
/// 64 KiB array in `message_body` made every `write` probe (fault in) 16
/// stack pages, stdin or not.
fn body_from_stdin() -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_MESSAGE_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .context("cannot read stdin")?;
    if bytes.len() > MAX_MESSAGE_SIZE {
        bail!("Input exceeds maximum size of {MAX_MESSAGE_SIZE} bytes");
    }
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("Input is not valid UTF-8"))
}

/// What `-m`, `--since/--after` and `--before` select. `Ok(None)` means a
/// malformed `-m` id: the reference exits 2, silently.
pub fn selection_filter(sel: &Selection, all: bool) -> Result<Option<Filter>> {
    let mut filter = Filter::all();
    if let Some(text) = &sel.message {
        let Some(id) = timebound::parse_message_id(text) else {
            return Ok(None);
        };
        if sel.before.is_some() {
            bail!("--message cannot be used with --before");
        }
        if all || sel.since.is_some() {
            return Err(Bare("--message cannot be used with --all or --since".into()).into());
        }
        filter.id = Some(id);
    }
    if let Some(text) = &sel.since {
        filter.after = Some(timebound::parse_time_bound(text)?);
    }
    if let Some(text) = &sel.before {
        filter.before = Some(timebound::parse_time_bound(text)?);
    }
    Ok(Some(filter))
}
