//! The protocol over a real socket, driven by a hand-written client.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{props, text, Client, Server, PATIENCE};
use litebroker::lease::QueueConfig;
use litebroker_tcp::frame::{Frame, Kind, Properties, HEADER_LEN};
use litebroker_tcp::Config;

const QUIET: Duration = Duration::from_millis(600);

fn fast() -> Config {
    Config {
        grace: Duration::from_millis(20),
        ..Config::default()
    }
}

#[test]
fn every_request_type_and_its_answer() {
    let server = Server::start_with(fast());
    let mut c = server.client();

    // CREATE_TOPIC: once; a second time is an error, as in the original.
    let created = c.ok(
        Kind::CreateTopic,
        &[("topic", "events"), ("partitions", "1")],
        b"",
    );
    assert_eq!(created.kind, Kind::Ack as u32);
    assert_eq!(created.properties.get("topic"), Some("events"));
    assert_eq!(created.properties.get("version"), Some("1.0"));
    assert!(created.properties.get("created_at").is_some());
    assert!(c
        .refused(Kind::CreateTopic, &[("topic", "events")], b"")
        .contains("already exists"));

    // PUBLISH: client_id (the real client) or publisher_id (its server's demand).
    let p = c.ok(
        Kind::Publish,
        &[("topic", "events"), ("client_id", "c1"), ("color", "red")],
        b"first",
    );
    assert_eq!(p.properties.get("offset"), Some("0"));
    assert_eq!(p.properties.get("delivered_to"), Some("0"));
    let p = c.ok(
        Kind::Publish,
        &[("topic", "events"), ("publisher_id", "p1")],
        b"second",
    );
    assert_eq!(p.properties.get("offset"), Some("1"));
    assert!(c
        .refused(
            Kind::Publish,
            &[("topic", "nowhere"), ("client_id", "c1")],
            b"x"
        )
        .contains("does not exist"));

    // CREATE_SUBSCRIPTION from offset 1: replays the second message only.
    let s = c.ok(
        Kind::CreateSubscription,
        &[
            ("subscription_id", "group"),
            ("topic", "events"),
            ("start_offset", "1"),
        ],
        b"",
    );
    assert_eq!(s.properties.get("replayed"), Some("1"));
    assert!(c
        .refused(
            Kind::CreateSubscription,
            &[("subscription_id", "group"), ("topic", "events")],
            b""
        )
        .contains("already exists"));
    let p = c.ok(
        Kind::Publish,
        &[("topic", "events"), ("client_id", "c1"), ("n", "3")],
        b"third",
    );
    assert_eq!(p.properties.get("delivered_to"), Some("1"));

    // SUBSCRIBE on another connection: DATA follows its answer.
    let mut member = server.client();
    let joined = member.subscribe("group", "m1", &[]);
    assert_eq!(joined.properties.get("topic"), Some("events"));
    assert_eq!(joined.properties.get("subscriber_id"), Some("m1"));
    let d1 = member.data(PATIENCE).unwrap();
    let d2 = member.data(PATIENCE).unwrap();
    assert_eq!((d1.seq, text(&d1)), (1, "second".into()));
    assert_eq!((d2.seq, text(&d2)), (2, "third".into()));
    for d in [&d1, &d2] {
        assert_eq!(d.kind, Kind::Data as u32);
        assert_eq!(d.properties.get("topic"), Some("events"));
        assert_eq!(d.properties.get("subscription_id"), Some("group"));
        assert_eq!(d.properties.get("version"), Some("1.0"));
        assert!(d.properties.get("created_at").is_some());
    }
    assert_eq!(
        d2.properties.get("n"),
        Some("3"),
        "publisher properties travel"
    );
    assert_eq!(d2.properties.get("client_id"), Some("c1"));
    // The same subscriber id cannot join twice (ids are global, as in the original).
    let mut other = server.client();
    assert!(other
        .refused(
            Kind::Subscribe,
            &[("subscription_id", "group"), ("subscriber_id", "m1")],
            b""
        )
        .contains("already exists"));

    // HEARTBEAT is echoed with its sequence number, 0 included (the real client's).
    for seq in [0, 77] {
        member.send(&Frame::new(Kind::Heartbeat, seq, Properties::new(), vec![]));
        let echo = member.answer(seq);
        assert_eq!((echo.kind, echo.seq), (Kind::Heartbeat as u32, seq));
    }

    // UNSUBSCRIBE: no more DATA to it.
    member.ok(
        Kind::Unsubscribe,
        &[("subscription_id", "group"), ("subscriber_id", "m1")],
        b"",
    );
    assert!(member
        .refused(Kind::Unsubscribe, &[("subscriber_id", "m1")], b"")
        .contains("not a member"));
    c.publish("events", b"fourth");
    assert!(member.data(QUIET).is_none());

    // DELETE_SUBSCRIPTION: once.
    c.ok(
        Kind::DeleteSubscription,
        &[("subscription_id", "group")],
        b"",
    );
    assert!(c
        .refused(
            Kind::DeleteSubscription,
            &[("subscription_id", "group")],
            b""
        )
        .contains("does not exist"));
    assert!(c
        .refused(
            Kind::Subscribe,
            &[("subscription_id", "group"), ("subscriber_id", "m2")],
            b""
        )
        .contains("does not exist"));
}

