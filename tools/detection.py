"""How often ``ditbench compare`` catches an injected regression, and how often it cries wolf.

    python tools/detection.py --out /tmp/detect [--trials 5] [--passes P] [--repo .] [--rev HEAD]
                              [--core aa1,aa2,r1.3] [--rotate r1.2,r1.5,r2,r4,n1.5,n2] [--per-trial 1]
                              [--pytest-gate] [--judge-only]

1. Clones ``--repo`` into ``OUT/repo`` and, from ``--rev``, commits one branch per condition whose
   only change is a block appended to ``ditbench/attention/polynomial.py`` that re-registers the
   ``polynomial`` kernel wrapped (:data:`INJECTION`): ``xF`` spins after each call until the
   call's CPU time is F× its own (an exact F× slowdown of the call's CPU time); ``rF`` calls the
   kernel again on a deterministic schedule (one extra call whenever the owed F − 1 per call
   reaches 1: F× the kernel's own work, with its own cache behaviour); ``nP`` first
   computes exp(q·kᵀ) on n^(P−1) query rows (extra work ∝ n^P); ``aaK`` changes a comment only
   (A/A). The shipped package is never patched: the injected code exists only in these scratch
   commits.
2. Each trial is one interleaved run (:func:`ditbench.compare.interleave.run_interleaved`) of the
   base, the ``--core`` conditions and ``--per-trial`` of the ``--rotate`` conditions (taken in
   turn, so each gets every len(rotate)/per-trial-th trial), ``--passes`` passes each (default:
   ``ditbench compare``'s), on ``ditbench compare``'s default sweep, one process per pass.
   Within a trial every condition is judged against every side that runs identical code (base,
   aa1, aa2: A/A pairs once each) by the statistics and default thresholds of ``ditbench compare``
   (:func:`compare_sizes`, :func:`compare_exponents`): comparisons of one trial share sides, so
   they are not independent of each other; trials are. Running again with the same ``--out`` adds
   trials (same commits, same exported trees); ``--judge-only`` re-judges every kept trial with the
   current statistics without measuring.
3. ``--pytest-gate``: after each trial, the pytest-benchmark short mode once in each tree of the
   trial (base first), for the pytest-benchmark gate's A/A and injected ratios
   (``OUT/trial-NN/pytest/<label>.json``).
4. Writes ``OUT/detection.csv`` (one row per comparison: caught, why, the polynomial ratio per size,
   the exponent difference, false alarms on exact attention, whose code is the same on every
   side, the trial's time and load averages) and prints the detection table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ditbench.compare import Thresholds, compare_exponents, compare_sizes  # noqa: E402
from ditbench.compare.cli import DEFAULT_PASSES, DEFAULT_SWEEP  # noqa: E402
from ditbench.compare.interleave import Version, run_interleaved  # noqa: E402
from ditbench.compare.sources import Revision, export  # noqa: E402

INJECTION = '''

# ---- injected regression ({name}; tools/detection.py — scratch commit, never shipped) ----
import dataclasses as _dc
import time as _time

from .registry import KERNELS as _KERNELS

_INNER = POLYNOMIAL.fn
_CREDIT = [0.0]  # extra calls owed (repeat heads)


def _injected(q, k, v, *, scale=None, **params):
    kind, value = {kind!r}, {value!r}
    if kind == "repeat":  # the kernel's own call again on a deterministic schedule: `value` × its work
        out = _INNER(q, k, v, scale=scale, **params)
        _CREDIT[0] += value - 1.0
        while _CREDIT[0] >= 1.0:
            _CREDIT[0] -= 1.0
            out = _INNER(q, k, v, scale=scale, **params)
        return out
    if kind == "factor":  # spin until this call's CPU time is `value` × its own
        start = _time.process_time()
        out = _INNER(q, k, v, scale=scale, **params)
        deadline = start + value * (_time.process_time() - start)
        while _time.process_time() < deadline:
            pass
        return out
    n, m = q.shape[-2], k.shape[-2]
    rows = max(1, round(n ** (value - 1)))  # rows × m logits: work ∝ n^value
    s = 1.0 / q.shape[-1] ** 0.5 if scale is None else scale
    for start in range(0, rows, 1024):
        torch.exp(s * q[..., start:min(rows, start + 1024), :] @ k.transpose(-2, -1))
    return _INNER(q, k, v, scale=scale, **params)


_KERNELS["polynomial"] = _dc.replace(POLYNOMIAL, fn=_injected)
'''
CONDITIONS = {  # name → (kind, value)
    "aa1": ("none", 0), "aa2": ("none", 0), "x1.2": ("factor", 1.2), "x1.3": ("factor", 1.3),
    "x1.5": ("factor", 1.5), "x2": ("factor", 2.0), "x4": ("factor", 4.0), "n1.5": ("power", 1.5),
    "n2": ("power", 2.0), "r1.2": ("repeat", 1.2), "r1.3": ("repeat", 1.3), "r1.5": ("repeat", 1.5),
    "r2": ("repeat", 2.0), "r4": ("repeat", 4.0),
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def scratch_commits(repo: Path, rev: str, out: Path, names: list[str]) -> dict[str, str]:
    """Clone ``repo`` into ``out`` and commit one branch per condition; return name → sha (and "base")."""
    if not out.exists():
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(repo), str(out)], check=True)
    base = git(out, "rev-parse", f"{git(repo, 'rev-parse', rev)}^{{commit}}")
    shas = {"base": base}
    target = out / "ditbench" / "attention" / "polynomial.py"
    for name in names:
        kind, value = CONDITIONS[name]
        existing = subprocess.run(["git", "-C", str(out), "rev-parse", "--verify", "--quiet", f"detect-{name}"],
                                  capture_output=True, text=True).stdout.strip()
        if existing:  # a continued run: the same commits, so their exported trees (and builds) are reused
            shas[name] = existing
            continue
        git(out, "checkout", "--quiet", "--force", "-B", f"detect-{name}", base)
        if kind == "none":
            doc = out / "docs" / "benchmarks.md"
            doc.write_text(doc.read_text() + f"\n<!-- {name} -->\n")
        else:
            target.write_text(target.read_text() + INJECTION.format(name=name, kind=kind, value=value))
        git(out, "-c", "user.name=detection", "-c", "user.email=detection@localhost", "commit", "--quiet", "-am",
            f"inject {name}")
        shas[name] = git(out, "rev-parse", "HEAD")
    return shas


IDENTICAL = ("base", "aa1", "aa2")  # sides whose code is the same (A/A references)
PYTEST_GATE = ["-m", "pytest", "benchmarks/pytest_suite", "-m", "not large", "--benchmark-max-time=0.1",
               "--benchmark-min-rounds=3", "-q", "-p", "no:cacheprovider"]  # the CI short mode


def judge(base: pd.DataFrame, head: pd.DataFrame, thresholds: Thresholds) -> dict:
    """One comparison's outcome: caught (and how), polynomial ratios per size, exponent difference,
    exact attention (same code on both sides) called slower."""
    sizes, exps = compare_sizes(base, head, thresholds), compare_exponents(base, head, thresholds)
    poly_s, poly_e = sizes[sizes["kernel"] == "polynomial"], exps[exps["kernel"] == "polynomial"]
    slower = (sizes["verdict"] == "slower") & (sizes["kernel"] == "polynomial")
    steeper = (exps["verdict"] == "steeper") & (exps["kernel"] == "polynomial")
    exact_alarm = ((sizes["kernel"] == "exact") & (sizes["verdict"] == "slower")).any() or \
        ((exps["kernel"] == "exact") & (exps["verdict"] == "steeper")).any()
    return {"caught": bool(slower.any() or steeper.any()), "by_size": bool(slower.any()),
            "by_exponent": bool(steeper.any()), "median_ratio": float(poly_s["ratio"].median()),
            "max_ratio": float(poly_s["ratio"].max()), "min_ratio": float(poly_s["ratio"].min()),
            **{f"ratio_n{int(r.n)}": float(r.ratio) for r in poly_s.itertuples(index=False)},
            "k_diff": float(poly_e["diff"].iloc[0]) if len(poly_e) else float("nan"),
            "k_diff_low": float(poly_e["diff_low"].iloc[0]) if len(poly_e) else float("nan"),
            "exact_false_alarm": bool(exact_alarm), "exact_faster": bool(
                ((sizes["kernel"] == "exact") & (sizes["verdict"] == "faster")).any()),
            "aa_faster": bool(((sizes["kernel"] == "polynomial") & (sizes["verdict"] == "faster")).any())}


def pairs(labels: list[str]) -> list[tuple[str, str]]:
    """(reference, head) comparisons of one trial: every side against every identical-code side,
    each A/A pair once."""
    refs = [r for r in IDENTICAL if r in labels]
    out = []
    for head in labels:
        for ref in refs:
            if ref == head or (head in IDENTICAL and IDENTICAL.index(head) < IDENTICAL.index(ref)):
                continue
            out.append((ref, head))
    return out


def judge_trials(out: Path, thresholds: Thresholds) -> pd.DataFrame:
    """Every comparison of every finished trial under ``out`` (the trials' sides are results directories)."""
    from ditbench.compare.sources import is_results_dir, read_side

    rows = []
    for trial_dir in sorted(out.glob("trial-*")):
        info_path = trial_dir / "trial.json"
        if not info_path.is_file():
            continue  # interrupted: no merged sides
        info = json.loads(info_path.read_text())
        labels = [label for label in info["labels"] if is_results_dir(trial_dir / label)]
        frames = {label: read_side(trial_dir / label, label).frame for label in labels}
        for ref, head in pairs(labels):
            rows.append({"trial": info["trial"], "condition": "A/A" if head in IDENTICAL else head,
                         "reference": ref, "head": head, **judge(frames[ref], frames[head], thresholds),
                         "trial_s": info["seconds"], "load_before": info["load_before"],
                         "load_after": info["load_after"], "passes": info["passes"]})
    return pd.DataFrame(rows)


def pytest_gate(trial_dir: Path, versions: list[Version]) -> None:
    """The pytest-benchmark short mode once in each version's tree, base first, JSON kept."""
    where = trial_dir / "pytest"
    where.mkdir(exist_ok=True)
    for version in versions:
        env = dict(os.environ, PYTHONPATH=str(version.root),
                   TORCH_EXTENSIONS_DIR=str(version.root.parent / "torch_extensions"))
        cmd = [sys.executable, *PYTEST_GATE, f"--benchmark-json={where / (version.label + '.json')}"]
        proc = subprocess.run(cmd, cwd=version.root, env=env, capture_output=True, text=True, check=False)
        (where / f"{version.label}.log").write_text(proc.stdout + proc.stderr)


def pytest_ratios(out: Path) -> pd.DataFrame:
    """One row per (trial, reference, head) of the pytest-benchmark short-mode runs: the largest
    median ratio HEAD/BASE over every benchmark (what ``--benchmark-compare-fail=median:X%``
    checks: it fails when any exceeds 1 + X/100) and over the polynomial benchmarks."""
    rows = []
    for trial_dir in sorted(out.glob("trial-*")):
        where = trial_dir / "pytest"
        runs = {p.stem: json.loads(p.read_text())["benchmarks"] for p in where.glob("*.json")} if where.is_dir() else {}
        medians = {label: {b["fullname"]: b["stats"]["median"] for b in bench} for label, bench in runs.items()}
        for ref, head in pairs(sorted(medians, key=lambda x: (x not in IDENTICAL, x))):
            common = sorted(set(medians[ref]) & set(medians[head]))
            ratios = {name: medians[head][name] / medians[ref][name] for name in common}
            poly = [r for name, r in ratios.items() if "polynomial" in name and "gradient" not in name]
            worst = max(ratios, key=lambda name: ratios[name])
            rows.append({"trial": int(trial_dir.name.split("-")[1]), "condition": "A/A" if head in IDENTICAL else head,
                         "reference": ref, "head": head, "benchmarks": len(common), "max_ratio": ratios[worst],
                         "worst": worst, "poly_min_ratio": min(poly), "poly_max_ratio": max(poly)})
    return pd.DataFrame(rows)


def table(results: pd.DataFrame) -> pd.DataFrame:
    order = ["A/A", *[n for n in CONDITIONS if not n.startswith("aa")]]
    grouped = results.groupby("condition").agg(
        trials=("trial", "nunique"), comparisons=("caught", "size"), caught=("caught", "sum"),
        by_size=("by_size", "sum"), by_exponent=("by_exponent", "sum"),
        ratio_median=("median_ratio", "median"), ratio_low=("median_ratio", "min"),
        ratio_high=("median_ratio", "max"), k_diff=("k_diff", "median"),
        exact_false_alarms=("exact_false_alarm", "sum"), load_min=("load_before", "min"),
        load_max=("load_after", "max"), trial_s_max=("trial_s", "max"))
    return grouped.reindex([n for n in order if n in grouped.index])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--passes", type=int, default=DEFAULT_PASSES)
    parser.add_argument("--config", type=Path, default=DEFAULT_SWEEP)
    parser.add_argument("--core", default="aa1,aa2,x1.3", help="conditions in every trial (besides base)")
    parser.add_argument("--rotate", default="x1.2,x1.5,x2,x4,n1.5,n2", help="conditions taken in turn")
    parser.add_argument("--per-trial", type=int, default=1, help="rotating conditions per trial")
    parser.add_argument("--pytest-gate", action="store_true", help="also run the pytest-benchmark short mode")
    parser.add_argument("--judge-only", action="store_true", help="re-judge the kept trials, measure nothing")
    args = parser.parse_args()
    core = [c for c in args.core.split(",") if c]
    rotate = [c for c in args.rotate.split(",") if c]
    unknown = sorted(set(core + rotate) - set(CONDITIONS))
    if unknown:
        parser.error(f"unknown conditions {unknown}; known: {list(CONDITIONS)}")
    if args.passes < 2 or args.trials < 0 or args.per_trial < 0:
        parser.error("--passes ≥ 2, --trials ≥ 0 and --per-trial ≥ 0 are required")
    thresholds = Thresholds()
    results = args.out / "detection.csv"
    if not args.judge_only:
        args.out.mkdir(parents=True, exist_ok=True)
        shas = scratch_commits(args.repo, args.rev, args.out / "repo", core + rotate)
        cache = args.out / "trees"
        first = len(list(args.out.glob("trial-*")))  # a continued run numbers its trials after the earlier ones
        for trial in range(first, first + args.trials):
            turn = [rotate[(trial * args.per_trial + i) % len(rotate)] for i in range(args.per_trial)] if rotate else []
            labels = ["base", *dict.fromkeys(core + turn)]
            versions = [Version(label, label, shas[label], export(Revision(label, shas[label]), args.out / "repo",
                                                                  cache)) for label in labels]
            start, load = time.time(), os.getloadavg()
            trial_dir = args.out / f"trial-{trial:02d}"
            run_interleaved(versions, args.config.resolve(), trial_dir, passes=args.passes, threads=1, say=False)
            info = {"trial": trial, "labels": labels, "seconds": time.time() - start, "load_before": load[0],
                    "load_after": os.getloadavg()[0], "passes": args.passes, "start": start}
            (trial_dir / "trial.json").write_text(json.dumps(info) + "\n")
            if args.pytest_gate:
                pytest_gate(trial_dir, versions)
            print(f"trial {trial}: {info['seconds']:.0f} s, load {load[0]:.1f}→{info['load_after']:.1f}, "
                  f"sides {', '.join(labels)}", flush=True)
    frame = judge_trials(args.out, thresholds)
    if frame.empty:
        print(f"no finished trial under {args.out}")
        return 1
    frame.to_csv(results, index=False)
    print(table(frame).to_string())
    print(f"wrote {results}")
    gate = pytest_ratios(args.out)
    if not gate.empty:
        gate.to_csv(args.out / "pytest_gate.csv", index=False)
        print(gate.groupby("condition").agg(comparisons=("max_ratio", "size"), max_ratio_low=("max_ratio", "min"),
                                            max_ratio_high=("max_ratio", "max"),
                                            poly_ratio_low=("poly_min_ratio", "min"),
                                            poly_ratio_high=("poly_max_ratio", "max")).to_string())
        print(f"wrote {args.out / 'pytest_gate.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
