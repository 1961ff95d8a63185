//! Our binary and the Python reference on ONE database file, in mixed
//! sequences: each must read, peek, move, delete, vacuum and report what the
//! other wrote, whichever of them created the file.

mod common;

use std::collections::HashSet;

use common::{assert_code, json_messages, ok, Sandbox};

/// `(body, id)` pairs of `queue`, oldest first, as the reference sees them.
fn ref_peek(sb: &Sandbox, queue: &str) -> Vec<(String, i64)> {
    json_messages(&sb.run_ref(&["peek", queue, "--all", "--json"]))
}

/// `(body, id)` pairs of `queue`, oldest first, as our binary sees them.
fn our_peek(sb: &Sandbox, queue: &str) -> Vec<(String, i64)> {
    json_messages(&sb.run(&["peek", queue, "--all", "--json"]))
}

fn ref_write(sb: &Sandbox, queue: &str, body: &str) {
    assert_code(&sb.run_ref(&["write", queue, body]), 0);
}

fn assert_strictly_increasing(ids: &[i64]) {
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not increasing: {ids:?}"
    );
}

#[test]
fn ours_writes_and_the_reference_reads() {
    let sb = Sandbox::new();
    for body in ["plain", "two\nlines", "ünï 🚀", ""] {
        sb.write("q", body);
    }
    assert_code(&sb.run_stdin(&["write", "q", "-"], b"nul\0byte"), 0);
    let ours = our_peek(&sb, "q");
    assert_eq!(ref_peek(&sb, "q"), ours);
    let read = sb.run_ref(&["read", "q", "--all", "--json"]);
    assert_eq!(json_messages(&read), ours);
    assert_code(&sb.run(&["read", "q"]), 2);
}

#[test]
fn reference_writes_and_ours_reads() {
    let sb = Sandbox::new();
    for body in ["plain", "two\nlines", "ünï 🚀", ""] {
        ref_write(&sb, "q", body);
    }
    let theirs = ref_peek(&sb, "q");
    assert_eq!(our_peek(&sb, "q"), theirs);
    assert_eq!(
        json_messages(&sb.run(&["read", "q", "--all", "--json"])),
        theirs
    );
    assert_code(&sb.run_ref(&["read", "q"]), 2);
}

#[test]
fn alternating_writers_keep_fifo_order_and_increasing_ids() {
    let sb = Sandbox::new();
    let mut expected = Vec::new();
    for i in 0..8 {
        let body = format!("m{i}");
        if i % 2 == 0 {
            sb.write("q", &body);
        } else {
            ref_write(&sb, "q", &body);
        }
        expected.push(body);
    }
    let seen = our_peek(&sb, "q");
    assert_eq!(
        seen.iter().map(|m| m.0.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_strictly_increasing(&seen.iter().map(|m| m.1).collect::<Vec<_>>());
    assert_eq!(ref_peek(&sb, "q"), seen);
}

#[test]
fn concurrent_writers_from_both_keep_per_writer_order_and_unique_ids() {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["--status"]), 0); // create the file before the race
    const N: usize = 15;
    std::thread::scope(|s| {
        s.spawn(|| (0..N).for_each(|i| sb.write("q", &format!("ours-{i}"))));
        s.spawn(|| (0..N).for_each(|i| ref_write(&sb, "q", &format!("ref-{i}"))));
    });
    let all = our_peek(&sb, "q");
    assert_eq!(all.len(), 2 * N);
    let ids: HashSet<i64> = all.iter().map(|m| m.1).collect();
    assert_eq!(ids.len(), 2 * N, "ids must be unique");
    for writer in ["ours-", "ref-"] {
        let mine: Vec<&(String, i64)> = all.iter().filter(|m| m.0.starts_with(writer)).collect();
        let bodies: Vec<String> = (0..N).map(|i| format!("{writer}{i}")).collect();
        assert_eq!(mine.iter().map(|m| m.0.clone()).collect::<Vec<_>>(), bodies);
        assert_strictly_increasing(&mine.iter().map(|m| m.1).collect::<Vec<_>>());
    }
}

#[test]
fn reference_peeks_moves_and_deletes_our_messages() {
    let sb = Sandbox::new();
    for body in ["a", "b", "c", "d"] {
        sb.write("q", body);
    }
    let ids = sb.ids("q");
    assert_eq!(ok(&sb.run_ref(&["peek", "q"])), "a\n");
    assert_eq!(ok(&sb.run_ref(&["move", "q", "r"])), "a\n");
    assert_eq!(
        ok(&sb.run_ref(&["delete", "q", "-m", &ids[1].to_string()])),
        ""
    );
    assert_eq!(
        ok(&sb.run_ref(&["read", "q", "-m", &ids[3].to_string()])),
        "d\n"
    );
    assert_eq!(
        ok(&sb.run(&["peek", "r", "-t"])),
        format!("{}\ta\n", ids[0])
    );
    assert_eq!(ok(&sb.run(&["read", "q", "--all"])), "c\n");
    let stats = "q: 0 (3 total, 3 claimed)\nr: 1\n\nTotal claimed messages: 3/4\n";
    assert_eq!(ok(&sb.run(&["list", "--stats"])), stats);
    assert_eq!(ok(&sb.run_ref(&["list", "--stats"])), stats);
    assert_eq!(ok(&sb.run_ref(&["delete", "r"])), "");
    assert_eq!(ok(&sb.run(&["list"])), "");
}

