"""RSEI (STANDARDS §3) against an independent numpy/scikit-learn computation and on real scenes."""

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from affine import Affine

from ecoassess.assess.rsei import (RseiSettings, RseiWarning, compute_rsei, rsei_change, rsei_grade,
                                   rsei_indicators, water_mask)
from ecoassess.grid import AnalysisGrid, china_albers_crs


def _grid(h, w):
    return AnalysisGrid(china_albers_crs(), Affine(30, 0, 0, 0, -30, 30 * h), w, h)


def _synthetic(seed=1, h=40, w=50, shift=0.0):
    rng = np.random.default_rng(seed)
    g = rng.random((h, w))                      # "greenness" driver
    ndvi = 0.1 + 0.7 * g + 0.05 * rng.standard_normal((h, w)) + shift
    wet = -0.2 + 0.15 * g + 0.03 * rng.standard_normal((h, w))
    lst = 38 - 12 * g + 1.5 * rng.standard_normal((h, w))
    ndbsi = 0.2 - 0.5 * g + 0.05 * rng.standard_normal((h, w))
    grid = _grid(h, w)
    wrap = lambda a: grid.wrap(da.from_array(a.astype("float32"), chunks=16))  # noqa: E731
    ds = xr.Dataset({"ndvi": wrap(ndvi), "wet": wrap(wet), "lst_celsius": wrap(lst), "ndbsi": wrap(ndbsi)})
    valid = np.ones((h, w), bool)
    valid[:5, :7] = False
    return ds, grid.wrap(da.from_array(valid, chunks=16)), np.stack([ndvi, wet, lst, ndbsi]).astype("float32"), valid


@pytest.mark.parametrize("normalisation", ["minmax", "percentile"])
def test_rsei_matches_numpy_and_sklearn_pca(normalisation):
    from sklearn.decomposition import PCA

    ds, valid, raw, vmask = _synthetic()
    settings = RseiSettings.from_spec(normalisation=normalisation)
    result = compute_rsei(ds, valid, settings=settings)
    # independent reference
    x = raw[:, vmask].T.astype("float64")               # (n, 4)
    if normalisation == "minmax":
        lo, hi = x.min(axis=0), x.max(axis=0)
        xn = (x - lo) / (hi - lo)
    else:
        lo, hi = np.quantile(x, 0.005, axis=0), np.quantile(x, 0.995, axis=0)
        xn = np.clip((x - lo) / (hi - lo), 0, 1)
    pca = PCA(n_components=4).fit(xn)
    pc1 = pca.components_[0]
    if pc1[0] + pc1[1] - pc1[2] - pc1[3] < 0:
        pc1 = -pc1
    score = xn @ pc1
    ref = (score - score.min()) / (score.max() - score.min())
    ours = np.asarray(result.rsei.values)[vmask]
    np.testing.assert_allclose(ours, ref, atol=2e-5)
    np.testing.assert_allclose(list(result.loadings.values()), pc1, atol=1e-6)
    np.testing.assert_allclose(result.eigenvalues, pca.explained_variance_, rtol=1e-6)
    assert result.pc1_share == pytest.approx(pca.explained_variance_ratio_[0], rel=1e-6)
    assert result.loadings["ndvi"] > 0 and result.loadings["wet"] > 0
    assert result.loadings["lst_celsius"] < 0 and result.loadings["ndbsi"] < 0
    assert np.isnan(result.rsei.values[0, 0])  # outside the valid pixels
    assert result.summary()["normalisation"] == normalisation


def test_grades_follow_the_standard_boundaries():
    grid = _grid(1, 7)
    values = np.array([[0.0, 0.1999, 0.2, 0.4, 0.7999, 1.0, np.nan]], "float32")
    grade = rsei_grade(grid.wrap(values)).values
    assert grade.tolist() == [[1, 1, 2, 3, 4, 5, 0]]


def test_joint_pca_two_years_gives_one_set_of_loadings_and_change_classes():
    ds1, valid1, _, _ = _synthetic(seed=1)
    ds2, valid2, _, _ = _synthetic(seed=1, shift=0.15)  # year 2 greener everywhere
    r1, r2 = compute_rsei([ds1, ds2], [valid1, valid2], years=[2023, 2024])
    assert r1.loadings == r2.loadings and r1.joint and r2.joint
    delta, classes = rsei_change(r1, r2)
    d = delta.values[np.isfinite(delta.values)]
    assert (d > 0).mean() > 0.9
    assert set(np.unique(classes.values)) <= {-99, -2, -1, 0, 1, 2}
    assert (classes.values >= 0).sum() > (classes.values == -1).sum()


