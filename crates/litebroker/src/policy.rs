//! The rules, decided once for every backend: when a delivery goes to the
//! dead-letter queue and the reason recorded, how long a lease lasts, which
//! receipt may act on a message, which retention governs a topic and what
//! it cuts. A backend gathers the facts inside its transaction, asks here,
//! and stores the outcome: it never writes a rule of its own, so SQLite and
//! PostgreSQL cannot drift apart.
//!
//! Everything here is pure: facts in, a decision out, no storage, no clock
//! (the caller passes the database's "now").

use std::time::Duration;

use crate::lease::{QueueConfig, Receipt, ReceiptError};
use crate::pubsub::Retention;

/// Where a delivery goes when it reached its queue's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter queue.
    pub queue: String,
    /// Why, as recorded with the message.
    pub reason: String,
}

/// What becomes of a lease that ended without an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEnd {
    /// Visible again now, in its original position.
    Requeue,
    /// Visible again at this time (Unix ns), in its original position.
    Delay(i64),
    /// Moved to a dead-letter queue.
    DeadLetter(DeadLetter),
}

/// A lease that ran out after `receives` deliveries: dead-lettered if the
/// queue has a limit it reached, otherwise visible again (`None`).
pub fn on_expiry(receives: u32, config: &QueueConfig) -> Option<DeadLetter> {
    limit_reached(receives, config).map(|(max, queue)| DeadLetter {
        queue,
        reason: format!("lease expired after {receives} receives (max {max})"),
    })
}

/// A delivery given back by its consumer after `receives` deliveries,
/// visible again at `until` (`None`: now).
pub fn on_nack(receives: u32, config: &QueueConfig, until: Option<i64>) -> LeaseEnd {
    if let Some((max, queue)) = limit_reached(receives, config) {
        return LeaseEnd::DeadLetter(DeadLetter {
            queue,
            reason: format!("nacked after {receives} receives (max {max})"),
        });
    }
    match until {
        Some(at) => LeaseEnd::Delay(at),
        None => LeaseEnd::Requeue,
    }
}

/// The queue's limit and dead-letter queue, if `receives` reached the limit.
fn limit_reached(receives: u32, config: &QueueConfig) -> Option<(u32, String)> {
    match (config.max_receives, &config.dead_letter) {
        (Some(max), Some(dlq)) if max > 0 && receives >= max => Some((max, dlq.clone())),
        _ => None,
    }
}

/// A consumer's own retry limit (`broker run --max-receives`): before its
/// handler runs, a message already delivered more than `max` times (earlier
/// leases expired) gets no new attempt; after a failure (`failure`: why),
/// one that has had its `max` attempts gives up. Returns the reason to
/// record with the dead letter, or `None` to go on (run it, or retry it).
pub fn consumer_gives_up(receives: u32, max: u32, failure: Option<&str>) -> Option<String> {
    match failure {
        None if receives > max => Some(format!("received {receives} times (max {max})")),
        Some(why) if receives >= max => Some(format!(
            "{why}; gave up after {receives} receives (max {max})"
        )),
        _ => None,
    }
}

/// The delay before retrying a message that failed on its `receives`-th
/// delivery: `first`, doubled with every receive, at most `longest`.
pub fn backoff(first: Duration, receives: u32, longest: Duration) -> Duration {
    let doublings = receives.saturating_sub(1).min(30);
    first.saturating_mul(1 << doublings).min(longest)
}

/// When a lease taken `now` (Unix ns) for `visibility` (`None`: the queue's
/// visibility timeout) runs out.
pub fn lease_deadline(now: i64, visibility: Option<Duration>, config: &QueueConfig) -> i64 {
    crate::clock::after(
        now,
        visibility.unwrap_or_else(|| config.effective_visibility()),
    )
}

/// What the database says about the message a receipt names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFacts {
    /// The queue the message is in now.
    pub queue: String,
    /// Whether it is consumed (acknowledged or read).
    pub consumed: bool,
    /// Whether it is leased or delayed (not visible, not consumed).
    pub deferred: bool,
    /// Its receive count, if it was ever leased.
    pub receives: Option<u32>,
    /// The nonce of its current lease, if it is leased.
    pub nonce: Option<u64>,
}

/// Receipt fencing: whether `receipt`, presented to `queue`, names the
/// current lease of the message described by `facts` (`None`: no such
/// message). A receipt acts on exactly one delivery: once that lease ended
/// (acked, nacked, expired and delivered again) it is refused for good.
pub fn fence(
    receipt: &Receipt,
    queue: &str,
    facts: Option<&LeaseFacts>,
) -> Result<(), ReceiptError> {
    let Some(facts) = facts.filter(|f| f.queue == queue && !f.consumed) else {
        return Err(ReceiptError::Unknown {
            receipt: receipt.to_string(),
            queue: queue.to_owned(),
        });
    };
    let current = facts.deferred
        && facts.receives == Some(receipt.receives)
        && facts.nonce == Some(receipt.nonce);
    if current {
        Ok(())
    } else {
        Err(ReceiptError::Stale(receipt.to_string()))
    }
}

