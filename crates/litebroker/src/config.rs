//! Environment settings (`BROKER_*`) and database path resolution.
//!
//! Everything here mirrors SimpleBroker 2.8.4 (spec §9 and §10) so that the
//! `broker` binary is a drop-in replacement, except for three reference
//! defects where the README's intent wins:
//!
//! * project scope works with the default name `.broker.db`;
//! * the project search starts at the current directory, and
//!   `BROKER_DEFAULT_DB_LOCATION` is ignored while project scope is on;
//! * an explicit `-d` or `-f` always overrides the project search.
//!
//! The module never prints: warnings are collected in [`Settings::warnings`]
//! and failures are returned as [`ConfigError`].

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Database file name used when neither `-f` nor `BROKER_DEFAULT_DB_NAME` says otherwise.
pub const DEFAULT_DB_NAME: &str = ".broker.db";

/// The `meta.magic` value that marks a SimpleBroker database.
pub const SIMPLEBROKER_MAGIC: &str = crate::backend::sqlite::schema::MAGIC;

/// How many directories the project-scope search inspects at most.
pub const MAX_PROJECT_TRAVERSAL_DEPTH: usize = 100;

/// The message size limit the 2.8.4 CLI enforces (10 MiB), whatever
/// `BROKER_MAX_MESSAGE_SIZE` says.
pub const MAX_MESSAGE_SIZE: u64 = 10 * 1024 * 1024;

/// Longest path text the reference accepts (POSIX value).
const MAX_PATH_CHARS: usize = 1024;

/// Longest single path component the reference accepts.
const MAX_COMPONENT_CHARS: usize = 255;

/// Characters the reference refuses anywhere in a path (`_UNIX_DANGEROUS_REGEX`).
/// Only these five control characters are refused: `\x01` and friends pass, as
/// they do in the reference.
const DANGEROUS_CHARS: &[char] = &[
    '\0', '\r', '\n', '\t', '\x7f', '|', '&', ';', '$', '`', '"', '\'', '<', '>', '(', ')', '{',
    '}', '[', ']', '*', '?', '~', '^', '!', '#',
];

/// The 16-byte header every SQLite 3 database file starts with.
#[cfg(test)]
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

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
    /// The value to put after `PRAGMA synchronous=`.
    pub fn as_pragma(&self) -> &'static str {
        match self {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
            SyncMode::Off => "OFF",
        }
    }

    /// Parses like the reference: upper-cased, no trimming, anything else is FULL.
    fn parse(raw: &str) -> SyncMode {
        match raw.to_uppercase().as_str() {
            "NORMAL" => SyncMode::Normal,
            "OFF" => SyncMode::Off,
            _ => SyncMode::Full,
        }
    }
}