#[test]
fn ours_peeks_moves_and_deletes_reference_messages() {
    let sb = Sandbox::new();
    for body in ["a", "b", "c"] {
        ref_write(&sb, "q", body);
    }
    let ids = sb.ids("q");
    assert_eq!(ok(&sb.run(&["move", "q", "r"])), "a\n");
    assert_eq!(ok(&sb.run(&["delete", "q", "-m", &ids[1].to_string()])), "");
    assert_eq!(ok(&sb.run_ref(&["peek", "q", "--all"])), "c\n");
    assert_eq!(
        ok(&sb.run_ref(&["read", "r", "-t"])),
        format!("{}\ta\n", ids[0])
    );
    assert_eq!(
        ok(&sb.run_ref(&["list", "--stats"])),
        "q: 1 (2 total, 1 claimed)\nr: 0 (1 total, 1 claimed)\n\nTotal claimed messages: 2/3\n"
    );
}

#[test]
fn our_list_and_status_on_a_reference_database() {
    let sb = Sandbox::new();
    for (q, body) in [("b", "1"), ("a", "2"), ("b", "3"), ("c", "4")] {
        ref_write(&sb, q, body);
    }
    assert_code(&sb.run_ref(&["read", "b"]), 0);
    let ref_stats = ok(&sb.run_ref(&["list", "--stats"]));
    assert_eq!(
        ref_stats,
        "a: 1\nb: 1 (2 total, 1 claimed)\nc: 1\n\nTotal claimed messages: 1/4\n"
    );
    assert_eq!(ok(&sb.run(&["list", "--stats"])), ref_stats);
    assert_eq!(ok(&sb.run(&["list"])), ok(&sb.run_ref(&["list"])));
    let last = sb.ids("c")[0];
    let status = ok(&sb.run(&["--status"]));
    let size = std::fs::metadata(sb.db()).unwrap().len();
    assert_eq!(
        status,
        format!("total_messages: 4\nlast_timestamp: {last}\ndb_size: {size}\n")
    );
    let ref_status = ok(&sb.run_ref(&["--status"]));
    let size = std::fs::metadata(sb.db()).unwrap().len();
    assert_eq!(
        ref_status,
        format!("total_messages: 4\nlast_timestamp: {last}\ndb_size: {size}\n")
    );
}

#[test]
fn aliases_made_by_the_reference_work_in_ours() {
    let sb = Sandbox::new();
    assert_code(&sb.run_ref(&["alias", "add", "inbox", "real"]), 0);
    assert_eq!(ok(&sb.run(&["alias", "list"])), "inbox -> real\n");
    assert_eq!(
        ok(&sb.run(&["alias", "list", "--target", "real"])),
        "inbox -> real\n"
    );
    sb.write("@inbox", "via alias");
    assert_eq!(ok(&sb.run_ref(&["read", "real"])), "via alias\n");
    ref_write(&sb, "@inbox", "again");
    assert_eq!(ok(&sb.run(&["read", "@inbox"])), "again\n");
    assert_code(&sb.run(&["alias", "add", "inbox", "other"]), 1);
    assert_code(&sb.run(&["alias", "remove", "inbox"]), 0);
    assert_eq!(ok(&sb.run_ref(&["alias", "list"])), "");
}

#[test]
fn aliases_made_by_ours_work_in_the_reference() {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["alias", "add", "outbox", "real"]), 0);
    assert_eq!(ok(&sb.run_ref(&["alias", "list"])), "outbox -> real\n");
    ref_write(&sb, "@outbox", "via alias");
    assert_eq!(ok(&sb.run(&["read", "real"])), "via alias\n");
    sb.write("@outbox", "again");
    assert_eq!(ok(&sb.run_ref(&["read", "@outbox"])), "again\n");
    assert_code(&sb.run_ref(&["alias", "add", "x", "outbox"]), 1); // alias of an alias
    assert_code(&sb.run_ref(&["alias", "remove", "outbox"]), 0);
    assert_eq!(ok(&sb.run(&["alias", "list"])), "");
}

