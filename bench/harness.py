#!/usr/bin/env python3
"""Runs the litebroker CLI benchmarks, ours and the reference side by side.

Called by bench/run.sh; stdlib only. Every workload runs in a fresh temp
directory (local filesystem), first with OUR `broker`, then with the
REFERENCE (SimpleBroker 2.8.4). Results go to one JSON file that
bench/report.py turns into BENCHMARKS.md.

Fixtures: an empty database is created by the reference itself
(`broker --status`), so every file has exactly the reference's schema and
pragmas; large fixtures are that file filled directly with sqlite3 (the file
format is the contract, so both brokers read the same bytes).
"""

import argparse
import json
import os
import platform
import re
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

DB_NAME = ".broker.db"
# minimal-write with a close that keeps the WAL (measured for comparison, not
# what litebroker does): no checkpoint on close, the -wal/-shm files kept, a
# TRUNCATE checkpoint once the WAL exceeds 64 frames.
KEPT_WAL = ["--no-checkpoint-on-close", "--checkpoint-over", "64"]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# fixtures


class Fixtures:
    """Template database files, copied into a fresh directory per run."""

    def __init__(self, base, ref_broker):
        self.dir = os.path.join(base, "fixtures")
        os.makedirs(self.dir)
        self.ref_broker = ref_broker
        self._cache = {}
        self._scratch = 0

    def empty(self):
        if "empty" not in self._cache:
            d = os.path.join(self.dir, "empty")
            os.makedirs(d)
            run([self.ref_broker, "-d", d, "--status"], timeout=60)
            self._cache["empty"] = os.path.join(d, DB_NAME)
        return self._cache["empty"]

    def filled(self, n):
        """The empty reference database plus n messages in queue 'q'."""
        key = f"filled-{n}"
        if key not in self._cache:
            path = os.path.join(self.dir, f"{key}.db")
            shutil.copyfile(self.empty(), path)
            populate(path, n)
            self._cache[key] = path
        return self._cache[key]

    def fresh_dir(self, tag, template=None):
        """A new empty directory, optionally holding a copy of a template db."""
        self._scratch += 1
        d = os.path.join(os.path.dirname(self.dir), f"{self._scratch:03d}-{tag}")
        os.makedirs(d)
        if template:
            shutil.copyfile(template, os.path.join(d, DB_NAME))
            os.chmod(os.path.join(d, DB_NAME), 0o600)
        return d


def populate(path, n, queue="q"):
    """Inserts n messages directly with sqlite3, ids in the reference's
    encoding (ns time, low 12 bits a counter), a minute in the past, and
    advances meta.last_ts like a writer would."""
    base = (time.time_ns() - 60 * 10**9) & ~0xFFF
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN IMMEDIATE")
    con.executemany(
        "INSERT INTO messages (queue, body, ts, claimed) VALUES (?, ?, ?, 0)",
        ((queue, f"message {i:06d}", base + i) for i in range(n)),
    )
    con.execute("UPDATE meta SET value = ? WHERE key = 'last_ts' AND value < ?",
                (base + n - 1, base + n - 1))
    con.execute("COMMIT")
    con.close()  # last connection: checkpoints and removes the -wal file
    if os.path.exists(path + "-wal"):
        raise RuntimeError(f"{path}-wal left behind after populate")


# --------------------------------------------------------------------------
# process helpers


class Failed(Exception):
    pass


class Watchdog(BaseException):
    """Ends the whole run (not caught by the per-workload handlers)."""


def run(cmd, timeout=120, stdout=subprocess.DEVNULL, ok=(0,)):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=stdout,
                       stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode not in ok:
        err = p.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise Failed(f"{' '.join(cmd)} exited {p.returncode}: {' | '.join(err)}")
    return p


def timed_process(cmd, out_path, timeout=None):
    """Runs cmd under /usr/bin/time -v, stdout to out_path. Returns wall
    seconds (measured here), peak RSS in KiB (from time -v) and line count.
    Measured runs pass no timeout (see sequential())."""
    tfile = out_path + ".time"
    with open(out_path, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", "-o", tfile] + cmd,
                           stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.PIPE, timeout=timeout)
        wall = time.perf_counter() - t0
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise Failed(f"{' '.join(cmd)} exited {p.returncode}: {' | '.join(err)}")
    with open(tfile) as f:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
    rss = int(m.group(1)) if m else None
    with open(out_path, "rb") as f:
        lines = sum(1 for _ in f)
    return wall, rss, lines


