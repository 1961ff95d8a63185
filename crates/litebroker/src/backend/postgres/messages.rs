//! Message rows inside a transaction: ids, write, take (read, hold, lease),
//! peek, move, dump and load.

use postgres::Row;

use super::conn::{Conn, Tx};
use super::schema::{CONSUMED, DEFERRED, HELD, PENDING};
use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::lease::DeadLetter;
use crate::message::{Filter, Message, Outgoing, QueuedMessage};
use crate::pubsub::Origin;

/// A message from a row of `seq, id, body, headers, receives, dead_source,
/// dead_reason, topic, topic_offset`.
pub fn message(row: &Row) -> Result<Message> {
    let body: Vec<u8> = row.get(2);
    let body = String::from_utf8(body)
        .map_err(|_| Error::Integrity("a stored message body is not valid UTF-8".into()))?;
    let headers: Option<String> = row.get(3);
    let receives: i32 = row.get(4);
    let dead_source: Option<String> = row.get(5);
    let dead_reason: Option<String> = row.get(6);
    let topic: Option<String> = row.get(7);
    let offset: Option<i64> = row.get(8);
    Ok(Message {
        seq: row.get(0),
        id: row.get(1),
        body,
        headers: headers
            .and_then(|h| Headers::from_json(&h).ok())
            .unwrap_or_default(),
        receives: u32::try_from(receives).unwrap_or(0),
        receipt: None,
        dead_letter: match (dead_source, dead_reason) {
            (Some(source), Some(reason)) => Some(DeadLetter { source, reason }),
            _ => None,
        },
        origin: match (topic, offset) {
            (Some(topic), Some(offset)) => Some(Origin { topic, offset }),
            _ => None,
        },
    })
}

/// Messages from rows, in storage order.
pub fn sorted(rows: Vec<Row>) -> Result<Vec<Message>> {
    let mut out = rows.iter().map(message).collect::<Result<Vec<_>>>()?;
    out.sort_unstable_by_key(|m| m.seq);
    Ok(out)
}

/// Reserves `count` consecutive ids after the high-water mark (at least the
/// database clock's current bucket) and returns the first. The `meta` row
/// stays locked until the transaction ends, so ids (and storage positions)
/// follow commit order across every connection and host.
pub fn reserve_ids(tx: &mut Tx<'_>, count: usize) -> Result<i64> {
    let n = count.max(1) as i64;
    let row = tx.one(
        "UPDATE meta SET value = GREATEST(value + 1, \
         ((EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000) & ~4095::bigint) \
         + $1 - 1 WHERE key = 'last_ts' RETURNING value",
        &[&n],
    )?;
    let last: i64 = row.get(0);
    Ok(last - n + 1)
}

/// The id high-water mark.
pub fn last_id(tx: &mut Tx<'_>) -> Result<i64> {
    Ok(tx
        .one("SELECT value FROM meta WHERE key = 'last_ts'", &[])?
        .get(0))
}

/// Raises the high-water mark to `value` if it is lower.
pub fn raise_last_id(tx: &mut Tx<'_>, value: i64) -> Result<()> {
    tx.execute(
        "UPDATE meta SET value = $1 WHERE key = 'last_ts' AND value < $1",
        &[&value],
    )?;
    Ok(())
}

/// A batch as the column arrays an `unnest` insert takes.
struct Columns<'a> {
    bodies: Vec<&'a [u8]>,
    headers: Vec<Option<String>>,
    visible: Vec<Option<i64>>,
    states: Vec<i16>,
}

