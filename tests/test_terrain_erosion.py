"""Terrain (Horn slope, RUSLE LS) and soil erosion (RUSLE, SL 190-2007 classes, HJ 192 groups)."""

from __future__ import annotations

import math

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from ecoassess.assess.erosion import (
    c_factor_from_land_cover, cai_c_from_fvc, erosion_areas_by_class, erosion_classes, erosion_modulus_t_km2_yr,
    erosion_statement, estimate_soil_loss, factor_table, hj192_erosion_group, p_factor_from_land_cover,
    read_erosion_classes,
    rusle_soil_loss, rusle_table, sl190_class_limits,
)
from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.layers.terrain import (
    ls_factor, slope_degrees, slope_length_factor, slope_steepness_factor,
)
from ecoassess.legends import Legend, load_legend
from ecoassess.zones import ZoneSet

RES = 30.0


def _grid(w, h, res=RES):
    return AnalysisGrid.from_bounds((0.0, 0.0, w * res, h * res), res, china_albers_crs())


def _layer(grid, values, chunk=1024, name="v", **attrs):
    arr = grid.wrap(da.from_array(np.asarray(values), chunks=chunk), name=name)
    arr.attrs.update(attrs)
    return arr


def _deg(tan_value):
    return math.degrees(math.atan(tan_value))


# -- slope --------------------------------------------------------------------------------------------------------

def test_slope_of_a_plane_is_exact_everywhere_including_edges_and_corners():
    g = _grid(40, 25)
    rows, cols = np.mgrid[0:g.height, 0:g.width]
    # z rises 0.12 m per m eastwards and 0.05 m per m southwards: gradient magnitude 0.13
    z = 250.0 + 0.12 * cols * RES + 0.05 * rows * RES
    slope = slope_degrees(_layer(g, z, chunk=7)).values
    np.testing.assert_allclose(slope, _deg(0.13), rtol=0, atol=1e-4)
    assert slope.dtype == np.float32
    # heights in feet: the same numbers are 0.3048× as steep
    slope_ft = slope_degrees(_layer(g, z, chunk=7), z_units="ft").values
    np.testing.assert_allclose(slope_ft, _deg(0.13 * 0.3048), atol=1e-4)


def test_horn_slope_matches_the_hand_computed_3x3_example():
    # ESRI "How Slope works" example, cell size 5 m:
    # dz/dx = ((50 + 60 + 10) - (50 + 60 + 8)) / 40 = 0.05; dz/dy = ((8 + 20 + 10) - (50 + 90 + 50)) / 40 = -3.8
    z = np.array([[50, 45, 50], [30, 30, 30], [8, 10, 10]], dtype="float32")
    g = _grid(3, 3, res=5.0)
    slope = slope_degrees(_layer(g, z)).values
    assert slope[1, 1] == pytest.approx(_deg(math.hypot(0.05, 3.8)), abs=1e-4)
    assert slope[1, 1] == pytest.approx(75.25762, abs=1e-4)


def test_slope_of_a_cone_is_the_cone_gradient_away_from_the_apex():
    g = _grid(61, 61)
    rows, cols = np.mgrid[0:61, 0:61]
    k = 0.35  # the cone surface drops 0.35 m per m from the apex
    r_m = np.hypot(rows - 30, cols - 30) * RES
    z = 1000.0 - k * r_m
    slope = slope_degrees(_layer(g, z, chunk=16)).values
    assert slope[30, 30] == pytest.approx(0.0, abs=1e-6)  # Horn's stencil is symmetric at the apex
    ring = (r_m >= 10 * RES) & (r_m <= 25 * RES)
    # Horn's finite differences on a cone carry an O((Δ/r)²) curvature error: < 0.5 % of tan θ from 10 cells out
    np.testing.assert_allclose(np.tan(np.radians(slope[ring])), k, rtol=5e-3)
    axis = slope[30, 35:60]  # along the row through the apex dz/dy = 0 exactly
    np.testing.assert_allclose(np.tan(np.radians(axis[5:])), k, rtol=5e-3)


def test_slope_is_identical_for_any_chunking():
    rng = np.random.default_rng(7)
    g = _grid(83, 61)
    z = np.cumsum(np.cumsum(rng.normal(0, 1.0, g.shape), axis=0), axis=1) + 500.0
    z[10:13, 20:24] = np.nan
    z[40, 7] = np.nan
    a = slope_degrees(_layer(g, z, chunk=7)).values
    b = slope_degrees(_layer(g, z, chunk=1024)).values
    c = slope_degrees(g.wrap(z)).values  # numpy-backed
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    ls7 = ls_factor(_layer(g, z, chunk=7), slope_length_m=60.0).values
    ls1024 = ls_factor(_layer(g, z, chunk=1024), slope_length_m=60.0).values
    np.testing.assert_array_equal(ls7, ls1024)


