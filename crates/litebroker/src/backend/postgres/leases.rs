//! Leases, delays, receipts and dead letters inside a transaction. The
//! decisions (dead-letter or not, and why; which receipt may act) come from
//! [`crate::policy`]; this module only stores them.

use postgres::Row;

use super::conn::{Conn, Tx};
use super::messages::{self, limit_i64};
use crate::error::Result;
use crate::lease::{NackOutcome, QueueConfig, Receipt};
use crate::message::{Filter, Message};
use crate::policy::{self, LeaseEnd};

/// Makes every deferred message due at `now` visible again, except expired
/// leases that [`policy::on_expiry`] sends to a dead-letter queue.
pub fn promote_due(tx: &mut Tx<'_>, now: i64) -> Result<u64> {
    let expired = tx.query(
        "SELECT m.seq, m.queue, m.receives, c.visibility_ns, c.max_receives, c.dead_letter \
         FROM messages m JOIN queue_config c ON c.queue = m.queue \
         WHERE m.visible_at <= $1 AND m.nonce IS NOT NULL AND m.state = 2 \
         FOR UPDATE OF m SKIP LOCKED",
        &[&now],
    )?;
    let mut changed = 0;
    for row in &expired {
        let (seq, queue): (i64, String) = (row.get(0), row.get(1));
        let receives = u32::try_from(row.get::<_, i32>(2)).unwrap_or(0);
        if let Some(dead) = policy::on_expiry(receives, &config_from(row, 3)) {
            dead_letter(tx, seq, &queue, &dead.queue, &dead.reason)?;
            changed += 1;
        }
    }
    changed += tx.execute(
        "UPDATE messages SET state = 0, visible_at = NULL, nonce = NULL \
         WHERE visible_at <= $1 AND state = 2",
        &[&now],
    )?;
    if changed > 0 {
        tx.changed();
    }
    Ok(changed)
}

fn dead_letter(tx: &mut Tx<'_>, seq: i64, source: &str, dlq: &str, reason: &str) -> Result<()> {
    tx.execute(
        "UPDATE messages SET queue = $1, state = 0, visible_at = NULL, nonce = NULL, \
         dead_source = $2, dead_reason = $3 WHERE seq = $4",
        &[&dlq, &source, &reason, &seq],
    )?;
    tx.changed();
    Ok(())
}

/// Leases up to `limit` pending messages until `until`: each gets a new
/// receipt nonce and one more receive.
pub fn lease(
    tx: &mut Tx<'_>,
    queue: &str,
    filter: &Filter,
    limit: usize,
    until: i64,
) -> Result<Vec<Message>> {
    let rows = tx.query(
        "UPDATE messages SET state = 2, receives = receives + 1, visible_at = $6, \
         nonce = ('x' || substr(md5(gen_random_uuid()::text), 1, 16))::bit(64)::bigint \
         WHERE seq IN (SELECT seq FROM messages \
         WHERE state = 0 AND queue = $1 AND ($2::bigint IS NULL OR id = $2) \
         AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4) \
         ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) \
         RETURNING seq, id, body, headers, receives, dead_source, dead_reason, topic, \
         topic_offset, nonce",
        &[
            &queue,
            &filter.id,
            &filter.after,
            &filter.before,
            &limit_i64(limit),
            &until,
        ],
    )?;
    let mut out = rows.iter().map(with_receipt).collect::<Result<Vec<_>>>()?;
    out.sort_unstable_by_key(|m| m.seq);
    Ok(out)
}

