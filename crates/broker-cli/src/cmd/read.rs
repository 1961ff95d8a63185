//! `broker read|peek <queue> [--all] [--json] [-t] [-m ID] [--since TS] [--before TS]`,
//! and `read`'s own `--lease [DURATION]` and `--max N`.

use std::io::{BufWriter, Write};

use anyhow::{bail, Result};
use litebroker::delivery::{DeliveryError, Pacing};
use litebroker::duration::parse_duration;
use litebroker::Message;

use super::{precheck_queue, selection_filter, Ctx};
use crate::args::{ReadArgs, ReadCmdArgs};
use crate::exit::Outcome;
use crate::output::{
    format_message, is_broken_pipe, raw_stdout, Format, NewlineWarning, RawStdout, StdoutSink,
};

/// Messages held per transaction by `read --all`.
const READ_BATCH: usize = 1000;

/// `read`: delivers with custody, so a message that never reached stdout
/// stays queued. With `--lease`, delivers leases instead: each message stays
/// in the queue, invisible, until acked, nacked or expired.
pub fn read(ctx: &Ctx, cmd: &ReadCmdArgs) -> Result<Outcome> {
    let args = &cmd.read;
    let Some(filter) = selection_filter(&args.select, args.all)? else {
        return Ok(Outcome::Nothing);
    };
    precheck_queue(&args.queue)?;
    if cmd.max == Some(0) {
        bail!("--max must be at least 1");
    }
    let lease = match cmd.lease.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(text) => Some(Some(parse_duration(text)?)),
    };
    let mut broker = ctx.open()?;
    let queue = broker.resolve(&args.queue)?;
    let many = args.all || cmd.max.is_some_and(|m| m > 1);
    let mut sink = StdoutSink::new(format(args), warns_newlines(args) || many);
    let pacing = pacing(ctx, args.all, cmd.max);
    let mut q = broker.queue(&queue)?;
    let delivered = match lease {
        Some(visibility) => q.deliver_leased(&filter, pacing, visibility, &mut sink),
        None => q.deliver(&filter, pacing, &mut sink),
    };
    match delivered {
        Ok(0) => Ok(Outcome::Nothing),
        Ok(_) => Ok(Outcome::Done),
        Err(DeliveryError::Sink(e)) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
        Err(DeliveryError::Backend(e)) => Err(e.into()),
    }
}

/// One message, all of them (`--all`, in batches), or up to `--max`.
fn pacing(ctx: &Ctx, all: bool, max: Option<usize>) -> Pacing {
    let ack_every = ctx.settings.read_commit_interval.unwrap_or(1) as usize;
    match (all, max) {
        (true, _) => Pacing {
            max: None,
            batch: READ_BATCH,
            ack_every,
        },
        (false, Some(n)) => Pacing {
            max: Some(n),
            batch: n.min(READ_BATCH),
            ack_every,
        },
        (false, None) => Pacing::single(),
    }
}

/// `peek`: prints without consuming; `--all` pages through the queue.
pub fn peek(ctx: &Ctx, args: &ReadArgs) -> Result<Outcome> {
    let Some(filter) = selection_filter(&args.select, args.all)? else {
        return Ok(Outcome::Nothing);
    };
    precheck_queue(&args.queue)?;
    let mut broker = ctx.open()?;
    let queue = broker.resolve(&args.queue)?;
    let mut q = broker.queue(&queue)?;
    let mut printer = Printer::new(format(args), warns_newlines(args));
    let shown = if args.all {
        q.peek_each(&filter, |m| printer.print(m).map_err(io_to_lib))
    } else {
        q.peek(&filter).and_then(|found| match found {
            Some(m) => printer.print(&m).map(|()| 1).map_err(io_to_lib),
            None => Ok(0),
        })
    };
    match shown {
        Ok(n) => printer.finish(n),
        Err(e) => Err(e.into()),
    }
}

fn format(args: &ReadArgs) -> Format {
    Format::from_flags(args.select.json, args.select.timestamps)
}

/// The reference warns about newlines on its multi-message path only.
fn warns_newlines(args: &ReadArgs) -> bool {
    args.select.message.is_none()
        && (args.all || args.select.since.is_some() || args.select.before.is_some())
}

pub fn io_to_lib(e: std::io::Error) -> litebroker::Error {
    litebroker::Error::io("cannot write to stdout", e)
}

/// Buffered printing for output that consumes nothing (peek, move): a closed
/// pipe simply ends the command quietly.
pub struct Printer {
    out: BufWriter<RawStdout>,
    format: Format,
    scratch: Vec<u8>,
    warning: NewlineWarning,
}

impl Printer {
    /// A printer in `format`, warning about newlines if `warn_newlines`.
    pub fn new(format: Format, warn_newlines: bool) -> Self {
        Printer {
            out: BufWriter::with_capacity(64 * 1024, raw_stdout()),
            format,
            scratch: Vec::new(),
            warning: NewlineWarning::new(warn_newlines && format == Format::Plain),
        }
    }

    /// Prints one message.
    pub fn print(&mut self, msg: &Message) -> std::io::Result<()> {
        self.warning.check(&msg.body);
        self.scratch.clear();
        format_message(&mut self.scratch, msg, self.format);
        self.out.write_all(&self.scratch)
    }

    /// Flushes and turns the count of printed messages into the outcome.
    /// A reader that went away is not an error.
    pub fn finish(mut self, shown: usize) -> Result<Outcome> {
        match self.out.flush() {
            Err(e) if !is_broken_pipe(&e) => {
                Err(anyhow::Error::new(e).context("cannot write to stdout"))
            }
            _ if shown == 0 => Ok(Outcome::Nothing),
            _ => Ok(Outcome::Done),
        }
    }
}
