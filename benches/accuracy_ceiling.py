#!/usr/bin/env python3
"""Measures how far a flexible model family gets on the shared traces at the 10-minute
horizon, to tell whether augur's `linear` is short of what the data allow or whether the
data themselves stop it (benches/README.md, "How far a flexible model gets").

    pip install numpy scikit-learn          # research only; not needed by augur or CI
    python3 benches/accuracy_ceiling.py [TRACE ...]        # default: the three shared traces

For each trace it runs forecast-anchors.md's protocol: origins are every bucket of the
last 7 days, refits at the start of each of those days on at most 28 days strictly before
it, targets y[t+h] (point) and max(y[t+1..t+h]) (max) with h = 10 minutes, scored only
where every target bucket exists, MAE divided by persistence's MAE on the same points.
The model is scikit-learn's HistGradientBoostingRegressor with the absolute-error loss
(the conditional median, like `linear`'s L1 fit), in identity and log1p space, on a
superset of `linear`'s features (30 lags, mean/median/max/std of the last 3..120 buckets,
the buckets around the target time one day and one week earlier, time of day and week),
all as differences from the origin. Optionally it is trained globally: the other traces
given after `--pool` are added to every fit (same step only; the evaluated trace itself is
never pooled, its own rows come only from before each refit).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.ensemble import HistGradientBoostingRegressor

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SHARED = [
    "nab_aws_elb_request_count_300s",
    "nasa_ksc_http_1995_07_60s",
    "worldcup98_pre_tournament_60s",
]
HORIZON_S = 600


def load(name):
    """The trace on its regular grid (NaN = missing), its first timestamp and its step."""
    path = Path(name) if name.endswith(".csv") else DATA / f"{name}.csv"
    raw = np.loadtxt(path, delimiter=",", skiprows=1)
    ts = raw[:, 0].astype(np.int64)
    step = int(np.bincount(np.diff(ts)).argmax())
    y = np.full((ts[-1] - ts[0]) // step + 1, np.nan)
    y[(ts - ts[0]) // step] = raw[:, 1]
    return int(ts[0]), step, y


def forward_fill(y):
    out = y.copy()
    for i in range(1, len(out)):
        if np.isnan(out[i]):
            out[i] = out[i - 1]
    return out


def shifted(x, k):
    """x[i - k] at i (NaN outside)."""
    out = np.full(len(x), np.nan)
    if k >= 0:
        out[k:] = x[: len(x) - k]
    else:
        out[:k] = x[-k:]
    return out


def rolling(x, w, fn):
    out = np.full(len(x), np.nan)
    out[w - 1 :] = fn(sliding_window_view(x, w), axis=1)
    return out


def features(t0, step, filled, h, log):
    """Feature matrix (rows = origins) and the transformed origin value."""
    day, week = 86_400 // step, 7 * 86_400 // step
    z = np.log1p(filled * step) if log else filled
    cols = [z.copy()] + [shifted(z, k) - z for k in range(1, 30)]
    for w in (3, 5, 10, 15, 30, 60, 120):
        if w * step <= 6 * 3600:
            for fn in (np.mean, np.median, np.max):
                cols.append(rolling(z, w, fn) - z)
            cols.append(rolling(z, w, np.std))
    for lag in (day, week):
        base = shifted(z, lag)
        cols.append(base - z)
        cols += [shifted(z, lag - h - j) - z for j in range(-2, 3)]
        window = np.stack([shifted(z, lag - k) for k in range(1, h + 1)])
        cols += [window.mean(0) - z, window.max(0) - z, window.mean(0) - base, window.max(0) - base]
    at = t0 + (np.arange(len(z)) + h) * step
    tod = (at % 86_400) / 86_400
    tow = ((at // 86_400 + 3) % 7 + tod) / 7
    for k in (1, 2):
        cols += [np.sin(2 * np.pi * k * tod), np.cos(2 * np.pi * k * tod)]
    cols += [np.sin(2 * np.pi * tow), np.cos(2 * np.pi * tow)]
    return np.stack(cols, 1), z


def prepare(name, log):
    t0, step, y = load(name)
    h = HORIZON_S // step
    filled = forward_fill(y)
    x, z = features(t0, step, filled, h, log)
    padded = np.r_[y, np.full(h, np.nan)]
    targets = {
        "point": padded[h : h + len(y)],
        "max": sliding_window_view(padded[1:], h).max(1)[: len(y)],
    }
    return dict(name=name, step=step, y=y, filled=filled, x=x, z=z, h=h, targets=targets, log=log)


def to_model_space(trace, values):
    return (np.log1p(values * trace["step"]) if trace["log"] else values) - trace["z"]


def from_model_space(trace, rows, out):
    level = out + trace["z"][rows]
    return np.expm1(level) / trace["step"] if trace["log"] else level


def usable(trace, rows, target):
    delta = to_model_space(trace, trace["targets"][target])
    keep = rows[np.isfinite(delta[rows]) & np.all(np.isfinite(trace["x"][rows]), 1)]
    return keep, delta


def evaluate(trace, pool):
    day = 86_400 // trace["step"]
    n = len(trace["y"])
    start = n - 7 * day
    ratios = {}
    for target in ("point", "max"):
        extra = [usable(other, np.arange(len(other["y"])), target) for other in pool]
        forecast = np.full(n, np.nan)
        for d in range(7):
            refit = start + d * day
            keep, delta = usable(trace, np.arange(max(0, refit - 28 * day), refit - trace["h"]), target)
            xs = np.concatenate([trace["x"][keep]] + [o["x"][k] for o, (k, _) in zip(pool, extra)])
            ys = np.concatenate([delta[keep]] + [dl[k] for k, dl in extra])
            model = HistGradientBoostingRegressor(
                loss="absolute_error", max_iter=300, learning_rate=0.05, max_leaf_nodes=31,
                min_samples_leaf=50, l2_regularization=1.0, early_stopping=False, random_state=0,
            )
            model.fit(xs, ys)
            rows = np.arange(refit, min(refit + day, n))
            forecast[rows] = from_model_space(trace, rows, model.predict(np.nan_to_num(trace["x"][rows])))
        forecast = np.maximum(forecast, 0)
        actual = trace["targets"][target]
        rows = np.arange(start, n)
        rows = rows[np.isfinite(actual[rows])]
        mae = np.mean(np.abs(forecast[rows] - actual[rows]))
        persistence = np.mean(np.abs(trace["filled"][rows] - actual[rows]))
        ratios[target] = (mae / persistence, len(rows))
    return ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", default=SHARED)
    parser.add_argument("--pool", nargs="*", default=[], help="traces added to every fit")
    args = parser.parse_args()
    print("| trace | space | pooled with | 10m point ratio | 10m max ratio | n | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name in args.traces:
        for log in (False, True):
            began = time.time()
            trace = prepare(name, log)
            others = [o for o in args.pool if o != name]  # never the evaluated trace itself
            pool = [p for p in (prepare(o, log) for o in others) if p["step"] == trace["step"]]
            r = evaluate(trace, pool)
            print(
                f"| {name} | {'log1p' if log else 'identity'} | {', '.join(p['name'] for p in pool) or '–'} "
                f"| {r['point'][0]:.3f} | {r['max'][0]:.3f} | {r['point'][1]} | {time.time() - began:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
