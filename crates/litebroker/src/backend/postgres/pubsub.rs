//! Topics, their logs, subscriptions and fan-out, inside a transaction.
//! Matching, retention and start positions are decided by the same code as
//! on SQLite ([`crate::topic`], [`crate::policy`]).

use std::time::Duration;

use super::admin;
use super::conn::Tx;
use super::messages;
use super::schema::LOCK_CLASS;
use crate::error::{Result, SubscriptionError};
use crate::headers::Headers;
use crate::message::Outgoing;
use crate::policy;
use crate::pubsub::{
    NewSubscription, Published, Retention, StartFrom, SubscriptionInfo, TopicInfo,
};
use crate::topic;

fn matching_subscriptions(tx: &mut Tx<'_>, topic_name: &str) -> Result<Vec<String>> {
    let rows = tx.query("SELECT name, pattern FROM subscriptions", &[])?;
    let mut out: Vec<String> = rows
        .iter()
        .filter(|r| topic::matches(r.get::<_, &str>(1), topic_name))
        .map(|r| r.get(0))
        .collect();
    out.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(out)
}

/// Creates a topic with an empty log; false if it exists.
pub fn create_topic(tx: &mut Tx<'_>, topic_name: &str) -> Result<bool> {
    let added = tx.execute(
        "INSERT INTO topics (topic, next_offset) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        &[&topic_name],
    )?;
    Ok(added > 0)
}

/// Appends `batch` to the topic's log and copies it into every matching
/// subscription.
pub fn publish(
    tx: &mut Tx<'_>,
    topic_name: &str,
    batch: &[Outgoing<'_>],
    now: i64,
) -> Result<Vec<Published>> {
    reap(tx, now)?;
    let subs = matching_subscriptions(tx, topic_name)?;
    tx.execute(
        "INSERT INTO topics (topic, next_offset) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        &[&topic_name],
    )?;
    // The topic row's lock keeps offsets gap-free among concurrent publishers.
    let first_offset: i64 = tx
        .one(
            "SELECT next_offset FROM topics WHERE topic = $1 FOR UPDATE",
            &[&topic_name],
        )?
        .get(0);
    let n = batch.len() as i64;
    if n == 0 {
        return Ok(Vec::new());
    }
    let base = messages::reserve_ids(tx, batch.len() * (1 + subs.len()))?;
    let ids: Vec<i64> = (base..base + n).collect();
    let offsets: Vec<i64> = (first_offset..first_offset + n).collect();
    let bodies: Vec<&[u8]> = batch.iter().map(|m| m.body.as_bytes()).collect();
    let headers: Vec<Option<String>> = batch
        .iter()
        .map(|m| m.headers.filter(|h| !h.is_empty()).map(Headers::to_json))
        .collect();
    tx.execute(
        "INSERT INTO topic_log (id, topic, topic_offset, body, headers) \
         SELECT i, $2, o, b, h FROM unnest($1::bigint[], $3::bigint[], $4::bytea[], $5::text[]) \
         AS t(i, o, b, h)",
        &[&ids, &topic_name, &offsets, &bodies, &headers],
    )?;
    let end = first_offset + n;
    for (k, sub) in subs.iter().enumerate() {
        let sub_base = base + n * (k as i64 + 1);
        tx.execute(
            "INSERT INTO messages (id, queue, body, headers, topic, topic_offset) \
             SELECT $1::bigint + (topic_offset - $3::bigint), $2, body, headers, topic, topic_offset \
             FROM topic_log WHERE topic = $4 AND topic_offset >= $3 AND topic_offset < $5 \
             ORDER BY topic_offset",
            &[&sub_base, sub, &first_offset, &topic_name, &end],
        )?;
    }
    tx.execute(
        "UPDATE topics SET next_offset = $1 WHERE topic = $2",
        &[&end, &topic_name],
    )?;
    trim(tx, topic_name, end, now)?;
    if !subs.is_empty() {
        tx.changed();
    }
    Ok(ids
        .into_iter()
        .zip(offsets)
        .map(|(id, offset)| Published {
            id,
            offset,
            delivered: subs.len(),
        })
        .collect())
}

fn trim(tx: &mut Tx<'_>, topic_name: &str, next_offset: i64, now: i64) -> Result<()> {
    let retention = retention_for(tx, topic_name)?;
    let cut = policy::retention_cut(&retention, next_offset, now);
    if let Some(keep_from) = cut.below_offset {
        tx.execute(
            "DELETE FROM topic_log WHERE topic = $1 AND topic_offset < $2",
            &[&topic_name, &keep_from],
        )?;
    }
    if let Some(oldest) = cut.before_id {
        tx.execute(
            "DELETE FROM topic_log WHERE topic = $1 AND id < $2",
            &[&topic_name, &oldest],
        )?;
    }
    Ok(())
}

fn retention_for(tx: &mut Tx<'_>, topic_name: &str) -> Result<Retention> {
    let settings = retentions(tx)?;
    Ok(policy::retention_for(
        topic_name,
        settings.iter().map(|(p, r)| (p.as_str(), *r)),
    ))
}

fn retentions(tx: &mut Tx<'_>) -> Result<Vec<(String, Retention)>> {
    let rows = tx.query(
        "SELECT pattern, retain_count, retain_ns FROM topic_config",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let count: Option<i64> = r.get(1);
            let ns: Option<i64> = r.get(2);
            (
                r.get(0),
                Retention {
                    max_count: count.map(|c| c.max(0) as u64),
                    max_age: ns.map(|n| Duration::from_nanos(n.max(0) as u64)),
                },
            )
        })
        .collect())
}

