"""``ditbench compare BASE HEAD``: is HEAD slower than BASE, per size and asymptotically?

    ditbench compare BASE HEAD [--out DIR] [--config FILE] [--passes N] [--threads N]
                     [--threshold R] [--alpha A] [--exponent-margin M] [--repo DIR] [--no-page]

BASE and HEAD are two results directories (``results.csv`` + ``meta.json``), or two git revisions
of ``--repo`` (default: the repository of the current directory): each revision is exported once
into ``~/.cache/ditbench-compare/<sha>/tree`` (:func:`.sources.export`) and the sweep
(``--config``, default :data:`DEFAULT_SWEEP`) runs on both, ``--passes`` passes each, alternating
(:mod:`.interleave`). Writes ``DIR/sizes.csv``,
``DIR/exponents.csv`` and ``DIR/compare.html``; prints the table.

Exit status: 0 no significant regression; 1 a size significantly slower than ``--threshold`` or a
significantly steeper exponent (also: the environment failed — ditbench.cli); 2 bad arguments;
130 interrupted (the finished passes stay in DIR).
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from .._checks import check_out_dir
from .thresholds import Thresholds

if TYPE_CHECKING:
    import pandas as pd

    from .sources import Revision, Side

DEFAULT_SWEEP = Path(__file__).with_name("sweep.toml")
DEFAULT_PASSES = 10  # from measured A/A pass noise (docs/benchmarks.md, "Choosing --passes and --threshold")
DEFAULTS = Thresholds()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", metavar="BASE", help="results directory or git revision (the reference)")
    parser.add_argument("head", metavar="HEAD", help="results directory or git revision (the candidate)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output directory (default: compare/<UTC time>)")
    parser.add_argument("--config", type=Path, metavar="FILE", default=DEFAULT_SWEEP,
                        help="sweep TOML run on both revisions (default: ditbench/compare/sweep.toml)")
    parser.add_argument("--passes", type=int, default=DEFAULT_PASSES,
                        help=f"passes per revision, interleaved (default {DEFAULT_PASSES})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per timed call (default 1)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="git repository of the revisions (default .)")
    parser.add_argument("--threshold", type=float, default=DEFAULTS.threshold,
                        help=f"slowdown ratio that fails when significant (default {DEFAULTS.threshold}, "
                             "from measured A/A noise: docs/benchmarks.md)")
    parser.add_argument("--alpha", type=float, default=DEFAULTS.alpha,
                        help=f"family-wise error rate of the Holm-corrected size tests (default {DEFAULTS.alpha})")
    parser.add_argument("--exponent-margin", type=float, default=DEFAULTS.exponent_margin,
                        help="fail when the 95%% CI of k_HEAD − k_BASE lies above this "
                             f"(default {DEFAULTS.exponent_margin})")
    parser.add_argument("--no-page", action="store_true", help="do not write compare.html")
    parser.add_argument("--quiet", action="store_true", help="no per-pass progress lines")


def main(args: argparse.Namespace) -> int:
    from .sources import is_results_dir, read_side, repository_root, resolve

    thresholds = Thresholds(args.threshold, args.alpha, args.exponent_margin)
    out = args.out or Path("compare") / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    check_out_dir(out)
    args.out = out
    given = (args.base, args.head)
    dirs = [is_results_dir(spec) for spec in given]
    if all(dirs):
        base, head = (read_side(spec, label) for spec, label in zip(given, ("base", "head")))
    elif any(dirs):
        raise ValueError(f"BASE and HEAD must both be results directories or both revisions; got {given[0]!r} and "
                         f"{given[1]!r}")
    else:
        if args.passes < 2:
            raise ValueError(f"--passes {args.passes} must be ≥ 2")
        if args.threads < 1:
            raise ValueError(f"--threads {args.threads} must be ≥ 1")
        if not args.config.is_file():
            raise ValueError(f"--config {args.config}: no such file")
        repo = repository_root(args.repo)
        revisions = [resolve(spec, repo) for spec in given]
        base, head = _run_revisions(revisions, repo, args)
    return report(base.frame, head.frame, thresholds, out, title=f"ditbench compare {given[0]} {given[1]}",
                  page=not args.no_page)


def _run_revisions(revisions: list[Revision], repo: Path, args: argparse.Namespace) -> tuple[Side, Side]:
    from ..measure import load_config
    from .interleave import Version, run_interleaved
    from .sources import export

    load_config(args.config)  # a bad sweep fails here, before anything is exported
    out: Path = args.out
    versions = [Version(label, r.spec, r.sha, export(r, repo))
                for label, r in zip(("base", "head"), revisions)]
    sides = run_interleaved(versions, args.config.resolve(), out, passes=args.passes, threads=args.threads,
                            say=not args.quiet)
    return sides["base"], sides["head"]


def report(base: pd.DataFrame, head: pd.DataFrame, thresholds: Thresholds, out: Path, *, title: str,
           page: bool = True) -> int:
    """Compare, print, write the tables (and page); 1 when HEAD regressed, else 0."""
    from .page import write_page
    from .stats import compare_exponents, compare_sizes
    from .table import regressions, render

    sizes = compare_sizes(base, head, thresholds)
    if sizes.empty:
        raise ValueError("BASE and HEAD share no measured point (same kernel, settings and n): nothing to compare")
    exponents = compare_exponents(base, head, thresholds)
    out.mkdir(parents=True, exist_ok=True)
    sizes.to_csv(out / "sizes.csv", index=False)
    exponents.to_csv(out / "exponents.csv", index=False)
    text = render(sizes, exponents, thresholds)
    print(text)
    written = [out / "sizes.csv", out / "exponents.csv"]
    if page:
        written.append(write_page(base, head, sizes, exponents, text.splitlines()[-1], out / "compare.html", title))
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if regressions(sizes, exponents) else 0


def kept(args: argparse.Namespace) -> str | None:
    out = getattr(args, "out", None)
    if out is None or not Path(out).exists():
        return None
    passes = sorted(str(p.relative_to(out)) for p in Path(out).glob("*/pass-*/results.csv"))
    return f"{len(passes)} finished pass(es) kept under {out}" if passes else f"nothing measured in {out}"
