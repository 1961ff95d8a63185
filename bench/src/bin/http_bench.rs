//! Load generator for `broker serve` (and Redis beside it, for comparison):
//! bench/http.sh starts the servers on 127.0.0.1 and runs this once.
//!
//! For each number of concurrent clients (each its own keep-alive
//! connection, one request in flight at a time):
//! - `send`: durable writes, one message per request;
//! - `read`: receive + delete in one request (`POST .../read`), from a
//!   prefilled queue;
//! - `lease_ack`: lease one, then ack it (two requests per message).
//!
//! Then, with one consumer, publish→deliver latency: the time from just
//! before a producer's write is sent until a waiting consumer has the
//! message, through a long-poll (`read?wait=`) and through Server-Sent
//! Events (`/events`, each event acked before the next write).
//!
//! Redis, when given (`--redis NAME=HOST:PORT`, any number): LPUSH, BRPOP,
//! BLMOVE + LREM (the reliable-queue pattern, its lease + ack) and
//! LPUSH→BRPOP latency, through the same kind of client (a minimal RESP
//! client, one connection per client, no pipelining).
//!
//! The physical floor (`--floor DIR`): the same clients doing the same
//! durable work with an ideal group commit and nothing else in between: a
//! minimal server on its own thread and event loop (as Redis runs) on
//! 127.0.0.1 reads fixed 64-byte requests, appends one record per request
//! to a file in DIR with one `write` per batch, `fdatasync`s once per batch
//! (the requests that arrived during the previous sync) and answers each
//! request after that sync. `send`: the record is the 64-byte message, the
//! answer an 8-byte id. `read`: the answer is a 64-byte message from memory
//! (what sends stored, after what was there at the start), the record the
//! 8-byte id of the message it consumed. With one client, also
//! publish→deliver at the floor: a send then a read, back to back. Floor
//! and server are measured in alternating slices (`--rounds`, 3 by
//! default) of each measurement, so that both see about the same machine.
//! See [`floor`].
//!
//! Everything is bounded: at most `--ops` messages and `--seconds` per
//! measurement. One JSON object per measurement on stdout.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Opts {
    url: String,
    redis: Vec<(String, String)>,
    clients: Vec<usize>,
    ops: i64,
    seconds: f64,
    latency: usize,
    body: String,
    idle_sse: usize,
    hold: f64,
    floor: Option<std::path::PathBuf>,
    rounds: usize,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        url: String::new(),
        redis: Vec::new(),
        clients: vec![1, 8, 64],
        ops: 20_000,
        seconds: 10.0,
        latency: 300,
        body: "x".repeat(64),
        idle_sse: 0,
        hold: 10.0,
        floor: None,
        rounds: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().expect("a value after each option");
        match a.as_str() {
            "--url" => o.url = val(),
            "--redis" => {
                let v = val();
                let (name, addr) = v.split_once('=').expect("--redis NAME=HOST:PORT");
                o.redis.push((name.to_owned(), addr.to_owned()));
            }
            "--clients" => {
                o.clients = val()
                    .split(',')
                    .map(|c| c.parse().expect("--clients 1,8,64"))
                    .collect()
            }
            "--ops" => o.ops = val().parse().expect("--ops N"),
            "--seconds" => o.seconds = val().parse().expect("--seconds S"),
            "--latency" => o.latency = val().parse().expect("--latency N"),
            "--idle-sse" => o.idle_sse = val().parse().expect("--idle-sse N"),
            "--hold" => o.hold = val().parse().expect("--hold SECONDS"),
            "--floor" => o.floor = Some(val().into()),
            "--rounds" => o.rounds = val().parse().expect("--rounds N"),
            "--body-bytes" => o.body = "x".repeat(val().parse().expect("--body-bytes N")),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// What one measurement gives: messages, wall time, per-message latencies.
struct Run {
    count: u64,
    secs: f64,
    lat: Vec<Duration>,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn emit(system: &str, op: &str, clients: usize, run: Run) {
    let mut lat = run.lat;
    lat.sort();
    let line = json!({
        "system": system, "op": op, "clients": clients,
        "count": run.count, "seconds": run.secs,
        "rate": run.count as f64 / run.secs,
        "p50_ms": pct(&lat, 0.50), "p99_ms": pct(&lat, 0.99), "max_ms": pct(&lat, 1.0),
    });
    println!("{line}");
}

/// Runs `clients` tasks of `each` until `ops` messages are done (each task
/// takes them one at a time from a shared budget) or time is up; each call
/// of the task's step answers how many messages it handled (0: nothing
/// left, the task stops).
async fn drive<S, F, Fut>(clients: usize, ops: i64, limit: Duration, setup: S) -> Res<Run>
where
    S: Fn(usize) -> F,
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Res<u64>> + Send,
{
    let budget = Arc::new(AtomicI64::new(ops));
    let start = Instant::now();
    let deadline = start + limit;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut step = setup(c);
        let budget = budget.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut count = 0u64;
            while Instant::now() < deadline && budget.fetch_sub(1, Ordering::Relaxed) > 0 {
                let t = Instant::now();
                let n = step().await?;
                if n == 0 {
                    break;
                }
                lat.push(t.elapsed());
                count += n;
            }
            Res::Ok((count, lat))
        }));
    }
    let mut run = Run {
        count: 0,
        secs: 0.0,
        lat: Vec::new(),
    };
    for t in tasks {
        let (count, lat) = t.await??;
        run.count += count;
        run.lat.extend(lat);
    }
    run.secs = start.elapsed().as_secs_f64();
    Ok(run)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

