//! The `broker` binary on PostgreSQL (`BROKER_DATABASE_URL`), the way users
//! run it: the same commands give the same output as on SQLite; what must be
//! refused is refused with nothing touched; many processes on separate
//! connections lose and duplicate nothing; a killed reader (SIGKILL, or its
//! backend session terminated) loses nothing; `watch` wakes on NOTIFY and
//! survives a server restart.
//!
//! Each test works in a schema of its own (`BROKER_DATABASE_SCHEMA`) on the
//! server named by `BROKER_TEST_POSTGRES_URL`, dropped at the end with
//! `broker --cleanup --yes` (see `pg/mod.rs` for what happens without a
//! server).

mod common;
mod pg;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_code, broker_bin, code, now_ns, stderr, stdout, wait_bounded, Sandbox};
use pg::{Cluster, Pg};

// ---------------------------------------------------------------------------
// 1. Parity: one script of commands, on SQLite and on PostgreSQL.

/// Where a script runs.
enum Db<'a> {
    Sqlite(&'a Sandbox),
    Postgres(&'a Pg),
}

impl Db<'_> {
    fn broker(&self) -> Command {
        match self {
            Db::Sqlite(sb) => {
                let mut cmd = sb.broker();
                cmd.env_remove("BROKER_DATABASE_URL")
                    .env_remove("BROKER_DATABASE_SCHEMA");
                cmd
            }
            Db::Postgres(pg) => pg.broker(),
        }
    }
}

/// Replaces what differs from run to run: ids and timestamps (runs of 13 or
/// more digits) and the random part of receipts.
fn mask(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i - start >= 13 {
                out.push_str("<TS>");
            } else {
                out.extend(&chars[start..i]);
            }
            continue;
        }
        // A receipt ends in `.` and 16 hex digits.
        if chars[i] == '.' && i + 17 <= chars.len() {
            let hex = &chars[i + 1..i + 17];
            let ends = chars.get(i + 17).is_none_or(|c| !c.is_ascii_hexdigit());
            if ends && hex.iter().all(|c| c.is_ascii_hexdigit()) {
                out.push_str(".<HEX>");
                i += 17;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Runs commands on one database and keeps, for each, the command line,
/// its exit code and its stdout (masked).
struct Recorder<'a> {
    db: Db<'a>,
    log: Vec<String>,
}

impl Recorder<'_> {
    fn exec(&mut self, args: &[&str], input: Option<&str>) -> Output {
        let mut cmd = self.db.broker();
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().expect("spawn broker");
        if let Some(input) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().expect("wait for broker")
    }

    /// Runs `args`, records it, and returns its raw stdout.
    fn run(&mut self, args: &[&str]) -> String {
        self.record(args, None)
    }

    fn run_stdin(&mut self, args: &[&str], input: &str) -> String {
        self.record(args, Some(input))
    }

    fn record(&mut self, args: &[&str], input: Option<&str>) -> String {
        let out = self.exec(args, input);
        let text = stdout(&out);
        self.log.push(format!(
            "$ broker {}\n[exit {}]\n{}",
            mask(&args.join(" ")),
            code(&out),
            mask(&text)
        ));
        text
    }

    /// `--status`, keeping the lines both backends share (the counts; the
    /// last id masked); `db_size` and the PostgreSQL-only lines differ by nature.
    fn status(&mut self) -> String {
        let out = self.exec(&["--status"], None);
        let text = stdout(&out);
        let shared: Vec<&str> = text
            .lines()
            .filter(|l| {
                ["total_messages:", "last_timestamp:", "delayed_messages:"]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .collect();
        self.log.push(format!(
            "$ broker --status\n[exit {}]\n{}",
            code(&out),
            mask(&shared.join("\n"))
        ));
        text
    }

    /// Records a fact the script computed itself.
    fn note(&mut self, what: &str) {
        self.log.push(format!("# {what}"));
    }
}

/// The field `key` of each `--json` line of `text`.
fn json_field(text: &str, key: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            v[key].clone()
        })
        .collect()
}

fn receipts(text: &str) -> Vec<String> {
    json_field(text, "receipt")
        .into_iter()
        .map(|r| r.as_str().expect("a receipt").to_owned())
        .collect()
}

fn ids(text: &str) -> Vec<i64> {
    json_field(text, "timestamp")
        .into_iter()
        .map(|t| t.as_i64().expect("an id"))
        .collect()
}

