#!/usr/bin/env python3
"""How the half-lives of the twin's weight (`forecast::serve`, FAST_HALF_LIFE and
SLOW_HALF_LIFE) were chosen: leave-one-trace-out over the three shared traces
(benches/README.md, "Issue 13 targets").

    for t in nab_aws_elb_request_count_300s nasa_ksc_http_1995_07_60s worldcup98_pre_tournament_60s; do
      ./target/release/augur backtest --trace /work/shared/data/$t.csv --out /tmp/bt/$t
    done
    python3 benches/shrink_loto.py /tmp/bt/nab_aws_elb_request_count_300s \\
      /tmp/bt/nasa_ksc_http_1995_07_60s /tmp/bt/worldcup98_pre_tournament_60s

Reads each run's `origins.csv` (the load and every model's forecasts alone, `point:<model>`
and `max:<model>`, at the 10-minute horizon) and replays the serving rule in Python for each
candidate pair of half-lives: at each origin the forecasts realised by then (one horizon
earlier) update exponentially weighted sums of (f - p)(a - p) and (f - p)^2, the weight is
the smaller clamped slope of the fast and the slow sums, and the twin serves p + w (f - p).
Unlike augur it has no in-sample warm start (the first hour's outcomes stand in for it) and
no gap rule, so its figures are close to, not equal to, `augur backtest`'s.

Per candidate and trace it prints the default's (guarded-linear) served 10-minute MAE ratio
against the model alone ("cost"), the largest worst 1-hour window of any built-in model, and
the default's. Then, per fold (one trace held out), it picks the candidate that minimises the
largest worst hour of any model on the held-in 60 s traces (NAB's 12-origin hours are noise:
even a non-causal level oracle has a worst hour of 1.5-2.2 there) among those costing the
default at most 1.5 % (then 2 %) on every held-in trace, and prints its figures on the trace
left out. Pure Python (no numpy), about a minute per trace.
"""
import csv
import math
import sys

DEFAULT = "guarded-linear"
HORIZON_S = 600
HOUR_S = 3600


def load(directory):
    with open(f"{directory}/origins.csv") as f:
        reader = csv.reader(f)
        head = next(reader)
        rows = list(reader)
    step = int(float(rows[1][0])) - int(float(rows[0][0]))
    value = lambda x: float(x) if x != "" else math.nan
    load = [value(r[1]) for r in rows]
    models = {}
    for i, name in enumerate(head):
        kind, _, model = name.partition(":")
        if kind in ("point", "max") and model != "persistence":
            models.setdefault(model, {})[kind] = [value(r[i]) for r in rows]
    return step, load, models


def outcomes(load, h):
    point, most = [], []
    for k in range(len(load)):
        window = load[k + 1:k + h + 1]
        ok = len(window) == h and not any(math.isnan(v) for v in window)
        point.append(load[k + h] if ok else math.nan)
        most.append(max(window) if ok else math.nan)
    return point, most


def persistence(load):
    out, last = [], 0.0
    for v in load:
        last = last if math.isnan(v) else v
        out.append(max(last, 0.0))
    return out


def credited(change, realised, credit):
    """The realised change held to at most `credit` times the forecast change on its side."""
    return min(realised, credit * change) if change > 0 else max(realised, credit * change)


class Slope:
    """`credit` holds each realised change to at most that many times the forecast change on
    its side (augur's `forecast::serve::CREDIT`); `against` holds it to at most that many
    times on the other side, `bound` caps the cross sum at that many times the spread after
    every point (both tried, benches/credit_rules.py). None: off, the rule these half-lives
    were chosen with."""

    def __init__(self, half_life, credit=None, bound=None, against=None):
        self.decay = 0.5 ** (1.0 / max(half_life, 1.0))
        self.cross = self.spread = 0.0
        self.credit, self.bound, self.against = credit, bound, against

    def record(self, change, realised):
        if self.credit is not None:
            realised = credited(change, realised, self.credit)
        if self.against is not None:
            realised = max(realised, -self.against * change) if change > 0 else min(realised, -self.against * change)
        self.cross = self.decay * self.cross + change * realised
        self.spread = self.decay * self.spread + change * change
        if self.bound is not None and self.cross > self.bound * self.spread:
            self.cross = self.bound * self.spread

    def weight(self):
        return min(max(self.cross / self.spread, 0.0), 1.0) if self.spread > 0 else 1.0


