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
single = rows.get("sqlite_single_commit", {}).get("per_sec")
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
out = [f"## The TCP protocol (`broker serve --tcp`; bench/tcp.sh, {now})", ""]
out.append(
    "A real server on 127.0.0.1 over a SQLite database in a temporary directory, driven by "
    "clients that speak the wire format and wait for each answer, as the original `BrokerClient` "
    "does (`crates/litebroker-tcp/examples/tcp_bench.rs`). Client and server share this "
    "machine's CPUs. The floor for acknowledged publishes is measured in the same run, "
    "alternating with ours, 5 rounds each (the best round of each counts): a minimal server over loopback TCP (a "
    "thread per connection) that inserts each PUBLISH frame into a one-table SQLite database "
    "(WAL, synchronous=FULL, as ours) in one transaction per batch and answers after the "
    "commit, grouping either perfectly (one frame from every connected publisher) or greedily "
    "(whatever has arrived), whichever is faster. It does no topic log, offsets or copies to "
    "subscriptions: it is what a durable answered publish costs on these CPUs and this disk."
)
out.append("")
out.append("| measure | litebroker | publishes per commit | floor (same run) | share of the floor | goal |")
out.append("|---|---|---|---|---|---|")
for n, goal in [(1, ""), (4, ">= 20,000/s"), (16, "")]:
    name = f"acked publishes/s, {n} publisher" + ("s" if n > 1 else "")
    r = rows.get(name)
    f = rows.get("floor: " + name)
    if not r:
        continue
    v = float(r["per_s"])
    floor = float(f["per_s"]) if f else None
    floor_txt = (f"{floor:,.0f}/s (perfect {float(f['complete_per_s']):,.0f}, "
                 f"greedy {float(f['greedy_per_s']):,.0f})") if f else "–"
    share = f"{v / floor:.2f}" if floor else "–"
    out.append(f"| {name} | {v:,.0f}/s | {r.get('per_commit', '–')} | {floor_txt} | {share} | {goal} |")
r = rows.get("delivered msgs/s, 3 members")
if r:
    busy = ""
    if "lease_share" in r:
        busy = (f"; the one SQLite writer spent {float(r['lease_share']):.2f} of the time in "
                f"{r['leases']} lease and {float(r['ack_share']):.2f} in {r['ack_commits']} ack "
                f"transactions, {r['frames_per_write']} DATA frames per socket write")
    out.append(f"| delivered to a subscription with 3 members | {float(r['per_s']):,.0f} msgs/s "
               f"({r.get('per_member', '')}{busy}) | – | – | – | >= 100,000/s |")
r = rows.get("publish->deliver latency")
if r:
    out.append(f"| publish -> deliver latency | p50 {float(r['p50_ms']):.2f} ms, p99 {float(r['p99_ms']):.2f} ms "
               f"({r['rounds']} rounds) | – | – | – | p99 <= 5 ms |")
out.append("")
if single:
    out.append(
        f"Raw commits: one SQLite writer commits {single:,.0f} single-row transactions a second "
        "here with nobody waiting on a socket (`sqlite-limits`, synchronous=FULL). N times that is "
        "not a ceiling for N publishers: each waits a round trip for its answer before it sends "
        "the next, which the floor above includes."
    )
    out.append("")
print("\n".join(out))
