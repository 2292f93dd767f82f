"""HyperAttention (Han et al. 2023, "HyperAttention: long-context attention in near-linear time").

Softmax attention as the sum of two parts, each an unnormalised (numerator, normaliser) pair:
1. sortLSH block diagonal: hash q and k with angular LSH (signs of P shared random projections,
   buckets ordered along a Gray code so neighbouring buckets differ by one hyperplane), sort both
   by bucket, split the sorted keys into blocks of ``block_size`` (and the sorted queries into as
   many equal blocks), and compute exact exp-weights inside each diagonal block;
2. residual: ``samples`` key columns drawn uniformly *without* replacement, weighted m/samples
   (each key is drawn with probability samples/m, so the sum is unbiased), with the columns that
   already sit in the query's diagonal block masked out (no double counting).
The two numerators and normalisers are added (under a shared per-row maximum, so nothing
overflows) and divided. Approximates softmax attention. It is exact when ``block_size ≥ m`` (one
block holds every key) or ``samples ≥ m`` (every key sampled once, weight 1), and the kernel falls
back to exact attention when n ≤ ``min_seq_len`` (the reference implementation's rule).

Departures from the reference code, both for a cleaner estimator: sampling is without replacement
(lower variance, exact at samples = m) and the Gray-code order maps a bucket to its Gray rank.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ... import theory
from ..exact import exact_attention
from ..._checks import SEED, Param
from ..registry import Kernel, Problem, register
from ..._checks import check_output
from ._common import VALUE_HINT, cpu_generator, divide_by_normaliser, gaussian, int_reasons, prepare, raise_if

MAX_PROJECTIONS = 24  # 2^24 buckets: far beyond any sequence length this tool sweeps


def gray_rank(num_projs: int) -> Tensor:
    """``(2^P,)`` int64: position of each P-bit code in the reflected Gray sequence g(i) = i ^ (i >> 1)."""
    i = torch.arange(2**num_projs)
    rank = torch.empty_like(i)
    rank[i ^ (i >> 1)] = i
    return rank


def lsh_buckets(x: Tensor, proj: Tensor, rank: Tensor) -> Tensor:
    """Angular-LSH bucket of each row of ``x (..., n, d)`` → ``(..., n)`` int64 in Gray order.

    proj ``(d, P)``: shared random directions; rank: :func:`gray_rank` table on x's device.
    """
    bits = (x @ proj > 0).long()  # (..., n, P)
    codes = (bits << torch.arange(proj.shape[-1], device=x.device)).sum(dim=-1)  # (..., n)
    return rank[codes]


def _gather_rows(x: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx (..., b)`` of ``x (..., n, c)`` → ``(..., b, c)``."""
    return torch.gather(x, -2, idx[..., None].expand(*idx.shape, x.shape[-1]))


def _pad_rows(x: Tensor, rows: int) -> Tensor:
    """Zero-pad ``x (..., n, c)`` to ``(..., rows, c)``."""
    return torch.nn.functional.pad(x, (0, 0, 0, rows - x.shape[-2]))


def _reasons(
    block_size: object, samples: object, lsh_num_projs: object, min_seq_len: object, seed: object
) -> list[str]:
    return (
        int_reasons("block_size", block_size, 1) + int_reasons("samples", samples, 0)
        + int_reasons("lsh_num_projs", lsh_num_projs, 1, MAX_PROJECTIONS, "buckets are 2^lsh_num_projs")
        + int_reasons("min_seq_len", min_seq_len, 0) + int_reasons("seed", seed, 0)
    )


