//! Settings from the `BROKER_*` environment variables, parsed once at start-up.
//!
//! [`Settings`] groups them by who uses them: [`SqliteOptions`] for the storage
//! backend, [`PollOptions`] for watchers, [`LocationOptions`] for finding the
//! database (resolved in [`crate::location`]), and the rest at top level.
//! Numbers are read with Python's `int()`/`float()` syntax ([`crate::pynum`]),
//! as SimpleBroker 2.8.4 reads them.
//!
//! The module never prints: warnings are collected in [`Settings::warnings`]
//! and failures are returned as [`ConfigError`].
//!
//! The location items that used to live here are re-exported, so
//! `litebroker::config::resolve_db_path` and friends keep working.

use std::path::{Path, PathBuf};

use crate::location::{validate_default_db_name, wrap_error};
use crate::pynum;

pub use crate::location::{
    ensure_parent_dir, is_broker_database, resolve_db_path, validate_path_text, LocationOptions,
    PathRequest, DEFAULT_DB_NAME, MAX_PROJECT_TRAVERSAL_DEPTH, SIMPLEBROKER_MAGIC,
};

/// The message size limit the 2.8.4 CLI enforces (10 MiB), whatever
/// `BROKER_MAX_MESSAGE_SIZE` says.
pub const MAX_MESSAGE_SIZE: u64 = 10 * 1024 * 1024;

/// Everything that can go wrong while reading settings or locating the database.
///
/// Each variant's message follows the reference's wording where it has one, so
/// the binary can print `simplebroker: error: {err}` and exit 1.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A numeric `BROKER_*` variable did not parse (the reference dies with a traceback).
    #[error("invalid value for {var}: '{value}' is not a valid {kind}")]
    InvalidNumber {
        /// The variable name.
        var: &'static str,
        /// The raw value found in the environment.
        value: String,
        /// "integer" or "number".
        kind: &'static str,
    },

    /// A numeric `BROKER_*` variable parsed but is outside what litebroker accepts.
    #[error("invalid value for {var}: '{value}' ({reason})")]
    OutOfRange {
        /// The variable name.
        var: &'static str,
        /// The raw value found in the environment.
        value: String,
        /// Which range was expected.
        reason: &'static str,
    },

    /// A `-d`, `-f`, `BROKER_DEFAULT_DB_NAME` or `BROKER_DEFAULT_DB_LOCATION`
    /// value was refused; the text is the full reference message.
    #[error("{0}")]
    InvalidPath(String),

    /// `-f` is absolute and an explicit `-d` names another directory.
    #[error("Inconsistent paths: absolute database path '{}' conflicts with directory '{}'", file.display(), dir.display())]
    InconsistentPaths {
        /// The absolute `-f` value.
        file: PathBuf,
        /// The `-d` value.
        dir: PathBuf,
    },

    /// Project scope is on and the upward search found no broker database.
    #[error("BROKER_PROJECT_SCOPE is enabled but no project database '{name}' was found in '{}' or any parent directory. Run 'broker init' in the project root directory to create one.", dir.display())]
    ProjectDbNotFound {
        /// The file name that was searched for.
        name: String,
        /// The directory the search started from.
        dir: PathBuf,
    },

    /// The project search could not start because its directory is gone.
    #[error("Starting directory does not exist: {}", .0.display())]
    StartDirMissing(PathBuf),

    /// The working directory (`-d`, `BROKER_DEFAULT_DB_LOCATION`) does not exist.
    #[error("Directory not found: {}", .0.display())]
    DirNotFound(PathBuf),

    /// The working directory is a regular file.
    #[error("Path is a file, not a directory: {}", .0.display())]
    PathIsFile(PathBuf),

    /// A path that must be a directory (the working directory, or the one
    /// holding the database file) is something else.
    #[error("Not a directory: {}", .0.display())]
    NotADirectory(PathBuf),

    /// A relative `-f` escapes its directory (through a symbolic link).
    #[error("Database file must be within the working directory")]
    OutsideWorkingDir,

    /// Neither the database's directory nor its parent exists.
    #[error("Parent directory not found: {}", .0.display())]
    ParentNotFound(PathBuf),

    /// The database's directory could not be created.
    #[error("Cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// The directory that could not be created.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
}

/// SQLite `synchronous` level chosen by `BROKER_SYNC_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `synchronous=FULL`: the reference default, safe against power loss.
    Full,
    /// `synchronous=NORMAL`: faster, safe against application crashes.
    Normal,
    /// `synchronous=OFF`: fastest, unsafe.
    Off,
}

impl SyncMode {
    /// Parses like the reference: upper-cased, no trimming, anything else is FULL.
    fn parse(raw: &str) -> SyncMode {
        match raw.to_uppercase().as_str() {
            "NORMAL" => SyncMode::Normal,
            "OFF" => SyncMode::Off,
            _ => SyncMode::Full,
        }
    }
}

