//! `broker subscribe`, `unsubscribe`, `subscriptions` and `listen`.

use anyhow::{bail, Result};
use litebroker::duration::parse_duration;
use litebroker::pubsub::{stop_after, NewSubscription, StartFrom};
use litebroker::watch::{Mode, StopHandle, WatchError, Watcher};
use litebroker::{Message, Subscription};

use super::{precheck_queue, Ctx};
use crate::args::{ListenArgs, SubscribeArgs, UnsubscribeArgs};
use crate::exit::Outcome;
use crate::interrupt;
use crate::output::{Format, StdoutSink};

/// Creates a durable subscription, replaying the log from `--from`.
pub fn subscribe(ctx: &Ctx, args: &SubscribeArgs) -> Result<Outcome> {
    precheck_queue(&args.name)?;
    litebroker::topic::validate_pattern(&args.pattern)?;
    let from = StartFrom::parse(&args.from)?;
    let mut broker = ctx.open()?;
    let replayed = broker.create_subscription(&NewSubscription {
        name: &args.name,
        pattern: &args.pattern,
        from,
        ephemeral: None,
    })?;
    ctx.info(&format!(
        "Subscribed '{}' to '{}' ({} replayed)",
        args.name,
        args.pattern,
        super::count(replayed, "message")
    ));
    Ok(Outcome::Done)
}

/// Removes a subscription; exit 1 if there is none.
pub fn unsubscribe(ctx: &Ctx, args: &UnsubscribeArgs) -> Result<Outcome> {
    precheck_queue(&args.name)?;
    let mut broker = ctx.open()?;
    if !broker.delete_subscription(&args.name)? {
        bail!("no subscription named '{}'", args.name);
    }
    Ok(Outcome::Done)
}

/// One line per subscription: `name: pattern (N pending[, next topic:offset...])`.
pub fn list(ctx: &Ctx) -> Result<Outcome> {
    let mut broker = ctx.open()?;
    let mut out = String::new();
    for s in broker.subscriptions()? {
        let mut line = format!("{}: {} ({} pending", s.name, s.pattern, s.depth);
        if !s.next_offsets.is_empty() {
            let next: Vec<String> = s
                .next_offsets
                .iter()
                .map(|(t, o)| format!("{t}:{o}"))
                .collect();
            line += &format!(", next {}", next.join(" "));
        }
        line.push(')');
        if s.ephemeral {
            line += " [ephemeral]";
        }
        out += &line;
        out.push('\n');
    }
    print!("{out}");
    Ok(Outcome::Done)
}

/// Prints matching messages as they are published, through a private
/// subscription that is removed when the listener exits.
pub fn listen(ctx: &Ctx, args: &ListenArgs) -> Result<Outcome> {
    litebroker::topic::validate_pattern(&args.pattern)?;
    let timeout = args.timeout.as_deref().map(parse_duration).transpose()?;
    let expire = parse_duration(&args.expire)?;
    if args.count == Some(0) {
        bail!("--count must be at least 1");
    }
    let connector = ctx.open()?.connector(); // create or check the database first
    let name = format!(
        "lb.listen.{}-{:016x}",
        std::process::id(),
        litebroker::lease::random_nonce()
    );
    let sub = Subscription::create_ephemeral(connector.clone(), &name, &args.pattern, expire)?;
    // A listener on this machine is checked by its process; one that cannot
    // be seen (another machine) lives as long as it keeps touching.
    let _alive = sub.keep_alive(expire / 3);
    let stop = StopHandle::new();
    interrupt::stop_gracefully(stop.clone());
    let watcher = Watcher::new(connector, &name, Mode::Consume)?
        .with_stop(stop.clone())
        .with_notices(super::outage_notices());
    let _timer = timeout.map(|t| stop_after(stop.clone(), t));
    let mut sink = CountingSink {
        inner: StdoutSink::new(Format::from_flags(args.json, args.timestamps), true),
        printed: 0,
        limit: args.count,
        stop,
    };
    let result = watcher.run(&mut sink);
    sub.delete()?;
    match result {
        Ok(()) | Err(WatchError::Sink(_)) if sink.printed == 0 && timeout.is_some() => {
            Ok(Outcome::Nothing)
        }
        Ok(()) => Ok(Outcome::Done),
        Err(WatchError::Sink(e)) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
        Err(WatchError::Backend(e)) => Err(e.into()),
    }
}

/// Stdout that stops the listener once it has printed `limit` messages.
struct CountingSink {
    inner: StdoutSink,
    printed: usize,
    limit: Option<usize>,
    stop: StopHandle,
}

impl litebroker::delivery::Sink for CountingSink {
    type Error = std::io::Error;

    fn accept(&mut self, msg: &Message) -> Result<(), Self::Error> {
        self.inner.accept(msg)
    }

    fn flush(&mut self) -> Result<usize, (usize, Self::Error)> {
        let result = self.inner.flush();
        self.printed += 1;
        if self.limit.is_some_and(|l| self.printed >= l) {
            self.stop.stop();
        }
        result
    }

    fn confirm(&mut self) -> Result<(), (usize, Self::Error)> {
        self.inner.confirm()
    }
}
