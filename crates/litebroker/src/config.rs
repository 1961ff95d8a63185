//! Environment settings (`BROKER_*`) and database path resolution.
//!
//! CONTRACT (to be implemented; see shared/spec/simplebroker-reference.md §9, §10):
//!
//! pub struct Settings { ...every BROKER_* variable with its default... }
//! impl Settings { pub fn from_env() -> Result<Settings, ConfigError>;
//!                 pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> }
//! pub struct PathRequest { pub dir: Option<String>, pub file: Option<String>, pub command_is_init: bool }
//! pub fn resolve_db_path(req: &PathRequest, settings: &Settings, cwd: &Path) -> Result<PathBuf, ConfigError>
