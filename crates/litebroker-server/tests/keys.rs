//! API keys kept in the database: created and revoked over HTTP by an
//! admin key, or by the CLI (another connection), counted within a second.

mod common;

use std::time::{Duration, Instant};

use common::{code, TestServer};
use litebroker::backend::StoredKey;
use litebroker_server::auth::{hash_secret, new_secret};
use serde_json::json;

const FILE: &str = r#"{
  "admin-secret": {"description": "admin", "queues": {"*": ["manage", "read"]}},
  "reader-secret": {"description": "reader", "queues": {"*": ["read"]}}
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_created_and_revoked_over_http() {
    let s = TestServer::start_with(Some(FILE), |c| c.keys_in_database = true).await;
    let admin = Some("admin-secret");
    let (st, created) = s
        .call(
            "POST",
            "/v1/keys",
            admin,
            Some(json!({"name": "orders-svc", "allow": ["orders.*=WRITE,read"]})),
        )
        .await;
    assert_eq!(st, 200, "{created}");
    assert_eq!(created["allow"], json!(["orders.*=write,read"]));
    let secret = created["secret"].as_str().unwrap().to_owned();
    let key = Some(secret.as_str());
    let (st, _) = s
        .call(
            "POST",
            "/v1/queues/orders.eu/messages",
            key,
            Some(json!({"body": "o"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, body) = s
        .call(
            "POST",
            "/v1/queues/billing/messages",
            key,
            Some(json!({"body": "b"})),
        )
        .await;
    assert_eq!((st, code(&body)), (403, "forbidden"));

    let (st, body) = s
        .call(
            "POST",
            "/v1/keys",
            admin,
            Some(json!({"name": "orders-svc", "allow": ["x=read"]})),
        )
        .await;
    assert_eq!((st, code(&body)), (409, "conflict"));
    let (st, body) = s
        .call(
            "POST",
            "/v1/keys",
            admin,
            Some(json!({"name": "bad", "allow": ["x=own"]})),
        )
        .await;
    assert_eq!((st, code(&body)), (400, "invalid_input"));
    let (st, _) = s
        .call(
            "POST",
            "/v1/keys",
            Some("reader-secret"),
            Some(json!({"name": "r", "allow": ["*=manage"]})),
        )
        .await;
    assert_eq!(st, 403, "a key cannot grant itself more");
    let (st, _) = s.call("GET", "/v1/keys", key, None).await;
    assert_eq!(st, 403);

    let (_, listed) = s.call("GET", "/v1/keys", admin, None).await;
    assert_eq!(listed["keys"][0]["name"], "orders-svc");
    let text = listed.to_string();
    assert!(
        !text.contains(&secret) && !text.contains(&hash_secret(&secret)),
        "{text}"
    );

    let (st, _) = s.call("DELETE", "/v1/keys/orders-svc", admin, None).await;
    assert_eq!(st, 200);
    let (st, body) = s.call("GET", "/v1/queues/orders.eu", key, None).await;
    assert_eq!(
        (st, code(&body)),
        (401, "unauthorized"),
        "revoked at once on this server"
    );
    let (st, _) = s.call("DELETE", "/v1/keys/orders-svc", admin, None).await;
    assert_eq!(st, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_stored_by_another_connection_counts_within_a_second() {
    // Keys only in the database: no file at all.
    let s = TestServer::start_with(None, |c| c.keys_in_database = true).await;
    let (st, _) = s.call("GET", "/v1/queues", None, None).await;
    assert_eq!(st, 401, "keys in the database: a key is required");
    let secret = new_secret();
    let stored = StoredKey {
        name: "cli-made".into(),
        secret_hash: hash_secret(&secret),
        grants: "jobs=read".into(),
        created_ns: 0,
    };
    let connector = s.connector.clone();
    tokio::task::spawn_blocking(move || {
        litebroker::Broker::connect(connector)
            .unwrap()
            .api_key_add(&stored)
            .unwrap()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, _) = s.call("GET", "/v1/queues/jobs", Some(&secret), None).await;
        if st == 200 {
            break;
        }
        assert_eq!(st, 401);
        assert!(Instant::now() < deadline, "the stored key never counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, _) = s.call("GET", "/v1/queues/other", Some(&secret), None).await;
    assert_eq!(st, 403);
    s.stop().await;
}
