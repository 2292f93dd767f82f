"""Which reference workload tracks the kernels' drift? A loop probe (docs/measure.md, "The drift reference").

Usage: ``python tools/drift_candidates.py [THREADS [ITERS]]`` (default 2 threads, 40 iterations). For each
kernel at one mid size (sdpa and exact n = 8192 d = 8; exact_gradient 4096; the fast gradients 65536;
polynomial 131072), ITERS single calls, each bracketed by three candidate references (matmul, copy, exp)
timed right before and after; prints per kernel the sd of ln t, its lag-1 autocorrelation and, per
candidate, its time, own noise, correlation with ln t, regression slope γ and residual sd. Timing: run
at normal priority and write the `uptime` load beside what it prints."""
import sys, time, json
import numpy as np, torch
from ditbench.measure.spec import load_preset_text
from ditbench.measure.cases import expand
from ditbench.measure.family import get_family
from ditbench.measure.memory import fix_heap_policy
fix_heap_policy()
THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
ITERS = int(sys.argv[2]) if len(sys.argv) > 2 else 40
torch.set_num_threads(THREADS)
TEXT = '''
name = "p"
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
'''
preset = load_preset_text(TEXT, name="p")
cases = [c for s in preset.specs for c in expand(s, threads=THREADS)]
a = torch.rand(256, 256); b = torch.rand(256, 256)
big = torch.rand(4 << 20); big2 = torch.empty_like(big)  # 16 MB
ev = torch.rand(1 << 20); ev2 = torch.empty_like(ev)
def mm():  # compute-bound ~ 256^3*2*20 = 0.67 GF
    for _ in range(20): torch.mm(a, b)
def cp():  # memory-bound 16 MB copy x4
    for _ in range(4): big2.copy_(big)
def ex():  # exp (elementwise, transcendental) 1M x 4
    for _ in range(4): torch.exp(ev, out=ev2)
REFS = {"mm": mm, "copy": cp, "exp": ex}
def t(fn):
    s = time.perf_counter(); fn(); return time.perf_counter() - s
for fn in REFS.values(): fn(); fn()
out = {}
for case in cases:
    call = get_family(case.workload).prepare(case).call
    call(); call()
    K = []; R = {k: [] for k in REFS}
    for i in range(ITERS):
        before = {k: t(f) for k, f in REFS.items()}
        K.append(t(call))
        after = {k: t(f) for k, f in REFS.items()}
        for k in REFS: R[k].append((before[k], after[k]))
    y = np.log(K); y = y - y.mean()
    res = {"kernel": case.kernel, "n": case.n, "t_ms": float(np.exp(np.log(K).mean()) * 1e3), "sd": float(y.std()),
           "lag1": float(np.corrcoef(y[:-1], y[1:])[0, 1])}
    X = []
    for k in REFS:
        ba = np.log(np.array(R[k]))
        r = ba.mean(1); r = r - r.mean()
        own = float(np.std(ba[:, 1] - ba[:, 0]) / np.sqrt(2))
        g = float(np.dot(r, y) / np.dot(r, r))
        res[k] = dict(ms=float(np.exp(np.log(np.array(R[k])).mean()) * 1e3), own=round(own, 3), corr=round(float(np.corrcoef(r, y)[0, 1]), 2),
                      gamma=round(g, 2), resid_sd=round(float((y - g * r).std()), 3))
        X.append(r)
    X = np.array(X).T
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    res["all3_resid_sd"] = round(float((y - X @ beta).std()), 3); res["all3_beta"] = [round(float(v), 2) for v in beta]
    print(json.dumps(res), flush=True)
