#!/usr/bin/env python3
"""Medians of the benchmark's repetitions with their spread, Tern against Postfix.

usage: spread.py RUNS.CSV e2e_mps|ingest_mps

One row per cell (size, recipients, sessions): each server's median rate with the lowest and
highest run, the median of the per-repetition ratios (Tern's run over the Postfix run beside
it: alternation makes them a pair) with their lowest and highest, and each server's median CPU
milliseconds per message (the whole system: for Tern, tern + PostgreSQL + nats-server).
"""

import csv
import statistics
import sys
from collections import defaultdict


def main():
    path, measure = sys.argv[1], sys.argv[2]
    runs = defaultdict(list)
    for row in csv.DictReader(open(path)):
        cell = (int(row["size"]), int(row["rcpts"]), int(row["sessions"]))
        msgs = int(row["msgs"])
        cpu = float(row["sut_cpu_s"] or 0) * 1000 / msgs if msgs else 0.0
        rate = float(row[measure] or 0) if row[measure] not in ("", "n/a") else 0.0
        if rate <= 0:
            continue  # a failed run (the harness's summary names it): no rate to compare
        runs[(cell, row["label"])].append((rate, cpu, msgs))
    cells = sorted({cell for cell, _ in runs})
    print(f"| cell (size, rcpts, sessions) | runs x msgs (Tern / Postfix) | Postfix {measure} median (min-max) "
          f"| Tern median (min-max) | ratio median (min-max) | CPU ms/msg Postfix | CPU ms/msg Tern | CPU Tern/Postfix |")
    print("|---|---|---|---|---|---|---|---|")
    for cell in cells:
        tern, postfix = runs.get((cell, "tern"), []), runs.get((cell, "postfix"), [])
        if not tern or not postfix:
            continue
        ratios = [t[0] / p[0] for t, p in zip(tern, postfix) if p[0]]
        rate = lambda rs: f"{statistics.median(r[0] for r in rs):.0f} ({min(r[0] for r in rs):.0f}-{max(r[0] for r in rs):.0f})"
        cpu_t = statistics.median(r[1] for r in tern)
        cpu_p = statistics.median(r[1] for r in postfix)
        size, rcpts, sessions = cell
        print(f"| {size // 1024} KB, {rcpts}, {sessions} | {len(tern)}x{tern[0][2]} / {len(postfix)}x{postfix[0][2]} "
              f"| {rate(postfix)} | {rate(tern)} "
              f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) "
              f"| {cpu_p:.2f} | {cpu_t:.2f} | {cpu_t / cpu_p:.2f} |")


if __name__ == "__main__":
    main()