async fn post(c: &reqwest::Client, url: &str, body: Option<&Value>) -> Res<Value> {
    let mut r = c.post(url);
    if let Some(b) = body {
        r = r.json(b);
    }
    let resp = r.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        return Err(format!("{url}: {status}: {text}").into());
    }
    Ok(serde_json::from_str(&text)?)
}

/// Writes `n` messages to `queue` in batches of 1000.
async fn prefill(o: &Opts, queue: &str, n: i64) -> Res<()> {
    let c = client();
    let url = format!("{}/v1/queues/{queue}/messages", o.url);
    let mut left = n;
    while left > 0 {
        let k = left.min(1000);
        let msgs: Vec<Value> = (0..k).map(|_| json!({"body": o.body})).collect();
        post(&c, &url, Some(&json!({"messages": msgs}))).await?;
        left -= k;
    }
    Ok(())
}

/// The server's group-commit counters from `/metrics`: requests and
/// commits of each kind, by counter name.
async fn commit_counters(o: &Opts) -> Res<std::collections::HashMap<String, i64>> {
    let text = client()
        .get(format!("{}/metrics", o.url))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("litebroker_") && l.contains("_total "))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .filter(|(name, _)| name.contains("_requests_total") || name.contains("_commits_total"))
        .collect())
}

/// One slice of the server's throughput: `op` (`send` or `read`) with
/// `clients` clients, at most `ops` messages and `limit`; with the
/// requests and transactions the server counted meanwhile.
async fn http_slice(
    o: &Opts,
    clients: usize,
    op: &str,
    ops: i64,
    limit: Duration,
    round: usize,
) -> Res<(Run, (i64, i64))> {
    let (url, kind, body) = if op == "send" {
        let url = format!("{}/v1/queues/send-{clients}/messages", o.url);
        (url, "write", Some(json!({"body": o.body})))
    } else {
        let queue = format!("read-{clients}-{round}");
        prefill(o, &queue, ops).await?;
        let url = format!("{}/v1/queues/{queue}/read?limit=1", o.url);
        (url, "take", None)
    };
    let before = commit_counters(o).await?;
    let run = drive(clients, ops, limit, |_| {
        let (c, url, body) = (client(), url.clone(), body.clone());
        move || {
            let (c, url, body) = (c.clone(), url.clone(), body.clone());
            async move {
                let got = post(&c, &url, body.as_ref()).await?;
                Ok(match body {
                    Some(_) => 1,
                    None => got["messages"].as_array().map_or(0, |m| m.len() as u64),
                })
            }
        }
    })
    .await?;
    let after = commit_counters(o).await?;
    let delta = |name: String| after.get(&name).unwrap_or(&0) - before.get(&name).unwrap_or(&0);
    let counted = (
        delta(format!("litebroker_{kind}_requests_total")),
        delta(format!("litebroker_{kind}_commits_total")),
    );
    Ok((run, counted))
}

