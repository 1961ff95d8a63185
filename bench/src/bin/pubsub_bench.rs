//! Publish/subscribe through the `litebroker` library: publish→deliver
//! latency, fan-out throughput to many subscriptions, and replay of a long
//! topic log into a new subscription. Prints one JSON line per measurement
//! (same shape as lib-throughput); bench/harness.py runs it next to
//! bench/pubsub_reference.py (formix-pubsub).
//!
//! usage: pubsub-bench [--dir DIR] [--broker PATH] [--latency 1000] [--pace-ms 2]
//!        [--idle-latency 100] [--idle-pace-ms 20] [--widths 1,10,100]
//!        [--fanout 2000] [--fanout-copies 200000] [--batch 100]
//!        [--replay 1000000] [--replay-batch 1000]
//!
//! Measurements, each on a fresh database DIR/<name>/.broker.db:
//!   latency_lib      --latency messages published one at a time, each after
//!                    the previous one arrived and at least --pace-ms after it
//!                    was published; a `Subscription::subscribe` thread takes
//!                    them. Latency = from just before `publish` to the handler,
//!                    one `Instant` clock.
//!   publish_paced_no_consumer  the same publishes with nobody consuming:
//!                    how long a durable `publish` takes alone.
//!   latency_raw_*    prototype with raw rusqlite (same rows, a consumer that
//!                    holds then settles, two commits): SQLite's default busy
//!                    handler, a 50 µs busy handler, and that plus
//!                    synchronous=NORMAL for the consumer's commits.
//!   latency_cli      the same with a `broker watch SUB --json` process (with
//!                    --broker): arrival is when its line is read from the pipe.
//!   latency_lib_idle --idle-latency messages --idle-pace-ms apart: the
//!                    watcher has gone idle (sleeping on file-change hints).
//!   fanout_single_wW --fanout messages, one `publish` (one transaction) each,
//!                    to W subscriptions; then every subscription is drained
//!                    and checked: exactly N, in order, nothing else.
//!   fanout_batch_wW  the same with `publish_batch` of --batch per transaction,
//!                    max(--fanout, --fanout-copies / W) messages.
//!   replay_fill      --replay messages into one topic log (`publish_batch`
//!                    of --replay-batch, no subscription).
//!   replay_lib       `Subscription::create(.., StartFrom::Earliest)`: copies
//!                    the whole log into a new subscription.
//!   replay_lib_big_cache  the same with Settings::sqlite.cache_mb = 512 (default 10).
//!                    Every replay variant runs on its own copy of the filled file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use litebroker::message::Filter;
use litebroker::pubsub::{NewSubscription, StartFrom};
use litebroker::watch::StopHandle;
use litebroker::{Broker, Headers, Outgoing, Settings, Subscription};
use litebroker_bench::{emit, Args};
use serde_json::json;

const USAGE: &str = "pubsub-bench [--dir DIR] [--broker PATH] [--latency 1000] [--pace-ms 2] \
[--idle-latency 100] [--idle-pace-ms 20] [--widths 1,10,100] [--fanout 2000] \
[--fanout-copies 200000] [--batch 100] [--replay 1000000] [--replay-batch 1000]";

const DB_NAME: &str = ".broker.db";
/// How long one latency message may take before it counts as lost.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(5);

type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;
/// Where a consumer reports (message number, arrival time).
type Arrivals = Receiver<(usize, Instant)>;

