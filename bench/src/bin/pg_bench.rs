//! litebroker on PostgreSQL against the raw SQL floor doing the same work,
//! side by side on one server, at 1 and 8 connections. Prints one JSON line
//! per measurement (same shape as the other bench binaries).
//!
//! usage: pg-bench --url URL [--single 2000] [--batched 100000] [--batch 1000]
//!                 [--claims 4000] [--leases 2000] [--latency 200] [--conns 1,8]
//!                 [--rounds 4]
//!
//! A size of 0 leaves that workload out.
//! Contenders of one workload take turns in `--rounds` rounds (the order
//! rotates), each thread connected before the clock starts, so a busy
//! machine slows all of them alike and the ratios hold.
//!
//! Workloads (each on fresh tables: the floor in schema `pgbench_floor`,
//! litebroker in schema `pgbench_lb`):
//!   floor_insert / lb_write            one message per transaction
//!   floor_insert_ordered               the same, raising a counter row first in each
//!                                      transaction (ids in commit order, as litebroker)
//!   floor_insert_batch / lb_write_batch  --batch messages per transaction
//!   floor_insert_batch_ordered         the same with the counter row
//!   floor_claim / lb_read              take one message (exactly once) per transaction:
//!                                      DELETE ... WHERE id = (SELECT ... FOR UPDATE
//!                                      SKIP LOCKED LIMIT 1) RETURNING
//!   floor_lease_ack / lb_lease_ack     lease one (UPDATE ... SKIP LOCKED RETURNING)
//!                                      then acknowledge it (a second transaction)
//!   lb_watch_latency                   commit of a write in one connection to its
//!                                      delivery to a waiter woken by LISTEN/NOTIFY

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use litebroker::backend::postgres::{PostgresConnector, PostgresOptions};
use litebroker::message::Filter;
use litebroker::{Broker, Connector};
use litebroker_bench::{emit, Args};
use postgres::{Client, NoTls};
use serde_json::{json, Value};

const USAGE: &str = "pg-bench --url URL [--single 2000] [--batched 100000] [--batch 1000] \
                     [--claims 4000] [--leases 2000] [--latency 200] [--conns 1,8] \
                     [--rounds 4]";

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Res<()> {
    let args = Args::parse(USAGE);
    let url = args.get("url").ok_or("--url is required")?.to_owned();
    let single = args.num("single", 2000);
    let batched = args.num("batched", 100_000);
    let batch = args.num("batch", 1000).max(1);
    let claims = args.num("claims", 4000);
    let leases = args.num("leases", 2000);
    let latency = args.num("latency", 200);
    let rounds = args.num("rounds", 4).max(1);
    let conns: Vec<usize> = args
        .get("conns")
        .unwrap_or("1,8")
        .split(',')
        .map(|c| c.parse().expect("--conns: numbers"))
        .collect();
    let floor = Floor { url: url.clone() };
    let lb = Lb::new(&url)?;
    let cpu = ServerCpu::find(&url)?;
    for &c in &conns {
        let run = |total: usize, works: &[&Work<'_>]| interleaved(c, total, rounds, &cpu, works);
        floor.reset()?;
        lb.reset()?;
        if single > 0 {
            let t = run(
                single,
                &[&|_| floor.insert(1), &|_| floor.insert_ordered(1), &|_| {
                    lb.write(1)
                }],
            )?;
            put("floor_insert", single, t[0], json!({"conns": c}));
            put("floor_insert_ordered", single, t[1], json!({"conns": c}));
            put("lb_write", single, t[2], json!({"conns": c}));
        }

        if batched > 0 {
            let t = run(
                batched / batch,
                &[
                    &|_| floor.insert(batch),
                    &|_| floor.insert_ordered(batch),
                    &|_| lb.write(batch),
                ],
            )?;
            let extra = json!({"conns": c, "batch": batch});
            put("floor_insert_batch", batched, t[0], extra.clone());
            put("floor_insert_batch_ordered", batched, t[1], extra.clone());
            put("lb_write_batch", batched, t[2], extra);
        }

        if claims > 0 {
            floor.reset()?;
            lb.reset()?;
            floor.insert(batch)?(claims / batch + 1)?;
            lb.write(batch)?(claims / batch + 1)?;
            analyze(&url)?;
            let t = run(claims, &[&|_| floor.claim(), &|_| lb.read()])?;
            put("floor_claim", claims, t[0], json!({"conns": c}));
            put("lb_read", claims, t[1], json!({"conns": c}));
        }

        if leases > 0 {
            floor.reset()?;
            lb.reset()?;
            floor.insert(batch)?(leases / batch + 1)?;
            lb.write(batch)?(leases / batch + 1)?;
            analyze(&url)?;
            let t = run(leases, &[&|_| floor.lease_ack(), &|_| lb.lease_ack()])?;
            put("floor_lease_ack", leases, t[0], json!({"conns": c}));
            put("lb_lease_ack", leases, t[1], json!({"conns": c}));
        }
    }
    if latency > 0 {
        lb.reset()?;
        let samples = lb.watch_latency(latency)?;
        emit(
            "lb_watch_latency",
            samples.len(),
            Duration::ZERO,
            json!({"p50_ms": pct(&samples, 50.0), "p99_ms": pct(&samples, 99.0),
               "max_ms": pct(&samples, 100.0)}),
        );
    }
    floor.drop_schema()?;
    lb.connector.drop_schema()?;
    Ok(())
}

/// Gives the planner statistics of the freshly filled tables of both, as
/// autovacuum would before long: without them, the floor's lease chose a
/// bitmap scan and a sort of the whole queue for every message.
fn analyze(url: &str) -> Res<()> {
    let mut c = Client::connect(url, NoTls)?;
    c.batch_execute("ANALYZE pgbench_floor.q; ANALYZE pgbench_lb.messages")?;
    Ok(())
}

/// One JSON line: throughput, and the server's CPU time per message.
fn put(name: &str, count: usize, (wall, server): (Duration, Option<Duration>), extra: Value) {
    let mut extra = extra;
    if let (Some(cpu), Some(o)) = (server, extra.as_object_mut()) {
        let per = cpu.as_secs_f64() * 1e6 / count.max(1) as f64;
        o.insert(
            "server_cpu_us_per_msg".into(),
            json!((per * 100.0).round() / 100.0),
        );
    }
    emit(name, count, wall, extra);
}

fn pct(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * (s.len() as f64 - 1.0)).round() as usize;
    s.get(i).copied().unwrap_or(0.0)
}