/// Adds `more` to `run` (slices of one measurement).
fn merge(run: &mut Run, more: Run) {
    run.count += more.count;
    run.secs += more.secs;
    run.lat.extend(more.lat);
}

/// `send` or `read` with `clients` clients, against the floor (if asked
/// for) and the server, in `--rounds` alternating slices (floor, server,
/// floor, server, ...) so that both see about the same machine; each
/// slice takes its share of `--ops` and `--seconds`.
async fn compare(o: &Opts, clients: usize, op: &str) -> Res<()> {
    let rounds = o.rounds.max(1);
    let ops = (o.ops / rounds as i64).max(1);
    let limit = Duration::from_secs_f64(o.seconds / rounds as f64);
    let empty = || Run {
        count: 0,
        secs: 0.0,
        lat: Vec::new(),
    };
    let (mut fl, mut ours) = (empty(), empty());
    let (mut syncs, mut counted) = (0, (0, 0));
    for round in 0..rounds {
        if let Some(dir) = &o.floor {
            let (run, n) = floor(o, dir, clients, op, ops, limit).await?;
            merge(&mut fl, run);
            syncs += n;
        }
        if !o.url.is_empty() {
            let (run, (requests, commits)) = http_slice(o, clients, op, ops, limit, round).await?;
            merge(&mut ours, run);
            counted = (counted.0 + requests, counted.1 + commits);
        }
    }
    if o.floor.is_some() {
        println!(
            "{}",
            json!({"meta": "floor_syncs", "op": op, "clients": clients,
                   "requests": fl.lat.len(), "syncs": syncs})
        );
        emit("floor", op, clients, fl);
    }
    if !o.url.is_empty() {
        println!(
            "{}",
            json!({"meta": "server_commits", "op": op, "clients": clients,
                   "requests": counted.0, "commits": counted.1})
        );
        emit("litebroker-http", op, clients, ours);
    }
    Ok(())
}

async fn http_lease_ack(o: &Opts, clients: usize) -> Res<()> {
    let limit = Duration::from_secs_f64(o.seconds);
    let sys = "litebroker-http";

    let queue = format!("lease-{clients}");
    prefill(o, &queue, o.ops).await?;
    let lease = format!("{}/v1/queues/{queue}/lease?limit=1", o.url);
    let ack = format!("{}/v1/queues/{queue}/ack", o.url);
    let run = drive(clients, o.ops, limit, |_| {
        let (c, lease, ack) = (client(), lease.clone(), ack.clone());
        move || {
            let (c, lease, ack) = (c.clone(), lease.clone(), ack.clone());
            async move {
                let got = post(&c, &lease, None).await?;
                let Some(m) = got["messages"].as_array().and_then(|m| m.first()) else {
                    return Ok(0);
                };
                let receipt = m["receipt"].as_str().ok_or("a lease without receipt")?;
                let acked = post(&c, &ack, Some(&json!({"receipts": [receipt]}))).await?;
                if acked["results"][0]["ok"] != json!(true) {
                    return Err(format!("ack failed: {acked}").into());
                }
                Ok(1)
            }
        }
    })
    .await?;
    emit(sys, "lease_ack", clients, run);
    Ok(())
}

