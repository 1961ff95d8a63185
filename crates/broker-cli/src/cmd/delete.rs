//! `broker delete <queue> [-m ID]` and `broker delete --all`

use anyhow::Result;
use litebroker::timebound;

use super::{precheck_queue, Ctx};
use crate::args::DeleteArgs;
use crate::exit::{Bare, Outcome};

/// Deletes a queue, one message, or everything.
pub fn run(ctx: &Ctx, args: &DeleteArgs) -> Result<Outcome> {
    let message_id = match &args.message {
        Some(text) => match timebound::parse_message_id(text) {
            Some(id) => Some(id),
            None => return Ok(Outcome::Nothing),
        },
        None => None,
    };
    if message_id.is_some() && args.queue.is_none() {
        return Err(Bare("--message requires a queue name".into()).into());
    }
    if let Some(q) = &args.queue {
        precheck_queue(q)?;
    }
    let mut broker = ctx.open()?;
    let Some(operand) = &args.queue else {
        broker.delete_all()?;
        return Ok(Outcome::Done);
    };
    let name = broker.resolve(operand)?;
    let mut queue = broker.queue(&name)?;
    match message_id {
        Some(id) if queue.delete_message(id)? => Ok(Outcome::Done),
        Some(_) => Ok(Outcome::Nothing),
        None => queue.delete().map(|_| Outcome::Done).map_err(Into::into),
    }
}