def hyper_attention(
    q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, block_size: int = 256, samples: int = 256,
    lsh_num_projs: int = 7, min_seq_len: int = 4096, seed: int = 0,
) -> Tensor:
    """HyperAttention approximation of softmax(scale·q kᵀ) v.

    Args:
        q: ``(..., n, d)``; k: ``(..., m, d)``; v: ``(..., m, dv)``; leading dims broadcast.
        scale: logit scale; ``None`` means 1/√d.
        block_size: keys per sortLSH diagonal block (≥ m: one block, exact).
        samples: residual key columns sampled without replacement (0: block part only; ≥ m: all keys).
        lsh_num_projs: P random hyperplanes of the angular LSH (2^P buckets).
        min_seq_len: exact attention when n ≤ min_seq_len.
        seed: seeds the hyperplanes and the samples (drawn on the CPU).

    Returns ``(..., n, dv)``.
    """
    q, k, v, s = prepare(q, k, v, scale)
    raise_if(_reasons(block_size, samples, lsh_num_projs, min_seq_len, seed))
    n, m = q.shape[-2], k.shape[-2]
    if n <= min_seq_len:
        return exact_attention(q, k, v, scale=s)
    gen = cpu_generator(seed)
    proj = gaussian((q.shape[-1], lsh_num_projs), gen, q)  # (d, P)
    rank = gray_rank(lsh_num_projs).to(q.device)  # (2^P,)
    q_order = torch.sort(lsh_buckets(q, proj, rank), dim=-1, stable=True).indices  # (..., n)
    k_order = torch.sort(lsh_buckets(k, proj, rank), dim=-1, stable=True).indices  # (..., m)
    qs, ks, vs = _gather_rows(q, q_order), _gather_rows(k, k_order), _gather_rows(v, k_order)  # sorted

    # 1. Diagonal blocks: nb key blocks of block_size (last one padded and masked), nb query blocks of qb.
    kb = min(block_size, m)
    nb = math.ceil(m / kb)
    qb = math.ceil(n / nb)
    qblk = _pad_rows(qs, nb * qb).unflatten(-2, (nb, qb))  # (..., nb, qb, d)
    kblk = _pad_rows(ks, nb * kb).unflatten(-2, (nb, kb))  # (..., nb, kb, d)
    vblk = _pad_rows(vs, nb * kb).unflatten(-2, (nb, kb))  # (..., nb, kb, dv)
    pad = (torch.arange(nb * kb, device=q.device) >= m).view(nb, 1, kb)  # (nb, 1, kb) padded keys
    lb = (s * qblk @ kblk.transpose(-1, -2)).masked_fill(pad, -math.inf)  # (..., nb, qb, kb)
    top = lb.amax(dim=-1, keepdim=True)  # (..., nb, qb, 1): every block holds ≥ 1 real key

    # 2. Residual: sampled columns outside the query's block, weight m / samples.
    use = min(samples, m) if nb > 1 else 0
    if use:
        batch = k.shape[:-2]
        picks = torch.rand(math.prod(batch), m, generator=gen).topk(use, dim=-1).indices  # (B, use)
        picks = picks.view(*batch, use).to(q.device)  # (..., use) positions in sorted order
        lr = s * qs @ _gather_rows(ks, picks).transpose(-1, -2)  # (..., n, use)
        own = (torch.arange(n, device=q.device) // qb)[:, None] == (picks // kb)[..., None, :]  # (..., n, use)
        lr = lr.masked_fill(own, -math.inf)
        top_r = _pad_rows(lr.amax(dim=-1, keepdim=True), nb * qb).unflatten(-2, (nb, qb))  # (..., nb, qb, 1)
        top = torch.maximum(top, top_r)

    wb = torch.exp(lb - top)  # (..., nb, qb, kb)
    num = (wb @ vblk).flatten(-3, -2)[..., :n, :]  # (..., n, dv)
    den = wb.sum(dim=-1, keepdim=True).flatten(-3, -2)[..., :n, :]  # (..., n, 1)
    if use:
        wr = torch.exp(lr - top.flatten(-3, -2)[..., :n, :]) * (m / use)  # (..., n, use)
        num = num + wr @ _gather_rows(vs, picks)  # (..., n, dv)
        den = den + wr.sum(dim=-1, keepdim=True)  # (..., n, 1)
    out_sorted = divide_by_normaliser(num, den, "hyperattention")  # (..., n, dv)
    out = _gather_rows(out_sorted, torch.argsort(q_order, dim=-1))  # (..., n, dv) original order
    return check_output("hyperattention", out, VALUE_HINT)


def _cost(p: Problem, params: Mapping[str, Any]) -> theory.Cost:
    return theory.hyperattention_cost(p.n, p.m, p.d, p.dv, block_size=params["block_size"], samples=params["samples"],
                                      lsh_num_projs=params["lsh_num_projs"], min_seq_len=params["min_seq_len"],
                                      itemsize=p.dtype.itemsize)


HYPERATTENTION = register(Kernel(
    name="hyperattention", fn=hyper_attention, exact=False,
    description="HyperAttention (sortLSH diagonal blocks + uniformly sampled residual); approximates softmax attention",
    params={"block_size": 256, "samples": 256, "lsh_num_projs": 7, "min_seq_len": 4096, "seed": 0}, cost=_cost,
    schema={"block_size": Param("int", low=1), "samples": Param("int", low=0),
            "lsh_num_projs": Param("int", low=1, high=MAX_PROJECTIONS, why="buckets are 2^lsh_num_projs"),
            "min_seq_len": Param("int", low=0), "seed": SEED},
    limits=lambda p, params: _reasons(
        params["block_size"], params["samples"], params["lsh_num_projs"], params["min_seq_len"], params["seed"]
    ),
))