/// Publish→deliver latency: `publish` writes one message; the consumer
/// (started by `consumer`, sending the instant it has each message on the
/// channel) must have it before the next one is written.
async fn latency<P, PF>(
    o: &Opts,
    system: &str,
    op: &str,
    mut got: tokio::sync::mpsc::Receiver<Instant>,
    mut publish: P,
) -> Res<()>
where
    P: FnMut() -> PF,
    PF: std::future::Future<Output = Res<()>>,
{
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds * 2.0);
    // The consumer is waiting before the first write.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let mut lat = Vec::new();
    while lat.len() < o.latency && Instant::now() < deadline {
        let t = Instant::now();
        publish().await?;
        let at = tokio::time::timeout(Duration::from_secs(10), got.recv())
            .await
            .map_err(|_| format!("{system} {op}: no delivery within 10 s"))?
            .ok_or("the consumer stopped")?;
        lat.push(at.saturating_duration_since(t));
        // Let the consumer go back to waiting.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let run = Run {
        count: lat.len() as u64,
        secs: start.elapsed().as_secs_f64(),
        lat,
    };
    emit(system, op, 1, run);
    Ok(())
}

async fn http_latency(o: &Opts) -> Res<()> {
    let sys = "litebroker-http";
    // Long-poll.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let read = format!("{}/v1/queues/lp/read?wait=10s", o.url);
    let consumer = tokio::spawn(async move {
        let c = client();
        loop {
            let got = post(&c, &read, None).await?;
            if got["messages"].as_array().is_some_and(|m| !m.is_empty())
                && tx.send(Instant::now()).await.is_err()
            {
                return Res::Ok(());
            }
        }
    });
    let c = client();
    let url = format!("{}/v1/queues/lp/messages", o.url);
    let body = json!({"body": o.body});
    latency(o, sys, "longpoll_latency", rx, || {
        post_unit(&c, &url, &body)
    })
    .await?;
    consumer.abort();

    // Server-Sent Events, each event acked before the next write.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let events = format!("{}/v1/queues/sse/events", o.url);
    let ack = format!("{}/v1/queues/sse/ack", o.url);
    let consumer = tokio::spawn(async move {
        let c = client();
        let resp = reqwest::Client::new().get(&events).send().await?;
        if !resp.status().is_success() {
            return Err(format!("events: {}", resp.status()).into());
        }
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(chunk) = stream.next().await {
            buf.push_str(std::str::from_utf8(&chunk?)?);
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let Some(receipt) = event.lines().find_map(|l| l.strip_prefix("id:")) else {
                    continue; // a keep-alive comment
                };
                let at = Instant::now();
                post(&c, &ack, Some(&json!({"receipts": [receipt.trim()]}))).await?;
                if tx.send(at).await.is_err() {
                    return Res::Ok(());
                }
            }
        }
        Ok(())
    });
    let url = format!("{}/v1/queues/sse/messages", o.url);
    latency(o, sys, "sse_latency", rx, || post_unit(&c, &url, &body)).await?;
    consumer.abort();
    Ok(())
}

async fn post_unit(c: &reqwest::Client, url: &str, body: &Value) -> Res<()> {
    post(c, url, Some(body)).await.map(|_| ())
}

// --- Redis, through a minimal RESP client --------------------------------

struct Redis {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

#[derive(Debug)]
#[allow(dead_code)] // what a reply holds is matched, not always read
enum Reply {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
    Status(String),
}

impl Redis {
    async fn connect(addr: &str) -> Res<Redis> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        Ok(Redis {
            r: BufReader::new(r),
            w,
        })
    }

