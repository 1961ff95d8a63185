//! Publish/subscribe through the real binary: fan-out, wildcards, consumer
//! groups across processes, replay, retention, `listen` and its cleanup (also
//! after SIGKILL), request/reply, headers end to end, and bad input.

mod common;

use std::process::{Child, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn lines(out: &std::process::Output) -> Vec<String> {
    ok(out).lines().map(str::to_owned).collect()
}

fn drain(sb: &Sandbox, queue: &str) -> Vec<String> {
    let out = sb.run(&["read", queue, "--all"]);
    if code(&out) == 2 {
        return Vec::new();
    }
    lines(&out)
}

fn subscribe(sb: &Sandbox, name: &str, pattern: &str) {
    ok(&sb.run(&["-q", "subscribe", name, pattern]));
}

/// Waits until `broker subscriptions` shows a listener's private subscription.
fn wait_for_listener(sb: &Sandbox) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let subs = ok(&sb.run(&["subscriptions"]));
        if let Some(line) = subs.lines().find(|l| l.starts_with("lb.listen.")) {
            return line.split(':').next().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "listener never subscribed");
        sleep(Duration::from_millis(20));
    }
}

fn spawn_listen(sb: &Sandbox, args: &[&str]) -> Child {
    let mut cmd = sb.broker();
    cmd.arg("listen")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

#[test]
fn publish_reaches_every_matching_subscription_and_says_how_many() {
    let sb = Sandbox::new();
    subscribe(&sb, "all", "news.+");
    subscribe(&sb, "one", "news.=");
    subscribe(&sb, "exact", "news.sports");
    subscribe(&sb, "errors", "logs.=.error");
    assert_eq!(ok(&sb.run(&["publish", "news.sports", "goal"])), "3\n");
    assert_eq!(
        ok(&sb.run(&["publish", "news.sports.live", "minute 90"])),
        "1\n"
    );
    assert_eq!(ok(&sb.run(&["publish", "logs.api.error", "boom"])), "1\n");
    assert_eq!(ok(&sb.run(&["publish", "logs.api.warn", "meh"])), "0\n");
    assert_eq!(ok(&sb.run(&["-q", "publish", "news.tech", "chip"])), "");
    assert_eq!(drain(&sb, "all"), ["goal", "minute 90", "chip"]);
    assert_eq!(drain(&sb, "one"), ["goal", "chip"]);
    assert_eq!(drain(&sb, "exact"), ["goal"]);
    assert_eq!(drain(&sb, "errors"), ["boom"]);
    assert_eq!(
        ok(&sb.run(&["topics"])),
        "logs.api.error: 1 message (offsets 0-0)\nlogs.api.warn: 1 message (offsets 0-0)\n\
         news.sports: 1 message (offsets 0-0)\nnews.sports.live: 1 message (offsets 0-0)\n\
         news.tech: 1 message (offsets 0-0)\n"
    );
}

#[test]
fn stdin_body_headers_topic_and_offset_arrive_end_to_end() {
    let sb = Sandbox::new();
    subscribe(&sb, "orders", "orders.+");
    ok(&sb.run_stdin(
        &[
            "publish",
            "orders.eu",
            "-",
            "-H",
            "qty=3",
            "-H",
            "rush=true",
            "-H",
            "who=ann",
        ],
        b"line one\nline two",
    ));
    ok(&sb.run(&["publish", "orders.eu", "second"]));
    ok(&sb.run(&["move", "orders", "archive"]));
    let out = ok(&sb.run(&["read", "archive", "--json"]));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["message"], "line one\nline two");
    assert_eq!(
        v["headers"],
        serde_json::json!({"qty": 3, "rush": true, "who": "ann"})
    );
    assert_eq!(
        (v["topic"].as_str(), v["offset"].as_i64()),
        (Some("orders.eu"), Some(0))
    );
    let second: Value =
        serde_json::from_str(ok(&sb.run(&["read", "orders", "--json"])).trim()).unwrap();
    assert_eq!(second["offset"], 1);
    assert!(second.get("headers").is_none());
}

