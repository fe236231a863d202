"""Land-cover features and classifier (issue 21 parts 2-3): the stack, training on sample pixels, chunked
prediction equal to the rule that made the classes, determinism, saving and refusing a mismatched model."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from pyproj import CRS

from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.landcover.classify import (check_features, feature_importances, load_model, predict_classes,
                                          save_model, train_classifier)
from ecoassess.landcover.features import sample_features, season_features, season_label, stack_features

pytest.importorskip("sklearn")

GRID = AnalysisGrid(CRS.from_user_input(china_albers_crs()), Affine(30, 0, 0, 0, -30, 3000000), 96, 80)


def rule(a, b):
    """The planted classes: 41 (water) where a < 0.2; else 21 (forest) where b >= 0.5; else 12 (dry land)."""
    return np.where(a < 0.2, 41, np.where(b >= 0.5, 21, 12))


def planted(seed=0):
    """Two informative features a, b and a noise feature, on GRID; classes by :func:`rule`, with a gap of 0.04
    around each break so a forest learns the rule exactly; a NaN hole where the imagery saw nothing."""
    rng = np.random.default_rng(seed)
    h, w = GRID.height, GRID.width
    a = rng.uniform(0, 1, (h, w)).astype("float32")
    b = rng.uniform(0, 1, (h, w)).astype("float32")
    a = np.where(np.abs(a - 0.2) < 0.02, a + 0.04, a)
    b = np.where(np.abs(b - 0.5) < 0.02, b + 0.04, b)
    noise = rng.normal(0, 1, (h, w)).astype("float32")
    a[10:14, 20:30] = np.nan
    layers = {n: GRID.wrap(da.from_array(v, chunks=32)) for n, v in (("a", a), ("b", b), ("noise", noise))}
    with np.errstate(invalid="ignore"):
        classes = rule(a, b)
    return stack_features(layers), classes, np.isfinite(a)


def test_season_labels_and_feature_names_carry_no_year():
    assert season_label([5, 6, 7, 8, 9]) == "m5-9"
    assert season_label([9, 3, 5, 4]) == "m3-5.9"
    bands = xr.Dataset({r: GRID.wrap(da.full(GRID.shape, v, dtype="float32", chunks=32))
                        for r, v in (("red", 0.1), ("nir", 0.3), ("green", 0.05), ("swir1", 0.2))})
    layers = season_features(bands, "m5-9", band_roles=["red", "nir"], indices=["NDVI", "MNDWI"])
    assert list(layers) == ["m5-9:red", "m5-9:nir", "m5-9:NDVI", "m5-9:MNDWI"]
    # NDVI = (0.3 - 0.1)/(0.3 + 0.1) = 0.5; MNDWI = (green - swir1)/(green + swir1) = -0.15/0.25 = -0.6
    assert float(layers["m5-9:NDVI"][0, 0]) == pytest.approx(0.5)
    assert float(layers["m5-9:MNDWI"][0, 0]) == pytest.approx(-0.6)
    with pytest.raises(InputError, match="NBR needs band role"):
        season_features(bands, "m5-9", band_roles=[], indices=["NBR"])


def test_stack_valid_mask_and_sample_features_read_the_cells_asked_for():
    stack, _, finite = planted()
    assert stack.names == ["a", "b", "noise"]
    assert stack.data.data.chunks[0] == (3,)
    np.testing.assert_array_equal(stack.valid.values, finite)
    rows, cols = np.array([0, 79, 11, 40]), np.array([0, 95, 25, 33])
    got = sample_features(stack, rows, cols)
    want = np.stack([stack.data.values[:, r, c] for r, c in zip(rows, cols)])
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[2, 0])     # (11, 25) is in the NaN hole


def _train(stack, classes, finite, seed=0, n=400):
    rng = np.random.default_rng(1)
    cells = np.flatnonzero(finite.ravel())
    pick = np.sort(rng.choice(cells, n, replace=False))
    rows, cols = np.unravel_index(pick, finite.shape)
    X = sample_features(stack, rows, cols)
    return train_classifier(X, classes[rows, cols], stack.names, seed=seed, n_estimators=50, sample_hash="h")


def test_the_chunked_prediction_recovers_the_planted_rule_and_leaves_unobserved_cells_nodata():
    stack, classes, finite = planted()
    model = _train(stack, classes, finite)
    assert model.classes == [12, 21, 41]
    pred = predict_classes(model, stack, nodata=0, batch=500)
    assert pred.dtype == np.uint8 and pred.data.chunks == ((32, 32, 16), (32, 32, 32))
    got = pred.values
    assert (got[~finite] == 0).all()
    # 400 training pixels, breaks with a 0.04 gap: every observed cell gets the class of the rule
    np.testing.assert_array_equal(got[finite], classes[finite])
    imp = feature_importances(model)
    assert imp["feature"].iloc[-1] == "noise"      # the noise feature matters least
    assert imp["importance"].sum() == pytest.approx(1.0)


def test_same_samples_and_seed_give_the_same_map_whatever_the_chunks():
    stack, classes, finite = planted(seed=3)
    m1 = _train(stack, classes, finite, seed=7, n=60)    # few samples: the trees' randomness shows
    m2 = _train(stack, classes, finite, seed=7, n=60)
    m3 = _train(stack, classes, finite, seed=8, n=60)
    p1 = predict_classes(m1, stack).values
    rechunked = stack.data.chunk({"y": 50, "x": 23})
    np.testing.assert_array_equal(p1, predict_classes(m2, rechunked).values)
    trees = lambda m: [t.tree_.threshold.tolist() for t in m.estimator.estimators_]  # noqa: E731
    assert trees(m1) == trees(m2) and trees(m1) != trees(m3)


def test_a_saved_model_loads_predicts_the_same_and_is_refused_when_replaced_or_the_features_differ(tmp_path):
    stack, classes, finite = planted()
    model = _train(stack, classes, finite)
    sidecar = save_model(model, tmp_path / "model")
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    assert meta["feature_names"] == ["a", "b", "noise"] and meta["classes"] == [12, 21, 41]
    assert meta["training_sample_sha256"] == "h" and meta["params"]["random_state"] == 0
    import sklearn

    assert meta["sklearn_version"] == sklearn.__version__
    loaded = load_model(tmp_path / "model")
    np.testing.assert_array_equal(predict_classes(loaded, stack).values, predict_classes(model, stack).values)
    # a stack built with other features: named
    other = stack_features({"a": stack.data.sel(feature="a"), "noise": stack.data.sel(feature="noise"),
                            "slope_deg": stack.data.sel(feature="b")})
    with pytest.raises(InputError, match=r"missing b; not in the model slope_deg"):
        predict_classes(loaded, other)
    with pytest.raises(InputError, match="same features in another order"):
        check_features(loaded, ["b", "a", "noise"])
    # another model's pickle put in its place
    other_model = _train(stack, classes, finite, seed=5)
    save_model(other_model, tmp_path / "other")
    (tmp_path / "model" / "model.pkl").write_bytes((tmp_path / "other" / "model.pkl").read_bytes())
    with pytest.raises(InputError, match="does not match its sidecar"):
        load_model(tmp_path / "model" / "model.json")
    with pytest.raises(InputError, match="no saved land-cover model here"):
        load_model(tmp_path)


def test_training_refuses_missing_features_and_a_single_class():
    X = np.array([[0.1, 0.2], [np.nan, 0.3], [0.5, 0.5]], dtype="float32")
    with pytest.raises(InputError, match="1 training row"):
        train_classifier(X, [11, 12, 11], ["a", "b"])
    with pytest.raises(InputError, match=r"only one class \(11\)"):
        train_classifier(X[[0, 2]], [11, 11], ["a", "b"])
