//! No route is reachable without its permission: every route, tried with
//! no key, an unknown key, a key holding every permission but each one the
//! route needs, and a key holding exactly what it needs.

mod common;

use common::{code, TestServer};
use litebroker_server::auth::Perm;
use serde_json::{json, Value};

use Perm::{Delete, Manage, Read, Write};

struct Route {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    needs: &'static [Perm],
}

fn r(
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    needs: &'static [Perm],
) -> Route {
    Route {
        method,
        path,
        body,
        needs,
    }
}

const RECEIPT: &str = "1.1.0000000000000000";

fn routes() -> Vec<Route> {
    let q = "/api/v1/queues/q";
    let _ = q;
    vec![
        r(
            "POST",
            "/api/v1/queues/q/messages",
            Some(json!({"id": "x", "message_body": {}})),
            &[Write],
        ),
        r("GET", "/api/v1/queues/q/messages", None, &[Read]),
        r("GET", "/api/v1/queues/q/message/x", None, &[Read]),
        r(
            "POST",
            "/api/v1/queues/q/messages/check-existence",
            Some(json!({"message_ids": ["x"]})),
            &[Read],
        ),
        r("POST", "/api/v1/queues/q/messages/receive", None, &[Read]),
        r(
            "POST",
            "/api/v1/queues/q/messages/receive?delete_after_receive=true",
            None,
            &[Read, Delete],
        ),
        r(
            "DELETE",
            "/api/v1/queues/q/messages/1.1.0000000000000000",
            None,
            &[Delete],
        ),
        r(
            "DELETE",
            "/api/v1/queues/q/messages/by-id/x",
            None,
            &[Delete],
        ),
        r(
            "PUT",
            "/api/v1/queues/q/messages/by-id/x",
            Some(json!({"message_body": {"a": 1}})),
            &[Write],
        ),
        r("DELETE", "/api/v1/queues/q/messages", None, &[Manage]),
        r("GET", "/api/v1/queues/q/info", None, &[Read]),
        r("GET", "/api/v1/queues/q/health", None, &[Read]),
        r("GET", "/v1/queues/q", None, &[Read]),
        r("DELETE", "/v1/queues/q", None, &[Manage]),
        r(
            "POST",
            "/v1/queues/q/messages",
            Some(json!({"body": "b"})),
            &[Write],
        ),
        r("GET", "/v1/queues/q/messages", None, &[Read]),
        r("POST", "/v1/queues/q/read", None, &[Read, Delete]),
        r("POST", "/v1/queues/q/lease", None, &[Read]),
        r(
            "POST",
            "/v1/queues/q/ack",
            Some(json!({"receipts": [RECEIPT]})),
            &[Delete],
        ),
        r(
            "POST",
            "/v1/queues/q/nack",
            Some(json!({"receipt": RECEIPT})),
            &[Read],
        ),
        r(
            "POST",
            "/v1/queues/q/extend",
            Some(json!({"receipt": RECEIPT, "visibility": "5s"})),
            &[Read],
        ),
        r(
            "POST",
            "/v1/topics/q/publish",
            Some(json!({"body": "b"})),
            &[Write],
        ),
        r(
            "POST",
            "/v1/subscriptions",
            Some(json!({"name": "q", "pattern": "t"})),
            &[Manage],
        ),
        r("DELETE", "/v1/subscriptions/q", None, &[Manage]),
        r("GET", "/v1/dashboard/queues/q/messages", None, &[Read]),
        r(
            "GET",
            "/v1/dashboard/queues/q/messages/1?seq=1",
            None,
            &[Read],
        ),
        r(
            "DELETE",
            "/v1/dashboard/queues/q/messages/1",
            None,
            &[Delete],
        ),
        r("GET", "/v1/queues/q/config", None, &[Read]),
        r(
            "PUT",
            "/v1/queues/q/config",
            Some(json!({"visibility": "10s"})),
            &[Manage],
        ),
        // Moving to a queue of the same grants: write on the destination too.
        r(
            "POST",
            "/v1/queues/q/move",
            Some(json!({"to": "q"})),
            &[Read, Write, Delete],
        ),
        r("POST", "/v1/queues/q/redrive", Some(json!({})), &[Manage]),
        r(
            "POST",
            "/v1/aliases",
            Some(json!({"alias": "q", "target": "q"})),
            &[Manage],
        ),
        r("DELETE", "/v1/aliases/q", None, &[Manage]),
        r("GET", "/v1/topics/q/retention", None, &[Read]),
        r(
            "PUT",
            "/v1/topics/q/retention",
            Some(json!({"max_count": 5})),
            &[Manage],
        ),
    ]
}

/// Routes any valid key may call (they show only what the key may see).
const ANY_KEY: &[(&str, &str)] = &[
    ("GET", "/api/v1/queues"),
    ("GET", "/v1/queues"),
    ("GET", "/v1/subscriptions"),
    ("GET", "/v1/aliases"),
    ("GET", "/v1/topics"),
    ("GET", "/metrics"),
    ("GET", "/v1/dashboard/overview"),
    ("GET", "/v1/dashboard/topics"),
];

/// Routes that need no key.
const OPEN: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/openapi.json"),
    ("GET", "/api/v1/health"),
];

fn key_name(perms: &[Perm]) -> String {
    let mut names: Vec<&str> = perms.iter().map(|p| p.name()).collect();
    names.sort();
    format!("key-{}", names.join("-"))
}