/// Storage-backend options (SQLite), from `BROKER_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct SqliteOptions {
    /// `BROKER_BUSY_TIMEOUT`, milliseconds (5000). Negative values become 0,
    /// which is what SQLite does with them.
    pub busy_timeout_ms: u64,
    /// `BROKER_CACHE_MB` (10), applied as `PRAGMA cache_size=-(MB*1024)`.
    /// Negative values are refused (the reference fails opening the database).
    pub cache_mb: u64,
    /// `BROKER_SYNC_MODE` (FULL): case-insensitive FULL/NORMAL/OFF, anything else FULL.
    pub sync_mode: SyncMode,
    /// `BROKER_WAL_AUTOCHECKPOINT`, pages (1000). Negative values fall back to
    /// 1000 with a warning, as the reference does.
    pub wal_autocheckpoint: u32,
    /// `BROKER_VACUUM_BATCH_SIZE` (1000). Negative means "no limit" in the
    /// reference's `LIMIT ?`, stored as `i64::MAX`; 0 makes the reference's
    /// vacuum loop forever, so callers should treat 0 as 1.
    pub vacuum_batch_size: u64,
    /// `BROKER_VACUUM_LOCK_TIMEOUT`, seconds before a vacuum lock is stale (300).
    /// Negative values become 0.
    pub vacuum_lock_timeout_s: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout_ms: 5000,
            cache_mb: 10,
            sync_mode: SyncMode::Full,
            wal_autocheckpoint: 1000,
            vacuum_batch_size: 1000,
            vacuum_lock_timeout_s: 300,
        }
    }
}

/// Watcher polling options, from `BROKER_*` variables.
///
/// The floats hold whatever Python's `float()` made of the text, NaN and
/// infinities included (the reference accepts them too and never fails on
/// them): the watcher clamps them before building a `Duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct PollOptions {
    /// `BROKER_INITIAL_CHECKS`, zero-delay polls before backing off (100).
    /// Negative values become 0.
    pub initial_checks: u64,
    /// `BROKER_MAX_INTERVAL`, seconds (0.1). NaN, negative and infinite values
    /// use the default; finite ones are capped at an hour.
    pub max_interval_s: f64,
    /// `BROKER_BURST_SLEEP`, seconds (0.00001). Clamped like `max_interval_s`.
    pub burst_sleep_s: f64,
    /// `BROKER_JITTER_FACTOR` (0.15). Clamped to 0..=1; NaN means no jitter.
    pub jitter_factor: f64,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            initial_checks: 100,
            max_interval_s: 0.1,
            burst_sleep_s: 0.00001,
            jitter_factor: 0.15,
        }
    }
}

/// Every `BROKER_*` setting, parsed once at start-up, with the reference's defaults.
///
/// Parsing follows the reference's `load_config()`: integers and floats use
/// Python's `int()`/`float()` ([`crate::pynum`]), a malformed number is an
/// error, the boolean flags keep their individual quirks (see each field).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Storage-backend options.
    pub sqlite: SqliteOptions,
    /// Watcher polling options.
    pub poll: PollOptions,
    /// Where the database is looked for (see [`crate::location`]).
    pub location: LocationOptions,
    /// `BROKER_READ_COMMIT_INTERVAL`: `None` when unset (documented default 1,
    /// unused by the 2.8.4 CLI); must be >= 1 when set.
    pub read_commit_interval: Option<u64>,
    /// `BROKER_GENERATOR_BATCH_SIZE` (100); must not be negative.
    pub generator_batch_size: u64,
    /// `BROKER_AUTO_VACUUM` (1): an integer, and only the value 1 enables it.
    pub auto_vacuum: bool,
    /// `BROKER_AUTO_VACUUM_INTERVAL`, writes between vacuum checks (100).
    /// Negative values become 0 (check after every write, as in the reference).
    pub auto_vacuum_interval: u64,
    /// `BROKER_VACUUM_THRESHOLD`, percent of claimed messages (10). The
    /// reference compares against `pct / 100`. Any float is accepted.
    pub vacuum_threshold_pct: f64,
    /// `BROKER_SKIP_IDLE_CHECK` (false): true only for the exact text `1`.
    pub skip_idle_check: bool,
    /// `BROKER_DEBUG`: true for any non-empty value (even `0`), as in the reference.
    pub debug: bool,
    /// `BROKER_LOGGING_ENABLED` (false): true only for the exact text `1`.
    pub logging_enabled: bool,
    /// `BROKER_MAX_MESSAGE_SIZE` (10485760). Parsed (a malformed value is an
    /// error, as in the reference) but the 2.8.4 CLI always enforces
    /// [`MAX_MESSAGE_SIZE`]; must not be negative.
    pub max_message_size: u64,
    /// Warnings for the binary to print on stderr (one line each).
    pub warnings: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sqlite: SqliteOptions::default(),
            poll: PollOptions::default(),
            location: LocationOptions::default(),
            read_commit_interval: None,
            generator_batch_size: 100,
            auto_vacuum: true,
            auto_vacuum_interval: 100,
            vacuum_threshold_pct: 10.0,
            skip_idle_check: false,
            debug: false,
            logging_enabled: false,
            max_message_size: MAX_MESSAGE_SIZE,
            warnings: Vec::new(),
        }
    }
}

