"""The formula grammar: what it accepts, what it rejects, and its NaN rules."""

import re

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from ecoassess.formula import FormulaError, evaluate, names, parse


@pytest.mark.parametrize("text, expected", [
    ("1 + 2 * 3", 7.0),
    ("(1 + 2) * 3", 9.0),
    ("2 ** 3 ** 2", 512.0),          # right-associative
    ("-2 ** 2", -4.0),               # as in Python: -(2 ** 2)
    ("2 ** -1", 0.5),
    ("10 / 4 - 1", 1.5),
    ("2.75e-5 * 10000 - 0.2", 0.075),
    (".5 + 0.5", 1.0),
    ("sqrt(16) + abs(-2) + exp(0) + log(1)", 7.0),
    ("tanh(0)", 0.0),
    ("max(1, 5, 3) - min(4, 2)", 3.0),
    ("+ 3 - - 2", 5.0),
])
def test_accepted_expressions(text, expected):
    assert evaluate(parse(text), {}) == pytest.approx(expected)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("1 +", "ends too early"),
    ("(1 + 2", "expected ')'"),
    ("1 + 2)", "unexpected ')'"),
    ("nir ^ 2", "unexpected character '^'"),
    ("__import__(1)", "unknown function '__import__'"),
    ("open('x')", "unexpected character"),
    ("eval(1)", "unknown function 'eval'"),
    ("nir.real", "unexpected character '.'"),
    ("sqrt(1, 2)", "takes 1 argument"),
    ("max(1)", "two or more"),
    ("red red", "unexpected 'red'"),
    ("1 2", "unexpected '2'"),
    ("red; 1", "unexpected character ';'"),
])
def test_rejected_expressions(text, message):
    with pytest.raises(FormulaError, match=re.escape(message)):
        parse(text)


def test_names_and_missing_value():
    tree = parse("(nir - red) / (nir + red + L)")
    assert names(tree) == {"nir", "red", "L"}
    with pytest.raises(FormulaError, match="no value given for 'L'"):
        evaluate(tree, {"nir": 1.0, "red": 0.5})


def test_division_by_zero_and_domain_errors_give_nan_not_inf_on_numpy_dask_and_xarray():
    a = np.array([1.0, 0.0, -1.0, np.nan], dtype="float32")
    b = np.array([0.0, 0.0, 2.0, 1.0], dtype="float32")
    tree = parse("a / b + sqrt(b - 1) * 0 + log(b) * 0")
    for wrap in (lambda x: x, lambda x: da.from_array(x, chunks=2), lambda x: xr.DataArray(x, dims="i")):
        out = np.asarray(evaluate(tree, {"a": wrap(a), "b": wrap(b)}))
        assert np.isnan(out[0]) and np.isnan(out[1]) and np.isnan(out[3])  # 1/0, 0/0, NaN input
        assert not np.isinf(out).any()
    assert np.isnan(evaluate(parse("1 / 0"), {}))
    assert np.isnan(evaluate(parse("sqrt(-1)"), {}))
    assert np.isnan(evaluate(parse("max(x, 1)"), {"x": np.nan}))  # a missing input stays missing


def test_repeated_subexpressions_are_computed_once_with_a_memo():
    tree = parse("(a + b) / (a + b) + 2 * (a + b) - (a + b) ** 2")
    rng = np.random.default_rng(2)
    values = {"a": rng.random(50), "b": rng.random(50)}
    memo: dict = {}
    np.testing.assert_array_equal(evaluate(tree, values, memo=memo), evaluate(tree, values))
    sums = [node for node in memo if getattr(node, "op", None) == "+" and getattr(node.left, "name", None) == "a"]
    assert len(sums) == 1  # (a + b) is one entry, evaluated once
    assert len(memo) == 6  # a+b, (a+b)/(a+b), 2*(a+b), (..)+(..), (a+b)**2, the whole tree
