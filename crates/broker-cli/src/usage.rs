//! Command-line parsing with argparse's rules and wording.
//!
//! clap does the parsing; this module makes its verdicts those of SimpleBroker
//! 2.8.4's argparse parser, because scripts match on the `error:` line:
//!
//! * a word that argparse takes for an option (it starts with `-`, is not `-`
//!   or a negative number, has no space) is never a value: `write q -x` is
//!   refused (a body starting with `-` needs `--` or stdin), and
//!   `--since -x` is "expected one argument";
//! * unknown options and surplus words are collected and reported together
//!   (`unrecognized arguments: c d`), after missing required arguments;
//! * a flag given twice is fine (the last one wins);
//! * every clap error is reworded: `the following arguments are required:
//!   queue, message`, `argument --all: not allowed with argument queue`, ...
//!
//! The result is the message only; the caller prints `simplebroker: error: `
//! before it (argparse's usage line is not reproduced).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches};

use crate::args::Cli;

/// What parsing `argv` (program name first) produced.
pub enum Parsed {
    /// A command line to run.
    Cli(Box<Cli>),
    /// `--help` and friends: text for stdout, exit 0.
    Help(String),
    /// A usage error, in argparse's words (without the `prog: error: ` prefix).
    Error(String),
    /// An error the reference prints without `error:` (see [`crate::exit::Bare`]).
    Bare(String),
}

/// Parses like the reference's argparse parser would.
pub fn parse(argv: Vec<String>) -> Parsed {
    let mut cmd = build();
    let (path, sub) = subcommand_path(&cmd, &argv[1..]);
    let mut extras: Vec<(usize, String)> = Vec::new();
    let mut words: Vec<(usize, String)> = Vec::with_capacity(argv.len());
    let mut options_end = false;
    let mut expecting: Option<&Arg> = None;
    for (i, word) in argv.iter().enumerate() {
        if word == "--" && i > 0 && !options_end {
            options_end = true;
            words.push((i, word.clone()));
            continue;
        }
        let option_like = !options_end && i > 0 && looks_like_option(word);
        if let Some(arg) = expecting.take() {
            if option_like {
                return Parsed::Error(format!("argument {}: expected one argument", show(arg)));
            }
        } else if option_like && i > path && !matches!(word.as_str(), "-h" | "--help") {
            match find_option(sub, word) {
                None => {
                    extras.push((i, word.clone()));
                    continue;
                }
                Some(arg) if takes_value(arg) && !word.contains('=') && is_bare(arg, word) => {
                    expecting = Some(arg);
                }
                Some(_) => {}
            }
        }
        words.push((i, word.clone()));
    }
    loop {
        let unrecognized = || {
            let mut sorted = extras.clone();
            sorted.sort();
            let list: Vec<String> = sorted.into_iter().map(|(_, w)| w).collect();
            format!("unrecognized arguments: {}", list.join(" "))
        };
        // Parsed in place, not on a clone: one command tree per process
        // (building, copying and freeing clap's tree is most of a `write`'s
        // start-up). The subcommand is looked up again only on an error.
        let parsed = cmd.try_get_matches_from_mut(words.iter().map(|(_, w)| w));
        let sub = subcommand_path(&cmd, &argv[1..]).1;
        match parsed {
            Ok(m) if extras.is_empty() => return from_matches(m),
            Ok(_) => return Parsed::Error(unrecognized()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::MissingSubcommand
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) =>
            {
                if !extras.is_empty() {
                    return Parsed::Error(unrecognized());
                }
                return Parsed::Bare(format!("{} subcommand is required", sub.get_name()));
            }
            Err(e)
                if e.kind() == ErrorKind::DisplayHelp || e.kind() == ErrorKind::DisplayVersion =>
            {
                return Parsed::Help(e.render().to_string())
            }
            Err(e) if e.kind() == ErrorKind::UnknownArgument => {
                let Some(word) = context_str(&e, ContextKind::InvalidArg) else {
                    return Parsed::Error(reword(&e, sub));
                };
                let Some(at) = words.iter().rposition(|(_, w)| *w == word) else {
                    return Parsed::Error(reword(&e, sub));
                };
                extras.push(words.remove(at));
            }
            Err(e) => return Parsed::Error(reword(&e, sub)),
        }
    }
}

