//! `broker`: a drop-in replacement for SimpleBroker's command line.
//!
//! This binary only parses arguments, calls the `litebroker` library and
//! formats output; exit codes are decided in [`exit`].

mod args;
mod cmd;
mod database;
mod exit;
mod hoist;
mod interrupt;
mod output;
mod pipe;
mod progress;
mod usage;

use std::ffi::OsString;

use anyhow::{anyhow, bail, Result};
use clap::CommandFactory;
use litebroker::location::PathRequest;
use litebroker::Settings;

use crate::args::{Cli, Command, COMPAT_VERSION};
use crate::cmd::Ctx;
use crate::exit::Outcome;

fn main() {
    interrupt::install();
    ignore_sigxfsz();
    let code = match run(std::env::args_os().skip(1).collect()) {
        Ok(outcome) => outcome.code(),
        Err(Failure::Usage(text)) => exit::report(&anyhow!(text)),
        Err(Failure::Error(e)) => exit::report(&explain_lock_timeout(explain_file_size_limit(e))),
    };
    std::process::exit(code);
}

/// Under a file-size limit (`ulimit -f`) a write past it raises SIGXFSZ, whose
/// default action kills the process with no message, possibly after a commit
/// (a write then reported as failed had been saved) or before a read's commit
/// (its batch is delivered again). Caught by a handler that does nothing, as
/// CPython ignores it, the write fails with EFBIG instead: SQLite rolls the
/// transaction back and the error is reported like a full disk. A handler,
/// unlike SIG_IGN, is reset by exec, so commands that `run` and `watch`
/// start still get the default.
fn ignore_sigxfsz() {
    extern "C" fn ignore(_signal: libc::c_int) {}
    let handler: extern "C" fn(libc::c_int) = ignore;
    // SAFETY: the handler does nothing, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGXFSZ, handler as libc::sighandler_t);
    }
}

/// Says so when a write failed under a finite file-size limit: SQLite only
/// reports "disk I/O error", which does not tell the user what to change.
fn explain_file_size_limit(e: anyhow::Error) -> anyhow::Error {
    let write_failed = e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<litebroker::Error>(),
            Some(litebroker::Error::WriteFailed(_))
        )
    });
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let limited = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } == 0
        && limit.rlim_cur != libc::RLIM_INFINITY;
    if write_failed && limited {
        return e.context(format!(
            "cannot write the database: file size limit exceeded (ulimit -f: {} bytes)",
            limit.rlim_cur
        ));
    }
    e
}

/// Says how long we waited and what sets it when another process kept the
/// database locked past `BROKER_BUSY_TIMEOUT`.
fn explain_lock_timeout(e: anyhow::Error) -> anyhow::Error {
    let locked = e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<litebroker::Error>(),
            Some(litebroker::Error::Busy { .. })
        )
    });
    if !locked {
        return e;
    }
    let ms = Settings::from_env().map_or(5000, |s| s.sqlite.busy_timeout_ms);
    e.context(format!(
        "another process kept the database locked for more than {ms} ms (BROKER_BUSY_TIMEOUT)"
    ))
}

/// Why a run failed: a usage message (argparse's wording, see [`usage`]), or an error.
enum Failure {
    Usage(String),
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

fn run(raw: Vec<OsString>) -> Result<Outcome, Failure> {
    if raw.is_empty() {
        print!("{}", Cli::command().render_help());
        return Ok(Outcome::Done);
    }
    let args = utf8_args(raw)?;
    let (cli, status_json) = parse(&args)?;
    database::refuse_urls_as_file_names(cli.file.as_deref())?;
    let settings = Settings::from_env().map_err(anyhow::Error::from)?;
    settings
        .warnings
        .iter()
        .for_each(|w| eprintln!("broker: warning: {w}"));
    check_exclusions(&cli)?;
    let database = database::Database::select(
        cli.db.as_deref(),
        PathRequest {
            dir: cli.dir.clone(),
            file: cli.file.clone(),
            command_is_init: matches!(cli.command, Some(Command::Init(_))),
        },
    )?;
    let ctx = Ctx {
        settings,
        database,
        quiet: cli.quiet,
    };
    Ok(dispatch(&ctx, &cli, status_json)?)
}

fn utf8_args(raw: Vec<OsString>) -> Result<Vec<String>> {
    raw.into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|_| anyhow!("arguments must be valid UTF-8"))
        })
        .collect()
}