/// Every `BROKER_*` setting, parsed once at start-up, with the reference's defaults.
///
/// Parsing follows the reference's `load_config()`: integers and floats use
/// Python's `int()`/`float()` syntax (surrounding whitespace, `+`/`-`, `_`
/// between digits), a malformed number is an error, the boolean flags keep
/// their individual quirks (see each field).
#[derive(Debug, Clone)]
pub struct Settings {
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
    /// `BROKER_VACUUM_BATCH_SIZE` (1000). Negative means "no limit" in the
    /// reference's `LIMIT ?`, stored as `i64::MAX`; 0 makes the reference's
    /// vacuum loop forever, so callers should treat 0 as 1.
    pub vacuum_batch_size: u64,
    /// `BROKER_VACUUM_LOCK_TIMEOUT`, seconds before a vacuum lock is stale (300).
    /// Negative values become 0.
    pub vacuum_lock_timeout_s: u64,
    /// `BROKER_SKIP_IDLE_CHECK` (false): true only for the exact text `1`.
    pub skip_idle_check: bool,
    /// `BROKER_JITTER_FACTOR` (0.15). Any float is accepted: clamp before use.
    pub jitter_factor: f64,
    /// `BROKER_INITIAL_CHECKS`, zero-delay polls before backing off (100).
    /// Negative values become 0.
    pub initial_checks: u64,
    /// `BROKER_MAX_INTERVAL`, seconds (0.1). Any float is accepted (negative,
    /// infinite, NaN): clamp before building a `Duration`.
    pub max_interval_s: f64,
    /// `BROKER_BURST_SLEEP`, seconds (0.00001). Any float is accepted: clamp
    /// before building a `Duration`.
    pub burst_sleep_s: f64,
    /// `BROKER_DEBUG`: true for any non-empty value (even `0`), as in the reference.
    pub debug: bool,
    /// `BROKER_LOGGING_ENABLED` (false): true only for the exact text `1`.
    pub logging_enabled: bool,
    /// `BROKER_DEFAULT_DB_LOCATION`: absolute only. A relative value is ignored
    /// with a warning; a missing directory is reported by [`resolve_db_path`]
    /// when the location is actually used.
    pub default_db_location: Option<PathBuf>,
    /// `BROKER_DEFAULT_DB_NAME` (`.broker.db`): relative, at most one directory
    /// level. Set but empty is kept empty and refused by [`resolve_db_path`].
    pub default_db_name: String,
    /// `BROKER_PROJECT_SCOPE` (false): `1/true/yes/on`, case-insensitive, trimmed.
    pub project_scope: bool,
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
            busy_timeout_ms: 5000,
            cache_mb: 10,
            sync_mode: SyncMode::Full,
            wal_autocheckpoint: 1000,
            read_commit_interval: None,
            generator_batch_size: 100,
            auto_vacuum: true,
            auto_vacuum_interval: 100,
            vacuum_threshold_pct: 10.0,
            vacuum_batch_size: 1000,
            vacuum_lock_timeout_s: 300,
            skip_idle_check: false,
            jitter_factor: 0.15,
            initial_checks: 100,
            max_interval_s: 0.1,
            burst_sleep_s: 0.00001,
            debug: false,
            logging_enabled: false,
            default_db_location: None,
            default_db_name: DEFAULT_DB_NAME.to_string(),
            project_scope: false,
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
        self.busy_timeout_ms = clamped(env, "BROKER_BUSY_TIMEOUT", 5000)?;
        self.cache_mb = non_negative(env, "BROKER_CACHE_MB", 10)?;
        if let Some(raw) = env("BROKER_SYNC_MODE") {
            self.sync_mode = SyncMode::parse(&raw);
        }
        self.wal_autocheckpoint = self.wal_checkpoint(env)?;
        self.read_commit_interval = read_commit_interval(env)?;
        self.generator_batch_size = non_negative(env, "BROKER_GENERATOR_BATCH_SIZE", 100)?;
        self.max_message_size = non_negative(env, "BROKER_MAX_MESSAGE_SIZE", MAX_MESSAGE_SIZE)?;
        Ok(())
    }

    /// `BROKER_WAL_AUTOCHECKPOINT`, with the reference's negative-value fallback.
    fn wal_checkpoint(&mut self, env: Lookup) -> Result<u32, ConfigError> {
        let Some((raw, value)) = int_var(env, "BROKER_WAL_AUTOCHECKPOINT")? else {
            return Ok(1000);
        };
        if value < 0 {
            self.warnings.push(format!(
                "Invalid BROKER_WAL_AUTOCHECKPOINT '{value}', must be >= 0. Using default of 1000."
            ));
            return Ok(1000);
        }
        u32::try_from(value)
            .map_err(|_| out_of_range("BROKER_WAL_AUTOCHECKPOINT", raw, "too large"))
    }

    /// Automatic vacuum variables.
    fn read_vacuum_vars(&mut self, env: Lookup) -> Result<(), ConfigError> {
        if let Some((_, v)) = int_var(env, "BROKER_AUTO_VACUUM")? {
            self.auto_vacuum = v == 1;
        }
        self.auto_vacuum_interval = clamped(env, "BROKER_AUTO_VACUUM_INTERVAL", 100)?;
        self.vacuum_threshold_pct = float_var(env, "BROKER_VACUUM_THRESHOLD", 10.0)?;
        self.vacuum_batch_size = vacuum_batch_size(env)?;
        self.vacuum_lock_timeout_s = clamped(env, "BROKER_VACUUM_LOCK_TIMEOUT", 300)?;
        Ok(())
    }

    /// Watcher polling variables.
    fn read_watcher_vars(&mut self, env: Lookup) -> Result<(), ConfigError> {
        self.jitter_factor = float_var(env, "BROKER_JITTER_FACTOR", 0.15)?;
        self.initial_checks = clamped(env, "BROKER_INITIAL_CHECKS", 100)?;
        self.max_interval_s = float_var(env, "BROKER_MAX_INTERVAL", 0.1)?;
        self.burst_sleep_s = float_var(env, "BROKER_BURST_SLEEP", 0.00001)?;
        Ok(())
    }

    /// Boolean flags, each with the reference's own truth rule.
    fn read_flag_vars(&mut self, env: Lookup) {
        self.skip_idle_check = env("BROKER_SKIP_IDLE_CHECK").as_deref() == Some("1");
        self.logging_enabled = env("BROKER_LOGGING_ENABLED").as_deref() == Some("1");
        self.debug = env("BROKER_DEBUG").is_some_and(|v| !v.is_empty());
        self.project_scope = env("BROKER_PROJECT_SCOPE").is_some_and(|v| parse_scope_bool(&v));
    }

    /// `BROKER_DEFAULT_DB_LOCATION` and `BROKER_DEFAULT_DB_NAME`.
    fn read_location_vars(&mut self, env: Lookup) -> Result<(), ConfigError> {
        if let Some(loc) = env("BROKER_DEFAULT_DB_LOCATION").filter(|v| !v.is_empty()) {
            self.default_db_location = self.check_location(&loc)?;
        }
        if let Some(name) = env("BROKER_DEFAULT_DB_NAME") {
            if !name.is_empty() {
                validate_default_db_name(&name)?;
            }
            self.default_db_name = name;
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

/// `BROKER_VACUUM_BATCH_SIZE`: a negative value means "no limit" (`i64::MAX`).
fn vacuum_batch_size(env: Lookup) -> Result<u64, ConfigError> {
    const VAR: &str = "BROKER_VACUUM_BATCH_SIZE";
    match int_var(env, VAR)? {
        None => Ok(1000),
        Some((_, v)) if v < 0 => Ok(i64::MAX as u64),
        Some((raw, v)) => u64::try_from(v).map_err(|_| out_of_range(VAR, raw, "too large")),
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
        Some((raw, v)) => u64::try_from(v)
            .map(Some)
            .map_err(|_| out_of_range(VAR, raw, "too large")),
    }
}

/// Reads an integer variable: `None` when unset, the raw text and value otherwise.
fn int_var(env: Lookup, var: &'static str) -> Result<Option<(String, i128)>, ConfigError> {
    let Some(raw) = env(var) else { return Ok(None) };
    match parse_py_int(&raw) {
        Some(v) => Ok(Some((raw, v))),
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
        Some((raw, v)) => u64::try_from(v).map_err(|_| out_of_range(var, raw, "too large")),
    }
}

/// Reads an integer variable whose negative values behave like 0 in the reference.
fn clamped(env: Lookup, var: &'static str, default: u64) -> Result<u64, ConfigError> {
    match int_var(env, var)? {
        None => Ok(default),
        Some((raw, v)) => u64::try_from(v.max(0)).map_err(|_| out_of_range(var, raw, "too large")),
    }
}

/// Reads a float variable with Python `float()` syntax.
fn float_var(env: Lookup, var: &'static str, default: f64) -> Result<f64, ConfigError> {
    let Some(raw) = env(var) else {
        return Ok(default);
    };
    parse_py_float(&raw).ok_or(ConfigError::InvalidNumber {
        var,
        value: raw,
        kind: "number",
    })
}

/// Builds an [`ConfigError::OutOfRange`].
fn out_of_range(var: &'static str, value: String, reason: &'static str) -> ConfigError {
    ConfigError::OutOfRange { var, value, reason }
}

/// Parses like Python's `int(text)`: trimmed, optional sign, ASCII digits with
/// single underscores between them.
fn parse_py_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    let cleaned = strip_py_underscores(t)?;
    cleaned.parse::<i128>().ok()
}

/// Parses like Python's `float(text)`: trimmed, underscores between digits,
/// `inf`/`infinity`/`nan` in any case.
fn parse_py_float(text: &str) -> Option<f64> {
    let cleaned = strip_py_underscores(text.trim())?;
    if cleaned.is_empty() || cleaned.contains(char::is_whitespace) {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

/// Removes underscores that sit between two ASCII digits; `None` if any other
/// underscore is present (Python refuses those).
fn strip_py_underscores(t: &str) -> Option<String> {
    let chars: Vec<char> = t.chars().collect();
    let mut out = String::with_capacity(t.len());
    for (i, &c) in chars.iter().enumerate() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let before = i > 0 && chars[i - 1].is_ascii_digit();
        let after = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if !(before && after) {
            return None;
        }
    }
    Some(out)
}

/// Prefixes a validation message with `<VAR> validation failed: `, as the reference does.
fn wrap_error(var: &str, err: ConfigError) -> ConfigError {
    ConfigError::InvalidPath(format!("{var} validation failed: {err}"))
}

/// Checks `BROKER_DEFAULT_DB_NAME`: safe characters, relative, one directory level at most.
fn validate_default_db_name(name: &str) -> Result<(), ConfigError> {
    const VAR: &str = "BROKER_DEFAULT_DB_NAME";
    validate_path_text(name, VAR).map_err(|e| wrap_error(VAR, e))?;
    if Path::new(name).is_absolute() {
        return Err(ConfigError::InvalidPath(format!(
            "{VAR} must be a relative path, not absolute: {name}. \
             Use BROKER_DEFAULT_DB_LOCATION to specify the directory instead."
        )));
    }
    if py_parts(name, false).len() > 2 {
        return Err(ConfigError::InvalidPath(format!(
            "Database name must not contain nested directories: {name}. \
             Only single directory level is supported (e.g., 'dir/name.db')"
        )));
    }
    Ok(())
}

/// The components Python's `PurePath(text).parts` yields (minus the root):
/// empty and `.` components vanish, `..` stays. With `backslash_sep` a `\`
/// also separates components, as the reference's validator assumes.
fn py_parts(text: &str, backslash_sep: bool) -> Vec<&str> {
    text.split(|c| c == '/' || (backslash_sep && c == '\\'))
        .filter(|p| !p.is_empty() && *p != ".")
        .collect()
}

/// Validates a `-d` / `-f` / `BROKER_DEFAULT_DB_NAME` / `BROKER_DEFAULT_DB_LOCATION`
/// value exactly as the reference's `_validate_safe_path_components` does.
///
/// Refused: the empty string; NUL, CR, LF, TAB, DEL and the shell
/// metacharacters ``| & ; $ ` " ' < > ( ) { } [ ] * ? ~ ^ ! #``; `..`
/// components; `.` components (the whole path `.`, a leading `./`, or an
/// inner `/./` — a trailing `/.` passes, as in the reference); components
/// starting or ending with a space; components over 255 characters; paths
/// over 1024 characters. `\` counts as a separator for the component checks.
/// `context` names the value in the message (e.g. `Database filename`).
pub fn validate_path_text(text: &str, context: &str) -> Result<(), ConfigError> {
    let fail = |msg: String| Err(ConfigError::InvalidPath(msg));
    if text.is_empty() {
        return fail(format!("{context} must be a non-empty string"));
    }
    if let Some(c) = text.chars().find(|c| DANGEROUS_CHARS.contains(c)) {
        return fail(format!(
            "{context} contains dangerous character '{}': {text}. Path components must not contain shell metacharacters or control characters.",
            c.escape_default()
        ));
    }
    check_components(text, context)?;
    let norm = text.replace('\\', "/");
    if norm == "." || norm.starts_with("./") || norm.contains("/./") {
        return fail(format!(
            "{context} must not contain current directory references: {text}"
        ));
    }
    let len = text.chars().count();
    if len > MAX_PATH_CHARS {
        let head: String = text.chars().take(50).collect();
        return fail(format!(
            "{context} too long (max {MAX_PATH_CHARS} chars): {len} chars in {head}..."
        ));
    }
    Ok(())
}

/// The per-component half of [`validate_path_text`].
fn check_components(text: &str, context: &str) -> Result<(), ConfigError> {
    for part in py_parts(text, true) {
        let msg = if part == ".." {
            format!("{context} must not contain parent directory references: {text}")
        } else if part.starts_with(' ') || part.ends_with(' ') {
            format!("{context} component cannot start or end with spaces: '{part}' in {text}")
        } else if part.chars().count() > MAX_COMPONENT_CHARS {
            let head: String = part.chars().take(50).collect();
            format!("{context} component too long (max {MAX_COMPONENT_CHARS} chars): '{head}...' in {text}")
        } else {
            continue;
        };
        return Err(ConfigError::InvalidPath(msg));
    }
    Ok(())
}

/// What the command line said about where the database is.
///
/// `dir` and `file` are the raw `-d` / `-f` texts (`None` when absent);
/// `command_is_init` is true for `broker init`, which has its own rule.
#[derive(Debug, Clone, Default)]
pub struct PathRequest {
    /// The `-d/--dir` value, if given.
    pub dir: Option<String>,
    /// The `-f/--file` value, if given.
    pub file: Option<String>,
    /// True when the sub-command is `init`.
    pub command_is_init: bool,
}

/// Resolves the database path as the reference does (spec §9), with the
/// README's intent for the reference's project-scope defects.
///
/// Order: `init` → `<cwd>/<default name>` (ignores everything else);
/// absolute `-f` → that file (an explicit `-d` must name the same directory);
/// project scope with neither `-d` nor `-f` → upward search from `cwd`;
/// otherwise `<dir>/<name>` with dir = `-d`, else `BROKER_DEFAULT_DB_LOCATION`
/// (ignored under project scope), else `cwd`, and name = `-f`, else the
/// default name. The working directory must exist and be a directory, and a
/// relative name must stay inside it after following symbolic links.
///
/// The path is returned as constructed (relative if `-d` was relative, which
/// is then relative to `cwd`); a project database is returned canonicalized.
/// Nothing is created: call [`ensure_parent_dir`] before opening the file.
pub fn resolve_db_path(
    req: &PathRequest,
    settings: &Settings,
    cwd: &Path,
) -> Result<PathBuf, ConfigError> {
    if req.command_is_init {
        validate_path_text(&settings.default_db_name, "Database filename")?;
        return Ok(cwd.join(&settings.default_db_name));
    }
    let name = req.file.as_deref().unwrap_or(&settings.default_db_name);
    validate_path_text(name, "Database filename")?;
    let dir = req.dir.as_deref().map(normalize_dir_arg).transpose()?;
    let base = working_dir(dir.as_deref(), settings, cwd);
    check_working_dir(&base, cwd)?;
    if Path::new(name).is_absolute() {
        return absolute_file(Path::new(name), dir.as_deref(), cwd);
    }
    if settings.project_scope && dir.is_none() && req.file.is_none() {
        return find_project_database(name, cwd);
    }
    let db = base.join(name);
    check_containment(&db, &base, cwd)?;
    Ok(db)
}

/// Normalizes a `-d` value like Python's `Path()` (drops empty and `.`
/// components and trailing slashes, `""` becomes `.`), then validates it.
fn normalize_dir_arg(raw: &str) -> Result<PathBuf, ConfigError> {
    let parts = py_parts(raw, false).join("/");
    let text = match (raw.starts_with('/'), parts.is_empty()) {
        (true, _) => format!("/{parts}"),
        (false, true) => ".".to_string(),
        (false, false) => parts,
    };
    validate_path_text(&text, "Directory argument (-d/--dir)")?;
    Ok(PathBuf::from(text))
}

/// The directory a non-absolute name is joined to.
fn working_dir(dir: Option<&Path>, settings: &Settings, cwd: &Path) -> PathBuf {
    if let Some(d) = dir {
        return d.to_path_buf();
    }
    match &settings.default_db_location {
        Some(loc) if !settings.project_scope => loc.clone(),
        _ => cwd.to_path_buf(),
    }
}

/// Requires the working directory to exist and be a directory.
fn check_working_dir(dir: &Path, cwd: &Path) -> Result<(), ConfigError> {
    match fs::metadata(cwd.join(dir)) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) if m.is_file() => Err(ConfigError::PathIsFile(dir.to_path_buf())),
        Ok(_) => Err(ConfigError::NotADirectory(dir.to_path_buf())),
        Err(_) => Err(ConfigError::DirNotFound(dir.to_path_buf())),
    }
}