/// A unit of work, run `n` times (on a connection opened beforehand).
type Job<'a> = Box<dyn FnMut(usize) -> Res<()> + Send + 'a>;

/// Opens one thread's connection (thread number given) and returns its job.
type Work<'a> = dyn Fn(usize) -> Res<Job<'a>> + Sync + 'a;

/// Runs each of `works` on `total` units split over `threads`, in `rounds`
/// rounds that take turns (the order rotates each round), so that the load
/// of a shared machine falls on every contender alike. Connections are
/// opened before the clock starts. Returns each one's summed wall time and
/// the CPU time the server's processes spent meanwhile (if it can be seen).
fn interleaved(
    threads: usize,
    total: usize,
    rounds: usize,
    cpu: &ServerCpu,
    works: &[&Work<'_>],
) -> Res<Vec<(Duration, Option<Duration>)>> {
    let mut times = vec![(Duration::ZERO, Some(Duration::ZERO)); works.len()];
    for r in 0..rounds {
        let share = total / rounds + usize::from(r < total % rounds);
        for k in 0..works.len() {
            let w = (k + r) % works.len();
            let (wall, server) = run_threads(threads, share, cpu, works[w])?;
            times[w].0 += wall;
            times[w].1 = times[w].1.zip(server).map(|(a, b)| a + b);
        }
    }
    Ok(times)
}

/// Runs `total` units of work split over `threads` threads (each gets its
/// share), started together once every thread has connected; returns the
/// wall time and the server's CPU time meanwhile.
fn run_threads(
    threads: usize,
    total: usize,
    cpu: &ServerCpu,
    work: &Work<'_>,
) -> Res<(Duration, Option<Duration>)> {
    let mut jobs = (0..threads).map(work).collect::<Res<Vec<_>>>()?;
    let barrier = Barrier::new(threads + 1);
    let barrier = &barrier;
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter_mut()
            .enumerate()
            .map(|(i, job)| {
                let n = total / threads + usize::from(i < total % threads);
                s.spawn(move || {
                    barrier.wait();
                    job(n)
                })
            })
            .collect();
        let before = cpu.used();
        barrier.wait();
        let start = Instant::now();
        for h in handles {
            h.join().expect("bench thread")?;
        }
        let wall = start.elapsed();
        // The connections are still open: their processes' time is all there.
        let server = before.zip(cpu.used()).map(|(a, b)| b.saturating_sub(a));
        Ok((wall, server))
    })
}

