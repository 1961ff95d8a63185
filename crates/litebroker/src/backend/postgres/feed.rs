//! The change feed's source on PostgreSQL: a connection of its own that
//! `LISTEN`s on the database's channel. Every transaction that changes what
//! a waiter could see sends `NOTIFY` before it commits, and PostgreSQL
//! delivers it when (and only if) the transaction commits. No polling while
//! idle; a lost connection is an error, and the feed reopens the source and
//! wakes every waiter to look again, so nothing committed meanwhile is missed.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;

use crate::backend::ChangeSource;
use crate::error::Result;

/// A `LISTEN`ing connection.
pub struct PgSource {
    client: Client,
}

impl PgSource {
    /// Starts listening on `channel` over `client` (a new connection).
    pub fn listen(mut client: Client, channel: &str) -> Result<Self> {
        client.batch_execute(&format!("LISTEN {channel}"))?;
        Ok(PgSource { client })
    }
}

impl ChangeSource for PgSource {
    fn wait_change(&mut self, longest: Duration) -> Result<bool> {
        let first = self.client.notifications().timeout_iter(longest).next()?;
        if first.is_none() {
            if self.client.is_closed() {
                return Err(crate::error::Error::InvalidRequest(
                    "the PostgreSQL connection of the change feed closed".into(),
                ));
            }
            return Ok(false);
        }
        // Drain what else arrived: one wake-up covers them all.
        let mut notes = self.client.notifications();
        let mut pending = notes.iter();
        while pending.next()?.is_some() {}
        Ok(true)
    }
}