fn main() {
    let args = Args::parse(USAGE);
    let dir = match args.get("dir") {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("pubsub-bench-{}", std::process::id())),
    };
    if let Err(e) = std::fs::create_dir_all(&dir)
        .map_err(Into::into)
        .and_then(|_| run(&args, &dir))
    {
        eprintln!("pubsub-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args, dir: &Path) -> BoxResult<()> {
    let settings = Settings::from_env()?;
    let pace = Duration::from_secs_f64(args.num("pace-ms", 2) as f64 / 1000.0);
    let n = args.num("latency", 1000);
    if n > 0 {
        latency_lib(
            &fresh_db(dir, "latency-lib")?,
            &settings,
            n,
            pace,
            "latency_lib",
        )?;
        publish_only(&fresh_db(dir, "publish-only")?, &settings, n, pace)?;
        for v in [
            RawLatency {
                name: "latency_raw_default_busy",
                fast_busy: false,
                consumer_normal: false,
            },
            RawLatency {
                name: "latency_raw_fast_busy",
                fast_busy: true,
                consumer_normal: false,
            },
            RawLatency {
                name: "latency_raw_fast_busy_consumer_normal",
                fast_busy: true,
                consumer_normal: true,
            },
        ] {
            latency_raw(&fresh_db(dir, v.name)?, &settings, n, pace, v)?;
        }
        if let Some(broker) = args.get("broker") {
            latency_cli(
                &fresh_db(dir, "latency-cli")?,
                &settings,
                Path::new(broker),
                n,
                pace,
            )?;
        }
    }
    let idle_n = args.num("idle-latency", 100);
    if idle_n > 0 {
        let idle_pace = Duration::from_millis(args.num("idle-pace-ms", 20) as u64);
        let db = fresh_db(dir, "latency-idle")?;
        latency_lib(&db, &settings, idle_n, idle_pace, "latency_lib_idle")?;
    }
    let widths = args.get("widths").unwrap_or("1,10,100");
    let single = args.num("fanout", 2000);
    let copies = args.num("fanout-copies", 200_000);
    let batch = args.num("batch", 100).max(1);
    for w in widths.split(',').filter(|w| !w.is_empty()) {
        let width: usize = w.trim().parse().map_err(|_| format!("bad width {w:?}"))?;
        if single > 0 {
            let db = fresh_db(dir, &format!("fanout-single-{width}"))?;
            fanout(&db, &settings, width, single, 1)?;
        }
        let n = single.max(copies / width.max(1));
        if n > 0 {
            let db = fresh_db(dir, &format!("fanout-batch-{width}"))?;
            fanout(&db, &settings, width, n, batch)?;
        }
    }
    let replay_n = args.num("replay", 1_000_000);
    if replay_n > 0 {
        let db = fresh_db(dir, "replay")?;
        replay(
            &db,
            &settings,
            replay_n,
            args.num("replay-batch", 1000).max(1),
        )?;
        remove_db(&db);
    }
    Ok(())
}

/// A path for a new database in its own directory under `dir` (emptied).
fn fresh_db(dir: &Path, name: &str) -> BoxResult<PathBuf> {
    let d = dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d.join(DB_NAME))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn new_sub(b: &mut Broker, name: &str, pattern: &str) -> BoxResult<()> {
    b.create_subscription(&NewSubscription {
        name,
        pattern,
        from: StartFrom::Latest,
        ephemeral: None,
    })?;
    Ok(())
}

/// The message number in a body like `lat-42` (anywhere in a line).
fn index_in(text: &str) -> Option<usize> {
    let at = text.find("lat-")? + 4;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

// ------------------------------------------------------------------ latency

/// Publishes `n` messages one at a time to a subscription whose consumer
/// reports (index, arrival) on `arrivals`; returns the latencies in order.
fn paced_publish(
    broker: &mut Broker,
    topic: &str,
    n: usize,
    pace: Duration,
    arrivals: Option<&Arrivals>,
) -> BoxResult<Paced> {
    let mut latencies = Vec::with_capacity(n);
    let mut publishes = Vec::with_capacity(n);
    let mut lost = 0;
    let mut late = Vec::new();
    let headers = Headers::new();
    for i in 0..n {
        let body = format!("lat-{i}");
        let sent = Instant::now();
        broker.publish(topic, &body, &headers)?;
        publishes.push(sent.elapsed());
        if let Some(arrivals) = arrivals {
            match arrivals.recv_timeout(ARRIVAL_TIMEOUT) {
                Ok((idx, at)) if idx == i => latencies.push(at.saturating_duration_since(sent)),
                Ok((idx, _)) => {
                    let what = if late.contains(&idx) {
                        "late, counted lost after the arrival timeout"
                    } else {
                        "a second delivery"
                    };
                    return Err(format!("got lat-{idx} ({what}) while waiting for lat-{i}").into());
                }
                Err(RecvTimeoutError::Timeout) => {
                    lost += 1;
                    late.push(i);
                }
                Err(RecvTimeoutError::Disconnected) => return Err("consumer went away".into()),
            }
        }
        let next = sent + pace;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    Ok(Paced {
        latencies,
        publishes,
        lost,
    })
}

/// What a paced run measured.
struct Paced {
    /// Publish → arrival, per message received.
    latencies: Vec<Duration>,
    /// How long each `publish` call took (its commit included).
    publishes: Vec<Duration>,
    /// Messages that did not arrive within ARRIVAL_TIMEOUT.
    lost: usize,
}

/// p50/p90/p99/max/min/mean in ms of `v` (sorted here), named `prefix_p50_ms` etc.
fn percentiles(prefix: &str, v: &mut [Duration]) -> serde_json::Map<String, serde_json::Value> {
    v.sort();
    let mut out = serde_json::Map::new();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (name, p) in [
        ("p50", 50.0),
        ("p90", 90.0),
        ("p99", 99.0),
        ("max", 100.0),
        ("min", 0.0),
    ] {
        let value = if v.is_empty() {
            serde_json::Value::Null
        } else {
            json!(ms(v[((p / 100.0) * (v.len() - 1) as f64).round() as usize]))
        };
        out.insert(format!("{prefix}{name}_ms"), value);
    }
    let mean = (!v.is_empty()).then(|| v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64);
    out.insert(format!("{prefix}mean_ms"), json!(mean));
    out
}

fn emit_latency(
    name: &str,
    n: usize,
    mut run: Paced,
    pace: Duration,
    wall: Duration,
    consumer: &str,
) {
    let slow = run
        .publishes
        .iter()
        .filter(|d| **d > Duration::from_millis(1))
        .count();
    let mut extra = percentiles("", &mut run.latencies);
    extra.extend(percentiles("publish_", &mut run.publishes));
    extra.insert("received".into(), json!(run.latencies.len()));
    extra.insert("lost".into(), json!(run.lost));
    extra.insert("pace_ms".into(), json!(pace.as_secs_f64() * 1000.0));
    extra.insert("publishes_over_1ms".into(), json!(slow));
    extra.insert("consumer".into(), json!(consumer));
    emit(name, n, wall, serde_json::Value::Object(extra));
}

/// Latency with a library consumer (`Subscription::subscribe` in a thread).
fn latency_lib(
    db: &Path,
    settings: &Settings,
    n: usize,
    pace: Duration,
    name: &str,
) -> BoxResult<()> {
    let mut broker = Broker::open(db, settings)?;
    new_sub(&mut broker, "lat", "bench.lat")?;
    let (tx, rx) = channel();
    let stop = StopHandle::new();
    let consumer: JoinHandle<Result<(), String>> = {
        let (db, settings, stop) = (db.to_path_buf(), settings.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sub = Subscription::open(
                Broker::open(&db, &settings)
                    .map_err(|e| e.to_string())?
                    .connector(),
                "lat",
            )
            .map_err(|e| e.to_string())?;
            let handled = sub
                .subscribe(
                    |m| {
                        let at = Instant::now();
                        let _ = tx.send((index_in(&m.body).unwrap_or(usize::MAX), at));
                        Ok::<(), ()>(())
                    },
                    None,
                    stop,
                )
                .map_err(|e| e.to_string())?;
            handled.map_err(|_| "handler failed".to_string())
        })
    };
    // Let the watcher start (its first look) before timing anything.
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let result = paced_publish(&mut broker, "bench.lat", n, pace, Some(&rx));
    let wall = start.elapsed();
    stop.stop();
    consumer.join().map_err(|_| "consumer panicked")??;
    emit_latency(
        name,
        n,
        result?,
        pace,
        wall,
        "Subscription::subscribe thread",
    );
    Ok(())
}

/// How a raw-SQL latency prototype waits for the write lock and commits.
#[derive(Clone, Copy)]
struct RawLatency {
    name: &'static str,
    /// A busy handler retrying every ~50 µs instead of SQLite's default
    /// busy_timeout ladder (sleeps of 1, 2, 5, 10, 15, 20, 25 … ms).
    fast_busy: bool,
    /// The consumer's transactions with synchronous=NORMAL (no fsync on its
    /// commits; a lost hold or settle only means a redelivery).
    consumer_normal: bool,
}

/// Retries for about 5 s: yields first, then sleeps 50 µs per attempt.
fn fast_busy(attempt: i32) -> bool {
    if attempt < 10 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
    attempt < 100_000
}

/// Opens `db` with the broker's pragmas and the chosen busy handling.
fn raw_conn(db: &Path, v: RawLatency, consumer: bool) -> BoxResult<rusqlite::Connection> {
    let conn = litebroker_bench::open_existing(db)?;
    litebroker_bench::apply_pragmas(&conn)?;
    if v.fast_busy {
        conn.busy_handler(Some(fast_busy))?;
    }
    if consumer && v.consumer_normal {
        conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
    }
    Ok(conn)
}

/// Publish→deliver latency with raw rusqlite on the library's schema, to
/// show where the library's latency goes. Publisher: one transaction per
/// message writing what `publish` writes for one subscription (log row,
/// `messages` row, `lb_message_ext` row). Consumer thread: polls
/// `PRAGMA data_version` every 10 µs, then holds the oldest message
/// (`UPDATE … SET claimed = 1 … RETURNING`, one commit), reports it, and
/// settles it (`DELETE`, a second commit), as the library's consume mode does.
fn latency_raw(
    db: &Path,
    settings: &Settings,
    n: usize,
    pace: Duration,
    v: RawLatency,
) -> BoxResult<()> {
    let mut broker = Broker::open(db, settings)?;
    new_sub(&mut broker, "lat", "bench.lat")?;
    drop(broker);
    let (tx, rx) = channel();
    let stop = StopHandle::new();
    let consumer: JoinHandle<Result<(), String>> = {
        let (db, stop) = (db.to_path_buf(), stop.clone());
        std::thread::spawn(move || raw_consumer(&db, v, &tx, &stop).map_err(|e| e.to_string()))
    };
    let conn = raw_conn(db, v, false)?;
    std::thread::sleep(Duration::from_millis(100));
    let mut latencies = Vec::with_capacity(n);
    let mut publishes = Vec::with_capacity(n);
    let mut lost = 0;
    let start = Instant::now();
    for i in 0..n {
        let body = format!("lat-{i}");
        let sent = Instant::now();
        raw_publish_one(&conn, &body, i as i64)?;
        publishes.push(sent.elapsed());
        match rx.recv_timeout(ARRIVAL_TIMEOUT) {
            Ok((idx, at)) if idx == i => latencies.push(at.saturating_duration_since(sent)),
            Ok((idx, _)) => return Err(format!("got lat-{idx} while waiting for lat-{i}").into()),
            Err(_) => lost += 1,
        }
        let next = sent + pace;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    let wall = start.elapsed();
    stop.stop();
    consumer.join().map_err(|_| "consumer panicked")??;
    let run = Paced {
        latencies,
        publishes,
        lost,
    };
    emit_latency(v.name, n, run, pace, wall, "raw rusqlite consumer thread");
    Ok(())
}

/// One message as `publish` stores it for one subscription `lat`, one transaction.
fn raw_publish_one(conn: &rusqlite::Connection, body: &str, offset: i64) -> BoxResult<()> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let last: i64 = tx
        .prepare_cached("SELECT value FROM meta WHERE key = 'last_ts'")?
        .query_row([], |r| r.get(0))?;
    let id = (litebroker_bench::now_ns() & !0xFFF).max(last + 1);
    tx.prepare_cached(
        "INSERT INTO lb_topic_log (id, topic, topic_offset, body) VALUES (?1, 'bench.lat', ?2, ?3)",
    )?
    .execute(rusqlite::params![id, offset, body])?;
    tx.prepare_cached("INSERT INTO messages (queue, body, ts) VALUES ('lat', ?1, ?2)")?
        .execute(rusqlite::params![body, id + 1])?;
    let msg = tx.last_insert_rowid();
    tx.prepare_cached(
        "INSERT INTO lb_copy_spans (first_seq, last_seq, topic, first_offset) \
         VALUES (?1, ?1, 'bench.lat', ?2)",
    )?
    .execute(rusqlite::params![msg, offset])?;
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_ts' AND value < ?1")?
        .execute([id + 1])?;
    tx.commit()?;
    Ok(())
}

/// The consumer of `latency_raw`: poll, hold (commit), report, settle (commit).
fn raw_consumer(
    db: &Path,
    v: RawLatency,
    arrivals: &std::sync::mpsc::Sender<(usize, Instant)>,
    stop: &StopHandle,
) -> BoxResult<()> {
    let conn = raw_conn(db, v, true)?;
    let mut version: i64 = -1;
    while !stop.is_stopped() {
        let now: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if now == version {
            std::thread::sleep(Duration::from_micros(10));
            continue;
        }
        // Taken before draining (our own commits do not change it): a commit
        // that lands while we drain shows as a new version at the next look.
        // Reading it after draining lost such a commit until the next one.
        version = now;
        loop {
            let tx = rusqlite::Transaction::new_unchecked(
                &conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            let held: Option<(i64, String)> = tx
                .prepare_cached(
                    "UPDATE messages SET claimed = 1 WHERE id = (SELECT id FROM messages \
                     WHERE queue = 'lat' AND claimed = 0 ORDER BY id LIMIT 1) RETURNING id, body",
                )?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            tx.commit()?;
            let Some((id, body)) = held else { break };
            let _ = arrivals.send((index_in(&body).unwrap_or(usize::MAX), Instant::now()));
            let tx = rusqlite::Transaction::new_unchecked(
                &conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([id])?;
            tx.commit()?;
        }
    }
    Ok(())
}

/// The same paced publishes with nobody consuming: what one durable publish
/// costs alone (the floor of the latency above).
fn publish_only(db: &Path, settings: &Settings, n: usize, pace: Duration) -> BoxResult<()> {
    let mut broker = Broker::open(db, settings)?;
    new_sub(&mut broker, "lat", "bench.lat")?;
    let start = Instant::now();
    let run = paced_publish(&mut broker, "bench.lat", n, pace, None)?;
    emit_latency(
        "publish_paced_no_consumer",
        n,
        run,
        pace,
        start.elapsed(),
        "none",
    );
    Ok(())
}

/// Reads `broker watch` lines, sending (index, arrival) for each.
fn read_watch_lines(child: &mut Child) -> BoxResult<(JoinHandle<()>, Arrivals)> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let at = Instant::now();
            if tx
                .send((index_in(&line).unwrap_or(usize::MAX), at))
                .is_err()
            {
                break;
            }
        }
    });
    Ok((reader, rx))
}

