//! Broker-wide operations inside a transaction: deletes, counts, broadcast
//! and aliases.

use super::conn::Tx;
use super::messages;
use crate::broker::QueueStats;
use crate::error::{AliasError, Result};
use crate::message::Outgoing;

/// Byte order of names, as SQLite's default collation sorts them.
fn by_bytes<T>(rows: &mut [T], name: impl Fn(&T) -> &str) {
    rows.sort_by(|a, b| name(a).as_bytes().cmp(name(b).as_bytes()));
}

pub fn delete_queue(tx: &mut Tx<'_>, queue: &str) -> Result<u64> {
    let consumed = tx.execute("DELETE FROM consumed WHERE queue = $1", &[&queue])?;
    Ok(consumed + tx.execute("DELETE FROM messages WHERE queue = $1", &[&queue])?)
}

pub fn delete_all(tx: &mut Tx<'_>) -> Result<u64> {
    let consumed = tx.execute("DELETE FROM consumed", &[])?;
    Ok(consumed + tx.execute("DELETE FROM messages", &[])?)
}

pub fn delete_message(tx: &mut Tx<'_>, queue: &str, id: i64) -> Result<bool> {
    let n = tx.execute(
        "WITH gone AS (DELETE FROM messages WHERE queue = $1 AND id = $2 AND state = 0 \
         RETURNING seq, id, queue, body, headers, receives, dead_source, dead_reason, topic, \
         topic_offset) INSERT INTO consumed SELECT * FROM gone",
        &[&queue, &id],
    )?;
    Ok(n > 0)
}

pub fn queue_counts(tx: &mut Tx<'_>) -> Result<Vec<QueueStats>> {
    let rows = tx.query(
        "SELECT queue, sum(p)::bigint, sum(t)::bigint FROM (\
         SELECT queue, count(*) FILTER (WHERE state = 0) AS p, count(*) AS t FROM messages \
         GROUP BY queue UNION ALL SELECT queue, 0, count(*) FROM consumed GROUP BY queue) x \
         GROUP BY queue",
        &[],
    )?;
    let mut out: Vec<QueueStats> = rows
        .iter()
        .map(|r| QueueStats {
            name: r.get(0),
            pending: r.get::<_, i64>(1) as u64,
            total: r.get::<_, i64>(2) as u64,
            ..QueueStats::default()
        })
        .collect();
    by_bytes(&mut out, |q| &q.name);
    Ok(out)
}

pub fn broadcast(tx: &mut Tx<'_>, body: &str, accept: &dyn Fn(&str) -> bool) -> Result<usize> {
    let rows = tx.query(
        "SELECT queue FROM messages UNION SELECT queue FROM consumed",
        &[],
    )?;
    let mut names: Vec<String> = rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|q| accept(q))
        .collect();
    by_bytes(&mut names, |q| q);
    for name in &names {
        messages::write_in(tx, name, &[Outgoing::body(body)])?;
    }
    Ok(names.len())
}

pub fn total_count(tx: &mut Tx<'_>) -> Result<u64> {
    Ok(tx
        .one(
            "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM consumed)",
            &[],
        )?
        .get::<_, i64>(0) as u64)
}

pub fn consumed_count(tx: &mut Tx<'_>) -> Result<u64> {
    Ok(tx
        .one("SELECT count(*) FROM consumed", &[])?
        .get::<_, i64>(0) as u64)
}

/// Rows written to each queue with an id above `after_id`, consumed or not.
pub fn arrivals(tx: &mut Tx<'_>, after_id: i64) -> Result<crate::backend::Arrivals> {
    let rows = tx.query(
        "SELECT queue, count(*), max(id) FROM (\
         SELECT queue, id FROM messages WHERE id > $1 \
         UNION ALL SELECT queue, id FROM consumed WHERE id > $1) AS new GROUP BY queue",
        &[&after_id],
    )?;
    let mut out = crate::backend::Arrivals {
        queues: Vec::new(),
        last_id: after_id,
    };
    for r in rows {
        out.queues.push((r.get(0), r.get::<_, i64>(1) as u64));
        out.last_id = out.last_id.max(r.get(2));
    }
    Ok(out)
}