/// The CPU time of the server's processes (the postmaster's children), when
/// the server runs on this host and `/proc` shows it: wall time on a shared
/// machine moves with everyone else's load, CPU time much less.
struct ServerCpu {
    postmaster: Option<u32>,
}

impl ServerCpu {
    fn find(url: &str) -> Res<Self> {
        let mut c = Client::connect(url, NoTls)?;
        let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[])?.get(0);
        let postmaster = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat_ppid(&stat));
        Ok(ServerCpu { postmaster })
    }

    /// Summed run time of the postmaster's children now.
    fn used(&self) -> Option<Duration> {
        let pm = self.postmaster?;
        let mut ns = 0u64;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let child = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat_ppid(&stat))
                == Some(pm);
            if child {
                let sched = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok();
                ns += sched
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
            }
        }
        Some(Duration::from_nanos(ns))
    }
}

/// The parent pid in a `/proc/PID/stat` line (after the command in parentheses).
fn stat_ppid(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The raw SQL floor: the smallest table and statements that do the work.
struct Floor {
    url: String,
}

impl Floor {
    fn client(&self) -> Res<Client> {
        let mut c = Client::connect(&self.url, NoTls)?;
        c.batch_execute("SET search_path TO pgbench_floor")?;
        Ok(c)
    }

    fn reset(&self) -> Res<()> {
        let mut c = Client::connect(&self.url, NoTls)?;
        c.batch_execute(
            "DROP SCHEMA IF EXISTS pgbench_floor CASCADE; CREATE SCHEMA pgbench_floor; \
             CREATE TABLE pgbench_floor.q (id BIGSERIAL PRIMARY KEY, queue TEXT NOT NULL, \
             body BYTEA NOT NULL, visible_at BIGINT); \
             CREATE INDEX ON pgbench_floor.q (queue, id); \
             CREATE TABLE pgbench_floor.counter (value BIGINT NOT NULL); \
             INSERT INTO pgbench_floor.counter VALUES (0);",
        )?;
        Ok(())
    }

    fn drop_schema(&self) -> Res<()> {
        let mut c = Client::connect(&self.url, NoTls)?;
        c.batch_execute("DROP SCHEMA IF EXISTS pgbench_floor CASCADE")?;
        Ok(())
    }

    /// `per` messages per transaction (one statement).
    fn insert(&self, per: usize) -> Res<Job<'static>> {
        let mut c = self.client()?;
        let one = c.prepare("INSERT INTO q (queue, body) VALUES ('bench', $1)")?;
        let many =
            c.prepare("INSERT INTO q (queue, body) SELECT 'bench', b FROM unnest($1::bytea[]) b")?;
        let bodies = bodies(per);
        Ok(Box::new(move |transactions| {
            for _ in 0..transactions {
                if per == 1 {
                    c.execute(&one, &[&bodies[0]])?;
                } else {
                    c.execute(&many, &[&bodies])?;
                }
            }
            Ok(())
        }))
    }

    /// The same inserts, each transaction first raising one counter row
    /// (what gives ids in commit order on every host): the cost of ordering.
    fn insert_ordered(&self, per: usize) -> Res<Job<'static>> {
        let mut c = self.client()?;
        let bump = c.prepare("UPDATE counter SET value = value + $1 RETURNING value")?;
        let many = c.prepare(
            "INSERT INTO q (id, queue, body) SELECT $1::bigint + n, 'bench', b \
             FROM unnest($2::bytea[]) WITH ORDINALITY AS t(b, n)",
        )?;
        let bodies = bodies(per);
        let per_i64 = per as i64;
        Ok(Box::new(move |transactions| {
            for _ in 0..transactions {
                let mut tx = c.transaction()?;
                let last: i64 = tx.query_one(&bump, &[&per_i64])?.get(0);
                tx.execute(&many, &[&(last - per_i64 + 1_000_000_000), &bodies])?;
                tx.commit()?;
            }
            Ok(())
        }))
    }

    fn claim(&self) -> Res<Job<'static>> {
        let mut c = self.client()?;
        let take = c.prepare(
            "DELETE FROM q WHERE id = (SELECT id FROM q WHERE queue = 'bench' \
             ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, body",
        )?;
        Ok(Box::new(move |n| {
            for _ in 0..n {
                c.query_opt(&take, &[])?.ok_or("floor queue ran dry")?;
            }
            Ok(())
        }))
    }

    fn lease_ack(&self) -> Res<Job<'static>> {
        let mut c = self.client()?;
        let lease = c.prepare(
            "UPDATE q SET visible_at = 1 WHERE id = (SELECT id FROM q WHERE queue = 'bench' \
             AND visible_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, body",
        )?;
        let ack = c.prepare("DELETE FROM q WHERE id = $1")?;
        Ok(Box::new(move |n| {
            for _ in 0..n {
                let row = c.query_opt(&lease, &[])?.ok_or("floor queue ran dry")?;
                let id: i64 = row.get(0);
                c.execute(&ack, &[&id])?;
            }
            Ok(())
        }))
    }
}

