"""Safe checkpoint loading: tensors only (``torch.load(weights_only=True)`` or safetensors), never an
arbitrary unpickle, with missing / unexpected / mis-shaped keys reported by name.

Accepted layouts: a plain state dict (the published ``DiT-XL-2-256x256.pt``), or a dict holding one
under ``"ema"`` (preferred, as DiT's ``sample.py`` does) or ``"model"``. A training checkpoint that
also pickles an ``argparse.Namespace`` is refused by ``weights_only`` — re-save its ``"ema"`` entry.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor


class CheckpointError(ValueError):
    """The file is not a loadable, tensor-only checkpoint for this model."""


@dataclass(frozen=True)
class KeyReport:
    """How a state dict lines up with a model's parameters and buffers."""

    missing: tuple[str, ...]  # in the model, not in the file
    unexpected: tuple[str, ...]  # in the file, not in the model
    mismatched: tuple[str, ...]  # in both, different shapes ("name: file (…) vs model (…)")

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 20) -> str:
        lines = []
        for title, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("shape-mismatched", self.mismatched)):
            if keys:
                shown = ", ".join(keys[:limit]) + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")
                lines.append(f"{len(keys)} {title} key(s): {shown}")
        return "\n".join(lines) or "all keys match"


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors from ``path`` without running any pickled code (safetensors or weights-only torch.load)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {str(path)!r} is empty (0 bytes)")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, ValueError, RuntimeError) as err:  # header, size or dtype errors
            raise CheckpointError(f"cannot read {str(path)!r} as safetensors (truncated or not a safetensors "
                                  f"file): {_first_line(err)}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only refuses any global outside torch's tensor allow-list before executing it.
        raise CheckpointError(
            f"refused to load {str(path)!r}: it is not a tensor-only checkpoint (weights_only=True "
            f"rejected it; nothing in it was executed). Details: {_first_line(err)}"
        ) from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError) as err:  # truncated zip, bad header
        raise CheckpointError(f"cannot read {str(path)!r} as a torch checkpoint (truncated or corrupt): "
                              f"{_first_line(err)}") from None
    for key in ("ema", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        raise CheckpointError(f"{str(path)!r} holds a {type(obj).__name__}, not a state dict of named tensors")
    return obj


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def compare_keys(model: nn.Module, state: dict[str, Tensor]) -> KeyReport:
    """Which keys of ``state`` are missing, unexpected or mis-shaped for ``model`` (a floating-point
    parameter stored as an integer tensor counts as mismatched: copying it would truncate every
    weight, e.g. to all zeros)."""
    own = model.state_dict()
    mismatched = tuple(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items() if k in state and state[k].shape != v.shape
    ) + tuple(
        f"{k}: file dtype {state[k].dtype} vs model {v.dtype}"
        for k, v in own.items() if k in state and v.is_floating_point() and not state[k].is_floating_point()
    )
    return KeyReport(
        missing=tuple(k for k in own if k not in state),
        unexpected=tuple(k for k in state if k not in own),
        mismatched=mismatched,
    )


def load_checkpoint(model: nn.Module, path: str | Path) -> KeyReport:
    """Load ``path`` into ``model`` if every key matches; otherwise raise CheckpointError naming them."""
    state = read_state_dict(path)
    report = compare_keys(model, state)
    if not report.ok:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit {type(model).__name__}: "
                              f"{report.describe().replace(chr(10), '; ')}")
    bad = {k: int((~torch.isfinite(t)).sum()) for k, t in state.items() if t.is_floating_point()}
    bad = {k: count for k, count in bad.items() if count}
    if bad:
        first = next(iter(bad))
        raise CheckpointError(f"checkpoint {str(path)!r} has non-finite weights in {len(bad)} tensor(s), "
                              f"e.g. {first} ({bad[first]} NaN/inf of {state[first].numel()})")
    model.load_state_dict(state, strict=True)
    return report
