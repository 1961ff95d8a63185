//! Opening a database file safely: create it private, refuse foreign or corrupt
//! files without touching them, apply the connection settings, and bring the
//! schema up to what both the reference and litebroker need.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::retry::with_retry;
use super::schema;
use crate::config::Settings;
use crate::error::{Error, Result};

/// Opens (creating if needed) the broker database at `path`.
///
/// The file is never opened with a plain descriptor once it exists: closing
/// any descriptor of a file drops every POSIX lock this process holds on it,
/// including the locks of live SQLite connections in other threads. Another
/// process could then think it is the last user, checkpoint, and delete the
/// WAL under those connections, and their later commits would vanish. So a
/// junk or corrupt file is recognised by SQLite itself, on the first read
/// (which writes nothing), and reported as [`Error::NotSqlite`].
pub fn open_database(path: &Path, settings: &Settings) -> Result<Connection> {
    create_private_file(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
    apply_settings(&conn, settings).map_err(|e| classify_error(path, e))?;
    // Identify before changing anything: a foreign file must be left byte-for-byte as it was
    // (no journal-mode switch, no table created).
    let probe = with_retry(|| probe(&conn)).map_err(|e| classify_error(path, e))?;
    probe.admit(path)?;
    with_retry(|| ensure_wal(&conn)).map_err(|e| classify_error(path, e))?;
    if !probe.complete() {
        with_retry(|| create_schema(&conn)).map_err(|e| classify_error(path, e))?;
        verify_identity(&conn, path)?;
    }
    Ok(conn)
}

/// What one look at a file tells: whether every object we need exists, what
/// else is there, and its identity. One statement (two when `meta` exists),
/// because every short-lived process parses each statement of the open path anew.
struct Probe {
    /// How many of [`schema::REQUIRED_OBJECTS`] exist.
    found: usize,
    /// How many schema objects exist at all (0: a new or empty file).
    objects: usize,
    /// Tables that neither SimpleBroker nor litebroker creates, comma-separated.
    other_tables: Option<String>,
    /// Whether `messages` has SimpleBroker's `queue`, `body` and `ts` columns.
    messages_shaped: bool,
    identity: Identity,
}

impl Probe {
    /// Whether the schema is complete and marked as ours: nothing to create.
    fn complete(&self) -> bool {
        self.found == schema::REQUIRED_OBJECTS.len()
            && self.identity.magic.as_deref() == Some(schema::MAGIC)
    }

    /// Refuses, before anything is changed, a file that is neither empty nor a
    /// SimpleBroker/litebroker database. One without the magic string is taken
    /// for an early SimpleBroker database (or one whose creation was cut short)
    /// only if it has a SimpleBroker-shaped `messages` table and no other
    /// application's tables.
    fn admit(&self, path: &Path) -> Result<()> {
        if self.objects == 0 {
            return Ok(()); // empty: ours to initialise
        }
        if self.identity.magic.is_some() {
            return check_identity(&self.identity, path);
        }
        let foreign = |reason: String| {
            Err(Error::ForeignDatabase {
                path: path.to_path_buf(),
                reason,
            })
        };
        if let Some(tables) = &self.other_tables {
            return foreign(format!("it has other tables: {tables}"));
        }
        if !self.messages_shaped {
            return foreign("no SimpleBroker messages table".into());
        }
        check_identity_version(&self.identity, path)
    }
}

/// `meta.magic` and `meta.schema_version`, where present.
struct Identity {
    magic: Option<String>,
    version: Option<i64>,
}

impl Identity {
    /// Names another program or a newer schema.
    fn is_foreign(&self) -> bool {
        self.magic.as_deref().is_some_and(|m| m != schema::MAGIC)
            || self.version.is_some_and(|v| v > schema::SCHEMA_VERSION)
    }
}

/// The usual case, a complete database of ours, in one statement: how many
/// required objects exist, and the identity. `None` when that does not settle
/// it (no `meta` table, which fails the statement's compilation, or something
/// missing or foreign), and [`full_probe`] must look closer.
fn quick_probe(conn: &Connection) -> rusqlite::Result<Option<Probe>> {
    let placeholders = vec!["?"; schema::REQUIRED_OBJECTS.len()].join(",");
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM sqlite_master WHERE name IN ({placeholders})), \
         (SELECT CAST(value AS TEXT) FROM meta WHERE key = 'magic'), \
         (SELECT value FROM meta WHERE key = 'schema_version')"
    );
    let mut stmt = match conn.prepare(&sql) {
        Ok(stmt) => stmt,
        Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::Unknown => {
            return Ok(None); // no such table: meta
        }
        Err(e) => return Err(e),
    };
    let (found, magic, version): (usize, Option<String>, Option<i64>) = stmt.query_row(
        rusqlite::params_from_iter(schema::REQUIRED_OBJECTS.iter()),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let probe = Probe {
        found,
        objects: found,
        other_tables: None,
        messages_shaped: true,
        identity: Identity { magic, version },
    };
    Ok((probe.complete() && !probe.identity.is_foreign()).then_some(probe))
}