/// The bodies of one transaction's messages.
fn bodies(per: usize) -> Vec<Vec<u8>> {
    (0..per)
        .map(|i| format!("message {i}").into_bytes())
        .collect()
}

/// litebroker through its library, on the same server.
struct Lb {
    connector: Arc<PostgresConnector>,
}

impl Lb {
    fn new(url: &str) -> Res<Self> {
        let options = PostgresOptions {
            schema: "pgbench_lb".into(),
            ..PostgresOptions::default()
        };
        Ok(Lb {
            connector: Arc::new(PostgresConnector::new(url, options)?),
        })
    }

    fn broker(&self) -> Res<Broker> {
        Ok(Broker::connect(self.connector.clone())?)
    }

    fn reset(&self) -> Res<()> {
        self.connector.drop_schema()?;
        self.connector.init()?;
        Ok(())
    }

    fn write(&self, per: usize) -> Res<Job<'static>> {
        let mut b = self.broker()?;
        let bodies: Vec<String> = (0..per).map(|i| format!("message {i}")).collect();
        Ok(Box::new(move |transactions| {
            let mut q = b.queue("bench")?;
            let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
            for _ in 0..transactions {
                if per == 1 {
                    q.write(refs[0])?;
                } else {
                    q.write_many(&refs)?;
                }
            }
            Ok(())
        }))
    }

    fn read(&self) -> Res<Job<'static>> {
        let mut b = self.broker()?;
        Ok(Box::new(move |n| {
            let mut q = b.queue("bench")?;
            for _ in 0..n {
                q.read()?.ok_or("litebroker queue ran dry")?;
            }
            Ok(())
        }))
    }

    fn lease_ack(&self) -> Res<Job<'static>> {
        let mut b = self.broker()?;
        Ok(Box::new(move |n| {
            let mut q = b.queue("bench")?;
            for _ in 0..n {
                let m = q
                    .lease(&Filter::all(), 1, Some(Duration::from_secs(30)))?
                    .pop()
                    .ok_or("litebroker queue ran dry")?;
                q.ack(&m.receipt.expect("a leased message has a receipt"))?;
            }
            Ok(())
        }))
    }

    /// Milliseconds from a write's commit to the message in a waiter's hands.
    fn watch_latency(&self, samples: usize) -> Res<Vec<f64>> {
        let feed = self.connector.changes();
        let connector: Arc<dyn Connector> = self.connector.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Instant>();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let reader = std::thread::spawn(move || -> Res<Vec<f64>> {
            let mut b = Broker::connect(connector)?;
            let mut q = b.queue("latency")?;
            let mut out = Vec::new();
            while out.len() < samples && !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let seen = feed.generation();
                if q.read()?.is_some() {
                    let got = Instant::now();
                    let sent = rx.recv()?;
                    out.push(got.duration_since(sent).as_secs_f64() * 1000.0);
                    continue;
                }
                feed.wait(seen, Duration::from_millis(500));
            }
            Ok(out)
        });
        let mut b = self.broker()?;
        let mut q = b.queue("latency")?;
        std::thread::sleep(Duration::from_millis(300)); // the reader starts listening
        for i in 0..samples {
            std::thread::sleep(Duration::from_millis(3 + (i as u64 * 7) % 8));
            q.write("ping")?;
            tx.send(Instant::now())?;
        }
        let out = reader.join().expect("reader thread");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    }
}
