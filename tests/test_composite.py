"""Composites: median of clear observations and counts against numpy; monthly max NDVI against a hand computation."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from ecoassess.errors import AllMaskedError, InputError
from ecoassess.sources import composite, open_geotiff_scene, open_landsat_c2l2

CRS48 = CRS.from_epsg(32648)
T = Affine(30, 0, 400000, 0, -30, 3300000)


def write(path, arr, transform=T, nodata=0):
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype=arr.dtype, crs=CRS48, transform=transform, nodata=nodata) as dst:
        dst.write(arr, 1)
    return path


def make_scene(folder, date, red, nir, qa, chunk=4, transform=T):
    """A geotiff scene: DN × 1e-4 reflectance, QA 0 = clear, 1 = cloud, 255 = no data."""
    folder.mkdir(parents=True, exist_ok=True)
    bands = {"red": write(folder / "red.tif", red, transform), "nir": write(folder / "nir.tif", nir, transform)}
    mask = {"path": write(folder / "qa.tif", qa, transform, nodata=255), "clear_values": [0]}
    return open_geotiff_scene(bands, None, date=date, scale=1e-4, mask=mask, chunk=chunk)


@pytest.fixture()
def stack(tmp_path):
    rng = np.random.default_rng(42)
    dates = ["2021-04-20", "2021-05-10", "2021-05-25", "2021-06-15", "2021-07-01", "2021-08-20"]
    shape = (8, 10)
    scenes, raw = [], []
    for i, d in enumerate(dates):
        red = rng.integers(200, 3000, size=shape).astype("uint16")
        nir = rng.integers(1000, 6000, size=shape).astype("uint16")
        qa = (rng.random(shape) < 0.3).astype("uint8")  # 30 % cloud
        qa[0, 0] = 255            # pixel (0, 0) never observed
        red[0, 0] = 0
        qa[1, 1] = 1              # pixel (1, 1) always cloudy
        if i == 2:
            qa[7, :] = 255        # a strip outside this scene's footprint
        scenes.append(make_scene(tmp_path / f"s{i}", d, red, nir, qa))
        raw.append((d, red, nir, qa))
    return scenes, raw


def test_median_and_counts_match_numpy(stack, caplog):
    scenes, raw = stack
    with caplog.at_level(logging.INFO, logger="ecoassess.sources.composite"):
        comp = composite(scenes, method="median", months=(5, 6, 7, 8, 9))
    assert "2021-04-20" in caplog.text and "month 4" in caplog.text  # the April scene is dropped, with a log line
    used = [r for r in raw if r[0] != "2021-04-20"]
    assert [d.isoformat() for d in comp.dates] == [r[0] for r in used]
    qa = np.stack([r[3] for r in used])
    red = np.stack([r[1] for r in used]).astype(np.float64) * 1e-4
    nir = np.stack([r[2] for r in used]).astype(np.float64) * 1e-4
    valid = (qa != 255) & (np.stack([r[1] for r in used]) != 0)
    clear = valid & (qa == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        exp_red = np.nanmedian(np.where(clear, red, np.nan), axis=0)
        exp_nir = np.nanmedian(np.where(clear, nir, np.nan), axis=0)
    assert comp.bands["red"].data.chunks == ((4, 4), (4, 4, 2))  # lazy, chunked like the scenes
    np.testing.assert_allclose(comp.bands["red"].values, exp_red, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(comp.bands["nir"].values, exp_nir, atol=1e-6, equal_nan=True)
    assert comp.clear_count.dtype == np.int16
    np.testing.assert_array_equal(comp.clear_count.values, clear.sum(axis=0))
    np.testing.assert_array_equal(comp.valid_count.values, valid.sum(axis=0))
    np.testing.assert_array_equal(comp.nodata.values, valid.sum(axis=0) == 0)
    np.testing.assert_array_equal(comp.masked.values, (valid.sum(axis=0) > 0) & (clear.sum(axis=0) == 0))
    assert comp.nodata.values[0, 0] and comp.masked.values[1, 1]
    assert np.isnan(comp.bands["red"].values[1, 1]) and np.isnan(comp.bands["red"].values[0, 0])
    assert comp.valid_count.values[7, 3] == valid[:, 7, 3].sum() < 5  # the strip outside scene 3

    comp3 = composite(scenes, months=(5, 6, 7, 8, 9), min_clear=3)
    n = clear.sum(axis=0)
    red3 = comp3.bands["red"].values
    assert np.isnan(red3[n < 3]).all() and not np.isnan(red3[n >= 3]).any()
    np.testing.assert_array_equal(comp3.masked.values, (valid.sum(axis=0) > 0) & (n < 3))


def test_monthly_max_ndvi_by_hand(tmp_path):
    # pixel A (0, 0): May NDVI 0.5 and 0.7 -> 0.7; June 0.6 clear and 0.9 cloudy -> 0.6; July cloudy only
    #                 -> mean(0.7, 0.6) = 0.65 over 2 months
    # pixel B (0, 1): always cloudy -> NaN, masked
    # pixel C (0, 2): only August 0.9 clear -> 0.9 over 1 month (October 0.98 is outside the months)
    obs = [  # date, (red, nir, qa) for A, B, C
        ("2020-05-03", [(1000, 3000, 0), (1000, 3000, 1), (1000, 3000, 1)]),   # A 0.5
        ("2020-05-19", [(1500, 8500, 0), (1000, 3000, 1), (1000, 3000, 1)]),   # A 0.7
        ("2020-06-04", [(1000, 4000, 0), (1000, 3000, 1), (1000, 3000, 1)]),   # A 0.6
        ("2020-06-20", [(500, 9500, 1), (500, 9500, 1), (1000, 3000, 1)]),     # A 0.9 but cloudy
        ("2020-07-06", [(500, 9500, 1), (1000, 3000, 1), (1000, 3000, 1)]),
        ("2020-08-07", [(1000, 3000, 1), (1000, 3000, 1), (500, 9500, 0)]),    # C 0.9
        ("2020-10-01", [(100, 9900, 0), (100, 9900, 0), (100, 9900, 0)]),      # October: dropped
    ]
    scenes = []
    for i, (d, px) in enumerate(obs):
        red = np.array([[p[0] for p in px]], dtype="uint16")
        nir = np.array([[p[1] for p in px]], dtype="uint16")
        qa = np.array([[p[2] for p in px]], dtype="uint8")
        scenes.append(make_scene(tmp_path / f"m{i}", d, red, nir, qa))
    comp = composite(scenes, method="monthly_max_ndvi")
    assert comp.bands is None and comp.method == "monthly_max_ndvi"
    # October is outside May-September; 06-20 and 07-06 have no clear pixel at all: all three are dropped
    assert [d.isoformat() for d in comp.dates] == ["2020-05-03", "2020-05-19", "2020-06-04", "2020-08-07"]
    assert [x["date"] for x in comp.metadata["dropped"]] == ["2020-10-01", "2020-06-20", "2020-07-06"]
    ndvi = comp.ndvi.values[0]
    assert ndvi[0] == pytest.approx((0.7 + 0.6) / 2, abs=1e-6)
    assert np.isnan(ndvi[1])
    assert ndvi[2] == pytest.approx(0.9, abs=1e-6)
    np.testing.assert_array_equal(comp.months_count.values[0], [2, 0, 1])
    np.testing.assert_array_equal(comp.clear_count.values[0], [3, 0, 1])
    np.testing.assert_array_equal(comp.masked.values[0], [False, True, False])


def test_ndvi_outside_minus1_1_is_not_used(tmp_path):
    # negative reflectance (water, C2 SR): red -0.02, nir 0.01 gives NDVI -3 -> not a usable observation
    shape = (1, 2)
    scenes = [
        open_geotiff_scene({"red": write(tmp_path / "r1.tif", np.array([[980, 1100]], "uint16")),
                            "nir": write(tmp_path / "n1.tif", np.array([[1010, 1300]], "uint16"))},
                           None, date="2020-06-01", scale=1e-3, offset=-1.0),
    ]
    comp = composite(scenes, method="monthly_max_ndvi")
    red, nir = np.array([-0.02, 0.1]), np.array([0.01, 0.3])
    raw = (nir - red) / (nir + red)
    assert raw[0] == pytest.approx(-3.0) and shape == comp.ndvi.shape
    v = comp.ndvi.values[0]
    assert np.isnan(v[0]) and v[1] == pytest.approx(raw[1], abs=1e-5)
    kept = composite(scenes, method="monthly_max_ndvi", ndvi_range=None).ndvi.values[0]
    assert kept[0] == pytest.approx(-3.0, abs=1e-4)


def test_scenes_on_different_grids_and_no_scene_in_months(stack, tmp_path):
    scenes, raw = stack
    other = make_scene(tmp_path / "other", "2021-06-01", raw[1][1], raw[1][2], raw[1][3],
                       transform=Affine(30, 0, 400030, 0, -30, 3300000))
    with pytest.raises(InputError, match="different grid"):
        composite(scenes + [other])
    with pytest.raises(InputError, match="months"):
        composite(scenes[:1], months=(5, 6))
    with pytest.raises(ValueError, match="method"):
        composite(scenes, method="mean")


def test_all_masked_scenes(tmp_path):
    cloudy = [make_scene(tmp_path / f"c{i}", f"2021-0{5 + i}-01", np.full((3, 3), 1000, "uint16"),
                         np.full((3, 3), 3000, "uint16"), np.ones((3, 3), "uint8")) for i in range(2)]
    with pytest.raises(AllMaskedError) as err:
        composite(cloudy)
    assert "all 9 observed pixels are masked" in str(err.value) and "qa.tif" in str(err.value)
    clear = make_scene(tmp_path / "ok", "2021-07-01", np.full((3, 3), 1000, "uint16"),
                       np.full((3, 3), 3000, "uint16"), np.zeros((3, 3), "uint8"))
    comp = composite(cloudy + [clear])  # all-cloud scenes are dropped, and recorded
    assert len(comp.dates) == 1 and len(comp.metadata["dropped"]) == 2
    np.testing.assert_allclose(comp.bands["red"].values, 0.1, atol=1e-7)


@pytest.mark.realdata
def test_all_cloud_landsat_scene_cannot_be_composited(shared_data):
    scene = open_landsat_c2l2(shared_data / "landsat8-c2l2-fullscene-5pct-001062-20201031")
    with pytest.raises(AllMaskedError) as err:
        composite([scene], months=None)
    msg = str(err.value)
    assert "QA_PIXEL.TIF" in msg and "no clear observation" in msg and "cloud 99.9 %" in msg