fn probe(conn: &Connection) -> rusqlite::Result<Probe> {
    match quick_probe(conn)? {
        Some(probe) => Ok(probe),
        None => full_probe(conn),
    }
}

fn full_probe(conn: &Connection) -> rusqlite::Result<Probe> {
    let placeholders = vec!["?"; schema::REQUIRED_OBJECTS.len()].join(",");
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM sqlite_master WHERE name IN ({placeholders})), \
         EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'), \
         (SELECT COUNT(*) FROM sqlite_master), \
         (SELECT group_concat(name, ', ') FROM sqlite_master WHERE type = 'table' \
            AND name NOT IN ('messages', 'meta', 'queue_aliases', 'sqlite_sequence') \
            AND name NOT LIKE 'lb\\_%' ESCAPE '\\'), \
         (SELECT COUNT(*) = 3 FROM pragma_table_info('messages') \
            WHERE name IN ('queue', 'body', 'ts'))"
    );
    let (found, has_meta, objects, other_tables, messages_shaped): (
        usize,
        bool,
        usize,
        Option<String>,
        bool,
    ) = conn.query_row(
        &sql,
        rusqlite::params_from_iter(schema::REQUIRED_OBJECTS.iter()),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let identity = if has_meta {
        read_identity(conn)?
    } else {
        Identity {
            magic: None,
            version: None,
        }
    };
    Ok(Probe {
        found,
        objects,
        other_tables,
        messages_shaped,
        identity,
    })
}

/// Creates `path` with mode 0600 if it does not exist (a descriptor closed
/// on a file nobody else can have open yet: see [`open_database`]).
fn create_private_file(path: &Path) -> Result<()> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(path)
                .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?;
            if meta.is_dir() {
                return Err(Error::NotSqlite(path.to_path_buf()));
            }
            Ok(())
        }
        Err(e) => Err(Error::io(
            format!("cannot create database {}", path.display()),
            e,
        )),
    }
}

fn apply_settings(conn: &Connection, settings: &Settings) -> Result<()> {
    super::busy::install(
        conn,
        std::time::Duration::from_millis(settings.sqlite.busy_timeout_ms),
    )?;
    let cache_kib = settings.sqlite.cache_mb.saturating_mul(1024);
    conn.execute_batch(&format!(
        "PRAGMA cache_size=-{cache_kib}; PRAGMA wal_autocheckpoint={}; PRAGMA synchronous={};",
        settings.sqlite.wal_autocheckpoint,
        synchronous(settings.sqlite.sync_mode)
    ))?;
    Ok(())
}

/// Switches the file to WAL; a brand-new file first gets incremental auto-vacuum,
/// which SQLite only accepts before the first table exists.
fn ensure_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    let page_count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    if page_count == 0 {
        conn.execute_batch("PRAGMA auto_vacuum=2")?;
    }
    conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))?;
    Ok(())
}

