//! API keys and permissions.
//!
//! Keys live in the database (`broker keys create`, or `POST /v1/keys`),
//! stored as a SHA-256 hash of the secret, and/or come from a file in the
//! PyQueue server's format:
//! `{"<key>": {"description": "...", "queues": {"<name or glob>": ["read", ...]}}}`.
//! Permissions are `read`, `write`, `delete` and `manage`, in any case;
//! queue patterns are globs (`*`, `orders.*`, `job-?`). Every grant whose
//! pattern matches the queue counts (unlike the original, where a `*` entry
//! hid the others). Keys are compared in constant time, and every
//! configured key is compared on every request.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use litebroker::backend::StoredKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::AppState;

/// The header that carries the key.
pub const KEY_HEADER: &str = "x-api-key";

/// What a key may do on a queue (or topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Perm {
    /// Look at messages, receive, lease, read, queue info.
    Read,
    /// Send, publish, update.
    Write,
    /// Delete messages (by receipt, by id, after receive; ack).
    Delete,
    /// Clear queues, configure, manage subscriptions.
    Manage,
}

impl Perm {
    /// Every permission.
    pub const ALL: [Perm; 4] = [Perm::Read, Perm::Write, Perm::Delete, Perm::Manage];

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::Write => "write",
            Perm::Delete => "delete",
            Perm::Manage => "manage",
        }
    }

    /// Parses a permission name, in any case.
    pub fn parse(text: &str) -> Option<Perm> {
        Perm::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text.trim()))
    }
}

/// How a key's secret is known: as given in a keys file, or as the hash
/// stored in the database.
#[derive(Debug)]
enum Secret {
    Plain(Vec<u8>),
    Sha256([u8; 32]),
}

/// One key: its secret, what it is for, and its grants.
#[derive(Debug)]
pub struct Key {
    secret: Secret,
    /// The key's description (shown to its holder, never the secret).
    pub description: String,
    /// Queue pattern → permissions, as configured.
    pub grants: Vec<(String, Vec<Perm>)>,
}

impl Key {
    /// Whether this key has `perm` on `queue`.
    pub fn allows(&self, queue: &str, perm: Perm) -> bool {
        self.grants.iter().any(|(pattern, perms)| {
            perms.contains(&perm) && litebroker::glob::matches(pattern, queue)
        })
    }
}

/// The configured keys.
#[derive(Debug, Default)]
pub struct Keys {
    keys: Vec<Arc<Key>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    #[serde(default)]
    description: String,
    queues: BTreeMap<String, Vec<String>>,
}

