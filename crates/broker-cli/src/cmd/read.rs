//! `broker read|peek <queue> [--all] [--json] [-t] [-m ID] [--since TS] [--before TS]`

use std::io::{BufWriter, Write};

use anyhow::Result;
use litebroker::delivery::{DeliveryError, Pacing};
use litebroker::Message;

use super::{precheck_queue, selection_filter, Ctx};
use crate::args::ReadArgs;
use crate::exit::Outcome;
use crate::output::{
    format_message, is_broken_pipe, raw_stdout, Format, NewlineWarning, RawStdout, StdoutSink,
};

/// Messages held per transaction by `read --all`.
const READ_BATCH: usize = 1000;

/// `read`: delivers with custody, so a message that never reached stdout stays queued.
pub fn read(ctx: &Ctx, args: &ReadArgs) -> Result<Outcome> {
    let Some(filter) = selection_filter(&args.select, args.all)? else {
        return Ok(Outcome::Nothing);
    };
    precheck_queue(&args.queue)?;
    let mut broker = ctx.open()?;
    let queue = broker.resolve(&args.queue)?;
    let mut sink = StdoutSink::new(format(args), warns_newlines(args));
    let pacing = if args.all {
        let ack_every = ctx.settings.read_commit_interval.unwrap_or(1) as usize;
        Pacing {
            max: None,
            batch: READ_BATCH,
            ack_every,
        }
    } else {
        Pacing::single()
    };
    match broker.queue(&queue)?.deliver(&filter, pacing, &mut sink) {
        Ok(0) => Ok(Outcome::Nothing),
        Ok(_) => Ok(Outcome::Done),
        Err(DeliveryError::Sink(e)) if is_broken_pipe(&e) => Ok(Outcome::Done),
        Err(DeliveryError::Sink(e)) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
        Err(DeliveryError::Backend(e)) => Err(e.into()),
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
        Err(e) if is_closed_stdout(&e) => Ok(Outcome::Done),
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

/// Whether a library error is really a reader that went away.
pub fn is_closed_stdout(e: &litebroker::Error) -> bool {
    matches!(e, litebroker::Error::Io { source, .. } if is_broken_pipe(source))
}
