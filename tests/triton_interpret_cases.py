"""Run polynomial_triton under Triton's CPU interpreter and save inputs and outputs (used by
tests/test_polynomial_triton.py in a subprocess, since TRITON_INTERPRET=1 must be set before
triton is imported). Usage: TRITON_INTERPRET=1 python tests/triton_interpret_cases.py OUT.pt"""
from __future__ import annotations

import math
import os
import sys

import torch

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"
from ditbench.attention.polynomial_triton import polynomial_triton_attention  # noqa: E402


def _u(gen: torch.Generator, *shape: int, bound: float = 1.0) -> torch.Tensor:
    return ((torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound).float()


def main(path: str) -> None:
    gen = torch.Generator().manual_seed(20261201)
    cases = []

    def run(name, q, k, v, scale, eps=1e-3, degree=None, radius=None):
        out = polynomial_triton_attention(q, k, v, scale=scale, eps=eps, degree=degree, radius=radius)
        cases.append({"name": name, "q": q, "k": k, "v": v, "out": out, "scale": scale, "eps": eps,
                      "degree": degree, "radius": radius})

    run("paper setting d = 8", _u(gen, 150, 8), _u(gen, 130, 8), _u(gen, 130, 8), 1 / 8)
    run("broadcast batch, n ≠ m, dv ≠ d", _u(gen, 2, 1, 37, 6), _u(gen, 1, 3, 70, 6), _u(gen, 1, 3, 70, 5), 0.3,
        eps=1e-4)
    run("far from uniform", _u(gen, 40, 4, bound=1.5), _u(gen, 90, 4, bound=1.5), _u(gen, 90, 3), 0.5)
    d, rho = 4, 2.0  # every logit at ±R: parallel / anti-parallel max-norm q and k
    u = torch.ones(d) / math.sqrt(d)
    run("logits at ±R", torch.stack([u * rho, -u * rho, u * rho]), torch.stack([u * rho, -u * rho, u * rho, -u * rho]),
        torch.tensor([[1.0, -1.0], [-1.0, 1.0], [0.5, 0.0], [1.0, 1.0]]), 0.5)
    run("degree 0 (uniform)", _u(gen, 5, 3, bound=0.01), _u(gen, 6, 3, bound=0.01), _u(gen, 6, 2), 1.0, eps=0.5)
    run("explicit radius and degree", _u(gen, 20, 3), _u(gen, 30, 3), _u(gen, 30, 2), 0.5, degree=9, radius=3.0)
    run("d = 64 (largest supported)", _u(gen, 17, 64, bound=0.3), _u(gen, 19, 64, bound=0.3), _u(gen, 19, 64), 1 / 64)
    torch.save(cases, path)


if __name__ == "__main__":
    main(sys.argv[1])
