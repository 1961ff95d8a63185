#!/usr/bin/env python3
"""Renders bench/results/tcp.jsonl (bench/tcp.sh) as bench/manual/tcp.md."""
import datetime
import json
import sys

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        rows[r["bench"]] = r
floor = rows.get("sqlite_single_commit", {}).get("per_sec")
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
out = [f"## The TCP protocol (`broker serve --tcp`; bench/tcp.sh, {now})", ""]
out.append(
    "A real server on 127.0.0.1 over a SQLite database in a temporary directory, driven by "
    "clients that speak the wire format and wait for each answer, as the original `BrokerClient` "
    "does (`crates/litebroker-tcp/examples/tcp_bench.rs`). The floor for acknowledged publishes "
    "is the disk: a publish is answered once durable, one SQLite writer commits "
    f"{floor:,.0f} times a second here (`sqlite-limits`, synchronous=FULL), so N publishers that "
    "each wait for their answer can at best get N commits' worth even with perfect group commit."
    if floor else "(no floor measured)"
)
out.append("")
out.append("| measure | litebroker | physical ceiling | share of the ceiling | goal |")
out.append("|---|---|---|---|---|")
for n, goal in [(1, ""), (4, ">= 20,000/s"), (16, "")]:
    r = rows.get(f"acked publishes/s, {n} publisher" + ("s" if n > 1 else ""))
    if not r:
        continue
    v = float(r["per_s"])
    ceiling = n * floor if floor else None
    share = f"{v / ceiling:.2f}" if ceiling else "–"
    out.append(f"| acked publishes/s, {n} publisher{'s' if n > 1 else ''} | {v:,.0f}/s | "
               f"{ceiling:,.0f}/s | {share} | {goal} |" if ceiling else f"| {r['bench']} | {v:,.0f}/s | – | – | {goal} |")
r = rows.get("delivered msgs/s, 3 members")
if r:
    out.append(f"| delivered to a subscription with 3 members | {float(r['per_s']):,.0f} msgs/s "
               f"({r.get('per_member', '')}) | – | – | >= 100,000/s |")
r = rows.get("publish->deliver latency")
if r:
    out.append(f"| publish -> deliver latency | p50 {float(r['p50_ms']):.2f} ms, p99 {float(r['p99_ms']):.2f} ms "
               f"({r['rounds']} rounds) | – | – | p99 <= 5 ms |")
out.append("")
print("\n".join(out))
