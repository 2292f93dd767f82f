"""How often the asv timing gate (``tox -e bench-regress``) catches an injected regression, how often
it cries wolf on identical code, and which ``--factor`` the A/A ratios support.

    python tools/asv_detection.py --out /tmp/asvdet [--rev HEAD] [--trials 10] [--core aa1,r1.3]
                                  [--rotate r2,r4] [--per-trial 1] [--bench REGEX] [--until 20:30]
                                  [--judge-only]

1. The scratch commits of tools/detection.py (:func:`detection.scratch_commits`: ``aaK`` changes a
   comment only, ``rF`` calls the polynomial kernel again on a deterministic schedule, F× its own
   work) in ``OUT/repo``.
2. Each comparison is the timing gate's own command (:func:`bench_regress.timing_command`:
   ``asv continuous --interleave-rounds --append-samples --no-only-changed --split --factor F``,
   asv's default rounds, the virtualenv environment of asv.conf.json) of the base against one
   condition, restricted by ``--bench`` (default: the polynomial kernel's parameters of
   ``Forward.time_forward``, the benchmarks the injected heads slow down), with a fresh results
   directory of its own, so no comparison appends to another's samples. A trial runs the
   ``--core`` conditions and ``--per-trial`` of the ``--rotate`` conditions in turn; comparisons
   run one after another, so each is independent of the others (but sees its own load).
3. Judging (:func:`benchmark_rows`, :func:`verdicts`) re-reads each comparison's results with asv's
   own code: asv's significance (``asv.commands.compare._is_result_better``: Mann–Whitney on the
   pooled samples, or its CI check) and the ratio HEAD/BASE; the gate fails on a benchmark that is
   significantly slower *and* beyond the factor. Significance does not depend on the factor, so
   every factor can be judged from one measurement (:func:`factor_scan`); :func:`choose_factor`
   sets the factor from the A/A ratios. ``--judge-only`` re-judges without measuring.
4. Writes ``OUT/asv_detection.csv`` (one row per comparison and benchmark) and prints the tables.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from bench_regress import FACTOR, timing_command  # noqa: E402
from detection import CONDITIONS, IDENTICAL, scratch_commits  # noqa: E402

# The injected heads slow the polynomial kernel only: its two Forward.time_forward parameters
# (n = 1024, 4096) are what the gate needs to see them (asv matches -b against "name(params)").
BENCH = r"^bench_attention\.Forward\.time_forward\(.*'polynomial'"
KERNEL = "polynomial"
FLOOR = 1.10  # the smallest factor choose_factor returns: a change under 10 % is not called a regression
STEP = 0.05  # choose_factor's grid


def comparison_config(repo: Path, where: Path, env_dir: Path) -> Path:
    """asv.conf.json of ``repo`` with a results directory of this comparison's own and a shared
    environment directory (absolute paths: asv resolves them against the working directory)."""
    from asv.util import load_json

    conf = load_json(str(repo / "asv.conf.json"), api_version=1, js_comments=True)
    conf.update(repo=str(repo), benchmark_dir=str(repo / "benchmarks"), env_dir=str(env_dir),
                results_dir=str(where / "results"), html_dir=str(where / "html"), version=1)
    path = where / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=2) + "\n")
    return path


def run_comparison(repo: Path, where: Path, env_dir: Path, base: str, head: str, bench: str, factor: float) -> dict:
    """One timing-gate run of ``base`` against ``head`` into ``where``; its record (exit status, time, load)."""
    where.mkdir(parents=True, exist_ok=True)
    cmd = timing_command(base, head, factor, bench=bench, config=comparison_config(repo, where, env_dir))
    start, load = time.time(), os.getloadavg()[0]
    with open(where / "log.txt", "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        # the fused kernel's build cache of this environment's own (its torch lives elsewhere than the
        # other processes' on this machine: sharing ~/.cache would rebuild it for every switch)
        env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(env_dir.parent / "torch_extensions"))
        rc = subprocess.run(cmd, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    return {"rc": rc, "seconds": time.time() - start, "load_before": load, "load_after": os.getloadavg()[0],
            "start": start, "factor_run": factor, "bench": bench, "command": " ".join(cmd)}


def significant(t_a: float, t_b: float, ss_a: tuple | None, ss_b: tuple | None) -> bool:
    """asv's significance of the difference between two results (either direction), as ``asv
    compare`` decides it: :func:`asv.commands.compare._is_result_better` at factor 1."""
    from asv.commands.compare import _is_result_better

    return bool(_is_result_better(t_a, t_b, ss_a, ss_b, 1.0) or _is_result_better(t_b, t_a, ss_b, ss_a, 1.0))


def benchmark_rows(results_dir: Path, base: str, head: str) -> list[dict]:
    """One row per benchmark (parameter set) both sides have: times, ratio HEAD/BASE, asv significance."""
    from asv.commands.compare import unroll_result
    from asv.results import iter_results_for_machine_and_hash

    machines = [p.name for p in results_dir.iterdir() if (p / "machine.json").is_file()] if results_dir.is_dir() else []
    if len(machines) != 1:
        raise ValueError(f"{results_dir}: expected results of one machine, found {machines}")
    sides = {}
    for label, sha in (("base", base), ("head", head)):
        values = {}
        for result in iter_results_for_machine_and_hash(str(results_dir), machines[0], sha):
            for key in result.get_all_result_keys():
                params = result.get_result_params(key)
                for name, value, stats, samples in unroll_result(
                        key, params, result.get_result_value(key, params), result.get_result_stats(key, params),
                        result.get_result_samples(key, params)):
                    values[name] = (value, (stats, samples))
        sides[label] = values
    rows = []
    for name in sorted(set(sides["base"]) & set(sides["head"])):
        (t_base, ss_base), (t_head, ss_head) = sides["base"][name], sides["head"][name]
        if t_base is None or t_head is None or math.isnan(t_base) or math.isnan(t_head):
            continue  # failed or skipped on a side: nothing to compare
        rows.append({"benchmark": name, "base_s": t_base, "head_s": t_head, "ratio": t_head / t_base,
                     "significant": significant(t_base, t_head, ss_base, ss_head),
                     "samples_base": len(ss_base[1] or []), "samples_head": len(ss_head[1] or [])})
    return rows


def verdicts(rows: pd.DataFrame, factor: float, kernel: str = KERNEL) -> pd.DataFrame:
    """One row per comparison at ``factor``: caught (a ``kernel`` benchmark significantly slower by
    more than ``factor``: what the gate fails on), and any benchmark failing (the gate's exit)."""
    rows = rows.assign(fails=rows["significant"] & (rows["ratio"] > factor),
                       of_kernel=rows["benchmark"].str.contains(f"'{kernel}'", regex=False))
    by = rows.groupby("comparison")
    out = pd.DataFrame({
        "condition": by["condition"].first(), "caught": by.apply(lambda g: bool((g.fails & g.of_kernel).any())),
        "gate_fails": by["fails"].any(), "ratio_min": by.apply(lambda g: g.ratio[g.of_kernel].min()),
        "ratio_max": by.apply(lambda g: g.ratio[g.of_kernel].max()), "load_before": by["load_before"].first(),
        "load_after": by["load_after"].first(), "seconds": by["seconds"].first()})
    return out


def upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact (Clopper–Pearson) upper confidence bound of a rate seen k times in n trials
    (0 of n: 1 − (1 − confidence)^(1/n))."""
    from scipy.stats import beta

    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 ≤ k ≤ n and n ≥ 1, got k={k}, n={n}")
    return 1.0 if k == n else float(beta.ppf(confidence, k + 1, n - k))


def lower_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact (Clopper–Pearson) lower confidence bound of a rate seen k times in n trials
    (n of n: (1 − confidence)^(1/n))."""
    from scipy.stats import beta

    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 ≤ k ≤ n and n ≥ 1, got k={k}, n={n}")
    return 0.0 if k == 0 else float(beta.ppf(1 - confidence, k, n - k + 1))


def table(rows: pd.DataFrame, factor: float) -> pd.DataFrame:
    """The detection table at ``factor``: per condition, comparisons, caught (A/A: false alarms), the
    one-sided exact 95 % bound of the rate (A/A: upper, heads: lower), ratios, load."""
    v = verdicts(rows, factor)
    order = ["A/A", *[c for c in CONDITIONS if c not in IDENTICAL and not c.startswith("aa")]]
    grouped = v.groupby("condition").agg(
        comparisons=("caught", "size"), caught=("caught", "sum"), gate_fails=("gate_fails", "sum"),
        ratio_low=("ratio_min", "min"), ratio_high=("ratio_max", "max"), load_low=("load_before", "min"),
        load_high=("load_after", "max"), seconds_max=("seconds", "max"))
    # A/A: how high the false-alarm rate may be; injected heads: how low the detection rate may be
    grouped["bound_95"] = [upper_bound(int(c), int(n)) if name == "A/A" else lower_bound(int(c), int(n))
                           for name, c, n in zip(grouped.index, grouped.caught, grouped.comparisons)]
    return grouped.reindex([c for c in order if c in grouped.index])


def factor_scan(rows: pd.DataFrame, factors: Iterable[float]) -> pd.DataFrame:
    """Caught per condition (A/A: false alarms) at each factor, from the same measurements."""
    out = {}
    for factor in factors:
        v = verdicts(rows, factor)
        out[f"{factor:.2f}"] = v.groupby("condition")["caught"].sum().astype(int).astype(str) + " of " + \
            v.groupby("condition")["caught"].size().astype(str)
    return pd.DataFrame(out).T


def choose_factor(aa_ratios: Sequence[float], aa_significant: Sequence[bool], *, floor: float = FLOOR,
                  step: float = STEP) -> float:
    """The smallest factor on a ``step`` grid, at least ``floor``, above every A/A ratio that asv
    called significant, in either direction (the two sides of an A/A pair are exchangeable, so a
    significant 0.7 is a significant 1/0.7 with the sides swapped): with it, none of the measured
    A/A comparisons would have failed the gate."""
    if len(aa_ratios) != len(aa_significant):
        raise ValueError(f"{len(aa_ratios)} ratios but {len(aa_significant)} significance flags")
    if any(not r > 0 or math.isinf(r) for r in aa_ratios):
        raise ValueError(f"ratios must be positive and finite, got {list(aa_ratios)}")
    worst = max([max(r, 1 / r) for r, s in zip(aa_ratios, aa_significant) if s], default=1.0)
    grid = floor
    while grid <= worst + 1e-12:
        grid = round(grid + step, 10)
    return grid


def normal_factor(aa_ratios: Sequence[float], *, benchmarks: int, alpha: float = 0.05, step: float = STEP) -> float:
    """The factor that a gate over ``benchmarks`` benchmarks needs for a family-wise false-alarm
    rate ≤ ``alpha`` if A/A log ratios are normal with the measured spread and every ratio beyond
    the factor were an alarm (significance ignored, so it errs high; benchmarks taken as
    independent, which errs high too when their noise is positively correlated):
    exp(sd · z(1 − alpha/benchmarks)), rounded up to the ``step`` grid."""
    from scipy.stats import norm

    logs = [math.log(r) for r in aa_ratios]
    if len(logs) < 2 or benchmarks < 1 or not 0 < alpha < 1:
        raise ValueError(f"need ≥ 2 ratios, benchmarks ≥ 1 and 0 < alpha < 1 (got {len(logs)}, {benchmarks}, {alpha})")
    sd = float(pd.Series(logs).std(ddof=1))
    factor = math.exp(sd * float(norm.ppf(1 - alpha / benchmarks)))
    return round(math.ceil(round(factor / step, 9)) * step, 10)


def judge(out: Path) -> pd.DataFrame:
    """Every finished comparison under ``out``: one row per (comparison, benchmark)."""
    rows = []
    for where in sorted((out / "comparisons").glob("*")):
        record_path = where / "comparison.json"
        if not record_path.is_file():
            continue  # interrupted
        record = json.loads(record_path.read_text())
        for row in benchmark_rows(where / "results", record["base"], record["head"]):
            rows.append({"comparison": where.name, **{k: record[k] for k in (
                "trial", "condition", "head_label", "rc", "seconds", "load_before", "load_after", "factor_run")},
                **row})
    return pd.DataFrame(rows)


def past(deadline: str | None) -> bool:
    """True when the UTC clock is past ``deadline`` (HH:MM, today)."""
    if not deadline:
        return False
    hour, minute = (int(x) for x in deadline.split(":"))
    now = time.gmtime()
    return (now.tm_hour, now.tm_min) >= (hour, minute)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--core", default="aa1,r1.3", help="conditions compared with the base in every trial")
    parser.add_argument("--rotate", default="r2,r4", help="conditions taken in turn")
    parser.add_argument("--per-trial", type=int, default=1)
    parser.add_argument("--bench", default=BENCH, help="asv -b regex of the benchmarks measured")
    parser.add_argument("--factor", type=float, default=FACTOR, help="the factor the gate runs at (judging: all)")
    parser.add_argument("--until", help="UTC HH:MM after which no new comparison starts")
    parser.add_argument("--judge-only", action="store_true")
    args = parser.parse_args()
    core = [c for c in args.core.split(",") if c]
    rotate = [c for c in args.rotate.split(",") if c]
    unknown = sorted(set(core + rotate) - set(CONDITIONS))
    if unknown:
        parser.error(f"unknown conditions {unknown}; known: {list(CONDITIONS)}")
    if args.trials < 0 or args.per_trial < 0 or not args.factor >= 1.0:
        parser.error("--trials ≥ 0, --per-trial ≥ 0 and --factor ≥ 1 are required")
    if args.until:
        try:
            hour, minute = (int(x) for x in args.until.split(":"))
            assert 0 <= hour < 24 and 0 <= minute < 60
        except (ValueError, AssertionError):
            parser.error(f"--until must be HH:MM (UTC), got {args.until!r}")
    if not args.judge_only:
        args.out.mkdir(parents=True, exist_ok=True)
        repo = (args.out / "repo").resolve()
        shas = scratch_commits(args.repo, args.rev, repo, core + rotate)
        done = sorted((args.out / "comparisons").glob("*")) if (args.out / "comparisons").is_dir() else []
        first_trial = 1 + max((json.loads((d / "comparison.json").read_text())["trial"] for d in done
                               if (d / "comparison.json").is_file()), default=-1)
        index = len(done)
        for trial in range(first_trial, first_trial + args.trials):
            turn = [rotate[(trial * args.per_trial + i) % len(rotate)] for i in range(args.per_trial)] if rotate else []
            for label in dict.fromkeys(core + turn):
                if past(args.until):
                    print(f"past {args.until} UTC: no new comparison", flush=True)
                    break
                where = (args.out / "comparisons" / f"{index:03d}-{label}").resolve()
                record = run_comparison(repo, where, (args.out / "env").resolve(), shas["base"], shas[label],
                                        args.bench, args.factor)
                record.update(trial=trial, condition="A/A" if label.startswith("aa") else label, head_label=label,
                              base=shas["base"], head=shas[label])
                (where / "comparison.json").write_text(json.dumps(record) + "\n")
                print(f"comparison {index} (trial {trial}, {label}): exit {record['rc']}, {record['seconds']:.0f} s, "
                      f"load {record['load_before']:.1f}→{record['load_after']:.1f}", flush=True)
                index += 1
            else:
                continue
            break
    rows = judge(args.out)
    if rows.empty:
        print(f"no finished comparison under {args.out}")
        return 1
    rows.to_csv(args.out / "asv_detection.csv", index=False)
    aa = rows[rows["condition"] == "A/A"]
    chosen = choose_factor(list(aa["ratio"]), list(aa["significant"]))
    print(f"at the gate's factor {FACTOR}:\n{table(rows, FACTOR).to_string()}\n")
    gate_size = 8  # Forward.time_forward's parameters in the CI gate (2 sizes × 4 kernels)
    model = normal_factor(list(aa["ratio"]), benchmarks=gate_size)
    print(f"A/A log-ratio normal model, {gate_size} benchmarks, 5 % family-wise: factor {model:.2f}; "
          f"per-benchmark-pair rule (choose_factor) below")
    print(f"factor chosen from {aa['comparison'].nunique()} A/A comparisons: {chosen:.2f}\n"
          f"{table(rows, chosen).to_string()}\n")
    print("caught (A/A: false alarms) by factor:\n" +
          factor_scan(rows, [1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.5, 2.0, 2.5]).to_string())
    print(f"wrote {args.out / 'asv_detection.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