    async fn cmd(&mut self, args: &[&[u8]]) -> Res<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out).await?;
        self.reply(true).await
    }

    async fn line(&mut self) -> Res<String> {
        let mut line = String::new();
        if self.r.read_line(&mut line).await? == 0 {
            return Err("redis closed the connection".into());
        }
        Ok(line.trim_end().to_owned())
    }

    /// One reply; arrays of scalars only (all that these commands answer).
    async fn reply(&mut self, top: bool) -> Res<Reply> {
        let line = self.line().await?;
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Ok(Reply::Status(rest.to_owned())),
            "-" => Err(format!("redis: {rest}").into()),
            ":" => Ok(Reply::Int(rest.parse()?)),
            "$" => {
                let n: i64 = rest.parse()?;
                if n < 0 {
                    return Ok(Reply::Nil);
                }
                let mut data = vec![0; n as usize + 2];
                self.r.read_exact(&mut data).await?;
                data.truncate(n as usize);
                Ok(Reply::Bulk(data))
            }
            "*" if top => {
                let n: i64 = rest.parse()?;
                if n < 0 {
                    return Ok(Reply::Nil);
                }
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(Box::pin(self.reply(false)).await?);
                }
                Ok(Reply::Array(items))
            }
            _ => Err(format!("redis: unexpected reply {line}").into()),
        }
    }
}

async fn redis_throughput(o: &Opts, name: &str, addr: &str, clients: usize) -> Res<()> {
    let limit = Duration::from_secs_f64(o.seconds);
    let body = o.body.clone().into_bytes();
    let list = format!("push-{clients}");
    let run = drive(clients, o.ops, limit, |_| {
        let (addr, list, body) = (addr.to_owned(), list.clone(), body.clone());
        let conn = Arc::new(tokio::sync::Mutex::new(None::<Redis>));
        move || {
            let (addr, list, body, conn) = (addr.clone(), list.clone(), body.clone(), conn.clone());
            async move {
                let mut guard = conn.lock().await;
                if guard.is_none() {
                    *guard = Some(Redis::connect(&addr).await?);
                }
                let r = guard.as_mut().expect("connected");
                r.cmd(&[b"LPUSH", list.as_bytes(), &body]).await?;
                Ok(1)
            }
        }
    })
    .await?;
    emit(name, "send", clients, run);

    // Prefill, 1000 values per LPUSH.
    let mut r = Redis::connect(addr).await?;
    for list in [format!("pop-{clients}"), format!("move-{clients}")] {
        let mut left = o.ops;
        while left > 0 {
            let k = left.min(1000) as usize;
            let mut args: Vec<&[u8]> = vec![b"LPUSH", list.as_bytes()];
            args.extend(std::iter::repeat_n(body.as_slice(), k));
            r.cmd(&args).await?;
            left -= k as i64;
        }
    }

    let list = format!("pop-{clients}");
    let run = drive(clients, o.ops, limit, |_| {
        let (addr, list) = (addr.to_owned(), list.clone());
        let conn = Arc::new(tokio::sync::Mutex::new(None::<Redis>));
        move || {
            let (addr, list, conn) = (addr.clone(), list.clone(), conn.clone());
            async move {
                let mut guard = conn.lock().await;
                if guard.is_none() {
                    *guard = Some(Redis::connect(&addr).await?);
                }
                let r = guard.as_mut().expect("connected");
                match r.cmd(&[b"BRPOP", list.as_bytes(), b"1"]).await? {
                    Reply::Array(_) => Ok(1),
                    _ => Ok(0),
                }
            }
        }
    })
    .await?;
    emit(name, "read", clients, run);

    let list = format!("move-{clients}");
    let run = drive(clients, o.ops, limit, |c| {
        let (addr, list) = (addr.to_owned(), list.clone());
        let processing = format!("processing-{clients}-{c}");
        let conn = Arc::new(tokio::sync::Mutex::new(None::<Redis>));
        move || {
            let (addr, list, processing, conn) =
                (addr.clone(), list.clone(), processing.clone(), conn.clone());
            async move {
                let mut guard = conn.lock().await;
                if guard.is_none() {
                    *guard = Some(Redis::connect(&addr).await?);
                }
                let r = guard.as_mut().expect("connected");
                let v = match r
                    .cmd(&[
                        b"BLMOVE",
                        list.as_bytes(),
                        processing.as_bytes(),
                        b"RIGHT",
                        b"LEFT",
                        b"1",
                    ])
                    .await?
                {
                    Reply::Bulk(v) => v,
                    _ => return Ok(0),
                };
                r.cmd(&[b"LREM", processing.as_bytes(), b"1", &v]).await?;
                Ok(1)
            }
        }
    })
    .await?;
    emit(name, "lease_ack", clients, run);
    Ok(())
}

