//! The protocol on PostgreSQL: the server takes any connector. Runs when
//! BROKER_TEST_POSTGRES_URL names a server (scripts/test.sh starts one and
//! sets LITEBROKER_REQUIRE_POSTGRES=1, under which a missing URL fails).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{text, Server, PATIENCE};
use litebroker::backend::postgres::{PostgresConnector, PostgresOptions};
use litebroker::Connector;
use litebroker_tcp::frame::Kind;
use litebroker_tcp::Config;

/// A connector on a schema of its own, or `None` without a server.
fn postgres() -> Option<Arc<PostgresConnector>> {
    let Ok(url) = std::env::var("BROKER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("LITEBROKER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "LITEBROKER_REQUIRE_POSTGRES=1 but BROKER_TEST_POSTGRES_URL is not set"
        );
        eprintln!("no PostgreSQL server (BROKER_TEST_POSTGRES_URL): skipped");
        return None;
    };
    let options = PostgresOptions {
        schema: format!(
            "lbtcp_{}_{}",
            std::process::id(),
            litebroker::id::now_ns() % 1_000_000
        ),
        ..PostgresOptions::default()
    };
    Some(Arc::new(PostgresConnector::new(&url, options).unwrap()))
}

#[test]
fn topics_subscriptions_round_robin_and_a_lost_member_on_postgres() {
    let Some(pg) = postgres() else { return };
    let connector: Arc<dyn Connector> = pg.clone();
    let server = Server::over(
        connector,
        Path::new("/nonexistent"),
        Config {
            grace: Duration::from_millis(20),
            ..Config::default()
        },
    );
    let mut c = server.client();
    c.create_topic("pg");
    assert!(c
        .refused(Kind::CreateTopic, &[("topic", "pg")], b"")
        .contains("already exists"));
    c.create_subscription("crew", "pg", "0");
    // A member with manual acks takes some and vanishes without acking.
    let mut doomed = server.client();
    doomed.subscribe("crew", "doomed", &[("ack", "manual")]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.publish("pg", b"first"), 0);
    let lost = doomed.data(PATIENCE).unwrap();
    assert_eq!(text(&lost), "first");
    doomed.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(doomed);
    // Three members share the rest round-robin; the lost one comes back to one of them.
    let mut members: Vec<_> = (0..3)
        .map(|i| {
            let mut m = server.client();
            m.subscribe("crew", &format!("m{i}"), &[]);
            m
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for i in 1..=30 {
        assert_eq!(c.publish("pg", format!("n{i}").as_bytes()), i);
    }
    let mut seen = BTreeSet::new();
    for m in members.iter_mut() {
        while let Some(d) = m.data(Duration::from_millis(500)) {
            assert!(seen.insert(d.seq), "{} twice", d.seq);
        }
    }
    assert_eq!(seen, (0..=30).collect::<BTreeSet<u64>>(), "nothing lost");
    drop(members);
    drop(c);
    server.stop();
    pg.drop_schema().unwrap();
}
