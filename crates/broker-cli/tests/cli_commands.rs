//! Every command and option of the `broker` CLI, checked byte for byte against
//! SimpleBroker 2.8.4's measured behaviour (stdout, exit code, and whether
//! stderr is empty).
//!
//! Run against the reference itself with
//! `LITEBROKER_BROKER_BIN=<venv>/bin/broker cargo test -p broker-cli --test cli_commands`.

mod common;

use common::{assert_code, json_messages, ok, stderr, stdout, Sandbox};

const MAX_BODY: usize = 10 * 1024 * 1024;

/// A sandbox whose queue `q` holds `bodies`, written in order.
fn with_queue(bodies: &[&str]) -> Sandbox {
    let sb = Sandbox::new();
    for body in bodies {
        sb.write("q", body);
    }
    sb
}

/// The canonical path of the sandbox database, as printed by informational lines.
fn db_display(sb: &Sandbox) -> String {
    sb.path()
        .canonicalize()
        .unwrap()
        .join(".broker.db")
        .display()
        .to_string()
}

/// The id of the `index`-th unclaimed message of `queue`.
fn id_at(sb: &Sandbox, queue: &str, index: usize) -> String {
    sb.ids(queue)[index].to_string()
}

/// Asserts exit 2 with nothing on stdout or stderr.
fn assert_silent_2(out: &std::process::Output) {
    assert_code(out, 2);
    assert!(out.stdout.is_empty(), "stdout: {:?}", stdout(out));
    assert!(out.stderr.is_empty(), "stderr: {}", stderr(out));
}

// ----------------------------------------------------------------- write

#[test]
fn write_prints_nothing_and_read_returns_the_body() {
    let sb = Sandbox::new();
    let out = sb.run(&["write", "q", "hello"]);
    assert_eq!(ok(&out), "");
    assert!(out.stderr.is_empty());
    assert_eq!(ok(&sb.run(&["read", "q"])), "hello\n");
}

#[test]
fn write_dash_reads_stdin_verbatim_including_trailing_newline() {
    let sb = Sandbox::new();
    assert_code(&sb.run_stdin(&["write", "q", "-"], b"line1\nline2\n"), 0);
    assert_eq!(
        json_messages(&sb.run(&["peek", "q", "--json"]))[0].0,
        "line1\nline2\n"
    );
}

#[test]
fn write_accepts_an_empty_body() {
    let sb = with_queue(&[""]);
    assert_eq!(json_messages(&sb.run(&["peek", "q", "--json"]))[0].0, "");
    assert_eq!(ok(&sb.run(&["read", "q"])), "\n");
    assert_silent_2(&sb.run(&["read", "q"]));
}

#[test]
fn write_accepts_unicode_and_newlines_in_arguments() {
    let sb = with_queue(&["ship it 🚀 ü", "a\nb"]);
    let bodies: Vec<String> = json_messages(&sb.run(&["peek", "q", "--all", "--json"]))
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(bodies, ["ship it 🚀 ü", "a\nb"]);
}

#[test]
fn write_accepts_nul_bytes_via_stdin() {
    let sb = Sandbox::new();
    assert_code(&sb.run_stdin(&["write", "q", "-"], b"a\0b"), 0);
    assert_eq!(ok(&sb.run(&["read", "q"])).as_bytes(), b"a\0b\n");
}

#[test]
fn write_accepts_exactly_10_mib_via_stdin() {
    let sb = Sandbox::new();
    let body = "x".repeat(MAX_BODY);
    assert_code(&sb.run_stdin(&["write", "q", "-"], body.as_bytes()), 0);
    let out = sb.run(&["read", "q"]);
    assert_code(&out, 0);
    assert_eq!(out.stdout.len(), MAX_BODY + 1);
    assert!(out.stdout[..MAX_BODY] == *body.as_bytes() && out.stdout[MAX_BODY] == b'\n');
}

#[test]
fn write_rejects_10_mib_plus_one_byte_via_stdin_and_writes_nothing() {
    let sb = Sandbox::new();
    let body = "x".repeat(MAX_BODY + 1);
    let out = sb.run_stdin(&["write", "q", "-"], body.as_bytes());
    assert_code(&out, 1);
    assert!(!out.stderr.is_empty());
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "");
}

#[test]
fn write_size_limit_counts_utf8_bytes_not_characters() {
    let sb = Sandbox::new();
    let body = format!("{}x", "é".repeat(MAX_BODY / 2)); // 10 MiB + 1 byte, ~5 M chars
    assert_code(&sb.run_stdin(&["write", "q", "-"], body.as_bytes()), 1);
    assert_silent_2(&sb.run(&["peek", "q"]));
}

#[test]
fn write_accepts_a_large_argument() {
    let sb = Sandbox::new();
    let body = "y".repeat(100_000);
    sb.write("q", &body);
    assert_eq!(ok(&sb.run(&["read", "q"])), format!("{body}\n"));
}

#[test]
fn write_with_extra_positional_is_a_usage_error() {
    let sb = Sandbox::new();
    let out = sb.run(&["write", "q", "a", "b"]);
    assert_code(&out, 1);
    assert!(!out.stderr.is_empty());
}

// ----------------------------------------------------------- read / peek

#[test]
fn read_consumes_in_fifo_order_and_peek_does_not() {
    let sb = with_queue(&["a", "b", "c"]);
    assert_eq!(ok(&sb.run(&["read", "q"])), "a\n");
    assert_eq!(ok(&sb.run(&["peek", "q"])), "b\n");
    assert_eq!(ok(&sb.run(&["peek", "q"])), "b\n");
    assert_eq!(ok(&sb.run(&["read", "q"])), "b\n");
    assert_eq!(ok(&sb.run(&["read", "q"])), "c\n");
    assert_silent_2(&sb.run(&["read", "q"]));
}

