"""The compiled formula evaluator (ecoassess.formula_vm) against the numpy evaluation of ecoassess.formula."""

import numpy as np
import pytest

from ecoassess import formula as fx
from ecoassess.formula_vm import BLOCK, CONST, POW, compile_program, evaluate_program
from ecoassess.spectral import load_catalog

CATALOG = load_catalog()
RANGES = {"thermal": (250.0, 330.0)}  # kelvin; every other role is reflectance
NUMPY_FAST_EXPONENTS = (-1.0, 0.0, 0.5, 1.0, 2.0)


def _bands(roles, shape=(50, 100), seed=0):
    """Realistic float32 inputs with NaNs, zeros in every band at once, sums that cancel, negatives and outliers."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    cancel = rng.uniform(0.01, 0.5, 16).astype(np.float32)
    out = {}
    for i, role in enumerate(roles):
        lo, hi = RANGES.get(role, (-0.05, 0.6))
        x = rng.uniform(lo, hi, n).astype(np.float32)
        x[rng.random(n) < 0.05] = np.nan
        x[rng.random(n) < 0.02] = 0.0
        x[:16] = 0.0  # all bands zero: 0/0
        x[16:32] = cancel if i % 2 == 0 else -cancel  # b1 + b2 = 0: x/0
        x[32:64] = rng.uniform(-1.0, 1.0, 32)  # outside the usual range: sqrt/log domains, sign changes
        out[role] = x.reshape(shape)
    return out


def _run(formulas, roles, values, constants=None):
    trees = [fx.parse(f) if isinstance(f, str) else f for f in formulas]
    program = compile_program(trees, roles, constants or [{}] * len(trees))
    return program, evaluate_program(program, [values[r] for r in roles])


def _numpy(formula, values, constants=None):
    return np.asarray(fx.evaluate(fx.parse(formula), {**(constants or {}), **values}, memo={}), np.float32)


def _exact(tree, constants) -> bool:
    """Whether the VM must equal numpy bit for bit: no exp/log/tanh, every power on numpy's fast paths."""
    if isinstance(tree, fx.Call):
        return tree.func not in ("exp", "log", "tanh") and all(_exact(a, constants) for a in tree.args)
    if isinstance(tree, fx.Binary):
        if tree.op == "**" and not (fx.names(tree.right) <= set(constants)
                                    and np.float32(fx.evaluate(tree.right, constants)) in NUMPY_FAST_EXPONENTS):
            return False
        return _exact(tree.left, constants) and _exact(tree.right, constants)
    if isinstance(tree, fx.Unary):
        return _exact(tree.operand, constants)
    return True


