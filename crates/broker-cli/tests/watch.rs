//! `broker watch` with real watcher and writer processes.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use common::{code, stdout, Sandbox};

/// A running watcher whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: Receiver<String>,
}

fn spawn_watch(sb: &Sandbox, args: &[&str]) -> Running {
    let mut child = sb
        .broker()
        .arg("watch")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watcher");
    let lines = collect_lines(child.stdout.take().unwrap());
    Running { child, lines }
}

fn collect_lines(out: ChildStdout) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Running {
    /// Waits for `n` lines (fails the test after a generous timeout).
    fn take(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        (0..n)
            .map(|i| {
                let left = deadline.saturating_duration_since(Instant::now());
                self.lines
                    .recv_timeout(left)
                    .unwrap_or_else(|_| panic!("line {i} of {n} never came"))
            })
            .collect()
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// Exit code after `sig`, failing if the watcher does not stop within 5 s.
    fn stop_with(mut self, sig: libc::c_int) -> i32 {
        self.signal(sig);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited normally");
            }
            assert!(Instant::now() < deadline, "watcher ignored the signal");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn write(sb: &Sandbox, queue: &str, body: &str) {
    assert_eq!(code(&sb.run(&["write", queue, body])), 0);
}

fn remaining(sb: &Sandbox, queue: &str) -> Vec<String> {
    let out = sb.run(&["read", queue, "--all"]);
    stdout(&out).lines().map(str::to_owned).collect()
}

#[test]
fn consume_mode_prints_existing_then_new_messages_and_removes_them() {
    let sb = Sandbox::new();
    write(&sb, "q", "before");
    let w = spawn_watch(&sb, &["q"]);
    assert_eq!(w.take(1), ["before"]);
    write(&sb, "q", "after");
    assert_eq!(w.take(1), ["after"]);
    assert_eq!(w.stop_with(libc::SIGINT), 0);
    assert!(remaining(&sb, "q").is_empty());
}

#[test]
fn peek_mode_leaves_messages_and_shows_each_once() {
    let sb = Sandbox::new();
    write(&sb, "q", "one");
    let w = spawn_watch(&sb, &["q", "--peek", "--json"]);
    let first = w.take(1);
    assert!(
        first[0].starts_with("{\"message\": \"one\", \"timestamp\": "),
        "{first:?}"
    );
    write(&sb, "q", "two");
    assert!(w.take(1)[0].contains("\"two\""));
    assert!(
        w.lines.recv_timeout(Duration::from_millis(300)).is_err(),
        "shown twice"
    );
    assert_eq!(w.stop_with(libc::SIGTERM), 0);
    assert_eq!(remaining(&sb, "q"), ["one", "two"]);
}

#[test]
fn move_mode_drains_into_the_destination_with_timestamps() {
    let sb = Sandbox::new();
    write(&sb, "src", "a");
    let w = spawn_watch(&sb, &["src", "--move", "dst", "-t"]);
    write(&sb, "src", "b");
    let lines = w.take(2);
    let bodies: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once('\t').expect("id\\tbody").1)
        .collect();
    assert_eq!(bodies, ["a", "b"]);
    assert_eq!(w.stop_with(libc::SIGINT), 0);
    assert_eq!(remaining(&sb, "dst"), ["a", "b"]);
    assert!(remaining(&sb, "src").is_empty());
}

#[test]
fn since_skips_older_messages() {
    let sb = Sandbox::new();
    write(&sb, "q", "old");
    let id = stdout(&sb.run(&["peek", "q", "-t"]))
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    write(&sb, "q", "new");
    let w = spawn_watch(&sb, &["q", "--peek", "--since", &id]);
    assert_eq!(w.take(1), ["new"]);
    w.kill();
}

#[test]
fn start_up_line_goes_to_stderr_unless_quiet() {
    let sb = Sandbox::new();
    let w = spawn_watch(&sb, &["q", "--move", "d"]);
    std::thread::sleep(Duration::from_millis(300));
    w.signal(libc::SIGINT);
    let out = w.child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Watching queue 'q' (move to d mode)...\n"
    );
    let quiet = spawn_watch(&sb, &["q", "--quiet"]);
    std::thread::sleep(Duration::from_millis(300));
    quiet.signal(libc::SIGINT);
    let out = quiet.child.wait_with_output().unwrap();
    assert!(out.stderr.is_empty());
}

