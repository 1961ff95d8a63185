//! Publish/subscribe through the library, on any backend (see `harness`):
//! fan-out, offsets, consumer groups, replay, retention, request/reply, bad
//! input.

mod harness;

use std::time::Duration;

use harness::{
    drain, expected, harness, origins, publish, publish_batches, read_up_to, subscribe, Harness,
};
use litebroker::error::ErrorKind;
use litebroker::message::Filter;
use litebroker::pubsub::{NewSubscription, Retention, StartFrom};
use litebroker::watch::StopHandle;
use litebroker::{Broker, Headers, Subscription};

/// A new connection to the test database.
fn open(db: &dyn Harness) -> Broker {
    db.broker()
}

#[test]
fn fan_out_follows_patterns_and_offsets_are_per_topic_and_gap_free() {
    let db = harness();
    let mut b = open(&db);
    subscribe(&mut b, "all-news", "news.+", StartFrom::Latest);
    subscribe(&mut b, "one-level", "news.=", StartFrom::Latest);
    subscribe(&mut b, "sports", "news.sports", StartFrom::Latest);
    subscribe(&mut b, "errors", "logs.=.error", StartFrom::Latest);
    let p = publish(&mut b, "news.sports", "goal");
    assert_eq!((p.offset, p.delivered), (0, 3));
    assert_eq!(publish(&mut b, "news.sports.football", "deep").delivered, 1);
    assert_eq!(publish(&mut b, "news.tech", "chip").delivered, 2);
    assert_eq!(publish(&mut b, "logs.api.error", "boom").delivered, 1);
    assert_eq!(publish(&mut b, "weather", "rain").delivered, 0);
    let second = publish(&mut b, "news.sports", "again");
    assert_eq!(second.offset, 1, "offsets count per topic");
    assert_eq!(drain(&mut b, "all-news"), ["goal", "deep", "chip", "again"]);
    assert_eq!(drain(&mut b, "one-level"), ["goal", "chip", "again"]);
    assert_eq!(drain(&mut b, "sports"), ["goal", "again"]);
    assert_eq!(drain(&mut b, "errors"), ["boom"]);
    let topics = b.topics().unwrap();
    let names: Vec<&str> = topics.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(
        names,
        [
            "logs.api.error",
            "news.sports",
            "news.sports.football",
            "news.tech",
            "weather"
        ]
    );
    let sports = &topics[1];
    assert_eq!(
        (sports.retained, sports.first_offset, sports.next_offset),
        (2, Some(0), 2)
    );
}

#[test]
fn delivered_messages_carry_topic_offset_and_headers() {
    let db = harness();
    let mut b = open(&db);
    subscribe(&mut b, "s", "orders.+", StartFrom::Latest);
    let headers = Headers::from_assignments(&["region=eu", "qty=3", "rush=true"]).unwrap();
    b.publish("orders.created", "o-1", &headers).unwrap();
    let m = b.queue("s").unwrap().read().unwrap().unwrap();
    assert_eq!(m.headers, headers);
    let origin = m.origin.unwrap();
    assert_eq!(
        (origin.topic.as_str(), origin.offset),
        ("orders.created", 0)
    );
}

#[test]
fn a_consumer_group_shares_a_subscription_and_subscriptions_each_get_everything() {
    let db = harness();
    let mut b = open(&db);
    subscribe(&mut b, "group", "jobs", StartFrom::Latest);
    subscribe(&mut b, "audit", "jobs", StartFrom::Latest);
    for i in 0..20 {
        publish(&mut b, "jobs", &format!("j{i}"));
    }
    let (mut c1, mut c2) = (open(&db), open(&db));
    let mut seen = Vec::new();
    loop {
        let a = c1.queue("group").unwrap().read().unwrap();
        let z = c2.queue("group").unwrap().read().unwrap();
        if a.is_none() && z.is_none() {
            break;
        }
        seen.extend(a.into_iter().chain(z).map(|m| m.body));
    }
    let expected: Vec<String> = (0..20).map(|i| format!("j{i}")).collect();
    assert_eq!(seen, expected, "each once, in order, across members");
    assert_eq!(drain(&mut b, "audit"), expected);
}

