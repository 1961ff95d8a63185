//! Support for the CLI tests on PostgreSQL: the server to use, one schema
//! per test (dropped at the end with `broker --cleanup --yes`), a SQL client
//! for what a test must set up or check behind the CLI's back, and a
//! throwaway cluster of a test's own (for restarts).
//!
//! The server comes from `BROKER_TEST_POSTGRES_URL` (`scripts/test.sh` starts
//! one). Without it the tests print a skip note and pass, unless
//! `LITEBROKER_REQUIRE_POSTGRES=1` (CI) says a server must be there: then
//! they fail.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::Sandbox;

/// The server the tests use.
pub const URL_VAR: &str = "BROKER_TEST_POSTGRES_URL";
/// `1`: a missing server fails the tests instead of skipping them.
pub const REQUIRE_VAR: &str = "LITEBROKER_REQUIRE_POSTGRES";

/// The test server's URL; `None` (after a note on stderr) when there is none
/// and none is required.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
                "{test}: {REQUIRE_VAR}=1 but {URL_VAR} is not set (run scripts/test.sh, \
                 which starts a throwaway PostgreSQL)"
            );
            eprintln!("{test}: skipped, {URL_VAR} is not set (scripts/test.sh sets it)");
            None
        }
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A schema name no other test (or test run) uses.
fn unique_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "lbcli_{tag}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 10_000
    )
}

/// One test's schema on a PostgreSQL server, and a sandbox directory the
/// broker runs in (which must stay free of any `.broker.db`).
pub struct Pg {
    pub url: String,
    pub schema: String,
    pub sb: Sandbox,
    dropped: bool,
}

impl Pg {
    /// A fresh schema on the test server, or `None` to skip.
    pub fn new(test: &str, tag: &str) -> Option<Pg> {
        Some(Pg::on(server_url(test)?, tag))
    }

    /// A fresh schema on the server at `url`.
    pub fn on(url: String, tag: &str) -> Pg {
        let schema = unique_schema(tag);
        assert!(schema.len() <= 63, "schema name too long: {schema}");
        Pg {
            url,
            schema,
            sb: Sandbox::new(),
            dropped: false,
        }
    }

    /// Our `broker`, in the sandbox, on this schema (`BROKER_DATABASE_URL`).
    pub fn broker(&self) -> Command {
        let mut cmd = self.sb.broker();
        cmd.env("BROKER_DATABASE_URL", &self.url)
            .env("BROKER_DATABASE_SCHEMA", &self.schema);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.broker().args(args).output().expect("spawn broker")
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.broker()
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("spawn broker")
    }

    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .broker()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn broker");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).expect("write stdin");
        drop(stdin);
        child.wait_with_output().expect("wait")
    }

    /// A SQL connection to the server (not through litebroker).
    pub fn sql(&self) -> postgres::Client {
        sql_client(&self.url)
    }

    /// Whether this test's schema exists.
    pub fn schema_exists(&self) -> bool {
        self.sql()
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&self.schema],
            )
            .unwrap()
            .get(0)
    }

    /// One bigint from `sql`, run with this schema first on the search path.
    pub fn scalar(&self, sql: &str) -> i64 {
        let mut c = self.sql();
        c.batch_execute(&format!("SET search_path TO \"{}\"", self.schema))
            .unwrap();
        c.query_one(sql, &[]).unwrap().get(0)
    }

    /// Drops the schema with `broker --cleanup --yes`, asserting it worked.
    pub fn finish(mut self) {
        self.dropped = true;
        let out = self.run(&["--cleanup", "--yes"]);
        crate::common::assert_code(&out, 0);
        assert!(!self.schema_exists(), "--cleanup --yes left the schema");
        assert!(
            !self.sb.db().exists(),
            "a PostgreSQL run created a .broker.db"
        );
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if !self.dropped {
            // A failed test: drop the schema anyway, quietly.
            let _ = self.run(&["--cleanup", "--yes"]);
        }
    }
}

/// A SQL client on `url`, named so that it is never taken for a broker.
pub fn sql_client(url: &str) -> postgres::Client {
    let mut config = postgres::Config::from_str(url).expect("a PostgreSQL URL");
    config
        .application_name("lbcli-test")
        .connect_timeout(std::time::Duration::from_secs(10));
    config
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to the test server {url}: {e}"))
}

/// `scripts/postgres.sh`.
fn cluster_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh")
}

fn script(cmd: &str, dir: &Path) -> Output {
    Command::new("bash")
        .arg(cluster_script())
        .arg(cmd)
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/postgres.sh")
}

/// A throwaway PostgreSQL cluster of one test's own (it may stop and
/// restart it), stopped and removed when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub url: String,
}

impl Cluster {
    pub fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("lbcli-pg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let out = script("start", dir.path());
        assert!(
            out.status.success(),
            "scripts/postgres.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Cluster { dir, url }
    }

    /// Fast shutdown: every session is cut.
    pub fn stop(&self) {
        let out = script("stop", self.dir.path());
        assert!(out.status.success(), "scripts/postgres.sh stop failed");
    }

    /// Starts it again (after `stop`) with the options it first had.
    pub fn restart(&self) {
        let out = script("restart", self.dir.path());
        assert!(
            out.status.success(),
            "scripts/postgres.sh restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = script("stop", self.dir.path());
    }
}
