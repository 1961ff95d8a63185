#!/usr/bin/env python3
"""Renders bench/results/postgres.jsonl (bench/pg.sh) as bench/manual/postgres.md."""
import datetime
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
server = sys.argv[2] if len(sys.argv) > 2 else "?"
load = sys.argv[3] if len(sys.argv) > 3 else None


def get(bench, conns=None):
    for r in rows:
        if r["bench"] == bench and (conns is None or r.get("conns") == conns):
            return r
    return None


def rate(bench, conns):
    r = get(bench, conns)
    return r["per_sec"] if r else None


def cpu(bench, conns):
    r = get(bench, conns)
    return r.get("server_cpu_us_per_msg") if r else None


def fmt(v):
    if v is None:
        return "–"
    return f"{v:,.0f} msg/s"


def fcpu(v):
    return "–" if v is None else f"{v:,.0f} µs"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "–"


out = []
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
out.append(f"## litebroker on PostgreSQL (bench/pg.sh, {now}, PostgreSQL {server})\n")
out.append(
    "One local server (Unix socket, fsync on, default settings), every client in one run: the "
    "raw SQL floor (`pg-bench`: the smallest table and statements that do the work), litebroker "
    "through its library (`PostgresConnector`), and pg-boss 10.4.2 from npm "
    "(`bench/pgboss/bench.mjs`). The floor and litebroker take turns in 4 rounds per workload "
    "(the order rotating), each connected before its clock starts, so a busy machine slows "
    "both alike; pg-boss runs after them. Ratios are litebroker / floor and litebroker / pg-boss "
    "(higher is better for litebroker; the goal is at least 0.77x of the floor, i.e. within "
    "1.3x). *Server CPU* is the CPU time of the server's processes per message (from "
    "`/proc`), steadier than wall time on a shared machine."
    + (f" Load average when the run started: {load}." if load else "")
    + "\n"
)
out.append(
    "Two floors for writes. *Floor*: a plain `INSERT` with a `BIGSERIAL` id; concurrent "
    "inserts commit (and flush) together, but ids follow insertion, not commit, order, so a "
    "reader can see id 7 after it consumed id 8. *Ordered floor*: the same insert after "
    "raising one counter row in the same transaction, which is how litebroker keeps ids in "
    "commit order on every host (FIFO by id holds across hosts); the row lock serializes "
    "writers. litebroker keeps ordered ids, and commits its write without waiting for the flush "
    "while it holds the lock, then waits for the flush in a second short transaction once the "
    "lock is free (a single write does so only when it had to wait for the lock), so its "
    "writers share flushes as plain inserts do.\n"
)
out.append(
    "| workload | conns | floor | ordered floor | litebroker | vs floor | vs ordered floor "
    "| server CPU floor / litebroker | pg-boss | vs pg-boss |"
)
out.append("|---|---|---|---|---|---|---|---|---|---|")
work = [
    ("single writes (1 per transaction)", "floor_insert", "floor_insert_ordered", "lb_write", "pgboss_send"),
    ("batched writes (1,000 per transaction)", "floor_insert_batch", "floor_insert_batch_ordered", "lb_write_batch", "pgboss_insert_batch"),
    ("claim (exactly-once read)", "floor_claim", None, "lb_read", "pgboss_fetch_complete"),
    ("lease + ack", "floor_lease_ack", None, "lb_lease_ack", "pgboss_fetch_complete"),
]
goals = []
conns_seen = sorted({r.get("conns") for r in rows if r.get("conns")})
for conns in conns_seen:
    for label, floor, ordered, lb, boss in work:
        f, o, l, b = rate(floor, conns), rate(ordered, conns) if ordered else None, rate(lb, conns), rate(boss, conns)
        out.append(
            f"| {label} | {conns} | {fmt(f)} | {fmt(o)} | {fmt(l)} | {ratio(l, f)} | "
            f"{ratio(l, o) if o else '–'} | {fcpu(cpu(floor, conns))} / {fcpu(cpu(lb, conns))} | "
            f"{fmt(b)} | {ratio(l, b)} |"
        )
        if f and l:
            goals.append((f"{label}, {conns} conn: within 1.3x of the floor", l / f >= 1 / 1.3, f"{l / f:.2f}x"))
        if b and l:
            goals.append((f"{label}, {conns} conn: ahead of pg-boss", l > b, f"{l / b:.2f}x"))
boss = [get("pgboss_fetch_complete", c) for c in conns_seen]
depths = {r.get("queue_depth") for r in boss if r and r.get("queue_depth")}
if depths:
    out.append("")
    out.append(
        f"pg-boss has no consuming read: its claim and its lease + ack are both `fetch` then "
        f"`complete`, on a queue {', '.join(str(d) for d in sorted(depths))} jobs deep, as deep as "
        "litebroker's and the floor's (its fetch reads and sorts every waiting job by priority, "
        "creation time and id)."
    )
lw, bw = get("lb_watch_latency"), get("pgboss_work_latency")
out.append("")
out.append("| wake-up latency (commit of a write → the message in a waiting consumer's hands) | p50 | p99 | max | samples |")
out.append("|---|---|---|---|---|")
for name, r in [("litebroker (LISTEN/NOTIFY change feed)", lw), ("pg-boss `work()` (polls, at its minimum 0.5 s)", bw)]:
    if r:
        out.append(f"| {name} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['max_ms']:.2f} ms | {r['count']} |")
if lw:
    goals.append(("watch wake-up p99 under 5 ms", lw["p99_ms"] < 5, f"{lw['p99_ms']:.2f} ms"))
    if bw:
        goals.append(("watch wake-up: ahead of pg-boss", lw["p99_ms"] < bw["p99_ms"], f"p99 {lw['p99_ms']:.2f} vs {bw['p99_ms']:.2f} ms"))
b8 = rate("lb_write_batch", 8)
if b8:
    goals.append(("batched writes at least 50k msg/s on 8 connections", b8 >= 50000, fmt(b8)))
out.append("")
out.append("| goal | met | measured |")
out.append("|---|---|---|")
for name, ok, measured in goals:
    out.append(f"| {name} | {'yes' if ok else '**no**'} | {measured} |")
out.append("")
print("\n".join(out))
