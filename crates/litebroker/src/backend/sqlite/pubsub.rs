//! Topics, their logs, subscriptions and fan-out, inside a transaction.
//!
//! A published message is appended to `lb_topic_log` with the topic's next
//! offset, and one copy goes into the queue of every subscription whose
//! pattern matches: a row in the reference's `messages` table, so the copy is
//! an ordinary queue message. Where a copy came from (topic and offset) is
//! recorded per run of copies in `lb_copy_spans`; headers, when a message has
//! any, in an `lb_message_ext` row per copy.
//!
//! The tables exist only once something has written one
//! ([`super::schema::PUBSUB_DDL`]): the writers here create them
//! ([`ensure_tables`]), and the readers (through the backend) answer "none"
//! while [`tables_exist`] is false.

use std::time::Duration;

use rusqlite::{params, params_from_iter, Connection};

use super::holder::{Liveness, ProcessIdentity};
use super::{messages, spans};
use crate::error::{Error, Result, SubscriptionError};
use crate::headers::Headers;
use crate::id;
use crate::message::Outgoing;
use crate::policy;
use crate::pubsub::{
    NewSubscription, Published, Retention, StartFrom, SubscriptionInfo, TopicInfo,
};
use crate::topic;

/// Whether the pub/sub tables exist. They are created together, so the last
/// of them stands for all.
pub fn tables_exist(conn: &Connection) -> Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lb_copy_spans')",
    )?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

/// Creates the pub/sub tables if they are missing, inside the caller's
/// write transaction (so another process creating them at the same time
/// waits for the lock, then finds them).
pub fn ensure_tables(conn: &Connection) -> Result<()> {
    if !tables_exist(conn)? {
        conn.execute_batch(super::schema::PUBSUB_DDL)?;
    }
    Ok(())
}

/// A run of consecutive offsets of one topic, just appended to its log.
struct LogRun<'a> {
    topic: &'a str,
    first_offset: i64,
    count: i64,
    any_headers: bool,
}

/// Copies `run` into queue `sub` as consecutive storage positions and ids
/// after `last`, in offset order, with two set-based statements (three when
/// the run has headers); returns the last id used.
///
/// Ids run ahead of the clock by at most one per copy; the caller waits for
/// the clock ([`id::wait_until_past`]) before committing.
///
/// `OR FAIL`: a failing statement keeps the rows it already wrote instead of
/// undoing just itself, which spares SQLite a statement journal (a copy of
/// every page the statement touches). Nothing partial survives, because any
/// error rolls the whole transaction back.
fn copy_run(conn: &Connection, sub: &str, run: &LogRun<'_>, last: i64) -> Result<i64> {
    if run.count == 0 {
        return Ok(last);
    }
    let base = id::next_id_now(last);
    let end = run.first_offset + run.count;
    let copied = conn
        .prepare_cached(
            "INSERT OR FAIL INTO messages (queue, body, ts) SELECT ?1, body, ?2 + (topic_offset - ?4) \
             FROM lb_topic_log WHERE topic = ?3 AND topic_offset >= ?4 AND topic_offset < ?5 \
             ORDER BY topic_offset",
        )?
        .execute(params![sub, base, run.topic, run.first_offset, end])? as i64;
    if copied != run.count {
        // Offsets are gap-free by construction; a gap means the log was
        // edited by hand, and positions could no longer stand for offsets.
        return Err(Error::Integrity(format!(
            "the log of topic '{}' has gaps between offsets {} and {}",
            run.topic,
            run.first_offset,
            end - 1
        )));
    }
    let first_seq = conn.last_insert_rowid() - run.count + 1;
    spans::record(conn, first_seq, run.count, run.topic, run.first_offset)?;
    if run.any_headers {
        conn.prepare_cached(
            "INSERT OR FAIL INTO lb_message_ext (msg, headers) SELECT ?1 + (topic_offset - ?3), headers \
             FROM lb_topic_log WHERE topic = ?2 AND topic_offset >= ?3 AND topic_offset < ?4 \
             AND headers IS NOT NULL",
        )?
        .execute(params![first_seq, run.topic, run.first_offset, end])?;
    }
    Ok(base + run.count - 1)
}