/// The environment lookup, type-erased so the parsing helpers are not generic.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Settings {
    /// Reads every `BROKER_*` variable from the process environment.
    /// Values that are not valid UTF-8 are read lossily.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Reads every `BROKER_*` variable through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let env: Lookup = &lookup;
        let mut s = Settings::default();
        s.read_sqlite_vars(env)?;
        s.read_vacuum_vars(env)?;
        s.read_watcher_vars(env)?;
        s.read_flag_vars(env);
        s.read_location_vars(env)?;
        Ok(s)
    }

    /// SQLite tuning and message-processing variables.
    fn read_sqlite_vars(&mut self, env: Lookup) -> Result<(), ConfigError> {
        self.sqlite.busy_timeout_ms = clamped(env, "BROKER_BUSY_TIMEOUT", 5000)?;
        self.sqlite.cache_mb = non_negative(env, "BROKER_CACHE_MB", 10)?;
        if let Some(raw) = env("BROKER_SYNC_MODE") {
            self.sqlite.sync_mode = SyncMode::parse(&raw);
        }
        self.sqlite.wal_autocheckpoint = self.wal_checkpoint(env)?;
        self.read_commit_interval = read_commit_interval(env)?;
        self.generator_batch_size = non_negative(env, "BROKER_GENERATOR_BATCH_SIZE", 100)?;
        self.max_message_size = non_negative(env, "BROKER_MAX_MESSAGE_SIZE", MAX_MESSAGE_SIZE)?;
        Ok(())
    }

    /// `BROKER_WAL_AUTOCHECKPOINT`, with the reference's negative-value fallback.
    fn wal_checkpoint(&mut self, env: Lookup) -> Result<u32, ConfigError> {
        let Some((_, value)) = int_var(env, "BROKER_WAL_AUTOCHECKPOINT")? else {
            return Ok(1000);
        };
        if value < 0 {
            self.warnings.push(format!(
                "Invalid BROKER_WAL_AUTOCHECKPOINT '{value}', must be >= 0. Using default of 1000."
            ));
            return Ok(1000);
        }
        // SQLite reads the pragma as a C int: larger values mean "never", as
        // they do for the reference, which accepts any integer here.
        Ok(u32::try_from(value.min(i128::from(i32::MAX))).unwrap_or(u32::MAX))
    }

    /// Automatic vacuum variables.
    fn read_vacuum_vars(&mut self, env: Lookup) -> Result<(), ConfigError> {
        if let Some((_, v)) = int_var(env, "BROKER_AUTO_VACUUM")? {
            self.auto_vacuum = v == 1;
        }
        self.auto_vacuum_interval = clamped(env, "BROKER_AUTO_VACUUM_INTERVAL", 100)?;
        self.vacuum_threshold_pct = float_var(env, "BROKER_VACUUM_THRESHOLD", 10.0)?;
        self.sqlite.vacuum_batch_size = vacuum_batch_size(env)?;
        self.sqlite.vacuum_lock_timeout_s = clamped(env, "BROKER_VACUUM_LOCK_TIMEOUT", 300)?;
        Ok(())
    }

    /// Watcher polling variables.
    fn read_watcher_vars(&mut self, env: Lookup) -> Result<(), ConfigError> {
        self.poll.jitter_factor = float_var(env, "BROKER_JITTER_FACTOR", 0.15)?;
        self.poll.initial_checks = clamped(env, "BROKER_INITIAL_CHECKS", 100)?;
        self.poll.max_interval_s = float_var(env, "BROKER_MAX_INTERVAL", 0.1)?;
        self.poll.burst_sleep_s = float_var(env, "BROKER_BURST_SLEEP", 0.00001)?;
        Ok(())
    }

    /// Boolean flags, each with the reference's own truth rule.
    fn read_flag_vars(&mut self, env: Lookup) {
        self.skip_idle_check = env("BROKER_SKIP_IDLE_CHECK").as_deref() == Some("1");
        self.logging_enabled = env("BROKER_LOGGING_ENABLED").as_deref() == Some("1");
        self.debug = env("BROKER_DEBUG").is_some_and(|v| !v.is_empty());
        self.location.project_scope =
            env("BROKER_PROJECT_SCOPE").is_some_and(|v| parse_scope_bool(&v));
    }

    /// `BROKER_DEFAULT_DB_LOCATION` and `BROKER_DEFAULT_DB_NAME`.
    fn read_location_vars(&mut self, env: Lookup) -> Result<(), ConfigError> {
        if let Some(loc) = env("BROKER_DEFAULT_DB_LOCATION").filter(|v| !v.is_empty()) {
            self.location.default_db_location = self.check_location(&loc)?;
        }
        if let Some(name) = env("BROKER_DEFAULT_DB_NAME") {
            if !name.is_empty() {
                validate_default_db_name(&name)?;
            }
            self.location.default_db_name = name;
        }
        Ok(())
    }

    /// Validates a non-empty location; a relative one is dropped with a warning.
    fn check_location(&mut self, loc: &str) -> Result<Option<PathBuf>, ConfigError> {
        validate_path_text(loc, "BROKER_DEFAULT_DB_LOCATION")
            .map_err(|e| wrap_error("BROKER_DEFAULT_DB_LOCATION", e))?;
        if Path::new(loc).is_absolute() {
            return Ok(Some(PathBuf::from(loc)));
        }
        self.warnings.push(format!(
            "BROKER_DEFAULT_DB_LOCATION must be an absolute path. Ignoring relative path: {loc}"
        ));
        Ok(None)
    }
}