async fn redis_latency(o: &Opts, name: &str, addr: &str) -> Res<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut consumer_conn = Redis::connect(addr).await?;
    let consumer = tokio::spawn(async move {
        loop {
            if let Reply::Array(_) = consumer_conn.cmd(&[b"BRPOP", b"lat", b"10"]).await? {
                if tx.send(Instant::now()).await.is_err() {
                    return Res::Ok(());
                }
            }
        }
    });
    let producer = Arc::new(tokio::sync::Mutex::new(Redis::connect(addr).await?));
    let body = o.body.clone().into_bytes();
    latency(o, name, "push_latency", rx, || {
        let (producer, body) = (producer.clone(), body.clone());
        async move {
            producer
                .lock()
                .await
                .cmd(&[b"LPUSH", b"lat", &body])
                .await
                .map(|_| ())
        }
    })
    .await?;
    consumer.abort();
    Ok(())
}

// --- The physical floor ----------------------------------------------------

/// What a floor request asks: append its 64 bytes (`send`) or consume one
/// message (`read`).
const FLOOR_SEND: u8 = b's';
const FLOOR_READ: u8 = b'r';
const FLOOR_REQUEST: usize = 64;

/// One request waiting for the next sync: its record, its answer, and where
/// to send the answer once the record is durable.
type FloorJob = (Vec<u8>, Vec<u8>, tokio::sync::oneshot::Sender<Vec<u8>>);

/// The floor's messages to read, (id, body), oldest first.
type Stock = Arc<std::sync::Mutex<std::collections::VecDeque<(u64, Vec<u8>)>>>;

/// A running floor server: one thread, one event loop (as Redis runs), its
/// connections' tasks and a syncer task on it.
struct Floor {
    addr: std::net::SocketAddr,
    syncs: Arc<AtomicI64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Res<()>>>,
}

impl Floor {
    /// Starts a floor appending to `path`, with `stock` messages to read.
    fn start(path: std::path::PathBuf, stock: usize, body: &str) -> Res<Floor> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let syncs = Arc::new(AtomicI64::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stock: Stock = Arc::new(std::sync::Mutex::new(
            (0..stock as u64)
                .map(|i| (i, body.as_bytes().to_vec()))
                .collect(),
        ));
        let counted = syncs.clone();
        let thread = std::thread::spawn(move || -> Res<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                let (jobs, rx) = tokio::sync::mpsc::unbounded_channel::<FloorJob>();
                let syncer = tokio::spawn(floor_syncer(file, rx, counted));
                let next_id = Arc::new(AtomicI64::new(stock.lock().map_or(0, |s| s.len()) as i64));
                let accept = async {
                    loop {
                        let (s, _) = listener.accept().await?;
                        tokio::spawn(floor_conn(s, jobs.clone(), stock.clone(), next_id.clone()));
                    }
                };
                tokio::select! {
                    r = accept => r,
                    _ = stopped => Ok(()),
                    r = syncer => r?,
                }
            })
        });
        Ok(Floor {
            addr,
            syncs,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the floor (its connections close); the syncs it made.
    fn stop(mut self) -> Res<i64> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().map_err(|_| "the floor's thread panicked")??;
        }
        Ok(self.syncs.load(Ordering::Relaxed))
    }
}