pub fn delete_consumed(tx: &mut Tx<'_>, batch: i64) -> Result<u64> {
    tx.execute(
        "DELETE FROM consumed WHERE id IN (SELECT id FROM consumed \
         LIMIT $1 FOR UPDATE SKIP LOCKED)",
        &[&batch],
    )
}

pub fn aliases(tx: &mut Tx<'_>) -> Result<Vec<(String, String)>> {
    let rows = tx.query("SELECT alias, target FROM aliases", &[])?;
    let mut out: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    by_bytes(&mut out, |a| &a.0);
    Ok(out)
}

pub fn alias_target(tx: &mut Tx<'_>, alias: &str) -> Result<Option<String>> {
    Ok(tx
        .opt("SELECT target FROM aliases WHERE alias = $1", &[&alias])?
        .map(|r| r.get(0)))
}

pub fn alias_add(tx: &mut Tx<'_>, alias: &str, target: &str) -> Result<()> {
    // One writer at a time decides the alias rules.
    tx.execute(
        "SELECT 1 FROM meta WHERE key = 'alias_version' FOR UPDATE",
        &[],
    )?;
    if alias_target(tx, alias)?.is_some() {
        return Err(AliasError::Exists(alias.to_owned()).into());
    }
    if alias_target(tx, target)?.is_some() {
        return Err(AliasError::TargetIsAlias.into());
    }
    let mut current = target.to_owned();
    for _ in 0..1000 {
        if current == alias {
            return Err(AliasError::Cycle(alias.to_owned()).into());
        }
        match alias_target(tx, &current)? {
            Some(next) => current = next,
            None => break,
        }
    }
    tx.execute(
        "INSERT INTO aliases (alias, target) VALUES ($1, $2)",
        &[&alias, &target],
    )?;
    bump_alias_version(tx)
}

pub fn alias_remove(tx: &mut Tx<'_>, alias: &str) -> Result<bool> {
    let removed = tx.execute("DELETE FROM aliases WHERE alias = $1", &[&alias])? > 0;
    if removed {
        bump_alias_version(tx)?;
    }
    Ok(removed)
}

fn bump_alias_version(tx: &mut Tx<'_>) -> Result<()> {
    tx.execute(
        "UPDATE meta SET value = $1 WHERE key = 'alias_version'",
        &[&crate::id::now_ns()],
    )?;
    Ok(())
}

/// Every stored API key, by name.
pub fn api_keys(tx: &mut Tx<'_>) -> Result<Vec<crate::backend::StoredKey>> {
    let rows = tx.query(
        "SELECT name, secret_hash, grants, created_ns FROM api_keys",
        &[],
    )?;
    let mut out: Vec<crate::backend::StoredKey> = rows
        .iter()
        .map(|r| crate::backend::StoredKey {
            name: r.get(0),
            secret_hash: r.get(1),
            grants: r.get(2),
            created_ns: r.get(3),
        })
        .collect();
    by_bytes(&mut out, |k| &k.name);
    Ok(out)
}

/// Stores a key; refused if its name or hash is taken.
pub fn api_key_add(tx: &mut Tx<'_>, key: &crate::backend::StoredKey) -> Result<()> {
    let n = tx.execute(
        "INSERT INTO api_keys (name, secret_hash, grants, created_ns) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
        &[&key.name, &key.secret_hash, &key.grants, &key.created_ns],
    )?;
    if n == 0 {
        return Err(crate::Error::KeyExists(key.name.clone()));
    }
    Ok(())
}

/// Removes a key; false if there was none.
pub fn api_key_revoke(tx: &mut Tx<'_>, name: &str) -> Result<bool> {
    Ok(tx.execute("DELETE FROM api_keys WHERE name = $1", &[&name])? > 0)
}