impl Keys {
    /// Parses a keys file in the PyQueue server's format; refuses unknown
    /// permissions, empty keys and malformed JSON with a message that never
    /// contains a key.
    pub fn from_pyqueue_json(text: &str) -> Result<Keys, String> {
        let entries: BTreeMap<String, FileEntry> =
            serde_json::from_str(text).map_err(|e| format!("not a keys file ({e})"))?;
        let mut keys = Vec::new();
        for (n, (secret, entry)) in entries.into_iter().enumerate() {
            let which = if entry.description.is_empty() {
                format!("key #{}", n + 1)
            } else {
                format!("key '{}'", entry.description)
            };
            if secret.is_empty() {
                return Err(format!("{which}: a key cannot be empty"));
            }
            let mut grants = Vec::new();
            for (pattern, names) in entry.queues {
                let mut perms = Vec::new();
                for name in names {
                    let perm = Perm::parse(&name).ok_or_else(|| {
                        format!(
                            "{which}: unknown permission '{name}' for '{pattern}' \
                             (expected read, write, delete or manage)"
                        )
                    })?;
                    perms.push(perm);
                }
                grants.push((pattern, perms));
            }
            keys.push(Arc::new(Key {
                secret: Secret::Plain(secret.into_bytes()),
                description: entry.description,
                grants,
            }));
        }
        Ok(Keys { keys })
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key whose secret is `presented`: every key is compared, each in
    /// constant time, so the time taken does not tell which prefix matched.
    pub fn find(&self, presented: &[u8]) -> Option<Arc<Key>> {
        find_in(&self.keys, presented)
    }

    /// Keys as stored in the database (a stored key whose grants no longer
    /// parse is left out, and said in the log).
    pub fn from_stored(stored: &[StoredKey]) -> Keys {
        let mut keys = Vec::new();
        for k in stored {
            let Some(hash) = parse_hash(&k.secret_hash) else {
                tracing::warn!(key = %k.name, "stored API key has a malformed hash; ignored");
                continue;
            };
            let specs: Vec<&str> = k.grants.lines().collect();
            match parse_grants(&specs) {
                Ok(grants) => keys.push(Arc::new(Key {
                    secret: Secret::Sha256(hash),
                    description: k.name.clone(),
                    grants,
                })),
                Err(e) => tracing::warn!(key = %k.name, "stored API key ignored: {e}"),
            }
        }
        Keys { keys }
    }
}

fn find_in(keys: &[Arc<Key>], presented: &[u8]) -> Option<Arc<Key>> {
    let hashed: [u8; 32] = Sha256::digest(presented).into();
    let mut found = None;
    for key in keys {
        let same = match &key.secret {
            Secret::Plain(secret) => secret.as_slice().ct_eq(presented),
            Secret::Sha256(hash) => hash.ct_eq(&hashed),
        };
        if bool::from(same) {
            found = Some(key.clone());
        }
    }
    found
}

/// The hash stored for `secret`: SHA-256, hex. (Secrets are 256 random
/// bits, so a fast hash is as good as a slow one here.)
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A new secret: `lbk_` and 256 random bits in hex.
pub fn new_secret() -> String {
    let mut s = String::from("lbk_");
    for _ in 0..4 {
        s.push_str(&format!("{:016x}", litebroker::lease::random_nonce()));
    }
    s
}

/// Parses grants written `PATTERN=PERM,PERM` (`orders.*=read,write`).
pub fn parse_grants<S: AsRef<str>>(specs: &[S]) -> Result<Vec<(String, Vec<Perm>)>, String> {
    let mut grants = Vec::new();
    for spec in specs {
        let spec = spec.as_ref();
        let Some((pattern, perms)) = spec.split_once('=') else {
            return Err(format!(
                "'{spec}': expected PATTERN=PERMISSION[,PERMISSION...]"
            ));
        };
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err(format!("'{spec}': the queue pattern is empty"));
        }
        let mut list = Vec::new();
        for name in perms.split(',') {
            let perm = Perm::parse(name).ok_or_else(|| {
                format!(
                    "'{spec}': unknown permission '{}' (expected read, write, delete or manage)",
                    name.trim()
                )
            })?;
            if !list.contains(&perm) {
                list.push(perm);
            }
        }
        grants.push((pattern.to_owned(), list));
    }
    if grants.is_empty() {
        return Err("a key needs at least one grant (PATTERN=PERMISSIONS)".into());
    }
    Ok(grants)
}

