//! Writes on PostgreSQL: a write commits without waiting for its flush under
//! the id lock and then waits for the flush outside it
//! (`backend/postgres/messages.rs::write`). What that must not change:
//! ids follow commit order however many writers there are, and a database
//! user who may not write the log message that waits for the flush still
//! writes (the plain commit).
//!
//! The server comes from `BROKER_TEST_POSTGRES_URL` (`scripts/test.sh` starts
//! one); without it these tests say so and pass, unless
//! `LITEBROKER_REQUIRE_POSTGRES=1`.
#![cfg(feature = "postgres")]

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use litebroker::backend::postgres::{PostgresConnector, PostgresOptions};
use litebroker::headers::{HeaderValue, Headers};
use litebroker::message::Filter;
use litebroker::Broker;

fn server(test: &str) -> Option<String> {
    match std::env::var("BROKER_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("LITEBROKER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "{test}: a PostgreSQL server is required (BROKER_TEST_POSTGRES_URL)"
            );
            eprintln!("{test}: skipped, BROKER_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("lbw_{tag}_{}_{}", std::process::id(), nanos % 100_000)
}

fn connector(url: &str, schema: &str) -> Arc<PostgresConnector> {
    let options = PostgresOptions {
        schema: schema.to_owned(),
        ..PostgresOptions::default()
    };
    Arc::new(PostgresConnector::new(url, options).unwrap())
}

/// One reader consuming oldest-first while several writers write: every id
/// it gets is larger than the one before. A writer whose commit became
/// visible after a later id was taken would show up here as a smaller id.
#[test]
fn a_reader_sees_ids_only_grow_while_many_writers_write() {
    let Some(url) = server("a_reader_sees_ids_only_grow_while_many_writers_write") else {
        return;
    };
    let schema = unique("order");
    let conn = connector(&url, &schema);
    let writers = 4;
    let per_writer = 150;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let conn = conn.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut broker = Broker::connect(conn).unwrap();
            let mut queue = broker.queue("order").unwrap();
            let mut seen = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let finished = done.load(Ordering::SeqCst);
                let got = queue.read_many(&Filter::all(), 7).unwrap();
                if got.is_empty() && finished {
                    return seen;
                }
                seen.extend(got.iter().map(|m| m.id));
                assert!(
                    std::time::Instant::now() < deadline,
                    "the reader ran out of time"
                );
            }
        })
    };
    std::thread::scope(|s| {
        for w in 0..writers {
            let conn = conn.clone();
            s.spawn(move || {
                let mut broker = Broker::connect(conn).unwrap();
                let mut queue = broker.queue("order").unwrap();
                for i in 0..per_writer {
                    let body = format!("w{w}-{i}");
                    if i % 5 == 0 {
                        let batch = [body.as_str(), "second", "third"];
                        queue.write_many(&batch).unwrap();
                    } else {
                        queue.write(&body).unwrap();
                    }
                }
            });
        }
    });
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();
    assert_eq!(seen.len(), writers * (per_writer + 2 * per_writer / 5));
    for pair in seen.windows(2) {
        assert!(
            pair[0] < pair[1],
            "ids out of commit order: {} then {}",
            pair[0],
            pair[1]
        );
    }
    conn.drop_schema().unwrap();
}

/// A user without EXECUTE on `pg_logical_emit_message` (revoked in its own
/// database) writes plain batches, batches with headers and delays, and
/// reads them back in order.
#[test]
fn a_user_who_may_not_emit_log_messages_still_writes() {
    let Some(url) = server("a_user_who_may_not_emit_log_messages_still_writes") else {
        return;
    };
    let admin_config = postgres::Config::from_str(&url).unwrap();
    let mut admin = admin_config.connect(postgres::NoTls).unwrap();
    let name = unique("nolog");
    admin
        .batch_execute(&format!("CREATE ROLE {name} LOGIN"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name} OWNER {name}"))
        .unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut db_config = admin_config.clone();
        db_config.dbname(&name);
        let mut db_admin = db_config.connect(postgres::NoTls).unwrap();
        db_admin
            .batch_execute(
                "REVOKE EXECUTE ON FUNCTION \
                 pg_catalog.pg_logical_emit_message(boolean, text, text) FROM PUBLIC",
            )
            .unwrap();
        drop(db_admin);

        let mut user_config = db_config.clone();
        user_config.user(&name);
        let mut user = user_config.connect(postgres::NoTls).unwrap();
        let may: bool = user
            .query_one(
                "SELECT has_function_privilege(\
                 'pg_catalog.pg_logical_emit_message(boolean, text, text)', 'EXECUTE')",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(!may, "the test's user may still emit log messages");
        let denied = user.batch_execute("SELECT pg_logical_emit_message(true, 'x', '')");
        assert!(
            denied.is_err(),
            "the test's user may still emit log messages"
        );
        drop(user);

        let user_url = with_user_and_db(&url, &name);
        let conn = connector(&user_url, "litebroker");
        let mut broker = Broker::connect(conn).unwrap();
        let mut queue = broker.queue("q").unwrap();
        let first = queue.write_many(&["a", "b", "c"]).unwrap();
        let mut headers = Headers::default();
        headers.insert("k", HeaderValue::Str("v".into())).unwrap();
        let with = queue.write_with("d", &headers, None).unwrap();
        let delayed = queue
            .write_with(
                "later",
                &Headers::default(),
                Some(Duration::from_secs(3600)),
            )
            .unwrap();
        assert!(first.windows(2).all(|p| p[0] < p[1]) && first[2] < with && with < delayed);
        let got = queue.read_many(&Filter::all(), 10).unwrap();
        let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["a", "b", "c", "d"]);
        assert_eq!(got[3].headers.get_str("k"), Some("v"));
    }));
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();
    admin.batch_execute(&format!("DROP ROLE {name}")).unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `url` with its user and database replaced (keeping host, port and the rest).
fn with_user_and_db(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("user=") && !p.starts_with("dbname="))
        .map(str::to_owned)
        .collect();
    params.push(format!("user={name}"));
    // Drop any user (and password) before the host: the new role has none.
    let (scheme, rest) = base.split_once("://").unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = rest.split('/').next().unwrap_or("");
    format!("{scheme}://{host}/{name}?{}", params.join("&"))
}
