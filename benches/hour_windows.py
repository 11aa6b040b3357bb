#!/usr/bin/env python3
"""How the rolling one-hour windows of a twin's served error are spread, not only the worst
(benches/README.md, "How the hours are spread"). For each `augur backtest --out DIR` given,
over every run of one hour of origins in `DIR/origins.csv` (as the backtest's "worst 1-hour
window"): the served model's 10-minute MAE (point and max target)
over persistence's on the same origins, and the median, 90th and 99th percentiles, the
worst, and the share of windows above 1.1 and 1.0. The worst matches the backtest's
column to the printed digit.

    python3 benches/hour_windows.py DIR [DIR ...]
"""

import csv
import math
import sys
from pathlib import Path


def number(text):
    return float(text) if text else math.nan


def windows(rows, kind, model):
    """The per-window ratios of `model`'s served `kind` target to persistence."""
    load = [number(r["load"]) for r in rows]
    times = [int(r["time"]) for r in rows]
    step = times[1] - times[0]
    horizon = max(1, 600 // step)
    width = 3600 // step
    served, persisted = [], []
    for i, row in enumerate(rows):
        if i + horizon >= len(load):
            served.append(math.nan)
            persisted.append(math.nan)
            continue
        actual = load[i + horizon] if kind == "point" else max(load[i + 1 : i + horizon + 1])
        served.append(abs(number(row[f"served_{kind}:{model}"]) - actual))
        persisted.append(abs(load[i] - actual))
    ratios = []
    for i in range(len(rows) - width):
        pairs = [
            (s, p)
            for s, p in zip(served[i : i + width], persisted[i : i + width])
            if not (math.isnan(s) or math.isnan(p))
        ]
        total = sum(p for _, p in pairs)
        if len(pairs) < width // 2 or total == 0:
            continue
        ratios.append(sum(s for s, _ in pairs) / total)
    return sorted(ratios)


def main(dirs):
    for directory in dirs:
        rows = list(csv.DictReader(open(Path(directory) / "origins.csv")))
        models = [
            c.split(":", 1)[1]
            for c in rows[0]
            if c.startswith("served_point:") and not c.endswith(":persistence")
        ]
        for model in models:
            for kind in ("point", "max"):
                r = windows(rows, kind, model)
                n = len(r)
                if n == 0:
                    continue
                above = lambda x: 100.0 * sum(v > x for v in r) / n
                print(
                    f"{Path(directory).name} {model} {kind}: {n} windows, median {r[n // 2]:.3f}, "
                    f"p90 {r[int(n * 0.9)]:.3f}, p99 {r[int(n * 0.99)]:.3f}, worst {r[-1]:.3f}; "
                    f"above 1.1: {above(1.1):.1f} %, above 1.0: {above(1.0):.1f} %"
                )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
