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

/// Exit code for any error.
pub const ERROR: i32 = 1;

/// The name SimpleBroker puts before every error (`simplebroker: error: ...`);
/// scripts match on it, so it is kept although the binary is `broker`.
pub const PROG: &str = "simplebroker";

/// An error SimpleBroker prints as `simplebroker: <message>`, without
/// `error:` (its checks after parsing, such as `--message requires a queue
/// name`, fall into its generic handler).
#[derive(Debug)]
pub struct Bare(pub String);

impl std::fmt::Display for Bare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Bare {}

/// Prints `err` the way every error is shown, and returns the error exit code.
pub fn report(err: &anyhow::Error) -> i32 {
    match err.downcast_ref::<Bare>() {
        Some(bare) => eprintln!("{PROG}: {bare}"),
        None => eprintln!("{PROG}: error: {err:#}"),
    }
    ERROR
}
