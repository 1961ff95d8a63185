#!/usr/bin/env python3
"""Renders bench/results/postgres.jsonl (bench/pg.sh) as bench/manual/postgres.md."""
import datetime
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
server = sys.argv[2] if len(sys.argv) > 2 else "?"


def get(bench, conns=None):
    for r in rows:
        if r["bench"] == bench and (conns is None or r.get("conns") == conns):
            return r
    return None


def rate(bench, conns):
    r = get(bench, conns)
    return r["per_sec"] if r else None


def fmt(v):
    if v is None:
        return "–"
    return f"{v:,.0f} msg/s"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "–"


out = []
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
out.append(f"## litebroker on PostgreSQL (bench/pg.sh, {now}, PostgreSQL {server})\n")
out.append(
    "One local server (Unix socket, fsync on), every client in one run: the raw SQL floor "
    "(`pg-bench`: the smallest table and statements that do the work), litebroker through its "
    "library (`PostgresConnector`), and pg-boss 10.4.2 from npm (`bench/pgboss/bench.mjs`). "
    "Ratios are litebroker / floor and litebroker / pg-boss (higher is better for litebroker).\n"
)
out.append("| workload | conns | floor | floor, ids in commit order | litebroker | vs floor | vs ordered floor | pg-boss | vs pg-boss |")
out.append("|---|---|---|---|---|---|---|---|---|")
work = [
    ("single writes (1 per transaction)", "floor_insert", "floor_insert_ordered", "lb_write", "pgboss_send"),
    ("batched writes (1,000 per transaction)", "floor_insert_batch", "floor_insert_batch_ordered", "lb_write_batch", "pgboss_insert_batch"),
    ("claim (exactly-once read)", "floor_claim", None, "lb_read", "pgboss_fetch_complete"),
    ("lease + ack", "floor_lease_ack", None, "lb_lease_ack", "pgboss_fetch_complete"),
]
for conns in sorted({r.get("conns") for r in rows if r.get("conns")}):
    for label, floor, ordered, lb, boss in work:
        f, o, l, b = rate(floor, conns), rate(ordered, conns) if ordered else None, rate(lb, conns), rate(boss, conns)
        out.append(
            f"| {label} | {conns} | {fmt(f)} | {fmt(o)} | {fmt(l)} | {ratio(l, f)} | "
            f"{ratio(l, o) if o else '–'} | {fmt(b)} | {ratio(l, b)} |"
        )
lw, bw = get("lb_watch_latency"), get("pgboss_work_latency")
out.append("")
out.append("| wake-up latency (commit of a write → the message in a waiting consumer's hands) | p50 | p99 | max | samples |")
out.append("|---|---|---|---|---|")
for name, r in [("litebroker (LISTEN/NOTIFY change feed)", lw), ("pg-boss `work()` (polls, at its minimum 0.5 s)", bw)]:
    if r:
        out.append(f"| {name} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['max_ms']:.2f} ms | {r['count']} |")
out.append("")
print("\n".join(out))
