//! `broker serve`: the real binary on 127.0.0.1, an ephemeral port, a temp
//! directory; driven by the PyQueue server's real client (pyqueue-client
//! 1.2.1, installed by scripts/test.sh) and by plain TCP.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{assert_code, stderr, wait_bounded, Sandbox};

/// The Python with `pyqueue_client` installed.
fn pyqueue_python() -> PathBuf {
    if let Ok(path) = std::env::var("LITEBROKER_PYQUEUE_PYTHON") {
        return PathBuf::from(path);
    }
    let fallback =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-pyqueue/bin/python");
    assert!(
        fallback.exists(),
        "the PyQueue client is not installed: run scripts/test.sh (or set LITEBROKER_PYQUEUE_PYTHON)"
    );
    fallback
}

/// A running `broker serve`; SIGKILLed if a test panics with it alive.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = sb.broker();
        cmd.args(["serve", "--http", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn broker serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("broker serve printed its address");
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .expect("an address")
            .to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "{line:?}");
        Server { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM, then the exit status and stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = wait_bounded(&mut self.child, Duration::from_secs(20));
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, err)
    }

    /// One raw HTTP/1.1 request; the status and body.
    fn request(&self, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split_once("\r\n\r\n").map_or("", |x| x.1).to_owned();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KEYS: &str = r#"{
  "k-admin-secret": {"description": "admin", "queues": {"*": ["READ", "WRITE", "DELETE", "MANAGE"]}},
  "k-reader-secret": {"description": "reader", "queues": {"ord*": ["read"]}}
}"#;

#[test]
fn pyqueue_client_works_unchanged() {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("keys.json"), KEYS).unwrap();
    let server = Server::start(
        &sb,
        &["--api-keys-file", "keys.json"],
        &[("BROKER_LOG", "info")],
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pyqueue_client_session.py"
    );
    let mut py = Command::new(pyqueue_python())
        .arg(script)
        .env("SERVER_URL", server.url())
        .env("ADMIN_KEY", "k-admin-secret")
        .env("READER_KEY", "k-reader-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let status = wait_bounded(&mut py, Duration::from_secs(90));
    let out = py.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success() && text.contains("PASS"),
        "client session failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The messages are litebroker messages: the CLI sees what the client left.
    assert_code(&sb.run(&["list"]), 0);
    let (status, log) = server.stop();
    assert!(status.success(), "{status:?}\n{log}");
    // The log names routes and statuses, never keys, bodies or ids.
    assert!(log.contains("answered"), "{log}");
    assert!(log.contains("/api/v1/queues/{queue}/messages"), "{log}");
    for secret in [
        "k-admin-secret",
        "k-reader-secret",
        "plain text",
        "m1",
        "\"n\"",
    ] {
        assert!(!log.contains(secret), "log shows {secret:?}:\n{log}");
    }
}

#[test]
fn sigterm_stops_gracefully_and_writes_survive() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[], &[]);
    let (code, body) = server.request(
        "POST",
        "/v1/queues/jobs/messages",
        &["Content-Type: application/json"],
        r#"{"messages": [{"body": "one"}, {"body": "two"}]}"#,
    );
    assert_eq!(code, 200, "{body}");
    // A long-poll in flight is answered (empty) at shutdown, not cut off.
    let addr = server.addr.clone();
    let poller = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"POST /v1/queues/idle/lease?wait=20s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (status, log) = server.stop();
    assert!(status.success(), "{status:?} {log}");
    let answer = poller.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"messages":[]}"#), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(
        common::ok(&sb.run(&["read", "jobs", "--all"])),
        "one\ntwo\n"
    );
}

