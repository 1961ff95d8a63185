//! Lossless delivery through the library, on any backend (see `harness`):
//! what a sink does not take stays queued in place. (How a dead holder's
//! messages are settled by its recorded progress is SQLite's business:
//! `tests/sqlite_backend.rs`.)

mod harness;

use harness::{drain, fill, harness};
use litebroker::delivery::{DeliveryError, Pacing, Sink};
use litebroker::message::Filter;
use litebroker::Message;

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
    let h = harness();
    let mut broker = h.broker();
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
    let h = harness();
    let mut broker = h.broker();
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
    let h = harness();
    let mut broker = h.broker();
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
}

#[test]
fn max_limits_the_delivery() {
    let h = harness();
    let mut broker = h.broker();
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

#[test]
fn read_iter_dropped_early_keeps_the_rest() {
    let h = harness();
    let mut broker = h.broker();
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
    let h = harness();
    let mut broker = h.broker();
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
