//! Ctrl-C: the reference prints `interrupted` and exits 0. We do the same from
//! the signal handler itself, with only async-signal-safe calls. Nothing can be
//! lost by stopping at any instant: an open transaction is rolled back by
//! SQLite, and messages held for delivery are returned (or, if already
//! written, consumed) by the next reader, exactly as after a kill.

/// Installs the SIGINT handler.
pub fn install() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: the handler only calls write(2) and _exit(2), both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

extern "C" fn on_sigint(_signal: libc::c_int) {
    const MESSAGE: &[u8] = b"\nbroker: interrupted\n";
    // SAFETY: writing a static buffer to fd 2 and exiting are async-signal-safe.
    unsafe {
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(0);
    }
}