pub fn retention_setting(tx: &mut Tx<'_>, pattern: &str) -> Result<Retention> {
    Ok(retentions(tx)?
        .into_iter()
        .find(|(p, _)| p == pattern)
        .map(|(_, r)| r)
        .unwrap_or_default())
}

pub fn set_retention(
    tx: &mut Tx<'_>,
    pattern: &str,
    retention: &Retention,
    now: i64,
) -> Result<()> {
    if retention.is_unbounded() {
        tx.execute("DELETE FROM topic_config WHERE pattern = $1", &[&pattern])?;
        return Ok(());
    }
    let count = retention
        .max_count
        .map(|c| i64::try_from(c).unwrap_or(i64::MAX));
    let ns = retention
        .max_age
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    tx.execute(
        "INSERT INTO topic_config (pattern, retain_count, retain_ns) VALUES ($1, $2, $3) \
         ON CONFLICT (pattern) DO UPDATE SET retain_count = EXCLUDED.retain_count, \
         retain_ns = EXCLUDED.retain_ns",
        &[&pattern, &count, &ns],
    )?;
    for (topic_name, next) in topic_offsets(tx)? {
        if topic::matches(pattern, &topic_name) {
            trim(tx, &topic_name, next, now)?;
        }
    }
    Ok(())
}

fn topic_offsets(tx: &mut Tx<'_>) -> Result<Vec<(String, i64)>> {
    let rows = tx.query("SELECT topic, next_offset FROM topics", &[])?;
    let mut out: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

pub fn create_subscription(tx: &mut Tx<'_>, sub: &NewSubscription<'_>, now: i64) -> Result<u64> {
    reap(tx, now)?;
    let taken: bool = tx
        .one(
            "SELECT EXISTS(SELECT 1 FROM subscriptions WHERE name = $1)",
            &[&sub.name],
        )?
        .get(0);
    if taken {
        return Err(SubscriptionError::Exists(sub.name.to_owned()).into());
    }
    let is_queue: bool = tx
        .one(
            "SELECT EXISTS(SELECT 1 FROM messages WHERE queue = $1) \
             OR EXISTS(SELECT 1 FROM consumed WHERE queue = $1) \
             OR EXISTS(SELECT 1 FROM queue_config WHERE queue = $1)",
            &[&sub.name],
        )?
        .get(0);
    if is_queue {
        return Err(SubscriptionError::NameIsQueue(sub.name.to_owned()).into());
    }
    let expire = sub
        .ephemeral
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    // An ephemeral subscription's owner is this session: it keeps an
    // advisory lock for as long as its connection lives.
    let owner: Option<i32> = match sub.ephemeral {
        None => None,
        Some(_) => {
            let key: i32 = tx.one("SELECT nextval('owner_keys')::integer", &[])?.get(0);
            tx.one(
                "SELECT pg_advisory_lock($1, $2)",
                &[&(LOCK_CLASS + 2), &key],
            )?;
            Some(key)
        }
    };
    tx.execute(
        "INSERT INTO subscriptions (name, pattern, created_ns, ephemeral, touched_ns, expire_ns, \
         owner_key) VALUES ($1, $2, $3, $4, $3, $5, $6)",
        &[
            &sub.name,
            &sub.pattern,
            &now,
            &sub.ephemeral.is_some(),
            &expire,
            &owner,
        ],
    )?;
    replay(tx, sub.name, sub.pattern, sub.from)
}

fn replay(tx: &mut Tx<'_>, name: &str, pattern: &str, from: StartFrom) -> Result<u64> {
    let Some((min_offset, after_id)) = from.replay_bounds() else {
        return Ok(0);
    };
    let topics: Vec<String> = topic_offsets(tx)?
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| topic::matches(pattern, t))
        .collect();
    if topics.is_empty() {
        return Ok(0);
    }
    let count: i64 = tx
        .one(
            "SELECT count(*) FROM topic_log WHERE topic = ANY($1) AND topic_offset >= $2 AND id > $3",
            &[&topics, &min_offset, &after_id],
        )?
        .get(0);
    if count == 0 {
        return Ok(0);
    }
    let base = messages::reserve_ids(tx, count as usize)?;
    let copied = tx.execute(
        "INSERT INTO messages (id, queue, body, headers, topic, topic_offset) \
         SELECT $1::bigint - 1 + row_number() OVER (ORDER BY id), $2, body, headers, topic, topic_offset \
         FROM topic_log WHERE topic = ANY($3) AND topic_offset >= $4 AND id > $5 ORDER BY id",
        &[&base, &name, &topics, &min_offset, &after_id],
    )?;
    tx.changed();
    Ok(copied)
}