/// An absolute `-f`: used as is, after checking it agrees with an explicit `-d`.
fn absolute_file(file: &Path, dir: Option<&Path>, cwd: &Path) -> Result<PathBuf, ConfigError> {
    if let Some(d) = dir {
        let file_dir = file.parent().unwrap_or(file);
        if resolve_lenient(file_dir) != resolve_lenient(&cwd.join(d)) {
            return Err(ConfigError::InconsistentPaths {
                file: file.to_path_buf(),
                dir: d.to_path_buf(),
            });
        }
    }
    Ok(file.to_path_buf())
}

/// Refuses a database path that leaves its working directory through a symlink.
fn check_containment(db: &Path, base: &Path, cwd: &Path) -> Result<(), ConfigError> {
    if resolve_lenient(&cwd.join(db)).starts_with(resolve_lenient(&cwd.join(base))) {
        Ok(())
    } else {
        Err(ConfigError::OutsideWorkingDir)
    }
}

/// Like Python's non-strict `Path.resolve()`: canonicalizes the longest
/// existing prefix, follows dangling symlinks (at most 40 hops) and appends
/// the rest unchanged.
fn resolve_lenient(path: &Path) -> PathBuf {
    resolve_hops(path, 40)
}

/// [`resolve_lenient`] with a budget of symlink hops (guards against loops).
fn resolve_hops(path: &Path, hops: u32) -> PathBuf {
    if let Ok(real) = fs::canonicalize(path) {
        return real;
    }
    if let (true, Ok(target)) = (hops > 0, fs::read_link(path)) {
        let base = path.parent().unwrap_or(Path::new("/"));
        return resolve_hops(&base.join(target), hops - 1);
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => resolve_hops(parent, hops).join(name),
        _ => path.to_path_buf(),
    }
}

