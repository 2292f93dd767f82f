"""Thin command-line front end: ``ditbench run | fit | report | criteria | compare``.

Each subcommand lives in the module that owns its concept and exposes
``add_arguments(parser)`` and ``main(args) -> int`` (and optionally ``kept(args) -> str | None``,
a sentence saying what is on disk, shown when a run is interrupted or the environment fails);
this file only wires them up and owns the one error path every subcommand shares:

=====================================================  ====  =====================================
what happened                                          exit  stderr
=====================================================  ====  =====================================
the user's input is wrong (ValueError, bad arguments)  2     one line: the value and the limit
a kernel refuses the case (errors.KernelRefusal)      2     one line: the reason
the environment failed (OSError: disk full,            1     one line and what was kept
permission, --out a file), or out of memory
Ctrl-C                                                 130   "interrupted; …kept; resume with …"
a bug (any other exception)                            1     one line naming it, and ``--debug``
=====================================================  ====  =====================================

No traceback reaches the user unless ``--debug`` is given (then the exception propagates).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from .errors import KernelRefusal

# name → (module, one-line help). Modules are imported lazily so `ditbench --help` is fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("ditbench.measure.cli", "run a sweep preset or config; write results, fits and a report"),
    "fit": ("ditbench.fit.cli", "fit complexity exponents to results (CSV, asv or pytest-benchmark)"),
    "report": ("ditbench.report.cli", "build the HTML report site from result directories"),
    "criteria": ("ditbench.dit.cli", "check a latent DiT against the almost-linear criteria"),
    "compare": ("ditbench.compare.cli", "compare two revisions or results directories: per-size ratios, exponents"),
}

EXIT_USAGE = 2  # the user's input is wrong
EXIT_ENVIRONMENT = 1  # disk, permissions, memory — or an internal error
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse's default prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` (default ``sys.argv[1:]``) imports its
    module and adds its arguments, so ``ditbench --help`` imports no subcommand at all."""
    parser = _Parser(prog="ditbench", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    words = sys.argv[1:] if argv is None else argv
    chosen = next((w for w in words if not w.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # SUPPRESS: `ditbench --debug run` and `ditbench run --debug` both work.
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of any error")
        if chosen == name:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_main=module.main, _kept=getattr(module, "kept", None))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    prog = f"ditbench {args.command}"
    if args.debug:
        return int(args._main(args) or 0)
    try:
        return int(args._main(args) or 0)
    except KeyboardInterrupt:
        _say(prog, "interrupted" + _kept(args._kept, args, "; "))
        return EXIT_INTERRUPTED
    except ValueError as err:  # every user-input check raises ValueError naming the value and the limit
        _say(prog, f"error: {_one_line(err)}")
        return EXIT_USAGE
    except KernelRefusal as err:  # unsupported here (memory, dtype, radius), with the reason
        _say(prog, f"refused: {_one_line(err)}")
        return EXIT_USAGE
    except OSError as err:
        _say(prog, f"{_describe_os_error(err)}{_kept(args._kept, args, '; ')}")
        return EXIT_ENVIRONMENT
    except MemoryError as err:
        _say(prog, f"out of memory ({_one_line(err) or 'allocation failed'}){_kept(args._kept, args, '; ')}")
        return EXIT_ENVIRONMENT
    except Exception as err:  # noqa: BLE001 — a bug: one line here, the traceback with --debug
        _say(prog, f"internal error: {type(err).__name__}: {_one_line(err)} (rerun with --debug for the "
                   f"traceback){_kept(args._kept, args, '; ')}")
        return EXIT_ENVIRONMENT


def _say(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr)


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def _describe_os_error(err: OSError) -> str:
    """``cannot write 'out/results.csv': No space left on device`` (no errno numbers, no traceback)."""
    what = err.strerror or _one_line(err) or type(err).__name__
    names = [str(name) for name in (err.filename, err.filename2) if name is not None]
    return f"{what}: {' → '.join(repr(n) for n in names)}" if names else what


def _kept(hook: Callable[[Any], str | None] | None, args: argparse.Namespace, sep: str) -> str:
    """The subcommand's own sentence about what is on disk (never raises: we are already failing)."""
    if hook is None:
        return ""
    try:
        text = hook(args)
    except Exception:  # noqa: BLE001 — the report of what was kept must not mask the real error
        return ""
    return f"{sep}{text}" if text else ""


if __name__ == "__main__":
    sys.exit(main())