def test_nan_dem_cells_propagate():
    g = _grid(20, 15)
    rows, cols = np.mgrid[0:g.height, 0:g.width]
    z = 10.0 + 0.2 * cols * RES
    z[7, 9] = np.nan
    slope = slope_degrees(_layer(g, z, chunk=4)).values
    assert np.isnan(slope[7, 9])
    assert np.isfinite(np.delete(slope.ravel(), 7 * 20 + 9)).all()
    # neighbours of the hole keep the plane's slope (mirrored through the centre)
    np.testing.assert_allclose(slope[6:9, 8:11][~np.isnan(slope[6:9, 8:11])], _deg(0.2), atol=1e-4)
    strict = slope_degrees(_layer(g, z, chunk=4), edges="nan").values
    assert np.isnan(strict[6:9, 8:11]).all() and np.isnan(strict[0]).all()  # gdaldem-style: no extrapolation
    ls = ls_factor(_layer(g, z, chunk=4), slope_length_m=40.0).values
    assert np.isnan(ls[7, 9]) and np.isfinite(ls[7, 8])


# -- LS -----------------------------------------------------------------------------------------------------------

def test_s_factor_by_hand_on_each_branch():
    g = _grid(4, 1)
    slope = _layer(g, np.array([[2.0, 7.0, 15.0, np.nan]]))
    s = slope_steepness_factor(slope).values[0]
    assert s[0] == pytest.approx(10.8 * math.sin(math.radians(2.0)) + 0.03, rel=1e-6)   # 0.4069
    assert s[1] == pytest.approx(16.8 * math.sin(math.radians(7.0)) - 0.50, rel=1e-6)   # 1.5474
    assert s[2] == pytest.approx(21.91 * math.sin(math.radians(15.0)) - 0.96, rel=1e-6)  # 4.7107
    assert np.isnan(s[3])
    # McCool two-part: 15° stays on 16.8 sin θ − 0.5
    s2 = slope_steepness_factor(slope, method="mccool").values[0]
    assert s2[2] == pytest.approx(16.8 * math.sin(math.radians(15.0)) - 0.50, rel=1e-6)


def test_l_factor_and_ls_by_hand():
    theta = 15.0
    sin_t = math.sin(math.radians(theta))
    beta = (sin_t / 0.0896) / (3 * sin_t ** 0.8 + 0.56)
    m = beta / (1 + beta)
    g = _grid(3, 1)
    slope = _layer(g, np.array([[theta, 0.0, theta]]))
    lf = slope_length_factor(slope, slope_length_m=80.0).values[0]
    assert lf[0] == pytest.approx((80.0 / 22.13) ** m, rel=1e-6)
    assert lf[1] == pytest.approx(1.0)  # flat: m = 0
    fixed = slope_length_factor(slope, slope_length_m=80.0, m_exponent=0.5).values[0]
    assert fixed[0] == pytest.approx(math.sqrt(80.0 / 22.13), rel=1e-6)
    default = slope_length_factor(slope)
    assert default.attrs["slope_length_m"] == rusle_table()["ls"]["default_slope_length_m"]["value"]
    assert "rusle.yaml" in default.attrs["slope_length_source"]
    # ls_factor on a plane of known slope = L·S by hand
    gp = _grid(12, 9)
    rows, cols = np.mgrid[0:gp.height, 0:gp.width]
    tan_t = 0.25
    dem = _layer(gp, 100.0 + tan_t * cols * RES, chunk=5)
    th = math.atan(tan_t)
    b2 = (math.sin(th) / 0.0896) / (3 * math.sin(th) ** 0.8 + 0.56)
    expected = (50.0 / 22.13) ** (b2 / (1 + b2)) * (21.91 * math.sin(th) - 0.96)
    ls = ls_factor(dem, slope_length_m=50.0)
    np.testing.assert_allclose(ls.values, expected, rtol=1e-5)
    assert ls.attrs["slope_length_m"] == 50.0 and ls.attrs["s_method"] == "liu_mccool"


# -- RUSLE ----------------------------------------------------------------------------------------------------------

