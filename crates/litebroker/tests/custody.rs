//! Custody of held messages on SQLite: regression tests for the loss and
//! duplicate paths the fault campaign found (D2, D3, D4). A "killed" holder
//! is simulated by giving its record a process id that cannot exist, which
//! is exactly what a later reader sees after a SIGKILL.

mod harness;

use std::path::{Path, PathBuf};

use harness::{drain, fill};

use litebroker::delivery::{DeliveryError, Pacing, Sink};
use litebroker::message::Filter;
use litebroker::{Broker, Message, Settings};

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

fn drain_file(db: &Path, queue: &str) -> Vec<String> {
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
    assert_eq!(
        drain_file(&db, "q"),
        vec!["older-1", "older-2"],
        "nothing lost"
    );
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
    assert_eq!(drain_file(&db, "q"), bodies, "all returned, none consumed");
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
    assert_eq!(drain_file(&db, "q"), vec!["m5"], "m3 and m4 were delivered");
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
    assert_eq!(drain_file(&db, "q"), vec!["m2", "m3"]);
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
            // A record: the position, then the holder's tag.
            .filter(|b| b.len() == 16)
            .map(|b| i64::from_le_bytes(b[..8].try_into().unwrap()))
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