def hyperfine(cmds, runs, warmup, work):
    """Wall time per process for each command of `cmds` (a dict label ->
    argv), measured back to back so that they see the same machine state:
    hyperfine -N if present, else a plain interleaved timing loop."""
    stats = lambda t, tool: {"median_s": statistics.median(t), "mean_s": statistics.mean(t),
                             "stddev_s": statistics.pstdev(t), "min_s": min(t),
                             "max_s": max(t), "runs": len(t), "tool": tool}
    labels = list(cmds)
    if shutil.which("hyperfine"):
        export = os.path.join(work, "hyperfine.json")
        run(["hyperfine", "-N", "--style", "none", "--runs", str(runs),
             "--warmup", str(warmup), "--export-json", export]
            + [" ".join(cmds[k]) for k in labels], timeout=900)
        with open(export) as f:
            results = json.load(f)["results"]
        return {k: stats(r["times"], "hyperfine") for k, r in zip(labels, results)}
    for k in labels:
        for _ in range(warmup):
            run(cmds[k])
    times = {k: [] for k in labels}
    for _ in range(runs):
        for k in labels:
            t0 = time.perf_counter()
            run(cmds[k])
            times[k].append(time.perf_counter() - t0)
    return {k: stats(t, "python loop") for k, t in times.items()}


def sequential(cmds):
    """Runs the commands one after another; returns total wall seconds.
    No per-process timeout: Popen.wait(timeout) polls with sleeps and adds
    ~1 ms to every process; the global watchdog (--max-seconds) bounds this."""
    t0 = time.perf_counter()
    for cmd in cmds:
        run(cmd, timeout=None)
    return time.perf_counter() - t0


