//! `broker init [--force]`: create the project database in the current directory.

use anyhow::{bail, Context, Result};
use litebroker::location::{self, InitState};
use litebroker::Broker;

use super::Ctx;
use crate::exit::Outcome;

/// Creates `<cwd>/<BROKER_DEFAULT_DB_NAME>`; an existing SimpleBroker database
/// is left as it is, anything else at that path is refused untouched.
pub fn run(ctx: &Ctx) -> Result<Outcome> {
    if let Some(pg) = ctx.database.postgres()? {
        let (from, to) = pg.init()?;
        let where_ = litebroker::Connector::describe(&pg);
        ctx.info(&match from {
            0 => format!("Initialized litebroker schema version {to}: {where_}"),
            f if f == to => format!("litebroker schema version {to} already exists: {where_}"),
            f => format!("Migrated litebroker schema from version {f} to {to}: {where_}"),
        });
        return Ok(Outcome::Done);
    }
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let path = location::init_path(&ctx.settings.location, &cwd)?;
    match location::init_state(&path) {
        InitState::Foreign => bail!(
            "File exists but is not a SimpleBroker database: {}\n\
             Remove it or choose another name with BROKER_DEFAULT_DB_NAME.",
            path.display()
        ),
        InitState::BrokerDatabase => {
            ctx.info(&format!(
                "SimpleBroker database already exists: {}",
                path.display()
            ));
            return Ok(Outcome::Done);
        }
        InitState::Absent => {}
    }
    location::ensure_parent_dir(&path)?;
    Broker::open(&path, &ctx.settings)?;
    ctx.info(&format!(
        "Initialized SimpleBroker database: {}",
        path.display()
    ));
    Ok(Outcome::Done)
}