#[test]
fn missing_and_bad_properties_are_error_acks_and_the_connection_goes_on() {
    let server = Server::start_with(fast());
    let mut c = server.client();
    type Case<'a> = (Kind, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (Kind::CreateTopic, &[], "Missing 'topic'"),
        (Kind::CreateTopic, &[("topic", "a b")], "topic"),
        (
            Kind::CreateTopic,
            &[("topic", "t"), ("retention_hours", "soon")],
            "retention_hours",
        ),
        (Kind::Publish, &[("client_id", "c")], "Missing 'topic'"),
        (Kind::Publish, &[("topic", "t")], "Missing 'publisher_id'"),
        (
            Kind::Publish,
            &[
                ("topic", "t"),
                ("client_id", "c"),
                ("lb-body-encoding", "x"),
            ],
            "reserved",
        ),
        (
            Kind::CreateSubscription,
            &[("topic", "t")],
            "Missing 'subscription_id'",
        ),
        (
            Kind::CreateSubscription,
            &[("subscription_id", "s")],
            "Missing 'topic'",
        ),
        (
            Kind::CreateSubscription,
            &[
                ("subscription_id", "s"),
                ("topic", "t"),
                ("start_offset", "-1"),
            ],
            "start_offset",
        ),
        (
            Kind::CreateSubscription,
            &[("subscription_id", "s"), ("topic", "bad topic")],
            "topic",
        ),
        (Kind::DeleteSubscription, &[], "Missing 'subscription_id'"),
        (
            Kind::Subscribe,
            &[("subscriber_id", "x")],
            "Missing 'subscription_id'",
        ),
        (
            Kind::Subscribe,
            &[("subscription_id", "s")],
            "Missing 'subscriber_id'",
        ),
        (Kind::Unsubscribe, &[], "Missing 'subscriber_id'"),
        (Kind::Data, &[], "sent by the server"),
    ];
    for (kind, pairs, want) in cases {
        let error = c.refused(*kind, pairs, b"");
        assert!(error.contains(want), "{kind:?} {pairs:?}: {error}");
    }
    c.create_topic("t");
    c.create_subscription("s", "t", "0");
    assert!(c
        .refused(
            Kind::Subscribe,
            &[
                ("subscription_id", "s"),
                ("subscriber_id", "x"),
                ("ack", "sometimes")
            ],
            b""
        )
        .contains("ack must be"));
    // An unknown type, an ACK nobody waits for: error ACKs, and still usable.
    let mut unknown = Frame::new(Kind::Heartbeat, 5, Properties::new(), vec![]);
    unknown.kind = 42;
    c.send(&unknown);
    let answer = c.answer(5);
    assert_eq!(answer.properties.get("status"), Some("error"));
    assert!(answer
        .properties
        .get("error")
        .unwrap()
        .contains("unknown message type 42"));
    c.send(&Frame::new(Kind::Ack, 9, Properties::new(), vec![]));
    assert!(c
        .answer(9)
        .properties
        .get("error")
        .unwrap()
        .contains("no unacknowledged DATA"));
    assert_eq!(c.publish("t", b"still here"), 0);
}

/// Bytes of a frame whose properties are not UTF-8.
fn frame_with_raw_properties(seq: u64, raw: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let total = (HEADER_LEN + raw.len()) as u32;
    bytes.extend_from_slice(&total.to_be_bytes());
    bytes.extend_from_slice(&(Kind::Publish as u32).to_be_bytes());
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&0u64.to_be_bytes());
    bytes.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&0u32.to_be_bytes());
    bytes.extend_from_slice(raw);
    bytes
}

