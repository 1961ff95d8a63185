//! Topics, their logs, subscriptions and fan-out, inside a transaction.
//!
//! A published message is appended to `lb_topic_log` with the topic's next
//! offset, and one copy goes into the queue of every subscription whose
//! pattern matches (a row in the reference's `messages` table, so the copy is
//! an ordinary queue message, plus an `lb_message_ext` row naming its topic
//! and offset, and carrying its headers).

use std::time::Duration;

use rusqlite::{params, params_from_iter, Connection};

use super::messages;
use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::holder::{Liveness, ProcessIdentity};
use crate::id;
use crate::message::Outgoing;
use crate::pubsub::{
    NewSubscription, Published, Retention, StartFrom, SubscriptionInfo, TopicInfo,
};
use crate::topic;

/// Where one copy of a published message goes.
struct Copy<'a> {
    body: &'a str,
    headers: Option<&'a str>,
    topic: &'a str,
    offset: i64,
}

/// Inserts a copy into queue `sub` with a fresh id after `last`; returns the new id.
fn deliver(conn: &Connection, sub: &str, copy: &Copy<'_>, last: i64) -> Result<i64> {
    let id = id::next_id_now(last);
    conn.prepare_cached("INSERT INTO messages (queue, body, ts) VALUES (?1, ?2, ?3)")?
        .execute(params![sub, copy.body, id])?;
    conn.prepare_cached(
        "INSERT INTO lb_message_ext (msg, headers, topic, topic_offset) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        conn.last_insert_rowid(),
        copy.headers,
        copy.topic,
        copy.offset
    ])?;
    Ok(id)
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
    let mut offset: i64 = conn
        .prepare_cached("SELECT next_offset FROM lb_topics WHERE topic = ?1")?
        .query_row([topic_name], |r| r.get(0))?;
    let mut last = messages::last_id(conn)?;
    let mut log = conn.prepare_cached(
        "INSERT INTO lb_topic_log (id, topic, topic_offset, body, headers) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut out = Vec::with_capacity(batch.len());
    for msg in batch {
        let headers = msg.headers.filter(|h| !h.is_empty()).map(Headers::to_json);
        last = id::next_id_now(last);
        let log_id = last;
        log.execute(params![log_id, topic_name, offset, msg.body, headers])?;
        let copy = Copy {
            body: msg.body,
            headers: headers.as_deref(),
            topic: topic_name,
            offset,
        };
        for sub in &subs {
            last = deliver(conn, sub, &copy, last)?;
        }
        out.push(Published {
            id: log_id,
            offset,
            delivered: subs.len(),
        });
        offset += 1;
    }
    conn.prepare_cached("UPDATE lb_topics SET next_offset = ?1 WHERE topic = ?2")?
        .execute(params![offset, topic_name])?;
    messages::raise_last_id(conn, last)?;
    trim(conn, topic_name, offset, now)?;
    Ok(out)
}

/// Applies the retention in force for `topic_name` to its log.
fn trim(conn: &Connection, topic_name: &str, next_offset: i64, now: i64) -> Result<()> {
    let retention = retention_for(conn, topic_name)?;
    if let Some(count) = retention.max_count {
        let keep_from = next_offset.saturating_sub(i64::try_from(count).unwrap_or(i64::MAX));
        conn.prepare_cached("DELETE FROM lb_topic_log WHERE topic = ?1 AND topic_offset < ?2")?
            .execute(params![topic_name, keep_from])?;
    }
    if let Some(age) = retention.max_age {
        let oldest = now.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
        conn.prepare_cached("DELETE FROM lb_topic_log WHERE topic = ?1 AND id < ?2")?
            .execute(params![topic_name, oldest])?;
    }
    Ok(())
}

/// The retention of `topic_name`: its own setting if it has one, otherwise
/// the tightest of the patterns that match it; unbounded if none.
fn retention_for(conn: &Connection, topic_name: &str) -> Result<Retention> {
    let mut exact = None;
    let mut tightest: Option<Retention> = None;
    for (pattern, retention) in retentions(conn)? {
        if pattern == topic_name {
            exact = Some(retention);
        } else if topic::matches(&pattern, topic_name) {
            tightest = Some(tightest.map_or(retention, |t| t.tightest(retention)));
        }
    }
    Ok(exact.or(tightest).unwrap_or_default())
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
        return Err(Error::Subscription(format!(
            "subscription '{}' already exists",
            sub.name
        )));
    }
    let is_queue: bool = conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM messages WHERE queue = ?1) \
             OR EXISTS(SELECT 1 FROM lb_queue_config WHERE queue = ?1)",
        )?
        .query_row([sub.name], |r| r.get(0))?;
    if is_queue {
        return Err(Error::Subscription(format!(
            "a queue named '{}' already exists; a subscription needs a name of its own",
            sub.name
        )));
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
///
/// Two set-based statements (one per table) instead of two inserts per
/// message: the copies get consecutive new ids (`base`, `base + 1`, ...) and
/// consecutive storage positions, numbered in publish order on both sides.
fn replay(conn: &Connection, name: &str, pattern: &str, from: StartFrom) -> Result<u64> {
    let (min_offset, after_id) = match from {
        StartFrom::Latest => return Ok(0),
        StartFrom::Earliest => (i64::MIN, i64::MIN),
        StartFrom::Offset(o) => (o, i64::MIN),
        StartFrom::After(bound) => (i64::MIN, bound),
    };
    let topics: Vec<String> = topic_offsets(conn)?
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| topic::matches(pattern, t))
        .collect();
    if topics.is_empty() {
        return Ok(0);
    }
    let placeholders = vec!["?"; topics.len()].join(",");
    // Publish order is id order; within one topic it is also offset order,
    // which the (topic, offset) index yields without sorting.
    let order = if topics.len() == 1 {
        "topic_offset"
    } else {
        "id"
    };
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
            "INSERT INTO messages (queue, body, ts) SELECT ?, body, \
             ? - 1 + ROW_NUMBER() OVER (ORDER BY {order}) {selection} ORDER BY {order}"
        ),
        params_from_iter(params),
    )? as i64;
    if copied == 0 {
        return Ok(0);
    }
    let first_seq = conn.last_insert_rowid() - copied + 1;
    conn.execute(
        &format!(
            "INSERT INTO lb_message_ext (msg, headers, topic, topic_offset) SELECT \
             ? - 1 + ROW_NUMBER() OVER (ORDER BY {order}), headers, topic, topic_offset \
             {selection} ORDER BY {order}"
        ),
        params_from_iter(values(first_seq)),
    )?;
    let last = base + copied - 1;
    messages::raise_last_id(conn, last)?;
    wait_for_clock(last);
    Ok(copied as u64)
}

/// Ids follow the wall clock: after handing out a block of consecutive ids,
/// wait (about a nanosecond per id) until the clock has passed the last one,
/// so that `meta.last_ts` is never left in the future, where the reference's
/// writer could not follow it.
fn wait_for_clock(last_id: i64) {
    while id::now_ns() <= last_id {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
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
        let next_offsets = next
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
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
