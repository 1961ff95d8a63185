//! Broker-wide operations inside a transaction: deletes, counts, broadcast and aliases.

use rusqlite::{params, Connection, OptionalExtension};

use super::messages;
use crate::backend::DbCounters;
use crate::broker::QueueStats;
use crate::error::{AliasError, Result};
use crate::message::Outgoing;

/// Physically deletes every row of `queue`.
pub fn delete_queue(conn: &Connection, queue: &str) -> Result<u64> {
    conn.execute(
        "DELETE FROM lb_message_ext WHERE msg IN (SELECT id FROM messages WHERE queue = ?1)",
        [queue],
    )?;
    Ok(conn.execute("DELETE FROM messages WHERE queue = ?1", [queue])? as u64)
}

/// Physically deletes every message.
pub fn delete_all(conn: &Connection) -> Result<u64> {
    conn.execute("DELETE FROM lb_message_ext", [])?;
    Ok(conn.execute("DELETE FROM messages", [])? as u64)
}

/// Consumes one visible message by id (the reference's `delete -m`).
pub fn delete_message(conn: &Connection, queue: &str, id: i64) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE messages SET claimed = 1 WHERE queue = ?1 AND ts = ?2 AND claimed = 0",
        params![queue, id],
    )?;
    Ok(changed > 0)
}

/// Per-queue pending and total counts, by name in byte order.
pub fn queue_counts(conn: &Connection) -> Result<Vec<QueueStats>> {
    let mut stmt = conn.prepare_cached(
        "SELECT queue, SUM(CASE WHEN claimed = 0 THEN 1 ELSE 0 END), COUNT(*) \
         FROM messages GROUP BY queue ORDER BY queue",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(QueueStats {
            name: r.get(0)?,
            pending: r.get(1)?,
            total: r.get(2)?,
            ..QueueStats::default()
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Copies `body` into every existing queue `accept`s, ids allocated in name order.
pub fn broadcast(conn: &Connection, body: &str, accept: &dyn Fn(&str) -> bool) -> Result<usize> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT queue FROM messages ORDER BY queue")?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?
        .into_iter()
        .filter(|q| accept(q))
        .collect();
    for name in &names {
        messages::write(conn, name, &[Outgoing::body(body)], 0)?;
    }
    Ok(names.len())
}

/// Row count and id high-water mark.
pub fn counters(conn: &Connection) -> Result<DbCounters> {
    let total: i64 = conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
    Ok(DbCounters {
        total_messages: total as u64,
        last_id: messages::last_id(conn)?,
    })
}

/// Rows consumed but not yet vacuumed.
pub fn consumed_count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM messages WHERE claimed = 1", [], |r| {
        r.get(0)
    })?;
    Ok(n as u64)
}

/// Rows written to each queue with an id (`ts`) above `after_id`.
pub fn arrivals(conn: &Connection, after_id: i64) -> Result<crate::backend::Arrivals> {
    let mut stmt = conn.prepare_cached(
        "SELECT queue, COUNT(*), MAX(ts) FROM messages WHERE ts > ?1 GROUP BY queue",
    )?;
    let mut out = crate::backend::Arrivals {
        queues: Vec::new(),
        last_id: after_id,
    };
    let rows = stmt.query_map([after_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (queue, n, last) = row?;
        out.queues.push((queue, n as u64));
        out.last_id = out.last_id.max(last);
    }
    Ok(out)
}

/// Deletes up to `batch` consumed rows.
pub fn delete_consumed(conn: &Connection, batch: u64) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE claimed = 1 LIMIT ?1)",
        [batch as i64],
    )?;
    Ok(n as u64)
}

/// Every alias, sorted by alias (code-point order, which equals byte order for UTF-8).
pub fn aliases(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT alias, target FROM queue_aliases ORDER BY alias")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The target of `alias`.
pub fn alias_target(conn: &Connection, alias: &str) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached("SELECT target FROM queue_aliases WHERE alias = ?1")?;
    Ok(stmt.query_row([alias], |r| r.get(0)).optional()?)
}

/// Adds `alias -> target` after the reference's checks (duplicate, alias of an
/// alias, cycles), and bumps `meta.alias_version` so caches notice.
pub fn alias_add(conn: &Connection, alias: &str, target: &str) -> Result<()> {
    if alias_target(conn, alias)?.is_some() {
        return Err(AliasError::Exists(alias.to_owned()).into());
    }
    if alias_target(conn, target)?.is_some() {
        return Err(AliasError::TargetIsAlias.into());
    }
    if target_leads_back(conn, alias, target)? {
        return Err(AliasError::Cycle(alias.to_owned()).into());
    }
    conn.execute(
        "INSERT INTO queue_aliases (alias, target) VALUES (?1, ?2)",
        [alias, target],
    )?;
    bump_alias_version(conn)
}

/// Follows existing links from `target`; true if they reach `alias`.
fn target_leads_back(conn: &Connection, alias: &str, target: &str) -> Result<bool> {
    let mut current = target.to_owned();
    for _ in 0..1000 {
        if current == alias {
            return Ok(true);
        }
        match alias_target(conn, &current)? {
            Some(next) => current = next,
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// Removes `alias`; false if it did not exist.
pub fn alias_remove(conn: &Connection, alias: &str) -> Result<bool> {
    let removed = conn.execute("DELETE FROM queue_aliases WHERE alias = ?1", [alias])? > 0;
    if removed {
        bump_alias_version(conn)?;
    }
    Ok(removed)
}

fn bump_alias_version(conn: &Connection) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('alias_version', ?1) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [crate::id::now_ns()],
    )?;
    Ok(())
}

/// Every stored API key, by name.
pub fn api_keys(conn: &Connection) -> Result<Vec<crate::backend::StoredKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, secret_hash, grants, created_ns FROM lb_api_keys ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(crate::backend::StoredKey {
            name: r.get(0)?,
            secret_hash: r.get(1)?,
            grants: r.get(2)?,
            created_ns: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stores a key; refused if its name or hash is taken.
pub fn api_key_add(conn: &Connection, key: &crate::backend::StoredKey) -> Result<()> {
    let taken: bool = conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM lb_api_keys WHERE name = ?1 OR secret_hash = ?2)",
        )?
        .query_row([&key.name, &key.secret_hash], |r| r.get(0))?;
    if taken {
        return Err(crate::Error::KeyExists(key.name.clone()));
    }
    conn.prepare_cached(
        "INSERT INTO lb_api_keys (name, secret_hash, grants, created_ns) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![
        key.name,
        key.secret_hash,
        key.grants,
        key.created_ns
    ])?;
    Ok(())
}

/// Removes a key; false if there was none.
pub fn api_key_revoke(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM lb_api_keys WHERE name = ?1")?
        .execute([name])?
        > 0)
}

/// Whether the server's tables exist yet (see [`super::schema::SERVER_DDL`]).
pub fn has_server_tables(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name = 'lb_api_keys')")?
        .query_row([], |r| r.get(0))?)
}