/// The project-scope search: walks up from `cwd` looking for a broker
/// database called `name`; not finding one is an error.
fn find_project_database(name: &str, cwd: &Path) -> Result<PathBuf, ConfigError> {
    let start =
        fs::canonicalize(cwd).map_err(|_| ConfigError::StartDirMissing(cwd.to_path_buf()))?;
    let found = walk_up(
        &start,
        name,
        MAX_PROJECT_TRAVERSAL_DEPTH,
        &is_broker_database,
        &device_of,
    );
    match found {
        Some(db) => Ok(fs::canonicalize(&db).unwrap_or(db)),
        None => Err(ConfigError::ProjectDbNotFound {
            name: name.to_string(),
            dir: cwd.to_path_buf(),
        }),
    }
}

/// Inspects `start` and its ancestors (at most `max_depth` directories) for
/// `name`, stopping before the filesystem root and at the first directory on
/// another device than `start` (a mount boundary). `start` must be canonical,
/// so no symlink (and no symlink loop) is ever followed upward.
fn walk_up(
    start: &Path,
    name: &str,
    max_depth: usize,
    is_db: &dyn Fn(&Path) -> bool,
    dev_of: &dyn Fn(&Path) -> Option<u64>,
) -> Option<PathBuf> {
    let home_dev = dev_of(start);
    let mut dir = start;
    for _ in 0..max_depth {
        let parent = dir.parent()?;
        let dev = dev_of(dir);
        if dev.is_some() && home_dev.is_some() && dev != home_dev {
            return None;
        }
        let candidate = dir.join(name);
        if is_db(&candidate) {
            return Some(candidate);
        }
        dir = parent;
    }
    None
}

/// The device number of a directory, `None` when it cannot be examined.
fn device_of(dir: &Path) -> Option<u64> {
    fs::metadata(dir).ok().map(|m| m.dev())
}

/// True for a readable and writable SQLite file (in a readable and writable
/// directory) whose `meta.magic` is `simplebroker-v1`: the reference's
/// `_is_valid_sqlite_db`. The project search uses it to accept a candidate;
/// `init` can use it to tell an existing broker database from a foreign file.
pub fn is_broker_database(path: &Path) -> bool {
    let is_file = fs::metadata(path).is_ok_and(|m| m.is_file());
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    is_file
        && read_write_ok(parent)
        && read_write_ok(path)
        && crate::backend::sqlite::is_broker_database(path)
}

/// `access(path, R_OK | W_OK)`.
fn read_write_ok(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) == 0 }
}

