//! Leases, receipts, nacks, dead letters, delays and headers through the
//! library, on any backend (see `harness`), with a hand-moved clock given to
//! the connector so that every expiry is exact.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use harness::{harness, Harness};
use litebroker::clock::ManualClock;
use litebroker::error::ErrorKind;
use litebroker::message::Filter;
use litebroker::{Broker, Headers, NackOutcome, QueueConfig, Receipt};

fn open_with(h: &dyn Harness, clock: &ManualClock) -> Broker {
    h.broker_with_clock(Arc::new(clock.clone()))
}

const SECOND: Duration = Duration::from_secs(1);

fn lease_one(broker: &mut Broker, queue: &str, secs: u64) -> Option<litebroker::Message> {
    let mut q = broker.queue(queue).unwrap();
    q.lease(&Filter::all(), 1, Some(SECOND * secs as u32))
        .unwrap()
        .pop()
}

fn bodies(broker: &mut Broker, queue: &str) -> Vec<String> {
    let mut q = broker.queue(queue).unwrap();
    q.peek_iter(&Filter::all())
        .map(|m| m.unwrap().body)
        .collect()
}

#[test]
fn leased_message_is_invisible_until_acked() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    b.queue("q").unwrap().write_many(&["a", "b"]).unwrap();
    let m = lease_one(&mut b, "q", 30).unwrap();
    assert_eq!((m.body.as_str(), m.receives), ("a", 1));
    let receipt = m.receipt.unwrap();
    assert_eq!(receipt.id, m.id);
    // Invisible to peek, read and a second lease; b is next.
    assert_eq!(bodies(&mut b, "q"), ["b"]);
    let mut other = open_with(&*h, &clock);
    assert_eq!(other.queue("q").unwrap().read().unwrap().unwrap().body, "b");
    assert!(lease_one(&mut other, "q", 30).is_none());
    let stats = b.list().unwrap();
    assert_eq!(
        (stats[0].pending, stats[0].leased, stats[0].total),
        (0, 1, 2)
    );
    b.queue("q").unwrap().ack(&receipt).unwrap();
    clock.advance(SECOND * 3600);
    assert!(
        lease_one(&mut b, "q", 30).is_none(),
        "acked: never comes back"
    );
    // Single use: a second ack is refused.
    let again = b.queue("q").unwrap().ack(&receipt).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::NotFound, "{again}");
}

#[test]
fn expired_lease_returns_in_place_with_receives_raised_and_old_receipt_fenced() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    b.queue("q")
        .unwrap()
        .write_many(&["first", "second"])
        .unwrap();
    let first = lease_one(&mut b, "q", 10).unwrap();
    clock.advance(SECOND * 9);
    assert_eq!(bodies(&mut b, "q"), ["second"], "not yet expired");
    clock.advance(SECOND);
    assert_eq!(
        bodies(&mut b, "q"),
        ["first", "second"],
        "back in its position"
    );
    let again = lease_one(&mut b, "q", 10).unwrap();
    assert_eq!((again.body.as_str(), again.receives), ("first", 2));
    let old = first.receipt.unwrap();
    let err = b.queue("q").unwrap().ack(&old).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Stale, "{err}");
    // The stale receipt did not touch the new delivery.
    b.queue("q").unwrap().ack(&again.receipt.unwrap()).unwrap();
    assert_eq!(bodies(&mut b, "q"), ["second"]);
}

#[test]
fn a_late_ack_before_redelivery_still_counts() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    b.queue("q").unwrap().write("x").unwrap();
    let m = lease_one(&mut b, "q", 5).unwrap();
    clock.advance(SECOND * 6);
    // Nobody has looked since it expired: the consumer's ack is still honoured.
    b.queue("q").unwrap().ack(&m.receipt.unwrap()).unwrap();
    assert!(bodies(&mut b, "q").is_empty());
}

