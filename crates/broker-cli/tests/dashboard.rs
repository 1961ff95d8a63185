//! The web dashboard of `broker serve`, in a real browser: Debian's
//! Chromium driven by playwright-core (Node), against the real binary on
//! 127.0.0.1 with data written by the `broker` CLI. The browser script is
//! crates/litebroker-server/tests/browser/dashboard.mjs; scripts/test.sh
//! installs its npm dependencies, and .ci/run installs Chromium. The script
//! takes a screenshot of each page; with LITEBROKER_UPDATE_SCREENSHOTS=1
//! they replace the ones in docs/screenshots/ (shown in the README),
//! otherwise they go to target/dashboard-screenshots/ so that a test run
//! leaves the committed files alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{now_ns, wait_bounded, Sandbox};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../litebroker-server/tests/browser")
}

fn chromium() -> PathBuf {
    let path = PathBuf::from(
        std::env::var("LITEBROKER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    assert!(
        path.exists(),
        "Chromium is not installed at {}: apt-get install chromium (.ci/run does), or set LITEBROKER_CHROMIUM",
        path.display()
    );
    path
}

/// A database with 10,000 queues (one transaction, straight into SQLite):
/// queue `q-NNNNN` holds `NNNNN % 7 + 1` messages.
fn ten_thousand_queues(sb: &Sandbox) -> PathBuf {
    assert!(sb.run(&["--status"]).status.success()); // creates the file
    let db = sb.db();
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    let tx = conn.transaction().unwrap();
    let mut ts = (now_ns() - 60_000_000_000) & !0xFFF;
    {
        let mut stmt = tx
            .prepare("INSERT INTO messages (queue, body, ts, claimed) VALUES (?1, ?2, ?3, 0)")
            .unwrap();
        for q in 0..10_000 {
            for m in 0..(q % 7 + 1) {
                ts += 4096;
                stmt.execute(rusqlite::params![
                    format!("q-{q:05}"),
                    format!("message {m}"),
                    ts
                ])
                .unwrap();
            }
        }
    }
    tx.execute(
        "UPDATE meta SET value = MAX(value, ?1) WHERE key = 'last_ts'",
        [ts],
    )
    .unwrap();
    tx.commit().unwrap();
    db
}

fn playwright_dir() -> PathBuf {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in {}: run scripts/test.sh (npm ci there)",
        dir.display()
    );
    dir
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let dir = playwright_dir();
    let big = Sandbox::new();
    let big_db = ten_thousand_queues(&big);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let screenshots = if std::env::var_os("LITEBROKER_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        root.join("target/dashboard-screenshots")
    };
    let mut child =
        Command::new(std::env::var("LITEBROKER_NODE").unwrap_or_else(|_| "node".into()))
            .arg("dashboard.mjs")
            .current_dir(&dir)
            .env("BROKER_BIN", common::broker_bin())
            .env("CHROMIUM", chromium())
            .env("BIG_DB", &big_db)
            .env("SCREENSHOTS", &screenshots)
            .spawn()
            .expect("run node (apt-get install nodejs npm)");
    let status = wait_bounded(&mut child, Duration::from_secs(240));
    assert!(
        status.success(),
        "the browser test failed (its output is above)"
    );
}

/// The same browser test with `broker --db URL` on PostgreSQL (a schema of
/// its own), when BROKER_TEST_POSTGRES_URL names a server (scripts/test.sh
/// starts one and sets LITEBROKER_REQUIRE_POSTGRES=1, under which a missing
/// URL fails). No screenshots, no 10,000 queues: the pages, not the sizes.
#[test]
fn the_dashboard_in_a_real_browser_on_postgresql() {
    let Ok(url) = std::env::var("BROKER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("LITEBROKER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "LITEBROKER_REQUIRE_POSTGRES=1 but BROKER_TEST_POSTGRES_URL is not set"
        );
        eprintln!("no PostgreSQL server (BROKER_TEST_POSTGRES_URL): skipped");
        return;
    };
    let dir = playwright_dir();
    let schema = format!("lbdash_{}_{}", std::process::id(), now_ns() % 1_000_000_000);
    let mut child =
        Command::new(std::env::var("LITEBROKER_NODE").unwrap_or_else(|_| "node".into()))
            .arg("dashboard.mjs")
            .current_dir(&dir)
            .env("BROKER_BIN", common::broker_bin())
            .env("CHROMIUM", chromium())
            .env("BROKER_DB_URL", &url)
            .env("BROKER_DATABASE_SCHEMA", &schema)
            .env_remove("BIG_DB")
            .env_remove("SCREENSHOTS")
            .spawn()
            .expect("run node (apt-get install nodejs npm)");
    let status = wait_bounded(&mut child, Duration::from_secs(240));
    // The schema goes, whatever the outcome.
    let cleanup = Command::new(common::broker_bin())
        .args(["--db", &url, "--cleanup", "--yes"])
        .env("BROKER_DATABASE_SCHEMA", &schema)
        .output()
        .unwrap();
    assert!(
        status.success(),
        "the browser test on PostgreSQL failed (its output is above)"
    );
    assert!(cleanup.status.success(), "{cleanup:?}");
}