def _assert_same(vm, ref, exact, name=""):
    assert vm.dtype == np.float32 and vm.shape == ref.shape, name
    if exact:
        np.testing.assert_array_equal(vm, ref, err_msg=name)  # NaN positions included
    else:
        np.testing.assert_allclose(vm, ref, rtol=1e-6, atol=0, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("name", CATALOG.names())
def test_every_catalog_entry_equals_the_numpy_evaluation(name):
    index = CATALOG[name]
    values = _bands(index.bands, seed=len(name))
    program = compile_program([index.tree], index.bands, [index.constants])
    vm = evaluate_program(program, [values[b] for b in index.bands])[0]
    ref = np.broadcast_to(np.asarray(index.evaluate(values), np.float32), vm.shape)
    _assert_same(vm, ref, _exact(index.tree, index.constants), name)
    assert np.isnan(vm).any() and np.isfinite(vm).any()


def test_entries_checked_bit_for_bit_include_the_power_fast_paths():
    exact = {n for n in CATALOG.names() if _exact(CATALOG[n].tree, CATALOG[n].constants)}
    assert {"NDVI", "EVI", "MSAVI", "IBI", "NDBSI", "TCW_OLI_SR", "LST"} <= exact  # MSAVI: (2 nir + 1) ** 2
    assert "kNDVI" not in exact  # tanh


def test_the_whole_catalog_as_one_program_shares_work_and_equals_each_entry():
    names = CATALOG.names()
    indices = [CATALOG[n] for n in names]
    roles = sorted({b for index in indices for b in index.bands})
    values = _bands(roles, seed=3)
    program = compile_program([i.tree for i in indices], roles, [i.constants for i in indices])
    vm = evaluate_program(program, [values[r] for r in roles])
    assert vm.shape == (len(names), 50, 100)
    for k, index in enumerate(indices):
        ref = np.broadcast_to(np.asarray(index.evaluate(values), np.float32), vm.shape[1:])
        _assert_same(vm[k], ref, _exact(index.tree, index.constants), index.name)
    separate = sum(len(compile_program([i.tree], roles, [i.constants]).code) for i in indices)
    assert len(program.code) < separate - 40  # NDBSI repeats SI and IBI, NIRv and kNDVI contain NDVI, ...
    for a, b in (("BSI", "SI"), ("NDSI", "MNDWI")):  # the same formula: one register
        assert program.outputs[names.index(a)] == program.outputs[names.index(b)]


ROLES = ["nir", "red"]


def _values(nir, red):
    return {"nir": np.array(nir, np.float32), "red": np.array(red, np.float32)}


@pytest.mark.parametrize("formula, nir, red, expected", [
    ("nir / 0", [1.0, 0.0, -2.0, np.nan], [0, 0, 0, 0], [np.nan] * 4),
    ("nir / red", [1.0, 0.0, -2.0, np.nan, 1.0], [0.0, 0.0, -0.0, 0.0, 4.0], [np.nan] * 4 + [0.25]),
    ("0 / 0 + nir", [1.0, 2.0], [0, 0], [np.nan, np.nan]),
    ("(nir) ** 0.5", [-1.0, -0.0, 4.0, np.inf], [0, 0, 0, 0], [np.nan, -0.0, 2.0, np.nan]),
    ("sqrt(nir - red)", [0.1, 0.5, 0.3], [0.2, 0.25, 0.3], [np.nan, 0.5, 0.0]),
    ("log(nir)", [-1.0, 0.0, -0.0, 1.0, np.nan], [0] * 5, [np.nan, np.nan, np.nan, 0.0, np.nan]),
    ("nir ** red", [1e20, 2.0, 0.0, 4.0], [3.0, 2.0, -1.0, 0.5], [np.nan, 4.0, np.nan, 2.0]),
    ("nir ** 2", [1e20, 3.0, np.nan], [0, 0, 0], [np.nan, 9.0, np.nan]),
    ("nir ** -1", [0.0, -0.0, 4.0, 1e-39], [0] * 4, [np.nan, np.nan, 0.25, np.nan]),
    ("nir ** 1", [np.inf, -np.inf, 3.0], [0] * 3, [np.nan, np.nan, 3.0]),
    ("nir ** 0", [np.nan, 5.0, np.inf], [0] * 3, [1.0, 1.0, 1.0]),
    ("2 ** nir", [200.0, 3.0], [0, 0], [np.nan, 8.0]),
    ("min(nir, red)", [np.nan, 1.0, 1.0], [1.0, np.nan, 2.0], [np.nan, np.nan, 1.0]),
    ("max(nir, red, 0.5)", [np.nan, 1.0, 0.1, 0.1], [1.0, np.nan, 0.2, 0.7], [np.nan, np.nan, 0.5, 0.7]),
    ("min(0.5, 0.25, nir)", [0.1, 0.3, np.nan], [0] * 3, [0.1, 0.25, np.nan]),
    ("-nir + +red", [1.0, np.nan], [3.0, 1.0], [2.0, np.nan]),
    ("abs(nir) * exp(red) - tanh(nir)", [-1.0, np.nan], [0.0, 0.0], [1.0 + np.tanh(1.0), np.nan]),
])
def test_nan_rules_and_values_equal_numpy(formula, nir, red, expected):
    values = _values(nir, red)
    _, vm = _run([formula], ROLES, values)
    np.testing.assert_allclose(vm[0], np.array(expected, np.float32), rtol=1e-6, equal_nan=True)
    exact = _exact(fx.parse(formula), {})
    with np.errstate(over="ignore"):
        _assert_same(vm[0], np.broadcast_to(_numpy(formula, values), vm.shape[1:]), exact, formula)


def test_arithmetic_is_float32_with_constants_rounded_to_float32_and_constant_parts_folded_in_float64():
    values = _bands(ROLES, shape=(4000,), seed=5)
    for formula in ("nir * 0.1 + red / 3", "(1 + 0.5) * (nir - red) / (nir + red + 0.5)", "nir * 2 * 2.4",
                    "2 * 2.4 * nir", "-(0.1 + 0.2) * nir", "nir - 273.15", "(nir * 1.1) ** 2 - 8 * red",
                    "sqrt(2) * nir", "min(0.3, 0.2, 1) * red + exp(1)"):  # functions of constants: weak too
        _, vm = _run([formula], ROLES, values)
        np.testing.assert_array_equal(vm[0], _numpy(formula, values), err_msg=formula)


def test_repeated_subexpressions_are_computed_once():
    tree = fx.parse("((nir - red) / (nir + red)) ** 2 + 2 * ((nir - red) / (nir + red)) + (nir + red)")
    n_nodes = _count_nodes(tree)
    values = _bands(ROLES, shape=(300,), seed=1)
    program, vm = _run([tree], ROLES, values)
    assert len(program.code) < n_nodes - 4  # nir - red, nir + red and the ratio once each
    np.testing.assert_array_equal(vm[0], _numpy("((nir - red) / (nir + red)) ** 2 + 2 * ((nir - red) / (nir + red))"
                                                " + (nir + red)", values))


def _count_nodes(node):
    if isinstance(node, fx.Unary):
        return 1 + _count_nodes(node.operand)
    if isinstance(node, fx.Binary):
        return 1 + _count_nodes(node.left) + _count_nodes(node.right)
    if isinstance(node, fx.Call):
        return 1 + sum(_count_nodes(a) for a in node.args)
    return 1


def test_outputs_share_subexpressions_but_not_across_different_constant_values():
    values = _bands(ROLES, shape=(300,), seed=2)
    formulas = ["(nir - red) / (nir + red)", "(1 + L) * (nir - red) / (nir + red + L)", "L * nir", "L * nir"]
    constants = [{}, {"L": 0.5}, {"L": 0.5}, {"L": 1.0}]
    program, vm = _run(formulas, ROLES, values, constants)
    alone = sum(len(compile_program([fx.parse(f)], ROLES, [c]).code) for f, c in zip(formulas, constants))
    assert len(program.code) < alone
    for k, (formula, consts) in enumerate(zip(formulas, constants)):
        np.testing.assert_array_equal(vm[k], _numpy(formula, values, consts), err_msg=formula)
    assert not np.array_equal(vm[2], vm[3], equal_nan=True)
    same = compile_program([fx.parse("L * nir"), fx.parse("0.5 * nir")], ROLES, [{"L": 0.5}, {}])
    assert same.outputs[0] == same.outputs[1]  # equal constant values: one computation


def test_constant_only_and_bare_band_formulas():
    values = _bands(ROLES, shape=(8, 12), seed=4)
    program, vm = _run(["2 * 3.5 - 1", "red", "-(2 ** 3)", "min(1, 2) + max(3, 4)"], ROLES, values)
    assert vm.shape == (4, 8, 12)
    np.testing.assert_array_equal(vm[0], np.full((8, 12), 6.0, np.float32))
    np.testing.assert_array_equal(vm[1], values["red"])
    np.testing.assert_array_equal(vm[2], np.full((8, 12), -8.0, np.float32))
    np.testing.assert_array_equal(vm[3], np.full((8, 12), 5.0, np.float32))
    assert set(program.code[:, 0]) == {CONST}


def test_a_long_chain_reuses_registers():
    formula = "nir"
    for k in range(30):
        formula = f"({formula}) * red + nir"
    values = _bands(ROLES, shape=(2000,), seed=6)
    program, vm = _run([formula], ROLES, values)
    assert len(program.code) == 60
    assert program.n_registers <= 4
    np.testing.assert_array_equal(vm[0], _numpy(formula, values))


def test_a_wide_sum_of_products_reuses_registers():
    formula = " + ".join(f"{k + 1}.5 * nir * red" if k % 2 else f"(nir - {k}.25) * red" for k in range(30))
    values = _bands(ROLES, shape=(2000,), seed=7)
    program, vm = _run([formula], ROLES, values)
    n_consts = int((program.code[:, 0] == CONST).sum())
    assert program.n_registers <= len(ROLES) + n_consts + 3 < len(program.code) / 2
    np.testing.assert_array_equal(vm[0], _numpy(formula, values))


@pytest.mark.parametrize("npx", [0, 1, BLOCK - 1, BLOCK, 2 * BLOCK + 7])
def test_any_number_of_pixels(npx):
    values = {r: v.reshape(-1)[:npx] for r, v in _bands(ROLES, shape=(3 * BLOCK,), seed=npx).items()}
    formulas = ["(nir - red) / (nir + red)", "0.5 * (2 * nir + 1 - sqrt((2 * nir + 1) ** 2 - 8 * (nir - red)))", "3"]
    _, vm = _run(formulas, ROLES, values)
    assert vm.shape == (3, npx)
    for k, formula in enumerate(formulas):
        np.testing.assert_array_equal(vm[k], np.broadcast_to(_numpy(formula, values), (npx,)), err_msg=formula)


def test_inputs_of_other_dtypes_are_converted_to_float32_first():
    values = _bands(ROLES, shape=(500,), seed=8)
    wide = {r: v.astype(np.float64) for r, v in values.items()}
    strided = {r: np.stack([v, v], axis=1)[:, 0] for r, v in values.items()}
    formula = ["(nir - red) / (nir + red) * 1.7"]
    expected = _run(formula, ROLES, values)[1]
    for other in (wide, strided):
        np.testing.assert_array_equal(_run(formula, ROLES, other)[1], expected)


def test_program_layout_and_errors():
    program = compile_program([fx.parse("nir ** red + nir ** 2.5"), fx.parse("nir")], ["nir", "red", "blue"], [{}, {}])
    assert program.code.dtype == np.int32 and program.code.shape[1] == 4
    assert program.consts.dtype == np.float32 and program.outputs.tolist()[1] == 0
    assert program.roles == ("nir", "red", "blue")
    assert (program.code[:, 0] == POW).sum() == 2
    with pytest.raises(fx.FormulaError, match="'L'"):
        compile_program([fx.parse("L * nir")], ["nir"], [{}])
    with pytest.raises(ValueError, match="takes 3 input"):
        evaluate_program(program, [np.zeros(3, np.float32)])