def test_rusle_product_by_hand_and_units():
    g = _grid(3, 2)
    r = _layer(g, np.array([[3000.0, 5000.0, 4200.0], [3000.0, np.nan, 1000.0]]), name="r")
    ls = _layer(g, np.array([[1.2, 4.0, 0.5], [2.0, 1.0, 10.0]]), name="ls")
    c = _layer(g, np.array([[0.25, 0.006, 1.0], [0.0, 0.1, 0.04]]), name="c")
    a = rusle_soil_loss(r_factor=r, k_factor=0.035, ls=ls, c_factor=c, p_factor=0.35)
    v = a.values
    assert v[0, 0] == pytest.approx(3000 * 0.035 * 1.2 * 0.25 * 0.35, rel=1e-6)   # 11.025 t/ha/yr
    assert v[0, 1] == pytest.approx(5000 * 0.035 * 4.0 * 0.006 * 0.35, rel=1e-6)  # 1.47
    assert v[0, 2] == pytest.approx(4200 * 0.035 * 0.5 * 1.0 * 0.35, rel=1e-6)    # 25.725 → 2572.5 t/km²/yr
    assert v[1, 0] == 0.0 and np.isnan(v[1, 1])
    assert a.name == "soil_loss_t_ha_yr" and a.attrs["units"] == "t ha-1 a-1"
    assert a.attrs["estimated"] is True and a.attrs["erosion_source"] == "estimated"
    assert a.attrs["k_factor_input"] == "0.035" and a.attrs["r_factor_input"] == "layer r"
    m = erosion_modulus_t_km2_yr(a)
    assert m.values[0, 2] == pytest.approx(2572.5, rel=1e-6) and m.attrs["units"] == "t km-2 a-1"
    with pytest.warns(UserWarning, match="US customary"):
        rusle_soil_loss(r_factor=3000.0, k_factor=0.3, ls=ls, c_factor=0.1, p_factor=1.0)
    with pytest.raises(ValueError, match="at least one"):
        rusle_soil_loss(r_factor=1.0, k_factor=0.01, ls=1.0, c_factor=0.1, p_factor=1.0)
    with pytest.raises(ValueError, match=r"c_factor must be in \[0, 1\]"):
        rusle_soil_loss(r_factor=r, k_factor=0.01, ls=ls, c_factor=1.5, p_factor=1.0)
    other = _layer(_grid(3, 2, res=10.0), np.ones((2, 3)), name="c")
    with pytest.raises(InputError, match="same analysis grid"):
        rusle_soil_loss(r_factor=r, k_factor=0.01, ls=ls, c_factor=other, p_factor=1.0)


# -- SL 190 classes -------------------------------------------------------------------------------------------------

def test_sl190_class_boundaries_lower_limit_inclusive():
    modulus = np.array([[0.0, 499.999, 500.0, 2499.999, 2500.0, 4999.9, 5000.0, 7999.9, 8000.0,
                         14999.9, 15000.0, 90000.0, np.nan, -1.0]])
    g = _grid(modulus.shape[1], 1)
    cls = erosion_classes(_layer(g, modulus, chunk=3), region="southwest_purple_soil", units="t km-2 a-1").values[0]
    assert cls.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 0, 0]
    # the same through the RUSLE unit t/ha/yr (×100): 25 t/ha/yr = 2500 t/km²/yr is 中度, not 轻度
    loss = _layer(g, modulus / 100.0, units="t ha-1 a-1")
    assert erosion_classes(loss, region="southwest_purple_soil").values[0].tolist() == cls.tolist()
    # the tolerance depends on the region: loess 1000, black soil 200
    m2 = _layer(_grid(4, 1), np.array([[199.9, 200.0, 999.9, 1000.0]]), units="t km-2 a-1")
    assert erosion_classes(m2, region="northwest_loess_plateau").values[0].tolist() == [1, 1, 1, 2]
    assert erosion_classes(m2, region="northeast_black_soil").values[0].tolist() == [1, 2, 2, 2]
    assert [c["lower"] for c in sl190_class_limits("southern_red_soil_hilly")] == [0, 500, 2500, 5000, 8000, 15000]
    with pytest.raises(InputError, match="units"):
        erosion_classes(_layer(g, modulus), region="northeast_black_soil")
    with pytest.raises(ValueError, match="unknown SL 190 region"):
        erosion_classes(loss, region="mars")


def test_hj192_groups_from_classes():
    g = _grid(7, 1)
    cls = _layer(g, np.array([[0, 1, 2, 3, 4, 5, 6]], dtype="uint8"))
    assert hj192_erosion_group(cls).values[0].tolist() == [0, 0, 0, 1, 2, 2, 2]


