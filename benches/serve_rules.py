#!/usr/bin/env python3
"""Rules tried on top of the twin's weight (`forecast::serve`) and not adopted
(benches/README.md, "An hour budget: the worst hour bought with the accuracy", "A cap on
the served change" and "Weighting the weight's points"). Each replays the shipped rule of
`benches/shrink_loto.py` (half-lives 30 points and 4 windows) over a backtest's
`origins.csv` and changes one thing:

- budget `c`: over the origins of the last hour whose outcome is known, the twin's served
  absolute error `E_s` against persistence's `E_p`; the weight is at most
  `(c E_p - E_s) / (0.2 E_p)` clamped to [0, 1], so the twin falls back to the live value
  once what it served over the realised part of the last hour is worse than `c` times
  persistence. A budget `c` <= 1 never lets the model back: once the twin serves the live
  value, `E_s` = `E_p` over the hour, so the cap stays 0 (persistence for good after its
  first overrun).
- cap `k` (`both`, `down`, `up`): the served change from the live value, `w (f - p)`, is
  held within `k` times the recent scale of persistence's realised error (an exponentially
  weighted mean of |a - p| over realised points, half-life 60 points); `down` only bounds
  changes below the live value, `up` only those above.
- weight (`l1`, `hybrid`): each realised point counts in the weight's sums with weight
  1 / |f - p| (the slope of signs: a point's pull grows with its forecast change, not with
  its square) or 1 / (|f - p| + s), `s` that same scale of persistence's error.

    python3 benches/serve_rules.py budget DIR...   # DIR: an `augur backtest --out` directory
    python3 benches/serve_rules.py cap DIR...
    python3 benches/serve_rules.py weight DIR...

Prints, per directory and setting (`off`: the shipped rule), the default's (guarded-linear)
served 10-minute MAE against persistence and its worst 1-hour window, point / max. Pure
Python, under a minute per 60 s trace.
"""
import collections
import math
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import shrink_loto as L  # noqa: E402

MARGIN = 0.2
SCALE_HALF_LIFE = 60.0
BUDGETS = [None, 1.5, 1.2, 1.1, 1.05]
CAPS = [None, ("both", 3.0), ("down", 3.0), ("down", 2.0), ("up", 3.0), ("up", 2.0)]
WEIGHTS = [None, "l1", "hybrid"]


def serve(forecasts, pers, actual, h, hour, budget=None, cap=None, weight=None):
    fast, slow = L.Slope(30.0), L.Slope(4 * hour)
    decay = 0.5 ** (1.0 / SCALE_HALF_LIFE)
    scale = [0.0, 0.0]  # weighted sum of |a - p|, of weights

    def record(k):
        change, realised = forecasts[k] - pers[k], actual[k] - pers[k]
        if weight is None:
            wt = 1.0
        elif weight == "l1":
            wt = 1.0 / max(abs(change), 1e-12)
        else:
            s = scale[0] / scale[1] if scale[1] > 0 else abs(change)
            wt = 1.0 / max(abs(change) + s, 1e-12)
        for slope in (fast, slow):
            slope.cross = slope.decay * slope.cross + wt * change * realised
            slope.spread = slope.decay * slope.spread + wt * change * change
        scale[0] = decay * scale[0] + abs(realised)
        scale[1] = decay * scale[1] + 1.0

    served, window, sums = [], collections.deque(), [0.0, 0.0]
    for k in L.origins(forecasts, actual, h, hour, record):
        o = k - h  # realised at k, its served value known
        if 0 <= o < len(served) and not math.isnan(actual[o]):
            s = pers[o] if math.isnan(served[o]) else served[o]
            e = (abs(s - actual[o]), abs(pers[o] - actual[o]))
            window.append((o, e))
            sums[0] += e[0]
            sums[1] += e[1]
        while window and window[0][0] <= k - hour:
            _, e = window.popleft()
            sums[0] -= e[0]
            sums[1] -= e[1]
        w = min(fast.weight(), slow.weight())
        if budget is not None and window:
            es, ep = max(sums[0], 0.0), max(sums[1], 0.0)
            if ep > 1e-12:
                w = min(w, min(max((budget * ep - es) / (MARGIN * ep), 0.0), 1.0))
            elif es > 1e-12:
                w = 0.0
        f = forecasts[k]
        if math.isnan(f):
            served.append(math.nan)
            continue
        change = w * (max(f, 0.0) - pers[k])
        if cap is not None and scale[1] > 0:
            side, factor = cap
            bound = factor * scale[0] / scale[1]
            if side in ("both", "down"):
                change = max(change, -bound)
            if side in ("both", "up"):
                change = min(change, bound)
        served.append(pers[k] + change)
    return served


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("budget", "cap", "weight"):
        sys.exit(__doc__)
    family = sys.argv[1]
    for d in sys.argv[2:]:
        step, load_, models = L.load(d)
        h, hour = L.HORIZON_S // step, L.HOUR_S // step
        pers = L.persistence(load_)
        point, most = L.outcomes(load_, h)
        fc = models[L.DEFAULT]
        print(d.rstrip("/").split("/")[-1], flush=True)
        settings = {"budget": BUDGETS, "cap": CAPS, "weight": WEIGHTS}[family]
        for setting in settings:
            res = [L.score(serve(fc[kind], pers, act, h, hour, **{family: setting}), pers, act, hour)
                   for kind, act in (("point", point), ("max", most))]
            if setting is None:
                label = "off"
            elif family == "budget":
                label = f"c={setting}"
            elif family == "cap":
                label = f"{setting[0]} k={setting[1]:g}"
            else:
                label = setting
            print(f"  {label:11} served {res[0][0]:.3f} / {res[1][0]:.3f}, worst hour {res[0][1]:.3f} / {res[1][1]:.3f}", flush=True)
