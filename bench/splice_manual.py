#!/usr/bin/env python3
"""Refreshes the sections of BENCHMARKS.md that are measured outside the
harness (bench/manual/*.md), without re-running the harness: everything from
the first manual section's heading to the end is replaced by the current
manual files, as bench/report.py renders them."""
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent
report = root / "BENCHMARKS.md"
manual = sorted((root / "bench" / "manual").glob("*.md"))
text = report.read_text()
starts = [text.find(p.read_text().splitlines()[0]) for p in manual]
starts = [s for s in starts if s >= 0]
head = text[: min(starts)] if starts else text.rstrip() + "\n\n"
tail = "\n\n".join(p.read_text().rstrip() for p in manual)
report.write_text(head.rstrip() + "\n\n" + tail + "\n")
print(f"BENCHMARKS.md: {len(manual)} manual sections refreshed", file=sys.stderr)
