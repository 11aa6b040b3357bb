#!/usr/bin/env python3
"""How the shift-of-level rule of `forecast::shift` was chosen (benches/README.md, "Switched
to live at a shift of level"): the shipped weight rule of `benches/shrink_loto.py` replayed
over a backtest's `origins.csv`, with the watch on top.

At each origin k the change of level is ln((r + e) / (b + e)): r the median of the newest R
buckets, b the median of the hour before them, e = EPS times the mean of the last day. A
shift is a change larger than ln 2 and larger than MARGIN times every change of the origins
from a day to an hour before k (no shift within an hour of the last one; none in the run's
first day, which stands in for the history before it). Falls: `zero`, every fall counts;
`nonzero`, a fall to a newest bucket at 0 is no shift; `floor`, a fall to a level r at or
below the noise floor e (an outage or a pause, not a level) is no shift; `rises`, no fall is
a shift (what augur ships: watching falls cost the lead over plain headroom in the HPA
simulation, benches/README.md). From a shift on the twin serves the live value until HOLD
forecasts made since have come due; `clear` also forgets the weight's earlier points, `hold`
keeps them.

    python3 benches/shift_rules.py NAB NASA WORLDCUP ODD...   # `augur backtest --out` directories
    python3 benches/shift_rules.py --all DIR...   # every model, not only the default

Prints, per directory, the default's (or each model's) served 10-minute MAE against
persistence and its worst 1-hour window, point / max, for the rule without the watch (`off`)
and each candidate, with the number of shifts found. Given more than three directories (the
first three: the shared traces), it then picks a candidate (`choose`) on all of them and with
each trace left out in turn, among all candidates, the `hold` ones and the `rises` `hold`
ones (`clear`, and watching falls, cost the default's lead over plain headroom in `augur
backtest`'s HPA simulation, which this replay does not run: benches/README.md). Pure Python, about 20 s per 60 s trace and model.
"""
import collections
import math
import statistics
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import shrink_loto as L  # noqa: E402

CANDIDATES = [(r, eps, margin, falls, mode, hold)
              for r, eps in ((3, 0.1), (3, 0.3), (5, 0.1), (5, 0.3))
              for margin in (1.0, 1.25)
              for falls in ("zero", "nonzero", "floor", "rises")
              for mode, hold in (("clear", 5), ("hold", 5))]


def changes(pers, hour, day, r, eps):
    """The change at each origin, and whether its newest level is at or below the floor."""
    out, low, sums = [0.0] * len(pers), [False] * len(pers), [0.0]
    for v in pers:
        sums.append(sums[-1] + v)
    for k in range(hour + r, len(pers)):
        recent = statistics.median(pers[k - r + 1:k + 1])
        before = statistics.median(pers[k - r - hour + 1:k - r + 1])
        lo = max(0, k - day)
        floor = eps * (sums[k + 1] - sums[lo]) / (k + 1 - lo) + 1e-12
        out[k] = math.log((recent + floor) / (before + floor))
        low[k] = recent <= floor
    return out, low


def shifts(changed, hour, day, margin, pers, r, falls):
    change, low = changed
    found, window, last = set(), collections.deque(), -10 ** 9
    for k in range(len(change)):
        j = k - hour
        if j >= 0:
            while window and window[-1][1] <= abs(change[j]):
                window.pop()
            window.append((j, abs(change[j])))
        while window and window[0][0] < k - day:
            window.popleft()
        if k >= day and k - last > hour:
            usual = window[0][1] if window else 0.0
            pause = change[k] < 0 and {"zero": False, "nonzero": min(pers[k - r + 1:k + 1]) <= 0,
                                       "floor": low[k], "rises": True}[falls]
            if not pause and abs(change[k]) > max(math.log(2), margin * usual):
                found.add(k)
                last = k
    return found


def serve(forecasts, pers, actual, h, hour, found, mode, hold, credit=None, bound=None, against=None,
          fast=None, more=None):
    """`more` (tried, benches/weight_ideas.py): an object whose `forecast(k, f)` adjusts the
    model's forecast before it is served and scored, `record(o, f, a)` learns from the
    forecast `f` it served at origin `o` and its outcome `a`, and `weight(k)` is one more
    estimate the weight is the smallest of."""
    fast, slow = L.Slope(fast or 30.0, credit, bound, against), L.Slope(4 * hour, credit, bound, against)
    state = {"since": -10 ** 9, "n": 0}
    used = list(forecasts) if more else forecasts

    def record(o):
        if o >= state["since"]:
            state["n"] += 1
        elif mode == "clear":
            return
        for s in (fast, slow):
            s.record(used[o] - pers[o], actual[o] - pers[o])
        if more:
            more.record(o, used[o], actual[o])

    served = []
    for k in L.origins(forecasts, actual, h, hour, record):
        if k in found:
            state.update(since=k, n=0)
            if mode == "clear":
                fast.cross = fast.spread = slow.cross = slow.spread = 0.0
        w = min(fast.weight(), slow.weight())
        if more:
            if not math.isnan(forecasts[k]):
                used[k] = more.forecast(k, forecasts[k])
            w = min(w, more.weight(k))
        if state["since"] >= 0 and state["n"] < hold:
            w = 0.0
        f = used[k]
        served.append(math.nan if math.isnan(f) else pers[k] + w * (max(f, 0.0) - pers[k]))
    return served


