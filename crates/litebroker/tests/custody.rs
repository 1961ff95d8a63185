//! Custody of held messages on SQLite: regression tests for the loss and
//! duplicate paths the fault campaign found (D2, D3, D4). A "killed" holder
//! is simulated by giving its record a process id that cannot exist, which
//! is exactly what a later reader sees after a SIGKILL.

use std::path::{Path, PathBuf};

use litebroker::message::Filter;
use litebroker::{Broker, Settings};

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".broker.db");
    (dir, db)
}

fn open(db: &Path) -> Broker {
    Broker::open(db, &Settings::default()).unwrap()
}

/// Makes every holder record look like a process that died.
fn kill_all_holders(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute("UPDATE lb_holders SET pid = 2147483000, start_time = 1", [])
        .unwrap();
}

fn drain(db: &Path, queue: &str) -> Vec<String> {
    let mut b = open(db);
    let mut q = b.queue(queue).unwrap();
    q.read_many(&Filter::all(), 100_000)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

/// D2: a held batch deleted under the reader, then older messages moved into
/// the queue. The next batch must be a custody of its own: a kill before its
/// first progress record returns those messages, it never consumes them.
#[test]
fn a_deleted_batch_leaves_no_progress_for_the_next_one() {
    let (_d, db) = setup();
    let mut writer = open(&db);
    writer.queue("other").unwrap().write("older-1").unwrap();
    writer.queue("other").unwrap().write("older-2").unwrap();
    let bodies: Vec<String> = (0..10).map(|i| format!("q{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    writer.queue("q").unwrap().write_many(&refs).unwrap();

    let mut reader = open(&db);
    let held = reader.backend().hold("q", &Filter::all(), 10).unwrap();
    assert_eq!(held.len(), 10);
    // Delivered the first five, recorded, then the queue is purged and older
    // messages (lower storage positions) are moved in.
    reader.backend().record_progress(held[4].seq).unwrap();
    writer.queue("q").unwrap().delete().unwrap();
    let moved = writer
        .queue("other")
        .unwrap()
        .move_to("q", &Filter::all(), 10)
        .unwrap();
    assert_eq!(moved.len(), 2);
    // The reader finishes its batch (its rows are gone) and holds the next.
    reader
        .backend()
        .settle(Some(held[0].seq..=held[9].seq), None)
        .unwrap();
    let next = reader.backend().hold("q", &Filter::all(), 10).unwrap();
    assert_eq!(next.len(), 2);
    // Killed before writing a byte of them.
    std::mem::forget(reader);
    kill_all_holders(&db);
    assert_eq!(drain(&db, "q"), vec!["older-1", "older-2"], "nothing lost");
}

/// D3: a progress file left behind (a kill after the settle committed, or a
/// database deleted and created again) must not speak for a later holder
/// that happens to get the same token.
#[test]
fn a_stale_progress_file_speaks_for_nobody() {
    let (dir, db) = setup();
    let mut b = open(&db);
    let bodies: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    b.queue("q").unwrap().write_many(&refs).unwrap();
    // The first holder of a fresh database gets token 1: plant its file,
    // claiming everything was delivered.
    std::fs::write(
        dir.path().join(".broker.db.holder-1"),
        [i64::MAX.to_le_bytes(), 0i64.to_le_bytes()].concat(),
    )
    .unwrap();
    let held = b.backend().hold("q", &Filter::all(), 5).unwrap();
    assert_eq!(held.len(), 5);
    std::mem::forget(b);
    kill_all_holders(&db);
    assert_eq!(drain(&db, "q"), bodies, "all returned, none consumed");
}

/// D3: after a batch is settled its progress file is gone; a killed holder's
/// progress is honoured exactly (delivered consumed, the rest returned).
#[test]
fn progress_is_honoured_and_cleaned_up() {
    let (dir, db) = setup();
    let mut b = open(&db);
    let bodies: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    b.queue("q").unwrap().write_many(&refs).unwrap();
    let held = b.backend().hold("q", &Filter::all(), 3).unwrap();
    b.backend().record_progress(held[0].seq).unwrap();
    assert!(dir.path().join(".broker.db.holder-1").exists());
    b.backend()
        .settle(Some(held[0].seq..=held[2].seq), None)
        .unwrap();
    assert!(
        !dir.path().join(".broker.db.holder-1").exists(),
        "removed once the settle committed"
    );
    let held = b.backend().hold("q", &Filter::all(), 3).unwrap();
    b.backend().record_progress(held[1].seq).unwrap();
    std::mem::forget(b);
    kill_all_holders(&db);
    assert_eq!(drain(&db, "q"), vec!["m5"], "m3 and m4 were delivered");
}

/// D4: when no progress file can be written, delivery is acknowledged in the
/// database instead: a kill afterwards redelivers nothing that was recorded.
#[test]
fn progress_without_a_file_is_recorded_in_the_database() {
    let (dir, db) = setup();
    let mut b = open(&db);
    let bodies: Vec<String> = (0..4).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    b.queue("q").unwrap().write_many(&refs).unwrap();
    std::fs::create_dir(dir.path().join(".broker.db.holder-1")).unwrap();
    let held = b.backend().hold("q", &Filter::all(), 4).unwrap();
    b.backend().record_progress(held[1].seq).unwrap();
    std::mem::forget(b);
    kill_all_holders(&db);
    assert_eq!(drain(&db, "q"), vec!["m2", "m3"]);
}