/// The retention of `topic` among the stored settings: its own setting if
/// it has one, otherwise the tightest of the patterns that match it;
/// unbounded if none.
pub fn retention_for<'a>(
    topic: &str,
    settings: impl IntoIterator<Item = (&'a str, Retention)>,
) -> Retention {
    let mut exact = None;
    let mut tightest: Option<Retention> = None;
    for (pattern, retention) in settings {
        if pattern == topic {
            exact = Some(retention);
        } else if crate::topic::matches(pattern, topic) {
            tightest = Some(tightest.map_or(retention, |t| t.tightest(retention)));
        }
    }
    exact.or(tightest).unwrap_or_default()
}

/// What a retention cuts from a topic's log, as a backend applies it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cut {
    /// Drop entries with an offset below this.
    pub below_offset: Option<i64>,
    /// Drop entries published (id, Unix ns) before this.
    pub before_id: Option<i64>,
}

/// The cut `retention` makes in a log whose next offset is `next_offset`,
/// at `now` (Unix ns, the database's clock).
pub fn retention_cut(retention: &Retention, next_offset: i64, now: i64) -> Cut {
    Cut {
        below_offset: retention
            .max_count
            .map(|count| next_offset.saturating_sub(i64::try_from(count).unwrap_or(i64::MAX))),
        before_id: retention
            .max_age
            .map(|age| now.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(max: u32) -> QueueConfig {
        QueueConfig {
            visibility: None,
            max_receives: Some(max),
            dead_letter: Some("dlq".into()),
        }
    }

    #[test]
    fn expiry_dead_letters_only_at_the_limit() {
        assert_eq!(on_expiry(2, &limited(3)), None);
        let d = on_expiry(3, &limited(3)).unwrap();
        assert_eq!(d.queue, "dlq");
        assert_eq!(d.reason, "lease expired after 3 receives (max 3)");
        assert_eq!(on_expiry(9, &QueueConfig::default()), None);
    }

    #[test]
    fn nack_requeues_delays_or_dead_letters() {
        assert_eq!(on_nack(1, &limited(3), None), LeaseEnd::Requeue);
        assert_eq!(on_nack(1, &limited(3), Some(7)), LeaseEnd::Delay(7));
        assert_eq!(
            on_nack(3, &limited(3), Some(7)),
            LeaseEnd::DeadLetter(DeadLetter {
                queue: "dlq".into(),
                reason: "nacked after 3 receives (max 3)".into()
            })
        );
    }

    #[test]
    fn consumer_limit() {
        assert_eq!(consumer_gives_up(3, 3, None), None);
        assert_eq!(
            consumer_gives_up(4, 3, None).as_deref(),
            Some("received 4 times (max 3)")
        );
        assert_eq!(consumer_gives_up(2, 3, Some("exit 1")), None);
        assert_eq!(
            consumer_gives_up(3, 3, Some("exit 1")).as_deref(),
            Some("exit 1; gave up after 3 receives (max 3)")
        );
    }

    #[test]
    fn lease_deadline_uses_the_queue_default() {
        let c = QueueConfig::default();
        let d = lease_deadline(1_000, None, &c);
        assert_eq!(d, 1_000 + c.effective_visibility().as_nanos() as i64);
        assert_eq!(
            lease_deadline(i64::MAX - 1, Some(Duration::from_secs(1)), &c),
            i64::MAX
        );
    }

    #[test]
    fn fencing() {
        let r = Receipt {
            id: 5,
            receives: 2,
            nonce: 9,
        };
        let live = LeaseFacts {
            queue: "q".into(),
            consumed: false,
            deferred: true,
            receives: Some(2),
            nonce: Some(9),
        };
        assert!(fence(&r, "q", Some(&live)).is_ok());
        assert!(matches!(
            fence(&r, "other", Some(&live)),
            Err(ReceiptError::Unknown { .. })
        ));
        assert!(matches!(
            fence(&r, "q", None),
            Err(ReceiptError::Unknown { .. })
        ));
        let consumed = LeaseFacts {
            consumed: true,
            ..live.clone()
        };
        assert!(matches!(
            fence(&r, "q", Some(&consumed)),
            Err(ReceiptError::Unknown { .. })
        ));
        let redelivered = LeaseFacts {
            receives: Some(3),
            ..live.clone()
        };
        assert!(matches!(
            fence(&r, "q", Some(&redelivered)),
            Err(ReceiptError::Stale(_))
        ));
        let visible = LeaseFacts {
            deferred: false,
            ..live
        };
        assert!(matches!(
            fence(&r, "q", Some(&visible)),
            Err(ReceiptError::Stale(_))
        ));
    }

    #[test]
    fn retention_own_setting_wins_then_tightest_pattern() {
        let count = |n| Retention {
            max_count: Some(n),
            max_age: None,
        };
        let settings = [
            ("logs.+", count(10)),
            ("logs.=", count(5)),
            ("logs.api", count(50)),
        ];
        assert_eq!(retention_for("logs.api", settings), count(50));
        assert_eq!(retention_for("logs.web", settings), count(5));
        assert_eq!(retention_for("other", settings), Retention::default());
    }

    #[test]
    fn cuts() {
        let r = Retention {
            max_count: Some(3),
            max_age: Some(Duration::from_nanos(100)),
        };
        assert_eq!(
            retention_cut(&r, 10, 1_000),
            Cut {
                below_offset: Some(7),
                before_id: Some(900)
            }
        );
        assert_eq!(
            retention_cut(&Retention::default(), 10, 1_000),
            Cut::default()
        );
    }
}