#[test]
fn peek_all_then_read_all_print_every_message_in_order() {
    let sb = with_queue(&["a", "b", "c"]);
    assert_eq!(ok(&sb.run(&["peek", "q", "--all"])), "a\nb\nc\n");
    assert_eq!(ok(&sb.run(&["read", "q", "--all"])), "a\nb\nc\n");
    assert_silent_2(&sb.run(&["read", "q", "--all"]));
}

#[test]
fn empty_or_missing_queue_exits_2_for_read_peek_and_move() {
    let sb = with_queue(&["other"]);
    for args in [
        &["read", "none"][..],
        &["peek", "none"],
        &["read", "none", "--all"],
        &["peek", "none", "--all"],
        &["move", "none", "dst"],
        &["move", "none", "dst", "--all"],
    ] {
        assert_silent_2(&sb.run(args));
    }
    assert_eq!(ok(&sb.run(&["list"])), "q: 1\n");
}

#[test]
fn read_on_a_new_database_exits_2_and_creates_it() {
    let sb = Sandbox::new();
    assert_silent_2(&sb.run(&["read", "q"]));
    assert!(sb.db().exists());
}

#[test]
fn json_output_has_the_exact_byte_layout_and_escapes() {
    let sb = Sandbox::new();
    let body = "q\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f} é 🚀 \u{2028}\0end";
    assert_code(&sb.run_stdin(&["write", "q", "-"], body.as_bytes()), 0);
    let id = id_at(&sb, "q", 0);
    let escaped = "q\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f} é 🚀 \u{2028}\\u0000end";
    let expected = format!("{{\"message\": \"{escaped}\", \"timestamp\": {id}}}\n");
    assert_eq!(ok(&sb.run(&["peek", "q", "--json"])), expected);
    assert_eq!(ok(&sb.run(&["read", "q", "--json", "-t"])), expected);
}

#[test]
fn json_escapes_every_c0_control_as_lowercase_u00xx() {
    let sb = Sandbox::new();
    let body: String = (0u8..0x20).map(char::from).collect();
    assert_code(&sb.run_stdin(&["write", "q", "-"], body.as_bytes()), 0);
    let id = id_at(&sb, "q", 0);
    let escaped: String = (0u8..0x20)
        .map(|c| match c {
            8 => "\\b".to_string(),
            9 => "\\t".to_string(),
            10 => "\\n".to_string(),
            12 => "\\f".to_string(),
            13 => "\\r".to_string(),
            c => format!("\\u{c:04x}"),
        })
        .collect();
    let expected = format!("{{\"message\": \"{escaped}\", \"timestamp\": {id}}}\n");
    assert_eq!(ok(&sb.run(&["peek", "q", "--json"])), expected);
}

#[test]
fn json_all_prints_one_object_per_message() {
    let sb = with_queue(&["a", "b\nc"]);
    let ids = sb.ids("q");
    let expected = format!(
        "{{\"message\": \"a\", \"timestamp\": {}}}\n{{\"message\": \"b\\nc\", \"timestamp\": {}}}\n",
        ids[0], ids[1]
    );
    let out = sb.run(&["read", "q", "--all", "--json"]);
    assert_eq!(ok(&out), expected);
    assert!(out.stderr.is_empty(), "no newline warning in JSON mode");
}

#[test]
fn timestamps_flag_prefixes_the_19_digit_id_and_a_tab() {
    let sb = with_queue(&["a", "b"]);
    let ids = sb.ids("q");
    assert!(ids.iter().all(|id| id.to_string().len() == 19));
    assert!(ids[0] < ids[1]);
    assert_eq!(
        ok(&sb.run(&["peek", "q", "-t"])),
        format!("{}\ta\n", ids[0])
    );
    let expected = format!("{}\ta\n{}\tb\n", ids[0], ids[1]);
    assert_eq!(
        ok(&sb.run(&["read", "q", "--all", "--timestamps"])),
        expected
    );
}

#[test]
fn message_option_selects_one_message_by_id() {
    let sb = with_queue(&["a", "b", "c"]);
    let id_b = id_at(&sb, "q", 1);
    assert_eq!(ok(&sb.run(&["peek", "q", "-m", &id_b])), "b\n");
    assert_eq!(ok(&sb.run(&["read", "q", "--message", &id_b])), "b\n");
    assert_silent_2(&sb.run(&["read", "q", "-m", &id_b]));
    assert_eq!(ok(&sb.run(&["peek", "q", "--all"])), "a\nc\n");
}

#[test]
fn malformed_message_id_exits_2_silently() {
    let sb = with_queue(&["a"]);
    for bad in [
        "123",
        "abcdefghijklmnopqrs",
        "12345678901234567890",
        "9999999999999999999",
        " 1795394629224624128",
    ] {
        assert_silent_2(&sb.run(&["peek", "q", "-m", bad]));
        assert_silent_2(&sb.run(&["read", "q", "-m", bad]));
    }
    assert_eq!(ok(&sb.run(&["peek", "q"])), "a\n");
}

