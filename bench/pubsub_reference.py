#!/usr/bin/env python3
"""Pub/sub measurements of formix-pubsub 1.0.0, the reference for litebroker's
publish/subscribe (bench/harness.py runs this next to pubsub-bench).

usage: pubsub_reference.py latency --home DIR [--n 1000] [--pace-ms 2]
       pubsub_reference.py fanout --home DIR --width W [--n 2000] [--time-limit 20]

Prints one JSON line per measurement, shaped like pubsub-bench's. Run it
with the venv's python (the one with `pip install formix-pubsub==1.0.0`).
PUBSUB_HOME is set to --home before pubsub is imported (its default is
/dev/shm/pubsub, tmpfs; the harness passes a directory under /dev/shm too).

latency: a subscriber process opens one Channel and fetches in a tight loop
(no sleep); for each message it prints "index monotonic_ns". The publisher
publishes one message, waits for that line, waits out --pace-ms since the
publish, and goes on. Both sides stamp with time.monotonic_ns() (one
system-wide CLOCK_MONOTONIC).

fanout: one consumer process opens W channels on one topic and fetches from
them in turn in a tight loop; the publisher publishes N messages as fast as
it can (stopping early at --time-limit) and then marks the end; the consumer
drains until every channel is quiet and reports what each channel got.
Deliveries/s = messages received by all channels / (first publish -> last
receive). Lost = published x W - received; out of order is counted too.
"""

import argparse
import json
import os
import subprocess
import sys
import time

TOPIC_LAT = "bench.lat"
TOPIC_FAN = "bench.fan"
ARRIVAL_TIMEOUT_S = 5.0
DRAIN_QUIET_S = 1.0


def emit(name, count, seconds, **extra):
    """Prints one JSON result line (bench, count, seconds, per_sec, extras)."""
    rec = {"bench": name, "count": count, "seconds": seconds,
           "per_sec": count / seconds if seconds > 0 else 0.0}
    rec.update(extra)
    print(json.dumps(rec), flush=True)


def import_pubsub(home):
    """Imports formix-pubsub with PUBSUB_HOME set first (it caches the base dir)."""
    os.makedirs(home, exist_ok=True)
    os.environ["PUBSUB_HOME"] = home
    import pubsub  # noqa: PLC0415 - must follow the environment
    return pubsub


def spawn_self(args):
    """Starts this script as a child (same interpreter) with `args`; line-based pipes."""
    return subprocess.Popen([sys.executable, os.path.abspath(__file__)] + args,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            text=True, bufsize=1)


def wait_ready(proc):
    """Reads the child's first line, which must be 'ready'."""
    line = proc.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"subscriber did not start (said {line!r})")


# ------------------------------------------------------------------ latency


def latency_subscriber(home):
    """Child: one channel, tight fetch loop, prints 'index monotonic_ns' per message."""
    ps = import_pubsub(home)
    with ps.Channel(topic=TOPIC_LAT) as ch:
        print("ready", flush=True)
        while True:
            msg = ps.fetch(ch)
            if msg is None:
                continue
            at = time.monotonic_ns()
            if msg.content == b"stop":
                return
            print(f"{int(msg.content)} {at}", flush=True)


def percentile(sorted_ms, p):
    """Nearest-rank percentile of an ascending list (NaN when empty)."""
    if not sorted_ms:
        return float("nan")
    return sorted_ms[round(p / 100 * (len(sorted_ms) - 1))]


def await_index(proc, want, deadline):
    """Reads the subscriber's lines until message `want` arrives; its stamp or None."""
    import select  # noqa: PLC0415
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return None
        line = proc.stdout.readline()
        if not line:
            return None
        idx, at = line.split()
        if int(idx) == want:
            return int(at)
    return None


