#!/usr/bin/env python3
"""More estimates for the twin's serving rule, tried and not shipped (benches/README.md,
"More ways to trade the weight's noise" and "The same hour last week"): the rule (`shift_rules.serve` with the
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
  noise), so that a few exact outcomes (a series at 0) are not taken as certain;
- `idle P`: one more weight at origins where the series is exactly 0 (`--idle`);
- `ceil C D`: the forecast held below C times the highest value of the last D days (`--ceil`);
- `lvl Q F S` (`--level`): one more weight at origins whose value is below Q times the last
  day's mean (the quiet hours where NAB's worst windows are), learnt only from those
  origins' outcomes (half-lives F points and S hours of them);
- `med H B K` (`--median`): one more weight, B times the weighted median of the realised
  over the forecast change (weights |c|, half-life H points, the last K·H outcomes): the
  shrink that minimises the absolute error the worst hour is scored on, where the slope
  minimises the squared one;
- `mbias H K S` (`--mbias`): like `bias`, the forecast corrected by S times the weighted
  median of its recent errors (half-life H outcomes, the last K·H kept): a correction that
  NAB's bursts would not pull as they pull the mean;
- `norm F S Q` (`--norm`): one more weight, the slope (half-life F outcomes) of the changes
  divided by the series' local scale at their origin (`local_scale`: persistence's recent
  errors over S points, at least Q times the day's), so that a quiet hour's outcomes weigh
  as much as a loud one's;
- `cap K S Q` (`--cap`): the forecast held within K local scales of the origin's value;
- `week P K` / `tow P W`: one more weight per part of the week, learnt from the same part in
  the weeks before (`--week`; `week 168 0.5` is what augur ships, `forecast::week`, and
  "before" the rule without it); judged on the second week of 14-day backtests, scored with
  `--last-days 7` (the rule still learns from every origin).

    python3 benches/weight_ideas.py NAB_DIR NASA_DIR WORLDCUP_DIR   # `augur backtest --out` dirs
    python3 benches/weight_ideas.py --all --ucb DIR...   # every model, the `ucb` candidates
    python3 benches/weight_ideas.py --all --week --last-days 7 DIR...   # `--eval-days 14` runs
    python3 benches/weight_ideas.py --as-served --last-days 7 DIR...   # what augur served there
    python3 benches/weight_ideas.py --level DIR...   # or --median, --mbias, --norm, --cap

Prints the default's served 10-minute MAE against persistence and its worst 1-hour window,
point / max, per candidate (`--all`: per model too). Pure Python on two processes, about two
minutes per 60 s trace and model.
"""
import collections
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
    """Which of `parts` equal parts of the UTC day (with `week`, of the UTC week from Monday
    00:00) each origin falls in (0 when `parts` is 0)."""

    def __init__(self, times, parts, week=False):
        self.times, self.parts = times, parts
        self.period, self.start = (7 * 86400, 4 * 86400) if week else (86400, 0)

    def __call__(self, k):
        if not self.parts:
            return 0
        return int((self.times[k] - self.start) % self.period // (self.period // self.parts))


def last_days(times, values, days):
    """`values` with those of origins before the last `days` days (None: none) left out."""
    cut = times[-1] - days * 86400 if days else -math.inf
    return [v if times[i] > cut else math.nan for i, v in enumerate(values)]


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


class Week(More):
    """`week P K` (shipped with P 168, K 0.5: `forecast::week`): per part of the week (P parts
    from Monday 00:00 UTC), the clamped slope of the outcomes of that part in the weeks
    before, each week's sums merged when its part ends and earlier weeks counting K times as
    much as the next; 1 where a part has none yet. `tow P W`: the same without waiting for the
    part to end (the part's outcomes so far count at once; W the half-life in weeks)."""

    def __init__(self, times, pers, hour, parts, keep=None, weeks=None, boost=1.0):
        self.part, self.pers, self.keep, self.boost = Part(times, parts, week=True), pers, keep, boost
        self.sums = [[0.0, 0.0] for _ in range(parts)]
        self.current, self.acc = None, [0.0, 0.0]
        self.decay = 0.5 ** (1.0 / (weeks * 7 * 24 * hour / parts)) if weeks else None

    def record(self, o, f, a):
        c = f - self.pers[o]
        r = L.credited(c, a - self.pers[o], CREDIT)
        p = self.part(o)
        if self.decay is not None:
            s = self.sums[p]
            s[0], s[1] = self.decay * s[0] + c * r, self.decay * s[1] + c * c
            return
        if p != self.current:
            if self.current is not None:
                s = self.sums[self.current]
                s[0], s[1] = self.keep * s[0] + self.acc[0], self.keep * s[1] + self.acc[1]
            self.current, self.acc = p, [0.0, 0.0]
        self.acc[0] += c * r
        self.acc[1] += c * c

    def weight(self, k):
        cross, spread = self.sums[self.part(k)]
        return min(max(self.boost * cross / spread, 0.0), 1.0) if spread > 0 else 1.0


class Gated(More):
    """One more weight learnt only at the origins where `on[k]` holds: the clamped slope of
    their outcomes alone over a fast half-life of `fast` of them and a slow one of `slow`;
    1 at the other origins, `prior` at theirs before any (`idle`, `lvl`)."""

    def __init__(self, pers, on, fast, slow, prior=1.0):
        self.pers, self.on, self.prior = pers, on, prior
        self.slopes = [L.Slope(fast, CREDIT), L.Slope(slow, CREDIT)]

    def record(self, o, f, a):
        if self.on[o]:
            for s in self.slopes:
                s.record(f - self.pers[o], a - self.pers[o])

    def weight(self, k):
        if not self.on[k]:
            return 1.0
        if self.slopes[0].spread <= 0.0:
            return self.prior
        return min(s.weight() for s in self.slopes)


class Idle(Gated):
    """`idle P` (tried): one more weight at origins where the series is exactly 0 (an idle
    service), the clamped slope learnt only from the outcomes of such origins (the shipped
    half-lives), P the weight before any (0: a rise from nothing is served only once the
    model's forecasts from nothing have come true)."""

    def __init__(self, pers, hour, prior):
        super().__init__(pers, [p == 0.0 for p in pers], 30.0, 4 * hour, prior)


class Ceiling(More):
    """`ceil C D` (tried): the forecast held to at most C times the highest value of the last D
    days (the origin's included) or the origin's value, whichever is higher: a level the
    series has not reached in that time is not forecast before it is seen."""

    def __init__(self, pers, hour, scale, days):
        span, window, self.top = int(days * 24 * hour), collections.deque(), []
        for k, v in enumerate(pers):
            while window and window[0][0] <= k - span:
                window.popleft()
            if v == v:
                while window and window[-1][1] <= v:
                    window.pop()
                window.append((k, v))
            self.top.append(window[0][1] if window else math.nan)
        self.scale, self.pers = scale, pers

    def forecast(self, k, f):
        top = self.top[k]
        return f if top != top else min(f, max(self.scale * top, self.pers[k]))


class Level(Gated):
    """`lvl Q F S` (tried): one more weight at origins whose value is below Q times the mean
    of the last day's values, the clamped slope of those origins' outcomes alone (fast
    half-life F of them, slow S hours' worth); 1 elsewhere and before any."""

    def __init__(self, pers, hour, q, fast, slow):
        day, window, total, low = 24 * hour, collections.deque(), 0.0, []
        for v in pers:
            window.append(v)
            total += v
            if len(window) > day:
                total -= window.popleft()
            low.append(len(window) >= hour and v < q * total / len(window))
        super().__init__(pers, low, fast, slow * hour)


class DecayedMedian:
    """The weighted median of the last K·H values added, each weighing its weight halved
    every H values added since (`med` and `mbias`)."""

    def __init__(self, half_life, keep):
        self.decay = 0.5 ** (1.0 / half_life)
        self.recent, self.count, self.cached = collections.deque(maxlen=int(keep * half_life)), 0, None

    def __len__(self):
        return len(self.recent)

    def add(self, value, weight=1.0):
        self.count += 1
        self.recent.append((self.count, value, weight))
        self.cached = None

    def median(self):
        if self.cached is None:
            pairs = sorted((v, w * self.decay ** (self.count - t)) for t, v, w in self.recent)
            half, seen = sum(w for _, w in pairs) / 2.0, 0.0
            for v, w in pairs:
                seen += w
                if seen >= half:
                    break
            self.cached = v
        return self.cached


class Median(More):
    """`med H B K` (tried): one more weight, B times the weighted median of r / c over the
    last K·H outcomes (r credited as the slope credits it, weights |c| halved every H
    outcomes), clamped to [0, 1]; 1 before five outcomes."""

    def __init__(self, pers, half_life, scale, keep):
        self.pers, self.scale, self.ratios = pers, scale, DecayedMedian(half_life, keep)

    def record(self, o, f, a):
        c = f - self.pers[o]
        if c != 0.0:
            self.ratios.add(L.credited(c, a - self.pers[o], CREDIT) / c, abs(c))

    def weight(self, k):
        if len(self.ratios) < 5:
            return 1.0
        return min(max(self.scale * self.ratios.median(), 0.0), 1.0)


class MedianBias(More):
    """`mbias H K S` (tried): the forecast plus S times the weighted median of its recent
    errors (realised minus forecast; weights halved every H outcomes, the last K·H kept),
    before it is shrunk; unchanged before five outcomes."""

    def __init__(self, forecasts, half_life, keep, scale):
        self.raw, self.scale, self.errors = forecasts, scale, DecayedMedian(half_life, keep)

    def forecast(self, k, f):
        if len(self.errors) < 5:
            return f
        return max(f + self.scale * self.errors.median(), 0.0)

    def record(self, o, f, a):
        self.errors.add(a - self.raw[o])


CANDIDATES = ["shipped", "tod 24 2", "tod 24 4", "tod 24 8", "tod 8 2", "tod 8 4", "tod 8 8",
              "bias 60", "bias 240", "bias 960", "bias 2 24", "bias 4 24", "bias 3 8"]
IDLE = ["shipped", "idle 0", "idle 1"]
CEILING = ["shipped", "ceil 1 7", "ceil 1.1 7", "ceil 1.25 7", "ceil 1.1 1"]
# "before": the rule without the week's weight (the module's "shipped" predates it).
WEEK = ["before", "week 168 0.5", "week 168 0.25", "week 84 0.5", "week 56 0.5", "tow 168 1", "tow 56 1"]
LEVEL = ["shipped", "lvl 0.25 30 4", "lvl 0.5 30 4", "lvl 0.25 10 2", "lvl 0.5 10 2", "lvl 0.1 30 4"]
MEDIAN = ["shipped", "med 30 1 5", "med 30 1.25 5", "med 60 1 5", "med 60 1.25 5", "med 120 1.25 4"]
CAP = ["shipped", "cap 5 60 0.5", "cap 8 60 0.5", "cap 5 30 1", "cap 10 30 1"]
NORM = ["shipped", "norm 30 10 0.25", "norm 30 2 0.1", "norm 10 2 0.1", "norm 5 2 0.1"]
MBIAS = ["shipped", "mbias 30 4 1", "mbias 60 4 1", "mbias 120 4 1", "mbias 60 4 0.5", "mbias 240 3 1"]
UCB = ["shipped", "ucb 2 2", "ucb 3 2", "ucb 3 3", "ucb 5 2", "ucb 2 2 4", "ucb 3 2 4", "ucb 3 3 4",
       "ucb 2 1 4", "ucb 3 1 4"]


def local_scale(pers, h, hour, local, floor):
    """Per origin, the exponentially weighted mean of persistence's realised errors over the
    last `local` points, floored at `floor` times the same over a day (`norm`, `cap`)."""
    near, day = 0.5 ** (1.0 / local), 0.5 ** (1.0 / (24 * hour))
    n = d = wn = wd = 0.0
    out = []
    for k, v in enumerate(pers):
        if k >= h and v == v and pers[k - h] == pers[k - h]:
            e = abs(v - pers[k - h])
            n, wn = near * n + e, near * wn + 1.0
            d, wd = day * d + e, day * wd + 1.0
        out.append(max(n / wn if wn else 0.0, floor * (d / wd if wd else 0.0)))
    return out


class Cap(More):
    """`cap K S Q` (tried): the forecast held within K times the series' local scale
    (`local_scale`, S points, floor Q of the day's) of the origin's value: a forecast change
    far beyond what the series has been doing lately is not served in full before its
    outcome says it was right."""

    def __init__(self, pers, h, hour, k, local, floor):
        self.scale, self.k, self.pers = local_scale(pers, h, hour, local, floor), k, pers

    def forecast(self, k, f):
        p, c = self.pers[k], self.k * self.scale[k]
        if p != p or c <= 0.0:
            return f
        return min(max(f, p - c), p + c)


class Normalised(More):
    """`norm F S Q` (tried): one more weight, the clamped slope (half-life F outcomes) of the
    changes each divided by the series' local scale at their origin (`local_scale`). Each hour's outcomes then weigh alike, quiet or loud, as each
    window's ratio does in the worst hour."""

    def __init__(self, pers, h, hour, fast, local, floor):
        self.slope, self.pers = L.Slope(fast, CREDIT), pers
        self.scale = local_scale(pers, h, hour, local, floor)

    def record(self, o, f, a):
        s = self.scale[o]
        if s > 0.0:
            self.slope.record((f - self.pers[o]) / s, (a - self.pers[o]) / s)

    def weight(self, k):
        return self.slope.weight()


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
    if kind == "week":
        return Week(times, pers, hour, int(args[0]), keep=float(args[1]),
                    boost=float(args[2]) if len(args) > 2 else 1.0)
    if kind == "tow":
        return Week(times, pers, hour, int(args[0]), weeks=float(args[1]))
    if kind == "ceil":
        return Ceiling(pers, hour, float(args[0]), float(args[1]))
    if kind == "idle":
        return Idle(pers, hour, float(args[0]))
    if kind == "mbias":
        return MedianBias(forecasts, float(args[0]), float(args[1]), float(args[2]))
    if kind == "lvl":
        return Level(pers, hour, float(args[0]), float(args[1]), float(args[2]))
    if kind == "cap":
        h = L.HORIZON_S // (times[1] - times[0])
        return Cap(pers, h, hour, float(args[0]), float(args[1]), float(args[2]))
    if kind == "norm":
        h = L.HORIZON_S // (times[1] - times[0])
        return Normalised(pers, h, hour, float(args[0]), float(args[1]), float(args[2]))
    if kind == "med":
        return Median(pers, float(args[0]), float(args[1]), float(args[2]))
    return None


def run(d, every, candidates, days=None):
    """Per (candidate, model): served point / max ratio and worst hour point / max, scored over
    the last `days` days of origins (None: all; the rule still learns from every one)."""
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
                                   more=build(label, times, hour, pers, fc[k])), pers, last_days(times, a, days), hour)
                   for k, a in (("point", point), ("max", most))]
            out[label, name] = (res[0][0], res[1][0], res[0][1], res[1][1])
    return d.rstrip("/").split("/")[-1], out


