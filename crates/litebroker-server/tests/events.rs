//! SSE consumer groups: round-robin over the connected members, acks free
//! room, a member killed mid-stream loses nothing, shutdown ends streams.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestServer;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Opens a stream on `queue` and forwards each event's message, tagged
/// with `member`, until the connection ends or the task is aborted.
async fn member(
    s: &TestServer,
    queue: &str,
    member: usize,
    out: mpsc::UnboundedSender<(usize, Value)>,
) -> tokio::task::JoinHandle<()> {
    let resp = s
        .client
        .get(format!("{}/v1/queues/{queue}/events", s.url))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if !data.is_empty() {
                    let _ = out.send((member, serde_json::from_str(&data).unwrap()));
                }
            }
        }
    })
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<(usize, Value)>) -> (usize, Value) {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event within 20 s")
        .expect("a member still streaming")
}

async fn ack(s: &TestServer, queue: &str, m: &Value) {
    let (st, body) = s
        .call(
            "POST",
            &format!("/v1/queues/{queue}/ack"),
            None,
            Some(json!({"receipts": [m["receipt"]]})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["results"][0]["ok"], true, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_round_robin_and_a_killed_one_loses_nothing() {
    let s = TestServer::start(None).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut members = Vec::new();
    for i in 0..3 {
        members.push(member(&s, "jobs", i, tx.clone()).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let total = 30;
    let batch: Vec<Value> = (0..total)
        .map(|i| json!({"body": format!("m{i}")}))
        .collect();
    let (st, _) = s
        .call(
            "POST",
            "/v1/queues/jobs/messages",
            None,
            Some(json!({"messages": batch})),
        )
        .await;
    assert_eq!(st, 200);

    // Each member holds one delivery at a time (prefetch 1): the first
    // three go to three different members.
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(recv(&mut rx).await);
    }
    let mut who: Vec<usize> = first.iter().map(|(m, _)| *m).collect();
    who.sort();
    assert_eq!(who, [0, 1, 2], "round-robin over the members");

    // Member 2 dies holding its delivery, unacked.
    let (_, lost) = first.iter().find(|(m, _)| *m == 2).unwrap().clone();
    members[2].abort();
    let _ = (&mut members[2]).await;

    let mut acked: HashMap<String, usize> = HashMap::new();
    for (m, msg) in first.into_iter().filter(|(m, _)| *m != 2) {
        ack(&s, "jobs", &msg).await;
        *acked
            .entry(msg["body"].as_str().unwrap().to_owned())
            .or_default() += 1;
        let _ = m;
    }
    let mut redelivered = None;
    while acked.len() < total {
        let (m, msg) = recv(&mut rx).await;
        assert_ne!(m, 2, "a dead member gets nothing");
        if msg["body"] == lost["body"] {
            redelivered = Some(msg.clone());
        } else {
            assert_eq!(
                msg["receives"], 1,
                "only the dead member's delivery is repeated"
            );
        }
        ack(&s, "jobs", &msg).await;
        *acked
            .entry(msg["body"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(
        acked.values().all(|n| *n == 1),
        "each message acked once: {acked:?}"
    );
    let again = redelivered.expect("the dead member's delivery went to another member");
    // Its second delivery; it came back at once (nacked when its member
    // left), not after the 30 s lease the events wait 20 s at most for.
    assert_eq!(again["receives"], 2);
    let (_, stats) = s.call("GET", "/v1/queues/jobs", None, None).await;
    assert_eq!(
        (stats["pending"].clone(), stats["leased"].clone()),
        (json!(0), json!(0))
    );

    // Shutdown ends the streams cleanly.
    s.stop().await;
    for m in members.into_iter().take(2) {
        tokio::time::timeout(Duration::from_secs(20), m)
            .await
            .expect("streams end at shutdown")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_written_later_is_pushed_at_once() {
    let s = TestServer::start(None).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _m = member(&s, "later", 0, tx).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let connector = s.connector.clone();
    tokio::task::spawn_blocking(move || {
        let mut b = litebroker::Broker::connect(connector).unwrap();
        b.queue("later").unwrap().write("pushed").unwrap();
    })
    .await
    .unwrap();
    let (_, msg) = recv(&mut rx).await;
    assert_eq!(msg["body"], "pushed");
    assert!(msg["receipt"].is_string());
    let (st, body) = s
        .call("GET", "/v1/queues/later/events?prefetch=0", None, None)
        .await;
    assert_eq!((st, common::code(&body)), (400, "invalid_input"));
    s.stop().await;
}
