//! `broker keys create|list|revoke`: the API keys `serve` accepts, kept in
//! the database as a hash of each secret; the secret is printed once.

use anyhow::{anyhow, bail, Result};
use litebroker::backend::StoredKey;
use litebroker_server::auth;

use super::Ctx;
use crate::args::{KeysAction, KeysArgs};
use crate::exit::Outcome;

/// Runs one `keys` action.
pub fn run(ctx: &Ctx, args: &KeysArgs) -> Result<Outcome> {
    let mut broker = ctx.open()?;
    match &args.action {
        KeysAction::Create { name, allow } => {
            let grants = auth::parse_grants(allow).map_err(|e| anyhow!("--allow {e}"))?;
            let secret = auth::new_secret();
            broker.api_key_add(&StoredKey {
                name: name.clone(),
                secret_hash: auth::hash_secret(&secret),
                grants: auth::grants_text(&grants),
                created_ns: litebroker::id::now_ns(),
            })?;
            println!("{secret}");
            if !ctx.quiet {
                eprintln!("Created API key '{name}': the secret above is shown this once only");
            }
            Ok(Outcome::Done)
        }
        KeysAction::List => {
            let keys = broker.api_keys()?;
            if keys.is_empty() {
                return Ok(Outcome::Nothing);
            }
            for k in keys {
                println!(
                    "{}\t{}",
                    k.name,
                    k.grants.lines().collect::<Vec<_>>().join(" ")
                );
            }
            Ok(Outcome::Done)
        }
        KeysAction::Revoke { name } => {
            if !broker.api_key_revoke(name)? {
                bail!("no API key named '{name}'");
            }
            ctx.info(&format!("Revoked API key '{name}'"));
            Ok(Outcome::Done)
        }
    }
}