/// Hoists global options, then lets clap parse. `--json` anywhere next to
/// `--status` selects JSON status output, as in the reference.
fn parse(args: &[String]) -> Result<(Cli, bool), Failure> {
    if let Some(cli) = plain_write(args) {
        return Ok((cli, false));
    }
    let hoisted = hoist::hoist(args).map_err(|e| anyhow!(e))?;
    let status = hoisted.globals.iter().any(|g| g == "--status");
    exit::set_quiet(hoisted.globals.iter().any(|g| g == "--quiet"));
    let mut rest = hoisted.rest;
    let status_json = status && rest.iter().any(|a| a == "--json");
    if status {
        rest.retain(|a| a != "--json");
    }
    let argv = std::iter::once("broker".to_owned())
        .chain(hoisted.globals)
        .chain(rest);
    match usage::parse(argv.collect()) {
        usage::Parsed::Cli(cli) => Ok((*cli, status_json)),
        usage::Parsed::Help(text) => {
            print!("{text}");
            std::process::exit(0); // --help
        }
        usage::Parsed::Error(text) => Err(Failure::Usage(text)),
        usage::Parsed::Bare(text) => Err(Failure::Error(exit::Bare(text).into())),
    }
}

/// `broker [-d DIR] [-f FILE] write QUEUE BODY` with no other option: the
/// command line a script runs most, decided without building clap's tree of
/// every command (a sixth of such a process's instructions). Any other word
/// that starts with `-` (but `-` itself, stdin) leaves it to clap and
/// argparse's rules; the tests below hold it equal to what clap makes of the
/// same words.
fn plain_write(args: &[String]) -> Option<Cli> {
    let optionless = |w: &str| !w.is_empty() && !w.starts_with('-');
    let (mut dir, mut file) = (None, None);
    let mut rest = args;
    while let [flag, value, more @ ..] = rest {
        let slot = match flag.as_str() {
            "-d" => &mut dir,
            "-f" => &mut file,
            _ => break,
        };
        if slot.is_some() || !optionless(value) {
            return None;
        }
        *slot = Some(value.clone());
        rest = more;
    }
    let [command, queue, message] = rest else {
        return None;
    };
    if command != "write" || !optionless(queue) || !(optionless(message) || message == "-") {
        // (An empty body or queue name goes to clap too.)
        return None;
    }
    Some(Cli {
        dir,
        file,
        db: None,
        yes: false,
        quiet: false,
        version: false,
        cleanup: false,
        vacuum: false,
        compact: false,
        status: false,
        command: Some(Command::Write(args::WriteArgs {
            queue: queue.clone(),
            message: message.clone(),
            delay: None,
            headers: Vec::new(),
        })),
    })
}

fn check_exclusions(cli: &Cli) -> Result<()> {
    if cli.status && cli.command.is_some() {
        bail!("--status cannot be used with commands");
    }
    if cli.vacuum && cli.command.is_some() {
        bail!("--vacuum cannot be used with commands");
    }
    if cli.compact && !cli.vacuum {
        bail!("--compact can only be used with --vacuum");
    }
    if cli.yes && !cli.cleanup {
        bail!("--yes can only be used with --cleanup");
    }
    Ok(())
}

/// Runs the first applicable action, in the reference's order.
fn dispatch(ctx: &Ctx, cli: &Cli, status_json: bool) -> Result<Outcome> {
    if cli.version {
        println!("{COMPAT_VERSION}");
        return Ok(Outcome::Done);
    }
    if let Some(Command::Init(_)) = cli.command {
        return cmd::init::run(ctx);
    }
    if cli.cleanup {
        return cmd::maintenance::cleanup(ctx, cli.yes);
    }
    if cli.vacuum {
        return cmd::maintenance::vacuum(ctx, cli.compact);
    }
    if cli.status {
        return cmd::maintenance::status(ctx, status_json);
    }
    let Some(command) = &cli.command else {
        print!("{}", Cli::command().render_help());
        return Ok(Outcome::Done);
    };
    run_command(ctx, command)
}

