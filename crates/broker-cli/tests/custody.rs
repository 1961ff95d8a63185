//! Custody through the real binary: regression tests for the fault
//! campaign's D4 (a progress record that cannot be written).

mod common;

use common::*;

/// D4: a directory stands where the first holder's progress file would go.
/// `read --all` still delivers every message exactly once: the record falls
/// back to the database, nothing printed is returned to the queue.
#[test]
fn read_all_without_a_progress_file_delivers_each_message_once() {
    let env = Sandbox::new();
    for i in 1..=5 {
        env.write("q", &format!("m{i}"));
    }
    std::fs::create_dir(env.path().join(".broker.db.holder-1")).unwrap();
    let out = env.run(&["read", "q", "--all"]);
    assert_eq!(ok(&out), "m1\nm2\nm3\nm4\nm5\n");
    assert_code(&env.run(&["read", "q", "--all"]), 2);
}
