//! The floor for one CLI `write`: open an existing broker database, apply the
//! broker's pragmas, insert one row in one BEGIN IMMEDIATE transaction, exit.
//!
//! usage: minimal-write [OPTIONS] DB_PATH [QUEUE [BODY]]
//!
//! The database must exist (the harness creates it with the reference's
//! schema). Nothing is printed on success; errors exit 1.
//!
//! By default SQLite's usual close applies: the last connection to close
//! checkpoints the WAL into the database and deletes -wal/-shm (extra fsyncs
//! and file creations for every process). The options show what each part of
//! that costs:
//!
//! * `--no-checkpoint-on-close`: SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE (the WAL
//!   then persists and grows; every new process rebuilds its index from it).
//! * `--persist-wal`: SQLITE_FCNTL_PERSIST_WAL, so the -wal and -shm files are
//!   kept (not deleted and recreated by every process).
//! * `--journal-size-limit N`: `PRAGMA journal_size_limit=N` (with
//!   `--persist-wal`, 0 truncates the WAL after the close checkpoint).
//! * `--checkpoint-over N`: with `--no-checkpoint-on-close`, run
//!   `PRAGMA wal_checkpoint(TRUNCATE)` before closing when the WAL holds more
//!   than N frames, so it stays small.
//! * `--sync MODE`: `PRAGMA synchronous=MODE` (default FULL; for comparison
//!   only, NORMAL/OFF are not durable).
//! * `--stop-after STAGE`: exit early to time the parts of a process: `start`
//!   (before anything), `open` (after opening, no close), `pragmas` (then a
//!   normal close), `commit` (exit without closing).

use std::path::Path;

#[derive(Default)]
struct Opts {
    no_ckpt: bool,
    persist_wal: bool,
    journal_size_limit: Option<i64>,
    checkpoint_over: Option<i64>,
    sync: Option<String>,
    stop_after: Option<String>,
}

const USAGE: &str = "usage: minimal-write [--no-checkpoint-on-close] [--persist-wal] \
[--journal-size-limit N] [--checkpoint-over N] [--sync MODE] [--stop-after STAGE] DB_PATH [QUEUE [BODY]]";

fn main() {
    let mut argv = std::env::args().skip(1).peekable();
    let mut o = Opts::default();
    let mut pos = Vec::new();
    while let Some(a) = argv.next() {
        let num = |argv: &mut dyn Iterator<Item = String>| -> i64 {
            argv.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match a.as_str() {
            "--no-checkpoint-on-close" => o.no_ckpt = true,
            "--persist-wal" => o.persist_wal = true,
            "--journal-size-limit" => o.journal_size_limit = Some(num(&mut argv)),
            "--checkpoint-over" => o.checkpoint_over = Some(num(&mut argv)),
            "--sync" => o.sync = Some(argv.next().unwrap_or_else(|| usage())),
            "--stop-after" => o.stop_after = Some(argv.next().unwrap_or_else(|| usage())),
            s if s.starts_with('-') => usage(),
            _ => pos.push(a),
        }
    }
    if o.stop_after.as_deref() == Some("start") {
        return;
    }
    if pos.is_empty() || pos.len() > 3 {
        usage();
    }
    let queue = pos.get(1).map(String::as_str).unwrap_or("q");
    let body = pos.get(2).map(String::as_str).unwrap_or("hello");
    if let Err(e) = run(Path::new(&pos[0]), queue, body, &o) {
        eprintln!("minimal-write: {e}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(1)
}

fn run(path: &Path, queue: &str, body: &str, o: &Opts) -> rusqlite::Result<()> {
    let stop = |stage: &str| o.stop_after.as_deref() == Some(stage);
    let mut conn = litebroker_bench::open_existing(path)?;
    if stop("open") {
        std::process::exit(0); // skips the close too
    }
    if o.no_ckpt {
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
    }
    if o.persist_wal {
        litebroker_bench::persist_wal(&conn)?;
    }
    litebroker_bench::apply_pragmas(&conn)?;
    if let Some(n) = o.journal_size_limit {
        conn.query_row(&format!("PRAGMA journal_size_limit={n}"), [], |_| Ok(()))?;
    }
    if let Some(mode) = &o.sync {
        conn.execute_batch(&format!("PRAGMA synchronous={mode}"))?;
    }
    if stop("pragmas") {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Nanosecond time is unique across sequential processes; the reference's
    // meta.last_ts bookkeeping is deliberately not part of this floor.
    tx.execute(
        "INSERT INTO messages (queue, body, ts, claimed) VALUES (?1, ?2, ?3, 0)",
        rusqlite::params![queue, body, litebroker_bench::now_ns()],
    )?;
    tx.commit()?;
    if stop("commit") {
        std::process::exit(0); // skips the close and its checkpoint
    }
    if let Some(max) = o.checkpoint_over {
        // Frames in the WAL from its size (the TRUNCATE checkpoint below
        // empties it, so the size is the frame count since then). A PASSIVE
        // checkpoint would not do: it checkpoints, and a later process's WAL
        // recovery forgets what was already copied.
        let wal = format!("{}-wal", path.display());
        let size = std::fs::metadata(wal).map(|m| m.len() as i64).unwrap_or(0);
        let frames = (size - 32).max(0) / (4096 + 24);
        if frames > max {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
    }
    Ok(())
}
