//! litebroker on PostgreSQL against the raw SQL floor doing the same work,
//! side by side on one server, at 1 and 8 connections. Prints one JSON line
//! per measurement (same shape as the other bench binaries).
//!
//! usage: pg-bench --url URL [--single 2000] [--batched 100000] [--batch 1000]
//!                 [--claims 4000] [--leases 2000] [--latency 200] [--conns 1,8]
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
use serde_json::json;

const USAGE: &str = "pg-bench --url URL [--single 2000] [--batched 100000] [--batch 1000] \
                     [--claims 4000] [--leases 2000] [--latency 200] [--conns 1,8]";

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
    let conns: Vec<usize> = args
        .get("conns")
        .unwrap_or("1,8")
        .split(',')
        .map(|c| c.parse().expect("--conns: numbers"))
        .collect();
    let floor = Floor { url: url.clone() };
    let lb = Lb::new(&url)?;
    for &c in &conns {
        // Floor and litebroker alternate per workload, so both see the same server state.
        floor.reset()?;
        lb.reset()?;
        let t = run_threads(c, single, |_, n| floor.insert(n, 1))?;
        emit("floor_insert", single, t, json!({"conns": c}));
        let t = run_threads(c, single, |_, n| floor.insert_ordered(n, 1))?;
        emit("floor_insert_ordered", single, t, json!({"conns": c}));
        let t = run_threads(c, single, |_, n| lb.write(n, 1))?;
        emit("lb_write", single, t, json!({"conns": c}));

        let t = run_threads(c, batched / batch, |_, n| floor.insert(n, batch))?;
        emit(
            "floor_insert_batch",
            batched,
            t,
            json!({"conns": c, "batch": batch}),
        );
        let t = run_threads(c, batched / batch, |_, n| floor.insert_ordered(n, batch))?;
        emit(
            "floor_insert_batch_ordered",
            batched,
            t,
            json!({"conns": c, "batch": batch}),
        );
        let t = run_threads(c, batched / batch, |_, n| lb.write(n, batch))?;
        emit(
            "lb_write_batch",
            batched,
            t,
            json!({"conns": c, "batch": batch}),
        );

        floor.reset()?;
        lb.reset()?;
        floor.insert(claims / batch + 1, batch)?;
        lb.write(claims / batch + 1, batch)?;
        let t = run_threads(c, claims, |_, n| floor.claim(n))?;
        emit("floor_claim", claims, t, json!({"conns": c}));
        let t = run_threads(c, claims, |_, n| lb.read(n))?;
        emit("lb_read", claims, t, json!({"conns": c}));

        floor.reset()?;
        lb.reset()?;
        floor.insert(leases / batch + 1, batch)?;
        lb.write(leases / batch + 1, batch)?;
        let t = run_threads(c, leases, |_, n| floor.lease_ack(n))?;
        emit("floor_lease_ack", leases, t, json!({"conns": c}));
        let t = run_threads(c, leases, |_, n| lb.lease_ack(n))?;
        emit("lb_lease_ack", leases, t, json!({"conns": c}));
    }
    lb.reset()?;
    let samples = lb.watch_latency(latency)?;
    emit(
        "lb_watch_latency",
        samples.len(),
        Duration::ZERO,
        json!({"p50_ms": pct(&samples, 50.0), "p99_ms": pct(&samples, 99.0),
               "max_ms": pct(&samples, 100.0)}),
    );
    floor.drop_schema()?;
    lb.connector.drop_schema()?;
    Ok(())
}

fn pct(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * (s.len() as f64 - 1.0)).round() as usize;
    s.get(i).copied().unwrap_or(0.0)
}

