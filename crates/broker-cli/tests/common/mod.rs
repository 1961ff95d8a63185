//! Shared support for the `broker` integration tests: a temp directory per test,
//! and runners for our binary and for the pinned Python reference.
//!
//! Every test spawns real processes in a fresh temporary directory, the way a user works.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Environment variables that would make a test depend on the developer's shell.
const SCRUBBED_ENV: &[&str] = &[
    "BROKER_DEFAULT_DB_LOCATION",
    "BROKER_DEFAULT_DB_NAME",
    "BROKER_PROJECT_SCOPE",
    "BROKER_READ_COMMIT_INTERVAL",
    "BROKER_SYNC_MODE",
];

/// A temporary working directory; removed when dropped.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox { dir: tempfile::tempdir().expect("create temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The default database file of this sandbox.
    pub fn db(&self) -> PathBuf {
        self.path().join(".broker.db")
    }

    /// A `Command` for our `broker` binary, running in this sandbox with a clean environment.
    pub fn broker(&self) -> Command {
        let mut cmd = Command::new(broker_bin());
        self.prepare(&mut cmd);
        cmd
    }

    /// A `Command` for the Python reference `broker`, running in this sandbox.
    pub fn reference(&self) -> Command {
        let mut cmd = Command::new(reference_bin());
        self.prepare(&mut cmd);
        cmd
    }

    fn prepare(&self, cmd: &mut Command) {
        cmd.current_dir(self.path());
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
    }

    /// Runs our binary with `args`, returning its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.broker().args(args).output().expect("spawn broker")
    }

    /// Runs our binary with `args` and `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        run_with_stdin(self.broker(), args, input)
    }

    /// Runs the reference with `args`, returning its output.
    pub fn run_ref(&self, args: &[&str]) -> Output {
        self.reference().args(args).output().expect("spawn reference broker")
    }

    /// Runs the reference with `args` and `input` on stdin.
    pub fn run_ref_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        run_with_stdin(self.reference(), args, input)
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

fn run_with_stdin(mut cmd: Command, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(input).expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Path of our `broker` binary, built by cargo for this test run.
///
/// `LITEBROKER_BROKER_BIN` overrides it, so the compatibility tests can be run
/// against the Python reference itself to check that their expectations are right.
pub fn broker_bin() -> PathBuf {
    match std::env::var("LITEBROKER_BROKER_BIN") {
        Ok(path) => PathBuf::from(path),
        Err(_) => PathBuf::from(env!("CARGO_BIN_EXE_broker")),
    }
}

/// Path of the pinned Python reference (`simplebroker==2.8.4`).
///
/// `scripts/test.sh` installs it into `.venv-reference/` and exports
/// `LITEBROKER_REFERENCE`; the tests refuse to run without it rather than skip,
/// so that interoperability can never silently go untested.
pub fn reference_bin() -> PathBuf {
    if let Ok(path) = std::env::var("LITEBROKER_REFERENCE") {
        return PathBuf::from(path);
    }
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-reference/bin/broker");
    assert!(
        fallback.exists(),
        "the Python reference is not installed: run scripts/test.sh (or set LITEBROKER_REFERENCE)"
    );
    fallback
}

/// stdout of `out` as UTF-8.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// stderr of `out` as UTF-8 (lossy).
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The exit code of `out` (panics if killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}
