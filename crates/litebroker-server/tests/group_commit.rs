//! Group commit: concurrent writes to a queue share a transaction, each
//! request is answered with its own ids, and a failed shared commit fails
//! every request in it and stores none of their messages.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{code, TestServer};
use litebroker::message::Filter;
use serde_json::{json, Value};

/// Every message of `queue`, as (body, id).
fn stored(server: &TestServer, queue: &str) -> Vec<(String, i64)> {
    let mut b = server.broker();
    b.backend()
        .peek(queue, &Filter::all(), 0, 100_000)
        .unwrap()
        .into_iter()
        .map(|m| (m.body, m.id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_get_their_own_distinct_ids_and_every_message_is_stored_once() {
    let server = TestServer::start(None).await;
    let writers = 64;
    let rounds = 6;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let client = server.client.clone();
        let url = format!("{}/v1/queues/grouped/messages", server.url);
        tasks.push(tokio::spawn(async move {
            let mut mine: Vec<(String, i64)> = Vec::new();
            for r in 0..rounds {
                // Singles, batches, and headers, mixed in one commit.
                let bodies: Vec<String> = (0..(1 + (w + r) % 3))
                    .map(|k| format!("w{w}-r{r}-m{k}"))
                    .collect();
                let req = if bodies.len() == 1 {
                    json!({"body": bodies[0], "headers": {"writer": w}})
                } else {
                    json!({"messages": bodies.iter().map(|b| json!({"body": b})).collect::<Vec<_>>()})
                };
                let resp = client.post(&url).json(&req).send().await.unwrap();
                assert_eq!(resp.status().as_u16(), 200);
                let out: Value = resp.json().await.unwrap();
                let ids: Vec<i64> = out["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect();
                assert_eq!(ids.len(), bodies.len(), "one id per message of this request");
                assert!(ids.windows(2).all(|p| p[0] < p[1]), "a batch's ids in order");
                mine.extend(bodies.into_iter().zip(ids));
            }
            mine
        }));
    }
    let mut answered: HashMap<String, i64> = HashMap::new();
    for t in tasks {
        for (body, id) in t.await.unwrap() {
            assert!(answered.insert(body, id).is_none());
        }
    }
    let ids: HashSet<i64> = answered.values().copied().collect();
    assert_eq!(ids.len(), answered.len(), "every id distinct");

    let rows = stored(&server, "grouped");
    assert_eq!(
        rows.len(),
        answered.len(),
        "each message stored exactly once"
    );
    for (body, id) in rows {
        assert_eq!(
            answered.get(&body),
            Some(&id),
            "{body} stored under the id it was answered"
        );
    }
    // The headers of the single writes went with them.
    let (status, body) = server
        .call("GET", "/v1/queues/grouped/messages?limit=1000", None, None)
        .await;
    assert_eq!(status, 200);
    let with_headers = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["headers"]["writer"].is_number())
        .count();
    assert!(with_headers > 0);
    server.stop().await;
}

/// Writes held behind another process's write lock pile up, and go in one
/// commit once it is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_that_arrive_during_a_commit_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let server = TestServer::start_in(dir, None, |_| {}).await;
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let n = 40;
    let mut tasks = Vec::new();
    for i in 0..n {
        let req = server
            .req("POST", "/v1/queues/held/messages")
            .json(&json!({"body": format!("held-{i}")}));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    holder.execute_batch("COMMIT").unwrap();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let (requests, commits) = server.commit_counts("write").await;
    assert_eq!(requests, n);
    // The first write waited for the lock alone; the others queued behind it.
    assert!(commits <= 3, "{n} writes took {commits} commits");
    assert_eq!(stored(&server, "held").len(), n as usize);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_commit_fails_every_request_in_it_and_stores_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let server = TestServer::start_in(dir, None, |_| {}).await;
    let holder = rusqlite::Connection::open(&path).unwrap();
    // Storage refuses one body: the transaction holding it fails as a whole.
    holder
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.body = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned body'); END;",
        )
        .unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let send = |body: Value| {
        let req = server.req("POST", "/v1/queues/shared/messages").json(&body);
        tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        })
    };
    // The first commit takes this one alone and waits for the lock...
    let first = send(json!({"body": "first"}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...while these queue up for the next one, the poisoned one among them.
    let mut shared = Vec::new();
    for i in 0..10 {
        shared.push((
            format!("shared-{i}"),
            send(json!({"body": format!("shared-{i}")})),
        ));
    }
    shared.push((
        "poison".into(),
        send(json!({"messages": [{"body": "ok-too"}, {"body": "poison"}]})),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    holder.execute_batch("COMMIT").unwrap();

    let (status, body) = first.await.unwrap();
    assert_eq!(status, 200, "{body}");
    for (name, task) in shared {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 500, "{name} shared the failed commit: {body}");
        assert_eq!(code(&body), "storage");
    }
    let bodies: Vec<String> = stored(&server, "shared")
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(
        bodies,
        vec!["first".to_owned()],
        "nothing of the failed commit is stored"
    );

    // The committer goes on: the next write commits.
    holder.execute_batch("DROP TRIGGER poison").unwrap();
    let (status, body) = server
        .call(
            "POST",
            "/v1/queues/shared/messages",
            None,
            Some(json!({"body": "after"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored(&server, "shared").len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_request_does_not_fail_the_others() {
    let server = TestServer::start(None).await;
    // Checked before the commit: a request's own faults are its own.
    let big = "x".repeat(litebroker::message::MAX_MESSAGE_SIZE + 1);
    let too_big = server
        .req("POST", "/v1/queues/q/messages")
        .json(&json!({"body": big}));
    let good = server
        .req("POST", "/v1/queues/q/messages")
        .json(&json!({"body": "fine"}));
    let bad_name = server
        .req("POST", "/v1/queues/bad%20name/messages")
        .json(&json!({"body": "x"}));
    let (a, b, c) = tokio::join!(too_big.send(), good.send(), bad_name.send());
    assert_eq!(a.unwrap().status().as_u16(), 413);
    assert_eq!(b.unwrap().status().as_u16(), 200);
    assert_eq!(c.unwrap().status().as_u16(), 400);
    assert_eq!(stored(&server, "q").len(), 1);
    server.stop().await;
}
