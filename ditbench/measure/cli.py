"""``ditbench run``: run a preset or config sweep, then fit exponents and build the report.

    ditbench run [--preset NAME | --config FILE] [--out DIR] [--device cpu|cuda] [--threads N]
                 [--resume] [--no-report] [--executor worker|in-process|pool|dask]
                 [--scheduler tcp://HOST:PORT | --workers N]   (--workers: pool or dask)

A preset's ``[defaults]`` table (``threads``, ``executor``, ``workers``; ``order`` for the runner)
sets the options it was designed for (the ``stats`` preset: a pool of 2 one-thread workers); flags
given here win.

Writes DIR/results.csv, DIR/meta.json, DIR/fits.csv (timing fits), DIR/stats_rates.csv (when the
run has stats rows: ditbench.stats.rates) and (unless --no-report) DIR/report/.
Exit status: 0 when every point is ok or skipped, 1 when some point failed or the environment
failed (disk, permissions), 2 on a bad spec or option, 130 when interrupted (ditbench.cli).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._checks import check_out_dir
from .presets import get_preset, preset_names
from ..schema import STATS_COLUMNS
from .spec import EXECUTOR_OPTIONS, Preset, load_config

if TYPE_CHECKING:
    import pandas as pd
# The runner, the executors and the summary (torch, pandas) are imported by main: the parser, and
# so `ditbench run --help`, loads none of them (tests/test_imports.py).

DEFAULT_PRESET = "default"
DEFAULT_THREADS = 2  # the CI machines' core count (DESIGN §6); always recorded per row


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=preset_names(), default=None,
                        help=f"shipped sweep preset (default: {DEFAULT_PRESET})")
    source.add_argument("--config", type=Path, metavar="FILE", help="a TOML sweep file in the preset format")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output directory (default: results/<UTC time>-<preset>)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="override every sweep's device")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch threads per timed call (default: the preset's, else {DEFAULT_THREADS})")
    parser.add_argument("--resume", action="store_true", help="finish the run in --out, skipping recorded points")
    parser.add_argument("--force", action="store_true",
                        help="with --resume: continue even if the spec, preset, threads, device or version differ "
                             "from the stored run (meta.json records both)")
    parser.add_argument("--no-report", action="store_true", help="do not build the HTML report")
    parser.add_argument("--executor", choices=sorted(EXECUTOR_OPTIONS), default=None,
                        help="where points run: a killable worker process (default, unless the preset names "
                             "another), this process (debugging), a pool of --workers N local worker processes "
                             "(untimed workloads), or a Dask cluster (with --scheduler or --workers; docs/measure.md)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="with --executor dask: a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    cluster.add_argument("--workers", type=int, metavar="N",
                         help="with --executor pool: N local worker processes; with --executor dask: a "
                              "LocalCluster of N worker processes, 1 thread each")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from .executor import EXECUTORS
    from .runner import run_sweep
    from .summary import summarize

    preset = load_config(args.config) if args.config else get_preset(args.preset or DEFAULT_PRESET)
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out DIR (the run to finish)")
    if args.force and not args.resume:
        raise ValueError("--force only applies to --resume (continuing a run whose settings differ)")
    out = args.out or Path("results") / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{preset.name}"
    check_out_dir(out)
    apply_defaults(args, preset)
    for line in pool_notes(args, preset):
        print(f"note: {line}", file=sys.stderr)
    args.out = out  # so `kept` (the CLI's report on an interrupt or a fault) names the directory
    with EXECUTORS[args.executor](**executor_options(args)) as executor:
        results = run_sweep(preset, out, threads=args.threads, device=args.device, resume=args.resume,
                            force=args.force, executor=executor, progress=not args.quiet)
    timed = results[results["workload"] != "stats"].drop(columns=list(STATS_COLUMNS))  # stats: rates, not timings
    fits = write_fits(timed, out) if len(timed) else None
    rates = write_rates(results, out)
    print(summarize(results, fits))
    if rates is not None:
        from ..stats.rates import rate_lines

        print("\n".join(rate_lines(rates)))
    written = [out / "results.csv", out / "meta.json"] + ([out / "fits.csv"] if fits is not None else []) + \
        ([out / "stats_rates.csv"] if rates is not None else [])
    print("wrote " + ", ".join(str(path) for path in written))
    if not args.no_report:
        from ..report import build_report  # the next layer, imported only when used

        print(f"report: {build_report([out], out=out / 'report')}")
    return 1 if (results["status"] == "failed").any() else 0


def kept(args: argparse.Namespace) -> str | None:
    """What an interrupted or failed run left in --out, and the command that finishes it."""
    out = getattr(args, "out", None)
    if out is None:
        return None
    results = Path(out) / "results.csv"
    if not results.is_file():
        return f"nothing was written to {out}"
    with results.open(encoding="utf-8", errors="replace") as fh:
        points = max(0, sum(1 for _ in fh) - 1)  # minus the header
    source = f"--config {args.config}" if args.config else f"--preset {args.preset or DEFAULT_PRESET}"
    extra = "".join(f" --{flag} {value}" for flag, value in (("threads", args.threads), ("device", args.device))
                    if value is not None and not (flag == "threads" and value == getattr(args, "preset_threads", None)))
    return f"{points} points kept in {results}; resume with `ditbench run {source} --out {out}{extra} --resume`"


def apply_defaults(args: argparse.Namespace, preset: Preset) -> None:
    """Fill the options not given on the command line from the preset's ``[defaults]``: threads,
    and the executor with its workers (only when the executor is not chosen on the command line)."""
    defaults = preset.defaults
    args.preset_threads = defaults.threads or DEFAULT_THREADS  # what `kept` may leave out of its command
    if args.threads is None:
        args.threads = args.preset_threads
    if args.executor is None:
        args.executor = defaults.executor or "worker"
        if args.workers is None and args.scheduler is None and "workers" in EXECUTOR_OPTIONS[args.executor]:
            args.workers = defaults.workers


def pool_notes(args: argparse.Namespace, preset: Preset) -> list[str]:
    """What a user of a pool should know: concurrent points share the machine."""
    if args.executor != "pool" or not args.workers or args.workers < 2:
        return []
    notes = []
    timed = sorted({spec.experiment for spec in preset.specs if spec.workload != "stats"})
    if timed:
        notes.append(f"{args.workers} pool workers time {', '.join(timed)} side by side: those timings share "
                     f"the machine (meta.json records the executor); use the default executor for timing figures")
    cores = os.cpu_count() or 1
    if args.workers * args.threads > cores:
        notes.append(f"{args.workers} workers × {args.threads} threads exceed this machine's {cores} cores; "
                     f"the workers will slow each other down (try --threads {max(1, cores // args.workers)})")
    return notes


def executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for the chosen executor's factory (pool: workers; dask: scheduler or workers);
    ``args`` has been through :func:`apply_defaults`, which settles the executor."""
    options = {name: getattr(args, name) for name in ("scheduler", "workers") if getattr(args, name) is not None}
    for name in options:
        if name not in EXECUTOR_OPTIONS[args.executor]:
            takes = " or ".join(f"--executor {e}" for e, names in EXECUTOR_OPTIONS.items() if name in names)
            raise ValueError(f"--{name} needs {takes} (the {args.executor} executor takes no --{name})")
    if args.executor == "pool" and options.get("workers") is None:
        raise ValueError("--executor pool needs --workers N (local worker processes)")
    if args.executor == "dask" and not options:
        raise ValueError("--executor dask needs --scheduler tcp://HOST:PORT (a running cluster) or --workers N "
                         "(a local cluster)")
    return options


def write_fits(results: pd.DataFrame, out: Path) -> pd.DataFrame | None:
    """``ditbench.fit.fit_table(results)`` written to ``out/fits.csv`` (None when nothing ran ok)."""
    from ..fit import fit_table  # the next layer, imported only when used

    if not (results["status"] == "ok").any():
        return None
    fits = fit_table(results)
    fits.to_csv(out / "fits.csv", index=False)
    return fits


def write_rates(results: pd.DataFrame, out: Path) -> pd.DataFrame | None:
    """The stats family's fitted rates (ditbench.stats.rates) in ``out/stats_rates.csv``; None
    when the run has no ok stats rows."""
    from ..stats.rates import RATES_FILE, rate_table, stats_rows  # fit layer, imported only when used

    if stats_rows(results).empty:
        return None
    rates = rate_table(results)
    rates.to_csv(out / RATES_FILE, index=False)
    return rates
