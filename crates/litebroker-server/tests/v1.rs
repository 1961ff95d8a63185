//! litebroker's own API over a real HTTP connection: writes, peeks,
//! leases, acks, nacks, extends, long-polls woken by the change feed,
//! publish fan-out, subscriptions, health, readiness, metrics, OpenAPI.

mod common;

use std::time::{Duration, Instant};

use common::{code, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_peek_lease_ack_nack_extend() {
    let s = TestServer::start(None).await;
    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/jobs/messages",
            None,
            Some(json!({"messages": [
                {"body": "a", "headers": {"n": 1, "who": "x"}},
                {"body": "b"},
                {"body": "later", "delay": "1h"}
            ]})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let ids = body["ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 3);
    let (_, peeked) = s
        .call("GET", "/v1/queues/jobs/messages?limit=10", None, None)
        .await;
    let bodies: Vec<&str> = peeked["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["a", "b"]);
    assert_eq!(
        peeked["messages"][0]["headers"],
        json!({"n": 1, "who": "x"})
    );
    let since = format!("/v1/queues/jobs/messages?since={}", ids[0]);
    let (_, after) = s.call("GET", &since, None, None).await;
    assert_eq!(after["messages"].as_array().unwrap().len(), 1);

    let (_, leased) = s
        .call(
            "POST",
            "/v1/queues/jobs/lease?limit=2&visibility=30s",
            None,
            None,
        )
        .await;
    let leased = leased["messages"].as_array().unwrap().clone();
    assert_eq!(leased.len(), 2);
    assert_eq!(leased[0]["receives"], 1);
    let r0 = leased[0]["receipt"].as_str().unwrap().to_owned();
    let r1 = leased[1]["receipt"].as_str().unwrap().to_owned();
    let (_, stats) = s.call("GET", "/v1/queues/jobs", None, None).await;
    assert_eq!(
        (
            stats["pending"].clone(),
            stats["leased"].clone(),
            stats["delayed"].clone()
        ),
        (json!(0), json!(2), json!(1))
    );

    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/jobs/extend",
            None,
            Some(json!({"receipt": r1, "visibility": "1m"})),
        )
        .await;
    assert_eq!((st, body["extended"].clone()), (200, json!(true)));
    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/jobs/nack",
            None,
            Some(json!({"receipt": r1})),
        )
        .await;
    assert_eq!((st, body["outcome"].clone()), (200, json!("requeued")));
    // The nacked receipt is over: extend and nack refuse it.
    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/jobs/nack",
            None,
            Some(json!({"receipt": r1})),
        )
        .await;
    assert_eq!((st, code(&body)), (409, "stale_receipt"), "{body}");

    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/jobs/ack",
            None,
            Some(json!({"receipts": [r0, r1]})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["results"][0]["ok"], true);
    assert_eq!(body["results"][1]["ok"], false);
    assert_eq!(body["results"][1]["error"], "stale_receipt");

    let (_, read) = s
        .call("POST", "/v1/queues/jobs/read?limit=5", None, None)
        .await;
    let bodies: Vec<&str> = read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["b"]);
    let (_, read) = s.call("POST", "/v1/queues/jobs/read", None, None).await;
    assert_eq!(read["messages"], json!([]));
    let (st, body) = s.call("DELETE", "/v1/queues/jobs", None, None).await;
    assert_eq!((st, body["deleted"].clone()), (200, json!(3)));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_a_write_from_another_connection() {
    let s = TestServer::start(None).await;
    let url = format!("{}/v1/queues/wake/lease?wait=15s", s.url);
    let client = s.client.clone();
    let started = Instant::now();
    let poll = tokio::spawn(async move {
        let resp = client.post(url).send().await.unwrap();
        resp.json::<serde_json::Value>().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Written by another connection, as a CLI `broker write` would.
    let connector = s.connector.clone();
    tokio::task::spawn_blocking(move || {
        let mut b = litebroker::Broker::connect(connector).unwrap();
        b.queue("wake").unwrap().write("hello").unwrap();
    })
    .await
    .unwrap();
    let got = poll.await.unwrap();
    assert_eq!(got["messages"][0]["body"], "hello", "{got}");
    // Woken, not timed out: well before the 15 s wait ran out.
    assert!(started.elapsed() < Duration::from_secs(14));

    // A delayed message wakes a long-poll when its delay ends (no commit announces it).
    let (st, _) = s
        .call(
            "POST",
            "/v1/queues/wake/messages",
            None,
            Some(json!({"body": "soon", "delay": "500ms"})),
        )
        .await;
    assert_eq!(st, 200);
    let (_, got) = s
        .call("POST", "/v1/queues/wake/read?wait=10s", None, None)
        .await;
    assert_eq!(got["messages"][0]["body"], "soon", "{got}");

    // A wait that runs out answers empty.
    let (st, got) = s
        .call("POST", "/v1/queues/wake/lease?wait=200ms", None, None)
        .await;
    assert_eq!((st, got["messages"].clone()), (200, json!([])));
    let (st, body) = s
        .call("POST", "/v1/queues/wake/lease?wait=21s", None, None)
        .await;
    assert_eq!((st, code(&body)), (400, "invalid_input"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_fans_out_to_subscriptions() {
    let s = TestServer::start(None).await;
    for (name, pattern) in [("all-orders", "orders.+"), ("eu-orders", "orders.eu")] {
        let (st, body) = s
            .call(
                "POST",
                "/v1/subscriptions",
                None,
                Some(json!({"name": name, "pattern": pattern})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
    }
    let (st, body) = s
        .call(
            "POST",
            "/v1/subscriptions",
            None,
            Some(json!({"name": "eu-orders", "pattern": "x"})),
        )
        .await;
    assert_eq!((st, code(&body)), (409, "conflict"));
    let (_, body) = s
        .call(
            "POST",
            "/v1/topics/orders.eu/publish",
            None,
            Some(json!({"body": "o1", "headers": {"k": true}})),
        )
        .await;
    assert_eq!(
        (body["offset"].clone(), body["delivered"].clone()),
        (json!(0), json!(2))
    );
    let (_, body) = s
        .call(
            "POST",
            "/v1/topics/orders.us/publish",
            None,
            Some(json!({"body": "o2"})),
        )
        .await;
    assert_eq!(body["delivered"], 1);
    let (_, subs) = s.call("GET", "/v1/subscriptions", None, None).await;
    assert_eq!(
        subs["subscriptions"][0],
        json!({"name": "all-orders", "pattern": "orders.+", "depth": 2})
    );
    let (_, got) = s
        .call("POST", "/v1/queues/eu-orders/read", None, None)
        .await;
    assert_eq!(got["messages"][0]["body"], "o1");
    assert_eq!(got["messages"][0]["topic"], "orders.eu");
    let (st, _) = s
        .call("DELETE", "/v1/subscriptions/eu-orders", None, None)
        .await;
    assert_eq!(st, 200);
    let (st, body) = s
        .call("DELETE", "/v1/subscriptions/eu-orders", None, None)
        .await;
    assert_eq!((st, code(&body)), (404, "not_found"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_openapi() {
    let s = TestServer::start(None).await;
    assert_eq!(s.call("GET", "/health", None, None).await.0, 200);
    assert_eq!(
        s.call("GET", "/ready", None, None).await.1,
        json!({"status": "ready"})
    );
    s.call(
        "POST",
        "/v1/queues/m/messages",
        None,
        Some(json!({"body": "x"})),
    )
    .await;
    let resp = s.req("GET", "/metrics").send().await.unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("litebroker_queue_depth{queue=\"m\"} 1"),
        "{text}"
    );
    assert!(text.contains(
        "litebroker_http_requests_total{method=\"POST\",route=\"/v1/queues/{queue}/messages\",status=\"200\"} 1"
    ), "{text}");
    assert!(
        text.contains(
            "litebroker_http_request_duration_seconds_bucket{method=\"GET\",route=\"/ready\""
        ),
        "{text}"
    );
    let (_, doc) = s.call("GET", "/openapi.json", None, None).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(
        doc["paths"]["/v1/queues/{queue}/lease"]["post"].is_object(),
        "{doc}"
    );
    assert!(doc["components"]["schemas"]["MessageOut"].is_object());
    // The dashboard's data routes are documented too.
    assert!(doc["paths"]["/v1/dashboard/overview"]["get"].is_object());
    assert!(doc["paths"]["/v1/dashboard/queues/{queue}/messages/{id}"]["delete"].is_object());
    assert!(doc["components"]["schemas"]["Overview"].is_object());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_dead_letters_redrive_move_and_aliases() {
    let s = TestServer::start(None).await;
    let (st, body) = s
        .call(
            "PUT",
            "/v1/queues/work/config",
            None,
            Some(json!({"visibility": "10s", "max_receives": 1, "dead_letter": "work.dlq"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (_, body) = s.call("GET", "/v1/queues/work/config", None, None).await;
    assert_eq!(
        body,
        json!({"visibility": "10s", "max_receives": 1, "dead_letter": "work.dlq"})
    );
    let (st, body) = s
        .call(
            "PUT",
            "/v1/queues/work/config",
            None,
            Some(json!({"max_receives": 2})),
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (400, "invalid_input"),
        "a maximum needs a dead-letter queue"
    );
    let (st, body) = s
        .call(
            "PUT",
            "/v1/queues/work/config",
            None,
            Some(json!({"dead_letter": "work"})),
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (400, "invalid_input"),
        "not its own dead-letter queue"
    );

    s.call(
        "POST",
        "/v1/queues/work/messages",
        None,
        Some(json!({"body": "job"})),
    )
    .await;
    let (_, leased) = s.call("POST", "/v1/queues/work/lease", None, None).await;
    let receipt = leased["messages"][0]["receipt"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = s
        .call(
            "POST",
            "/v1/queues/work/nack",
            None,
            Some(json!({"receipt": receipt})),
        )
        .await;
    assert_eq!(
        body,
        json!({"outcome": "dead_lettered", "dead_letter_queue": "work.dlq"})
    );
    let (_, dlq) = s
        .call("GET", "/v1/queues/work.dlq/messages", None, None)
        .await;
    assert_eq!(dlq["messages"][0]["dead_letter_source"], "work");
    let metrics = s
        .req("GET", "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("litebroker_queue_dead_letters{queue=\"work.dlq\"} 1"),
        "{metrics}"
    );
    let (_, body) = s
        .call("POST", "/v1/queues/work.dlq/redrive", None, Some(json!({})))
        .await;
    assert_eq!(body["moved"], 1);

    let (_, moved) = s
        .call(
            "POST",
            "/v1/queues/work/move",
            None,
            Some(json!({"to": "done", "limit": 5})),
        )
        .await;
    assert_eq!(moved["messages"][0]["body"], "job");
    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/done/move",
            None,
            Some(json!({"to": "done"})),
        )
        .await;
    assert_eq!((st, code(&body)), (400, "invalid_input"));

    let (st, _) = s
        .call(
            "POST",
            "/v1/aliases",
            None,
            Some(json!({"alias": "finished", "target": "done"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, body) = s
        .call(
            "POST",
            "/v1/aliases",
            None,
            Some(json!({"alias": "finished", "target": "work"})),
        )
        .await;
    assert_eq!((st, code(&body)), (409, "conflict"));
    let (_, body) = s.call("GET", "/v1/aliases", None, None).await;
    assert_eq!(
        body,
        json!({"aliases": [{"alias": "finished", "target": "done"}]})
    );
    let (st, _) = s.call("DELETE", "/v1/aliases/finished", None, None).await;
    assert_eq!(st, 200);
    let (st, body) = s.call("DELETE", "/v1/aliases/finished", None, None).await;
    assert_eq!((st, code(&body)), (404, "not_found"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_writes_once() {
    let s = TestServer::start(None).await;
    let send = |key: &'static str| {
        s.req("POST", "/v1/queues/idem/messages")
            .header("Idempotency-Key", key)
            .json(&json!({"messages": [{"body": "one"}, {"body": "two"}]}))
            .send()
    };
    let first: serde_json::Value = send("order-42").await.unwrap().json().await.unwrap();
    assert_eq!(first["repeated"], false);
    let again: serde_json::Value = send("order-42").await.unwrap().json().await.unwrap();
    assert_eq!(again["repeated"], true);
    assert_eq!(again["ids"], first["ids"]);
    let other: serde_json::Value = send("order-43").await.unwrap().json().await.unwrap();
    assert_eq!(other["repeated"], false);
    let (_, peeked) = s
        .call("GET", "/v1/queues/idem/messages?limit=100", None, None)
        .await;
    assert_eq!(peeked["messages"].as_array().unwrap().len(), 4);
    let long = "k".repeat(300);
    let resp = s
        .req("POST", "/v1/queues/idem/messages")
        .header("Idempotency-Key", long)
        .json(&json!({"body": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    s.stop().await;
}