/// [`lease`] for an explicit `visibility`, as one autocommit statement (one
/// round trip) when there is nothing to do first (as
/// [`super::messages::read_quick`]); `None` sends the caller the long way.
/// The deadline is the database's now plus `visibility`, saturating, as
/// [`policy::lease_deadline`] computes it for an explicit visibility.
pub fn lease_quick(
    conn: &mut Conn,
    queue: &str,
    filter: &Filter,
    limit: usize,
    visibility: std::time::Duration,
    fixed_now: Option<i64>,
    me: Option<i64>,
) -> Result<Option<Vec<Message>>> {
    let vis = i64::try_from(visibility.as_nanos()).unwrap_or(i64::MAX);
    // One message without a filter: a statement planned once per connection
    // (see messages::read_quick).
    let rows = if limit == 1 && *filter == Filter::all() {
        conn.autocommit(
            "WITH c AS MATERIALIZED (SELECT t.n, \
             COALESCE((SELECT min(visible_at) FROM messages) <= t.n, false) \
             OR EXISTS(SELECT 1 FROM holders WHERE token <> COALESCE($3::bigint, -1)) AS busy \
             FROM (SELECT COALESCE($2::bigint, \
             (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000) AS n) t), \
             taken AS (UPDATE messages SET state = 2, receives = receives + 1, \
             visible_at = (SELECT CASE WHEN $4::bigint > 9223372036854775807 - c.n \
             THEN 9223372036854775807 ELSE c.n + $4::bigint END FROM c), \
             nonce = ('x' || substr(md5(gen_random_uuid()::text), 1, 16))::bit(64)::bigint \
             WHERE seq = (SELECT seq FROM messages \
             WHERE state = 0 AND queue >= $1 AND queue <= $1 \
             ORDER BY queue, seq LIMIT 1 FOR UPDATE SKIP LOCKED) AND NOT (SELECT busy FROM c) \
             RETURNING seq, id, body, headers, receives, dead_source, dead_reason, topic, \
             topic_offset, nonce) \
             SELECT t.seq, t.id, t.body, t.headers, t.receives, t.dead_source, t.dead_reason, \
             t.topic, t.topic_offset, t.nonce, c.busy FROM c LEFT JOIN taken t ON true",
            &[&queue, &fixed_now, &me, &vis],
        )?
    } else {
        conn.autocommit(
            "WITH c AS MATERIALIZED (SELECT t.n, \
             COALESCE((SELECT min(visible_at) FROM messages) <= t.n, false) \
             OR EXISTS(SELECT 1 FROM holders WHERE token <> COALESCE($7::bigint, -1)) AS busy \
             FROM (SELECT COALESCE($6::bigint, \
             (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint * 1000) AS n) t), \
             taken AS (UPDATE messages SET state = 2, receives = receives + 1, \
             visible_at = (SELECT CASE WHEN $8::bigint > 9223372036854775807 - c.n \
             THEN 9223372036854775807 ELSE c.n + $8::bigint END FROM c), \
             nonce = ('x' || substr(md5(gen_random_uuid()::text), 1, 16))::bit(64)::bigint \
             WHERE seq IN (SELECT seq FROM messages \
             WHERE state = 0 AND queue = $1 AND ($2::bigint IS NULL OR id = $2) \
             AND ($3::bigint IS NULL OR id > $3) AND ($4::bigint IS NULL OR id < $4) \
             ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) AND NOT (SELECT busy FROM c) \
             RETURNING seq, id, body, headers, receives, dead_source, dead_reason, topic, \
             topic_offset, nonce) \
             SELECT t.seq, t.id, t.body, t.headers, t.receives, t.dead_source, t.dead_reason, \
             t.topic, t.topic_offset, t.nonce, c.busy FROM c LEFT JOIN taken t ON true",
            &[
                &queue,
                &filter.id,
                &filter.after,
                &filter.before,
                &limit_i64(limit),
                &fixed_now,
                &me,
                &vis,
            ],
        )?
    };
    if rows.first().is_some_and(|r| r.get::<_, bool>(10)) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows.iter().filter(|r| r.get::<_, Option<i64>>(0).is_some()) {
        out.push(with_receipt(row)?);
    }
    out.sort_unstable_by_key(|m| m.seq);
    Ok(Some(out))
}

/// A leased message from a row of the message columns plus `nonce`.
fn with_receipt(row: &Row) -> Result<Message> {
    let mut msg = messages::message(row)?;
    let nonce: i64 = row.get(9);
    msg.receipt = Some(Receipt {
        id: msg.id,
        receives: msg.receives,
        nonce: nonce as u64,
    });
    Ok(msg)
}

