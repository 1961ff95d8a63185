//! The library's broker-wide operations, through a connector (see
//! `harness`): ids, FIFO, moves, aliases, broadcast, vacuum, dump/load, limits.

mod harness;

use harness::harness;
use litebroker::clock::Clock;
use litebroker::error::ErrorKind;
use litebroker::message::{Filter, QueuedMessage};
use litebroker::{Broker, Message};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn ids_increase_across_handles_on_one_file() {
    let h = harness();
    let (mut a, mut b) = (h.broker(), h.broker());
    let mut last = 0;
    for i in 0..200 {
        let broker = if i % 2 == 0 { &mut a } else { &mut b };
        let id = broker.queue("q").unwrap().write(&format!("{i}")).unwrap();
        assert!(id > last, "{id} after {last}");
        last = id;
    }
    assert_eq!(a.last_id().unwrap(), last);
    let read: Vec<String> = (0..200)
        .map(|_| b.queue("q").unwrap().read().unwrap().unwrap().body)
        .collect();
    assert_eq!(read, (0..200).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn generate_timestamp_reserves_without_writing() {
    let h = harness();
    let mut broker = h.broker();
    let mut q = broker.queue("q").unwrap();
    let t1 = q.generate_id().unwrap();
    let id = q.write("x").unwrap();
    assert!(id > t1);
    assert_eq!(q.last_id(), Some(id));
    assert_eq!(q.refresh_last_id().unwrap(), id);
    assert_eq!(broker.status().unwrap().total_messages, 1);
}

#[test]
fn move_keeps_ids_and_exact_move_revives_consumed() {
    let h = harness();
    let mut broker = h.broker();
    let id = broker.queue("a").unwrap().write("one").unwrap();
    let moved = broker
        .queue("a")
        .unwrap()
        .move_to("b", &Filter::all(), 10)
        .unwrap();
    assert_eq!(moved.iter().map(|m| m.id).collect::<Vec<_>>(), [id]);
    assert_eq!(broker.queue("b").unwrap().read().unwrap().unwrap().id, id);
    // consumed in b; an exact-id move brings it back
    let revived = broker
        .queue("b")
        .unwrap()
        .move_to("c", &Filter::by_id(id), 1)
        .unwrap();
    assert_eq!(revived.len(), 1);
    assert_eq!(
        broker.queue("c").unwrap().read().unwrap().unwrap().body,
        "one"
    );
    let onto_itself = broker
        .queue("a")
        .unwrap()
        .move_to("a", &Filter::all(), 1)
        .unwrap_err();
    assert_eq!(onto_itself.kind(), ErrorKind::InvalidInput);
}

#[test]
fn time_bounds_select() {
    let h = harness();
    let mut broker = h.broker();
    let mut q = broker.queue("q").unwrap();
    let ids = q.write_many(&["a", "b", "c"]).unwrap();
    let after = Filter {
        after: Some(ids[0]),
        ..Filter::all()
    };
    assert_eq!(q.peek(&after).unwrap().unwrap().body, "b");
    let before = Filter {
        before: Some(ids[2]),
        ..Filter::all()
    };
    let mut seen = vec![];
    q.peek_each(&before, |m| {
        seen.push(m.body.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, ["a", "b"]);
}

#[test]
fn aliases_follow_the_rules() {
    let h = harness();
    let mut broker = h.broker();
    broker.alias_add("in", "work").unwrap();
    let kind = |r: litebroker::Result<()>| r.unwrap_err().kind();
    assert_eq!(kind(broker.alias_add("in", "x")), ErrorKind::Conflict);
    assert_eq!(kind(broker.alias_add("other", "in")), ErrorKind::Conflict);
    assert_eq!(
        kind(broker.alias_add("same", "same")),
        ErrorKind::InvalidInput
    );
    assert_eq!(broker.resolve("@in").unwrap(), "work");
    assert_eq!(broker.resolve("in").unwrap(), "in");
    assert_eq!(
        broker.resolve("@nope").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        broker.resolve("@").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        broker.aliases(Some("work")).unwrap(),
        [("in".to_string(), "work".to_string())]
    );
    broker.alias_remove("in").unwrap();
    assert_eq!(kind(broker.alias_remove("in")), ErrorKind::NotFound);
}

#[test]
fn broadcast_reaches_matching_queues_in_name_order() {
    let h = harness();
    let mut broker = h.broker();
    for q in ["jobs-b", "jobs-a", "other"] {
        broker.queue(q).unwrap().write("seed").unwrap();
    }
    assert_eq!(broker.broadcast("hi", Some("jobs-*")).unwrap(), 2);
    let a = broker
        .queue("jobs-a")
        .unwrap()
        .read_many(&Filter::all(), 9)
        .unwrap();
    let b = broker
        .queue("jobs-b")
        .unwrap()
        .read_many(&Filter::all(), 9)
        .unwrap();
    assert_eq!(a[1].body, "hi");
    assert!(a[1].id < b[1].id, "ids allocated in name order");
    assert_eq!(
        broker
            .queue("other")
            .unwrap()
            .read_many(&Filter::all(), 9)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(broker.broadcast("x", Some("zzz*")).unwrap(), 0);
}

#[test]
fn vacuum_removes_consumed_rows_only() {
    let h = harness();
    let mut broker = h.broker();
    broker
        .queue("q")
        .unwrap()
        .write_many(&["a", "b", "c"])
        .unwrap();
    broker.queue("q").unwrap().read().unwrap();
    let report = broker.vacuum(false).unwrap();
    assert_eq!((report.consumed_before, report.deleted), (1, 1));
    assert_eq!(broker.status().unwrap().total_messages, 2);
    assert_eq!(broker.vacuum(false).unwrap().consumed_before, 0);
}

#[test]
fn dump_and_load_round_trip_ids_and_order() {
    let h = harness();
    let mut src = h.broker();
    src.queue("b").unwrap().write_many(&["b1", "b2"]).unwrap();
    src.queue("a").unwrap().write("a1\nwith newline").unwrap();
    src.queue("b").unwrap().read().unwrap(); // consumed: not dumped
    let mut dumped = vec![];
    src.dump(&[], &mut |r| {
        dumped.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        dumped
            .iter()
            .map(|r| r.message.body.as_str())
            .collect::<Vec<_>>(),
        ["b2", "a1\nwith newline"]
    );

    let h2 = harness();
    let mut dst = h2.broker();
    let n = dst.load(&mut dumped.clone().into_iter().map(Ok)).unwrap();
    assert_eq!(n, 2);
    let mut again = vec![];
    dst.dump(&[], &mut |r| {
        again.push(r);
        Ok(())
    })
    .unwrap();
    let key = |v: &[QueuedMessage]| {
        v.iter()
            .map(|r| (r.queue.clone(), r.message.id, r.message.body.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&again), key(&dumped));
    assert!(dst.last_id().unwrap() >= dumped[1].message.id);
    let next = dst.queue("b").unwrap().write("new").unwrap();
    assert!(next > dumped[1].message.id);
}

#[test]
fn load_is_all_or_nothing() {
    let h = harness();
    let mut broker = h.broker();
    let id = broker.queue("q").unwrap().write("existing").unwrap();
    let rec = |id: i64, queue: &str| QueuedMessage {
        queue: queue.into(),
        message: Message::new(id, "x", 0),
    };
    let dup = vec![Ok(rec(id - 10, "q")), Ok(rec(id, "q"))];
    assert!(broker.load(&mut dup.into_iter()).is_err());
    let bad_name = vec![Ok(rec(id - 20, "q")), Ok(rec(id - 30, "-bad"))];
    let err = broker.load(&mut bad_name.into_iter()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(broker.status().unwrap().total_messages, 1);
}

#[test]
fn oversized_messages_are_refused() {
    let h = harness();
    let mut broker = h.broker();
    let max = "x".repeat(litebroker::message::MAX_MESSAGE_SIZE);
    broker.queue("q").unwrap().write(&max).unwrap();
    let over = format!("{max}y");
    let err = broker.queue("q").unwrap().write(&over).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert_eq!(broker.status().unwrap().total_messages, 1);
}

#[test]
fn deleting_messages_queues_and_everything() {
    let h = harness();
    let mut broker = h.broker();
    let ids = broker
        .queue("a")
        .unwrap()
        .write_many(&["a1", "a2", "a3"])
        .unwrap();
    broker.queue("b").unwrap().write("b1").unwrap();
    assert!(broker.queue("a").unwrap().delete_message(ids[1]).unwrap());
    assert!(
        !broker.queue("a").unwrap().delete_message(ids[1]).unwrap(),
        "already gone"
    );
    assert!(
        !broker.queue("b").unwrap().delete_message(ids[0]).unwrap(),
        "another queue's message"
    );
    let stats = broker.list().unwrap();
    let counts: Vec<(&str, u64)> = stats.iter().map(|s| (s.name.as_str(), s.pending)).collect();
    assert_eq!(counts, [("a", 2), ("b", 1)]);
    assert_eq!(broker.queue("b").unwrap().delete().unwrap(), 1);
    assert!(broker.queue("b").unwrap().read().unwrap().is_none());
    assert!(broker.delete_all().unwrap() >= 2);
    assert!(broker.list().unwrap().is_empty());
    assert_eq!(broker.status().unwrap().total_messages, 0);
}

#[test]
fn invalid_queue_names_are_invalid_input() {
    let h = harness();
    let mut broker = h.broker();
    for bad in ["", "-lead", ".dot", "has space", "@alias"] {
        let err = broker.queue(bad).err().expect(bad);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    assert!(broker.list().unwrap().is_empty(), "nothing was written");
}

#[test]
fn connections_of_one_connector_see_each_others_writes_at_once() {
    let h = harness();
    let connector = h.connector();
    let mut a = litebroker::Broker::connect(connector.clone()).unwrap();
    let mut b = litebroker::Broker::connect(connector).unwrap();
    a.queue("q").unwrap().write("from a").unwrap();
    assert_eq!(
        b.queue("q").unwrap().read().unwrap().unwrap().body,
        "from a"
    );
    assert!(
        a.queue("q").unwrap().read().unwrap().is_none(),
        "b consumed it"
    );
    b.alias_add("in", "q").unwrap();
    assert_eq!(a.resolve("@in").unwrap(), "q");
    b.configure_queue(
        "q",
        &litebroker::QueueConfig {
            visibility: Some(Duration::from_secs(7)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        a.queue("q").unwrap().config().unwrap().visibility,
        Some(Duration::from_secs(7))
    );
}

#[test]
fn now_ns_is_the_connectors_clock() {
    let h = harness();
    let clock = litebroker::clock::ManualClock::new();
    let mut b = h.broker_with_clock(Arc::new(clock.clone()));
    let start = b.now_ns().unwrap();
    assert_eq!(start, clock.now_ns(), "the database's now is the clock's");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(b.now_ns().unwrap() - start, 3_600_000_000_000);
    // Another connection of a connector with the same clock agrees.
    let mut other = h.broker_with_clock(Arc::new(clock.clone()));
    assert_eq!(other.now_ns().unwrap(), b.now_ns().unwrap());
    // Without a clock, the database's now is the real one.
    let real = h.broker().now_ns().unwrap();
    assert!((real - litebroker::id::now_ns()).abs() < 60_000_000_000);
}

#[test]
fn the_change_feed_wakes_a_waiter_when_another_connection_writes() {
    let h = harness();
    let broker = h.broker();
    let feed = broker.changes();
    let seen = feed.generation();
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let now = feed.wait(seen, Duration::from_secs(20));
        (now, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut writer = Broker::connect(h.connector()).unwrap();
    writer.queue("q").unwrap().write("wake up").unwrap();
    let (now, waited) = waiter.join().unwrap();
    assert!(now > seen, "woken by the write, not by the timeout");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
}

#[test]
fn a_change_feed_listener_hears_a_write() {
    let h = harness();
    let broker = h.broker();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let listener = broker.changes().listen(move || {
        let _ = tx.lock().unwrap().send(());
    });
    std::thread::sleep(Duration::from_millis(100));
    while rx.try_recv().is_ok() {} // whatever starting the feed reported
    let mut writer = Broker::connect(h.connector()).unwrap();
    writer.queue("q").unwrap().write("hello").unwrap();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the listener was called after the write");
    drop(listener);
}

/// Writes `bodies` in one batch and reads them back, in order.
fn batch_round_trip(bodies: &[String]) -> Vec<String> {
    let h = harness();
    let mut b = h.broker();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let ids = b.queue("q").unwrap().write_many(&refs).unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");
    assert!(
        *ids.last().unwrap() <= b.last_id().unwrap(),
        "the high-water mark covers the batch"
    );
    assert!(b.last_id().unwrap() < litebroker::id::now_ns());
    let got = b
        .queue("q")
        .unwrap()
        .read_many(&Filter::all(), usize::MAX)
        .unwrap();
    let got_ids: Vec<i64> = got.iter().map(|m| m.id).collect();
    assert_eq!(got_ids, ids);
    got.into_iter().map(|m| m.body).collect()
}

#[test]
fn batched_writes_keep_every_body_byte_for_byte() {
    let bodies: Vec<String> = [
        "plain",
        "",
        "quote \" and backslash \\ and slash /",
        "\n\r\t\u{1}\u{1f}\u{7f}",
        "ü € 𝄞 \u{2028} \u{feff}",
        "{\"looks\": [\"like\", \"json\"]}",
        "\\u0041 is not A",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once("x".repeat(100_000)))
    .collect();
    assert_eq!(batch_round_trip(&bodies), bodies);
    // A NUL goes through too (by the row-by-row path).
    let with_nul = vec!["a\0b".to_string(), "c".to_string()];
    assert_eq!(batch_round_trip(&with_nul), with_nul);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn batched_writes_round_trip_any_text(bodies in proptest::collection::vec("(?s).*", 2..12)) {
        proptest::prop_assert_eq!(batch_round_trip(&bodies), bodies);
    }
}

#[test]
fn api_keys_are_stored_by_name_and_hash() {
    use litebroker::backend::StoredKey;
    let h = harness::harness();
    let mut b = h.broker();
    assert!(b.api_keys().unwrap().is_empty());
    let key = |name: &str, hash: &str| StoredKey {
        name: name.into(),
        secret_hash: hash.into(),
        grants: "orders.*=read".into(),
        created_ns: 7,
    };
    b.api_key_add(&key("ops", "h1")).unwrap();
    b.api_key_add(&key("billing", "h2")).unwrap();
    let taken = b.api_key_add(&key("ops", "h3")).unwrap_err();
    assert_eq!(taken.kind(), litebroker::ErrorKind::Conflict);
    let same_secret = b.api_key_add(&key("other", "h1")).unwrap_err();
    assert_eq!(same_secret.kind(), litebroker::ErrorKind::Conflict);
    assert_eq!(
        b.api_key_add(&key("bad name!", "h4")).unwrap_err().kind(),
        litebroker::ErrorKind::InvalidInput
    );
    let names: Vec<String> = b.api_keys().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["billing", "ops"]);
    assert_eq!(b.api_keys().unwrap()[1], key("ops", "h1"));
    assert!(b.api_key_revoke("ops").unwrap());
    assert!(!b.api_key_revoke("ops").unwrap());
    assert_eq!(b.api_keys().unwrap().len(), 1);
}

#[test]
fn arrivals_count_every_message_written_after_a_mark_consumed_or_not() {
    let h = harness();
    let mut broker = h.broker();
    broker.queue("before").unwrap().write("old").unwrap();
    let mark = broker.last_id().unwrap();
    let none = broker.backend().arrivals(mark).unwrap();
    assert!(none.queues.is_empty());
    assert_eq!(none.last_id, mark, "nothing new: the mark stays");
    for body in ["1", "2", "3"] {
        broker.queue("a").unwrap().write(body).unwrap();
    }
    let last = broker.queue("b").unwrap().write("x").unwrap();
    // Consumed and leased messages still count as arrived.
    assert_eq!(
        broker.queue("a").unwrap().read().unwrap().unwrap().body,
        "1"
    );
    broker
        .queue("b")
        .unwrap()
        .lease(&Filter::all(), 1, Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = broker.backend().arrivals(mark).unwrap();
    got.queues.sort();
    assert_eq!(got.queues, [("a".to_owned(), 3), ("b".to_owned(), 1)]);
    assert_eq!(got.last_id, last);
    // From the returned mark, only what comes next.
    let next = broker.queue("a").unwrap().write("4").unwrap();
    let more = broker.backend().arrivals(got.last_id).unwrap();
    assert_eq!(more.queues, [("a".to_owned(), 1)]);
    assert_eq!(more.last_id, next);
}
