"""The two asv-side regression gates, both always run, one exit status at the end (``tox -e bench-regress``).

    python tools/bench_regress.py [BASE HEAD] [--factor F] [--margin M] [--kernels polynomial,exact]

1. **Timing gate**: ``asv continuous`` on ``bench_attention.Forward.time_forward`` with asv's own
   statistics (a change counts only when asv calls it significant *and* beyond ``--factor``),
   rounds interleaved between the two commits (``--interleave-rounds``), samples of repeated
   runs pooled (``--append-samples``) and every ratio printed (``--no-only-changed``).
2. **Exponent gate** (runs even when the timing gate failed): each revision is exported
   (:func:`ditbench.compare.sources.export`) and, in a fresh process with that copy on
   PYTHONPATH, BASE then HEAD, fits the exponent that ``ForwardExponent.track_exponent_forward``
   tracks (``benchmarks.common.fitted_exponent``, with its 95 % interval). It fails when HEAD's
   interval lies entirely above BASE's by more than ``--margin``: k_HEAD,low > k_BASE,high + margin
   (a ratio of two point estimates, which the old gate used, cannot tell noise from a change).

Exit status: 1 when either gate finds a regression; else 2 when a gate could not run; else 0.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ditbench.compare.sources import export, repository_root, resolve  # noqa: E402

# Factor of the timing gate, set from A/A comparisons of this gate as CI runs it (tools/asv_detection.py,
# session 4, loaded 2-core VM; docs/benchmarks.md, "asv timing gate: detection (measured)"): over 8 A/A
# comparisons of the polynomial benchmarks asv called ratios up to 1.43 significant; the larger of
# asv_detection.choose_factor (above every significant A/A ratio) and asv_detection.normal_factor (the
# A/A log-ratio spread, 8 benchmarks, 5 % family-wise). The 2.5 before came from asv rounds that
# were neither interleaved nor tested for significance (identical code moved by up to 2.0×).
FACTOR = 1.65
# Margin of the exponent gate, in exponent units: A/A intervals of the polynomial kernel were
# 0.85 [0.25, 1.46] and 1.12 [0.75, 1.49]; an n×n intermediate gave 1.96 [1.88, 2.05].
MARGIN = 0.1
FIT = r"""
import json, sys
from benchmarks import common
fit = common.fitted_exponent(common.exponent_points(sys.argv[1], "cpu"))
print(json.dumps({"k": fit.exponent, "low": fit.ci_low, "high": fit.ci_high}))
"""


BENCH = r"^bench_attention\.Forward\.time_forward"  # what the timing gate runs (all its parameters)


def timing_command(base: str, head: str, factor: float, bench: str = BENCH, config: Path | None = None) -> list[str]:
    """The timing gate's ``asv continuous`` command (tools/asv_detection.py measures this same command)."""
    where = ["--config", str(config)] if config is not None else []
    return ["asv", "continuous", *where, "--interleave-rounds", "--append-samples", "--no-only-changed", "--split",
            "--show-stderr", "--factor", str(factor), "-b", bench, base, head]


def timing_gate(base: str, head: str, factor: float) -> int:
    cmd = timing_command(base, head, factor)
    print("timing gate: " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, check=False).returncode


def exponent(copy: Path, kernel: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(copy), TORCH_EXTENSIONS_DIR=str(copy.parent / "torch_extensions"))
    proc = subprocess.run([sys.executable, "-c", FIT, kernel], cwd=copy, env=env, capture_output=True, text=True,
                          check=False, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"exponent fit of {kernel} in {copy} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def exponent_gate(base: str, head: str, kernels: list[str], margin: float) -> int:
    repo = repository_root(ROOT)
    copies = {label: export(resolve(spec, repo), repo) for label, spec in (("base", base), ("head", head))}
    failed = 0
    for kernel in kernels:
        fits = {label: exponent(copy, kernel) for label, copy in copies.items()}  # BASE, then HEAD
        b, h = fits["base"], fits["head"]
        bad = h["low"] > b["high"] + margin
        failed |= bad
        print(f"exponent gate {kernel}: BASE {b['k']:.2f} [{b['low']:.2f}, {b['high']:.2f}]  HEAD {h['k']:.2f} "
              f"[{h['low']:.2f}, {h['high']:.2f}]  {'FAIL' if bad else 'ok'} (fails when HEAD low > BASE high + "
              f"{margin})", flush=True)
    return int(failed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="*", default=["main", "HEAD"], metavar="REV")
    parser.add_argument("--factor", type=float, default=FACTOR)
    parser.add_argument("--margin", type=float, default=MARGIN)
    parser.add_argument("--kernels", default="polynomial,exact")
    args = parser.parse_args()
    if len(args.revisions) != 2:
        parser.error(f"give BASE and HEAD (got {args.revisions})")
    base, head = args.revisions
    timing = timing_gate(base, head, args.factor)
    try:
        exponents = exponent_gate(base, head, args.kernels.split(","), args.margin)
    except (RuntimeError, ValueError, OSError) as err:
        print(f"exponent gate could not run: {err}", file=sys.stderr)
        exponents = 2
    print(f"timing gate: exit {timing}; exponent gate: exit {exponents}")
    if 1 in (timing, exponents):
        return 1  # a regression found by either gate
    return 0 if (timing, exponents) == (0, 0) else 2  # else a gate that could not run

if __name__ == "__main__":
    sys.exit(main())
