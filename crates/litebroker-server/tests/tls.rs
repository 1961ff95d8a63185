//! HTTPS with rustls from a PEM certificate and key.

use std::sync::Arc;
use std::time::Duration;

use litebroker::backend::sqlite::SqliteConnector;
use litebroker::{Connector, Settings};
use litebroker_server::{Config, Tls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_only_https() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let tls = Tls {
        cert_pem: cert.cert.pem().into_bytes(),
        key_pem: cert.key_pair.serialize_pem().into_bytes(),
    };
    tls.check().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let connector: Arc<dyn Connector> = Arc::new(SqliteConnector::new(
        &dir.path().join("tls.db"),
        &Settings::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let config = Config {
        tls: Some(tls),
        ..Config::default()
    };
    let server = tokio::spawn(litebroker_server::run(
        listener,
        connector,
        config,
        async move {
            let _ = rx.await;
        },
    ));

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let url = format!("https://localhost:{}", addr.port());
    let resp = client
        .post(format!("{url}/v1/queues/secure/messages"))
        .json(&serde_json::json!({"body": "over tls"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got: serde_json::Value = client
        .post(format!("{url}/v1/queues/secure/read"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["messages"][0]["body"], "over tls");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/health", addr.port()))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    // A certificate that is not PEM is refused up front.
    let bad = Tls {
        cert_pem: b"not a certificate".to_vec(),
        key_pem: b"not a key".to_vec(),
    };
    assert!(bad.check().await.is_err());
    assert_eq!(format!("{bad:?}"), "Tls { .. }");

    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
