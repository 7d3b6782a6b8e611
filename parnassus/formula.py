"""Delphes-style formulas written in a card, evaluated on numpy arrays.

A formula is a Python arithmetic expression in the variables ``pt``, ``eta`` and ``energy`` (GeV), for
example ``(abs(eta) <= 1.5) * (pt > 1.0) * 0.95``. Comparisons give 0/1 like in Delphes' TFormula, ``**``
is the power operator and only a few numpy functions are allowed, so a card cannot run arbitrary code.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

import numpy as np

VARIABLES = ("pt", "eta", "energy")
FUNCTIONS: dict[str, Callable] = {
    "abs": np.abs,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "minimum": np.minimum,
    "maximum": np.maximum,
}
_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.Name, ast.Load, ast.Constant,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq,
)
MAX_EXPONENT = 100  # a larger constant exponent, or a power of a power of constants, could take forever (9**9**9)


class _ComparisonsAsFloat(ast.NodeTransformer):
    """Wrap comparisons in ``_float(...)`` so that sums of conditions add up like Delphes' 0/1 values."""

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        return ast.Call(func=ast.Name(id="_float", ctx=ast.Load()), args=[node], keywords=[])


def _is_constant(node: ast.AST) -> bool:
    """Whether ``node`` is made of numbers and operators only (no variable, no function call)."""
    return not any(isinstance(child, (ast.Name, ast.Call)) for child in ast.walk(node))


def _check_power(node: ast.BinOp) -> None:
    """Refuse a power whose constant exponent exceeds :data:`MAX_EXPONENT`, or a power of powers of constants."""
    if _is_constant(node) and any(isinstance(child, ast.BinOp) and isinstance(child.op, ast.Pow)
                                  for side in (node.left, node.right) for child in ast.walk(side)):
        raise ValueError(f"nested powers of constants are not allowed ({ast.unparse(node)})")
    if _is_constant(node.right):
        if any(isinstance(child, ast.BinOp) and isinstance(child.op, ast.Pow) for child in ast.walk(node.right)):
            raise ValueError(f"an exponent may not contain a power of constants ({ast.unparse(node)})")
        try:  # numbers, + - * / and signs only: quick
            exponent = float(eval(compile(ast.Expression(node.right), "<exponent>", "eval"),  # noqa: S307
                                  {"__builtins__": {}}))
        except (ArithmeticError, ValueError, TypeError):
            raise ValueError(f"invalid exponent ({ast.unparse(node.right)})") from None
        if abs(exponent) > MAX_EXPONENT:
            raise ValueError(f"exponent {ast.unparse(node.right)} is larger than {MAX_EXPONENT} in absolute value")


def _float(condition: np.ndarray) -> np.ndarray:
    return np.asarray(condition, dtype=np.float64)


class Formula:
    """A compiled, validated formula; call it with numpy arrays ``pt``, ``eta``, ``energy``."""

    def __init__(self, text: str):
        self.text = text
        tree = ast.parse(" ".join(text.split()), mode="eval")  # SyntaxError is turned into a CardError by the card
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED_NODES):
                raise ValueError(f"'{type(node).__name__}' is not allowed in a formula")
            if isinstance(node, ast.Name) and node.id not in VARIABLES and node.id not in FUNCTIONS:
                raise ValueError(f"unknown name '{node.id}' (use {', '.join(VARIABLES)} and "
                                 f"{', '.join(FUNCTIONS)})")
            if isinstance(node, ast.Compare) and len(node.ops) != 1:
                raise ValueError("chained comparisons are not allowed; write (a < x) * (x < b)")
            if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
                raise ValueError("only numeric constants are allowed")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
                _check_power(node)
        tree = ast.fix_missing_locations(_ComparisonsAsFloat().visit(tree))
        self._code = compile(tree, "<formula>", "eval")

    def __call__(self, pt: np.ndarray, eta: np.ndarray, energy: np.ndarray | None = None) -> np.ndarray:
        pt = np.asarray(pt, dtype=np.float64)
        names = {"pt": pt, "eta": np.asarray(eta, dtype=np.float64),
                 "energy": pt if energy is None else np.asarray(energy, dtype=np.float64)}
        with np.errstate(all="ignore"):
            value = eval(self._code, {"__builtins__": {}}, {**FUNCTIONS, "_float": _float, **names})  # noqa: S307 (validated)
        return np.broadcast_to(np.asarray(value, dtype=np.float64), pt.shape).copy()

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"
