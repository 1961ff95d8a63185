//! Where litebroker deliberately differs from SimpleBroker 2.8.4.
//!
//! **These tests fail against the Python reference by design.** They cover
//! (1) the reference defects where litebroker follows the SimpleBroker README
//! instead (`@alias` in every command, project scope with the default name,
//! explicit `-d`/`-f` winning over project scope, prompt exit on Ctrl-C, a
//! foreign database never being modified), and (2) litebroker's additions
//! (`--after`, `--before`, `dump`, `load`, `completions`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{assert_code, json_messages, ok, wait_bounded, Sandbox};

// ---------------------------------------------------------- @alias everywhere

/// A sandbox with alias `a -> t` and queue `t` holding `bodies`.
fn aliased(bodies: &[&str]) -> Sandbox {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["alias", "add", "a", "t"]), 0);
    for body in bodies {
        sb.write("t", body);
    }
    sb
}

#[test]
fn alias_resolves_in_peek() {
    let sb = aliased(&["x", "y"]);
    assert_eq!(ok(&sb.run(&["peek", "@a"])), "x\n");
    assert_eq!(ok(&sb.run(&["peek", "@a", "--all"])), "x\ny\n");
    assert_code(&sb.run(&["peek", "@undefined"]), 1);
}

#[test]
fn alias_resolves_in_move_source_and_destination() {
    let sb = aliased(&["x", "y"]);
    assert_eq!(ok(&sb.run(&["move", "@a", "dst"])), "x\n");
    assert_eq!(ok(&sb.run(&["move", "dst", "@a"])), "x\n");
    assert_eq!(ok(&sb.run(&["peek", "t", "--all"])), "x\ny\n");
    assert_code(&sb.run(&["move", "@a", "t"]), 1); // same queue once resolved
    assert_eq!(ok(&sb.run(&["list"])), "t: 2\n");
}

#[test]
fn alias_resolves_in_delete() {
    let sb = aliased(&["x", "y"]);
    let id = sb.ids("t")[0].to_string();
    assert_code(&sb.run(&["delete", "@a", "-m", &id]), 0);
    assert_eq!(ok(&sb.run(&["peek", "t", "--all"])), "y\n");
    assert_code(&sb.run(&["delete", "@a"]), 0);
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "");
    assert_eq!(ok(&sb.run(&["alias", "list"])), "a -> t\n");
}

/// Spawns `broker watch <args>` with stdout piped.
fn spawn_watch(sb: &Sandbox, args: &[&str]) -> Child {
    let mut cmd = sb.broker();
    cmd.arg("watch")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("spawn watch")
}

/// Sends SIGINT to `child` and asserts a prompt exit with status 0.
fn interrupt(child: &mut Child) {
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let status = wait_bounded(child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "watch must exit 0 on SIGINT");
}

#[test]
fn alias_resolves_in_watch_and_ctrl_c_exits_promptly() {
    let sb = aliased(&["x"]);
    let mut child = spawn_watch(&sb, &["@a", "--peek"]);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "x\n");
    interrupt(&mut child);
    assert_eq!(ok(&sb.run(&["peek", "t"])), "x\n");
}

#[test]
fn ctrl_c_stops_a_consuming_watch_promptly() {
    let sb = aliased(&["x"]);
    let mut child = spawn_watch(&sb, &["t"]);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "x\n");
    interrupt(&mut child);
    assert_code(&sb.run(&["read", "t"]), 2);
}

// ------------------------------------------------------------ project scope

#[test]
fn project_scope_works_with_the_default_name() {
    let sb = Sandbox::new();
    let deep = sb.path().join("a/b");
    std::fs::create_dir_all(&deep).unwrap();
    assert_code(&sb.run(&["init"]), 0);
    let env = [("BROKER_PROJECT_SCOPE", "true")];
    assert_code(
        &sb.run_in(&deep, &["write", "tasks", "process data"], &env),
        0,
    );
    assert!(
        !deep.join(".broker.db").exists(),
        "must use the project database"
    );
    assert_eq!(
        ok(&sb.run_in(&deep, &["peek", "tasks"], &env)),
        "process data\n"
    );
    assert_eq!(ok(&sb.run(&["read", "tasks"])), "process data\n");
}

#[test]
fn project_scope_searches_from_the_cwd_not_the_global_location() {
    let sb = Sandbox::new();
    let (proj, global) = (sb.path().join("proj/sub"), sb.path().join("global"));
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::create_dir_all(&global).unwrap();
    assert_code(&sb.run_in(&proj.join(".."), &["init"], &[]), 0);
    assert_code(&sb.run_in(&global, &["init"], &[]), 0);
    let global_s = global.display().to_string();
    let env = [
        ("BROKER_PROJECT_SCOPE", "1"),
        ("BROKER_DEFAULT_DB_LOCATION", global_s.as_str()),
    ];
    assert_code(&sb.run_in(&proj, &["write", "q", "m"], &env), 0);
    assert_eq!(ok(&sb.run_in(&proj.join(".."), &["read", "q"], &[])), "m\n");
    assert_code(&sb.run_in(&global, &["read", "q"], &[]), 2);
}