/// The ideal group commit, on the floor's event loop: takes every request
/// that arrived in this round of the loop, appends their records with one
/// write, syncs once (blocking the loop meanwhile, as Redis's `appendfsync
/// always` does), then answers them all. Like the server's committer
/// (`litebroker-server/src/commit.rs`), when fewer requests are here than
/// the previous sync answered or saw arrive, it waits for the rest up to as
/// long as that sync took (at most 1 ms), so that the clients do not split
/// into groups that take turns.
async fn floor_syncer(
    mut file: std::fs::File,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<FloorJob>,
    syncs: Arc<AtomicI64>,
) -> Res<()> {
    use std::io::Write;
    let mut batch: Vec<FloorJob> = Vec::new();
    let mut buf = Vec::new();
    let (mut last, mut took) = (0usize, Duration::ZERO);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        // The rest of this round of the loop: connections woken with it.
        tokio::task::yield_now().await;
        while let Ok(job) = rx.try_recv() {
            batch.push(job);
        }
        if last > 1 && batch.len() < last {
            let until = tokio::time::Instant::now() + took.min(Duration::from_millis(1));
            while batch.len() < last {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    _ => break,
                }
            }
        }
        let started = Instant::now();
        buf.clear();
        for (record, _, _) in &batch {
            buf.extend_from_slice(record);
        }
        file.write_all(&buf)?;
        file.sync_data()?;
        syncs.fetch_add(1, Ordering::Relaxed);
        // The clients this sync concerned: those it answers, and those that
        // arrived meanwhile.
        (last, took) = (batch.len() + rx.len(), started.elapsed());
        for (_, answer, done) in batch.drain(..) {
            let _ = done.send(answer);
        }
    }
    Ok(())
}

/// Serves one floor connection: fixed-size requests, one at a time.
async fn floor_conn(
    mut s: TcpStream,
    jobs: tokio::sync::mpsc::UnboundedSender<FloorJob>,
    stock: Stock,
    next_id: Arc<AtomicI64>,
) -> Res<()> {
    s.set_nodelay(true)?;
    let mut req = [0u8; FLOOR_REQUEST];
    loop {
        if s.read_exact(&mut req).await.is_err() {
            return Ok(()); // the client is done
        }
        let (record, answer) = match req[0] {
            FLOOR_SEND => {
                // Readable once synced: the answer waits for the sync, and
                // a reader is served only after its own request's sync.
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                stock
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_back((id as u64, req.to_vec()));
                (req.to_vec(), id.to_le_bytes().to_vec())
            }
            FLOOR_READ => {
                let taken = stock.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                match taken {
                    Some((id, body)) => (id.to_le_bytes().to_vec(), body),
                    None => (Vec::new(), Vec::new()), // nothing left: an empty answer
                }
            }
            _ => return Err("floor: bad request".into()),
        };
        let (done, synced) = tokio::sync::oneshot::channel();
        jobs.send((record, answer, done))
            .map_err(|_| "floor: the syncer stopped")?;
        let answer = synced.await?;
        // A length byte, then the answer (0: nothing left to read).
        let mut out = vec![answer.len() as u8];
        out.extend_from_slice(&answer);
        s.write_all(&out).await?;
    }
}

/// One floor request of `kind` on `s`: how many messages it handled (a
/// read of an empty stock: none).
async fn floor_request(s: &mut TcpStream, kind: u8) -> Res<u64> {
    let mut request = [b'x'; FLOOR_REQUEST];
    request[0] = kind;
    s.write_all(&request).await?;
    let mut len = [0u8; 1];
    s.read_exact(&mut len).await?;
    let mut answer = vec![0u8; len[0] as usize];
    s.read_exact(&mut answer).await?;
    Ok(u64::from(len[0] > 0))
}