#[test]
fn message_id_of_another_queue_is_not_found() {
    let sb = with_queue(&["a"]);
    sb.write("other", "x");
    let foreign = id_at(&sb, "other", 0);
    assert_silent_2(&sb.run(&["peek", "q", "-m", &foreign]));
    assert_silent_2(&sb.run(&["read", "q", "-m", &foreign]));
    assert_silent_2(&sb.run(&["peek", "q", "-m", "1000000000000000000"]));
    assert_eq!(ok(&sb.run(&["list"])), "other: 1\nq: 1\n");
}

#[test]
fn message_option_with_all_or_since_is_an_error() {
    let sb = with_queue(&["a"]);
    let id = id_at(&sb, "q", 0);
    assert_code(&sb.run(&["read", "q", "-m", &id, "--all"]), 1);
    assert_code(&sb.run(&["peek", "q", "-m", &id, "--since", "0"]), 1);
    assert_code(&sb.run(&["move", "q", "r", "-m", &id, "--all"]), 1);
    // The format check comes first: a malformed id with --all is still "nothing matched".
    assert_silent_2(&sb.run(&["read", "q", "-m", "12", "--all"]));
    assert_eq!(ok(&sb.run(&["peek", "q"])), "a\n");
}

// ---------------------------------------------------------------- --since

/// 2024-01-15T14:30:00Z as Unix seconds.
const T0: i64 = 1_705_329_000;

/// Queue `q` with three messages at T0-1 s, T0+0.5 s and T0+1 s.
fn timed_queue() -> (Sandbox, Vec<i64>) {
    let sb = Sandbox::new();
    let ns = |n: i64| n & !0xFFF;
    let ts = vec![
        ns((T0 - 1) * 1_000_000_000),
        ns(T0 * 1_000_000_000 + 500_000_000),
        ns((T0 + 1) * 1_000_000_000),
    ];
    let rows: Vec<(i64, String)> = ts
        .iter()
        .zip(["early", "middle", "late"])
        .map(|(t, b)| (*t, b.to_string()))
        .collect();
    sb.insert_rows("q", &rows);
    (sb, ts)
}

#[test]
fn since_accepts_seconds_milliseconds_nanoseconds_and_iso_forms() {
    let (sb, _) = timed_queue();
    for bound in [
        "1705329000",
        "1705329000s",
        " 1705329000 ",
        "0001705329000",
        "1705329000000",
        "1705329000000ms",
        "1705329000000000000ns",
        "2024-01-15T14:30:00Z",
        "2024-01-15T14:30:00",
        "2024-01-15T14:30",
        "2024-01-15 14:30:00",
        "2024-01-15T16:30:00+02:00",
        "2024-01-15T14:30:00.000Z",
    ] {
        assert_eq!(
            ok(&sb.run(&["peek", "q", "--all", "--since", bound])),
            "middle\nlate\n",
            "--since {bound}"
        );
    }
}

#[test]
fn since_dates_and_fractions() {
    let (sb, _) = timed_queue();
    for (bound, expected) in [
        ("2024-01-15", "early\nmiddle\nlate\n"),
        ("20240115", "early\nmiddle\nlate\n"),
        ("1705329000.6", "late\n"),
        ("1705328999.5", "middle\nlate\n"),
        ("17592186044416", "early\nmiddle\nlate\n"),
    ] {
        assert_eq!(
            ok(&sb.run(&["peek", "q", "--all", "--since", bound])),
            expected,
            "--since {bound}"
        );
    }
}

#[test]
fn since_native_id_is_a_strict_lower_bound() {
    let (sb, ts) = timed_queue();
    let middle = ts[1].to_string();
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--all", "--since", &middle])),
        "late\n"
    );
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--all", "--since", &format!("{middle}ns")])),
        "late\n"
    );
    let just_below = (ts[1] - 1).to_string();
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--since", &just_below])),
        "middle\n"
    );
}

#[test]
fn since_with_no_match_exits_2() {
    let (sb, _) = timed_queue();
    assert_silent_2(&sb.run(&["peek", "q", "--all", "--since", "1705329001"]));
    assert_silent_2(&sb.run(&["read", "q", "--since", "2099-01-01"]));
    assert_silent_2(&sb.run(&["move", "q", "r", "--since", "4102444800000ms"]));
    assert_eq!(ok(&sb.run(&["list"])), "q: 3\n");
}

#[test]
fn read_and_move_with_since_take_only_newer_messages() {
    let (sb, _) = timed_queue();
    assert_eq!(
        ok(&sb.run(&["read", "q", "--since=1705329000"])),
        "middle\n"
    );
    assert_eq!(
        ok(&sb.run(&["move", "q", "r", "--since", "1705329000"])),
        "late\n"
    );
    assert_eq!(ok(&sb.run(&["peek", "q", "--all"])), "early\n");
    assert_eq!(ok(&sb.run(&["peek", "r", "--all"])), "late\n");
}

// ------------------------------------------------------------------ move

#[test]
fn move_transfers_the_oldest_message_and_prints_it() {
    let sb = with_queue(&["a", "b"]);
    let id_a = id_at(&sb, "q", 0);
    assert_eq!(ok(&sb.run(&["move", "q", "r"])), "a\n");
    assert_eq!(ok(&sb.run(&["peek", "r", "-t"])), format!("{id_a}\ta\n"));
    assert_eq!(ok(&sb.run(&["list"])), "q: 1\nr: 1\n");
}

