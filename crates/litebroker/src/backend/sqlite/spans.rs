//! Where published copies came from, one row per run of copies.
//!
//! Fan-out writes the copies of a publish batch into each subscription's
//! queue as one run of consecutive storage positions (`messages.id`), in
//! offset order. One `lb_copy_spans` row per run says "positions `first_seq`
//! ..= `last_seq` are the topic's offsets `first_offset`, `first_offset + 1`,
//! ...", instead of one `lb_message_ext` row per copy: a fifth of the writes
//! of a copy, and reads that need no per-message lookup when nothing is
//! leased. Storage positions are never reused (`AUTOINCREMENT`), so a span
//! never describes a message it was not written for; spans whose messages are
//! all gone are dropped by vacuum.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::message::Message;
use crate::pubsub::Origin;

/// Records that positions `first_seq .. first_seq + count` hold the copies of
/// `topic`'s offsets `first_offset ..`, in order.
pub fn record(
    conn: &Connection,
    first_seq: i64,
    count: i64,
    topic: &str,
    first_offset: i64,
) -> Result<()> {
    if count <= 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO lb_copy_spans (first_seq, last_seq, topic, first_offset) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![first_seq, first_seq + count - 1, topic, first_offset])?;
    Ok(())
}

/// One span as read back.
struct Span {
    first_seq: i64,
    last_seq: i64,
    topic: String,
    first_offset: i64,
}

impl Span {
    fn covers(&self, seq: i64) -> bool {
        (self.first_seq..=self.last_seq).contains(&seq)
    }

    fn origin_of(&self, seq: i64) -> Origin {
        Origin {
            topic: self.topic.clone(),
            offset: self.first_offset + (seq - self.first_seq),
        }
    }
}

/// Fills in the origin of every message in `messages` that is a published
/// copy and has none yet. Messages come in storage order, so consecutive ones
/// mostly share a span and one lookup serves a whole run.
pub fn load_origins(conn: &Connection, messages: &mut [Message]) -> Result<()> {
    if messages.iter().all(|m| m.origin.is_some()) || !any(conn)? {
        return Ok(());
    }
    let mut find = conn.prepare_cached(
        "SELECT first_seq, last_seq, topic, first_offset FROM lb_copy_spans \
         WHERE first_seq <= ?1 ORDER BY first_seq DESC LIMIT 1",
    )?;
    let mut current: Option<Span> = None;
    for msg in messages.iter_mut().filter(|m| m.origin.is_none()) {
        if !current.as_ref().is_some_and(|s| s.covers(msg.seq)) {
            current = find
                .query_row([msg.seq], |r| {
                    Ok(Span {
                        first_seq: r.get(0)?,
                        last_seq: r.get(1)?,
                        topic: r.get(2)?,
                        first_offset: r.get(3)?,
                    })
                })
                .optional()?;
        }
        msg.origin = current
            .as_ref()
            .filter(|s| s.covers(msg.seq))
            .map(|s| s.origin_of(msg.seq));
    }
    Ok(())
}

/// Whether any span exists. Every read asks, so this is one statement: while
/// the table does not exist yet (no pub/sub, see `schema::PUBSUB_DDL`) its
/// preparation fails with "no such table", which means none.
fn any(conn: &Connection) -> Result<bool> {
    let mut stmt = match conn.prepare_cached("SELECT EXISTS(SELECT 1 FROM lb_copy_spans)") {
        Ok(stmt) => stmt,
        Err(rusqlite::Error::SqliteFailure(_, Some(msg)))
            if msg == "no such table: lb_copy_spans" =>
        {
            return Ok(false)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(stmt.query_row([], |r| r.get(0))?)
}

/// Per topic, the lowest offset among `queue`'s visible copies described by
/// spans: each visible message of the queue finds its span (the nearest one
/// starting at or before it) through the primary key, so the cost follows
/// the queue's depth, not the number of spans.
pub fn next_offsets(conn: &Connection, queue: &str) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.topic, MIN(s.first_offset + m.id - s.first_seq) \
         FROM messages m JOIN lb_copy_spans s ON s.first_seq = \
           (SELECT MAX(first_seq) FROM lb_copy_spans WHERE first_seq <= m.id) \
         WHERE m.queue = ?1 AND m.claimed = 0 AND m.id <= s.last_seq GROUP BY s.topic",
    )?;
    let rows = stmt.query_map([queue], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Drops spans none of whose messages is still waiting (vacuum).
pub fn forget_finished(conn: &Connection) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM lb_copy_spans WHERE NOT EXISTS (SELECT 1 FROM messages m \
         WHERE m.id BETWEEN first_seq AND last_seq AND m.claimed != 1)",
        [],
    )?;
    Ok(n as u64)
}
