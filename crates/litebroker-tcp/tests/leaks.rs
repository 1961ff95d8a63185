//! Bad clients leave nothing behind. Alone in its own test binary: it counts
//! this process's open descriptors, which tests running beside it would move.

mod common;

use std::time::Duration;

use common::{props, text, Server, PATIENCE};
use litebroker_tcp::frame::{Frame, Kind};
use litebroker_tcp::Config;

fn fast() -> Config {
    Config {
        grace: Duration::from_millis(20),
        ..Config::default()
    }
}

/// Sockets open in this process (database files come and go with the
/// server's connection pool, which is bounded on its own).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn bad_clients_leave_no_connection_behind() {
    let server = Server::start_with(Config {
        max_frame: 64 * 1024,
        ..fast()
    });
    let mut c = server.client();
    c.create_topic("t");
    c.create_subscription("s", "t", "0");
    let before = open_fds();
    let mut held = Vec::new();
    for i in 0..60u32 {
        let mut bad = std::net::TcpStream::connect(server.addr).unwrap();
        let frame = Frame::new(
            Kind::Subscribe,
            1,
            props(&[
                ("subscription_id", "s"),
                ("subscriber_id", &format!("b{i}")),
            ]),
            vec![],
        )
        .to_bytes();
        let bytes: Vec<u8> = match i % 4 {
            0 => frame[..frame.len() / 2].to_vec(), // cut mid-frame
            1 => vec![0xff; 32],                    // a 4 GiB claim
            2 => frame,                             // a member that vanishes
            _ => b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), // another protocol
        };
        let _ = std::io::Write::write_all(&mut bad, &bytes);
        held.push(bad);
    }
    // The server holds its end of each one that did not break the protocol
    // outright (both ends live in this process: ours, and half of theirs)...
    let live = held.len() + held.len() / 2;
    let deadline = std::time::Instant::now() + PATIENCE;
    while open_fds() < before + live && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(open_fds() >= before + live, "the connections were accepted");
    drop(held);
    // ...and after they go, every one of them is gone again; the server still works.
    let deadline = std::time::Instant::now() + PATIENCE;
    while open_fds() > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        open_fds() <= before,
        "{} sockets, {before} before",
        open_fds()
    );
    assert_eq!(c.publish("t", b"fine"), 0);
    let mut m = server.client();
    m.subscribe("s", "b2", &[]); // the vanished member's id is free again
    assert_eq!(text(&m.data(PATIENCE).unwrap()), "fine");
}