#[test]
fn argument_errors_exit_1_at_once() {
    let sb = Sandbox::new();
    for args in [
        &["watch", "q", "--move", "d", "--since", "1"][..],
        &["watch", "q", "--peek", "--move", "d"],
        &["watch", "q", "--since", "garbage"],
        &["watch", "-bad"],
        &["watch", "q", "--move", "q"],
    ] {
        let out = sb.run(args);
        assert_eq!(code(&out), 1, "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn competing_watchers_get_each_message_exactly_once() {
    let sb = Sandbox::new();
    let watchers: Vec<Running> = (0..3).map(|_| spawn_watch(&sb, &["q", "-q"])).collect();
    let n = 300;
    let bodies: String = (0..n)
        .map(|i| {
            format!(
                "{{\"queue\": \"q\", \"id\": {}, \"body\": \"m{i}\"}}\n",
                1_800_000_000_000_000_000i64 + i * 4096
            )
        })
        .collect();
    assert_eq!(code(&sb.run_stdin(&["load"], bodies.as_bytes())), 0);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < n as usize && Instant::now() < deadline {
        for w in &watchers {
            while let Ok(line) = w.lines.try_recv() {
                seen.push(line);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), n as usize, "duplicates or losses");
    assert_eq!(unique.len(), n as usize);
    for w in watchers {
        assert_eq!(w.stop_with(libc::SIGINT), 0);
    }
}

#[test]
fn reader_gone_before_messages_arrive_keeps_every_message() {
    let sb = Sandbox::new();
    let mut child = sb
        .broker()
        .args(["watch", "q", "-q"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything arrives
    std::thread::sleep(Duration::from_millis(300));
    for body in ["a", "b", "c"] {
        write(&sb, "q", body);
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "a vanished reader ends the watch quietly"
    );
    assert_eq!(remaining(&sb, "q"), ["a", "b", "c"]);
}

#[test]
fn slow_reader_does_not_block_writers_and_loses_nothing() {
    let sb = Sandbox::new();
    let body = "x".repeat(4000);
    let w = spawn_watch(&sb, &["q", "-q"]);
    // Nobody reads the watcher's stdout for now: the pipe fills and it blocks.
    let started = Instant::now();
    for i in 0..100 {
        write(&sb, "q", &format!("{i}:{body}"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "writers were blocked"
    );
    let got = w.take(100);
    let ids: Vec<usize> = got
        .iter()
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (0..100).collect::<Vec<_>>());
    assert_eq!(
        w.stop_with(libc::SIGINT),
        0,
        "graceful stop settles what was printed"
    );
    assert!(remaining(&sb, "q").is_empty());
}

fn killed_watcher_loses_nothing(mode: &[&str]) {
    let sb = Sandbox::new();
    let n = 2000;
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{{\"queue\": \"q\", \"id\": {}, \"body\": \"m{i}\"}}\n",
                1_800_000_000_000_000_000i64 + i * 4096
            )
        })
        .collect();
    assert_eq!(code(&sb.run_stdin(&["load"], lines.as_bytes())), 0);
    let mut args = vec!["q", "-q"];
    args.extend_from_slice(mode);
    let w = spawn_watch(&sb, &args);
    let printed = w.take(300);
    // SAFETY: killing our own child.
    unsafe { libc::kill(w.child.id() as libc::pid_t, libc::SIGKILL) };
    let mut w = w;
    w.child.wait().unwrap();
    let mut all: HashSet<String> = printed.into_iter().collect();
    while let Ok(line) = w.lines.recv_timeout(Duration::from_millis(200)) {
        all.insert(line);
    }
    all.extend(remaining(&sb, "q"));
    all.extend(remaining(&sb, "dst"));
    let missing: Vec<i64> = (0..n).filter(|i| !all.contains(&format!("m{i}"))).collect();
    assert!(missing.is_empty(), "lost after SIGKILL: {missing:?}");
}

#[test]
fn killed_consume_watcher_loses_nothing() {
    killed_watcher_loses_nothing(&[]);
}

#[test]
fn killed_move_watcher_loses_nothing() {
    killed_watcher_loses_nothing(&["--move", "dst"]);
}

#[test]
fn python_and_rust_watchers_share_a_queue_exactly_once() {
    let sb = Sandbox::new();
    write(&sb, "q", "seed");
    assert_eq!(remaining(&sb, "q"), ["seed"]);
    let ours = spawn_watch(&sb, &["q", "-q"]);
    let mut theirs_child = sb
        .reference()
        .args(["watch", "q", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn reference watcher");
    let theirs = collect_lines(theirs_child.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(800));
    let n = 60;
    for i in 0..n {
        let writer = if i % 2 == 0 {
            sb.run(&["write", "q", &format!("m{i}")])
        } else {
            sb.run_ref(&["write", "q", &format!("m{i}")])
        };
        assert_eq!(code(&writer), 0);
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < n && Instant::now() < deadline {
        seen.extend(ours.lines.try_iter());
        seen.extend(theirs.try_iter());
        std::thread::sleep(Duration::from_millis(20));
    }
    theirs_child.kill().unwrap();
    theirs_child.wait().unwrap();
    ours.kill();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        (seen.len(), unique.len()),
        (n, n),
        "each message exactly once across both watchers"
    );
}
