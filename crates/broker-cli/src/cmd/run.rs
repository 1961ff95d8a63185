//! `broker run <queue> [--lease D] [--max-receives N] [--dead-letter Q] [--drain]
//! [--backoff D] -- <command> [args]`: a worker in one line.
//!
//! Each message is leased and given to a fresh child process: the body on its
//! stdin; `BROKER_QUEUE`, `BROKER_MESSAGE_ID`, `BROKER_RECEIVE_COUNT`,
//! `BROKER_RECEIPT` and `BROKER_HEADERS` (a JSON object) in its environment;
//! stdout and stderr are the worker's own. Exit status 0 acks the message; any
//! other status gives it back with an exponential backoff, and past
//! `--max-receives` it goes to the dead-letter queue. The lease is kept alive
//! while the child runs.

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use litebroker::duration::{format_duration, parse_duration};
use litebroker::watch::StopHandle;
use litebroker::worker::{Outcome as WorkOutcome, Verdict, Worker, WorkerOptions};
use litebroker::Message;

use super::{precheck_queue, Ctx};
use crate::args::RunArgs;
use crate::exit::Outcome;
use crate::interrupt;

/// Works through the queue until Ctrl-C/SIGTERM (after the current message),
/// or with `--drain` until nothing is visible. Exit 0; 1 if the command
/// cannot be started at all (the message is given back untouched).
pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<Outcome> {
    precheck_queue(&args.queue)?;
    if let Some(d) = &args.delivery.dead_letter {
        precheck_queue(d)?;
    }
    let options = WorkerOptions {
        visibility: args
            .delivery
            .visibility
            .as_deref()
            .map(parse_duration)
            .transpose()?,
        max_receives: args.delivery.max_receives,
        dead_letter: None,
        backoff: parse_duration(&args.backoff)?,
        drain: args.drain,
    };
    let mut broker = ctx.open()?;
    let (queue, dead_letter) = {
        let dlq = super::resolve_optional(&mut broker, args.delivery.dead_letter.as_deref())?;
        (broker.resolve(&args.queue)?, dlq)
    };
    let options = WorkerOptions {
        dead_letter,
        ..options
    };
    let worker =
        Worker::new(broker.connector(), &queue, options)?.with_notices(super::outage_notices());
    let stop = worker.stop_handle();
    interrupt::stop_gracefully(stop.clone());
    let spawn_error = Arc::new(Mutex::new(None));
    let child = ChildRunner {
        command: &args.command,
        queue: &queue,
        stop: stop.clone(),
        spawn_error: spawn_error.clone(),
    };
    let quiet = ctx.quiet;
    worker.run(
        |msg| child.run(msg),
        |msg, outcome| report(quiet, msg, outcome),
    )?;
    if let Some(e) = spawn_error.lock().expect("not poisoned").take() {
        return Err(e);
    }
    Ok(Outcome::Done)
}

/// Runs the user's command for one message.
struct ChildRunner<'a> {
    command: &'a [String],
    queue: &'a str,
    stop: StopHandle,
    spawn_error: Arc<Mutex<Option<anyhow::Error>>>,
}

impl ChildRunner<'_> {
    fn run(&self, msg: &Message) -> Verdict {
        match self.spawn_and_wait(msg) {
            Ok(status) => self.verdict(status),
            Err(e) => {
                // Not the message's fault: give it back and stop the worker.
                *self.spawn_error.lock().expect("not poisoned") = Some(e);
                self.stop.stop();
                Verdict::GiveBack
            }
        }
    }

    fn spawn_and_wait(&self, msg: &Message) -> Result<ExitStatus> {
        let (program, args) = self.command.split_first().context("no command given")?;
        let receipt = msg.receipt.map(|r| r.to_string()).unwrap_or_default();
        let mut child = Command::new(program)
            .args(args)
            .env("BROKER_QUEUE", self.queue)
            .env("BROKER_MESSAGE_ID", msg.id.to_string())
            .env("BROKER_RECEIVE_COUNT", msg.receives.to_string())
            .env("BROKER_RECEIPT", receipt)
            .env("BROKER_HEADERS", msg.headers.to_json())
            .stdin(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {program}"))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let body = msg.body.clone();
        // A child that exits without reading its input is fine (EPIPE ignored).
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(body.as_bytes());
        });
        let status = child.wait().context("cannot wait for the command")?;
        let _ = feeder.join();
        Ok(status)
    }

    fn verdict(&self, status: ExitStatus) -> Verdict {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(0), _) => Verdict::Done,
            // Killed along with us by Ctrl-C: not the message's fault.
            (None, Some(_)) if self.stop.is_stopped() => Verdict::GiveBack,
            (Some(code), _) => Verdict::Failed(format!("command exited with status {code}")),
            (None, signal) => Verdict::Failed(format!(
                "command killed by signal {}",
                signal.unwrap_or_default()
            )),
        }
    }
}

/// One stderr line per message that did not simply succeed (unless `-q`).
fn report(quiet: bool, msg: &Message, outcome: &WorkOutcome) {
    if quiet {
        return;
    }
    let line = match outcome {
        WorkOutcome::Acked | WorkOutcome::GivenBack => return,
        WorkOutcome::Retry(delay) => format!(
            "message {} failed (receive {}): retrying in {}",
            msg.id,
            msg.receives,
            format_duration(*delay)
        ),
        WorkOutcome::DeadLettered(dlq) => format!(
            "message {} failed (receive {}): moved to dead-letter queue '{dlq}'",
            msg.id, msg.receives
        ),
        WorkOutcome::LeaseLost(why) => format!("message {}: {why}", msg.id),
    };
    eprintln!("broker: {line}");
}