#[test]
fn explicit_dir_wins_over_project_scope() {
    let sb = Sandbox::new();
    let (deep, other) = (sb.path().join("a/b"), sb.path().join("other"));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let name = ("BROKER_DEFAULT_DB_NAME", "proj.db");
    assert_code(&sb.run_env(&["init"], &[name]), 0);
    let env = [("BROKER_PROJECT_SCOPE", "1"), name];
    let other_s = other.display().to_string();
    assert_code(
        &sb.run_in(&deep, &["-d", &other_s, "write", "q", "m"], &env),
        0,
    );
    assert_eq!(ok(&sb.run_in(&other, &["read", "q"], &[name])), "m\n");
    assert_eq!(ok(&sb.run_env(&["list"], &[name])), "");
}

#[test]
fn explicit_relative_file_wins_over_project_scope() {
    let sb = Sandbox::new();
    let deep = sb.path().join("a/b");
    std::fs::create_dir_all(&deep).unwrap();
    assert_code(&sb.run(&["init"]), 0);
    let env = [("BROKER_PROJECT_SCOPE", "1")];
    assert_code(
        &sb.run_in(&deep, &["-f", "local.db", "write", "q", "m"], &env),
        0,
    );
    assert!(deep.join("local.db").exists());
    assert_eq!(ok(&sb.run(&["list"])), "");
}

// ------------------------------------------------------ foreign databases

#[test]
fn foreign_sqlite_database_is_never_modified() {
    let sb = Sandbox::new();
    let conn = rusqlite::Connection::open(sb.db()).unwrap();
    conn.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value);
         INSERT INTO meta VALUES ('magic', 'other-app');",
    )
    .unwrap();
    drop(conn);
    let before = std::fs::read(sb.db()).unwrap();
    for args in [&["peek", "q"][..], &["write", "q", "m"], &["list"]] {
        assert_code(&sb.run(args), 1);
    }
    assert!(
        std::fs::read(sb.db()).unwrap() == before,
        "the foreign file was modified"
    );
    assert!(!sb.path().join(".broker.db-wal").exists());
}

// ---------------------------------------------------- --after / --before

/// 2024-01-15T14:30:00Z as Unix seconds.
const T0: i64 = 1_705_329_000;

/// Queue `q` with messages at T0-1 s, T0+0.5 s and T0+1 s.
fn timed_queue() -> (Sandbox, Vec<i64>) {
    let sb = Sandbox::new();
    let ts = [
        (T0 - 1) * 1_000_000_000,
        T0 * 1_000_000_000 + 500_000_000,
        (T0 + 1) * 1_000_000_000,
    ];
    let ts: Vec<i64> = ts.iter().map(|t| t & !0xFFF).collect();
    let rows: Vec<(i64, String)> = ts
        .iter()
        .zip(["early", "middle", "late"])
        .map(|(t, b)| (*t, b.to_string()))
        .collect();
    sb.insert_rows("q", &rows);
    (sb, ts)
}

#[test]
fn after_is_a_synonym_of_since() {
    let (sb, ts) = timed_queue();
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--all", "--after", "1705329000"])),
        "middle\nlate\n"
    );
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--all", "--after=2024-01-15T14:30:00Z"])),
        "middle\nlate\n"
    );
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--all", "--after", &ts[1].to_string()])),
        "late\n"
    );
    assert_code(&sb.run(&["peek", "q", "--after", "1e9"]), 1);
}

#[test]
fn before_selects_strictly_older_messages() {
    let (sb, ts) = timed_queue();
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--all", "--before", "1705329000"])),
        "early\n"
    );
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--all", "--before", &ts[1].to_string()])),
        "early\n"
    );
    let after_middle = (ts[1] + 1).to_string();
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--all", "--before", &after_middle])),
        "early\nmiddle\n"
    );
    assert_code(&sb.run(&["peek", "q", "--before", "2024-01-01"]), 2);
}

#[test]
fn after_and_before_combine_into_a_window() {
    let (sb, _) = timed_queue();
    let window = ["--after", "1705328999.5", "--before", "1705329000.9"];
    let args: Vec<&str> = ["peek", "q", "--all"].into_iter().chain(window).collect();
    assert_eq!(ok(&sb.run(&args)), "middle\n");
}

#[test]
fn read_and_move_honour_before() {
    let (sb, _) = timed_queue();
    assert_eq!(
        ok(&sb.run(&["move", "q", "old", "--all", "--before", "1705329001"])),
        "early\nmiddle\n"
    );
    assert_code(&sb.run(&["read", "q", "--before", "1705329001"]), 2);
    let (sb, _) = timed_queue();
    assert_eq!(
        ok(&sb.run(&["read", "q", "--all", "--before", "2024-01-15T14:30:00Z"])),
        "early\n"
    );
    assert_eq!(ok(&sb.run(&["peek", "q", "--all"])), "middle\nlate\n");
}

