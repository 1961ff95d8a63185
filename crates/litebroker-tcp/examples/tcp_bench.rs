//! Benchmarks of the TCP protocol on a SQLite database in a temp directory:
//! acked publishes/s with 1, 4 and 16 publishers, messages/s delivered to a
//! subscription with 3 members, publish→deliver latency p50/p99.
//!
//! `cargo run --release -p litebroker-tcp --example tcp_bench [-- --quick]`
//! prints one JSON object per measurement.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use litebroker::backend::sqlite::SqliteConnector;
use litebroker::pubsub::{NewSubscription, StartFrom};
use litebroker::{Broker, Connector, Headers, Outgoing, Settings};
use litebroker_tcp::frame::{Frame, Kind, Properties, HEADER_LEN};

struct Client {
    stream: TcpStream,
    seq: u64,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream, seq: 0 }
    }

    fn read(&mut self) -> (u32, u64, Vec<u8>) {
        let mut header = [0u8; HEADER_LEN];
        self.stream.read_exact(&mut header).unwrap();
        let total = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
        let kind = u32::from_be_bytes(header[4..8].try_into().unwrap());
        let seq = u64::from_be_bytes(header[8..16].try_into().unwrap());
        let mut rest = vec![0u8; total - HEADER_LEN];
        self.stream.read_exact(&mut rest).unwrap();
        (kind, seq, rest)
    }

    fn request(&mut self, kind: Kind, pairs: &[(&str, &str)], body: &[u8]) {
        // Sequence numbers far above any offset used here: no confusion.
        self.seq += 1;
        let seq = self.seq + (1 << 40);
        let mut props = Properties::new();
        for (k, v) in pairs {
            props.set(*k, *v);
        }
        let frame = Frame::new(kind, seq, props, body.to_vec());
        self.stream.write_all(&frame.to_bytes()).unwrap();
        loop {
            let (k, s, rest) = self.read();
            if s == seq && k != Kind::Data as u32 {
                assert!(
                    String::from_utf8_lossy(&rest).contains("status=success"),
                    "{kind:?} refused"
                );
                return;
            }
        }
    }

    fn data(&mut self) -> u64 {
        loop {
            let (k, s, _) = self.read();
            if k == Kind::Data as u32 {
                return s;
            }
        }
    }
}

fn report(name: &str, fields: &[(&str, String)]) {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    println!("{{\"bench\": \"{name}\", {}}}", body.join(", "));
}

fn publishers(addr: SocketAddr, n: usize, each: usize) -> f64 {
    let start = Instant::now();
    let threads: Vec<_> = (0..n)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let body = format!("message from publisher {t}");
                for _ in 0..each {
                    c.request(
                        Kind::Publish,
                        &[("topic", "bench"), ("client_id", "p")],
                        body.as_bytes(),
                    );
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    (n * each) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".broker.db");
    let connector: Arc<dyn Connector> = Arc::new(SqliteConnector::new(&path, &Settings::default()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server_connector = connector.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            litebroker_tcp::run(listener, server_connector, std::future::pending::<()>()).await;
        });
    });
    let addr = addr_rx.recv().unwrap();
    let mut admin = Client::connect(addr);
    admin.request(Kind::CreateTopic, &[("topic", "bench")], b"");

    let each = 2000 / scale;
    let one = publishers(addr, 1, each);
    report(
        "acked publishes/s, 1 publisher",
        &[
            ("per_s", format!("{one:.0}")),
            ("messages", each.to_string()),
        ],
    );
    let four = publishers(addr, 4, each);
    report(
        "acked publishes/s, 4 publishers",
        &[
            ("per_s", format!("{four:.0}")),
            ("messages", (4 * each).to_string()),
        ],
    );
    let sixteen = publishers(addr, 16, each / 4);
    report(
        "acked publishes/s, 16 publishers",
        &[
            ("per_s", format!("{sixteen:.0}")),
            ("messages", (4 * each).to_string()),
        ],
    );

    // Delivery: a subscription filled through the library, drained by 3 members.
    let total = 100_000 / scale;
    let mut broker = Broker::connect(connector.clone()).unwrap();
    broker
        .create_subscription(&NewSubscription {
            name: "drain",
            pattern: "fill",
            from: StartFrom::Latest,
            ephemeral: None,
        })
        .unwrap();
    let headers = Headers::new();
    let body = "x".repeat(100);
    for _ in 0..total / 1000 {
        let batch: Vec<Outgoing<'_>> = (0..1000)
            .map(|_| Outgoing {
                body: &body,
                headers: Some(&headers),
                delay: None,
            })
            .collect();
        broker.publish_batch("fill", &batch).unwrap();
    }
    // Each member notes when its first and last DATA arrived; the rate runs
    // from the first DATA anywhere to the last (joining and the grace period
    // before the first DATA are not delivery).
    let members: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                let mut m = Client::connect(addr);
                let id = format!("member-{i}");
                m.request(
                    Kind::Subscribe,
                    &[("subscription_id", "drain"), ("subscriber_id", &id)],
                    b"",
                );
                m.stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let (mut got, mut first, mut last) = (0usize, None, Instant::now());
                let mut buf = vec![0u8; 1 << 16];
                let mut pending: Vec<u8> = Vec::new();
                loop {
                    match m.stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                    let now = Instant::now();
                    first.get_or_insert(now);
                    let mut at = 0;
                    while pending.len() - at >= HEADER_LEN {
                        let len =
                            u32::from_be_bytes(pending[at..at + 4].try_into().unwrap()) as usize;
                        if pending.len() - at < len {
                            break;
                        }
                        got += 1;
                        last = now;
                        at += len;
                    }
                    pending.drain(..at);
                }
                (got, first.unwrap_or(last), last)
            })
        })
        .collect();
    let results: Vec<(usize, Instant, Instant)> =
        members.into_iter().map(|t| t.join().unwrap()).collect();
    let first = results.iter().map(|r| r.1).min().unwrap();
    let last = results.iter().map(|r| r.2).max().unwrap();
    let counts: Vec<usize> = results.iter().map(|r| r.0).collect();
    let delivered: usize = counts.iter().sum();
    let elapsed = (last - first).as_secs_f64();
    report(
        "delivered msgs/s, 3 members",
        &[
            ("per_s", format!("{:.0}", delivered as f64 / elapsed)),
            ("delivered", delivered.to_string()),
            ("of", total.to_string()),
            ("per_member", format!("\"{counts:?}\"")),
        ],
    );

    // Latency: publish one, wait for its DATA, repeat.
    admin.request(Kind::CreateTopic, &[("topic", "ping")], b"");
    admin.request(
        Kind::CreateSubscription,
        &[
            ("subscription_id", "pong"),
            ("topic", "ping"),
            ("start_offset", "latest"),
        ],
        b"",
    );
    let mut member = Client::connect(addr);
    member.request(
        Kind::Subscribe,
        &[("subscription_id", "pong"), ("subscriber_id", "latency")],
        b"",
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut publisher = Client::connect(addr);
    let rounds = 1000 / scale;
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let start = Instant::now();
        publisher.request(
            Kind::Publish,
            &[("topic", "ping"), ("client_id", "p")],
            b"ping",
        );
        assert_eq!(member.data(), i as u64);
        times.push(start.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    report(
        "publish->deliver latency",
        &[
            ("p50_ms", format!("{:.3}", pct(0.50).as_secs_f64() * 1e3)),
            ("p99_ms", format!("{:.3}", pct(0.99).as_secs_f64() * 1e3)),
            ("rounds", rounds.to_string()),
        ],
    );
}
