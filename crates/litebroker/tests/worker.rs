//! The library Worker, on any backend (see `harness`): lease, handler, then
//! ack, retry, give back or dead-letter; the heartbeat that keeps a long
//! job's lease alive; the setups it refuses.

mod harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{harness, pending, Harness};
use litebroker::error::ErrorKind;
use litebroker::message::Filter;
use litebroker::worker::{Outcome, Verdict, Worker, WorkerOptions};
use litebroker::QueueConfig;

fn write(db: &dyn Harness, queue: &str, bodies: &[&str]) {
    db.broker()
        .queue(queue)
        .unwrap()
        .write_many(bodies)
        .unwrap();
}

/// Options that stop once the queue is done and retry failures at once.
fn draining() -> WorkerOptions {
    WorkerOptions {
        backoff: Duration::ZERO,
        drain: true,
        ..WorkerOptions::default()
    }
}

#[test]
fn a_worker_acks_what_its_handler_did() {
    let db = harness();
    write(&db, "jobs", &["a", "b", "c"]);
    let worker = Worker::new(db.connector(), "jobs", draining()).unwrap();
    let mut handled = Vec::new();
    let mut outcomes = Vec::new();
    let summary = worker
        .run(
            |m| {
                handled.push((m.body.clone(), m.receives));
                Verdict::Done
            },
            |_, out| outcomes.push(out.clone()),
        )
        .unwrap();
    assert_eq!(handled, [("a".into(), 1), ("b".into(), 1), ("c".into(), 1)]);
    assert_eq!(outcomes, [Outcome::Acked, Outcome::Acked, Outcome::Acked]);
    assert_eq!(
        (summary.acked, summary.retried, summary.dead_lettered),
        (3, 0, 0)
    );
    assert!(pending(&db, "jobs").is_empty());
    assert_eq!(db.broker().status().unwrap().leased, 0);
}

#[test]
fn a_failing_message_is_retried_then_dead_lettered_with_its_reason() {
    let db = harness();
    write(&db, "jobs", &["poison", "fine"]);
    let options = WorkerOptions {
        max_receives: Some(2),
        dead_letter: Some("jobs.dlq".into()),
        ..draining()
    };
    let worker = Worker::new(db.connector(), "jobs", options).unwrap();
    let outcomes = Mutex::new(Vec::new());
    let summary = worker
        .run(
            |m| {
                if m.body == "poison" {
                    Verdict::Failed("cannot digest".into())
                } else {
                    Verdict::Done
                }
            },
            |m, out| outcomes.lock().unwrap().push((m.body.clone(), out.clone())),
        )
        .unwrap();
    assert_eq!(
        (summary.acked, summary.retried, summary.dead_lettered),
        (1, 1, 1)
    );
    // Given back in place (no backoff), the poison comes round again first.
    assert_eq!(
        outcomes.into_inner().unwrap(),
        [
            ("poison".into(), Outcome::Retry(Duration::ZERO)),
            ("poison".into(), Outcome::DeadLettered("jobs.dlq".into())),
            ("fine".into(), Outcome::Acked),
        ]
    );
    assert!(pending(&db, "jobs").is_empty());
    let mut b = db.broker();
    let dead = b.queue("jobs.dlq").unwrap().read().unwrap().unwrap();
    assert_eq!((dead.body.as_str(), dead.receives), ("poison", 2));
    let record = dead.dead_letter.expect("a dead-letter record");
    assert_eq!(record.source, "jobs");
    assert!(record.reason.contains("cannot digest"), "{}", record.reason);
}

#[test]
fn the_queues_own_dead_letter_queue_is_used() {
    let db = harness();
    let config = QueueConfig {
        dead_letter: Some("configured.dlq".into()),
        ..QueueConfig::default()
    };
    db.broker().configure_queue("jobs", &config).unwrap();
    write(&db, "jobs", &["x"]);
    let options = WorkerOptions {
        max_receives: Some(1),
        ..draining()
    };
    let worker = Worker::new(db.connector(), "jobs", options).unwrap();
    let summary = worker
        .run(|_| Verdict::Failed("no".into()), |_, _| {})
        .unwrap();
    assert_eq!(summary.dead_lettered, 1);
    assert_eq!(pending(&db, "configured.dlq"), ["x"]);
}

#[test]
fn a_message_given_back_is_visible_again_uncounted() {
    let db = harness();
    write(&db, "jobs", &["later"]);
    let worker = Worker::new(db.connector(), "jobs", draining()).unwrap();
    let stop = worker.stop_handle();
    let mut outcomes = Vec::new();
    worker
        .run(
            |_| {
                stop.stop(); // shutting down: this one is not attempted
                Verdict::GiveBack
            },
            |_, out| outcomes.push(out.clone()),
        )
        .unwrap();
    assert_eq!(outcomes, [Outcome::GivenBack]);
    assert_eq!(pending(&db, "jobs"), ["later"]);
    let mut b = db.broker();
    let again = b
        .queue("jobs")
        .unwrap()
        .lease(&Filter::all(), 1, None)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(again.receives, 1, "the given-back receive was not counted");
}

#[test]
fn the_heartbeat_keeps_a_long_jobs_lease() {
    let db = harness();
    write(&db, "jobs", &["long"]);
    let options = WorkerOptions {
        visibility: Some(Duration::from_secs(2)),
        ..draining()
    };
    let worker = Worker::new(db.connector(), "jobs", options).unwrap();
    let connector = db.connector();
    let stolen = Arc::new(Mutex::new(Vec::new()));
    let s = stolen.clone();
    let summary = worker
        .run(
            move |_| {
                // Outlive the 2 s lease; meanwhile another consumer looks.
                let mut other = litebroker::Broker::connect(connector.clone()).unwrap();
                for _ in 0..2 {
                    std::thread::sleep(Duration::from_millis(1500));
                    let got = other
                        .queue("jobs")
                        .unwrap()
                        .lease(&Filter::all(), 1, None)
                        .unwrap();
                    s.lock().unwrap().extend(got.into_iter().map(|m| m.body));
                }
                Verdict::Done
            },
            |_, _| {},
        )
        .unwrap();
    assert!(stolen.lock().unwrap().is_empty(), "the lease ran out");
    assert_eq!(summary.acked, 1);
    assert!(pending(&db, "jobs").is_empty());
}

#[test]
fn a_worker_refuses_a_setup_it_cannot_honour() {
    let db = harness();
    let kind = |queue: &str, options: WorkerOptions| {
        Worker::new(db.connector(), queue, options)
            .err()
            .expect("refused")
            .kind()
    };
    let no_dlq = WorkerOptions {
        max_receives: Some(3),
        ..WorkerOptions::default()
    };
    assert_eq!(kind("jobs", no_dlq), ErrorKind::InvalidInput);
    let own_dlq = WorkerOptions {
        max_receives: Some(3),
        dead_letter: Some("jobs".into()),
        ..WorkerOptions::default()
    };
    assert_eq!(kind("jobs", own_dlq), ErrorKind::InvalidInput);
    let zero_lease = WorkerOptions {
        visibility: Some(Duration::ZERO),
        ..WorkerOptions::default()
    };
    assert_eq!(kind("jobs", zero_lease), ErrorKind::InvalidInput);
    assert_eq!(
        kind("-bad", WorkerOptions::default()),
        ErrorKind::InvalidInput
    );
}
