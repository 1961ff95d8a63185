//! What is particular to the SQLite backend, so not part of the backend
//! conformance suite (see `harness`): the SimpleBroker file format and its
//! refusal of foreign files, file permissions and PRAGMAs, the `.holder-*`
//! progress files and process-liveness of holders, the internal tables seen
//! with raw `rusqlite`, and giving disk space back to the file system.

mod harness;

use harness::{drain, expected, fill, origins, publish, publish_batches, read_up_to, subscribe};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use litebroker::backend::sqlite::SqliteConnector;
use litebroker::message::Filter;
use litebroker::pubsub::{NewSubscription, StartFrom};
use litebroker::{Broker, Error, Settings};

fn open(path: &Path) -> Broker {
    Broker::open(path, &Settings::default()).expect("open database")
}

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".broker.db");
    (dir, db)
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
fn another_applications_sqlite_file_is_refused_untouched() {
    let (_dir, db) = temp_db();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x);")
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let err = Broker::open(&db, &Settings::default())
        .err()
        .expect("refused");
    assert!(
        matches!(err, Error::ForeignDatabase { .. }),
        "unexpected error: {err}"
    );
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the file was modified"
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
    let me = litebroker::backend::sqlite::holder::ProcessIdentity::current();
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
    // A progress record: the storage position, then the holder's tag (its created_ns).
    let record = [3i64.to_le_bytes(), 0i64.to_le_bytes()].concat();
    std::fs::write(dir.path().join("q.db.holder-5"), record).unwrap();

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
    let me = litebroker::backend::sqlite::holder::ProcessIdentity::current();
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

// --- Pub/sub internals: owners, copy records, the topic log (from tests/pubsub.rs) ---

#[test]
fn an_ephemeral_subscription_whose_owner_cannot_be_seen_lives_while_touched() {
    let (_d, db) = temp_db();
    let clock = litebroker::clock::ManualClock::new();
    let connector = SqliteConnector::new(&db, &Settings::default());
    let mut b = Broker::connect(Arc::new(connector.with_clock(Arc::new(clock.clone())))).unwrap();
    b.create_subscription(&NewSubscription {
        name: "remote",
        pattern: "t",
        from: StartFrom::Latest,
        ephemeral: Some(Duration::from_secs(10)),
    })
    .unwrap();
    // Its owner runs on another machine: liveness cannot be checked there.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE lb_subscriptions SET host = 'elsewhere' WHERE name = 'remote'",
            [],
        )
        .unwrap();
    let names = |b: &mut Broker| -> Vec<String> {
        b.subscriptions()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    clock.advance(Duration::from_secs(8));
    assert!(b.backend().touch_subscription("remote").unwrap());
    clock.advance(Duration::from_secs(8));
    assert_eq!(names(&mut b), ["remote"], "touched 8 s ago: alive");
    clock.advance(Duration::from_secs(3));
    assert!(
        names(&mut b).is_empty(),
        "untouched for 11 s: expired and removed"
    );
    assert!(!b.backend().touch_subscription("remote").unwrap());
}

