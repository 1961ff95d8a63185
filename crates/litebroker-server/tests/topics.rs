//! Topics over HTTP: listing, retention settings, request/reply.

mod common;

use std::time::Duration;

use common::{code, TestServer};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_set_read_and_applied() {
    let s = TestServer::start(None).await;
    let (st, body) = s
        .call(
            "PUT",
            "/v1/topics/logs.+/retention",
            None,
            Some(json!({"max_count": 2})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body, json!({"max_count": 2, "max_age": null}));
    let (st, body) = s
        .call("GET", "/v1/topics/logs.+/retention", None, None)
        .await;
    assert_eq!((st, body), (200, json!({"max_count": 2, "max_age": null})));

    for i in 0..5 {
        let (st, _) = s
            .call(
                "POST",
                "/v1/topics/logs.app/publish",
                None,
                Some(json!({"body": format!("l{i}")})),
            )
            .await;
        assert_eq!(st, 200);
    }
    let (st, body) = s.call("GET", "/v1/topics", None, None).await;
    assert_eq!(st, 200);
    let topic = body["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "logs.app")
        .cloned()
        .expect("logs.app listed");
    assert_eq!(topic["next_offset"], 5);
    assert_eq!(topic["retained"], 2, "{topic}");
    assert_eq!(topic["retention"]["max_count"], 2);

    // An age, then no bounds at all (the setting goes).
    let (st, body) = s
        .call(
            "PUT",
            "/v1/topics/logs.+/retention",
            None,
            Some(json!({"max_age": "7d"})),
        )
        .await;
    assert_eq!(
        (st, body["max_age"].as_str()),
        (200, Some("168h")),
        "{body}"
    );
    let (st, _) = s
        .call("PUT", "/v1/topics/logs.+/retention", None, Some(json!({})))
        .await;
    assert_eq!(st, 200);
    let (_, body) = s
        .call("GET", "/v1/topics/logs.+/retention", None, None)
        .await;
    assert_eq!(body, json!({"max_count": null, "max_age": null}));

    // Bad input changes nothing.
    for bad in [
        json!({"max_count": 0}),
        json!({"max_count": -1}),
        json!({"max_age": "soon"}),
        json!({"max_age": "0s"}),
        json!({"max_count": 1, "forever": true}),
        json!("7d"),
    ] {
        let (st, body) = s
            .call(
                "PUT",
                "/v1/topics/logs.+/retention",
                None,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(st, 400, "{bad}: {body}");
        assert!(code(&body).starts_with("invalid_"), "{bad}: {body}");
    }
    let (st, body) = s
        .call(
            "PUT",
            "/v1/topics/bad%20topic/retention",
            None,
            Some(json!({"max_count": 1})),
        )
        .await;
    assert_eq!((st, code(&body)), (400, "invalid_input"), "{body}");
    let (_, body) = s
        .call("GET", "/v1/topics/logs.+/retention", None, None)
        .await;
    assert_eq!(body, json!({"max_count": null, "max_age": null}));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_gets_its_reply_through_a_responder_over_http() {
    let s = TestServer::start(None).await;
    let (st, _) = s
        .call(
            "POST",
            "/v1/subscriptions",
            None,
            Some(json!({"name": "echo-svc", "pattern": "rpc.echo"})),
        )
        .await;
    assert_eq!(st, 200);
    // The responder: long-polls its subscription, answers to reply-to.
    let (client, url) = (s.client.clone(), s.url.clone());
    let responder = tokio::spawn(async move {
        for _ in 0..2 {
            let got: Value = client
                .post(format!("{url}/v1/queues/echo-svc/read?wait=15s"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let m = &got["messages"][0];
            let to = m["headers"]["reply-to"]
                .as_str()
                .expect("reply-to")
                .to_owned();
            let id = m["headers"]["correlation-id"].clone();
            let resp = client
                .post(format!("{url}/v1/topics/{to}/publish"))
                .json(
                    &json!({"body": format!("echo: {}", m["body"].as_str().unwrap()),
                              "headers": {"correlation-id": id}}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    });
    for word in ["hello", "again"] {
        let (st, body) = s
            .call(
                "POST",
                "/v1/topics/rpc.echo/request?timeout=15s",
                None,
                Some(json!({"body": word})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(body["reply"]["body"], format!("echo: {word}"));
    }
    tokio::time::timeout(Duration::from_secs(20), responder)
        .await
        .unwrap()
        .unwrap();
    // The requests' inboxes are gone.
    let (_, subs) = s.call("GET", "/v1/subscriptions", None, None).await;
    let names: Vec<&str> = subs["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo-svc"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nobody_answers_times_out_and_leaves_nothing_behind() {
    let s = TestServer::start(None).await;
    let (st, body) = s
        .call(
            "POST",
            "/v1/topics/rpc.none/request?timeout=300ms",
            None,
            Some(json!({"body": "?"})),
        )
        .await;
    assert_eq!((st, code(&body)), (504, "no_reply"), "{body}");
    let (_, subs) = s.call("GET", "/v1/subscriptions", None, None).await;
    assert_eq!(subs["subscriptions"], json!([]));
    for (path, body) in [
        (
            "/v1/topics/rpc.none/request?timeout=1h",
            json!({"body": "?"}),
        ),
        (
            "/v1/topics/rpc.none/request?timeout=soon",
            json!({"body": "?"}),
        ),
        ("/v1/topics/rpc.none/request?wait=1s", json!({"body": "?"})),
        ("/v1/topics/bad%20topic/request", json!({"body": "?"})),
        ("/v1/topics/rpc.none/request", json!({"body": 1})),
        (
            "/v1/topics/rpc.none/request",
            json!({"body": "?", "headers": {"reply-to": 1, "x": [1]}}),
        ),
    ] {
        let (st, out) = s.call("POST", path, None, Some(body)).await;
        assert_eq!(st, 400, "{path}: {out}");
        assert!(code(&out).starts_with("invalid_"), "{path}: {out}");
    }
    s.stop().await;
}
