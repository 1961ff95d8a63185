//! The reference's vacuum lock: `<db path minus extension>.vacuum.lock`, created
//! exclusively and holding the PID, stale after a timeout. Two vacuums of one
//! file (ours or Python's) never run at once.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// Held while vacuuming; removes the lock file when dropped.
pub struct VacuumLock {
    path: PathBuf,
}

impl VacuumLock {
    /// Takes the lock, or returns `None` if another live vacuum holds it.
    pub fn acquire(db: &Path, stale_after: Duration) -> Result<Option<VacuumLock>> {
        let path = db.with_extension("vacuum.lock");
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(Some(VacuumLock { path }));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if !is_stale(&path, stale_after) {
                        return Ok(None);
                    }
                    let _ = fs::remove_file(&path);
                }
                Err(e) => return Err(Error::io(format!("cannot create {}", path.display()), e)),
            }
        }
        Ok(None)
    }
}

fn is_stale(path: &Path, stale_after: Duration) -> bool {
    let modified = fs::metadata(path).and_then(|m| m.modified());
    match modified {
        Ok(t) => SystemTime::now().duration_since(t).unwrap_or_default() > stale_after,
        Err(_) => true,
    }
}

impl Drop for VacuumLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_first_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let first = VacuumLock::acquire(&db, Duration::from_secs(300)).unwrap();
        assert!(first.is_some());
        assert!(dir.path().join("q.vacuum.lock").exists());
        assert!(VacuumLock::acquire(&db, Duration::from_secs(300))
            .unwrap()
            .is_none());
        drop(first);
        assert!(VacuumLock::acquire(&db, Duration::from_secs(300))
            .unwrap()
            .is_some());
    }

    #[test]
    fn stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        fs::write(dir.path().join("q.vacuum.lock"), "1").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(VacuumLock::acquire(&db, Duration::from_millis(1))
            .unwrap()
            .is_some());
    }
}
