"""Before/after chips of ledger patches (issue 19 part 4): one PNG per patch, the same stretch for both dates."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import xarray as xr

from ecoassess.errors import InputError
from ecoassess.redline.chips import chip_window, common_stretch, stretched, write_chips
from ecoassess.redline.ledger import update_ledger
from tests.test_redline_ledger import CRS, X0, Y0, patch_table, rect

pytest.importorskip("rioxarray")  # its .rio accessor georeferences the test images


def test_common_stretch_uses_both_dates_and_all_bands():
    before = np.arange(100, dtype=float).reshape(1, 10, 10).repeat(3, axis=0)  # 0..99 in each band
    after = before + 100  # 100..199
    lo, hi = common_stretch(before, after)
    # percentiles of 0..199 (each value 3 times) with linear interpolation: 2 % → 0.02 × 199 = 3.98, 98 % → 195.02
    assert (lo, hi) == pytest.approx((3.98, 195.02))
    img = stretched(before, lo, hi)
    assert img.shape == (10, 10, 3)
    # pixel value 50 → (50 − 3.98) / (195.02 − 3.98) = 46.02 / 191.04 = 0.240893...
    assert img[5, 0, 0] == pytest.approx(46.02 / 191.04)
    assert img[0, 0, 0] == 0.0  # 0 is below the low limit: clipped
    # a bluish grey stays bluish grey: the bands are stretched alike (0.1/0.1/0.2 of a 0..0.4 range)
    grey = np.array([[[0.0, 0.4]], [[0.0, 0.4]], [[0.1, 0.4]]]).repeat(50, axis=2)
    lo, hi = common_stretch(grey, grey, percent=(0, 100))
    assert (lo, hi) == (0.0, 0.4) and stretched(grey, lo, hi)[0, 0].tolist() == [0.0, 0.0, 0.25]


def test_window_pads_small_and_large_patches():
    # 30 m patch on a 10 m grid: half side 15 + max(0.75 × 30, 20 px × 10 m) = 15 + 200 → 430 m square
    assert chip_window(shapely.box(0, 0, 30, 30), 10.0) == (-200.0, -200.0, 230.0, 230.0)
    # 1000 m patch: 500 + 750 → 2500 m square
    assert chip_window(shapely.box(0, 0, 1000, 400), 10.0) == (-750.0, -1050.0, 1750.0, 1450.0)


def _images(ledger, res=10.0):
    xs = X0 + np.arange(-500, 2000, res) + res / 2
    ys = Y0 + np.arange(1500, -500, -res) - res / 2
    rng = np.random.default_rng(7)
    tex = rng.normal(0, 0.01, (len(ys), len(xs)))
    before = np.stack([0.04 + tex, 0.09 + tex, 0.035 + tex])
    X, Y = np.meshgrid(xs, ys)
    inside = np.zeros(X.shape, bool)
    for g in ledger.geometry:
        inside |= shapely.contains_xy(g, X, Y)
    after = before.copy()
    for b, v in enumerate((0.26, 0.23, 0.19)):
        after[b][inside] = v
    def da(a):
        return xr.DataArray(a, dims=("band", "y", "x"), coords={"band": [1, 2, 3], "y": ys, "x": xs}).rio.write_crs(CRS)
    return da(before), da(after)


def test_one_chip_per_patch_with_the_same_stretch(tmp_path):
    import matplotlib.image as mpimg

    ledger = update_ledger(patch_table([(rect(0, 0, 100, 80), {}), (rect(1000, 500, 40, 40), {})]), year=2024)
    before, after = _images(ledger)
    paths = write_chips(ledger, before, after, tmp_path, dpi=100)
    assert [p.name for p in paths] == [f"{pid}.png" for pid in ledger["patch_id"]]
    img = mpimg.imread(paths[0])[..., :3]
    assert img.shape[:2] == (500, 900)  # 9 x 5 inches at 100 dpi
    # the panels sit at x = 0.02 and 0.51 of the width: 18 and 459 px, 423 px wide; same place in both
    rows = slice(int(500 * (1 - 0.84)) + 2, int(500 * (1 - 0.06)) - 2)
    left, right = img[rows, 18:18 + 423], img[rows, 459:459 + 423]
    same = np.all(left == right, axis=2)
    # with one stretch for both dates only the changed patch (and its outline) differ; a stretch per date would
    # darken the whole after panel (its bright patch raises the upper limit)
    assert 0.9 < same.mean() < 1.0
    # the patch's bare soil (0.26/0.23/0.19) is above the upper limits (the 98th percentiles, vegetation):
    # white in the after panel; the differing pixels average ~0.29 brighter there (outline edges included)
    assert right[~same].mean() - left[~same].mean() > 0.2


def test_patches_outside_the_images_get_no_chip(tmp_path, caplog):
    ledger = update_ledger(patch_table([(rect(0, 0, 100, 80), {}), (rect(90000, 0, 40, 40), {})]), year=2024)
    before, after = _images(ledger.iloc[:1])
    paths = write_chips(ledger, before, after, tmp_path)
    assert len(paths) == 1 and "lies outside the before/after images" in caplog.text


def test_images_must_be_three_bands():
    ledger = update_ledger(patch_table([(rect(0, 0, 100, 80), {})]), year=2024)
    before, after = _images(ledger)
    with pytest.raises(InputError, match=r"\[before\].*3 bands in the order red, green, blue"):
        write_chips(ledger, before.isel(band=[0, 1]), after, "unused")


def test_the_red_line_unit_boundary_is_drawn_in_both_dates(tmp_path):
    import geopandas as gpd
    import matplotlib.image as mpimg

    from ecoassess.redline.chips import UNIT_LINE

    ledger = update_ledger(patch_table([(rect(0, 0, 100, 80), {})]), year=2024)
    before, after = _images(ledger)
    unit = gpd.GeoDataFrame({"unit_id": ["U1"]}, geometry=[rect(50, -200, 600, 600)], crs=ledger.crs)
    (plain,) = write_chips(ledger, before, after, tmp_path / "a", dpi=100)
    (drawn,) = write_chips(ledger, before, after, tmp_path / "b", dpi=100, units=unit)
    red = np.array([int(UNIT_LINE[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    rows = slice(int(500 * (1 - 0.84)) + 2, int(500 * (1 - 0.06)) - 2)

    def reddish(path, cols):
        img = mpimg.imread(path)[rows, cols, :3]
        return int((np.abs(img - red).max(axis=2) < 0.12).sum())

    for cols in (slice(18, 18 + 423), slice(459, 459 + 423)):      # before and after panels
        assert reddish(plain, cols) == 0 and reddish(drawn, cols) > 50
