//! Shared support for the `broker` integration tests: a temp directory per test,
//! and runners for our binary and for the pinned Python reference.
//!
//! Every test spawns real processes in a fresh temporary directory, the way a user works.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Environment variables that would make a test depend on the developer's shell.
const SCRUBBED_ENV: &[&str] = &[
    "BROKER_DATABASE_URL",
    "BROKER_DATABASE_SCHEMA",
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
        Sandbox {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
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
        self.reference()
            .args(args)
            .output()
            .expect("spawn reference broker")
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
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input)
        .expect("write stdin");
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

// ---------------------------------------------------------------------------
// Helpers added for the command, bad-input, interop and concurrency suites.

/// Asserts that `out` exited with `expected`, showing both streams otherwise.
pub fn assert_code(out: &Output, expected: i32) {
    assert_eq!(
        out.status.code(),
        Some(expected),
        "stdout: {:?}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

/// Asserts a successful exit and returns stdout.
pub fn ok(out: &Output) -> String {
    assert_code(out, 0);
    stdout(out)
}

/// Parses `--json` output into `(message, timestamp)` pairs.
pub fn json_messages(out: &Output) -> Vec<(String, i64)> {
    stdout(out).lines().map(parse_json_message).collect()
}

/// Parses one `{"message": ..., "timestamp": ...}` line.
pub fn parse_json_message(line: &str) -> (String, i64) {
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    let body = v["message"].as_str().expect("string message").to_owned();
    (body, v["timestamp"].as_i64().expect("integer timestamp"))
}

/// Unix time in nanoseconds.
pub fn now_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    d.as_nanos() as i64
}

impl Sandbox {
    /// Writes `body` to `queue` with the binary under test, asserting success.
    pub fn write(&self, queue: &str, body: &str) {
        assert_code(&self.run(&["write", queue, body]), 0);
    }

    /// Runs the binary under test with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.broker();
        cmd.envs(env.iter().copied());
        cmd.args(args).output().expect("spawn broker")
    }

    /// Runs the binary under test in `dir` instead of the sandbox root.
    pub fn run_in(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.broker();
        cmd.current_dir(dir).envs(env.iter().copied());
        cmd.args(args).output().expect("spawn broker")
    }

    /// Ids of the unclaimed messages of `queue`, oldest first (via `peek --all --json`).
    pub fn ids(&self, queue: &str) -> Vec<i64> {
        let out = self.run(&["peek", queue, "--all", "--json"]);
        json_messages(&out).into_iter().map(|(_, id)| id).collect()
    }

    /// Inserts rows straight into the sandbox database (created first with
    /// `--status` by the binary under test), the way a fast writer would:
    /// `(ts, body)` pairs in insertion order, `meta.last_ts` raised to match.
    pub fn insert_rows(&self, queue: &str, rows: &[(i64, String)]) {
        if !self.db().exists() {
            assert_code(&self.run(&["--status"]), 0);
        }
        insert_rows(&self.db(), queue, rows);
    }

    /// Fills `queue` with `n` messages `"{prefix}{i}"` whose ids lie in the recent past.
    pub fn fill(&self, queue: &str, n: usize, prefix: &str) -> Vec<(i64, String)> {
        let start = (now_ns() - 2_000_000_000) & !0xFFF;
        let rows: Vec<(i64, String)> = (0..n)
            .map(|i| (start + i as i64 * 4096, format!("{prefix}{i}")))
            .collect();
        self.insert_rows(queue, &rows);
        rows
    }
}

/// Inserts `(ts, body)` rows into the SimpleBroker database at `db`.
pub fn insert_rows(db: &Path, queue: &str, rows: &[(i64, String)]) {
    let mut conn = rusqlite::Connection::open(db).expect("open database");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare("INSERT INTO messages (queue, body, ts, claimed) VALUES (?1, ?2, ?3, 0)")
            .unwrap();
        for (ts, body) in rows {
            stmt.execute(rusqlite::params![queue, body, ts]).unwrap();
        }
    }
    let max = rows.iter().map(|r| r.0).max().unwrap_or(0);
    tx.execute(
        "UPDATE meta SET value = MAX(value, ?1) WHERE key = 'last_ts'",
        [max],
    )
    .unwrap();
    tx.commit().unwrap();
}

/// Waits for `child` at most `limit`; kills it and panics if it is still running then.
pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Fails, naming a few, if a body of `bodies` is in neither `received` (what
/// a killed reader had delivered) nor `rest` (what a later reader got).
pub fn assert_none_lost(bodies: &[String], received: &[String], rest: &[String]) {
    let seen: std::collections::HashSet<&String> = received.iter().chain(rest).collect();
    let lost: Vec<&String> = bodies.iter().filter(|b| !seen.contains(b)).collect();
    assert!(
        lost.is_empty(),
        "{} messages lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
