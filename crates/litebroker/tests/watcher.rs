//! The library Watcher, on any backend (see `harness`): handlers, failures,
//! background threads, several queues. Writes come through connections of
//! their own, as another part of the process would make them.

mod harness;

use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{harness, pending, Harness};
use litebroker::error::ErrorKind;
use litebroker::watch::{Mode, Watcher};

/// A fresh test database, created before the watcher starts.
fn setup() -> Box<dyn Harness> {
    let db = harness();
    drop(db.broker());
    db
}

fn write(db: &dyn Harness, queue: &str, body: &str) {
    let mut broker = db.broker();
    broker.queue(queue).unwrap().write(body).unwrap();
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
    let db = setup();
    let (tx, rx) = channel();
    let guard = Watcher::new(db.connector(), "jobs", Mode::Consume)
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
    let db = setup();
    write(&db, "q", "good");
    write(&db, "q", "poison");
    write(&db, "q", "later");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (s, e) = (seen.clone(), errors.clone());
    let watcher = Watcher::new(db.connector(), "q", Mode::Consume).unwrap();
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
    let db = setup();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let guard = Watcher::on_queues(db.connector(), &["a", "b"], Mode::Consume)
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
    let db = setup();
    write(&db, "q", "x");
    let (tx, rx) = channel();
    let guard = Watcher::new(db.connector(), "q", Mode::Peek)
        .unwrap()
        .spawn(move |m| tx.send(m.body.clone()), |_, _| false);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "x");
    drop(guard);
    assert_eq!(pending(&db, "q"), ["x"]);
}

#[test]
fn move_watcher_refuses_since_and_its_own_queue() {
    let db = setup();
    let kind = |r: litebroker::Result<Watcher>| r.err().expect("refused").kind();
    assert_eq!(
        kind(Watcher::new(db.connector(), "q", Mode::Move("q".into()))),
        ErrorKind::InvalidInput
    );
    let w = Watcher::new(db.connector(), "q", Mode::Move("d".into())).unwrap();
    assert_eq!(kind(w.since(5)), ErrorKind::InvalidInput);
    assert_eq!(
        kind(Watcher::new(db.connector(), "-bad", Mode::Consume)),
        ErrorKind::InvalidInput
    );
}

#[test]
fn move_watcher_moves_then_delivers() {
    let db = setup();
    write(&db, "in", "x");
    let (tx, rx) = channel();
    let guard = Watcher::new(db.connector(), "in", Mode::Move("out".into()))
        .unwrap()
        .spawn(move |m| tx.send(m.body.clone()), |_, _| false);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "x");
    drop(guard);
    assert!(pending(&db, "in").is_empty());
    assert_eq!(pending(&db, "out"), ["x"]);
}

#[test]
fn a_watcher_since_a_bound_leaves_older_messages() {
    let db = setup();
    write(&db, "q", "old");
    let bound = db.broker().last_id().unwrap();
    write(&db, "q", "new");
    let (tx, rx) = channel();
    let guard = Watcher::new(db.connector(), "q", Mode::Consume)
        .unwrap()
        .since(bound)
        .unwrap()
        .batch(1)
        .spawn(move |m| tx.send(m.body.clone()), |_, _| false);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "new");
    drop(guard);
    assert_eq!(pending(&db, "q"), ["old"]);
}