/// Acknowledges, in one autocommit statement, every receipt whose row holds
/// exactly the facts [`policy::fence`] accepts (this queue, leased, the
/// receipt's receive count and nonce); returns which receipts it settled.
/// The others go the long way, where `fence` says why they are refused.
pub fn ack_quick(conn: &mut Conn, queue: &str, receipts: &[Receipt]) -> Result<Vec<bool>> {
    let ids: Vec<i64> = receipts.iter().map(|r| r.id).collect();
    let receives: Vec<i32> = receipts
        .iter()
        .map(|r| i32::try_from(r.receives).unwrap_or(-1))
        .collect();
    let nonces: Vec<i64> = receipts.iter().map(|r| r.nonce as i64).collect();
    let rows = if let [one] = receipts {
        // One receipt: scalars, so the statement is planned once per connection.
        conn.autocommit(
            "WITH gone AS (DELETE FROM messages WHERE id = $2 AND queue = $1 AND state = 2 \
             AND receives = $3 AND nonce = $4 RETURNING seq, id, queue, body, headers, \
             receives, dead_source, dead_reason, topic, topic_offset), \
             kept AS (INSERT INTO consumed SELECT * FROM gone) \
             SELECT 1::bigint FROM gone",
            &[&queue, &one.id, &receives[0], &nonces[0]],
        )?
    } else {
        conn.autocommit(
            "WITH gone AS (DELETE FROM messages m \
         USING unnest($2::bigint[], $3::integer[], $4::bigint[]) WITH ORDINALITY \
         AS r(id, receives, nonce, i) \
         WHERE m.id = r.id AND m.queue = $1 AND m.state = 2 AND m.receives = r.receives \
         AND m.nonce = r.nonce RETURNING m.seq, m.id, m.queue, m.body, m.headers, m.receives, \
         m.dead_source, m.dead_reason, m.topic, m.topic_offset, r.i), \
         kept AS (INSERT INTO consumed SELECT seq, id, queue, body, headers, receives, \
         dead_source, dead_reason, topic, topic_offset FROM gone) \
         SELECT i FROM gone",
            &[&queue, &ids, &receives, &nonces],
        )?
    };
    // Which receipts (by position) settled: a receipt given twice settles once.
    let mut done = vec![false; receipts.len()];
    for row in &rows {
        let i: i64 = row.get(0);
        if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| done.get_mut(i)) {
            *slot = true;
        }
    }
    Ok(done)
}

/// The storage position and receive count of the message `receipt` leases
/// in `queue` (locked), if the receipt passes [`policy::fence`].
fn find_lease(tx: &mut Tx<'_>, queue: &str, receipt: &Receipt) -> Result<(i64, u32)> {
    let row = tx.opt(
        "SELECT seq, queue, state, receives, nonce FROM messages WHERE id = $1 FOR UPDATE",
        &[&receipt.id],
    )?;
    let facts = row.as_ref().map(|r| {
        let state: i16 = r.get(2);
        let nonce: Option<i64> = r.get(4);
        policy::LeaseFacts {
            queue: r.get(1),
            consumed: state == super::schema::CONSUMED,
            deferred: state == super::schema::DEFERRED,
            receives: Some(u32::try_from(r.get::<_, i32>(3)).unwrap_or(0)),
            nonce: nonce.map(|n| n as u64),
        }
    });
    policy::fence(receipt, queue, facts.as_ref())?;
    let row = row.expect("fenced receipts name a row");
    Ok((row.get(0), facts.and_then(|f| f.receives).unwrap_or(0)))
}

/// Acknowledges one delivery: the message is consumed.
pub fn ack(tx: &mut Tx<'_>, queue: &str, receipt: &Receipt) -> Result<()> {
    let (seq, _) = find_lease(tx, queue, receipt)?;
    tx.execute(
        "WITH gone AS (DELETE FROM messages WHERE seq = $1 RETURNING seq, id, queue, body, \
         headers, receives, dead_source, dead_reason, topic, topic_offset) \
         INSERT INTO consumed SELECT * FROM gone",
        &[&seq],
    )?;
    Ok(())
}

/// Gives a delivery back (now, at `until`, or to the dead-letter queue).
pub fn nack(
    tx: &mut Tx<'_>,
    queue: &str,
    receipt: &Receipt,
    until: Option<i64>,
    config: &QueueConfig,
) -> Result<NackOutcome> {
    let (seq, receives) = find_lease(tx, queue, receipt)?;
    match policy::on_nack(receives, config, until) {
        LeaseEnd::DeadLetter(dead) => {
            dead_letter(tx, seq, queue, &dead.queue, &dead.reason)?;
            Ok(NackOutcome::DeadLettered(dead.queue))
        }
        LeaseEnd::Delay(at) => {
            tx.execute(
                "UPDATE messages SET visible_at = $1, nonce = NULL WHERE seq = $2",
                &[&at, &seq],
            )?;
            Ok(NackOutcome::Delayed(at))
        }
        LeaseEnd::Requeue => {
            make_visible(tx, seq, 0)?;
            Ok(NackOutcome::Requeued)
        }
    }
}

/// Moves the message `receipt` leases to `dlq` now, recording `reason`.
pub fn dead_letter_lease(
    tx: &mut Tx<'_>,
    queue: &str,
    receipt: &Receipt,
    dlq: &str,
    reason: &str,
) -> Result<()> {
    let (seq, _) = find_lease(tx, queue, receipt)?;
    dead_letter(tx, seq, queue, dlq, reason)
}