/// Creates the directory holding the database when its own parent exists,
/// as the reference does: `-f newdir/x.db` works, `-f a/b/x.db` with `a`
/// missing fails. A relative `db` is taken relative to the process's cwd.
pub fn ensure_parent_dir(db: &Path) -> Result<(), ConfigError> {
    let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    match fs::metadata(parent) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => return Err(ConfigError::NotADirectory(parent.to_path_buf())),
        Err(_) => {}
    }
    let grand = parent
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !grand.is_dir() {
        return Err(ConfigError::ParentNotFound(grand.to_path_buf()));
    }
    match fs::create_dir(parent) {
        Err(e) if !parent.is_dir() => Err(ConfigError::CreateDir {
            path: parent.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::symlink;
    use tempfile::TempDir;

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

    fn scoped(name: &str) -> Settings {
        Settings {
            project_scope: true,
            default_db_name: name.to_string(),
            ..Settings::default()
        }
    }

    fn req(dir: Option<&str>, file: Option<&str>) -> PathRequest {
        PathRequest {
            dir: dir.map(String::from),
            file: file.map(String::from),
            command_is_init: false,
        }
    }

    fn tmp() -> TempDir {
        tempfile::tempdir().unwrap()
    }

    /// A real directory path (tempdir may live under a symlinked /tmp).
    fn real(dir: &TempDir) -> PathBuf {
        fs::canonicalize(dir.path()).unwrap()
    }

    fn make_db(path: &Path, magic: Option<&str>) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);")
            .unwrap();
        if let Some(m) = magic {
            conn.execute("INSERT INTO meta (key, value) VALUES ('magic', ?1)", [m])
                .unwrap();
        }
    }

    fn make_broker_db(path: &Path) {
        make_db(path, Some(SIMPLEBROKER_MAGIC));
    }

    fn mkdirs(base: &Path, rel: &str) -> PathBuf {
        let p = base.join(rel);
        fs::create_dir_all(&p).unwrap();
        p
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
        assert_eq!(s.busy_timeout_ms, 5000);
        assert_eq!(s.cache_mb, 10);
        assert_eq!(s.sync_mode, SyncMode::Full);
        assert_eq!(s.wal_autocheckpoint, 1000);
        assert_eq!(s.read_commit_interval, None);
        assert_eq!(s.generator_batch_size, 100);
        assert!(s.auto_vacuum);
        assert_eq!(s.auto_vacuum_interval, 100);
        assert_eq!(s.vacuum_threshold_pct, 10.0);
        assert_eq!(s.vacuum_batch_size, 1000);
        assert_eq!(s.vacuum_lock_timeout_s, 300);
        assert!(!s.skip_idle_check);
        assert_eq!(s.jitter_factor, 0.15);
        assert_eq!(s.initial_checks, 100);
        assert_eq!(s.max_interval_s, 0.1);
        assert_eq!(s.burst_sleep_s, 0.00001);
        assert!(!s.debug);
        assert!(!s.logging_enabled);
        assert_eq!(s.default_db_location, None);
        assert_eq!(s.default_db_name, ".broker.db");
        assert!(!s.project_scope);
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
            assert_eq!(s.busy_timeout_ms, 5000);
        }
    }

    #[test]
    fn sync_mode_pragma_text() {
        assert_eq!(SyncMode::Full.as_pragma(), "FULL");
        assert_eq!(SyncMode::Normal.as_pragma(), "NORMAL");
        assert_eq!(SyncMode::Off.as_pragma(), "OFF");
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
        assert_eq!(s.busy_timeout_ms, 250);
        assert_eq!(s.cache_mb, 64);
        assert_eq!(s.sync_mode, SyncMode::Normal);
        assert_eq!(s.wal_autocheckpoint, 0);
        assert_eq!(s.read_commit_interval, Some(50));
        assert_eq!(s.generator_batch_size, 7);
        assert!(!s.auto_vacuum);
        assert_eq!(s.auto_vacuum_interval, 3);
        assert_eq!(s.vacuum_threshold_pct, 25.5);
        assert_eq!(s.vacuum_batch_size, 9);
        assert_eq!(s.vacuum_lock_timeout_s, 60);
        assert!(s.skip_idle_check);
        assert_eq!(s.jitter_factor, 0.5);
        assert_eq!(s.initial_checks, 5);
        assert_eq!(s.max_interval_s, 0.25);
        assert_eq!(s.burst_sleep_s, 0.001);
        assert!(s.debug);
        assert!(s.logging_enabled);
        assert_eq!(s.default_db_location, Some(PathBuf::from("/var/lib/app")));
        assert_eq!(s.default_db_name, "queue.db");
        assert!(s.project_scope);
        assert_eq!(s.max_message_size, 1024);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn integers_accept_python_int_syntax() {
        assert_eq!(
            settings(&[("BROKER_BUSY_TIMEOUT", " 1_000 ")]).busy_timeout_ms,
            1000
        );
        assert_eq!(
            settings(&[("BROKER_BUSY_TIMEOUT", "+42")]).busy_timeout_ms,
            42
        );
        assert_eq!(
            settings(&[("BROKER_BUSY_TIMEOUT", "007")]).busy_timeout_ms,
            7
        );
        assert_eq!(settings(&[("BROKER_CACHE_MB", "\t3\n")]).cache_mb, 3);
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
            settings(&[("BROKER_MAX_INTERVAL", " 0.5 ")]).max_interval_s,
            0.5
        );
        assert_eq!(
            settings(&[("BROKER_MAX_INTERVAL", "1e-3")]).max_interval_s,
            0.001
        );
        assert_eq!(
            settings(&[("BROKER_MAX_INTERVAL", "1_0.2_5")]).max_interval_s,
            10.25
        );
        assert_eq!(
            settings(&[("BROKER_MAX_INTERVAL", "5")]).max_interval_s,
            5.0
        );
        assert_eq!(
            settings(&[("BROKER_MAX_INTERVAL", ".5")]).max_interval_s,
            0.5
        );
        assert!(settings(&[("BROKER_MAX_INTERVAL", "inf")])
            .max_interval_s
            .is_infinite());
        assert!(settings(&[("BROKER_JITTER_FACTOR", "NaN")])
            .jitter_factor
            .is_nan());
        assert_eq!(
            settings(&[("BROKER_JITTER_FACTOR", "-0.5")]).jitter_factor,
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
        assert_eq!(s.busy_timeout_ms, 0);
        assert_eq!(s.auto_vacuum_interval, 0);
        assert_eq!(s.vacuum_lock_timeout_s, 0);
        assert_eq!(s.initial_checks, 0);
    }

    #[test]
    fn negative_vacuum_batch_size_means_unlimited() {
        assert_eq!(
            settings(&[("BROKER_VACUUM_BATCH_SIZE", "-1")]).vacuum_batch_size,
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
    fn huge_integers_are_out_of_range() {
        let err = settings_err(&[("BROKER_BUSY_TIMEOUT", "99999999999999999999999999")]);
        assert!(
            matches!(
                err,
                ConfigError::OutOfRange {
                    var: "BROKER_BUSY_TIMEOUT",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = settings_err(&[("BROKER_WAL_AUTOCHECKPOINT", "4294967296")]);
        assert!(matches!(
            err,
            ConfigError::OutOfRange {
                var: "BROKER_WAL_AUTOCHECKPOINT",
                ..
            }
        ));
        let way_too_big = "9".repeat(60);
        let err = settings_err(&[("BROKER_CACHE_MB", way_too_big.as_str())]);
        assert!(matches!(
            err,
            ConfigError::InvalidNumber { .. } | ConfigError::OutOfRange { .. }
        ));
    }

    #[test]
    fn negative_wal_autocheckpoint_warns_and_uses_1000() {
        let s = settings(&[("BROKER_WAL_AUTOCHECKPOINT", "-3")]);
        assert_eq!(s.wal_autocheckpoint, 1000);
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
        let mode = |v: &str| settings(&[("BROKER_SYNC_MODE", v)]).sync_mode;
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
        let scope = |v: &str| settings(&[("BROKER_PROJECT_SCOPE", v)]).project_scope;
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
        assert_eq!(s.default_db_location, None);
        assert_eq!(
            s.warnings,
            vec!["BROKER_DEFAULT_DB_LOCATION must be an absolute path. Ignoring relative path: relative/dir"
                .to_string()]
        );
    }

    #[test]
    fn empty_location_means_unset() {
        let s = settings(&[("BROKER_DEFAULT_DB_LOCATION", "")]);
        assert_eq!(s.default_db_location, None);
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
    fn missing_absolute_location_is_an_error_when_used() {
        let dir = tmp();
        let missing = real(&dir).join("nope");
        let s = settings(&[("BROKER_DEFAULT_DB_LOCATION", missing.to_str().unwrap())]);
        assert_eq!(s.default_db_location.as_deref(), Some(missing.as_path()));
        let err = resolve_db_path(&req(None, None), &s, &real(&dir)).unwrap_err();
        assert!(
            matches!(&err, ConfigError::DirNotFound(p) if p == &missing),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("Directory not found: {}", missing.display())
        );
    }

    #[test]
    fn default_db_name_accepts_plain_and_compound_names() {
        assert_eq!(
            settings(&[("BROKER_DEFAULT_DB_NAME", "q.db")]).default_db_name,
            "q.db"
        );
        assert_eq!(
            settings(&[("BROKER_DEFAULT_DB_NAME", ".cfg/broker.db")]).default_db_name,
            ".cfg/broker.db"
        );
        assert_eq!(
            settings(&[("BROKER_DEFAULT_DB_NAME", "")]).default_db_name,
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

    // -------------------------------------------------------- path validation

    #[test]
    fn path_validation_accepts_ordinary_paths() {
        for ok in [
            "x.db",
            ".broker.db",
            "a/b.db",
            "/abs/dir/x.db",
            "dir/",
            "a//b",
            "a/.",
            "my queue.db",
            "ünï.db",
            "a\x01b",
            "a:b",
            "a@b%c+d=e,f",
        ] {
            assert!(validate_path_text(ok, "P").is_ok(), "{ok:?}");
        }
        assert!(validate_path_text(&"a".repeat(255), "P").is_ok());
        let long_ok = vec!["a".repeat(100); 10].join("/");
        assert_eq!(long_ok.len(), 1009);
        assert!(validate_path_text(&long_ok, "P").is_ok());
    }

    #[test]
    fn path_validation_rejects_every_dangerous_character() {
        for c in DANGEROUS_CHARS {
            let text = format!("a{c}b.db");
            let msg = invalid_path_msg(validate_path_text(&text, "Database filename").unwrap_err());
            assert!(
                msg.starts_with("Database filename contains dangerous character '"),
                "{msg}"
            );
        }
        let msg = invalid_path_msg(validate_path_text("x;y", "P").unwrap_err());
        assert_eq!(
            msg,
            "P contains dangerous character ';': x;y. Path components must not contain shell metacharacters or control characters."
        );
    }

    #[test]
    fn path_validation_rejects_dot_components() {
        let msg = |t: &str| invalid_path_msg(validate_path_text(t, "P").unwrap_err());
        assert_eq!(
            msg(".."),
            "P must not contain parent directory references: .."
        );
        assert!(msg("a/../b").contains("parent directory references"));
        assert!(
            msg("a\\..\\b").contains("parent directory references"),
            "backslash separates"
        );
        assert!(msg("/x/..").contains("parent directory references"));
        assert_eq!(
            msg("."),
            "P must not contain current directory references: ."
        );
        assert!(msg("./x.db").contains("current directory references"));
        assert!(msg("a/./b").contains("current directory references"));
        assert!(msg(".\\x.db").contains("current directory references"));
    }

    #[test]
    fn path_validation_rejects_spaces_and_lengths() {
        let msg = |t: &str| invalid_path_msg(validate_path_text(t, "P").unwrap_err());
        assert_eq!(
            msg(" a.db"),
            "P component cannot start or end with spaces: ' a.db' in  a.db"
        );
        assert!(msg("dir /a.db").contains("start or end with spaces: 'dir '"));
        assert_eq!(msg(""), "P must be a non-empty string");
        let long = "b".repeat(256);
        assert!(msg(&long).starts_with("P component too long (max 255 chars): 'bbbb"));
        let path = vec!["c".repeat(200); 6].join("/");
        assert!(msg(&path).starts_with("P too long (max 1024 chars): 1205 chars in ccc"));
    }

    // ------------------------------------------------------- path resolution

    #[test]
    fn default_path_is_cwd_plus_default_name() {
        let dir = tmp();
        let cwd = real(&dir);
        let p = resolve_db_path(&req(None, None), &Settings::default(), &cwd).unwrap();
        assert_eq!(p, cwd.join(".broker.db"));
    }

    #[test]
    fn custom_default_name_and_relative_file() {
        let dir = tmp();
        let cwd = real(&dir);
        let s = Settings {
            default_db_name: "q.db".into(),
            ..Settings::default()
        };
        assert_eq!(
            resolve_db_path(&req(None, None), &s, &cwd).unwrap(),
            cwd.join("q.db")
        );
        assert_eq!(
            resolve_db_path(&req(None, Some("other.db")), &s, &cwd).unwrap(),
            cwd.join("other.db")
        );
        assert_eq!(
            resolve_db_path(&req(None, Some("sub/x.db")), &s, &cwd).unwrap(),
            cwd.join("sub/x.db")
        );
    }

    #[test]
    fn compound_default_name_joins_cwd() {
        let dir = tmp();
        let cwd = real(&dir);
        let s = Settings {
            default_db_name: ".cfg/broker.db".into(),
            ..Settings::default()
        };
        let p = resolve_db_path(&req(None, None), &s, &cwd).unwrap();
        assert_eq!(p, cwd.join(".cfg/broker.db"));
        ensure_parent_dir(&p).unwrap();
        assert!(cwd.join(".cfg").is_dir());
    }

    #[test]
    fn relative_dir_stays_relative() {
        let dir = tmp();
        let cwd = real(&dir);
        mkdirs(&cwd, "work");
        let p = resolve_db_path(&req(Some("work"), None), &Settings::default(), &cwd).unwrap();
        assert_eq!(p, PathBuf::from("work/.broker.db"));
        let p = resolve_db_path(
            &req(Some("./work/"), Some("x.db")),
            &Settings::default(),
            &cwd,
        )
        .unwrap();
        assert_eq!(
            p,
            PathBuf::from("work/x.db"),
            "-d is normalized like Python's Path()"
        );
    }

    #[test]
    fn absolute_dir_is_used() {
        let dir = tmp();
        let cwd = real(&dir);
        let other = mkdirs(&cwd, "other");
        let p = resolve_db_path(
            &req(other.to_str(), Some("x.db")),
            &Settings::default(),
            &cwd,
        )
        .unwrap();
        assert_eq!(p, other.join("x.db"));
    }

    #[test]
    fn missing_or_file_dir_is_an_error() {
        let dir = tmp();
        let cwd = real(&dir);
        let err =
            resolve_db_path(&req(Some("missing"), None), &Settings::default(), &cwd).unwrap_err();
        assert_eq!(err.to_string(), "Directory not found: missing");
        fs::write(cwd.join("afile"), b"x").unwrap();
        let err =
            resolve_db_path(&req(Some("afile"), None), &Settings::default(), &cwd).unwrap_err();
        assert_eq!(err.to_string(), "Path is a file, not a directory: afile");
    }

    #[test]
    fn dir_argument_validation() {
        let dir = tmp();
        let cwd = real(&dir);
        for bad in [".", "", "a;b", "../x", "x/../y", " lead"] {
            let err =
                resolve_db_path(&req(Some(bad), None), &Settings::default(), &cwd).unwrap_err();
            let msg = invalid_path_msg(err);
            assert!(
                msg.starts_with("Directory argument (-d/--dir) "),
                "{bad:?}: {msg}"
            );
        }
    }

    #[test]
    fn file_argument_validation() {
        let dir = tmp();
        let cwd = real(&dir);
        for bad in [
            "../x.db",
            "./x.db",
            "a/./b.db",
            "x$.db",
            "",
            " x.db",
            "/abs/../x.db",
        ] {
            let err =
                resolve_db_path(&req(None, Some(bad)), &Settings::default(), &cwd).unwrap_err();
            let msg = invalid_path_msg(err);
            assert!(msg.starts_with("Database filename "), "{bad:?}: {msg}");
        }
    }

    #[test]
    fn empty_default_name_is_refused_at_resolution() {
        let dir = tmp();
        let s = Settings {
            default_db_name: String::new(),
            ..Settings::default()
        };
        let err = resolve_db_path(&req(None, None), &s, &real(&dir)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Database filename must be a non-empty string"
        );
    }

    #[test]
    fn location_is_used_when_no_dir() {
        let dir = tmp();
        let cwd = mkdirs(&real(&dir), "cwd");
        let loc = mkdirs(&real(&dir), "loc");
        let s = Settings {
            default_db_location: Some(loc.clone()),
            ..Settings::default()
        };
        assert_eq!(
            resolve_db_path(&req(None, None), &s, &cwd).unwrap(),
            loc.join(".broker.db")
        );
        assert_eq!(
            resolve_db_path(&req(None, Some("f.db")), &s, &cwd).unwrap(),
            loc.join("f.db")
        );
        let p = resolve_db_path(&req(cwd.to_str(), None), &s, &cwd).unwrap();
        assert_eq!(p, cwd.join(".broker.db"), "-d beats the location");
    }

    #[test]
    fn absolute_file_is_used_as_is() {
        let dir = tmp();
        let cwd = mkdirs(&real(&dir), "cwd");
        let target = real(&dir).join("elsewhere/x.db");
        let f = target.to_str().unwrap();
        assert_eq!(
            resolve_db_path(&req(None, Some(f)), &Settings::default(), &cwd).unwrap(),
            target
        );
    }

    #[test]
    fn absolute_file_with_matching_dir() {
        let dir = tmp();
        let root = real(&dir);
        let d = mkdirs(&root, "d");
        let target = d.join("x.db");
        let p = resolve_db_path(
            &req(d.to_str(), target.to_str()),
            &Settings::default(),
            &root,
        )
        .unwrap();
        assert_eq!(p, target);
        let p = resolve_db_path(
            &req(Some("d"), target.to_str()),
            &Settings::default(),
            &root,
        )
        .unwrap();
        assert_eq!(p, target, "a relative -d is resolved against cwd");
        symlink(&d, root.join("link")).unwrap();
        let p = resolve_db_path(
            &req(Some("link"), target.to_str()),
            &Settings::default(),
            &root,
        )
        .unwrap();
        assert_eq!(
            p, target,
            "directories are compared after resolving symlinks"
        );
    }

    #[test]
    fn absolute_file_with_mismatching_dir() {
        let dir = tmp();
        let root = real(&dir);
        let d = mkdirs(&root, "d");
        let e = mkdirs(&root, "e");
        let target = d.join("x.db");
        let err = resolve_db_path(
            &req(e.to_str(), target.to_str()),
            &Settings::default(),
            &root,
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::InconsistentPaths { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "Inconsistent paths: absolute database path '{}' conflicts with directory '{}'",
                target.display(),
                e.display()
            )
        );
    }

    #[test]
    fn absolute_file_still_requires_existing_dir_and_location() {
        let dir = tmp();
        let root = real(&dir);
        let target = root.join("x.db");
        let err = resolve_db_path(
            &req(Some("missing"), target.to_str()),
            &Settings::default(),
            &root,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InconsistentPaths { .. } | ConfigError::DirNotFound(_)
        ));
        let s = Settings {
            default_db_location: Some(root.join("gone")),
            ..Settings::default()
        };
        let err = resolve_db_path(&req(None, target.to_str()), &s, &root).unwrap_err();
        assert!(matches!(err, ConfigError::DirNotFound(_)), "{err:?}");
    }

    #[test]
    fn relative_file_must_stay_inside_dir() {
        let dir = tmp();
        let root = real(&dir);
        let work = mkdirs(&root, "work");
        let outside = mkdirs(&root, "outside");
        symlink(&outside, work.join("escape")).unwrap();
        let err = resolve_db_path(
            &req(Some("work"), Some("escape/x.db")),
            &Settings::default(),
            &root,
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::OutsideWorkingDir));
        assert_eq!(
            err.to_string(),
            "Database file must be within the working directory"
        );
        symlink(outside.join("real.db"), work.join("linked.db")).unwrap();
        let err = resolve_db_path(
            &req(Some("work"), Some("linked.db")),
            &Settings::default(),
            &root,
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::OutsideWorkingDir),
            "a database symlink pointing out is refused"
        );
        let inner = mkdirs(&work, "inner");
        symlink(&inner, work.join("inlink")).unwrap();
        let p = resolve_db_path(
            &req(Some("work"), Some("inlink/x.db")),
            &Settings::default(),
            &root,
        )
        .unwrap();
        assert_eq!(p, PathBuf::from("work/inlink/x.db"));
    }

    #[test]
    fn init_ignores_dir_file_location_and_scope() {
        let dir = tmp();
        let cwd = mkdirs(&real(&dir), "cwd");
        let s = Settings {
            default_db_location: Some(real(&dir).join("gone")),
            default_db_name: "proj.db".into(),
            project_scope: true,
            ..Settings::default()
        };
        let r = PathRequest {
            dir: Some("nowhere".into()),
            file: Some("/abs/x.db".into()),
            command_is_init: true,
        };
        assert_eq!(resolve_db_path(&r, &s, &cwd).unwrap(), cwd.join("proj.db"));
        let s = Settings {
            default_db_name: ".cfg/broker.db".into(),
            ..s
        };
        assert_eq!(
            resolve_db_path(&r, &s, &cwd).unwrap(),
            cwd.join(".cfg/broker.db")
        );
    }

    // ---------------------------------------------------------- project scope

    #[test]
    fn project_scope_finds_db_at_depth_0() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        make_broker_db(&root.join(".broker.db"));
        let p = resolve_db_path(&req(None, None), &scoped(".broker.db"), &root).unwrap();
        assert_eq!(p, root.join(".broker.db"));
    }

    #[test]
    fn project_scope_finds_db_at_depth_1() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        let sub = mkdirs(&root, "scripts");
        make_broker_db(&root.join(".broker.db"));
        let p = resolve_db_path(&req(None, None), &scoped(".broker.db"), &sub).unwrap();
        assert_eq!(p, root.join(".broker.db"));
    }

    #[test]
    fn project_scope_finds_db_at_depth_3_with_custom_name() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        let deep = mkdirs(&root, "a/b/c");
        make_broker_db(&root.join("queues.db"));
        let p = resolve_db_path(&req(None, None), &scoped("queues.db"), &deep).unwrap();
        assert_eq!(p, root.join("queues.db"));
    }

    #[test]
    fn project_scope_prefers_nearest_db() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        let sub = mkdirs(&root, "sub");
        make_broker_db(&root.join(".broker.db"));
        make_broker_db(&sub.join(".broker.db"));
        let p =
            resolve_db_path(&req(None, None), &scoped(".broker.db"), &mkdirs(&sub, "x")).unwrap();
        assert_eq!(p, sub.join(".broker.db"));
    }

    #[test]
    fn project_scope_not_found_message() {
        let dir = tmp();
        let cwd = mkdirs(&real(&dir), "lonely/dir");
        let err =
            resolve_db_path(&req(None, None), &scoped("unlikely-name-7f3a.db"), &cwd).unwrap_err();
        assert!(matches!(err, ConfigError::ProjectDbNotFound { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "BROKER_PROJECT_SCOPE is enabled but no project database 'unlikely-name-7f3a.db' was found in '{}' or any parent directory. Run 'broker init' in the project root directory to create one.",
                cwd.display()
            )
        );
    }

    #[test]
    fn project_scope_skips_foreign_sqlite_files() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        let mid = mkdirs(&root, "mid");
        let leaf = mkdirs(&mid, "leaf");
        make_broker_db(&root.join("p.db"));
        make_db(&mid.join("p.db"), Some("other-app-v1"));
        make_db(&leaf.join("p.db"), None);
        let p = resolve_db_path(&req(None, None), &scoped("p.db"), &leaf).unwrap();
        assert_eq!(p, root.join("p.db"));
        let conn = rusqlite::Connection::open(leaf.join("plain.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (x);").unwrap();
        drop(conn);
        assert!(
            !is_broker_database(&leaf.join("plain.db")),
            "no meta table at all"
        );
    }

    #[test]
    fn project_scope_skips_junk_and_directories() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        let mid = mkdirs(&root, "mid");
        let leaf = mkdirs(&mid, "leaf");
        make_broker_db(&root.join(".broker.db"));
        fs::write(mid.join(".broker.db"), b"not a database at all, just text").unwrap();
        fs::create_dir(leaf.join(".broker.db")).unwrap();
        let mut fake = SQLITE_HEADER.to_vec();
        fake.extend_from_slice(&[0u8; 100]);
        fs::write(leaf.join("fake.db"), fake).unwrap();
        let p = resolve_db_path(&req(None, None), &scoped(".broker.db"), &leaf).unwrap();
        assert_eq!(p, root.join(".broker.db"));
        assert!(
            !is_broker_database(&leaf.join("fake.db")),
            "header alone is not enough"
        );
        fs::write(leaf.join("empty.db"), b"").unwrap();
        assert!(!is_broker_database(&leaf.join("empty.db")));
    }

    #[test]
    fn project_scope_with_compound_name() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        let sub = mkdirs(&root, "src/module");
        make_broker_db(&root.join(".cfg/broker.db"));
        let p = resolve_db_path(&req(None, None), &scoped(".cfg/broker.db"), &sub).unwrap();
        assert_eq!(p, root.join(".cfg/broker.db"));
    }

    #[test]
    fn project_scope_result_is_canonical() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        make_broker_db(&root.join(".broker.db"));
        symlink(&root, real(&dir).join("alias")).unwrap();
        let via_link = real(&dir).join("alias");
        let p = resolve_db_path(&req(None, None), &scoped(".broker.db"), &via_link).unwrap();
        assert_eq!(p, root.join(".broker.db"));
    }

    #[test]
    fn explicit_dir_or_file_override_project_scope() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        let sub = mkdirs(&root, "sub");
        make_broker_db(&root.join(".broker.db"));
        let s = scoped(".broker.db");
        let p = resolve_db_path(&req(None, Some("own.db")), &s, &sub).unwrap();
        assert_eq!(p, sub.join("own.db"));
        let p = resolve_db_path(&req(Some("sub"), None), &s, &root).unwrap();
        assert_eq!(p, PathBuf::from("sub/.broker.db"));
        let p = resolve_db_path(&req(None, Some(".broker.db")), &s, &sub).unwrap();
        assert_eq!(
            p,
            sub.join(".broker.db"),
            "an explicit -f equal to the default still overrides"
        );
    }

    #[test]
    fn location_is_ignored_under_project_scope() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        let sub = mkdirs(&root, "sub");
        let loc = mkdirs(&real(&dir), "loc");
        make_broker_db(&root.join(".broker.db"));
        make_broker_db(&loc.join(".broker.db"));
        let s = Settings {
            default_db_location: Some(loc.clone()),
            ..scoped(".broker.db")
        };
        assert_eq!(
            resolve_db_path(&req(None, None), &s, &sub).unwrap(),
            root.join(".broker.db")
        );
        assert_eq!(
            resolve_db_path(&req(None, Some("x.db")), &s, &sub).unwrap(),
            sub.join("x.db")
        );
        let s = Settings {
            default_db_location: Some(real(&dir).join("gone")),
            ..s
        };
        assert_eq!(
            resolve_db_path(&req(None, None), &s, &sub).unwrap(),
            root.join(".broker.db")
        );
    }

    #[test]
    fn project_scope_missing_start_dir() {
        let dir = tmp();
        let gone = real(&dir).join("gone");
        let err = find_project_database(".broker.db", &gone).unwrap_err();
        assert!(matches!(err, ConfigError::StartDirMissing(_)));
    }

    #[test]
    fn walk_is_limited_to_100_directories() {
        let dir = tmp();
        let root = real(&dir);
        make_broker_db(&root.join(".broker.db"));
        let rel99 = vec!["d"; 99].join("/");
        let at99 = mkdirs(&root, &rel99);
        let at100 = mkdirs(&at99, "d");
        let s = scoped(".broker.db");
        assert_eq!(
            resolve_db_path(&req(None, None), &s, &at99).unwrap(),
            root.join(".broker.db")
        );
        let err = resolve_db_path(&req(None, None), &s, &at100).unwrap_err();
        assert!(matches!(err, ConfigError::ProjectDbNotFound { .. }));
    }

    #[test]
    fn walk_stops_before_filesystem_root() {
        let seen = std::cell::RefCell::new(Vec::new());
        let is_db = |p: &Path| {
            seen.borrow_mut().push(p.to_path_buf());
            false
        };
        let found = walk_up(Path::new("/a/b"), "x.db", 100, &is_db, &|_| Some(1));
        assert_eq!(found, None);
        assert_eq!(
            *seen.borrow(),
            vec![PathBuf::from("/a/b/x.db"), PathBuf::from("/a/x.db")]
        );
    }

    #[test]
    fn walk_stops_at_mount_boundary() {
        let seen = std::cell::RefCell::new(Vec::new());
        let is_db = |p: &Path| {
            seen.borrow_mut().push(p.to_path_buf());
            p == Path::new("/outer/x.db")
        };
        let dev = |p: &Path| Some(if p.starts_with("/outer/mnt") { 2 } else { 1 });
        let found = walk_up(Path::new("/outer/mnt/proj"), "x.db", 100, &is_db, &dev);
        assert_eq!(
            found, None,
            "the database beyond the mount point is not used"
        );
        assert_eq!(
            *seen.borrow(),
            vec![
                PathBuf::from("/outer/mnt/proj/x.db"),
                PathBuf::from("/outer/mnt/x.db")
            ]
        );
        let found = walk_up(Path::new("/outer/mnt/proj"), "x.db", 100, &is_db, &|_| {
            Some(1)
        });
        assert_eq!(found, Some(PathBuf::from("/outer/x.db")));
    }

    #[test]
    fn symlink_loop_candidate_is_skipped() {
        let dir = tmp();
        let root = mkdirs(&real(&dir), "proj");
        let sub = mkdirs(&root, "sub");
        make_broker_db(&root.join(".broker.db"));
        symlink(sub.join("loop2"), sub.join("loop1")).unwrap();
        symlink(sub.join("loop1"), sub.join("loop2")).unwrap();
        symlink(sub.join("loop1"), sub.join(".broker.db")).unwrap();
        let p = resolve_db_path(&req(None, None), &scoped(".broker.db"), &sub).unwrap();
        assert_eq!(p, root.join(".broker.db"));
    }

    #[test]
    fn wal_mode_database_is_recognized() {
        let dir = tmp();
        let db = real(&dir).join("w.db");
        make_broker_db(&db);
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        assert!(
            is_broker_database(&db),
            "checked while a writer holds the WAL open"
        );
        drop(conn);
        assert!(is_broker_database(&db));
    }

    // ------------------------------------------------------- ensure_parent_dir

    #[test]
    fn ensure_parent_dir_cases() {
        let dir = tmp();
        let root = real(&dir);
        ensure_parent_dir(&root.join("x.db")).unwrap();
        ensure_parent_dir(Path::new("bare.db")).unwrap();
        ensure_parent_dir(&root.join("newdir/x.db")).unwrap();
        assert!(root.join("newdir").is_dir());
        ensure_parent_dir(&root.join("newdir/x.db")).unwrap();
        let err = ensure_parent_dir(&root.join("a/b/x.db")).unwrap_err();
        assert!(matches!(&err, ConfigError::ParentNotFound(p) if p == &root.join("a")));
        assert_eq!(
            err.to_string(),
            format!("Parent directory not found: {}", root.join("a").display())
        );
        assert!(!root.join("a").exists());
        fs::write(root.join("plain"), b"x").unwrap();
        let err = ensure_parent_dir(&root.join("plain/x.db")).unwrap_err();
        assert!(matches!(err, ConfigError::NotADirectory(_)));
    }
}
