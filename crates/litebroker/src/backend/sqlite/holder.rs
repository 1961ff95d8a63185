//! Process identity, so that messages held by a process that died can be
//! returned to their queue by whoever looks next. This is how the SQLite
//! backend judges liveness (a file has no sessions); a server backend judges
//! it by its own means (PostgreSQL: the holding session dies with its
//! connection).
//!
//! A message being delivered is first *held* (invisible to every reader, the
//! Python reference included) and only marked consumed once the consumer has
//! it. If the holder is killed in between, the next reader sees that the holder
//! process is gone and releases its messages in place: a kill costs at most a
//! redelivery, never a loss. No daemon is needed.

use std::fs;

/// Who holds messages: enough to tell later whether that process still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// Process id.
    pub pid: i64,
    /// The process start time in clock ticks since boot (guards against pid reuse).
    pub start_time: i64,
    /// The kernel boot id: a holder from before a reboot is certainly dead.
    pub boot_id: String,
    /// Host name plus pid namespace: liveness is only judged for holders we can see.
    pub host: String,
}

/// What we can say about a recorded holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Running (or possibly running: a process we cannot inspect is assumed alive).
    Alive,
    /// Certainly gone: its messages may be released.
    Dead,
}

impl ProcessIdentity {
    /// The identity of the calling process.
    pub fn current() -> Self {
        let pid = i64::from(std::process::id());
        ProcessIdentity {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            boot_id: boot_id(),
            host: host_key(),
        }
    }

    /// Whether the process this identity describes is still running, judged from
    /// the calling process's point of view (`me`).
    pub fn liveness(&self, me: &ProcessIdentity) -> Liveness {
        if self == me {
            // The caller itself: alive, no need to read /proc (every consuming
            // transaction checks every holder, its own included).
            return Liveness::Alive;
        }
        if self.host != me.host {
            return Liveness::Alive; // another machine or namespace: cannot tell
        }
        if self.boot_id != me.boot_id {
            return Liveness::Dead; // the machine rebooted since
        }
        match process_start_time(self.pid) {
            Some(start) if start == self.start_time => Liveness::Alive,
            Some(_) | None => Liveness::Dead,
        }
    }
}

/// Field 22 of `/proc/<pid>/stat`: the process start time, or `None` if no such process.
fn process_start_time(pid: i64) -> Option<i64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields resume after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let state = after_name.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None; // a zombie has finished: it holds nothing any more
    }
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn host_key() -> String {
    let ns = fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}|{}", hostname(), ns)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive() {
        let me = ProcessIdentity::current();
        assert!(me.start_time > 0);
        assert_eq!(me.liveness(&me), Liveness::Alive);
        // Seen from another process on this machine, /proc says the same.
        let observer = ProcessIdentity {
            pid: me.pid + 1,
            ..me.clone()
        };
        assert_eq!(me.liveness(&observer), Liveness::Alive);
    }

    #[test]
    fn exited_process_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        let start = process_start_time(pid);
        child.wait().unwrap();
        let me = ProcessIdentity::current();
        let gone = ProcessIdentity {
            pid,
            start_time: start.unwrap_or(1),
            ..me.clone()
        };
        assert_eq!(gone.liveness(&me), Liveness::Dead);
    }

    #[test]
    fn reused_pid_is_dead() {
        let me = ProcessIdentity::current();
        let other = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert_eq!(other.liveness(&me), Liveness::Dead);
    }

    #[test]
    fn other_boot_is_dead_other_host_is_unknown() {
        let me = ProcessIdentity::current();
        let rebooted = ProcessIdentity {
            boot_id: "x".into(),
            ..me.clone()
        };
        assert_eq!(rebooted.liveness(&me), Liveness::Dead);
        let remote = ProcessIdentity {
            host: "elsewhere".into(),
            pid: 1 << 30,
            ..me.clone()
        };
        assert_eq!(remote.liveness(&me), Liveness::Alive);
    }
}