#[test]
fn nack_now_later_and_extend() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    b.queue("q").unwrap().write_many(&["a", "b"]).unwrap();
    let a = lease_one(&mut b, "q", 30).unwrap();
    let out = b
        .queue("q")
        .unwrap()
        .nack(&a.receipt.unwrap(), None)
        .unwrap();
    assert_eq!(out, NackOutcome::Requeued);
    assert_eq!(bodies(&mut b, "q"), ["a", "b"]);
    let a = lease_one(&mut b, "q", 30).unwrap();
    assert_eq!(a.receives, 2);
    let out = b
        .queue("q")
        .unwrap()
        .nack(&a.receipt.unwrap(), Some(SECOND * 5))
        .unwrap();
    assert!(matches!(out, NackOutcome::Delayed(_)));
    assert_eq!(bodies(&mut b, "q"), ["b"]);
    // A nacked receipt is spent.
    let err = b.queue("q").unwrap().nack(&a.receipt.unwrap(), None);
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Stale);
    clock.advance(SECOND * 5);
    assert_eq!(bodies(&mut b, "q"), ["a", "b"]);

    let m = lease_one(&mut b, "q", 10).unwrap();
    let r = m.receipt.unwrap();
    clock.advance(SECOND * 8);
    b.queue("q").unwrap().extend(&r, SECOND * 10).unwrap();
    clock.advance(SECOND * 9);
    assert_eq!(bodies(&mut b, "q"), ["b"], "extended: still leased at 17 s");
    clock.advance(SECOND);
    assert_eq!(bodies(&mut b, "q"), ["a", "b"], "expired at 18 s");
    let err = b.queue("q").unwrap().extend(&r, SECOND).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Stale, "{err}");
}

#[test]
fn receipts_of_another_queue_or_unknown_ids_are_refused() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    b.queue("q").unwrap().write("x").unwrap();
    let m = lease_one(&mut b, "q", 30).unwrap();
    let r = m.receipt.unwrap();
    let err = b.queue("other").unwrap().ack(&r).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let forged = Receipt {
        nonce: r.nonce ^ 1,
        ..r
    };
    let err = b.queue("q").unwrap().ack(&forged).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Stale, "{err}");
    let missing = Receipt { id: 12345, ..r };
    let err = b.queue("q").unwrap().ack(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let results = b.queue("q").unwrap().ack_many(&[forged, r]).unwrap();
    assert!(results[0].is_err() && results[1].is_ok());
    assert!(bodies(&mut b, "q").is_empty());
    // One receipt twice in one batch settles once; the second finds it gone.
    b.queue("q").unwrap().write("y").unwrap();
    let r = lease_one(&mut b, "q", 30).unwrap().receipt.unwrap();
    let results = b.queue("q").unwrap().ack_many(&[r, r]).unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert!(results[1].is_err(), "{results:?}");
}

#[test]
fn max_receives_dead_letters_with_reason_and_redrive_brings_back() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    let config = QueueConfig {
        visibility: Some(SECOND * 10),
        max_receives: Some(2),
        dead_letter: Some("q.dlq".into()),
    };
    b.configure_queue("q", &config).unwrap();
    assert_eq!(b.queue("q").unwrap().config().unwrap(), config);
    b.queue("q").unwrap().write_many(&["poison", "ok"]).unwrap();
    // Receive 1: nack. Receive 2: lease expires with the queue's default timeout.
    let m = b
        .queue("q")
        .unwrap()
        .lease(&Filter::all(), 1, None)
        .unwrap()
        .pop()
        .unwrap();
    b.queue("q")
        .unwrap()
        .nack(&m.receipt.unwrap(), None)
        .unwrap();
    let m = b
        .queue("q")
        .unwrap()
        .lease(&Filter::all(), 1, None)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(m.receives, 2);
    clock.advance(SECOND * 10);
    assert_eq!(bodies(&mut b, "q"), ["ok"]);
    let dead = b
        .queue("q.dlq")
        .unwrap()
        .peek(&Filter::all())
        .unwrap()
        .unwrap();
    assert_eq!(dead.body, "poison");
    let record = dead.dead_letter.expect("reason recorded");
    assert_eq!(record.source, "q");
    assert_eq!(record.reason, "lease expired after 2 receives (max 2)");
    assert_eq!(dead.receives, 2);

    // Nack at the maximum dead-letters at once.
    let ok = lease_one(&mut b, "q", 10).unwrap();
    b.queue("q")
        .unwrap()
        .nack(&ok.receipt.unwrap(), None)
        .unwrap();
    let ok = lease_one(&mut b, "q", 10).unwrap();
    let out = b
        .queue("q")
        .unwrap()
        .nack(&ok.receipt.unwrap(), None)
        .unwrap();
    assert_eq!(out, NackOutcome::DeadLettered("q.dlq".into()));
    assert_eq!(bodies(&mut b, "q.dlq"), ["poison", "ok"]);

    assert_eq!(b.redrive("q.dlq", None).unwrap(), 2);
    assert_eq!(bodies(&mut b, "q"), ["poison", "ok"], "original order");
    let back = lease_one(&mut b, "q", 10).unwrap();
    assert_eq!(back.receives, 1, "receive count starts again");
    assert!(back.dead_letter.is_none());
}

