"""NDVI and FVC (STANDARDS §4) against values computed by hand."""

import numpy as np
import pytest
import xarray as xr
from affine import Affine

from ecoassess.errors import AllMaskedError
from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.layers.vegetation import fvc, fvc_endmembers, ndvi


def _grid(h, w):
    return AnalysisGrid(china_albers_crs(), Affine(30, 0, 0, 0, -30, 30 * h), w, h)


def _bands(red, nir, chunk=2):
    grid = _grid(*np.shape(red))
    import dask.array as da

    return xr.Dataset({"red": grid.wrap(da.from_array(np.asarray(red, "float32"), chunks=chunk)),
                       "nir": grid.wrap(da.from_array(np.asarray(nir, "float32"), chunks=chunk))}), grid


def test_ndvi_by_hand_and_zero_denominator_is_nan():
    bands, _ = _bands([[0.05, 0.10], [0.0, np.nan]], [[0.45, 0.10], [0.0, 0.3]])
    out = ndvi(bands).values
    assert out[0, 0] == pytest.approx((0.45 - 0.05) / (0.45 + 0.05))  # 0.8
    assert out[0, 1] == 0.0
    assert np.isnan(out[1, 0]) and np.isnan(out[1, 1])
    assert not np.isinf(out).any()


def test_fvc_uses_the_5_and_95_percent_quantiles_of_valid_pixels_only():
    # 20 valid NDVI values 0.00, 0.05, ..., 0.95 plus a masked pixel (water) with NDVI -0.5
    values = np.concatenate([np.arange(20) * 0.05, [-0.5, 0.0, 0.0, 0.0]]).reshape(4, 6).astype("float32")
    grid = _grid(4, 6)
    import dask.array as da

    layer = grid.wrap(da.from_array(values, chunks=3))
    valid = np.ones((4, 6), bool)
    valid[3, 2:] = False  # the water pixel and the 3 padding pixels
    em = fvc_endmembers(layer, grid.wrap(da.from_array(valid, chunks=3)))
    kept = values[valid]
    # numpy's linear quantile on the 20 valid values: rank 0.05*19 = 0.95 -> 0.0475; rank 18.05 -> 0.9025
    assert em.ndvi_soil == pytest.approx(0.0475, abs=1e-6) == pytest.approx(float(np.quantile(kept, 0.05)), abs=1e-6)
    assert em.ndvi_veg == pytest.approx(0.9025, abs=1e-6)
    assert em.n_pixels == 20
    cover = fvc(layer, em).values
    assert cover[0, 0] == 0.0 and cover[3, 1] == 1.0  # clipped at both ends
    assert cover[1, 4] == pytest.approx((0.5 - 0.0475) / (0.9025 - 0.0475), abs=1e-6)


def test_fvc_with_no_valid_pixel_or_no_spread_says_so():
    grid = _grid(2, 2)
    import dask.array as da

    layer = grid.wrap(da.from_array(np.full((2, 2), 0.3, "float32"), chunks=2))
    with pytest.raises(AllMaskedError, match="no valid NDVI pixel"):
        fvc_endmembers(layer, grid.wrap(da.zeros((2, 2), dtype=bool, chunks=2)))
    em = fvc_endmembers(layer, grid.wrap(da.ones((2, 2), dtype=bool, chunks=2)))
    with pytest.raises(AllMaskedError, match="no spread"):
        fvc(layer, em)


def test_fvc_endmembers_stay_exact_with_ndvi_outside_minus_one_to_one():
    """Negative reflectance gives |NDVI| > 1; the histogram starts from (-1, 1) but those values stay exact."""
    import dask.array as da

    rng = np.random.default_rng(3)
    values = rng.uniform(-0.2, 0.9, (40, 50)).astype("float32")
    values[0, :30] = 1.7
    values[1, :30] = -2.5
    grid = _grid(40, 50)
    valid = rng.random((40, 50)) > 0.1
    em = fvc_endmembers(grid.wrap(da.from_array(values, chunks=16)), grid.wrap(da.from_array(valid, chunks=16)))
    lo, hi = np.quantile(values[valid], [0.05, 0.95])
    assert (em.ndvi_soil, em.ndvi_veg, em.n_pixels) == (float(lo), float(hi), int(valid.sum()))