/// A delivery that never reached its consumer: visible again, not counted.
pub fn give_back(tx: &mut Tx<'_>, queue: &str, receipt: &Receipt) -> Result<()> {
    let (seq, _) = find_lease(tx, queue, receipt)?;
    make_visible(tx, seq, 1)
}

fn make_visible(tx: &mut Tx<'_>, seq: i64, uncount: i32) -> Result<()> {
    tx.execute(
        "UPDATE messages SET state = 0, visible_at = NULL, nonce = NULL, \
         receives = GREATEST(receives - $1, 0) WHERE seq = $2",
        &[&uncount, &seq],
    )?;
    tx.changed();
    Ok(())
}

/// Moves a live lease's expiry to `until`.
pub fn extend(tx: &mut Tx<'_>, queue: &str, receipt: &Receipt, until: i64) -> Result<()> {
    let (seq, _) = find_lease(tx, queue, receipt)?;
    tx.execute(
        "UPDATE messages SET visible_at = $1 WHERE seq = $2",
        &[&until, &seq],
    )?;
    Ok(())
}

/// Moves dead letters of `dlq` back to their sources (or all to `target`).
pub fn redrive(tx: &mut Tx<'_>, dlq: &str, target: Option<&str>) -> Result<u64> {
    let n = tx.execute(
        "UPDATE messages SET queue = COALESCE($2, dead_source), receives = 0, \
         dead_source = NULL, dead_reason = NULL \
         WHERE queue = $1 AND state = 0 AND ($2::text IS NOT NULL OR dead_source IS NOT NULL)",
        &[&dlq, &target],
    )?;
    if n > 0 {
        tx.changed();
    }
    Ok(n)
}

/// A queue's settings from `visibility_ns, max_receives, dead_letter` at column `first`.
fn config_from(row: &Row, first: usize) -> QueueConfig {
    let visibility: Option<i64> = row.get(first);
    let max: Option<i64> = row.get(first + 1);
    QueueConfig {
        visibility: visibility.map(|ns| std::time::Duration::from_nanos(ns.max(0) as u64)),
        max_receives: max.and_then(|m| u32::try_from(m).ok()),
        dead_letter: row.get(first + 2),
    }
}

/// The stored settings of `queue` (empty if none).
pub fn config(tx: &mut Tx<'_>, queue: &str) -> Result<QueueConfig> {
    let row = tx.opt(
        "SELECT visibility_ns, max_receives, dead_letter FROM queue_config WHERE queue = $1",
        &[&queue],
    )?;
    Ok(row.map(|r| config_from(&r, 0)).unwrap_or_default())
}

/// Stores `config` for `queue` (an empty config removes the record).
pub fn set_config(tx: &mut Tx<'_>, queue: &str, config: &QueueConfig) -> Result<()> {
    if config.is_empty() {
        tx.execute("DELETE FROM queue_config WHERE queue = $1", &[&queue])?;
        return Ok(());
    }
    let visibility = config
        .visibility
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let max = config.max_receives.map(i64::from);
    tx.execute(
        "INSERT INTO queue_config (queue, visibility_ns, max_receives, dead_letter) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (queue) DO UPDATE SET \
         visibility_ns = EXCLUDED.visibility_ns, max_receives = EXCLUDED.max_receives, \
         dead_letter = EXCLUDED.dead_letter",
        &[&queue, &visibility, &max, &config.dead_letter],
    )?;
    Ok(())
}

/// Every configured queue, by name.
pub fn configs(tx: &mut Tx<'_>) -> Result<Vec<(String, QueueConfig)>> {
    let rows = tx.query(
        "SELECT visibility_ns, max_receives, dead_letter, queue FROM queue_config",
        &[],
    )?;
    let mut out: Vec<(String, QueueConfig)> =
        rows.iter().map(|r| (r.get(3), config_from(r, 0))).collect();
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// Per queue: leased and delayed counts.
pub fn deferred_counts(tx: &mut Tx<'_>) -> Result<Vec<(String, u64, u64)>> {
    let rows = tx.query(
        "SELECT queue, count(*) FILTER (WHERE nonce IS NOT NULL), count(*) FILTER (WHERE nonce IS NULL) \
         FROM messages WHERE state = 2 GROUP BY queue",
        &[],
    )?;
    let mut out: Vec<(String, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get::<_, i64>(1) as u64,
                r.get::<_, i64>(2) as u64,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// When the next deferred message of `queue` becomes visible.
pub fn next_visible_at(tx: &mut Tx<'_>, queue: &str) -> Result<Option<i64>> {
    Ok(tx
        .one(
            "SELECT min(visible_at) FROM messages WHERE queue = $1 AND state = 2",
            &[&queue],
        )?
        .get(0))
}
