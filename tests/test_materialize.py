"""Materialising layers in memory or spilled to disk gives the same values, and the spill folder is cleaned up."""

import gc

import dask.array as da
import pytest
import numpy as np
import xarray as xr

from ecoassess.materialize import materialize


def _layers():
    rng = np.random.default_rng(0)
    a = rng.random((50, 70)).astype("float32")
    a[3, 4] = np.nan
    b = rng.random((50, 70)) > 0.5
    wrap = lambda x: xr.DataArray(da.from_array(x, chunks=16), dims=("y", "x"))  # noqa: E731
    return {"a": wrap(a), "b": wrap(b)}, a, b


def test_in_memory_and_spilled_are_identical_and_spill_is_removed(tmp_path):
    layers, a, b = _layers()
    mem = materialize(layers, memory_budget_mb=100)
    assert mem.spill_dir is None
    spilled = materialize(layers, memory_budget_mb=0, spill_root=tmp_path)
    folder = spilled.spill_dir
    assert folder.exists() and folder.parent == tmp_path
    for m in (mem, spilled):
        np.testing.assert_array_equal(m["a"].values, a)
        np.testing.assert_array_equal(m["b"].values, b)
        assert m["b"].dtype == bool and m["a"].data.chunks == layers["a"].data.chunks
    del spilled, m
    gc.collect()
    assert not folder.exists()


def test_rsei_with_spilled_indicators_equals_in_memory(monkeypatch):
    from tests.test_rsei import _synthetic

    from ecoassess.assess.rsei import compute_rsei

    ds, valid, _, _ = _synthetic()
    in_memory = compute_rsei(ds, valid).rsei.values
    monkeypatch.setenv("ECOASSESS_MEMORY_BUDGET_MB", "0")
    spilled = compute_rsei(ds, valid)
    assert spilled.cache.spill_dir is not None
    np.testing.assert_array_equal(spilled.rsei.values, in_memory)


def test_the_budget_is_shared_by_every_cache_alive():
    """A second cache spills when the first already holds most of the budget; freeing the first frees it."""
    from ecoassess.materialize import in_memory_mb

    layers, a, _ = _layers()
    size_mb = (a.nbytes + a.size) / 2**20  # float32 + bool
    gc.collect()
    base = in_memory_mb()
    budget = base + 1.5 * size_mb
    first = materialize(layers, memory_budget_mb=budget)
    assert first.spill_dir is None and in_memory_mb() == base + size_mb
    second = materialize(layers, memory_budget_mb=budget)
    assert second.spill_dir is not None  # only half a cache left in the budget
    np.testing.assert_array_equal(second["a"].values, a)
    del first
    gc.collect()
    third = materialize(layers, memory_budget_mb=budget)
    assert third.spill_dir is None


def test_a_runs_budget_overrides_the_environment_inside_its_block(monkeypatch, tmp_path):
    from ecoassess.config import RunSpec
    from ecoassess.materialize import memory_budget, memory_budget_mb

    monkeypatch.setenv("ECOASSESS_MEMORY_BUDGET_MB", "300")
    assert memory_budget_mb() == 300
    layers, a, _ = _layers()
    with memory_budget(0):
        assert memory_budget_mb() == 0
        spilled = materialize(layers, spill_root=tmp_path)
        assert spilled.spill_dir is not None
        np.testing.assert_array_equal(spilled["a"].values, a)
        with memory_budget(None):  # a config without the key changes nothing
            assert memory_budget_mb() == 0
    assert memory_budget_mb() == 300
    assert RunSpec(memory_budget_mb=64).memory_budget_mb == 64
    with pytest.raises(ValueError):
        RunSpec(memory_budget_mb=-1)


@pytest.mark.parametrize("budget_mb", [0, 100])
def test_reductions_ride_along_and_every_chunk_is_computed_once(budget_mb, tmp_path):
    """A statistic's first pass computed with the materialisation reads each input chunk once, not twice."""
    import threading

    from ecoassess.stats import range_reduction, range_results

    rng = np.random.default_rng(1)
    a = rng.random((50, 70)).astype("float32")
    calls, lock = [0], threading.Lock()

    def produce(block):
        with lock:
            calls[0] += 1
        return block * 2

    source = da.from_array(a, chunks=16)
    lazy = xr.DataArray(source.map_blocks(produce, dtype="float32"), dims=("y", "x"))
    calls[0] = 0
    cache = materialize({"a": lazy}, memory_budget_mb=budget_mb, spill_root=tmp_path,
                        reductions=[range_reduction([lazy])])
    assert calls[0] == source.npartitions
    (n, lo, hi), = range_results(*cache.reductions)
    assert (n, lo, hi) == (a.size, float((a * 2).min()), float((a * 2).max()))
    np.testing.assert_array_equal(cache["a"].values, a * 2)


@pytest.mark.parametrize("value", ["abc", "-5", "nan"])
def test_a_bad_memory_budget_in_the_environment_is_named(monkeypatch, value):
    from ecoassess.errors import InputError
    from ecoassess.materialize import memory_budget_mb

    monkeypatch.setenv("ECOASSESS_MEMORY_BUDGET_MB", value)
    with pytest.raises(InputError, match=r"\[ECOASSESS_MEMORY_BUDGET_MB\]: is .* \(expected: a number of MiB >= 0\)"):
        memory_budget_mb()
    monkeypatch.setenv("ECOASSESS_MEMORY_BUDGET_MB", "512")
    assert memory_budget_mb() == 512.0


def test_an_unreachable_scheduler_address_is_named():
    from ecoassess.errors import InputError
    from ecoassess.pipeline import _connect

    with pytest.raises(InputError, match=r"cannot connect to 'notanaddress'.*expected: the address of a running"):
        _connect("notanaddress")
