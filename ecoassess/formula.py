"""A small arithmetic grammar for index formulas: parsed into a tree and evaluated, never passed to ``eval``.

Grammar (whitespace ignored)::

    expr    := term (("+" | "-") term)*
    term    := factor (("*" | "/") factor)*
    factor  := ("-" | "+") factor | power
    power   := primary ("**" factor)?             as in Python: -x ** 2 = -(x ** 2), a ** b ** c = a ** (b ** c)
    primary := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"
    NUMBER  := digits with optional fraction and exponent (1, 0.5, .5, 2.75e-5)
    NAME    := letter or "_" followed by letters, digits, "_"  (a band role or a constant)

Functions: ``sqrt abs exp log tanh min max`` (``min``/``max`` take two or more arguments, element-wise).
Evaluation works on numbers, numpy arrays, dask arrays and xarray objects alike. Division by zero gives NaN
(never ±inf), ``sqrt``/``log`` outside their domain give NaN, and NaN inputs propagate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


class FormulaError(ValueError):
    """A formula that does not follow the grammar, or that names something unknown."""


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Unary:
    op: str
    operand: object


@dataclass(frozen=True)
class Binary:
    op: str
    left: object
    right: object


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple


FUNCTIONS = {"sqrt": 1, "abs": 1, "exp": 1, "log": 1, "tanh": 1, "min": -2, "max": -2}  # -2: two or more

_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op>\*\*|[-+*/(),]))")


def tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FormulaError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos} in {text!r}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None, len(self.text))

    def take(self, value=None):
        kind, val, pos = self.peek()
        if kind is None:
            raise FormulaError(f"formula {self.text!r} ends too early" + (f", expected {value!r}" if value else ""))
        if value is not None and val != value:
            raise FormulaError(f"expected {value!r} at position {pos} in {self.text!r}, found {val!r}")
        self.i += 1
        return kind, val, pos

    def parse(self):
        if not self.tokens:
            raise FormulaError("empty formula")
        node = self.expr()
        if self.i != len(self.tokens):
            _, val, pos = self.peek()
            raise FormulaError(f"unexpected {val!r} at position {pos} in {self.text!r}")
        return node

    def expr(self):
        node = self.term()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = self.take()[1]
            node = Binary(op, node, self.term())
        return node

    def term(self):
        node = self.factor()
        while self.peek()[1] in ("*", "/") and self.peek()[0] == "op":
            op = self.take()[1]
            node = Binary(op, node, self.factor())
        return node

    def factor(self):
        if self.peek()[1] in ("-", "+") and self.peek()[0] == "op":
            op = self.take()[1]
            return Unary(op, self.factor())
        return self.power()

    def power(self):
        node = self.primary()
        if self.peek()[1] == "**":
            self.take()
            return Binary("**", node, self.factor())
        return node

    def primary(self):
        kind, val, pos = self.take()
        if kind == "num":
            return Num(float(val))
        if kind == "name":
            if self.peek()[1] == "(":
                if val not in FUNCTIONS:
                    raise FormulaError(f"unknown function {val!r} at position {pos} in {self.text!r} "
                                       f"(known: {', '.join(sorted(FUNCTIONS))})")
                self.take("(")
                args = [self.expr()]
                while self.peek()[1] == ",":
                    self.take(",")
                    args.append(self.expr())
                self.take(")")
                arity = FUNCTIONS[val]
                if (arity > 0 and len(args) != arity) or (arity < 0 and len(args) < -arity):
                    raise FormulaError(f"{val}() takes {arity if arity > 0 else 'two or more'} argument(s), "
                                       f"got {len(args)} in {self.text!r}")
                return Call(val, tuple(args))
            return Name(val)
        if val == "(":
            node = self.expr()
            self.take(")")
            return node
        raise FormulaError(f"unexpected {val!r} at position {pos} in {self.text!r}")


def parse(text: str):
    """Parse ``text`` into an expression tree; raise FormulaError with the position of the problem."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be text, got {type(text).__name__}")
    return _Parser(text).parse()