# -- C and P --------------------------------------------------------------------------------------------------------

def test_c_and_p_tables_cover_every_cas_code():
    legend = load_legend("cas_lucc")
    for factor in ("c", "p"):
        table = factor_table(factor, legend)
        assert set(table) == set(legend.classes)
        assert all(v["via"] == "cas_code" for v in table.values())
        finite = [v["value"] for v in table.values() if not math.isnan(v["value"])]
        assert all(0.0 <= x <= 1.0 for x in finite)
        assert math.isnan(table[99]["value"])  # sea: excluded
    raw = rusle_table()
    for factor in ("c", "p"):
        for entry in list(raw[f"{factor}_factor"]["by_cas_code"].values()) + \
                list(raw[f"{factor}_factor"]["by_hj192_class"].values()):
            assert entry["confidence"] in ("A", "B", "C") and entry["source"]


def test_missing_code_is_an_error_naming_it_and_hj192_fallback():
    base = load_legend("cas_lucc")
    other = Legend("other", "other", "1", 0, {1: {"zh": "林", "hj192": "forest"}, 2: {"zh": "耕", "hj192": "dry_land"}})
    table = factor_table("c", other)
    assert table[1]["value"] == pytest.approx(0.006) and table[1]["via"] == "hj192:forest"
    pending = Legend("p", "p", "1", 0, {4: {"zh": "耕地", "hj192": "cropland", "default": "dry_land"}})
    assert factor_table("p", pending)[4] == {"value": 0.35, "fvc": False, "via": "hj192:dry_land (default)"}
    broken = Legend("broken", "broken", "1", 0, {**base.classes, 77: {"zh": "新类", "hj192": None}})
    with pytest.raises(InputError, match=r"77 \(新类"):
        factor_table("p", broken)


def test_every_shipped_legend_has_c_and_p():
    from ecoassess.catalog import data_dir

    import yaml

    for path in sorted(data_dir("layers").glob("*.yaml")):
        if "classes" not in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}):
            continue  # not a land-cover legend (e.g. a style file)
        legend = load_legend(path.stem)
        for factor in ("c", "p"):
            assert set(factor_table(factor, legend)) == set(legend.classes), (path.name, factor)