/// The script: most of what a user does, in the order a user might.
fn parity_script(r: &mut Recorder<'_>) {
    // Writes: argument, stdin, headers, delay.
    r.run(&["write", "q", "first"]);
    r.run(&["write", "q", "second"]);
    r.run_stdin(&["write", "q", "-"], "from stdin\nline two\n");
    r.run(&["write", "q", "-H", "kind=x", "-H", "n=3", "with headers"]);
    r.run(&["write", "q", "--delay", "1h", "later"]);
    r.run(&["write", "", "bad queue name"]);
    r.status();

    // Peek and read, with --all / --json / -t / --since / -m.
    r.run(&["peek", "q"]);
    r.run(&["peek", "q", "--all"]);
    let all = r.run(&["peek", "q", "--all", "--json"]);
    let q_ids = ids(&all);
    let second = q_ids[1].to_string();
    r.run(&["peek", "q", "--all", "--since", &second]);
    r.run(&["peek", "q", "--all", "--before", &second]);
    r.run(&["peek", "q", "-m", &q_ids[2].to_string(), "--json"]);
    r.run(&["read", "q", "-t"]);
    r.run(&["read", "q", "--json"]);
    r.run(&["list"]);
    r.run(&["list", "--stats"]);

    // Move, list, delete, broadcast.
    r.run(&["write", "other", "o1"]);
    r.run(&["move", "q", "q2"]);
    r.run(&["move", "q", "q2", "--all", "--json"]);
    r.run(&["move", "q", "q2"]);
    r.run(&["list"]);
    let moved = r.run(&["peek", "q2", "--all", "--json"]);
    r.run(&["delete", "q2", "-m", &ids(&moved)[0].to_string()]);
    r.run(&["peek", "q2", "--all"]);
    r.run(&["broadcast", "to everyone"]);
    r.run(&["broadcast", "-p", "q*", "to q queues"]);
    r.run(&["list", "-p", "q*"]);
    r.run(&["delete", "other"]);
    r.run(&["delete", "no-such-queue"]);
    r.run(&["list"]);

    // Aliases.
    r.run(&["alias", "add", "a", "q2"]);
    r.run(&["alias", "list"]);
    r.run(&["write", "@a", "via alias"]);
    r.run(&["peek", "@a", "--all"]);
    r.run(&["read", "@a"]);
    r.run(&["alias", "remove", "a"]);
    r.run(&["alias", "list"]);
    r.run(&["peek", "@a"]);

    // Leases, queue config, dead letters, redrive.
    r.run(&["queue", "config", "lq"]);
    r.run(&[
        "queue",
        "config",
        "lq",
        "--max-receives",
        "2",
        "--dead-letter",
        "dlq",
    ]);
    r.run(&["queue", "config", "lq"]);
    r.run(&["queue", "config", "lq", "--json"]);
    for job in ["job1", "job2", "job3"] {
        r.run(&["write", "lq", job]);
    }
    let leased = r.run(&["read", "lq", "--lease", "--json", "--max", "2"]);
    let rc = receipts(&leased);
    r.run(&["extend", "lq", &rc[0], "10m"]);
    r.run(&["ack", "lq", &rc[0]]);
    r.run(&["ack", "lq", &rc[0]]);
    r.run(&["nack", "lq", &rc[1]]);
    r.run(&["list", "--stats"]);
    let again = r.run(&["read", "lq", "--lease", "--json"]);
    r.run(&["nack", "lq", &receipts(&again)[0]]);
    r.run(&["peek", "dlq", "--all", "--json"]);
    let third = r.run(&["read", "lq", "--lease", "5m", "--json"]);
    r.run(&["read", "lq", "--lease", "--json"]);
    r.run(&["ack", "lq", &receipts(&third)[0], "1.1.0000000000000000"]);
    r.run(&["ack", "lq", "not-a-receipt"]);
    r.run(&["list", "--stats"]);
    r.run(&["redrive", "dlq"]);
    r.run(&["peek", "lq", "--all"]);
    r.run(&["redrive", "dlq"]);
    r.run(&["write", "rq", "work 1\n"]);
    r.run(&["write", "rq", "work 2\n"]);
    r.run(&["run", "rq", "--drain", "--", "cat"]);
    r.run(&["read", "rq"]);

    // Publish / subscribe.
    r.run(&["publish", "news.a", "-H", "k=v", "hello"]);
    r.run(&["subscribe", "s", "news.+", "--from", "earliest"]);
    r.run(&["subscribe", "t", "news.=", "--from", "latest"]);
    r.run(&["publish", "news.b", "world"]);
    r.run(&["publish", "other.c", "nobody listens"]);
    r.run(&["topics"]);
    r.run(&["subscriptions"]);
    r.run(&["read", "s", "--all", "--json"]);
    r.run(&["read", "t", "--all"]);
    r.run(&["listen", "news.+", "--timeout", "300ms"]);
    r.run(&["unsubscribe", "t"]);
    r.run(&["subscriptions"]);

    // Dump and load: ids and order kept.
    let before = r.run(&["peek", "q2", "--all", "--json"]);
    let dump = r.run(&["dump", "q2"]);
    r.run(&["delete", "q2"]);
    r.run_stdin(&["load"], &dump);
    let after = r.run(&["peek", "q2", "--all", "--json"]);
    r.note(&format!("load kept ids and bodies: {}", before == after));
    r.run_stdin(&["load"], "{\"queue\": \"q2\", \"body\": 3}\nnot json\n");

    r.status();
    r.run(&["delete", "--all"]);
    r.run(&["list"]);
    r.run(&["read", "q"]);
    r.status();
}

