"""Which reference workload tracks the kernels' drift? A loop probe (docs/measure.md, "The drift reference").

Usage: ``python tools/drift_candidates.py [THREADS [ITERS]]`` (default 2 threads, 40 iterations). For
each kernel at one mid size (sdpa and exact n = 8192 d = 8; exact_gradient 4096; the fast gradients
65536; polynomial 131072): ITERS single calls, each bracketed by three candidate references (matmul,
copy, exp) timed right before and after; prints per kernel the sd of ln t, its lag-1 autocorrelation
and, per candidate, its time, own noise, correlation with ln t, regression slope γ and residual sd.
Timing: run at normal priority and write the `uptime` load beside what it prints.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from ditbench.measure.cases import expand
from ditbench.measure.family import get_family
from ditbench.measure.memory import fix_heap_policy
from ditbench.measure.spec import load_preset_text

PROBE = """
name = "drift-candidates"
[[sweep]]
experiment = "E1"
kernels = ["sdpa", "exact"]
n = [8192]
d = 8
bound = [1]
scale = "1/d"
ref_rows = 64
[[sweep]]
experiment = "E4"
op = "backward"
kernels = ["exact_gradient"]
n = [4096]
d = 4
bound = [0.5]
scale = "1/d"
ref_rows = 64
[[sweep]]
experiment = "E4"
op = "backward"
kernels = ["lowrank_gradient", "polynomial_autograd_gradient"]
n = [65536]
d = 4
bound = [0.5]
scale = "1/d"
params = {eps = [1e-3]}
ref_rows = 64
[[sweep]]
experiment = "E1"
kernels = ["polynomial"]
n = [131072]
d = 8
bound = [1]
scale = "1/d"
params = {eps = [1e-3]}
ref_rows = 64
"""


def candidates() -> dict[str, Callable[[], None]]:
    a, b = torch.rand(256, 256), torch.rand(256, 256)  # (256, 256)
    big = torch.rand(4 << 20)  # (4M,) 16 MB
    big2 = torch.empty_like(big)
    ev = torch.rand(1 << 20)  # (1M,)
    ev2 = torch.empty_like(ev)

    def mm() -> None:  # compute-bound: 20 products, ≈ 0.67 GFLOP
        for _ in range(20):
            torch.mm(a, b)

    def copy() -> None:  # memory-bound: 4 × 16 MB
        for _ in range(4):
            big2.copy_(big)

    def exp() -> None:  # elementwise transcendental: 4 × 1 M
        for _ in range(4):
            torch.exp(ev, out=ev2)

    return {"mm": mm, "copy": copy, "exp": exp}


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    threads = int(argv[0]) if argv else 2
    iters = int(argv[1]) if len(argv) > 1 else 40
    fix_heap_policy()
    torch.set_num_threads(threads)
    preset = load_preset_text(PROBE, name="drift-candidates")
    refs = candidates()
    for fn in refs.values():
        fn()
    for case in (c for spec in preset.specs for c in expand(spec, threads=threads)):
        call = get_family(case.workload).prepare(case).call
        call()
        times: list[float] = []
        brackets: dict[str, list[tuple[float, float]]] = {k: [] for k in refs}
        for _ in range(iters):
            before = {k: seconds(f) for k, f in refs.items()}
            times.append(seconds(call))
            for k, f in refs.items():
                brackets[k].append((before[k], seconds(f)))
        y = np.log(times) - np.log(times).mean()  # (iters,)
        out: dict[str, object] = {
            "kernel": case.kernel, "n": case.n, "t_ms": float(np.exp(np.log(times).mean()) * 1e3),
            "sd": round(float(y.std()), 3), "lag1": round(float(np.corrcoef(y[:-1], y[1:])[0, 1]), 2)}
        for k in refs:
            both = np.log(np.array(brackets[k]))  # (iters, 2)
            r = both.mean(1) - both.mean()
            gamma = float(np.dot(r, y) / np.dot(r, r))
            out[k] = {"ms": round(float(np.exp(both.mean()) * 1e3), 2),
                      "own": round(float(np.std(both[:, 1] - both[:, 0]) / np.sqrt(2)), 3),
                      "corr": round(float(np.corrcoef(r, y)[0, 1]), 2), "gamma": round(gamma, 2),
                      "resid_sd": round(float((y - gamma * r).std()), 3)}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