/// Latency with a `broker watch SUB --json` process as the consumer.
fn latency_cli(
    db: &Path,
    settings: &Settings,
    exe: &Path,
    n: usize,
    pace: Duration,
) -> BoxResult<()> {
    let mut broker = Broker::open(db, settings)?;
    new_sub(&mut broker, "lat", "bench.lat")?;
    let dir = db.parent().ok_or("no dir")?;
    let mut child = Command::new(exe)
        .arg("-d")
        .arg(dir)
        .args(["watch", "lat", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let (reader, rx) = read_watch_lines(&mut child)?;
    // Wait until the watcher is up: one probe message, then the run.
    broker.publish("bench.lat", "probe lat-999999999", &Headers::new())?;
    let probe = rx.recv_timeout(Duration::from_secs(10));
    let start = Instant::now();
    let result = match probe {
        Ok(_) => paced_publish(&mut broker, "bench.lat", n, pace, Some(&rx)),
        Err(e) => Err(format!("broker watch did not start: {e}").into()),
    };
    let wall = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    emit_latency(
        "latency_cli",
        n,
        result?,
        pace,
        wall,
        "broker watch --json process",
    );
    Ok(())
}

// ------------------------------------------------------------------ fan-out

/// Publishes `n` messages to `width` subscriptions, `batch` per transaction,
/// then drains and checks every subscription.
fn fanout(db: &Path, settings: &Settings, width: usize, n: usize, batch: usize) -> BoxResult<()> {
    let mut broker = Broker::open(db, settings)?;
    let names: Vec<String> = (0..width).map(|i| format!("fan-{i:03}")).collect();
    for name in &names {
        new_sub(&mut broker, name, "bench.fan")?;
    }
    let bodies: Vec<String> = (0..n).map(|i| format!("m{i:07}")).collect();
    let headers = Headers::new();
    let mut reached = 0usize;
    let start = Instant::now();
    if batch == 1 {
        for body in &bodies {
            reached += broker.publish("bench.fan", body, &headers)?.delivered;
        }
    } else {
        for chunk in bodies.chunks(batch) {
            let msgs: Vec<Outgoing<'_>> = chunk.iter().map(|b| Outgoing::body(b)).collect();
            reached += broker
                .publish_batch("bench.fan", &msgs)?
                .iter()
                .map(|p| p.delivered)
                .sum::<usize>();
        }
    }
    let publish = start.elapsed();

    let start = Instant::now();
    let (mut received, mut lost, mut out_of_order, mut extra) = (0usize, 0usize, 0usize, 0usize);
    for name in &names {
        let mut q = broker.queue(name)?;
        let mut next = 0usize;
        loop {
            let got = q.read_many(&Filter::all(), 1000)?;
            if got.is_empty() {
                break;
            }
            for m in got {
                received += 1;
                if next >= n {
                    extra += 1;
                } else if m.body != bodies[next] {
                    out_of_order += 1;
                }
                next += 1;
            }
        }
        lost += n.saturating_sub(next);
    }
    let drain = start.elapsed();
    let mode = if batch == 1 { "single" } else { "batch" };
    let copies = n * width;
    let secs = (publish + drain).as_secs_f64();
    emit(
        &format!("fanout_{mode}_w{width}"),
        received,
        publish,
        json!({"width": width, "published": n, "batch": batch, "expected": copies,
               "reached": reached, "received": received, "lost": lost,
               "out_of_order": out_of_order, "extra": extra,
               "publish_per_sec": n as f64 / publish.as_secs_f64(),
               "transactions_per_sec": n.div_ceil(batch) as f64 / publish.as_secs_f64(),
               "drain_seconds": drain.as_secs_f64(),
               "end_to_end_per_sec": if secs > 0.0 { received as f64 / secs } else { 0.0 }}),
    );
    drop(broker);
    remove_db(db);
    Ok(())
}

// ------------------------------------------------------------------ replay

fn replay(db: &Path, settings: &Settings, n: usize, batch: usize) -> BoxResult<()> {
    let mut broker = Broker::open(db, settings)?;
    let topic = "bench.replay";
    let start = Instant::now();
    let mut i = 0usize;
    while i < n {
        let end = (i + batch).min(n);
        let bodies: Vec<String> = (i..end).map(|k| format!("r{k:07}")).collect();
        let msgs: Vec<Outgoing<'_>> = bodies.iter().map(|b| Outgoing::body(b)).collect();
        broker.publish_batch(topic, &msgs)?;
        i = end;
    }
    emit("replay_fill", n, start.elapsed(), json!({"batch": batch}));
    drop(broker); // the last connection: checkpoints, so the file alone holds the log

    // Each variant replays into its own copy of the filled file.
    let mut big = settings.clone();
    big.sqlite.cache_mb = REPLAY_BIG_CACHE_MB;
    for (name, s) in [("replay_lib", settings), ("replay_lib_big_cache", &big)] {
        let copy = copy_db(db, name)?;
        let start = Instant::now();
        let sub = Subscription::create(
            Broker::open(&copy, s)?.connector(),
            "replay-lib",
            topic,
            StartFrom::Earliest,
        )?;
        let elapsed = start.elapsed();
        drop(sub);
        let (count, ok) = check_replayed(&copy, s, "replay-lib")?;
        emit(
            name,
            count,
            elapsed,
            json!({"expected": n, "in_order_and_equal": ok, "cache_mb": s.sqlite.cache_mb}),
        );
        remove_db(&copy);
    }
    Ok(())
}

/// The page cache of the "big cache" replay variants (the default is 10 MB).
const REPLAY_BIG_CACHE_MB: u64 = 512;

/// A copy of database `db` (no -wal: its last connection checkpointed) in a
/// sibling directory `name`.
fn copy_db(db: &Path, name: &str) -> BoxResult<PathBuf> {
    let parent = db.parent().and_then(Path::parent).ok_or("no parent dir")?;
    let copy = fresh_db(parent, name)?;
    std::fs::copy(db, &copy)?;
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", copy.display()))?;
    }
    Ok(copy)
}

/// How many messages queue `name` holds, and whether they equal the topic
/// log one for one (body, topic, offset) in offset order. Read through the
/// library (peek, nothing consumed), so it checks what a consumer would get,
/// whichever table records a copy's origin.
fn check_replayed(db: &Path, settings: &Settings, name: &str) -> BoxResult<(usize, bool)> {
    let conn = litebroker_bench::open_existing(db)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let log: Vec<(String, i64, String)> = conn
        .prepare("SELECT topic, topic_offset, body FROM lb_topic_log ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    drop(conn);
    let mut broker = Broker::open(db, settings)?;
    let (mut count, mut equal) = (0usize, true);
    broker.queue(name)?.peek_each(&Filter::all(), |m| {
        let origin = m.origin.as_ref().map(|o| (o.topic.as_str(), o.offset));
        let expected = log
            .get(count)
            .map(|(t, o, b)| ((t.as_str(), *o), b.as_str()));
        equal &= expected == origin.map(|o| (o, m.body.as_str()));
        count += 1;
        Ok(())
    })?;
    Ok((count, equal && count == log.len()))
}