def cpu_busy(interval=1.0):
    """Fraction of all CPUs busy over `interval` seconds (from /proc/stat)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    t1, i1 = snap()
    time.sleep(interval)
    t2, i2 = snap()
    return 1 - (i2 - i1) / max(1, t2 - t1)


class Quiet:
    """Before each workload, waits (bounded) until the machine is idle, since
    other work on a shared box skews every number; records what it saw."""

    def __init__(self, threshold, max_wait, total_wait):
        self.threshold, self.max_wait, self.budget = threshold, max_wait, total_wait

    def wait(self, what):
        t0 = time.perf_counter()
        busy = cpu_busy()
        warned = False
        while busy > self.threshold and self.budget > 0 and time.perf_counter() - t0 < self.max_wait:
            if not warned:
                log(f"{what}: machine busy ({busy:.0%} CPU), waiting up to {self.max_wait:.0f}s")
                warned = True
            time.sleep(2)
            busy = cpu_busy()
        waited = time.perf_counter() - t0
        self.budget -= waited
        return {"cpu_busy_before": round(busy, 3), "waited_s": round(waited, 1),
                "loadavg": loadavg()}


def file_sizes(d):
    path = os.path.join(d, DB_NAME)
    size = lambda p: os.path.getsize(p) if os.path.exists(p) else 0
    return {"db_bytes": size(path), "wal_bytes": size(path + "-wal"),
            "shm_bytes": size(path + "-shm")}


# --------------------------------------------------------------------------
# workloads. (a)-(c) take every side at once and return {label: numbers}
# (floors included); the others take one (side, broker) and return numbers.


class Bench:
    def __init__(self, args, fx):
        self.a = args
        self.fx = fx

    def side_sizes(self, side):
        ref = side == "reference"
        return {
            "read_all": self.a.ref_read_all if ref else self.a.big,
            "read_all_reps": 1 if ref else self.a.reps,
            "peek_reps": 1 if ref else self.a.reps,
        }

    # (a) one write process: floors, ours and the reference back to back
    def write_process(self, sides, minimal):
        cmds, d = {}, {}
        for label in ("floor", "floor_no_ckpt", "floor_kept_wal") + tuple(sides):
            d[label] = self.fx.fresh_dir(f"{label}-write", self.fx.empty())
        cmds["floor"] = [minimal, os.path.join(d["floor"], DB_NAME), "q", "hello"]
        cmds["floor_no_ckpt"] = [minimal, "--no-checkpoint-on-close",
                                 os.path.join(d["floor_no_ckpt"], DB_NAME), "q", "hello"]
        cmds["floor_kept_wal"] = [minimal] + KEPT_WAL + [
            os.path.join(d["floor_kept_wal"], DB_NAME), "q", "hello"]
        cmds["spawn"] = ["/bin/true"]
        for side, broker in sides.items():
            cmds[side] = broker + ["-d", d[side], "write", "q", "hello"]
        return hyperfine(cmds, self.a.runs, self.a.warmup, d["floor"])

    # (b) one read process (the queue holds more messages than runs)
    def read_process(self, sides, minimal):
        n = self.a.runs + self.a.warmup + 10
        fd = self.fx.fresh_dir("floor-read", self.fx.empty())
        cmds = {"floor": [minimal, os.path.join(fd, DB_NAME), "q", "hello"]}
        for side, broker in sides.items():
            d = self.fx.fresh_dir(f"{side}-read", self.fx.filled(n))
            cmds[side] = broker + ["-d", d, "read", "q"]
        return hyperfine(cmds, self.a.runs, self.a.warmup, fd)

    # (c) N sequential write processes. Ours and the floors run interleaved in
    # rounds of 100 (same machine state); the slow reference runs afterwards.
    def sequential_writes(self, sides, minimal):
        fast = {"floor": lambda d, i: [minimal, os.path.join(d, DB_NAME), "q", f"message {i}"],
                "floor_no_ckpt": lambda d, i: [minimal, "--no-checkpoint-on-close",
                                               os.path.join(d, DB_NAME), "q", f"message {i}"],
                "floor_kept_wal": lambda d, i: [minimal] + KEPT_WAL + [
                    os.path.join(d, DB_NAME), "q", f"message {i}"],
                "floor_kept_wal_nosync": lambda d, i: [minimal] + KEPT_WAL + [
                    "--sync", "OFF", os.path.join(d, DB_NAME), "q", f"message {i}"],
                "rust_start": lambda d, i: [minimal, "--stop-after", "start"],
                "spawn": lambda d, i: ["/bin/true"]}
        for side, broker in sides.items():
            if side != "reference":
                fast[side] = lambda d, i, b=broker: b + ["-d", d, "write", "q", f"message {i}"]
        out = {}
        n = self.a.seq_writes
        dirs = {k: self.fx.fresh_dir(f"{k}-seq", self.fx.empty()) for k in fast}
        walls = {k: 0.0 for k in fast}
        for start in range(0, n, 100):
            idx = range(start, min(n, start + 100))
            for k, make in fast.items():
                walls[k] += sequential(make(dirs[k], i) for i in idx)
        for k in fast:
            out[k] = {"n": n, "wall_s": walls[k], "msg_per_s": n / walls[k]}
        if "reference" in sides:
            m = self.a.ref_seq_writes
            dirs["reference"] = self.fx.fresh_dir("reference-seq", self.fx.empty())
            wall = sequential(sides["reference"] + ["-d", dirs["reference"], "write", "q",
                                                    f"message {i}"] for i in range(m))
            out["reference"] = {"n": m, "wall_s": wall, "msg_per_s": m / wall}
        for k in out:
            if k not in ("spawn", "rust_start"):
                got = count_rows(dirs[k])
                if got != out[k]["n"]:
                    raise Failed(f"{k}: expected {out[k]['n']} rows after sequential writes, found {got}")
        return out

    # (d) read --all of a big queue, then (g) --vacuum on the same file
    def read_all_and_vacuum(self, side, broker):
        sizes = self.side_sizes(side)
        n = sizes["read_all"]
        reps = []
        last_dir = None
        for rep in range(sizes["read_all_reps"]):
            d = self.fx.fresh_dir(f"{side}-readall", self.fx.filled(n))
            wall, rss, lines = timed_process(
                broker + ["-d", d, "read", "q", "--all"], os.path.join(d, "out.txt"),
                timeout=None)
            if lines != n:
                raise Failed(f"read --all printed {lines} lines, expected {n}")
            reps.append({"wall_s": wall, "rss_kib": rss})
            last_dir = d
        wall = statistics.median(r["wall_s"] for r in reps)
        read_all = {"n": n, "reps": len(reps), "wall_s": wall, "msg_per_s": n / wall,
                    "peak_rss_kib": max(r["rss_kib"] or 0 for r in reps),
                    "runs": reps}
        vac = self.vacuum(broker, last_dir, n)
        return read_all, vac

    def vacuum(self, broker, d, n):
        before = file_sizes(d)
        t0 = time.perf_counter()
        p = run(broker + ["-d", d, "--vacuum"], timeout=None,
                stdout=subprocess.PIPE)
        wall = time.perf_counter() - t0
        after = file_sizes(d)
        out = {"n_read_before": n, "wall_s": wall, "before": before, "after": after,
               "stdout": p.stdout.decode(errors="replace").strip()}
        # For context: what --vacuum --compact gets on top of that.
        p = run(broker + ["-d", d, "--vacuum", "--compact"],
                timeout=None, stdout=subprocess.PIPE)
        out["after_compact"] = file_sizes(d)
        out["remaining_rows"] = count_rows(d)
        return out

    # (e) peek --all of a big queue
    def peek_all(self, side, broker):
        n = self.a.big
        d = self.fx.fresh_dir(f"{side}-peek", self.fx.filled(n))
        reps = []
        for rep in range(self.side_sizes(side)["peek_reps"]):
            wall, rss, lines = timed_process(
                broker + ["-d", d, "peek", "q", "--all"], os.path.join(d, "out.txt"),
                timeout=None)
            if lines != n:
                raise Failed(f"peek --all printed {lines} lines, expected {n}")
            reps.append({"wall_s": wall, "rss_kib": rss})
        wall = statistics.median(r["wall_s"] for r in reps)
        return {"n": n, "reps": len(reps), "wall_s": wall, "msg_per_s": n / wall,
                "peak_rss_kib": max(r["rss_kib"] or 0 for r in reps)}

    # (f) 4 writer loops + 2 reader loops moving N messages; ours is repeated
    # (median run kept, every run listed), the reference runs once.
    def concurrent(self, side, broker):
        reps = 1 if side == "reference" else self.a.reps
        runs = [self.concurrent_once(side, broker) for _ in range(reps)]
        best = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
        return dict(best, reps=len(runs), walls_s=[r["wall_s"] for r in runs],
                    missing=sum(r["missing"] for r in runs),
                    duplicates=sum(r["duplicates"] for r in runs),
                    errors=sum(r["errors"] for r in runs))

    def concurrent_once(self, side, broker):
        n, writers, readers = self.a.conc, 4, 2
        d = self.fx.fresh_dir(f"{side}-conc", self.fx.empty())
        base = broker + ["-d", d]
        lock = threading.Lock()
        got = []
        errors = []
        done = threading.Event()
        stop = threading.Event()
        state = {"done_at": None, "reader_calls": 0, "empty_reads": 0}
        deadline = time.perf_counter() + self.a.conc_timeout

        def writer(w):
            for i in range(w, n, writers):
                if stop.is_set():
                    return
                p = subprocess.run(base + ["write", "q", f"w{w}-{i}"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
                if p.returncode != 0:
                    with lock:
                        errors.append(f"write exit {p.returncode}: "
                                      + p.stderr.decode(errors="replace").strip()[-200:])

        def reader():
            while not done.is_set() and not stop.is_set():
                p = subprocess.run(base + ["read", "q", "--all"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
                lines = p.stdout.decode(errors="replace").splitlines()
                with lock:
                    state["reader_calls"] += 1
                    if p.returncode == 2:
                        state["empty_reads"] += 1
                    elif p.returncode != 0:
                        errors.append(f"read exit {p.returncode}: "
                                      + p.stderr.decode(errors="replace").strip()[-200:])
                    got.extend(lines)
                    if len(got) >= n and state["done_at"] is None:
                        state["done_at"] = time.perf_counter()
                        done.set()

        threads = [threading.Thread(target=writer, args=(w,), daemon=True)
                   for w in range(writers)]
        threads += [threading.Thread(target=reader, daemon=True) for _ in range(readers)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        while not done.is_set() and time.perf_counter() < deadline:
            if errors and len(errors) > 50:
                break
            done.wait(0.2)
        stop.set()
        for t in threads:
            t.join()
        expected = {f"w{i % writers}-{i}" for i in range(n)}
        result = {"n": n, "writers": writers, "readers": readers,
                  "read": len(got), "unique": len(set(got)),
                  "missing": len(expected - set(got)),
                  "duplicates": len(got) - len(set(got)),
                  "errors": len(errors), "error_samples": errors[:3],
                  "reader_calls": state["reader_calls"],
                  "empty_reads": state["empty_reads"]}
        if state["done_at"] is None:
            result["timed_out_after_s"] = time.perf_counter() - t0
            raise Failed(f"concurrency run did not finish: {json.dumps(result)}")
        result["wall_s"] = state["done_at"] - t0
        result["msg_per_s"] = n / result["wall_s"]
        return result

    # (h) watch --json: write->print latency. watch-latency (our library) is
    # the writer for both sides and reads the watcher's stdout itself, so the
    # writer is identical and both timestamps come from one monotonic clock.
    def watch_latency(self, side, broker):
        return self.watch_latency_run(side, broker, self.a.watch_latency, self.a.watch_gap_us)

    # (h') the same with a long pause before each write: a watcher that has
    # backed off to its slowest polling (the reference's schedule) is woken.
    def watch_latency_idle(self, side, broker):
        return self.watch_latency_run(side, broker, self.a.watch_idle_latency,
                                      self.a.watch_idle_gap_us)

    def watch_latency_run(self, side, broker, n, gap_us):
        exe = os.path.join(self.a.bin_dir, "watch-latency")
        if not os.path.exists(exe):
            raise Failed("watch-latency not built (needs the litebroker library)")
        d = self.fx.fresh_dir(f"{side}-watch-latency", self.fx.empty())
        cmd = [exe, "--db", os.path.join(d, DB_NAME), "--count", str(n),
               "--gap-us", str(gap_us), "--timeout-s", "10", "--"]
        cmd += broker + ["-q", "-d", d, "watch", "q", "--json"]
        budget = 120 + n * (gap_us / 1e6 + 0.5)
        for line in run_group(cmd, timeout=budget).splitlines():
            if line.startswith("{"):
                return json.loads(line)
        raise Failed("watch-latency printed no result line")

    # (i) watch (consuming) on a pre-filled queue: time from spawn until all
    # N messages are printed.
    def watch_drain(self, side, broker):
        n = self.a.ref_watch_drain if side == "reference" else self.a.watch_drain
        d = self.fx.fresh_dir(f"{side}-watch-drain", self.fx.filled(n))
        with Watcher(broker + ["-q", "-d", d, "watch", "q"],
                     os.path.join(d, "stderr.txt")) as w:
            lines, first, last = w.count_lines(n, timeout=self.a.watch_timeout)
            t0 = w.started
        if lines != n:
            raise Failed(f"watch printed {lines} of {n} lines within "
                         f"{self.a.watch_timeout:.0f} s ({w.ended})")
        wall = last - t0
        return {"n": n, "wall_s": wall, "msg_per_s": n / wall,
                "first_line_s": first - t0,
                "after_first_msg_per_s": (n - 1) / (last - first) if last > first else None,
                "unclaimed_after": count_unclaimed(d), "watcher_end": w.ended}

    # (j) watch on an empty queue: CPU used while idle, after settling.
    def watch_idle(self, side, broker):
        d = self.fx.fresh_dir(f"{side}-watch-idle", self.fx.empty())
        with Watcher(broker + ["-q", "-d", d, "watch", "q"],
                     os.path.join(d, "stderr.txt")) as w:
            time.sleep(self.a.watch_settle)
            if not w.alive():
                raise Failed(f"watcher exited during the settle time ({w.stop()})")
            a, t0 = proc_cpu(w.p.pid), time.perf_counter()
            time.sleep(self.a.watch_idle_seconds)
            b, t1 = proc_cpu(w.p.pid), time.perf_counter()
        secs = t1 - t0
        tick = os.sysconf("SC_CLK_TCK")
        cpu = (b["ticks"] - a["ticks"]) / tick
        return {"seconds": secs, "settle_s": self.a.watch_settle, "clk_tck": tick,
                "cpu_s": cpu, "cpu_pct": 100 * cpu / secs,
                "sched_cpu_pct": 100 * (b["sched_ns"] - a["sched_ns"]) / 1e9 / secs,
                "wakeups_per_s": (b["ctxt_switches"] - a["ctxt_switches"]) / secs,
                "threads": b["threads"], "watcher_end": w.ended}


# --------------------------------------------------------------------------
# watchers (workloads (h)-(j))


class Watcher:
    """A `broker watch` process with its stdout on a pipe. Used as a context
    manager so it is always stopped: SIGINT, then SIGKILL after `grace`
    seconds, because the reference's watcher can deadlock on SIGINT."""

    def __init__(self, cmd, stderr_path, grace=2.0):
        self.cmd, self.grace, self.ended = cmd, grace, None
        self._err = open(stderr_path, "wb")
        self.started = time.perf_counter()
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=self._err, start_new_session=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        """Records how the watcher ended: 'SIGINT: rc', 'SIGKILL' or 'exited early: rc'."""
        if self.ended is not None:
            return self.ended
        if not self.alive():
            self.ended = f"exited early: {self.p.returncode}"
        else:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(self.grace)
                self.ended = f"SIGINT: {self.p.returncode}"
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
                self.ended = f"SIGKILL after SIGINT was ignored for {self.grace:.0f} s"
        self.p.stdout.close()
        self._err.close()
        return self.ended

    def count_lines(self, n, timeout):
        """Reads stdout until n lines arrived, the pipe closed or `timeout`
        passed. Returns (lines, t_first_byte, t_nth_line); big reads and a
        newline count keep this reader far faster than any watcher."""
        fd = self.p.stdout.fileno()
        deadline = time.perf_counter() + timeout
        lines, first, last = 0, None, None
        while lines < n:
            left = deadline - time.perf_counter()
            if left <= 0 or not select.select([fd], [], [], min(left, 1.0))[0]:
                if left <= 0 or not self.alive():
                    break
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            now = time.perf_counter()
            first = first or now
            lines += chunk.count(b"\n")
            if lines >= n:
                last = now
        return lines, first, last


