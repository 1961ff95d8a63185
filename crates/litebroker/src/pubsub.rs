//! Publish/subscribe on the same database and the same message model.
//!
//! A topic keeps a log of what was published to it (offsets per topic,
//! gap-free, bounded by an optional retention). A subscription is a durable
//! queue fed by a topic pattern: `publish` stores the message in the topic's
//! log and puts one copy into every subscription whose pattern matches, in one
//! transaction. Because a subscription *is* a queue, every consumer tool
//! (read, peek, watch, leases, `run`) works on it unchanged; several
//! consumers on one subscription form a consumer group (each message goes to
//! one of them), and several subscriptions on one topic each get every message.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::Connector;
use crate::duration::parse_duration;
use crate::error::{Error, Result, SubscriptionError};
use crate::headers::{HeaderValue, Headers};
use crate::message::{Message, Outgoing};
use crate::watch::{HandlerSink, Mode, StopHandle, WatchError, Watcher};
use crate::Broker;

/// Where a message came from when it was delivered through a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The topic it was published to.
    pub topic: String,
    /// Its offset in that topic's log.
    pub offset: i64,
}

/// What one `publish` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The id of the message in the topic log.
    pub id: i64,
    /// Its offset in the topic.
    pub offset: i64,
    /// How many subscriptions received a copy.
    pub delivered: usize,
}

/// Where a new subscription starts reading the topic log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Only messages published from now on (the default).
    Latest,
    /// Everything the log still retains.
    Earliest,
    /// Every retained message at or after this offset, in each matching topic.
    Offset(i64),
    /// Every retained message published after this time bound (an id).
    After(i64),
}

impl StartFrom {
    /// Which retained log entries a new subscription copies: those at or
    /// after this offset and after this id (`None`: nothing, it starts at
    /// the next publish). Every backend's replay asks here.
    pub fn replay_bounds(self) -> Option<(i64, i64)> {
        match self {
            StartFrom::Latest => None,
            StartFrom::Earliest => Some((i64::MIN, i64::MIN)),
            StartFrom::Offset(o) => Some((o, i64::MIN)),
            StartFrom::After(bound) => Some((i64::MIN, bound)),
        }
    }

    /// `earliest`, `latest`, a plain offset (`42`), or a time bound in any
    /// `--since` format that is not a plain small number (`2024-01-15`,
    /// `1705329000s`, a 19-digit id).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        match t {
            "earliest" => return Ok(StartFrom::Earliest),
            "latest" => return Ok(StartFrom::Latest),
            _ => {}
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = t.parse::<i64>() {
                if n < 1 << 44 {
                    return Ok(StartFrom::Offset(n));
                }
            }
        }
        Ok(StartFrom::After(crate::timebound::parse_time_bound(t)?))
    }
}

/// How much of a topic's log is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many messages.
    pub max_count: Option<u64>,
    /// Keep messages younger than this.
    pub max_age: Option<Duration>,
}

impl Retention {
    /// A count (`1000`) or a duration (`7d`, `12h`).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            let n = t
                .parse()
                .map_err(|_| Error::InvalidRequest(format!("retention count too large: {t}")))?;
            return Ok(Retention {
                max_count: Some(n),
                max_age: None,
            });
        }
        Ok(Retention {
            max_count: None,
            max_age: Some(parse_duration(t)?),
        })
    }

    /// Whether the log is kept whole.
    pub fn is_unbounded(&self) -> bool {
        self.max_count.is_none() && self.max_age.is_none()
    }

    /// The stricter of two retentions, bound by bound.
    pub fn tightest(self, other: Retention) -> Retention {
        fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Retention {
            max_count: min(self.max_count, other.max_count),
            max_age: min(self.max_age, other.max_age),
        }
    }
}

/// A subscription to create.
#[derive(Debug, Clone)]
pub struct NewSubscription<'a> {
    /// Its name, which is also the name of its queue.
    pub name: &'a str,
    /// The topic pattern it follows.
    pub pattern: &'a str,
    /// Where it starts in the topic log.
    pub from: StartFrom,
    /// For a listener's private subscription: removed when its owner process
    /// has died, or when nobody touched it for this long.
    pub ephemeral: Option<Duration>,
}

