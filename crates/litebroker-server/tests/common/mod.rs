//! A real server on 127.0.0.1, an ephemeral port, a temp database; stopped
//! through the shutdown future `run` takes.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use litebroker::backend::sqlite::SqliteConnector;
use litebroker::{Broker, Connector, Settings};
use litebroker_server::auth::Keys;
use litebroker_server::Config;
use tokio::sync::oneshot;

pub struct TestServer {
    pub url: String,
    pub client: reqwest::Client,
    pub connector: Arc<dyn Connector>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(keys: Option<&str>) -> TestServer {
        Self::start_with(keys, |_| {}).await
    }

    pub async fn start_with(keys: Option<&str>, tune: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, keys, tune).await
    }

    /// A server on the database `test.db` in `dir`.
    pub async fn start_in(
        dir: tempfile::TempDir,
        keys: Option<&str>,
        tune: impl FnOnce(&mut Config),
    ) -> TestServer {
        let connector: Arc<dyn Connector> = Arc::new(SqliteConnector::new(
            &dir.path().join("test.db"),
            &Settings::default(),
        ));
        Self::start_over(connector, dir, keys, tune).await
    }

    /// A server on `connector` (any backend); `dir` lives as long as it.
    pub async fn start_over(
        connector: Arc<dyn Connector>,
        dir: tempfile::TempDir,
        keys: Option<&str>,
        tune: impl FnOnce(&mut Config),
    ) -> TestServer {
        // Creates the database (blocking: PostgreSQL's client must not run
        // on a runtime thread).
        tokio::task::block_in_place(|| drop(Broker::connect(connector.clone()).unwrap()));
        let mut config = Config {
            keys: keys.map(|k| Keys::from_pyqueue_json(k).unwrap()),
            ..Config::default()
        };
        tune(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(litebroker_server::run(
            listener,
            connector.clone(),
            config,
            async move {
                let _ = rx.await;
            },
        ));
        TestServer {
            url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            connector,
            stop: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// A library handle on the same database (another "process").
    pub fn broker(&self) -> Broker {
        Broker::connect(self.connector.clone()).unwrap()
    }

    pub fn req(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.client.request(method, format!("{}{path}", self.url))
    }

    /// Sends; the status and the body as JSON (Null if not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut r = self.req(method, path);
        if let Some(k) = key {
            r = r.header("X-API-Key", k);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// GETs `path` (as `key`) until its JSON answer satisfies `want`, at
    /// most 15 s; the answer.
    pub async fn get_until(
        &self,
        path: &str,
        key: Option<&str>,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (status, v) = self.call("GET", path, key, None).await;
            assert_eq!(status, 200, "{path}: {v}");
            if want(&v) {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "{path} never: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A group committer's counts from `/metrics`: (requests, commits) of
    /// `kind` (`write`, `take` or `ack`).
    pub async fn commit_counts(&self, kind: &str) -> (u64, u64) {
        let text = self
            .req("GET", "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: String| -> u64 {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(name.as_str())?
                        .strip_prefix(' ')?
                        .parse()
                        .ok()
                })
                .unwrap_or_else(|| panic!("{name} missing from /metrics"))
        };
        (
            value(format!("litebroker_{kind}_requests_total")),
            value(format!("litebroker_{kind}_commits_total")),
        )
    }

    /// Sends and answers the status as soon as the headers arrive (for
    /// streams that do not end), dropping the connection.
    pub async fn status_only(&self, method: &str, path: &str, key: Option<&str>) -> u16 {
        let mut r = self.req(method, path);
        if let Some(k) = key {
            r = r.header("X-API-Key", k);
        }
        r.send().await.unwrap().status().as_u16()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.task.take().unwrap())
            .await
            .expect("server stopped")
            .unwrap()
            .unwrap();
    }
}

/// The bodies of the `messages` of an answer, in order.
pub fn bodies(answer: &serde_json::Value) -> Vec<String> {
    answer["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {answer}"))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

/// The error code of an error answer.
pub fn code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<not an error>")
}
