//! Shared helpers for the benchmark binaries: the reference schema, the
//! pragmas every broker connection uses, a tiny argument parser and
//! JSON-line output. See `bench/run.sh` for how the numbers are used.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

/// The SimpleBroker 2.8.4 schema (shared/spec/simplebroker-reference.md §11).
pub const REFERENCE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    ts INTEGER NOT NULL UNIQUE,
    claimed INTEGER DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_messages_queue_ts_id ON messages(queue, ts, id);
CREATE INDEX IF NOT EXISTS idx_messages_unclaimed ON messages(queue, claimed, id) WHERE claimed = 0;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS queue_aliases (alias TEXT PRIMARY KEY, target TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_queue_aliases_target ON queue_aliases(target);
CREATE UNIQUE INDEX IF NOT EXISTS idx_messages_ts_unique ON messages(ts);
INSERT OR IGNORE INTO meta (key, value) VALUES ('magic', 'simplebroker-v1');
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 4);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_ts', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('alias_version', 0);
";

/// Per-connection pragmas, as the broker applies them: WAL, synchronous=FULL,
/// busy_timeout 5000 ms (plus the reference's cache size and autocheckpoint).
pub fn apply_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_millis(5000))?;
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA cache_size=-10240; PRAGMA wal_autocheckpoint=1000;",
    )?;
    Ok(())
}

/// Opens an existing database read-write (never creates it).
pub fn open_existing(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Creates a fresh database with the reference's schema and file settings
/// (auto_vacuum=INCREMENTAL set before WAL), then applies the pragmas.
pub fn create_reference_db(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA auto_vacuum=2;")?;
    apply_pragmas(&conn)?;
    conn.execute_batch(REFERENCE_SCHEMA)?;
    Ok(conn)
}

/// Unix time in nanoseconds.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_nanos() as i64
}

/// A message id in the reference's encoding: time with the low 12 bits cleared.
pub fn id_base() -> i64 {
    now_ns() & !0xFFF
}

/// `--name value` style options; anything else is an error.
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    pub fn parse(usage: &str) -> Args {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        if argv.iter().any(|a| a == "-h" || a == "--help") || argv.len() % 2 != 0 {
            eprintln!("usage: {usage}");
            std::process::exit(if argv.len() % 2 != 0 { 1 } else { 0 });
        }
        let mut pairs = Vec::new();
        for chunk in argv.chunks(2) {
            let name = chunk[0].strip_prefix("--").unwrap_or_else(|| {
                eprintln!("unexpected argument {:?}\nusage: {usage}", chunk[0]);
                std::process::exit(1)
            });
            pairs.push((name.to_string(), chunk[1].clone()));
        }
        Args { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn num(&self, name: &str, default: usize) -> usize {
        match self.get(name) {
            None => default,
            Some(v) => v.replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("--{name}: not a number: {v:?}");
                std::process::exit(1)
            }),
        }
    }
}

/// Prints one JSON result line: `{"bench": name, "count": n, "seconds": s,
/// "per_sec": n/s, ...extra}`.
pub fn emit(name: &str, count: usize, elapsed: Duration, extra: serde_json::Value) {
    let secs = elapsed.as_secs_f64();
    let mut obj = serde_json::json!({
        "bench": name,
        "count": count,
        "seconds": secs,
        "per_sec": if secs > 0.0 { count as f64 / secs } else { 0.0 },
    });
    if let (Some(o), serde_json::Value::Object(e)) = (obj.as_object_mut(), extra) {
        o.extend(e);
    }
    println!("{obj}");
}

/// Sets SQLITE_FCNTL_PERSIST_WAL on the main database: the last connection to
/// close keeps the -wal and -shm files instead of deleting them.
pub fn persist_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut on: std::os::raw::c_int = 1;
    // SAFETY: the handle is valid for the life of `conn`; the op takes an int*.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::os::raw::c_int).cast(),
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            None,
        ))
    }
}