/// A subscription as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// Name (and queue name).
    pub name: String,
    /// Topic pattern.
    pub pattern: String,
    /// Whether it belongs to a listener and goes away with it.
    pub ephemeral: bool,
    /// Messages waiting to be read.
    pub depth: u64,
    /// Per topic, the offset of the oldest message not yet read (consumers'
    /// position); topics with nothing pending are caught up and not listed.
    pub next_offsets: Vec<(String, i64)>,
}

/// A topic as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub topic: String,
    /// Messages still in its log.
    pub retained: u64,
    /// The oldest retained offset, if any.
    pub first_offset: Option<i64>,
    /// The offset the next publish gets (= how many were ever published).
    pub next_offset: i64,
    /// The retention in force.
    pub retention: Retention,
}

/// The header carrying the topic a reply must be published to.
pub const REPLY_TO: &str = "reply-to";
/// The header matching a reply to its request.
pub const CORRELATION_ID: &str = "correlation-id";

impl Broker {
    /// Publishes `body` to `topic`: stored in the topic log and copied to
    /// every matching subscription, in one transaction.
    pub fn publish(&mut self, topic: &str, body: &str, headers: &Headers) -> Result<Published> {
        let msg = Outgoing {
            body,
            headers: Some(headers),
            delay: None,
        };
        Ok(self.publish_batch(topic, &[msg])?[0])
    }

    /// Publishes several messages to one topic in one transaction.
    pub fn publish_batch(&mut self, topic: &str, batch: &[Outgoing<'_>]) -> Result<Vec<Published>> {
        crate::topic::validate_topic(topic)?;
        batch
            .iter()
            .try_for_each(|m| crate::broker::check_size(m.body))?;
        self.backend().publish(topic, batch)
    }

    /// Creates `topic` with an empty log, so that it is listed (offset 0
    /// next) before anything is published to it; false if it exists already.
    pub fn create_topic(&mut self, topic: &str) -> Result<bool> {
        crate::topic::validate_topic(topic)?;
        self.backend().create_topic(topic)
    }

    /// Creates a durable subscription; returns how many retained messages it
    /// replayed into its queue.
    pub fn create_subscription(&mut self, sub: &NewSubscription<'_>) -> Result<u64> {
        crate::name::validate_queue_name(sub.name)?;
        crate::topic::validate_pattern(sub.pattern)?;
        self.backend().create_subscription(sub)
    }

    /// Removes a subscription and its pending messages; false if there was none.
    pub fn delete_subscription(&mut self, name: &str) -> Result<bool> {
        crate::name::validate_queue_name(name)?;
        self.backend().delete_subscription(name)
    }

    /// Every subscription, by name.
    pub fn subscriptions(&mut self) -> Result<Vec<SubscriptionInfo>> {
        self.backend().subscriptions()
    }

    /// Every topic ever published to, by name.
    pub fn topics(&mut self) -> Result<Vec<TopicInfo>> {
        self.backend().topics()
    }

    /// Bounds the logs of the topics `pattern` matches (a topic or a
    /// pattern); an unbounded retention removes the setting.
    pub fn set_retention(&mut self, pattern: &str, retention: &Retention) -> Result<()> {
        crate::topic::validate_pattern(pattern)?;
        self.backend().set_retention(pattern, retention)
    }

    /// The retention stored for exactly this topic or pattern (unbounded if none).
    pub fn retention_setting(&mut self, pattern: &str) -> Result<Retention> {
        crate::topic::validate_pattern(pattern)?;
        self.backend().retention_setting(pattern)
    }

    /// Publishes a request with `reply-to` and `correlation-id` headers and
    /// waits up to `timeout` for the first reply; `None` on timeout.
    pub fn request(
        &mut self,
        topic: &str,
        body: &str,
        headers: &Headers,
        timeout: Duration,
    ) -> Result<Option<Message>> {
        crate::topic::validate_topic(topic)?;
        let token = format!("{:016x}", crate::lease::random_nonce());
        let reply_topic = format!("reply.{}-{token}", std::process::id());
        let inbox = format!("lb.reply.{}-{token}", std::process::id());
        let mut sub =
            Subscription::create_ephemeral(self.connector(), &inbox, &reply_topic, timeout)?;
        let mut request_headers = headers.clone();
        request_headers.insert(REPLY_TO, HeaderValue::Str(reply_topic))?;
        request_headers.insert(CORRELATION_ID, HeaderValue::Str(token.clone()))?;
        self.publish(topic, body, &request_headers)?;
        let reply = sub.next_matching(timeout, |m| {
            m.headers.get_str(CORRELATION_ID) == Some(&token)
        });
        let deleted = sub.delete();
        let reply = reply?;
        deleted?;
        Ok(reply)
    }

    /// Answers `request` (a message that carries `reply-to` and
    /// `correlation-id`) with `body`.
    pub fn reply(&mut self, request: &Message, body: &str, headers: &Headers) -> Result<Published> {
        let to = request
            .headers
            .get_str(REPLY_TO)
            .ok_or_else(|| Error::InvalidRequest("the request has no 'reply-to' header".into()))?;
        let mut reply_headers = headers.clone();
        if let Some(HeaderValue::Str(id)) = request.headers.get(CORRELATION_ID) {
            reply_headers.insert(CORRELATION_ID, HeaderValue::Str(id.clone()))?;
        }
        let to = to.to_owned();
        self.publish(&to, body, &reply_headers)
    }
}

/// Stops `stop` after `delay` (a timeout), unless the returned ticker is dropped first.
pub fn stop_after(stop: StopHandle, delay: Duration) -> crate::ticker::Ticker {
    crate::ticker::Ticker::once(delay, move || stop.stop())
}

/// A handle on one subscription, with its own connection.
pub struct Subscription {
    broker: Broker,
    name: String,
}

impl Subscription {
    /// Creates a durable subscription `name` following `pattern`.
    pub fn create(
        connector: Arc<dyn Connector>,
        name: &str,
        pattern: &str,
        from: StartFrom,
    ) -> Result<Self> {
        let sub = NewSubscription {
            name,
            pattern,
            from,
            ephemeral: None,
        };
        Self::create_from(connector, &sub)
    }