#[test]
fn bad_queue_configs_are_refused() {
    let h = harness();
    let mut b = h.broker();
    let own = QueueConfig {
        dead_letter: Some("q".into()),
        ..QueueConfig::default()
    };
    assert_eq!(
        b.configure_queue("q", &own).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let no_dlq = QueueConfig {
        max_receives: Some(3),
        ..QueueConfig::default()
    };
    assert_eq!(
        b.configure_queue("q", &no_dlq).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let zero = QueueConfig {
        max_receives: Some(0),
        dead_letter: Some("d".into()),
        ..QueueConfig::default()
    };
    assert_eq!(
        b.configure_queue("q", &zero).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let bad_name = QueueConfig {
        dead_letter: Some("-x".into()),
        ..QueueConfig::default()
    };
    assert_eq!(
        b.configure_queue("q", &bad_name).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let zero_lease = QueueConfig {
        visibility: Some(Duration::ZERO),
        ..QueueConfig::default()
    };
    assert_eq!(
        b.configure_queue("q", &zero_lease).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(b.queue_configs().unwrap().is_empty(), "nothing stored");
}

#[test]
fn delayed_write_is_invisible_until_due_and_keeps_headers() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    let headers = Headers::from_assignments(&["kind=job", "try=1"]).unwrap();
    b.queue("q")
        .unwrap()
        .write_with("later", &headers, Some(SECOND * 60))
        .unwrap();
    b.queue("q").unwrap().write("now").unwrap();
    assert_eq!(bodies(&mut b, "q"), ["now"]);
    assert_eq!(b.list().unwrap()[0].delayed, 1);
    assert_eq!(b.status().unwrap().delayed, 1);
    let wait = b.queue("q").unwrap().until_visible().unwrap().unwrap();
    assert_eq!(
        wait,
        SECOND * 60,
        "exactly the delay, on the hand-moved clock"
    );
    clock.advance(SECOND * 60);
    let m = b.queue("q").unwrap().read().unwrap().unwrap();
    assert_eq!(m.body, "later");
    assert_eq!(m.headers, headers);
}

#[test]
fn headers_survive_move_lease_and_dump() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    let headers =
        Headers::from_assignments(&["p=high", "n=3", "f=1.5", "ok=true", "z=null"]).unwrap();
    b.queue("a")
        .unwrap()
        .write_with("x", &headers, None)
        .unwrap();
    let moved = b
        .queue("a")
        .unwrap()
        .move_to("b", &Filter::all(), 1)
        .unwrap();
    assert_eq!(moved[0].headers, headers);
    let leased = lease_one(&mut b, "b", 30).unwrap();
    assert_eq!(leased.headers, headers);
    b.queue("b")
        .unwrap()
        .nack(&leased.receipt.unwrap(), None)
        .unwrap();
    let mut dumped = Vec::new();
    b.dump(&[], &mut |r| {
        dumped.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(dumped[0].message.headers, headers);
}

#[test]
fn deleting_a_queue_forgets_its_leases() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    b.queue("q").unwrap().write("x").unwrap();
    let m = lease_one(&mut b, "q", 30).unwrap();
    b.queue("q").unwrap().delete().unwrap();
    let err = b.queue("q").unwrap().ack(&m.receipt.unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(b.status().unwrap().leased, 0);
}

#[test]
fn zero_or_huge_leases_are_refused() {
    let h = harness();
    let mut b = h.broker();
    b.queue("q").unwrap().write("x").unwrap();
    let mut q = b.queue("q").unwrap();
    for refused in [Duration::ZERO, SECOND * 86_400] {
        let err = q.lease(&Filter::all(), 1, Some(refused)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{refused:?}: {err}");
    }
    assert_eq!(
        q.peek(&Filter::all()).unwrap().unwrap().body,
        "x",
        "untouched"
    );
}

#[test]
fn give_back_dead_letter_and_the_wait_for_a_lease() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    b.queue("q").unwrap().write_many(&["a", "b"]).unwrap();
    let a = lease_one(&mut b, "q", 30).unwrap();
    let until = |b: &mut Broker| b.queue("q").unwrap().until_visible().unwrap();
    assert_eq!(until(&mut b), Some(SECOND * 30), "the lease's end");
    clock.advance(SECOND * 10);
    assert_eq!(until(&mut b), Some(SECOND * 20));
    b.queue("q")
        .unwrap()
        .give_back(&a.receipt.unwrap())
        .unwrap();
    assert_eq!(until(&mut b), None, "nothing is waiting");
    assert_eq!(bodies(&mut b, "q"), ["a", "b"], "back in place");
    let a = lease_one(&mut b, "q", 30).unwrap();
    assert_eq!(a.receives, 1, "a give-back is not counted");

    let receipt = a.receipt.unwrap();
    b.queue("q")
        .unwrap()
        .dead_letter(&receipt, "q.dead", "operator said so")
        .unwrap();
    assert_eq!(bodies(&mut b, "q"), ["b"]);
    let dead = b.queue("q.dead").unwrap().read().unwrap().unwrap();
    let record = dead.dead_letter.expect("a dead-letter record");
    assert_eq!(
        (
            dead.body.as_str(),
            record.source.as_str(),
            record.reason.as_str()
        ),
        ("a", "q", "operator said so")
    );
    let err = b
        .queue("q")
        .unwrap()
        .dead_letter(&receipt, "q.dead", "again")
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NotFound | ErrorKind::Stale),
        "a spent receipt: {err}"
    );
    let other = lease_one(&mut b, "q", 30).unwrap().receipt.unwrap();
    let err = b
        .queue("q")
        .unwrap()
        .dead_letter(&other, "q", "itself")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn one_batch_can_mix_delays() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    let out = |body, delay| litebroker::Outgoing {
        body,
        headers: None,
        delay,
    };
    let batch = [
        out("now", None),
        out("soon", Some(SECOND * 5)),
        out("later", Some(SECOND * 50)),
    ];
    let ids = b.queue("q").unwrap().write_batch(&batch).unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(bodies(&mut b, "q"), ["now"]);
    assert_eq!(
        b.queue("q").unwrap().until_visible().unwrap(),
        Some(SECOND * 5)
    );
    clock.advance(SECOND * 5);
    assert_eq!(bodies(&mut b, "q"), ["now", "soon"]);
    clock.advance(SECOND * 45);
    assert_eq!(bodies(&mut b, "q"), ["now", "soon", "later"], "id order");
}

#[test]
fn deliver_leased_leaves_what_it_delivered_leased() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    b.queue("q")
        .unwrap()
        .write_many(&["a", "b", "c", "d", "e"])
        .unwrap();
    let mut receipts = Vec::new();
    let mut sink = litebroker::watch::HandlerSink::new(|m: &litebroker::Message| {
        receipts.push(m.receipt.expect("a leased message has a receipt"));
        Ok::<(), ()>(())
    });
    let pacing = litebroker::delivery::Pacing {
        max: Some(3),
        batch: 2,
        ack_every: 1,
    };
    let n = b
        .queue("q")
        .unwrap()
        .deliver_leased(&Filter::all(), pacing, Some(SECOND * 30), &mut sink)
        .unwrap();
    assert_eq!((n, receipts.len()), (3, 3));
    assert_eq!(bodies(&mut b, "q"), ["d", "e"]);
    assert_eq!(b.status().unwrap().leased, 3);
    let acked = b.queue("q").unwrap().ack_many(&receipts).unwrap();
    assert!(acked.iter().all(Result::is_ok));
    clock.advance(SECOND * 60);
    assert_eq!(bodies(&mut b, "q"), ["d", "e"], "acked: gone for good");
}

#[test]
fn browse_sees_visible_leased_and_delayed_messages_without_taking_them() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    let mut headers = Headers::new();
    headers
        .insert("k", litebroker::HeaderValue::Str("v".into()))
        .unwrap();
    {
        let mut q = b.queue("inv").unwrap();
        q.write("a").unwrap();
        q.write_with("b", &headers, None).unwrap();
        q.write_with("c", &Headers::new(), Some(SECOND * 60))
            .unwrap();
    }
    let leased = lease_one(&mut b, "inv", 30).unwrap();
    assert_eq!(leased.body, "a");
    let mut q = b.queue("inv").unwrap();
    let all = q.browse(litebroker::BrowseFrom::After(0), 100).unwrap();
    let seen: Vec<(&str, bool, u32)> = all
        .iter()
        .map(|x| {
            (
                x.message.body.as_str(),
                x.visible_at.is_some(),
                x.message.receives,
            )
        })
        .collect();
    assert_eq!(seen, [("a", true, 1), ("b", false, 0), ("c", true, 0)]);
    assert!(all.iter().all(|x| x.message.receipt.is_none()));
    assert_eq!(all[1].message.headers.get_str("k"), Some("v"));
    // Paging by seq.
    let rest = q
        .browse(litebroker::BrowseFrom::After(all[0].message.seq), 100)
        .unwrap();
    assert_eq!(rest.len(), 2);
    // Newest first: from the newest, then on before the last one seen.
    let newest = q
        .browse(litebroker::BrowseFrom::Before(i64::MAX), 2)
        .unwrap();
    let names: Vec<&str> = newest.iter().map(|x| x.message.body.as_str()).collect();
    assert_eq!(names, ["c", "b"]);
    let older = q
        .browse(litebroker::BrowseFrom::Before(newest[1].message.seq), 100)
        .unwrap();
    let names: Vec<&str> = older.iter().map(|x| x.message.body.as_str()).collect();
    assert_eq!(names, ["a"]);
    assert!(q
        .browse(litebroker::BrowseFrom::Before(older[0].message.seq), 100)
        .unwrap()
        .is_empty());
    // Browsing took nothing: the lease still acks, "b" is still readable.
    q.ack(&leased.receipt.unwrap()).unwrap();
    assert_eq!(bodies(&mut b, "inv"), ["b"]);
    // Once the lease expired, browse sees the message visible again.
    let again = lease_one(&mut b, "inv", 5).unwrap();
    clock.advance(SECOND * 6);
    let mut q = b.queue("inv").unwrap();
    let now = q.browse(litebroker::BrowseFrom::After(0), 100).unwrap();
    assert_eq!(now[0].message.id, again.id);
    assert_eq!(now[0].visible_at, None);
}

#[test]
fn replace_keeps_position_and_lease() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    let (first, second) = {
        let mut q = b.queue("upd").unwrap();
        (q.write("one").unwrap(), q.write("two").unwrap())
    };
    let mut headers = Headers::new();
    headers
        .insert("v", litebroker::HeaderValue::Int(2))
        .unwrap();
    let mut q = b.queue("upd").unwrap();
    assert!(q.replace(first, "ONE", &headers).unwrap());
    assert!(!q.replace(12345, "x", &headers).unwrap());
    drop(q);
    assert_eq!(bodies(&mut b, "upd"), ["ONE", "two"]);
    let leased = lease_one(&mut b, "upd", 30).unwrap();
    assert_eq!(
        leased.headers.get("v"),
        Some(&litebroker::HeaderValue::Int(2))
    );
    let mut q = b.queue("upd").unwrap();
    // A leased message can be replaced; its receipt still acks it.
    assert!(q.replace(first, "uno", &Headers::new()).unwrap());
    q.ack(&leased.receipt.unwrap()).unwrap();
    assert!(!q.replace(first, "gone", &Headers::new()).unwrap());
    let too_big = "x".repeat(litebroker::message::MAX_MESSAGE_SIZE + 1);
    assert_eq!(
        q.replace(second, &too_big, &Headers::new())
            .unwrap_err()
            .kind(),
        ErrorKind::TooLarge
    );
    drop(q);
    assert_eq!(bodies(&mut b, "upd"), ["two"]);
}

