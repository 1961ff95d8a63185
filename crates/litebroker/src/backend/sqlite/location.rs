//! Where the database is: `-d`/`-f` resolution, `BROKER_DEFAULT_DB_LOCATION`
//! and `BROKER_DEFAULT_DB_NAME`, the project-scope search, path validation,
//! and creating the database's directory.
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
//! The module never prints; failures are [`ConfigError`]s. The environment
//! variables themselves are read by [`crate::config::Settings`] into
//! [`LocationOptions`].

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub use crate::config::ConfigError;

/// Database file name used when neither `-f` nor `BROKER_DEFAULT_DB_NAME` says otherwise.
pub const DEFAULT_DB_NAME: &str = ".broker.db";

/// The `meta.magic` value that marks a SimpleBroker database.
pub const SIMPLEBROKER_MAGIC: &str = super::schema::MAGIC;

/// How many directories the project-scope search inspects at most.
pub const MAX_PROJECT_TRAVERSAL_DEPTH: usize = 100;

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

/// The location settings from the environment (`BROKER_DEFAULT_DB_LOCATION`,
/// `BROKER_DEFAULT_DB_NAME`, `BROKER_PROJECT_SCOPE`), already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationOptions {
    /// `BROKER_DEFAULT_DB_LOCATION`: absolute only. A relative value is ignored
    /// with a warning; a missing directory is reported by [`resolve_db_path`]
    /// when the location is actually used.
    pub default_db_location: Option<PathBuf>,
    /// `BROKER_DEFAULT_DB_NAME` (`.broker.db`): relative, at most one directory
    /// level. Set but empty is kept empty and refused by [`resolve_db_path`].
    pub default_db_name: String,
    /// `BROKER_PROJECT_SCOPE` (false): `1/true/yes/on`, case-insensitive, trimmed.
    pub project_scope: bool,
}

impl Default for LocationOptions {
    fn default() -> Self {
        LocationOptions {
            default_db_location: None,
            default_db_name: DEFAULT_DB_NAME.to_string(),
            project_scope: false,
        }
    }
}

/// What `broker init` finds at its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitState {
    /// Nothing there yet: create the database.
    Absent,
    /// A SimpleBroker database is already there: leave it as it is.
    BrokerDatabase,
    /// Something else is there: refuse, touching nothing.
    Foreign,
}

/// The path `broker init` creates: `<cwd>/<BROKER_DEFAULT_DB_NAME>`, whatever
/// `-d`, `-f`, the location and project scope say (the reference's rule).
pub fn init_path(location: &LocationOptions, cwd: &Path) -> Result<PathBuf, ConfigError> {
    validate_path_text(&location.default_db_name, "Database filename")?;
    Ok(cwd.join(&location.default_db_name))
}

/// What is at `path` as far as `broker init` is concerned. Only the file's
/// content is examined (its `meta.magic`), not its permissions.
pub fn init_state(path: &Path) -> InitState {
    if !path.exists() {
        InitState::Absent
    } else if super::is_broker_database(path) {
        InitState::BrokerDatabase
    } else {
        InitState::Foreign
    }
}

/// Prefixes a validation message with `<VAR> validation failed: `, as the reference does.
pub(crate) fn wrap_error(var: &str, err: ConfigError) -> ConfigError {
    ConfigError::InvalidPath(format!("{var} validation failed: {err}"))
}

/// Checks `BROKER_DEFAULT_DB_NAME`: safe characters, relative, one directory level at most.
pub(crate) fn validate_default_db_name(name: &str) -> Result<(), ConfigError> {
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
    settings: &LocationOptions,
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
        return absolute_file(Path::new(name), dir.as_deref(), cwd).map(|f| follow_dangling(&f));
    }
    if settings.project_scope && dir.is_none() && req.file.is_none() {
        return find_project_database(name, cwd);
    }
    let db = base.join(name);
    check_containment(&db, &base, cwd)?;
    Ok(follow_dangling_in(&db, cwd))
}