def names(node) -> set[str]:
    """Every variable name (band role or constant) used in a tree."""
    if isinstance(node, Name):
        return {node.name}
    if isinstance(node, Unary):
        return names(node.operand)
    if isinstance(node, Binary):
        return names(node.left) | names(node.right)
    if isinstance(node, Call):
        return set().union(*(names(a) for a in node.args))
    return set()


def evaluate(node, values: dict, memo: dict | None = None):
    """Evaluate a tree with ``values`` (name -> number or array); see the module docstring for NaN rules.

    ``memo`` (a dict, empty at the start of one evaluation with one ``values``): repeated subexpressions — IBI
    has ``2 * swir1 / (swir1 + nir)`` twice — are computed once (nodes are compared by value).
    """
    if memo is not None and isinstance(node, (Unary, Binary, Call)):
        if node not in memo:
            memo[node] = _evaluate(node, values, memo)
        return memo[node]
    return _evaluate(node, values, memo)


def _evaluate(node, values: dict, memo: dict | None):
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Name):
        try:
            return values[node.name]
        except KeyError:
            raise FormulaError(f"no value given for {node.name!r}") from None
    if isinstance(node, Unary):
        v = evaluate(node.operand, values, memo)
        return -v if node.op == "-" else v
    if isinstance(node, Binary):
        a, b = evaluate(node.left, values, memo), evaluate(node.right, values, memo)
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if node.op == "*":
            return a * b
        if node.op == "/":
            return _divide(a, b)
        return _power(a, b)
    if isinstance(node, Call):
        args = [evaluate(a, values, memo) for a in node.args]
        out = _call(node.func, args)
        # a function of constants gives a numpy float64 scalar, which would turn a float32 evaluation into
        # float64 (NEP 50); as a Python float it stays a weak constant like every other
        return float(out) if isinstance(out, np.floating) else out
    raise FormulaError(f"not an expression node: {node!r}")


def _where(cond, a, b):
    """Element-wise choice that keeps the array type (numpy, dask or xarray)."""
    if hasattr(cond, "where") and hasattr(cond, "dims"):  # xarray
        import xarray as xr

        out = xr.where(cond, a, b)
        if "spatial_ref" in cond.coords:  # xr.where takes coordinate attributes from ``a``, a scalar has none
            out = out.assign_coords(spatial_ref=cond.coords["spatial_ref"])
        return out
    module = _array_module(cond, a, b)
    return module.where(cond, a, b)


def _array_module(*values):
    for v in values:
        if type(v).__module__.startswith("dask"):
            import dask.array as da

            return da
    return np


def _divide(a, b):
    if np.isscalar(b) or isinstance(b, (int, float)):
        return a / b if b != 0 else a * np.nan
    if isinstance(b, np.ndarray):  # one chunk: divide, then NaN where b == 0 (no where-copy of b)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.asarray(a / b)
        zero = b == 0
        if zero.any():
            out = out.astype(np.result_type(out, np.float32), copy=False)
            out[np.broadcast_to(zero, out.shape)] = np.nan
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = _where(b == 0, np.nan, b)
        return a / safe


def _power(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        out = a ** b
    if np.isscalar(out):
        return float("nan") if np.isinf(out) else out
    return _where(np.isinf(out), np.nan, out)


def _call(func, args):
    with np.errstate(invalid="ignore", divide="ignore"):
        x = args[0]
        if func == "sqrt":
            return np.sqrt(_where(x < 0, np.nan, x)) if not np.isscalar(x) else (np.sqrt(x) if x >= 0 else np.nan)
        if func == "log":
            if np.isscalar(x):
                return np.log(x) if x > 0 else np.nan
            return np.log(_where(x <= 0, np.nan, x))
        if func == "abs":
            return abs(x)
        if func == "exp":
            return np.exp(x)
        if func == "tanh":
            return np.tanh(x)
        out = args[0]
        for other in args[1:]:  # np.minimum/np.maximum propagate NaN, as an index with a missing input must
            out = np.minimum(out, other) if func == "min" else np.maximum(out, other)
        return out
