//! Group commit of PUBLISH seen from outside: many publishers that each wait
//! for their answer share commits, every message is stored and delivered
//! exactly once under the offset its publisher was told, and a shared commit
//! that fails answers every publisher in it with an error and stores none.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{text, Client, Server, PATIENCE};
use litebroker_tcp::frame::Kind;
use litebroker_tcp::Config;

fn fast() -> Config {
    Config {
        grace: Duration::from_millis(20),
        ..Config::default()
    }
}

#[test]
fn many_waiting_publishers_share_commits_and_every_message_arrives_exactly_once() {
    let config = fast();
    let stats = config.stats.clone();
    let server = Server::start_with(config);
    let mut admin = server.client();
    admin.create_topic("orders");
    admin.create_subscription("shipping", "orders", "0");
    let (publishers, each) = (8, 60);
    let threads: Vec<_> = (0..publishers)
        .map(|t| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut p = Client::connect(addr);
                (0..each)
                    .map(|i| {
                        let body = format!("publisher {t} message {i}");
                        (p.publish("orders", body.as_bytes()), body)
                    })
                    .collect::<Vec<(u64, String)>>()
            })
        })
        .collect();
    // What each publisher was told: offset -> its body.
    let mut told = BTreeMap::new();
    for th in threads {
        for (offset, body) in th.join().unwrap() {
            assert!(
                told.insert(offset, body).is_none(),
                "offset {offset} given twice"
            );
        }
    }
    let total = publishers * each;
    assert_eq!(
        told.keys().copied().collect::<Vec<_>>(),
        (0..total as u64).collect::<Vec<_>>(),
        "gap-free offsets, one per publish"
    );
    let publishes = stats.publishes.load(Ordering::Relaxed);
    let commits = stats.publish_commits.load(Ordering::Relaxed);
    assert_eq!(publishes, total as u64);
    assert!(
        commits < publishes,
        "{publishes} publishes from {publishers} concurrent publishers took {commits} commits"
    );

    // One member reads everything: each offset once, with its publisher's body.
    let mut member = server.client();
    member.subscribe("shipping", "reader", &[]);
    let mut seen = BTreeMap::new();
    let until = Instant::now() + PATIENCE;
    while seen.len() < total && Instant::now() < until {
        let Some(d) = member.data(PATIENCE) else {
            break;
        };
        let again = seen.insert(d.seq, text(&d));
        assert!(again.is_none(), "offset {} delivered twice", d.seq);
    }
    assert_eq!(seen, told);
    assert!(
        member.data(Duration::from_millis(600)).is_none(),
        "nothing more"
    );
}

/// A topic whose log refuses the body "poison" (a trigger in the database),
/// and a way to hold the database's write lock from outside the server.
fn poison_topic(server: &Server, topic: &str) -> rusqlite::Connection {
    let mut c = server.client();
    c.create_topic(topic);
    c.publish(topic, b"warm-up");
    let db = rusqlite::Connection::open(&server.path).unwrap();
    db.busy_timeout(PATIENCE).unwrap();
    db.execute_batch(
        "CREATE TRIGGER poison BEFORE INSERT ON lb_topic_log \
         WHEN NEW.body = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
    )
    .unwrap();
    db
}

#[test]
fn a_failed_shared_commit_answers_every_publisher_in_it_with_an_error_and_stores_none() {
    let config = fast();
    let stats = config.stats.clone();
    let server = Server::start_with(config);
    let db = poison_topic(&server, "risky");
    let mut admin = server.client();
    admin.create_subscription("audit", "risky", "0");

    // Hold the write lock, so that the next commit waits and everything
    // published meanwhile queues up for the one after it.
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let addr = server.addr;
    let first = std::thread::spawn(move || Client::connect(addr).publish("risky", b"first"));
    let wait_for = |n: u64| {
        let until = Instant::now() + PATIENCE;
        // The first publish is in the committer once it counted it.
        while stats.publishes.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < until, "the commit started");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(2); // warm-up + first
    let bodies = ["a", "b", "poison", "c", "d"];
    let mut group: Vec<Client> = bodies.iter().map(|_| server.client()).collect();
    for (i, (c, body)) in group.iter_mut().zip(bodies).enumerate() {
        c.send(&litebroker_tcp::frame::Frame::new(
            Kind::Publish,
            100 + i as u64,
            common::props(&[("topic", "risky"), ("client_id", "p")]),
            body.as_bytes().to_vec(),
        ));
    }
    // Each request reaches the committer's queue well within this.
    std::thread::sleep(Duration::from_millis(500));
    db.execute_batch("COMMIT").unwrap();

    assert_eq!(first.join().unwrap(), 1, "the commit before is untouched");
    for (i, c) in group.iter_mut().enumerate() {
        let answer = c.answer(100 + i as u64);
        assert_eq!(
            answer.properties.get("status"),
            Some("error"),
            "{}: {:?}",
            bodies[i],
            answer.properties
        );
        let why = answer.properties.get("error").unwrap_or_default();
        assert!(why.contains("poisoned"), "the commit's own error: {why}");
    }
    let commits = stats.publish_commits.load(Ordering::Relaxed);
    assert_eq!(commits, 3, "warm-up, first, then the five together");

    // None of the group is stored; the topic goes on from where it was.
    let mut member = server.client();
    member.subscribe("audit", "auditor", &[]);
    let mut got = BTreeSet::new();
    while let Some(d) = member.data(Duration::from_millis(600)) {
        got.insert((d.seq, text(&d)));
    }
    let expected: BTreeSet<(u64, String)> = [(0, "warm-up".into()), (1, "first".into())].into();
    assert_eq!(got, expected);
    assert_eq!(admin.publish("risky", b"after"), 2, "no offset was used up");
}
