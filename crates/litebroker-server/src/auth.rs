//! API keys and permissions.
//!
//! Keys come from a file in the PyQueue server's format:
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
use serde::Deserialize;
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

/// One key: its secret, what it is for, and its grants.
#[derive(Debug)]
pub struct Key {
    secret: Vec<u8>,
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
                secret: secret.into_bytes(),
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
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.secret.as_slice().ct_eq(presented)) {
                found = Some(key.clone());
            }
        }
        found
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
        let Some(keys) = &state.keys else {
            return Ok(Caller::Anyone);
        };
        let Some(value) = parts.headers.get(KEY_HEADER) else {
            return Err(ApiError::unauthorized("missing API key (X-API-Key header)"));
        };
        keys.find(value.as_bytes())
            .map(Caller::Key)
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))
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
