//! Custody records: which process holds which messages, how far its delivery
//! got, and the lazy release of messages whose holder died (see [`crate::holder`]).
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

use crate::error::{Error, Result};
use crate::holder::{Liveness, ProcessIdentity};

/// Records `me` as a new holder and returns its token (messages it holds get `claimed = -token`).
pub fn register(conn: &Connection, me: &ProcessIdentity) -> Result<i64> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO lb_holders (pid, start_time, boot_id, host, created_ns) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    stmt.execute(params![
        me.pid,
        me.start_time,
        me.boot_id,
        me.host,
        crate::id::now_ns()
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Forgets holder `token` (its messages must already be settled) and its progress file.
pub fn unregister(conn: &Connection, db: &Path, token: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM lb_holders WHERE token = ?1")?
        .execute([token])?;
    let _ = fs::remove_file(progress_path(db, token));
    Ok(())
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
}

impl ProgressFile {
    /// Creates the progress file for `token` (private, like the database).
    pub fn create(db: &Path, token: i64) -> Result<Self> {
        let path = progress_path(db, token);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        Ok(ProgressFile { file })
    }

    /// Records that everything up to storage position `seq` was delivered.
    pub fn record(&self, seq: i64) -> Result<()> {
        self.file
            .write_all_at(&seq.to_le_bytes(), 0)
            .map_err(|e| Error::io("cannot record delivery progress", e))
    }
}

/// The recorded progress of holder `token`, if it wrote any.
fn read_progress(db: &Path, token: i64) -> Option<i64> {
    let bytes = fs::read(progress_path(db, token)).ok()?;
    Some(i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Settles the messages of every dead holder: delivered ones (per its progress
/// file) are consumed, the rest return to their queue in place. Cheap when
/// there are none (one scan of a tiny table).
pub fn release_dead(conn: &Connection, db: &Path, me: &ProcessIdentity) -> Result<u64> {
    let mut released = 0;
    for (token, holder) in holders(conn)? {
        if holder.liveness(me) == Liveness::Dead {
            if let Some(done) = read_progress(db, token) {
                conn.execute(
                    "UPDATE messages SET claimed = 1 WHERE claimed = ?1 AND id <= ?2",
                    params![-token, done],
                )?;
            }
            released += release_all(conn, token)?;
            unregister(conn, db, token)?;
        }
    }
    Ok(released)
}

fn holders(conn: &Connection) -> Result<Vec<(i64, ProcessIdentity)>> {
    let mut stmt =
        conn.prepare_cached("SELECT token, pid, start_time, boot_id, host FROM lb_holders")?;
    let rows = stmt.query_map([], |r| {
        let id = ProcessIdentity {
            pid: r.get(1)?,
            start_time: r.get(2)?,
            boot_id: r.get(3)?,
            host: r.get(4)?,
        };
        Ok((r.get::<_, i64>(0)?, id))
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

/// Releases held messages whose holder record no longer exists (maintenance, run by vacuum).
pub fn release_orphans(conn: &Connection) -> Result<u64> {
    let n = conn.execute(
        "UPDATE messages SET claimed = 0 WHERE claimed < 0 \
         AND -claimed NOT IN (SELECT token FROM lb_holders)",
        [],
    )?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(".broker.db");
        let p = ProgressFile::create(&db, 7).unwrap();
        assert_eq!(read_progress(&db, 7), None, "nothing recorded yet");
        p.record(12345).unwrap();
        assert_eq!(read_progress(&db, 7), Some(12345));
        assert!(dir.path().join(".broker.db.holder-7").exists());
        assert_eq!(read_progress(&db, 8), None);
    }
}
