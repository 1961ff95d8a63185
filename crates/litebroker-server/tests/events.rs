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

/// Opens a stream on `queue` (with `Last-Event-ID` if given) and forwards
/// each event as (id, message).
async fn stream(
    s: &TestServer,
    path: &str,
    last_event_id: Option<&str>,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<(String, Value)>,
) {
    let mut req = s
        .client
        .get(format!("{}{path}", s.url))
        .timeout(Duration::from_secs(120));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let id = event.lines().find_map(|l| l.strip_prefix("id: "));
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if let Some(id) = id {
                    let _ = tx.send((id.to_owned(), serde_json::from_str(&data).unwrap()));
                }
            }
        }
    });
    (task, rx)
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event within 20 s")
        .expect("still streaming")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_reconnects_with_last_event_id_gets_its_unacked_deliveries_first() {
    let s = TestServer::start(None).await;
    let batch: Vec<Value> = (0..3).map(|i| json!({"body": format!("m{i}")})).collect();
    let (st, _) = s
        .call(
            "POST",
            "/v1/queues/resume/messages",
            None,
            Some(json!({"messages": batch})),
        )
        .await;
    assert_eq!(st, 200);

    let (a, mut a_rx) = stream(&s, "/v1/queues/resume/events?prefetch=3", None).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_event(&mut a_rx).await);
    }
    let bodies: Vec<&str> = got
        .iter()
        .map(|(_, m)| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["m0", "m1", "m2"]);
    ack(&s, "resume", &got[0].1).await;
    // The connection drops with m1 and m2 unacked.
    a.abort();
    let _ = a.await;

    // Another member gets nothing of them while they wait for the resume.
    let (_b, mut b_rx) = stream(&s, "/v1/queues/resume/events?prefetch=3", None).await;
    let early = tokio::time::timeout(Duration::from_millis(1000), b_rx.recv()).await;
    assert!(
        early.is_err(),
        "parked deliveries went to another member: {early:?}"
    );

    // The client comes back with the id of the last event it saw.
    let last = got[2].0.clone();
    let (_a2, mut a2_rx) = stream(&s, "/v1/queues/resume/events?prefetch=1", Some(&last)).await;
    let r1 = next_event(&mut a2_rx).await;
    let r2 = next_event(&mut a2_rx).await;
    assert_eq!(
        (r1.1["body"].as_str(), r2.1["body"].as_str()),
        (Some("m1"), Some("m2"))
    );
    assert_eq!(
        (&r1.0, &r2.0),
        (&got[1].0, &got[2].0),
        "the same leases, same receipts"
    );
    assert_eq!(r1.1["receives"], 1, "a resume is not a new delivery");
    ack(&s, "resume", &r1.1).await;
    ack(&s, "resume", &r2.1).await;

    // Nothing else is pending, and nothing went to the other member.
    let (_, stats) = s.call("GET", "/v1/queues/resume", None, None).await;
    assert_eq!(
        (stats["pending"].clone(), stats["leased"].clone()),
        (json!(0), json!(0))
    );
    assert!(b_rx.try_recv().is_err());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_nobody_resumes_go_to_the_group_after_the_grace() {
    let s = TestServer::start_with(None, |c| c.sse_resume_grace = Duration::from_millis(500)).await;
    let batch: Vec<Value> = (0..2).map(|i| json!({"body": format!("m{i}")})).collect();
    let (st, _) = s
        .call(
            "POST",
            "/v1/queues/grace/messages",
            None,
            Some(json!({"messages": batch})),
        )
        .await;
    assert_eq!(st, 200);
    let (a, mut a_rx) = stream(&s, "/v1/queues/grace/events?prefetch=2", None).await;
    let first = next_event(&mut a_rx).await;
    next_event(&mut a_rx).await;
    a.abort();
    let _ = a.await;

    // An id that is not a receipt, or that resumes nothing, is a fresh start.
    let (_b, mut b_rx) = stream(
        &s,
        "/v1/queues/grace/events?prefetch=2",
        Some("not-a-receipt"),
    )
    .await;
    let (_c, mut c_rx) = stream(&s, "/v1/queues/other/events", Some(&first.0)).await;
    let mut again = vec![next_event(&mut b_rx).await, next_event(&mut b_rx).await];
    again.sort_by(|x, y| x.1["body"].as_str().cmp(&y.1["body"].as_str()));
    assert_eq!(again[0].1["body"], "m0");
    assert_eq!(again[1].1["body"], "m1");
    assert!(
        again.iter().all(|(_, m)| m["receives"] == 2),
        "redelivered: {again:?}"
    );
    for (_, m) in &again {
        ack(&s, "grace", m).await;
    }
    assert!(
        c_rx.try_recv().is_err(),
        "another queue's id resumes nothing here"
    );
    s.stop().await;
}
