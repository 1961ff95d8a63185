//! Message operations inside a transaction: write, claim, hold, settle, peek,
//! move, dump and load. Each function expects to run inside a transaction the
//! caller opened, so that it can be composed and retried as a whole.

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::deferred;
use super::schema::{CONSUMED, DEFERRED, PENDING};
use super::select::{Selection, States};
use crate::backend::SeqRange;
use crate::error::{Error, Result};
use crate::id;
use crate::message::{Filter, Message, Outgoing, QueuedMessage};

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message::new(
        row.get(1)?,
        row.get::<_, String>(2)?,
        row.get(0)?,
    ))
}

/// The stored id high-water mark.
pub fn last_id(conn: &Connection) -> Result<i64> {
    let mut stmt = conn.prepare_cached("SELECT value FROM meta WHERE key = 'last_ts'")?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

/// Raises the high-water mark to `value` (never lowers it).
pub fn raise_last_id(conn: &Connection, value: i64) -> Result<()> {
    let mut stmt =
        conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_ts' AND value < ?1")?;
    stmt.execute([value])?;
    Ok(())
}

/// Inserts `messages` into `queue` with fresh ids; the caller holds the write
/// lock, so reading and advancing `meta.last_ts` here is atomic for every
/// process. A delayed message is stored deferred (invisible) until its time.
pub fn write(
    conn: &Connection,
    queue: &str,
    messages: &[Outgoing<'_>],
    now: i64,
) -> Result<Vec<i64>> {
    if let Some(bodies) = plain_bodies(messages) {
        return write_plain(conn, queue, &bodies, messages.len());
    }
    let mut last = last_id(conn)?;
    let mut ids = Vec::with_capacity(messages.len());
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages (queue, body, ts, claimed) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for msg in messages {
        last = id::next_id_now(last);
        let visible_at = crate::clock::deadline(now, msg.delay);
        let state = if visible_at.is_some() {
            DEFERRED
        } else {
            PENDING
        };
        insert.execute(params![queue, msg.body, last, state])?;
        if msg.headers.is_some() || visible_at.is_some() {
            deferred::attach_to_new(conn, conn.last_insert_rowid(), msg.headers, visible_at)?;
        }
        ids.push(last);
    }
    raise_last_id(conn, last)?;
    Ok(ids)
}

/// The largest batch (total body bytes) written as one JSON array; larger
/// ones go row by row, far from SQLite's 1 GB limit on one value.
const PLAIN_BATCH_BYTES: usize = 64 << 20;

/// The bodies of `batch` as one JSON array of strings, when the batch can be
/// inserted set-based: more than one message, none with headers or a delay,
/// no NUL character (which the JSON round trip would not keep), at most
/// [`PLAIN_BATCH_BYTES`] in all. Row-by-row inserts cost a statement per
/// message; one `INSERT … SELECT … FROM json_each(?)` costs one per batch.
pub fn plain_bodies(batch: &[Outgoing<'_>]) -> Option<String> {
    let plain = |m: &Outgoing<'_>| {
        m.headers.is_none_or(|h| h.is_empty()) && m.delay.is_none() && !m.body.contains('\0')
    };
    let bytes: usize = batch.iter().map(|m| m.body.len()).sum();
    if batch.len() < 2 || bytes > PLAIN_BATCH_BYTES || !batch.iter().all(plain) {
        return None;
    }
    let bodies: Vec<&str> = batch.iter().map(|m| m.body).collect();
    serde_json::to_string(&bodies).ok()
}

/// [`write`] for `count` plain messages whose bodies are the JSON array
/// `bodies` (see [`plain_bodies`]): one statement, consecutive ids, ahead of
/// the clock by one nanosecond per message, so it waits for the clock to pass
/// the last one, as replay does.
fn write_plain(conn: &Connection, queue: &str, bodies: &str, count: usize) -> Result<Vec<i64>> {
    let base = id::next_id_now(last_id(conn)?);
    // OR FAIL: no statement journal; an error rolls the whole transaction back.
    conn.prepare_cached(
        "INSERT OR FAIL INTO messages (queue, body, ts) \
         SELECT ?1, value, ?2 + key FROM json_each(?3) ORDER BY key",
    )?
    .execute(params![queue, base, bodies])?;
    let last = base + count as i64 - 1;
    raise_last_id(conn, last)?;
    id::wait_until_past(last);
    Ok((base..=last).collect())
}

/// Brings `meta.last_ts` up to the largest stored id (repairs a lagging mark
/// after a unique-id conflict, as the reference does).
pub fn repair_last_id(conn: &Connection) -> Result<()> {
    let max: Option<i64> = conn.query_row("SELECT MAX(ts) FROM messages", [], |r| r.get(0))?;
    if let Some(max) = max {
        raise_last_id(conn, max)?;
    }
    Ok(())
}

/// Sets `claimed = new_state` on up to `limit` selected messages and returns
/// them, oldest first, with their headers and receive counts.
pub fn take(
    conn: &Connection,
    queue: &str,
    filter: &Filter,
    limit: usize,
    new_state: i64,
) -> Result<Vec<Message>> {
    let mut taken = take_plain(conn, queue, filter, limit, new_state)?;
    deferred::load_ext(conn, &mut taken)?;
    Ok(taken)
}

/// [`take`] without looking up extension data (the caller fills it in).
pub fn take_plain(
    conn: &Connection,
    queue: &str,
    filter: &Filter,
    limit: usize,
    new_state: i64,
) -> Result<Vec<Message>> {
    let sel = Selection::new(queue, filter, States::Pending);
    let sql = format!(
        "UPDATE messages SET claimed = {new_state} WHERE id IN \
         (SELECT id FROM messages WHERE {} ORDER BY id LIMIT ?) RETURNING id, ts, body",
        sel.clause
    );
    let taken = collect_sorted(conn, &sql, sel.with(limit_i64(limit)))?;
    if taken.len() < limit && any_visible(conn, queue, filter)? {
        return Err(index_disagrees());
    }
    Ok(taken)
}

/// A short batch means every selected message was taken; one still visible
/// then means the index listed a row the table did not give back. SQLite
/// skips such a row silently (the rowid lookup of `id IN (...)` just finds
/// nothing on a damaged page), so without this check `read --all` would end
/// with exit 0 and messages missing.
fn index_disagrees() -> Error {
    Error::storage(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        Some("database disk image is malformed: the messages index lists rows the table does not return".into()),
    ))
}

/// Whether any message of `queue` passing `filter` is visible.
pub fn any_visible(conn: &Connection, queue: &str, filter: &Filter) -> Result<bool> {
    let sel = Selection::new(queue, filter, States::Pending);
    let sql = format!("SELECT EXISTS(SELECT 1 FROM messages WHERE {})", sel.clause);
    let mut stmt = conn.prepare_cached(&sql)?;
    Ok(stmt.query_row(params_from_iter(sel.params), |r| r.get(0))?)
}

/// Ends custody of the messages of holder `token` within the given ranges;
/// returns how many rows changed.
pub fn settle(
    conn: &Connection,
    token: i64,
    consumed: Option<&SeqRange>,
    released: Option<&SeqRange>,
) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET claimed = ?1 WHERE id BETWEEN ?2 AND ?3 AND claimed = ?4",
    )?;
    let mut changed = 0;
    for (state, range) in [(CONSUMED, consumed), (PENDING, released)] {
        if let Some(r) = range {
            changed += stmt.execute(params![state, r.start(), r.end(), -token])?;
        }
    }
    Ok(changed)
}

