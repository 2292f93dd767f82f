"""How often ``ditbench compare`` catches an injected regression, and how often it cries wolf.

    python tools/detection.py --out /tmp/detect [--trials 5] [--passes 6] [--repo .] [--rev HEAD]
                              [--conditions aa1,aa2,x1.2,x1.3,x1.5,x2,x4,n1.5,n2]

1. Clones ``--repo`` into ``OUT/repo`` and, from ``--rev``, commits one branch per condition whose
   only change is a block appended to ``ditbench/attention/polynomial.py`` that re-registers the
   ``polynomial`` kernel wrapped (:data:`INJECTION`): ``xF`` spins after each call until the
   call's CPU time is F× its own (an exact F× slowdown); ``nP`` first computes exp(q·kᵀ) on
   n^(P−1) query rows (extra work ∝ n^P); ``aaK`` changes a comment only (A/A). The shipped
   package is never patched: the injected code exists only in these scratch commits.
2. Each trial is one interleaved run (:func:`ditbench.compare.interleave.run_interleaved`) of the
   base and every condition, ``--passes`` passes each, on ``ditbench compare``'s default sweep,
   and each condition is judged against the base by the statistics and default thresholds of
   ``ditbench compare`` (:func:`compare_sizes`, :func:`compare_exponents`).
   Running it again with the same ``--out`` adds trials (same commits, same exported trees).
3. Writes ``OUT/detection.csv`` (one row per trial and condition: caught, why, the worst polynomial
   ratio, the exponent difference, false alarms on exact attention, whose code is the same on
   every side) and prints the detection table with the machine's load average.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ditbench.compare import Thresholds, compare_exponents, compare_sizes  # noqa: E402
from ditbench.compare.cli import DEFAULT_SWEEP  # noqa: E402
from ditbench.compare.interleave import Version, run_interleaved  # noqa: E402
from ditbench.compare.sources import Revision, export  # noqa: E402

INJECTION = '''

# ---- injected regression ({name}; tools/detection.py — scratch commit, never shipped) ----
import dataclasses as _dc
import time as _time

from .registry import KERNELS as _KERNELS

_INNER = POLYNOMIAL.fn


def _injected(q, k, v, *, scale=None, **params):
    kind, value = {kind!r}, {value!r}
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
    "n2": ("power", 2.0),
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


def judge(base: pd.DataFrame, head: pd.DataFrame, thresholds: Thresholds) -> dict:
    sizes, exps = compare_sizes(base, head, thresholds), compare_exponents(base, head, thresholds)
    poly_s, poly_e = sizes[sizes["kernel"] == "polynomial"], exps[exps["kernel"] == "polynomial"]
    slower = (sizes["verdict"] == "slower") & (sizes["kernel"] == "polynomial")
    steeper = (exps["verdict"] == "steeper") & (exps["kernel"] == "polynomial")
    exact_alarm = ((sizes["kernel"] == "exact") & (sizes["verdict"] == "slower")).any() or \
        ((exps["kernel"] == "exact") & (exps["verdict"] == "steeper")).any()
    return {"caught": bool(slower.any() or steeper.any()), "by_size": bool(slower.any()),
            "by_exponent": bool(steeper.any()), "max_ratio": float(poly_s["ratio"].max()),
            "min_ratio": float(poly_s["ratio"].min()),
            "k_diff": float(poly_e["diff"].iloc[0]) if len(poly_e) else float("nan"),
            "k_diff_low": float(poly_e["diff_low"].iloc[0]) if len(poly_e) else float("nan"),
            "exact_false_alarm": bool(exact_alarm)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--config", type=Path, default=DEFAULT_SWEEP)
    parser.add_argument("--conditions", default="aa1,aa2,x1.2,x1.3,x1.5,x2,n1.5")
    args = parser.parse_args()
    names = args.conditions.split(",")
    unknown = sorted(set(names) - set(CONDITIONS))
    if unknown:
        parser.error(f"unknown conditions {unknown}; known: {list(CONDITIONS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    shas = scratch_commits(args.repo, args.rev, args.out / "repo", names)
    cache = args.out / "trees"
    versions = [Version(label, label, sha, export(Revision(label, sha), args.out / "repo", cache))
                for label, sha in shas.items()]
    thresholds = Thresholds()
    results = args.out / "detection.csv"
    first = len(list(args.out.glob("trial-*")))  # a continued run numbers its trials after the earlier ones
    for trial in range(first, first + args.trials):
        start, load = time.time(), os.getloadavg()
        sides = run_interleaved(versions, args.config.resolve(), args.out / f"trial-{trial:02d}", passes=args.passes,
                                threads=1, say=False)
        seconds = time.time() - start
        rows = [{"trial": trial, "condition": name, **judge(sides["base"].frame, sides[name].frame, thresholds),
                 "trial_s": seconds, "load_before": load[0], "load_after": os.getloadavg()[0],
                 "passes": args.passes} for name in names]
        frame = pd.DataFrame(rows)
        frame.to_csv(results, mode="a", header=not results.exists(), index=False)
        print(f"trial {trial}: {seconds:.0f} s, load {load[0]:.1f}→{os.getloadavg()[0]:.1f}: "
              + ", ".join(f"{r['condition']}={'C' if r['caught'] else '-'}" for r in rows), flush=True)
    table = pd.read_csv(results).groupby("condition").agg(
        trials=("caught", "size"), caught=("caught", "sum"), by_size=("by_size", "sum"),
        by_exponent=("by_exponent", "sum"), median_max_ratio=("max_ratio", "median"),
        median_k_diff=("k_diff", "median"), exact_false_alarms=("exact_false_alarm", "sum"))
    print(table.reindex([n for n in CONDITIONS if n in table.index]).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