#[test]
fn the_same_commands_give_the_same_output_on_sqlite_and_postgresql() {
    let Some(pg) = Pg::new("parity", "parity") else {
        return;
    };
    let sb = Sandbox::new();
    let mut lite = Recorder {
        db: Db::Sqlite(&sb),
        log: Vec::new(),
    };
    parity_script(&mut lite);
    let mut post = Recorder {
        db: Db::Postgres(&pg),
        log: Vec::new(),
    };
    parity_script(&mut post);
    assert_eq!(lite.log.len(), post.log.len());
    for (a, b) in lite.log.iter().zip(&post.log) {
        assert_eq!(a, b, "SQLite (left) and PostgreSQL (right) differ");
    }
    assert!(sb.db().exists(), "the SQLite run used its file");
    let status = stdout(&pg.run(&["--status"]));
    for key in [
        "backend: postgresql",
        "server_version: ",
        "schema_version: 1",
    ] {
        assert!(status.contains(key), "--status lacks {key:?}: {status}");
    }
    assert!(
        status.contains(&format!("schema: {}", pg.schema)),
        "{status}"
    );
    pg.finish();
}

// ---------------------------------------------------------------------------
// 2. Refusals: exit 1, a clear message, nothing touched.

/// Asserts exit 1 with `needle` on stderr.
fn refused(out: &Output, needle: &str) {
    assert_code(out, 1);
    let err = stderr(out);
    assert!(
        err.contains(needle),
        "stderr should mention {needle:?}: {err}"
    );
    assert!(out.stdout.is_empty(), "{}", stdout(out));
}

fn no_files(sb: &Sandbox) {
    let left: Vec<_> = std::fs::read_dir(sb.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files created: {left:?}");
}

#[test]
fn a_url_where_a_file_name_belongs_is_refused() {
    let Some(pg) = Pg::new("url_as_file", "urlfile") else {
        return;
    };
    // -f URL / BROKER_DEFAULT_DB_NAME=URL, with and without PostgreSQL selected.
    let mut plain = pg.broker();
    plain.env_remove("BROKER_DATABASE_URL");
    let out = plain
        .args(["-f", &pg.url, "write", "q", "x"])
        .output()
        .unwrap();
    refused(&out, "--db");
    let out = pg.run(&["-f", &pg.url, "write", "q", "x"]);
    refused(&out, "--db");
    let mut plain = pg.broker();
    plain.env_remove("BROKER_DATABASE_URL");
    let out = plain
        .env("BROKER_DEFAULT_DB_NAME", &pg.url)
        .args(["write", "q", "x"])
        .output()
        .unwrap();
    refused(&out, "--db");
    let out = pg.run_env(&["write", "q", "x"], &[("BROKER_DEFAULT_DB_NAME", &pg.url)]);
    refused(&out, "--db");

    // -d / -f with --db or BROKER_DATABASE_URL.
    let out = pg.run(&["-d", "/tmp", "write", "q", "x"]);
    refused(&out, "-d/-f");
    let out = pg.run(&["-f", "my.db", "write", "q", "x"]);
    refused(&out, "-d/-f");
    let mut plain = pg.broker();
    plain.env_remove("BROKER_DATABASE_URL");
    let out = plain
        .args(["--db", &pg.url, "-f", "my.db", "write", "q", "x"])
        .output()
        .unwrap();
    refused(&out, "-d/-f");
    // --db with something that is not a PostgreSQL URL.
    let out = pg.run(&["--db", "my.db", "write", "q", "x"]);
    refused(&out, "postgres://");

    no_files(&pg.sb);
    assert!(!pg.schema_exists(), "a refused command created the schema");
    pg.finish();
}

#[test]
fn a_schema_that_is_not_ours_is_refused_and_left_alone() {
    let Some(pg) = Pg::new("foreign", "foreign") else {
        return;
    };
    let mut sql = pg.sql();
    sql.batch_execute(&format!(
        "CREATE SCHEMA \"{s}\"; CREATE TABLE \"{s}\".meta (key TEXT, value TEXT); \
         INSERT INTO \"{s}\".meta VALUES ('owner', 'someone else')",
        s = pg.schema
    ))
    .unwrap();
    for args in [
        &["write", "q", "x"][..],
        &["read", "q"],
        &["list"],
        &["init"],
        &["--status"],
    ] {
        let out = pg.run(args);
        refused(&out, "not litebroker's");
    }
    let tables: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&pg.schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "tables were added to a foreign schema");
    let rows: Vec<(String, String)> = sql
        .query(
            &format!("SELECT key, value FROM \"{}\".meta", pg.schema),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [("owner".to_owned(), "someone else".to_owned())]);

    // A schema with other tables but no `meta` is not ours either.
    let other = Pg::on(pg.url.clone(), "foreign2");
    sql.batch_execute(&format!(
        "CREATE SCHEMA \"{s}\"; CREATE TABLE \"{s}\".orders (id INT)",
        s = other.schema
    ))
    .unwrap();
    refused(&other.run(&["write", "q", "x"]), "not litebroker's");
    refused(&other.run(&["init"]), "not litebroker's");
    no_files(&pg.sb);
    no_files(&other.sb);
    // --cleanup --yes drops whatever schema it names: it is told to.
    other.finish();
    pg.finish();
}

