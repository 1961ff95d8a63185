//! What leases cost in the `litebroker` library (no process spawns), against
//! the plain consuming read they replace. Default settings (synchronous=FULL).
//! Prints one JSON line per measurement (same shape as lib-throughput).
//!
//! usage: lease-throughput [--dir DIR] [--single 1000] [--batched 100000]
//!                         [--batch 1000] [--reclaim 100000] [--probes 50]
//!
//! Measurements, in order (each part on its own fresh database in DIR):
//!   lease_single_read      --single x queue.read()                 (1 transaction)
//!   lease_single_cycle     --single x lease(1, 30s) + ack(receipt)  (2 transactions)
//!                          the two run interleaved in rounds of 50 on one file,
//!                          so both see the same disk and CPU state; the cycle's
//!                          record carries `vs_read`, its cost in plain reads
//!   lease_batched_cycle    --batched messages: lease(--batch) + ack_many(batch)
//!   lease_batched_read     --batched messages: read_many(all, --batch)
//!   lease_fill             lease --reclaim messages in batches of --batch (no ack)
//!   lease_idle_read/_lease --probes x read() / lease(1) (+ untimed ack) on a
//!                          second file of the same size that never had a lease,
//!   lease_inflight_read/_lease  alternating with the same probes on the file
//!                          with --reclaim leases outstanding (not expired)
//!   lease_reclaim          after a ManualClock jump past every expiry: the one
//!                          lease(1) that returns all --reclaim messages to the queue
//!   lease_after_reclaim_read/_lease  the probes once the queue is back to normal

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use litebroker::clock::ManualClock;
use litebroker::message::Filter;
use litebroker::{Broker, Queue, Receipt, Settings};
use litebroker_bench::{emit, Args};
use serde_json::json;

const USAGE: &str = "lease-throughput [--dir DIR] [--single 1000] [--batched 100000] \
                     [--batch 1000] [--reclaim 100000] [--probes 50]";

/// The lease length every measurement asks for (the SQS default).
const VISIBILITY: Duration = Duration::from_secs(30);

/// Rounds in which plain reads and lease cycles alternate: short enough that
/// fsync latency (which drifts on a shared box) is the same for both.
const ROUND: usize = 50;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Sizes from the command line.
struct Sizes {
    single: usize,
    batched: usize,
    batch: usize,
    reclaim: usize,
    probes: usize,
}

fn main() {
    let args = Args::parse(USAGE);
    let sizes = Sizes {
        single: args.num("single", 1000),
        batched: args.num("batched", 100_000),
        batch: args.num("batch", 1000).max(1),
        reclaim: args.num("reclaim", 100_000),
        probes: args.num("probes", 50).max(1),
    };
    let dir = match args.get("dir") {
        Some(d) => PathBuf::from(d),
        None => {
            let d = std::env::temp_dir().join(format!("lease-throughput-{}", std::process::id()));
            std::fs::create_dir_all(&d).expect("create temp dir");
            d
        }
    };
    if let Err(e) = run(&dir, &sizes) {
        eprintln!("lease-throughput: {e}");
        std::process::exit(1);
    }
}

/// Each part gets a fresh file so that earlier parts' consumed rows and WAL
/// do not weigh on later ones; the file is removed afterwards.
fn run(dir: &Path, s: &Sizes) -> Res<()> {
    if s.single > 0 {
        with_fresh_db(dir, "lease-single.db", |b| single(b, s.single))?;
    }
    if s.batched > 0 {
        with_fresh_db(dir, "lease-batched.db", |b| batched(b, s.batched, s.batch))?;
    }
    if s.reclaim > 0 {
        reclaim(dir, s)?;
    }
    Ok(())
}

/// Opens a new database `dir/name` with the CLI's default settings, runs
/// `body` on it, then deletes the file (and its -wal/-shm).
fn with_fresh_db(dir: &Path, name: &str, body: impl FnOnce(&mut Broker) -> Res<()>) -> Res<()> {
    let path = dir.join(name);
    remove_db(&path);
    // Defaults as the CLI sees them (synchronous=FULL unless BROKER_SYNC_MODE says otherwise).
    let mut broker = Broker::open(&path, &Settings::from_env()?)?;
    let result = body(&mut broker);
    drop(broker);
    remove_db(&path);
    result
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Writes `n` messages in transactions of 1,000 (setup, untimed).
fn fill(q: &mut Queue<'_>, n: usize) -> Res<()> {
    let bodies: Vec<String> = (0..n).map(|i| format!("message {i:06}")).collect();
    for chunk in bodies.chunks(1000) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        q.write_many(&refs)?;
    }
    Ok(())
}

