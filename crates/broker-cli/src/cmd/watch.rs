//! `broker watch <queue> [--peek | --move DEST] [--json] [-t] [--since TS]`

use anyhow::Result;
use litebroker::timebound;
use litebroker::watch::{Mode, WatchError, Watcher};

use super::{precheck_queue, Ctx};
use crate::args::WatchArgs;
use crate::exit::Outcome;
use crate::interrupt;
use crate::output::{Format, StdoutSink};

/// Prints messages as they arrive until Ctrl-C or SIGTERM (exit 0). A reader
/// that went away ends the watch quietly; the message it missed stays queued.
pub fn run(ctx: &Ctx, args: &WatchArgs) -> Result<Outcome> {
    let since = args
        .since
        .as_deref()
        .map(timebound::parse_time_bound)
        .transpose()?;
    precheck_queue(&args.queue)?;
    if let Some(dest) = &args.move_to {
        precheck_queue(dest)?;
    }
    let mut broker = ctx.open()?;
    let (queue, dest) = {
        let dest = super::resolve_optional(&mut broker, args.move_to.as_deref())?;
        (broker.resolve(&args.queue)?, dest)
    };
    let (mode, label) = match (&dest, args.peek) {
        (Some(d), _) => (Mode::Move(d.clone()), format!("move to {d}")),
        (None, true) => (Mode::Peek, "peek".to_string()),
        (None, false) => (Mode::Consume, "consume".to_string()),
    };
    if !ctx.quiet {
        eprintln!("Watching queue '{queue}' ({label} mode)...");
    }
    let mut watcher =
        Watcher::new(broker.connector(), &queue, mode)?.with_notices(super::outage_notices());
    if let Some(bound) = since {
        watcher = watcher.since(bound)?;
    }
    interrupt::stop_gracefully(watcher.stop_handle());
    let mut sink = StdoutSink::new(Format::from_flags(args.json, args.timestamps), true);
    match watcher.run(&mut sink) {
        Ok(()) => Ok(Outcome::Done),
        Err(WatchError::Sink(e)) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
        Err(WatchError::Backend(e)) => Err(e.into()),
    }
}
