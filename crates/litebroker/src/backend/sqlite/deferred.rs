//! Leases, delays, receipts and dead letters inside a transaction.
//!
//! A leased or delayed message keeps its row (and so its FIFO position) in the
//! reference's `messages` table with `claimed = 2`, a state the reference
//! neither reads (it reads `claimed = 0`) nor vacuums (it deletes
//! `claimed = 1`). Everything else lives in `lb_message_ext`, keyed by the
//! row's storage position: headers, receive count, when it becomes visible
//! again, the current lease's nonce and the dead-letter record.

use rusqlite::{params, Connection, OptionalExtension};

use super::schema::{CONSUMED, DEFERRED, PENDING};
use super::spans;
use crate::error::Result;
use crate::headers::Headers;
use crate::lease::{random_nonce, DeadLetter, NackOutcome, QueueConfig, Receipt};
use crate::message::{Filter, Message};
use crate::policy::{self, LeaseEnd};
use crate::pubsub::Origin;

/// Whether any deferred message is due at `now` (one indexed probe).
pub fn has_due(conn: &Connection, now: i64) -> Result<bool> {
    let mut stmt =
        conn.prepare_cached("SELECT EXISTS(SELECT 1 FROM lb_message_ext WHERE visible_at <= ?1)")?;
    Ok(stmt.query_row([now], |r| r.get(0))?)
}

/// Makes every deferred message that is due at `now` visible again, in place,
/// except expired leases that reached their queue's maximum receives: those go
/// to the dead-letter queue. Returns how many messages changed.
pub fn promote_due(conn: &Connection, now: i64) -> Result<u64> {
    if !has_due(conn, now)? {
        return Ok(0);
    }
    let dead = dead_letter_expired(conn, now)?;
    let shown = conn
        .prepare_cached(
            "UPDATE messages SET claimed = 0 WHERE claimed = 2 AND id IN \
             (SELECT msg FROM lb_message_ext WHERE visible_at <= ?1)",
        )?
        .execute([now])?;
    conn.prepare_cached(
        "UPDATE lb_message_ext SET visible_at = NULL, receipt = NULL WHERE visible_at <= ?1",
    )?
    .execute([now])?;
    Ok(dead + shown as u64)
}

