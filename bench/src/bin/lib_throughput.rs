//! Library-level throughput of the `litebroker` crate (no process spawns):
//! writes and reads, one durable transaction per message and batched.
//! Prints one JSON line per measurement (same shape as sqlite-limits).
//!
//! usage: lib-throughput [--dir DIR] [--single 1000] [--batched 100000] [--batch 1000]
//!
//! Measurements, in order, on a fresh database DIR/lib-throughput.db:
//!   lib_single_write   --single  x queue.write(body)       (one transaction each)
//!   sqlite_single_commit_paired   --single raw one-INSERT transactions on a
//!                      second file with the reference schema, interleaved with
//!                      the library writes in rounds of 50 so both see the same
//!                      disk and CPU state (fsync latency drifts on shared boxes)
//!   lib_single_read    --single  x queue.read()            (one transaction each)
//!   lib_batched_write  --batched messages via write_many of --batch
//!   lib_peek_each      peek_each over those messages (nothing consumed)
//!   lib_batched_read   read_many(all, --batch) until the queue is empty

use std::path::PathBuf;
use std::time::{Duration, Instant};

use litebroker::message::Filter;
use litebroker::{Broker, Settings};
use litebroker_bench::{emit, Args};
use serde_json::json;

const USAGE: &str = "lib-throughput [--dir DIR] [--single 1000] [--batched 100000] [--batch 1000]";

fn main() {
    let args = Args::parse(USAGE);
    let single = args.num("single", 1000);
    let batched = args.num("batched", 100_000);
    let batch = args.num("batch", 1000).max(1);
    let dir = match args.get("dir") {
        Some(d) => PathBuf::from(d),
        None => {
            let d = std::env::temp_dir().join(format!("lib-throughput-{}", std::process::id()));
            std::fs::create_dir_all(&d).expect("create temp dir");
            d
        }
    };
    let path = dir.join("lib-throughput.db");
    remove_db(&path);
    if let Err(e) = run(&path, single, batched, batch) {
        eprintln!("lib-throughput: {e}");
        std::process::exit(1);
    }
    remove_db(&path);
}

fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn run(
    path: &std::path::Path,
    single: usize,
    batched: usize,
    batch: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    // Defaults as the CLI sees them (synchronous=FULL unless BROKER_SYNC_MODE says otherwise).
    let settings = Settings::from_env()?;
    let mut broker = Broker::open(path, &settings)?;
    let mut q = broker.queue("q")?;
    let info = json!({"batch": batch});

    let bodies: Vec<String> = (0..single.max(batched))
        .map(|i| format!("message {i:06}"))
        .collect();

    let raw_path = path.with_extension("raw.db");
    remove_db(&raw_path);
    let mut raw = litebroker_bench::create_reference_db(&raw_path)?;
    let raw_base = litebroker_bench::id_base();
    let (mut lib_time, mut raw_time) = (Duration::ZERO, Duration::ZERO);
    for (round, chunk) in bodies[..single].chunks(50).enumerate() {
        let start = Instant::now();
        for body in chunk {
            q.write(body)?;
        }
        lib_time += start.elapsed();
        let start = Instant::now();
        for (i, body) in chunk.iter().enumerate() {
            let tx = raw.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO messages (queue, body, ts, claimed) VALUES ('q', ?1, ?2, 0)",
            )?
            .execute(rusqlite::params![body, raw_base + (round * 50 + i) as i64])?;
            tx.commit()?;
        }
        raw_time += start.elapsed();
    }
    drop(raw);
    remove_db(&raw_path);
    emit("lib_single_write", single, lib_time, json!({}));
    emit("sqlite_single_commit_paired", single, raw_time, json!({}));

    let start = Instant::now();
    let mut n = 0;
    while q.read()?.is_some() {
        n += 1;
    }
    emit("lib_single_read", n, start.elapsed(), json!({}));
    if n != single {
        return Err(format!("read {n} messages, wrote {single}").into());
    }

    let start = Instant::now();
    for chunk in bodies[..batched].chunks(batch) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        q.write_many(&refs)?;
    }
    emit("lib_batched_write", batched, start.elapsed(), info.clone());

    let start = Instant::now();
    let mut bytes = 0;
    let seen = q.peek_each(&Filter::all(), |m| {
        bytes += m.body.len();
        Ok(())
    })?;
    emit(
        "lib_peek_each",
        seen,
        start.elapsed(),
        json!({"bytes": bytes}),
    );

    let start = Instant::now();
    let mut n = 0;
    loop {
        let got = q.read_many(&Filter::all(), batch)?;
        if got.is_empty() {
            break;
        }
        n += got.len();
    }
    emit("lib_batched_read", n, start.elapsed(), info);
    if n != batched {
        return Err(format!("read {n} messages, wrote {batched}").into());
    }
    Ok(())
}
