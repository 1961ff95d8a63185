//! The TCP protocol and the `broker` command line on one database: the same
//! topics, the same subscriptions, both ways.

mod common;

use common::{broker, text, Server, PATIENCE};
use litebroker_tcp::frame::Kind;

#[test]
fn what_tcp_publishes_the_broker_cli_reads_and_the_other_way_round() {
    let server = Server::start();
    let db = server.path.clone();
    let mut c = server.client();

    // TCP creates and publishes; the CLI sees the topic and reads the subscription.
    c.create_topic("orders");
    c.create_subscription("billing", "orders", "0");
    c.ok(
        Kind::Publish,
        &[("topic", "orders"), ("client_id", "shop"), ("sku", "A-1")],
        b"order 1",
    );
    let topics = broker(&db, &["topics"]);
    assert!(topics.contains("orders"), "{topics}");
    let subs = broker(&db, &["subscriptions"]);
    assert!(subs.contains("billing"), "{subs}");
    assert_eq!(broker(&db, &["read", "billing"]), "order 1\n");

    // The CLI publishes (with a header); a TCP member gets it as DATA.
    c.create_subscription("shipping", "orders", "latest");
    let mut m = server.client();
    m.subscribe("shipping", "truck", &[]);
    broker(&db, &["publish", "orders", "order 2", "-H", "sku=B-2"]);
    let d = m.data(PATIENCE).expect("DATA from a CLI publish");
    assert_eq!(text(&d), "order 2");
    assert_eq!(d.seq, 1, "the topic offset");
    assert_eq!(d.properties.get("topic"), Some("orders"));
    assert_eq!(d.properties.get("subscription_id"), Some("shipping"));
    assert_eq!(d.properties.get("sku"), Some("B-2"));

    // A subscription made by the CLI can be joined over TCP.
    broker(&db, &["subscribe", "audit", "orders", "--from", "earliest"]);
    let mut a = server.client();
    a.subscribe("audit", "auditor", &[]);
    let got: Vec<String> = (0..2).map(|_| text(&a.data(PATIENCE).unwrap())).collect();
    assert_eq!(got, ["order 1", "order 2"]);

    // A topic the CLI published to exists for TCP publishers.
    broker(&db, &["publish", "cli.made", "first"]);
    assert_eq!(c.publish("cli.made", b"second"), 1);
    assert!(c
        .refused(Kind::CreateTopic, &[("topic", "cli.made")], b"")
        .contains("already exists"));
}