#[test]
fn write_once_writes_a_key_once_until_it_expires() {
    let h = harness();
    let clock = ManualClock::new();
    let mut b = open_with(&*h, &clock);
    let batch = [
        litebroker::Outgoing::body("a"),
        litebroker::Outgoing::body("b"),
    ];
    let keep = SECOND * 60;
    let mut q = b.queue("idem").unwrap();
    let (ids, repeated) = q.write_once("k1", keep, &batch).unwrap();
    assert!(!repeated);
    assert_eq!(ids.len(), 2);
    // Retried: nothing written, the first write's ids.
    assert_eq!(
        q.write_once("k1", keep, &batch).unwrap(),
        (ids.clone(), true)
    );
    // Consumed meanwhile: still a repeat (the record, not the messages, decides).
    q.read_many(&Filter::all(), 10).unwrap();
    assert_eq!(
        q.write_once("k1", keep, &batch).unwrap(),
        (ids.clone(), true)
    );
    // Another key, or the same key on another queue, writes.
    assert!(!q.write_once("k2", keep, &batch).unwrap().1);
    drop(q);
    assert!(
        !b.queue("other")
            .unwrap()
            .write_once("k1", keep, &batch)
            .unwrap()
            .1
    );
    // Once the record expired, the key writes again.
    clock.advance(SECOND * 61);
    let mut q = b.queue("idem").unwrap();
    let (again, repeated) = q.write_once("k1", keep, &batch).unwrap();
    assert!(!repeated);
    assert_ne!(again, ids);
    assert_eq!(
        q.write_once("", keep, &batch).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let big = "x".repeat(litebroker::message::MAX_MESSAGE_SIZE + 1);
    assert_eq!(
        q.write_once("k3", keep, &[litebroker::Outgoing::body(&big)])
            .unwrap_err()
            .kind(),
        ErrorKind::TooLarge
    );
    assert!(
        !q.write_once("k3", keep, &batch).unwrap().1,
        "a refused write records nothing"
    );
}
