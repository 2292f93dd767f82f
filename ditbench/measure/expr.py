"""A tiny, safe evaluator for bound expressions such as ``0.5*sqrt(log(n))``.

Sweep specs may give the entry bound B as a formula of the problem size so that E2 can follow
the Alman–Song threshold B = c·√(ln n). Formulas are parsed with :mod:`ast` and only numbers,
the variables ``n, m, d``, the constants ``pi, e``, arithmetic (``+ - * / **``, unary ±) and the
functions below are accepted — never :func:`eval`.
"""
from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import cast
from dataclasses import dataclass

VARIABLES = ("n", "m", "d")
CONSTANTS: Mapping[str, float] = {"pi": math.pi, "e": math.e}
FUNCTIONS: Mapping[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "log": math.log, "log2": math.log2, "exp": math.exp, "min": min, "max": max,
}
_BINARY: Mapping[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow,
}
_UNARY: Mapping[type, Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
# Limits that keep evaluation fast and bounded: formula length and nesting depth (a parse tree this
# deep would hit Python's recursion limit), and the magnitude of every intermediate value (floats
# only: Python's unbounded integers would let (10**64)**64… run for hours).
MAX_LENGTH = 500
MAX_DEPTH = 50
MAX_MAGNITUDE = 1e300
_ALLOWED = f"numbers, variables {list(VARIABLES)}, constants {sorted(CONSTANTS)}, " \
           f"functions {sorted(FUNCTIONS)} and + - * / **"


@dataclass(frozen=True)
class Expression:
    """A parsed formula over ``n, m, d``; ``text`` is kept verbatim for the ``bound_spec`` column."""

    text: str
    tree: ast.Expression

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(node.id for node in ast.walk(self.tree) if isinstance(node, ast.Name)) & set(VARIABLES)

    def __call__(self, **values: float) -> float:
        """Evaluate with ``values`` for the variables; raises ValueError on a domain error or non-finite result."""
        try:
            out = float(_evaluate(self.tree.body, values))
        except OverflowError:
            raise ValueError(f"expression {self.text!r} overflows at {values}: an intermediate value exceeds "
                             f"±{MAX_MAGNITUDE:g}") from None
        except (ValueError, TypeError, ZeroDivisionError) as err:
            raise ValueError(f"expression {self.text!r} cannot be evaluated at {values}: {err}") from None
        if not math.isfinite(out):
            raise ValueError(f"expression {self.text!r} gives {out} at {values}; it must be finite")
        return out


def parse_expression(text: str) -> Expression:
    """Parse ``text`` and check that it uses only the allowed names and operators.

    Raises ValueError naming the offending piece and listing what is allowed.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expression must be a non-empty string, got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"expression of {len(text)} characters is over the limit of {MAX_LENGTH}: {text[:40]!r}…")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ValueError(f"cannot parse expression {text!r}: {err.msg}; allowed: {_ALLOWED}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"expression {text[:40]!r}… is nested too deeply (limit {MAX_DEPTH} levels)") from None
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        raise ValueError(f"expression {text[:40]!r} is nested {depth} levels deep, over the limit of {MAX_DEPTH}")
    for node in ast.walk(tree):
        _check_node(node, text)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FUNCTIONS and id(node) not in called:
            raise ValueError(f"function {node.id!r} must be called, as in {node.id}(x), in {text!r}")
    return Expression(text=text.strip(), tree=tree)


def _depth(tree: ast.AST) -> int:
    """Nesting depth of ``tree``, computed without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _check_node(node: ast.AST, text: str) -> None:
    if isinstance(node, (ast.Expression, ast.Load, ast.operator, ast.unaryop)):
        if isinstance(node, ast.operator) and type(node) not in _BINARY:
            raise ValueError(f"operator {type(node).__name__} is not allowed in {text!r}; allowed: {_ALLOWED}")
        if isinstance(node, ast.unaryop) and type(node) not in _UNARY:
            raise ValueError(f"operator {type(node).__name__} is not allowed in {text!r}; allowed: {_ALLOWED}")
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"constant {node.value!r} is not a number in {text!r}; allowed: {_ALLOWED}")
        return
    if isinstance(node, ast.Name):
        if node.id not in VARIABLES and node.id not in CONSTANTS and node.id not in FUNCTIONS:
            raise ValueError(f"unknown name {node.id!r} in {text!r}; allowed: {_ALLOWED}")
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise ValueError(f"only calls like f(x) with f in {sorted(FUNCTIONS)} are allowed in {text!r}")
        return
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return
    raise ValueError(f"{type(node).__name__} is not allowed in {text!r}; allowed: {_ALLOWED}")


def _evaluate(node: ast.AST, values: Mapping[str, float]) -> float:
    """Evaluate in floats; every intermediate value must stay finite and within MAX_MAGNITUDE."""
    value = _evaluate_node(node, values)
    if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"an intermediate value {value!r} is not a finite real number within ±{MAX_MAGNITUDE:g}")
    return value


def _evaluate_node(node: ast.AST, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return float(cast(float, node.value))  # a number (nothing else parses), as a float: no huge ints
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id not in values:
            raise ValueError(f"no value given for variable {node.id!r}")
        return float(values[node.id])
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError(f"exponent {right} too large (limit 64)")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, values))
    if isinstance(node, ast.Call):
        func = cast(ast.Name, node.func).id  # a plain name: checked in parse_expression
        return FUNCTIONS[func](*(_evaluate(arg, values) for arg in node.args))
    raise ValueError(f"{type(node).__name__} is not allowed")
