//! What is particular to the SQLite backend, so not part of the backend
//! conformance suite (see `harness`): the SimpleBroker file format and its
//! refusal of foreign files, file permissions and PRAGMAs, the `.holder-*`
//! progress files and process-liveness of holders, the internal tables seen
//! with raw `rusqlite`, and giving disk space back to the file system.

use std::path::Path;

use litebroker::message::Filter;
use litebroker::{Broker, Error, Settings};

fn open(path: &Path) -> Broker {
    Broker::open(path, &Settings::default()).expect("open database")
}

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".broker.db");
    (dir, db)
}

fn fill(broker: &mut Broker, queue: &str, n: usize) {
    let bodies: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    broker.queue(queue).unwrap().write_many(&refs).unwrap();
}

fn drain(broker: &mut Broker, queue: &str) -> Vec<String> {
    let msgs = broker
        .queue(queue)
        .unwrap()
        .read_many(&Filter::all(), usize::MAX)
        .unwrap();
    msgs.into_iter().map(|m| m.body).collect()
}

// --- The file format (from tests/broker.rs) ---

#[test]
fn junk_file_is_refused_untouched() {
    let (_dir, db) = temp_db();
    std::fs::write(&db, b"this is not a database at all, just text").unwrap();
    let before = std::fs::read(&db).unwrap();
    assert!(matches!(
        Broker::open(&db, &Settings::default()),
        Err(Error::NotSqlite(_))
    ));
    assert!(std::fs::read(&db).unwrap() == before, "file was modified");
}

#[test]
fn foreign_magic_is_refused_untouched() {
    let (_dir, db) = temp_db();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value); INSERT INTO meta VALUES ('magic', 'someone-else');").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    assert!(matches!(
        Broker::open(&db, &Settings::default()),
        Err(Error::ForeignDatabase { .. })
    ));
    assert!(std::fs::read(&db).unwrap() == before, "file was modified");
}

#[test]
fn newer_schema_is_refused() {
    let (_dir, db) = temp_db();
    drop(open(&db));
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE meta SET value = 5 WHERE key = 'schema_version'", [])
        .unwrap();
    assert!(matches!(
        Broker::open(&db, &Settings::default()),
        Err(Error::ForeignDatabase { .. })
    ));
}

#[test]
fn plain_sqlite_file_is_adopted() {
    let (_dir, db) = temp_db();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x);")
        .unwrap();
    let mut broker = open(&db);
    broker.queue("q").unwrap().write("hello").unwrap();
    assert_eq!(
        broker.queue("q").unwrap().read().unwrap().unwrap().body,
        "hello"
    );
}

#[test]
fn new_file_is_private_and_in_wal_mode() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, db) = temp_db();
    drop(open(&db));
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let vacuum: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), vacuum), ("wal", 2));
}

#[test]
fn vacuum_gives_the_space_back() {
    let (_dir, db) = temp_db();
    let mut broker = open(&db);
    let body = "x".repeat(200);
    let bodies: Vec<&str> = (0..20_000).map(|_| body.as_str()).collect();
    broker.queue("q").unwrap().write_many(&bodies).unwrap();
    while !broker
        .queue("q")
        .unwrap()
        .read_many(&Filter::all(), 5000)
        .unwrap()
        .is_empty()
    {}
    broker.vacuum(false).unwrap();
    let size = std::fs::metadata(&db).unwrap().len();
    assert!(size < 200_000, "file still {size} bytes after vacuum");
}

// --- Holders and their progress files (from tests/delivery.rs) ---

/// Simulates a reader that died mid-delivery: messages marked held by a
/// holder whose process no longer exists, with a progress file.
#[test]
fn dead_holder_is_settled_by_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let mut broker = open(&db);
    fill(&mut broker, "q", 10);
    drop(broker);

    let dead_pid = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let me = litebroker::holder::ProcessIdentity::current();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO lb_holders (token, pid, start_time, boot_id, host, created_ns) VALUES (5, ?1, 1, ?2, ?3, 0)",
        rusqlite::params![dead_pid, me.boot_id, me.host],
    )
    .unwrap();
    // The dead reader held m0..m5 and had delivered up to m2 (seq 3).
    conn.execute("UPDATE messages SET claimed = -5 WHERE id <= 6", [])
        .unwrap();
    drop(conn);
    std::fs::write(dir.path().join("q.db.holder-5"), 3i64.to_le_bytes()).unwrap();

    let mut broker = open(&db);
    let left = drain(&mut broker, "q");
    assert_eq!(left, (3..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert!(!dir.path().join("q.db.holder-5").exists());
}

#[test]
fn live_holder_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let mut broker = open(&db);
    fill(&mut broker, "q", 3);
    let me = litebroker::holder::ProcessIdentity::current();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO lb_holders (token, pid, start_time, boot_id, host, created_ns) VALUES (9, ?1, ?2, ?3, ?4, 0)",
        rusqlite::params![me.pid, me.start_time, me.boot_id, me.host],
    )
    .unwrap();
    conn.execute("UPDATE messages SET claimed = -9 WHERE id = 1", [])
        .unwrap();
    assert_eq!(drain(&mut broker, "q"), ["m1", "m2"]);
}

#[test]
fn a_finished_delivery_leaves_no_progress_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = open(&dir.path().join("q.db"));
    fill(&mut broker, "q", 50);
    let pacing = litebroker::delivery::Pacing {
        max: None,
        batch: 7,
        ack_every: 1,
    };
    let mut sink = litebroker::watch::HandlerSink::new(|_: &litebroker::Message| Ok::<(), ()>(()));
    let n = broker
        .queue("q")
        .unwrap()
        .deliver(&Filter::all(), pacing, &mut sink)
        .unwrap();
    assert_eq!(n, 50);
    assert!(drain(&mut broker, "q").is_empty());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".holder-"))
        .collect();
    assert!(left.is_empty(), "progress files left behind: {left:?}");
}