impl<'a> Columns<'a> {
    /// `now` is the database's clock, for delays.
    fn of(batch: &[Outgoing<'a>], now: i64) -> Self {
        let visible: Vec<Option<i64>> = batch
            .iter()
            .map(|m| crate::clock::deadline(now, m.delay))
            .collect();
        Columns {
            bodies: batch.iter().map(|m| m.body.as_bytes()).collect(),
            headers: batch
                .iter()
                .map(|m| m.headers.filter(|h| !h.is_empty()).map(Headers::to_json))
                .collect(),
            states: visible
                .iter()
                .map(|v| if v.is_some() { DEFERRED } else { PENDING })
                .collect(),
            visible,
        }
    }
}

/// Appends `batch` to `queue` and returns the new ids: one statement in its
/// own transaction, which reserves the ids (the `meta` row, locked until it
/// commits), inserts the rows in order and notifies waiters. A batch without
/// headers or delays (the usual one) sends only its bodies.
///
/// Ids follow commit order because the `meta` row stays locked until the
/// commit; so does `NOTIFY`'s own lock. Waiting for the commit's flush to
/// disk while holding them would let only one writer of the whole database
/// flush at a time. So that statement commits without waiting for the
/// flush (`synchronous_commit` off for it alone), and a second transaction,
/// after the locks are gone, waits for the flush of everything up to its own
/// commit, this write's included: writers then share flushes as plain
/// inserts do, and a write still returns only once it is durable. (Between
/// the two, others may already see the rows, as they would see them on a
/// primary before a synchronous standby confirmed them; whoever consumes
/// one flushes it with its own commit. If the server crashes in between,
/// the write is lost and its writer gets an error, never an id.) A single
/// message splits its commit only when it had to wait for the lock. Where this
/// database user may not call `pg_logical_emit_message`, the statement
/// commits as usual instead, waiting for its flush under the locks.
pub fn write(conn: &mut Conn, queue: &str, batch: &[Outgoing<'_>], now: i64) -> Result<Vec<i64>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let n = batch.len() as i64;
    let channel = conn.channel.clone();
    let split = conn.can_wait_durable;
    let plain = batch
        .iter()
        .all(|m| m.delay.is_none() && m.headers.is_none_or(Headers::is_empty));
    // The INSERT runs to completion whether or not the outer query reads it;
    // without the `meta` row, nothing is inserted and no row comes back.
    let rows = if let ([one], true) = (batch, plain) {
        // One message: scalars, so the statement is planned once per
        // connection. It splits its commit only if it had to wait for the
        // id lock (another writer was there): alone, the second round trip
        // would cost more than the flush it lets others share.
        conn.autocommit(
            "WITH ids AS (UPDATE meta SET value = GREATEST(value + 1, \
             ((EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000) & ~4095::bigint) \
             WHERE key = 'last_ts' \
             RETURNING value AS first, clock_timestamp() - statement_timestamp() AS waited), \
             ins AS (INSERT INTO messages (id, queue, body) SELECT first, $2, $3 FROM ids) \
             SELECT first, pg_notify($1, '')::text, \
             CASE WHEN $4 AND waited > interval '100 microseconds' \
             THEN set_config('synchronous_commit', 'off', true) END FROM ids",
            &[&channel, &queue, &one.body.as_bytes(), &split],
        )?
    } else if plain {
        let bodies: Vec<&[u8]> = batch.iter().map(|m| m.body.as_bytes()).collect();
        conn.autocommit(
            "WITH ids AS (UPDATE meta SET value = GREATEST(value + 1, \
             ((EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000) & ~4095::bigint) \
             + $4::bigint - 1 WHERE key = 'last_ts' RETURNING value - $4::bigint + 1 AS first), \
             ins AS (INSERT INTO messages (id, queue, body) \
             SELECT ids.first + t.n - 1, $2, t.b FROM ids, \
             unnest($3::bytea[]) WITH ORDINALITY AS t(b, n) ORDER BY t.n) \
             SELECT first, pg_notify($1, '')::text, \
             CASE WHEN $5 THEN set_config('synchronous_commit', 'off', true) END FROM ids",
            &[&channel, &queue, &bodies, &n, &split],
        )?
    } else {
        let Columns {
            bodies,
            headers,
            visible,
            states,
        } = Columns::of(batch, now);
        conn.autocommit(
            "WITH ids AS (UPDATE meta SET value = GREATEST(value + 1, \
             ((EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000) & ~4095::bigint) \
             + $7::bigint - 1 WHERE key = 'last_ts' RETURNING value - $7::bigint + 1 AS first), \
             ins AS (INSERT INTO messages (id, queue, body, state, headers, visible_at) \
             SELECT ids.first + t.n - 1, $2, t.b, t.s, t.h, t.v FROM ids, \
             unnest($3::bytea[], $4::smallint[], $5::text[], $6::bigint[]) WITH ORDINALITY \
             AS t(b, s, h, v, n) ORDER BY t.n) \
             SELECT first, pg_notify($1, '')::text, \
             CASE WHEN $8 THEN set_config('synchronous_commit', 'off', true) END FROM ids",
            &[
                &channel, &queue, &bodies, &states, &headers, &visible, &n, &split,
            ],
        )?
    };
    let first: i64 = rows.first().map(|r| r.get(0)).ok_or_else(|| {
        Error::Integrity(format!(
            "wrote none of {n} messages: the id counter row is missing"
        ))
    })?;
    if rows[0].get::<_, Option<&str>>(2).is_some() {
        wait_durable(conn)?;
    }
    Ok((first..first + n).collect())
}

/// Returns once everything this session committed is on disk (as far as the
/// session's own `synchronous_commit` asks): a transaction that writes a
/// little WAL (a logical-decoding message, which no table keeps) and so
/// waits for the flush of the log up to its commit. A transaction that
/// writes no WAL would not wait, even with a transaction id.
fn wait_durable(conn: &mut Conn) -> Result<()> {
    conn.autocommit(WAIT_DURABLE, &[])?;
    Ok(())
}

/// The statement of [`wait_durable`].
pub const WAIT_DURABLE: &str = "SELECT pg_logical_emit_message(true, 'litebroker', '')::text";

/// Whether this session may run [`WAIT_DURABLE`].
pub const CAN_WAIT_DURABLE: &str = "SELECT has_function_privilege(\
     'pg_catalog.pg_logical_emit_message(boolean, text, text)', 'EXECUTE')";

/// Appends `batch` to `queue` inside a larger transaction (broadcast).
pub fn write_in(tx: &mut Tx<'_>, queue: &str, batch: &[Outgoing<'_>]) -> Result<Vec<i64>> {
    let first = reserve_ids(tx, batch.len())?;
    let ids: Vec<i64> = (first..first + batch.len() as i64).collect();
    let bodies: Vec<&[u8]> = batch.iter().map(|m| m.body.as_bytes()).collect();
    tx.execute(
        "INSERT INTO messages (id, queue, body) SELECT i, $2, b \
         FROM unnest($1::bigint[], $3::bytea[]) WITH ORDINALITY AS t(i, b, n) ORDER BY n",
        &[&ids, &queue, &bodies],
    )?;
    tx.changed();
    Ok(ids)
}

/// Moves up to `limit` pending messages of `queue` to `state` (consumed or
/// held by `holder`), skipping rows another transaction has locked, and
/// returns them in storage order.
pub fn take(
    tx: &mut Tx<'_>,
    queue: &str,
    filter: &Filter,
    limit: usize,
    state: i16,
    holder: Option<i64>,
) -> Result<Vec<Message>> {
    let limit = limit_i64(limit);
    if state == CONSUMED {
        let rows = tx.query(
            "WITH gone AS (DELETE FROM messages WHERE seq IN (SELECT seq FROM messages \
             WHERE state = 0 AND queue = $1 AND ($2::bigint IS NULL OR id = $2) \
             AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4) \
             ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) RETURNING seq, id, queue, body, \
             headers, receives, dead_source, dead_reason, topic, topic_offset), \
             kept AS (INSERT INTO consumed SELECT * FROM gone) \
             SELECT seq, id, body, headers, receives, dead_source, dead_reason, topic, \
             topic_offset FROM gone",
            &[&queue, &filter.id, &filter.after, &filter.before, &limit],
        )?;
        return sorted(rows);
    }
    let rows = tx.query(
        "UPDATE messages SET state = $6, holder = $7 WHERE seq IN (SELECT seq FROM messages \
         WHERE state = 0 AND queue = $1 AND ($2::bigint IS NULL OR id = $2) \
         AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4) \
         ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) \
         RETURNING seq, id, body, headers, receives, dead_source, dead_reason, topic, topic_offset",
        &[
            &queue,
            &filter.id,
            &filter.after,
            &filter.before,
            &limit,
            &state,
            &holder,
        ],
    )?;
    debug_assert!(state == CONSUMED || state == HELD);
    sorted(rows)
}

/// [`take`] into consumed, as one autocommit statement (one round trip),
/// when there is nothing to do first: no deferred message is due at the
/// database's (or the given) clock and no other holder exists. `None` when
/// there is, and the caller takes the long way (a transaction that first
/// returns dead holders' messages and makes due ones visible).
///
/// Whether anything is due is `min(visible_at) <= now`: one entry of the
/// `messages_deferred` index. (`EXISTS(... WHERE visible_at <= now)`, with
/// `now` unknown when the statement is planned, was planned as a scan of
/// the whole table: most of a take's time on a long queue.)
///
/// One message without a filter (the usual read) is selected by
/// `queue >= $1 AND queue <= $1 ... ORDER BY queue, seq LIMIT 1`, which
/// means `queue = $1 ... ORDER BY seq LIMIT 1` (a database's collation is
/// deterministic) but whose plan is good whatever `$1` is: only the
/// `messages_pending (queue, seq)` index gives that order. PostgreSQL then
/// keeps one generic plan per connection instead of planning each call
/// (planning cost more than running), and that plan never walks the primary
/// key through other queues' rows, as a generic plan of `queue = $1 ORDER BY
/// seq` does. Statements with a `LIMIT $n` are planned each call anyway.
pub fn read_quick(
    conn: &mut Conn,
    queue: &str,
    filter: &Filter,
    limit: usize,
    fixed_now: Option<i64>,
    me: Option<i64>,
) -> Result<Option<Vec<Message>>> {
    let rows = if limit == 1 && *filter == Filter::all() {
        // The usual read: one message, by a statement planned once per
        // connection (see the function's notes).
        conn.autocommit(
            "WITH c AS MATERIALIZED (SELECT \
             COALESCE((SELECT min(visible_at) FROM messages) <= t.n, false) \
             OR EXISTS(SELECT 1 FROM holders WHERE token <> COALESCE($3::bigint, -1)) AS busy \
             FROM (SELECT COALESCE($2::bigint, \
             (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000) AS n) t), \
             taken AS (DELETE FROM messages WHERE seq = (SELECT seq FROM messages \
             WHERE state = 0 AND queue >= $1 AND queue <= $1 \
             ORDER BY queue, seq LIMIT 1 FOR UPDATE SKIP LOCKED) AND NOT (SELECT busy FROM c) \
             RETURNING seq, id, queue, body, headers, receives, dead_source, dead_reason, topic, \
             topic_offset), \
             kept AS (INSERT INTO consumed SELECT * FROM taken) \
             SELECT t.seq, t.id, t.body, t.headers, t.receives, t.dead_source, t.dead_reason, \
             t.topic, t.topic_offset, c.busy FROM c LEFT JOIN taken t ON true",
            &[&queue, &fixed_now, &me],
        )?
    } else {
        read_quick_rows(conn, queue, filter, limit, fixed_now, me)?
    };
    if rows.first().is_some_and(|r| r.get::<_, bool>(9)) {
        return Ok(None);
    }
    let taken: Vec<Row> = rows
        .into_iter()
        .filter(|r| r.get::<_, Option<i64>>(0).is_some())
        .collect();
    sorted(taken).map(Some)
}

/// The rows of [`read_quick`] for any filter and limit.
fn read_quick_rows(
    conn: &mut Conn,
    queue: &str,
    filter: &Filter,
    limit: usize,
    fixed_now: Option<i64>,
    me: Option<i64>,
) -> Result<Vec<Row>> {
    conn.autocommit(
        "WITH c AS MATERIALIZED (SELECT \
         COALESCE((SELECT min(visible_at) FROM messages) <= t.n, false) \
         OR EXISTS(SELECT 1 FROM holders WHERE token <> COALESCE($7::bigint, -1)) AS busy \
         FROM (SELECT COALESCE($6::bigint, \
         (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000) AS n) t), \
         taken AS (DELETE FROM messages WHERE seq IN (SELECT seq FROM messages \
         WHERE state = 0 AND queue = $1 AND ($2::bigint IS NULL OR id = $2) \
         AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4) \
         ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) AND NOT (SELECT busy FROM c) \
         RETURNING seq, id, queue, body, headers, receives, dead_source, dead_reason, topic, \
         topic_offset), \
         kept AS (INSERT INTO consumed SELECT * FROM taken) \
         SELECT t.seq, t.id, t.body, t.headers, t.receives, t.dead_source, t.dead_reason, \
         t.topic, t.topic_offset, c.busy FROM c LEFT JOIN taken t ON true",
        &[
            &queue,
            &filter.id,
            &filter.after,
            &filter.before,
            &limit_i64(limit),
            &fixed_now,
            &me,
        ],
    )
}

/// Whether `queue` has a pending message the filter selects.
pub fn any_visible(tx: &mut Tx<'_>, queue: &str, filter: &Filter) -> Result<bool> {
    Ok(tx
        .one(
            "SELECT EXISTS(SELECT 1 FROM messages WHERE state = 0 AND queue = $1 \
             AND ($2::bigint IS NULL OR id = $2) AND ($3::bigint IS NULL OR id > $3) \
             AND ($4::bigint IS NULL OR id < $4))",
            &[&queue, &filter.id, &filter.after, &filter.before],
        )?
        .get(0))
}

/// Pending messages after storage position `after_seq`, not consumed.
pub fn peek(
    tx: &mut Tx<'_>,
    queue: &str,
    filter: &Filter,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<Message>> {
    let rows = tx.query(
        "SELECT seq, id, body, headers, receives, dead_source, dead_reason, topic, topic_offset \
         FROM messages WHERE state = 0 AND queue = $1 AND ($2::bigint IS NULL OR id = $2) \
         AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4) \
         AND seq > $5 ORDER BY seq LIMIT $6",
        &[
            &queue,
            &filter.id,
            &filter.after,
            &filter.before,
            &after_seq,
            &limit_i64(limit),
        ],
    )?;
    sorted(rows)
}

/// Moves up to `limit` messages from `src` to `dst` (pending ones, or
/// consumed ones too), keeping ids and positions.
pub fn move_to(
    tx: &mut Tx<'_>,
    src: &str,
    dst: &str,
    filter: &Filter,
    limit: usize,
    include_consumed: bool,
) -> Result<Vec<Message>> {
    if include_consumed {
        // Consumed messages the filter selects come back first, in place.
        tx.execute(
            "WITH back AS (DELETE FROM consumed WHERE id IN (SELECT id FROM consumed \
             WHERE queue = $1 AND ($2::bigint IS NULL OR id = $2) \
             AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4) \
             ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) RETURNING *) \
             INSERT INTO messages (seq, id, queue, body, headers, receives, dead_source, \
             dead_reason, topic, topic_offset) SELECT * FROM back",
            &[
                &src,
                &filter.id,
                &filter.after,
                &filter.before,
                &limit_i64(limit),
            ],
        )?;
    }
    let max_state = PENDING;
    let rows = tx.query(
        "UPDATE messages SET queue = $7, state = 0 WHERE seq IN (SELECT seq FROM messages \
         WHERE state <= $6 AND queue = $1 AND ($2::bigint IS NULL OR id = $2) \
         AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4) \
         ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) \
         RETURNING seq, id, body, headers, receives, dead_source, dead_reason, topic, topic_offset",
        &[
            &src,
            &filter.id,
            &filter.after,
            &filter.before,
            &limit_i64(limit),
            &max_state,
            &dst,
        ],
    )?;
    if !rows.is_empty() {
        tx.changed();
    }
    sorted(rows)
}

/// Inserts messages with their own ids (a dump being loaded).
pub fn insert_with_ids(
    tx: &mut Tx<'_>,
    records: &mut dyn Iterator<Item = Result<QueuedMessage>>,
) -> Result<u64> {
    let (mut count, mut max_id) = (0u64, 0i64);
    for record in records {
        let record = record?;
        let id = record.message.id;
        let taken: bool = tx
            .one(
                "SELECT EXISTS(SELECT 1 FROM messages WHERE id = $1) \
                 OR EXISTS(SELECT 1 FROM consumed WHERE id = $1)",
                &[&id],
            )?
            .get(0);
        if taken {
            return Err(Error::BadRecord {
                line: count as usize + 1,
                reason: format!("message id {id} already exists in the database"),
            });
        }
        let headers = Some(&record.message.headers)
            .filter(|h| !h.is_empty())
            .map(Headers::to_json);
        tx.execute(
            "INSERT INTO messages (id, queue, body, headers) VALUES ($1, $2, $3, $4)",
            &[
                &id,
                &record.queue,
                &record.message.body.as_bytes(),
                &headers,
            ],
        )?;
        max_id = max_id.max(id);
        count += 1;
    }
    raise_last_id(tx, max_id)?;
    tx.changed();
    Ok(count)
}

/// A page of stored, unconsumed messages after `after_seq` (all queues or
/// the given ones), for dump.
pub fn dump_page(
    tx: &mut Tx<'_>,
    queues: &[String],
    after_seq: i64,
    limit: usize,
) -> Result<Vec<QueuedMessage>> {
    let all = queues.is_empty();
    let rows = tx.query(
        "SELECT seq, id, body, headers, receives, dead_source, dead_reason, topic, topic_offset, \
         queue FROM messages WHERE state <> 1 AND seq > $1 AND ($2 OR queue = ANY($3)) \
         ORDER BY seq LIMIT $4",
        &[&after_seq, &all, &queues, &limit_i64(limit)],
    )?;
    rows.iter()
        .map(|r| {
            Ok(QueuedMessage {
                queue: r.get(9),
                message: message(r)?,
            })
        })
        .collect()
}

/// A `LIMIT` from a count.
pub fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// [`write_in`] unless `key` wrote to `queue` and its record has not expired
/// at `now`; records the key until `expires`. The ids and whether it was a repeat.
pub fn write_once(
    tx: &mut Tx<'_>,
    queue: &str,
    key: &str,
    batch: &[Outgoing<'_>],
    now: i64,
    expires: i64,
) -> Result<(Vec<i64>, bool)> {
    tx.execute("DELETE FROM idempotency WHERE expires_ns <= $1", &[&now])?;
    // Two writers with one key: the second waits on the first's row.
    let earlier = tx.opt(
        "SELECT ids FROM idempotency WHERE queue = $1 AND key = $2 FOR UPDATE",
        &[&queue, &key],
    )?;
    if let Some(row) = earlier {
        return Ok((row.get(0), true));
    }
    let ids = write_rows(tx, queue, batch, now)?;
    tx.execute(
        "INSERT INTO idempotency (queue, key, ids, expires_ns) VALUES ($1, $2, $3, $4)",
        &[&queue, &key, &ids, &expires],
    )?;
    Ok((ids, false))
}

/// Appends `batch` (headers and delays included) inside a transaction.
fn write_rows(tx: &mut Tx<'_>, queue: &str, batch: &[Outgoing<'_>], now: i64) -> Result<Vec<i64>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let first = reserve_ids(tx, batch.len())?;
    let ids: Vec<i64> = (first..first + batch.len() as i64).collect();
    let Columns {
        bodies,
        headers,
        visible,
        states,
    } = Columns::of(batch, now);
    tx.execute(
        "INSERT INTO messages (id, queue, body, state, headers, visible_at) \
         SELECT i, $2, b, s, h, v FROM unnest($1::bigint[], $3::bytea[], $4::smallint[], \
         $5::text[], $6::bigint[]) WITH ORDINALITY AS t(i, b, s, h, v, n) ORDER BY n",
        &[&ids, &queue, &bodies, &states, &headers, &visible],
    )?;
    tx.changed();
    Ok(ids)
}

/// Visible, leased and delayed messages after `after_seq`, oldest first,
/// with when a leased or delayed one becomes visible again.
pub fn browse(
    tx: &mut Tx<'_>,
    queue: &str,
    from: crate::backend::BrowseFrom,
    limit: usize,
) -> Result<Vec<crate::backend::Browsed>> {
    let (sql, at) = match from {
        crate::backend::BrowseFrom::After(seq) => (
            "SELECT seq, id, body, headers, receives, dead_source, dead_reason, topic, \
             topic_offset, CASE WHEN state = 2 THEN visible_at END FROM messages \
             WHERE queue = $1 AND state IN (0, 2) AND seq > $2 ORDER BY seq LIMIT $3",
            seq,
        ),
        crate::backend::BrowseFrom::Before(seq) => (
            "SELECT seq, id, body, headers, receives, dead_source, dead_reason, topic, \
             topic_offset, CASE WHEN state = 2 THEN visible_at END FROM messages \
             WHERE queue = $1 AND state IN (0, 2) AND seq < $2 ORDER BY seq DESC LIMIT $3",
            seq,
        ),
    };
    let rows = tx.query(sql, &[&queue, &at, &limit_i64(limit)])?;
    rows.iter()
        .map(|r| {
            Ok(crate::backend::Browsed {
                message: message(r)?,
                visible_at: r.get(9),
            })
        })
        .collect()
}

/// Replaces body and headers of message `id` of `queue` (visible, leased or
/// delayed) in place; false if there is none.
pub fn replace(
    tx: &mut Tx<'_>,
    queue: &str,
    id: i64,
    body: &str,
    headers: &Headers,
) -> Result<bool> {
    let json = (!headers.is_empty()).then(|| headers.to_json());
    let n = tx.execute(
        "UPDATE messages SET body = $1, headers = $2 WHERE queue = $3 AND id = $4 \
         AND state IN (0, 2)",
        &[&body.as_bytes(), &json, &queue, &id],
    )?;
    Ok(n > 0)
}
