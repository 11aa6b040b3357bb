#!/usr/bin/env python3
"""Writes request-rate traces unlike the three shared ones, to check that `augur backtest`,
`augur train` and the built-in models behave on them (benches/README.md, "Traces unlike the
shared ones"): `python3 benches/odd_traces.py DIR [SHARED_DATA_DIR]`.

Every trace is `timestamp,value` (timestamp = bucket start in Unix seconds, value = mean
req/s over the bucket, missing buckets left out). Deterministic (fixed seeds).

DIR/*.csv, well-formed:
- nasa_120s, nasa_300s, nasa_900s: the shared NASA trace re-aggregated (mean of the present
  minutes of each bucket, buckets aligned to multiples of the step); worldcup_300s likewise.
- synth_15s (10 days), synth_10s (9 days): Poisson counts per bucket on a daily + weekly
  cycle (about 20 req/s on average).
- hourly_3600s: the same cycle at one bucket per hour, 35 days.
- short_8d, short_9d, short_3d: the last 8, 9 and 3 days of NASA.
- shift_up5, shift_down5: NASA ×5 (÷5) from 1995-07-25 00:00 UTC on (inside the evaluated
  last 7 days).
- growth_x3: NASA times a slow exponential growth, ×3 over the last 14 days.
- zero_day: NASA with 1995-07-24 (UTC) at 0 req/s (service switched off, buckets present).
- cron_spikes: 0 req/s except a 2-minute burst every hour (cron) and rare random spikes,
  14 days at 60 s.
- constant: 5 req/s, 14 days at 60 s.
- huge: NASA × 1e6; tiny: NASA × 1e-4.
- outage3d: NASA with 1995-07-23 .. 1995-07-25 (3 days, UTC) missing.
- weekly_only: weekdays at 30 req/s, weekends at 8 req/s, no daily cycle, Poisson noise,
  28 days at 60 s.
- rare_spikes: 0 req/s except random 1-minute spikes (0.2 % of minutes), 14 days at 60 s.
- phase_shift: NASA whose daily cycle moves 8 hours later from 1995-07-23 00:00 UTC on
  (the daily and weekly lags mislead for a day and a week).
- sparse30, sparse5: NASA with 30 % (5 %) of the minutes missing at random.
- onoff: 20 req/s (Poisson) or 0 in random on/off periods of 1-6 hours, 14 days at 60 s.
- flat_then_daily: a flat 10 req/s for 12 days, then a daily + weekly cycle for 9 days;
  daily_then_flat: the cycle for 16 days, then flat for 5 (both Poisson, 60 s).
- level_walk: Poisson around a level that jumps (log-normal, sd 0.7) every 3 hours on
  average, 14 days at 60 s.
- low_count: the daily + weekly cycle at 0.02 req/s on average (about one request a
  minute), 14 days at 60 s.
- random_walk: a rate around 50 req/s whose logarithm takes a Gaussian step (sd 0.02)
  every minute, 14 days at 60 s: persistence is the best forecast there is.
- worldcup_shift: the shared WorldCup trace ×5 from 1998-06-06 00:00 UTC on (inside the
  evaluated last 7 days): a tournament starting, the level shift that made the Holt-Winters
  family forecast several times the load.
- ramps: 5 req/s (Poisson) with a steep ramp every weekday at 08:00 UTC to 60 req/s over
  20 minutes, 3 hours at that level, down over 30 minutes; 21 days at 60 s.

DIR/bad/*.csv, malformed (each must be refused with its file, line and why):
- unsorted, duplicate (two rows with one timestamp), noheader (accepted: no header needed),
  nan, negative, empty_value, text, single_row, empty, inf, millis (millisecond timestamps),
  crlf_bom (accepted: Windows line ends and a byte-order mark), header_other (accepted: a
  header naming other columns), float_ts (accepted: `1600000000.0`-style timestamps),
  far_timestamp (one timestamp years after the rest), extra_column.
"""
import math
import random
import sys
from pathlib import Path

DAY = 86_400
BASE = 1_600_000_000 - 1_600_000_000 % (7 * DAY) + 4 * DAY  # a Monday 00:00 UTC


def write(path, rows):
    with open(path, "w") as f:
        f.write("timestamp,value\n")
        for t, v in rows:
            f.write(f"{t},{v:.10g}\n")


def read(path):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            t, v = line.strip().split(",")
            rows.append((int(t), float(v)))
    return rows


def reaggregate(rows, step):
    buckets = {}
    for t, v in rows:
        b = t - t % step
        s, n = buckets.get(b, (0.0, 0))
        buckets[b] = (s + v, n + 1)
    return [(b, s / n) for b, (s, n) in sorted(buckets.items())]


