//! Custody across hosts: a connection that holds messages registers a
//! holder row and keeps a session-level advisory lock on its token. The
//! lock dies with the session (process killed, host lost, connection cut,
//! `pg_terminate_backend`), so any other connection can tell a dead holder
//! from a live one without knowing its host, and return its messages: those
//! up to its recorded progress were delivered (consumed), the rest go back
//! in place.

use super::conn::Tx;
use super::schema::LOCK_CLASS;
use crate::error::Result;

/// The advisory-lock key of holder `token` (second key of the pair).
pub fn lock_key(token: i64) -> i32 {
    (token.rem_euclid(i64::from(i32::MAX))) as i32
}

/// Registers this connection as a holder and takes its lock; returns the token.
pub fn register(tx: &mut Tx<'_>, now: i64) -> Result<i64> {
    let host = crate::backend::sqlite::holder::ProcessIdentity::current().host;
    let pid = std::process::id() as i32;
    let token: i64 = tx
        .one(
            "INSERT INTO holders (host, pid, created_ns) VALUES ($1, $2, $3) RETURNING token",
            &[&host, &pid, &now],
        )?
        .get(0);
    // Session-level: it outlives this transaction and ends with the session.
    tx.one(
        "SELECT pg_advisory_lock($1, $2)",
        &[&LOCK_CLASS, &lock_key(token)],
    )?;
    Ok(token)
}

/// Ends a holder's record (its messages must already be settled).
pub fn unregister(tx: &mut Tx<'_>, token: i64) -> Result<()> {
    tx.execute("DELETE FROM holders WHERE token = $1", &[&token])?;
    Ok(())
}

/// Releases the lock of `token` held by this session.
pub fn unlock(tx: &mut Tx<'_>, token: i64) -> Result<()> {
    tx.one(
        "SELECT pg_advisory_unlock($1, $2)",
        &[&LOCK_CLASS, &lock_key(token)],
    )?;
    Ok(())
}

/// Settles `token`'s held messages in `range`: consumed or back to pending.
pub fn settle(
    tx: &mut Tx<'_>,
    token: i64,
    range: &std::ops::RangeInclusive<i64>,
    consumed: bool,
) -> Result<u64> {
    let n = if consumed {
        tx.execute(
            "WITH gone AS (DELETE FROM messages WHERE holder = $1 AND state = 3 \
             AND seq BETWEEN $2 AND $3 RETURNING seq, id, queue, body, headers, receives, \
             dead_source, dead_reason, topic, topic_offset) \
             INSERT INTO consumed SELECT * FROM gone",
            &[&token, range.start(), range.end()],
        )?
    } else {
        tx.execute(
            "UPDATE messages SET state = 0, holder = NULL \
             WHERE holder = $1 AND state = 3 AND seq BETWEEN $2 AND $3",
            &[&token, range.start(), range.end()],
        )?
    };
    if n > 0 && !consumed {
        tx.changed();
    }
    Ok(n)
}

/// Returns the messages of every holder whose session is gone (all but
/// `me`): delivered ones (up to its progress) consumed, the rest visible
/// again in place. Returns how many holders were dead.
pub fn release_dead(tx: &mut Tx<'_>, me: Option<i64>) -> Result<u64> {
    let dead = tx.query(
        "SELECT h.token, h.progress FROM holders h WHERE h.token <> COALESCE($2::bigint, -1) \
         AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND l.classid = $1::int::oid AND l.objid = (h.token % 2147483647)::int::oid \
         AND l.objsubid = 2 AND l.granted) \
         FOR UPDATE SKIP LOCKED",
        &[&LOCK_CLASS, &me],
    )?;
    for row in &dead {
        let (token, progress): (i64, i64) = (row.get(0), row.get(1));
        settle(tx, token, &(i64::MIN..=progress), true)?;
        settle(tx, token, &(i64::MIN..=i64::MAX), false)?;
        unregister(tx, token)?;
        tx.changed();
    }
    Ok(dead.len() as u64)
}