#[test]
fn replay_from_earliest_offset_and_time() {
    let db = harness();
    let mut b = open(&db);
    for i in 0..5 {
        publish(&mut b, "t.a", &format!("a{i}"));
        publish(&mut b, "t.b", &format!("b{i}"));
    }
    let midpoint = b.last_id().unwrap();
    publish(&mut b, "t.a", "a5");
    assert_eq!(
        subscribe(&mut b, "from-start", "t.=", StartFrom::Earliest),
        11
    );
    assert_eq!(
        drain(&mut b, "from-start"),
        ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4", "a5"],
        "publish order across topics"
    );
    assert_eq!(subscribe(&mut b, "from-3", "t.a", StartFrom::Offset(3)), 3);
    assert_eq!(drain(&mut b, "from-3"), ["a3", "a4", "a5"]);
    assert_eq!(
        subscribe(&mut b, "from-time", "t.+", StartFrom::After(midpoint)),
        1
    );
    assert_eq!(drain(&mut b, "from-time"), ["a5"]);
    assert_eq!(subscribe(&mut b, "latest", "t.+", StartFrom::Latest), 0);
    publish(&mut b, "t.b", "b5");
    assert_eq!(drain(&mut b, "latest"), ["b5"]);
    // Replayed copies keep topic, offset and headers, get fresh increasing
    // ids, and never leave the id high-water mark ahead of the clock.
    b.publish(
        "t.h",
        "with headers",
        &Headers::from_assignments(&["k=v"]).unwrap(),
    )
    .unwrap();
    let before = b.last_id().unwrap();
    assert_eq!(subscribe(&mut b, "copy", "t.h", StartFrom::Earliest), 1);
    let copy = b.queue("copy").unwrap().read().unwrap().unwrap();
    assert!(copy.id > before);
    assert_eq!(copy.headers.get_str("k"), Some("v"));
    let origin = copy.origin.unwrap();
    assert_eq!((origin.topic.as_str(), origin.offset), ("t.h", 0));
    assert!(b.last_id().unwrap() < litebroker::id::now_ns());
}

#[test]
fn retention_by_count_and_by_age() {
    let db = harness();
    let mut b = open(&db);
    b.set_retention("logs.+", &Retention::parse("3").unwrap())
        .unwrap();
    for i in 0..10 {
        publish(&mut b, "logs.app", &format!("l{i}"));
    }
    let info = &b.topics().unwrap()[0];
    assert_eq!(
        (info.retained, info.first_offset, info.next_offset),
        (3, Some(7), 10)
    );
    assert_eq!(info.retention.max_count, Some(3));
    subscribe(&mut b, "late", "logs.app", StartFrom::Earliest);
    assert_eq!(drain(&mut b, "late"), ["l7", "l8", "l9"]);

    publish(&mut b, "metrics", "old");
    std::thread::sleep(Duration::from_millis(30));
    b.set_retention("metrics", &Retention::parse("20ms").unwrap())
        .unwrap();
    assert_eq!(b.topics().unwrap()[1].retained, 0, "applied at once");
    publish(&mut b, "metrics", "new");
    assert_eq!(b.topics().unwrap()[1].retained, 1);
    // An exact topic setting wins over a matching pattern.
    b.set_retention("logs.app", &Retention::parse("5").unwrap())
        .unwrap();
    for i in 10..20 {
        publish(&mut b, "logs.app", &format!("l{i}"));
    }
    assert_eq!(b.topics().unwrap()[0].retained, 5);
}

