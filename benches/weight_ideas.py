#!/usr/bin/env python3
"""More estimates for the twin's serving rule, tried and not shipped (benches/README.md,
"More ways to trade the weight's noise"): the shipped rule (`shift_rules.serve` with the
rise watch and `CREDIT` 1.75, as `credit_rules.py` replays it) with, on top,

- `tod B D`: one more weight, the same clamped slope learnt only from the outcomes of origins
  in the same part of the day (B parts; a half-life of D days of those origins), the weight
  being the smallest of the three: a model's skill that differs by hour (quiet nights, where
  persistence does well by chance) would be learnt from the days before;
- `bias H` / `bias H B`: the model's forecast corrected by the exponentially weighted mean
  of its recent errors (half-life H realised points; with B, per part of the day and H in
  days), before it is shrunk: a level the model misses for hours would be corrected;
- `ucb H Z` / `ucb H Z S`: one more weight, the upper confidence bound (slope + Z standard
  errors) of the slope over a short half-life of H points, so that it only lowers the weight
  when a few outcomes are conclusive (a blow-up several times the noise); with S, the
  residual variance is at least that of the slope over S `fallbackWindow`s (the series' usual
  noise), so that a few exact outcomes (a series at 0) are not taken as certain.

    python3 benches/weight_ideas.py NAB_DIR NASA_DIR WORLDCUP_DIR   # `augur backtest --out` dirs
    python3 benches/weight_ideas.py --all --ucb DIR...   # every model, the `ucb` candidates

Prints the default's served 10-minute MAE against persistence and its worst 1-hour window,
point / max, per candidate (`--all`: per model too). Pure Python on two processes, about two
minutes per 60 s trace and model.
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


class More:
    """The `more` hook of `shift_rules.serve` that changes nothing; each idea overrides a part."""

    def forecast(self, k, f):
        return f

    def record(self, o, f, a):
        pass

    def weight(self, k):
        return 1.0


class TimeOfDay(More):
    def __init__(self, part, hour, days, pers):
        self.part, self.pers = part, pers
        self.slopes = [L.Slope(days * 24 * hour / part.parts, CREDIT) for _ in range(part.parts)]

    def record(self, o, f, a):
        self.slopes[self.part(o)].record(f - self.pers[o], a - self.pers[o])

    def weight(self, k):
        return self.slopes[self.part(k)].weight()


class Bias(More):
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


class Conclusive(More):
    """Sums over a short half-life of the forecast change c, the realised change r (held to
    `CREDIT` times c on its side) and their products; with `floor`, the same sums over a
    long half-life for the residual variance's floor."""

    def __init__(self, pers, half_life, z, floor=None):
        self.pers, self.z = pers, z
        self.short = [0.5 ** (1.0 / half_life), 0.0, 0.0, 0.0, 0.0]
        self.long = [0.5 ** (1.0 / floor), 0.0, 0.0, 0.0, 0.0] if floor else None

    def record(self, o, f, a):
        c = f - self.pers[o]
        r = L.credited(c, a - self.pers[o], CREDIT)
        for s in filter(None, (self.short, self.long)):
            d = s[0]
            s[1:] = [d * s[1] + c * c, d * s[2] + c * r, d * s[3] + r * r, d * s[4] + 1.0]

    @staticmethod
    def residual(s):
        _, cc, cr, rr, n = s
        return max(rr - (cr * cr / cc if cc > 0 else 0.0), 0.0) / (n - 1) if n > 1 else None

    def weight(self, k):
        _, cc, cr, _, _ = self.short
        var = self.residual(self.short)
        if cc <= 0 or var is None:
            return 1.0
        floor = self.residual(self.long) if self.long else None
        if floor is not None:
            var = max(var, floor)
        return min(max(cr / cc + self.z * math.sqrt(var / cc), 0.0), 1.0)


CANDIDATES = ["shipped", "tod 24 2", "tod 24 4", "tod 24 8", "tod 8 2", "tod 8 4", "tod 8 8",
              "bias 60", "bias 240", "bias 960", "bias 2 24", "bias 4 24", "bias 3 8"]
UCB = ["shipped", "ucb 2 2", "ucb 3 2", "ucb 3 3", "ucb 5 2", "ucb 2 2 4", "ucb 3 2 4", "ucb 3 3 4",
       "ucb 2 1 4", "ucb 3 1 4"]


def build(label, times, hour, pers, forecasts):
    kind, *args = label.split()
    if kind == "tod":
        return TimeOfDay(Part(times, int(args[0])), hour, float(args[1]), pers)
    if kind == "bias" and len(args) == 1:
        return Bias(Part(times, 0), float(args[0]), forecasts)
    if kind == "bias":
        days, parts = float(args[0]), int(args[1])
        return Bias(Part(times, parts), days * 24 * hour / parts, forecasts)
    if kind == "ucb":
        return Conclusive(pers, float(args[0]), float(args[1]), float(args[2]) * hour if len(args) > 2 else None)
    return None


def run(d, every, candidates):
    models, h, hour, pers, point, most, found = C.prepare(d)
    with open(f"{d}/origins.csv") as f:
        reader = csv.reader(f)
        next(reader)
        times = [int(float(row[0])) for row in reader]
    hold = C.WATCH[4]
    out = {}
    for name in (sorted(models) if every else [L.DEFAULT]):
        fc = models[name]
        for label in candidates:
            res = [L.score(S.serve(fc[k], pers, a, h, hour, found, "hold", hold, CREDIT,
                                   more=build(label, times, hour, pers, fc[k])), pers, a, hour)
                   for k, a in (("point", point), ("max", most))]
            out[label, name] = (res[0][0], res[1][0], res[0][1], res[1][1])
    return d.rstrip("/").split("/")[-1], out


def main(args):
    every, candidates = "--all" in args, UCB if "--ucb" in args else CANDIDATES
    dirs = [a for a in args if not a.startswith("--")]
    with multiprocessing.Pool(2) as pool:
        for name, out in pool.starmap(run, [(d, every, candidates) for d in dirs]):
            print(name, flush=True)
            for (label, model), v in out.items():
                print(f"  {model:28} {label:10} served {v[0]:.3f} / {v[1]:.3f}, "
                      f"worst hour {v[2]:.3f} / {v[3]:.3f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
