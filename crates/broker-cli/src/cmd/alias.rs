//! `broker alias add|remove|list`

use anyhow::Result;

use super::Ctx;
use crate::args::{AliasAction, AliasArgs};
use crate::exit::Outcome;

/// Manages aliases; listing prints `<alias> -> <target>` lines.
pub fn run(ctx: &Ctx, args: &AliasArgs) -> Result<Outcome> {
    let mut broker = ctx.open()?;
    match &args.action {
        AliasAction::Add { alias, target } => {
            broker.alias_add(alias, target)?;
            let has_rows = broker
                .list()?
                .iter()
                .any(|q| &q.name == alias && q.total > 0);
            if has_rows {
                eprintln!(
                    "broker: warning: Queue '{alias}' already exists with messages; \
                     '{alias}' still names that queue, use '@{alias}' for the alias"
                );
            }
        }
        AliasAction::Remove { alias } => broker.alias_remove(alias)?,
        AliasAction::List { target } => {
            let wanted = target.as_deref().filter(|t| !t.is_empty());
            let aliases = broker.aliases(wanted)?;
            if aliases.is_empty() {
                if let Some(t) = wanted {
                    println!("No aliases found for '{t}'");
                }
            }
            for (alias, target) in aliases {
                println!("{alias} -> {target}");
            }
        }
    }
    Ok(Outcome::Done)
}
