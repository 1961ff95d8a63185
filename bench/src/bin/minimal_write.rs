//! The floor for one CLI `write`: open an existing broker database, apply the
//! broker's pragmas, insert one row in one BEGIN IMMEDIATE transaction, exit.
//!
//! usage: minimal-write [--no-checkpoint-on-close] DB_PATH [QUEUE [BODY]]
//!
//! The database must exist (the harness creates it with the reference's
//! schema). Nothing is printed on success; errors exit 1.
//!
//! By default SQLite's usual close applies: the last connection to close
//! checkpoints the WAL into the database and deletes -wal/-shm (extra fsyncs
//! and file creations for every process). `--no-checkpoint-on-close` sets
//! SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE to show what that close costs.

use std::path::Path;

fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    let no_ckpt = argv
        .first()
        .is_some_and(|a| a == "--no-checkpoint-on-close");
    if no_ckpt {
        argv.remove(0);
    }
    if argv.is_empty() || argv.len() > 3 || argv[0].starts_with('-') {
        eprintln!("usage: minimal-write [--no-checkpoint-on-close] DB_PATH [QUEUE [BODY]]");
        std::process::exit(1);
    }
    let queue = argv.get(1).map(String::as_str).unwrap_or("q");
    let body = argv.get(2).map(String::as_str).unwrap_or("hello");
    if let Err(e) = run(Path::new(&argv[0]), queue, body, no_ckpt) {
        eprintln!("minimal-write: {e}");
        std::process::exit(1);
    }
}

fn run(path: &Path, queue: &str, body: &str, no_ckpt: bool) -> rusqlite::Result<()> {
    let mut conn = litebroker_bench::open_existing(path)?;
    if no_ckpt {
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
    }
    litebroker_bench::apply_pragmas(&conn)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Nanosecond time is unique across sequential processes; the reference's
    // meta.last_ts bookkeeping is deliberately not part of this floor.
    tx.execute(
        "INSERT INTO messages (queue, body, ts, claimed) VALUES (?1, ?2, ?3, 0)",
        rusqlite::params![queue, body, litebroker_bench::now_ns()],
    )?;
    tx.commit()
}
