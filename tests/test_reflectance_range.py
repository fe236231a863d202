"""Reflectance and indices outside their physical range (issue 18, item 5).

Negative or saturated surface reflectance passed through: NDVI from −226 to 181 in a county table, and a min–max
normalised RSEI that collapsed onto LST. Cases built as products come: Landsat C2 L2 folders (uint16 DN,
SR = DN × 0.0000275 − 0.2) whose scene edge is DN 65535 (1.6022, above the 1.6 a C2 product encodes) and whose
dark pixels have red −0.0100025 and nir 0.0101 (in range, but NDVI = 206); float GeoTIFFs with −0.5 and 2.0.
"""

from __future__ import annotations

import datetime as dt

import dask.array as da
import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from ecoassess.grid import AnalysisGrid
from ecoassess.sources import composite, open_geotiff_scene, open_landsat_c2l2
from ecoassess.sources.reflectance_range import REASON, reflectance_range, scene_quality_table
from tests.test_real_imagery_inputs import H, PID, UTM, W, _fields, _write, mtl_text, sr_dn, st_dn, write_config
from tests.builders import write_two_counties

SR_MULT, SR_ADD = 2.75e-05, -0.2
EDGE_COLS = 10                                  # DN 65535 in every SR band: 65535 × 0.0000275 − 0.2 = 1.6022125
DARK = (slice(30, 40), slice(40, 60))           # 10 × 20 = 200 cells
# dark, non-water pixels: red DN 6909 → 6909 × 0.0000275 − 0.2 = −0.0100025; nir DN 7640 → 0.0101;
# green DN 7636 → 0.00999; swir1 DN 9091 → 0.0500025 (MNDWI = (0.00999 − 0.0500025)/0.0599925 < 0: not water)
DARK_DN = {3: 7636, 4: 6909, 5: 7640, 6: 9091}
# NDVI there = (0.0101 + 0.0100025) / (0.0101 − 0.0100025) = 0.0201025 / 0.0000975 = 206.18 (float32: ≈ 206)


@pytest.fixture
def area(tmp_path):
    """Two counties over the products' footprint (tests/builders.py)."""
    return write_two_counties(tmp_path)


def write_product(folder, *, edge=True, dark=True, seed=0):
    """A Landsat 9 C2 L2 folder with every band; an out-of-range edge and dark pixels with NDVI ≈ 206."""
    folder.mkdir(parents=True)
    f = _fields(seed)
    for k in range(1, 8):
        dn = sr_dn(f["refl"][k])
        if edge:
            dn[:, :EDGE_COLS] = 65535
        if dark and k in DARK_DN:
            dn[DARK] = DARK_DN[k]
        _write(folder / f"{PID}_SR_B{k}.TIF", dn)
    _write(folder / f"{PID}_ST_B10.TIF", st_dn(f["lst"]))
    _write(folder / f"{PID}_QA_PIXEL.TIF", np.full((H, W), 21824, "uint16"), nodata=1)  # clear
    (folder / f"{PID}_MTL.txt").write_text(mtl_text(), encoding="utf-8")
    return folder


# -- the bounds --------------------------------------------------------------------------------------------------

def test_the_bounds_are_the_range_a_c2_product_encodes():
    lo, hi = reflectance_range()
    assert (lo, hi) == (-0.2, 1.6)
    # DN 1 and DN 65455 (the first and last valid SR DN) are inside; DN 65456 is not
    scene_values = np.array([1, 65455, 65456], "float64") * SR_MULT + SR_ADD  # −0.1999725, 1.6000125, 1.60004
    from ecoassess.sources.reflectance_range import reflectance_spec

    tol = reflectance_spec()["surface_reflectance"]["tolerance"]
    inside = (scene_values >= lo - tol) & (scene_values <= hi + tol)
    assert inside.tolist() == [True, True, False]


# -- a Landsat scene: the edge is masked, counted per band -------------------------------------------------------

