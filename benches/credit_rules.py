#!/usr/bin/env python3
"""How much one realised point may vouch for the twin's weight (`forecast::serve`): the
shipped rule (the weight of `benches/shrink_loto.py` with the rise watch of
`benches/shift_rules.py`) replayed over a backtest's `origins.csv`, with each point's realised
change `a - p` held to at most K times its forecast change `f - p` on the forecast's side
before it enters the weight's sums (benches/README.md, "What one outcome may vouch for").

The weight is the least-squares slope of `a - p` on `f - p`, clamped to [0, 1]. A point whose
outcome went further than its forecast (a rise the model undershot) pulls the slope above 1,
where the clamp hides it; the excess stays in the sums and outweighs the model's overshoots
that follow (the evening fall after a rise), so the twin keeps serving a forecast that no
longer comes true. K bounds that excess; P instead caps the cross sum at P times the spread
after every point. `off` is the rule before either (b59b82b); augur ships K 1.75
(`forecast::serve::CREDIT`).

    python3 benches/credit_rules.py NAB NASA WORLDCUP ODD...   # `augur backtest --out` directories
    python3 benches/credit_rules.py --all DIR...   # every model, not only the default
    python3 benches/credit_rules.py --against DIR...   # K with a bound J on the other side too
    python3 benches/credit_rules.py --fast DIR...   # K 1.75 with a fast half-life F (points)

Prints, per directory and K, the default's (or each model's) served 10-minute MAE against
persistence and its worst 1-hour window, point / max. Given more than three directories (the
first three: the shared traces) it picks K with `shift_rules.choose` (fewest traces above 1.5,
then the lowest geometric mean of the worst hours, among the K that cost at most 1 % on each
shared trace and 5 % on each other one) on all of them and with each trace left out in turn.
Pure Python on two processes, about a minute per 60 s trace and model.
"""
import multiprocessing
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import shift_rules as S  # noqa: E402
import shrink_loto as L  # noqa: E402

# (K, P, J, F): K bounds each point's realised change at K times its forecast change; P bounds
# the sums themselves, the weighted cross sum at P times the spread after every point (the
# excess of a run of undershoots is forgotten once the clamp hides it); F is the fast
# half-life in realised points (None: augur's 30).
CREDITS = [(k, p, None, None) for p in (None, 1.0) for k in (None, 4.0, 3.0, 2.5, 2.0, 1.75, 1.5, 1.25, 1.0)]
# `--against`: J also bounds a realised change against the forecast's direction at J times
# the forecast change (a bounded-influence slope: one noisy outcome opposite a small forecast
# change no longer pulls the weight down alone).
AGAINST = [(None, None, None, None)] + [(k, None, j, None) for k, js in ((1.75, (None, 4.0, 2.0, 1.75, 1.0)),
                                                                         (1.5, (None, 2.0, 1.5, 1.0)),
                                                                         (1.25, (1.25, 2.0))) for j in js]
# `--fast`: the fast half-life in points (30 = 30 minutes at a 1-minute step, but 2.5 hours at
# 5 minutes; 6 points is 30 minutes there).
FAST = [(None, None, None, None)] + [(1.75, None, None, f) for f in (30.0, 15.0, 10.0, 6.0, 3.0)]
# The shipped rise watch: R 5, EPS 0.1, MARGIN 1, rises only, hold 5 outcomes.
WATCH = (5, 0.1, 1.0, "rises", 5)


def label(credit):
    if credit == (None, None, None, None):
        return "off"
    return " ".join(f"{n} {v:g}" for n, v in zip(("K", "P", "J", "F"), credit) if v is not None)


def prepare(d):
    """What a replay of directory `d` reads: the models' forecasts alone, the horizon and the
    hour in buckets, persistence, the point and max outcomes, and the shifts the shipped rise
    watch finds."""
    step, load_, models = L.load(d)
    h, hour, day = L.HORIZON_S // step, L.HOUR_S // step, 86400 // step
    pers = L.persistence(load_)
    point, most = L.outcomes(load_, h)
    r, eps, margin, falls, _ = WATCH
    # The watch needs at least 12 buckets an hour (augur's MIN_HOUR_BUCKETS).
    found = S.shifts(S.changes(pers, hour, day, r, eps), hour, day, margin, pers, r, falls) if hour >= 12 else set()
    return models, h, hour, pers, point, most, found


def run(d, every, candidates):
    """Per (label, model): (served point, served max, worst point, worst max, shifts)."""
    models, h, hour, pers, point, most, found = prepare(d)
    out = {}
    for name in (sorted(models) if every else [L.DEFAULT]):
        fc = models[name]
        for credit in candidates:
            res = [L.score(S.serve(fc[k], pers, a, h, hour, found, "hold", WATCH[4], *credit), pers, a, hour)
                   for k, a in (("point", point), ("max", most))]
            out[label(credit), name] = (res[0][0], res[1][0], res[0][1], res[1][1], len(found))
    return out


def main(args):
    every = "--all" in args
    candidates = AGAINST if "--against" in args else FAST if "--fast" in args else CREDITS
    dirs = [a for a in args if not a.startswith("--")]
    results = {}
    with multiprocessing.Pool(2) as pool:
        runs = pool.starmap(run, [(d, every, candidates) for d in dirs])
    for d, result in zip(dirs, runs):
        name = d.rstrip("/").split("/")[-1]
        results[name] = result
        print(name, flush=True)
        for (lab, model), v in results[name].items():
            print(f"  {model:28} {lab:10} served {v[0]:.3f} / {v[1]:.3f}, "
                  f"worst hour {v[2]:.3f} / {v[3]:.3f}", flush=True)
    if len(dirs) > 3:
        S.report_choice(results, [d.rstrip("/").split("/")[-1] for d in dirs[:3]], "among all candidates")

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
