//! Raw SQLite rates with the reference's schema and durability (WAL,
//! synchronous=FULL): what any SimpleBroker-compatible implementation can at
//! best reach on this machine. Prints one JSON line per measurement.
//!
//! usage: sqlite-limits [--dir DIR] [--rows 100000] [--batch 1000] [--single 1000]
//!
//! Measurements, in order, on a fresh database DIR/sqlite-limits.db:
//!   sqlite_batched_insert  --rows rows in transactions of --batch
//!   sqlite_peek_scan       SELECT of all rows in pages of --batch (peek's floor)
//!   sqlite_batched_claim   UPDATE ... LIMIT --batch RETURNING, one txn each
//!   sqlite_single_commit   --single transactions of one INSERT each
//!   sqlite_single_claim    --single transactions claiming one row each
//!   sqlite_bulk_insert     --rows rows in ONE transaction (second fresh file)

use std::path::PathBuf;
use std::time::Instant;

use litebroker_bench::{create_reference_db, emit, id_base, Args};
use rusqlite::{params, Connection, TransactionBehavior};
use serde_json::json;

const USAGE: &str = "sqlite-limits [--dir DIR] [--rows 100000] [--batch 1000] [--single 1000]";

const CLAIM_SQL: &str = "UPDATE messages SET claimed = 1 WHERE id IN \
     (SELECT id FROM messages WHERE queue = ?1 AND claimed = 0 ORDER BY id LIMIT ?2) \
     RETURNING body, ts";

fn main() {
    let args = Args::parse(USAGE);
    let rows = args.num("rows", 100_000);
    let batch = args.num("batch", 1000).max(1);
    let single = args.num("single", 1000);
    let tmp;
    let dir = match args.get("dir") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = std::env::temp_dir().join(format!("sqlite-limits-{}", std::process::id()));
            std::fs::create_dir_all(&tmp).expect("create temp dir");
            tmp.clone()
        }
    };
    let path = dir.join("sqlite-limits.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    if let Err(e) = run(&path, rows, batch, single) {
        eprintln!("sqlite-limits: {e}");
        std::process::exit(1);
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn run(path: &std::path::Path, rows: usize, batch: usize, single: usize) -> rusqlite::Result<()> {
    let mut conn = create_reference_db(path)?;
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let info = json!({"journal_mode": mode, "synchronous": sync, "batch": batch,
                      "sqlite_version": rusqlite::version()});

    // Batched insert.
    let base = id_base();
    let start = Instant::now();
    let mut done = 0;
    while done < rows {
        let n = batch.min(rows - done);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO messages (queue, body, ts, claimed) VALUES ('q', ?1, ?2, 0)",
            )?;
            for i in done..done + n {
                ins.execute(params![format!("message {i}"), base + i as i64])?;
            }
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'last_ts'",
            [base + (done + n) as i64 - 1],
        )?;
        tx.commit()?;
        done += n;
    }
    emit("sqlite_batched_insert", rows, start.elapsed(), info.clone());

    // Peek scan: what `peek --all` must at least do (pages ordered by id).
    let start = Instant::now();
    let mut seen = 0usize;
    let mut last_id = 0i64;
    let mut bytes = 0usize;
    loop {
        let mut page = conn.prepare_cached(
            "SELECT id, body, ts FROM messages WHERE queue = 'q' AND claimed = 0 AND id > ?1 \
             ORDER BY id LIMIT ?2",
        )?;
        let mut got = 0;
        let mut q = page.query(params![last_id, batch as i64])?;
        while let Some(r) = q.next()? {
            last_id = r.get(0)?;
            let body: String = r.get(1)?;
            let _ts: i64 = r.get(2)?;
            bytes += body.len();
            got += 1;
        }
        seen += got;
        if got < batch {
            break;
        }
    }
    emit(
        "sqlite_peek_scan",
        seen,
        start.elapsed(),
        json!({"bytes": bytes}),
    );

    // Batched claim.
    let start = Instant::now();
    let claimed = claim_all(&mut conn, batch)?;
    emit(
        "sqlite_batched_claim",
        claimed,
        start.elapsed(),
        info.clone(),
    );

    // Single-row commits.
    let base = id_base().max(base + rows as i64);
    let start = Instant::now();
    for i in 0..single {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO messages (queue, body, ts, claimed) VALUES ('q', ?1, ?2, 0)",
        )?
        .execute(params![format!("single {i}"), base + i as i64])?;
        tx.commit()?;
    }
    emit(
        "sqlite_single_commit",
        single,
        start.elapsed(),
        info.clone(),
    );

    // Single-row claims: one durable transaction per message (the reference's
    // `read --all` shape).
    let start = Instant::now();
    let claimed = claim_all(&mut conn, 1)?;
    emit(
        "sqlite_single_claim",
        claimed,
        start.elapsed(),
        info.clone(),
    );
    drop(conn);

    // Bulk insert: every row in one transaction, the ceiling for batch writes.
    let bulk_path = path.with_extension("bulk.db");
    let mut conn = create_reference_db(&bulk_path)?;
    let base = id_base();
    let start = Instant::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO messages (queue, body, ts, claimed) VALUES ('q', ?1, ?2, 0)",
        )?;
        for i in 0..rows {
            ins.execute(params![format!("message {i}"), base + i as i64])?;
        }
    }
    tx.commit()?;
    let mut info = info;
    info["batch"] = json!(rows);
    emit("sqlite_bulk_insert", rows, start.elapsed(), info);
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", bulk_path.display()));
    }
    Ok(())
}

fn claim_all(conn: &mut Connection, batch: usize) -> rusqlite::Result<usize> {
    let mut total = 0;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = {
            let mut st = tx.prepare_cached(CLAIM_SQL)?;
            let mut q = st.query(params!["q", batch as i64])?;
            let mut n = 0;
            while let Some(r) = q.next()? {
                let _body: String = r.get(0)?;
                let _ts: i64 = r.get(1)?;
                n += 1;
            }
            n
        };
        tx.commit()?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}
