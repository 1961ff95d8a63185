//! `broker serve`: the HTTP server (crate `litebroker-server`) on the
//! database the global options select, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use litebroker_server::auth::Keys;
use litebroker_server::{Config, Tls};

use super::Ctx;
use crate::args::ServeArgs;
use crate::exit::Outcome;

/// Serves (HTTPS with `--tls-cert`/`--tls-key`) until a signal, then shuts down gracefully: stops accepting,
/// answers long-polls at once, finishes in-flight requests.
pub fn run(ctx: &Ctx, args: &ServeArgs) -> Result<Outcome> {
    let addr: SocketAddr = args.http.parse().map_err(|_| {
        anyhow!(
            "--http: expected ADDR:PORT (e.g. 127.0.0.1:8080), got '{}'",
            args.http
        )
    })?;
    let keys = match &args.api_keys_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read API keys file {}", path.display()))?;
            let keys = Keys::from_pyqueue_json(&text)
                .map_err(|e| anyhow!("API keys file {}: {e}", path.display()))?;
            if keys.is_empty() {
                bail!("API keys file {} holds no key", path.display());
            }
            Some(keys)
        }
        None => None,
    };
    // Create or check the database before listening, so a bad path fails here.
    let mut broker = ctx.open()?;
    let stored_keys = !broker.api_keys()?.is_empty();
    let connector = broker.connector();
    drop(broker);
    if keys.is_none() && !stored_keys && !addr.ip().is_loopback() && !args.insecure_no_auth {
        bail!(
            "refusing to serve on {addr} without API keys: anyone who can reach it could read \
             and delete every message. Create keys (broker keys create), give --api-keys-file \
             FILE, serve on a loopback address, or pass --insecure-no-auth"
        );
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls {
            cert_pem: std::fs::read(cert)
                .with_context(|| format!("cannot read --tls-cert {}", cert.display()))?,
            key_pem: std::fs::read(key)
                .with_context(|| format!("cannot read --tls-key {}", key.display()))?,
        }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Keys in the database count whenever any key exists at start (a
    // server started without keys anywhere stays open, on loopback).
    let keys_in_database = stored_keys || keys.is_some();
    let config = Config {
        keys_in_database,
        keys,
        tls: tls.clone(),
        ..Config::default()
    };
    crate::interrupt::restore_default();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        if let Some(tls) = &tls {
            tls.check()
                .await
                .map_err(|e| anyhow!("--tls-cert/--tls-key: {e}"))?;
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        if !ctx.quiet {
            let over = scheme.to_uppercase();
            let db = connector.describe();
            println!("Serving {db} over {over} on {scheme}://{local}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        litebroker_server::run(listener, connector, config, shutdown_signal())
            .await
            .context("HTTP server failed")
    })?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(Outcome::Done)
}

/// Completes on the first SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Logs to stderr, `BROKER_LOG` choosing the level (default: warnings;
/// `BROKER_LOG=info` logs each request: method, route, status, time).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BROKER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