#[test]
fn subscriptions_show_pattern_depth_and_position_and_unsubscribe_removes() {
    let sb = Sandbox::new();
    subscribe(&sb, "s", "t.+");
    for i in 0..3 {
        ok(&sb.run(&["publish", "t.a", &format!("a{i}")]));
    }
    ok(&sb.run(&["publish", "t.b", "b0"]));
    ok(&sb.run(&["read", "s"]));
    assert_eq!(
        ok(&sb.run(&["subscriptions"])),
        "s: t.+ (3 pending, next t.a:1 t.b:0)\n"
    );
    ok(&sb.run(&["unsubscribe", "s"]));
    assert_eq!(ok(&sb.run(&["subscriptions"])), "");
    assert_eq!(
        ok(&sb.run(&["list"])),
        "",
        "its pending messages went with it"
    );
    assert_eq!(ok(&sb.run(&["publish", "t.a", "x"])), "0\n");
}

#[test]
fn a_consumer_group_across_processes_gets_each_message_once() {
    let sb = Sandbox::new();
    subscribe(&sb, "group", "jobs");
    subscribe(&sb, "audit", "jobs");
    let n = 300;
    let mut batch = String::new();
    for i in 0..n {
        batch.push_str(&format!("j{i}\n"));
    }
    for i in 0..n {
        ok(&sb.run(&["-q", "publish", "jobs", &format!("j{i}")]));
    }
    let readers: Vec<Child> = (0..3)
        .map(|_| {
            sb.broker()
                .args(["read", "group", "--all"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen = Vec::new();
    for r in readers {
        let out = r.wait_with_output().unwrap();
        seen.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(str::to_owned),
        );
    }
    seen.sort();
    let mut expected: Vec<String> = (0..n).map(|i| format!("j{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected, "every message once across the group");
    assert_eq!(
        drain(&sb, "audit").len(),
        n,
        "another subscription got them all too"
    );
}

#[test]
fn replay_from_earliest_an_offset_or_a_time() {
    let sb = Sandbox::new();
    for i in 0..4 {
        ok(&sb.run(&["publish", "ev.a", &format!("a{i}")]));
        ok(&sb.run(&["publish", "ev.b", &format!("b{i}")]));
    }
    let mid = now_ns();
    ok(&sb.run(&["publish", "ev.a", "a4"]));
    assert_eq!(
        ok(&sb.run(&["subscribe", "all", "ev.=", "--from", "earliest"])),
        "Subscribed 'all' to 'ev.=' (9 messages replayed)\n"
    );
    assert_eq!(
        drain(&sb, "all"),
        ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3", "a4"]
    );
    ok(&sb.run(&["subscribe", "from2", "ev.a", "--from", "2"]));
    assert_eq!(drain(&sb, "from2"), ["a2", "a3", "a4"]);
    ok(&sb.run(&["subscribe", "recent", "ev.+", "--from", &mid.to_string()]));
    assert_eq!(drain(&sb, "recent"), ["a4"]);
    ok(&sb.run(&["subscribe", "new", "ev.+"]));
    assert!(drain(&sb, "new").is_empty(), "latest is the default");
}

#[test]
fn retention_bounds_the_log_and_is_shown() {
    let sb = Sandbox::new();
    assert_eq!(
        ok(&sb.run(&["topic", "config", "metrics.+", "--retain", "2"])),
        "topic: metrics.+\nretain: 2 messages\n"
    );
    for i in 0..5 {
        ok(&sb.run(&["publish", "metrics.cpu", &format!("c{i}")]));
    }
    assert_eq!(
        ok(&sb.run(&["topics"])),
        "metrics.cpu: 2 messages (offsets 3-4) [retain 2 messages]\n"
    );
    ok(&sb.run(&["subscribe", "late", "metrics.cpu", "--from", "earliest"]));
    assert_eq!(drain(&sb, "late"), ["c3", "c4"]);
    assert_eq!(
        ok(&sb.run(&["topic", "config", "metrics.+", "--retain", "1h"])),
        "topic: metrics.+\nretain: 1h\n"
    );
    assert_eq!(
        ok(&sb.run(&["topic", "config", "metrics.+", "--unlimited"])),
        "topic: metrics.+\nretain: unlimited\n"
    );
    assert_eq!(
        ok(&sb.run(&["topics"])),
        "metrics.cpu: 2 messages (offsets 3-4)\n"
    );
}

#[test]
fn listen_prints_what_arrives_and_exits_after_count() {
    let sb = Sandbox::new();
    let listener = spawn_listen(&sb, &["chat.+", "--json", "--count", "2"]);
    let private = wait_for_listener(&sb);
    assert_eq!(ok(&sb.run(&["publish", "chat.room1", "hi"])), "1\n");
    assert_eq!(ok(&sb.run(&["publish", "chat.room2", "there"])), "1\n");
    let out = listener.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0]["message"].as_str(), got[0]["topic"].as_str()),
        (Some("hi"), Some("chat.room1"))
    );
    assert_eq!(got[1]["message"], "there");
    assert_eq!(
        ok(&sb.run(&["subscriptions"])),
        "",
        "{private} was removed on exit"
    );
    assert_eq!(ok(&sb.run(&["publish", "chat.room1", "nobody"])), "0\n");
}

#[test]
fn what_listen_prints_is_consumed_for_good() {
    // Regression: a second connection in the listener once lost its commits
    // when another process closed the database.
    let sb = Sandbox::new();
    let mut listener = spawn_listen(&sb, &["t", "--count", "5"]);
    let private = wait_for_listener(&sb);
    ok(&sb.run(&["publish", "t", "one"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = ok(&sb.run(&["list", "--stats"]));
        if stats.contains(&format!("{private}: 0 (1 total, 1 claimed)")) {
            break;
        }
        assert!(Instant::now() < deadline, "never consumed: {stats}");
        sleep(Duration::from_millis(20));
    }
    let _ = listener.kill();
    let _ = listener.wait();
}

#[test]
fn listen_with_a_timeout_and_nothing_arriving_exits_2() {
    let sb = Sandbox::new();
    let started = Instant::now();
    let out = sb.run(&["listen", "quiet.+", "--timeout", "300ms"]);
    assert_code(&out, 2);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(ok(&sb.run(&["subscriptions"])), "");
}

#[test]
fn a_sigkilled_listener_is_cleaned_up_by_the_next_publisher() {
    let sb = Sandbox::new();
    let mut listener = spawn_listen(&sb, &["alerts"]);
    let private = wait_for_listener(&sb);
    assert_eq!(ok(&sb.run(&["publish", "alerts", "first"])), "1\n");
    listener.kill().unwrap();
    listener.wait().unwrap();
    let stats = ok(&sb.run(&["list", "--stats"]));
    assert!(stats.contains(&private), "left behind for now: {stats}");
    assert_eq!(
        ok(&sb.run(&["publish", "alerts", "second"])),
        "0\n",
        "reaped, not fed"
    );
    assert_eq!(ok(&sb.run(&["subscriptions"])), "");
    assert_eq!(
        ok(&sb.run(&["list", "--stats"])),
        "",
        "its rows went with it"
    );
}

#[test]
fn request_prints_the_first_reply_and_times_out_with_exit_2() {
    let sb = Sandbox::new();
    let bin = broker_bin();
    let script = format!(
        "req=$('{b}' listen rpc.echo --count 1 --json) && '{b}' -q reply \"$req\" pong",
        b = bin.display()
    );
    let mut responder = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(sb.path())
        .spawn()
        .unwrap();
    wait_for_listener(&sb);
    let reply = ok(&sb.run(&["request", "rpc.echo", "ping", "--timeout", "10s"]));
    assert_eq!(reply, "pong\n");
    assert_eq!(
        wait_bounded(&mut responder, Duration::from_secs(10)).code(),
        Some(0)
    );
    let started = Instant::now();
    assert_code(
        &sb.run(&["request", "rpc.nobody", "hello?", "--timeout", "300ms"]),
        2,
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        ok(&sb.run(&["subscriptions"])),
        "",
        "request inboxes are removed"
    );
}

#[test]
fn the_python_reference_reads_a_subscription_like_any_queue() {
    let sb = Sandbox::new();
    subscribe(&sb, "feed", "news.+");
    ok(&sb.run(&["publish", "news.a", "from litebroker"]));
    assert_eq!(ok(&sb.run_ref(&["read", "feed"])), "from litebroker\n");
    assert_code(&sb.run_ref(&["read", "feed"]), 2);
}

#[test]
fn copies_keep_topic_and_offset_when_python_reads_vacuums_and_writes_between() {
    let sb = Sandbox::new();
    subscribe(&sb, "feed", "news.+");
    for body in ["a", "b", "c"] {
        ok(&sb.run(&["publish", "news.x", body]));
    }
    assert_eq!(ok(&sb.run_ref(&["read", "feed"])), "a\n");
    ok(&sb.run_ref(&["--vacuum"]));
    ok(&sb.run_ref(&["write", "feed", "from python"]));
    let lines = ok(&sb.run(&["read", "feed", "--all", "--json"]));
    let got: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let view: Vec<(&str, Option<&str>, Option<i64>)> = got
        .iter()
        .map(|m| {
            (
                m["message"].as_str().unwrap(),
                m["topic"].as_str(),
                m["offset"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            ("b", Some("news.x"), Some(1)),
            ("c", Some("news.x"), Some(2)),
            ("from python", None, None),
        ]
    );
}

#[test]
fn bad_input_is_refused_with_exit_1_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.write("busy", "x");
    subscribe(&sb, "taken", "t");
    for args in [
        &["publish", "a..b", "x"][..],
        &["publish", "news.=", "x"],
        &["publish", "news.+", "x"],
        &["publish", "a_b", "x"],
        &["publish", "", "x"],
        &["publish", "t", "x", "-H", "broken"],
        &["subscribe", "s", "a.*"],
        &["subscribe", "s", "a..b"],
        &["subscribe", "-s", "t"],
        &["subscribe", "busy", "t"],
        &["subscribe", "taken", "t"],
        &["subscribe", "s", "t", "--from", "whenever"],
        &["unsubscribe", "nope"],
        &["topic", "config", "t", "--retain", "forever"],
        &["topic", "config", "a..b", "--retain", "5"],
        &["listen", "t", "--count", "0"],
        &["listen", "a.*"],
        &["listen", "t", "--timeout", "soon"],
        &["request", "a.=", "x"],
        &["request", "t", "x", "--timeout", "x"],
        &["reply", "not json", "x"],
        &["reply", "{\"message\": \"no reply-to\"}", "x"],
        &["reply", "-", "-"],
    ] {
        let out = sb.run(args);
        assert_code(&out, 1);
        assert!(!stderr(&out).is_empty(), "{args:?} says why");
    }
    assert_eq!(ok(&sb.run(&["topics"])), "", "nothing was published");
    assert_eq!(ok(&sb.run(&["subscriptions"])), "taken: t (0 pending)\n");
    assert_eq!(ok(&sb.run(&["list"])), "busy: 1\n");
}

#[test]
fn a_message_over_10_mib_is_refused_by_publish_and_request_and_nothing_is_stored() {
    let sb = Sandbox::new();
    subscribe(&sb, "s", "big");
    let over = vec![b'x'; 10 * 1024 * 1024 + 1];
    for args in [
        &["publish", "big", "-"][..],
        &["request", "big", "-", "--timeout", "1s"],
    ] {
        let out = sb.run_stdin(args, &over);
        assert_code(&out, 1);
        assert!(
            stderr(&out).contains("exceeds maximum size"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(ok(&sb.run(&["topics"])), "");
    assert_eq!(ok(&sb.run(&["subscriptions"])), "s: big (0 pending)\n");
    let exact = vec![b'y'; 10 * 1024 * 1024];
    assert_eq!(ok(&sb.run_stdin(&["publish", "big", "-"], &exact)), "1\n");
    assert_eq!(ok(&sb.run(&["read", "s"])).len(), exact.len() + 1);
}
