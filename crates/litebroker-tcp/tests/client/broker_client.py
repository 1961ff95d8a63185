#!/usr/bin/env python3
"""A client for the TCP Message Broker protocol, written for litebroker's tests
from the wire format. It behaves as the original `BrokerClient` does, down to
the details a server must live with:

- requests are numbered from 1 and an answer is whatever frame comes back
  with a pending request's sequence number (DATA included);
- PUBLISH carries `client_id`, not `publisher_id`;
- heartbeats go out with sequence number 0;
- a member's handler is registered only after the SUBSCRIBE answer has been
  received and processed, on the calling thread, so DATA that arrives before
  is dropped (LB_CLIENT_REGISTER_DELAY, in seconds, widens that window the
  way a loaded machine does);
- DATA is never acknowledged (unless the member asked for ack=manual).

Its command line has the original's commands and output; `--timeout` and the
`Joined subscription` line on stderr are additions for the tests.
Only the standard library is used.
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time

DATA, ACK, HEARTBEAT, CREATE_TOPIC, CREATE_SUBSCRIPTION = 1, 2, 3, 4, 5
DELETE_SUBSCRIPTION, SUBSCRIBE, UNSUBSCRIBE, PUBLISH = 6, 7, 8, 9
HEADER = struct.Struct(">IIQQII")


class Frame:
    def __init__(self, kind, body=b"", properties=None, seq=0, timestamp=None):
        self.kind = kind
        self.body = body
        self.properties = dict(properties or {})
        self.seq = seq
        self.timestamp = timestamp if timestamp is not None else time.time()
        self.properties.setdefault("created_at", str(self.timestamp))
        self.properties.setdefault("version", "1.0")

    def encode(self):
        props = b"".join(
            ("%s=%s" % (k, v)).encode("utf-8") + b"\x00" for k, v in self.properties.items()
        )
        total = HEADER.size + len(props) + len(self.body)
        head = HEADER.pack(total, self.kind, self.seq, int(self.timestamp * 1000),
                           len(props), len(self.body))
        return head + props + self.body

    @classmethod
    def decode(cls, data):
        total, kind, seq, ts_ms, plen, blen = HEADER.unpack(data[:HEADER.size])
        if total != len(data):
            raise ValueError("length %d, got %d" % (total, len(data)))
        raw = data[HEADER.size:HEADER.size + plen]
        props = {}
        for entry in raw.decode("utf-8").rstrip("\x00").split("\x00"):
            if "=" in entry:
                k, v = entry.split("=", 1)
                props[k] = v
        body = data[HEADER.size + plen:HEADER.size + plen + blen]
        return cls(kind, body, props, seq, ts_ms / 1000.0)


class BrokerClient:
    def __init__(self, host="127.0.0.1", port=9999, client_id=None):
        self.host, self.port = host, port
        self.client_id = client_id or "client_%d" % int(time.time())
        self.sock = None
        self.connected = False
        self.running = False
        self.seq = 0
        self.seq_lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.waiting = {}  # seq -> Event
        self.answers = {}  # seq -> Frame
        self.handlers = {}  # subscription_id -> handler
        self.joined = {}  # subscription_id -> topic
        self.manual = set()
        self.acked = 0
        self.heartbeat_interval = float(os.environ.get("LB_CLIENT_HEARTBEAT", "30"))
        self.request_timeout = float(os.environ.get("LB_CLIENT_TIMEOUT", "30"))
        self.register_delay = float(os.environ.get("LB_CLIENT_REGISTER_DELAY", "0"))

    # -- connection ---------------------------------------------------------
    def connect(self):
        self.sock = socket.create_connection((self.host, self.port))
        self.connected = self.running = True
        for target in (self._receive_loop, self._heartbeat_loop):
            threading.Thread(target=target, daemon=True).start()

    def disconnect(self):
        self.running = self.connected = False
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.disconnect()

    def _next_seq(self):
        with self.seq_lock:
            self.seq += 1
            return self.seq

    def _send(self, frame):
        with self.send_lock:
            self.sock.sendall(frame.encode())

    def _request(self, kind, props, body=b""):
        frame = Frame(kind, body, props, self._next_seq())
        event = threading.Event()
        self.waiting[frame.seq] = event
        try:
            self._send(frame)
            if event.wait(self.request_timeout):
                return self.answers.pop(frame.seq, None)
            return None
        finally:
            self.waiting.pop(frame.seq, None)
            self.answers.pop(frame.seq, None)

    @staticmethod
    def _ok(answer):
        return bool(answer) and answer.properties.get("status") == "success"

    def _recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _receive_loop(self):
        while self.running:
            try:
                head = self._recv_exact(4)
                if head is None:
                    break
                (total,) = struct.unpack(">I", head)
                rest = self._recv_exact(total - 4)
                if rest is None:
                    break
                self._dispatch(Frame.decode(head + rest))
            except (OSError, ValueError):
                break
        self.connected = False

    def _dispatch(self, frame):
        # Like the original: a pending request's number wins, whatever the type.
        event = self.waiting.get(frame.seq)
        if event is not None:
            self.answers[frame.seq] = frame
            event.set()
            return
        if frame.kind == HEARTBEAT:
            return
        if frame.kind == DATA:
            sub = frame.properties.get("subscription_id")
            handler = self.handlers.get(sub)
            if handler is not None:
                try:
                    handler(frame)
                finally:
                    if sub in self.manual:
                        self._send(Frame(ACK, b"", {"subscription_id": sub}, frame.seq))
                        self.acked += 1

    def _heartbeat_loop(self):
        while self.running and self.connected:
            time.sleep(self.heartbeat_interval)
            if self.running and self.connected:
                try:
                    self._send(Frame(HEARTBEAT))
                except OSError:
                    break

    # -- requests -----------------------------------------------------------
    def create_topic(self, topic, partitions=1, retention_hours=24):
        return self._ok(self._request(CREATE_TOPIC, {
            "topic": topic, "partitions": str(partitions),
            "retention_hours": str(retention_hours)}))

    def create_subscription(self, subscription_id, topic, start_offset=0):
        return self._ok(self._request(CREATE_SUBSCRIPTION, {
            "subscription_id": subscription_id, "topic": topic,
            "start_offset": str(start_offset)}))

    def delete_subscription(self, subscription_id):
        return self._ok(self._request(DELETE_SUBSCRIPTION, {"subscription_id": subscription_id}))

    def publish(self, topic, data, partition=None, **properties):
        props = {"topic": topic, "client_id": self.client_id}
        if partition is not None:
            props["partition"] = str(partition)
        for k, v in properties.items():
            props[k] = str(v)
        return self._ok(self._request(PUBLISH, props, data))

    def publish_text(self, topic, text, partition=None, **properties):
        return self.publish(topic, text.encode("utf-8"), partition, **properties)

    def subscribe_to_subscription(self, subscription_id, handler=None, manual=False):
        props = {"subscription_id": subscription_id, "subscriber_id": self.client_id}
        if manual:
            props["ack"] = "manual"
        answer = self._request(SUBSCRIBE, props)
        if not self._ok(answer):
            return False
        self.joined[subscription_id] = answer.properties.get("topic", "unknown")
        # Registered only now, after the answer was processed: DATA that came
        # before is dropped by _dispatch, as by the original client.
        if self.register_delay:
            time.sleep(self.register_delay)
        if manual:
            self.manual.add(subscription_id)
        if handler:
            self.handlers[subscription_id] = handler
        return True

    def unsubscribe_from_subscription(self, subscription_id):
        answer = self._request(UNSUBSCRIBE, {
            "subscription_id": subscription_id, "subscriber_id": self.client_id})
        if self._ok(answer):
            self.joined.pop(subscription_id, None)
            self.handlers.pop(subscription_id, None)
            return True
        return False

    def subscribe(self, topic, partition=0, offset=0, auto_ack=True, handler=None):
        subscription_id = "%s_%s_%s_%d" % (self.client_id, topic, partition, int(time.time()))
        if not self.create_subscription(subscription_id, topic, offset):
            return False
        return self.subscribe_to_subscription(subscription_id, handler)


def print_message(frame):
    topic = frame.properties.get("topic", "unknown")
    sub = frame.properties.get("subscription_id", "unknown")
    body = frame.body.decode("utf-8", errors="replace")
    print("[%s@%d] (sub: %s) %s" % (topic, frame.seq, sub, body), flush=True)
    extra = {k: v for k, v in frame.properties.items()
             if k not in ("topic", "subscription_id", "created_at", "version")}
    if extra:
        print("  Properties: %s" % extra, flush=True)


def receive(client, join, count, timeout):
    """Runs join(handler); waits for `count` messages. Exit status 3 on timeout."""
    got = [0]
    lock = threading.Lock()

    def handler(frame):
        with lock:
            print_message(frame)
            got[0] += 1

    if not join(handler):
        return False
    print("Joined subscription", file=sys.stderr, flush=True)
    deadline = time.time() + timeout if timeout else None
    def done():
        if not count or got[0] < count:
            return False
        # With manual acks, the last ACK is out before the connection closes.
        return not client.manual or client.acked >= count

    while not done():
        if deadline and time.time() > deadline:
            sys.exit(3)
        time.sleep(0.02)
    return True


def main():
    parser = argparse.ArgumentParser(description="Message Broker Client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--client-id")
    parser.add_argument("--timeout", type=float, help="give up waiting for messages after this")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("create-topic")
    p.add_argument("topic")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--retention", type=int, default=24)
    p = sub.add_parser("create-subscription")
    p.add_argument("subscription_id")
    p.add_argument("topic")
    p.add_argument("--offset", type=int, default=0)
    p = sub.add_parser("delete-subscription")
    p.add_argument("subscription_id")
    p = sub.add_parser("publish")
    p.add_argument("topic")
    p.add_argument("message")
    p.add_argument("--partition", type=int)
    p.add_argument("--properties")
    p = sub.add_parser("subscribe")
    p.add_argument("topic")
    p.add_argument("--partition", type=int, default=0)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--count", type=int)
    p = sub.add_parser("join-subscription")
    p.add_argument("subscription_id")
    p.add_argument("--count", type=int)
    p.add_argument("--manual-ack", action="store_true")
    args = parser.parse_args()
    if not args.command:
        parser.print_help()
        return

    with BrokerClient(args.host, args.port, args.client_id) as client:
        if args.command == "create-topic":
            if client.create_topic(args.topic, args.partitions, args.retention):
                print("Created topic '%s' with %d partitions" % (args.topic, args.partitions))
            else:
                print("Failed to create topic '%s'" % args.topic)
        elif args.command == "create-subscription":
            if client.create_subscription(args.subscription_id, args.topic, args.offset):
                print("Created subscription '%s' for topic '%s' starting at offset %d"
                      % (args.subscription_id, args.topic, args.offset))
            else:
                print("Failed to create subscription '%s'" % args.subscription_id)
        elif args.command == "delete-subscription":
            if client.delete_subscription(args.subscription_id):
                print("Deleted subscription '%s'" % args.subscription_id)
            else:
                print("Failed to delete subscription '%s'" % args.subscription_id)
        elif args.command == "publish":
            props = json.loads(args.properties) if args.properties else {}
            if client.publish_text(args.topic, args.message, args.partition, **props):
                print("Published message to topic '%s'" % args.topic)
            else:
                print("Failed to publish message to topic '%s'" % args.topic)
        elif args.command == "subscribe":
            print("Subscribing to %s:%d from offset %d" % (args.topic, args.partition, args.offset))
            print("Press Ctrl+C to stop...", flush=True)
            ok = receive(client, lambda h: client.subscribe(
                args.topic, args.partition, args.offset, True, h), args.count, args.timeout)
            if not ok:
                print("Failed to subscribe to topic '%s'" % args.topic)
        elif args.command == "join-subscription":
            print("Joining subscription '%s'" % args.subscription_id)
            print("Press Ctrl+C to stop...", flush=True)
            ok = receive(client, lambda h: client.subscribe_to_subscription(
                args.subscription_id, h, args.manual_ack), args.count, args.timeout)
            if not ok:
                print("Failed to join subscription '%s'" % args.subscription_id)


if __name__ == "__main__":
    main()