#[test]
fn malformed_before_is_refused_and_nothing_consumed() {
    let (sb, _) = timed_queue();
    for bad in ["1e9", "-5", "abc", "", "9223372036854775808"] {
        assert_code(
            &sb.run(&["read", "q", "--all", &format!("--before={bad}")]),
            1,
        );
    }
    assert_eq!(ok(&sb.run(&["list"])), "q: 3\n");
}

// ---------------------------------------------------------- dump / load

/// Messages over three queues, interleaved, with awkward bodies; one claimed.
fn dump_source() -> Sandbox {
    let sb = Sandbox::new();
    for (q, body) in [
        ("a", "first"),
        ("b", "two\nlines"),
        ("a", "quote \" and \\ tab\t"),
        ("c", "üñí 🚀"),
        ("b", ""),
    ] {
        sb.write(q, body);
    }
    sb.write("c", "consumed");
    let consumed = sb.ids("c")[1].to_string();
    assert_code(&sb.run(&["delete", "c", "-m", &consumed]), 0);
    sb
}

/// Parses dump output into `(queue, id, body)` triples.
fn parse_dump(text: &str) -> Vec<(String, i64, String)> {
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("NDJSON line");
            assert_eq!(v.as_object().unwrap().len(), 3, "{line}");
            (
                v["queue"].as_str().unwrap().into(),
                v["id"].as_i64().unwrap(),
                v["body"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn dump_prints_every_unconsumed_message_in_insertion_order() {
    let sb = dump_source();
    let (a, b, c) = (sb.ids("a"), sb.ids("b"), sb.ids("c"));
    let expected = vec![
        ("a".to_string(), a[0], "first".to_string()),
        ("b".into(), b[0], "two\nlines".into()),
        ("a".into(), a[1], "quote \" and \\ tab\t".into()),
        ("c".into(), c[0], "üñí 🚀".into()),
        ("b".into(), b[1], "".into()),
    ];
    let text = ok(&sb.run(&["dump"]));
    assert_eq!(parse_dump(&text), expected);
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "{{\"queue\": \"a\", \"id\": {}, \"body\": \"first\"}}",
            a[0]
        )
    );
}

#[test]
fn dump_can_select_queues() {
    let sb = dump_source();
    let picked: Vec<String> = parse_dump(&ok(&sb.run(&["dump", "c", "a"])))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(picked, ["a", "a", "c"]);
}

#[test]
fn dump_then_load_round_trips_ids_bodies_and_order() {
    let src = dump_source();
    let dump = ok(&src.run(&["dump"]));
    let dst = Sandbox::new();
    assert_code(&dst.run_stdin(&["load"], dump.as_bytes()), 0);
    assert_eq!(ok(&dst.run(&["dump"])), dump);
    for q in ["a", "b", "c"] {
        let peek = |sb: &Sandbox| json_messages(&sb.run(&["peek", q, "--all", "--json"]));
        assert_eq!(peek(&dst), peek(&src), "queue {q}");
    }
    assert_eq!(ok(&dst.run(&["list", "--stats"])), "a: 2\nb: 2\nc: 1\n");
}

#[test]
fn load_reads_a_file_argument_and_new_writes_get_larger_ids() {
    let src = dump_source();
    let dst = Sandbox::new();
    std::fs::write(dst.path().join("backup.ndjson"), ok(&src.run(&["dump"]))).unwrap();
    assert_code(&dst.run(&["load", "backup.ndjson"]), 0);
    dst.write("a", "after load");
    let ids = dst.ids("a");
    assert_eq!(ids.len(), 3);
    assert!(ids[2] > *src.ids("b").last().unwrap());
    assert_eq!(
        ok(&dst.run(&["read", "a", "--all"])),
        "first\nquote \" and \\ tab\t\nafter load\n"
    );
}

#[test]
fn load_is_all_or_nothing() {
    let src = dump_source();
    let mut dump = ok(&src.run(&["dump"]));
    dump.push_str("{\"queue\": \"a\", \"id\": \"not a number\", \"body\": \"x\"}\n");
    let dst = Sandbox::new();
    let out = dst.run_stdin(&["load"], dump.as_bytes());
    assert_code(&out, 1);
    assert!(!out.stderr.is_empty());
    assert_eq!(ok(&dst.run(&["list", "--stats"])), "");
}

// ------------------------------------------------------------- completions

#[test]
fn completions_print_a_script_for_each_shell() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&sb.run(&["completions", shell]));
        assert!(
            script.len() > 200 && script.contains("broker"),
            "{shell}: {script}"
        );
        assert!(
            script.contains("write") && script.contains("peek"),
            "{shell}"
        );
    }
    assert!(!sb.db().exists(), "completions must not touch the database");
}

// ------------------------------------------------- usage errors of additions

#[test]
fn usage_errors_of_the_additions_exit_1() {
    let sb = Sandbox::new();
    for args in [
        &["completions"][..],
        &["completions", "tcsh"],
        &["dump", "--bogus"],
        &["dump", "-bad"],
        &["load", "a", "b"],
        &["peek", "q", "--before"],
        &["peek", "q", "--after"],
    ] {
        let out = sb.run(args);
        assert_code(&out, 1);
        assert!(out.stdout.is_empty() && !out.stderr.is_empty(), "{args:?}");
    }
}