def proc_cpu(pid):
    """CPU use of a process so far: utime+stime ticks from /proc/PID/stat,
    plus the finer per-thread on-CPU nanoseconds (schedstat) and voluntary
    context switches (each one is a sleep, so a wake-up follows)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    ns, switches, threads = 0, 0, 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        switches += int(line.split()[-1])
            threads += 1
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended between listdir and open
    return {"ticks": ticks, "sched_ns": ns, "ctxt_switches": switches, "threads": threads}


def count_unclaimed(d):
    con = sqlite3.connect(os.path.join(d, DB_NAME))
    try:
        return con.execute("SELECT COUNT(*) FROM messages WHERE claimed = 0").fetchone()[0]
    finally:
        con.close()


def run_group(cmd, timeout):
    """Like run() with stdout captured, but cmd runs in its own session and
    the whole group is SIGKILLed on timeout or error, so a watcher spawned by
    cmd never outlives it."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # leftovers of the group, if any
        except ProcessLookupError:
            pass
    if p.returncode != 0:
        err = err.decode(errors="replace").strip().splitlines()[-3:]
        raise Failed(f"{' '.join(cmd)} exited {p.returncode}: {' | '.join(err)}")
    return out.decode()


# --------------------------------------------------------------------------
# pub/sub: ours (pubsub-bench, library) next to formix-pubsub 1.0.0