def test_a_landsat_edge_above_the_range_is_masked_and_counted_per_band(tmp_path):
    scene = open_landsat_c2l2(write_product(tmp_path / PID))
    clear = scene.clear.values
    assert not clear[:, :EDGE_COLS].any() and clear[:, EDGE_COLS:].all()  # the dark pixels are in range: kept
    summary = scene.mask_summary()
    assert summary["valid"] == H * W == 6000
    assert summary["by_reason"][REASON] == EDGE_COLS * H == 600
    assert summary["clear"] == 6000 - 600
    # every band read (SR_B1–B7: coastal … swir2) has the 600 edge cells outside
    assert summary["outside_range"] == {r: 600 for r in scene.roles}
    table = scene_quality_table([scene], "imagery.2024")
    assert set(table["band"]) == set(scene.roles)
    assert (table["share_outside"] == 600 / 6000).all()
    assert (table[["lower", "upper"]].values == [-0.2, 1.6]).all()


def test_the_composite_takes_the_other_scenes_observation_where_one_is_out_of_range(tmp_path):
    """A float GeoTIFF with −0.5 and 2.0 (a GEE export of a bad scene edge) beside a clean one: the median is the
    clean scene's value there, not the mean of garbage and truth."""
    transform = Affine(30.0, 0, 500000.0, 0, -30.0, 3300000.0)
    good = {"red": 0.05, "nir": 0.40, "green": 0.08, "swir1": 0.20}
    files = {}
    for name, bad in (("a", True), ("b", False)):
        for role, value in good.items():
            data = np.full((8, 8), value + (0.01 if name == "b" else 0.0), "float32")
            if bad:
                data[0, :] = -0.5 if role == "red" else value  # row 0: red −0.5
                data[1, :] = 2.0 if role == "nir" else value   # row 1: nir 2.0
            path = tmp_path / f"{name}_{role}.tif"
            with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="float32", crs=UTM,
                               transform=transform) as dst:
                dst.write(data, 1)
            files.setdefault(name, {})[role] = str(path)
    grid = AnalysisGrid(rasterio.crs.CRS.from_user_input(UTM), transform, 8, 8)
    a = open_geotiff_scene(files["a"], grid, date="2024-07-01")
    b = open_geotiff_scene(files["b"], grid, date="2024-07-20")
    assert a.mask_summary()["outside_range"] == {"red": 8, "nir": 8, "green": 0, "swir1": 0}
    assert b.mask_summary()["outside_range"] == {"red": 0, "nir": 0, "green": 0, "swir1": 0}
    comp = composite([a, b], method="median", months=None)
    red, nir = comp.bands["red"].values, comp.bands["nir"].values
    # rows 0–1: only scene b is clear → its values (0.06, 0.41); elsewhere the median of a and b (two values)
    np.testing.assert_allclose(red[:2], 0.06, rtol=1e-6)
    np.testing.assert_allclose(nir[:2], 0.41, rtol=1e-6)
    np.testing.assert_allclose(red[2:], (0.05 + 0.06) / 2, rtol=1e-6)
    assert comp.clear_count.values[:2].tolist() == [[1] * 8] * 2 and (comp.clear_count.values[2:] == 2).all()


# -- indices: NaN outside the catalog's valid range --------------------------------------------------------------

def test_bound_to_valid_range_makes_outside_values_nan_and_counts_them():
    from ecoassess.spectral import bound_to_valid_range, load_catalog, outside_valid_range

    red = xr.DataArray(np.array([[0.05, -0.0100025, 0.0, np.nan]], "float32"), dims=("y", "x"))
    nir = xr.DataArray(np.array([[0.40, 0.0101, 0.0, 0.3]], "float32"), dims=("y", "x"))
    ndvi = load_catalog().compute("NDVI", {"red": red, "nir": nir})
    raw = ndvi.values[0]
    assert raw[0] == pytest.approx(0.35 / 0.45, rel=1e-6) and raw[1] > 200  # 0.0201025 / 0.0000975 = 206.2
    assert outside_valid_range(ndvi).values[0].tolist() == [False, True, False, False]  # NaN is not outside
    bounded = bound_to_valid_range(ndvi).values[0]
    assert bounded[0] == pytest.approx(0.35 / 0.45, rel=1e-6)
    assert np.isnan(bounded[1:]).all()


# -- zonal area accounting with invalid cells --------------------------------------------------------------------