/// The clap command, with argparse's "a repeated flag is fine".
fn build() -> Command {
    fn override_self(cmd: Command) -> Command {
        cmd.args_override_self(true).mut_subcommands(override_self)
    }
    override_self(Cli::command())
}

fn from_matches(mut m: ArgMatches) -> Parsed {
    match Cli::from_arg_matches_mut(&mut m) {
        Ok(cli) => Parsed::Cli(Box::new(cli)),
        Err(e) => Parsed::Error(e.to_string()),
    }
}

/// How many leading words (program name included) name the sub-command, and
/// that sub-command (`queue config` is two deep).
fn subcommand_path<'a>(root: &'a Command, args: &[String]) -> (usize, &'a Command) {
    let mut cmd = root;
    let mut depth = 0;
    for (i, word) in args.iter().enumerate() {
        if word.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(word) {
            Some(sub) => {
                cmd = sub;
                depth = i + 1;
            }
            None => break,
        }
    }
    (depth, cmd)
}

/// argparse's test for "this word is an option, not a value": it starts with
/// `-`, and is not `-` itself, a negative number, or a word with a space.
pub fn looks_like_option(word: &str) -> bool {
    let Some(rest) = word.strip_prefix('-') else {
        return false;
    };
    if rest.is_empty() || word.contains(' ') {
        return false;
    }
    let negative_number = {
        let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        digits(int)
            && digits(frac)
            && (if rest.contains('.') {
                !frac.is_empty()
            } else {
                !int.is_empty()
            })
    };
    !negative_number
}

/// The option `word` names in `cmd` (`--long`, `--long=v`, `-s`, `-sV`, `-st`).
fn find_option<'a>(cmd: &'a Command, word: &str) -> Option<&'a Arg> {
    if let Some(long) = word.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or(long);
        return cmd.get_arguments().find(|a| {
            a.get_long() == Some(name)
                || a.get_all_aliases()
                    .into_iter()
                    .flatten()
                    .any(|al| al == name)
        });
    }
    let short = word.chars().nth(1)?;
    cmd.get_arguments().find(|a| {
        a.get_short() == Some(short)
            || a.get_all_short_aliases()
                .into_iter()
                .flatten()
                .any(|s| s == short)
    })
}

/// Whether `word` is the option alone (`--since`, `-m`), its value to follow.
fn is_bare(arg: &Arg, word: &str) -> bool {
    word.strip_prefix("--").is_some_and(|l| {
        Some(l) == arg.get_long() || arg.get_all_aliases().into_iter().flatten().any(|a| a == l)
    }) || (word.len() == 2 && arg.get_short().is_some())
}

/// Whether the option needs a value (`--lease` alone is fine: its value is optional).
fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values() && arg.get_num_args().is_none_or(|n| n.min_values() > 0)
}

/// An argument as argparse names it: `-m/--message`, `--since`, `queue`.
fn show(arg: &Arg) -> String {
    if arg.is_positional() {
        return dest_name(arg.get_id().as_str());
    }
    let mut names = Vec::new();
    if let Some(s) = arg.get_short() {
        names.push(format!("-{s}"));
    }
    if let Some(l) = arg.get_long() {
        names.push(format!("--{l}"));
    }
    names.join("/")
}

/// argparse's `dest` for our positional ids where they differ.
fn dest_name(id: &str) -> String {
    match id {
        "source" => "source_queue".into(),
        "dest" => "dest_queue".into(),
        "move_to" => "--move".into(),
        other => other.to_owned(),
    }
}

/// A clap name as printed in its errors (`--since <TS>`, `<QUEUE>`, `[QUEUE]`,
/// `-m <ID>`) back to the argument, shown argparse's way.
fn show_rendered(cmd: &Command, rendered: &str) -> String {
    let head = rendered.split(' ').next().unwrap_or(rendered);
    let found = if head.starts_with('-') {
        find_option(cmd, head.split('=').next().unwrap_or(head))
    } else {
        let name = head.trim_matches(|c| matches!(c, '<' | '>' | '[' | ']' | '.'));
        cmd.get_positionals().find(|a| {
            a.get_value_names().and_then(|v| v.first()).map_or_else(
                || a.get_id().as_str().eq_ignore_ascii_case(name),
                |v| v.as_str() == name,
            ) || a.get_id().as_str().eq_ignore_ascii_case(name)
        })
    };
    found.map_or_else(|| head.to_owned(), show)
}

