"""Thin command-line front end: ``ditbench run | fit | report | criteria``.

Each subcommand lives in the module that owns its concept and exposes
``add_arguments(parser)`` and ``main(args) -> int``; this file only wires them up.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name → (module, one-line help). Modules are imported lazily so `ditbench --help` is fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("ditbench.measure.cli", "run a sweep preset or config; write results, fits and a report"),
    "fit": ("ditbench.fit.cli", "fit complexity exponents to results (CSV, asv or pytest-benchmark)"),
    "report": ("ditbench.report.cli", "build the HTML report site from result directories"),
    "criteria": ("ditbench.dit.cli", "check a latent DiT against the almost-linear criteria"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` (default ``sys.argv[1:]``) imports its
    module and adds its arguments, so ``ditbench --help`` imports no subcommand at all."""
    parser = argparse.ArgumentParser(prog="ditbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    words = sys.argv[1:] if argv is None else argv
    chosen = next((w for w in words if not w.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if chosen == name:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    return int(args._main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