#[test]
fn move_all_keeps_ids_and_merges_in_insertion_order() {
    let sb = Sandbox::new();
    sb.write("src", "a");
    sb.write("dst", "b");
    sb.write("src", "c");
    let before = [sb.ids("src"), sb.ids("dst")].concat();
    assert_eq!(ok(&sb.run(&["move", "src", "dst", "--all"])), "a\nc\n");
    assert_eq!(ok(&sb.run(&["peek", "dst", "--all"])), "a\nb\nc\n");
    let mut after = sb.ids("dst");
    after.sort();
    let mut before = before;
    before.sort();
    assert_eq!(after, before);
    assert_eq!(ok(&sb.run(&["list"])), "dst: 3\n");
}

#[test]
fn move_json_and_timestamps_formats() {
    let sb = with_queue(&["a", "b"]);
    let ids = sb.ids("q");
    let json = format!("{{\"message\": \"a\", \"timestamp\": {}}}\n", ids[0]);
    assert_eq!(ok(&sb.run(&["move", "q", "r", "--json"])), json);
    assert_eq!(
        ok(&sb.run(&["move", "q", "r", "-t"])),
        format!("{}\tb\n", ids[1])
    );
}

#[test]
fn move_to_the_same_queue_is_an_error() {
    let sb = with_queue(&["a"]);
    let out = sb.run(&["move", "q", "q"]);
    assert_code(&out, 1);
    assert!(!out.stderr.is_empty());
    assert_eq!(ok(&sb.run(&["peek", "q"])), "a\n");
}

#[test]
fn move_by_id_revives_a_claimed_message() {
    let sb = with_queue(&["a", "b"]);
    let id_a = id_at(&sb, "q", 0);
    assert_code(&sb.run(&["delete", "q", "-m", &id_a]), 0);
    assert_eq!(ok(&sb.run(&["peek", "q", "--all"])), "b\n");
    assert_eq!(ok(&sb.run(&["move", "q", "r", "-m", &id_a])), "a\n");
    assert_eq!(ok(&sb.run(&["read", "r", "-t"])), format!("{id_a}\ta\n"));
    assert_eq!(ok(&sb.run(&["list"])), "q: 1\n");
}

#[test]
fn move_by_unknown_or_malformed_id_exits_2() {
    let sb = with_queue(&["a"]);
    assert_silent_2(&sb.run(&["move", "q", "r", "-m", "1000000000000000000"]));
    assert_silent_2(&sb.run(&["move", "q", "r", "-m", "abc"]));
    assert_eq!(ok(&sb.run(&["list"])), "q: 1\n");
}

// ------------------------------------------------------------------ list

#[test]
fn list_orders_queues_by_byte_order() {
    let sb = Sandbox::new();
    for q in ["a.b", "a", "_u", "B", "9z", "a-b", "b"] {
        sb.write(q, "m");
    }
    sb.write("a", "m2");
    let expected = "9z: 1\nB: 1\n_u: 1\na: 2\na-b: 1\na.b: 1\nb: 1\n";
    assert_eq!(ok(&sb.run(&["list"])), expected);
}

#[test]
fn list_of_an_empty_database_prints_nothing() {
    let sb = Sandbox::new();
    assert_eq!(ok(&sb.run(&["list"])), "");
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "");
}

#[test]
fn list_stats_shows_claimed_rows_and_the_total_line() {
    let sb = with_queue(&["a", "b"]);
    sb.write("only", "x");
    sb.write("z", "y");
    assert_code(&sb.run(&["delete", "q", "-m", &id_at(&sb, "q", 0)]), 0);
    assert_code(
        &sb.run(&["delete", "only", "-m", &id_at(&sb, "only", 0)]),
        0,
    );
    assert_eq!(ok(&sb.run(&["list"])), "q: 1\nz: 1\n");
    let stats = "only: 0 (1 total, 1 claimed)\nq: 1 (2 total, 1 claimed)\nz: 1\n\nTotal claimed messages: 2/4\n";
    assert_eq!(ok(&sb.run(&["list", "--stats"])), stats);
}

#[test]
fn list_stats_pattern_filters_queues_but_not_the_total_line() {
    let sb = with_queue(&["a", "b"]);
    sb.write("z", "y");
    assert_code(&sb.run(&["delete", "q", "-m", &id_at(&sb, "q", 0)]), 0);
    assert_eq!(
        ok(&sb.run(&["list", "--stats", "-p", "z"])),
        "z: 1\n\nTotal claimed messages: 1/3\n"
    );
}

#[test]
fn list_pattern_is_a_case_sensitive_glob() {
    let sb = Sandbox::new();
    for q in ["jobs-1", "jobs-22", "Jobs-3", "other", "a", "b"] {
        sb.write(q, "m");
    }
    assert_eq!(
        ok(&sb.run(&["list", "-p", "jobs-*"])),
        "jobs-1: 1\njobs-22: 1\n"
    );
    assert_eq!(ok(&sb.run(&["list", "--pattern", "jobs-?"])), "jobs-1: 1\n");
    assert_eq!(ok(&sb.run(&["list", "-p", "[!a]"])), "b: 1\n");
    assert_eq!(ok(&sb.run(&["list", "-p", "[JX]*"])), "Jobs-3: 1\n");
    assert_eq!(ok(&sb.run(&["list", "-p", "nomatch*"])), "");
}

// ---------------------------------------------------------------- delete

#[test]
fn delete_queue_removes_only_that_queue_at_once() {
    let sb = with_queue(&["a", "b"]);
    sb.write("keep", "k");
    assert_eq!(ok(&sb.run(&["delete", "q"])), "");
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "keep: 1\n");
    assert!(ok(&sb.run(&["--status"])).starts_with("total_messages: 1\n"));
    assert_eq!(ok(&sb.run(&["delete", "never-existed"])), "");
}

