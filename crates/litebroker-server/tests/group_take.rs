//! Group commit of takes and acks: concurrent reads of a queue share a
//! transaction and each message goes to exactly one request; a failed
//! shared take fails every request in it and takes nothing; a client that
//! leaves before its take commits takes nothing; concurrent acks share a
//! transaction, each request answered with its own receipts' outcomes.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{bodies, code, TestServer};
use litebroker::message::Filter;
use serde_json::{json, Value};

/// The bodies still pending in `queue`.
fn pending(server: &TestServer, queue: &str) -> Vec<String> {
    let mut b = server.broker();
    b.backend()
        .peek(queue, &Filter::all(), 0, 100_000)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

/// Writes `bodies` to `queue` in batches of at most 1000.
async fn fill(server: &TestServer, queue: &str, bodies: &[String]) {
    for chunk in bodies.chunks(1000) {
        let msgs: Vec<Value> = chunk.iter().map(|b| json!({"body": b})).collect();
        let (status, body) = server
            .call(
                "POST",
                &format!("/v1/queues/{queue}/messages"),
                None,
                Some(json!({"messages": msgs})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_readers_receive_every_message_exactly_once() {
    let server = TestServer::start(None).await;
    let all: Vec<String> = (0..1500).map(|i| format!("m{i}")).collect();
    fill(&server, "shared", &all).await;
    // Many clients, each its own connection, reading 1 to 3 at a time until
    // the queue is empty: their takes share commits.
    let readers = 48;
    let mut tasks = Vec::new();
    for r in 0..readers {
        let client = reqwest::Client::new();
        let url = format!("{}/v1/queues/shared/read?limit={}", server.url, 1 + r % 3);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let resp = client.post(&url).send().await.unwrap();
                assert_eq!(resp.status().as_u16(), 200);
                let got = bodies(&resp.json::<Value>().await.unwrap());
                assert!(got.len() <= 1 + r % 3, "no more than this request's limit");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got);
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for body in t.await.unwrap() {
            total += 1;
            assert!(seen.insert(body.clone()), "{body} received twice");
        }
    }
    assert_eq!(total, all.len(), "every message received");
    assert_eq!(seen, all.iter().cloned().collect::<HashSet<_>>());
    assert!(pending(&server, "shared").is_empty());
    let (requests, commits) = server.commit_counts("take").await;
    assert!(requests >= commits && commits > 0);
    server.stop().await;
}

/// Reads held behind another process's write lock pile up and share the
/// next commit; each gets its own message, oldest first in arrival order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_that_arrive_during_a_commit_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let server = TestServer::start_in(dir, None, |_| {}).await;
    let all: Vec<String> = (0..30).map(|i| format!("held-{i}")).collect();
    fill(&server, "held", &all).await;
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let n = 25;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let req = server.req("POST", "/v1/queues/held/read");
        tasks.push(tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            bodies(&resp.json::<Value>().await.unwrap())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    holder.execute_batch("COMMIT").unwrap();
    let mut got = HashSet::new();
    for t in tasks {
        let mine = t.await.unwrap();
        assert_eq!(mine.len(), 1, "one message each: {mine:?}");
        assert!(got.insert(mine[0].clone()), "{} received twice", mine[0]);
    }
    // The oldest 25 went, the newest 5 stay.
    let expected: HashSet<String> = all[..n].iter().cloned().collect();
    assert_eq!(got, expected);
    assert_eq!(pending(&server, "held"), all[n..].to_vec());
    let (requests, commits) = server.commit_counts("take").await;
    assert_eq!(requests, n as u64);
    // The first read waited for the lock alone; the others queued behind it.
    assert!(commits <= 3, "{n} reads took {commits} commits");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_take_fails_every_request_in_it_and_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let server = TestServer::start_in(dir, None, |_| {}).await;
    let all: Vec<String> = (0..20).map(|i| format!("keep-{i}")).collect();
    fill(&server, "kept", &all).await;
    let holder = rusqlite::Connection::open(&path).unwrap();
    // Storage refuses to take any message: the shared transaction fails.
    holder
        .execute_batch(
            "CREATE TRIGGER no_take BEFORE UPDATE ON messages
             BEGIN SELECT RAISE(ABORT, 'storage refuses'); END;
             CREATE TRIGGER no_delete BEFORE DELETE ON messages
             BEGIN SELECT RAISE(ABORT, 'storage refuses'); END;",
        )
        .unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        // Reads and PyQueue receive-and-delete, both through the committer.
        let req = if i % 2 == 0 {
            server.req("POST", "/v1/queues/kept/read?limit=2")
        } else {
            server.req(
                "POST",
                "/api/v1/queues/kept/messages/receive?max_messages=2&delete_after_receive=true",
            )
        };
        tasks.push(tokio::spawn(async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    holder.execute_batch("COMMIT").unwrap();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 500, "{body}");
        assert_eq!(code(&body), "storage");
    }
    assert_eq!(pending(&server, "kept"), all, "every message still pending");

    // Storage recovers: the committer goes on, and the messages are there.
    holder
        .execute_batch("DROP TRIGGER no_take; DROP TRIGGER no_delete;")
        .unwrap();
    let (status, body) = server
        .call("POST", "/v1/queues/kept/read?limit=1000", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bodies(&body), all);
    server.stop().await;
}

/// A long-polling client that gives up before anything arrives takes
/// nothing: the message written afterwards goes to the next reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_that_left_takes_nothing() {
    let server = TestServer::start(None).await;
    let waiting = server.req("POST", "/v1/queues/left/read?wait=5s");
    let gone = tokio::time::timeout(Duration::from_millis(300), waiting.send()).await;
    assert!(
        gone.is_err(),
        "nothing to read yet: still waiting when dropped"
    );
    // Let the server see the connection close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = server
        .call(
            "POST",
            "/v1/queues/left/messages",
            None,
            Some(json!({"body": "for the next reader"})),
        )
        .await;
    assert_eq!(status, 200);
    // Long enough for a left-behind long-poll to have woken and taken it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = server
        .call("POST", "/v1/queues/left/read", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bodies(&body), vec!["for the next reader".to_owned()]);
    server.stop().await;
}

/// Long-polls waiting on an empty queue are each handed their own message
/// when messages arrive; none is delivered twice or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_readers_each_get_their_own_message() {
    let server = TestServer::start(None).await;
    let waiters = 16;
    let mut tasks = Vec::new();
    for _ in 0..waiters {
        let client = reqwest::Client::new();
        let url = format!("{}/v1/queues/waited/read?wait=15s", server.url);
        tasks.push(tokio::spawn(async move {
            let resp = client.post(&url).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            bodies(&resp.json::<Value>().await.unwrap())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all: Vec<String> = (0..waiters).map(|i| format!("w{i}")).collect();
    for body in &all {
        let (status, _) = server
            .call(
                "POST",
                "/v1/queues/waited/messages",
                None,
                Some(json!({"body": body})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let mut got = HashSet::new();
    for t in tasks {
        let mine = t.await.unwrap();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert!(got.insert(mine[0].clone()));
    }
    assert_eq!(got, all.into_iter().collect::<HashSet<_>>());
    assert!(pending(&server, "waited").is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_leases_and_acks_share_commits_and_answer_each_its_own() {
    let server = TestServer::start(None).await;
    let all: Vec<String> = (0..400).map(|i| format!("l{i}")).collect();
    fill(&server, "leased", &all).await;
    let workers = 32;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = reqwest::Client::new();
        let base = format!("{}/v1/queues/leased", server.url);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let resp = client
                    .post(format!("{base}/lease?limit=2"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status().as_u16(), 200);
                let got: Value = resp.json().await.unwrap();
                let messages = got["messages"].as_array().unwrap().clone();
                if messages.is_empty() {
                    return mine;
                }
                let mut receipts: Vec<String> = messages
                    .iter()
                    .map(|m| m["receipt"].as_str().unwrap().to_owned())
                    .collect();
                // Every fourth worker also presents a receipt that names
                // nothing: only its own outcome says so.
                let bogus = w % 4 == 0;
                if bogus {
                    // The same delivery with another nonce.
                    let mut fake = receipts[0].clone();
                    let last = if fake.ends_with('0') { "1" } else { "0" };
                    fake.replace_range(fake.len() - 1.., last);
                    receipts.push(fake);
                }
                let resp = client
                    .post(format!("{base}/ack"))
                    .json(&json!({"receipts": receipts}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status().as_u16(), 200);
                let out: Value = resp.json().await.unwrap();
                let results = out["results"].as_array().unwrap();
                assert_eq!(results.len(), receipts.len());
                for (i, r) in results.iter().enumerate() {
                    assert_eq!(r["receipt"], json!(receipts[i]), "outcomes in order");
                    let real = i < messages.len();
                    assert_eq!(r["ok"], json!(real), "{r}");
                }
                mine.extend(
                    messages
                        .iter()
                        .map(|m| m["body"].as_str().unwrap().to_owned()),
                );
            }
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for body in t.await.unwrap() {
            assert!(seen.insert(body.clone()), "{body} leased twice");
        }
    }
    assert_eq!(seen, all.into_iter().collect::<HashSet<_>>());
    assert!(pending(&server, "leased").is_empty(), "all acked");
    let (requests, commits) = server.commit_counts("ack").await;
    assert!(requests >= commits && commits > 0);
    server.stop().await;
}

/// PyQueue's receive-and-delete goes through the same committer: many
/// concurrent receivers, every message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pyqueue_receivers_get_every_message_exactly_once() {
    let server = TestServer::start(None).await;
    let all: Vec<String> = (0..300).map(|i| format!("p{i}")).collect();
    fill(&server, "pyq", &all).await;
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let client = reqwest::Client::new();
        let url = format!(
            "{}/api/v1/queues/pyq/messages/receive?max_messages=3&delete_after_receive=true",
            server.url
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let resp = client.post(&url).send().await.unwrap();
                assert_eq!(resp.status().as_u16(), 200);
                let out: Value = resp.json().await.unwrap();
                let got = out["messages"].as_array().unwrap();
                assert_eq!(out["count"], json!(got.len()));
                if got.is_empty() {
                    return mine;
                }
                for m in got {
                    assert_eq!(m["status"], "processed");
                    mine.push(m["message_body"]["content"].as_str().unwrap().to_owned());
                }
            }
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for body in t.await.unwrap() {
            assert!(seen.insert(body.clone()), "{body} received twice");
        }
    }
    assert_eq!(seen, all.into_iter().collect::<HashSet<_>>());
    assert!(pending(&server, "pyq").is_empty());
    server.stop().await;
}

/// A read whose client leaves while it waits for its commit (queued behind
/// another that waits for the write lock) takes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_queued_for_a_commit_whose_client_left_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let server = TestServer::start_in(dir, None, |_| {}).await;
    let all: Vec<String> = (0..10).map(|i| format!("q{i}")).collect();
    fill(&server, "queued", &all).await;
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The first read's commit waits for the lock...
    let first = server.req("POST", "/v1/queues/queued/read");
    let first = tokio::spawn(async move { first.send().await.unwrap().json::<Value>().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...while these queue for the next commit, and their clients leave.
    for _ in 0..3 {
        let gone = server.req("POST", "/v1/queues/queued/read?limit=2").send();
        assert!(
            tokio::time::timeout(Duration::from_millis(200), gone)
                .await
                .is_err(),
            "still waiting for the lock"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.execute_batch("COMMIT").unwrap();
    let got = first.await.unwrap().unwrap();
    assert_eq!(bodies(&got), vec!["q0".to_owned()]);
    // Only the first read took anything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pending(&server, "queued"), all[1..].to_vec());
    server.stop().await;
}
