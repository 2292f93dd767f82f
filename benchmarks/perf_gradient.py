"""Almost-linear attention gradients vs the exact closed form (issue 3, DESIGN §3.2, E4).

A standalone script (asv imports files under benchmarks/, so nothing runs at import):

    PYTHONPATH=. python benchmarks/perf_gradient.py [--n 16384 65536] [--threads 2] [--json out.json]

Setting (the issue's): d = 4, entries U[−0.5, 0.5], scale = 1/d, eps = 1e-3, float32. Every route
is timed with torch.utils.benchmark.Timer (median and IQR) in one process, and its max-entry
error is measured against a float64 exact_gradient (up to --reference-max-n; beyond it against
the float32 exact_gradient, whose own error is ~1e-6 relative — stated in the `reference` column).
err_uniform is the error of the trivial O(n·d²) answer (lowrank_gradient at degree 0: uniform
attention), so every error sits beside its baseline (DESIGN §2).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

import torch
from torch.utils import benchmark

from ditbench.gradient import exact_gradient, lowrank_gradient, polynomial_autograd_gradient


@dataclass(frozen=True)
class Route:
    """One gradient routine as the benchmark runs it (kwargs beyond the six inputs and scale)."""

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    rank: Callable[[Any], str]  # info → rank description


ROUTES = [
    Route("lowrank_gradient[paper]", lowrank_gradient, {"q_factor": "paper"},
          lambda i: f"g={i.degree} k1={i.k1} k2={i.k2} k3={i.k3}"),
    Route("lowrank_gradient[direct]", lowrank_gradient, {"q_factor": "direct"},
          lambda i: f"g={i.degree} k1={i.k1} k2={i.k2} k3={i.k3}"),
    Route("polynomial_autograd_gradient", polynomial_autograd_gradient, {},
          lambda i: f"g={i.degree} r={i.rank}"),
]


def make_inputs(n: int, d: int, seed: int) -> tuple[torch.Tensor, ...]:
    """A1, A2, A3, E (n, d) and X, Y (d, d), U[−0.5, 0.5], float32."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(n, d), (n, d), (n, d), (d, d), (d, d), (n, d)]
    return tuple(torch.rand(*s, generator=gen) - 0.5 for s in shapes)


def measure_call(stmt: Callable[[], Any], threads: int, *, repeats: int | None, min_run_time: float):
    """(median s, IQR s, number of timings, last output): `repeats` single calls (slow routes,
    whose last output is kept so that it need not be recomputed) or blocked_autorange."""
    last: dict[str, Any] = {}
    timer = benchmark.Timer(stmt="last['out'] = stmt()", globals={"stmt": stmt, "last": last}, num_threads=threads)
    if repeats is None:
        m = timer.blocked_autorange(min_run_time=min_run_time)
    else:
        m = benchmark.Measurement.merge([timer.timeit(1) for _ in range(repeats)])[0]
    return m.median, m.iqr, len(m.times), last["out"]


def run(ns: list[int], d: int, eps: float, threads: int, seed: int, exact_repeats: list[int],
        reference_max_n: int, min_run_time: float) -> list[dict[str, Any]]:
    torch.set_num_threads(threads)
    rows: list[dict[str, Any]] = []
    for n, reps in zip(ns, exact_repeats):
        args = make_inputs(n, d, seed)
        scale = 1.0 / d
        t_exact, iqr_exact, r_exact, out_exact = measure_call(lambda: exact_gradient(*args, scale=scale), threads,
                                                           repeats=reps, min_run_time=min_run_time)
        if n <= reference_max_n:
            ref, ref_name = exact_gradient(*(t.double() for t in args), scale=scale), "float64 exact_gradient"
        else:
            ref, ref_name = out_exact.double(), "float32 exact_gradient"
        size = ref.abs().max().item()
        err_uniform = (lowrank_gradient(*args, scale=scale, degree=0).double() - ref).abs().max().item()

        def row(kernel: str, rank: str, t: float, iqr: float, reps_: int, out: torch.Tensor) -> dict[str, Any]:
            err = (out.double() - ref).abs().max().item()
            return {"n": n, "d": d, "kernel": kernel, "rank": rank, "median_s": t, "iqr_s": iqr, "repeats": reps_,
                    "speedup_vs_exact": t_exact / t, "err_max": err, "err_max_rel": err / size,
                    "err_uniform": err_uniform, "err_vs_uniform": err / err_uniform, "reference": ref_name,
                    "eps": eps, "scale": scale, "dtype": "float32", "threads": threads, "seed": seed}

        rows.append(row("exact_gradient", "-", t_exact, iqr_exact, r_exact, out_exact))
        for route in ROUTES:
            out, info = route.fn(*args, scale=scale, eps=eps, return_info=True, **route.kwargs)
            t, iqr, reps_, _ = measure_call(lambda: route.fn(*args, scale=scale, eps=eps, **route.kwargs), threads,
                                      repeats=None, min_run_time=min_run_time)
            rows.append(row(route.name, route.rank(info), t, iqr, reps_, out))
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'n':>6} {'kernel':<30} {'rank':<26} {'median_s':>9} {'iqr_s':>8} {'rep':>4} {'speedup':>8} "
            f"{'err_rel':>9} {'vs_unif':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['n']:>6} {r['kernel']:<30} {r['rank']:<26} {r['median_s']:>9.4f} {r['iqr_s']:>8.4f} "
              f"{r['repeats']:>4} {r['speedup_vs_exact']:>8.1f} {r['err_max_rel']:>9.2e} {r['err_vs_uniform']:>8.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2**14, 2**16], help="sequence lengths")
    parser.add_argument("--d", type=int, default=4)
    parser.add_argument("--eps", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (fixed and recorded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-repeats", type=int, nargs="+", default=[5, 1],
                        help="single-call repeats of exact_gradient per n (the last value repeats)")
    parser.add_argument("--reference-max-n", type=int, default=2**14,
                        help="largest n with a float64 reference (above: the float32 exact_gradient)")
    parser.add_argument("--min-run-time", type=float, default=2.0, help="seconds per fast route (blocked_autorange)")
    parser.add_argument("--json", type=str, default=None, help="write rows and run metadata here")
    a = parser.parse_args()
    reps = (a.exact_repeats + [a.exact_repeats[-1]] * len(a.n))[: len(a.n)]
    rows = run(a.n, a.d, a.eps, a.threads, a.seed, reps, a.reference_max_n, a.min_run_time)
    print_table(rows)
    if a.json:
        meta = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
                "processor": platform.processor(), "cpu_count": os.cpu_count(), "threads": a.threads,
                "loadavg_at_end": os.getloadavg(), "argv": vars(a)}
        with open(a.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