#[test]
fn broken_frames_get_an_error_or_a_close_and_never_disturb_others() {
    let server = Server::start_with(Config {
        max_frame: 64 * 1024,
        idle_timeout: Duration::from_secs(2),
        ..fast()
    });
    let mut bystander = server.client();
    bystander.create_topic("t");

    // Invalid UTF-8 in properties: an error ACK, and the connection goes on.
    let mut c = server.client();
    std::io::Write::write_all(
        &mut c.stream,
        &frame_with_raw_properties(3, b"topic=\xff\0"),
    )
    .unwrap();
    assert!(c
        .answer(3)
        .properties
        .get("error")
        .unwrap()
        .contains("UTF-8"));
    assert_eq!(c.publish("t", b"ok"), 0);

    // Over the size limit: an error ACK naming the limit, then closed.
    let mut big = server.client();
    let frame = Frame::new(
        Kind::Publish,
        8,
        props(&[("topic", "t"), ("client_id", "c")]),
        vec![b'x'; 100_000],
    );
    let bytes = frame.to_bytes();
    std::io::Write::write_all(&mut big.stream, &bytes[..HEADER_LEN]).unwrap();
    let refusal = big.answer(8);
    assert!(refusal
        .properties
        .get("error")
        .unwrap()
        .contains("exceeds the limit"));
    assert!(big.closed_within(PATIENCE));

    // total_length disagreeing with the parts: an error ACK, then closed.
    let mut liar = server.client();
    let mut bytes = Frame::new(Kind::Heartbeat, 4, Properties::new(), b"abc".to_vec()).to_bytes();
    bytes[28..32].copy_from_slice(&1u32.to_be_bytes());
    std::io::Write::write_all(&mut liar.stream, &bytes).unwrap();
    assert!(liar
        .answer(4)
        .properties
        .get("error")
        .unwrap()
        .contains("disagrees"));
    assert!(liar.closed_within(PATIENCE));

    // total_length below the header size.
    let mut tiny = server.client();
    let mut bytes = Frame::new(Kind::Heartbeat, 6, Properties::new(), vec![]).to_bytes();
    bytes[0..4].copy_from_slice(&3u32.to_be_bytes());
    std::io::Write::write_all(&mut tiny.stream, &bytes).unwrap();
    assert_eq!(tiny.answer(6).properties.get("status"), Some("error"));
    assert!(tiny.closed_within(PATIENCE));

    // A frame cut short, then the client vanishes mid-frame.
    let mut cut = server.client();
    let bytes = Frame::new(
        Kind::Publish,
        2,
        props(&[("topic", "t"), ("client_id", "c")]),
        b"never".to_vec(),
    )
    .to_bytes();
    std::io::Write::write_all(&mut cut.stream, &bytes[..bytes.len() - 2]).unwrap();
    drop(cut);

    // A client that connects and sends nothing is closed after the idle timeout.
    let mut silent = server.client();
    assert!(silent.closed_within(PATIENCE));

    // Garbage: 32 random-looking bytes claiming 4 GiB.
    let mut garbage = server.client();
    std::io::Write::write_all(&mut garbage.stream, &[0xff; 32]).unwrap();
    assert_eq!(
        garbage.answer(u64::MAX).properties.get("status"),
        Some("error")
    );
    assert!(garbage.closed_within(PATIENCE));

    // Nobody else noticed (the bystander itself fell silent long enough to
    // be closed: a new connection); the cut frame was not published.
    assert!(bystander.closed_within(PATIENCE));
    assert_eq!(server.client().publish("t", b"after"), 1);
    let topics = server.broker().topics().unwrap();
    assert_eq!(topics[0].next_offset, 2);
}