def as_served(d, days=None):
    """The same figures for what the backtest's twin served (the `served_*` columns)."""
    with open(f"{d}/origins.csv") as f:
        rows = list(csv.reader(f))
    head, rows = rows[0], rows[1:]
    times = [int(float(r[0])) for r in rows]
    value = lambda x: float(x) if x != "" else math.nan
    load = [value(r[1]) for r in rows]
    step = times[1] - times[0]
    h, hour = L.HORIZON_S // step, L.HOUR_S // step
    pers = L.persistence(load)
    point, most = L.outcomes(load, h)
    out = {}
    for name in head:
        if not name.startswith("served_point:"):
            continue
        model = name.split(":", 1)[1]
        res = []
        for kind, actual in (("point", point), ("max", most)):
            served = [value(r[head.index(f"served_{kind}:{model}")]) for r in rows]
            res.append(L.score(served, pers, last_days(times, actual, days), hour))
        out["served", model] = (res[0][0], res[1][0], res[0][1], res[1][1])
    return d.rstrip("/").split("/")[-1], out


def main(args):
    every = "--all" in args
    candidates = (UCB if "--ucb" in args else IDLE if "--idle" in args else CEILING if "--ceil" in args
                  else WEEK if "--week" in args else LEVEL if "--level" in args
                  else MEDIAN if "--median" in args else NORM if "--norm" in args else CAP if "--cap" in args else MBIAS if "--mbias" in args else CANDIDATES)
    days = None
    if "--last-days" in args:
        i = args.index("--last-days")
        days = float(args[i + 1])
        args = args[:i] + args[i + 2:]
    dirs = [a for a in args if not a.startswith("--")]
    with multiprocessing.Pool(2) as pool:
        if "--as-served" in args:
            results = pool.starmap(as_served, [(d, days) for d in dirs])
        else:
            results = pool.starmap(run, [(d, every, candidates, days) for d in dirs])
        for name, out in results:
            print(name, flush=True)
            for (label, model), v in out.items():
                print(f"  {model:28} {label:12} served {v[0]:.3f} / {v[1]:.3f}, "
                      f"worst hour {v[2]:.3f} / {v[3]:.3f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