#[test]
fn delete_all_removes_every_queue() {
    let sb = with_queue(&["a"]);
    sb.write("r", "b");
    assert_eq!(ok(&sb.run(&["delete", "--all"])), "");
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "");
    assert!(ok(&sb.run(&["--status"])).starts_with("total_messages: 0\n"));
}

#[test]
fn delete_by_id_claims_one_message() {
    let sb = with_queue(&["a", "b"]);
    let id_a = id_at(&sb, "q", 0);
    assert_eq!(ok(&sb.run(&["delete", "q", "-m", &id_a])), "");
    assert_eq!(ok(&sb.run(&["peek", "q", "--all"])), "b\n");
    assert_silent_2(&sb.run(&["peek", "q", "-m", &id_a]));
    assert_silent_2(&sb.run(&["delete", "q", "-m", &id_a]));
    assert!(ok(&sb.run(&["--status"])).starts_with("total_messages: 2\n"));
}

#[test]
fn delete_by_malformed_id_exits_2() {
    let sb = with_queue(&["a"]);
    assert_silent_2(&sb.run(&["delete", "q", "-m", "42"]));
    assert_eq!(ok(&sb.run(&["peek", "q"])), "a\n");
}

#[test]
fn delete_needs_exactly_one_of_queue_or_all() {
    let sb = with_queue(&["a"]);
    assert_code(&sb.run(&["delete"]), 1);
    assert_code(&sb.run(&["delete", "q", "--all"]), 1);
    assert_code(&sb.run(&["delete", "--all", "-m", &id_at(&sb, "q", 0)]), 1);
    assert_eq!(ok(&sb.run(&["peek", "q"])), "a\n");
}

// ------------------------------------------------------------- broadcast

#[test]
fn broadcast_reaches_every_queue_with_rows_including_claimed_only_ones() {
    let sb = with_queue(&["a"]);
    sb.write("r", "x");
    assert_code(&sb.run(&["delete", "r", "-m", &id_at(&sb, "r", 0)]), 0);
    assert_eq!(ok(&sb.run(&["broadcast", "hi"])), "");
    assert_eq!(ok(&sb.run(&["list"])), "q: 2\nr: 1\n");
    assert_eq!(ok(&sb.run(&["read", "r"])), "hi\n");
}

#[test]
fn broadcast_allocates_ids_in_queue_name_order() {
    let sb = Sandbox::new();
    for q in ["c", "a", "b"] {
        sb.write(q, "seed");
    }
    assert_code(&sb.run(&["broadcast", "x"]), 0);
    let ids: Vec<i64> = ["a", "b", "c"].iter().map(|q| sb.ids(q)[1]).collect();
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
}

#[test]
fn broadcast_pattern_limits_the_targets() {
    let sb = Sandbox::new();
    for q in ["jobs-1", "jobs-2", "other"] {
        sb.write(q, "seed");
    }
    assert_code(&sb.run(&["broadcast", "--pattern", "jobs-*", "paused"]), 0);
    assert_eq!(ok(&sb.run(&["list"])), "jobs-1: 2\njobs-2: 2\nother: 1\n");
    assert_code(&sb.run(&["broadcast", "-p", "other", "o"]), 0);
    assert_eq!(ok(&sb.run(&["peek", "other", "--all"])), "seed\no\n");
}

#[test]
fn broadcast_reads_the_body_from_stdin() {
    let sb = with_queue(&["seed"]);
    assert_code(&sb.run_stdin(&["broadcast", "-"], b"from\nstdin"), 0);
    assert_eq!(
        json_messages(&sb.run(&["peek", "q", "--all", "--json"]))[1].0,
        "from\nstdin"
    );
}

#[test]
fn broadcast_without_target_exits_2_and_writes_nothing() {
    let sb = Sandbox::new();
    assert_silent_2(&sb.run(&["broadcast", "nobody"]));
    sb.write("q", "seed");
    assert_silent_2(&sb.run(&["broadcast", "-p", "zz*", "nobody"]));
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "q: 1\n");
}

// ----------------------------------------------------------------- alias

#[test]
fn alias_add_list_and_remove() {
    let sb = Sandbox::new();
    assert_eq!(
        ok(&sb.run(&["alias", "add", "task2.inbox", "agent1-to-agent2"])),
        ""
    );
    assert_eq!(
        ok(&sb.run(&["alias", "add", "task1.outbox", "agent1-to-agent2"])),
        ""
    );
    assert_eq!(ok(&sb.run(&["alias", "add", "c", "other"])), "");
    let all = "c -> other\ntask1.outbox -> agent1-to-agent2\ntask2.inbox -> agent1-to-agent2\n";
    assert_eq!(ok(&sb.run(&["alias", "list"])), all);
    let target = "task1.outbox -> agent1-to-agent2\ntask2.inbox -> agent1-to-agent2\n";
    assert_eq!(
        ok(&sb.run(&["alias", "list", "--target", "agent1-to-agent2"])),
        target
    );
    assert_eq!(ok(&sb.run(&["alias", "list", "--target", ""])), all);
    assert_eq!(ok(&sb.run(&["alias", "remove", "task1.outbox"])), "");
    assert_eq!(
        ok(&sb.run(&["alias", "list"])),
        "c -> other\ntask2.inbox -> agent1-to-agent2\n"
    );
}

#[test]
fn alias_list_target_without_match_says_so_and_exits_0() {
    let sb = Sandbox::new();
    assert_eq!(
        ok(&sb.run(&["alias", "list", "--target", "zz"])),
        "No aliases found for 'zz'\n"
    );
    assert_eq!(ok(&sb.run(&["alias", "list"])), "");
}

