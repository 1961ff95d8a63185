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

    fn flush(&mut self) -> Result<usize, (usize, String)> {
        if let Some(keep) = self.flush_keeps.take() {
            let kept: Vec<String> = self.unflushed.drain(..).take(keep).collect();
            self.taken.extend(kept);
            return Err((keep, "pipe closed".into()));
        }
        self.taken.append(&mut self.unflushed);
        Ok(0)
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

/// A sink like a pipe: flushed messages stay in transit until its reader
/// reads them. The reader reads `per_flush` messages at each flush and all at
/// `confirm`, but goes away after `reads_at_most` in all. At every flush it
/// checks that recorded progress never ran ahead of what it had read.
struct PipeLikeSink {
    db: std::path::PathBuf,
    unflushed: Vec<String>,
    in_transit: std::collections::VecDeque<String>,
    read: Vec<String>,
    per_flush: usize,
    reads_at_most: usize,
    flushes: usize,
}

impl PipeLikeSink {
    fn new(db: &Path, per_flush: usize, reads_at_most: usize) -> Self {
        PipeLikeSink {
            db: db.to_path_buf(),
            unflushed: vec![],
            in_transit: Default::default(),
            read: vec![],
            per_flush,
            reads_at_most,
            flushes: 0,
        }
    }

    /// The reader reads up to `n` messages; how many it did.
    fn reader_reads(&mut self, n: usize) -> usize {
        let n = n
            .min(self.in_transit.len())
            .min(self.reads_at_most - self.read.len());
        self.read.extend(self.in_transit.drain(..n));
        n
    }

    fn reader_gone(&self) -> bool {
        self.read.len() == self.reads_at_most
    }

    /// The highest position recorded in any progress file of the database.
    fn recorded_progress(&self) -> Option<i64> {
        let dir = self.db.parent().unwrap();
        let prefix = format!("{}.holder-", self.db.file_name().unwrap().to_str().unwrap());
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().unwrap().starts_with(&prefix))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter(|b| b.len() == 8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .max()
    }
}

impl Sink for PipeLikeSink {
    type Error = String;

    fn accept(&mut self, msg: &Message) -> Result<(), String> {
        self.unflushed.push(msg.body.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<usize, (usize, String)> {
        self.flushes += 1;
        // Fresh queue: message mN sits at storage position N + 1.
        if let Some(seq) = self.recorded_progress() {
            assert!(
                seq <= self.read.len() as i64,
                "progress recorded through position {seq} with only {} read",
                self.read.len()
            );
        }
        if self.reader_gone() && !self.unflushed.is_empty() {
            self.unflushed.clear();
            self.in_transit.clear();
            return Err((0, "broken pipe".into()));
        }
        self.in_transit.extend(self.unflushed.drain(..));
        self.reader_reads(self.per_flush);
        Ok(self.in_transit.len())
    }

    fn confirm(&mut self) -> Result<(), (usize, String)> {
        let n = self.reader_reads(usize::MAX);
        if self.in_transit.is_empty() {
            return Ok(());
        }
        self.in_transit.clear();
        Err((n, "broken pipe".into()))
    }
}

#[test]
fn messages_in_transit_when_the_reader_goes_return_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let mut broker = open(&db);
    fill(&mut broker, "q", 30);
    // The reader lags: one read per flush while two are written per flush.
    let mut sink = PipeLikeSink::new(&db, 1, 5);
    let pacing = Pacing {
        max: None,
        batch: 20,
        ack_every: 2,
    };
    let out = broker
        .queue("q")
        .unwrap()
        .deliver(&Filter::all(), pacing, &mut sink);
    assert!(matches!(out, Err(DeliveryError::Sink(_))));
    assert_eq!(sink.read, ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(
        drain(&mut broker, "q"),
        (5..30).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn a_batch_is_settled_only_once_its_reader_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let mut broker = open(&db);
    fill(&mut broker, "q", 25);
    // The reader reads nothing until confirm, then goes away after 12: all
    // of the first batch (10) and two of the second.
    let mut sink = PipeLikeSink::new(&db, 0, 12);
    let pacing = Pacing {
        max: None,
        batch: 10,
        ack_every: 1,
    };
    let out = broker
        .queue("q")
        .unwrap()
        .deliver(&Filter::all(), pacing, &mut sink);
    assert!(matches!(out, Err(DeliveryError::Sink(_))));
    assert_eq!(sink.read.len(), 12);
    assert_eq!(
        drain(&mut broker, "q"),
        (12..25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn a_lagging_reader_that_reads_everything_gets_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let mut broker = open(&db);
    fill(&mut broker, "q", 50);
    let mut sink = PipeLikeSink::new(&db, 1, usize::MAX);
    let pacing = Pacing {
        max: None,
        batch: 16,
        ack_every: 3,
    };
    let n = broker
        .queue("q")
        .unwrap()
        .deliver(&Filter::all(), pacing, &mut sink)
        .unwrap();
    assert_eq!(n, 50);
    assert_eq!(
        sink.read,
        (0..50).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert!(sink.flushes > 1);
    assert!(drain(&mut broker, "q").is_empty());
}

#[test]
fn leased_messages_the_reader_never_read_are_returned_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let mut broker = open(&db);
    fill(&mut broker, "q", 10);
    let mut sink = PipeLikeSink::new(&db, 0, 4);
    let pacing = Pacing {
        max: None,
        batch: 10,
        ack_every: 1,
    };
    let out = broker.queue("q").unwrap().deliver_leased(
        &Filter::all(),
        pacing,
        Some(std::time::Duration::from_secs(3600)),
        &mut sink,
    );
    assert!(matches!(out, Err(DeliveryError::Sink(_))));
    assert_eq!(sink.read.len(), 4);
    // The four read stay leased (invisible); the six never read are visible again.
    assert_eq!(
        drain(&mut broker, "q"),
        (4..10).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}