fn run_command(ctx: &Ctx, command: &Command) -> Result<Outcome> {
    match command {
        Command::Write(a) => cmd::write::run(ctx, a),
        Command::Read(a) => cmd::read::read(ctx, a),
        Command::Peek(a) => cmd::read::peek(ctx, a),
        Command::Move(a) => cmd::move_cmd::run(ctx, a),
        Command::List(a) => cmd::list::run(ctx, a),
        Command::Delete(a) => cmd::delete::run(ctx, a),
        Command::Broadcast(a) => cmd::broadcast::run(ctx, a),
        Command::Alias(a) => cmd::alias::run(ctx, a),
        Command::Init(_) => cmd::init::run(ctx),
        Command::Watch(a) => cmd::watch::run(ctx, a),
        Command::Ack(a) => cmd::lease::ack(ctx, a),
        Command::Nack(a) => cmd::lease::nack(ctx, a),
        Command::Extend(a) => cmd::lease::extend(ctx, a),
        Command::Queue(a) => match &a.action {
            args::QueueAction::Config(c) => cmd::queue_config::run(ctx, c),
        },
        Command::Redrive(a) => cmd::redrive::run(ctx, a),
        Command::Run(a) => cmd::run::run(ctx, a),
        Command::Publish(a) => cmd::publish::publish(ctx, a),
        Command::Request(a) => cmd::publish::request(ctx, a),
        Command::Reply(a) => cmd::publish::reply(ctx, a),
        Command::Subscribe(a) => cmd::subscribe::subscribe(ctx, a),
        Command::Unsubscribe(a) => cmd::subscribe::unsubscribe(ctx, a),
        Command::Subscriptions => cmd::subscribe::list(ctx),
        Command::Listen(a) => cmd::subscribe::listen(ctx, a),
        Command::Topics => cmd::topics::list(ctx),
        Command::Topic(a) => match &a.action {
            args::TopicAction::Config(c) => cmd::topics::config(ctx, c),
        },
        Command::Dump(a) => cmd::dump::run(ctx, a),
        Command::Load(a) => cmd::load::run(ctx, a),
        Command::Serve(a) => cmd::serve::run(ctx, a),
        Command::Keys(a) => cmd::keys::run(ctx, a),
        Command::Completions(a) => cmd::generate::completions(a.shell),
        Command::Man => cmd::generate::man(),
    }
}

#[cfg(test)]
mod plain_write_tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_shortcut_reads_a_plain_write_exactly_as_clap_does() {
        for argv in [
            &["write", "q", "hello"][..],
            &["write", "@alias", "-"],
            &["write", "tasks", "ship it 🚀"],
            &["write", "q.sub_1", "a=b --not-an-option-inside"],
            &["-d", "/tmp/some dir", "write", "q", "x"],
            &["-f", "other.db", "write", "q", "x"],
            &["-d", "dir", "-f", "f.db", "write", "q", "x"],
            &["-f", "f.db", "-d", "dir", "write", "q", "-"],
        ] {
            let args = words(argv);
            let fast = plain_write(&args).expect("a plain write");
            let full = match usage::parse(
                std::iter::once("broker".to_owned())
                    .chain(args.clone())
                    .collect(),
            ) {
                usage::Parsed::Cli(cli) => cli,
                _ => panic!("clap refused {argv:?}"),
            };
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{argv:?}");
        }
    }

    #[test]
    fn anything_else_goes_to_clap() {
        for argv in [
            &["write", "q", "-x"][..],
            &["write", "-q", "q"],
            &["write", "q", "--delay"],
            &["write", "q"],
            &["write", "q", "a", "b"],
            &["read", "q", "x"],
            &["-d", "dir", "write"],
            &["write", "q", ""],
            &["-d", "-x", "write", "q", "x"],
            &["-d", "a", "-d", "b", "write", "q", "x"],
            &["-d", "", "write", "q", "x"],
            &["--dir", "d", "write", "q", "x"],
            &["-q", "write", "q", "x"],
            &["-d", "d", "write", "q", "x", "--json"],
        ] {
            assert!(plain_write(&words(argv)).is_none(), "{argv:?}");
        }
    }
}
