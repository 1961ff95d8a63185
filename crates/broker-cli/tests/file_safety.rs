//! What the broker does with files and processes it does not control: another
//! application's SQLite file, a damaged database, a file-size limit, a vacuum
//! killed mid-way, a write lock held by someone else. Each case runs the real
//! binary in a temporary directory.

mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_code, ok, stderr, Sandbox};

/// Asserts exit 1, nothing on stdout, and exactly one line on stderr containing `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    assert_code(out, 1);
    assert!(out.stdout.is_empty(), "stdout: {:?}", common::stdout(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

fn sqlite(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

// ---------------------------------------------------------------- D6: foreign files

/// Runs several commands on `file` (inside `sb`) and checks that every one is
/// refused with one clear line and that the file and its directory are unchanged.
fn assert_refused_untouched(sb: &Sandbox, file: &str, needle: &str) {
    let path = sb.path().join(file);
    let before = std::fs::read(&path).unwrap();
    for args in [
        &["list"][..],
        &["write", "q", "m"],
        &["read", "q"],
        &["peek", "q"],
        &["--status"],
        &["--vacuum"],
    ] {
        let mut full = vec!["-f", file];
        full.extend_from_slice(args);
        assert_one_line_error(&sb.run(&full), needle);
        assert!(
            std::fs::read(&path).unwrap() == before,
            "{args:?} modified {file}"
        );
        for suffix in ["-wal", "-shm", "-journal"] {
            let side = sb.path().join(format!("{file}{suffix}"));
            assert!(!side.exists(), "{args:?} left {}", side.display());
        }
    }
}

#[test]
fn another_applications_database_is_refused_before_anything_changes() {
    let sb = Sandbox::new();
    sqlite(
        &sb.path().join("app.db"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO users (name) VALUES ('alice');",
    );
    assert_refused_untouched(&sb, "app.db", "is not a SimpleBroker database");
}

#[test]
fn a_foreign_messages_table_is_refused_in_one_line() {
    let sb = Sandbox::new();
    sqlite(
        &sb.path().join("chat.db"),
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, sender TEXT, text TEXT);",
    );
    assert_refused_untouched(&sb, "chat.db", "is not a SimpleBroker database");
}

#[test]
fn a_foreign_database_in_wal_mode_is_refused_too() {
    let sb = Sandbox::new();
    sqlite(
        &sb.path().join("w.db"),
        "PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
    );
    let before = std::fs::read(sb.path().join("w.db")).unwrap();
    assert_one_line_error(
        &sb.run(&["-f", "w.db", "write", "q", "m"]),
        "is not a SimpleBroker database",
    );
    assert!(std::fs::read(sb.path().join("w.db")).unwrap() == before);
}

#[test]
fn random_bytes_are_refused_and_unchanged() {
    let sb = Sandbox::new();
    let junk: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(sb.path().join("junk.db"), &junk).unwrap();
    assert_refused_untouched(&sb, "junk.db", "not a valid SQLite database");
}

#[test]
fn empty_files_are_initialised() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("zero.db"), b"").unwrap();
    assert_code(&sb.run(&["-f", "zero.db", "write", "q", "a"]), 0);
    assert_eq!(ok(&sb.run(&["-f", "zero.db", "read", "q"])), "a\n");
    // A valid SQLite file with no schema at all (e.g. left by `sqlite3 x.db 'PRAGMA user_version'`).
    sqlite(&sb.path().join("bare.db"), "PRAGMA page_size=4096; VACUUM;");
    assert_code(&sb.run(&["-f", "bare.db", "write", "q", "b"]), 0);
    assert_eq!(ok(&sb.run(&["-f", "bare.db", "read", "q"])), "b\n");
}

#[test]
fn an_early_simplebroker_database_without_magic_is_still_opened() {
    // SimpleBroker before the magic string: messages and meta only.
    let sb = Sandbox::new();
    sqlite(
        &sb.db(),
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,
             body TEXT NOT NULL, ts INTEGER NOT NULL UNIQUE);
         CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
         INSERT INTO meta VALUES ('last_ts', 4096);
         INSERT INTO messages (queue, body, ts) VALUES ('q', 'old', 4096);",
    );
    assert_eq!(ok(&sb.run(&["read", "q"])), "old\n");
    assert_code(&sb.run(&["write", "q", "new"]), 0);
    assert_eq!(ok(&sb.run(&["read", "q"])), "new\n");
}

