//! The HTTP server behind `broker serve`.
//!
//! Shaped like mini-redis: [`run`] takes a bound listener, the database's
//! connector, a [`Config`] and a shutdown future, so tests start a server
//! on an ephemeral port and stop it when they like. The library is
//! synchronous: every call runs on a bounded blocking pool ([`pool`]), and
//! long-polls wait on the database's change feed ([`changes`]), one feed
//! listener for all waiting requests.
//!
//! Routes, one file per group:
//! - [`routes::pyqueue`]: the PyQueue server's API under `/api/v1`, for its
//!   existing clients;
//! - [`routes::queues`]: litebroker's own API under `/v1` (queues, messages,
//!   leases);
//! - [`routes::topics`]: topics and subscriptions under `/v1`;
//! - [`routes::admin`]: queue settings, move, redrive, aliases under `/v1`;
//! - [`routes::events`]: Server-Sent Events consumer groups;
//! - [`routes::keys`]: API keys stored in the database;
//! - [`routes::system`]: `/health`, `/ready`, `/metrics`, `/openapi.json`;
//! - [`routes::dashboard`]: the web dashboard at `/` and its data routes,
//!   with [`traffic`] (a sampler of messages in and out of each queue).
//!
//! Errors are `{"error": {"code", "message"}}`, mapped from the library's
//! error kinds in one place ([`error`]). Logs name the method, the route's
//! template and the status: never a key, a body, or a concrete path (which
//! may hold message ids or receipts).

pub mod auth;
pub mod changes;
pub mod commit;
pub mod error;
pub mod extract;
pub mod iso;
pub mod metrics;
pub mod pool;
pub mod routes;
pub mod traffic;
pub mod wait;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use litebroker::Connector;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

use crate::auth::Keys;
use crate::changes::Changes;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pool::Pool;

/// How the server behaves.
#[derive(Debug)]
pub struct Config {
    /// The API keys; `None` serves without authentication (the caller
    /// decides when that is allowed: `broker serve` only on loopback or
    /// with `--insecure-no-auth`).
    pub keys: Option<Keys>,
    /// Largest request body, bytes (a larger one gets 413).
    pub max_body_bytes: usize,
    /// Longest time a request may take, long-polls included.
    pub request_timeout: Duration,
    /// Most library calls running at once (the blocking pool's size).
    pub blocking_threads: usize,
    /// Longest long-poll a client may ask for (`wait=`).
    pub max_wait: Duration,
    /// Also accept the API keys stored in the database (and so require a
    /// key even if `keys` is `None`).
    pub keys_in_database: bool,
    /// Serve HTTPS with this certificate chain and key instead of HTTP.
    pub tls: Option<Tls>,
    /// How long the unacked deliveries of a dropped event stream wait for
    /// the client to resume with `Last-Event-ID` before they go to the
    /// group's other members (zero: at once).
    pub sse_resume_grace: Duration,
    /// Where connected event-stream members are counted (share it with a
    /// TCP server in the same process, so the dashboard shows both).
    pub presence: litebroker::Presence,
    /// How often the dashboard's traffic counts are sampled (at least; a
    /// slow sample makes the next one wait longer).
    pub traffic_every: Duration,
}

/// A certificate chain and its private key, PEM.
#[derive(Clone)]
pub struct Tls {
    /// The certificate chain, PEM (the server's certificate first).
    pub cert_pem: Vec<u8>,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls { .. }") // never the key
    }
}

impl Tls {
    /// Checks that the certificate and key are usable, before listening.
    pub async fn check(&self) -> std::io::Result<()> {
        axum_server::tls_rustls::RustlsConfig::from_pem(self.cert_pem.clone(), self.key_pem.clone())
            .await
            .map(|_| ())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keys: None,
            // A 10 MiB message as JSON can take up to 6 bytes per byte
            // escaped; the message limit itself is enforced by the library.
            max_body_bytes: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            blocking_threads: 16,
            max_wait: Duration::from_secs(20),
            keys_in_database: false,
            tls: None,
            sse_resume_grace: Duration::from_secs(5),
            presence: litebroker::Presence::new(),
            traffic_every: traffic::EVERY,
        }
    }
}