def test_a_year_without_any_usable_pixel_in_a_joint_pca_is_an_error_not_nan_tables():
    """A thermal band all fill in one year made that year's tables NaN, silently (the run exited 0)."""
    from ecoassess.errors import AllMaskedError

    ds1, valid1, _, _ = _synthetic(seed=1)
    ds2, valid2, _, _ = _synthetic(seed=2)
    ds2["lst_celsius"] = ds2["lst_celsius"] * np.nan
    with pytest.raises(AllMaskedError, match=r"in year\(s\) 2024: a thermal band without data"):
        compute_rsei([ds1, ds2], [valid1, valid2], years=[2023, 2024])


@pytest.mark.parametrize("normalisation", ["minmax", "percentile"])
@pytest.mark.parametrize("with_valid_ranges", [False, True])
def test_joint_bounds_and_pixel_counts_equal_numpy_over_both_years(normalisation, with_valid_ranges):
    """The first bounds pass runs while the indicators are materialised, year by year; merged, it must give the
    bounds numpy finds over both years' pixels (exact quantiles / min-max) and each year's pixel count."""
    (ds1, valid1, raw1, m1), (ds2, valid2, raw2, m2) = _synthetic(seed=1), _synthetic(seed=3, shift=0.1)
    m2 = m2.copy()
    m2[10:20, 20:30] = False
    valid2 = valid2.copy(data=da.from_array(m2, chunks=16))
    if with_valid_ranges:  # catalog ranges: the first pass is a histogram (values outside a range are NaN since
        # issue 18 item 5, so the ranges here hold every value: LST 26…38 °C inside −20…60)
        for ds in (ds1, ds2):
            for name, vr in zip(ds.data_vars, [(-1, 1.5), (-1, 1), (-20, 60), (-1, 1)]):
                ds[name].attrs["valid_range"] = vr
    settings = RseiSettings.from_spec(normalisation=normalisation)
    r1, r2 = compute_rsei([ds1, ds2], [valid1, valid2], years=[2023, 2024], settings=settings)
    assert (r1.n_pixels, r2.n_pixels) == (int(m1.sum()), int(m2.sum()))
    x = np.concatenate([raw1[:, m1], raw2[:, m2]], axis=1)
    for i, name in enumerate(ds1.data_vars):
        if normalisation == "minmax":
            expected = (x[i].min(), x[i].max())
        else:
            expected = tuple(np.quantile(x[i], [settings.lower_quantile, settings.upper_quantile]))
        assert r1.bounds[name] == r2.bounds[name] == tuple(float(v) for v in expected), name


