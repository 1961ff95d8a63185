//! Custody records: which process holds which messages, how far its delivery
//! got, and the lazy release of messages whose holder died (see [`crate::backend::sqlite::holder`]).
//!
//! A holder's delivery progress lives in a small file next to the database,
//! `<db>.holder-<token>`, updated after every write to the consumer with one
//! `pwrite` and no transaction. When a dead holder is found, the messages up to
//! its recorded progress are consumed (they were delivered) and the rest are
//! released in place: a kill redelivers only what was written after the last
//! progress record.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use super::holder::{Liveness, ProcessIdentity};
use crate::error::{Error, Result};

/// One holder record: its token (messages it holds get `claimed = -token`)
/// and its tag, a value unique to this record that its progress file must
/// carry, so that a file left behind by an earlier holder (a crash after a
/// commit, a deleted and recreated database) can never speak for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HolderKey {
    /// The row's token.
    pub token: i64,
    /// The row's `created_ns`.
    pub tag: i64,
}

/// Records `me` as a new holder and returns its key.
pub fn register(conn: &Connection, me: &ProcessIdentity) -> Result<HolderKey> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO lb_holders (pid, start_time, boot_id, host, created_ns) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let tag = crate::id::now_ns();
    stmt.execute(params![me.pid, me.start_time, me.boot_id, me.host, tag])?;
    Ok(HolderKey {
        token: conn.last_insert_rowid(),
        tag,
    })
}

/// Forgets holder `token` (its messages must already be settled). Its
/// progress file is removed only after this commits (see [`AfterCommit`]):
/// removed before, a failed or interrupted commit would leave a live holder
/// record without its progress, and its whole batch would be delivered again.
pub fn unregister(conn: &Connection, db: &Path, token: i64, after: &AfterCommit) -> Result<()> {
    conn.prepare_cached("DELETE FROM lb_holders WHERE token = ?1")?
        .execute([token])?;
    after.remove(progress_path(db, token));
    Ok(())
}

/// Files to remove once the current transaction has committed (and to keep
/// if it rolls back).
#[derive(Debug, Default)]
pub struct AfterCommit(std::cell::RefCell<Vec<PathBuf>>);

impl AfterCommit {
    fn remove(&self, path: PathBuf) {
        self.0.borrow_mut().push(path);
    }

    /// The transaction committed: remove the files.
    pub fn committed(&self) {
        for path in self.0.borrow_mut().drain(..) {
            let _ = fs::remove_file(path);
        }
    }

    /// The transaction rolled back: keep them.
    pub fn rolled_back(&self) {
        self.0.borrow_mut().clear();
    }
}

/// Where holder `token` of database `db` records its delivery progress.
pub fn progress_path(db: &Path, token: i64) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".holder-{token}"));
    db.with_file_name(name)
}

/// The progress file of a live holder, written in place.
pub struct ProgressFile {
    file: File,
    tag: i64,
}

impl ProgressFile {
    /// Creates the progress file for `key` (private, like the database).
    pub fn create(db: &Path, key: HolderKey) -> Result<Self> {
        let path = progress_path(db, key.token);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        Ok(ProgressFile { file, tag: key.tag })
    }

    /// Records that everything up to storage position `seq` was delivered
    /// (one `pwrite` of position and tag: all or nothing at this size).
    pub fn record(&self, seq: i64) -> Result<()> {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&seq.to_le_bytes());
        bytes[8..].copy_from_slice(&self.tag.to_le_bytes());
        self.file
            .write_all_at(&bytes, 0)
            .map_err(|e| Error::io("cannot record delivery progress", e))
    }
}

/// The recorded progress of holder `key`, if it wrote any under its own tag.
fn read_progress(db: &Path, key: HolderKey) -> Option<i64> {
    let bytes = fs::read(progress_path(db, key.token)).ok()?;
    let seq = i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let tag = i64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    (tag == key.tag).then_some(seq)
}

