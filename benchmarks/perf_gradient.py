"""Almost-linear attention gradients vs the exact closed form (DESIGN §3.2, E4), in one process.

A thin wrapper over the measurement code every sweep uses: each (route, n) is a backward
:class:`ditbench.measure.cases.Case` — inputs from the backward workload (a1, a2 ~ U[−B, B],
a3, e ~ U[−value_bound, value_bound], X = Y = I so the logits are the forward problem's), scored
against the float64 ``exact_gradient`` with the uniform-attention gradient as the trivial
baseline — and all routes of one n are timed interleaved by
:func:`ditbench.measure.timing.time_interleaved`, so their ratios see the same load.

    PYTHONPATH=. python benchmarks/perf_gradient.py [--n 16384 65536] [--threads 2] [--json out.json]

Setting: d = 4, B = value_bound = 0.5, scale = 1/d, eps = 1e-3, float32. Nothing runs at import.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from typing import Any

ROUTES = {  # label → (registered backward kernel, parameters)
    "exact_gradient": ("exact_gradient", {}),
    "lowrank_gradient[paper]": ("lowrank_gradient", {"q_factor": "paper"}),
    "lowrank_gradient[direct]": ("lowrank_gradient", {"q_factor": "direct"}),
    "polynomial_autograd_gradient": ("polynomial_autograd_gradient", {}),
}


def measure_n(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    from ditbench.measure.cases import Case
    from ditbench.measure.memory import measure_peak
    from ditbench.measure.point import base_row
    from ditbench.measure.timing import time_interleaved
    from ditbench.measure.family import get_family

    rows, calls = {}, {}
    for label in args.routes:
        name, extra = ROUTES[label]
        params = {**extra, "eps": args.eps} if name != "exact_gradient" else extra
        case = Case(experiment="perf_gradient", kernel=name, op="backward", n=n, m=n, d=args.d, dv=args.d,
                    bound=args.bound, bound_spec=str(args.bound), scale=1.0 / args.d, scale_spec="1/d",
                    params=tuple(sorted(params.items())), dtype="float32", device="cpu", seed=args.seed,
                    threads=args.threads, value_bound=args.bound)
        prepared = get_family(case.workload).prepare(case)
        out, peak, mem_method = measure_peak(prepared.call, "cpu")
        rows[label] = {**base_row(case), **prepared.score(out), "label": label, "peak_bytes": peak,
                       "mem_method": mem_method}
        calls[label] = prepared.call
    timed = time_interleaved(calls, rounds=args.rounds, threads=args.threads,
                             min_run_time={label: args.min_run_time for label in calls})
    exact = timed["exact_gradient"].median_s if "exact_gradient" in timed else None
    for label, row in rows.items():
        t = timed[label]
        row.update(median_s=t.median_s, iqr_s=t.iqr_s, repeats=t.repeats, calls_per_block=t.calls_per_block,
                   samples=list(t.samples), status="ok",
                   speedup_vs_exact=None if exact is None else exact / t.median_s)
    return list(rows.values())


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2**14, 2**16], help="sequence lengths")
    ap.add_argument("--d", type=int, default=4)
    ap.add_argument("--bound", type=float, default=0.5, help="entry bound B of a1, a2 (and of a3, e)")
    ap.add_argument("--eps", type=float, default=1e-3)
    ap.add_argument("--routes", nargs="+", default=list(ROUTES), choices=list(ROUTES))
    ap.add_argument("--threads", type=int, default=2, help="torch threads (fixed and recorded)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    ap.add_argument("--min-run-time", type=float, default=0.5, help="blocked_autorange seconds per route and round")
    ap.add_argument("--json", type=str, default=None, help="write rows and run metadata here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    rows = [row for n in args.n for row in measure_n(n, args)]
    print(f"{'n':>6} {'route':<30} {'degree':>6} {'median_s':>9} {'iqr_s':>8} {'rep':>4} {'speedup':>8} "
          f"{'err_rel':>9} {'vs_unif':>8}")
    for r in rows:
        speed = "-" if r["speedup_vs_exact"] is None else f"{r['speedup_vs_exact']:.1f}"
        print(f"{r['n']:>6} {r['label']:<30} {r.get('degree') or '-':>6} {r['median_s']:>9.4f} {r['iqr_s']:>8.4f} "
              f"{r['repeats']:>4} {speed:>8} {r['err_max_rel']:>9.2e} {r['err_vs_uniform']:>8.2e}")
    if args.json:
        meta = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
                "cpu_count": os.cpu_count(), "threads": args.threads, "loadavg_before": load,
                "loadavg_after": os.getloadavg(), "argv": vars(args)}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2, default=str)
    return rows


if __name__ == "__main__":
    main()