/// Takes one message with a lease; an empty queue is an error (the
/// benchmark always writes enough).
fn lease_one(q: &mut Queue<'_>) -> Res<Receipt> {
    let msg = q.lease(&Filter::all(), 1, Some(VISIBILITY))?.pop();
    let msg = msg.ok_or("lease: queue unexpectedly empty")?;
    Ok(msg.receipt.ok_or("lease returned no receipt")?)
}

/// Reads one message; an empty queue is an error.
fn read_one(q: &mut Queue<'_>) -> Res<()> {
    q.read()?.ok_or("read: queue unexpectedly empty")?;
    Ok(())
}

/// Parts 1 and 2: single plain reads against single lease+ack cycles, one
/// durable transaction per call, interleaved in rounds of [`ROUND`].
fn single(broker: &mut Broker, n: usize) -> Res<()> {
    let mut q = broker.queue("q")?;
    fill(&mut q, 2 * n)?;
    let (mut read_time, mut cycle_time) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < n {
        let k = ROUND.min(n - done);
        let start = Instant::now();
        for _ in 0..k {
            read_one(&mut q)?;
        }
        read_time += start.elapsed();
        let start = Instant::now();
        for _ in 0..k {
            let receipt = lease_one(&mut q)?;
            q.ack(&receipt)?;
        }
        cycle_time += start.elapsed();
        done += k;
    }
    if q.peek(&Filter::all())?.is_some() {
        return Err("single: messages left after reading and acking all".into());
    }
    let per = |t: Duration| t.as_secs_f64() * 1e6 / n as f64;
    emit(
        "lease_single_read",
        n,
        read_time,
        json!({"us_per_op": per(read_time)}),
    );
    emit(
        "lease_single_cycle",
        n,
        cycle_time,
        json!({"us_per_op": per(cycle_time),
               "vs_read": cycle_time.as_secs_f64() / read_time.as_secs_f64()}),
    );
    Ok(())
}

/// Part 3: `n` messages leased `batch` at a time and acked with one
/// `ack_many` per batch, then `n` more read with `read_many(batch)`.
fn batched(broker: &mut Broker, n: usize, batch: usize) -> Res<()> {
    let mut q = broker.queue("q")?;
    fill(&mut q, n)?;
    let (mut lease_time, mut ack_time, mut got) = (Duration::ZERO, Duration::ZERO, 0);
    loop {
        let start = Instant::now();
        let msgs = q.lease(&Filter::all(), batch, Some(VISIBILITY))?;
        lease_time += start.elapsed();
        if msgs.is_empty() {
            break;
        }
        let receipts: Vec<Receipt> = msgs.iter().filter_map(|m| m.receipt).collect();
        let start = Instant::now();
        let results = q.ack_many(&receipts)?;
        ack_time += start.elapsed();
        if results.iter().any(Result::is_err) || receipts.len() != msgs.len() {
            return Err("batched: an ack was refused".into());
        }
        got += msgs.len();
    }
    check_count("batched lease", got, n)?;
    let info = json!({"batch": batch, "lease_s": lease_time.as_secs_f64(),
                      "ack_s": ack_time.as_secs_f64()});
    emit("lease_batched_cycle", got, lease_time + ack_time, info);

    fill(&mut q, n)?;
    let start = Instant::now();
    let mut got = 0;
    loop {
        let msgs = q.read_many(&Filter::all(), batch)?;
        if msgs.is_empty() {
            break;
        }
        got += msgs.len();
    }
    emit(
        "lease_batched_read",
        got,
        start.elapsed(),
        json!({"batch": batch}),
    );
    check_count("batched read", got, n)
}

fn check_count(what: &str, got: usize, want: usize) -> Res<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got} messages, expected {want}").into())
    }
}