def test_invalid_area_is_its_own_column_and_the_accounting_adds_up():
    import geopandas as gpd
    from shapely.geometry import box

    from ecoassess.grid import china_albers_crs
    from ecoassess.zones import ZoneSet, zonal_stats

    crs = china_albers_crs()
    grid = AnalysisGrid(crs, Affine(1000.0, 0, 0, 0, -1000.0, 4000.0), 4, 4)  # 16 cells of 1 km²
    values = np.arange(16, dtype="float32").reshape(4, 4)
    values[0, 0] = values[0, 1] = np.nan       # invalid (outside the valid range), not masked
    values[1, 0] = np.nan                      # never observed
    masked = np.zeros((4, 4), bool)
    masked[3, :3] = True                       # 3 masked cells (one of them also flagged invalid: masked wins)
    invalid = np.zeros((4, 4), bool)
    invalid[0, 0] = invalid[0, 1] = invalid[3, 0] = True
    values[3, 0] = np.nan
    zones = ZoneSet.from_gdf(gpd.GeoDataFrame({"code": ["1"], "name": ["z"]}, geometry=[box(0, 0, 4000, 4000)],
                                              crs=crs), grid, id_field="code", name_field="name")
    wrap = lambda a: grid.wrap(da.from_array(a, chunks=2))  # noqa: E731
    row = zonal_stats(zones, {"v": wrap(values)}, masked=wrap(masked), invalid={"v": wrap(invalid)}).iloc[0]
    # by hand: 16 km² = valid 10 (16 − 2 invalid − 1 nodata − 3 masked) + masked 3 + nodata 1 + invalid 2
    assert row["v_invalid_km2"] == pytest.approx(2.0)
    assert row["v_nodata_km2"] == pytest.approx(1.0)
    assert row["v_masked_km2"] == pytest.approx(3.0)
    assert row["v_valid_km2"] == pytest.approx(10.0)
    total = row[["v_valid_km2", "v_masked_km2", "v_nodata_km2", "v_invalid_km2", "area_outside_km2"]].sum()
    assert total == pytest.approx(row["area_km2"]) == pytest.approx(16.0)
    plain = zonal_stats(zones, {"v": wrap(values)}, masked=wrap(masked)).iloc[0]
    assert "v_invalid_km2" not in plain.index and plain["v_nodata_km2"] == pytest.approx(3.0)


# -- RSEI: min–max normalisation does not collapse ---------------------------------------------------------------

def test_rsei_minmax_bounds_come_from_valid_indicators_not_from_ndvi_206():
    """Today: NDVI 206 and −226 at 3 pixels made the NDVI min–max −226…206, every other pixel's normalised NDVI
    ≈ 0.52 (no variance), and PC1 collapsed onto LST."""
    from ecoassess.assess.rsei import RseiSettings, compute_rsei
    from ecoassess.grid import china_albers_crs

    rng = np.random.default_rng(7)
    h, w = 30, 40
    g = rng.random((h, w))
    raw = {"ndvi": 0.1 + 0.7 * g + 0.03 * rng.standard_normal((h, w)),
           "wet": -0.2 + 0.15 * g + 0.02 * rng.standard_normal((h, w)),
           "lst_celsius": 38 - 12 * g + 1.0 * rng.standard_normal((h, w)),
           "ndbsi": 0.2 - 0.5 * g + 0.03 * rng.standard_normal((h, w))}
    raw["ndvi"][0, 0], raw["ndvi"][0, 1], raw["ndvi"][5, 5] = 206.18, -226.0, 181.0
    ranges = {"ndvi": (-1, 1), "wet": (-1, 1), "lst_celsius": (-60, 80), "ndbsi": (-1, 1)}  # indices/spectral.yaml
    grid = AnalysisGrid(china_albers_crs(), Affine(30, 0, 0, 0, -30, 30 * h), w, h)
    layers = {}
    for name, a in raw.items():
        layers[name] = grid.wrap(da.from_array(a.astype("float32"), chunks=16))
        layers[name].attrs["valid_range"] = ranges[name]
    ds = xr.Dataset(layers)
    valid = grid.wrap(da.from_array(np.ones((h, w), bool), chunks=16))
    result = compute_rsei(ds, valid, settings=RseiSettings.from_spec(normalisation="minmax"))
    keep = np.ones((h, w), bool)
    keep[0, 0] = keep[0, 1] = keep[5, 5] = False
    assert result.n_pixels == h * w - 3
    assert result.invalid.values.sum() == 3 and result.invalid.values[~keep].all()
    ndvi32 = raw["ndvi"].astype("float32")[keep]
    assert result.bounds["ndvi"] == (float(ndvi32.min()), float(ndvi32.max()))  # ≈ 0.03 … 0.86, by numpy
    # NDVI carries weight in PC1 again (with −226…206 its normalised variance was ~1e-6 of LST's)
    assert abs(result.loadings["ndvi"]) > 0.3
    assert np.isnan(result.rsei.values[~keep]).all() and np.isfinite(result.rsei.values[keep]).all()