/// A symbolic link to a file that does not exist yet stands for that file,
/// as in the reference (SQLite follows the link and creates the target):
/// the link's resolved target is returned so it can be created (the link
/// itself cannot be opened with `O_EXCL`). Anything else is returned as is.
fn follow_dangling(db: &Path) -> PathBuf {
    let is_link = fs::symlink_metadata(db).is_ok_and(|m| m.file_type().is_symlink());
    if is_link && fs::metadata(db).is_err() {
        resolve_lenient(db)
    } else {
        db.to_path_buf()
    }
}

/// [`follow_dangling`] for a path relative to `cwd`; keeps it as given
/// unless it is a dangling link.
fn follow_dangling_in(db: &Path, cwd: &Path) -> PathBuf {
    let full = cwd.join(db);
    match follow_dangling(&full) {
        followed if followed != full => followed,
        _ => db.to_path_buf(),
    }
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
fn working_dir(dir: Option<&Path>, settings: &LocationOptions, cwd: &Path) -> PathBuf {
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
    is_file && read_write_ok(parent) && read_write_ok(path) && super::is_broker_database(path)
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
    use std::os::unix::fs::symlink;
    use tempfile::TempDir;

    fn scoped(name: &str) -> LocationOptions {
        LocationOptions {
            project_scope: true,
            default_db_name: name.to_string(),
            ..LocationOptions::default()
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
        let p = resolve_db_path(&req(None, None), &LocationOptions::default(), &cwd).unwrap();
        assert_eq!(p, cwd.join(".broker.db"));
    }

    #[test]
    fn custom_default_name_and_relative_file() {
        let dir = tmp();
        let cwd = real(&dir);
        let s = LocationOptions {
            default_db_name: "q.db".into(),
            ..LocationOptions::default()
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
        let s = LocationOptions {
            default_db_name: ".cfg/broker.db".into(),
            ..LocationOptions::default()
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
        let p =
            resolve_db_path(&req(Some("work"), None), &LocationOptions::default(), &cwd).unwrap();
        assert_eq!(p, PathBuf::from("work/.broker.db"));
        let p = resolve_db_path(
            &req(Some("./work/"), Some("x.db")),
            &LocationOptions::default(),
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
            &LocationOptions::default(),
            &cwd,
        )
        .unwrap();
        assert_eq!(p, other.join("x.db"));
    }

    #[test]
    fn missing_or_file_dir_is_an_error() {
        let dir = tmp();
        let cwd = real(&dir);
        let err = resolve_db_path(
            &req(Some("missing"), None),
            &LocationOptions::default(),
            &cwd,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "Directory not found: missing");
        fs::write(cwd.join("afile"), b"x").unwrap();
        let err = resolve_db_path(&req(Some("afile"), None), &LocationOptions::default(), &cwd)
            .unwrap_err();
        assert_eq!(err.to_string(), "Path is a file, not a directory: afile");
    }

    #[test]
    fn dir_argument_validation() {
        let dir = tmp();
        let cwd = real(&dir);
        for bad in [".", "", "a;b", "../x", "x/../y", " lead"] {
            let err = resolve_db_path(&req(Some(bad), None), &LocationOptions::default(), &cwd)
                .unwrap_err();
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
            let err = resolve_db_path(&req(None, Some(bad)), &LocationOptions::default(), &cwd)
                .unwrap_err();
            let msg = invalid_path_msg(err);
            assert!(msg.starts_with("Database filename "), "{bad:?}: {msg}");
        }
    }

    #[test]
    fn empty_default_name_is_refused_at_resolution() {
        let dir = tmp();
        let s = LocationOptions {
            default_db_name: String::new(),
            ..LocationOptions::default()
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
        let s = LocationOptions {
            default_db_location: Some(loc.clone()),
            ..LocationOptions::default()
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
            resolve_db_path(&req(None, Some(f)), &LocationOptions::default(), &cwd).unwrap(),
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
            &LocationOptions::default(),
            &root,
        )
        .unwrap();
        assert_eq!(p, target);
        let p = resolve_db_path(
            &req(Some("d"), target.to_str()),
            &LocationOptions::default(),
            &root,
        )
        .unwrap();
        assert_eq!(p, target, "a relative -d is resolved against cwd");
        symlink(&d, root.join("link")).unwrap();
        let p = resolve_db_path(
            &req(Some("link"), target.to_str()),
            &LocationOptions::default(),
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
            &LocationOptions::default(),
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
            &LocationOptions::default(),
            &root,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::InconsistentPaths { .. } | ConfigError::DirNotFound(_)
        ));
        let s = LocationOptions {
            default_db_location: Some(root.join("gone")),
            ..LocationOptions::default()
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
            &LocationOptions::default(),
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
            &LocationOptions::default(),
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
            &LocationOptions::default(),
            &root,
        )
        .unwrap();
        assert_eq!(p, PathBuf::from("work/inlink/x.db"));
    }

    #[test]
    fn init_ignores_dir_file_location_and_scope() {
        let dir = tmp();
        let cwd = mkdirs(&real(&dir), "cwd");
        let s = LocationOptions {
            default_db_location: Some(real(&dir).join("gone")),
            default_db_name: "proj.db".into(),
            project_scope: true,
        };
        let r = PathRequest {
            dir: Some("nowhere".into()),
            file: Some("/abs/x.db".into()),
            command_is_init: true,
        };
        assert_eq!(resolve_db_path(&r, &s, &cwd).unwrap(), cwd.join("proj.db"));
        let s = LocationOptions {
            default_db_name: ".cfg/broker.db".into(),
            ..s
        };
        assert_eq!(
            resolve_db_path(&r, &s, &cwd).unwrap(),
            cwd.join(".cfg/broker.db")
        );
    }

    #[test]
    fn dangling_symlink_stands_for_its_target_inside_the_directory() {
        let dir = tmp();
        let cwd = real(&dir);
        fs::create_dir(cwd.join("sub")).unwrap();
        symlink("target.db", cwd.join("link.db")).unwrap();
        symlink("sub/t.db", cwd.join("link2.db")).unwrap();
        let opts = LocationOptions::default();
        let p = resolve_db_path(&req(None, Some("link.db")), &opts, &cwd).unwrap();
        assert_eq!(p, cwd.join("target.db"));
        let p = resolve_db_path(&req(None, Some("link2.db")), &opts, &cwd).unwrap();
        assert_eq!(p, cwd.join("sub/t.db"));
        let abs = cwd.join("link.db");
        let p = resolve_db_path(&req(None, abs.to_str()), &opts, &cwd).unwrap();
        assert_eq!(p, cwd.join("target.db"));
        // A link to an existing file is left alone (SQLite opens through it).
        fs::write(cwd.join("target.db"), b"").unwrap();
        let p = resolve_db_path(&req(None, Some("link.db")), &opts, &cwd).unwrap();
        assert_eq!(p, cwd.join("link.db"));
        // Outside the directory: still refused.
        symlink("/nonexistent-dir-7f3a/x.db", cwd.join("out.db")).unwrap();
        let err = resolve_db_path(&req(None, Some("out.db")), &opts, &cwd).unwrap_err();
        assert!(matches!(err, ConfigError::OutsideWorkingDir), "{err:?}");
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
        let s = LocationOptions {
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
        let s = LocationOptions {
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

    #[test]
    fn missing_absolute_location_is_an_error_when_used() {
        let dir = tmp();
        let missing = real(&dir).join("nope");
        let value = missing.to_str().unwrap().to_owned();
        let s = crate::config::Settings::from_lookup(|k| {
            (k == "BROKER_DEFAULT_DB_LOCATION").then(|| value.clone())
        })
        .unwrap();
        assert_eq!(
            s.location.default_db_location.as_deref(),
            Some(missing.as_path())
        );
        let err = resolve_db_path(&req(None, None), &s.location, &real(&dir)).unwrap_err();
        assert!(
            matches!(&err, ConfigError::DirNotFound(p) if p == &missing),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("Directory not found: {}", missing.display())
        );
    }
}
