//! Bad input of every kind is refused with exit 1 (or 2 where SimpleBroker
//! 2.8.4 says "nothing matched"), and refusing never changes the database.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{assert_code, ok, stderr, Sandbox};

/// Asserts exit 1 with a message on stderr and nothing on stdout.
fn assert_refused(out: &std::process::Output) {
    assert_code(out, 1);
    assert!(
        out.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !out.stderr.is_empty(),
        "an error must be explained on stderr"
    );
}

/// Names of the files directly inside `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ----------------------------------------------------------- queue names

const BAD_NAMES: &[&str] = &[
    "",
    ".hidden",
    "-dash",
    "with space",
    "ümlaut",
    "a/b",
    "a@b",
    "tab\there",
];

#[test]
fn invalid_queue_names_are_refused_by_write_and_nothing_is_written() {
    let sb = Sandbox::new();
    let long = "a".repeat(513);
    for name in BAD_NAMES.iter().copied().chain([long.as_str()]) {
        assert_refused(&sb.run(&["write", name, "m"]));
    }
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "");
}

#[test]
fn invalid_queue_names_are_refused_by_read_peek_move_delete_and_alias() {
    let sb = Sandbox::new();
    sb.write("q", "keep");
    for name in BAD_NAMES {
        for args in [
            &["read", name][..],
            &["peek", name],
            &["move", name, "q"],
            &["move", "q", name],
            &["delete", name],
            &["alias", "add", name, "q"],
        ] {
            assert_refused(&sb.run(args));
        }
    }
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "q: 1\n");
    assert_eq!(ok(&sb.run(&["alias", "list"])), "");
}

#[test]
fn queue_names_of_512_characters_and_all_allowed_symbols_are_accepted() {
    let sb = Sandbox::new();
    let long = "b".repeat(512);
    for name in [long.as_str(), "_x", "9.a-b_C", "a..b"] {
        sb.write(name, "m");
        assert_eq!(ok(&sb.run(&["read", name])), "m\n");
    }
}

#[test]
fn queue_names_are_case_sensitive() {
    let sb = Sandbox::new();
    sb.write("Q", "upper");
    sb.write("q", "lower");
    assert_eq!(ok(&sb.run(&["read", "q"])), "lower\n");
    assert_eq!(ok(&sb.run(&["read", "Q"])), "upper\n");
}

// ------------------------------------------------------ -d / -f values

#[test]
fn dangerous_dir_and_file_values_are_refused_without_creating_anything() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path().join("sub")).unwrap();
    let cases: &[&[&str]] = &[
        &["-d", "a;b"],
        &["-d", "sub|x"],
        &["-d", "sub/.."],
        &["-d", "."],
        &["-d", "$HOME"],
        &["-f", "x$y.db"],
        &["-f", "x*.db"],
        &["-f", "x`id`.db"],
        &["-f", "../x.db"],
        &["-f", "./x.db"],
        &["-f", "sub/../x.db"],
    ];
    for case in cases {
        let args: Vec<&str> = case.iter().copied().chain(["write", "q", "m"]).collect();
        assert_refused(&sb.run(&args));
    }
    assert_eq!(entries(sb.path()), ["sub"]);
    assert!(entries(&sb.path().join("sub")).is_empty());
}

#[test]
fn nonexistent_dir_is_refused() {
    let sb = Sandbox::new();
    assert_refused(&sb.run(&["-d", "nonexistent", "write", "q", "m"]));
    let abs = sb.path().join("missing").display().to_string();
    assert_refused(&sb.run(&["read", "q", "-d", &abs]));
    assert!(entries(sb.path()).is_empty());
}

#[test]
fn dir_that_is_a_file_is_refused() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("plain"), b"x").unwrap();
    assert_refused(&sb.run(&["-d", "plain", "write", "q", "m"]));
    assert_eq!(std::fs::read(sb.path().join("plain")).unwrap(), b"x");
}

