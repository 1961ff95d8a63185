//! Long operations show progress on stderr only when it is a terminal.

mod common;

use std::process::Command;

use common::{broker_bin, Sandbox};

fn fill(sb: &Sandbox, n: usize) {
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{{\"queue\": \"src\", \"id\": {}, \"body\": \"m{i}\"}}\n",
                1_700_000_000_000_000_000i64 + i as i64 * 4096
            )
        })
        .collect();
    let out = sb.run_stdin(&["load"], lines.as_bytes());
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
}

#[test]
fn no_progress_when_stderr_is_not_a_terminal() {
    let sb = Sandbox::new();
    fill(&sb, 20_000);
    let out = sb.run(&["move", "src", "dst", "--all"]);
    assert_eq!(common::code(&out), 0);
    assert!(out.stderr.is_empty(), "stderr: {}", common::stderr(&out));
    assert_eq!(common::stdout(&out).lines().count(), 20_000);
}

#[test]
fn progress_is_drawn_on_a_terminal() {
    let sb = Sandbox::new();
    fill(&sb, 50_000);
    // `script` gives the command a pseudo-terminal; stdout goes to /dev/null inside it.
    let inner = format!("{} move src dst --all > /dev/null", broker_bin().display());
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .current_dir(sb.path())
        .output()
        .expect("the `script` utility (util-linux) is needed for this test");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("moving"), "no progress drawn: {screen:?}");
    assert_eq!(common::stdout(&sb.run(&["list"])), "dst: 50000\n");
}
