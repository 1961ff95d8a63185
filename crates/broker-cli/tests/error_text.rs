//! Error lines are SimpleBroker 2.8.4's, word for word: scripts and test
//! suites match on `simplebroker: error: ...`. One table of command lines
//! with the exact last stderr line and exit code; it runs without the
//! reference, and when `LITEBROKER_REFERENCE` is set the reference is run on
//! the same table too, so the expected texts are checked against it.

mod common;

use common::{code, stderr, Sandbox};

/// (arguments, exit code, last line of stderr). Every line was produced by
/// SimpleBroker 2.8.4 on a database holding one message in queue `q`.
const TABLE: &[(&[&str], i32, &str)] = &[
    // Unknown options: a word starting with '-' is never a value.
    (&["write", "q", "-x"], 1, "simplebroker: error: the following arguments are required: message"),
    (&["write", "q", "--bogus"], 1, "simplebroker: error: the following arguments are required: message"),
    (&["write", "q", "-x", "-y"], 1, "simplebroker: error: the following arguments are required: message"),
    (&["write", "-x", "q"], 1, "simplebroker: error: the following arguments are required: message"),
    (&["broadcast", "-x"], 1, "simplebroker: error: the following arguments are required: message"),
    (&["read", "q", "-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["peek", "q", "-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["read", "q", "--json", "-t", "--bogus"], 1, "simplebroker: error: unrecognized arguments: --bogus"),
    (&["move", "q", "r", "-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["list", "-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["delete", "q", "-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["alias", "add", "a", "q", "-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["alias", "-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["init", "-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["watch", "q", "-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["-x"], 1, "simplebroker: error: unrecognized arguments: -x"),
    (&["init", "--force", "x"], 1, "simplebroker: error: unrecognized arguments: x"),
    (&["move", "a", "b", "c", "d"], 1, "simplebroker: error: unrecognized arguments: c d"),
    // Missing arguments and values.
    (&["write"], 1, "simplebroker: error: the following arguments are required: queue, message"),
    (&["write", "q"], 1, "simplebroker: error: the following arguments are required: message"),
    (&["read", "-x"], 1, "simplebroker: error: the following arguments are required: queue"),
    (&["read", "--since", "1"], 1, "simplebroker: error: the following arguments are required: queue"),
    (&["move", "q"], 1, "simplebroker: error: the following arguments are required: dest_queue"),
    (&["move", "q", "-x"], 1, "simplebroker: error: the following arguments are required: dest_queue"),
    (&["alias", "add", "a"], 1, "simplebroker: error: the following arguments are required: target"),
    (&["alias", "add", "-x", "q"], 1, "simplebroker: error: the following arguments are required: target"),
    (&["delete"], 1, "simplebroker: error: one of the arguments queue --all is required"),
    (&["delete", "-x"], 1, "simplebroker: error: one of the arguments queue --all is required"),
    (&["read", "q", "--since"], 1, "simplebroker: error: argument --since: expected one argument"),
    (&["read", "q", "--since", "-x"], 1, "simplebroker: error: argument --since: expected one argument"),
    (&["peek", "q", "-m", "-x"], 1, "simplebroker: error: argument -m/--message: expected one argument"),
    (&["list", "--pattern"], 1, "simplebroker: error: argument -p/--pattern: expected one argument"),
    (&["-d"], 1, "simplebroker: error: option -d requires an argument"),
    (&["-f"], 1, "simplebroker: error: option -f requires an argument"),
    (&["list", "--stats=1"], 1, "simplebroker: error: argument --stats: ignored explicit argument '1'"),
    // Mutually exclusive arguments.
    (&["delete", "q", "--all"], 1, "simplebroker: error: argument --all: not allowed with argument queue"),
    (&["delete", "--all", "q"], 1, "simplebroker: error: argument queue: not allowed with argument --all"),
    (&["watch", "q", "--peek", "--move", "r"], 1, "simplebroker: error: argument --move: not allowed with argument --peek"),
    (&["move", "q", "r", "--all", "-m", "1234567890123456789"], 1, "simplebroker: error: argument -m/--message: not allowed with argument --all"),
    // SimpleBroker's own checks.
    (&["move", "q", "q"], 1, "simplebroker: error: Source and destination queues cannot be the same"),
    (&["--status", "write", "q", "x"], 1, "simplebroker: error: --status cannot be used with commands"),
    (&["--vacuum", "write", "q", "x"], 1, "simplebroker: error: --vacuum cannot be used with commands"),
    (&["--compact"], 1, "simplebroker: error: --compact can only be used with --vacuum"),
    (&["watch", "q", "--move", "r", "--since", "1"], 1, "simplebroker: error: --move drains ALL messages from source queue, incompatible with --since filtering"),
    (&["read", "q", "--since", "-5"], 1, "simplebroker: error: Invalid timestamp: cannot be negative"),
    (&["read", "q", "--since="], 1, "simplebroker: error: Invalid timestamp: empty string"),
    (&["write", "-bad", "x"], 1, "simplebroker: error: the following arguments are required: message"),
    // Checks made after parsing print no `error:` in the reference.
    (&["read", "q", "-m", "1234567890123456789", "--all"], 1, "simplebroker: --message cannot be used with --all or --since"),
    (&["peek", "q", "-m", "1234567890123456789", "--since", "1"], 1, "simplebroker: --message cannot be used with --all or --since"),
    (&["move", "q", "r", "-m", "1234567890123456789", "--since", "1"], 1, "simplebroker: --message cannot be used with --since"),
    (&["delete", "--all", "-m", "1234567890123456789"], 1, "simplebroker: --message requires a queue name"),
    (&["alias"], 1, "simplebroker: alias subcommand is required"),
];

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

fn check(sb: &Sandbox, run: impl Fn(&[&str]) -> std::process::Output, who: &str) {
    let mut failures = Vec::new();
    for (args, want_code, want) in TABLE {
        let out = run(args);
        let err = stderr(&out);
        if code(&out) != *want_code || last_line(&err) != *want {
            failures.push(format!(
                "{who} {args:?}: exit {} {:?}, want exit {want_code} {want:?}",
                code(&out),
                last_line(&err)
            ));
        }
    }
    // Refusals leave the one message alone.
    assert!(sb.db().exists());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_lines_match_the_fixed_table() {
    let sb = Sandbox::new();
    assert_eq!(code(&sb.run(&["write", "q", "m"])), 0);
    check(&sb, |a| sb.run(a), "litebroker");
    assert_eq!(common::ok(&sb.run(&["peek", "q"])), "m\n");
}

#[test]
fn error_lines_match_the_reference() {
    if std::env::var_os("LITEBROKER_REFERENCE").is_none() {
        return; // the fixed table above carries the reference's texts
    }
    let sb = Sandbox::new();
    assert_eq!(code(&sb.run_ref(&["write", "q", "m"])), 0);
    check(&sb, |a| sb.run_ref(a), "reference");
    // And both programs agree line by line on the same database.
    for (args, _, _) in TABLE {
        let ours = sb.run(args);
        let theirs = sb.run_ref(args);
        assert_eq!(
            (code(&ours), last_line(&stderr(&ours)).to_owned()),
            (code(&theirs), last_line(&stderr(&theirs)).to_owned()),
            "{args:?}"
        );
    }
}

#[test]
fn a_dash_body_needs_double_dash_and_negative_numbers_are_bodies() {
    let sb = Sandbox::new();
    for body in ["-x", "--x", "-"] {
        let out = sb.run_stdin(&["write", "q", "--", body], b"from stdin");
        assert_eq!(code(&out), 0, "{body}: {}", stderr(&out));
    }
    for body in ["-5", "-1.5", "-x y"] {
        assert_eq!(code(&sb.run(&["write", "q", body])), 0, "{body}");
    }
    let all = common::ok(&sb.run(&["read", "q", "--all"]));
    assert_eq!(all, "-x\n--x\nfrom stdin\n-5\n-1.5\n-x y\n");
}

#[test]
fn quiet_hides_the_errors_the_reference_hides() {
    let sb = Sandbox::new();
    for args in [
        &["-q", "read", "q", "-m", "1234567890123456789", "--all"][..],
        &["-q", "delete", "--all", "-m", "1234567890123456789"],
        &["alias", "-q"],
    ] {
        let out = sb.run(args);
        assert_eq!((code(&out), stderr(&out)), (1, String::new()), "{args:?}");
    }
    let out = sb.run(&["-q", "move", "q", "q"]);
    assert_eq!(
        stderr(&out),
        "simplebroker: error: Source and destination queues cannot be the same\n"
    );
}