#[test]
fn retention_settings_are_stored_per_pattern_and_removed_when_unbounded() {
    let db = harness();
    let mut b = open(&db);
    assert!(b.retention_setting("logs.+").unwrap().is_unbounded());
    let three = Retention::parse("3").unwrap();
    b.set_retention("logs.+", &three).unwrap();
    let week = Retention::parse("7d").unwrap();
    b.set_retention("audit", &week).unwrap();
    assert_eq!(b.retention_setting("logs.+").unwrap(), three);
    assert_eq!(b.retention_setting("audit").unwrap(), week);
    assert!(
        b.retention_setting("logs.app").unwrap().is_unbounded(),
        "exactly the pattern"
    );
    b.set_retention("logs.+", &Retention::default()).unwrap();
    assert!(b.retention_setting("logs.+").unwrap().is_unbounded());
    assert_eq!(b.retention_setting("audit").unwrap(), week);
}

#[test]
fn subscription_names_and_patterns_are_checked() {
    let db = harness();
    let mut b = open(&db);
    b.queue("busy").unwrap().write("x").unwrap();
    fn sub<'a>(name: &'a str, pattern: &'a str) -> NewSubscription<'a> {
        NewSubscription {
            name,
            pattern,
            from: StartFrom::Latest,
            ephemeral: None,
        }
    }
    let kind = |r: litebroker::Result<u64>| r.unwrap_err().kind();
    assert_eq!(
        kind(b.create_subscription(&sub("busy", "t"))),
        ErrorKind::Conflict,
        "a queue's name"
    );
    subscribe(&mut b, "s", "t", StartFrom::Latest);
    assert_eq!(
        kind(b.create_subscription(&sub("s", "t"))),
        ErrorKind::Conflict,
        "a subscription's name"
    );
    for (name, pattern) in [("-bad", "t"), ("p", "a..b"), ("p", "a.*")] {
        assert_eq!(
            kind(b.create_subscription(&sub(name, pattern))),
            ErrorKind::InvalidInput,
            "{name} {pattern}"
        );
    }
    for topic in ["news.=", "a_b"] {
        let err = b.publish(topic, "x", &Headers::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{topic}: {err}");
    }
    assert!(b.topics().unwrap().is_empty(), "nothing was published");
    assert!(!b.delete_subscription("unknown").unwrap());
    let err = Subscription::open(db.connector(), "unknown").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn unsubscribe_removes_the_subscription_and_its_pending_messages() {
    let db = harness();
    let mut b = open(&db);
    subscribe(&mut b, "s", "t", StartFrom::Latest);
    publish(&mut b, "t", "pending");
    assert_eq!(b.subscriptions().unwrap()[0].depth, 1);
    assert_eq!(
        b.subscriptions().unwrap()[0].next_offsets,
        [("t".to_string(), 0)]
    );
    assert!(b.delete_subscription("s").unwrap());
    assert!(b.subscriptions().unwrap().is_empty());
    assert!(b.list().unwrap().is_empty());
    assert_eq!(publish(&mut b, "t", "after").delivered, 0);
}

#[test]
fn subscription_handle_fetches_and_subscribes_with_a_timeout() {
    let db = harness();
    let mut sub =
        Subscription::create(db.connector(), "inbox", "mail.+", StartFrom::Latest).unwrap();
    assert!(sub.fetch().unwrap().is_none(), "non-blocking");
    let mut b = open(&db);
    publish(&mut b, "mail.in", "one");
    publish(&mut b, "mail.in", "two");
    assert_eq!(sub.fetch().unwrap().unwrap().body, "one");
    let mut got = Vec::new();
    let started = std::time::Instant::now();
    sub.subscribe(
        |m| {
            got.push(m.body.clone());
            Ok::<(), ()>(())
        },
        Some(Duration::from_millis(300)),
        StopHandle::new(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(got, ["two"]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    sub.delete().unwrap();
    assert!(b.subscriptions().unwrap().is_empty());
}

#[test]
fn request_gets_the_first_reply_or_times_out() {
    let db = harness();
    let mut server =
        Subscription::create(db.connector(), "rpc-server", "rpc.echo", StartFrom::Latest).unwrap();
    let connector = db.connector();
    let responder = std::thread::spawn(move || {
        let mut b = Broker::connect(connector).unwrap();
        let stop = StopHandle::new();
        let done = stop.clone();
        server
            .subscribe(
                |req| {
                    b.reply(req, &format!("echo: {}", req.body), &Headers::new())
                        .unwrap();
                    done.stop();
                    Ok::<(), ()>(())
                },
                Some(Duration::from_secs(10)),
                stop,
            )
            .unwrap()
            .unwrap();
    });
    let mut client = open(&db);
    let reply = client
        .request(
            "rpc.echo",
            "hello",
            &Headers::new(),
            Duration::from_secs(10),
        )
        .unwrap()
        .expect("a reply");
    assert_eq!(reply.body, "echo: hello");
    assert!(reply.headers.get_str("correlation-id").is_some());
    responder.join().unwrap();
    // Nobody answers: None after the timeout, and the private inbox is gone.
    let none = client
        .request(
            "rpc.nobody",
            "hello?",
            &Headers::new(),
            Duration::from_millis(200),
        )
        .unwrap();
    assert!(none.is_none());
    let subs = client.subscriptions().unwrap();
    assert_eq!(
        subs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["rpc-server"]
    );
}

#[test]
fn reply_needs_a_reply_to_header() {
    let db = harness();
    let mut b = open(&db);
    let plain = litebroker::Message::new(1, "x", 1);
    let err = b.reply(&plain, "answer", &Headers::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn batched_copies_keep_order_origin_and_headers_through_read_lease_move_and_replay() {
    let db = harness();
    let mut b = open(&db);
    for name in ["a", "b", "c"] {
        subscribe(&mut b, name, "t", StartFrom::Latest);
    }
    publish_batches(&mut b, 10, 4);
    // Plain reads, in offset order with their origins and headers.
    let first = read_up_to(&mut b, "a", 3);
    assert_eq!(origins(&first), expected(0..3));
    let listed = b.subscriptions().unwrap();
    assert_eq!(listed[0].next_offsets, [("t".to_owned(), 3)]);
    assert_eq!(listed[1].next_offsets, [("t".to_owned(), 0)]);
    // A lease sees the same.
    let leased = b
        .queue("a")
        .unwrap()
        .lease(&Filter::all(), 4, None)
        .unwrap();
    assert_eq!(origins(&leased), expected(3..7));
    let rest = read_up_to(&mut b, "a", 100);
    assert_eq!(origins(&rest), expected(7..10));
    // Moved copies keep where they came from.
    let moved = b
        .queue("b")
        .unwrap()
        .move_to("plain", &Filter::all(), 100)
        .unwrap();
    assert_eq!(origins(&moved), expected(0..10));
    let plain = read_up_to(&mut b, "plain", 100);
    assert_eq!(origins(&plain), expected(0..10));
    // Peeking does not consume and sees the same.
    let peeked: Vec<litebroker::Message> = b
        .queue("c")
        .unwrap()
        .peek_iter(&Filter::all())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(origins(&peeked), expected(0..10));
    // Replay from one topic, from an offset.
    assert_eq!(subscribe(&mut b, "r", "t", StartFrom::Offset(4)), 6);
    let replayed = read_up_to(&mut b, "r", 100);
    assert_eq!(origins(&replayed), expected(4..10));
    // A plain write into a subscription's queue is no copy.
    b.queue("c").unwrap().write("direct").unwrap();
    let all_c = read_up_to(&mut b, "c", 100);
    assert_eq!(origins(&all_c[..10]), expected(0..10));
    assert_eq!(all_c[10].body, "direct");
    assert!(all_c[10].origin.is_none());
}

#[test]
fn vacuum_keeps_copies_still_waiting_with_their_origin() {
    let db = harness();
    let mut b = open(&db);
    subscribe(&mut b, "done", "t", StartFrom::Latest);
    subscribe(&mut b, "waiting", "t", StartFrom::Latest);
    publish_batches(&mut b, 6, 3);
    assert_eq!(drain(&mut b, "done").len(), 6);
    assert_eq!(read_up_to(&mut b, "waiting", 5).len(), 5);
    b.vacuum(false).unwrap();
    let last = b.queue("waiting").unwrap().read().unwrap().unwrap();
    assert_eq!(origins(&[last]), expected(5..6));
    b.vacuum(false).unwrap();
    assert_eq!(publish(&mut b, "t", "m6").offset, 6, "offsets go on");
}

#[test]
fn an_ephemeral_subscription_lives_while_its_owner_does() {
    let db = harness();
    let clock = litebroker::clock::ManualClock::new();
    let connector = db.connector_with_clock(std::sync::Arc::new(clock.clone()));
    let mut sub =
        Subscription::create_ephemeral(connector.clone(), "mine", "t", Duration::from_secs(10))
            .unwrap();
    let mut b = Broker::connect(connector).unwrap();
    let listed = b.subscriptions().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].ephemeral);
    // Untouched for longer than its expiry, but its owner (this process) is alive.
    clock.advance(Duration::from_secs(60));
    assert_eq!(b.subscriptions().unwrap().len(), 1);
    publish(&mut b, "t", "still here");
    assert_eq!(sub.fetch().unwrap().unwrap().body, "still here");
    assert!(sub.touch().unwrap());
    sub.delete().unwrap();
    assert!(b.subscriptions().unwrap().is_empty());
    assert!(!b.backend().touch_subscription("mine").unwrap());
}

#[test]
fn a_plain_batch_reaches_every_subscription_byte_for_byte_with_offsets() {
    let db = harness();
    let mut b = open(&db);
    subscribe(&mut b, "one", "t", StartFrom::Latest);
    subscribe(&mut b, "two", "t", StartFrom::Latest);
    publish(&mut b, "t", "before");
    let bodies = [
        "",
        "q\"uote",
        "back\\slash",
        "\n\t\u{1}",
        "ü€𝄞",
        "nul\0inside",
    ];
    for (i, batch) in [&bodies[..5], &bodies[..]].into_iter().enumerate() {
        let msgs: Vec<litebroker::Outgoing<'_>> = batch
            .iter()
            .map(|body| litebroker::Outgoing::body(body))
            .collect();
        let published = b.publish_batch("t", &msgs).unwrap();
        let first = 1 + 5 * i as i64;
        let offsets: Vec<i64> = published.iter().map(|p| p.offset).collect();
        assert_eq!(
            offsets,
            (first..first + batch.len() as i64).collect::<Vec<_>>()
        );
        assert!(published.windows(2).all(|w| w[0].id < w[1].id));
        assert!(published.iter().all(|p| p.delivered == 2));
    }
    let expected: Vec<(String, i64)> = std::iter::once("before")
        .chain(bodies[..5].iter().copied())
        .chain(bodies.iter().copied())
        .zip(0..)
        .map(|(body, offset)| (body.to_owned(), offset))
        .collect();
    for sub in ["one", "two"] {
        let got: Vec<(String, i64)> = read_up_to(&mut b, sub, 100)
            .into_iter()
            .map(|m| (m.body, m.origin.unwrap().offset))
            .collect();
        assert_eq!(got, expected, "{sub}");
    }
    assert_eq!(subscribe(&mut b, "late", "t", StartFrom::Offset(6)), 6);
    let replayed: Vec<String> = read_up_to(&mut b, "late", 100)
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(replayed, bodies);
    assert!(b.last_id().unwrap() < litebroker::id::now_ns());
}

#[test]
fn create_topic_makes_an_empty_listed_topic_once() {
    let db = harness();
    let mut b = open(&db);
    assert!(b.create_topic("orders").unwrap());
    assert!(
        !b.create_topic("orders").unwrap(),
        "a second create is refused"
    );
    let topics = b.topics().unwrap();
    assert_eq!(topics.len(), 1);
    assert_eq!(
        (
            topics[0].retained,
            topics[0].first_offset,
            topics[0].next_offset
        ),
        (0, None, 0)
    );
    // The first publish gets offset 0; a published-to topic exists already.
    assert_eq!(publish(&mut b, "orders", "one").offset, 0);
    assert!(!b.create_topic("orders").unwrap());
    assert!(
        b.create_topic("orders.=").is_err(),
        "wildcards are no topic"
    );
}