/// Keys for every subset of the four permissions, granted on `q` through
/// globs in mixed case, plus a key that may do everything elsewhere.
fn keys_file() -> String {
    let mut file = serde_json::Map::new();
    for mask in 0..16u8 {
        let perms: Vec<Perm> = Perm::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, p)| p)
            .collect();
        let shown: Vec<String> = perms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i % 2 == 0 {
                    p.name().to_uppercase()
                } else {
                    p.name().to_owned()
                }
            })
            .collect();
        file.insert(
            key_name(&perms),
            json!({"description": "test", "queues": {"[q]": shown, "other": ["read", "write", "delete", "manage"]}}),
        );
    }
    Value::Object(file).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_reachable_without_its_permission() {
    let server = TestServer::start(Some(&keys_file())).await;
    for route in routes() {
        let what = format!("{} {}", route.method, route.path);
        let (status, body) = server
            .call(route.method, route.path, None, route.body.clone())
            .await;
        assert_eq!(
            (status, code(&body)),
            (401, "unauthorized"),
            "{what} without a key"
        );
        let (status, _) = server
            .call(
                route.method,
                route.path,
                Some("key-nope"),
                route.body.clone(),
            )
            .await;
        assert_eq!(status, 401, "{what} with an unknown key");
        for missing in route.needs {
            let others: Vec<Perm> = Perm::ALL.into_iter().filter(|p| p != missing).collect();
            let (status, body) = server
                .call(
                    route.method,
                    route.path,
                    Some(&key_name(&others)),
                    route.body.clone(),
                )
                .await;
            assert_eq!(
                (status, code(&body)),
                (403, "forbidden"),
                "{what} without {}",
                missing.name()
            );
        }
        let (status, body) = server
            .call(
                route.method,
                route.path,
                Some(&key_name(route.needs)),
                route.body.clone(),
            )
            .await;
        assert!(
            status != 401 && status != 403 && status < 500,
            "{what} with exactly its permissions: {status} {body}"
        );
    }
    // A request with its permission waits for a reply that never comes.
    let request = "/v1/topics/q/request?timeout=10ms";
    let body = Some(json!({"body": "b"}));
    let (status, _) = server.call("POST", request, None, body.clone()).await;
    assert_eq!(status, 401, "request without a key");
    let no_write = key_name(&[Read, Delete, Manage]);
    let (status, _) = server
        .call("POST", request, Some(&no_write), body.clone())
        .await;
    assert_eq!(status, 403, "request without write");
    let (status, out) = server
        .call("POST", request, Some(&key_name(&[Write])), body)
        .await;
    assert_eq!(
        (status, code(&out)),
        (504, "no_reply"),
        "request with write"
    );
    // The event stream: its headers are the answer (the body never ends).
    let events = "/v1/queues/q/events";
    assert_eq!(server.status_only("GET", events, None).await, 401);
    for (missing, others) in [
        (Read, &[Write, Delete, Manage][..]),
        (Delete, &[Read, Write, Manage][..]),
    ] {
        assert_eq!(
            server
                .status_only("GET", events, Some(&key_name(others)))
                .await,
            403,
            "events without {}",
            missing.name()
        );
    }
    assert_eq!(
        server
            .status_only("GET", events, Some(&key_name(&[Read, Delete])))
            .await,
        200
    );
    for (method, path) in ANY_KEY {
        let (status, _) = server.call(method, path, None, None).await;
        assert_eq!(status, 401, "{method} {path} without a key");
        let (status, _) = server.call(method, path, Some("key-"), None).await;
        assert_eq!(
            status, 200,
            "{method} {path} with a key holding nothing on q"
        );
    }
    for (method, path) in OPEN {
        let (status, _) = server.call(method, path, None, None).await;
        assert_eq!(status, 200, "{method} {path} needs no key");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_covers_every_documented_route() {
    let server = TestServer::start(None).await;
    let (status, doc) = server.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let table: Vec<(String, String)> = routes()
        .iter()
        .map(|r| {
            (
                r.method.to_lowercase(),
                r.path.split('?').next().unwrap().to_owned(),
            )
        })
        .chain(
            ANY_KEY
                .iter()
                .map(|(m, p)| (m.to_lowercase(), (*p).to_owned())),
        )
        // Checked on its own in no_route_is_reachable_without_its_permission.
        .chain([("get".to_owned(), "/v1/queues/q/events".to_owned())])
        // A stream: checked in tests/dashboard.rs (any key; none: 401).
        .chain([("get".to_owned(), "/v1/dashboard/stream".to_owned())])
        // Checked on its own (with its permission it waits, then 504).
        .chain([("post".to_owned(), "/v1/topics/q/request".to_owned())])
        // Checked in tests/keys.rs (manage through a `*` grant).
        .chain([
            ("get".to_owned(), "/v1/keys".to_owned()),
            ("post".to_owned(), "/v1/keys".to_owned()),
            ("delete".to_owned(), "/v1/keys/q".to_owned()),
        ])
        .collect();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 8, "{paths:?}");
    for (template, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = template
                .replace("{queue}", "q")
                .replace("{topic}", "q")
                .replace("{name}", "q")
                .replace("{alias}", "q")
                .replace("{id}", "1");
            assert!(
                table.contains(&(method.clone(), concrete.clone())),
                "{method} {template} is documented but not in the permission table"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_sees_only_its_queues() {
    let server = TestServer::start(Some(
        r#"{"k": {"description": "orders", "queues": {"orders.*": ["read"]}}}"#,
    ))
    .await;
    {
        let mut b = server.broker();
        b.queue("orders.eu").unwrap().write("x").unwrap();
        b.queue("billing").unwrap().write("y").unwrap();
    }
    let (_, body) = server.call("GET", "/v1/queues", Some("k"), None).await;
    let names: Vec<&str> = body["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders.eu"]);
    let (_, body) = server.call("GET", "/api/v1/queues", Some("k"), None).await;
    assert_eq!(body["count"], 1);
    assert_eq!(body["queues"][0]["permissions"], json!(["read"]));
    assert_eq!(body["api_key_description"], "orders");
    server.stop().await;
}