def test_c_and_p_lookup_on_a_raster_and_from_fvc():
    g = _grid(6, 1)
    lc = _layer(g, np.array([[11, 12, 21, 41, 99, 0]], dtype="uint8"), chunk=4)
    c = c_factor_from_land_cover(lc, "cas_lucc").values[0]
    np.testing.assert_allclose(c[:4], [0.15, 0.25, 0.006, 0.0], rtol=1e-6)
    assert np.isnan(c[4]) and np.isnan(c[5])  # sea excluded; nodata
    p = p_factor_from_land_cover(lc, "cas_lucc").values[0]
    np.testing.assert_allclose(p[:4], [0.15, 0.35, 1.0, 0.0], rtol=1e-6)
    # Cai et al.: C = 0.6508 − 0.3436·lg(c %), 1 at 0 %, 0 from 78.3 %
    fvc = _layer(g, np.array([[0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]))
    cf = c_factor_from_land_cover(lc, "cas_lucc", fvc=fvc).values[0]
    assert cf[2] == pytest.approx(0.6508 - 0.3436 * math.log10(50.0), rel=1e-5)  # forest uses FVC
    assert cf[1] == pytest.approx(0.25)  # dry land keeps the table value
    cai = cai_c_from_fvc(_layer(_grid(4, 1), np.array([[0.0, 0.783, 0.9, np.nan]]))).values[0]
    assert cai[0] == 1.0 and cai[1] == 0.0 and cai[2] == 0.0 and np.isnan(cai[3])
    with pytest.raises(InputError, match="not in legend"):
        c_factor_from_land_cover(_layer(g, np.array([[11, 12, 21, 41, 13, 0]], dtype="uint8")), "cas_lucc",
                                 check_codes=True)


# -- given vs estimated ---------------------------------------------------------------------------------------------

def _zones(grid):
    gdf = gpd.GeoDataFrame({"code": ["510001"], "name": ["县"]}, geometry=[box(*grid.bounds)],
                           crs=grid.crs.to_wkt())
    return ZoneSet.from_gdf(gdf, grid, id_field="code", name_field="name")


def test_estimated_flag_and_areas_for_a_rusle_estimate():
    g = _grid(10, 2)
    loss = np.array([[1, 10, 24.99, 25, 50, 79, 80, 160, 5, 5], [np.nan, 30, 30, 30, 100, 200, 2, 2, 2, 2]],
                    dtype="float64")
    # R = the loss, K = 1 (a layer, so no unit warning), LS = C = P = 1: A equals the loss exactly
    a = rusle_soil_loss(r_factor=_layer(g, loss, name="r"), k_factor=_layer(g, np.ones(g.shape), name="k"),
                        ls=1.0, c_factor=1.0, p_factor=1.0)
    cls = erosion_classes(a, region="southwest_purple_soil")
    assert cls.attrs["estimated"] is True and cls.attrs["erosion_source"] == "estimated"
    df = erosion_areas_by_class(_zones(g), cls)
    cell_km2 = RES * RES / 1e6
    row = df.iloc[0]
    # ×100 → t/km²/yr, T = 500: 微度 100, 200×4; 轻度 1000, 2499, 500×2; 中度 2500, 3000×3;
    # 强烈 5000, 7900; 极强烈 8000, 10000; 剧烈 16000, 20000; NaN → nodata
    counts = np.bincount(cls.values.ravel(), minlength=7)
    for code in range(1, 7):
        assert row[f"sl190_class{code}_km2"] == pytest.approx(counts[code] * cell_km2)
    assert row["moderate_erosion_km2"] == pytest.approx(counts[3] * cell_km2)
    assert row["severe_erosion_km2"] == pytest.approx((counts[4] + counts[5] + counts[6]) * cell_km2)
    assert row["erosion_nodata_km2"] == pytest.approx(1 * cell_km2)
    assert counts.tolist() == [1, 5, 4, 4, 2, 2, 2]
    assert bool(row["erosion_estimated"]) is True and row["erosion_source"] == "estimated"
    assert "RUSLE" in erosion_statement(cls, lang="zh") and "ESTIMATED" in erosion_statement(cls, lang="en")


def test_read_given_class_raster_is_flagged_given(tmp_path):
    g = _grid(6, 4)
    codes = np.array([[1, 2, 3, 4, 5, 6]] * 3 + [[255, 255, 3, 3, 6, 1]], dtype="uint8")
    path = tmp_path / "erosion.tif"
    with rasterio.open(path, "w", driver="GTiff", width=6, height=4, count=1, dtype="uint8", crs=g.crs,
                       transform=g.transform, nodata=255) as dst:
        dst.write(codes, 1)
    cls = read_erosion_classes(path, g, chunk=3)
    v = cls.values
    assert v.dtype == np.uint8 and v[3].tolist() == [0, 0, 3, 3, 6, 1]
    assert cls.attrs["estimated"] is False and cls.attrs["erosion_source"] == "given"
    df = erosion_areas_by_class(_zones(g), cls)
    assert df.iloc[0]["severe_erosion_km2"] == pytest.approx(10 * RES * RES / 1e6)
    assert df.iloc[0]["moderate_erosion_km2"] == pytest.approx(5 * RES * RES / 1e6)
    assert bool(df.iloc[0]["erosion_estimated"]) is False
    assert "提供" in erosion_statement(cls)
    # another coding: 10..60 with a class map; an unknown code is an error naming it
    with rasterio.open(path, "r+") as dst:
        dst.write(np.where(codes == 255, 255, codes * 10).astype("uint8"), 1)
    remapped = read_erosion_classes(path, g, class_map={10 * k: k for k in range(1, 7)})
    assert remapped.values[0].tolist() == [1, 2, 3, 4, 5, 6]
    with pytest.raises(InputError, match="10"):
        read_erosion_classes(path, g)


def test_estimate_soil_loss_equals_the_steps():
    g = _grid(20, 12)
    rows, cols = np.mgrid[0:g.height, 0:g.width]
    dem = _layer(g, 300.0 + 0.3 * cols * RES + 0.02 * rows ** 2 * RES, chunk=6)
    lc = _layer(g, np.where(cols < 10, 12, 21).astype("uint8"), chunk=6)
    a = estimate_soil_loss(dem, lc, "cas_lucc", r_factor=4000.0, k_factor=0.03, slope_length_m=60.0)
    steps = rusle_soil_loss(r_factor=4000.0, k_factor=0.03, ls=ls_factor(dem, slope_length_m=60.0),
                            c_factor=c_factor_from_land_cover(lc, "cas_lucc"),
                            p_factor=p_factor_from_land_cover(lc, "cas_lucc"))
    np.testing.assert_array_equal(a.values, steps.values)
    assert a.attrs["estimated"] is True and a.attrs["ls_slope_length_m"] == 60.0