#[test]
fn bodies_keep_every_byte_and_properties_travel() {
    let server = Server::start_with(fast());
    let mut c = server.client();
    c.create_topic("bin");
    c.create_subscription("sink", "bin", "0");
    c.create_subscription("look", "bin", "0");
    let all: Vec<u8> = (0..=255).collect();
    let mib: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let utf8 = "héllo\0wörld\n".as_bytes().to_vec();
    let bodies = [all.clone(), Vec::new(), mib.clone(), utf8.clone()];
    for b in &bodies {
        c.ok(
            Kind::Publish,
            &[
                ("topic", "bin"),
                ("client_id", "c"),
                ("kind", "blob"),
                ("eq", "a=b"),
            ],
            b,
        );
    }
    let mut m = server.client();
    m.subscribe("sink", "m", &[]);
    for (i, want) in bodies.iter().enumerate() {
        let d = m.data(PATIENCE).unwrap();
        assert_eq!(d.seq, i as u64);
        assert_eq!(&d.body, want, "body {i}");
        assert_eq!(d.properties.get("kind"), Some("blob"));
        assert_eq!(d.properties.get("eq"), Some("a=b"));
        assert_eq!(
            d.properties.get("lb-body-encoding"),
            None,
            "internal header hidden"
        );
    }
    // UTF-8 bodies are stored as text, others as base64 marked by a header.
    let mut b = server.broker();
    let mut stored = Vec::new();
    b.queue("look")
        .unwrap()
        .peek_each(&litebroker::message::Filter::all(), |m| {
            stored.push((
                m.body.clone(),
                m.headers.get_str("lb-body-encoding").map(str::to_owned),
            ));
            Ok(())
        })
        .unwrap();
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[0].1.as_deref(), Some("base64"));
    assert_eq!((stored[1].0.as_str(), stored[1].1.as_deref()), ("", None));
    assert_eq!(
        (stored[3].0.as_bytes(), stored[3].1.as_deref()),
        (&utf8[..], None)
    );
}

/// Joins `n` members to `sub`; returns them (DATA starts after the grace).
fn members(server: &Server, sub: &str, n: usize, extra: &[(&str, &str)]) -> Vec<Client> {
    (0..n)
        .map(|i| {
            let mut m = server.client();
            m.subscribe(sub, &format!("{sub}-m{i}"), extra);
            m
        })
        .collect()
}

#[test]
fn round_robin_with_one_two_and_three_members_evenly_and_exactly_once() {
    let server = Server::start_with(fast());
    let mut c = server.client();
    c.create_topic("work");
    for n in 1..=3usize {
        let sub = format!("rr{n}");
        c.create_subscription(&sub, "work", "latest");
        let mut ms = members(&server, &sub, n, &[]);
        // Let every member become ready before the first publish.
        std::thread::sleep(Duration::from_millis(200));
        let per = 12;
        let first = c.publish("work", b"x");
        for _ in 1..per * n {
            c.publish("work", b"x");
        }
        let mut seen = BTreeSet::new();
        for m in ms.iter_mut() {
            let mut got = Vec::new();
            for _ in 0..per {
                got.push(m.data(PATIENCE).expect("a share").seq);
            }
            assert!(
                m.data(Duration::from_millis(200)).is_none(),
                "no more than its share"
            );
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "offset order per member: {got:?}"
            );
            for s in got {
                assert!(seen.insert(s), "{s} delivered twice");
            }
        }
        let want: BTreeSet<u64> = (first..first + (per * n) as u64).collect();
        assert_eq!(seen, want);
        c.ok(Kind::DeleteSubscription, &[("subscription_id", &sub)], b"");
    }
}

#[test]
fn a_member_killed_mid_stream_loses_nothing_with_manual_acks() {
    let server = Server::start_with(Config {
        window: 4,
        ..fast()
    });
    let mut c = server.client();
    c.create_topic("jobs");
    c.create_subscription("crew", "jobs", "0");
    let total = 60u64;
    for i in 0..total {
        c.publish("jobs", format!("job {i}").as_bytes());
    }
    let mut ms = members(&server, "crew", 3, &[("ack", "manual")]);
    let mut done = BTreeSet::new();
    // The doomed member acks two, then takes more and dies without acking them.
    let mut doomed = ms.remove(0);
    for _ in 0..2 {
        let d = doomed.data(PATIENCE).unwrap();
        assert!(d.properties.get("receipt").is_some());
        doomed.ack(&d);
        done.insert(d.seq);
    }
    let unacked = doomed.data(PATIENCE).unwrap().seq;
    doomed.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(doomed);
    // The survivors ack what they get until everything is done.
    let deadline = std::time::Instant::now() + PATIENCE;
    while done.len() < total as usize && std::time::Instant::now() < deadline {
        for m in ms.iter_mut() {
            if let Some(d) = m.data(Duration::from_millis(20)) {
                m.ack(&d);
                done.insert(d.seq);
            }
        }
    }
    assert_eq!(done, (0..total).collect::<BTreeSet<_>>(), "nothing lost");
    assert!(done.contains(&unacked));
    // Every ack reached the store: the subscription is empty, nothing leased.
    std::thread::sleep(Duration::from_millis(300));
    let mut b = server.broker();
    let stats = b.list().unwrap();
    let crew = stats.iter().find(|q| q.name == "crew");
    assert!(crew.is_none_or(|q| q.pending == 0), "{crew:?}");
}