PUBSUB_WIDTHS = (1, 10, 100)


def pubsub_ours(args, fx, ours):
    """Runs pubsub-bench (latency, fan-out at every width, replay) once;
    returns its JSON lines by bench name."""
    exe = os.path.join(args.bin_dir, "pubsub-bench")
    if not os.path.exists(exe):
        raise Failed("pubsub-bench not built (cargo build --release -p litebroker-bench --features lib)")
    cmd = [exe, "--dir", fx.fresh_dir("pubsub-ours"),
           "--latency", str(args.pubsub_latency), "--pace-ms", str(args.pubsub_pace_ms),
           "--widths", ",".join(str(w) for w in PUBSUB_WIDTHS),
           "--fanout", str(args.pubsub_fanout), "--fanout-copies", str(args.pubsub_copies),
           "--batch", str(args.pubsub_batch), "--replay", str(args.pubsub_replay)]
    if ours:
        cmd += ["--broker", ours[0]]
    out = json_lines(cmd, timeout=1500)
    # The latency runs again with the database on tmpfs, where the reference
    # keeps its files: the same code without this disk's fsync times.
    tmpfs = pubsub_home(fx)
    try:
        latency = [exe, "--dir", tmpfs, "--latency", str(args.pubsub_latency),
                   "--pace-ms", str(args.pubsub_pace_ms), "--idle-latency", "0",
                   "--widths", "", "--replay", "0"] + (["--broker", ours[0]] if ours else [])
        for name, rec in json_lines(latency, timeout=600).items():
            if name.startswith("latency_lib") or name.startswith("latency_cli") \
                    or name == "publish_paced_no_consumer":
                out[name + "_tmpfs"] = dict(rec, bench=name + "_tmpfs", dir=tmpfs)
    finally:
        shutil.rmtree(tmpfs, ignore_errors=True)
    return out