def latency(home, n, pace_ms):
    """Publishes n messages one at a time to a tight-fetching subscriber process."""
    ps = import_pubsub(home)
    proc = spawn_self(["latency-subscriber", "--home", home])
    try:
        wait_ready(proc)
        lat_ms, lost = [], 0
        start = time.monotonic()
        for i in range(n):
            sent = time.monotonic_ns()
            ps.publish(TOPIC_LAT, str(i).encode())
            at = await_index(proc, i, time.monotonic() + ARRIVAL_TIMEOUT_S)
            if at is None:
                lost += 1
            else:
                lat_ms.append((at - sent) / 1e6)
            pause = sent / 1e9 + pace_ms / 1000 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        wall = time.monotonic() - start
        ps.publish(TOPIC_LAT, b"stop")
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lat_ms.sort()
    emit("latency_ref", n, wall, received=len(lat_ms), lost=lost, pace_ms=pace_ms,
         p50_ms=percentile(lat_ms, 50), p90_ms=percentile(lat_ms, 90),
         p99_ms=percentile(lat_ms, 99), max_ms=percentile(lat_ms, 100),
         min_ms=percentile(lat_ms, 0),
         mean_ms=sum(lat_ms) / len(lat_ms) if lat_ms else float("nan"),
         consumer="fetch loop process")


# ------------------------------------------------------------------ fan-out


def fanout_consumer(home, width, done_path):
    """Child: W channels fetched in turn; after the publisher's end mark and a
    quiet second, prints per-channel counts, order errors and the last stamp."""
    ps = import_pubsub(home)
    channels = [ps.Channel(topic=TOPIC_FAN) for _ in range(width)]
    for ch in channels:
        ch.open()
    print("ready", flush=True)
    got = [0] * width
    nxt = [0] * width
    disorder = [0] * width
    last_at, quiet_since = None, None
    try:
        while True:
            found = False
            for k, ch in enumerate(channels):
                msg = ps.fetch(ch)
                while msg is not None:
                    found = True
                    last_at = time.monotonic_ns()
                    idx = int(msg.content)
                    if idx != nxt[k]:
                        disorder[k] += 1
                    nxt[k] = idx + 1
                    got[k] += 1
                    msg = ps.fetch(ch)
            if found:
                quiet_since = None
                continue
            if os.path.exists(done_path):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > DRAIN_QUIET_S:
                    break
    finally:
        for ch in channels:
            ch.close()
    print(json.dumps({"got": got, "out_of_order": sum(disorder), "last_ns": last_at}),
          flush=True)


def fanout(home, width, n, time_limit):
    """Publishes up to n messages to W channels as fast as possible; counts what arrived."""
    ps = import_pubsub(home)
    done_path = os.path.join(home, f"done-{os.getpid()}-{width}")
    proc = spawn_self(["fanout-consumer", "--home", home, "--width", str(width),
                       "--done", done_path])
    try:
        wait_ready(proc)
        reached, published = 0, 0
        start_ns = time.monotonic_ns()
        stop_at = time.monotonic() + time_limit
        for i in range(n):
            reached += ps.publish(TOPIC_FAN, str(i).encode())
            published += 1
            if time.monotonic() > stop_at:
                break
        publish_s = (time.monotonic_ns() - start_ns) / 1e9
        with open(done_path, "w"):
            pass
        report = json.loads(proc.stdout.readline())
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if os.path.exists(done_path):
            os.remove(done_path)
    received = sum(report["got"])
    last_ns = report["last_ns"] or time.monotonic_ns()
    seconds = (last_ns - start_ns) / 1e9
    expected = published * width
    emit(f"fanout_ref_w{width}", received, seconds, width=width, published=published,
         requested=n, expected=expected, reached=reached, received=received,
         lost=expected - received, out_of_order=report["out_of_order"],
         publish_seconds=publish_s, publish_per_sec=published / publish_s if publish_s else 0,
         min_per_channel=min(report["got"]), max_per_channel=max(report["got"]),
         consumer="one process, W channels fetched in turn (tight loop)",
         time_limited=published < n)


def main():
    """Parses the command line and runs one measurement (or a child role)."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["latency", "fanout", "latency-subscriber",
                                     "fanout-consumer"])
    ap.add_argument("--home", required=True, help="PUBSUB_HOME for this run")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--pace-ms", type=float, default=2.0)
    ap.add_argument("--width", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--done", default=None, help="(fanout-consumer) end-mark file")
    a = ap.parse_args()
    if a.mode == "latency":
        latency(a.home, a.n or 1000, a.pace_ms)
    elif a.mode == "fanout":
        fanout(a.home, a.width, a.n or 2000, a.time_limit)
    elif a.mode == "latency-subscriber":
        latency_subscriber(a.home)
    else:
        fanout_consumer(a.home, a.width, a.done)


if __name__ == "__main__":
    main()
