//! A reader of stdout that stops early (`| head -1`) costs only what it read:
//! when stdout is a pipe, a message counts as delivered once the reader has
//! read it out of the pipe, and the writer runs only a small, growing window
//! ahead of the reader. What was never read returns to the queue in place.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_code, broker_bin, json_messages, stderr, wait_bounded, Sandbox};

/// The most messages a reader that stops after one line may cost (it is 1 in
/// practice; the reference loses 2 to 83).
const MAX_LOST: usize = 100;

/// `sh -c script` in the sandbox, with the test environment of the broker and
/// `$BROKER` naming the binary under test.
fn shell(sb: &Sandbox, script: &str) -> Command {
    let template = sb.broker();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .current_dir(sb.path())
        .env("BROKER", broker_bin())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in template.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd
}

/// Runs `script` in a process group of its own; if it is still running after
/// 30 s, kills the whole group and fails the test.
fn run_shell(sb: &Sandbox, script: &str, env: &[(&str, &str)]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut child = shell(sb, script)
        .envs(env.iter().copied())
        .process_group(0)
        .spawn()
        .expect("spawn sh");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let out = read_all(Box::new(child.stdout.take().unwrap()));
    let err = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: signals the process group this test created.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            panic!("`{script}` still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Bodies still queued in `q`, in order.
fn remaining(sb: &Sandbox) -> Vec<String> {
    let out = sb.run(&["peek", "q", "--all", "--json"]);
    json_messages(&out).into_iter().map(|m| m.0).collect()
}

/// Asserts that `q` holds exactly `bodies[consumed..]` with `consumed` at
/// most `gone_before + MAX_LOST`, and returns `consumed`.
fn assert_ordered_suffix(sb: &Sandbox, bodies: &[String], gone_before: usize) -> usize {
    let left = remaining(sb);
    let consumed = bodies.len() - left.len();
    assert!(
        consumed <= gone_before + MAX_LOST,
        "{} messages consumed for one line read",
        consumed - gone_before
    );
    assert!(
        left == bodies[consumed..],
        "what remains is the unread tail, in order"
    );
    consumed
}

fn fill(sb: &Sandbox, n: usize) -> Vec<String> {
    sb.fill("q", n, "m").into_iter().map(|r| r.1).collect()
}

#[test]
fn read_all_into_head_1_consumes_about_one_message() {
    let sb = Sandbox::new();
    let bodies = fill(&sb, 10_000);
    let mut consumed = 0;
    for (run, env) in [
        &[][..],
        &[][..],
        &[][..],
        &[("BROKER_READ_COMMIT_INTERVAL", "50")][..],
        &[][..],
    ]
    .into_iter()
    .enumerate()
    {
        let out = run_shell(&sb, r#""$BROKER" read q --all | head -1"#, env);
        assert_code(&out, 0);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", bodies[consumed])
        );
        assert!(out.stderr.is_empty(), "run {run}: {}", stderr(&out));
        consumed = assert_ordered_suffix(&sb, &bodies, consumed);
    }
}

#[test]
fn a_reader_that_reads_one_line_then_stops_costs_about_one_message() {
    let sb = Sandbox::new();
    let bodies = fill(&sb, 100_000);
    let mut child = sb
        .broker()
        .args(["read", "q", "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn broker");
    // A buffered reader, like any program's stdin: it reads whatever the pipe holds.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert_eq!(first, format!("{}\n", bodies[0]));
    std::thread::sleep(Duration::from_millis(200));
    drop(reader);
    let status = wait_bounded(&mut child, Duration::from_secs(15));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.is_empty(),
        "a closed pipe ends the command quietly: {err}"
    );
    assert_eq!(status.code(), Some(0));
    assert_ordered_suffix(&sb, &bodies, 0);
}

#[test]
fn a_reader_that_never_reads_consumes_nothing() {
    let sb = Sandbox::new();
    let bodies = fill(&sb, 5_000);
    let out = run_shell(&sb, r#""$BROKER" read q --all | sleep 0.3"#, &[]);
    assert_code(&out, 0);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(remaining(&sb), bodies);
    let out = run_shell(&sb, r#""$BROKER" read q | sleep 0.3"#, &[]);
    assert_code(&out, 0);
    assert_eq!(remaining(&sb), bodies);
}

#[test]
fn watch_into_head_1_consumes_about_one_message() {
    let sb = Sandbox::new();
    let bodies = fill(&sb, 3_000);
    let mut consumed = 0;
    // The second form keeps the pipe open 0.2 s after head is gone.
    for consumer in ["head -1", "{ head -1; sleep 0.2; }", "head -1"] {
        let script = format!(r#""$BROKER" watch q 2>/dev/null | {consumer}"#);
        let out = run_shell(&sb, &script, &[]);
        assert_code(&out, 0);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}\n", bodies[consumed])
        );
        consumed = assert_ordered_suffix(&sb, &bodies, consumed);
    }
}

#[test]
fn watch_into_head_1_while_messages_are_written() {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["--status"]), 0);
    // Writes arrive while the watcher runs; head takes the first and goes.
    let script = r#"
        ( "$BROKER" watch q 2>/dev/null | head -1 ) &
        i=0
        while [ $i -lt 300 ]; do "$BROKER" write q "w$i" || exit 1; i=$((i+1)); done
        wait"#;
    let out = run_shell(&sb, script, &[]);
    assert_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "w0\n");
    let bodies: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
    assert_ordered_suffix(&sb, &bodies, 0);
}

#[test]
fn a_fast_reader_gets_every_message_exactly_once() {
    let sb = Sandbox::new();
    let bodies = fill(&sb, 30_000);
    let out = run_shell(&sb, r#""$BROKER" read q --all | cat"#, &[]);
    assert_code(&out, 0);
    let got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(got.len(), bodies.len());
    assert!(got == bodies, "every message once, in order");
    assert!(remaining(&sb).is_empty());
    assert!(
        !sb.path().join(".broker.db.holder-1").exists(),
        "no progress file left behind"
    );
}

#[test]
fn a_slow_reader_gets_every_message_exactly_once() {
    // The reader takes a line at a time, pausing now and then: the writer
    // keeps waiting for it rather than counting the pipe's buffer as read.
    let sb = Sandbox::new();
    let bodies = fill(&sb, 2_000);
    let out = run_shell(
        &sb,
        r#""$BROKER" read q --all | { n=0; while read -r line; do echo "$line"; n=$((n+1)); [ $((n % 500)) -eq 0 ] && sleep 0.1; done; }"#,
        &[],
    );
    assert_code(&out, 0);
    let got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert!(got == bodies, "every message once, in order");
    assert!(remaining(&sb).is_empty());
}
