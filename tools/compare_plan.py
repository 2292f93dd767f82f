"""Choose ``ditbench compare``'s ``--passes`` and ``--threshold`` from measured A/A noise.

    python tools/compare_plan.py AA_DIR [AA_DIR ...] [--passes 6,8,10,12,14] [--thresholds 1.0,1.05,1.1]
                                 [--factor 1.3] [--kernel polynomial] [--draws 200] [--seed 0]

Each AA_DIR is a results directory of one side of an A/A comparison (e.g. ``OUT/base`` and
``OUT/head`` of ``ditbench compare HEAD HEAD --passes 12 --out OUT``): every pass in them ran the
same code, so their passes are exchangeable draws of what one pass of that code measures on this
machine, with the pass-level correlation between sizes that a real pass has (the pass's whole
vector of sizes is resampled together, never size by size).

For every (passes P, threshold T) the planner draws ``--draws`` pairs of sides of P passes each,
with replacement, from the pooled passes. In an A/A draw the sides are left as they are; in a
slowdown draw every ``--kernel`` size of HEAD is multiplied by ``--factor``. Each draw is judged by
``ditbench compare``'s own statistics (:func:`ditbench.compare.compare_sizes`, Holm over every
size, ``threshold`` T), and the planner prints, per (P, T), the share of A/A draws with a
``slower`` size (false alarms) and the share of slowdown draws caught — a bootstrap estimate from
the measured passes, not a detection measurement (``tools/detection.py`` measures that).
``--normal`` answers the same under a normal model of the passes with Welch t-tests (fast).

Resampling with replacement from N measured passes under-states the spread of a mean of P passes
by the factor sqrt((N−1)/N) only (the bootstrap's plug-in variance), but repeats passes inside one
draw when P is close to N; use at least 2·P measured passes.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ditbench.compare import Thresholds, compare_sizes  # noqa: E402
from ditbench.compare.sources import read_side  # noqa: E402
from ditbench.compare.stats import blocks, pass_levels, settings  # noqa: E402

RESAMPLES = 1000  # permutations per size test in the planner (p resolution 1e-3 < Holm's 0.05/7 = 7e-3)


def pooled_passes(dirs: list[Path]) -> tuple[pd.DataFrame, list[tuple]]:
    """``(passes, points)`` table of pass levels (log seconds) over every point all dirs share, and
    the points as (setting values…, n) tuples; one row per (dir, pass)."""
    frames = [read_side(d, d.name).frame for d in dirs]
    keys = settings(frames[0], frames[0])
    rows: list[dict] = []
    for i, frame in enumerate(frames):
        table = blocks(frame, keys)
        for (*point,), part in table.groupby([*keys, "n"], sort=True):
            levels = part.groupby("pass_index", sort=True)
            for p, one in levels:
                rows.append({"source": i, "pass": int(p), "point": tuple(point),
                             "level": float(pass_levels(one)[0])})
    long = pd.DataFrame(rows)
    wide = long.pivot_table(index=["source", "pass"], columns="point", values="level", aggfunc="first")
    wide = wide.dropna(axis=1)  # points every pass measured
    if wide.shape[0] < 4:
        raise ValueError(f"{wide.shape[0]} measured passes in {[str(d) for d in dirs]}: need at least 4")
    return wide, keys


def side_frame(levels: np.ndarray, points: list[tuple], keys: list[str]) -> pd.DataFrame:
    """A tidy side of ``levels`` ``(P, points)`` log seconds: one row per (pass, point)."""
    rows = []
    for p, vector in enumerate(levels):
        for point, level in zip(points, vector):
            rows.append({**dict(zip(keys, point[:-1])), "n": point[-1], "pass_index": p, "status": "ok",
                         "median_s": math.exp(level), "samples": json.dumps([math.exp(level)])})
    return pd.DataFrame(rows)


def plan(wide: pd.DataFrame, keys: list[str], passes: list[int], thresholds: list[float], factor: float,
         kernel: str, draws: int, seed: int) -> pd.DataFrame:
    points = list(wide.columns)
    kernel_at = keys.index("kernel") if "kernel" in keys else None
    slowed = np.array([kernel_at is not None and str(p[kernel_at]) == kernel for p in points])  # (points,)
    if not slowed.any():
        raise ValueError(f"no point of kernel {kernel!r} in the A/A passes")
    values = wide.to_numpy()  # (N passes, points)
    rng = np.random.default_rng(seed)
    records = []
    for p in passes:
        for draw in range(draws):
            base = values[rng.integers(0, len(values), p)]  # (P, points)
            head = values[rng.integers(0, len(values), p)]  # (P, points)
            slow = head + np.where(slowed, math.log(factor), 0.0)  # (P, points)
            for label, h in (("aa", head), ("slow", slow)):
                # verdicts at every threshold from one table: "slower" = p_adj < alpha and ratio > T
                sizes = compare_sizes(side_frame(base, points, keys), side_frame(h, points, keys),
                                      Thresholds(threshold=1.0), resamples=RESAMPLES)
                significant = sizes["p_adj"] < Thresholds().alpha
                for t in thresholds:
                    records.append({"passes": p, "threshold": t, "draw": draw, "kind": label,
                                    "alarm": bool((significant & (sizes["ratio"] > t)).any())})
    out = pd.DataFrame(records).groupby(["passes", "threshold", "kind"])["alarm"].mean().unstack("kind")
    return out.rename(columns={"aa": "false_alarm_rate", "slow": f"caught_{factor:g}x"})


def plan_normal(wide: pd.DataFrame, keys: list[str], passes: list[int], thresholds: list[float], factor: float,
                kernel: str, draws: int, seed: int, alpha: float = 0.05) -> pd.DataFrame:
    """The same question under a normal model of the measured passes (their covariance between
    points estimated from ``wide``) with a Welch t-test per size in place of the permutation test:
    fast (thousands of draws a second), a cross-check of :func:`plan`, not a replacement."""
    points = list(wide.columns)
    kernel_at = keys.index("kernel") if "kernel" in keys else None
    slowed = np.array([kernel_at is not None and str(p[kernel_at]) == kernel for p in points])  # (points,)
    cov = np.cov(wide.to_numpy(), rowvar=False)  # (points, points)
    rng = np.random.default_rng(seed)
    from scipy import stats

    from ditbench.compare.stats import holm

    records = []
    for p in passes:
        for _ in range(draws):
            base, head = (rng.multivariate_normal(np.zeros(len(points)), cov, p) for _ in range(2))  # (P, points)
            for label, h in (("aa", head), ("slow", head + np.where(slowed, math.log(factor), 0.0))):
                diff = h.mean(0) - base.mean(0)  # (points,)
                se = np.sqrt(h.var(0, ddof=1) / p + base.var(0, ddof=1) / p)  # (points,)
                adj = holm(2 * stats.t.sf(np.abs(diff / se), 2 * p - 2))
                for t in thresholds:
                    hit = (adj < alpha) & (diff > math.log(t)) & (slowed if label == "slow" else True)
                    records.append({"passes": p, "threshold": t, "kind": label, "alarm": bool(hit.any())})
    out = pd.DataFrame(records).groupby(["passes", "threshold", "kind"])["alarm"].mean().unstack("kind")
    return out.rename(columns={"aa": "false_alarm_rate", "slow": f"caught_{factor:g}x"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="AA_DIR")
    parser.add_argument("--passes", default="6,8,10,12,14")
    parser.add_argument("--thresholds", default="1.0,1.05,1.1")
    parser.add_argument("--factor", type=float, default=1.3)
    parser.add_argument("--kernel", default="polynomial")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--normal", action="store_true",
                        help="normal model of the measured passes + Welch t-tests (fast cross-check)")
    args = parser.parse_args()
    try:
        passes = [int(x) for x in args.passes.split(",")]
        thresholds = [float(x) for x in args.thresholds.split(",")]
        if min(passes) < 2 or args.draws < 1 or not args.factor > 1:
            raise ValueError("--passes ≥ 2, --draws ≥ 1 and --factor > 1 are required")
        wide, keys = pooled_passes(args.dirs)
    except ValueError as err:
        parser.error(str(err))
    spread = wide.std(ddof=1)
    print(f"{len(wide)} measured passes; pass-level sd of log seconds per point: "
          + ", ".join(f"{p[keys.index('kernel')] if 'kernel' in keys else ''} n={p[-1]}: {s:.3f}"
                      for p, s in spread.items()))
    planner = plan_normal if args.normal else plan
    print(planner(wide, keys, passes, thresholds, args.factor, args.kernel, args.draws, args.seed).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
