//! Who is connected to which subscription or queue through this process:
//! the servers (HTTP event streams, TCP subscribers) register each
//! connected member here, and the dashboard reads the counts. It is
//! in-memory and per process: members connected to another server on the
//! same database are not counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How a member is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A Server-Sent Events stream of `broker serve`'s HTTP API.
    Http,
    /// A subscriber of the TCP protocol (`broker serve --tcp`).
    Tcp,
}

/// Members connected to one name, by transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connected {
    /// Over HTTP (event streams).
    pub http: u32,
    /// Over the TCP protocol.
    pub tcp: u32,
}

impl Connected {
    fn slot(&mut self, transport: Transport) -> &mut u32 {
        match transport {
            Transport::Http => &mut self.http,
            Transport::Tcp => &mut self.tcp,
        }
    }
}

/// The registry; clones share it.
#[derive(Clone, Default)]
pub struct Presence {
    members: Arc<Mutex<HashMap<String, Connected>>>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence").finish_non_exhaustive()
    }
}

impl Presence {
    /// A new, empty registry.
    pub fn new() -> Presence {
        Presence::default()
    }

    /// Counts one member of `name` over `transport` until the returned
    /// [`Attendance`] is dropped.
    pub fn join(&self, name: &str, transport: Transport) -> Attendance {
        let mut members = self.lock();
        *members.entry(name.to_owned()).or_default().slot(transport) += 1;
        Attendance {
            presence: self.clone(),
            name: name.to_owned(),
            transport,
        }
    }

    /// The members connected now, by name (names with none are absent).
    pub fn connected(&self) -> HashMap<String, Connected> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Connected>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One connected member; it stops counting when dropped.
#[derive(Debug)]
pub struct Attendance {
    presence: Presence,
    name: String,
    transport: Transport,
}

impl Drop for Attendance {
    fn drop(&mut self) {
        let mut members = self.presence.lock();
        if let Some(c) = members.get_mut(&self.name) {
            let slot = c.slot(self.transport);
            *slot = slot.saturating_sub(1);
            if *c == Connected::default() {
                members.remove(&self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_count_while_attending_and_vanish_after() {
        let p = Presence::new();
        let a = p.join("jobs", Transport::Http);
        let b = p.join("jobs", Transport::Tcp);
        let c = p.join("jobs", Transport::Tcp);
        let d = p.clone().join("other", Transport::Http);
        assert_eq!(p.connected()["jobs"], Connected { http: 1, tcp: 2 });
        assert_eq!(p.connected()["other"], Connected { http: 1, tcp: 0 });
        drop((a, c));
        assert_eq!(p.connected()["jobs"], Connected { http: 0, tcp: 1 });
        drop((b, d));
        assert!(p.connected().is_empty(), "no entry is left behind");
    }
}
