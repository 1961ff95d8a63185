//! `broker init [--force]`: create the project database in the current directory.

use anyhow::{bail, Context, Result};
use litebroker::{config, Broker};

use super::Ctx;
use crate::exit::Outcome;

/// Creates `<cwd>/<BROKER_DEFAULT_DB_NAME>`; an existing SimpleBroker database
/// is left as it is, anything else at that path is refused untouched.
pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let path = cwd.join(&ctx.settings.default_db_name);
    if path.exists() {
        if !litebroker::backend::sqlite::is_broker_database(&path) {
            bail!(
                "File exists but is not a SimpleBroker database: {}\n\
                 Remove it or choose another name with BROKER_DEFAULT_DB_NAME.",
                path.display()
            );
        }
        ctx.info(&format!(
            "SimpleBroker database already exists: {}",
            path.display()
        ));
        return Ok(Outcome::Done);
    }
    config::ensure_parent_dir(&path)?;
    Broker::open(&path, &ctx.settings)?;
    ctx.info(&format!(
        "Initialized SimpleBroker database: {}",
        path.display()
    ));
    Ok(Outcome::Done)
}