/// Consumes the messages held under `token` up to storage position `seq`
/// (what a dead holder's progress record says it delivered).
fn consume_through(conn: &Connection, token: i64, seq: i64) -> Result<u64> {
    let n = conn
        .prepare_cached("UPDATE messages SET claimed = 1 WHERE claimed = ?1 AND id <= ?2")?
        .execute(params![-token, seq])?;
    Ok(n as u64)
}

/// Ends holder `key` as a dead holder is ended: what its progress record
/// says was delivered is consumed, the rest returns to its queue in place,
/// and the record goes. Returns how many messages returned.
pub fn close(conn: &Connection, db: &Path, key: HolderKey, after: &AfterCommit) -> Result<u64> {
    if let Some(done) = read_progress(db, key) {
        consume_through(conn, key.token, done)?;
    }
    let released = release_all(conn, key.token)?;
    unregister(conn, db, key.token, after)?;
    Ok(released)
}

/// Settles the messages of every dead holder (see [`close`]). Cheap when
/// there are none (one scan of a tiny table).
pub fn release_dead(
    conn: &Connection,
    db: &Path,
    me: &ProcessIdentity,
    after: &AfterCommit,
) -> Result<u64> {
    let mut released = 0;
    for (key, holder) in holders(conn)? {
        if holder.liveness(me) == Liveness::Dead {
            released += close(conn, db, key, after)?;
        }
    }
    Ok(released)
}

fn holders(conn: &Connection) -> Result<Vec<(HolderKey, ProcessIdentity)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT token, created_ns, pid, start_time, boot_id, host FROM lb_holders",
    )?;
    let rows = stmt.query_map([], |r| {
        let key = HolderKey {
            token: r.get(0)?,
            tag: r.get(1)?,
        };
        let id = ProcessIdentity {
            pid: r.get(2)?,
            start_time: r.get(3)?,
            boot_id: r.get(4)?,
            host: r.get(5)?,
        };
        Ok((key, id))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Returns every message held under `token` to its queue.
pub fn release_all(conn: &Connection, token: i64) -> Result<u64> {
    let n = conn.execute(
        "UPDATE messages SET claimed = 0 WHERE claimed = ?1",
        [-token],
    )?;
    Ok(n as u64)
}

/// Releases held messages whose holder record no longer exists, and removes
/// progress files no holder record owns (maintenance, run by vacuum).
pub fn release_orphans(conn: &Connection, db: &Path, after: &AfterCommit) -> Result<u64> {
    let n = conn.execute(
        "UPDATE messages SET claimed = 0 WHERE claimed < 0 \
         AND -claimed NOT IN (SELECT token FROM lb_holders)",
        [],
    )?;
    let live: std::collections::HashSet<i64> = holders(conn)?
        .into_iter()
        .map(|(key, _)| key.token)
        .collect();
    for token in stray_progress_files(db) {
        if !live.contains(&token) {
            after.remove(progress_path(db, token));
        }
    }
    Ok(n as u64)
}

/// Tokens of the progress files next to `db`.
fn stray_progress_files(db: &Path) -> Vec<i64> {
    let prefix = format!(
        "{}.holder-",
        db.file_name().unwrap_or_default().to_string_lossy()
    );
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            name.to_str()?.strip_prefix(&prefix)?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(".broker.db");
        let key = HolderKey { token: 7, tag: 99 };
        let p = ProgressFile::create(&db, key).unwrap();
        assert_eq!(read_progress(&db, key), None, "nothing recorded yet");
        p.record(12345).unwrap();
        assert_eq!(read_progress(&db, key), Some(12345));
        assert!(dir.path().join(".broker.db.holder-7").exists());
        assert_eq!(read_progress(&db, HolderKey { token: 8, tag: 99 }), None);
        // A file left by an earlier holder with the same token speaks for nobody else.
        assert_eq!(read_progress(&db, HolderKey { token: 7, tag: 100 }), None);
        assert_eq!(stray_progress_files(&db), vec![7]);
    }
}
