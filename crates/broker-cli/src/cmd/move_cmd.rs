//! `broker move <source> <dest> [--all | -m ID] [--since TS] [--before TS] [--json] [-t]`

use anyhow::Result;
use litebroker::message::Filter;
use litebroker::{timebound, Queue};

use super::read::{io_to_lib, Printer};
use super::{precheck_queue, selection_filter, Ctx};
use crate::args::MoveArgs;
use crate::exit::{Bare, Outcome};
use crate::output::Format;
use crate::progress::Progress;

/// Messages moved per transaction by `move --all` (bounded memory on any queue size).
const MOVE_BATCH: usize = 1000;

/// Moves messages and prints each one moved. A move is complete when it
/// commits, so a closed stdout afterwards loses nothing.
pub fn run(ctx: &Ctx, args: &MoveArgs) -> Result<Outcome> {
    litebroker::name::check_distinct(&args.source, &args.dest)?;
    let valid_id = args
        .select
        .message
        .as_deref()
        .and_then(timebound::parse_message_id);
    if valid_id.is_some() && args.select.since.is_some() {
        return Err(Bare("--message cannot be used with --since".into()).into());
    }
    let Some(filter) = selection_filter(&args.select, args.all)? else {
        return Ok(Outcome::Nothing);
    };
    precheck_queue(&args.source)?;
    precheck_queue(&args.dest)?;
    let mut broker = ctx.open()?;
    let src = broker.resolve(&args.source)?;
    let dst = broker.resolve(&args.dest)?;
    let format = Format::from_flags(args.select.json, args.select.timestamps);
    let mut printer = Printer::new(format, true);
    let mut queue = broker.queue(&src)?;
    let moved = if args.all {
        move_all(&mut queue, &dst, &filter, &mut printer)
    } else {
        move_some(&mut queue, &dst, &filter, 1, &mut printer)
    };
    match moved {
        Ok(n) => printer.finish(n),
        Err(e) => Err(e.into()),
    }
}

fn move_all(
    queue: &mut Queue<'_>,
    dst: &str,
    filter: &Filter,
    printer: &mut Printer,
) -> litebroker::Result<usize> {
    let progress = Progress::counter("moving");
    let mut total = 0;
    loop {
        let n = move_some(queue, dst, filter, MOVE_BATCH, printer)?;
        total += n;
        progress.set(total as u64);
        if n < MOVE_BATCH {
            progress.finish();
            return Ok(total);
        }
    }
}

fn move_some(
    queue: &mut Queue<'_>,
    dst: &str,
    filter: &Filter,
    limit: usize,
    printer: &mut Printer,
) -> litebroker::Result<usize> {
    let moved = queue.move_to(dst, filter, limit)?;
    for m in &moved {
        printer.print(m).map_err(io_to_lib)?;
    }
    Ok(moved.len())
}