#[test]
fn manual_acks_come_back_after_the_visibility_timeout() {
    let server = Server::start_with(fast());
    let mut c = server.client();
    c.create_topic("slow");
    c.create_subscription("lazy", "slow", "0");
    server
        .broker()
        .configure_queue(
            "lazy",
            &QueueConfig {
                visibility: Some(Duration::from_secs(1)),
                ..QueueConfig::default()
            },
        )
        .unwrap();
    c.publish("slow", b"once");
    let mut m = server.client();
    m.subscribe("lazy", "sleeper", &[("ack", "manual")]);
    let first = m.data(PATIENCE).unwrap();
    // Not acked: the lease expires and the same message comes again.
    let again = m
        .data(PATIENCE)
        .expect("redelivered after the lease expired");
    assert_eq!((again.seq, text(&again)), (first.seq, "once".into()));
    assert_ne!(
        first.properties.get("receipt"),
        again.properties.get("receipt")
    );
    m.ack(&again);
    assert!(m.data(Duration::from_millis(1500)).is_none());
    // The stale first delivery cannot be acked any more.
    m.send(&Frame::new(Kind::Ack, first.seq, Properties::new(), vec![]));
    assert_eq!(m.answer(first.seq).properties.get("status"), Some("error"));
}

#[test]
fn messages_wait_for_the_first_member_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".broker.db");
    let server = Server::on(&path, fast());
    let mut c = server.client();
    c.create_topic("durable");
    c.create_subscription("keep", "durable", "0");
    for i in 0..5 {
        c.publish("durable", format!("m{i}").as_bytes());
    }
    // A member with manual acks takes two; the server stops under it.
    let mut m = server.client();
    m.subscribe("keep", "first", &[("ack", "manual")]);
    for want in [0, 1] {
        let d = m.data(PATIENCE).unwrap();
        assert_eq!(d.seq, want);
        m.ack(&d);
    }
    // The acks are in before the stop (a heartbeat's echo follows them).
    m.send(&Frame::new(Kind::Heartbeat, 0, Properties::new(), vec![]));
    m.answer(0);
    server.stop();
    assert!(m.closed_within(PATIENCE), "the stop closed the member");
    drop((c, m));

    let server = Server::on(&path, fast());
    let mut c = server.client();
    assert!(c
        .refused(Kind::CreateTopic, &[("topic", "durable")], b"")
        .contains("already exists"));
    assert_eq!(c.publish("durable", b"m5"), 5, "offsets go on");
    let mut m = server.client();
    m.subscribe("keep", "second", &[]);
    let rest: Vec<String> = (0..4).map(|_| text(&m.data(PATIENCE).unwrap())).collect();
    assert_eq!(rest, ["m2", "m3", "m4", "m5"]);
}

#[test]
fn data_waits_for_the_subscribe_answer_and_the_grace_period() {
    let server = Server::start_with(Config {
        grace: Duration::from_millis(400),
        ..Config::default()
    });
    let mut c = server.client();
    c.create_topic("g");
    c.create_subscription("gs", "g", "0");
    for _ in 0..3 {
        c.publish("g", b"waiting");
    }
    let mut m = server.client();
    m.send(&Frame::new(
        Kind::Subscribe,
        1,
        props(&[("subscription_id", "gs"), ("subscriber_id", "gm")]),
        vec![],
    ));
    let first = m.read_frame(PATIENCE).unwrap();
    assert_eq!(
        (first.kind, first.seq),
        (Kind::Ack as u32, 1),
        "the answer comes first"
    );
    // Nothing within most of the grace period...
    assert!(m.read_frame(Duration::from_millis(250)).is_none());
    // ...then the DATA.
    assert_eq!(m.data(PATIENCE).unwrap().seq, 0);
}