def test_separate_pcas_warn_that_change_is_not_strictly_comparable():
    ds1, valid1, _, _ = _synthetic(seed=1)
    ds2, valid2, _, _ = _synthetic(seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r1, r2 = compute_rsei(ds1, valid1), compute_rsei(ds2, valid2)
    with pytest.warns(RseiWarning, match="joint PCA"):
        rsei_change(r1, r2)


def test_rsei_on_the_liverpool_crop_orders_loadings_as_physics_says(shared_data):
    from ecoassess.sources import open_landsat_c2l2

    scene = open_landsat_c2l2(shared_data / "landsat8-c2l2-liverpool-20200927")
    ind = rsei_indicators(scene.bands, scene.thermal_k, sensor=scene.sensor)
    settings = RseiSettings.from_spec()
    water = water_mask(scene.bands, scene.clear, settings)
    result = compute_rsei(ind, scene.clear & ~water, settings=settings)
    loads = result.loadings
    assert loads["ndvi"] > 0 and loads["wet"] > 0 and loads["lst_celsius"] < 0 and loads["ndbsi"] < 0, loads
    assert 0.4 < result.pc1_share <= 1.0
    # greener pixels score higher: mean RSEI of the top NDVI decile above that of the bottom decile
    ndvi = ind["ndvi"].values
    r = result.rsei.values
    ok = np.isfinite(r) & np.isfinite(ndvi)
    hi, lo = np.quantile(ndvi[ok], [0.9, 0.1])
    assert r[ok & (ndvi >= hi)].mean() > r[ok & (ndvi <= lo)].mean() + 0.2


def test_near_constant_desert_scene_warns_about_low_variance(shared_data):
    from ecoassess.sources import open_sentinel2_l2a

    folder = shared_data / "sentinel2-l2a-fulltile-decimated-29RKH-20200219"
    scene = open_sentinel2_l2a(folder)
    grid = scene.grid
    rng = np.random.default_rng(0)
    thermal = grid.wrap(da.from_array((305 + rng.normal(0, 3, grid.shape)).astype("float32"), chunks=512))
    ind = rsei_indicators(scene.bands, thermal, sensor="sentinel2", wetness_index="TCW_OLI_SR")
    with pytest.warns(RseiWarning, match="low variance: ndvi spans only"):
        compute_rsei(ind, scene.clear, settings=RseiSettings.from_spec(water_mask="none"))


def test_otsu_water_threshold_minimises_within_class_variance_on_the_raw_values():
    """Otsu (1979) from the streaming histogram agrees, to one histogram bin, with a brute-force search of the
    threshold minimising the within-class variance of the raw MNDWI values; the water mask is MNDWI above it."""
    from ecoassess.assess.rsei import otsu_threshold

    rng = np.random.default_rng(8)
    h, w = 60, 80
    mndwi = np.where(rng.random((h, w)) < 0.3, rng.normal(0.35, 0.08, (h, w)), rng.normal(-0.45, 0.1, (h, w)))
    mndwi = mndwi.astype("float32")
    mndwi[0, :10] = np.nan
    valid = np.ones((h, w), bool)
    valid[-3:, :] = False
    grid = _grid(h, w)
    layer, valid_da = grid.wrap(da.from_array(mndwi, chunks=16)), grid.wrap(da.from_array(valid, chunks=16))
    threshold = otsu_threshold(layer, valid_da)
    x = mndwi[valid & np.isfinite(mndwi)].astype("float64")
    candidates = np.linspace(-1, 1, 4001)
    within = [x[x <= t].var() * (x <= t).sum() + x[x > t].var() * (x > t).sum() if 0 < (x <= t).sum() < x.size
              else np.inf for t in candidates]
    assert abs(threshold - candidates[int(np.argmin(within))]) <= 2 / 1024 + 1e-9
    assert -0.3 < threshold < 0.2
    bands = xr.Dataset({"green": grid.wrap(da.from_array(np.ones((h, w), "float32"), chunks=16)),
                        "swir1": grid.wrap(da.from_array(((1 - mndwi) / (1 + mndwi)).astype("float32"),
                                                         chunks=16))})
    water = water_mask(bands, valid_da, RseiSettings.from_spec(water_mask="otsu")).values
    recomputed = (1 - (1 - mndwi) / (1 + mndwi)) / (1 + (1 - mndwi) / (1 + mndwi))  # MNDWI of those bands
    expected = (recomputed > threshold) & valid
    assert (water == expected).mean() > 0.999 and water.sum() > 0.2 * valid.sum()


@pytest.mark.parametrize("loadings, flipped, why", [
    # the audit's coastal scene without a water mask: LST and NDBSI outweigh NDVI/WET in a sum of signs, which
    # kept PC1 as it was and inverted the whole RSEI; by the rule NDVI and WET loading negatively means 1 − PC1
    ({"ndvi": -0.10, "wet": -0.12, "lst_celsius": -0.75, "ndbsi": 0.20}, True, "load negatively"),
    ({"ndvi": 0.45, "wet": 0.30, "lst_celsius": 0.60, "ndbsi": 0.55}, False, "load positively"),
    ({"ndvi": -0.40, "wet": 0.05, "lst_celsius": 0.50, "ndbsi": 0.60}, True, "disagree"),
    ({"ndvi": 0.40, "wet": -0.05, "lst_celsius": -0.50, "ndbsi": -0.60}, False, "disagree"),
])
def test_pc1_is_oriented_by_the_documented_rule_on_ndvi_and_wet(loadings, flipped, why):
    from ecoassess.assess.rsei import orient_pc1

    got, reason = orient_pc1(loadings)
    assert got is flipped and why in reason
    expected = {"ndvi": 1, "wet": 1, "lst_celsius": -1, "ndbsi": -1}
    old_rule = sum(expected[k] * v for k, v in loadings.items()) < 0
    if loadings["ndvi"] < 0 and loadings["wet"] < 0:
        assert old_rule != flipped  # the case the old sum-of-signs rule got wrong