/// Creates whatever is missing, in one immediate transaction so that several
/// processes opening a new file at once do not trip over each other. Refuses
/// (by leaving the file alone) a database whose magic or version is foreign.
fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        if foreign_meta(conn)? {
            return Ok(()); // verify_identity reports it; change nothing
        }
        // Before the DDL: its partial index needs the column (a schema-v1 database lacks it).
        add_claimed_column_if_missing(conn)?;
        conn.execute_batch(schema::REFERENCE_DDL)?;
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS idx_messages_unclaimed \
             ON messages(queue, claimed, id) WHERE claimed = 0",
        )?;
        conn.execute_batch(schema::TS_UNIQUE_INDEX)?;
        conn.execute_batch(schema::LITEBROKER_DDL)?;
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version' AND value < ?1",
            [schema::SCHEMA_VERSION],
        )?;
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// True when a `meta` table exists and names another program or a newer schema.
fn foreign_meta(conn: &Connection) -> rusqlite::Result<bool> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(false);
    }
    Ok(read_identity(conn)?.is_foreign())
}

fn add_claimed_column_if_missing(conn: &Connection) -> rusqlite::Result<()> {
    let (exists, has): (bool, bool) = conn.query_row(
        "SELECT COUNT(*) > 0, COALESCE(SUM(name = 'claimed'), 0) > 0 \
         FROM pragma_table_info('messages')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if exists && !has {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN claimed INTEGER DEFAULT 0")?;
    }
    Ok(())
}

fn read_identity(conn: &Connection) -> rusqlite::Result<Identity> {
    conn.query_row(
        "SELECT (SELECT CAST(value AS TEXT) FROM meta WHERE key = 'magic'), \
         (SELECT value FROM meta WHERE key = 'schema_version')",
        [],
        |r| {
            Ok(Identity {
                magic: r.get(0)?,
                version: r.get(1)?,
            })
        },
    )
}

fn verify_identity(conn: &Connection, path: &Path) -> Result<()> {
    let identity = read_identity(conn).map_err(|e| classify(path, e))?;
    check_identity(&identity, path)
}

/// Refuses a file whose magic is missing or foreign, or whose schema is newer than ours.
fn check_identity(identity: &Identity, path: &Path) -> Result<()> {
    let foreign = |reason: String| Error::ForeignDatabase {
        path: path.to_path_buf(),
        reason,
    };
    match identity.magic.as_deref() {
        Some(schema::MAGIC) => {}
        Some(other) => return Err(foreign(format!("magic is '{other}'"))),
        None => return Err(foreign("no magic string".into())),
    }
    check_identity_version(identity, path)
}

/// Refuses a schema newer than ours.
fn check_identity_version(identity: &Identity, path: &Path) -> Result<()> {
    let foreign = |reason: String| Error::ForeignDatabase {
        path: path.to_path_buf(),
        reason,
    };
    match identity.version {
        Some(v) if v > schema::SCHEMA_VERSION => Err(foreign(format!(
            "schema version {v} is newer than the supported {}",
            schema::SCHEMA_VERSION
        ))),
        _ => Ok(()),
    }
}

/// Turns "file is not a database" style failures into [`Error::NotSqlite`].
fn classify(path: &Path, e: rusqlite::Error) -> Error {
    classify_error(path, e.into())
}

fn classify_error(path: &Path, e: Error) -> Error {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match e.storage_source::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, NotADatabase | DatabaseCorrupt) =>
        {
            Error::NotSqlite(path.to_path_buf())
        }
        _ => e,
    }
}

/// Whether `path` is a SimpleBroker database (SQLite header and our magic),
/// checked read-only so that a foreign file is never modified.
pub fn is_broker_database(path: &Path) -> bool {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = Connection::open_with_flags(path, flags) else {
        return false;
    };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    matches!(read_identity(&conn), Ok(Identity { magic: Some(m), .. }) if m == schema::MAGIC)
}

/// The value to put after `PRAGMA synchronous=` for `mode`.
pub(super) fn synchronous(mode: crate::config::SyncMode) -> &'static str {
    use crate::config::SyncMode;
    match mode {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
        SyncMode::Off => "OFF",
    }
}