/// Names of the subscriptions whose pattern matches `topic`, by name.
fn matching_subscriptions(conn: &Connection, topic_name: &str) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT name, pattern FROM lb_subscriptions ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (name, pattern) = row?;
        if topic::matches(&pattern, topic_name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Publishes `batch` to `topic_name` (see the module docs).
pub fn publish(
    conn: &Connection,
    topic_name: &str,
    batch: &[Outgoing<'_>],
    me: &ProcessIdentity,
    now: i64,
) -> Result<Vec<Published>> {
    reap(conn, me, now)?;
    let subs = matching_subscriptions(conn, topic_name)?;
    conn.prepare_cached("INSERT OR IGNORE INTO lb_topics (topic, next_offset) VALUES (?1, 0)")?
        .execute([topic_name])?;
    let first_offset: i64 = conn
        .prepare_cached("SELECT next_offset FROM lb_topics WHERE topic = ?1")?
        .query_row([topic_name], |r| r.get(0))?;
    let (log_ids, any_headers) = append_to_log(conn, topic_name, first_offset, batch)?;
    let mut last = match log_ids.last() {
        Some(&id) => id,
        None => messages::last_id(conn)?,
    };
    let out = (first_offset..)
        .zip(log_ids)
        .map(|(offset, id)| Published {
            id,
            offset,
            delivered: subs.len(),
        })
        .collect();
    let run = LogRun {
        topic: topic_name,
        first_offset,
        count: batch.len() as i64,
        any_headers,
    };
    // Subscription by subscription: each one's copies are contiguous in
    // storage, so its consumers later touch few pages.
    for sub in &subs {
        last = copy_run(conn, sub, &run, last)?;
    }
    let next_offset = first_offset + run.count;
    conn.prepare_cached("UPDATE lb_topics SET next_offset = ?1 WHERE topic = ?2")?
        .execute(params![next_offset, topic_name])?;
    messages::raise_last_id(conn, last)?;
    trim(conn, topic_name, next_offset, now)?;
    id::wait_until_past(last);
    Ok(out)
}

/// Appends `batch` to the log of `topic_name` from `first_offset` on, with
/// fresh ids; returns the ids and whether any message has headers. A batch
/// of plain messages goes in one statement (see [`messages::plain_bodies`]).
fn append_to_log(
    conn: &Connection,
    topic_name: &str,
    first_offset: i64,
    batch: &[Outgoing<'_>],
) -> Result<(Vec<i64>, bool)> {
    let mut last = messages::last_id(conn)?;
    if let Some(bodies) = messages::plain_bodies(batch) {
        let base = id::next_id_now(last);
        conn.prepare_cached(
            "INSERT OR FAIL INTO lb_topic_log (id, topic, topic_offset, body) \
             SELECT ?1 + key, ?2, ?3 + key, value FROM json_each(?4) ORDER BY key",
        )?
        .execute(params![base, topic_name, first_offset, bodies])?;
        let ids = (base..base + batch.len() as i64).collect();
        return Ok((ids, false));
    }
    let mut log = conn.prepare_cached(
        "INSERT INTO lb_topic_log (id, topic, topic_offset, body, headers) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut ids = Vec::with_capacity(batch.len());
    let mut any_headers = false;
    for (offset, msg) in (first_offset..).zip(batch) {
        let headers = msg.headers.filter(|h| !h.is_empty()).map(Headers::to_json);
        any_headers |= headers.is_some();
        last = id::next_id_now(last);
        log.execute(params![last, topic_name, offset, msg.body, headers])?;
        ids.push(last);
    }
    Ok((ids, any_headers))
}

/// Applies the retention in force for `topic_name` to its log.
fn trim(conn: &Connection, topic_name: &str, next_offset: i64, now: i64) -> Result<()> {
    let retention = retention_for(conn, topic_name)?;
    let cut = policy::retention_cut(&retention, next_offset, now);
    if let Some(keep_from) = cut.below_offset {
        conn.prepare_cached("DELETE FROM lb_topic_log WHERE topic = ?1 AND topic_offset < ?2")?
            .execute(params![topic_name, keep_from])?;
    }
    if let Some(oldest) = cut.before_id {
        conn.prepare_cached("DELETE FROM lb_topic_log WHERE topic = ?1 AND id < ?2")?
            .execute(params![topic_name, oldest])?;
    }
    Ok(())
}

/// The retention in force for `topic_name` (see [`policy::retention_for`]).
fn retention_for(conn: &Connection, topic_name: &str) -> Result<Retention> {
    let settings = retentions(conn)?;
    Ok(policy::retention_for(
        topic_name,
        settings.iter().map(|(p, r)| (p.as_str(), *r)),
    ))
}

fn retentions(conn: &Connection) -> Result<Vec<(String, Retention)>> {
    let mut stmt =
        conn.prepare_cached("SELECT pattern, retain_count, retain_ns FROM lb_topic_config")?;
    let rows = stmt.query_map([], |r| {
        let count: Option<i64> = r.get(1)?;
        let ns: Option<i64> = r.get(2)?;
        Ok((
            r.get(0)?,
            Retention {
                max_count: count.map(|c| c.max(0) as u64),
                max_age: ns.map(|n| Duration::from_nanos(n.max(0) as u64)),
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The retention stored for exactly `pattern`.
pub fn retention_setting(conn: &Connection, pattern: &str) -> Result<Retention> {
    Ok(retentions(conn)?
        .into_iter()
        .find(|(p, _)| p == pattern)
        .map(|(_, r)| r)
        .unwrap_or_default())
}

/// Stores (or removes, when unbounded) the retention of `pattern`, and
/// applies it at once to every topic it covers.
pub fn set_retention(
    conn: &Connection,
    pattern: &str,
    retention: &Retention,
    now: i64,
) -> Result<()> {
    if retention.is_unbounded() {
        conn.execute("DELETE FROM lb_topic_config WHERE pattern = ?1", [pattern])?;
        return Ok(());
    }
    let count = retention
        .max_count
        .map(|c| i64::try_from(c).unwrap_or(i64::MAX));
    let ns = retention
        .max_age
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    conn.execute(
        "INSERT OR REPLACE INTO lb_topic_config (pattern, retain_count, retain_ns) VALUES (?1, ?2, ?3)",
        params![pattern, count, ns],
    )?;
    for (topic_name, next) in topic_offsets(conn)? {
        if topic::matches(pattern, &topic_name) {
            trim(conn, &topic_name, next, now)?;
        }
    }
    Ok(())
}

fn topic_offsets(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT topic, next_offset FROM lb_topics ORDER BY topic")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Creates a topic with an empty log; false if it exists (see the trait).
pub fn create_topic(conn: &Connection, topic: &str) -> Result<bool> {
    let added = conn
        .prepare_cached("INSERT OR IGNORE INTO lb_topics (topic, next_offset) VALUES (?1, 0)")?
        .execute([topic])?;
    Ok(added > 0)
}

/// Creates a subscription and replays the log into it (see the trait).
pub fn create_subscription(
    conn: &Connection,
    sub: &NewSubscription<'_>,
    me: &ProcessIdentity,
    now: i64,
) -> Result<u64> {
    reap(conn, me, now)?;
    let taken: bool = conn
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM lb_subscriptions WHERE name = ?1)")?
        .query_row([sub.name], |r| r.get(0))?;
    if taken {
        return Err(SubscriptionError::Exists(sub.name.to_owned()).into());
    }
    let is_queue: bool = conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM messages WHERE queue = ?1) \
             OR EXISTS(SELECT 1 FROM lb_queue_config WHERE queue = ?1)",
        )?
        .query_row([sub.name], |r| r.get(0))?;
    if is_queue {
        return Err(SubscriptionError::NameIsQueue(sub.name.to_owned()).into());
    }
    let expire = sub
        .ephemeral
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let owner = sub.ephemeral.map(|_| me);
    conn.execute(
        "INSERT INTO lb_subscriptions (name, pattern, created_ns, ephemeral, touched_ns, expire_ns, \
         pid, start_time, boot_id, host) VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6, ?7, ?8, ?9)",
        params![
            sub.name,
            sub.pattern,
            now,
            sub.ephemeral.is_some(),
            expire,
            owner.map(|o| o.pid),
            owner.map(|o| o.start_time),
            owner.map(|o| o.boot_id.as_str()),
            owner.map(|o| o.host.as_str()),
        ],
    )?;
    replay(conn, sub.name, sub.pattern, sub.from)
}

/// Copies the retained log entries of the topics `pattern` matches, from
/// `from`, into queue `name`, in publish order.
fn replay(conn: &Connection, name: &str, pattern: &str, from: StartFrom) -> Result<u64> {
    let Some((min_offset, after_id)) = from.replay_bounds() else {
        return Ok(0);
    };
    let topics: Vec<String> = topic_offsets(conn)?
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| topic::matches(pattern, t))
        .collect();
    let last = match topics.as_slice() {
        [] => return Ok(0),
        [one] => replay_topic(conn, name, one, min_offset, after_id)?,
        many => replay_topics(conn, name, many, min_offset, after_id)?,
    };
    let Some((copied, last)) = last else {
        return Ok(0);
    };
    messages::raise_last_id(conn, last)?;
    id::wait_until_past(last);
    Ok(copied)
}

/// Replay from one topic: its retained log is a gap-free run of offsets, so
/// the selected entries are one run, copied like a fan-out batch (ids and
/// storage positions follow the offsets, one span row). Returns how many
/// were copied and the last id used.
fn replay_topic(
    conn: &Connection,
    name: &str,
    topic_name: &str,
    min_offset: i64,
    after_id: i64,
) -> Result<Option<(u64, i64)>> {
    let (first, last_offset, count, any_headers): (Option<i64>, Option<i64>, i64, bool) = conn
        .prepare_cached(
            "SELECT MIN(topic_offset), MAX(topic_offset), COUNT(*), \
             COALESCE(MAX(headers IS NOT NULL), 0) \
             FROM lb_topic_log WHERE topic = ?1 AND topic_offset >= ?2 AND id > ?3",
        )?
        .query_row(params![topic_name, min_offset, after_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let (Some(first_offset), Some(last_offset)) = (first, last_offset) else {
        return Ok(None);
    };
    if last_offset - first_offset + 1 != count {
        // Offsets are gap-free as we write them; a log edited by hand is
        // copied the general way, which numbers copies without assuming it.
        let topics = [topic_name.to_owned()];
        return replay_topics(conn, name, &topics, min_offset, after_id);
    }
    let run = LogRun {
        topic: topic_name,
        first_offset,
        count,
        any_headers,
    };
    let last = copy_run(conn, name, &run, messages::last_id(conn)?)?;
    Ok(Some((count as u64, last)))
}

/// Replay from several topics, interleaved in publish order: two set-based
/// statements (one per table); the copies get consecutive new ids and storage
/// positions, numbered in publish order on both sides, and each copy's
/// origin is recorded in its `lb_message_ext` row.
fn replay_topics(
    conn: &Connection,
    name: &str,
    topics: &[String],
    min_offset: i64,
    after_id: i64,
) -> Result<Option<(u64, i64)>> {
    let placeholders = vec!["?"; topics.len()].join(",");
    let selection = format!(
        "FROM lb_topic_log WHERE topic IN ({placeholders}) AND topic_offset >= ? AND id > ?"
    );
    let values = |first: i64| {
        let mut v: Vec<rusqlite::types::Value> = vec![first.into()];
        v.extend(topics.iter().cloned().map(Into::into));
        v.push(min_offset.into());
        v.push(after_id.into());
        v
    };
    let base = id::next_id_now(messages::last_id(conn)?);
    let mut params = vec![rusqlite::types::Value::from(name.to_owned())];
    params.extend(values(base));
    let copied = conn.execute(
        &format!(
            "INSERT OR FAIL INTO messages (queue, body, ts) SELECT ?, body, \
             ? - 1 + ROW_NUMBER() OVER (ORDER BY id) {selection} ORDER BY id"
        ),
        params_from_iter(params),
    )? as i64;
    if copied == 0 {
        return Ok(None);
    }
    let first_seq = conn.last_insert_rowid() - copied + 1;
    conn.execute(
        &format!(
            "INSERT OR FAIL INTO lb_message_ext (msg, headers, topic, topic_offset) SELECT \
             ? - 1 + ROW_NUMBER() OVER (ORDER BY id), headers, topic, topic_offset \
             {selection} ORDER BY id"
        ),
        params_from_iter(values(first_seq)),
    )?;
    Ok(Some((copied as u64, base + copied - 1)))
}

/// Removes subscription `name` and its pending messages.
pub fn delete_subscription(conn: &Connection, name: &str) -> Result<bool> {
    let existed = conn.execute("DELETE FROM lb_subscriptions WHERE name = ?1", [name])? > 0;
    if existed {
        super::admin::delete_queue(conn, name)?;
    }
    Ok(existed)
}

/// Removes ephemeral subscriptions whose owner process died (owners on this
/// machine), or that nobody touched for their expiry time (owners elsewhere,
/// whose liveness cannot be seen). Cheap when there are none.
pub fn reap(conn: &Connection, me: &ProcessIdentity, now: i64) -> Result<u64> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, touched_ns, expire_ns, pid, start_time, boot_id, host \
         FROM lb_subscriptions WHERE ephemeral = 1",
    )?;
    let rows = stmt.query_map([], |r| {
        let owner = match (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?) {
            (Some(pid), Some(start_time), Some(boot_id), Some(host)) => Some(ProcessIdentity {
                pid,
                start_time,
                boot_id,
                host,
            }),
            _ => None,
        };
        let expire: Option<i64> = r.get(2)?;
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, expire, owner))
    })?;
    let mut stale = Vec::new();
    for row in rows {
        let (name, touched, expire, owner) = row?;
        let expired = expire.is_some_and(|e| now.saturating_sub(touched) > e);
        // An owner on this machine is checked directly; one elsewhere cannot
        // be, so its subscription lives as long as somebody keeps touching it.
        let gone = match owner {
            Some(o) if o.host == me.host => o.liveness(me) == Liveness::Dead,
            _ => expired,
        };
        if gone {
            stale.push(name);
        }
    }
    for name in &stale {
        delete_subscription(conn, name)?;
    }
    Ok(stale.len() as u64)
}

/// Every subscription with its depth and consumers' position.
pub fn subscriptions(conn: &Connection) -> Result<Vec<SubscriptionInfo>> {
    let mut stmt =
        conn.prepare_cached("SELECT name, pattern, ephemeral FROM lb_subscriptions ORDER BY name")?;
    let subs: Vec<(String, String, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut depth =
        conn.prepare_cached("SELECT COUNT(*) FROM messages WHERE queue = ?1 AND claimed = 0")?;
    let mut next = conn.prepare_cached(
        "SELECT e.topic, MIN(e.topic_offset) FROM messages m JOIN lb_message_ext e ON e.msg = m.id \
         WHERE m.queue = ?1 AND m.claimed = 0 AND e.topic IS NOT NULL GROUP BY e.topic ORDER BY e.topic",
    )?;
    let mut out = Vec::with_capacity(subs.len());
    for (name, pattern, ephemeral) in subs {
        let pending: i64 = depth.query_row([&name], |r| r.get(0))?;
        let mut next_offsets: std::collections::BTreeMap<String, i64> = next
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (topic_name, offset) in spans::next_offsets(conn, &name)? {
            let lowest = next_offsets.entry(topic_name).or_insert(offset);
            *lowest = (*lowest).min(offset);
        }
        let next_offsets = next_offsets.into_iter().collect();
        out.push(SubscriptionInfo {
            name,
            pattern,
            ephemeral,
            depth: pending as u64,
            next_offsets,
        });
    }
    Ok(out)
}

/// Every topic with its retained range and retention.
pub fn topics(conn: &Connection) -> Result<Vec<TopicInfo>> {
    let mut range = conn
        .prepare_cached("SELECT COUNT(*), MIN(topic_offset) FROM lb_topic_log WHERE topic = ?1")?;
    let mut out = Vec::new();
    for (topic_name, next_offset) in topic_offsets(conn)? {
        let (retained, first_offset): (i64, Option<i64>) =
            range.query_row([&topic_name], |r| Ok((r.get(0)?, r.get(1)?)))?;
        out.push(TopicInfo {
            retention: retention_for(conn, &topic_name)?,
            topic: topic_name,
            retained: retained as u64,
            first_offset,
            next_offset,
        });
    }
    Ok(out)
}

/// Marks a subscription as alive now; false if it does not exist.
pub fn touch(conn: &Connection, name: &str, now: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE lb_subscriptions SET touched_ns = ?1 WHERE name = ?2")?
        .execute(params![now, name])?;
    Ok(changed > 0)
}
