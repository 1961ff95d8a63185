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
