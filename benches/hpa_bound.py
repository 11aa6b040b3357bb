#!/usr/bin/env python3
"""Asks whether any forecast could meet the HPA target on a trace, by handing candidate
policies mechanics more generous than the stock HPA's (benches/README.md, "What the NAB
HPA target would take").

    pip install numpy scikit-learn          # research only; not needed by augur or CI
    python3 benches/hpa_bound.py [--trace nab_aws_elb_request_count_300s]
        [--oracle-cost 48130] [--reactive-shortfall 1293]

The issue's target: under-provisioned pod-minutes at most 10 % of reactive's, at no more
replica-minutes than the oracle's (both from `augur backtest` through the stock-HPA
simulator). Here each evaluated bucket b (last 7 days, capacity = peak / 20 as there)
gets r_b ready pods from the policy, and on top of that, free of charge:
- no start-up delay, no rate limits, no scale-down stabilisation cost;
- the previous bucket's reactive scale-up, ceil(load[b-1] / capacity / 0.7) pods, for the
  whole bucket (what the 300 s stabilisation window keeps in the real HPA);
- full reactive cover of the bucket's own load after 90 s (the real HPA needs 140–200 s:
  the 2-minute rate seen 30 s late, then 60 s of pod start-up).
So the shortfall is (load_b / capacity - max(r_b, carry-over))+ over the first 90 s of each
bucket, and the cost is r_b alone. Every policy does at least as well here as through the
real simulator; if none meets the target here, none can there.

Policies:
- `level±K`: r_b = max(1, ceil(a · m_b / capacity + c)) with m_b the median of the K
  buckets either side of b: knows the traffic level around b, past and future, not b.
- `causal-q`: r_b = max(1, ceil(s · Q_q(b) / capacity + c)) with Q_q the q-quantile of
  load_b forecast from buckets before b by gradient boosting (pinball loss, log1p counts,
  lags, window statistics, a day-ago value, time of day; daily refits on all earlier data).
For each family: the least shortfall at no more than the oracle's cost, and the least
cost at which the shortfall meets the target.
"""
import argparse
import math
import sys

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from accuracy_ceiling import forward_fill, load  # same folder: one trace reader for both

REACTION_S = 90.0


class Mechanics:
    """The generous accounting described in the module docstring."""

    def __init__(self, y, step):
        self.step = step
        self.day = 86_400 // step
        self.start = len(y) - 7 * self.day
        self.capacity = np.nanmax(y[self.start :]) / 20
        self.need = y / self.capacity
        self.carry = np.ceil(forward_fill(y) / self.capacity / 0.7)

    def score(self, pods):
        """(under-provisioned pod-minutes, replica-minutes) of `pods` over the window."""
        minutes = self.step / 60
        first = min(REACTION_S, self.step) / 60
        short = 0.0
        for i, r in enumerate(pods):
            b = self.start + i
            if math.isfinite(self.need[b]):
                short += max(0.0, self.need[b] - max(r, self.carry[b - 1])) * first
        return short, float(np.sum(pods)) * minutes


def level(filled, start, k):
    return np.array(
        [np.median(np.r_[filled[b - k : b], filled[b + 1 : b + k + 1]]) for b in range(start, len(filled))]
    )


def causal_quantiles(t0, step, y, filled, start, q):
    day = 86_400 // step
    z = np.log1p(filled * step)
    first = 2 * day

    def row(b):
        f = [z[b - k] for k in range(1, 13)]
        for w in (3, 6, 12, 24, 48):
            s = z[b - w : b]
            f += [s.mean(), np.median(s), s.max(), s.std()]
        f += [z[b - day], np.mean(z[b - day - 2 : b - day + 3])]
        tod = ((t0 + b * step) % 86_400) / 86_400
        return f + [math.sin(2 * math.pi * tod), math.cos(2 * math.pi * tod)]

    x = np.array([row(b) for b in range(first, len(y))])
    target = np.log1p(y[first:] * step)
    out = np.full(len(y) - start, np.nan)
    for d in range(7):
        refit = start + d * day
        train = np.arange(0, refit - first)
        train = train[np.isfinite(target[train])]
        model = HistGradientBoostingRegressor(
            loss="quantile", quantile=q, max_iter=200, learning_rate=0.05, min_samples_leaf=40,
            early_stopping=False, random_state=0,
        )
        model.fit(x[train], target[train])
        rows = np.arange(refit, min(refit + day, len(y)))
        out[rows - start] = np.expm1(model.predict(x[rows - first])) / step
    return out


def summarise(label, results, oracle_cost, bar):
    within = [r for r in results if r[1] <= oracle_cost]
    best = min(within, default=None)
    meeting = [r for r in results if r[0] <= bar]
    cheapest = min(meeting, key=lambda r: r[1], default=None)
    fmt = lambda r: "–" if r is None else f"{r[0]:,.1f} pod-min @ {r[1]:,.0f} ({r[2]})"
    print(f"| {label} | {fmt(best)} | {fmt(cheapest)} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default="nab_aws_elb_request_count_300s")
    parser.add_argument("--oracle-cost", type=float, default=48_130, help="oracle replica-minutes")
    parser.add_argument("--reactive-shortfall", type=float, default=1_293, help="reactive pod-minutes")
    args = parser.parse_args()
    t0, step, y = load(args.trace)
    mech = Mechanics(y, step)
    bar = 0.1 * args.reactive_shortfall
    filled = forward_fill(y)
    n = len(y) - mech.start
    reactive = mech.score(np.ones(n))
    print(f"trace {args.trace}: capacity {mech.capacity:.4f} req/s/pod; target ≤ {bar:.1f} pod-min "
          f"at ≤ {args.oracle_cost:,.0f} replica-min; reactive alone here: {reactive[0]:,.1f} pod-min")
    print("| policy family | least shortfall at ≤ oracle cost | cheapest meeting the target |")
    print("|---|---|---|")
    for k in (1, 2, 3, 6, 12):
        m = level(filled, mech.start, k) / mech.capacity
        results = []
        for a in (1, 1.25, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6):
            for c in (0, 0.5, 1, 2, 3):
                short, cost = mech.score(np.maximum(1, np.ceil(a * m + c)))
                results.append((short, cost, f"a={a}, c={c}"))
        summarise(f"level±{k} (non-causal)", results, args.oracle_cost, bar)
    results = []
    for q in (0.5, 0.7, 0.8, 0.9, 0.95):
        p = causal_quantiles(t0, step, y, filled, mech.start, q) / mech.capacity
        for s in (0.6, 0.8, 1, 1.2, 1.5, 2, 2.5):
            for c in (0, 1):
                short, cost = mech.score(np.maximum(1, np.ceil(s * p + c)))
                results.append((short, cost, f"q={q}, s={s}, c={c}"))
    summarise("causal-q (gradient boosting)", results, args.oracle_cost, bar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