#[test]
fn a_newer_schema_version_is_refused_and_left_alone() {
    let Some(pg) = Pg::new("newer", "newer") else {
        return;
    };
    assert_code(&pg.run(&["write", "q", "kept"]), 0);
    let mut sql = pg.sql();
    sql.batch_execute(&format!(
        "UPDATE \"{}\".meta SET value = 99 WHERE key = 'schema_version'",
        pg.schema
    ))
    .unwrap();
    for args in [
        &["write", "q", "x"][..],
        &["read", "q"],
        &["peek", "q"],
        &["init"],
    ] {
        refused(&pg.run(args), "newer");
    }
    assert_eq!(pg.scalar("SELECT count(*) FROM messages"), 1);
    assert_eq!(
        pg.scalar("SELECT count(*) FROM messages WHERE state = 0"),
        1,
        "the message is still pending"
    );
    assert_eq!(
        pg.scalar("SELECT value FROM meta WHERE key = 'schema_version'"),
        99
    );
    // Back to ours: everything is where it was.
    sql.batch_execute(&format!(
        "UPDATE \"{}\".meta SET value = 1 WHERE key = 'schema_version'",
        pg.schema
    ))
    .unwrap();
    assert_eq!(stdout(&pg.run(&["read", "q"])), "kept\n");
    pg.finish();
}

#[test]
fn init_creates_the_schema_and_is_idempotent() {
    let Some(pg) = Pg::new("init", "init") else {
        return;
    };
    let out = pg.run(&["init"]);
    assert_code(&out, 0);
    assert!(pg.schema_exists());
    assert_eq!(
        pg.scalar("SELECT value FROM meta WHERE key = 'schema_version'"),
        1
    );
    assert_code(&pg.run(&["init"]), 0);
    assert_code(&pg.run(&["write", "q", "x"]), 0);
    assert_code(&pg.run(&["init"]), 0);
    assert_eq!(stdout(&pg.run(&["read", "q"])), "x\n");
    no_files(&pg.sb);
    pg.finish();
}

#[test]
fn cleanup_needs_yes_and_vacuum_keeps_pending_messages() {
    let Some(pg) = Pg::new("cleanup", "cleanup") else {
        return;
    };
    for i in 0..5 {
        assert_code(&pg.run(&["write", "q", &format!("m{i}")]), 0);
    }
    refused(&pg.run(&["--cleanup"]), "--yes");
    assert!(pg.schema_exists());
    assert_eq!(pg.scalar("SELECT count(*) FROM messages"), 5);
    assert_eq!(stdout(&pg.run(&["read", "q"])), "m0\n");
    assert_eq!(stdout(&pg.run(&["read", "q"])), "m1\n");
    assert_code(&pg.run(&["--vacuum"]), 0);
    assert_eq!(
        pg.scalar("SELECT count(*) FROM messages"),
        3,
        "--vacuum deletes the consumed rows only"
    );
    assert_eq!(stdout(&pg.run(&["read", "q", "--all"])), "m2\nm3\nm4\n");
    pg.finish();
}

#[test]
fn a_server_that_is_not_there_gives_a_clear_error_quickly() {
    // No server needed: nothing is there to answer.
    let sb = Sandbox::new();
    let empty = tempfile::tempdir().unwrap();
    let urls = [
        "postgresql:///postgres?host=/nonexistent/socket/dir&user=litebroker".to_owned(),
        format!(
            "postgresql:///postgres?host={}&user=litebroker",
            empty.path().display()
        ),
        "postgres://litebroker@127.0.0.1:1/postgres".to_owned(),
    ];
    for url in &urls {
        for args in [&["write", "q", "x"][..], &["read", "q"], &["watch", "q"]] {
            let started = Instant::now();
            let mut child = sb
                .broker()
                .env("BROKER_DATABASE_URL", url)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let status = wait_bounded(&mut child, Duration::from_secs(30));
            let out = Output {
                status,
                stdout: read_all(child.stdout.take()),
                stderr: read_all(child.stderr.take()),
            };
            refused(&out, "cannot connect");
            assert!(
                started.elapsed() < Duration::from_secs(25),
                "{args:?} on {url} took {:?}",
                started.elapsed()
            );
        }
    }
    no_files(&sb);
}

fn read_all(pipe: Option<impl Read>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(mut p) = pipe {
        p.read_to_end(&mut bytes).unwrap();
    }
    bytes
}

// ---------------------------------------------------------------------------
// 3. Many processes on separate connections.

/// `sh -c script` with the broker's environment and `$BROKER` set.
fn shell(pg: &Pg, script: &str) -> Command {
    let template = pg.broker();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .current_dir(pg.sb.path())
        .env("BROKER", broker_bin())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in template.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd
}

