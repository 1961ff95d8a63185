//! The reference's vacuum lock: `<db path minus extension>.vacuum.lock`, created
//! exclusively and holding the PID, stale after a timeout. Two vacuums of one
//! file (ours or Python's) never run at once.
//!
//! The reference writes `<pid>\n` and judges a lock only by its age, so a
//! vacuum killed mid-way blocked every later one for `BROKER_VACUUM_LOCK_TIMEOUT`
//! (5 minutes), each reporting success. We write the same first line plus a
//! second one, `<start time> <boot id> <host>` (ignored by the reference), and
//! take over at once a lock whose process is certainly gone: a WAL database is
//! only ever shared by processes of one machine, so the PID can be checked.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::holder::{Liveness, ProcessIdentity};
use crate::error::{Error, Result};

/// How long a lock file may stay empty or unreadable (its creator writes the
/// PID right after creating it) before it is taken for a crashed creator's.
const UNWRITTEN_GRACE: Duration = Duration::from_secs(10);

/// Held while vacuuming; removes the lock file when dropped.
#[derive(Debug)]
pub struct VacuumLock {
    path: PathBuf,
}

/// Who holds the lock when it cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The PID written in the lock file, if it could be read.
    pub pid: Option<i64>,
    /// The lock file.
    pub path: PathBuf,
}

impl VacuumLock {
    /// Takes the lock, or returns who holds it if another live vacuum does.
    pub fn acquire(db: &Path, stale_after: Duration) -> Result<std::result::Result<Self, Holder>> {
        let path = db.with_extension("vacuum.lock");
        let me = ProcessIdentity::current();
        for _ in 0..3 {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600) // as the reference creates it
                .open(&path)
            {
                Ok(mut file) => {
                    let _ = write!(
                        file,
                        "{}\n{} {} {}\n",
                        me.pid, me.start_time, me.boot_id, me.host
                    );
                    return Ok(Ok(VacuumLock { path }));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let (stale, pid) = judge(&path, stale_after, &me);
                    if !stale {
                        return Ok(Err(Holder { pid, path }));
                    }
                    let _ = fs::remove_file(&path);
                }
                Err(e) => return Err(Error::io(format!("cannot create {}", path.display()), e)),
            }
        }
        let pid = judge(&path, stale_after, &me).1;
        Ok(Err(Holder { pid, path }))
    }
}

/// What to tell the user when another vacuum holds the lock of `db`.
pub fn busy_message(db: &Path, held: &Holder) -> String {
    let by = held.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    format!(
        "another vacuum of {} is running{by}; nothing was vacuumed (lock file {})",
        db.display(),
        held.path.display()
    )
}

/// Whether the lock at `path` may be taken over, and the PID it names.
///
/// Stale: older than `stale_after` (the reference's rule), or naming a
/// process that is certainly gone (ours: PID, start time and boot id; the
/// reference's: a PID that no longer exists), or empty for longer than
/// [`UNWRITTEN_GRACE`].
fn judge(path: &Path, stale_after: Duration, me: &ProcessIdentity) -> (bool, Option<i64>) {
    let Ok(meta) = fs::metadata(path) else {
        return (true, None); // gone meanwhile: try again
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    if age > stale_after {
        return (true, None);
    }
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    let Some(pid) = lines.next().and_then(|l| l.trim().parse::<i64>().ok()) else {
        return (age > UNWRITTEN_GRACE, None);
    };
    let holder = match lines.next().map(|l| l.splitn(3, ' ').collect::<Vec<_>>()) {
        Some(f) if f.len() == 3 => ProcessIdentity {
            pid,
            start_time: f[0].parse().unwrap_or(0),
            boot_id: f[1].to_owned(),
            host: f[2].to_owned(),
        },
        // The reference's lock: judge by the PID alone.
        _ => {
            let gone = pid <= 0 || !Path::new(&format!("/proc/{pid}")).exists();
            return (gone, Some(pid));
        }
    };
    let dead = holder.pid != me.pid && holder.liveness(me) == Liveness::Dead;
    (dead, Some(pid))
}

impl Drop for VacuumLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(300);

    #[test]
    fn second_lock_is_refused_until_first_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let first = VacuumLock::acquire(&db, LONG).unwrap().unwrap();
        let lock = dir.path().join("q.vacuum.lock");
        assert!(lock.exists());
        let held = VacuumLock::acquire(&db, LONG).unwrap().unwrap_err();
        assert_eq!(held.pid, Some(i64::from(std::process::id())));
        assert_eq!(held.path, lock);
        drop(first);
        assert!(VacuumLock::acquire(&db, LONG).unwrap().is_ok());
    }

    #[test]
    fn lock_of_an_old_age_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        fs::write(dir.path().join("q.vacuum.lock"), "1\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(VacuumLock::acquire(&db, Duration::from_millis(1))
            .unwrap()
            .is_ok());
    }

    /// The PID of a process that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn lock_of_a_dead_process_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let me = ProcessIdentity::current();
        let pid = dead_pid();
        // Ours (with identity) and the reference's (PID only).
        for content in [
            format!("{pid}\n{} {} {}\n", me.start_time, me.boot_id, me.host),
            format!("{pid}\n"),
        ] {
            fs::write(dir.path().join("q.vacuum.lock"), content).unwrap();
            let lock = VacuumLock::acquire(&db, LONG).unwrap();
            assert!(lock.is_ok());
        }
    }

    #[test]
    fn lock_of_a_live_process_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        fs::write(
            dir.path().join("q.vacuum.lock"),
            format!("{}\n", child.id()),
        )
        .unwrap();
        let held = VacuumLock::acquire(&db, LONG).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(held.unwrap_err().pid, Some(i64::from(child.id())));
    }

    #[test]
    fn a_lock_being_written_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        fs::write(dir.path().join("q.vacuum.lock"), "").unwrap();
        assert!(VacuumLock::acquire(&db, LONG).unwrap().is_err());
    }
}