def poisson(lam):
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= random.random()
            if p <= limit:
                return k
            k += 1
    return max(0, round(random.gauss(lam, math.sqrt(lam))))


def cycle(t):
    """Daily and weekly cycle around 1: busy afternoons, quiet nights and weekends."""
    day = (t % DAY) / DAY
    weekday = ((t - 4 * DAY) // DAY) % 7  # 0 = Monday
    daily = 1 + 0.6 * math.sin(2 * math.pi * (day - 0.3)) + 0.15 * math.sin(4 * math.pi * day)
    weekly = 0.55 if weekday >= 5 else 1.0
    return daily * weekly


def synthetic(step, days, mean_rate, seed):
    random.seed(seed)
    return [
        (BASE + i * step, poisson(mean_rate * cycle(BASE + i * step) * step) / step)
        for i in range(days * DAY // step)
    ]


def main(out, shared):
    out.mkdir(parents=True, exist_ok=True)
    bad = out / "bad"
    bad.mkdir(exist_ok=True)
    nasa = read(shared / "nasa_ksc_http_1995_07_60s.csv")
    worldcup = read(shared / "worldcup98_pre_tournament_60s.csv")
    for step in (120, 300, 900):
        write(out / f"nasa_{step}s.csv", reaggregate(nasa, step))
    write(out / "worldcup_300s.csv", reaggregate(worldcup, 300))
    write(out / "synth_15s.csv", synthetic(15, 10, 20.0, 15))
    write(out / "synth_10s.csv", synthetic(10, 9, 20.0, 10))
    write(out / "hourly_3600s.csv", synthetic(3600, 35, 20.0, 3600))
    end = nasa[-1][0] + 60
    for days in (8, 9, 3):
        write(out / f"short_{days}d.csv", [(t, v) for t, v in nasa if t >= end - days * DAY])
    shift = 806_630_400  # 1995-07-25 00:00 UTC
    write(out / "shift_up5.csv", [(t, v * 5 if t >= shift else v) for t, v in nasa])
    write(out / "shift_down5.csv", [(t, v / 5 if t >= shift else v) for t, v in nasa])
    growth_start = end - 14 * DAY
    write(out / "growth_x3.csv",
          [(t, v * 3 ** (max(0, t - growth_start) / (14 * DAY))) for t, v in nasa])
    off = 806_544_000  # 1995-07-24 00:00 UTC
    write(out / "zero_day.csv", [(t, 0.0 if off <= t < off + DAY else v) for t, v in nasa])
    random.seed(7)
    cron = []
    for i in range(14 * 1440):
        t = BASE + i * 60
        v = 0.0
        if i % 60 in (0, 1):
            v = poisson(50 * 60) / 60
        elif random.random() < 0.002:
            v = poisson(random.uniform(5, 40) * 60) / 60
        cron.append((t, v))
    write(out / "cron_spikes.csv", cron)
    write(out / "constant.csv", [(BASE + i * 60, 5.0) for i in range(14 * 1440)])
    write(out / "huge.csv", [(t, v * 1e6) for t, v in nasa])
    write(out / "tiny.csv", [(t, v * 1e-4) for t, v in nasa])
    outage = 806_457_600  # 1995-07-23 00:00 UTC
    write(out / "outage3d.csv", [(t, v) for t, v in nasa if not outage <= t < outage + 3 * DAY])
    random.seed(28)
    weekly = []
    for i in range(28 * 1440):
        t = BASE + i * 60
        rate = 8.0 if ((t - 4 * DAY) // DAY) % 7 >= 5 else 30.0
        weekly.append((t, poisson(rate * 60) / 60))
    write(out / "weekly_only.csv", weekly)
    random.seed(5)
    write(out / "rare_spikes.csv",
          [(BASE + i * 60, poisson(random.uniform(5, 40) * 60) / 60 if random.random() < 0.002 else 0.0)
           for i in range(14 * 1440)])
    by_time = dict(nasa)
    moved = 806_457_600  # 1995-07-23 00:00 UTC
    write(out / "phase_shift.csv",
          [(t, by_time[t - 8 * 3600]) if t >= moved else (t, v) for t, v in nasa
           if t < moved or t - 8 * 3600 in by_time])
    random.seed(30)
    write(out / "sparse30.csv", [(t, v) for t, v in nasa if random.random() >= 0.3])
    random.seed(31)
    write(out / "sparse5.csv", [(t, v) for t, v in nasa if random.random() >= 0.05])
    random.seed(8)
    onoff, on, left = [], True, 0
    for i in range(14 * 1440):
        if left == 0:
            on, left = not on, random.randint(60, 360)
        left -= 1
        onoff.append((BASE + i * 60, poisson(20 * 60) / 60 if on else 0.0))
    write(out / "onoff.csv", onoff)
    random.seed(9)
    write(out / "flat_then_daily.csv",
          [(BASE + i * 60, poisson((10 if i < 12 * 1440 else 10 * cycle(BASE + i * 60)) * 60) / 60)
           for i in range(21 * 1440)])
    random.seed(10)
    write(out / "daily_then_flat.csv",
          [(BASE + i * 60, poisson((10 if i >= 16 * 1440 else 10 * cycle(BASE + i * 60)) * 60) / 60)
           for i in range(21 * 1440)])
    random.seed(11)
    walk, level = [], 10.0
    for i in range(14 * 1440):
        if random.random() < 1 / 180:
            level = max(0.5, level * math.exp(random.gauss(0, 0.7)))
        walk.append((BASE + i * 60, poisson(level * 60) / 60))
    write(out / "level_walk.csv", walk)
    write(out / "low_count.csv", synthetic(60, 14, 0.02, 12))
    random.seed(13)
    walk, level = [], math.log(50.0)
    for i in range(14 * 1440):
        level += random.gauss(0, 0.02)
        lam = math.exp(level) * 60
        walk.append((BASE + i * 60, max(0, round(random.gauss(lam, math.sqrt(lam)))) / 60))
    write(out / "random_walk.csv", walk)

    tournament = 896_400_000  # 1998-06-06 00:00 UTC
    write(out / "worldcup_shift.csv", [(t, v * 5 if t >= tournament else v) for t, v in worldcup])
    random.seed(14)
    ramps = []
    for i in range(21 * 1440):
        t = BASE + i * 60
        weekday = ((t - 4 * DAY) // DAY) % 7 < 5
        minute = (t % DAY) // 60 - 8 * 60
        rate = 5.0
        if weekday and 0 <= minute < 20:
            rate = 5 + 55 * minute / 20
        elif weekday and 20 <= minute < 200:
            rate = 60.0
        elif weekday and 200 <= minute < 230:
            rate = 60 - 55 * (minute - 200) / 30
        ramps.append((t, poisson(rate * 60) / 60))
    write(out / "ramps.csv", ramps)

    def raw(name, text):
        with open(bad / f"{name}.csv", "w", newline="") as f:
            f.write(text)

    ten = [(BASE + i * 60, 1 + (i % 7) / 10) for i in range(9 * 1440)]
    body = "".join(f"{t},{v}\n" for t, v in ten)
    rows = body.splitlines(keepends=True)
    raw("unsorted", "timestamp,value\n" + "".join(rows[:100] + [rows[101], rows[100]] + rows[102:]))
    raw("duplicate", "timestamp,value\n" + "".join(rows[:100] + [rows[100]] + rows[100:]))
    raw("noheader", body)
    raw("nan", "timestamp,value\n" + "".join(rows[:50] + [f"{ten[50][0]},NaN\n"] + rows[51:]))
    raw("negative", "timestamp,value\n" + "".join(rows[:50] + [f"{ten[50][0]},-3\n"] + rows[51:]))
    raw("empty_value", "timestamp,value\n" + "".join(rows[:50] + [f"{ten[50][0]},\n"] + rows[51:]))
    raw("text", "timestamp,value\n" + "".join(rows[:50] + [f"{ten[50][0]},n/a\n"] + rows[51:]))
    raw("inf", "timestamp,value\n" + "".join(rows[:50] + [f"{ten[50][0]},inf\n"] + rows[51:]))
    raw("single_row", "timestamp,value\n" + rows[0])
    raw("empty", "")
    raw("millis", "timestamp,value\n" + "".join(f"{t * 1000},{v}\n" for t, v in ten))
    raw("crlf_bom", "\ufefftimestamp,value\r\n" + body.replace("\n", "\r\n"))
    raw("header_other", "time,requests_per_second\n" + body)
    raw("float_ts", "timestamp,value\n" + "".join(f"{t}.0,{v}\n" for t, v in ten))
    raw("far_timestamp", "timestamp,value\n" + body + f"{BASE + 400 * 365 * DAY},1\n")
    raw("extra_column", "timestamp,value,pod\n" + "".join(f"{t},{v},web-0\n" for t, v in ten))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/odd"),
         Path(sys.argv[2] if len(sys.argv) > 2 else "/work/shared/data"))