#[test]
fn refuses_an_open_non_loopback_address_without_keys() {
    let sb = Sandbox::new();
    let out = sb.run(&["serve", "--http", "0.0.0.0:0"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("--insecure-no-auth"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_options_are_refused_before_listening() {
    let sb = Sandbox::new();
    let out = sb.run(&["serve", "--http", "localhost"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("ADDR:PORT"), "{}", stderr(&out));
    std::fs::write(
        sb.path().join("bad.json"),
        r#"{"s3cret": {"queues": {"q": ["root"]}}}"#,
    )
    .unwrap();
    let out = sb.run(&["serve", "--api-keys-file", "bad.json"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("unknown permission 'root'"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    let out = sb.run(&["serve", "--api-keys-file", "missing.json"]);
    assert_code(&out, 1);
}

#[test]
fn serves_the_database_the_global_options_select() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path().join("data")).unwrap();
    let server = Server::start_in(&sb, &["-d", "data", "-f", "q.db"]);
    let (code, body) = server.request(
        "POST",
        "/v1/queues/t/messages",
        &["Content-Type: application/json"],
        r#"{"body": "hello", "headers": {"k": 1}}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (status, _) = server.stop();
    assert!(status.success());
    assert_eq!(
        common::ok(&sb.run(&["-d", "data", "-f", "q.db", "read", "t"])),
        "hello\n"
    );
}

impl Server {
    /// Like [`Server::start`], with global options before `serve`.
    fn start_in(sb: &Sandbox, globals: &[&str]) -> Server {
        let mut cmd = sb.broker();
        cmd.args(globals)
            .args(["serve", "--http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn broker serve");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
        Server { child, addr }
    }
}

#[test]
fn tls_needs_both_files_and_usable_ones() {
    let sb = Sandbox::new();
    let out = sb.run(&["serve", "--tls-cert", "c.pem"]);
    assert_code(&out, 1);
    std::fs::write(sb.path().join("c.pem"), "not a certificate").unwrap();
    std::fs::write(sb.path().join("k.pem"), "not a key").unwrap();
    let out = sb.run(&[
        "serve",
        "--http",
        "127.0.0.1:0",
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
    ]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("--tls-cert/--tls-key"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("not a key"), "{}", stderr(&out));
}

#[test]
fn keys_made_by_the_cli_guard_the_server() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "keys",
        "create",
        "--name",
        "svc",
        "--allow",
        "jobs=read,WRITE",
    ]);
    assert_code(&out, 0);
    let secret = common::stdout(&out).trim().to_owned();
    assert!(secret.starts_with("lbk_"), "{secret}");
    assert!(stderr(&out).contains("shown this once"), "{}", stderr(&out));
    assert_code(
        &sb.run(&["keys", "create", "--name", "svc", "--allow", "x=read"]),
        1,
    );
    let bad = sb.run(&["keys", "create", "--name", "other", "--allow", "x=own"]);
    assert_code(&bad, 1);
    assert!(
        stderr(&bad).contains("unknown permission 'own'"),
        "{}",
        stderr(&bad)
    );
    let listed = common::ok(&sb.run(&["keys", "list"]));
    assert_eq!(listed, "svc\tjobs=read,write\n");
    assert!(!listed.contains(&secret));

    // With a key in the database, a key is required, even on loopback.
    let server = Server::start(&sb, &[], &[]);
    let body = r#"{"body": "x"}"#;
    let json = "Content-Type: application/json";
    let with_key = format!("X-API-Key: {secret}");
    assert_eq!(
        server
            .request("POST", "/v1/queues/jobs/messages", &[json], body)
            .0,
        401
    );
    assert_eq!(
        server
            .request("POST", "/v1/queues/jobs/messages", &[json, &with_key], body)
            .0,
        200
    );
    assert_eq!(
        server
            .request(
                "POST",
                "/v1/queues/other/messages",
                &[json, &with_key],
                body
            )
            .0,
        403
    );
    // Revoked by the CLI while the server runs: refused within a second or so.
    assert_code(&sb.run(&["keys", "revoke", "svc"]), 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.request("GET", "/v1/queues/jobs", &[&with_key], "").0 != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key still works"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_code(&sb.run(&["keys", "revoke", "svc"]), 1);
    let (status, _) = server.stop();
    assert!(status.success());

    // Keys in the database also allow a non-loopback address.
    let out = sb.run(&["keys", "create", "--name", "again", "--allow", "*=read"]);
    assert_code(&out, 0);
    let refused = sb.run(&[
        "serve",
        "--http",
        "0.0.0.0:0",
        "--tls-cert",
        "missing.pem",
        "--tls-key",
        "missing.pem",
    ]);
    assert!(
        !stderr(&refused).contains("refusing"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn sigkill_under_load_keeps_every_acknowledged_write() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[], &[]);
    let addr = server.addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for t in 0..4 {
        let (addr, stop) = (addr.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            // Bounded: at most 500 writes per thread, and stopped by the kill.
            for n in 0..500 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let body = format!("t{t}-{n}");
                let payload = format!(r#"{{"body": "{body}"}}"#);
                let request = format!(
                    "POST /v1/queues/load/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
                    payload.len()
                );
                let Ok(mut s) = TcpStream::connect(&addr) else {
                    break;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                if s.write_all(request.as_bytes()).is_err() {
                    break;
                }
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    acknowledged.push(body);
                }
            }
            acknowledged
        }));
    }
    std::thread::sleep(Duration::from_millis(400));
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        !acknowledged.is_empty(),
        "some writes were answered before the kill"
    );
    let stored = common::ok(&sb.run(&["peek", "load", "--all"]));
    let stored: std::collections::HashSet<&str> = stored.lines().collect();
    for body in &acknowledged {
        assert!(
            stored.contains(body.as_str()),
            "{body} was acknowledged but lost"
        );
    }
}

/// One frame of the TCP Message Broker's protocol, as its client builds it.
fn tcp_frame(kind: u32, seq: u64, props: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for (k, v) in props {
        p.extend_from_slice(format!("{k}={v}\0").as_bytes());
    }
    let mut out = Vec::new();
    out.extend_from_slice(&((32 + p.len() + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&(p.len() as u32).to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&p);
    out.extend_from_slice(body);
    out
}

/// Sends a request frame and reads the answer: (type, sequence, properties).
fn tcp_request(
    s: &mut TcpStream,
    kind: u32,
    seq: u64,
    props: &[(&str, &str)],
    body: &[u8],
) -> (u32, u64, String) {
    s.write_all(&tcp_frame(kind, seq, props, body)).unwrap();
    let mut header = [0u8; 32];
    s.read_exact(&mut header).unwrap();
    let total = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; total - 32];
    s.read_exact(&mut rest).unwrap();
    let props_len = u32::from_be_bytes(header[24..28].try_into().unwrap()) as usize;
    (
        u32::from_be_bytes(header[4..8].try_into().unwrap()),
        u64::from_be_bytes(header[8..16].try_into().unwrap()),
        String::from_utf8_lossy(&rest[..props_len]).replace('\0', ";"),
    )
}

#[test]
fn serves_the_tcp_protocol_beside_http_on_the_same_topics() {
    let sb = Sandbox::new();
    let mut child = sb
        .broker()
        .args(["serve", "--http", "127.0.0.1:0", "--tcp", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let mut http = String::new();
    let tcp = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve prints its addresses");
        if let Some(at) = line.find("http://") {
            http = line[at + "http://".len()..].trim().to_owned();
        }
        if let Some(addr) = line.strip_prefix("Serving the TCP protocol on ") {
            break addr.trim().to_owned();
        }
    };
    let mut s = TcpStream::connect(&tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (kind, seq, props) = tcp_request(&mut s, 4, 1, &[("topic", "orders")], b"");
    assert_eq!((kind, seq), (2, 1), "{props}");
    assert!(props.contains("status=success"), "{props}");
    let sub = [
        ("subscription_id", "billing"),
        ("topic", "orders"),
        ("start_offset", "0"),
    ];
    let (_, seq, props) = tcp_request(&mut s, 5, 2, &sub, b"");
    assert_eq!(seq, 2);
    assert!(props.contains("status=success"), "{props}");
    let (_, _, props) = tcp_request(
        &mut s,
        9,
        3,
        &[("topic", "orders"), ("client_id", "c1")],
        b"over tcp",
    );
    assert!(
        props.contains("status=success") && props.contains("offset=0"),
        "{props}"
    );
    // What a TCP client published, the CLI reads from the subscription.
    let out = sb.run(&["read", "billing"]);
    assert_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over tcp\n");
    // A TCP member shows on the HTTP dashboard, and goes when it leaves.
    let connected = || {
        let mut h = TcpStream::connect(&http).unwrap();
        h.write_all(b"GET /v1/dashboard/topics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        h.read_to_string(&mut answer).unwrap();
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["subscriptions"][0]["connected"].clone()
    };
    assert_eq!(connected(), serde_json::json!({"http": 0, "tcp": 0}));
    let member = [("subscription_id", "billing"), ("subscriber_id", "m1")];
    let (_, _, props) = tcp_request(&mut s, 7, 4, &member, b"");
    assert!(props.contains("status=success"), "{props}");
    assert_eq!(connected(), serde_json::json!({"http": 0, "tcp": 1}));
    let (_, _, props) = tcp_request(&mut s, 8, 5, &[("subscriber_id", "m1")], b"");
    assert!(props.contains("status=success"), "{props}");
    assert_eq!(connected(), serde_json::json!({"http": 0, "tcp": 0}));
    // SIGTERM stops both servers.
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert!(wait_bounded(&mut child, Duration::from_secs(20)).success());
}

#[test]
fn refuses_the_tcp_protocol_on_an_open_address_without_insecure_no_auth() {
    let sb = Sandbox::new();
    let out = sb.run(&["serve", "--http", "127.0.0.1:0", "--tcp", "0.0.0.0:0"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("--insecure-no-auth"),
        "{}",
        stderr(&out)
    );
    let out = sb.run(&["serve", "--http", "127.0.0.1:0", "--tcp", "nowhere"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("ADDR:PORT"), "{}", stderr(&out));
}