#[test]
fn a_deleted_subscription_stops_its_members_and_silence_drops_them() {
    let server = Server::start_with(Config {
        idle_timeout: Duration::from_secs(1),
        ..fast()
    });
    let mut c = server.client();
    c.create_topic("d");
    c.create_subscription("ds", "d", "latest");
    let mut m = server.client();
    m.subscribe("ds", "dm", &[]);
    c.ok(Kind::DeleteSubscription, &[("subscription_id", "ds")], b"");
    // The member was dropped with it: its id is free again on a new subscription.
    c.create_subscription("ds2", "d", "latest");
    let mut m2 = server.client();
    m2.subscribe("ds2", "dm", &[]);
    // A silent member is dropped (and its connection closed) after the idle timeout.
    assert!(m.closed_within(PATIENCE));
    assert!(m2.closed_within(PATIENCE));
    let mut m3 = server.client();
    m3.subscribe("ds2", "dm", &[]);
}

#[test]
fn concurrent_publishers_share_commits_and_offsets_stay_gap_free() {
    let server = Server::start_with(fast());
    let mut c = server.client();
    c.create_topic("busy");
    c.create_topic("other");
    c.create_subscription("all", "busy", "0");
    let per = 150;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut p = Client::connect(addr);
                let topic = if t == 3 { "other" } else { "busy" };
                (0..per)
                    .map(|i| p.publish(topic, format!("{t}-{i}").as_bytes()))
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut busy = BTreeSet::new();
    for (t, th) in threads.into_iter().enumerate() {
        let offsets = th.join().unwrap();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "in order per publisher"
        );
        if t == 3 {
            assert_eq!(offsets, (0..per as u64).collect::<Vec<_>>());
        } else {
            busy.extend(offsets);
        }
    }
    assert_eq!(busy, (0..3 * per as u64).collect::<BTreeSet<_>>());
    let stats = server.broker().list().unwrap();
    let all = stats.iter().find(|q| q.name == "all").unwrap();
    assert_eq!(all.pending, 3 * per as u64);
}

#[test]
fn a_body_over_the_message_limit_is_refused_and_the_connection_goes_on() {
    let server = Server::start_with(fast());
    let mut c = server.client();
    c.create_topic("big");
    let body = vec![b'a'; litebroker::message::MAX_MESSAGE_SIZE + 1];
    let answer = c.request(
        Kind::Publish,
        &[("topic", "big"), ("client_id", "c")],
        &body,
    );
    assert_eq!(answer.properties.get("code"), Some("too_large"));
    assert_eq!(c.publish("big", b"small"), 0);
}

#[test]
fn written_data_is_acknowledged_before_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".broker.db");
    let server = Server::on(&path, fast());
    let mut c = server.client();
    c.create_topic("once");
    c.create_subscription("o", "once", "0");
    let mut m = server.client();
    m.subscribe("o", "reader", &[]);
    for i in 0..50 {
        c.publish("once", format!("m{i}").as_bytes());
    }
    for i in 0..50 {
        assert_eq!(m.data(PATIENCE).unwrap().seq, i);
    }
    server.stop();
    // Written means delivered: after the restart nothing comes again.
    let server = Server::on(&path, fast());
    let mut c = server.client();
    let mut m = server.client();
    m.subscribe("o", "reader", &[]);
    c.publish("once", b"new");
    let d = m.data(PATIENCE).unwrap();
    assert_eq!((d.seq, text(&d)), (50, "new".into()));
}

#[test]
fn a_member_leaving_mid_stream_gives_back_what_it_was_not_written() {
    let server = Server::start_with(Config {
        window: 8,
        ..fast()
    });
    let mut c = server.client();
    c.create_topic("flow");
    c.create_subscription("pair", "flow", "0");
    let total = 300u64;
    for i in 0..total {
        c.publish("flow", format!("{i}").as_bytes());
    }
    let mut a = server.client();
    let mut b = server.client();
    a.subscribe("pair", "a", &[]);
    b.subscribe("pair", "b", &[]);
    let mut got = BTreeSet::new();
    for _ in 0..10 {
        assert!(got.insert(a.data(PATIENCE).unwrap().seq));
    }
    // Everything written to `a` before the answer to its UNSUBSCRIBE is its
    // own (the client keeps that DATA); nothing comes after it.
    a.ok(Kind::Unsubscribe, &[("subscriber_id", "a")], b"");
    while let Some(d) = a.data(Duration::ZERO) {
        assert!(got.insert(d.seq), "{} twice", d.seq);
    }
    assert!(a.data(QUIET).is_none(), "no DATA after the answer");
    // `b` gets everything else, once.
    while got.len() < total as usize {
        let d = b.data(PATIENCE).expect("the rest reaches the other member");
        assert!(got.insert(d.seq), "{} twice", d.seq);
    }
    assert!(b.data(QUIET).is_none());
}
