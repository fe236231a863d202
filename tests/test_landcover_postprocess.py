"""Post-processing of a land-cover map (issue 21 part 5): sieve to a minimum mapping unit (chunked = whole map),
majority filter, the modified z-score of a spectral change and the update mode."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from pyproj import CRS

from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.landcover.postprocess import majority_filter, modified_z, sieve, spectral_change, update_map


def layer(values, chunks=None, nodata=0):
    values = np.asarray(values)
    grid = AnalysisGrid(CRS.from_user_input(china_albers_crs()), Affine(30, 0, 0, 0, -30, 3000000),
                        values.shape[1], values.shape[0])
    out = grid.wrap(da.from_array(values, chunks=chunks or values.shape))
    out.attrs["nodata"] = nodata
    return out


def test_sieve_merges_patches_below_the_mmu_and_keeps_nodata():
    m = np.full((7, 7), 21, dtype="uint8")
    m[1, 1] = 12                      # 1 cell
    m[4, 4:6] = 12                    # 2 cells
    m[0, 6] = 0                       # nodata stays, and is nobody's neighbour
    out = sieve(layer(m), 2).values
    want = m.copy()
    want[1, 1] = 21                   # below 2 cells: merged into the forest around it
    np.testing.assert_array_equal(out, want)
    want[4, 4:6] = 21                 # with an MMU of 3 the 2-cell patch goes too
    np.testing.assert_array_equal(sieve(layer(m), 3).values, want)
    assert sieve(layer(m), 1) is not None and (sieve(layer(m), 1).values == m).all()


def test_a_diagonal_pair_is_one_8_connected_patch():
    m = np.full((5, 5), 21, dtype="uint8")
    m[1, 1] = m[2, 2] = 12
    np.testing.assert_array_equal(sieve(layer(m), 2).values, m)   # 2 cells touching at a corner: kept


def test_a_small_patch_takes_the_class_most_of_its_neighbour_cells_hold():
    m = np.array([[21, 21, 21, 12],
                  [21, 41, 12, 12],
                  [21, 12, 12, 12]], dtype="uint8")
    # the 1-cell patch 41 at (1, 1) has 8 neighbours: 21 x4 ((0,0), (0,1), (0,2), (1,0), (2,0) = 5), 12 x3
    out = sieve(layer(m), 2).values
    assert out[1, 1] == 21 and (out[m != 41] == m[m != 41]).all()
    # a corner cell: (0, 0) 52 touches (0,1), (1,0), (1,1): 21, 12, 21 → 21 in t; 12, 21, 12 → 12 in t2
    t = np.array([[52, 21], [12, 21]], dtype="uint8")
    t2 = np.array([[52, 12], [21, 12]], dtype="uint8")
    assert sieve(layer(t), 2).values[0, 0] == 21 and sieve(layer(t2), 2).values[0, 0] == 12
    # a tie: 52 at (2, 2) has 21 at (1,1), (1,2), (1,3), (2,1) and 12 at (2,3), (3,1), (3,2), (3,3) → the smaller 12
    u = np.array([[21] * 5, [21] * 5, [21, 21, 52, 12, 12], [12] * 5, [12] * 5], dtype="uint8")
    want = u.copy()
    want[2, 2] = 12
    np.testing.assert_array_equal(sieve(layer(u), 2).values, want)


def test_the_chunked_sieve_equals_the_whole_map_sieve_on_a_real_shaped_map():
    """A speckled class map (what a per-pixel classifier gives) with a nodata band, cut into 37-cell chunks: the
    chunked sieve equals the sieve of the whole array in one block, and removes every patch below the MMU
    that has a neighbour (checked with scipy's labelling, independently of the sieve's own)."""
    from scipy import ndimage

    rng = np.random.default_rng(2)
    base = np.repeat(np.repeat(rng.choice([11, 12, 21, 41], size=(12, 12)), 10, axis=0), 10, axis=1)
    speckle = rng.random(base.shape) < 0.08
    m = np.where(speckle, rng.choice([12, 22, 52], size=base.shape), base).astype("uint8")
    m[:3, :] = 0
    for mmu in (2, 5, 9):
        whole = sieve(layer(m), mmu).values
        np.testing.assert_array_equal(sieve(layer(m, chunks=37), mmu).values, whole)
        assert (whole[:3] == 0).all()
        changed = (whole != m).mean()
        assert 0.01 < changed < 0.1
        # after one pass, a patch below the MMU can only be one formed by merging small patches together
        left = 0
        for code in np.unique(whole[whole != 0]):
            lab, k = ndimage.label(whole == code, structure=np.ones((3, 3), bool))
            sizes = np.bincount(lab.ravel())[1:]
            left += int((sizes < mmu).sum())
        assert left < 0.05 * (m != 0).sum() / mmu


def test_majority_filter_takes_the_most_frequent_class_and_keeps_ties_and_nodata():
    m = np.array([[11, 11, 11, 21],
                  [11, 21, 11, 21],
                  [21, 21, 12, 21],
                  [21, 21, 21, 0]], dtype="uint8")
    out = majority_filter(layer(m, chunks=2), 3).values
    # (1, 1): window rows 0-2, cols 0-2 holds 11 x5 (11,11,11,11,11), 21 x3, 12 x1 → 11
    assert out[1, 1] == 11
    # (2, 2): window rows 1-3, cols 1-3 holds 21 x6, 11 x1, 12 x1, nodata x1 (no vote) → 21
    assert out[2, 2] == 21
    # (0, 3): window rows 0-1, cols 2-3 (outside = no vote): 11 x2, 21 x2 — a tie that includes its own class 21
    assert out[0, 3] == 21
    # (0, 0): rows 0-1, cols 0-1: 11 x3, 21 x1 → 11
    assert out[0, 0] == 11
    assert out[3, 3] == 0
    with pytest.raises(ValueError, match="odd number"):
        majority_filter(layer(m), 4)


def test_modified_z_score_by_hand():
    # d = [0, 1, 2, 3, 4, 5, 6, 7, 8, 100]: median 4.5; |d - 4.5| = 4.5 3.5 2.5 1.5 .5 .5 1.5 2.5 3.5 95.5,
    # their median (1.5 + 2.5)/2 ... sorted: .5 .5 1.5 1.5 2.5 2.5 3.5 3.5 4.5 95.5 → MAD = (2.5 + 2.5)/2 = 2.5
    d = np.array([[0, 1, 2, 3, 4], [5, 6, 7, 8, 100]], dtype="float32")
    z, stats = modified_z(layer(d))
    assert stats == {"median": 4.5, "mad": 2.5}
    # z(100) = 0.6745 * 95.5 / 2.5 = 25.7659; z(0) = 0.6745 * -4.5 / 2.5 = -1.2141
    assert float(z[1, 4]) == pytest.approx(25.7659, abs=1e-4)
    assert float(z[0, 0]) == pytest.approx(-1.2141, abs=1e-4)


def test_update_changes_last_years_map_only_where_the_classes_differ_and_the_spectrum_changed():
    prev = np.array([[21, 21, 12], [12, 0, 41]], dtype="uint8")
    new = np.array([[21, 12, 51], [11, 22, 41]], dtype="uint8")
    # NDVI before/after: a clear drop at (0, 2) only (forest → built); every other cell within noise
    ndvi0 = np.array([[0.80, 0.80, 0.50], [0.50, 0.40, -0.2]] + [[0.6] * 3] * 4, dtype="float32")
    ndvi1 = ndvi0.copy()
    ndvi1[0, 2] = 0.05
    ndvi1[:, :] += np.array([0.01, -0.01, 0.0], dtype="float32")       # small differences everywhere
    ev, stats = spectral_change({"NDVI": layer(ndvi0)}, {"NDVI": layer(ndvi1)}, z=3.5)
    ev = ev.values[:2]
    # differences: +0.01 / −0.01 / 0 by column, and −0.45 at (0, 2): median 0, MAD 0.01 → z(0, 2) = −30.4
    assert stats["NDVI"]["median"] == pytest.approx(0.0, abs=1e-6)
    assert stats["NDVI"]["mad"] == pytest.approx(0.01, abs=1e-6)
    assert ev.tolist() == [[False, False, True], [False, False, False]]
    out = update_map(layer(prev), layer(new), layer(ev)).values
    # (0, 1) classifier says 12, no spectral change → stays 21; (0, 2) both agree → 51; (1, 0) no evidence → 12;
    # (1, 1) no class last year → this year's 22; (1, 2) same class → 41
    assert out.tolist() == [[21, 21, 51], [12, 22, 41]]


def test_update_keeps_an_index_unobserved_on_either_date_out_of_the_evidence():
    a = np.array([[0.5, np.nan, 0.5, 0.5]], dtype="float32")
    b = np.array([[0.5, 0.9, 0.5, -0.5]], dtype="float32")
    ev, _ = spectral_change({"NDVI": layer(a)}, {"NDVI": layer(b)})
    # differences 0, NaN, 0, -1: median 0, MAD 0 → any non-zero change is an outlier (inf), NaN is not evidence
    assert ev.values.tolist() == [[False, False, False, True]]
    assert isinstance(ev, xr.DataArray)
