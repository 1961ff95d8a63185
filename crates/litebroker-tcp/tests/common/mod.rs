//! A real server on 127.0.0.1 (port 0) over a SQLite database in a temp
//! directory, and a hand-written blocking client that speaks the wire format.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use litebroker::backend::sqlite::SqliteConnector;
use litebroker::{Broker, Connector, Settings};
use litebroker_tcp::frame::{Frame, Kind, Properties, HEADER_LEN};
use litebroker_tcp::Config;

/// How long a test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running server; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a new, empty database.
    pub fn start() -> Server {
        Server::start_with(Config::default())
    }

    /// A server on a new database with `config`.
    pub fn start_with(config: Config) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".broker.db");
        let mut s = Server::on(&path, config);
        s._dir = Some(dir);
        s
    }

    /// A server on the database at `path` (which outlives it).
    pub fn on(path: &Path, config: Config) -> Server {
        let connector: Arc<dyn Connector> =
            Arc::new(SqliteConnector::new(path, &Settings::default()));
        Server::over(connector, path, config)
    }

    /// A server over any connector (`path` is only for [`Server::broker`]
    /// and the CLI, on SQLite).
    pub fn over(connector: Arc<dyn Connector>, path: &Path, config: Config) -> Server {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                litebroker_tcp::run_with(listener, connector, config, async {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        let addr = rx.recv_timeout(PATIENCE).expect("the server starts");
        Server {
            addr,
            path: path.to_owned(),
            stop: Some(stop),
            thread: Some(thread),
            _dir: None,
        }
    }

    /// A library handle on the same database.
    pub fn broker(&self) -> Broker {
        Broker::open(&self.path, &Settings::default()).unwrap()
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Properties from pairs.
pub fn props(pairs: &[(&str, &str)]) -> Properties {
    let mut p = Properties::new();
    for (k, v) in pairs {
        p.set(*k, *v);
    }
    p
}

/// A blocking client: requests are matched to answers by sequence number
/// (as the original client does); DATA is kept for [`Client::data`].
pub struct Client {
    pub stream: TcpStream,
    next_seq: u64,
    inbox: VecDeque<Frame>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_seq: 1000,
            inbox: VecDeque::new(),
        }
    }

    /// Sends a frame as it is.
    pub fn send(&mut self, frame: &Frame) {
        self.stream.write_all(&frame.to_bytes()).unwrap();
    }

    /// Reads the next frame, or `None` when the server closed the connection
    /// (or nothing came within `wait`).
    pub fn read_frame(&mut self, wait: Duration) -> Option<Frame> {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut header = [0u8; HEADER_LEN];
        self.stream.read_exact(&mut header).ok()?;
        let total = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut rest = vec![0u8; total - HEADER_LEN];
        self.stream.read_exact(&mut rest).ok()?;
        let mut all = header.to_vec();
        all.extend_from_slice(&rest);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(litebroker_tcp::frame::read_frame(&mut &all[..], usize::MAX))
            .ok()
            .flatten()
    }

    /// Sends a request and waits for the frame with its sequence number.
    pub fn request(&mut self, kind: Kind, pairs: &[(&str, &str)], body: &[u8]) -> Frame {
        self.next_seq += 1;
        let seq = self.next_seq;
        self.send(&Frame::new(kind, seq, props(pairs), body.to_vec()));
        self.answer(seq)
    }

    /// Waits for the answer to `seq`, keeping DATA that arrives first.
    pub fn answer(&mut self, seq: u64) -> Frame {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = self
                .read_frame(left.max(Duration::from_millis(1)))
                .expect("an answer");
            if f.kind == Kind::Data as u32 {
                self.inbox.push_back(f);
            } else if f.seq == seq {
                return f;
            }
        }
    }

    /// A request that must succeed.
    pub fn ok(&mut self, kind: Kind, pairs: &[(&str, &str)], body: &[u8]) -> Frame {
        let f = self.request(kind, pairs, body);
        assert_eq!(
            f.properties.get("status"),
            Some("success"),
            "{kind:?} {pairs:?}: {f:?}"
        );
        f
    }

    /// A request that must be refused; returns the error text.
    pub fn refused(&mut self, kind: Kind, pairs: &[(&str, &str)], body: &[u8]) -> String {
        let f = self.request(kind, pairs, body);
        assert_eq!(f.kind, Kind::Ack as u32);
        assert_eq!(
            f.properties.get("status"),
            Some("error"),
            "{kind:?} {pairs:?}"
        );
        f.properties.get("error").unwrap().to_owned()
    }

    /// The next DATA frame, waiting up to `wait`.
    pub fn data(&mut self, wait: Duration) -> Option<Frame> {
        if let Some(f) = self.inbox.pop_front() {
            return Some(f);
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let f = self.read_frame(left)?;
            if f.kind == Kind::Data as u32 {
                return Some(f);
            }
        }
    }

    pub fn create_topic(&mut self, topic: &str) {
        self.ok(Kind::CreateTopic, &[("topic", topic)], b"");
    }

    pub fn publish(&mut self, topic: &str, body: &[u8]) -> u64 {
        let f = self.ok(
            Kind::Publish,
            &[("topic", topic), ("client_id", "pub")],
            body,
        );
        f.properties.get("offset").unwrap().parse().unwrap()
    }

    pub fn create_subscription(&mut self, name: &str, topic: &str, start: &str) {
        self.ok(
            Kind::CreateSubscription,
            &[
                ("subscription_id", name),
                ("topic", topic),
                ("start_offset", start),
            ],
            b"",
        );
    }

    pub fn subscribe(&mut self, name: &str, subscriber: &str, extra: &[(&str, &str)]) -> Frame {
        let mut pairs = vec![("subscription_id", name), ("subscriber_id", subscriber)];
        pairs.extend_from_slice(extra);
        self.ok(Kind::Subscribe, &pairs, b"")
    }

    /// Sends an ACK for a DATA frame (manual acks).
    pub fn ack(&mut self, data: &Frame) {
        self.send(&Frame::new(
            Kind::Ack,
            data.seq,
            Properties::new(),
            Vec::new(),
        ));
    }

    /// Whether the server closed the connection (reads end) within `wait`.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(_) => return true,
            }
            if Instant::now() > deadline {
                return false;
            }
        }
    }
}

/// The body of a DATA frame as text.
pub fn text(f: &Frame) -> String {
    String::from_utf8(f.body.clone()).unwrap()
}

/// The `broker` binary of this workspace: the one `cargo test --workspace`
/// built beside this test, or built once if there is none (`cargo test -p
/// litebroker-tcp` alone). Never rebuilt while present: relinking a binary
/// that another test process is running fails (ETXTBSY).
pub fn broker_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // tests run from target/<profile>/deps/<test>; the binary is in target/<profile>.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_owned();
        let bin = profile_dir.join("broker");
        if bin.exists() {
            return bin;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut build = Command::new(cargo);
        build.current_dir(&workspace).args([
            "build",
            "--quiet",
            "-p",
            "broker-cli",
            "--bin",
            "broker",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the broker binary failed");
        assert!(bin.exists(), "no broker binary at {}", bin.display());
        bin
    })
    .clone()
}

/// Runs the `broker` binary on the database at `db`; returns stdout.
pub fn broker(db: &Path, args: &[&str]) -> String {
    let out = Command::new(broker_bin())
        .arg("-d")
        .arg(db.parent().unwrap())
        .arg("-f")
        .arg(db.file_name().unwrap())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "broker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