def run(d, every):
    """Per candidate label and model: (served point, served max, worst point, worst max)."""
    step, load_, models = L.load(d)
    h, hour, day = L.HORIZON_S // step, L.HOUR_S // step, 86400 // step
    pers = L.persistence(load_)
    point, most = L.outcomes(load_, h)
    names = sorted(models) if every else [L.DEFAULT]
    kinds = (("point", point), ("max", most))
    out = {}
    for name in names:
        fc = models[name]
        res = [L.score(L.serve(fc[k], pers, a, h, hour, 30.0, 4 * hour), pers, a, hour) for k, a in kinds]
        out["off", name] = (res[0][0], res[1][0], res[0][1], res[1][1], 0)
    cache = {}
    for r, eps, margin, falls, mode, hold in CANDIDATES:
        if (r, eps) not in cache:
            cache[r, eps] = changes(pers, hour, day, r, eps)
        found = shifts(cache[r, eps], hour, day, margin, pers, r, falls)
        label = f"R {r} EPS {eps} MARGIN {margin} {falls} {mode} {hold}"
        for name in names:
            fc = models[name]
            res = [L.score(serve(fc[k], pers, a, h, hour, found, mode, hold), pers, a, hour) for k, a in kinds]
            out[label, name] = (res[0][0], res[1][0], res[0][1], res[1][1], len(found))
    return out


def choose(results, shared, held=None, mode=""):
    """The candidate with the fewest traces whose default's worst hour is above 1.5, then the
    lowest geometric mean of the finite worst hours, among those that cost the default at most
    1 % of its served MAE on each shared trace and 5 % on each other one, and keep each shared
    trace's worst hour at or below 1.1 where it was; `held` left out."""
    traces = [t for t in results if t != held]
    labels = [k for k, _ in results[traces[0]] if k != "off" and mode in k]
    key = lambda t, label: results[t][label, L.DEFAULT]
    ranked = []
    for label in labels:
        cost = lambda t: max(key(t, label)[i] / key(t, "off")[i] for i in (0, 1)) - 1
        worst = {t: max(key(t, label)[2:4]) for t in traces}
        kept = all(worst[t] <= 1.1 or max(key(t, "off")[2:4]) > 1.1 for t in traces if t in shared)
        cheap = all(cost(t) <= (0.01 if t in shared else 0.05) for t in traces)
        finite = [max(w, 1e-3) for w in worst.values() if not math.isinf(w)]
        geo = math.exp(sum(map(math.log, finite)) / len(finite))
        ranked.append(((not (kept and cheap), sum(w > 1.5 for w in worst.values()), geo), label))
    return min(ranked)


def main(args):
    every = "--all" in args
    dirs = [a for a in args if not a.startswith("--")]
    results = {}
    for d in dirs:
        name = d.rstrip("/").split("/")[-1]
        results[name] = run(d, every)
        print(name, flush=True)
        for (label, model), v in results[name].items():
            print(f"  {model:28} {label:35} served {v[0]:.3f} / {v[1]:.3f}, "
                  f"worst hour {v[2]:.3f} / {v[3]:.3f}, shifts {v[4]}", flush=True)
    if len(dirs) > 3:
        shared = [d.rstrip("/").split("/")[-1] for d in dirs[:3]]
        for mode in ("", " hold ", "rises hold "):
            among = {"": "among all candidates", " hold ": "among `hold` candidates",
                     "rises hold ": "among `rises` `hold` candidates"}[mode]
            report_choice(results, shared, among, mode)


def report_choice(results, shared, among, mode=""):
    """Prints the candidate `choose` picks on every trace, then with each one left out."""
    (_, over, geo), best = choose(results, shared, mode=mode)
    print(f"{among}, chosen on all {len(results)}: {best} ({over} traces above 1.5, "
          f"geometric mean {geo:.3f})")
    folds = collections.Counter(choose(results, shared, held, mode)[1] for held in results)
    for label, n in folds.most_common():
        print(f"  chosen with one trace left out, {n} of {len(results)} folds: {label}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