/// Dead-letters the expired leases that [`policy::on_expiry`] sends to a
/// dead-letter queue. Only leases in queues with settings are candidates.
fn dead_letter_expired(conn: &Connection, now: i64) -> Result<u64> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.msg, m.queue, e.receives, c.visibility_ns, c.max_receives, c.dead_letter \
         FROM lb_message_ext e JOIN messages m ON m.id = e.msg \
         JOIN lb_queue_config c ON c.queue = m.queue \
         WHERE e.visible_at <= ?1 AND e.receipt IS NOT NULL AND m.claimed = 2",
    )?;
    let rows: Vec<(i64, String, i64, QueueConfig)> = stmt
        .query_map([now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, config_from_columns(r, 3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut moved = 0;
    for (seq, queue, receives, config) in &rows {
        let receives = u32::try_from(*receives).unwrap_or(u32::MAX);
        if let Some(dead) = policy::on_expiry(receives, config) {
            dead_letter(conn, *seq, queue, &dead.queue, &dead.reason)?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Moves message `seq` to `dlq`, visible, recording where it came from and why.
fn dead_letter(conn: &Connection, seq: i64, source: &str, dlq: &str, reason: &str) -> Result<()> {
    conn.prepare_cached("UPDATE messages SET queue = ?1, claimed = 0 WHERE id = ?2")?
        .execute(params![dlq, seq])?;
    conn.prepare_cached(
        "UPDATE lb_message_ext SET visible_at = NULL, receipt = NULL, \
         dead_source = ?1, dead_reason = ?2 WHERE msg = ?3",
    )?
    .execute(params![source, reason, seq])?;
    Ok(())
}

/// Leases up to `limit` visible messages of `queue` until `until` (Unix ns):
/// each gets a new receipt and its receive count raised.
pub fn lease(
    conn: &Connection,
    queue: &str,
    filter: &Filter,
    limit: usize,
    until: i64,
) -> Result<Vec<Message>> {
    let mut taken = super::messages::take_plain(conn, queue, filter, limit, DEFERRED)?;
    let mut upsert = conn.prepare_cached(&format!(
        "INSERT INTO lb_message_ext (msg, receives, visible_at, receipt) VALUES (?1, 1, ?2, ?3) \
         ON CONFLICT(msg) DO UPDATE SET receives = receives + 1, visible_at = ?2, receipt = ?3 \
         RETURNING {EXT_COLUMNS}"
    ))?;
    for msg in &mut taken {
        let nonce = random_nonce();
        let seq = msg.seq;
        upsert.query_row(params![seq, until, nonce as i64], |r| fill_ext(msg, r))?;
        msg.receipt = Some(Receipt {
            id: msg.id,
            receives: msg.receives,
            nonce,
        });
    }
    spans::load_origins(conn, &mut taken)?;
    Ok(taken)
}

/// The extension columns every reader of `lb_message_ext` fills a message from, in [`fill_ext`]'s order.
const EXT_COLUMNS: &str = "headers, receives, dead_source, dead_reason, topic, topic_offset";

/// Sets headers, receive count, dead-letter record and origin of `msg` from a row of [`EXT_COLUMNS`].
fn fill_ext(msg: &mut Message, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
    let headers: Option<String> = r.get(0)?;
    msg.headers = headers
        .and_then(|h| Headers::from_json(&h).ok())
        .unwrap_or_default();
    msg.receives = u32::try_from(r.get::<_, i64>(1)?).unwrap_or(u32::MAX);
    msg.dead_letter = match (r.get(2)?, r.get(3)?) {
        (Some(source), Some(reason)) => Some(DeadLetter { source, reason }),
        _ => None,
    };
    msg.origin = match (r.get(4)?, r.get(5)?) {
        (Some(topic), Some(offset)) => Some(Origin { topic, offset }),
        _ => None,
    };
    Ok(())
}

/// The storage position and receive count of the message `receipt` leases
/// in `queue`, if the receipt passes [`policy::fence`].
fn find_lease(conn: &Connection, queue: &str, receipt: &Receipt) -> Result<(i64, u32)> {
    let row = conn
        .prepare_cached(
            "SELECT m.id, m.queue, m.claimed, e.receives, e.receipt FROM messages m \
             LEFT JOIN lb_message_ext e ON e.msg = m.id WHERE m.ts = ?1",
        )?
        .query_row([receipt.id], |r| {
            let claimed: i64 = r.get(2)?;
            let receives: Option<i64> = r.get(3)?;
            let nonce: Option<i64> = r.get(4)?;
            let facts = policy::LeaseFacts {
                queue: r.get(1)?,
                consumed: claimed == CONSUMED,
                deferred: claimed == DEFERRED,
                receives: receives.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                nonce: nonce.map(|n| n as u64),
            };
            Ok((r.get::<_, i64>(0)?, facts))
        })
        .optional()?;
    policy::fence(receipt, queue, row.as_ref().map(|(_, facts)| facts))?;
    let (seq, facts) = row.expect("fenced receipts name a row");
    Ok((seq, facts.receives.unwrap_or(0)))
}

/// Acknowledges one delivery: the message is consumed.
pub fn ack(conn: &Connection, queue: &str, receipt: &Receipt) -> Result<()> {
    let (seq, _) = find_lease(conn, queue, receipt)?;
    conn.prepare_cached("UPDATE messages SET claimed = 1 WHERE id = ?1")?
        .execute([seq])?;
    conn.prepare_cached("DELETE FROM lb_message_ext WHERE msg = ?1")?
        .execute([seq])?;
    Ok(())
}

/// Gives a delivery back: visible again now, or at `until` if given; or, if
/// it reached the queue's maximum receives, moved to the dead-letter queue.
pub fn nack(
    conn: &Connection,
    queue: &str,
    receipt: &Receipt,
    until: Option<i64>,
    config: &QueueConfig,
) -> Result<NackOutcome> {
    let (seq, receives) = find_lease(conn, queue, receipt)?;
    match policy::on_nack(receives, config, until) {
        LeaseEnd::DeadLetter(dead) => {
            dead_letter(conn, seq, queue, &dead.queue, &dead.reason)?;
            Ok(NackOutcome::DeadLettered(dead.queue))
        }
        LeaseEnd::Delay(at) => {
            conn.prepare_cached(
                "UPDATE lb_message_ext SET visible_at = ?1, receipt = NULL WHERE msg = ?2",
            )?
            .execute(params![at, seq])?;
            Ok(NackOutcome::Delayed(at))
        }
        LeaseEnd::Requeue => {
            make_visible(conn, seq, 0)?;
            Ok(NackOutcome::Requeued)
        }
    }
}

/// Moves the message `receipt` leases to `dlq` at once, recording `reason`.
pub fn dead_letter_lease(
    conn: &Connection,
    queue: &str,
    receipt: &Receipt,
    dlq: &str,
    reason: &str,
) -> Result<()> {
    let (seq, _) = find_lease(conn, queue, receipt)?;
    dead_letter(conn, seq, queue, dlq, reason)
}

/// Returns deliveries that never reached their consumer (output failed):
/// visible again in place, their receive not counted.
pub fn give_back(conn: &Connection, queue: &str, receipt: &Receipt) -> Result<()> {
    let (seq, _) = find_lease(conn, queue, receipt)?;
    make_visible(conn, seq, 1)
}

fn make_visible(conn: &Connection, seq: i64, uncount: i64) -> Result<()> {
    conn.prepare_cached("UPDATE messages SET claimed = ?1 WHERE id = ?2")?
        .execute(params![PENDING, seq])?;
    conn.prepare_cached(
        "UPDATE lb_message_ext SET visible_at = NULL, receipt = NULL, \
         receives = MAX(receives - ?1, 0) WHERE msg = ?2",
    )?
    .execute(params![uncount, seq])?;
    Ok(())
}

/// Moves a live lease's expiry to `until`.
pub fn extend(conn: &Connection, queue: &str, receipt: &Receipt, until: i64) -> Result<()> {
    let (seq, _) = find_lease(conn, queue, receipt)?;
    conn.prepare_cached("UPDATE lb_message_ext SET visible_at = ?1 WHERE msg = ?2")?
        .execute(params![until, seq])?;
    Ok(())
}

/// Records headers and/or a delay for the freshly inserted row `seq`.
pub fn attach_to_new(
    conn: &Connection,
    seq: i64,
    headers: Option<&Headers>,
    visible_at: Option<i64>,
) -> Result<()> {
    let json = headers.filter(|h| !h.is_empty()).map(Headers::to_json);
    if json.is_none() && visible_at.is_none() {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO lb_message_ext (msg, headers, visible_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![seq, json, visible_at])?;
    Ok(())
}

/// Fills in headers, receive counts and dead-letter records of `messages`
/// (no work at all when no message has any).
pub fn load_ext(conn: &Connection, messages: &mut [Message]) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    if !any_ext(conn)? {
        return spans::load_origins(conn, messages);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EXT_COLUMNS} FROM lb_message_ext WHERE msg = ?1"
    ))?;
    for msg in messages.iter_mut() {
        let seq = msg.seq;
        stmt.query_row([seq], |r| fill_ext(msg, r)).optional()?;
    }
    spans::load_origins(conn, messages)
}

fn any_ext(conn: &Connection) -> Result<bool> {
    let mut stmt = conn.prepare_cached("SELECT EXISTS(SELECT 1 FROM lb_message_ext)")?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

/// Moves the visible messages of `dlq` back: each to the queue it was
/// dead-lettered from, or all of them to `target` if given. Receive counts
/// and dead-letter records are reset. Returns how many moved.
pub fn redrive(conn: &Connection, dlq: &str, target: Option<&str>) -> Result<u64> {
    let moved: Vec<i64> = match target {
        Some(t) => conn
            .prepare_cached(
                "UPDATE messages SET queue = ?1 WHERE queue = ?2 AND claimed = 0 RETURNING id",
            )?
            .query_map(params![t, dlq], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        None => conn
            .prepare_cached(
                "UPDATE messages SET queue = e.dead_source FROM lb_message_ext e \
                 WHERE e.msg = messages.id AND messages.queue = ?1 AND messages.claimed = 0 \
                 AND e.dead_source IS NOT NULL RETURNING messages.id",
            )?
            .query_map([dlq], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    };
    let mut reset = conn.prepare_cached(
        "UPDATE lb_message_ext SET receives = 0, dead_source = NULL, dead_reason = NULL \
         WHERE msg = ?1",
    )?;
    for seq in &moved {
        reset.execute([seq])?;
    }
    Ok(moved.len() as u64)
}

/// The stored settings of `queue` (empty if none).
pub fn config(conn: &Connection, queue: &str) -> Result<QueueConfig> {
    let row = conn
        .prepare_cached(
            "SELECT visibility_ns, max_receives, dead_letter FROM lb_queue_config WHERE queue = ?1",
        )?
        .query_row([queue], |r| config_from_columns(r, 0))
        .optional()?;
    Ok(row.unwrap_or_default())
}

/// A queue's settings from `visibility_ns, max_receives, dead_letter` at column `first`.
fn config_from_columns(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<QueueConfig> {
    let visibility: Option<i64> = r.get(first)?;
    let max: Option<i64> = r.get(first + 1)?;
    Ok(QueueConfig {
        visibility: visibility.map(|ns| std::time::Duration::from_nanos(ns.max(0) as u64)),
        max_receives: max.and_then(|m| u32::try_from(m).ok()),
        dead_letter: r.get(first + 2)?,
    })
}

/// Stores `config` for `queue` (an empty config removes the record).
pub fn set_config(conn: &Connection, queue: &str, config: &QueueConfig) -> Result<()> {
    if config.is_empty() {
        conn.execute("DELETE FROM lb_queue_config WHERE queue = ?1", [queue])?;
        return Ok(());
    }
    let visibility = config
        .visibility
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    conn.execute(
        "INSERT OR REPLACE INTO lb_queue_config (queue, visibility_ns, max_receives, dead_letter) \
         VALUES (?1, ?2, ?3, ?4)",
        params![queue, visibility, config.max_receives, config.dead_letter],
    )?;
    Ok(())
}

/// Every configured queue with its settings, by name.
pub fn configs(conn: &Connection) -> Result<Vec<(String, QueueConfig)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT visibility_ns, max_receives, dead_letter, queue FROM lb_queue_config ORDER BY queue",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(3)?, config_from_columns(r, 0)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Per queue: messages leased now and messages waiting out a delay.
pub fn deferred_counts(conn: &Connection) -> Result<Vec<(String, u64, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.queue, SUM(e.receipt IS NOT NULL), SUM(e.receipt IS NULL) \
         FROM messages m JOIN lb_message_ext e ON e.msg = m.id \
         WHERE m.claimed = 2 GROUP BY m.queue ORDER BY m.queue",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// When the next deferred message of `queue` becomes visible (Unix ns).
pub fn next_visible_at(conn: &Connection, queue: &str) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(
        // CROSS JOIN keeps lb_message_ext outermost: walk its visibility index
        // in time order and stop at the first row of this queue, instead of
        // scanning every message of the queue.
        "SELECT e.visible_at FROM lb_message_ext e CROSS JOIN messages m ON m.id = e.msg \
         WHERE e.visible_at IS NOT NULL AND m.queue = ?1 AND m.claimed = 2 \
         ORDER BY e.visible_at LIMIT 1",
    )?;
    Ok(stmt.query_row([queue], |r| r.get(0)).optional()?)
}

/// Forgets extension rows of messages that are consumed or gone (vacuum).
pub fn forget_finished(conn: &Connection) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM lb_message_ext WHERE NOT EXISTS \
         (SELECT 1 FROM messages m WHERE m.id = msg AND m.claimed != 1)",
        [],
    )?;
    Ok(n as u64)
}