def pubsub_home(fx):
    """A fresh PUBSUB_HOME for formix-pubsub: tmpfs (/dev/shm, its default
    location) when there is one, else a temp dir."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else fx.dir
    return tempfile.mkdtemp(prefix="litebroker-bench-pubsub-", dir=base)


def pubsub_reference(args, fx):
    """Runs bench/pubsub_reference.py with the formix-pubsub venv: latency,
    then fan-out at every width; returns its JSON lines by bench name."""
    if not args.pubsub_python:
        raise Failed("no --pubsub-python (venv with formix-pubsub) given")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pubsub_reference.py")
    home = pubsub_home(fx)
    out = {}
    try:
        base = [args.pubsub_python, script]
        out.update(json_lines(base + ["latency", "--home", home, "--n", str(args.pubsub_latency),
                                      "--pace-ms", str(args.pubsub_pace_ms)], timeout=600))
        for w in PUBSUB_WIDTHS:
            out.update(json_lines(base + ["fanout", "--home", home, "--width", str(w),
                                          "--n", str(args.pubsub_ref_fanout),
                                          "--time-limit", str(args.pubsub_ref_time_limit)],
                                  timeout=args.pubsub_ref_time_limit + 300))
        version = subprocess.run([args.pubsub_python, "-c",
                                  "import importlib.metadata as m; print(m.version('formix-pubsub'))"],
                                 capture_output=True, text=True).stdout.strip()
        out["version"] = {"bench": "version", "formix_pubsub": version or None, "home": home}
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return out


def add_pubsub_args(ap):
    """The pubsub workload's options (sizes for both sides)."""
    g = ap.add_argument_group("pubsub workload")
    g.add_argument("--pubsub-python", default=None,
                   help="python of the venv with formix-pubsub 1.0.0 (omit: ours only)")
    g.add_argument("--pubsub-latency", type=int, default=1000, help="latency messages, each side")
    g.add_argument("--pubsub-pace-ms", type=int, default=2, help="min gap between latency publishes")
    g.add_argument("--pubsub-fanout", type=int, default=2000,
                   help="messages per width, ours one publish per transaction")
    g.add_argument("--pubsub-copies", type=int, default=200_000,
                   help="ours batched: max(--pubsub-fanout, this / width) messages per width")
    g.add_argument("--pubsub-batch", type=int, default=100, help="ours: messages per publish_batch")
    g.add_argument("--pubsub-ref-fanout", type=int, default=2000, help="reference: messages per width")
    g.add_argument("--pubsub-ref-time-limit", type=float, default=20,
                   help="reference: stop publishing a width after this many seconds")
    g.add_argument("--pubsub-replay", type=int, default=1_000_000, help="ours: topic log to replay")


