#!/usr/bin/env python3
"""Two changes to the twin's weight (`forecast::serve`) tried after the shipped rule, and
not adopted (benches/README.md, "Issue 13 targets", "Tried and not adopted"). Replays the
rule of `benches/shrink_loto.py` (shipped half-lives: 30 points fast, 4 windows slow) over a
backtest's `origins.csv`, for the default model (guarded-linear), with:

- normalised (first flag): each realised point counts with weight 1/s^2 in both sums, s the
  exponentially weighted mean |a - p| of persistence over the recent realised points
  (half-life the third value, in points), so that a quiet hour's outcomes count as much as
  a busy hour's (the worst-hour target judges each hour against its own persistence);
- partial outcomes (second flag): the fast estimate also counts every forecast still
  waiting for its outcome, j of its h steps in: its expected change so far (j/h)(f - p)
  against the change seen so far (latest value - p), so a forecast whose change is not
  happening lowers the weight before its horizon has passed.

    python3 benches/shrink_variants.py DIR...   # DIR: an `augur backtest --out` directory

Prints, per variant (normalised, partial, scale half-life): the default's served 10-minute
MAE against persistence (point / max) and its worst 1-hour window (point / max). Pure Python.
"""
import math
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import shrink_loto as L  # noqa: E402


class Slope:
    """shrink_loto's Slope with a weight per point, and pending points added on read."""

    def __init__(self, half_life):
        self.decay = 0.5 ** (1.0 / max(half_life, 1.0))
        self.cross = self.spread = 0.0

    def record(self, c, r, wt):
        self.cross = self.decay * self.cross + wt * c * r
        self.spread = self.decay * self.spread + wt * c * c

    def weight(self, extra=(0.0, 0.0)):
        cr, sp = self.cross + extra[0], self.spread + extra[1]
        return min(max(cr / sp, 0.0), 1.0) if sp > 0 else 1.0


def serve(forecasts, pers, actual, load, h, hour, variant):
    norm, nowcast, scale_hl = variant
    fast, slow = Slope(30.0), Slope(4 * hour)
    sdec = 0.5 ** (1.0 / scale_hl)
    state = {"s": 0.0, "n": 0.0}

    def record(k):
        c, r = forecasts[k] - pers[k], actual[k] - pers[k]
        state["s"] = sdec * state["s"] + abs(r)
        state["n"] = sdec * state["n"] + 1.0
        s = state["s"] / state["n"] if state["n"] > 0 else 1.0
        wt = 1.0 / max(s * s, 1e-18) if norm else 1.0
        fast.record(c, r, wt)
        slow.record(c, r, wt)
    served = []
    for k in L.origins(forecasts, actual, h, hour, record):
        f = forecasts[k]
        extra = (0.0, 0.0)
        if nowcast:
            s = state["s"] / state["n"] if state["n"] > 0 else 1.0
            wt = 1.0 / max(s * s, 1e-18) if norm else 1.0
            cr = sp = 0.0
            for j in range(1, h):
                oo = k - j
                if oo < 0:
                    break
                fo, v = forecasts[oo], load[k]
                if math.isnan(fo) or math.isnan(pers[oo]) or math.isnan(v):
                    continue
                e = (j / h) * (max(fo, 0.0) - pers[oo])
                cr += wt * e * (v - pers[oo])
                sp += wt * e * e
            extra = (cr, sp)
        w = min(fast.weight(extra), slow.weight())
        served.append(math.nan if math.isnan(f) else pers[k] + w * (max(f, 0.0) - pers[k]))
    return served


def evaluate(directory, variant, only=None):
    step, load_, models = L.load(directory)
    h, hour = L.HORIZON_S // step, L.HOUR_S // step
    pers = L.persistence(load_)
    point, most = L.outcomes(load_, h)
    out = {}
    for model, fc in models.items():
        if only and model not in only:
            continue
        out[model] = [L.score(serve(fc[kind], pers, actual, load_, h, hour, variant), pers, actual, hour)
                      for kind, actual in (("point", point), ("max", most))]
    return out


VARIANTS = [(False, False, 30), (False, True, 30), (True, False, 30), (True, True, 30),
            (True, False, 60), (True, False, 15)]


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    only, variants = ["guarded-linear"], VARIANTS
    for d in sys.argv[1:]:
        print(d.split("/")[-1], flush=True)
        for v in variants:
            res = evaluate(d, v, only)
            dflt = res["guarded-linear"]
            print(f"  {v}: served {dflt[0][0]:.3f} / {dflt[1][0]:.3f}, worst hour {dflt[0][1]:.3f} / {dflt[1][1]:.3f}", flush=True)
