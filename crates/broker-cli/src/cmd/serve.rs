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
    let tcp_addr: Option<SocketAddr> = match &args.tcp {
        None => None,
        Some(text) => Some(text.parse().map_err(|_| {
            anyhow!("--tcp: expected ADDR:PORT (e.g. 127.0.0.1:9999), got '{text}'")
        })?),
    };
    if let Some(tcp) = tcp_addr {
        if !tcp.ip().is_loopback() && !args.insecure_no_auth {
            bail!(
                "refusing to serve the TCP protocol on {tcp}: it has no API keys, so anyone who \
                 can reach it could read and publish every topic. Serve it on a loopback address \
                 or pass --insecure-no-auth"
            );
        }
    }
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
    // Both servers count their connected members in one place, so the
    // dashboard shows HTTP and TCP members alike.
    let presence = litebroker::Presence::new();
    let config = Config {
        keys_in_database,
        keys,
        tls: tls.clone(),
        presence: presence.clone(),
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
        let tcp_listener = match tcp_addr {
            Some(a) => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen on {a} (--tcp)"))?,
            ),
            None => None,
        };
        if !ctx.quiet {
            let over = scheme.to_uppercase();
            let db = connector.describe();
            println!("Serving {db} over {over} on {scheme}://{local}");
        }
        if let (Some(l), false) = (&tcp_listener, ctx.quiet) {
            println!("Serving the TCP protocol on {}", l.local_addr()?);
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // One signal stops both servers.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let tcp = {
            let connector = connector.clone();
            let rx = stop_rx.clone();
            async move {
                if let Some(l) = tcp_listener {
                    let config = litebroker_tcp::Config {
                        presence,
                        ..litebroker_tcp::Config::default()
                    };
                    litebroker_tcp::run_with(l, connector, config, stopped(rx)).await;
                }
            }
        };
        let http = litebroker_server::run(listener, connector, config, stopped(stop_rx));
        let (served, ()) = tokio::join!(http, tcp);
        served.context("HTTP server failed")
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
