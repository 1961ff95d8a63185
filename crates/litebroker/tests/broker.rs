//! The library's broker-wide operations on a real database file: ids, FIFO,
//! moves, aliases, broadcast, vacuum, dump/load, and refusal of foreign files.

use std::path::Path;

use litebroker::message::{Filter, QueuedMessage};
use litebroker::{Broker, Error, Message, Settings};

fn open(path: &Path) -> Broker {
    Broker::open(path, &Settings::default()).expect("open database")
}

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".broker.db");
    (dir, db)
}

#[test]
fn ids_increase_across_handles_on_one_file() {
    let (_dir, db) = temp_db();
    let (mut a, mut b) = (open(&db), open(&db));
    let mut last = 0;
    for i in 0..200 {
        let broker = if i % 2 == 0 { &mut a } else { &mut b };
        let id = broker.queue("q").unwrap().write(&format!("{i}")).unwrap();
        assert!(id > last, "{id} after {last}");
        last = id;
    }
    assert_eq!(a.last_timestamp().unwrap(), last);
    let read: Vec<String> = (0..200)
        .map(|_| b.queue("q").unwrap().read().unwrap().unwrap().body)
        .collect();
    assert_eq!(read, (0..200).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn generate_timestamp_reserves_without_writing() {
    let (_dir, db) = temp_db();
    let mut broker = open(&db);
    let mut q = broker.queue("q").unwrap();
    let t1 = q.generate_timestamp().unwrap();
    let id = q.write("x").unwrap();
    assert!(id > t1);
    assert_eq!(q.last_ts(), Some(id));
    assert_eq!(q.refresh_last_ts().unwrap(), id);
    assert_eq!(broker.status().unwrap().total_messages, 1);
}

#[test]
fn move_keeps_ids_and_exact_move_revives_consumed() {
    let (_dir, db) = temp_db();
    let mut broker = open(&db);
    let id = broker.queue("a").unwrap().write("one").unwrap();
    let moved = broker
        .queue("a")
        .unwrap()
        .move_to("b", &Filter::all(), 10)
        .unwrap();
    assert_eq!(moved.iter().map(|m| m.id).collect::<Vec<_>>(), [id]);
    assert_eq!(broker.queue("b").unwrap().read().unwrap().unwrap().id, id);
    // consumed in b; an exact-id move brings it back
    let revived = broker
        .queue("b")
        .unwrap()
        .move_to("c", &Filter::by_id(id), 1)
        .unwrap();
    assert_eq!(revived.len(), 1);
    assert_eq!(
        broker.queue("c").unwrap().read().unwrap().unwrap().body,
        "one"
    );
    assert!(broker
        .queue("a")
        .unwrap()
        .move_to("a", &Filter::all(), 1)
        .is_err());
}

#[test]
fn time_bounds_select() {
    let (_dir, db) = temp_db();
    let mut broker = open(&db);
    let mut q = broker.queue("q").unwrap();
    let ids = q.write_many(&["a", "b", "c"]).unwrap();
    let after = Filter {
        after: Some(ids[0]),
        ..Filter::all()
    };
    assert_eq!(q.peek(&after).unwrap().unwrap().body, "b");
    let before = Filter {
        before: Some(ids[2]),
        ..Filter::all()
    };
    let mut seen = vec![];
    q.peek_each(&before, |m| {
        seen.push(m.body.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, ["a", "b"]);
}

#[test]
fn aliases_follow_the_rules() {
    let (_dir, db) = temp_db();
    let mut broker = open(&db);
    broker.alias_add("in", "work").unwrap();
    assert!(matches!(broker.alias_add("in", "x"), Err(Error::Alias(_))));
    assert!(matches!(
        broker.alias_add("other", "in"),
        Err(Error::Alias(_))
    ));
    assert!(matches!(
        broker.alias_add("same", "same"),
        Err(Error::Alias(_))
    ));
    assert_eq!(broker.resolve("@in").unwrap(), "work");
    assert_eq!(broker.resolve("in").unwrap(), "in");
    assert!(broker.resolve("@nope").is_err());
    assert!(broker.resolve("@").is_err());
    assert_eq!(
        broker.aliases(Some("work")).unwrap(),
        [("in".to_string(), "work".to_string())]
    );
    broker.alias_remove("in").unwrap();
    assert!(broker.alias_remove("in").is_err());
}

#[test]
fn broadcast_reaches_matching_queues_in_name_order() {
    let (_dir, db) = temp_db();
    let mut broker = open(&db);
    for q in ["jobs-b", "jobs-a", "other"] {
        broker.queue(q).unwrap().write("seed").unwrap();
    }
    assert_eq!(broker.broadcast("hi", Some("jobs-*")).unwrap(), 2);
    let a = broker
        .queue("jobs-a")
        .unwrap()
        .read_many(&Filter::all(), 9)
        .unwrap();
    let b = broker
        .queue("jobs-b")
        .unwrap()
        .read_many(&Filter::all(), 9)
        .unwrap();
    assert_eq!(a[1].body, "hi");
    assert!(a[1].id < b[1].id, "ids allocated in name order");
    assert_eq!(
        broker
            .queue("other")
            .unwrap()
            .read_many(&Filter::all(), 9)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(broker.broadcast("x", Some("zzz*")).unwrap(), 0);
}

#[test]
fn vacuum_removes_consumed_rows_only() {
    let (_dir, db) = temp_db();
    let mut broker = open(&db);
    broker
        .queue("q")
        .unwrap()
        .write_many(&["a", "b", "c"])
        .unwrap();
    broker.queue("q").unwrap().read().unwrap();
    let report = broker.vacuum(false).unwrap();
    assert_eq!((report.consumed_before, report.deleted), (1, 1));
    assert_eq!(broker.status().unwrap().total_messages, 2);
    assert_eq!(broker.vacuum(false).unwrap().consumed_before, 0);
}

#[test]
fn dump_and_load_round_trip_ids_and_order() {
    let (_dir, db) = temp_db();
    let mut src = open(&db);
    src.queue("b").unwrap().write_many(&["b1", "b2"]).unwrap();
    src.queue("a").unwrap().write("a1\nwith newline").unwrap();
    src.queue("b").unwrap().read().unwrap(); // consumed: not dumped
    let mut dumped = vec![];
    src.dump(&[], &mut |r| {
        dumped.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        dumped
            .iter()
            .map(|r| r.message.body.as_str())
            .collect::<Vec<_>>(),
        ["b2", "a1\nwith newline"]
    );

    let (_dir2, db2) = temp_db();
    let mut dst = open(&db2);
    let n = dst.load(&mut dumped.clone().into_iter().map(Ok)).unwrap();
    assert_eq!(n, 2);
    let mut again = vec![];
    dst.dump(&[], &mut |r| {
        again.push(r);
        Ok(())
    })
    .unwrap();
    let key = |v: &[QueuedMessage]| {
        v.iter()
            .map(|r| (r.queue.clone(), r.message.id, r.message.body.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&again), key(&dumped));
    assert!(dst.last_timestamp().unwrap() >= dumped[1].message.id);
    let next = dst.queue("b").unwrap().write("new").unwrap();
    assert!(next > dumped[1].message.id);
}

#[test]
fn load_is_all_or_nothing() {
    let (_dir, db) = temp_db();
    let mut broker = open(&db);
    let id = broker.queue("q").unwrap().write("existing").unwrap();
    let rec = |id: i64, queue: &str| QueuedMessage {
        queue: queue.into(),
        message: Message::new(id, "x", 0),
    };
    let dup = vec![Ok(rec(id - 10, "q")), Ok(rec(id, "q"))];
    assert!(broker.load(&mut dup.into_iter()).is_err());
    let bad_name = vec![Ok(rec(id - 20, "q")), Ok(rec(id - 30, "-bad"))];
    assert!(broker.load(&mut bad_name.into_iter()).is_err());
    assert_eq!(broker.status().unwrap().total_messages, 1);
}

#[test]
fn oversized_messages_are_refused() {
    let (_dir, db) = temp_db();
    let mut broker = open(&db);
    let max = "x".repeat(litebroker::message::MAX_MESSAGE_SIZE);
    broker.queue("q").unwrap().write(&max).unwrap();
    let over = format!("{max}y");
    assert!(matches!(
        broker.queue("q").unwrap().write(&over),
        Err(Error::MessageTooLarge { .. })
    ));
    assert_eq!(broker.status().unwrap().total_messages, 1);
}

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

/// Writes `bodies` in one batch and reads them back, in order.
fn batch_round_trip(bodies: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Broker::open(&dir.path().join(".broker.db"), &Settings::default()).unwrap();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let ids = b.queue("q").unwrap().write_many(&refs).unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");
    assert!(
        *ids.last().unwrap() <= b.last_timestamp().unwrap(),
        "the high-water mark covers the batch"
    );
    assert!(b.last_timestamp().unwrap() < litebroker::id::now_ns());
    let got = b
        .queue("q")
        .unwrap()
        .read_many(&Filter::all(), usize::MAX)
        .unwrap();
    let got_ids: Vec<i64> = got.iter().map(|m| m.id).collect();
    assert_eq!(got_ids, ids);
    got.into_iter().map(|m| m.body).collect()
}

#[test]
fn batched_writes_keep_every_body_byte_for_byte() {
    let bodies: Vec<String> = [
        "plain",
        "",
        "quote \" and backslash \\ and slash /",
        "\n\r\t\u{1}\u{1f}\u{7f}",
        "ü € 𝄞 \u{2028} \u{feff}",
        "{\"looks\": [\"like\", \"json\"]}",
        "\\u0041 is not A",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once("x".repeat(100_000)))
    .collect();
    assert_eq!(batch_round_trip(&bodies), bodies);
    // A NUL goes through too (by the row-by-row path).
    let with_nul = vec!["a\0b".to_string(), "c".to_string()];
    assert_eq!(batch_round_trip(&with_nul), with_nul);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn batched_writes_round_trip_any_text(bodies in proptest::collection::vec("(?s).*", 2..12)) {
        proptest::prop_assert_eq!(batch_round_trip(&bodies), bodies);
    }
}