/// What every handler shares.
pub struct ServerState {
    /// The blocking pool on the database.
    pub pool: Arc<Pool>,
    /// API keys from a file.
    pub keys: Option<Keys>,
    /// API keys stored in the database, if they count. With neither,
    /// authentication is off.
    pub stored_keys: Option<auth::StoredKeys>,
    /// Wakes long-polls.
    pub changes: Arc<Changes>,
    /// Request metrics.
    pub metrics: Metrics,
    /// Becomes true when shutdown begins (long-polls answer at once).
    pub stopping: watch::Receiver<bool>,
    /// Longest long-poll.
    pub max_wait: Duration,
    /// The SSE consumer groups.
    pub groups: routes::events::Groups,
    /// Commits concurrent queue writes, takes and acks together.
    pub commits: commit::GroupCommit,
    /// Members connected to each queue or subscription, this process.
    pub presence: litebroker::Presence,
    /// Messages in and out of each queue lately (the dashboard's charts).
    pub traffic: traffic::Traffic,
    /// One lock per queue for PyQueue's idempotent sends, so that two
    /// concurrent sends of one id through this server store it once.
    pyqueue_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ServerState {
    /// The lock that serializes PyQueue sends to `queue` in this process.
    pub fn pyqueue_lock(&self, queue: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.pyqueue_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(queue.to_owned()).or_default().clone()
    }
}

/// The shared state, as handlers receive it.
pub type AppState = Arc<ServerState>;

/// Builds the state and the router without serving (tests of single
/// routes; [`run`] is the usual entry). Must be called on a tokio runtime
/// (it starts the group committer's task).
pub fn app(
    connector: Arc<dyn Connector>,
    config: Config,
) -> (Router, AppState, watch::Sender<bool>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let traffic_every = config.traffic_every;
    let changes = Arc::new(Changes::new(connector.changes()));
    let pool = Arc::new(Pool::new(connector, config.blocking_threads));
    let state = Arc::new(ServerState {
        commits: commit::GroupCommit::start(pool.clone(), changes.clone()),
        pool,
        keys: config.keys,
        stored_keys: config.keys_in_database.then(auth::StoredKeys::default),
        changes,
        metrics: Metrics::default(),
        stopping: stop_rx,
        max_wait: config.max_wait,
        groups: routes::events::Groups::new(config.sse_resume_grace),
        presence: config.presence,
        traffic: traffic::Traffic::default(),
        pyqueue_locks: Mutex::new(HashMap::new()),
    });
    tokio::spawn(traffic::run(state.clone(), traffic_every));
    let timeout = config.request_timeout;
    let router = routes::router()
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .route_layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("?", |m| m.as_str());
            tracing::info_span!("http", method = %req.method(), route = %route)
        }))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "timeout",
                        "the request took too long",
                    )
                }))
                .timeout(timeout),
        )
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state.clone());
    (router, state, stop_tx)
}

/// Serves HTTP (HTTPS with [`Config::tls`]) on `listener` until `shutdown` completes, then stops
/// accepting, answers waiting long-polls at once, finishes in-flight
/// requests and returns.
pub async fn run(
    listener: TcpListener,
    connector: Arc<dyn Connector>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = config.tls.clone();
    let (router, state, stop_tx) = app(connector, config);
    let changes = state.changes.clone();
    if let Some(tls) = tls {
        let rustls =
            axum_server::tls_rustls::RustlsConfig::from_pem(tls.cert_pem, tls.key_pem).await?;
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
            changes.wake_all();
            // In-flight requests finish (long-polls answer at once); the
            // request timeout bounds the rest.
            stopper.graceful_shutdown(Some(Duration::from_secs(60)));
        });
        return axum_server::from_tcp_rustls(listener.into_std()?, rustls)?
            .handle(handle)
            .serve(router.into_make_service())
            .await;
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
            changes.wake_all();
        })
        .await
}

/// Records each answered request in the metrics and the log: method, route
/// template, status, time. Nothing else.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "?".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    let took = start.elapsed();
    let status = response.status().as_u16();
    state.metrics.record(&method, &route, status, took);
    tracing::info!(method = %method, route = %route, status, micros = took.as_micros() as u64, "answered");
    response.into_response()
}