#[test]
fn relative_file_escaping_through_a_symlink_is_refused() {
    let sb = Sandbox::new();
    for d in ["work", "outside"] {
        std::fs::create_dir(sb.path().join(d)).unwrap();
    }
    let work = sb.path().join("work");
    std::os::unix::fs::symlink("../outside", work.join("link")).unwrap();
    assert_refused(&sb.run_in(&work, &["-f", "link/x.db", "write", "q", "m"], &[]));
    assert_refused(&sb.run(&["-d", "work", "-f", "link/x.db", "write", "q", "m"]));
    assert!(entries(&sb.path().join("outside")).is_empty());
}

#[test]
fn absolute_file_conflicting_with_dir_is_refused() {
    let sb = Sandbox::new();
    for d in ["a", "b"] {
        std::fs::create_dir(sb.path().join(d)).unwrap();
    }
    let in_b = sb.path().join("b/x.db").display().to_string();
    assert_refused(&sb.run(&["-d", "a", "-f", &in_b, "write", "q", "m"]));
    assert!(entries(&sb.path().join("a")).is_empty() && entries(&sb.path().join("b")).is_empty());
    let in_a = sb.path().join("a/x.db").display().to_string();
    assert_code(&sb.run(&["-d", "a", "-f", &in_a, "write", "q", "m"]), 0);
    assert_eq!(ok(&sb.run(&["-f", &in_a, "read", "q"])), "m\n");
}

#[test]
fn file_in_a_new_subdirectory_is_created_only_one_level_deep() {
    let sb = Sandbox::new();
    assert_code(&sb.run(&["-f", "new/x.db", "write", "q", "m"]), 0);
    assert!(sb.path().join("new/x.db").exists());
    assert_refused(&sb.run(&["-f", "a/b/x.db", "write", "q", "m"]));
    assert!(!sb.path().join("a").exists());
}

// ------------------------------------------------ environment variables

#[test]
fn non_numeric_numeric_settings_abort_before_anything_runs() {
    let sb = Sandbox::new();
    for var in [
        "BROKER_BUSY_TIMEOUT",
        "BROKER_CACHE_MB",
        "BROKER_WAL_AUTOCHECKPOINT",
        "BROKER_VACUUM_BATCH_SIZE",
    ] {
        for value in ["abc", "1.5", ""] {
            if value.is_empty() && var != "BROKER_BUSY_TIMEOUT" {
                continue;
            }
            let out = sb.run_env(&["write", "q", "m"], &[(var, value)]);
            assert_code(&out, 1);
            assert!(!out.stderr.is_empty(), "{var}={value:?}");
        }
    }
    assert_code(
        &sb.run_env(&["--version"], &[("BROKER_BUSY_TIMEOUT", "abc")]),
        1,
    );
    assert!(entries(sb.path()).is_empty(), "nothing may be created");
}

#[test]
fn invalid_default_db_name_is_refused() {
    let sb = Sandbox::new();
    for name in ["a;b.db", "a/b/c.db", "../x.db", "/abs/x.db"] {
        let out = sb.run_env(&["write", "q", "m"], &[("BROKER_DEFAULT_DB_NAME", name)]);
        assert_code(&out, 1);
        assert!(!out.stderr.is_empty(), "{name}");
    }
    assert!(entries(sb.path()).is_empty());
}

#[test]
fn relative_default_db_location_is_ignored_with_a_warning() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path().join("sub")).unwrap();
    let env = [("BROKER_DEFAULT_DB_LOCATION", "sub")];
    let out = sb.run_env(&["write", "q", "m"], &env);
    assert_code(&out, 0);
    assert!(!out.stderr.is_empty(), "a warning is expected");
    assert!(sb.db().exists() && entries(&sb.path().join("sub")).is_empty());
    assert_eq!(ok(&sb.run(&["read", "q"])), "m\n");
}

#[test]
fn absolute_default_db_location_is_used_and_must_exist() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path().join("global")).unwrap();
    let global = sb.path().join("global").display().to_string();
    assert_code(
        &sb.run_env(
            &["write", "q", "m"],
            &[("BROKER_DEFAULT_DB_LOCATION", &global)],
        ),
        0,
    );
    assert!(sb.path().join("global/.broker.db").exists() && !sb.db().exists());
    let missing = sb.path().join("missing").display().to_string();
    assert_refused(&sb.run_env(
        &["write", "q", "m"],
        &[("BROKER_DEFAULT_DB_LOCATION", &missing)],
    ));
    assert!(!sb.path().join("missing").exists());
}

