"""One prepared GPU run: check every CUDA kernel, time the polynomial kernels against SDPA flash.

    PYTHONPATH=. python benchmarks/gpu_check.py [--json gpu_check.json] [--budget-s 270]

Installs nothing and needs only what ditbench needs (torch with CUDA, triton for
polynomial_triton). Three phases, all against one wall-clock budget (default 270 s, so the run
ends well inside 5 minutes, including CUDA/Triton start-up):

1. **Correctness** of every registered kernel that supports CUDA (forward and backward), at a small
   size, against a float64 exact reference computed on the GPU. Exact kernels must be within
   2× a naive same-precision baseline's error (plus one unit roundoff of ‖V‖); polynomial
   kernels within theory.output_error_bound, 2ε/(1+√(1−ε²))·‖V‖_max, plus
   theory.rounding_error_bound; others (peers, uniform) are run, must be finite, and have their
   error recorded (no bound is claimed for them).
2. **Timing** of polynomial_triton (float32), polynomial (torch, float32) and sdpa_flash
   (bfloat16: flash has no float32 kernel; sdpa in float32 is timed too) at n = 2^12..2^20 and
   d = 8, 16, 32, 64, U[−1, 1], scale 1/d, eps 1e-3: device time from CUDA events with L2
   flushed between calls (ditbench.measure.timing.cuda_event_timing), peak CUDA memory, and the
   error on a seeded 256-row subset. Each point is budgeted: its time is predicted from the same
   kernel's previous size (× the cost model's ratio), and a point whose predicted cost does not
   fit the per-point cap or the remaining budget is skipped with the reason, as are the larger
   sizes after it.
3. One JSON (``--json``) with the card's name, versions, every check and every timing.

Without a CUDA device it prints why and exits with status 0, having done nothing. ``--device cpu``
(with TRITON_INTERPRET=1 set, tiny ``--sizes``) runs the same code paths on CPU for the tests.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from typing import Any

TIMED = ("polynomial_triton", "polynomial", "sdpa_flash", "sdpa")
DTYPES = {"polynomial_triton": "float32", "polynomial": "float32", "sdpa_flash": "bfloat16", "sdpa": "float32"}
REF_ROWS = 256


class Clock:
    """perf_counter stand-in for torch.cuda.Event on CPU (``--device cpu``, tests only)."""

    def record(self) -> None:
        self.t = time.perf_counter()

    def elapsed_time(self, other: Clock) -> float:
        return (other.t - self.t) * 1e3  # milliseconds, as torch.cuda.Event


def device_time(fn: Any, device: str, min_run_time: float) -> Any:
    from ditbench.measure.timing import cuda_event_timing, event_timing

    if device == "cuda":
        return cuda_event_timing(fn, min_run_time=min_run_time, min_repeats=3, max_repeats=200)
    return event_timing(fn, event=Clock, synchronize=lambda: None, flush=lambda: None,
                        min_run_time=min_run_time, min_repeats=3, max_repeats=20)


def inputs(n: int, d: int, dtype: Any, device: str, seed: int) -> tuple[Any, Any, Any]:
    """q, k, v ~ U[−1, 1] of shape (1, 1, n, d), generated on the device (cheap at 2^20)."""
    import torch

    gen = torch.Generator(device=device).manual_seed(seed)
    return tuple((torch.rand(1, 1, n, d, generator=gen, device=device) * 2 - 1).to(dtype) for _ in range(3))


def reference(q: Any, k: Any, v: Any, scale: float, rows: Any) -> Any:
    """float64 exact attention on ``rows`` of q, on q's device: (1, 1, len(rows), dv)."""
    from ditbench.attention import exact_attention

    return exact_attention(q[..., rows, :].double(), k.double(), v.double(), scale=scale)


