//! Which database a run works on: the SQLite file (`-d`/`-f`, the embedded
//! default) or PostgreSQL (`--db URL` or `BROKER_DATABASE_URL`). Decided
//! once, here, from the raw options; commands only ask for a connector.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use litebroker::backend::postgres::{
    is_postgres_url, PostgresConnector, PostgresOptions, DATABASE_URL_VAR,
};
use litebroker::location::PathRequest;
use litebroker::Connector;

/// The database selected for this run.
pub enum Database {
    /// The SQLite file, found as SimpleBroker finds it.
    File(PathRequest),
    /// A PostgreSQL database, by URL.
    Postgres(String),
}

impl Database {
    /// Chooses from `--db`, `BROKER_DATABASE_URL`, `-d`/`-f` and
    /// `BROKER_DEFAULT_DB_NAME`, refusing combinations that are ambiguous.
    pub fn select(db_flag: Option<&str>, request: PathRequest) -> Result<Self> {
        let from_env = std::env::var(DATABASE_URL_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty());
        refuse_urls_as_file_names(request.file.as_deref())?;
        let (url, source) = match (db_flag, from_env) {
            (Some(flag), _) => (flag.to_owned(), "--db"),
            (None, Some(env)) => (env, DATABASE_URL_VAR),
            (None, None) => return Ok(Database::File(request)),
        };
        if !is_postgres_url(&url) {
            bail!("{source} takes a postgres:// URL (got '{}')", redact(&url));
        }
        if request.dir.is_some() || request.file.is_some() {
            bail!("-d/-f select a SQLite file and cannot be combined with {source} (PostgreSQL)");
        }
        Ok(Database::Postgres(url))
    }

    /// The PostgreSQL connector, if PostgreSQL is selected.
    pub fn postgres(&self) -> Result<Option<PostgresConnector>> {
        match self {
            Database::File(_) => Ok(None),
            Database::Postgres(url) => Ok(Some(PostgresConnector::new(
                url,
                PostgresOptions::from_env()?,
            )?)),
        }
    }

    /// A connector to the selected database (`path` resolves the file).
    pub fn connector(
        &self,
        path: impl FnOnce() -> Result<PathBuf>,
        settings: &litebroker::Settings,
    ) -> Result<Arc<dyn Connector>> {
        match self.postgres()? {
            Some(pg) => Ok(Arc::new(pg)),
            None => {
                let path = path()?;
                litebroker::location::ensure_parent_dir(&path)?;
                Ok(Arc::new(litebroker::backend::sqlite::SqliteConnector::new(
                    &path, settings,
                )))
            }
        }
    }
}

/// Refuses a `postgres://` URL in `-f` (`file`) or `BROKER_DEFAULT_DB_NAME`,
/// pointing at `--db`. Runs before the file-name settings are validated, so
/// that a URL gets this message rather than a complaint about its characters.
pub fn refuse_urls_as_file_names(file: Option<&str>) -> Result<()> {
    let from_env = std::env::var("BROKER_DEFAULT_DB_NAME").ok();
    for (what, value) in [
        ("-f", file),
        ("BROKER_DEFAULT_DB_NAME", from_env.as_deref()),
    ] {
        if value.is_some_and(is_postgres_url) {
            bail!(
                "{what} names a SQLite database file, not a PostgreSQL URL; \
                 use --db URL or {DATABASE_URL_VAR} for PostgreSQL"
            );
        }
    }
    Ok(())
}

/// A URL with its password (if any) replaced, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_printed() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("nonsense"), "nonsense");
    }
}