// --------------------------------------------------- corrupt databases

/// A sandbox whose `.broker.db` holds `bytes`.
fn with_db_bytes(bytes: &[u8]) -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(sb.db(), bytes).unwrap();
    sb
}

fn junk() -> Vec<u8> {
    (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn junk_database_is_refused_by_read_peek_and_list_and_left_unchanged() {
    let sb = with_db_bytes(&junk());
    for args in [
        &["read", "q"][..],
        &["peek", "q", "--all"],
        &["list"],
        &["move", "q", "r"],
    ] {
        assert_refused(&sb.run(args));
    }
    assert!(
        std::fs::read(sb.db()).unwrap() == junk(),
        "the file was modified"
    );
    assert_eq!(entries(sb.path()), [".broker.db"]);
}

#[test]
fn junk_database_is_refused_by_write_and_left_unchanged() {
    let sb = with_db_bytes(&junk());
    let out = sb.run(&["write", "q", "m"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("is not a valid SQLite database"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::read(sb.db()).unwrap() == junk(),
        "the file was modified"
    );
}

#[test]
fn database_with_a_valid_header_but_garbage_pages_is_refused_and_unchanged() {
    let bytes: Vec<u8> = b"SQLite format 3\0".iter().copied().chain(junk()).collect();
    let sb = with_db_bytes(&bytes);
    assert_refused(&sb.run(&["read", "q"]));
    assert_refused(&sb.run(&["list"]));
    assert!(
        std::fs::read(sb.db()).unwrap() == bytes,
        "the file was modified"
    );
}

#[test]
fn sqlite_file_with_a_foreign_magic_is_refused() {
    let sb = Sandbox::new();
    let conn = rusqlite::Connection::open(sb.db()).unwrap();
    conn.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value);
         INSERT INTO meta VALUES ('magic', 'other-app');",
    )
    .unwrap();
    drop(conn);
    assert_refused(&sb.run(&["peek", "q"]));
}

#[test]
fn sqlite_file_of_another_application_is_refused_and_unchanged() {
    let sb = Sandbox::new();
    let path = sb.path().join("plain.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42);")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    assert_refused(&sb.run(&["-f", "plain.db", "write", "q", "adopted"]));
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the file was modified"
    );
}

// ------------------------------------------------------ time bounds

#[test]
fn malformed_since_values_are_refused_and_nothing_is_consumed() {
    let sb = Sandbox::new();
    sb.write("q", "a");
    sb.write("q", "b");
    let bad = [
        "1e9",
        "1E9",
        "1.5e3",
        "-5",
        "abc",
        "99999999999",
        "9223372036854775808",
        "",
        " ",
        "12ab",
        "2024-13-45",
        "1.5.5",
        "0x10",
        "nan",
        "inf",
        "1705329000 s",
    ];
    for value in bad {
        for cmd in [
            &["read", "q", "--all"][..],
            &["peek", "q"],
            &["move", "q", "r", "--all"],
        ] {
            let since = format!("--since={value}");
            let args: Vec<&str> = cmd.iter().copied().chain([since.as_str()]).collect();
            assert_refused(&sb.run(&args));
        }
    }
    assert_refused(&sb.run(&["read", "q", "--since", "-5"]));
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "q: 2\n");
}

// ------------------------------------------------------------ stdin

#[test]
fn invalid_utf8_on_stdin_is_refused_and_nothing_is_written() {
    let sb = Sandbox::new();
    for bytes in [&b"\xff\xfe"[..], b"ok then \xc3", b"\xed\xa0\x80 surrogate"] {
        let out = sb.run_stdin(&["write", "q", "-"], bytes);
        assert_code(&out, 1);
        assert!(!out.stderr.is_empty());
        assert_refused(&sb.run_stdin(&["broadcast", "-"], bytes));
    }
    assert_eq!(ok(&sb.run(&["list", "--stats"])), "");
}