def polynomial_tolerance(q: Any, k: Any, v: Any, scale: float, eps: float) -> float:
    import torch

    from ditbench import theory
    from ditbench.expapprox import minimal_approx

    approx = minimal_approx(theory.logit_radius(q, k, scale), eps)
    v_max = float(v.abs().max())
    u = torch.finfo(torch.float32).eps / 2
    return theory.output_error_bound(approx.relative_error, v_max) + theory.rounding_error_bound(
        u, k.shape[-2], q.shape[-1], approx.degree, approx.condition(), v_max)


def check_kernels(device: str, seed: int, n: int = 1024) -> list[dict[str, Any]]:
    """Phase 1: every registered kernel that supports ``device`` (polynomial_triton on CPU only
    under the interpreter), at n = m (default 1024), d = dv = 8 (backward: the attention gradient)."""
    import torch

    from ditbench import gradient  # noqa: F401  (registers the backward kernels)
    from ditbench.attention import KERNELS, Problem
    from ditbench.measure.cases import TORCH_DTYPES

    checks = []
    d, scale, eps = 8, 1 / 8, 1e-3
    for name, kernel in sorted(KERNELS.items()):
        dtype_name = "bfloat16" if name == "sdpa_flash" else "float32"
        dtype = TORCH_DTYPES[dtype_name]
        problem = Problem(n=n, m=n, d=d, dv=d, dtype=dtype, device=device, bound=1.0, scale=scale)
        reasons = kernel.unsupported_reasons(problem)
        if device == "cpu" and name == "polynomial_triton" and os.environ.get("TRITON_INTERPRET") == "1":
            reasons = [r for r in reasons if "devices" not in r]  # the interpreter runs it on CPU
        row: dict[str, Any] = {"kernel": name, "op": kernel.op, "n": n, "d": d, "dtype": dtype_name}
        if reasons:
            checks.append({**row, "status": "skipped", "reason": "; ".join(reasons)})
            continue
        try:
            checks.append({**row, **(_check_forward(kernel, n, d, scale, eps, dtype, device, seed)
                                     if kernel.op == "forward" else _check_backward(kernel, n, d, device, seed))})
        except Exception as err:  # recorded, never hidden: the JSON says which kernel failed and how
            checks.append({**row, "status": "failed", "reason": f"{type(err).__name__}: {err}"[:500]})
        finally:
            if device == "cuda":
                torch.cuda.synchronize()
    return checks


def _check_forward(kernel: Any, n: int, d: int, scale: float, eps: float, dtype: Any, device: str,
                   seed: int) -> dict[str, Any]:
    import torch

    q, k, v = inputs(n, d, dtype, device, seed)
    rows = torch.arange(n, device=device)
    ref = reference(q, k, v, scale, rows)  # (1, 1, n, d) float64
    params = {"eps": eps} if "eps" in kernel.params else {}
    out = kernel.fn(q, k, v, scale=scale, **params)
    err = float((out.double() - ref).abs().max())
    finite = bool(torch.isfinite(out).all())
    if kernel.exact:  # naive same-precision baseline (flash-attention's test rule)
        naive = torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1) @ v  # (1, 1, n, d) in dtype
        tol = 2 * float((naive.double() - ref).abs().max()) + torch.finfo(dtype).eps / 2 * float(v.abs().max())
        rule = "2 × naive same-precision error + u·‖V‖"
    elif kernel.name.startswith("polynomial"):
        tol = polynomial_tolerance(q.float(), k.float(), v.float(), scale, eps)
        rule = "2ε/(1+√(1−ε²))‖V‖ + rounding bound"
    else:
        tol, rule = math.inf, "none claimed (recorded only)"
    ok = finite and err <= tol
    return {"status": "pass" if ok else "fail", "err_max": err, "tolerance": tol, "rule": rule, "finite": finite,
            "reason": "" if ok else ("non-finite output" if not finite else f"err_max {err:.3g} > {tol:.3g}")}


