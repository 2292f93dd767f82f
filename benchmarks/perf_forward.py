"""Forward performance of polynomial attention vs torch SDPA (flash) in one CPU process.

A thin wrapper over the measurement code every sweep uses: each (kernel, n, d) is a
:class:`ditbench.measure.cases.Case`, built and scored by its workload (seeded U[−B, B] inputs,
float64 exact reference on ``--check-rows`` seeded query rows, the uniform baseline) and timed
by :func:`ditbench.measure.timing.time_interleaved` — all kernels and a float32 matmul (the
machine's rate, measured in the same rounds) interleaved, so they see the same load and their
ratios are fair. Rows carry the results schema's columns (``impl`` says which polynomial
implementation ran) plus GFLOP/s from theory's cost model. With several sizes per d, the
crossover n* with SDPA comes from :func:`ditbench.fit.crossover` on the two fitted power laws.

Setting (issue 18): n = m = 2^17, d = dv = 8, U[−1, 1], scale = 1/d, eps = 1e-3, float32, 2 threads:

    PYTHONPATH=. python benchmarks/perf_forward.py [--n 131072] [--d 8] [--json perf_forward.json]
    PYTHONPATH=. python benchmarks/perf_forward.py --n 256 1024 4096 16384 --d 8 16 32 64   # crossovers

OpenMP wait policy: on a shared, oversubscribed machine GNU OpenMP's spin-waiting makes every
parallel region wait for a descheduled peer, which punishes kernels made of many mid-sized ops.
The script sets OMP_WAIT_POLICY=PASSIVE (unless already set) *before* torch loads, for every
kernel alike, and records it. Nothing runs at import (asv imports files under benchmarks/).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
from typing import Any

KERNELS = {  # label → (registered kernel, parameters beyond eps)
    "polynomial": ("polynomial", {"impl": "auto"}),  # fused C++ where it builds, else torch
    "polynomial[torch]": ("polynomial", {"impl": "torch"}),  # the pure-torch fallback
    "sdpa": ("sdpa", {}),
}
MATMUL = 2048  # float32 (MATMUL × MATMUL) @ (MATMUL × MATMUL): the machine's rate in the same rounds


def cpu_model() -> str:
    """lscpu's model name (platform.processor() is empty on Linux)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def executed_gflop(row: dict[str, Any]) -> float:
    """GFLOP one call executes, from theory's cost model at the degree that ran (the registry's
    predicted_flops uses the problem's worst-case radius scale·d·B², often a higher degree)."""
    from ditbench import theory

    if row["kernel"] != "polynomial":
        return row["predicted_flops"] / 1e9
    fused = row["impl"] == "fused"
    return theory.polynomial_forward_cost(row["n"], row["m"], row["d"], row["dv"], row["degree"], fused=fused,
                                          virtual_top=fused, factored=not fused).flops / 1e9