// ------------------------------------------------------ file creation

#[test]
fn a_new_database_file_is_private_to_its_owner() {
    let sb = Sandbox::new();
    sb.write("q", "m");
    let mode = std::fs::metadata(sb.db()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);
    let sb = Sandbox::new();
    assert_code(&sb.run(&["init"]), 0);
    let mode = std::fs::metadata(sb.db()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

// ------------------------------------------------------- project scope

/// `root/a/b` inside a fresh sandbox.
fn project_tree() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    let deep = sb.path().join("a/b");
    std::fs::create_dir_all(&deep).unwrap();
    (sb, deep)
}

#[test]
fn project_scope_without_a_project_database_fails_and_mentions_init() {
    let (sb, deep) = project_tree();
    let out = sb.run_in(
        &deep,
        &["write", "q", "m"],
        &[("BROKER_PROJECT_SCOPE", "true")],
    );
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("broker init"),
        "stderr: {}",
        stderr(&out)
    );
    assert!(entries(&deep).is_empty() && entries(sb.path()) == ["a"]);
}

#[test]
fn project_scope_finds_a_custom_named_database_in_a_parent() {
    let (sb, deep) = project_tree();
    let name = [("BROKER_DEFAULT_DB_NAME", "proj.db")];
    assert_code(&sb.run_env(&["init"], &name), 0);
    for flag in ["1", "true", " YES ", "On"] {
        let env = [name[0], ("BROKER_PROJECT_SCOPE", flag)];
        assert_code(&sb.run_in(&deep, &["write", "q", flag], &env), 0);
    }
    assert!(entries(&deep).is_empty());
    assert_eq!(
        ok(&sb.run_env(&["read", "q", "--all"], &name)),
        "1\ntrue\n YES \nOn\n"
    );
}

#[test]
fn project_scope_finds_a_compound_database_name() {
    let (sb, deep) = project_tree();
    let name = ("BROKER_DEFAULT_DB_NAME", ".cfg/q.db");
    assert_code(&sb.run_env(&["init"], &[name]), 0);
    assert!(sb.path().join(".cfg/q.db").exists());
    let env = [name, ("BROKER_PROJECT_SCOPE", "1")];
    assert_code(&sb.run_in(&deep, &["write", "q", "deep"], &env), 0);
    assert_eq!(
        ok(&sb.run_in(&deep.join(".."), &["read", "q"], &env)),
        "deep\n"
    );
    assert!(!deep.join(".cfg").exists());
}

#[test]
fn project_scope_yields_to_an_absolute_file() {
    let (sb, deep) = project_tree();
    let abs = sb.path().join("explicit.db").display().to_string();
    let env = [("BROKER_PROJECT_SCOPE", "1")];
    assert_code(&sb.run_in(&deep, &["-f", &abs, "write", "q", "m"], &env), 0);
    assert_eq!(ok(&sb.run(&["-f", &abs, "read", "q"])), "m\n");
}

#[test]
fn project_scope_is_off_for_other_values() {
    let (sb, deep) = project_tree();
    let env = [("BROKER_PROJECT_SCOPE", "0")];
    assert_code(&sb.run_in(&deep, &["write", "q", "m"], &env), 0);
    assert!(deep.join(".broker.db").exists());
}

// ------------------------------------------- NaN, infinities, overflow (D5)

/// Polling variables take any Python float, as in the reference (which never
/// fails on them): NaN, infinities, negatives and huge values are clamped
/// (jitter to 0..=1, NaN jitter to none; intervals to their default when not
/// finite and non-negative, and to an hour at most), never a panic.
const ODD_FLOATS: &[&str] = &["nan", "-nan", "inf", "-inf", "1e400", "-1", "1e308"];