    /// Creates a private subscription that goes away with this process (or,
    /// if the process cannot be seen from another machine, once nobody
    /// touched it for `expire`: see [`Self::keep_alive`]).
    pub fn create_ephemeral(
        connector: Arc<dyn Connector>,
        name: &str,
        pattern: &str,
        expire: Duration,
    ) -> Result<Self> {
        let sub = NewSubscription {
            name,
            pattern,
            from: StartFrom::Latest,
            ephemeral: Some(expire.max(Duration::from_secs(1))),
        };
        Self::create_from(connector, &sub)
    }

    fn create_from(connector: Arc<dyn Connector>, sub: &NewSubscription<'_>) -> Result<Self> {
        let mut broker = Broker::connect(connector)?;
        broker.create_subscription(sub)?;
        Ok(Subscription {
            broker,
            name: sub.name.to_owned(),
        })
    }

    /// Opens an existing subscription.
    pub fn open(connector: Arc<dyn Connector>, name: &str) -> Result<Self> {
        let mut broker = Broker::connect(connector)?;
        if !broker.backend().touch_subscription(name)? {
            return Err(SubscriptionError::Unknown(name.to_owned()).into());
        }
        Ok(Subscription {
            broker,
            name: name.to_owned(),
        })
    }

    /// The subscription's name (also its queue's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next message, consumed; `None` if nothing is waiting (never blocks).
    pub fn fetch(&mut self) -> Result<Option<Message>> {
        let name = self.name.clone();
        self.broker.queue(&name)?.read()
    }

