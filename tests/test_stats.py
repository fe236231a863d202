import dask.array as da
import numpy as np
import pytest

import ecoassess.stats as st
from ecoassess.errors import AllMaskedError
from ecoassess.grid import AnalysisGrid
from ecoassess.stats import streaming_covariance, streaming_quantiles

QS = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0, 0.333, 0.9999]


def _valid(x, mask=None):
    ok = np.isfinite(x) if x.dtype.kind == "f" else np.ones(x.shape, bool)
    if mask is not None:
        ok &= ~mask
    return x[ok]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8"])
@pytest.mark.parametrize("gather_limit", [1, 50, 1 << 22])
def test_quantiles_equal_numpy_exactly_with_ties_nans_and_masks(dtype, gather_limit, monkeypatch):
    monkeypatch.setattr(st, "GATHER_LIMIT", gather_limit)  # small limits force several refinement passes
    rng = np.random.default_rng(42)
    x = rng.normal(50, 20, (97, 61))
    x = np.round(x, 0 if dtype in ("int16", "uint8") else 1)  # many ties
    x = np.clip(x, 0, 255).astype(dtype)
    if x.dtype.kind == "f":
        x[rng.random(x.shape) < 0.1] = np.nan
    mask = rng.random(x.shape) < 0.15
    got = streaming_quantiles(da.from_array(x, chunks=(13, 17)), QS, mask=da.from_array(mask, chunks=(20, 20)))
    ref = np.quantile(_valid(x, mask), QS)
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)


def test_quantiles_xarray_layer_and_value_range():
    grid = AnalysisGrid.from_bounds((0, 0, 300, 200), 10, "EPSG:3035")
    rng = np.random.default_rng(1)
    ndvi = rng.uniform(-0.2, 0.9, grid.shape).astype("float32")
    ndvi[:3] = np.nan
    layer = grid.wrap(da.from_array(ndvi, chunks=7), name="ndvi")
    ref = np.quantile(_valid(ndvi), [0.05, 0.95])
    np.testing.assert_array_equal(streaming_quantiles(layer, [0.05, 0.95]), ref)
    # values outside a declared range fall in the end bins and stay exact
    np.testing.assert_array_equal(streaming_quantiles(layer, [0.05, 0.95], value_range=(0.0, 0.5)), ref)


def test_quantiles_scalar_q_single_value_and_huge_tie():
    x = np.full((40, 40), 3.25, dtype="float32")
    assert streaming_quantiles(x, 0.5) == np.quantile(x, 0.5)
    one = np.array([[np.nan, 7.0]])
    np.testing.assert_array_equal(streaming_quantiles(one, QS), np.quantile([7.0], QS))
    y = np.zeros(10_000)
    y[:3] = [1.0, 2.0, -1.0]
    np.testing.assert_array_equal(streaming_quantiles(da.from_array(y, chunks=999), QS), np.quantile(y, QS))


def test_quantiles_all_masked_raises_clear_error():
    x = np.ones((10, 10), dtype="float32")
    with pytest.raises(AllMaskedError, match="NaN or masked"):
        streaming_quantiles(x, [0.5], mask=np.ones((10, 10), bool))
    with pytest.raises(AllMaskedError):
        streaming_quantiles(np.full((4, 4), np.nan), [0.5], value_range=(0, 1))