#[test]
fn alias_write_and_read_go_through_the_target() {
    let sb = Sandbox::new();
    assert_code(
        &sb.run(&["alias", "add", "task1.outbox", "agent1-to-agent2"]),
        0,
    );
    assert_code(
        &sb.run(&["alias", "add", "task2.inbox", "agent1-to-agent2"]),
        0,
    );
    sb.write("@task1.outbox", "Job ready");
    sb.write("task1.outbox", "goes to literal queue");
    assert_eq!(
        ok(&sb.run(&["list"])),
        "agent1-to-agent2: 1\ntask1.outbox: 1\n"
    );
    assert_eq!(ok(&sb.run(&["read", "@task2.inbox"])), "Job ready\n");
    assert_eq!(
        ok(&sb.run(&["read", "task1.outbox"])),
        "goes to literal queue\n"
    );
}

#[test]
fn alias_errors_exit_1() {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["alias", "add", "a1", "t"]), 0);
    for args in [
        &["alias", "add", "a1", "t"][..], // duplicate
        &["alias", "add", "a2", "a1"],    // alias of an alias
        &["alias", "add", "s", "s"],      // self
        &["alias", "add", "@x", "t"],     // @ in alias name
        &["alias", "add", "-bad", "t"],   // invalid name
        &["alias", "remove", "nope"],     // unknown
        &["alias"],                       // no sub-command
    ] {
        let out = sb.run(args);
        assert_code(&out, 1);
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    assert_eq!(ok(&sb.run(&["alias", "list"])), "a1 -> t\n");
}

#[test]
fn undefined_or_empty_alias_reference_is_an_error() {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["write", "@nope", "x"]), 1);
    assert_code(&sb.run(&["write", "@", "x"]), 1);
    assert_code(&sb.run(&["read", "@nope"]), 1);
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "");
}

#[test]
fn alias_remove_keeps_the_messages() {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["alias", "add", "a", "t"]), 0);
    sb.write("@a", "kept");
    assert_code(&sb.run(&["alias", "remove", "a"]), 0);
    assert_eq!(ok(&sb.run(&["read", "t"])), "kept\n");
    assert_code(&sb.run(&["write", "@a", "x"]), 1);
}

#[test]
fn alias_over_a_queue_with_messages_warns_but_succeeds() {
    let sb = with_queue(&["m"]);
    let out = sb.run(&["alias", "add", "q", "t"]);
    assert_code(&out, 0);
    assert!(!out.stderr.is_empty());
    assert_eq!(ok(&sb.run(&["alias", "list"])), "q -> t\n");
}

// ------------------------------------------------------------------ init

#[test]
fn init_creates_then_reports_an_existing_database() {
    let sb = Sandbox::new();
    let path = db_display(&sb);
    assert_eq!(
        ok(&sb.run(&["init"])),
        format!("Initialized SimpleBroker database: {path}\n")
    );
    assert!(sb.db().exists());
    assert_eq!(
        ok(&sb.run(&["init"])),
        format!("SimpleBroker database already exists: {path}\n")
    );
    assert_eq!(
        ok(&sb.run(&["init", "--force"])),
        format!("SimpleBroker database already exists: {path}\n")
    );
    assert_eq!(ok(&sb.run(&["list"])), "");
}

#[test]
fn init_is_silenced_by_quiet() {
    let sb = Sandbox::new();
    assert_eq!(ok(&sb.run(&["-q", "init"])), "");
    assert!(sb.db().exists());
}

#[test]
fn init_refuses_a_foreign_file_and_leaves_it_alone() {
    let sb = Sandbox::new();
    std::fs::write(sb.db(), b"not a database\n").unwrap();
    let out = sb.run(&["init"]);
    assert_code(&out, 1);
    assert!(!out.stderr.is_empty());
    assert_eq!(std::fs::read(sb.db()).unwrap(), b"not a database\n");
}

// ------------------------------------------------------- global actions

#[test]
fn status_of_a_new_database() {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["--status"]), 0);
    let out = ok(&sb.run(&["--status"]));
    let size = std::fs::metadata(sb.db()).unwrap().len();
    assert_eq!(
        out,
        format!("total_messages: 0\nlast_timestamp: 0\ndb_size: {size}\n")
    );
}

#[test]
fn status_counts_claimed_rows_and_reports_the_last_id() {
    let sb = with_queue(&["a", "b", "c"]);
    let ids = sb.ids("q");
    assert_code(&sb.run(&["read", "q"]), 0);
    let out = ok(&sb.run(&["--status"]));
    let size = std::fs::metadata(sb.db()).unwrap().len();
    assert_eq!(
        out,
        format!(
            "total_messages: 3\nlast_timestamp: {}\ndb_size: {size}\n",
            ids[2]
        )
    );
}

#[test]
fn status_json_is_one_line_of_integers() {
    let sb = with_queue(&["a"]);
    let id = id_at(&sb, "q", 0);
    let out = ok(&sb.run(&["--status", "--json"]));
    let size = std::fs::metadata(sb.db()).unwrap().len();
    let expected =
        format!("{{\"total_messages\": 1, \"last_timestamp\": {id}, \"db_size\": {size}}}\n");
    assert_eq!(out, expected);
    assert_eq!(ok(&sb.run(&["--json", "-q", "--status"])), expected);
}

#[test]
fn status_is_not_silenced_by_quiet() {
    let sb = Sandbox::new();
    assert!(ok(&sb.run(&["-q", "--status"])).starts_with("total_messages: 0\nlast_timestamp: 0\n"));
}