    /// Calls `handler` for each message as it arrives, until `timeout` (if
    /// any) passes or `stop` is asked. A handler error leaves its message in
    /// the subscription and stops; it is returned.
    pub fn subscribe<E>(
        &mut self,
        handler: impl FnMut(&Message) -> std::result::Result<(), E>,
        timeout: Option<Duration>,
        stop: StopHandle,
    ) -> Result<std::result::Result<(), E>> {
        let watcher = Watcher::new(self.broker.connector(), &self.name, Mode::Consume)?
            .with_stop(stop.clone());
        let _timer = timeout.map(|t| stop_after(stop.clone(), t));
        match watcher.run(&mut HandlerSink::new(handler)) {
            Ok(()) => Ok(Ok(())),
            Err(WatchError::Sink(failure)) => Ok(Err(failure.error)),
            Err(WatchError::Backend(e)) => Err(e),
        }
    }

    /// Waits up to `timeout` for a message passing `accept`; others are consumed and dropped.
    fn next_matching(
        &mut self,
        timeout: Duration,
        accept: impl Fn(&Message) -> bool,
    ) -> Result<Option<Message>> {
        let stop = StopHandle::new();
        let mut found = None;
        let done = stop.clone();
        self.subscribe(
            |m| {
                if accept(m) {
                    found = Some(m.clone());
                    done.stop();
                }
                Ok::<(), ()>(())
            },
            Some(timeout),
            stop,
        )?
        .ok();
        Ok(found)
    }

    /// Removes the subscription and what it still holds.
    pub fn delete(mut self) -> Result<()> {
        let name = self.name.clone();
        self.broker.delete_subscription(&name).map(|_| ())
    }

    /// Marks the subscription as alive (ephemeral subscriptions expire when
    /// untouched); false if it no longer exists.
    pub fn touch(&mut self) -> Result<bool> {
        let name = self.name.clone();
        self.broker.backend().touch_subscription(&name)
    }

    /// Touches the subscription every `every` from a background thread with
    /// its own connection, until the returned ticker is dropped: what keeps a
    /// listener's subscription alive where its process cannot be checked.
    pub fn keep_alive(&self, every: Duration) -> crate::ticker::Ticker {
        let name = self.name.clone();
        crate::ticker::on_own_connection(self.broker.connector(), every, move |b| {
            // Gone (or unreachable): nothing left to keep alive.
            b.backend().touch_subscription(&name).unwrap_or(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_bounds_per_start() {
        assert_eq!(StartFrom::Latest.replay_bounds(), None);
        assert_eq!(
            StartFrom::Earliest.replay_bounds(),
            Some((i64::MIN, i64::MIN))
        );
        assert_eq!(StartFrom::Offset(7).replay_bounds(), Some((7, i64::MIN)));
        assert_eq!(StartFrom::After(99).replay_bounds(), Some((i64::MIN, 99)));
    }

    #[test]
    fn start_positions() {
        assert_eq!(StartFrom::parse("earliest").unwrap(), StartFrom::Earliest);
        assert_eq!(StartFrom::parse("latest").unwrap(), StartFrom::Latest);
        assert_eq!(StartFrom::parse("42").unwrap(), StartFrom::Offset(42));
        assert_eq!(StartFrom::parse("0").unwrap(), StartFrom::Offset(0));
        assert!(matches!(
            StartFrom::parse("2024-01-15").unwrap(),
            StartFrom::After(_)
        ));
        assert!(matches!(
            StartFrom::parse("1705329000s").unwrap(),
            StartFrom::After(_)
        ));
        assert!(matches!(
            StartFrom::parse("1837025672140161024").unwrap(),
            StartFrom::After(1837025672140161024)
        ));
        for bad in ["", "soon", "-1", "1e5"] {
            assert!(StartFrom::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retention_parsing_and_tightest() {
        let count = Retention::parse("1000").unwrap();
        assert_eq!(count.max_count, Some(1000));
        let age = Retention::parse("7d").unwrap();
        assert_eq!(age.max_age, Some(Duration::from_secs(7 * 86400)));
        assert!(Retention::parse("forever").is_err());
        assert!(Retention::parse("-5").is_err());
        let both = count
            .tightest(age)
            .tightest(Retention::parse("10").unwrap());
        assert_eq!(both.max_count, Some(10));
        assert_eq!(both.max_age, Some(Duration::from_secs(7 * 86400)));
        assert!(Retention::default().is_unbounded());
    }
}
