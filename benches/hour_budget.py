#!/usr/bin/env python3
"""An hour budget on top of the twin's weight (`forecast::serve`), tried and not adopted
(benches/README.md, "An hour budget: the worst hour bought with the accuracy"). Replays the
shipped rule of `benches/shrink_loto.py` (half-lives 30 points and 4 windows) over a
backtest's `origins.csv` and caps its weight by a budget on the target itself: over the
origins of the last hour whose outcome is known, the twin's served absolute error `E_s`
against persistence's `E_p`; the weight is at most `(c E_p - E_s) / (m E_p)` clamped to
[0, 1], so the twin falls back to the live value once what it served over the realised part
of the last hour is worse than `c` times persistence. A budget `c` ≤ 1 never lets the
model back: once the twin serves the live value, `E_s` = `E_p` over the hour, so the cap
stays 0 (it is persistence for good after its first overrun).

    python3 benches/hour_budget.py DIR...   # DIR: an `augur backtest --out` directory

Prints, per directory and budget `c` (margin `m` = 0.2; `off`: the shipped rule), the
default's (guarded-linear) served 10-minute MAE against persistence and its worst 1-hour
window, point / max. Pure Python, about a minute per 60 s trace.
"""
import collections
import math
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import shrink_loto as L  # noqa: E402

MARGIN = 0.2
BUDGETS = [None, 1.5, 1.2, 1.1, 1.05]


def serve(forecasts, pers, actual, h, hour, budget):
    fast, slow = L.Slope(30.0), L.Slope(4 * hour)

    def record(k):
        fast.record(forecasts[k] - pers[k], actual[k] - pers[k])
        slow.record(forecasts[k] - pers[k], actual[k] - pers[k])

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
            cap = min(max((budget * ep - es) / (MARGIN * ep), 0.0), 1.0) if ep > 1e-12 else (0.0 if es > 1e-12 else 1.0)
            w = min(w, cap)
        f = forecasts[k]
        served.append(math.nan if math.isnan(f) else pers[k] + w * (max(f, 0.0) - pers[k]))
    return served


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for d in sys.argv[1:]:
        step, load_, models = L.load(d)
        h, hour = L.HORIZON_S // step, L.HOUR_S // step
        pers = L.persistence(load_)
        point, most = L.outcomes(load_, h)
        fc = models[L.DEFAULT]
        print(d.rstrip("/").split("/")[-1], flush=True)
        for b in BUDGETS:
            res = [L.score(serve(fc[kind], pers, act, h, hour, b), pers, act, hour)
                   for kind, act in (("point", point), ("max", most))]
            label = "off" if b is None else f"c={b}"
            print(f"  {label:7} served {res[0][0]:.3f} / {res[1][0]:.3f}, worst hour {res[0][1]:.3f} / {res[1][1]:.3f}", flush=True)