#[test]
fn status_or_vacuum_with_a_command_and_compact_alone_are_errors() {
    let sb = with_queue(&["a"]);
    assert_code(&sb.run(&["--status", "list"]), 1);
    assert_code(&sb.run(&["read", "q", "--vacuum"]), 1);
    assert_code(&sb.run(&["--compact"]), 1);
    assert_eq!(ok(&sb.run(&["peek", "q"])), "a\n");
}

#[test]
fn cleanup_deletes_the_database_file() {
    let sb = with_queue(&["a"]);
    let path = db_display(&sb);
    assert_eq!(
        ok(&sb.run(&["--cleanup"])),
        format!("Database cleaned up: {path}\n")
    );
    assert!(!sb.db().exists());
    assert_eq!(
        ok(&sb.run(&["--cleanup"])),
        format!("Database not found, nothing to clean up: {path}\n")
    );
    assert!(!sb.db().exists());
}

#[test]
fn cleanup_is_silenced_by_quiet() {
    let sb = with_queue(&["a"]);
    assert_eq!(ok(&sb.run(&["-q", "--cleanup"])), "");
    assert!(!sb.db().exists());
    assert_eq!(ok(&sb.run(&["--cleanup", "-q"])), "");
}

#[test]
fn cleanup_takes_precedence_over_vacuum() {
    let sb = with_queue(&["a"]);
    let path = db_display(&sb);
    assert_eq!(
        ok(&sb.run(&["--vacuum", "--cleanup"])),
        format!("Database cleaned up: {path}\n")
    );
}

#[test]
fn vacuum_removes_claimed_rows() {
    let sb = with_queue(&["a", "b", "c"]);
    assert_code(&sb.run(&["read", "q"]), 0);
    assert_code(&sb.run(&["delete", "q", "-m", &id_at(&sb, "q", 0)]), 0);
    let out = ok(&sb.run(&["--vacuum"]));
    assert!(
        out.starts_with("Vacuumed 2 claimed messages in ") && out.ends_with("s\n"),
        "{out:?}"
    );
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "q: 1\n");
    assert!(ok(&sb.run(&["--status"])).starts_with("total_messages: 1\n"));
    assert_eq!(
        ok(&sb.run(&["--vacuum"])),
        "No claimed messages to vacuum\n"
    );
    assert_eq!(
        ok(&sb.run(&["-q", "--vacuum"])),
        "No claimed messages to vacuum\n"
    );
}

#[test]
fn vacuum_compact_also_compacts() {
    let sb = with_queue(&["a", "b"]);
    assert_code(&sb.run(&["read", "q"]), 0);
    let out = ok(&sb.run(&["--vacuum", "--compact"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with("Vacuumed 1 claimed messages in "));
    assert!(lines[1].starts_with("Database compacted in ") && lines[1].ends_with('s'));
    let again = ok(&sb.run(&["--vacuum", "--compact"]));
    assert!(
        again.starts_with("Database compacted in ") && again.lines().count() == 1,
        "{again:?}"
    );
    assert_eq!(ok(&sb.run(&["read", "q"])), "b\n");
}

#[test]
fn vacuum_of_a_missing_database_does_not_create_it() {
    let sb = Sandbox::new();
    assert_eq!(
        ok(&sb.run(&["--vacuum"])),
        format!("Database not found: {}\n", db_display(&sb))
    );
    assert!(!sb.db().exists());
    assert_eq!(ok(&sb.run(&["-q", "--vacuum"])), "");
}

#[test]
fn version_prints_the_compatibility_level() {
    let sb = Sandbox::new();
    assert_eq!(ok(&sb.run(&["--version"])), "simplebroker 2.8.4\n");
    assert!(!sb.db().exists());
}

#[test]
fn no_arguments_prints_help_on_stdout_and_exits_0() {
    let sb = Sandbox::new();
    let out = sb.run(&[]);
    let help = ok(&out);
    assert!(
        help.contains("write") && help.contains("read") && help.contains("--status"),
        "{help}"
    );
    assert!(out.stderr.is_empty());
    assert!(ok(&sb.run(&["--help"])).contains("write"));
    assert!(ok(&sb.run(&["read", "-h"])).contains("--all"));
}

#[test]
fn unknown_commands_and_options_are_usage_errors() {
    let sb = with_queue(&["a"]);
    for args in [
        &["bogus"][..],
        &["read", "q", "--bogus"],
        &["--bogus", "list"],
        &["read"],
        &["read", "q", "extra"],
        &["list", "extra"],
        &["move", "q"],
        &["read", "q", "-d"],
        &["-f", "-x", "read", "q"],
    ] {
        let out = sb.run(args);
        assert_code(&out, 1);
        assert!(out.stdout.is_empty() && !out.stderr.is_empty(), "{args:?}");
    }
    assert_eq!(ok(&sb.run(&["peek", "q"])), "a\n");
}

// ------------------------------------------------------ global options

#[test]
fn global_options_work_before_and_after_the_command() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path().join("sub")).unwrap();
    let dir = sb.path().join("sub").display().to_string();
    assert_code(&sb.run(&["write", "q", "one", "-d", &dir]), 0);
    assert_code(&sb.run(&[&format!("--dir={dir}"), "write", "q", "two"]), 0);
    assert_code(&sb.run(&[&format!("-d{dir}"), "write", "q", "three"]), 0);
    assert_code(&sb.run(&["write", "q", "four", &format!("-d={dir}")]), 0);
    assert_eq!(
        ok(&sb.run(&["read", "q", "--all", "-d", "sub"])),
        "one\ntwo\nthree\nfour\n"
    );
    assert!(!sb.db().exists());
    assert!(sb.path().join("sub/.broker.db").exists());
}