def run_pubsub(record, args, fx, ours):
    """The pubsub workload: ours, then the reference, each recorded on its own."""
    record("pubsub", "ours", lambda: pubsub_ours(args, fx, ours))
    record("pubsub", "reference", lambda: pubsub_reference(args, fx))


def count_rows(d):
    con = sqlite3.connect(os.path.join(d, DB_NAME))
    try:
        return con.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    finally:
        con.close()


# --------------------------------------------------------------------------
# limits (raw SQLite floors, library throughput)


def json_lines(cmd, timeout):
    p = run(cmd, timeout=timeout, stdout=subprocess.PIPE)
    out = {}
    for line in p.stdout.decode().splitlines():
        line = line.strip()
        if line.startswith("{"):
            rec = json.loads(line)
            out[rec["bench"]] = rec
    return out


def lease_workload(args, fx):
    """What leases cost in the library (bench/src/bin/lease_throughput.rs):
    lease+ack against plain reads, single and batched, and reclaiming many
    expired leases. Sizes follow --single and --big, so --quick shrinks them."""
    exe = os.path.join(args.bin_dir, "lease-throughput")
    if not os.path.exists(exe):
        raise Failed("lease-throughput not built (litebroker lease API missing or not compiling)")
    d = fx.fresh_dir("lease")
    return json_lines([exe, "--dir", d, "--single", str(args.single),
                       "--batched", str(args.big), "--reclaim", str(args.big),
                       "--batch", "1000"], timeout=900)


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_info(tmp):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = None
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    fs = subprocess.run(["df", "-PT", tmp], capture_output=True, text=True).stdout
    fs = fs.splitlines()[-1].split()[1] if fs else "?"
    ver = lambda c: subprocess.run(c, capture_output=True, text=True).stdout.strip()
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "nproc": os.cpu_count(),
            "cpu": cpu, "mem_gib": round(mem_kib / 2**20, 1) if mem_kib else None,
            "kernel": platform.release(), "tmp_fs": fs, "tmp_dir": tmp,
            "rustc": ver(["rustc", "--version"]),
            "hyperfine": ver(["hyperfine", "--version"]) if shutil.which("hyperfine") else None}


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", help="our broker binary (omit to run the reference only)")
    ap.add_argument("--ref", required=True, help="reference broker (SimpleBroker 2.8.4)")
    ap.add_argument("--bin-dir", required=True, help="dir with minimal-write, sqlite-limits, lib-throughput")
    ap.add_argument("--out", required=True, help="results JSON file")
    ap.add_argument("--tmp", default=None, help="parent of the temp dirs (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs")
    ap.add_argument("--only", default="",
                    help="comma list of workloads to run: write_process, read_process, "
                         "sequential_writes, read_all (with vacuum), peek_all, concurrent, "
                         "watch_latency, watch_latency_idle, watch_drain, watch_idle, limits, lib, "
                         "lease, pubsub")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3,
                    help="repetitions of our read --all, peek --all and concurrency runs")
    ap.add_argument("--seq-writes", type=int, default=1000)
    ap.add_argument("--ref-seq-writes", type=int, default=1000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--ref-read-all", type=int, default=100_000)
    ap.add_argument("--conc", type=int, default=1000)
    ap.add_argument("--conc-timeout", type=float, default=300)
    ap.add_argument("--watch-latency", type=int, default=1000,
                    help="messages written one at a time in the watch latency workload")
    ap.add_argument("--watch-gap-us", type=int, default=5000,
                    help="pause between a message being printed and the next write (us)")
    ap.add_argument("--watch-idle-latency", type=int, default=100,
                    help="messages written after a long pause each (watch_latency_idle)")
    ap.add_argument("--watch-idle-gap-us", type=int, default=1_000_000,
                    help="the pause before each write in watch_latency_idle (us)")
    ap.add_argument("--watch-drain", type=int, default=100_000,
                    help="pre-filled messages our watcher drains")
    ap.add_argument("--ref-watch-drain", type=int, default=10_000,
                    help="pre-filled messages the reference watcher drains")
    ap.add_argument("--watch-timeout", type=float, default=300,
                    help="max seconds for one watcher to drain its queue")
    ap.add_argument("--watch-settle", type=float, default=2.0,
                    help="seconds an idle watcher runs before its CPU is sampled")
    ap.add_argument("--watch-idle-seconds", type=float, default=10.0,
                    help="seconds over which idle watcher CPU is sampled")
    ap.add_argument("--single", type=int, default=1000, help="single-commit transactions in the limits")
    ap.add_argument("--quiet-threshold", type=float, default=0.25,
                    help="before each workload wait until CPU busy is below this fraction")
    ap.add_argument("--quiet-wait", type=float, default=120, help="max wait per workload (s)")
    ap.add_argument("--quiet-wait-total", type=float, default=300, help="max total wait (s)")
    ap.add_argument("--max-seconds", type=int, default=1800,
                    help="watchdog: abort the whole run after this many seconds")
    add_pubsub_args(ap)
    args = ap.parse_args()
    def watchdog(*_):
        raise Watchdog(f"run exceeded --max-seconds {args.max_seconds}")
    signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(args.max_seconds)

    only = set(filter(None, args.only.split(",")))
    want = lambda w: not only or w in only
    tmp = tempfile.mkdtemp(prefix="litebroker-bench-", dir=args.tmp)
    fx = Fixtures(tmp, args.ref)
    bench = Bench(args, fx)
    sides = []
    if args.ours:
        sides.append(("ours", [os.path.abspath(args.ours)]))
    sides.append(("reference", [os.path.abspath(args.ref)]))

    res = {"machine": machine_info(tmp), "config": vars(args), "workloads": {},
           "quiet": {}, "limits": {}, "lib": {}, "errors": {}}
    res["machine"]["loadavg_start"] = loadavg()
    res["machine"]["reference_version"] = run([args.ref, "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
    if args.ours:
        try:
            res["machine"]["ours_version"] = run([args.ours, "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
        except Exception as e:  # noqa: BLE001
            res["machine"]["ours_version"] = f"error: {e}"
    res["machine"]["reference_sqlite"] = subprocess.run(
        [os.path.join(os.path.dirname(args.ref), "python"), "-c",
         "import sqlite3; print(sqlite3.sqlite_version)"],
        capture_output=True, text=True).stdout.strip() or None
    minimal = os.path.join(args.bin_dir, "minimal-write")
    quiet = Quiet(args.quiet_threshold, args.quiet_wait, args.quiet_wait_total)

    def record(workload, label, fn, store=True):
        """Runs one workload (all sides, or one side if label names it);
        a failure is recorded as a result and the run goes on."""
        if not want(workload):
            return None
        q = quiet.wait(workload)
        res["quiet"].setdefault(workload, {})[label] = q
        log(f"{workload}: {label} ... (CPU busy before: {q['cpu_busy_before']:.0%})")
        t0 = time.perf_counter()
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - a failure is a result, keep going
            log(f"{workload}: {label} FAILED: {e}")
            res["errors"].setdefault(workload, {})[label] = str(e)[:2000]
            return None
        log(f"{workload}: {label} done in {time.perf_counter() - t0:.1f}s")
        if store:
            if label == "all":
                res["workloads"].setdefault(workload, {}).update(out)
            else:
                res["workloads"].setdefault(workload, {})[label] = out
        return out

    try:
        side_map = dict(sides)
        # (a), (b), (c): floors, ours and the reference measured back to back.
        record("write_process", "all", lambda: bench.write_process(side_map, minimal))
        record("read_process", "all", lambda: bench.read_process(side_map, minimal))
        record("sequential_writes", "all", lambda: bench.sequential_writes(side_map, minimal))
        # (d) + (g), (e), (f): one side after the other, ours first.
        for name, broker in sides:
            if want("read_all") or want("vacuum"):
                out = record("read_all", name,
                             lambda: bench.read_all_and_vacuum(name, broker), store=False)
                if out:
                    res["workloads"].setdefault("read_all", {})[name] = out[0]
                    res["workloads"].setdefault("vacuum", {})[name] = out[1]
        for name, broker in sides:
            record("peek_all", name, lambda: bench.peek_all(name, broker))
        for name, broker in sides:
            record("concurrent", name, lambda: bench.concurrent(name, broker))
        for workload in ("watch_latency", "watch_latency_idle", "watch_drain", "watch_idle"):
            for name, broker in sides:
                record(workload, name, lambda: getattr(bench, workload)(name, broker))

        def limits():
            d = fx.fresh_dir("limits")
            return json_lines([os.path.join(args.bin_dir, "sqlite-limits"), "--dir", d,
                               "--rows", str(args.big), "--batch", "1000",
                               "--single", str(args.single)], timeout=600)

        def lib():
            exe = os.path.join(args.bin_dir, "lib-throughput")
            if not os.path.exists(exe):
                raise Failed("lib-throughput not built (litebroker API missing or not compiling)")
            d = fx.fresh_dir("lib")
            return json_lines([exe, "--dir", d, "--batched", str(args.big),
                               "--single", str(args.single)], timeout=600)

        out = record("limits", "sqlite-limits", limits, store=False)
        res["limits"] = out or {}
        out = record("lib", "lib-throughput", lib, store=False)
        res["lib"] = out or {}
        res["lease"] = record("lease", "lease-throughput",
                              lambda: lease_workload(args, fx), store=False) or {}
        run_pubsub(record, args, fx, side_map.get("ours"))
    finally:
        res["machine"]["loadavg_end"] = loadavg()
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
        log(f"results: {args.out}")
        if args.keep:
            log(f"temp dirs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