/// The floor for `clients` clients and one operation, measured as
/// `http_throughput` measures the server: `send`, `read`, or
/// `deliver_latency` (publish→deliver, one client).
async fn floor(
    o: &Opts,
    dir: &std::path::Path,
    clients: usize,
    op: &str,
    ops: i64,
    limit: Duration,
) -> Res<(Run, i64)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("floor-{clients}.log"));
    let _ = std::fs::remove_file(&path);
    // Messages to read, as many as a read measurement may take.
    let server = Floor::start(path.clone(), ops as usize, &o.body)?;
    let addr = server.addr;
    let kind = if op == "send" { FLOOR_SEND } else { FLOOR_READ };
    let run = if op != "deliver_latency" {
        drive(clients, ops, limit, |_| {
            let conn = Arc::new(tokio::sync::Mutex::new(None::<TcpStream>));
            move || {
                let conn = conn.clone();
                async move {
                    let mut guard = conn.lock().await;
                    if guard.is_none() {
                        let s = TcpStream::connect(addr).await?;
                        s.set_nodelay(true)?;
                        *guard = Some(s);
                    }
                    let s = guard.as_mut().expect("connected");
                    floor_request(s, kind).await
                }
            }
        })
        .await?
    } else {
        // Publish→deliver at the floor: a durable write, then a durable
        // take, back to back (an ideal wake-up costs nothing).
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let started = Instant::now();
        let mut lat = Vec::new();
        while lat.len() < o.latency && started.elapsed() < limit * 2 {
            let t = Instant::now();
            floor_request(&mut s, FLOOR_SEND).await?;
            if floor_request(&mut s, FLOOR_READ).await? == 0 {
                return Err("floor: nothing to read".into());
            }
            lat.push(t.elapsed());
        }
        Run {
            count: lat.len() as u64,
            secs: started.elapsed().as_secs_f64(),
            lat,
        }
    };
    let syncs = server.stop()?;
    let _ = std::fs::remove_file(&path);
    Ok((run, syncs))
}

/// Opens `--idle-sse` event streams on an empty queue, says so on stdout
/// once all are open, holds them `--hold` seconds, and closes them (the
/// script measures the server meanwhile).
async fn idle_sse(o: &Opts) -> Res<()> {
    let url = format!("{}/v1/queues/idle/events", o.url);
    let mut streams = Vec::with_capacity(o.idle_sse);
    for _ in 0..o.idle_sse {
        // One client each: one connection each.
        let resp = reqwest::Client::new().get(&url).send().await?;
        if !resp.status().is_success() {
            return Err(format!("events: {}", resp.status()).into());
        }
        let mut body = resp.bytes_stream();
        streams.push(tokio::spawn(async move {
            while let Some(Ok(_)) = body.next().await {}
        }));
    }
    println!(
        "{}",
        json!({"meta": "idle_sse_open", "streams": streams.len()})
    );
    tokio::time::sleep(Duration::from_secs_f64(o.hold)).await;
    for s in &streams {
        s.abort();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let o = parse_opts();
    if o.idle_sse > 0 {
        return idle_sse(&o).await;
    }
    // The floor and the server one after the other for each operation and
    // number of clients, so that both see about the same machine.
    for &c in &o.clients {
        compare(&o, c, "send").await?;
        compare(&o, c, "read").await?;
        if !o.url.is_empty() {
            http_lease_ack(&o, c).await?;
        }
    }
    if let Some(dir) = &o.floor {
        let limit = Duration::from_secs_f64(o.seconds);
        let (run, _) = floor(&o, dir, 1, "deliver_latency", o.ops, limit).await?;
        emit("floor", "deliver_latency", 1, run);
    }
    if !o.url.is_empty() {
        http_latency(&o).await?;
    }
    for (name, addr) in &o.redis {
        let mut r = Redis::connect(addr).await?;
        if let Reply::Status(s) = r.cmd(&[b"PING"]).await? {
            eprintln!("{name}: {s}");
        }
        for &c in &o.clients {
            redis_throughput(&o, name, addr, c).await?;
        }
        redis_latency(&o, name, addr).await?;
    }
    Ok(())
}
