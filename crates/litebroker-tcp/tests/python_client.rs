//! A Python client that behaves like the original `BrokerClient` (and its
//! CLI), written from the wire format, against a real server.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::Server;
use litebroker_tcp::Config;

fn client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/client/broker_client.py")
}

fn command(server: &Server, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(client_script())
        .arg("--port")
        .arg(server.addr.port().to_string())
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied());
    cmd
}

/// Runs the client CLI to completion.
fn py(server: &Server, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(server, args, env)
        .output()
        .expect("python3 runs (the Python client tests need it)")
}

/// Runs the client CLI; returns its stdout, which it must exit 0 with.
fn py_ok(server: &Server, args: &[&str]) -> String {
    let out = py(server, args, &[]);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts a member in the background and waits until it has joined.
fn member(server: &Server, args: &[&str]) -> Child {
    let mut child = command(server, args, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "Joined subscription", "{args:?}");
    child
}

#[test]
fn the_seed_readme_client_and_cli_examples_work_unchanged() {
    let server = Server::start();
    // The README's CLI examples.
    assert_eq!(
        py_ok(&server, &["create-topic", "events", "--partitions", "1"]),
        "Created topic 'events' with 1 partitions\n"
    );
    assert_eq!(
        py_ok(&server, &["create-topic", "events"]),
        "Failed to create topic 'events'\n",
        "an existing topic is refused, as by the original"
    );
    assert_eq!(
        py_ok(
            &server,
            &["create-subscription", "my-group", "events", "--offset", "0"]
        ),
        "Created subscription 'my-group' for topic 'events' starting at offset 0\n"
    );
    assert_eq!(
        py_ok(
            &server,
            &[
                "--client-id",
                "publisher-1",
                "publish",
                "events",
                "Hello World"
            ]
        ),
        "Published message to topic 'events'\n"
    );
    py_ok(
        &server,
        &[
            "publish",
            "events",
            "Another message",
            "--properties",
            r#"{"custom_property": "value"}"#,
        ],
    );
    assert_eq!(
        py_ok(&server, &["publish", "nowhere", "lost"]),
        "Failed to publish message to topic 'nowhere'\n"
    );
    let joined = py_ok(
        &server,
        &[
            "--timeout",
            "20",
            "join-subscription",
            "my-group",
            "--count",
            "2",
        ],
    );
    let lines: Vec<&str> = joined.lines().collect();
    assert_eq!(lines[0], "Joining subscription 'my-group'");
    assert_eq!(lines[2], "[events@0] (sub: my-group) Hello World");
    assert!(lines[3].contains("'client_id': 'publisher-1'"), "{joined}");
    assert_eq!(lines[4], "[events@1] (sub: my-group) Another message");
    assert!(lines[5].contains("'custom_property': 'value'"), "{joined}");
    // Legacy subscribe: creates its own subscription from offset 0.
    let legacy = py_ok(
        &server,
        &[
            "--timeout",
            "20",
            "subscribe",
            "events",
            "--offset",
            "0",
            "--count",
            "2",
        ],
    );
    assert!(legacy.starts_with("Subscribing to events:0 from offset 0\n"));
    assert!(
        legacy.contains(") Hello World\n") && legacy.contains(") Another message\n"),
        "{legacy}"
    );
    assert!(legacy.contains("[events@1] (sub: client_"), "{legacy}");
    assert_eq!(
        py_ok(&server, &["delete-subscription", "my-group"]),
        "Deleted subscription 'my-group'\n"
    );
    assert_eq!(
        py_ok(&server, &["delete-subscription", "my-group"]),
        "Failed to delete subscription 'my-group'\n"
    );
}

/// The original client registers a member's handler only after it has
/// processed the SUBSCRIBE answer. A message waits in the subscription; a
/// member joins: with the grace period every join gets its message, even
/// with that window widened; without it, the same client loses messages.
/// (Each message is published just before its join: a member in the default
/// mode takes every waiting message, and a `--count 1` member leaves with
/// the rest written to its socket, delivered as far as the protocol knows.)
#[test]
fn joins_that_register_their_handler_late_lose_nothing_thanks_to_the_grace() {
    let run = |server: &Server, joins: usize, delay: &str, timeout: &str| -> usize {
        let mut c = server.client();
        c.create_topic("late");
        c.create_subscription("joins", "late", "0");
        (0..joins)
            .filter(|i| {
                c.publish("late", format!("for join {i}").as_bytes());
                let id = format!("j{i}");
                let out = py(
                    server,
                    &[
                        "--client-id",
                        &id,
                        "--timeout",
                        timeout,
                        "join-subscription",
                        "joins",
                        "--count",
                        "1",
                    ],
                    &[("LB_CLIENT_REGISTER_DELAY", delay)],
                );
                let stdout = String::from_utf8(out.stdout).unwrap();
                out.status.success()
                    && stdout.contains(&format!("[late@{i}] (sub: joins) for join {i}"))
            })
            .count()
    };
    let server = Server::start();
    assert_eq!(
        run(&server, 20, "0.05", "10"),
        20,
        "every join got its message"
    );

    // The control: no grace, and the same client misses what comes too early.
    let hasty = Server::start_with(Config {
        grace: Duration::ZERO,
        ..Config::default()
    });
    assert!(
        run(&hasty, 5, "0.2", "1") < 5,
        "without a grace period the late handler misses DATA"
    );
}

#[test]
fn three_python_members_share_a_subscription_round_robin() {
    // A short grace, well inside the pause below even on a loaded machine.
    let presence = litebroker::Presence::new();
    let server = Server::start_with(Config {
        grace: Duration::from_millis(50),
        presence: presence.clone(),
        ..Config::default()
    });
    let mut c = server.client();
    c.create_topic("tasks");
    c.create_subscription("workers", "tasks", "latest");
    let per = 10;
    let children: Vec<Child> = (0..3)
        .map(|i| {
            let id = format!("worker-{i}");
            let count = per.to_string();
            member(
                &server,
                &[
                    "--client-id",
                    &id,
                    "--timeout",
                    "20",
                    "join-subscription",
                    "workers",
                    "--count",
                    &count,
                ],
            )
        })
        .collect();
    // Every member has joined (Python starts slowly on a loaded machine)...
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while presence.connected().get("workers").map_or(0, |c| c.tcp) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the members never joined"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...and is past its grace period, so each is ready for its turn.
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..3 * per {
        c.publish("tasks", format!("task {i}").as_bytes());
    }
    let mut all = BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let offsets: Vec<u64> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("[tasks@"))
            .map(|l| l.split(']').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(offsets.len(), per, "{stdout}");
        for o in offsets {
            assert!(all.insert(o), "offset {o} twice");
        }
    }
    assert_eq!(all, (0..3 * per as u64).collect::<BTreeSet<_>>());
}