/// Part 4 on two files of the same size: `idle` never has a lease, `busy`
/// gets `--reclaim` of them. Probes alternate between the two so that both
/// see the same disk and CPU state.
fn reclaim(dir: &Path, s: &Sizes) -> Res<()> {
    with_fresh_db(dir, "lease-idle.db", |idle| {
        with_fresh_db(dir, "lease-reclaim.db", |busy| reclaim_pair(idle, busy, s))
    })
}

/// What many outstanding leases cost, and what returning them all at once
/// costs. A ManualClock makes 100k leases expire without waiting.
fn reclaim_pair(idle: &mut Broker, busy: &mut Broker, s: &Sizes) -> Res<()> {
    let clock = ManualClock::new();
    busy.set_clock(Arc::new(clock.clone()));
    let n = s.reclaim;
    let (mut iq, mut bq) = (idle.queue("q")?, busy.queue("q")?);
    // Each probe round consumes two messages per file; there are two rounds on `busy`.
    fill(&mut iq, n + 4 * s.probes)?;
    fill(&mut bq, n + 4 * s.probes)?;

    let start = Instant::now();
    let mut leased = 0;
    while leased < n {
        leased += bq
            .lease(&Filter::all(), s.batch.min(n - leased), Some(VISIBILITY))?
            .len();
    }
    emit(
        "lease_fill",
        leased,
        start.elapsed(),
        json!({"batch": s.batch}),
    );

    let (mut at_idle, mut in_flight) = (Probe::default(), Probe::default());
    for _ in 0..s.probes {
        at_idle.step(&mut iq)?;
        in_flight.step(&mut bq)?;
    }
    at_idle.emit("lease_idle", 0);
    in_flight.emit("lease_inflight", n);

    clock.advance(VISIBILITY + Duration::from_secs(1));
    let start = Instant::now();
    lease_one(&mut bq)?;
    let took = start.elapsed();
    drop(bq);
    check_reclaimed(busy, n, took)?;

    let mut after = Probe::default();
    let mut bq = busy.queue("q")?;
    for _ in 0..s.probes {
        after.step(&mut bq)?;
    }
    after.emit("lease_after_reclaim", 1);
    Ok(())
}

/// Emits the reclaim timing after checking that every expired lease is
/// back in the queue and only the reclaiming lease is out.
fn check_reclaimed(busy: &mut Broker, n: usize, took: Duration) -> Res<()> {
    let stats = busy.list()?;
    let (pending, still_leased) = stats
        .iter()
        .find(|st| st.name == "q")
        .map_or((0, 0), |st| (st.pending, st.leased));
    emit(
        "lease_reclaim",
        n,
        took,
        json!({"ms": took.as_secs_f64() * 1e3, "pending_after": pending,
               "leased_after": still_leased}),
    );
    if still_leased != 1 || pending < n as u64 {
        return Err(
            format!("reclaim: {pending} pending, {still_leased} leased after expiry").into(),
        );
    }
    Ok(())
}

/// Single-call timings of `read()` and `lease(1)` (each lease acked, untimed).
#[derive(Default)]
struct Probe {
    reads: Vec<Duration>,
    leases: Vec<Duration>,
}

impl Probe {
    /// One read and one lease on `q`.
    fn step(&mut self, q: &mut Queue<'_>) -> Res<()> {
        let start = Instant::now();
        read_one(q)?;
        self.reads.push(start.elapsed());
        let start = Instant::now();
        let receipt = lease_one(q)?;
        self.leases.push(start.elapsed());
        q.ack(&receipt)?;
        Ok(())
    }

    /// Emits `{prefix}_read` and `{prefix}_lease` with the median call in
    /// microseconds (fsync jitter makes the mean noisy).
    fn emit(self, prefix: &str, inflight: usize) {
        for (what, times) in [("read", self.reads), ("lease", self.leases)] {
            let (count, total) = (times.len(), times.iter().sum());
            let extra = json!({"median_us": median_us(times), "inflight": inflight});
            emit(&format!("{prefix}_{what}"), count, total, extra);
        }
    }
}

fn median_us(mut times: Vec<Duration>) -> f64 {
    times.sort_unstable();
    times
        .get(times.len() / 2)
        .map_or(0.0, |t| t.as_secs_f64() * 1e6)
}
