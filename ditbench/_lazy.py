"""Lazy package namespaces: a package re-exports names from its submodules without importing them
until one is used (PEP 562 module ``__getattr__``), so importing a package, or a light submodule
of it, costs only what that module itself imports.

    __getattr__, __dir__ = lazy_names(__name__, {"runner": ("run_sweep", "plan"), ...})
    __all__ = ["plan", "run_sweep", ...]

A package that does this keeps the same names eagerly under ``if TYPE_CHECKING:`` for type
checkers (mypy does not follow module ``__getattr__``) and spells ``__all__`` as a literal (what
linters read); tests/test_imports.py checks that the three agree and that every name resolves.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_names(package: str, modules: Mapping[str, Sequence[str]]
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose ``modules`` map a submodule's
    name (relative, without the dot) to the names it defines that the package re-exports."""
    where = {name: module for module, names in modules.items() for name in names}
    if len(where) != sum(len(names) for names in modules.values()):
        raise ValueError(f"{package}: a name is re-exported from two submodules")

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # after the import, which binds the submodule itself
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
