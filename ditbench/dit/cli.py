"""``ditbench criteria``: check a latent DiT against the almost-linear criteria, layer by layer.

    ditbench criteria --model DiT-XL/2 --image-size 256
    ditbench criteria --model DiT-XL/2 --image-size 256 --checkpoint DiT-XL-2-256x256.pt --format json

Without a checkpoint the model is a seeded random init. DiT's adaLN-Zero init zeroes every
modulation and gate, so a random-init model's activations are NOT those of a trained model; the
output says so, and ``--perturb STD`` fills those layers with N(0, STD²) noise to make blocks act.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from typing import TYPE_CHECKING

from .configs import DIT_CONFIGS, VAE_DOWNSAMPLE

if TYPE_CHECKING:
    from .criteria import HeadCriteria
# The model, the checkpoint loader and the criteria (torch) are imported where they run: the parser,
# and so `ditbench criteria --help`, loads no torch (tests/test_imports.py).

# Columns of the human-readable table (csv/json carry every HeadCriteria field).
TABLE_COLUMNS = ["layer", "head", "L", "d", "ln_L", "q_bound", "k_bound", "ov_bound", "bound", "threshold",
                 "ratio", "radius", "degree", "rank", "cost_ratio", "verdict"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, choices=list(DIT_CONFIGS), help="DiT config, e.g. DiT-XL/2")
    parser.add_argument("--image-size", type=int, default=256, help="image side in px (latent side = px/8)")
    parser.add_argument("--checkpoint", default=None,
                        help="state dict (.pt/.pth via torch.load(weights_only=True), or .safetensors)")
    parser.add_argument("--eps", type=float, default=1e-3,
                        help="relative error target for the polynomial degree / rank / cost columns")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument("--batch", type=int, default=2, help="latents per check (noised at random timesteps)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the random init and the latent batch")
    parser.add_argument("--perturb", type=float, default=0.0,
                        help="random init only: N(0, STD²) noise on the adaLN-Zero layers (0 = published init)")
    parser.add_argument("--per-head", action="store_true",
                        help="table: one row per head (default: worst head per layer); csv/json are always per head")
    # One thread by default: the check is not a benchmark, and on a shared 2-core machine two OpenMP
    # threads spin against each other (measured 94 s with 2 threads vs 57 s with 1; docs/dit.md).
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if (abs(value) >= 1e4 or 0 < abs(value) < 1e-2) else f"{value:.2f}"
    return str(value)


def format_table(rows: list[HeadCriteria], columns: list[str] = TABLE_COLUMNS) -> str:
    cells = [[_fmt(getattr(r, c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def format_csv(rows: list[HeadCriteria]) -> str:
    from .criteria import COLUMNS

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.as_dict() for r in rows)
    return out.getvalue()


def _summary(rows: list[HeadCriteria]) -> str:
    counts = {v: sum(r.verdict == v for r in rows) for v in ("inside", "near", "outside")}
    worst = max(rows, key=lambda r: r.ratio)
    return (f"{len(rows)} heads: {counts['inside']} inside, {counts['near']} near, {counts['outside']} outside. "
            f"Largest bound/√ln L = {worst.ratio:.2f} ({worst.layer}, head {worst.head}); "
            f"d = {worst.d} vs ln L = {worst.ln_L:.2f}.")


def main(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import CheckpointError, load_checkpoint
    from .criteria import VerdictRule, check_dit, per_layer
    from .latent import latent_batch
    from .model import build_dit

    if not (0 < args.eps < 1) or not math.isfinite(args.eps):
        raise ValueError(f"--eps={args.eps} must lie in (0, 1)")
    if args.batch < 1:
        raise ValueError(f"--batch={args.batch} must be ≥ 1")
    if args.threads < 1:
        raise ValueError(f"--threads={args.threads} must be ≥ 1")
    if not (math.isfinite(args.perturb) and args.perturb >= 0):
        raise ValueError(f"--perturb={args.perturb} must be finite and ≥ 0 (0 = the published init)")
    tokens = DIT_CONFIGS[args.model].tokens(args.image_size)  # checks image_size against the patch grid
    if tokens < 2:
        side = 2 * VAE_DOWNSAMPLE * DIT_CONFIGS[args.model].patch_size
        raise ValueError(f"--image-size {args.image_size} gives {args.model} L = {tokens} token(s); attention "
                         f"criteria need L ≥ 2 (--image-size ≥ {side})")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    notes = []
    model = build_dit(args.model, args.image_size, seed=args.seed, initialize=args.checkpoint is None,
                      perturb=args.perturb if args.checkpoint is None else 0.0)
    if args.checkpoint is None:
        notes.append(
            f"weights: seeded random init (seed {args.seed}), NOT a trained model. "
            + (f"adaLN-Zero layers perturbed with N(0, {args.perturb:g}²)." if args.perturb else
               "adaLN-Zero init: every block's modulation is zero, so blocks are the identity and the "
               "activations are not representative of a trained DiT (use --checkpoint, or --perturb STD).")
        )
    else:
        try:
            load_checkpoint(model, args.checkpoint)
        except CheckpointError as err:
            print(f"ditbench criteria: {err}", file=sys.stderr)
            return 2
        notes.append(f"weights: {args.checkpoint} (all keys matched)")
    cfg = model.config
    batch = latent_batch(cfg.in_channels, cfg.latent_size(args.image_size), args.batch, seed=args.seed,
                         num_classes=cfg.num_classes)
    rows = check_dit(model, batch.x, batch.t, batch.y, eps=args.eps, rule=VerdictRule())
    notes.insert(0, f"{args.model} at {args.image_size}px: L = {cfg.tokens(args.image_size)} tokens, "
                    f"{cfg.depth} layers × {cfg.num_heads} heads, d = {cfg.head_dim}, logit scale 1/√d")
    notes.append(f"inputs: {args.batch} linear-latent samples noised at timesteps {batch.t.tolist()}")
    notes.append("bounds in the paper's convention (logit = ⟨q',k'⟩/d; q' = (s·d)^½·q); "
                 "verdict: inside if bound ≤ 0.5·√ln L and d ≤ 2·ln L, outside if bound ≥ √ln L or d > 2·ln L")
    if any(r.degree is None for r in rows):
        notes.append(f"degree/rank/cost_ratio: '-' where no polynomial degree reaches eps={args.eps:g} "
                     "at the measured radius (see the reason column in csv/json)")
    notes.append(_summary(rows))
    notes.append(f"time: {time.perf_counter() - start:.1f} s on {torch.get_num_threads()} thread(s)")
    if args.format == "table":
        shown = rows if args.per_head else per_layer(rows)
        print("\n".join(f"# {n}" for n in notes))
        print(format_table(shown))
    else:
        print("\n".join(f"# {n}" for n in notes), file=sys.stderr)
        print(format_csv(rows) if args.format == "csv" else json.dumps([r.as_dict() for r in rows], indent=1),
              end="" if args.format == "csv" else "\n")
    return 0
