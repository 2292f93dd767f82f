# mypy: ignore-errors
# (Triton JIT functions take device pointers and tl.constexpr values; triton ships no stubs.)
"""Triton kernels of :mod:`ditbench.attention.polynomial_triton` (imports triton: load lazily).

Shapes (row-major, contiguous): x (B, tokens, d) normalised inputs; idx (r, G) int32 monomial
coordinate table padded with d; v (B, m, C) values with the ones column; z (S, B, r, C) key-pass
partials; w (B, r, C) weighted summary; y (B, n, C) query results. C ≤ CP (a power of two).
"""
import triton
import triton.language as tl


@triton.jit
def features(x_ptr, idx_ptr, t_offs, t_mask, r_offs, r_mask, d, G: tl.constexpr,
             BT: tl.constexpr, BR: tl.constexpr):
    f = tl.zeros((BT, BR), dtype=tl.float32) + 1.0  # (BT, BR)
    for j in tl.static_range(G):
        col = tl.load(idx_ptr + r_offs * G + j, mask=r_mask, other=d)  # (BR,)
        xv = tl.load(x_ptr + t_offs[:, None] * d + col[None, :],
                     mask=t_mask[:, None] & (col[None, :] < d), other=1.0)  # (BT, BR)
        f = f * xv
    return f


@triton.jit
def key_pass(x_ptr, v_ptr, idx_ptr, z_ptr, m, r, d, C, B, splits, G: tl.constexpr,
             BT: tl.constexpr, BR: tl.constexpr, CP: tl.constexpr):
    pid_r, b, s = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    r_offs = pid_r * BR + tl.arange(0, BR)  # (BR,)
    r_mask = r_offs < r
    c_offs = tl.arange(0, CP)  # (CP,)
    c_mask = c_offs < C
    acc = tl.zeros((BR, CP), dtype=tl.float32)  # (BR, CP)
    for blk in range(s, tl.cdiv(m, BT), splits):
        t_offs = blk * BT + tl.arange(0, BT)  # (BT,)
        t_mask = t_offs < m
        f = features(x_ptr + b * m * d, idx_ptr, t_offs, t_mask, r_offs, r_mask, d, G, BT, BR)  # (BT, BR)
        vals = tl.load(v_ptr + (b * m + t_offs[:, None]) * C + c_offs[None, :],
                       mask=t_mask[:, None] & c_mask[None, :], other=0.0)  # (BT, CP); padded keys add 0
        acc += tl.dot(tl.trans(f), vals, input_precision="ieee")  # (BR, CP)
    out = z_ptr + ((s * B + b) * r + r_offs[:, None]) * C + c_offs[None, :]
    tl.store(out, acc, mask=r_mask[:, None] & c_mask[None, :])


@triton.jit
def query_pass(x_ptr, w_ptr, idx_ptr, y_ptr, n, r, d, C, G: tl.constexpr,
               BT: tl.constexpr, BR: tl.constexpr, CP: tl.constexpr):
    pid_t, b = tl.program_id(0), tl.program_id(1)
    t_offs = pid_t * BT + tl.arange(0, BT)  # (BT,)
    t_mask = t_offs < n
    c_offs = tl.arange(0, CP)
    c_mask = c_offs < C
    acc = tl.zeros((BT, CP), dtype=tl.float32)  # (BT, CP)
    for chunk in range(0, tl.cdiv(r, BR)):
        r_offs = chunk * BR + tl.arange(0, BR)
        r_mask = r_offs < r
        f = features(x_ptr + b * n * d, idx_ptr, t_offs, t_mask, r_offs, r_mask, d, G, BT, BR)  # (BT, BR)
        w = tl.load(w_ptr + (b * r + r_offs[:, None]) * C + c_offs[None, :],
                    mask=r_mask[:, None] & c_mask[None, :], other=0.0)  # (BR, CP); padded features 0
        acc += tl.dot(f, w, input_precision="ieee")  # (BT, CP)
    tl.store(y_ptr + (b * n + t_offs[:, None]) * C + c_offs[None, :], acc,
             mask=t_mask[:, None] & c_mask[None, :])
