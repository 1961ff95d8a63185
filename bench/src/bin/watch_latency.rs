//! Write→print latency of a `broker watch --json` process (ours or the
//! reference): this process is the writer (the `litebroker` library, so both
//! watchers see an identical writer) and reads the watcher's stdout in a
//! thread, so both timestamps come from one monotonic clock.
//!
//! usage: watch-latency --db PATH --count 1000 [--warmup 5] [--gap-us 5000]
//!        [--timeout-s 10] [--startup-timeout-s 60] [--queue q] -- WATCHER ARGV...
//!
//! WATCHER ARGV is spawned as given (e.g. `broker -q -d DIR watch q --json`);
//! it must print one JSON line `{"message": ..., ...}` per message. Steps:
//! write `--warmup` messages one at a time and wait for each (the first one
//! also proves the watcher is running), then `--count` times: pause `--gap-us`
//! (so the watcher is idle when the write lands, as in real use), note t0,
//! `queue.write("lat NNNNNN")` (one durable transaction), note t1, wait until
//! that body is printed (t2). Prints one JSON line: p50/p99/max of t2 - t0
//! (write→print) and of t1 - t0 (the write alone) and t2 - t1 (commit→print).
//! Every wait is bounded by `--timeout-s`. At the end the watcher gets SIGINT,
//! then SIGKILL after 2 s (the reference's watcher can hang on SIGINT); how it
//! ended is part of the output.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use litebroker::{Broker, Queue, Settings};
use serde_json::json;

const USAGE: &str = "watch-latency --db PATH --count 1000 [--warmup 5] [--gap-us 5000] \
[--timeout-s 10] [--startup-timeout-s 60] [--queue q] -- WATCHER ARGV...";

/// One printed line: its body and when the reader thread got it.
type Arrival = (String, Instant);

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(split) = argv.iter().position(|a| a == "--") else {
        eprintln!("missing `-- WATCHER ARGV...`\nusage: {USAGE}");
        std::process::exit(1);
    };
    let opts = Opts::parse(&argv[..split]);
    let watcher = &argv[split + 1..];
    if watcher.is_empty() {
        eprintln!("empty watcher command\nusage: {USAGE}");
        std::process::exit(1);
    }
    match run(&opts, watcher) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("watch-latency: {e}");
            std::process::exit(1);
        }
    }
}

struct Opts {
    db: String,
    queue: String,
    count: usize,
    warmup: usize,
    gap: Duration,
    timeout: Duration,
    startup_timeout: Duration,
}

impl Opts {
    fn parse(args: &[String]) -> Opts {
        if args.len() % 2 != 0 {
            eprintln!("usage: {USAGE}");
            std::process::exit(1);
        }
        let mut o = Opts {
            db: String::new(),
            queue: "q".into(),
            count: 1000,
            warmup: 5,
            gap: Duration::from_micros(5000),
            timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(60),
        };
        let num = |name: &str, v: &str| -> u64 {
            v.replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("{name}: not a number: {v:?}");
                std::process::exit(1)
            })
        };
        for pair in args.chunks(2) {
            let (name, v) = (pair[0].as_str(), pair[1].as_str());
            match name {
                "--db" => o.db = v.into(),
                "--queue" => o.queue = v.into(),
                "--count" => o.count = num(name, v) as usize,
                "--warmup" => o.warmup = num(name, v).max(1) as usize,
                "--gap-us" => o.gap = Duration::from_micros(num(name, v)),
                "--timeout-s" => o.timeout = Duration::from_secs(num(name, v)),
                "--startup-timeout-s" => o.startup_timeout = Duration::from_secs(num(name, v)),
                _ => {
                    eprintln!("unexpected argument {name:?}\nusage: {USAGE}");
                    std::process::exit(1)
                }
            }
        }
        if o.db.is_empty() {
            eprintln!("--db is required\nusage: {USAGE}");
            std::process::exit(1);
        }
        o
    }
}

/// Spawns the watcher with its stdout read line by line in a thread.
fn spawn(watcher: &[String]) -> Result<(Child, Receiver<Arrival>), String> {
    let mut child = Command::new(&watcher[0])
        .args(&watcher[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {:?}: {e}", watcher[0]))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let at = Instant::now();
            let body = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
                .unwrap_or(line);
            if tx.send((body, at)).is_err() {
                return;
            }
        }
    });
    Ok((child, rx))
}

/// Waits until `body` is printed; lines printed before it are skipped.
fn wait_for(rx: &Receiver<Arrival>, body: &str, timeout: Duration) -> Result<Instant, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((got, at)) if got == body => return Ok(at),
            Ok(_) => continue,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("{body:?} not printed within {timeout:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("watcher closed stdout before printing {body:?}"))
            }
        }
    }
}

fn run(o: &Opts, watcher: &[String]) -> Result<serde_json::Value, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let mut broker = Broker::open(o.db.as_ref(), &settings).map_err(|e| e.to_string())?;
    let mut q = broker.queue(&o.queue).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (mut child, rx) = spawn(watcher)?;
    let result = measure(o, &mut q, &rx, started);
    let ended = stop(&mut child);
    let mut out = result?;
    out["watcher_end"] = json!(ended);
    Ok(out)
}

/// Warm-up, then the timed writes; see the module docs.
fn measure(
    o: &Opts,
    q: &mut Queue<'_>,
    rx: &Receiver<Arrival>,
    started: Instant,
) -> Result<serde_json::Value, String> {
    for i in 0..o.warmup {
        let body = format!("warmup {i:06}");
        q.write(&body).map_err(|e| e.to_string())?;
        let limit = if i == 0 { o.startup_timeout } else { o.timeout };
        wait_for(rx, &body, limit)?;
    }
    let startup = started.elapsed();
    let (mut total, mut write, mut notice) = (vec![], vec![], vec![]);
    for i in 0..o.count {
        std::thread::sleep(o.gap);
        let body = format!("lat {i:06}");
        let t0 = Instant::now();
        q.write(&body).map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let t2 = wait_for(rx, &body, o.timeout)
            .map_err(|e| format!("message {i} of {}: {e}", o.count))?;
        total.push(t2 - t0);
        write.push(t1 - t0);
        notice.push(t2.saturating_duration_since(t1));
    }
    Ok(json!({
        "bench": "watch_latency",
        "count": o.count,
        "warmup": o.warmup,
        "gap_us": o.gap.as_micros() as u64,
        "startup_to_first_print_s": startup.as_secs_f64(),
        "write_to_print": summary(&mut total),
        "write_only": summary(&mut write),
        "commit_to_print": summary(&mut notice),
    }))
}

/// SIGINT, up to 2 s for a clean exit, then SIGKILL. Returns how it ended.
fn stop(child: &mut Child) -> String {
    if let Ok(Some(status)) = child.try_wait() {
        return format!("exited early: {status}");
    }
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return format!("SIGINT: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    "SIGKILL after SIGINT was ignored for 2 s".into()
}

/// p50, p90, p99, max and mean in seconds (nearest-rank percentiles).
fn summary(v: &mut [Duration]) -> serde_json::Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort();
    let rank = |p: f64| v[(((p * v.len() as f64).ceil() as usize).max(1) - 1).min(v.len() - 1)];
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    json!({
        "p50_s": rank(0.50).as_secs_f64(),
        "p90_s": rank(0.90).as_secs_f64(),
        "p99_s": rank(0.99).as_secs_f64(),
        "max_s": v[v.len() - 1].as_secs_f64(),
        "min_s": v[0].as_secs_f64(),
        "mean_s": mean.as_secs_f64(),
    })
}