#[test]
fn reference_vacuum_after_our_reads() {
    let sb = Sandbox::new();
    for body in ["a", "b", "c"] {
        sb.write("q", body);
    }
    assert_eq!(ok(&sb.run(&["read", "q"])), "a\n");
    assert_eq!(ok(&sb.run(&["read", "q"])), "b\n");
    let out = ok(&sb.run_ref(&["--vacuum"]));
    assert!(
        out.starts_with("Vacuumed 2 claimed messages in "),
        "{out:?}"
    );
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "q: 1\n");
    assert!(ok(&sb.run(&["--status"])).starts_with("total_messages: 1\n"));
    assert_eq!(ok(&sb.run(&["read", "q"])), "c\n");
}

#[test]
fn our_vacuum_after_reference_reads() {
    let sb = Sandbox::new();
    for body in ["a", "b", "c"] {
        ref_write(&sb, "q", body);
    }
    assert_code(&sb.run_ref(&["read", "q"]), 0);
    assert_code(
        &sb.run_ref(&["delete", "q", "-m", &sb.ids("q")[0].to_string()]),
        0,
    );
    let out = ok(&sb.run(&["--vacuum"]));
    assert!(
        out.starts_with("Vacuumed 2 claimed messages in "),
        "{out:?}"
    );
    assert_eq!(ok(&sb.run_ref(&["list", "--stats"])), "q: 1\n");
    assert_eq!(
        ok(&sb.run_ref(&["--vacuum"])),
        "No claimed messages to vacuum\n"
    );
    assert_eq!(ok(&sb.run_ref(&["read", "q"])), "c\n");
}

#[test]
fn compacted_by_ours_then_used_by_the_reference() {
    let sb = Sandbox::new();
    for i in 0..20 {
        sb.write("q", &format!("m{i}"));
    }
    assert_code(&sb.run(&["read", "q", "--all"]), 0);
    sb.write("q", "last");
    assert_code(&sb.run(&["--vacuum", "--compact"]), 0);
    assert_eq!(ok(&sb.run_ref(&["read", "q"])), "last\n");
    ref_write(&sb, "q", "after");
    assert_eq!(ok(&sb.run(&["read", "q"])), "after\n");
}

#[test]
fn database_created_by_the_reference_works_in_ours() {
    let sb = Sandbox::new();
    ref_write(&sb, "q", "from ref");
    sb.write("q", "from ours");
    sb.write("other", "x");
    assert_code(&sb.run(&["broadcast", "-p", "q", "b"]), 0);
    assert_eq!(ok(&sb.run(&["move", "other", "q", "--all"])), "x\n");
    assert_eq!(
        ok(&sb.run(&["read", "q", "--all"])),
        "from ref\nfrom ours\nx\nb\n"
    );
    let init = ok(&sb.run(&["init"]));
    assert!(
        init.starts_with("SimpleBroker database already exists: "),
        "{init}"
    );
    assert_eq!(
        ok(&sb.run_ref(&["list", "--stats"])),
        "q: 0 (4 total, 4 claimed)\n\nTotal claimed messages: 4/4\n"
    );
}

#[test]
fn database_created_by_ours_works_in_the_reference() {
    let sb = Sandbox::new();
    sb.write("q", "from ours");
    ref_write(&sb, "q", "from ref");
    ref_write(&sb, "other", "x");
    assert_code(&sb.run_ref(&["broadcast", "-p", "q", "b"]), 0);
    assert_eq!(ok(&sb.run_ref(&["move", "other", "q", "--all"])), "x\n");
    assert_eq!(
        ok(&sb.run_ref(&["read", "q", "--all"])),
        "from ours\nfrom ref\nx\nb\n"
    );
    let init = ok(&sb.run_ref(&["init"]));
    assert!(
        init.starts_with("SimpleBroker database already exists: "),
        "{init}"
    );
    assert_eq!(
        ok(&sb.run(&["list", "--stats"])),
        "q: 0 (4 total, 4 claimed)\n\nTotal claimed messages: 4/4\n"
    );
    let status = ok(&sb.run_ref(&["--status", "--json"]));
    assert!(
        status.starts_with("{\"total_messages\": 4, \"last_timestamp\": "),
        "{status}"
    );
}

#[test]
fn database_created_by_ours_has_the_reference_schema() {
    let sb = Sandbox::new();
    sb.write("q", "m");
    let conn = rusqlite::Connection::open(sb.db()).unwrap();
    let meta = |key: &str| -> rusqlite::types::Value {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        meta("magic"),
        rusqlite::types::Value::Text("simplebroker-v1".into())
    );
    assert_eq!(meta("schema_version"), rusqlite::types::Value::Integer(4));
    let last = sb.ids("q")[0];
    assert_eq!(meta("last_ts"), rusqlite::types::Value::Integer(last));
    let names: HashSet<String> = conn
        .prepare("SELECT name FROM sqlite_master")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for name in [
        "messages",
        "meta",
        "queue_aliases",
        "idx_messages_queue_ts_id",
        "idx_messages_unclaimed",
        "idx_messages_ts_unique",
        "idx_queue_aliases_target",
    ] {
        assert!(names.contains(name), "missing {name}: {names:?}");
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