def _check_backward(kernel: Any, n: int, d: int, device: str, seed: int) -> dict[str, Any]:
    import torch

    from ditbench.gradient import exact_gradient

    gen = torch.Generator(device=device).manual_seed(seed)
    a1, a2, a3, e = ((torch.rand(n, d, generator=gen, device=device) - 0.5) for _ in range(4))
    x = y = torch.eye(d, device=device)
    ref = exact_gradient(a1.double(), a2.double(), a3.double(), x.double(), y.double(), e.double(), scale=1 / d)
    out = kernel.fn(a1, a2, a3, x, y, e, scale=1 / d)
    out = out[0] if isinstance(out, tuple) else out
    err = float((out.double() - ref).abs().max() / ref.abs().max())
    finite = bool(torch.isfinite(out).all())
    return {"status": "pass" if finite else "fail", "err_max_rel": err, "finite": finite,
            "rule": "finite; relative error recorded", "reason": "" if finite else "non-finite output"}


def timing_grid(sizes: list[int], dims: list[int], device: str, deadline: float, point_cap_s: float,
                 min_run_time: float, seed: int) -> list[dict[str, Any]]:
    """Phase 2: the timing grid, each point budgeted (module docstring)."""
    import torch

    from ditbench.attention import KERNELS, Problem
    from ditbench.measure.cases import TORCH_DTYPES
    from ditbench.measure.memory import measure_peak

    rows: list[dict[str, Any]] = []
    for d in dims:
        scale = 1.0 / d
        last: dict[str, tuple[int, float, float]] = {}  # kernel → (n, seconds, flops) of its last timed point
        stopped: dict[str, str] = {}
        for n in sizes:
            base = {n: {dt: inputs(n, d, TORCH_DTYPES[dt], device, seed) for dt in {"float32", "bfloat16"}}}
            q32, k32, v32 = base[n]["float32"]
            rows_idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:REF_ROWS].to(device)
            ref = reference(q32, k32, v32, scale, rows_idx)
            for name in TIMED:
                kernel, dtype_name = KERNELS[name], DTYPES[name]
                q, k, v = base[n][dtype_name]
                row: dict[str, Any] = {"kernel": name, "n": n, "d": d, "dtype": dtype_name, "device": device}
                problem = Problem(n=n, m=n, d=d, dv=d, dtype=TORCH_DTYPES[dtype_name], device=device, bound=1.0,
                                  scale=scale)
                reasons = kernel.unsupported_reasons(problem, {"eps": 1e-3})
                if device == "cpu" and name == "polynomial_triton":
                    reasons = [r for r in reasons if "devices" not in r]
                if device == "cpu" and name == "sdpa_flash":
                    reasons = ["flash attention needs CUDA (CPU test run)"]
                flops = (kernel.predicted_cost(problem, {"eps": 1e-3}).flops if not reasons else math.nan)
                if not reasons and name in stopped:
                    reasons = [stopped[name]]
                if not reasons and name in last:
                    n0, t0, f0 = last[name]
                    predicted = t0 * flops / f0
                    remaining = deadline - time.monotonic()
                    if predicted * 8 > min(point_cap_s, remaining):  # warm-up + ≥ 5 timed calls + check
                        reasons = [f"predicted {predicted:.3g} s per call (from n={n0}: {t0:.3g} s × cost ratio) "
                                   f"does not fit the per-point cap {point_cap_s:g} s or the {remaining:.0f} s left"]
                        stopped[name] = f"skipped after n={n}: " + reasons[0]
                if reasons:
                    rows.append({**row, "status": "skipped", "reason": "; ".join(reasons)})
                    continue
                params = {"eps": 1e-3} if "eps" in kernel.params else {}

                def call(kernel=kernel, q=q, k=k, v=v, params=params, scale=scale) -> Any:
                    return kernel.fn(q, k, v, scale=scale, **params)

                try:
                    out, peak, mem_method = measure_peak(call, device)
                    err = float((out[..., rows_idx, :].double() - ref).abs().max())
                    del out
                    timing = device_time(call, device, min_run_time)
                except torch.OutOfMemoryError as err_:
                    rows.append({**row, "status": "skipped", "reason": f"out of memory: {str(err_).splitlines()[0]}"})
                    stopped[name] = f"skipped after out of memory at n={n}"
                    continue
                except Exception as err_:  # recorded with the reason; the run goes on
                    rows.append({**row, "status": "failed", "reason": f"{type(err_).__name__}: {err_}"[:500]})
                    stopped[name] = f"skipped after a failure at n={n}"
                    continue
                last[name] = (n, timing.median_s, flops)
                rows.append({**row, "status": "ok", "median_s": timing.median_s, "iqr_s": timing.iqr_s,
                             "repeats": timing.repeats, "samples": list(timing.samples), "peak_bytes": peak,
                             "mem_method": mem_method, "err_max": err, "ref_rows": REF_ROWS,
                             "predicted_flops": flops, "tflops": flops / timing.median_s / 1e12,
                             "degree": (KERNELS[name].describe(problem, KERNELS[name].resolved_params(params))
                                        .get("degree") if KERNELS[name].describe else None)})
            del base
            if device == "cuda":
                torch.cuda.empty_cache()
    for r in rows:  # speed-ups against the flash baseline at the same (n, d)
        flash = next((x for x in rows if x["kernel"] == "sdpa_flash" and x["n"] == r["n"] and x["d"] == r["d"]
                      and x["status"] == "ok"), None)
        if flash is not None and r.get("status") == "ok":
            r["speedup_vs_sdpa_flash"] = flash["median_s"] / r["median_s"]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--json", default="gpu_check.json", help="where to write the results (default gpu_check.json)")
    ap.add_argument("--budget-s", type=float, default=270.0, help="wall-clock budget for the whole run, seconds")
    ap.add_argument("--point-cap-s", type=float, default=20.0, help="largest predicted cost of one point, seconds")
    ap.add_argument("--min-run-time", type=float, default=0.05, help="device seconds timed per point")
    ap.add_argument("--sizes", type=int, nargs="+", default=[2**p for p in range(12, 21)])
    ap.add_argument("--dims", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: the tests' dry run")
    ap.add_argument("--check-n", type=int, default=1024, help="tokens of the correctness checks")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    start = time.monotonic()
    deadline = start + args.budget_s

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}, cuda build {torch.version.cuda}); "
              f"nothing was checked or timed and no JSON was written.")
        return 0
    card = (torch.cuda.get_device_name() if args.device == "cuda"
            else f"cpu ({platform.processor() or platform.machine()})")
    print(f"gpu_check on {card}: budget {args.budget_s:.0f} s")
    checks = check_kernels(args.device, args.seed, args.check_n)
    for c in checks:
        print(f"  check {c['kernel']:<28} {c['status']:<8} {c.get('reason', '')}")
    timings = timing_grid(args.sizes, args.dims, args.device, deadline, args.point_cap_s, args.min_run_time,
                           args.seed)
    for r in timings:
        t = f"{r['median_s']:.3e} s  err {r['err_max']:.2e}" if r["status"] == "ok" else r["reason"][:90]
        print(f"  d={r['d']:<3} n={r['n']:<8} {r['kernel']:<18} {r['status']:<8} {t}")
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    result = {
        "card": card, "device": args.device, "torch": torch.__version__, "cuda": torch.version.cuda,
        "triton": triton_version, "python": platform.python_version(), "argv": sys.argv[1:],
        "setting": {"inputs": "U[-1, 1]", "scale": "1/d", "eps": 1e-3, "ref_rows": REF_ROWS,
                    "timer": "cuda_events (L2 flushed)" if args.device == "cuda" else "perf_counter (CPU dry run)"},
        "checks": checks, "timings": timings, "wall_s": time.monotonic() - start,
    }
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=2, default=str)
    failed = [c["kernel"] for c in checks if c["status"] in ("fail", "failed")]
    verdict = f"FAILED checks: {failed}" if failed else "all checks passed"
    print(f"wrote {args.json} in {result['wall_s']:.0f} s; {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
