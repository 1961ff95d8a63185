//! Knowing which messages the reader of a pipe has really read.
//!
//! Bytes written to a pipe wait in its buffer until the reader reads them; a
//! reader that exits first (`head -1`) takes them with it. So when stdout is a
//! pipe, a message counts as delivered only once the reader has drained the
//! pipe past it: `ioctl(FIONREAD)` on the write end says how many bytes are
//! still unread. And the writer runs ahead of the reader only by a [`Window`]
//! that starts at one message and grows while the reader keeps reading (TCP's
//! slow start), so a reader that stops early can only have read a little more
//! than it used. Waiting for the reader is `ppoll` with a growing timeout; a
//! reader that closes the pipe wakes it at once (`POLLERR`).
//!
//! [`Transit`] is the arithmetic, [`Pipe`] the system calls.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

/// Most bytes written and not yet read at any time (a pipe's default capacity).
pub const MAX_BYTES: usize = 64 * 1024;
/// Most messages written and not yet read at any time.
pub const MAX_MESSAGES: usize = 8 * 1024;
/// The first pause when waiting for the reader; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_micros(50);
/// The longest pause between two looks at the pipe while the reader is slow.
const LONGEST_PAUSE: Duration = Duration::from_millis(20);

/// How many messages may be in transit (written, not yet read) at once: one
/// at first, then one more for each message the reader reads, so the window
/// doubles each time the reader drains it, up to [`MAX_MESSAGES`], and never
/// more than [`MAX_BYTES`] (a single message is always allowed, whatever its size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    limit: usize,
}

impl Default for Window {
    fn default() -> Self {
        Window { limit: 1 }
    }
}

impl Window {
    /// How many messages may be in transit now.
    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether a message of `len` bytes may be written while `messages`
    /// messages of `bytes` bytes in all are in transit.
    pub fn admits(&self, messages: usize, bytes: u64, len: u64) -> bool {
        messages == 0 || (messages < self.limit && bytes.saturating_add(len) <= MAX_BYTES as u64)
    }

    /// The reader read `n` more messages.
    pub fn grow(&mut self, n: usize) {
        self.limit = self.limit.saturating_add(n).min(MAX_MESSAGES);
    }
}

/// The messages written to a pipe and not yet read, by their offsets in the
/// byte stream written to it.
#[derive(Debug, Default)]
pub struct Transit {
    window: Window,
    /// Bytes written so far.
    sent: u64,
    /// Where the last message admitted ends (>= `sent` while writing it).
    queued: u64,
    /// Where the last message the reader has read in full ends.
    read_to: u64,
    /// Where each admitted, not yet read message ends, oldest first.
    ends: VecDeque<u64>,
}

impl Transit {
    /// Admits a message of `len` bytes if the window allows it; then it is in
    /// transit from now on and must be written next.
    pub fn admit(&mut self, len: usize) -> bool {
        let len = len as u64;
        if !self
            .window
            .admits(self.ends.len(), self.queued - self.read_to, len)
        {
            return false;
        }
        self.queued += len;
        self.ends.push_back(self.queued);
        true
    }

    /// `n` bytes of the admitted messages were written.
    pub fn wrote(&mut self, n: usize) {
        self.sent += n as u64;
    }

    /// The pipe holds `unread` bytes not yet read: confirms every message
    /// that lies wholly before them and returns how many that newly is.
    /// Unread bytes that are not ours (another writer of the same pipe) only
    /// make this count fewer.
    pub fn unread(&mut self, unread: u64) -> usize {
        let read_to = self.sent.saturating_sub(unread);
        let mut n = 0;
        while let Some(&end) = self.ends.front() {
            if end > read_to {
                break;
            }
            self.ends.pop_front();
            self.read_to = end;
            n += 1;
        }
        self.window.grow(n);
        n
    }

    /// How many messages are in transit.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no message is in transit.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The reader is gone: the messages in transit will never be read.
    /// Forgets them (bytes of them left in the pipe stay there, unread).
    pub fn abandon(&mut self) {
        self.ends.clear();
        self.queued = self.sent;
        self.read_to = self.sent;
    }

    /// The current window.
    #[cfg(test)]
    pub fn window(&self) -> &Window {
        &self.window
    }
}

/// The write end of a pipe, with what is in transit through it.
#[derive(Debug)]
pub struct Pipe {
    fd: libc::c_int,
    /// What is in transit.
    pub transit: Transit,
}

impl Pipe {
    /// `fd` as a pipe, if it is one (and this system can tell what its reader read).
    pub fn open(fd: libc::c_int) -> Option<Pipe> {
        is_pipe(fd).then(|| Pipe {
            fd,
            transit: Transit::default(),
        })
    }

    /// Looks at how much the reader has read; returns how many messages that newly confirms.
    pub fn look(&mut self) -> io::Result<usize> {
        let unread = unread(self.fd)?;
        Ok(self.transit.unread(unread))
    }