#[test]
fn file_option_names_the_database_anywhere_on_the_line() {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["write", "q", "a", "-f", "other.db"]), 0);
    assert_code(&sb.run(&["--file=other.db", "write", "q", "b"]), 0);
    assert_code(&sb.run(&["-fother.db", "write", "q", "c"]), 0);
    assert!(sb.path().join("other.db").exists() && !sb.db().exists());
    assert_eq!(
        ok(&sb.run(&["peek", "q", "--all", "--file", "other.db"])),
        "a\nb\nc\n"
    );
    let abs = sb.path().join("abs.db").display().to_string();
    assert_code(&sb.run(&["-f", &abs, "write", "q", "x"]), 0);
    assert_eq!(ok(&sb.run(&["read", "q", "-f", &abs])), "x\n");
}

#[test]
fn quiet_does_not_silence_payload_output() {
    let sb = with_queue(&["a", "b"]);
    assert_eq!(ok(&sb.run(&["-q", "read", "q"])), "a\n");
    assert_eq!(ok(&sb.run(&["peek", "q", "--quiet"])), "b\n");
    assert_eq!(ok(&sb.run(&["-q", "list"])), "q: 1\n");
}

// --------------------------------------------------- newline warning

#[test]
fn newline_warning_only_on_the_multi_message_plain_path() {
    let sb = with_queue(&["a\nb", "c\nd"]);
    let single = sb.run(&["peek", "q"]);
    assert_eq!(ok(&single), "a\nb\n");
    assert!(single.stderr.is_empty(), "single plain peek must not warn");
    let json = sb.run(&["peek", "q", "--all", "--json"]);
    assert_code(&json, 0);
    assert!(json.stderr.is_empty(), "JSON must not warn");
    let all = sb.run(&["read", "q", "--all"]);
    assert_eq!(ok(&all), "a\nb\nc\nd\n");
    assert!(
        !all.stderr.is_empty(),
        "read --all with a newline body warns on stderr"
    );
}

#[test]
fn single_plain_read_of_a_multiline_body_does_not_warn() {
    let sb = with_queue(&["a\nb"]);
    let out = sb.run(&["read", "q"]);
    assert_eq!(ok(&out), "a\nb\n");
    assert!(out.stderr.is_empty(), "stderr: {}", stderr(&out));
}

#[test]
fn move_of_a_multiline_body_warns() {
    let sb = with_queue(&["a\nb"]);
    let out = sb.run(&["move", "q", "r"]);
    assert_eq!(ok(&out), "a\nb\n");
    assert!(!out.stderr.is_empty());
}

#[test]
fn dangling_symlink_file_creates_its_target_like_the_reference() {
    let sb = Sandbox::new();
    std::os::unix::fs::symlink("target.db", sb.path().join("link.db")).unwrap();
    let out = sb.run(&["-f", "link.db", "write", "q", "m"]);
    assert_code(&out, 0);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert!(sb.path().join("target.db").is_file());
    assert_eq!(ok(&sb.run(&["-f", "link.db", "read", "q"])), "m\n");
    assert_eq!(
        ok(&sb.run(&["-f", "target.db", "list", "--stats"])),
        "q: 0 (1 total, 1 claimed)\n\nTotal claimed messages: 1/1\n"
    );
    // A link out of the directory is still refused, once.
    std::os::unix::fs::symlink("/nonexistent-7f3a/x.db", sb.path().join("out.db")).unwrap();
    let out = sb.run(&["-f", "out.db", "write", "q", "m"]);
    assert_code(&out, 1);
    assert_eq!(
        stderr(&out),
        "simplebroker: error: Database file must be within the working directory\n"
    );
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let sb = Sandbox::new();
    let body = "x".repeat(100_000);
    for _ in 0..3 {
        ok(&sb.run(&["write", "q", &body]));
    }
    for args in [
        &["peek", "q", "--all"][..],
        &["dump"],
        &["move", "q", "r", "--all"],
        &["read", "r", "--all"],
    ] {
        let mut child = sb
            .broker()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then closed
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn man_page_is_one_page_with_every_command() {
    let sb = Sandbox::new();
    let page = ok(&sb.run(&["man"]));
    assert!(
        !page.contains("broker\\-write(1)"),
        "points to a page that does not exist"
    );
    for name in [
        "broker write",
        "broker queue config",
        "broker topic config",
        "broker run",
    ] {
        assert!(page.contains(&format!(".SS \"{name}\"")), "{name} missing");
    }
    assert!(page.contains("\\-\\-max\\-receives"));
}

#[test]
fn counts_use_the_singular_for_one() {
    let sb = Sandbox::new();
    let dump = {
        ok(&sb.run(&["write", "q", "m"]));
        ok(&sb.run(&["dump"]))
    };
    let fresh = Sandbox::new();
    let out = fresh.run_stdin(&["load"], dump.as_bytes());
    assert_eq!(ok(&out), "Loaded 1 message\n");
    ok(&fresh.run(&["publish", "t.a", "x"]));
    assert_eq!(
        ok(&fresh.run(&["subscribe", "s", "t.=", "--from", "earliest"])),
        "Subscribed 's' to 't.=' (1 message replayed)\n"
    );
    assert!(ok(&fresh.run(&["topics"])).starts_with("t.a: 1 message ("));
}