#[test]
fn a_python_member_with_manual_acks_acknowledges_every_message() {
    let server = Server::start();
    let mut c = server.client();
    c.create_topic("acked");
    c.create_subscription("careful", "acked", "0");
    for i in 0..5 {
        c.publish("acked", format!("m{i}").as_bytes());
    }
    let out = py_ok(
        &server,
        &[
            "--timeout",
            "20",
            "join-subscription",
            "careful",
            "--count",
            "5",
            "--manual-ack",
        ],
    );
    assert_eq!(out.lines().filter(|l| l.starts_with("[acked@")).count(), 5);
    // Its acks arrived before it closed: nothing comes back to the next member.
    std::thread::sleep(Duration::from_millis(300));
    let mut m = server.client();
    m.subscribe("careful", "next", &[]);
    assert!(m.data(Duration::from_millis(800)).is_none());
}

/// The seed README's Python snippets, as written there (the port aside),
/// with `from client import BrokerClient` served by our client module.
#[test]
fn the_seed_readme_python_api_examples_work_unchanged() {
    // A short grace, well inside the script's pause before it publishes.
    let server = Server::start_with(Config {
        grace: Duration::from_millis(50),
        ..Config::default()
    });
    let port = server.addr.port();
    let script = format!(
        r#"
import sys, time, threading
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, {dir:?})
import broker_client as client_module
sys.modules["client"] = client_module
from client import BrokerClient

# Publishing Messages
client = BrokerClient(host='localhost', port={port}, client_id='publisher-1')
client.connect()
client.create_topic('events')
client.publish_text('events', 'Hello, World!')
client.publish_text('events', 'Another message', custom_property='value')
client.disconnect()

# Subscribing to Messages
received = []
def message_handler(message):
    print(f"Received: {{message.body.decode('utf-8')}}", flush=True)
    received.append(message)

client = BrokerClient(host='localhost', port={port}, client_id='subscriber-1')
client.connect()
client.create_subscription('my-consumer-group', 'events', start_offset=0)
client.subscribe_to_subscription('my-consumer-group', handler=message_handler)
deadline = time.time() + 20
while len(received) < 2 and time.time() < deadline:
    time.sleep(0.02)
assert received[1].properties['custom_property'] == 'value', received[1].properties

# Multiple Subscribers (Round-robin): two more join the same subscription
counts = {{}}
def counting(name):
    def handler(message):
        counts[name] = counts.get(name, 0) + 1
    return handler
client1 = BrokerClient(host='localhost', port={port}, client_id='subscriber-2')
client1.connect()
client1.subscribe_to_subscription('my-consumer-group', handler=counting('a'))
client2 = BrokerClient(host='localhost', port={port}, client_id='subscriber-3')
client2.connect()
client2.subscribe_to_subscription('my-consumer-group', handler=counting('b'))
client.unsubscribe_from_subscription('my-consumer-group')
time.sleep(0.5)
publisher = BrokerClient(host='localhost', port={port}, client_id='publisher-2')
publisher.connect()
for i in range(10):
    assert publisher.publish_text('events', 'n%d' % i)
deadline = time.time() + 20
while sum(counts.values()) < 10 and time.time() < deadline:
    time.sleep(0.02)
print("round-robin", sorted(counts.items()), flush=True)
for c in (client, client1, client2, publisher):
    c.disconnect()
"#,
        dir = client_script().parent().unwrap().display().to_string(),
    );
    let out = Command::new("python3")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Received: Hello, World!\nReceived: Another message\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("round-robin [('a', 5), ('b', 5)]"),
        "{stdout}"
    );
}