    /// Waits until the reader has read at least one more message in transit
    /// (returns how many it read), or went away (`BrokenPipe`; what it did read
    /// before is confirmed first). Without anything in transit, returns 0.
    pub fn wait_for_reader(&mut self) -> io::Result<usize> {
        let mut pause = FIRST_PAUSE;
        loop {
            if self.transit.is_empty() {
                return Ok(0);
            }
            let n = self.look()?;
            if n > 0 {
                return Ok(n);
            }
            if reader_gone(self.fd, pause)? {
                let n = self.look()?;
                return match n {
                    0 => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
                    n => Ok(n),
                };
            }
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }
}

/// Whether `fd` is a pipe (or FIFO) whose unread bytes `FIONREAD` reports.
#[cfg(target_os = "linux")]
fn is_pipe(fd: libc::c_int) -> bool {
    // SAFETY: fstat only writes into the zeroed struct we own.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO
    }
}

/// Elsewhere the write end of a pipe does not reliably say what is unread:
/// stdout is treated like a file.
#[cfg(not(target_os = "linux"))]
fn is_pipe(_fd: libc::c_int) -> bool {
    false
}

/// Bytes in the pipe that its reader has not read yet.
fn unread(fd: libc::c_int) -> io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as u64)
}

/// Waits up to `pause` for the pipe's reader to go away; whether it did.
/// A signal ends the wait early (not gone).
fn reader_gone(fd: libc::c_int, pause: Duration) -> io::Result<bool> {
    // No events asked for: only POLLERR (no reader left) can end the wait early.
    let mut pfd = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    let timeout = libc::timespec {
        tv_sec: pause.as_secs() as libc::time_t,
        tv_nsec: pause.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask.
    let r = unsafe { libc::ppoll(&mut pfd, 1, &timeout, std::ptr::null()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::Interrupted => Ok(false),
            _ => Err(e),
        };
    }
    Ok(r > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admits and "writes" `lens` at once; returns how many were admitted.
    fn send(t: &mut Transit, lens: &[usize]) -> usize {
        let mut n = 0;
        for &len in lens {
            if !t.admit(len) {
                break;
            }
            t.wrote(len);
            n += 1;
        }
        n
    }

    #[test]
    fn starts_at_one_message() {
        let mut t = Transit::default();
        assert_eq!(send(&mut t, &[7, 7, 7]), 1);
        assert_eq!(t.len(), 1);
        assert_eq!(t.unread(7), 0, "nothing read yet");
        assert_eq!(send(&mut t, &[7]), 0, "window still full");
    }

    #[test]
    fn doubles_per_drained_window() {
        let mut t = Transit::default();
        let mut limits = vec![];
        for _ in 0..6 {
            let n = send(&mut t, &[7; 100]);
            limits.push(n);
            assert_eq!(t.unread(0), n, "reader drained it all");
        }
        assert_eq!(limits, [1, 2, 4, 8, 16, 32]);
    }

    #[test]
    fn partial_read_confirms_whole_messages_only() {
        let mut t = Transit::default();
        t.window.grow(9);
        assert_eq!(send(&mut t, &[10, 10, 10]), 3);
        // 30 sent, 15 unread: the reader is halfway through the second message.
        assert_eq!(t.unread(15), 1);
        assert_eq!(t.len(), 2);
        assert_eq!(t.window().limit(), 11);
        assert_eq!(t.unread(10), 1);
        assert_eq!(t.unread(0), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn capped_in_bytes_and_messages() {
        let mut t = Transit::default();
        t.window.grow(usize::MAX);
        assert_eq!(t.window().limit(), MAX_MESSAGES);
        let n = send(&mut t, &vec![1000; 1000]);
        assert_eq!(n, MAX_BYTES / 1000);
        let mut t = Transit::default();
        t.window.grow(usize::MAX);
        assert_eq!(send(&mut t, &vec![1; MAX_MESSAGES + 5]), MAX_MESSAGES);
    }

    #[test]
    fn a_message_alone_is_admitted_whatever_its_size() {
        let mut t = Transit::default();
        assert!(t.admit(10 * MAX_BYTES));
        t.wrote(10 * MAX_BYTES);
        assert!(!t.admit(1));
        assert_eq!(t.unread(0), 1);
        assert!(t.admit(1));
    }

    #[test]
    fn a_partly_written_message_is_never_confirmed() {
        let mut t = Transit::default();
        t.window.grow(1);
        assert!(t.admit(10) && t.admit(10));
        t.wrote(15); // the write failed halfway through the second
        assert_eq!(t.unread(0), 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn foreign_unread_bytes_only_delay_confirmation() {
        let mut t = Transit::default();
        send(&mut t, &[5]);
        assert_eq!(t.unread(100), 0);
        assert_eq!(t.unread(0), 1);
    }

    #[test]
    fn abandon_forgets_what_is_in_transit() {
        let mut t = Transit::default();
        t.window.grow(3);
        send(&mut t, &[4, 4, 4]);
        assert_eq!(t.unread(8), 1);
        t.abandon();
        assert!(t.is_empty());
        // Bytes left in the pipe are not ours any more: a new message is admitted
        // and confirmed only when read.
        assert_eq!(send(&mut t, &[4]), 1);
        assert_eq!(t.unread(12), 0);
        assert_eq!(t.unread(0), 1);
    }
}