#[test]
fn vacuum_forgets_copy_records_only_when_every_copy_is_consumed() {
    let (_d, db) = temp_db();
    let mut b = open(&db);
    subscribe(&mut b, "done", "t", StartFrom::Latest);
    subscribe(&mut b, "waiting", "t", StartFrom::Latest);
    publish_batches(&mut b, 6, 3);
    let spans = |db: &Path| -> i64 {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.query_row("SELECT COUNT(*) FROM lb_copy_spans", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(spans(&db), 4, "one record per batch and subscription");
    assert_eq!(drain(&mut b, "done").len(), 6);
    // One copy of the second batch of "waiting" is still there.
    assert_eq!(read_up_to(&mut b, "waiting", 5).len(), 5);
    b.vacuum(false).unwrap();
    assert_eq!(spans(&db), 1);
    let last = b.queue("waiting").unwrap().read().unwrap().unwrap();
    assert_eq!(origins(&[last]), expected(5..6));
    b.vacuum(false).unwrap();
    assert_eq!(spans(&db), 0);
}

#[test]
fn replay_of_a_hand_edited_log_with_a_gap_keeps_every_offset() {
    let (_d, db) = temp_db();
    let mut b = open(&db);
    for i in 0..5 {
        publish(&mut b, "t", &format!("m{i}"));
    }
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM lb_topic_log WHERE topic_offset = 2", [])
        .unwrap();
    assert_eq!(subscribe(&mut b, "r", "t", StartFrom::Earliest), 4);
    let got: Vec<(String, i64)> = read_up_to(&mut b, "r", 10)
        .into_iter()
        .map(|m| (m.body, m.origin.unwrap().offset))
        .collect();
    let want: Vec<(String, i64)> = [0, 1, 3, 4]
        .into_iter()
        .map(|o| (format!("m{o}"), o))
        .collect();
    assert_eq!(got, want);
    // New publishes go on from the topic's next offset.
    assert_eq!(publish(&mut b, "t", "m5").offset, 5);
    assert_eq!(
        read_up_to(&mut b, "r", 10)[0]
            .origin
            .clone()
            .unwrap()
            .offset,
        5
    );
}

// --- Separate connectors to one file, as separate processes ---

#[test]
fn a_watcher_sees_writes_made_through_another_connector() {
    use litebroker::watch::{Mode, Watcher};
    let (_d, db) = temp_db();
    drop(open(&db));
    let (tx, rx) = std::sync::mpsc::channel();
    let connector = Arc::new(SqliteConnector::new(&db, &Settings::default()));
    let guard = Watcher::new(connector, "jobs", Mode::Consume)
        .unwrap()
        .spawn(move |m| tx.send(m.body.clone()), |_, _| false);
    std::thread::sleep(Duration::from_millis(100));
    // Broker::open makes a connector of its own, with a change feed of its own.
    open(&db)
        .queue("jobs")
        .unwrap()
        .write("from elsewhere")
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "from elsewhere"
    );
    drop(guard);
}

/// Names of the pub/sub tables present in the file.
fn pubsub_tables(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE name IN \
             ('lb_topics', 'lb_topic_log', 'lb_subscriptions', 'lb_topic_config', 'lb_copy_spans') \
             ORDER BY name",
        )
        .unwrap();
    let names = stmt.query_map([], |r| r.get(0)).unwrap();
    names.map(|n| n.unwrap()).collect()
}

#[test]
fn pubsub_tables_appear_with_the_first_pubsub_write_and_old_handles_see_them() {
    let (_dir, db) = temp_db();
    let mut early = open(&db);
    early.queue("plain").unwrap().write("x").unwrap();
    assert!(
        pubsub_tables(&db).is_empty(),
        "queues alone do not create the pub/sub tables (every process would parse them)"
    );
    // Readers answer "none" meanwhile; reads and vacuum work.
    assert!(early.topics().unwrap().is_empty());
    assert!(early.subscriptions().unwrap().is_empty());
    assert!(!early.delete_subscription("nobody").unwrap());
    assert_eq!(
        early.queue("plain").unwrap().read().unwrap().unwrap().body,
        "x"
    );
    early.vacuum(false).unwrap();
    // Another handle subscribes and publishes: the tables appear, all five.
    let mut late = open(&db);
    subscribe(&mut late, "audit", "orders.+", StartFrom::Latest);
    assert_eq!(
        pubsub_tables(&db),
        [
            "lb_copy_spans",
            "lb_subscriptions",
            "lb_topic_config",
            "lb_topic_log",
            "lb_topics"
        ]
    );
    publish(&mut late, "orders.new", "o1");
    // The handle opened before they existed sees everything now.
    assert_eq!(early.subscriptions().unwrap()[0].name, "audit");
    assert_eq!(early.topics().unwrap()[0].topic, "orders.new");
    let copy = early.queue("audit").unwrap().read().unwrap().unwrap();
    assert_eq!(
        origins(&[copy]),
        [("o1".into(), "orders.new".into(), 0, None)]
    );
}