fn context_str(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        _ => None,
    }
}

fn context_strs(e: &clap::Error, kind: ContextKind) -> Vec<String> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    }
}

/// A clap error in argparse's words.
fn reword(e: &clap::Error, cmd: &Command) -> String {
    let arg = || {
        context_str(e, ContextKind::InvalidArg)
            .map(|a| show_rendered(cmd, &a))
            .unwrap_or_default()
    };
    let value = || context_str(e, ContextKind::InvalidValue).unwrap_or_default();
    match e.kind() {
        ErrorKind::MissingRequiredArgument if cmd.get_name() == "delete" => {
            "one of the arguments queue --all is required".into()
        }
        ErrorKind::MissingRequiredArgument => {
            let names: Vec<String> = context_strs(e, ContextKind::InvalidArg)
                .iter()
                .map(|a| show_rendered(cmd, a))
                .collect();
            format!("the following arguments are required: {}", names.join(", "))
        }
        ErrorKind::ArgumentConflict => {
            let first = arg();
            let second = context_str(e, ContextKind::PriorArg)
                .map(|a| show_rendered(cmd, &a))
                .unwrap_or_default();
            if [&first, &second]
                .iter()
                .all(|n| *n == "--move" || *n == "--since")
            {
                return "--move drains ALL messages from source queue, incompatible with --since filtering".into();
            }
            format!("argument {second}: not allowed with argument {first}")
        }
        ErrorKind::InvalidValue if value().is_empty() => {
            format!("argument {}: expected one argument", arg())
        }
        ErrorKind::InvalidValue => {
            let choices = context_strs(e, ContextKind::ValidValue);
            let quoted: Vec<String> = choices.iter().map(|c| format!("'{c}'")).collect();
            format!(
                "argument {}: invalid choice: '{}' (choose from {})",
                arg(),
                value(),
                quoted.join(", ")
            )
        }
        ErrorKind::ValueValidation => {
            format!("argument {}: invalid int value: '{}'", arg(), value())
        }
        ErrorKind::TooManyValues => {
            format!(
                "argument {}: ignored explicit argument '{}'",
                arg(),
                value()
            )
        }
        ErrorKind::InvalidSubcommand => {
            let word = context_str(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            // The reference's commands first, in its order, then ours.
            const REFERENCE: [&str; 10] = [
                "write",
                "read",
                "peek",
                "list",
                "delete",
                "move",
                "broadcast",
                "alias",
                "watch",
                "init",
            ];
            let mut names: Vec<&str> = cmd
                .get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(|s| s.get_name())
                .collect();
            names.sort_by_key(|n| {
                REFERENCE
                    .iter()
                    .position(|r| r == n)
                    .unwrap_or(REFERENCE.len())
            });
            let choices: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
            let dest = if cmd.get_name() == "broker" {
                "command".to_owned()
            } else {
                format!("{}_command", cmd.get_name())
            };
            format!(
                "argument {dest}: invalid choice: '{word}' (choose from {})",
                choices.join(", ")
            )
        }
        ErrorKind::NoEquals => format!("argument {}: expected one argument", arg()),
        ErrorKind::UnknownArgument => format!(
            "unrecognized arguments: {}",
            context_str(e, ContextKind::InvalidArg).unwrap_or_default()
        ),
        _ => {
            // Anything else: clap's own first line, without its `error: `.
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or_default();
            line.strip_prefix("error: ").unwrap_or(line).to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_like_words_follow_argparse() {
        for w in ["-x", "--bogus", "-5x", "--", "-1e3", "-.", "-1."] {
            assert!(looks_like_option(w), "{w}");
        }
        for w in ["x", "-", "-5", "-1.5", "-.5", "-x y", ""] {
            assert!(!looks_like_option(w), "{w}");
        }
    }
}
