//! The dashboard's page, assets and `/v1/dashboard/` routes, on a real
//! server (127.0.0.1, ephemeral port) driven over HTTP. The page itself is
//! tested in a real browser by crates/broker-cli/tests/dashboard.rs.

mod common;

use std::time::{Duration, Instant};

use common::{bodies, code, TestServer};
use litebroker::message::Filter;
use litebroker::{Headers, QueueConfig};
use serde_json::Value;

const KEYS: &str = r#"{
    "k-admin": {"description": "admin", "queues": {"*": ["read", "write", "delete", "manage"]}},
    "k-orders": {"description": "orders reader", "queues": {"orders.*": ["read"]}},
    "k-nothing": {"description": "no grants", "queues": {}}
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_carry_a_strict_policy() {
    let s = TestServer::start(Some(KEYS)).await;
    let mut total = 0;
    for (path, kind) in [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        // No key: the page holds no data.
        let resp = s.req("GET", path).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers().clone();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let body = resp.text().await.unwrap();
        if path != "/index.html" {
            total += body.len();
        }
        if kind == "text/html" {
            // Script only from a file, never inline, no inline handlers.
            assert!(!body.contains("<script>"), "{path}");
            assert!(!body.contains(" onclick="), "{path}");
            assert!(!body.contains("style="), "{path}");
        }
        if kind == "text/javascript" {
            assert!(!body.contains("innerHTML"), "bodies go in as text only");
            assert!(!body.contains("eval("));
        }
    }
    assert!(total < 100 * 1024, "first page is {total} bytes");
    let (status, _) = s.call("GET", "/assets/other.js", None, None).await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_needs_a_key_and_keeps_to_what_it_may_read() {
    let s = TestServer::start(Some(KEYS)).await;
    let mut b = s.broker();
    let config = QueueConfig {
        max_receives: Some(1),
        dead_letter: Some("orders.dlq".into()),
        ..QueueConfig::default()
    };
    b.configure_queue("orders.eu", &config).unwrap();
    b.queue("orders.eu").unwrap().write("order 1").unwrap();
    b.queue("orders.dlq").unwrap().write("dead one").unwrap();
    b.queue("billing").unwrap().write("invoice").unwrap();
    let id = b.queue("billing").unwrap().write("invoice 2").unwrap();

    let routes = [
        ("GET", "/v1/dashboard/overview".to_owned()),
        ("GET", "/v1/dashboard/topics".to_owned()),
        ("GET", "/v1/dashboard/queues/billing/messages".to_owned()),
        (
            "GET",
            format!("/v1/dashboard/queues/billing/messages/{id}?seq=1"),
        ),
        (
            "DELETE",
            format!("/v1/dashboard/queues/billing/messages/{id}"),
        ),
    ];
    for (method, path) in &routes {
        let (status, body) = s.call(method, path, None, None).await;
        assert_eq!(status, 401, "{method} {path}");
        assert_eq!(code(&body), "unauthorized");
        let (status, _) = s.call(method, path, Some("k-wrong"), None).await;
        assert_eq!(status, 401, "{method} {path}");
    }
    assert_eq!(
        s.status_only("GET", "/v1/dashboard/stream", None).await,
        401
    );

    // The orders reader sees orders.* only.
    let (status, o) = s
        .call("GET", "/v1/dashboard/overview", Some("k-orders"), None)
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = o["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders.dlq", "orders.eu"]);
    assert_eq!(o["totals"]["queues"], 2);
    assert_eq!(o["totals"]["pending"], 2);
    let eu = &o["queues"][1];
    assert_eq!(eu["dead_letters"], 1);
    assert_eq!(eu["dead_letter_queue"], "orders.dlq");
    assert_eq!(o["queues"][0]["is_dead_letter_queue"], true);
    assert!(eu["oldest_ms"].as_i64().unwrap() <= o["now_ms"].as_i64().unwrap());
    assert!(o["version"].as_str().unwrap().starts_with("0."));
    for (method, path) in &routes[2..] {
        let (status, body) = s.call(method, path, Some("k-orders"), None).await;
        assert_eq!(status, 403, "{method} {path}");
        assert!(!body.to_string().contains("invoice"));
    }
    // Reading is not deleting.
    let (_, page) = s
        .call(
            "GET",
            "/v1/dashboard/queues/orders.eu/messages",
            Some("k-orders"),
            None,
        )
        .await;
    let mid = page["messages"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = s
        .call(
            "DELETE",
            &format!("/v1/dashboard/queues/orders.eu/messages/{mid}"),
            Some("k-orders"),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // A key with no grants sees an empty dashboard, not an error.
    let (status, o) = s
        .call("GET", "/v1/dashboard/overview", Some("k-nothing"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(o["queues"], Value::Array(vec![]));
    assert_eq!(o["totals"]["pending"], 0);

    // The admin sees everything.
    let (_, o) = s
        .call("GET", "/v1/dashboard/overview", Some("k-admin"), None)
        .await;
    assert_eq!(o["queues"].as_array().unwrap().len(), 3);
    assert_eq!(o["totals"]["pending"], 4);
    assert_eq!(o["totals"]["dead_letters"], 1);
    // Overviews share reads of the database, but never one older than the request.
    b.queue("billing").unwrap().write("invoice 3").unwrap();
    let (_, o) = s
        .call("GET", "/v1/dashboard/overview", Some("k-admin"), None)
        .await;
    assert_eq!(o["totals"]["pending"], 5);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_in_pages_with_every_state_and_bad_input_refused() {
    let s = TestServer::start(None).await;
    let mut b = s.broker();
    let long = "x".repeat(300);
    let mut q = b.queue("work").unwrap();
    let ids: Vec<i64> = ["a", &long, "c", "d", "e"]
        .iter()
        .map(|body| q.write(body).unwrap())
        .collect();
    q.write_with("later", &Headers::new(), Some(Duration::from_secs(3600)))
        .unwrap();
    let leased = q.lease(&Filter::all(), 1, None).unwrap();
    assert_eq!(leased[0].id, ids[0]);
    drop(q);

    let base = "/v1/dashboard/queues/work/messages";
    let (status, p1) = s.call("GET", &format!("{base}?limit=4"), None, None).await;
    assert_eq!(status, 200, "{p1}");
    let m = p1["messages"].as_array().unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m[0]["id"], ids[0].to_string(), "ids as strings, exact");
    assert_eq!(m[0]["state"], "leased");
    assert_eq!(m[0]["receives"], 1);
    assert!(m[0]["visible_at_ms"].as_i64().is_some());
    assert_eq!(m[1]["state"], "visible");
    assert_eq!(m[1]["truncated"], true);
    assert_eq!(m[1]["body"].as_str().unwrap().len(), 200);
    assert_eq!(m[1]["bytes"], 300);
    let next = p1["next"].as_i64().expect("a next page");
    let (_, p2) = s
        .call("GET", &format!("{base}?limit=4&after={next}"), None, None)
        .await;
    let m2 = p2["messages"].as_array().unwrap();
    assert_eq!(m2.len(), 2);
    assert_eq!(m2[0]["body"], "e");
    assert_eq!(m2[1]["body"], "later");
    assert_eq!(m2[1]["state"], "delayed");
    assert_eq!(p2["next"], Value::Null);

    // The whole body of one message, found by position and checked by id.
    let seq = m[1]["seq"].as_i64().unwrap();
    let one = format!("{base}/{}?seq={seq}", ids[1]);
    let (status, full) = s.call("GET", &one, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(full["body"], long.as_str());
    assert_eq!(full["truncated"], false);
    let (status, _) = s
        .call("GET", &format!("{base}/{}?seq={seq}", ids[2]), None, None)
        .await;
    assert_eq!(status, 404, "another id at that position");

    // Delete one visible message; a leased one is not deleted.
    let del = |id: i64| format!("{base}/{id}");
    let (status, body) = s.call("DELETE", &del(ids[1]), None, None).await;
    assert_eq!((status, body["deleted"].clone()), (200, Value::Bool(true)));
    let (status, _) = s.call("DELETE", &del(ids[1]), None, None).await;
    assert_eq!(status, 404);
    let (status, _) = s.call("GET", &one, None, None).await;
    assert_eq!(status, 404);
    let (status, _) = s.call("DELETE", &del(ids[0]), None, None).await;
    assert_eq!(status, 404, "leased");

    for bad in [
        format!("{base}?limit=0"),
        format!("{base}?limit=501"),
        format!("{base}?limit=ten"),
        format!("{base}?after=x"),
        format!("{base}?sort=newest"),
        format!("{base}/abc?seq=1"),
        format!("{base}/-5?seq=1"),
        format!("{base}/{}?seq=0", ids[2]),
        format!("{base}/{}", ids[2]),
        "/v1/dashboard/queues/bad%00name/messages".to_owned(),
    ] {
        let (status, body) = s.call("GET", &bad, None, None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = s.call("DELETE", &format!("{base}/1e9"), None, None).await;
    assert_eq!(status, 400);
    // Nothing changed.
    let (_, all) = s
        .call("GET", &format!("{base}?limit=500"), None, None)
        .await;
    assert_eq!(all["messages"].as_array().unwrap().len(), 5);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_subscriptions_with_their_lag() {
    let s = TestServer::start(Some(KEYS)).await;
    let (status, _) = s
        .call(
            "POST",
            "/v1/subscriptions",
            Some("k-admin"),
            Some(serde_json::json!({"name": "orders.audit", "pattern": "orders.+"})),
        )
        .await;
    assert_eq!(status, 200);
    for _ in 0..3 {
        let (status, _) = s
            .call(
                "POST",
                "/v1/topics/orders.created/publish",
                Some("k-admin"),
                Some(serde_json::json!({"body": "o"})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, t) = s
        .call("GET", "/v1/dashboard/topics", Some("k-orders"), None)
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["topics"][0]["topic"], "orders.created");
    assert_eq!(t["topics"][0]["retained"], 3);
    assert_eq!(t["subscriptions"][0]["name"], "orders.audit");
    assert_eq!(t["subscriptions"][0]["lag"], 3);
    let (_, t) = s
        .call("GET", "/v1/dashboard/topics", Some("k-nothing"), None)
        .await;
    assert_eq!(t["topics"], Value::Array(vec![]));
    assert_eq!(t["subscriptions"], Value::Array(vec![]));
    s.stop().await;
}

/// Reads SSE events from `resp` until one named `overview` satisfies `want`
/// (at most `limit`).
async fn overview_until(
    resp: &mut reqwest::Response,
    buf: &mut String,
    limit: Duration,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = "";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if event == "overview" {
                let v: Value = serde_json::from_str(&data).unwrap();
                if want(&v) {
                    return v;
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .expect("an overview in time")
            .unwrap()
            .expect("the stream goes on");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

fn has_queue(v: &Value, name: &str) -> bool {
    v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .any(|q| q["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_follows_writes_and_ends_at_shutdown() {
    let s = TestServer::start(Some(KEYS)).await;
    let mut resp = s
        .req("GET", "/v1/dashboard/stream")
        .header("X-API-Key", "k-orders")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    let first = overview_until(&mut resp, &mut buf, Duration::from_secs(10), |_| true).await;
    assert_eq!(first["queues"], Value::Array(vec![]));
    // Another process writes: the stream shows it, well before its
    // five-second refresh would.
    let mut b = s.broker();
    b.queue("billing").unwrap().write("hidden").unwrap();
    b.queue("orders.eu").unwrap().write("shown").unwrap();
    let seen = overview_until(&mut resp, &mut buf, Duration::from_secs(4), |v| {
        has_queue(v, "orders.eu")
    })
    .await;
    assert!(!has_queue(&seen, "billing"), "{seen}");
    assert_eq!(seen["totals"]["pending"], 1);
    // Shutdown ends the stream.
    let stop = tokio::spawn(s.stop());
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while resp.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ended at shutdown");
    stop.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_sees_no_more_of_the_stream() {
    let s = TestServer::start_with(Some(KEYS), |c| c.keys_in_database = true).await;
    let (status, made) = s
        .call(
            "POST",
            "/v1/keys",
            Some("k-admin"),
            Some(serde_json::json!({"name": "viewer", "allow": ["orders.*=read"]})),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let secret = made["secret"].as_str().unwrap().to_owned();
    let mut resp = s
        .req("GET", "/v1/dashboard/stream")
        .header("X-API-Key", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut buf = String::new();
    overview_until(&mut resp, &mut buf, Duration::from_secs(10), |_| true).await;
    let (status, _) = s
        .call("DELETE", "/v1/keys/viewer", Some("k-admin"), None)
        .await;
    assert_eq!(status, 200);
    // The next change (or refresh) ends the stream with an error event.
    s.broker()
        .queue("orders.eu")
        .unwrap()
        .write("after")
        .unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(15), async {
        let mut rest = buf.clone();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            rest.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        rest
    })
    .await
    .expect("the stream ended");
    assert!(rest.contains("event: error"), "{rest}");
    assert!(rest.contains("unauthorized"), "{rest}");
    assert!(
        !rest.contains("orders.eu"),
        "nothing after the revocation: {rest}"
    );
    assert_eq!(
        s.status_only("GET", "/v1/dashboard/stream", Some(&secret))
            .await,
        401
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_pages_newest_first_too() {
    let s = TestServer::start(None).await;
    let mut b = s.broker();
    let mut q = b.queue("recent").unwrap();
    for body in ["a", "b", "c", "d", "e"] {
        q.write(body).unwrap();
    }
    drop(q);
    let base = "/v1/dashboard/queues/recent/messages";
    let (status, p1) = s
        .call("GET", &format!("{base}?order=newest&limit=2"), None, None)
        .await;
    assert_eq!(status, 200, "{p1}");
    assert_eq!(bodies(&p1), ["e", "d"]);
    let next = p1["next"].as_i64().unwrap();
    let (_, p2) = s
        .call(
            "GET",
            &format!("{base}?order=newest&limit=2&before={next}"),
            None,
            None,
        )
        .await;
    assert_eq!(bodies(&p2), ["c", "b"]);
    let next = p2["next"].as_i64().unwrap();
    let (_, p3) = s
        .call(
            "GET",
            &format!("{base}?order=newest&limit=2&before={next}"),
            None,
            None,
        )
        .await;
    assert_eq!(bodies(&p3), ["a"]);
    assert_eq!(p3["next"], Value::Null);
    let (_, oldest) = s
        .call("GET", &format!("{base}?order=oldest&limit=2"), None, None)
        .await;
    assert_eq!(bodies(&oldest), ["a", "b"]);
    for bad in [
        format!("{base}?order=newest&after=1"),
        format!("{base}?before=5"),
        format!("{base}?order=sideways"),
        format!("{base}?order=newest&before=0"),
        format!("{base}?order=newest&before=-3"),
        format!("{base}?after=1&before=5"),
        format!("{base}?after=-1"),
    ] {
        let (status, body) = s.call("GET", &bad, None, None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_shows_the_members_streaming_from_it() {
    let s = TestServer::start(None).await;
    let (status, _) = s
        .call(
            "POST",
            "/v1/subscriptions",
            None,
            Some(serde_json::json!({"name": "jobs.audit", "pattern": "jobs.+"})),
        )
        .await;
    assert_eq!(status, 200);
    let http = |t: &Value| t["subscriptions"][0]["connected"]["http"].as_u64();
    let t = s
        .get_until("/v1/dashboard/topics", None, |t| http(t) == Some(0))
        .await;
    assert_eq!(t["subscriptions"][0]["connected"]["tcp"], 0);
    let one = s
        .req("GET", "/v1/queues/jobs.audit/events")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let two = s
        .req("GET", "/v1/queues/jobs.audit/events")
        .send()
        .await
        .unwrap();
    s.get_until("/v1/dashboard/topics", None, |t| http(t) == Some(2))
        .await;
    drop(one);
    s.get_until("/v1/dashboard/topics", None, |t| http(t) == Some(1))
        .await;
    drop(two);
    s.get_until("/v1/dashboard/topics", None, |t| http(t) == Some(0))
        .await;
    s.stop().await;
}

/// The sum of one series of a queue's (or the total's) traffic.
fn sum(traffic: &Value, which: &str) -> u64 {
    traffic[which]
        .as_array()
        .map_or(0, |a| a.iter().map(|n| n.as_u64().unwrap()).sum())
}

fn queue<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_counts_messages_in_and_out_whoever_moves_them() {
    let s = TestServer::start_with(Some(KEYS), |c| {
        // 60 intervals of 200 ms: what happens is seen for 12 s.
        c.traffic_every = Duration::from_millis(200)
    })
    .await;
    let admin = Some("k-admin");
    s.get_until("/v1/dashboard/overview", admin, |v| {
        v["traffic"]["ends_ms"].is_array()
    })
    .await;
    // Through the library (as the CLI would) and through the API.
    {
        let mut b = s.broker();
        let mut q = b.queue("flow").unwrap();
        for i in 0..5 {
            q.write(&format!("m{i}")).unwrap();
        }
        for _ in 0..3 {
            q.read().unwrap().unwrap();
        }
        b.queue("orders.new").unwrap().write("o1").unwrap();
    }
    let (status, _) = s
        .call(
            "POST",
            "/v1/queues/orders.new/messages",
            admin,
            Some(serde_json::json!({"body": "o2"})),
        )
        .await;
    assert_eq!(status, 200);
    let v = s
        .get_until("/v1/dashboard/overview", admin, |v| {
            let flow = &queue(v, "flow")["traffic"];
            sum(flow, "in") == 5
                && sum(flow, "out") == 3
                && sum(&queue(v, "orders.new")["traffic"], "in") == 2
        })
        .await;
    let ends = v["traffic"]["ends_ms"].as_array().unwrap().len();
    assert_eq!(
        queue(&v, "flow")["traffic"]["in"].as_array().unwrap().len(),
        ends
    );
    assert!(v["traffic"]["start_ms"].as_i64().unwrap() <= v["now_ms"].as_i64().unwrap());
    assert_eq!(sum(&v["total_traffic"], "in"), 7);
    assert_eq!(sum(&v["total_traffic"], "out"), 3);
    // A key sees the traffic of what it may read only, totals included.
    let v = s
        .get_until("/v1/dashboard/overview", Some("k-orders"), |v| {
            v["traffic"].is_object()
        })
        .await;
    assert!(queue(&v, "flow").is_null());
    assert_eq!(sum(&v["total_traffic"], "in"), 2);
    assert_eq!(sum(&v["total_traffic"], "out"), 0);
    s.stop().await;
}
