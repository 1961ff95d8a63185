//! Bad input gets a clear 4xx in the one error shape and changes nothing.

mod common;

use common::{code, TestServer};
use serde_json::json;

async fn raw(
    s: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut r = s.req("POST", path).body(body);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    let resp = r.send().await.unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_change_nothing() {
    let s = TestServer::start_with(None, |c| c.max_body_bytes = 1 << 20).await;
    let json_ct = Some("application/json");
    // (path, content type, body, status, error code)
    type Case = (
        &'static str,
        Option<&'static str>,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "/v1/queues/q/messages",
            json_ct,
            b"{not json".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "/v1/queues/q/messages",
            json_ct,
            br#"{"body": 5}"#.to_vec(),
            400,
            "invalid_json",
        ),
        (
            "/v1/queues/q/messages",
            json_ct,
            br#"{"body": "x", "colour": 1}"#.to_vec(),
            400,
            "invalid_json",
        ),
        (
            "/v1/queues/q/messages",
            json_ct,
            b"{\"body\": \"\xff\xfe\"}".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "/v1/queues/q/messages",
            None,
            br#"{"body": "x"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "/v1/queues/q/messages",
            json_ct,
            format!(r#"{{"body": "{}"}}"#, "x".repeat(2 << 20)).into_bytes(),
            413,
            "too_large",
        ),
        (
            "/v1/queues/q/messages",
            json_ct,
            br#"{"body": "x", "delay": "soon"}"#.to_vec(),
            400,
            "invalid_input",
        ),
        (
            "/v1/queues/q/messages",
            json_ct,
            br#"{"body": "x", "headers": {"k": [1]}}"#.to_vec(),
            400,
            "invalid_input",
        ),
        (
            "/v1/queues/q/messages",
            json_ct,
            br#"{"messages": []}"#.to_vec(),
            400,
            "invalid_input",
        ),
        (
            "/v1/queues/-bad/messages",
            json_ct,
            br#"{"body": "x"}"#.to_vec(),
            400,
            "invalid_input",
        ),
        (
            "/v1/queues/q%00/messages",
            json_ct,
            br#"{"body": "x"}"#.to_vec(),
            400,
            "invalid_input",
        ),
        (
            "/v1/queues/q/ack",
            json_ct,
            br#"{"receipts": ["nonsense"]}"#.to_vec(),
            400,
            "invalid_input",
        ),
        (
            "/v1/queues/q/lease?visibility=0s",
            None,
            vec![],
            400,
            "invalid_input",
        ),
        (
            "/v1/queues/q/lease?limit=-1",
            None,
            vec![],
            400,
            "invalid_query",
        ),
        (
            "/v1/queues/q/lease?wait=forever",
            None,
            vec![],
            400,
            "invalid_input",
        ),
        (
            "/api/v1/queues/q/messages",
            json_ct,
            br#"{"id": "a", "message_body": [1]}"#.to_vec(),
            400,
            "invalid_input",
        ),
        (
            "/api/v1/queues/q/messages",
            json_ct,
            br#"{"id": "", "message_body": {}}"#.to_vec(),
            400,
            "invalid_input",
        ),
        (
            "/api/v1/queues/q/messages",
            json_ct,
            br#"{"id": "a"}"#.to_vec(),
            400,
            "invalid_json",
        ),
        (
            "/api/v1/queues/q/messages/receive?max_messages=0",
            None,
            vec![],
            400,
            "invalid_input",
        ),
        (
            "/api/v1/queues/q/messages/receive?max_messages=101",
            None,
            vec![],
            400,
            "invalid_input",
        ),
        (
            "/api/v1/queues/q/messages/receive?visibility_timeout=43201",
            None,
            vec![],
            400,
            "invalid_input",
        ),
        (
            "/api/v1/queues/q/messages/receive?max_messages=ten",
            None,
            vec![],
            400,
            "invalid_query",
        ),
    ];
    for (path, ct, body, status, want) in cases {
        let (st, answer) = raw(&s, path, ct, body).await;
        assert_eq!((st, code(&answer)), (status, want), "{path}: {answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let (_, queues) = s.call("GET", "/v1/queues", None, None).await;
    assert_eq!(queues["queues"], json!([]), "bad input wrote nothing");
    let (st, body) = s.call("GET", "/no/such/route", None, None).await;
    assert_eq!((st, code(&body)), (404, "not_found"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_size_limit_is_enforced() {
    let s = TestServer::start(None).await;
    let big = "x".repeat(litebroker::message::MAX_MESSAGE_SIZE + 1);
    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/q/messages",
            None,
            Some(json!({"body": big})),
        )
        .await;
    assert_eq!((st, code(&body)), (413, "too_large"));
    let (st, body) = s
        .call(
            "POST",
            "/api/v1/queues/q/messages",
            None,
            Some(json!({"id": "big", "message_body": {"b": big}})),
        )
        .await;
    assert_eq!((st, code(&body)), (413, "too_large"));
    let (_, queues) = s.call("GET", "/v1/queues", None, None).await;
    assert_eq!(queues["queues"], json!([]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_and_unicode_round_trip() {
    let s = TestServer::start(None).await;
    let text = "a\u{0}b\n\u{1F600}\u{7}";
    let (st, _) = s
        .call(
            "POST",
            "/v1/queues/q/messages",
            None,
            Some(json!({"body": text})),
        )
        .await;
    assert_eq!(st, 200);
    let (_, got) = s.call("POST", "/v1/queues/q/read", None, None).await;
    assert_eq!(got["messages"][0]["body"], text);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_loses_no_write_and_takes_nothing() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start(None).await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    // A request cut off mid-body: nothing is written.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"body\": \"par")
        .await
        .unwrap();
    drop(c);
    // A client that leaves during a long-poll takes nothing with it.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(
        b"POST /v1/queues/q/lease?wait=1s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    drop(c);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    s.call(
        "POST",
        "/v1/queues/q/messages",
        None,
        Some(json!({"body": "whole"})),
    )
    .await;
    let (_, got) = s
        .call("POST", "/v1/queues/q/read?limit=10", None, None)
        .await;
    assert_eq!(got["messages"].as_array().unwrap().len(), 1, "{got}");
    assert_eq!(got["messages"][0]["body"], "whole");
    s.stop().await;
}
