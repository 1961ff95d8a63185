//! Ctrl-C and SIGTERM.
//!
//! Outside `watch`, Ctrl-C prints `interrupted` and exits 0 at once, as the
//! reference does, from the handler itself with only async-signal-safe calls.
//! Nothing can be lost by stopping at any instant: an open transaction is
//! rolled back by SQLite, and messages held for delivery are returned (or, if
//! already written, consumed) by the next reader, exactly as after a kill.
//!
//! In `watch`, the first Ctrl-C or SIGTERM asks the watcher to stop after the
//! message it is on (exit 0); a second one exits at once.

use std::sync::OnceLock;

use litebroker::watch::StopHandle;

/// The watcher to stop gracefully, when one runs.
static GRACEFUL: OnceLock<StopHandle> = OnceLock::new();

/// Installs the SIGINT handler.
pub fn install() {
    set_handler(libc::SIGINT);
}

/// From now on, SIGINT and SIGTERM stop `watcher` gracefully first.
pub fn stop_gracefully(watcher: StopHandle) {
    let _ = GRACEFUL.set(watcher);
    set_handler(libc::SIGTERM);
}

/// Gives SIGINT back to the default action, for a command that handles
/// Ctrl-C and SIGTERM itself (`serve`: a graceful shutdown).
pub fn restore_default() {
    // SAFETY: resetting a signal's disposition is always allowed.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

fn set_handler(signal: libc::c_int) {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: the handler only does atomic loads/stores, write(2) and _exit(2),
    // all async-signal-safe.
    unsafe {
        libc::signal(signal, handler as libc::sighandler_t);
    }
}

extern "C" fn on_signal(_signal: libc::c_int) {
    if let Some(watcher) = GRACEFUL.get() {
        if !watcher.is_stopped() {
            watcher.stop();
            return;
        }
    }
    const MESSAGE: &[u8] = b"\nbroker: interrupted\n";
    // SAFETY: writing a static buffer to fd 2 and exiting are async-signal-safe.
    unsafe {
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(0);
    }
}
