//! Lossless delivery through the library: what a sink does not take stays
//! queued in place, and messages held by a dead process are settled by the
//! next reader according to its recorded progress.

use std::path::Path;

use litebroker::delivery::{DeliveryError, Pacing, Sink};
use litebroker::message::Filter;
use litebroker::{Broker, Message, Settings};

fn open(path: &Path) -> Broker {
    Broker::open(path, &Settings::default()).expect("open database")
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

/// A sink that takes `accept_limit` messages and then fails; `flushed_through`
/// lets a flush report a partial write.
struct FlakySink {
    taken: Vec<String>,
    accept_limit: usize,
    unflushed: Vec<String>,
    flush_keeps: Option<usize>,
}

impl FlakySink {
    fn failing_after(accept_limit: usize) -> Self {
        FlakySink {
            taken: vec![],
            accept_limit,
            unflushed: vec![],
            flush_keeps: None,
        }
    }
}

impl Sink for FlakySink {
    type Error = String;

    fn accept(&mut self, msg: &Message) -> Result<(), String> {
        if self.taken.len() + self.unflushed.len() >= self.accept_limit {
            return Err("sink full".into());
        }
        self.unflushed.push(msg.body.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), (usize, String)> {
        if let Some(keep) = self.flush_keeps.take() {
            let kept: Vec<String> = self.unflushed.drain(..).take(keep).collect();
            self.taken.extend(kept);
            return Err((keep, "pipe closed".into()));
        }
        self.taken.append(&mut self.unflushed);
        Ok(())
    }
}

fn all_pacing(ack_every: usize) -> Pacing {
    Pacing {
        max: None,
        batch: 7,
        ack_every,
    }
}

#[test]
fn failing_sink_leaves_the_rest_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = open(&dir.path().join("q.db"));
    fill(&mut broker, "q", 20);
    let mut sink = FlakySink::failing_after(9);
    let out = broker
        .queue("q")
        .unwrap()
        .deliver(&Filter::all(), all_pacing(3), &mut sink);
    assert!(matches!(out, Err(DeliveryError::Sink(_))));
    assert_eq!(
        sink.taken,
        (0..9).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        drain(&mut broker, "q"),
        (9..20).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn partial_flush_consumes_exactly_what_got_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = open(&dir.path().join("q.db"));
    fill(&mut broker, "q", 10);
    let mut sink = FlakySink::failing_after(usize::MAX);
    sink.flush_keeps = Some(2); // the first flush gets 2 of its 4 messages out
    let out = broker
        .queue("q")
        .unwrap()
        .deliver(&Filter::all(), all_pacing(4), &mut sink);
    assert!(matches!(out, Err(DeliveryError::Sink(_))));
    assert_eq!(sink.taken, ["m0", "m1"]);
    assert_eq!(
        drain(&mut broker, "q"),
        (2..10).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn successful_delivery_consumes_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = open(&dir.path().join("q.db"));
    fill(&mut broker, "q", 50);
    let mut sink = FlakySink::failing_after(usize::MAX);
    let n = broker
        .queue("q")
        .unwrap()
        .deliver(&Filter::all(), all_pacing(1), &mut sink)
        .unwrap();
    assert_eq!(n, 50);
    assert_eq!(sink.taken.len(), 50);
    assert!(drain(&mut broker, "q").is_empty());
    assert!(
        !dir.path().join("q.db.holder-1").exists(),
        "progress file removed"
    );
}

#[test]
fn max_limits_the_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = open(&dir.path().join("q.db"));
    fill(&mut broker, "q", 5);
    let mut sink = FlakySink::failing_after(usize::MAX);
    let n = broker
        .queue("q")
        .unwrap()
        .deliver(&Filter::all(), Pacing::single(), &mut sink)
        .unwrap();
    assert_eq!((n, sink.taken.as_slice()), (1, &["m0".to_string()][..]));
    assert_eq!(drain(&mut broker, "q").len(), 4);
}

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
fn read_iter_dropped_early_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = open(&dir.path().join("q.db"));
    fill(&mut broker, "q", 250);
    let mut q = broker.queue("q").unwrap();
    let first: Vec<String> = q
        .read_iter(&Filter::all())
        .take(130)
        .map(|m| m.unwrap().body)
        .collect();
    assert_eq!(first, (0..130).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let rest: Vec<String> = q
        .read_iter(&Filter::all())
        .map(|m| m.unwrap().body)
        .collect();
    assert_eq!(
        rest,
        (130..250).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert!(q.read().unwrap().is_none());
}

#[test]
fn peek_iter_sees_everything_and_consumes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = open(&dir.path().join("q.db"));
    fill(&mut broker, "q", 205);
    let mut q = broker.queue("q").unwrap();
    assert_eq!(q.peek_iter(&Filter::all()).count(), 205);
    assert_eq!(q.peek_iter(&Filter::all()).count(), 205);
}