/// Runs `total` units of work split over `threads` threads (each gets its
/// share as `n`), started together; returns the wall time.
fn run_threads(
    threads: usize,
    total: usize,
    work: impl Fn(usize, usize) -> Res<()> + Sync,
) -> Res<Duration> {
    let barrier = Barrier::new(threads + 1);
    let work = &work;
    let barrier = &barrier;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let n = total / threads + usize::from(i < total % threads);
                s.spawn(move || {
                    barrier.wait();
                    work(i, n)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for h in handles {
            h.join().expect("bench thread")?;
        }
        Ok(start.elapsed())
    })
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

    fn insert(&self, transactions: usize, per: usize) -> Res<()> {
        let mut c = self.client()?;
        let one = c.prepare("INSERT INTO q (queue, body) VALUES ('bench', $1)")?;
        let many =
            c.prepare("INSERT INTO q (queue, body) SELECT 'bench', b FROM unnest($1::bytea[]) b")?;
        let bodies: Vec<Vec<u8>> = (0..per)
            .map(|i| format!("message {i}").into_bytes())
            .collect();
        for _ in 0..transactions {
            if per == 1 {
                c.execute(&one, &[&bodies[0]])?;
            } else {
                c.execute(&many, &[&bodies])?;
            }
        }
        Ok(())
    }

    /// The same inserts, each transaction first raising one counter row
    /// (what gives ids in commit order on every host): the cost of ordering.
    fn insert_ordered(&self, transactions: usize, per: usize) -> Res<()> {
        let mut c = self.client()?;
        let bump = c.prepare("UPDATE counter SET value = value + $1 RETURNING value")?;
        let many = c.prepare(
            "INSERT INTO q (id, queue, body) SELECT $1::bigint + n, 'bench', b \
             FROM unnest($2::bytea[]) WITH ORDINALITY AS t(b, n)",
        )?;
        let bodies: Vec<Vec<u8>> = (0..per)
            .map(|i| format!("message {i}").into_bytes())
            .collect();
        let per_i64 = per as i64;
        for _ in 0..transactions {
            let mut tx = c.transaction()?;
            let last: i64 = tx.query_one(&bump, &[&per_i64])?.get(0);
            tx.execute(&many, &[&(last - per_i64 + 1_000_000_000), &bodies])?;
            tx.commit()?;
        }
        Ok(())
    }

    fn claim(&self, n: usize) -> Res<()> {
        let mut c = self.client()?;
        let take = c.prepare(
            "DELETE FROM q WHERE id = (SELECT id FROM q WHERE queue = 'bench' \
             ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, body",
        )?;
        for _ in 0..n {
            c.query_opt(&take, &[])?.ok_or("floor queue ran dry")?;
        }
        Ok(())
    }

    fn lease_ack(&self, n: usize) -> Res<()> {
        let mut c = self.client()?;
        let lease = c.prepare(
            "UPDATE q SET visible_at = 1 WHERE id = (SELECT id FROM q WHERE queue = 'bench' \
             AND visible_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, body",
        )?;
        let ack = c.prepare("DELETE FROM q WHERE id = $1")?;
        for _ in 0..n {
            let row = c.query_opt(&lease, &[])?.ok_or("floor queue ran dry")?;
            let id: i64 = row.get(0);
            c.execute(&ack, &[&id])?;
        }
        Ok(())
    }
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

    fn write(&self, transactions: usize, per: usize) -> Res<()> {
        let mut b = self.broker()?;
        let mut q = b.queue("bench")?;
        let bodies: Vec<String> = (0..per).map(|i| format!("message {i}")).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        for _ in 0..transactions {
            if per == 1 {
                q.write(refs[0])?;
            } else {
                q.write_many(&refs)?;
            }
        }
        Ok(())
    }

    fn read(&self, n: usize) -> Res<()> {
        let mut b = self.broker()?;
        let mut q = b.queue("bench")?;
        for _ in 0..n {
            q.read()?.ok_or("litebroker queue ran dry")?;
        }
        Ok(())
    }

    fn lease_ack(&self, n: usize) -> Res<()> {
        let mut b = self.broker()?;
        let mut q = b.queue("bench")?;
        for _ in 0..n {
            let m = q
                .lease(&Filter::all(), 1, Some(Duration::from_secs(30)))?
                .pop()
                .ok_or("litebroker queue ran dry")?;
            q.ack(&m.receipt.expect("a leased message has a receipt"))?;
        }
        Ok(())
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
