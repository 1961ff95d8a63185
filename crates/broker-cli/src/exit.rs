//! The one place where outcomes and errors become exit codes.
//!
//! 0: success. 1: any error, usage errors included (clap's usual 2 would clash
//! with "queue empty"). 2: nothing to do: queue empty, no message matched,
//! malformed `-m` id, broadcast reached no queue.

/// How a successful command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Done,
    /// Exit 2: there was nothing to do.
    Nothing,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Outcome::Done => 0,
            Outcome::Nothing => 2,
        }
    }
}

/// Whether an I/O error of kind `BrokenPipe` is anywhere in `err`'s chain.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `err` and its causes joined by `: `, skipping a cause whose text the
/// message before it already ends with (errors that print their source).
fn chain_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.ends_with(&part) {
            text = format!("{text}: {part}");
        }
    }
    text
}

/// Exit code for any error.
pub const ERROR: i32 = 1;

/// The exit code for a library error of `kind`. SimpleBroker exits 1 for
/// every error, and scripts rely on 2 meaning only "nothing to do", so every
/// kind is 1; the match is exhaustive so that a new kind is decided here.
pub fn code_for(kind: litebroker::ErrorKind) -> i32 {
    use litebroker::ErrorKind::*;
    match kind {
        InvalidInput | NotFound | Conflict | Stale | Busy | TooLarge | Incompatible | Storage
        | Unavailable => ERROR,
    }
}

/// The name SimpleBroker puts before every error (`simplebroker: error: ...`);
/// scripts match on it, so it is kept although the binary is `broker`.
pub const PROG: &str = "simplebroker";

/// An error SimpleBroker prints as `simplebroker: <message>`, without
/// `error:`, and not at all under `-q` (its checks after parsing, such as
/// `--message requires a queue name`, fall into its generic handler).
#[derive(Debug)]
pub struct Bare(pub String);

impl std::fmt::Display for Bare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Bare {}

/// `-q` was given: [`Bare`] errors are not printed (the reference's generic
/// handler prints them only without `-q`).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records whether `-q` was given, for [`report`].
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Prints `err` the way every error is shown, and returns the exit code.
///
/// A reader that went away (a broken pipe anywhere in the error's chain,
/// whichever command wrote) is not an error: the command ends quietly with
/// status 0, as ripgrep does. Commands just propagate their write errors.
pub fn report(err: &anyhow::Error) -> i32 {
    if is_broken_pipe(err) {
        return 0;
    }
    match err.downcast_ref::<Bare>() {
        Some(_) if QUIET.load(std::sync::atomic::Ordering::Relaxed) => {}
        Some(bare) => eprintln!("{PROG}: {bare}"),
        None => eprintln!("{PROG}: error: {}", chain_text(err)),
    }
    let library = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<litebroker::Error>());
    library.map_or(ERROR, |e| code_for(e.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        #[derive(Debug)]
        struct Wraps(std::io::Error);
        impl std::fmt::Display for Wraps {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot stat x: {}", self.0)
            }
        }
        impl std::error::Error for Wraps {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = anyhow::Error::new(Wraps(io)).context("opening");
        assert_eq!(chain_text(&err), "opening: cannot stat x: gone");
    }

    #[test]
    fn broken_pipe_is_found_anywhere_in_the_chain() {
        let pipe = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe");
        assert!(is_broken_pipe(
            &anyhow::Error::new(pipe).context("cannot write to stdout")
        ));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