pub fn delete_subscription(tx: &mut Tx<'_>, name: &str) -> Result<bool> {
    let existed = tx.execute("DELETE FROM subscriptions WHERE name = $1", &[&name])? > 0;
    if existed {
        admin::delete_queue(tx, name)?;
    }
    Ok(existed)
}

/// Removes ephemeral subscriptions whose owner is gone: the owner's session
/// holds an advisory lock on the subscription's key, which ends with it (on
/// whatever host it ran), and nobody touched the subscription within its
/// expiry. Both must hold, so an owner that lost its connection for a
/// moment (a server restart) keeps its subscription while its keep-alive
/// goes on touching it; a live owner keeps it however long it is idle.
pub fn reap(tx: &mut Tx<'_>, now: i64) -> Result<u64> {
    let rows = tx.query(
        "SELECT s.name FROM subscriptions s WHERE s.ephemeral AND CASE \
         WHEN s.owner_key IS NOT NULL AND EXISTS (SELECT 1 FROM pg_locks l \
         WHERE l.locktype = 'advisory' \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND l.classid = $2::int::oid AND l.objid = s.owner_key::oid AND l.objsubid = 2 \
         AND l.granted) THEN false \
         ELSE s.expire_ns IS NOT NULL AND $1::bigint - s.touched_ns > s.expire_ns END \
         FOR UPDATE SKIP LOCKED",
        &[&now, &(LOCK_CLASS + 2)],
    )?;
    let stale: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    for name in &stale {
        delete_subscription(tx, name)?;
    }
    Ok(stale.len() as u64)
}

pub fn subscriptions(tx: &mut Tx<'_>) -> Result<Vec<SubscriptionInfo>> {
    let rows = tx.query("SELECT name, pattern, ephemeral FROM subscriptions", &[])?;
    let mut subs: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    subs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::with_capacity(subs.len());
    for (name, pattern, ephemeral) in subs {
        let depth: i64 = tx
            .one(
                "SELECT count(*) FROM messages WHERE queue = $1 AND state = 0",
                &[&name],
            )?
            .get(0);
        let rows = tx.query(
            "SELECT topic, min(topic_offset) FROM messages WHERE queue = $1 AND state = 0 \
             AND topic IS NOT NULL GROUP BY topic",
            &[&name],
        )?;
        let mut next_offsets: Vec<(String, i64)> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        next_offsets.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        out.push(SubscriptionInfo {
            name,
            pattern,
            ephemeral,
            depth: depth as u64,
            next_offsets,
        });
    }
    Ok(out)
}

pub fn topics(tx: &mut Tx<'_>) -> Result<Vec<TopicInfo>> {
    let mut out = Vec::new();
    for (topic_name, next_offset) in topic_offsets(tx)? {
        let row = tx.one(
            "SELECT count(*), min(topic_offset) FROM topic_log WHERE topic = $1",
            &[&topic_name],
        )?;
        let retained: i64 = row.get(0);
        out.push(TopicInfo {
            retention: retention_for(tx, &topic_name)?,
            topic: topic_name,
            retained: retained as u64,
            first_offset: row.get(1),
            next_offset,
        });
    }
    Ok(out)
}

pub fn touch(tx: &mut Tx<'_>, name: &str, now: i64) -> Result<bool> {
    Ok(tx.execute(
        "UPDATE subscriptions SET touched_ns = $1 WHERE name = $2",
        &[&now, &name],
    )? > 0)
}
