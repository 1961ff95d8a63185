//! SQS-style delivery through the real binary: `read --lease`, `ack`, `nack`,
//! `extend`, `queue config`, dead letters, `redrive`, delayed writes, headers,
//! `broker run`, competing and killed consumers, and the Python reference on
//! the same file. Lease expiry uses short leases and generous margins (exact
//! expiry is tested in the library with a hand-moved clock).

mod common;

use std::process::{Child, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn json_line(out: &std::process::Output) -> Value {
    let text = ok(out);
    serde_json::from_str(text.trim_end()).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

fn lease(sb: &Sandbox, queue: &str, duration: &str) -> Value {
    json_line(&sb.run(&["read", queue, "--lease", duration, "--json"]))
}

fn receipt(v: &Value) -> String {
    v["receipt"].as_str().expect("a receipt").to_owned()
}

fn peek_all(sb: &Sandbox, queue: &str) -> Vec<String> {
    let out = sb.run(&["peek", queue, "--all"]);
    match code(&out) {
        2 => Vec::new(),
        _ => ok(&out).lines().map(str::to_owned).collect(),
    }
}

#[test]
fn a_lease_carries_receipt_and_receives_and_ack_removes_it() {
    let sb = Sandbox::new();
    sb.write("q", "job");
    let v = lease(&sb, "q", "30s");
    assert_eq!(v["message"], "job");
    assert_eq!(v["receives"], 1);
    let id = v["timestamp"].as_i64().unwrap();
    assert!(receipt(&v).starts_with(&format!("{id}.1.")));
    // Invisible to everyone meanwhile.
    assert_code(&sb.run(&["peek", "q"]), 2);
    assert_code(&sb.run(&["read", "q"]), 2);
    assert_eq!(
        ok(&sb.run(&["list", "--stats"])),
        "q: 0 (1 total, 1 claimed) [leased 1]\n"
    );
    assert!(ok(&sb.run(&["--status"])).contains("leased_messages: 1\n"));
    assert_eq!(ok(&sb.run(&["ack", "q", &receipt(&v)])), "");
    let again = sb.run(&["ack", "q", &receipt(&v)]);
    assert_code(&again, 1);
    assert!(
        stderr(&again).contains("Unknown receipt"),
        "{}",
        stderr(&again)
    );
    assert_eq!(ok(&sb.run(&["list"])), "");
}

#[test]
fn plain_and_timestamped_lease_output_and_max() {
    let sb = Sandbox::new();
    for b in ["a", "b", "c", "d"] {
        sb.write("q", b);
    }
    assert_eq!(ok(&sb.run(&["read", "q", "--lease", "30s"])), "a\n");
    let t = ok(&sb.run(&["read", "q", "--lease", "30s", "-t"]));
    assert!(t.ends_with("\tb\n"), "{t}");
    assert_eq!(ok(&sb.run(&["read", "q", "--max", "2"])), "c\nd\n");
    assert_code(&sb.run(&["read", "q", "--lease"]), 2);
}

#[test]
fn lease_all_takes_every_visible_message() {
    let sb = Sandbox::new();
    for i in 0..30 {
        sb.write("q", &format!("m{i}"));
    }
    let out = ok(&sb.run(&["read", "q", "--all", "--lease", "30s", "--json"]));
    let receipts: Vec<String> = out
        .lines()
        .map(|l| receipt(&serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(receipts.len(), 30);
    let mut args = vec!["ack", "q"];
    args.extend(receipts.iter().map(String::as_str));
    ok(&sb.run(&args));
    assert_eq!(
        ok(&sb.run(&["list", "--stats"])),
        "q: 0 (30 total, 30 claimed)\n\nTotal claimed messages: 30/30\n"
    );
}

#[test]
fn an_expired_lease_comes_back_in_place_and_its_old_receipt_is_fenced() {
    let sb = Sandbox::new();
    sb.write("q", "first");
    sb.write("q", "second");
    let old = lease(&sb, "q", "300ms");
    assert_eq!(peek_all(&sb, "q"), ["second"]);
    sleep(Duration::from_millis(1000));
    assert_eq!(peek_all(&sb, "q"), ["first", "second"], "original position");
    let new = lease(&sb, "q", "30s");
    assert_eq!(
        (new["message"].as_str(), new["receives"].as_i64()),
        (Some("first"), Some(2))
    );
    let stale = sb.run(&["ack", "q", &receipt(&old)]);
    assert_code(&stale, 1);
    assert!(
        stderr(&stale).contains("Stale receipt"),
        "{}",
        stderr(&stale)
    );
    ok(&sb.run(&["ack", "q", &receipt(&new)]));
    assert_eq!(peek_all(&sb, "q"), ["second"]);
}

#[test]
fn nack_now_or_later() {
    let sb = Sandbox::new();
    sb.write("q", "a");
    sb.write("q", "b");
    let a = lease(&sb, "q", "30s");
    ok(&sb.run(&["nack", "q", &receipt(&a)]));
    assert_eq!(peek_all(&sb, "q"), ["a", "b"]);
    let a = lease(&sb, "q", "30s");
    assert_eq!(a["receives"], 2);
    ok(&sb.run(&["nack", "q", &receipt(&a), "--delay", "1s"]));
    assert_eq!(peek_all(&sb, "q"), ["b"]);
    assert!(ok(&sb.run(&["list", "--stats"])).contains("[delayed 1]"));
    assert_code(&sb.run(&["nack", "q", &receipt(&a)]), 1);
    sleep(Duration::from_millis(1600));
    assert_eq!(peek_all(&sb, "q"), ["a", "b"]);
}

#[test]
fn extend_keeps_a_lease_alive() {
    let sb = Sandbox::new();
    sb.write("q", "slow job");
    let v = lease(&sb, "q", "600ms");
    sleep(Duration::from_millis(200));
    ok(&sb.run(&["extend", "q", &receipt(&v), "5s"]));
    sleep(Duration::from_millis(1000));
    assert!(
        peek_all(&sb, "q").is_empty(),
        "still leased after the first lease ran out"
    );
    ok(&sb.run(&["ack", "q", &receipt(&v)]));
}

#[test]
fn max_receives_dead_letters_with_a_reason_and_redrive_brings_them_back() {
    let sb = Sandbox::new();
    let shown = ok(&sb.run(&[
        "queue",
        "config",
        "q",
        "--visibility",
        "300ms",
        "--max-receives",
        "2",
        "--dead-letter",
        "q.dlq",
    ]));
    assert_eq!(
        shown,
        "queue: q\nvisibility: 300ms\nmax_receives: 2\ndead_letter: q.dlq\n"
    );
    sb.write("q", "poison");
    sb.write("q", "fine");
    // Receive 1 is nacked; receive 2 runs out with the queue's visibility timeout.
    let first = json_line(&sb.run(&["read", "q", "--lease", "--json"]));
    ok(&sb.run(&["nack", "q", &receipt(&first)]));
    let second = json_line(&sb.run(&["read", "q", "--lease", "--json"]));
    assert_eq!(second["receives"], 2);
    sleep(Duration::from_millis(1000));
    assert_eq!(peek_all(&sb, "q"), ["fine"]);
    let dead = json_line(&sb.run(&["peek", "q.dlq", "--json"]));
    assert_eq!(dead["message"], "poison");
    assert_eq!(dead["dead_letter"]["source"], "q");
    assert_eq!(
        dead["dead_letter"]["reason"],
        "lease expired after 2 receives (max 2)"
    );
    assert_eq!(
        ok(&sb.run(&["list", "--stats"])),
        "q: 1 [visibility 300ms, max receives 2, dead letter q.dlq]\nq.dlq: 1\n"
    );
    assert_eq!(
        ok(&sb.run(&["redrive", "q.dlq"])),
        "Redrove 1 message from 'q.dlq'\n"
    );
    assert_eq!(
        peek_all(&sb, "q"),
        ["poison", "fine"],
        "back in its original position"
    );
    let back = lease(&sb, "q", "30s");
    assert_eq!(back["receives"], 1, "receive count starts again");
    assert!(back.get("dead_letter").is_none());
    assert_code(&sb.run(&["redrive", "q.dlq"]), 2);
}

#[test]
fn queue_config_shows_defaults_keeps_what_is_not_given_and_clears() {
    let sb = Sandbox::new();
    assert_eq!(
        ok(&sb.run(&["queue", "config", "jobs"])),
        "queue: jobs\nvisibility: 30s (default)\nmax_receives: none\ndead_letter: none\n"
    );
    ok(&sb.run(&["queue", "config", "jobs", "--dead-letter", "dead"]));
    ok(&sb.run(&["queue", "config", "jobs", "--max-receives", "5"]));
    assert_eq!(
        ok(&sb.run(&["queue", "config", "jobs", "--json"])),
        "{\"queue\": \"jobs\", \"visibility_ms\": 30000, \"max_receives\": 5, \"dead_letter\": \"dead\"}\n"
    );
    assert_eq!(
        ok(&sb.run(&["list", "--stats"])),
        "jobs: 0 [max receives 5, dead letter dead]\n",
        "configured queues are listed by --stats, even empty"
    );
    assert_eq!(ok(&sb.run(&["list"])), "", "but not by plain list");
    ok(&sb.run(&["queue", "config", "jobs", "--clear"]));
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "");
}

#[test]
fn a_delayed_write_is_invisible_until_due() {
    let sb = Sandbox::new();
    ok(&sb.run(&["write", "q", "later", "--delay", "1s"]));
    assert_code(&sb.run(&["read", "q"]), 2);
    assert!(ok(&sb.run(&["--status", "--json"])).contains("\"delayed_messages\": 1}"));
    sleep(Duration::from_millis(1500));
    assert_eq!(ok(&sb.run(&["read", "q"])), "later\n");
}

#[test]
fn headers_go_through_write_move_read_json_and_dump_load() {
    let sb = Sandbox::new();
    ok(&sb.run(&[
        "write",
        "a",
        "body",
        "-H",
        "priority=high",
        "-H",
        "retries=3",
        "-H",
        "temp=98.6",
        "-H",
        "ok=true",
        "-H",
        "none=null",
        "-H",
        "id=\"42\"",
    ]));
    let expected = "{\"priority\": \"high\", \"retries\": 3, \"temp\": 98.6, \"ok\": true, \"none\": null, \"id\": \"42\"}";
    let moved = ok(&sb.run(&["move", "a", "b", "--json"]));
    assert!(
        moved.contains(&format!("\"headers\": {expected}}}")),
        "{moved}"
    );
    let dump = ok(&sb.run(&["dump"]));
    assert!(
        dump.contains(&format!("\"headers\": {expected}}}")),
        "{dump}"
    );
    let leased = lease(&sb, "b", "30s");
    assert_eq!(leased["headers"]["retries"], 3);
    assert_eq!(leased["headers"]["id"], "42");
    ok(&sb.run(&["ack", "b", &receipt(&leased)]));

    let other = Sandbox::new();
    ok(&other.run_stdin(&["load"], dump.as_bytes()));
    let read = ok(&other.run(&["read", "b", "--json"]));
    assert!(
        read.contains(&format!("\"headers\": {expected}}}")),
        "{read}"
    );
    // Without headers, JSON is byte-for-byte the reference's.
    other.write("plain", "x");
    let plain = ok(&other.run(&["read", "plain", "--json"]));
    assert!(plain.starts_with("{\"message\": \"x\", \"timestamp\": ") && plain.ends_with("}\n"));
    assert_eq!(plain.matches(", ").count(), 1, "{plain}");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.write("q", "keep");
    for args in [
        &["read", "q", "--lease", "abc"][..],
        &["read", "q", "--lease", "0s"],
        &["read", "q", "--lease", "13h"],
        &["read", "q", "--max", "0"],
        &["write", "q", "x", "--delay", "-1s"],
        &["write", "q", "x", "--delay", "soon"],
        &["write", "q", "x", "-H", "novalue"],
        &["write", "q", "x", "-H", "=3"],
        &["write", "q", "x", "-H", "n=99999999999999999999"],
        &["ack", "q", "not-a-receipt"],
        &["ack", "q"],
        &["nack", "q", "1.1.00000000deadbeef"],
        &["nack", "q", "1.1.00000000deadbeef", "--delay", "x"],
        &["extend", "q", "1.1.00000000deadbeef", "5s"],
        &["extend", "q", "1.1.00000000deadbeef", "forever"],
        &["extend", "q", "1.1.00000000deadbeef", "0s"],
        &["nack", "q", "1.1.00000000deadbeef", "--delay", "400d"],
        &["write", "q", "x", "--delay", "400d"],
        &["run", "q", "--backoff", "soon", "--", "true"],
        &[
            "run",
            "q",
            "--dead-letter",
            "q",
            "--max-receives",
            "2",
            "--",
            "true",
        ],
        &["queue", "config", "q", "--dead-letter", "q"],
        &["queue", "config", "q", "--max-receives", "2"],
        &[
            "queue",
            "config",
            "q",
            "--max-receives",
            "0",
            "--dead-letter",
            "d",
        ],
        &["queue", "config", "q", "--visibility", "0"],
        &["queue", "config", "-bad"],
        &["queue", "config", "q", "--dead-letter", ".bad"],
        &["redrive", "q", "q"],
        &["run", "q"],
        &["run", "q", "--max-receives", "3", "--", "true"],
        &["run", "q", "--lease", "nope", "--", "true"],
        &["run", "q", "--lease", "0s", "--", "true"],
        &["run", "q", "--dead-letter", ".bad", "--", "true"],
        &[
            "run",
            "q",
            "--max-receives",
            "0",
            "--dead-letter",
            "d",
            "--",
            "true",
        ],
    ] {
        let out = sb.run(args);
        assert_code(&out, 1);
        assert!(!stderr(&out).is_empty(), "{args:?} says why");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    assert_eq!(
        ok(&sb.run(&["list", "--stats"])),
        "q: 1\n",
        "nothing changed"
    );
    assert_eq!(peek_all(&sb, "q"), ["keep"]);
}

// ---------------------------------------------------------------------------
// broker run

fn run_worker(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    let mut child = sb
        .broker()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let out = child.wait_with_output().unwrap();
    std::process::Output { status, ..out }
}

#[test]
fn run_feeds_each_body_to_the_command_and_acks_on_success() {
    let sb = Sandbox::new();
    for i in 1..=3 {
        ok(&sb.run(&[
            "write",
            "jobs",
            &format!("job {i}"),
            "-H",
            &format!("n={i}"),
        ]));
    }
    let out = run_worker(
        &sb,
        &[
            "run",
            "jobs",
            "--drain",
            "--",
            "sh",
            "-c",
            r#"printf '%s|%s|%s|%s|%s\n' "$(cat)" "$BROKER_QUEUE" "$BROKER_RECEIVE_COUNT" "$BROKER_HEADERS" "$BROKER_MESSAGE_ID""#,
        ],
    );
    let lines: Vec<String> = ok(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(
            f[..4],
            [
                &format!("job {}", i + 1)[..],
                "jobs",
                "1",
                &format!("{{\"n\":{}}}", i + 1)
            ]
        );
        assert_eq!(f[4].len(), 19);
    }
    assert_eq!(
        ok(&sb.run(&["list", "--stats"])),
        "jobs: 0 (3 total, 3 claimed)\n\nTotal claimed messages: 3/3\n"
    );
}

#[test]
fn run_retries_a_failure_and_dead_letters_a_poison_message() {
    let sb = Sandbox::new();
    sb.write("jobs", "flaky");
    sb.write("jobs", "poison");
    sb.write("jobs", "fine");
    // flaky fails on its first delivery only; poison always fails.
    let script = r#"b=$(cat); [ "$b" = poison ] && exit 3; [ "$b" = flaky ] && [ "$BROKER_RECEIVE_COUNT" -lt 2 ] && exit 1; echo "$b"; exit 0"#;
    let out = run_worker(
        &sb,
        &[
            "run",
            "jobs",
            "--drain",
            "--max-receives",
            "3",
            "--dead-letter",
            "jobs.dead",
            "--backoff",
            "20ms",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    let printed = stdout(&out);
    let mut done: Vec<&str> = printed.lines().collect();
    done.sort_unstable();
    assert_eq!(done, ["fine", "flaky"], "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("retrying in 20ms") && err.contains("retrying in 40ms"),
        "{err}"
    );
    assert!(
        err.contains("moved to dead-letter queue 'jobs.dead'"),
        "{err}"
    );
    let dead = json_line(&sb.run(&["read", "jobs.dead", "--json"]));
    assert_eq!(dead["message"], "poison");
    assert_eq!(dead["receives"], 3);
    assert_eq!(
        dead["dead_letter"]["reason"],
        "command exited with status 3; gave up after 3 receives (max 3)"
    );
    assert_code(&sb.run(&["read", "jobs"]), 2);
}

#[test]
fn run_uses_the_queues_configured_dead_letter_queue() {
    let sb = Sandbox::new();
    ok(&sb.run(&["queue", "config", "jobs", "--dead-letter", "graveyard"]));
    sb.write("jobs", "bad");
    let out = run_worker(
        &sb,
        &[
            "run",
            "jobs",
            "--drain",
            "--max-receives",
            "1",
            "--",
            "false",
        ],
    );
    assert_code(&out, 0);
    assert_eq!(ok(&sb.run(&["read", "graveyard"])), "bad\n");
}

#[test]
fn run_that_cannot_start_its_command_fails_and_keeps_the_message_uncounted() {
    let sb = Sandbox::new();
    sb.write("jobs", "x");
    let out = run_worker(
        &sb,
        &["run", "jobs", "--drain", "--", "/nonexistent/program"],
    );
    assert_code(&out, 1);
    assert!(stderr(&out).contains("cannot run /nonexistent/program"));
    let v = lease(&sb, "jobs", "30s");
    assert_eq!(
        v["receives"], 1,
        "the failed start was not counted as a receive"
    );
}

#[test]
fn run_without_drain_waits_for_new_messages_and_stops_on_sigterm() {
    let sb = Sandbox::new();
    let out_file = sb.path().join("seen.txt");
    let mut worker = sb
        .broker()
        .args(["run", "jobs", "--", "sh", "-c"])
        .arg(format!(
            "cat >> '{}'; echo >> '{}'",
            out_file.display(),
            out_file.display()
        ))
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(300));
    sb.write("jobs", "arrived later");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&out_file).unwrap_or_default() != "arrived later\n" {
        assert!(Instant::now() < deadline, "worker never ran the command");
        sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
    let status = wait_bounded(&mut worker, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert_code(&sb.run(&["read", "jobs"]), 2);
}

#[test]
fn run_keeps_the_lease_alive_while_a_long_command_runs() {
    let sb = Sandbox::new();
    sb.write("jobs", "long");
    let mut worker = sb
        .broker()
        .args([
            "run", "jobs", "--drain", "--lease", "300ms", "--", "sleep", "1.2",
        ])
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(800));
    // Well past the lease length: a heartbeat must have extended it.
    assert_code(&sb.run(&["read", "jobs"]), 2);
    let status = wait_bounded(&mut worker, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        ok(&sb.run(&["list", "--stats"])),
        "jobs: 0 (1 total, 1 claimed)\n\nTotal claimed messages: 1/1\n"
    );
}

// ---------------------------------------------------------------------------
// Several consumers, killed consumers, and the Python reference.

fn spawn_worker_group(sb: &Sandbox, args: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = sb.broker();
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.process_group(0);
    cmd.spawn().unwrap()
}

#[test]
fn competing_workers_process_every_message_exactly_once() {
    let sb = Sandbox::new();
    let n = 60;
    let rows: Vec<(i64, String)> = (0..n).map(|i| (now_ns() + i, format!("m{i}"))).collect();
    sb.insert_rows("jobs", &rows);
    let log = sb.path().join("done.log");
    let script = format!(
        "b=$(cat); echo \"$b $BROKER_RECEIVE_COUNT\" >> '{}'",
        log.display()
    );
    let mut workers: Vec<Child> = (0..4)
        .map(|_| {
            spawn_worker_group(
                &sb,
                &[
                    "run", "jobs", "--drain", "--lease", "30s", "--", "sh", "-c", &script,
                ],
            )
        })
        .collect();
    for w in &mut workers {
        assert_eq!(wait_bounded(w, Duration::from_secs(60)).code(), Some(0));
    }
    let mut seen: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    seen.sort();
    let mut expected: Vec<String> = (0..n).map(|i| format!("m{i} 1")).collect();
    expected.sort();
    assert_eq!(seen, expected, "each message once, on its first delivery");
}

#[test]
fn a_killed_worker_loses_nothing_its_message_comes_back_after_the_lease() {
    let sb = Sandbox::new();
    for i in 0..5 {
        sb.write("jobs", &format!("m{i}"));
    }
    let mut worker = spawn_worker_group(
        &sb,
        &["run", "jobs", "--lease", "500ms", "--", "sleep", "30"],
    );
    // Wait until it has leased the first message.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok(&sb.run(&["list", "--stats"])).contains("leased 1") {
        assert!(Instant::now() < deadline, "worker never leased");
        sleep(Duration::from_millis(20));
    }
    // SIGKILL the worker and its child together (its process group).
    unsafe { libc::kill(-(worker.id() as i32), libc::SIGKILL) };
    let _ = worker.wait();
    sleep(Duration::from_millis(1200));
    let out = ok(&sb.run(&["read", "jobs", "--all", "--json"]));
    let got: Vec<(String, i64)> = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["message"].as_str().unwrap().to_owned(),
                v["receives"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("m0".into(), 1),
            ("m1".into(), 0),
            ("m2".into(), 0),
            ("m3".into(), 0),
            ("m4".into(), 0)
        ],
        "all five, in order; the interrupted one once received"
    );
}

#[test]
fn sigkilled_lease_readers_lose_nothing() {
    let sb = Sandbox::new();
    for i in 0..200 {
        sb.write("q", &format!("m{i}"));
    }
    // Lease readers killed at random moments; whatever they leased comes back.
    for delay_ms in [0u64, 2, 5, 10] {
        let mut child = sb
            .broker()
            .args(["read", "q", "--all", "--lease", "400ms"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    sleep(Duration::from_millis(1000));
    let mut bodies: Vec<String> = ok(&sb.run(&["read", "q", "--all"]))
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies.len(), 200, "nothing lost, nothing duplicated");
    bodies.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(bodies, sorted);
}

#[test]
fn the_python_reference_sees_neither_leased_nor_delayed_messages() {
    let sb = Sandbox::new();
    sb.write("q", "leased");
    ok(&sb.run(&["write", "q", "delayed", "--delay", "1s"]));
    ok(&sb.run(&["write", "q", "visible", "-H", "h=1"]));
    let v = lease(&sb, "q", "30s");
    assert_eq!(ok(&sb.run_ref(&["peek", "q", "--all"])), "visible\n");
    assert_eq!(
        ok(&sb.run_ref(&["list", "--stats"])),
        "q: 1 (3 total, 2 claimed)\n"
    );
    assert_eq!(ok(&sb.run_ref(&["read", "q", "--all"])), "visible\n");
    // The reference's vacuum removes what it consumed, never what we hold back.
    ok(&sb.run_ref(&["--vacuum"]));
    ok(&sb.run(&["ack", "q", &receipt(&v)]));
    sleep(Duration::from_millis(1500));
    // Once due, a litebroker command (any read or list) makes it visible to Python too.
    assert_eq!(ok(&sb.run(&["list"])), "q: 1\n");
    assert_eq!(ok(&sb.run_ref(&["read", "q"])), "delayed\n");
    // And the reference still writes and reads the queue as before.
    ok(&sb.run_ref(&["write", "q", "from python"]));
    let back = lease(&sb, "q", "30s");
    assert_eq!(back["message"], "from python");
    ok(&sb.run(&["ack", "q", &receipt(&back)]));
    assert_code(&sb.run_ref(&["read", "q"]), 2);
}

#[test]
fn help_lists_the_lease_commands() {
    let sb = Sandbox::new();
    let help = ok(&sb.run(&["--help"]));
    for cmd in ["ack", "nack", "extend", "queue", "redrive", "run"] {
        assert!(
            help.contains(&format!("  {cmd} ")),
            "{cmd} missing from:\n{help}"
        );
    }
}
