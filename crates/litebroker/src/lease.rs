//! SQS-style delivery: leases with visibility timeouts, single-use fenced
//! receipts, receive counts, dead-letter queues.
//!
//! A leased message stays in its queue, invisible to every reader (the Python
//! reference included), until it is acknowledged (gone), nacked (visible again,
//! now or after a delay) or its lease expires (visible again in its original
//! FIFO position, receive count raised). Expiry needs no daemon: the next
//! litebroker reader of the database returns expired messages lazily.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The visibility timeout of a queue that has none configured (as SQS).
pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);

/// Proof of one delivery of one message: needed to ack, nack or extend it.
///
/// It names the message id, the delivery's receive count and a random nonce.
/// Every delivery raises the receive count, so a receipt from an earlier
/// delivery can never act on a later one (fencing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// The message id.
    pub id: i64,
    /// Which delivery of the message this is (1 for the first).
    pub receives: u32,
    /// Random per delivery, so receipts cannot be guessed from ids.
    pub nonce: u64,
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{:016x}", self.id, self.receives, self.nonce)
    }
}

impl FromStr for Receipt {
    type Err = ReceiptError;

    fn from_str(s: &str) -> Result<Self, ReceiptError> {
        let malformed = || ReceiptError::Malformed(s.chars().take(80).collect());
        let mut parts = s.split('.');
        let (Some(id), Some(receives), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(id) || !digits(receives) || nonce.len() != 16 {
            return Err(malformed());
        }
        Ok(Receipt {
            id: id.parse().map_err(|_| malformed())?,
            receives: receives.parse().map_err(|_| malformed())?,
            nonce: u64::from_str_radix(nonce, 16).map_err(|_| malformed())?,
        })
    }
}

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not a receipt at all.
    #[error("Invalid receipt '{0}' (expected the receipt printed by read --lease --json)")]
    Malformed(String),
    /// No leased message with that id in that queue: already acknowledged,
    /// deleted, or another queue's receipt.
    #[error("Unknown receipt {receipt} for queue '{queue}': no such leased message (already acknowledged or deleted?)")]
    Unknown {
        /// The receipt as given.
        receipt: String,
        /// The queue it was presented to.
        queue: String,
    },
    /// The message exists but this receipt is no longer its lease: the lease
    /// expired and the message went back to the queue (and may have been
    /// delivered again), or it was already nacked.
    #[error("Stale receipt {0}: this lease has ended (it expired or was nacked), so the message is no longer held by it; it may be waiting in the queue or leased to another reader again")]
    Stale(String),
}

/// A queue's delivery settings, persisted in the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueConfig {
    /// Lease length when a reader asks for a lease without naming one.
    pub visibility: Option<Duration>,
    /// Deliveries after which a message that is still not acknowledged goes
    /// to the dead-letter queue.
    pub max_receives: Option<u32>,
    /// Where such messages go.
    pub dead_letter: Option<String>,
}

impl QueueConfig {
    /// The visibility timeout in force.
    pub fn effective_visibility(&self) -> Duration {
        self.visibility.unwrap_or(DEFAULT_VISIBILITY)
    }

    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        *self == QueueConfig::default()
    }
}

/// Why a message was moved to a dead-letter queue, recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The queue it came from (where `redrive` returns it).
    pub source: String,
    /// What happened, e.g. `lease expired after 5 receives (max 5)`.
    pub reason: String,
}

/// What a nack did with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NackOutcome {
    /// Visible again now, in its original position.
    Requeued,
    /// Visible again at this time (Unix ns).
    Delayed(i64),
    /// It had reached the queue's maximum receives: moved to this queue.
    DeadLettered(String),
}

/// One receipt's outcome in a batch acknowledgement: a refused receipt is
/// its own answer (`Ok(Err(..))`) and does not stop the others; any other
/// error ends the batch.
pub fn per_receipt(result: crate::Result<()>) -> crate::Result<Result<(), ReceiptError>> {
    match result {
        Err(crate::Error::Receipt(e)) => Ok(Err(e)),
        other => other.map(Ok),
    }
}

/// A fresh random nonce for a receipt.
pub fn random_nonce() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: the buffer is valid for 8 bytes; getrandom writes at most that many.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == 8 {
        return u64::from_le_bytes(buf);
    }
    // No getrandom: still unique enough per delivery (fencing relies on the receive count).
    let t = crate::id::now_ns() as u64;
    t.rotate_left(17) ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_round_trips() {
        let r = Receipt {
            id: 1_837_025_672_140_161_024,
            receives: 3,
            nonce: 0xdead_beef,
        };
        let text = r.to_string();
        assert_eq!(text, "1837025672140161024.3.00000000deadbeef");
        assert_eq!(text.parse::<Receipt>().unwrap(), r);
    }

    #[test]
    fn malformed_receipts() {
        for bad in [
            "",
            "abc",
            "1.2",
            "1.2.3",
            "1.2.00000000deadbeef.9",
            "x.1.00000000deadbeef",
            "1.-1.00000000deadbeef",
            "1.1.zzzzzzzzzzzzzzzz",
            "99999999999999999999.1.00000000deadbeef",
        ] {
            assert!(bad.parse::<Receipt>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(random_nonce(), random_nonce());
    }

    #[test]
    fn default_visibility() {
        let c = QueueConfig::default();
        assert!(c.is_empty());
        assert_eq!(c.effective_visibility(), Duration::from_secs(30));
    }
}
