#!/usr/bin/env python3
"""Writes the synthetic traces benches/README.md uses to measure how the default model
handles outages and exporter jitter: `python3 benches/gap_traces.py DIR`.

- hole.csv: a noise-free daily sine (10 days, 60 s), 2 days missing from day 3.
- holenoisy.csv: the same with Gaussian noise (sd 0.2).
- hole36.csv: the noisy sine with a 36-hour hole from day 3 + 10 h (so the level after the
  hole differs from the level before it).
- jitter.csv: a constant 1 req/s with timestamps 0-5 s late (9 days).
"""
import math
import random
import sys
from pathlib import Path

BASE = 1_600_000_000


def write(path, rows):
    with open(path, "w") as f:
        f.write("timestamp,value\n")
        for t, v in rows:
            f.write(f"{t},{v}\n")


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    hole = range(3 * 1440, 5 * 1440)
    write(out / "hole.csv", [(BASE + i * 60, 2 + math.sin(i / 229)) for i in range(10 * 1440) if i not in hole])
    random.seed(2)
    write(out / "holenoisy.csv",
          [(BASE + i * 60, max(0, 2 + math.sin(i / 229) + random.gauss(0, 0.2)))
           for i in range(10 * 1440) if i not in hole])
    random.seed(3)
    hole36 = range(3 * 1440 + 600, 3 * 1440 + 600 + 36 * 60)
    write(out / "hole36.csv",
          [(BASE + i * 60, max(0, 2 + math.sin(i / 229) + random.gauss(0, 0.2)))
           for i in range(10 * 1440) if i not in hole36])
    random.seed(4)
    write(out / "jitter.csv", [(BASE + i * 60 + random.randint(0, 5), 1.0) for i in range(9 * 1440)])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/gap-traces"))