/// Visible messages after storage position `after_seq`, oldest first.
pub fn peek(
    conn: &Connection,
    queue: &str,
    filter: &Filter,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<Message>> {
    let sel = Selection::new(queue, filter, States::Pending);
    let sql = format!(
        "SELECT id, ts, body FROM messages WHERE {} AND id > ? ORDER BY id LIMIT ?",
        sel.clause
    );
    let mut params = sel.with(after_seq);
    params.push(limit_i64(limit).into());
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), message_from_row)?;
    let mut page: Vec<Message> = rows.collect::<rusqlite::Result<_>>()?;
    deferred::load_ext(conn, &mut page)?;
    Ok(page)
}

/// [`write`] unless `key` wrote to `queue` before `now` and its record has
/// not expired; records the key until `expires`. Answers the ids and
/// whether the write was a repeat.
pub fn write_once(
    conn: &Connection,
    queue: &str,
    key: &str,
    batch: &[Outgoing<'_>],
    now: i64,
    expires: i64,
) -> Result<(Vec<i64>, bool)> {
    conn.prepare_cached("DELETE FROM lb_idempotency WHERE expires_ns <= ?1")?
        .execute([now])?;
    let earlier: Option<String> = conn
        .prepare_cached("SELECT ids FROM lb_idempotency WHERE queue = ?1 AND key = ?2")?
        .query_row([queue, key], |r| r.get(0))
        .optional()?;
    if let Some(ids) = earlier {
        let ids: Vec<i64> = serde_json::from_str(&ids)
            .map_err(|e| Error::Integrity(format!("idempotency record of '{key}': {e}")))?;
        return Ok((ids, true));
    }
    let ids = write(conn, queue, batch, now)?;
    let text = serde_json::to_string(&ids).expect("ids serialize");
    conn.prepare_cached(
        "INSERT INTO lb_idempotency (queue, key, ids, expires_ns) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![queue, key, text, expires])?;
    Ok((ids, false))
}

/// Visible, leased and delayed messages after storage position `after_seq`,
/// oldest first, each with when it becomes visible again if it is not now.
pub fn browse(
    conn: &Connection,
    queue: &str,
    from: crate::backend::BrowseFrom,
    limit: usize,
) -> Result<Vec<crate::backend::Browsed>> {
    let (sql, at) = match from {
        crate::backend::BrowseFrom::After(seq) => (
            "SELECT m.id, m.ts, m.body, CASE WHEN m.claimed = 2 THEN e.visible_at END \
             FROM messages m LEFT JOIN lb_message_ext e ON e.msg = m.id \
             WHERE m.queue = ?1 AND m.claimed IN (0, 2) AND m.id > ?2 ORDER BY m.id LIMIT ?3",
            seq,
        ),
        crate::backend::BrowseFrom::Before(seq) => (
            "SELECT m.id, m.ts, m.body, CASE WHEN m.claimed = 2 THEN e.visible_at END \
             FROM messages m LEFT JOIN lb_message_ext e ON e.msg = m.id \
             WHERE m.queue = ?1 AND m.claimed IN (0, 2) AND m.id < ?2 ORDER BY m.id DESC LIMIT ?3",
            seq,
        ),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut visible_at = Vec::new();
    let rows = stmt.query_map(params![queue, at, limit_i64(limit)], |row| {
        Ok((message_from_row(row)?, row.get::<_, Option<i64>>(3)?))
    })?;
    let mut page = Vec::new();
    for row in rows {
        let (msg, at) = row?;
        page.push(msg);
        visible_at.push(at);
    }
    deferred::load_ext(conn, &mut page)?;
    Ok(page
        .into_iter()
        .zip(visible_at)
        .map(|(mut message, visible_at)| {
            message.receipt = None;
            crate::backend::Browsed {
                message,
                visible_at,
            }
        })
        .collect())
}

/// Replaces body and headers of message `id` of `queue` (visible, leased or
/// delayed) in place; false if there is none.
pub fn replace(
    conn: &Connection,
    queue: &str,
    id: i64,
    body: &str,
    headers: &crate::headers::Headers,
) -> Result<bool> {
    let seq: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM messages WHERE queue = ?1 AND ts = ?2 AND claimed IN (0, 2)",
        )?
        .query_row(params![queue, id], |r| r.get(0))
        .optional()?;
    let Some(seq) = seq else {
        return Ok(false);
    };
    conn.prepare_cached("UPDATE messages SET body = ?1 WHERE id = ?2")?
        .execute(params![body, seq])?;
    let json = (!headers.is_empty()).then(|| headers.to_json());
    conn.prepare_cached(
        "INSERT INTO lb_message_ext (msg, headers) VALUES (?1, ?2) \
         ON CONFLICT(msg) DO UPDATE SET headers = excluded.headers",
    )?
    .execute(params![seq, json])?;
    Ok(true)
}

/// Moves up to `limit` selected messages to `dst`, visible, ids and positions kept.
pub fn move_to(
    conn: &Connection,
    src: &str,
    dst: &str,
    filter: &Filter,
    limit: usize,
    states: States,
) -> Result<Vec<Message>> {
    let sel = Selection::new(src, filter, states);
    let sql = format!(
        "UPDATE messages SET queue = ?, claimed = 0 WHERE id IN \
         (SELECT id FROM messages WHERE {} ORDER BY id LIMIT ?) RETURNING id, ts, body",
        sel.clause
    );
    let mut params = vec![rusqlite::types::Value::Text(dst.to_owned())];
    params.extend(sel.with(limit_i64(limit)));
    let mut moved = collect_sorted(conn, &sql, params)?;
    deferred::load_ext(conn, &mut moved)?;
    Ok(moved)
}

fn collect_sorted(
    conn: &Connection,
    sql: &str,
    params: Vec<rusqlite::types::Value>,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params_from_iter(params), message_from_row)?;
    let mut out: Vec<Message> = rows.collect::<rusqlite::Result<_>>()?;
    out.sort_unstable_by_key(|m| m.seq);
    Ok(out)
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Inserts records keeping their ids, in order; fails on the first bad one.
pub fn insert_with_ids(
    conn: &Connection,
    records: &mut dyn Iterator<Item = Result<QueuedMessage>>,
) -> Result<u64> {
    let mut insert =
        conn.prepare_cached("INSERT INTO messages (queue, body, ts) VALUES (?1, ?2, ?3)")?;
    let mut exists = conn.prepare_cached("SELECT EXISTS(SELECT 1 FROM messages WHERE ts = ?1)")?;
    let (mut count, mut max_id) = (0u64, 0i64);
    for record in records {
        let record = record?;
        let id = record.message.id;
        if exists.query_row([id], |r| r.get::<_, bool>(0))? {
            return Err(Error::BadRecord {
                line: count as usize + 1,
                reason: format!("message id {id} already exists in the database"),
            });
        }
        insert.execute(params![record.queue, record.message.body, id])?;
        if !record.message.headers.is_empty() {
            let headers = Some(&record.message.headers);
            deferred::attach_to_new(conn, conn.last_insert_rowid(), headers, None)?;
        }
        max_id = max_id.max(id);
        count += 1;
    }
    raise_last_id(conn, max_id)?;
    Ok(count)
}

/// Unconsumed messages (visible or held) of `queues` (all if empty) in storage
/// order, streamed page by page so memory stays bounded.
pub fn dump_page(
    conn: &Connection,
    queues: &[String],
    after_seq: i64,
    limit: usize,
) -> Result<Vec<QueuedMessage>> {
    let in_list = vec!["?"; queues.len()].join(",");
    let queue_clause = if queues.is_empty() {
        String::new()
    } else {
        format!("AND queue IN ({in_list})")
    };
    let sql = format!(
        "SELECT id, ts, body, queue FROM messages WHERE claimed != 1 AND id > ? {queue_clause} \
         ORDER BY id LIMIT ?"
    );
    let mut params: Vec<rusqlite::types::Value> = vec![after_seq.into()];
    params.extend(queues.iter().map(|q| q.clone().into()));
    params.push(limit_i64(limit).into());
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), |row| {
        Ok(QueuedMessage {
            message: message_from_row(row)?,
            queue: row.get(3)?,
        })
    })?;
    let page: Vec<QueuedMessage> = rows.collect::<rusqlite::Result<_>>()?;
    let (queues, mut messages): (Vec<String>, Vec<Message>) =
        page.into_iter().map(|q| (q.queue, q.message)).unzip();
    deferred::load_ext(conn, &mut messages)?;
    Ok(queues
        .into_iter()
        .zip(messages)
        .map(|(queue, message)| QueuedMessage { queue, message })
        .collect())
}