def measure_group(n: int, d: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One (n, d): every kernel built, scored and timed interleaved with the matmul."""
    import torch

    from ditbench import theory
    from ditbench.attention import KERNELS as REGISTRY
    from ditbench.expapprox import minimal_approx
    from ditbench.measure.cases import Case
    from ditbench.measure.memory import measure_peak
    from ditbench.measure.point import base_row
    from ditbench.measure.timing import time_interleaved
    from ditbench.measure.family import get_family

    calls, rows = {}, {}
    for label in args.kernels:
        name, extra = KERNELS[label]
        params = {**extra, "eps": args.eps} if name == "polynomial" else extra
        case = Case(experiment="perf_forward", kernel=name, op="forward", n=n, m=n, d=d, dv=d, bound=1.0,
                    bound_spec="1", scale=1.0 / d, scale_spec="1/d", params=tuple(sorted(params.items())),
                    dtype="float32", device="cpu", seed=args.seed, threads=args.threads, ref_rows=args.check_rows)
        prepared = get_family(case.workload).prepare(case)
        out, peak, mem_method = measure_peak(prepared.call, "cpu")  # first call: warm-up and the checked output
        metrics = prepared.score(out)
        del out
        row = {**base_row(case), **metrics, "label": label, "peak_bytes": peak, "mem_method": mem_method}
        if name == "polynomial":  # degree and rank at the inputs' realised radius (what ran)
            info = REGISTRY[name].describe(case.problem(), {**REGISTRY[name].resolved_params(params),
                                                            "radius": metrics["radius"]})
            v_max = float(case.value_bound)
            approx = minimal_approx(info["radius"], args.eps)
            row.update(degree=info["degree"], rank=info["rank"], impl=info["impl"],
                       realised_rel_error=approx.relative_error,
                       bound_exact_arithmetic=theory.output_error_bound(approx.relative_error, v_max))
        rows[label], calls[label] = row, prepared.call
    a = torch.rand(MATMUL, MATMUL)
    calls["matmul"] = lambda: a @ a
    min_time = {label: (args.sdpa_min_time if label == "sdpa" else args.poly_min_time) for label in calls}
    timed = time_interleaved(calls, rounds=args.rounds, threads=args.threads, min_run_time=min_time)
    rate = 2 * MATMUL**3 / timed["matmul"].median_s / 1e9
    for label, row in rows.items():
        t = timed[label]
        gflop = executed_gflop(row)
        row.update(median_s=t.median_s, iqr_s=t.iqr_s, repeats=t.repeats, calls_per_block=t.calls_per_block,
                   samples=list(t.samples), gflop=gflop, gflops=gflop / t.median_s, matmul_gflops=rate,
                   share_of_matmul=gflop / t.median_s / rate, status="ok")
    return list(rows.values())


def crossovers(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per d: n* where polynomial's fitted power law drops below SDPA's (ditbench.fit.crossover)."""
    from dataclasses import asdict

    from ditbench.fit import InsufficientDataError, crossover, fit_power_law

    out: dict[int, dict[str, Any]] = {}
    for d in sorted({r["d"] for r in rows}):
        sel = {lab: [r for r in rows if r["d"] == d and r["label"] == lab] for lab in ("polynomial", "sdpa")}
        try:
            fits = {lab: fit_power_law([r["n"] for r in rs], [r["median_s"] for r in rs], min_sizes=3)
                    for lab, rs in sel.items()}
        except (InsufficientDataError, ValueError) as err:
            out[d] = {"status": "not fitted", "reason": str(err)}
            continue
        c = crossover(fits["polynomial"], fits["sdpa"])
        out[d] = {**asdict(c), "k_polynomial": fits["polynomial"].exponent, "k_sdpa": fits["sdpa"].exponent}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2**17], help="queries = keys (default 2^17)")
    ap.add_argument("--d", type=int, nargs="+", default=[8], help="head dims d = dv (default 8)")
    ap.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    ap.add_argument("--eps", type=float, default=1e-3, help="relative error target of P ≈ exp")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check-rows", type=int, default=1024, help="query rows checked against float64")
    ap.add_argument("--poly-min-time", type=float, default=1.0, help="blocked_autorange min_run_time per round, s")
    ap.add_argument("--sdpa-min-time", type=float, default=0.5, help="blocked_autorange min_run_time per round, s")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    ap.add_argument("--json", metavar="PATH", help="also write rows and metadata as JSON")
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see the module docstring; before torch loads
    import torch

    from ditbench.attention import fused

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = [row for d in args.d for n in args.n for row in measure_group(n, d, args)]
    result = {
        "rows": rows, "crossover": crossovers(rows) if len(args.n) >= 3 else {},
        "setting": {"inputs": "U[-1, 1]", "scale": "1/d", "eps": args.eps, "dtype": "float32",
                    "threads": args.threads, "seed": args.seed, "rounds": args.rounds,
                    "omp_wait_policy": os.environ["OMP_WAIT_POLICY"]},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version(), "loadavg_before": load_before,
                    "loadavg_after": os.getloadavg(), "fused": fused.available(),
                    "fused_unavailable_reason": fused.unavailable_reason()},
    }
    print_table(result)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2, default=str)
    return result


def print_table(result: dict[str, Any]) -> None:
    m, s = result["machine"], result["setting"]
    print(f"{m['cpu']}, {s['threads']} threads, OMP_WAIT_POLICY={s['omp_wait_policy']}, load average "
          f"{m['loadavg_before'][0]:.1f} → {m['loadavg_after'][0]:.1f}; inputs {s['inputs']}, scale {s['scale']}, "
          f"eps {s['eps']}, float32")
    print(f"{'d':>3} {'n':>7} {'kernel':<18} {'impl':<6} {'g':>2} {'rank':>6} {'median s':>10} {'IQR s':>9} "
          f"{'runs':>4} {'GFLOP/s':>8} {'of mm':>6} {'err_max':>9} {'bound':>9} {'vs SDPA':>8}")
    for r in result["rows"]:
        sdpa = next((x for x in result["rows"] if x["label"] == "sdpa" and x["n"] == r["n"] and x["d"] == r["d"]), None)
        ratio = f"{sdpa['median_s'] / r['median_s']:8.1f}×" if sdpa is not None and r is not sdpa else " " * 9
        bound = r.get("bound_exact_arithmetic")
        print(f"{r['d']:>3} {r['n']:>7} {r['label']:<18} {r.get('impl') or '-':<6} {r.get('degree') or '-':>2} "
              f"{r.get('rank') or '-':>6} {r['median_s']:>10.4f} {r['iqr_s']:>9.4f} {r['repeats']:>4} "
              f"{r['gflops']:>8.1f} {r['share_of_matmul']:>6.0%} {r['err_max']:>9.2e} "
              f"{'-' if bound is None else f'{bound:.2e}':>9} {ratio}")
    for r in result["rows"][:1]:
        print(f"float32 matmul in the same rounds: {r['matmul_gflops']:.1f} GFLOP/s; uniform answer err "
              f"{r['err_uniform']:.2e}")
    for d, c in result["crossover"].items():
        if "n_star" in c:
            n_star = "none" if c["n_star"] is None else f"{c['n_star']:.0f}"
            print(f"d = {d}: crossover n* = {n_star} ({c['status']}; 95% [{c['low']}, {c['high']}]; "
                  f"slopes polynomial {c['k_polynomial']:.2f}, sdpa {c['k_sdpa']:.2f})")
        else:
            print(f"d = {d}: {c['status']}: {c['reason']}")
    if not math.isfinite(result["rows"][0]["median_s"]):
        print("(a timing is not finite)")


if __name__ == "__main__":
    main()