/// `BROKER_PROJECT_SCOPE` truth rule: `1/true/yes/on`, case-insensitive, trimmed.
fn parse_scope_bool(raw: &str) -> bool {
    matches!(
        raw.trim().to_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// `BROKER_VACUUM_BATCH_SIZE`: a negative value means "no limit" (`i64::MAX`),
/// and so does anything above it.
fn vacuum_batch_size(env: Lookup) -> Result<u64, ConfigError> {
    const VAR: &str = "BROKER_VACUUM_BATCH_SIZE";
    match int_var(env, VAR)? {
        None => Ok(1000),
        // Negative: no limit. Huge: SQLite's LIMIT is an i64.
        Some((_, v)) if v < 0 => Ok(i64::MAX as u64),
        Some((_, v)) => Ok(saturate(v).min(i64::MAX as u64)),
    }
}

/// `BROKER_READ_COMMIT_INTERVAL`: `None` when unset, otherwise an integer >= 1.
/// The reference accepts any integer here; values below 1 mean 1 (acknowledge
/// every message), so scripts that set 0 keep working.
fn read_commit_interval(env: Lookup) -> Result<Option<u64>, ConfigError> {
    const VAR: &str = "BROKER_READ_COMMIT_INTERVAL";
    match int_var(env, VAR)? {
        None => Ok(None),
        Some((_, v)) if v < 1 => Ok(Some(1)),
        Some((_, v)) => Ok(Some(saturate(v))),
    }
}

/// Reads an integer variable: `None` when unset, the raw text and value otherwise.
fn int_var(env: Lookup, var: &'static str) -> Result<Option<(String, i128)>, ConfigError> {
    let Some(raw) = env(var) else { return Ok(None) };
    match pynum::parse_int(&raw) {
        Some(v) => Ok(Some((raw, v.to_i128()))),
        None => Err(ConfigError::InvalidNumber {
            var,
            value: raw,
            kind: "integer",
        }),
    }
}

/// Reads an integer variable that must not be negative.
fn non_negative(env: Lookup, var: &'static str, default: u64) -> Result<u64, ConfigError> {
    match int_var(env, var)? {
        None => Ok(default),
        Some((raw, v)) if v < 0 => Err(out_of_range(var, raw, "must be >= 0")),
        Some((_, v)) => Ok(saturate(v)),
    }
}

/// Reads an integer variable whose negative values behave like 0 in the reference.
fn clamped(env: Lookup, var: &'static str, default: u64) -> Result<u64, ConfigError> {
    match int_var(env, var)? {
        None => Ok(default),
        Some((_, v)) => Ok(saturate(v.max(0))),
    }
}

/// Reads a float variable with Python `float()` syntax.
fn float_var(env: Lookup, var: &'static str, default: f64) -> Result<f64, ConfigError> {
    let Some(raw) = env(var) else {
        return Ok(default);
    };
    pynum::parse_float(&raw).ok_or(ConfigError::InvalidNumber {
        var,
        value: raw,
        kind: "number",
    })
}

/// A non-negative integer as `u64`; larger values saturate. The reference
/// takes any Python integer, so a huge value means "as much as possible"
/// (an effectively endless timeout or interval) rather than an error.
fn saturate(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

/// Builds an [`ConfigError::OutOfRange`].
fn out_of_range(var: &'static str, value: String, reason: &'static str) -> ConfigError {
    ConfigError::OutOfRange { var, value, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_lookup(env_of(pairs)).expect("settings should parse")
    }

    fn settings_err(pairs: &[(&str, &str)]) -> ConfigError {
        Settings::from_lookup(env_of(pairs)).expect_err("settings should be refused")
    }

    fn invalid_path_msg(err: ConfigError) -> String {
        match err {
            ConfigError::InvalidPath(m) => m,
            other => panic!("expected InvalidPath, got {other:?}"),
        }
    }

    // ---------------------------------------------------------------- defaults

    #[test]
    fn default_values_match_reference() {
        let s = Settings::default();
        assert_eq!(s.sqlite.busy_timeout_ms, 5000);
        assert_eq!(s.sqlite.cache_mb, 10);
        assert_eq!(s.sqlite.sync_mode, SyncMode::Full);
        assert_eq!(s.sqlite.wal_autocheckpoint, 1000);
        assert_eq!(s.read_commit_interval, None);
        assert_eq!(s.generator_batch_size, 100);
        assert!(s.auto_vacuum);
        assert_eq!(s.auto_vacuum_interval, 100);
        assert_eq!(s.vacuum_threshold_pct, 10.0);
        assert_eq!(s.sqlite.vacuum_batch_size, 1000);
        assert_eq!(s.sqlite.vacuum_lock_timeout_s, 300);
        assert!(!s.skip_idle_check);
        assert_eq!(s.poll.jitter_factor, 0.15);
        assert_eq!(s.poll.initial_checks, 100);
        assert_eq!(s.poll.max_interval_s, 0.1);
        assert_eq!(s.poll.burst_sleep_s, 0.00001);
        assert!(!s.debug);
        assert!(!s.logging_enabled);
        assert_eq!(s.location.default_db_location, None);
        assert_eq!(s.location.default_db_name, ".broker.db");
        assert!(!s.location.project_scope);
        assert_eq!(s.max_message_size, 10_485_760);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn empty_environment_gives_defaults() {
        let a = settings(&[]);
        let b = Settings::default();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn from_env_reads_process_environment() {
        // Only checks that it runs; the test environment has no BROKER_* values
        // we could rely on.
        let vars: Vec<_> = std::env::vars()
            .filter(|(k, _)| k.starts_with("BROKER_"))
            .collect();
        if vars.is_empty() {
            let s = Settings::from_env().unwrap();
            assert_eq!(s.sqlite.busy_timeout_ms, 5000);
        }
    }

    #[test]
    fn sync_mode_parses_like_the_reference() {
        assert_eq!(SyncMode::parse("full"), SyncMode::Full);
        assert_eq!(SyncMode::parse("Normal"), SyncMode::Normal);
        assert_eq!(SyncMode::parse("OFF"), SyncMode::Off);
        assert_eq!(SyncMode::parse(" off"), SyncMode::Full);
    }

    // ------------------------------------------------------- every variable

    #[test]
    fn every_variable_is_parsed() {
        let s = settings(&[
            ("BROKER_BUSY_TIMEOUT", "250"),
            ("BROKER_CACHE_MB", "64"),
            ("BROKER_SYNC_MODE", "NORMAL"),
            ("BROKER_WAL_AUTOCHECKPOINT", "0"),
            ("BROKER_READ_COMMIT_INTERVAL", "50"),
            ("BROKER_GENERATOR_BATCH_SIZE", "7"),
            ("BROKER_AUTO_VACUUM", "0"),
            ("BROKER_AUTO_VACUUM_INTERVAL", "3"),
            ("BROKER_VACUUM_THRESHOLD", "25.5"),
            ("BROKER_VACUUM_BATCH_SIZE", "9"),
            ("BROKER_VACUUM_LOCK_TIMEOUT", "60"),
            ("BROKER_SKIP_IDLE_CHECK", "1"),
            ("BROKER_JITTER_FACTOR", "0.5"),
            ("BROKER_INITIAL_CHECKS", "5"),
            ("BROKER_MAX_INTERVAL", "0.25"),
            ("BROKER_BURST_SLEEP", "0.001"),
            ("BROKER_DEBUG", "1"),
            ("BROKER_LOGGING_ENABLED", "1"),
            ("BROKER_DEFAULT_DB_LOCATION", "/var/lib/app"),
            ("BROKER_DEFAULT_DB_NAME", "queue.db"),
            ("BROKER_PROJECT_SCOPE", "true"),
            ("BROKER_MAX_MESSAGE_SIZE", "1024"),
        ]);
        assert_eq!(s.sqlite.busy_timeout_ms, 250);
        assert_eq!(s.sqlite.cache_mb, 64);
        assert_eq!(s.sqlite.sync_mode, SyncMode::Normal);
        assert_eq!(s.sqlite.wal_autocheckpoint, 0);
        assert_eq!(s.read_commit_interval, Some(50));
        assert_eq!(s.generator_batch_size, 7);
        assert!(!s.auto_vacuum);
        assert_eq!(s.auto_vacuum_interval, 3);
        assert_eq!(s.vacuum_threshold_pct, 25.5);
        assert_eq!(s.sqlite.vacuum_batch_size, 9);
        assert_eq!(s.sqlite.vacuum_lock_timeout_s, 60);
        assert!(s.skip_idle_check);
        assert_eq!(s.poll.jitter_factor, 0.5);
        assert_eq!(s.poll.initial_checks, 5);
        assert_eq!(s.poll.max_interval_s, 0.25);
        assert_eq!(s.poll.burst_sleep_s, 0.001);
        assert!(s.debug);
        assert!(s.logging_enabled);
        assert_eq!(
            s.location.default_db_location,
            Some(PathBuf::from("/var/lib/app"))
        );
        assert_eq!(s.location.default_db_name, "queue.db");
        assert!(s.location.project_scope);
        assert_eq!(s.max_message_size, 1024);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn integers_accept_python_int_syntax() {
        assert_eq!(
            settings(&[("BROKER_BUSY_TIMEOUT", " 1_000 ")])
                .sqlite
                .busy_timeout_ms,
            1000
        );
        assert_eq!(
            settings(&[("BROKER_BUSY_TIMEOUT", "+42")])
                .sqlite
                .busy_timeout_ms,
            42
        );
        assert_eq!(
            settings(&[("BROKER_BUSY_TIMEOUT", "007")])
                .sqlite
                .busy_timeout_ms,
            7
        );
        assert_eq!(settings(&[("BROKER_CACHE_MB", "\t3\n")]).sqlite.cache_mb, 3);
    }

    #[test]
    fn env_numbers_and_time_bounds_share_one_python_port() {
        // Same inputs, same verdicts as crate::pynum (pinned to CPython there).
        let s = settings(&[
            ("BROKER_BUSY_TIMEOUT", "\u{663}"),
            ("BROKER_CACHE_MB", "\u{ff11}_\u{ff12}"),
            ("BROKER_MAX_INTERVAL", "1e1_0"),
            ("BROKER_BURST_SLEEP", "\u{663}.\u{665}"),
        ]);
        assert_eq!(s.sqlite.busy_timeout_ms, 3);
        assert_eq!(s.sqlite.cache_mb, 12);
        assert_eq!(s.poll.max_interval_s, 1e10);
        assert_eq!(s.poll.burst_sleep_s, 3.5);
        for bad in ["1__0", "0x10", "1.5", "1e3", "  ", "inf"] {
            let err = settings_err(&[("BROKER_INITIAL_CHECKS", bad)]);
            assert!(matches!(err, ConfigError::InvalidNumber { .. }), "{bad:?}");
        }
    }

    #[test]
    fn malformed_integers_are_errors() {
        for bad in [
            "abc", "", " ", "1.5", "0x10", "1__0", "_1", "1_", "+", "- 1", "1e3", "12a",
        ] {
            let err = settings_err(&[("BROKER_BUSY_TIMEOUT", bad)]);
            assert!(
                matches!(
                    err,
                    ConfigError::InvalidNumber {
                        var: "BROKER_BUSY_TIMEOUT",
                        kind: "integer",
                        ..
                    }
                ),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn every_integer_variable_rejects_junk() {
        let vars = [
            "BROKER_BUSY_TIMEOUT",
            "BROKER_CACHE_MB",
            "BROKER_WAL_AUTOCHECKPOINT",
            "BROKER_READ_COMMIT_INTERVAL",
            "BROKER_GENERATOR_BATCH_SIZE",
            "BROKER_AUTO_VACUUM",
            "BROKER_AUTO_VACUUM_INTERVAL",
            "BROKER_VACUUM_BATCH_SIZE",
            "BROKER_VACUUM_LOCK_TIMEOUT",
            "BROKER_INITIAL_CHECKS",
            "BROKER_MAX_MESSAGE_SIZE",
        ];
        for var in vars {
            let err = settings_err(&[(var, "ten")]);
            assert!(
                matches!(err, ConfigError::InvalidNumber { var: v, .. } if v == var),
                "{var}"
            );
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn every_float_variable_rejects_junk() {
        let vars = [
            "BROKER_VACUUM_THRESHOLD",
            "BROKER_JITTER_FACTOR",
            "BROKER_MAX_INTERVAL",
            "BROKER_BURST_SLEEP",
        ];
        for var in vars {
            for bad in ["fast", "", "1e", "1._5", "0x1"] {
                let err = settings_err(&[(var, bad)]);
                assert!(
                    matches!(err, ConfigError::InvalidNumber { var: v, kind: "number", .. } if v == var),
                    "{var}={bad:?} gave {err:?}"
                );
            }
        }
    }

    #[test]
    fn floats_accept_python_float_syntax() {
        assert_eq!(
            settings(&[("BROKER_MAX_INTERVAL", " 0.5 ")])
                .poll
                .max_interval_s,
            0.5
        );
        assert_eq!(
            settings(&[("BROKER_MAX_INTERVAL", "1e-3")])
                .poll
                .max_interval_s,
            0.001
        );
        assert_eq!(
            settings(&[("BROKER_MAX_INTERVAL", "1_0.2_5")])
                .poll
                .max_interval_s,
            10.25
        );
        assert_eq!(
            settings(&[("BROKER_MAX_INTERVAL", "5")])
                .poll
                .max_interval_s,
            5.0
        );
        assert_eq!(
            settings(&[("BROKER_MAX_INTERVAL", ".5")])
                .poll
                .max_interval_s,
            0.5
        );
        assert!(settings(&[("BROKER_MAX_INTERVAL", "inf")])
            .poll
            .max_interval_s
            .is_infinite());
        assert!(settings(&[("BROKER_JITTER_FACTOR", "NaN")])
            .poll
            .jitter_factor
            .is_nan());
        assert_eq!(
            settings(&[("BROKER_JITTER_FACTOR", "-0.5")])
                .poll
                .jitter_factor,
            -0.5
        );
    }

    #[test]
    fn negative_busy_timeout_and_counts_clamp_to_zero() {
        let s = settings(&[
            ("BROKER_BUSY_TIMEOUT", "-5"),
            ("BROKER_AUTO_VACUUM_INTERVAL", "-1"),
            ("BROKER_VACUUM_LOCK_TIMEOUT", "-10"),
            ("BROKER_INITIAL_CHECKS", "-3"),
        ]);
        assert_eq!(s.sqlite.busy_timeout_ms, 0);
        assert_eq!(s.auto_vacuum_interval, 0);
        assert_eq!(s.sqlite.vacuum_lock_timeout_s, 0);
        assert_eq!(s.poll.initial_checks, 0);
    }

    #[test]
    fn negative_vacuum_batch_size_means_unlimited() {
        assert_eq!(
            settings(&[("BROKER_VACUUM_BATCH_SIZE", "-1")])
                .sqlite
                .vacuum_batch_size,
            i64::MAX as u64
        );
    }

    #[test]
    fn negative_values_refused_where_reference_breaks_or_field_cannot_hold_them() {
        for var in [
            "BROKER_CACHE_MB",
            "BROKER_GENERATOR_BATCH_SIZE",
            "BROKER_MAX_MESSAGE_SIZE",
        ] {
            let err = settings_err(&[(var, "-1")]);
            assert!(
                matches!(err, ConfigError::OutOfRange { var: v, .. } if v == var),
                "{var}: {err:?}"
            );
        }
    }

    #[test]
    fn huge_integers_saturate_like_unbounded_python_ints() {
        // The reference accepts any int() here and runs (exit 0); so do we.
        let huge = "99999999999999999999999999";
        let s = settings(&[
            ("BROKER_BUSY_TIMEOUT", huge),
            ("BROKER_CACHE_MB", huge),
            ("BROKER_AUTO_VACUUM_INTERVAL", huge),
            ("BROKER_VACUUM_LOCK_TIMEOUT", huge),
            ("BROKER_INITIAL_CHECKS", huge),
            ("BROKER_GENERATOR_BATCH_SIZE", huge),
            ("BROKER_MAX_MESSAGE_SIZE", huge),
            ("BROKER_READ_COMMIT_INTERVAL", huge),
            ("BROKER_VACUUM_BATCH_SIZE", huge),
            ("BROKER_WAL_AUTOCHECKPOINT", "4294967296"),
        ]);
        assert_eq!(s.sqlite.busy_timeout_ms, u64::MAX);
        assert_eq!(s.sqlite.cache_mb, u64::MAX);
        assert_eq!(s.auto_vacuum_interval, u64::MAX);
        assert_eq!(s.sqlite.vacuum_lock_timeout_s, u64::MAX);
        assert_eq!(s.poll.initial_checks, u64::MAX);
        assert_eq!(s.generator_batch_size, u64::MAX);
        assert_eq!(s.max_message_size, u64::MAX);
        assert_eq!(s.read_commit_interval, Some(u64::MAX));
        assert_eq!(s.sqlite.vacuum_batch_size, i64::MAX as u64);
        assert_eq!(s.sqlite.wal_autocheckpoint, i32::MAX as u32);
        // Past CPython's 4300-digit limit int() itself fails.
        let way_too_big = "9".repeat(4301);
        let err = settings_err(&[("BROKER_CACHE_MB", way_too_big.as_str())]);
        assert!(matches!(err, ConfigError::InvalidNumber { .. }));
    }

    #[test]
    fn negative_wal_autocheckpoint_warns_and_uses_1000() {
        let s = settings(&[("BROKER_WAL_AUTOCHECKPOINT", "-3")]);
        assert_eq!(s.sqlite.wal_autocheckpoint, 1000);
        assert_eq!(
            s.warnings,
            vec![
                "Invalid BROKER_WAL_AUTOCHECKPOINT '-3', must be >= 0. Using default of 1000."
                    .to_string()
            ]
        );
    }

    #[test]
    fn read_commit_interval_below_one_means_one() {
        let interval =
            |v: &str| settings(&[("BROKER_READ_COMMIT_INTERVAL", v)]).read_commit_interval;
        assert_eq!(interval("1"), Some(1));
        assert_eq!(interval("250"), Some(250));
        assert_eq!(interval("0"), Some(1));
        assert_eq!(interval("-4"), Some(1));
        assert!(matches!(
            settings_err(&[("BROKER_READ_COMMIT_INTERVAL", "many")]),
            ConfigError::InvalidNumber { .. }
        ));
    }

    #[test]
    fn sync_mode_is_case_insensitive_and_falls_back_to_full() {
        let mode = |v: &str| settings(&[("BROKER_SYNC_MODE", v)]).sqlite.sync_mode;
        assert_eq!(mode("normal"), SyncMode::Normal);
        assert_eq!(mode("Off"), SyncMode::Off);
        assert_eq!(mode("FULL"), SyncMode::Full);
        assert_eq!(mode("bogus"), SyncMode::Full);
        assert_eq!(mode(""), SyncMode::Full);
        assert_eq!(
            mode(" NORMAL"),
            SyncMode::Full,
            "the reference does not trim"
        );
    }

    #[test]
    fn auto_vacuum_is_enabled_only_by_integer_one() {
        let av = |v: &str| settings(&[("BROKER_AUTO_VACUUM", v)]).auto_vacuum;
        assert!(av("1"));
        assert!(av(" 01 "));
        assert!(!av("0"));
        assert!(!av("2"));
        assert!(matches!(
            settings_err(&[("BROKER_AUTO_VACUUM", "true")]),
            ConfigError::InvalidNumber { .. }
        ));
    }

    #[test]
    fn exact_one_flags() {
        for var in ["BROKER_SKIP_IDLE_CHECK", "BROKER_LOGGING_ENABLED"] {
            let flag = |v: &str| {
                let s = settings(&[(var, v)]);
                if var == "BROKER_SKIP_IDLE_CHECK" {
                    s.skip_idle_check
                } else {
                    s.logging_enabled
                }
            };
            assert!(flag("1"), "{var}");
            for off in ["0", "true", "yes", " 1", "01", ""] {
                assert!(!flag(off), "{var}={off:?}");
            }
        }
    }

    #[test]
    fn debug_is_any_non_empty_value() {
        assert!(settings(&[("BROKER_DEBUG", "1")]).debug);
        assert!(settings(&[("BROKER_DEBUG", "0")]).debug);
        assert!(settings(&[("BROKER_DEBUG", "no")]).debug);
        assert!(!settings(&[("BROKER_DEBUG", "")]).debug);
    }

    #[test]
    fn project_scope_truth_values() {
        let scope = |v: &str| {
            settings(&[("BROKER_PROJECT_SCOPE", v)])
                .location
                .project_scope
        };
        for on in ["1", "true", "TRUE", "Yes", "on", "  ON  ", "\ttrue\n"] {
            assert!(scope(on), "{on:?}");
        }
        for off in ["0", "false", "no", "off", "", "2", "y", "enabled"] {
            assert!(!scope(off), "{off:?}");
        }
    }

    #[test]
    fn max_message_size_is_parsed_but_documented_as_unenforced() {
        assert_eq!(
            settings(&[("BROKER_MAX_MESSAGE_SIZE", "5")]).max_message_size,
            5
        );
        assert_eq!(MAX_MESSAGE_SIZE, 10 * 1024 * 1024);
    }

    // ------------------------------------------------ location and db name

    #[test]
    fn relative_location_is_ignored_with_warning() {
        let s = settings(&[("BROKER_DEFAULT_DB_LOCATION", "relative/dir")]);
        assert_eq!(s.location.default_db_location, None);
        assert_eq!(
            s.warnings,
            vec!["BROKER_DEFAULT_DB_LOCATION must be an absolute path. Ignoring relative path: relative/dir"
                .to_string()]
        );
    }

    #[test]
    fn empty_location_means_unset() {
        let s = settings(&[("BROKER_DEFAULT_DB_LOCATION", "")]);
        assert_eq!(s.location.default_db_location, None);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn location_with_dangerous_text_is_an_error_even_if_relative() {
        for bad in ["/tmp/a;b", "rel$dir", "/tmp/../etc", "/tmp/./x"] {
            let msg = invalid_path_msg(settings_err(&[("BROKER_DEFAULT_DB_LOCATION", bad)]));
            assert!(
                msg.starts_with("BROKER_DEFAULT_DB_LOCATION validation failed: "),
                "{msg}"
            );
        }
    }

    #[test]
    fn default_db_name_accepts_plain_and_compound_names() {
        assert_eq!(
            settings(&[("BROKER_DEFAULT_DB_NAME", "q.db")])
                .location
                .default_db_name,
            "q.db"
        );
        assert_eq!(
            settings(&[("BROKER_DEFAULT_DB_NAME", ".cfg/broker.db")])
                .location
                .default_db_name,
            ".cfg/broker.db"
        );
        assert_eq!(
            settings(&[("BROKER_DEFAULT_DB_NAME", "")])
                .location
                .default_db_name,
            ""
        );
    }

    #[test]
    fn default_db_name_rejections() {
        let msg = |v: &str| invalid_path_msg(settings_err(&[("BROKER_DEFAULT_DB_NAME", v)]));
        assert!(msg("/abs/x.db")
            .starts_with("BROKER_DEFAULT_DB_NAME must be a relative path, not absolute"));
        assert!(msg("a/b/c.db")
            .starts_with("Database name must not contain nested directories: a/b/c.db"));
        for bad in ["../x.db", "x$.db", "./x.db", " x.db", "a|b"] {
            assert!(
                msg(bad).starts_with(
                    "BROKER_DEFAULT_DB_NAME validation failed: BROKER_DEFAULT_DB_NAME "
                ),
                "{bad}"
            );
        }
    }
}
