"""The pytest-benchmark gate (``tox -e bench-pytest``): the suite's short mode on BASE, saved, then
on HEAD, compared, failing when any benchmark's median grew by more than ``--fail``.

    python tools/bench_pytest.py [BASE HEAD] [--fail PERCENT] [--storage DIR]

Each revision is exported (:func:`ditbench.compare.sources.export`, cached per commit) and the
suite runs in a fresh process with that copy on ``PYTHONPATH`` (so BASE's numbers are BASE's
code), BASE first with ``--benchmark-save``, then HEAD with ``--benchmark-compare`` and
``--benchmark-compare-fail=median:PERCENT%``. pytest-benchmark fails the HEAD run when a
benchmark's median exceeds the saved one by more than PERCENT; the exit status is HEAD's
pytest's (1 on a regression or a failing benchmark, 0 otherwise; 2 when BASE could not run).

Why :data:`FAIL_PERCENT`: docs/benchmarks.md, "pytest-benchmark gate" — measured A/A and injected
runs of the short mode on the shared 2-core VM (``tools/detection.py --pytest-gate``).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ditbench.compare.sources import export, repository_root, resolve  # noqa: E402

SHORT_MODE = ["benchmarks/pytest_suite", "-m", "not large", "--benchmark-max-time=0.1", "--benchmark-min-rounds=3",
              "-q", "-p", "no:cacheprovider"]  # the CI short mode (tox -e ci)
# Measured (docs/benchmarks.md, "pytest-benchmark gate" and the session-4 detection table): over
# 16 A/A comparisons of the short mode on the loaded 2-core VM the largest median ratio among the
# suite's benchmarks reached 1.98 (the µs-scale uniform forward), so 100 % is the smallest round
# margin above every A/A ratio measured (80 %, chosen from the first 6, cried wolf once in the
# next 10); at it injected 2× and 4× heads failed 8 of 8 and 1.3× 2 of 20.
FAIL_PERCENT = 100.0


def run_suite(copy: Path, storage: Path, extra: list[str]) -> int:
    env = dict(os.environ, PYTHONPATH=str(copy), TORCH_EXTENSIONS_DIR=str(copy.parent / "torch_extensions"))
    cmd = [sys.executable, "-m", "pytest", *SHORT_MODE, f"--benchmark-storage=file://{storage}", *extra]
    print("pytest-benchmark gate: " + " ".join(cmd[1:]) + f"   (in {copy})", flush=True)
    return subprocess.run(cmd, cwd=copy, env=env, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="*", default=["main", "HEAD"], metavar="REV")
    parser.add_argument("--fail", type=float, default=FAIL_PERCENT, metavar="PERCENT",
                        help=f"fail when a median grows by more than this many per cent (default {FAIL_PERCENT:g})")
    parser.add_argument("--storage", type=Path, help="pytest-benchmark storage (default: a temporary directory)")
    args = parser.parse_args()
    if len(args.revisions) != 2:
        parser.error(f"give BASE and HEAD (got {args.revisions})")
    if not args.fail > 0:
        parser.error(f"--fail {args.fail} must be a positive percentage")
    try:
        repo = repository_root(ROOT)
        base, head = (export(resolve(spec, repo), repo) for spec in args.revisions)
    except (ValueError, OSError) as err:
        print(f"bench_pytest: {err}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-pytest-") as tmp:
        storage = args.storage or Path(tmp)
        if run_suite(base, storage, ["--benchmark-save=base"]) != 0:
            print("bench_pytest: the BASE run failed (see above): nothing to compare", file=sys.stderr)
            return 2
        code = run_suite(head, storage, ["--benchmark-compare", f"--benchmark-compare-fail=median:{args.fail:g}%"])
    print(f"pytest-benchmark gate (median:{args.fail:g}%): exit {code}")
    return 1 if code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
