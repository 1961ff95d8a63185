//! One PostgreSQL connection with a statement cache, and transactions on it
//! that retry the failures PostgreSQL asks callers to retry (serialization
//! failures, deadlocks).

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, Row, Statement, Transaction};

use crate::error::{Error, Result};

/// A connection and the statements prepared on it.
pub struct Conn {
    pub client: Client,
    cache: HashMap<&'static str, Statement>,
    /// The channel every committing change notifies (`NOTIFY`).
    pub channel: String,
    /// The last transaction failed before it began (`BEGIN` itself): nothing
    /// ran, so it may be retried on a new connection.
    pub begin_failed: bool,
    /// This session may wait for a flush on its own (`messages::wait_durable`),
    /// so a write can commit without waiting under its locks.
    pub can_wait_durable: bool,
}

/// A transaction with the connection's statement cache.
pub struct Tx<'a> {
    pub tx: Transaction<'a>,
    cache: &'a mut HashMap<&'static str, Statement>,
    channel: &'a str,
    notify: bool,
}

impl Conn {
    pub fn new(client: Client, channel: String, can_wait_durable: bool) -> Self {
        Conn {
            client,
            cache: HashMap::new(),
            channel,
            begin_failed: false,
            can_wait_durable,
        }
    }

    /// Runs `body` in a transaction, committing if it succeeds; retried a few
    /// times when PostgreSQL reports a serialization failure or a deadlock.
    pub fn transaction<T>(&mut self, mut body: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.try_transaction(&mut body);
            match result {
                Err(e) if attempt < 8 && is_retryable(&e) => {
                    std::thread::sleep(std::time::Duration::from_millis(2 << attempt));
                }
                other => return other,
            }
        }
    }

    /// One statement in its own implicit transaction: one round trip.
    pub fn autocommit(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let client = &mut self.client;
        let stmt = prepared(&mut self.cache, |s| client.prepare(s), sql)?;
        Ok(self.client.query(&stmt, params)?)
    }

    fn try_transaction<T>(&mut self, body: &mut impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.begin_failed = false;
        let tx = match self.client.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                self.begin_failed = true;
                return Err(e.into());
            }
        };
        let mut t = Tx {
            tx,
            cache: &mut self.cache,
            channel: &self.channel,
            notify: false,
        };
        let value = body(&mut t)?;
        if t.notify {
            let sql = format!("NOTIFY {}", t.channel);
            t.tx.batch_execute(&sql)?;
        }
        t.tx.commit()?;
        Ok(value)
    }
}

fn prepared(
    cache: &mut HashMap<&'static str, Statement>,
    prepare: impl FnOnce(&str) -> std::result::Result<Statement, postgres::Error>,
    sql: &'static str,
) -> Result<Statement> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let stmt = prepare(sql)?;
    cache.insert(sql, stmt.clone());
    Ok(stmt)
}

impl Tx<'_> {
    fn stmt(&mut self, sql: &'static str) -> Result<Statement> {
        let tx = &mut self.tx;
        prepared(self.cache, |s| tx.prepare(s), sql)
    }

    /// Rows of a cached statement.
    pub fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let stmt = self.stmt(sql)?;
        Ok(self.tx.query(&stmt, params)?)
    }

    /// Exactly one row of a cached statement.
    pub fn one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let stmt = self.stmt(sql)?;
        Ok(self.tx.query_one(&stmt, params)?)
    }

    /// At most one row of a cached statement.
    pub fn opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let stmt = self.stmt(sql)?;
        Ok(self.tx.query_opt(&stmt, params)?)
    }

    /// Rows changed by a cached statement.
    pub fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let stmt = self.stmt(sql)?;
        Ok(self.tx.execute(&stmt, params)?)
    }

    /// Wakes every listener of the database's change feed when this
    /// transaction commits. Called by changes that can give a waiter
    /// something to take (a write, a release, a move, a redrive, a delay or
    /// lease running out); not by consuming or deleting, which cannot, so
    /// readers do not pay for `NOTIFY`'s commit-time lock.
    pub fn changed(&mut self) {
        self.notify = true;
    }
}

/// Serialization failure or deadlock: PostgreSQL rolled back, try again.
fn is_retryable(e: &Error) -> bool {
    e.storage_source::<PgError>()
        .map(|p| &p.0)
        .and_then(|p| p.code())
        .is_some_and(|c| {
            *c == postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                || *c == postgres::error::SqlState::T_R_DEADLOCK_DETECTED
        })
}

/// Whether `e` means the server is gone or going (connection closed or
/// refused, shutdown, crash recovery): retry later, on a new connection.
pub fn is_unavailable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::CONNECTION_FAILURE
            || *code == SqlState::CONNECTION_EXCEPTION;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        if is_unavailable(&e) {
            return Error::Unavailable(Box::new(PgError(e)));
        }
        let full = e.code().is_some_and(|c| {
            *c == postgres::error::SqlState::DISK_FULL
                || *c == postgres::error::SqlState::INSUFFICIENT_RESOURCES
        });
        if full {
            Error::WriteFailed(Box::new(PgError(e)))
        } else {
            Error::storage(PgError(e))
        }
    }
}

/// PostgreSQL's error with the server's own words in its text (the client
/// library prints only "db error" and keeps the details in its source).
#[derive(Debug)]
pub struct PgError(pub postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => write!(f, "{}: {}", db.severity(), db.message()),
            None => match std::error::Error::source(&self.0) {
                Some(cause) => write!(f, "{}: {cause}", self.0),
                None => write!(f, "{}", self.0),
            },
        }
    }
}

impl std::error::Error for PgError {}
