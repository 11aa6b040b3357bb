#!/usr/bin/env python3
"""Two more estimates for the twin's serving rule, tried and not shipped (benches/README.md,
"Two more ways to trade the weight's noise"): the shipped rule (`shift_rules.serve` with the
rise watch and `CREDIT` 1.75, as `credit_rules.py` replays it) with, on top,

- `tod B D`: one more weight, the same clamped slope learnt only from the outcomes of origins
  in the same part of the day (B parts; a half-life of D days of those origins), the weight
  being the smallest of the three: a model's skill that differs by hour (quiet nights, where
  persistence does well by chance) would be learnt from the days before;
- `bias H` / `bias H B`: the model's forecast corrected by the exponentially weighted mean
  of its recent errors (half-life H realised points; with B, per part of the day and H in
  days), before it is shrunk: a level the model misses for hours would be corrected.

    python3 benches/weight_ideas.py NAB_DIR NASA_DIR WORLDCUP_DIR   # `augur backtest --out` dirs

Prints the default's served 10-minute MAE against persistence and its worst 1-hour window,
point / max, per candidate. Pure Python on two processes, about two minutes per 60 s trace.
"""
import csv
import math
import multiprocessing
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import credit_rules as C  # noqa: E402
import shift_rules as S  # noqa: E402
import shrink_loto as L  # noqa: E402

CREDIT = 1.75


class Part:
    """Which of `parts` equal parts of the UTC day each origin falls in (0 when `parts` is 0)."""

    def __init__(self, times, parts):
        self.times, self.parts = times, parts

    def __call__(self, k):
        return int(self.times[k] % 86400 // (86400 // self.parts)) if self.parts else 0


class TimeOfDay:
    def __init__(self, part, hour, days, pers):
        self.part, self.pers = part, pers
        self.slopes = [L.Slope(days * 24 * hour / part.parts, CREDIT) for _ in range(part.parts)]

    def forecast(self, k, f):
        return f

    def record(self, o, f, a):
        self.slopes[self.part(o)].record(f - self.pers[o], a - self.pers[o])

    def weight(self, k):
        return self.slopes[self.part(k)].weight()


class Bias:
    def __init__(self, part, half_life, forecasts):
        self.part, self.raw = part, forecasts
        self.decay = 0.5 ** (1.0 / max(half_life, 1.0))
        self.sums = [[0.0, 0.0] for _ in range(max(part.parts, 1))]

    def forecast(self, k, f):
        total, count = self.sums[self.part(k)]
        return max(f + (total / count if count > 0 else 0.0), 0.0)

    def record(self, o, f, a):
        s = self.sums[self.part(o)]
        s[0] = self.decay * s[0] + a - self.raw[o]
        s[1] = self.decay * s[1] + 1.0

    def weight(self, k):
        return 1.0


CANDIDATES = ["shipped", "tod 24 2", "tod 24 4", "tod 24 8", "tod 8 2", "tod 8 4", "tod 8 8",
              "bias 60", "bias 240", "bias 960", "bias 2 24", "bias 4 24", "bias 3 8"]


def build(label, times, hour, pers, forecasts):
    kind, *args = label.split()
    if kind == "tod":
        return TimeOfDay(Part(times, int(args[0])), hour, float(args[1]), pers)
    if kind == "bias" and len(args) == 1:
        return Bias(Part(times, 0), float(args[0]), forecasts)
    if kind == "bias":
        days, parts = float(args[0]), int(args[1])
        return Bias(Part(times, parts), days * 24 * hour / parts, forecasts)
    return None


def run(d):
    step, load_, models = L.load(d)
    with open(f"{d}/origins.csv") as f:
        reader = csv.reader(f)
        next(reader)
        times = [int(float(row[0])) for row in reader]
    h, hour, day = L.HORIZON_S // step, L.HOUR_S // step, 86400 // step
    pers = L.persistence(load_)
    point, most = L.outcomes(load_, h)
    r, eps, margin, falls, hold = C.WATCH
    found = S.shifts(S.changes(pers, hour, day, r, eps), hour, day, margin, pers, r, falls) if hour >= 12 else set()
    fc = models[L.DEFAULT]
    out = {}
    for label in CANDIDATES:
        res = [L.score(S.serve(fc[k], pers, a, h, hour, found, "hold", hold, CREDIT,
                               more=build(label, times, hour, pers, fc[k])), pers, a, hour)
               for k, a in (("point", point), ("max", most))]
        out[label] = (res[0][0], res[1][0], res[0][1], res[1][1])
    return d.rstrip("/").split("/")[-1], out


def main(dirs):
    with multiprocessing.Pool(2) as pool:
        for name, out in pool.imap(run, dirs):
            print(name, flush=True)
            for label, v in out.items():
                print(f"  {label:10} served {v[0]:.3f} / {v[1]:.3f}, worst hour {v[2]:.3f} / {v[3]:.3f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