def test_covariance_matches_numpy_and_sklearn_pca():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(7)
    shape = (123, 77)
    base = rng.normal(size=(4,) + shape)
    layers = [base[0] * 2 + 1000, base[0] + base[1], base[2] * 0.01 - 5, base[3] + 0.5 * base[1]]
    layers = [lay.astype("float32") for lay in layers]
    layers[1][rng.random(shape) < 0.05] = np.nan
    mask = rng.random(shape) < 0.1
    res = streaming_covariance([da.from_array(lay, chunks=(19, 23)) for lay in layers], mask=mask)
    ok = ~mask & np.all([np.isfinite(lay) for lay in layers], axis=0)
    X = np.column_stack([lay[ok].astype(np.float64) for lay in layers])
    assert res.n == X.shape[0]
    np.testing.assert_allclose(res.mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(res.cov, np.cov(X, rowvar=False), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(res.cov_population, np.cov(X, rowvar=False, ddof=0), rtol=1e-10, atol=1e-14)
    eig, vec = res.pca()
    pca = PCA().fit(X)
    np.testing.assert_allclose(eig, pca.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(np.abs(vec[:, 0]), np.abs(pca.components_[0]), rtol=1e-7, atol=1e-10)


def test_covariance_all_masked():
    with pytest.raises(AllMaskedError):
        streaming_covariance([np.full((5, 5), np.nan), np.ones((5, 5))])


def test_quantiles_of_several_layers_in_shared_passes_equal_numpy(monkeypatch):
    from ecoassess.stats import streaming_quantiles_many

    monkeypatch.setattr(st, "GATHER_LIMIT", 64)  # force a second histogram level for some layers
    rng = np.random.default_rng(3)
    shape = (90, 70)
    layers = {"ndvi": rng.uniform(-0.2, 0.9, shape).astype("float32"),
              "lst": rng.normal(300.0, 4.0, shape),                      # float64, large mean
              "count": rng.integers(0, 12, shape).astype("uint8"),       # ties everywhere
              "flat": np.full(shape, 0.25, "float32")}                   # one repeated value
    layers["ndvi"][rng.random(shape) < 0.2] = np.nan
    mask = rng.random(shape) < 0.1
    qs = [0.005, 0.5, 0.995]
    got = streaming_quantiles_many({k: da.from_array(v, chunks=(17, 29)) for k, v in layers.items()}, qs,
                                   mask=mask, value_ranges={"ndvi": (-1.0, 1.0)})
    assert list(got) == list(layers)
    for name, x in layers.items():
        ref = np.quantile(_valid(x, mask), qs)
        assert got[name].dtype == ref.dtype, name
        np.testing.assert_array_equal(got[name], ref, err_msg=name)


def test_ranges_of_several_layers_in_one_pass():
    from ecoassess.stats import streaming_range, streaming_ranges

    rng = np.random.default_rng(4)
    a = rng.normal(size=(40, 30)).astype("float32")
    a[:5] = np.inf  # ±inf is not valid
    b = np.full((40, 30), np.nan)
    mask = np.zeros((40, 30), bool)
    mask[:, :3] = True
    got = streaming_ranges({"a": da.from_array(a, chunks=11), "b": b}, mask=mask)
    ok = np.isfinite(a) & ~mask
    assert got["a"] == (int(ok.sum()), float(a[ok].min()), float(a[ok].max()))
    assert got["b"] == (0, np.inf, -np.inf)
    assert streaming_range(np.arange(6).reshape(2, 3)) == (6, 0.0, 5.0)


def test_covariance_stays_accurate_with_large_means():
    """Shifted sums: layers with a mean 10⁴ times their spread (LST in K) keep ~1e-9 relative accuracy."""
    rng = np.random.default_rng(5)
    base = rng.normal(size=(2, 300, 200))
    layers = [(290.0 + 0.03 * base[0]).astype("float32"), (0.5 * base[0] + base[1]).astype("float32")]
    X = np.column_stack([lay.ravel().astype(np.float64) for lay in layers])
    res = streaming_covariance([da.from_array(lay, chunks=64) for lay in layers])
    np.testing.assert_allclose(res.cov, np.cov(X, rowvar=False), rtol=1e-9)
    np.testing.assert_allclose(res.mean, X.mean(axis=0), rtol=1e-12)


def test_gather_envelope_holds_every_member_of_its_interval():
    """The gather kernel skips values outside an interval's envelope before binning them: the envelope must hold
    every value whose bins follow the chain — bin edges, clipped end bins and a deep (tiny) interval included."""
    from ecoassess import stats_kernels as k

    rng = np.random.default_rng(4)
    nbins = 64
    edges = -1.0 + np.arange(nbins + 1) * (2.0 / nbins)
    x = np.concatenate([rng.uniform(-1.5, 1.5, 200_000), edges, np.nextafter(edges, -np.inf),
                        np.nextafter(edges, np.inf), [-1e30, 1e30]])
    scale = nbins / 2.0
    b0 = np.clip(np.floor((x + 1.0) * scale), 0, nbins - 1)
    for first in (0, 17, nbins - 1):
        inside = x[b0 == first]
        lo, hi = k.interval_envelope([-1.0], [scale], [first], nbins)
        assert lo <= inside.min() and inside.max() <= hi, first
        # a second level inside that bin: values binned again over the bin's own range
        a = -1.0 + first / scale
        deep = np.clip(np.floor((inside - a) * (nbins * scale)), 0, nbins - 1)
        for second in np.unique(deep)[[0, -1]]:
            lo2, hi2 = k.interval_envelope([-1.0, a], [scale, nbins * scale], [first, int(second)], nbins)
            members = inside[deep == second]
            assert lo2 <= members.min() and members.max() <= hi2
    values, owner = k.gather(x, np.zeros(x.size, bool), np.array([[-1.0], [-1.0]]), np.array([[scale], [scale]]),
                             np.array([[0], [nbins - 1]]), nbins, *np.array(
                                 [k.interval_envelope([-1.0], [scale], [b], nbins) for b in (0, nbins - 1)]).T.copy())
    np.testing.assert_array_equal(np.sort(values[owner == 0]), np.sort(x[b0 == 0]))
    np.testing.assert_array_equal(np.sort(values[owner == 1]), np.sort(x[b0 == nbins - 1]))
    # adjacent intervals (ranks k and k + 1 in neighbouring bins): a value in one envelope's margin but in the
    # other interval must still be found there, in either order of the intervals
    for order in ([17, 18], [18, 17]):
        near = np.array([k.interval_envelope([-1.0], [scale], [b], nbins) for b in order])
        values, owner = k.gather(x, np.zeros(x.size, bool), np.full((2, 1), -1.0), np.full((2, 1), scale),
                                 np.array(order).reshape(2, 1), nbins, near[:, 0].copy(), near[:, 1].copy())
        for t, b in enumerate(order):
            np.testing.assert_array_equal(np.sort(values[owner == t]), np.sort(x[b0 == b]), err_msg=str(order))


def test_quantiles_with_huge_values_outside_the_value_range_stay_exact():
    """Values far outside the given range fall into the end bins (their bin index must not overflow)."""
    from ecoassess.stats import streaming_quantiles

    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (60, 70))
    x[0, :40] = 1e30
    x[1, :40] = -3e25
    got = streaming_quantiles(da.from_array(x, chunks=16), [0.005, 0.5, 0.995], value_range=(-1, 1))
    np.testing.assert_array_equal(got, np.quantile(x, [0.005, 0.5, 0.995]))
