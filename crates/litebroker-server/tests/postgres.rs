//! `broker serve`'s HTTP API and dashboard routes on PostgreSQL: the server
//! takes any connector. Runs when BROKER_TEST_POSTGRES_URL names a server
//! (scripts/test.sh starts one and sets LITEBROKER_REQUIRE_POSTGRES=1, under
//! which a missing URL fails).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bodies, code, TestServer};
use litebroker::backend::postgres::{PostgresConnector, PostgresOptions};
use litebroker::Connector;
use serde_json::{json, Value};

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
            "lbhttp_{}_{}",
            std::process::id(),
            litebroker::id::now_ns() % 1_000_000_000
        ),
        ..PostgresOptions::default()
    };
    Some(Arc::new(PostgresConnector::new(&url, options).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_the_dashboard_on_postgresql() {
    let Some(pg) = postgres() else { return };
    let connector: Arc<dyn Connector> = pg.clone();
    let s = TestServer::start_over(connector, tempfile::tempdir().unwrap(), None, |c| {
        c.traffic_every = Duration::from_millis(200)
    })
    .await;
    s.get_until("/v1/dashboard/overview", None, |v| v["traffic"].is_object())
        .await;

    // A long-poll is woken by a write (LISTEN/NOTIFY), not by its timeout.
    let waiter = {
        let client = s.client.clone();
        let url = format!("{}/v1/queues/work/read?wait=10s", s.url);
        tokio::spawn(async move {
            let began = Instant::now();
            let v: Value = client.post(url).send().await.unwrap().json().await.unwrap();
            (v, began.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/work/messages",
            None,
            Some(json!({"messages": [{"body": "first"}, {"body": "second"}, {"body": "third"}, {"body": "<b>fourth</b>"}]})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (got, took) = waiter.await.unwrap();
    assert_eq!(bodies(&got), ["first"]);
    assert!(
        took < Duration::from_secs(9),
        "woken by the write: {took:?}"
    );

    // Lease and ack; the acked receipt is gone.
    let (_, leased) = s
        .call("POST", "/v1/queues/work/lease?visibility=30s", None, None)
        .await;
    assert_eq!(bodies(&leased), ["second"]);
    let receipt = leased["messages"][0]["receipt"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, _) = s
        .call(
            "POST",
            "/v1/queues/work/ack",
            None,
            Some(json!({"receipts": [receipt]})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/work/nack",
            None,
            Some(json!({"receipt": receipt})),
        )
        .await;
    assert_eq!((st, code(&body)), (404, "not_found"), "{body}");

    // The dashboard: traffic in and out, both orders, peek, delete.
    let v = s
        .get_until("/v1/dashboard/overview", None, |v| {
            let q = v["queues"]
                .as_array()
                .unwrap()
                .iter()
                .find(|q| q["name"] == "work");
            let sum = |which: &str| -> u64 {
                q.and_then(|q| q["traffic"][which].as_array())
                    .map_or(0, |a| a.iter().map(|n| n.as_u64().unwrap()).sum())
            };
            sum("in") == 4 && sum("out") == 2
        })
        .await;
    assert_eq!(v["totals"]["pending"], 2);
    let base = "/v1/dashboard/queues/work/messages";
    let (_, newest) = s
        .call("GET", &format!("{base}?order=newest&limit=1"), None, None)
        .await;
    assert_eq!(bodies(&newest), ["<b>fourth</b>"]);
    let next = newest["next"].as_i64().unwrap();
    let (_, older) = s
        .call(
            "GET",
            &format!("{base}?order=newest&before={next}"),
            None,
            None,
        )
        .await;
    assert_eq!(bodies(&older), ["third"]);
    let m = &newest["messages"][0];
    let (st, full) = s
        .call(
            "GET",
            &format!("{base}/{}?seq={}", m["id"].as_str().unwrap(), m["seq"]),
            None,
            None,
        )
        .await;
    assert_eq!((st, full["body"].clone()), (200, json!("<b>fourth</b>")));
    let (st, _) = s
        .call(
            "DELETE",
            &format!("{base}/{}", m["id"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (_, left) = s.call("GET", base, None, None).await;
    assert_eq!(bodies(&left), ["third"]);

    // Dead letters: source and reason, then a redrive.
    let (st, _) = s
        .call(
            "PUT",
            "/v1/queues/jobs/config",
            None,
            Some(json!({"max_receives": 1, "dead_letter": "jobs.dlq"})),
        )
        .await;
    assert_eq!(st, 200);
    s.call(
        "POST",
        "/v1/queues/jobs/messages",
        None,
        Some(json!({"body": "job"})),
    )
    .await;
    let (_, leased) = s.call("POST", "/v1/queues/jobs/lease", None, None).await;
    let receipt = leased["messages"][0]["receipt"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, nacked) = s
        .call(
            "POST",
            "/v1/queues/jobs/nack",
            None,
            Some(json!({"receipt": receipt})),
        )
        .await;
    assert_eq!(nacked["outcome"], "dead_lettered", "{nacked}");
    let v = s
        .get_until("/v1/dashboard/overview", None, |v| {
            v["totals"]["dead_letters"] == 1
        })
        .await;
    let jobs = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "jobs")
        .unwrap();
    assert_eq!(jobs["dead_letters"], 1);
    let (_, dead) = s
        .call("GET", "/v1/dashboard/queues/jobs.dlq/messages", None, None)
        .await;
    assert_eq!(dead["messages"][0]["dead_letter_source"], "jobs");
    assert!(dead["messages"][0]["dead_letter_reason"].is_string());
    let (st, moved) = s
        .call("POST", "/v1/queues/jobs.dlq/redrive", None, Some(json!({})))
        .await;
    assert_eq!((st, moved["moved"].clone()), (200, json!(1)), "{moved}");

    // Topics: a subscription's lag and the members streaming from it.
    let (st, _) = s
        .call(
            "POST",
            "/v1/subscriptions",
            None,
            Some(json!({"name": "audit", "pattern": "orders.+"})),
        )
        .await;
    assert_eq!(st, 200);
    s.call(
        "POST",
        "/v1/topics/orders.new/publish",
        None,
        Some(json!({"body": "o"})),
    )
    .await;
    let t = s
        .get_until("/v1/dashboard/topics", None, |t| {
            t["subscriptions"][0]["lag"] == 1
        })
        .await;
    assert_eq!(
        t["subscriptions"][0]["connected"],
        json!({"http": 0, "tcp": 0})
    );
    let member = s
        .req("GET", "/v1/queues/audit/events")
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), 200);
    s.get_until("/v1/dashboard/topics", None, |t| {
        t["subscriptions"][0]["connected"]["http"] == 1
    })
    .await;
    drop(member);
    s.get_until("/v1/dashboard/topics", None, |t| {
        t["subscriptions"][0]["connected"]["http"] == 0
    })
    .await;
    s.stop().await;
    tokio::task::block_in_place(|| pg.drop_schema()).unwrap();
}

/// The group committer on PostgreSQL: concurrent readers and lease + ack
/// workers share transactions, and every message goes to exactly one of
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_reads_leases_and_acks_deliver_each_message_once_on_postgresql() {
    let Some(pg) = postgres() else { return };
    let connector: Arc<dyn Connector> = pg.clone();
    let s = TestServer::start_over(connector, tempfile::tempdir().unwrap(), None, |_| {}).await;
    let all: Vec<String> = (0..600).map(|i| format!("m{i}")).collect();
    for queue in ["grouped", "leased"] {
        let msgs: Vec<Value> = all.iter().map(|b| json!({"body": b})).collect();
        let (status, body) = s
            .call(
                "POST",
                &format!("/v1/queues/{queue}/messages"),
                None,
                Some(json!({"messages": msgs})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut tasks = Vec::new();
    for w in 0..24usize {
        let client = reqwest::Client::new();
        let base = s.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let lease = w % 2 == 1;
                let url = if lease {
                    format!("{base}/v1/queues/leased/lease?limit={}", 1 + w % 3)
                } else {
                    format!("{base}/v1/queues/grouped/read?limit={}", 1 + w % 3)
                };
                let resp = client.post(&url).send().await.unwrap();
                assert_eq!(resp.status().as_u16(), 200);
                let got: Value = resp.json().await.unwrap();
                let messages = got["messages"].as_array().unwrap().clone();
                if messages.is_empty() {
                    return mine;
                }
                if lease {
                    let receipts: Vec<&str> = messages
                        .iter()
                        .map(|m| m["receipt"].as_str().unwrap())
                        .collect();
                    let resp = client
                        .post(format!("{base}/v1/queues/leased/ack"))
                        .json(&json!({"receipts": receipts}))
                        .send()
                        .await
                        .unwrap();
                    let out: Value = resp.json().await.unwrap();
                    for r in out["results"].as_array().unwrap() {
                        assert_eq!(r["ok"], json!(true), "{r}");
                    }
                }
                let queue = if lease { "leased" } else { "grouped" };
                mine.extend(
                    messages
                        .iter()
                        .map(|m| format!("{queue}/{}", m["body"].as_str().unwrap())),
                );
            }
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        for m in t.await.unwrap() {
            assert!(seen.insert(m.clone()), "{m} delivered twice");
        }
    }
    assert_eq!(seen.len(), 2 * all.len(), "every message delivered");
    for queue in ["grouped", "leased"] {
        let (_, stats) = s
            .call("GET", &format!("/v1/queues/{queue}"), None, None)
            .await;
        assert_eq!(stats["pending"], 0, "{stats}");
        assert_eq!(stats["leased"], 0, "{stats}");
    }
    s.stop().await;
    tokio::task::block_in_place(|| pg.drop_schema()).unwrap();
}