/// Grants as stored and shown: one `PATTERN=PERM,PERM` per line.
pub fn grants_text(grants: &[(String, Vec<Perm>)]) -> String {
    grants
        .iter()
        .map(|(pattern, perms)| {
            let names: Vec<&str> = perms.iter().map(|p| p.name()).collect();
            format!("{pattern}={}", names.join(","))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The keys stored in the database, re-read at most once a second so that
/// a key created or revoked by the CLI counts within a second.
pub struct StoredKeys {
    cache: tokio::sync::Mutex<(Option<std::time::Instant>, Arc<Keys>)>,
}

/// How long stored keys are cached.
const STORED_KEYS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl Default for StoredKeys {
    fn default() -> Self {
        StoredKeys {
            cache: tokio::sync::Mutex::new((None, Arc::new(Keys::default()))),
        }
    }
}

impl StoredKeys {
    /// The stored keys, fresh within a second.
    pub async fn current(&self, pool: &Arc<crate::pool::Pool>) -> Result<Arc<Keys>, ApiError> {
        let mut cache = self.cache.lock().await;
        if cache.0.is_some_and(|at| at.elapsed() < STORED_KEYS_TTL) {
            return Ok(cache.1.clone());
        }
        let stored = pool.run(|b| Ok(b.api_keys()?)).await?;
        *cache = (
            Some(std::time::Instant::now()),
            Arc::new(Keys::from_stored(&stored)),
        );
        Ok(cache.1.clone())
    }

    /// Forgets the cache (after a change through this server).
    pub async fn invalidate(&self) {
        self.cache.lock().await.0 = None;
    }
}

/// Who is calling: anyone (no keys configured) or the holder of a key.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Authentication is off (`--insecure-no-auth`, or loopback with no keys).
    Anyone,
    /// A known key.
    Key(Arc<Key>),
}

impl Caller {
    /// Refuses (403) unless the caller has `perm` on `queue`.
    pub fn require(&self, queue: &str, perm: Perm) -> Result<(), ApiError> {
        match self {
            Caller::Anyone => Ok(()),
            Caller::Key(key) if key.allows(queue, perm) => Ok(()),
            Caller::Key(_) => Err(ApiError::forbidden(format!(
                "{} permission required for '{queue}'",
                perm.name()
            ))),
        }
    }

    /// Whether the caller has `perm` on `queue`.
    pub fn allows(&self, queue: &str, perm: Perm) -> bool {
        self.require(queue, perm).is_ok()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.keys.is_none() && state.stored_keys.is_none() {
            return Ok(Caller::Anyone);
        }
        let Some(value) = parts.headers.get(KEY_HEADER) else {
            return Err(ApiError::unauthorized("missing API key (X-API-Key header)"));
        };
        let presented = value.as_bytes();
        if let Some(key) = state.keys.as_ref().and_then(|k| k.find(presented)) {
            return Ok(Caller::Key(key));
        }
        if let Some(stored) = &state.stored_keys {
            if let Some(key) = stored.current(&state.pool).await?.find(presented) {
                return Ok(Caller::Key(key));
            }
        }
        Err(ApiError::unauthorized("invalid API key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
        "k-admin": {"description": "admin", "queues": {"*": ["READ", "Write", "delete", "MANAGE"]}},
        "k-orders": {"description": "orders", "queues": {"orders.*": ["read"], "orders.in": ["write"]}}
    }"#;

    #[test]
    fn permissions_are_case_insensitive_and_globbed() {
        let keys = Keys::from_pyqueue_json(FILE).unwrap();
        assert_eq!(keys.len(), 2);
        let admin = keys.find(b"k-admin").unwrap();
        assert!(Perm::ALL.iter().all(|p| admin.allows("anything", *p)));
        let orders = keys.find(b"k-orders").unwrap();
        assert!(orders.allows("orders.in", Perm::Read));
        assert!(orders.allows("orders.in", Perm::Write));
        assert!(!orders.allows("orders.out", Perm::Write));
        assert!(!orders.allows("billing", Perm::Read));
        assert!(keys.find(b"k-order").is_none());
        assert!(keys.find(b"k-orders ").is_none());
        assert!(keys.find(b"").is_none());
    }

    #[test]
    fn stored_keys_match_by_hash() {
        let secret = new_secret();
        assert_eq!(secret.len(), 68);
        let grants = parse_grants(&["orders.*=READ, write", "*=read"]).unwrap();
        let text = grants_text(&grants);
        assert_eq!(text, "orders.*=read,write\n*=read");
        let stored = StoredKey {
            name: "svc".into(),
            secret_hash: hash_secret(&secret),
            grants: text,
            created_ns: 0,
        };
        let keys = Keys::from_stored(&[stored]);
        let key = keys.find(secret.as_bytes()).unwrap();
        assert_eq!(key.description, "svc");
        assert!(key.allows("orders.eu", Perm::Write));
        assert!(!key.allows("billing", Perm::Write));
        assert!(keys.find(hash_secret(&secret).as_bytes()).is_none());
        assert!(keys.find(b"lbk_").is_none());
        assert!(parse_grants(&["orders"]).is_err());
        assert!(parse_grants(&["=read"]).is_err());
        assert!(parse_grants(&["q=read,own"]).is_err());
        assert!(parse_grants::<&str>(&[]).is_err());
    }

    #[test]
    fn bad_files_are_refused_without_showing_keys() {
        let err =
            Keys::from_pyqueue_json(r#"{"sekrit": {"queues": {"q": ["admin"]}}}"#).unwrap_err();
        assert!(err.contains("unknown permission 'admin'"), "{err}");
        assert!(!err.contains("sekrit"), "{err}");
        assert!(Keys::from_pyqueue_json("[1]").is_err());
        assert!(Keys::from_pyqueue_json(r#"{"": {"queues": {}}}"#).is_err());
        assert!(Keys::from_pyqueue_json(r#"{"k": {"queues": {"q": "read"}}}"#).is_err());
    }
}