// ---------------------------------------------------------------- D8: a damaged page

/// 3000 messages `msg-00000-...` in queue `q`; 40 bytes of 0xff over the
/// cell-pointer array of one leaf page of `messages` (17 rows).
const CORRUPT_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/d8-damaged-page.db"
);

fn corrupt_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::copy(CORRUPT_FIXTURE, sb.db()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sb.db(), std::fs::Permissions::from_mode(0o600)).unwrap();
    sb
}

/// Visible messages of `q`, counted from the partial index alone (the table is damaged).
fn visible_by_index(sb: &Sandbox) -> i64 {
    let conn = rusqlite::Connection::open(sb.db()).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM messages INDEXED BY idx_messages_unclaimed \
         WHERE queue = 'q' AND claimed = 0",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn reading_all_of_a_damaged_database_fails_and_consumes_only_what_it_printed() {
    let sb = corrupt_sandbox();
    assert_eq!(visible_by_index(&sb), 3000);
    let out = sb.run(&["read", "q", "--all"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("malformed"), "stderr: {err}");
    let printed = common::stdout(&out).lines().count() as i64;
    assert!(printed < 3000, "printed {printed}");
    // Every message not printed is still there.
    assert_eq!(visible_by_index(&sb), 3000 - printed);
    // Asking again fails again instead of claiming the queue is done.
    let again = sb.run(&["read", "q", "--all"]);
    assert_code(&again, 1);
    let printed_again = common::stdout(&again).lines().count() as i64;
    assert_eq!(visible_by_index(&sb), 3000 - printed - printed_again);
}

#[test]
fn peeking_all_of_a_damaged_database_fails() {
    let sb = corrupt_sandbox();
    let out = sb.run(&["peek", "q", "--all"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("malformed"), "{}", stderr(&out));
    assert_eq!(visible_by_index(&sb), 3000);
}

// ---------------------------------------------------------------- D9: ulimit -f

/// Runs `broker args` in `sb` under RLIMIT_FSIZE = `bytes` (soft limit).
fn run_with_fsize_limit(sb: &Sandbox, args: &[&str], bytes: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = sb.broker();
    cmd.args(args);
    // SAFETY: only async-signal-safe calls (getrlimit, setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim);
            lim.rlim_cur = bytes as libc::rlim_t;
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("spawn broker")
}

#[test]
fn a_file_size_limit_fails_writes_cleanly_and_reports_exactly_what_was_saved() {
    let sb = Sandbox::new();
    let limit = 300 * 1024;
    let pad = "x".repeat(3000);
    let mut saved = Vec::new();
    let mut failures = 0;
    for i in 0..400 {
        let body = format!("m{i:04}-{pad}");
        let out = run_with_fsize_limit(&sb, &["write", "q", &body], limit);
        match out.status.code() {
            Some(0) => saved.push(body),
            Some(1) => {
                let err = stderr(&out);
                assert!(err.contains("file size limit"), "stderr: {err}");
                assert_eq!(err.lines().count(), 1, "stderr: {err}");
                failures += 1;
                if failures == 3 {
                    break;
                }
            }
            _ => panic!("write {i} ended with {:?} (killed by SIGXFSZ?)", out.status),
        }
    }
    assert_eq!(failures, 3, "the limit was never reached");
    // A reader under the same limit either delivers and consumes, or fails
    // without consuming; it is never killed half-way.
    let limited = run_with_fsize_limit(&sb, &["read", "q", "--all"], limit);
    assert!(
        matches!(limited.status.code(), Some(0 | 1)),
        "read --all ended with {:?}",
        limited.status
    );
    let rest = sb.run(&["read", "q", "--all"]);
    let mut delivered: Vec<String> = common::stdout(&limited)
        .lines()
        .chain(common::stdout(&rest).lines())
        .map(str::to_owned)
        .collect();
    delivered.sort();
    saved.sort();
    assert_eq!(
        delivered.len(),
        saved.len(),
        "every write reported saved is delivered exactly once, no other"
    );
    assert!(
        delivered == saved,
        "delivered messages differ from the saved ones"
    );
}

// ---------------------------------------------------------------- a lock held elsewhere

#[test]
fn a_write_blocked_by_a_held_lock_gives_up_after_the_busy_timeout() {
    let sb = Sandbox::new();
    sb.write("q", "first");
    let holder = rusqlite::Connection::open(sb.db()).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'last_ts';")
        .unwrap();
    let started = std::time::Instant::now();
    let out = sb.run_env(
        &["write", "q", "blocked"],
        &[("BROKER_BUSY_TIMEOUT", "400")],
    );
    let took = started.elapsed();
    assert_one_line_error(&out, "locked");
    assert!(
        stderr(&out).contains("BROKER_BUSY_TIMEOUT"),
        "{}",
        stderr(&out)
    );
    assert!(
        took >= std::time::Duration::from_millis(400) && took < std::time::Duration::from_secs(3),
        "gave up after {took:?}"
    );
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    // The failed write left nothing behind, and the next one goes through.
    assert_eq!(ok(&sb.run(&["peek", "q", "--all"])), "first\n");
    assert_code(&sb.run(&["write", "q", "later"]), 0);
}

// ---------------------------------------------------------------- D7: vacuum lock

/// A queue with three consumed messages, waiting for a vacuum.
fn consumed_three() -> Sandbox {
    let sb = Sandbox::new();
    for m in ["a", "b", "c"] {
        sb.write("q", m);
    }
    assert_eq!(ok(&sb.run(&["read", "q", "--all"])), "a\nb\nc\n");
    sb
}

fn claimed_rows(sb: &Sandbox) -> i64 {
    let conn = rusqlite::Connection::open(sb.db()).unwrap();
    conn.query_row("SELECT COUNT(*) FROM messages WHERE claimed = 1", [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// The PID of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// What litebroker writes on the second line of its lock: start time, boot id, host key.
fn identity_line(pid: u32, start_time: &str) -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap();
    let host = String::from_utf8_lossy(&buf[..len]).into_owned();
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    format!(
        "{pid}\n{start_time} {} {host}|{}\n",
        boot.trim(),
        ns.to_string_lossy()
    )
}

#[test]
fn a_vacuum_lock_left_by_a_dead_process_is_taken_over() {
    let pid = dead_pid();
    // Ours (PID and identity) and the reference's (PID only).
    for content in [identity_line(pid, "12345"), format!("{pid}\n")] {
        let sb = consumed_three();
        let lock = sb.path().join(".broker.vacuum.lock");
        std::fs::write(&lock, &content).unwrap();
        let out = sb.run(&["--vacuum"]);
        assert_code(&out, 0);
        assert!(
            common::stdout(&out).starts_with("Vacuumed 3 claimed messages"),
            "{}",
            common::stdout(&out)
        );
        assert_eq!(
            claimed_rows(&sb),
            0,
            "lock {content:?}: nothing was removed"
        );
        assert!(!lock.exists());
    }
}

#[test]
fn a_vacuum_lock_of_a_live_process_is_reported_not_claimed() {
    let sb = consumed_three();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let lock = sb.path().join(".broker.vacuum.lock");
    std::fs::write(&lock, format!("{}\n", sleeper.id())).unwrap();
    let out = sb.run(&["--vacuum"]);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_one_line_error(&out, "another vacuum");
    assert!(
        stderr(&out).contains(&format!("pid {}", sleeper.id())),
        "{}",
        stderr(&out)
    );
    assert_eq!(claimed_rows(&sb), 3);
    assert!(lock.exists(), "another process's lock must be left alone");
    // Once that process is gone, the next vacuum takes over.
    assert_code(&sb.run(&["--vacuum"]), 0);
    assert_eq!(claimed_rows(&sb), 0);
}