def origins(forecasts, actual, h, hour, record):
    """Calls `record(k)` for each origin k of the first hour with an outcome (the stand-in for
    augur's warm start), then yields every origin in turn, after recording the forecast
    realised by then (made one horizon earlier)."""
    for k in range(min(hour, len(forecasts))):
        if not (math.isnan(forecasts[k]) or math.isnan(actual[k])):
            record(k)
    for k in range(len(forecasts)):
        o = k - h
        if o >= 0 and not (math.isnan(forecasts[o]) or math.isnan(actual[o])):
            record(o)
        yield k


def serve(forecasts, pers, actual, h, hour, fast, slow):
    slopes = [Slope(fast), Slope(slow)] if fast else []
    record = lambda k: [s.record(forecasts[k] - pers[k], actual[k] - pers[k]) for s in slopes]
    served = []
    for k in origins(forecasts, actual, h, hour, record):
        f = forecasts[k]
        w = min([s.weight() for s in slopes] or [1.0])
        served.append(math.nan if math.isnan(f) else pers[k] + w * (max(f, 0.0) - pers[k]))
    return served


def score(served, pers, actual, hour):
    m, p, n = [0.0], [0.0], [0]
    for k, a in enumerate(actual):
        f = pers[k] if math.isnan(served[k]) else max(served[k], 0.0)
        ok = not math.isnan(a)
        m.append(m[-1] + (abs(f - a) if ok else 0.0))
        p.append(p[-1] + (abs(pers[k] - a) if ok else 0.0))
        n.append(n[-1] + ok)
    worst = 0.0
    for k in range(len(actual) - hour + 1):
        count = n[k + hour] - n[k]
        if 2 * count < hour or count == 0:
            continue
        mm, pp = m[k + hour] - m[k], p[k + hour] - p[k]
        worst = max(worst, mm / pp if pp > 1e-12 else (1.0 if mm <= 1e-12 else math.inf))
    whole = m[-1] / p[-1] if p[-1] > 1e-12 else (1.0 if m[-1] <= 1e-12 else math.inf)
    return whole, worst


def evaluate(directory, fast, slow_windows):
    step, load_, models = load(directory)
    h, hour = HORIZON_S // step, HOUR_S // step
    pers = persistence(load_)
    point, most = outcomes(load_, h)
    out = {}
    for model, forecasts in models.items():
        out[model] = [
            score(serve(forecasts[kind], pers, actual, h, hour, fast, (slow_windows or 0) * hour), pers, actual, hour)
            for kind, actual in (("point", point), ("max", most))
        ]
    return step, out


def main(directories):
    candidates = [(f, s) for f in (7.5, 15, 30) for s in (1, 2, 4)] + [(None, None)]
    results = {}
    for d in directories:
        for c in candidates:
            results[d, c] = evaluate(d, c[0], c[1])
    name = lambda d: d.rstrip("/").split("/")[-1][:5]

    def stats(d, c):
        _, res = results[d, c]
        _, alone = results[d, (None, None)]
        cost = max(res[DEFAULT][i][0] / alone[DEFAULT][i][0] for i in (0, 1)) - 1
        worst = max(max(r[0][1], r[1][1]) for r in res.values())
        return cost, worst, max(res[DEFAULT][0][1], res[DEFAULT][1][1])

    print("fast (points), slow (windows): per trace, default served cost / worst hour of any model / default's")
    for c in candidates[:-1]:
        cells = [f"{name(d)} {100 * s[0]:+.1f}% {s[1]:.2f} {s[2]:.2f}" for d in directories for s in [stats(d, c)]]
        print(f"  {c[0]:>4} pt {c[1]} W: " + " | ".join(cells))
    for limit in (0.015, 0.02):
        for held in directories:
            train = [d for d in directories if d != held]
            ok = [c for c in candidates[:-1] if all(stats(d, c)[0] <= limit for d in train)]
            minute = [d for d in train if results[d, candidates[0]][0] < 300]
            if not ok:
                print(f"cost <= {limit:.1%}, {name(held)} held out: no candidate")
                continue
            best = min(ok, key=lambda c: (max([stats(d, c)[1] for d in minute] or [0]), sum(stats(d, c)[0] for d in train)))
            s = stats(held, best)
            print(f"cost <= {limit:.1%}, {name(held)} held out: {best[0]} points, {best[1]} windows; "
                  f"on {name(held)}: cost {100 * s[0]:+.1f}%, worst hour of any model {s[1]:.2f}, default {s[2]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:])
