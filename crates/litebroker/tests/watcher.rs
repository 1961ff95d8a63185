//! The library Watcher: handlers, failures, background threads, several queues.

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use litebroker::message::Filter;
use litebroker::watch::{Mode, Watcher};
use litebroker::{Broker, Settings};

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    drop(Broker::open(&db, &Settings::default()).unwrap());
    (dir, db)
}

fn write(db: &std::path::Path, queue: &str, body: &str) {
    let mut broker = Broker::open(db, &Settings::default()).unwrap();
    broker.queue(queue).unwrap().write(body).unwrap();
}

fn pending(db: &std::path::Path, queue: &str) -> Vec<String> {
    let mut broker = Broker::open(db, &Settings::default()).unwrap();
    let mut q = broker.queue(queue).unwrap();
    q.peek_iter(&Filter::all())
        .map(|m| m.unwrap().body)
        .collect()
}

fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn background_watcher_consumes_and_stops_when_dropped() {
    let (_dir, db) = setup();
    let (tx, rx) = channel();
    let guard = Watcher::new(sqlite(&db), "jobs", Mode::Consume)
        .unwrap()
        .spawn(
            move |m| tx.send(m.body.clone()),
            |_: &std::sync::mpsc::SendError<String>, _| false,
        );
    write(&db, "jobs", "one");
    write(&db, "jobs", "two");
    let got: Vec<String> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(got, ["one", "two"]);
    drop(guard); // stops and joins
    write(&db, "jobs", "after");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(pending(&db, "jobs"), ["after"]);
}

#[test]
fn failing_handler_leaves_the_message_in_place() {
    let (_dir, db) = setup();
    write(&db, "q", "good");
    write(&db, "q", "poison");
    write(&db, "q", "later");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (s, e) = (seen.clone(), errors.clone());
    let watcher = Watcher::new(sqlite(&db), "q", Mode::Consume).unwrap();
    watcher
        .run_with(
            move |m| {
                s.lock().unwrap().push(m.body.clone());
                if m.body == "poison" {
                    Err("cannot handle")
                } else {
                    Ok(())
                }
            },
            move |err, m| {
                e.lock().unwrap().push(format!("{err}: {}", m.body));
                false // stop watching
            },
        )
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["good", "poison"]);
    assert_eq!(*errors.lock().unwrap(), ["cannot handle: poison"]);
    assert_eq!(
        pending(&db, "q"),
        ["poison", "later"],
        "failed message stays, in order"
    );
}

#[test]
fn one_watcher_serves_several_queues() {
    let (_dir, db) = setup();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let guard = Watcher::on_queues(sqlite(&db), &["a", "b"], Mode::Consume)
        .unwrap()
        .spawn(
            move |m| {
                s.lock().unwrap().push(m.body.clone());
                Ok::<(), ()>(())
            },
            |_, _| true,
        );
    write(&db, "a", "from-a");
    write(&db, "b", "from-b");
    wait_until(|| seen.lock().unwrap().len() == 2);
    guard.join().unwrap();
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, ["from-a", "from-b"]);
}

#[test]
fn peek_watcher_sees_without_consuming() {
    let (_dir, db) = setup();
    write(&db, "q", "x");
    let (tx, rx) = channel();
    let guard = Watcher::new(sqlite(&db), "q", Mode::Peek)
        .unwrap()
        .spawn(move |m| tx.send(m.body.clone()), |_, _| false);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "x");
    drop(guard);
    assert_eq!(pending(&db, "q"), ["x"]);
}

#[test]
fn move_watcher_refuses_since_and_its_own_queue() {
    let (_dir, db) = setup();
    assert!(Watcher::new(sqlite(&db), "q", Mode::Move("q".into())).is_err());
    let w = Watcher::new(sqlite(&db), "q", Mode::Move("d".into())).unwrap();
    assert!(w.since(5).is_err());
    assert!(Watcher::new(sqlite(&db), "-bad", Mode::Consume).is_err());
}

fn sqlite(db: &std::path::Path) -> std::sync::Arc<dyn litebroker::backend::Connector> {
    std::sync::Arc::new(litebroker::backend::sqlite::SqliteConnector::new(
        db,
        &Settings::default(),
    ))
}
