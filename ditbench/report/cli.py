"""``ditbench report RESULTS_DIR... [--out DIR]``: build the static HTML report site."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._checks import check_out_dir

DEFAULT_OUT = Path("site")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULTS_DIR",
                        help="run directories, each holding results.csv (and meta.json, fits.csv)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"site directory to write (default: {DEFAULT_OUT}/); serve it with "
                             "`python -m http.server -d DIR`")


def main(args: argparse.Namespace) -> int:
    from .site import build_report  # plotly, statsmodels: not for `ditbench report --help`

    check_out_dir(args.out)
    try:
        index = build_report(list(args.results), args.out)
    except ValueError as err:  # unreadable or malformed result files: say which, exit non-zero
        print(f"ditbench report: {err}", file=sys.stderr)
        return 2
    print(f"report written: {index}")
    return 0