#[test]
fn odd_polling_floats_never_crash_watch() {
    for var in [
        "BROKER_JITTER_FACTOR",
        "BROKER_MAX_INTERVAL",
        "BROKER_BURST_SLEEP",
    ] {
        for value in ODD_FLOATS {
            let sb = Sandbox::new();
            ok(&sb.run(&["write", "q", "m"]));
            let mut child = sb
                .broker()
                .args(["watch", "q"])
                .env(var, value)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // Long enough for the burst phase to end and back-off to start.
            std::thread::sleep(std::time::Duration::from_millis(600));
            let status = child.try_wait().unwrap();
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            assert!(
                status.is_none(),
                "{var}={value}: watch died with {status:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "m\n", "{var}={value}");
        }
    }
}

#[test]
fn odd_polling_floats_never_crash_listen() {
    let sb = Sandbox::new();
    for var in [
        "BROKER_JITTER_FACTOR",
        "BROKER_MAX_INTERVAL",
        "BROKER_BURST_SLEEP",
    ] {
        for value in ODD_FLOATS {
            let out = sb.run_env(&["listen", "a.b", "--timeout", "300ms"], &[(var, value)]);
            assert_code(&out, 2); // nothing arrived: a clean timeout
        }
    }
}

#[test]
fn huge_integer_variables_saturate_like_the_reference() {
    // SimpleBroker takes any Python int here and works (exit 0).
    let sb = Sandbox::new();
    let huge = "99999999999999999999999";
    for var in [
        "BROKER_BUSY_TIMEOUT",
        "BROKER_CACHE_MB",
        "BROKER_WAL_AUTOCHECKPOINT",
        "BROKER_VACUUM_BATCH_SIZE",
        "BROKER_VACUUM_LOCK_TIMEOUT",
        "BROKER_AUTO_VACUUM_INTERVAL",
        "BROKER_INITIAL_CHECKS",
        "BROKER_READ_COMMIT_INTERVAL",
    ] {
        let env = [(var, huge)];
        assert_code(&sb.run_env(&["write", "q", "m"], &env), 0);
        assert_eq!(ok(&sb.run_env(&["read", "q"], &env)), "m\n", "{var}");
        assert_code(&sb.run_env(&["--vacuum"], &env), 0);
    }
}

#[test]
fn non_finite_or_overflowing_durations_are_refused() {
    let sb = Sandbox::new();
    ok(&sb.run(&["write", "q", "m"]));
    for value in [
        "nan",
        "inf",
        "1e400",
        "-1",
        "99999999999999999999d",
        "1.5e308s",
    ] {
        for args in [
            vec!["write", "q", "x", "--delay", value],
            vec!["read", "q", "--lease", value],
            vec!["queue", "config", "q", "--visibility", value],
            vec!["run", "q", "--lease", value, "--", "true"],
            vec!["run", "q", "--backoff", value, "--", "true"],
            vec!["request", "t", "m", "--timeout", value],
            vec!["listen", "a.b", "--timeout", value],
            vec!["listen", "a.b", "--expire", value],
            vec!["topic", "config", "t", "--retain", value],
        ] {
            let out = sb.run(&args);
            assert_refused(&out);
        }
    }
    assert_eq!(ok(&sb.run(&["peek", "q"])), "m\n");
}

#[test]
fn non_finite_or_huge_time_bounds_are_refused_like_the_reference() {
    let sb = Sandbox::new();
    ok(&sb.run(&["write", "q", "m"]));
    for (value, message) in [
        ("inf", "Invalid timestamp: inf"),
        ("nan", "Invalid timestamp: nan"),
        (
            "1e30",
            "Invalid timestamp: scientific notation not supported",
        ),
        (
            "99999999999999999999",
            "Invalid timestamp: exceeds maximum value",
        ),
        (
            "18446744073709551616000ms",
            "Invalid timestamp: too far in future",
        ),
        (
            "99999999999.99999999s",
            "Invalid timestamp: too far in future",
        ),
        (
            "99999999999999999999.5",
            "Invalid timestamp: 99999999999999999999.5",
        ),
    ] {
        for flag in ["--since", "--before"] {
            let out = sb.run(&["peek", "q", flag, value]);
            assert_refused(&out);
            assert!(
                stderr(&out).contains(message),
                "{flag} {value}: {}",
                stderr(&out)
            );
        }
    }
}
