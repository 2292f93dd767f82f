"""Preset registry: named sweeps shipped as TOML data in ``ditbench/measure/presets/*.toml``.

``smoke`` (< 60 s on 2 cores; CI), ``default`` (the main job, < 5 min on 2 cores: E1–E3, E4 once
backward kernels exist) and ``full`` (hours; big machines or a GPU). The CLI's ``--preset``
choices are read from :data:`PRESET_FILES`.
"""
from __future__ import annotations

from importlib import resources

from ..spec import Preset, load_preset_text

PACKAGE = __name__  # the TOML files sit beside this module


def _discover() -> dict[str, str]:
    files = resources.files(PACKAGE)
    return {entry.name.removesuffix(".toml"): entry.name for entry in files.iterdir() if entry.name.endswith(".toml")}


PRESET_FILES: dict[str, str] = dict(sorted(_discover().items()))  # name → file name


def preset_names() -> list[str]:
    return list(PRESET_FILES)


def get_preset(name: str) -> Preset:
    """Load and validate the shipped preset ``name`` (ValueError lists the known names)."""
    if name not in PRESET_FILES:
        raise ValueError(f"unknown preset {name!r}; available presets: {preset_names()}")
    text = resources.files(PACKAGE).joinpath(PRESET_FILES[name]).read_text()
    return load_preset_text(text, name=name, source=f"{PACKAGE}/{PRESET_FILES[name]}")