# -- the run: tables gain <layer>_invalid_km2, and scene_quality --------------------------------------------------

def test_the_run_masks_out_of_range_reflectance_and_counts_invalid_ndvi_area(area):
    from ecoassess.pipeline import run

    write_product(area / PID)
    spec = {"kind": "landsat_c2l2", "path": PID}
    result = run(write_config(area, [spec], thermal=spec), area / "out")
    assert not result.problems, result.problems

    veg = result.tables["county_vegetation"]
    for layer in ("ndvi", "fvc"):
        parts = veg[[f"{layer}_valid_km2", f"{layer}_masked_km2", f"{layer}_nodata_km2", f"{layer}_invalid_km2",
                     "area_outside_km2"]].sum(axis=1)
        np.testing.assert_allclose(parts, veg["area_km2"], rtol=1e-9)
    assert (veg["ndvi_max"] <= 1).all() and (veg["ndvi_min"] >= -1).all()  # was 206
    # the dark block (200 cells of 200 m UTM = 8 km², warped onto the 200 m Albers grid) is invalid NDVI area:
    # which county holds it depends on the warp, the whole area's total does not move by more than its edge cells
    whole = veg[veg["code"] == "000000"].iloc[0]
    assert 6.0 < whole["ndvi_invalid_km2"] < 10.0
    assert (veg["fvc_invalid_km2"] == veg["ndvi_invalid_km2"]).all()

    rsei = result.tables["county_rsei"]
    parts = rsei[["rsei_valid_km2", "rsei_masked_km2", "rsei_nodata_km2", "rsei_invalid_km2",
                  "area_outside_km2"]].sum(axis=1)
    np.testing.assert_allclose(parts, rsei["area_km2"], rtol=1e-9)
    assert rsei[rsei["code"] == "000000"].iloc[0]["rsei_invalid_km2"] > 6.0
    pca = result.tables["rsei_pca"].set_index("indicator")
    assert -1 <= pca.loc["ndvi", "normalisation_lower"] < pca.loc["ndvi", "normalisation_upper"] <= 1

    quality = result.tables["scene_quality"]
    assert set(quality["band"]) == {"coastal", "blue", "green", "red", "nir", "swir1", "swir2"}
    # on the analysis grid: the edge columns inside the study area (x ≥ 403 550 m of 403 000…405 000 m)
    assert (quality["outside_cells"] > 0).all() and (quality["share_outside"] < 0.1).all()
    assert (area / "out" / "tables" / "scene_quality.csv").is_file()
    warnings = result.manifest["warnings"]
    assert any("reflectance outside -0.2 … 1.6" in w and PID in w for w in warnings), warnings


def test_a_clean_product_has_no_invalid_area_and_no_warning(area):
    from ecoassess.pipeline import run

    write_product(area / PID, edge=False, dark=False)
    spec = {"kind": "landsat_c2l2", "path": PID}
    result = run(write_config(area, [spec]), area / "out")
    assert not result.problems, result.problems
    assert (result.tables["county_vegetation"]["ndvi_invalid_km2"] == 0).all()
    assert (result.tables["scene_quality"]["outside_cells"] == 0).all()
    assert not any("reflectance outside" in w for w in result.manifest["warnings"])


def test_dates_in_the_quality_table_are_iso(tmp_path):
    scene = open_landsat_c2l2(write_product(tmp_path / PID, edge=False))
    table = scene_quality_table([scene])
    assert set(table["date"]) == {dt.date(2024, 7, 15).isoformat()}
    assert (table["outside_cells"] == 0).all() and (table["valid_cells"] == H * W).all()