#[test]
fn many_writers_readers_and_lease_consumers_lose_and_duplicate_nothing() {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 500;
    let Some(pg) = Pg::new("many", "many") else {
        return;
    };
    assert_code(&pg.run(&["init"]), 0);
    // Bounds for a loaded machine; it takes a fraction of this on a quiet one.
    let deadline = Instant::now() + Duration::from_secs(240);

    // Writers: even messages to q (for readers), odd ones to lq (for leases).
    let writers: Vec<Child> = (0..WRITERS)
        .map(|w| {
            let script = format!(
                r#"i=0
                while [ $i -lt {PER_WRITER} ]; do
                    if [ $((i % 2)) -eq 0 ]; then q=q; else q=lq; fi
                    "$BROKER" write $q "w{w}-$i" || exit 1
                    i=$((i + 1))
                done"#
            );
            shell(&pg, &script).spawn().expect("spawn writer")
        })
        .collect();
    let writing = Arc::new(AtomicBool::new(true));

    // Readers: `read q --all --json` again and again until the writers are
    // done and the queue is empty.
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let cmd = pg.broker();
            let writing = writing.clone();
            std::thread::spawn(move || {
                let mut got: Vec<Vec<(String, i64)>> = Vec::new();
                loop {
                    let done = !writing.load(Ordering::SeqCst);
                    let out = clone_cmd(&cmd)
                        .args(["read", "q", "--all", "--json"])
                        .output()
                        .unwrap();
                    let c = code(&out);
                    assert!(c == 0 || c == 2, "reader: {}", stderr(&out));
                    got.push(common::json_messages(&out));
                    if done && c == 2 {
                        return got;
                    }
                    assert!(Instant::now() < deadline, "readers ran out of time");
                    if c == 2 {
                        // Nothing yet: leave the CPU to the writers a moment.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        })
        .collect();

    // Lease consumers: lease up to 50, ack them all, repeat.
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let cmd = pg.broker();
            let writing = writing.clone();
            std::thread::spawn(move || {
                let mut acked: Vec<String> = Vec::new();
                loop {
                    let done = !writing.load(Ordering::SeqCst);
                    let out = clone_cmd(&cmd)
                        .args(["read", "lq", "--lease", "5m", "--max", "50", "--json"])
                        .output()
                        .unwrap();
                    let c = code(&out);
                    assert!(c == 0 || c == 2, "lease reader: {}", stderr(&out));
                    if c == 2 {
                        if done {
                            return acked;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    let text = stdout(&out);
                    let rs = receipts(&text);
                    let mut args = vec!["ack".to_owned(), "lq".to_owned()];
                    args.extend(rs);
                    let ack = clone_cmd(&cmd).args(&args).output().unwrap();
                    assert_code(&ack, 0);
                    acked.extend(
                        json_field(&text, "message")
                            .into_iter()
                            .map(|m| m.as_str().unwrap().to_owned()),
                    );
                    assert!(Instant::now() < deadline, "consumers ran out of time");
                }
            })
        })
        .collect();

    for mut w in writers {
        let status = wait_bounded(&mut w, Duration::from_secs(200));
        let err = read_all(w.stderr.take());
        assert!(
            status.success(),
            "writer failed: {}",
            String::from_utf8_lossy(&err)
        );
    }
    writing.store(false, Ordering::SeqCst);

    let mut read: Vec<(String, i64)> = Vec::new();
    for r in readers {
        for batch in r.join().expect("reader thread") {
            // FIFO within one read --all: ids increase, and each writer's
            // messages come in the order it wrote them.
            assert!(
                batch.windows(2).all(|p| p[0].1 < p[1].1),
                "ids out of order"
            );
            let mut last: HashMap<&str, usize> = HashMap::new();
            for (body, _) in &batch {
                let (w, i) = body.split_once('-').unwrap();
                let i: usize = i.parse().unwrap();
                if let Some(prev) = last.insert(w, i) {
                    assert!(prev < i, "{w}: {prev} read before {i} in one run");
                }
            }
            read.extend(batch);
        }
    }
    let mut acked: Vec<String> = Vec::new();
    for c in consumers {
        acked.extend(c.join().expect("consumer thread"));
    }

    let expected = |parity: usize| -> HashSet<String> {
        (0..WRITERS)
            .flat_map(|w| {
                (0..PER_WRITER)
                    .filter(move |i| i % 2 == parity)
                    .map(move |i| format!("w{w}-{i}"))
            })
            .collect()
    };
    let read_bodies: Vec<String> = read.iter().map(|r| r.0.clone()).collect();
    check_exactly_once("read", &read_bodies, &expected(0));
    check_exactly_once("leased and acked", &acked, &expected(1));
    let unique_ids: HashSet<i64> = read.iter().map(|r| r.1).collect();
    assert_eq!(unique_ids.len(), read.len(), "ids are unique");
    assert_code(&pg.run(&["read", "q"]), 2);
    assert_code(&pg.run(&["read", "lq"]), 2);
    assert_eq!(
        pg.scalar("SELECT count(*) FROM messages WHERE state <> 1"),
        0,
        "every message consumed"
    );
    pg.finish();
}

/// A copy of `cmd`'s program, directory and environment.
fn clone_cmd(cmd: &Command) -> Command {
    let mut c = Command::new(cmd.get_program());
    if let Some(dir) = cmd.get_current_dir() {
        c.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => c.env(key, v),
            None => c.env_remove(key),
        };
    }
    c.stdin(Stdio::null());
    c
}

fn check_exactly_once(what: &str, got: &[String], expected: &HashSet<String>) {
    let mut seen: HashSet<&String> = HashSet::new();
    let dups: Vec<&String> = got.iter().filter(|b| !seen.insert(b)).collect();
    assert!(
        dups.is_empty(),
        "{what}: {} duplicates, e.g. {:?}",
        dups.len(),
        &dups[..dups.len().min(5)]
    );
    let unknown: Vec<&&String> = seen.iter().filter(|b| !expected.contains(**b)).collect();
    assert!(unknown.is_empty(), "{what}: unknown messages {unknown:?}");
    let lost: Vec<&String> = expected.iter().filter(|b| !seen.contains(b)).collect();
    assert!(
        lost.is_empty(),
        "{what}: {} lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

// ---------------------------------------------------------------------------
// 4. Custody of a reader that dies.

/// Loads `n` messages `"{prefix}{i}"` into `q` (one `broker load`).
fn fill(pg: &Pg, n: usize, prefix: &str) -> Vec<String> {
    let start = (now_ns() - 2_000_000_000) & !0xFFF;
    let mut ndjson = String::new();
    let bodies: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for (i, body) in bodies.iter().enumerate() {
        ndjson.push_str(&format!(
            "{{\"queue\": \"q\", \"id\": {}, \"body\": \"{body}\"}}\n",
            start + i as i64 * 4096
        ));
    }
    assert_code(&pg.run_stdin(&["load"], ndjson.as_bytes()), 0);
    bodies
}

/// The complete lines left in `reader` (a killed writer may leave half a line).
fn complete_lines(mut reader: impl BufRead, into: &mut Vec<String>) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).unwrap() == 0 || buf.last() != Some(&b'\n') {
            return;
        }
        into.push(String::from_utf8(buf[..buf.len() - 1].to_vec()).unwrap());
    }
}

/// Waits until no server session of the (exited) process `pid` holds its
/// hold any more. A killed client's backend notices the closed socket and
/// exits on its own time; until then its messages are rightly still held.
fn wait_for_sessions_to_end(pg: &Pg, pid: u32) {
    let mut sql = pg.sql();
    let held = format!(
        "SELECT count(*) FROM \"{}\".holders h \
         JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted \
         AND l.objsubid = 2 AND l.objid = (h.token % 2147483647)::int::oid \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         WHERE h.pid = $1",
        pg.schema
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while sql
        .query_one(&held, &[&(pid as i32)])
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "the dead reader's session never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a dead reader may cost: no message lost, and at most one pipe
/// window (8,192 messages, RELIABILITY.md) delivered twice.
fn check_after_death(pg: &Pg, bodies: &[String], received: &[String]) {
    let after = pg.run(&["read", "q", "--all"]);
    assert!(
        matches!(code(&after), 0 | 2),
        "reading the rest: {}",
        stderr(&after)
    );
    let rest: Vec<String> = stdout(&after).lines().map(String::from).collect();
    common::assert_none_lost(bodies, received, &rest);
    let twice = received.len() + rest.len() - bodies.len();
    assert!(
        twice <= 8192,
        "{twice} delivered twice: received {}, then {}",
        received.len(),
        rest.len()
    );
    // What came back came back in place: the rest is in order.
    let pos: HashMap<&String, usize> = bodies.iter().enumerate().map(|(i, b)| (b, i)).collect();
    assert!(
        rest.windows(2).all(|p| pos[&p[0]] < pos[&p[1]]),
        "returned messages out of order"
    );
    assert_eq!(pg.scalar("SELECT count(*) FROM holders"), 0);
    assert_code(&pg.run(&["read", "q"]), 2);
}

#[test]
fn a_sigkilled_reader_loses_nothing() {
    const N: usize = 20_000;
    let Some(pg) = Pg::new("sigkill", "sigkill") else {
        return;
    };
    let bodies = fill(&pg, N, "k");
    let mut child = pg
        .broker()
        .args(["read", "q", "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut received = Vec::new();
    // A slow reader: a pause every 100 lines.
    for (i, line) in reader.by_ref().lines().take(1_000).enumerate() {
        received.push(line.unwrap());
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    child.kill().expect("SIGKILL");
    complete_lines(reader, &mut received);
    child.wait().unwrap();
    assert!(received.len() < N, "the kill must land mid-stream");
    wait_for_sessions_to_end(&pg, child.id());
    check_after_death(&pg, &bodies, &received);
    pg.finish();
}

#[test]
fn a_reader_whose_session_is_terminated_loses_nothing() {
    const N: usize = 20_000;
    let Some(pg) = Pg::new("terminated", "terminated") else {
        return;
    };
    let bodies = fill(&pg, N, "t");
    let mut child = pg
        .broker()
        .args(["read", "q", "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut received = Vec::new();
    for line in reader.by_ref().lines().take(1_000) {
        received.push(line.unwrap());
    }
    // The reader blocks on the pipe soon. Find its session: the holder row
    // with its pid, and the backend that holds that holder's advisory lock.
    // (Between two batches the lock may be released a moment before the
    // holder row goes: try again.)
    let mut sql = pg.sql();
    let find = format!(
        "SELECT pg_terminate_backend(l.pid), l.pid FROM \"{}\".holders h \
         JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted \
         AND l.objsubid = 2 AND l.objid = (h.token % 2147483647)::int::oid \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         JOIN pg_stat_activity a ON a.pid = l.pid AND a.application_name = 'litebroker' \
         WHERE h.pid = $1 AND a.pid <> pg_backend_pid()",
        pg.schema
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let terminated: Vec<i32> = loop {
        std::thread::sleep(Duration::from_millis(200));
        let rows = sql.query(&find, &[&(child.id() as i32)]).unwrap();
        if !rows.is_empty() || Instant::now() > deadline {
            break rows
                .iter()
                .map(|r| {
                    assert!(r.get::<_, bool>(0), "pg_terminate_backend failed");
                    r.get(1)
                })
                .collect();
        }
    };
    assert_eq!(terminated.len(), 1, "exactly the reader's session");
    // Read on. Its hold died with its session: what it had not recorded as
    // delivered goes back in place. It may stop with an error or go on on a
    // new connection (and meet those messages again); either way it ends.
    let drain = std::thread::spawn(move || {
        let mut more = Vec::new();
        complete_lines(reader, &mut more);
        more
    });
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    received.extend(drain.join().unwrap());
    let err = String::from_utf8_lossy(&read_all(child.stderr.take())).into_owned();
    match status.code() {
        Some(0) => {}
        Some(1) => assert!(!err.trim().is_empty(), "a failed reader says why"),
        other => panic!("reader ended with {other:?}: {err}"),
    }
    wait_for_sessions_to_end(&pg, child.id());
    check_after_death(&pg, &bodies, &received);
    pg.finish();
}

// ---------------------------------------------------------------------------
// 5. watch wakes on NOTIFY and survives a server restart.

struct Watching {
    child: Child,
    lines: Receiver<String>,
}

impl Watching {
    fn spawn(pg: &Pg, args: &[&str]) -> Watching {
        Watching::command(pg, &[&["watch"][..], args].concat())
    }

    /// Any long-running broker command whose stdout lines are awaited.
    fn command(pg: &Pg, args: &[&str]) -> Watching {
        let mut child = pg
            .broker()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn watch");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watching { child, lines }
    }

    /// The next line, within `limit`.
    fn next(&mut self, limit: Duration) -> String {
        match self.lines.recv_timeout(limit) {
            Ok(line) => line,
            Err(_) => {
                let status = self.child.try_wait().unwrap();
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = read_all(self.child.stderr.take());
                panic!(
                    "watch printed nothing within {limit:?} (exit {status:?}): {}",
                    String::from_utf8_lossy(&err)
                );
            }
        }
    }

    /// Stops it with SIGINT; returns its exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let status = wait_bounded(&mut self.child, Duration::from_secs(10));
        let err = read_all(self.child.stderr.take());
        (status.code(), String::from_utf8_lossy(&err).into_owned())
    }
}

#[test]
fn watch_prints_what_another_process_writes() {
    let Some(pg) = Pg::new("watch", "watch") else {
        return;
    };
    assert_code(&pg.run(&["write", "q", "before"]), 0);
    let mut w = Watching::spawn(&pg, &["q"]);
    assert_eq!(w.next(Duration::from_secs(20)), "before");
    for i in 0..5 {
        assert_code(&pg.run(&["write", "q", &format!("new{i}")]), 0);
        assert_eq!(w.next(Duration::from_secs(20)), format!("new{i}"));
    }
    // Another queue does not wake it into printing anything.
    assert_code(&pg.run(&["write", "other", "x"]), 0);
    assert_code(&pg.run(&["write", "q", "last"]), 0);
    assert_eq!(w.next(Duration::from_secs(20)), "last");
    let (c, err) = w.stop();
    assert_eq!(c, Some(0), "{err}");
    assert_eq!(stdout(&pg.run(&["read", "other"])), "x\n");
    assert_code(&pg.run(&["read", "q"]), 2);
    pg.finish();
}

#[test]
fn listen_prints_what_another_process_publishes() {
    let Some(pg) = Pg::new("listen", "listen") else {
        return;
    };
    assert_code(&pg.run(&["init"]), 0);
    let mut l = Watching::command(&pg, &["listen", "news.+", "--count", "3"]);
    // Its private subscription exists once it listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg.scalar("SELECT count(*) FROM subscriptions") == 0 {
        assert!(Instant::now() < deadline, "listen never subscribed");
        std::thread::sleep(Duration::from_millis(50));
    }
    for (topic, body) in [
        ("news.a", "one"),
        ("other.b", "not for it"),
        ("news.b.c", "two"),
    ] {
        assert_code(&pg.run(&["publish", topic, body]), 0);
    }
    assert_eq!(l.next(Duration::from_secs(20)), "one");
    assert_eq!(l.next(Duration::from_secs(20)), "two");
    assert_code(&pg.run(&["publish", "news.z", "three"]), 0);
    assert_eq!(l.next(Duration::from_secs(20)), "three");
    let status = wait_bounded(&mut l.child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "listen --count 3 ends after three");
    // Its private subscription goes with it.
    assert_eq!(pg.scalar("SELECT count(*) FROM subscriptions"), 0);
    pg.finish();
}

#[test]
fn watch_and_run_survive_a_server_restart_and_writers_never_duplicate() {
    if pg::server_url("restart").is_none() {
        return;
    }
    let cluster = Cluster::start();
    let pg = Pg::on(cluster.url.clone(), "restart");
    assert_code(&pg.run(&["init"]), 0);
    let mut w = Watching::spawn(&pg, &["q"]);
    assert_code(&pg.run(&["write", "q", "up"]), 0);
    assert_eq!(w.next(Duration::from_secs(20)), "up");
    // A peeking watcher goes on after what it printed, never again from the start.
    let mut peeker = Watching::spawn(&pg, &["p", "--peek"]);
    assert_code(&pg.run(&["write", "p", "p1"]), 0);
    assert_eq!(peeker.next(Duration::from_secs(20)), "p1");
    // A worker (`broker run`) goes on too.
    let mut worker = Watching::command(&pg, &["run", "jobs", "--", "sh", "-c", "cat; echo"]);
    assert_code(&pg.run(&["write", "jobs", "j1"]), 0);
    assert_eq!(worker.next(Duration::from_secs(20)), "j1");
    // And a listener: its private subscription must outlive the outage.
    let mut listener = Watching::command(&pg, &["listen", "news.+"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg.scalar("SELECT count(*) FROM subscriptions") == 0 {
        assert!(Instant::now() < deadline, "listen never subscribed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_code(&pg.run(&["publish", "news.a", "n1"]), 0);
    assert_eq!(listener.next(Duration::from_secs(20)), "n1");

    // A writer that keeps writing to another queue through the restart.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let cmd = pg.broker();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut outcomes: Vec<(String, i32, String)> = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let body = format!("r{i}");
                let mut child = clone_cmd(&cmd)
                    .args(["write", "w", &body])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let status = wait_bounded(&mut child, Duration::from_secs(30));
                let err = String::from_utf8_lossy(&read_all(child.stderr.take())).into_owned();
                outcomes.push((body, status.code().expect("exited"), err));
                i += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            outcomes
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    cluster.stop();
    // Down for a while: the long-running commands must say so and keep trying.
    std::thread::sleep(Duration::from_millis(2500));
    cluster.restart();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let outcomes = writer.join().expect("writer thread");

    // After the restart a write must reach the watcher (reconnected).
    assert_code(&pg.run(&["write", "q", "after restart"]), 0);
    assert_eq!(w.next(Duration::from_secs(30)), "after restart");
    assert_code(&pg.run(&["write", "p", "p2"]), 0);
    assert_eq!(peeker.next(Duration::from_secs(30)), "p2");
    let (c, err) = peeker.stop();
    assert_eq!(c, Some(0), "{err}");
    let published = pg.run(&["publish", "news.a", "n2"]);
    assert_code(&published, 0);
    assert_eq!(
        stdout(&published),
        "1\n",
        "the listener's subscription got it"
    );
    assert_eq!(listener.next(Duration::from_secs(30)), "n2");
    let (c, err) = listener.stop();
    assert_eq!(c, Some(0), "{err}");
    assert_code(&pg.run(&["write", "jobs", "j2"]), 0);
    assert_eq!(worker.next(Duration::from_secs(30)), "j2");
    let (c, err) = worker.stop();
    assert_eq!(c, Some(0), "{err}");
    assert!(
        err.contains("database unavailable"),
        "run says so while the database is down: {err}"
    );
    assert_code(&pg.run(&["read", "jobs"]), 2);
    // Its sessions cut (this cluster serves only this test): it reconnects.
    let cut: i64 = pg::sql_client(&cluster.url)
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'litebroker' AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(cut >= 1, "the watcher's sessions");
    assert_code(&pg.run(&["write", "q", "after the cut"]), 0);
    let mut line = w.next(Duration::from_secs(30));
    if line == "after restart" {
        // Cut while it settled that message: one redelivery is the bound.
        line = w.next(Duration::from_secs(30));
    }
    assert_eq!(line, "after the cut");
    let (c, err) = w.stop();
    assert_eq!(c, Some(0), "{err}");
    assert!(
        err.contains("database unavailable"),
        "watch says so while the database is down: {err}"
    );

    let failed: Vec<&(String, i32, String)> = outcomes.iter().filter(|o| o.1 != 0).collect();
    for (body, c, err) in &failed {
        assert_eq!(*c, 1, "{body}: {err}");
        assert!(!err.trim().is_empty(), "{body}: a failed write says why");
    }
    assert!(
        !failed.is_empty(),
        "some write ran while the server was down"
    );
    assert!(
        outcomes.iter().any(|o| o.1 == 0),
        "some write ran while it was up"
    );
    let got: Vec<String> = stdout(&pg.run(&["read", "w", "--all"]))
        .lines()
        .map(String::from)
        .collect();
    let mut seen = HashSet::new();
    for body in &got {
        assert!(seen.insert(body), "{body} written twice");
    }
    for (body, c, _) in &outcomes {
        if *c == 0 {
            assert!(seen.contains(body), "{body} acknowledged but lost");
        }
    }
    let known: HashSet<&String> = outcomes.iter().map(|o| &o.0).collect();
    assert!(got.iter().all(|b| known.contains(b)));
    pg.finish();
}
