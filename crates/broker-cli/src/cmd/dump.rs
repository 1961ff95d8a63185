//! `broker dump [<queue>...]`: every unconsumed message as NDJSON, in storage
//! order, one object per line: `{"queue": ..., "id": ..., "body": ...}`, plus
//! `"headers": {...}` for messages that have headers.

use std::io::{BufWriter, Write};

use anyhow::Result;
use litebroker::message::QueuedMessage;

use super::read::io_to_lib;
use super::{precheck_queue, Ctx};
use crate::args::DumpArgs;
use crate::exit::Outcome;
use crate::output::{push_json_string, push_json_value, raw_stdout};

/// Streams the dump to stdout (bounded memory).
pub fn run(ctx: &Ctx, args: &DumpArgs) -> Result<Outcome> {
    args.queues.iter().try_for_each(|q| precheck_queue(q))?;
    let mut broker = ctx.open()?;
    let queues = args
        .queues
        .iter()
        .map(|q| broker.resolve(q))
        .collect::<litebroker::Result<Vec<_>>>()?;
    let mut out = BufWriter::with_capacity(64 * 1024, raw_stdout());
    let mut line = Vec::new();
    let result = broker.dump(&queues, &mut |record| {
        line.clear();
        dump_record(&mut line, &record);
        out.write_all(&line).map_err(io_to_lib)
    });
    let result = result.and_then(|()| out.flush().map_err(io_to_lib));
    match result {
        Ok(()) => Ok(Outcome::Done),
        Err(e) => Err(e.into()),
    }
}

/// One NDJSON line for `record`.
pub fn dump_record(out: &mut Vec<u8>, record: &QueuedMessage) {
    out.extend_from_slice(b"{\"queue\": ");
    push_json_string(out, &record.queue);
    out.extend_from_slice(format!(", \"id\": {}, \"body\": ", record.message.id).as_bytes());
    push_json_string(out, &record.message.body);
    if !record.message.headers.is_empty() {
        out.extend_from_slice(b", \"headers\": ");
        push_json_value(out, &record.message.headers.to_json_value());
    }
    out.extend_from_slice(b"}\n");
}
