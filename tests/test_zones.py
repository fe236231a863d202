import logging

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from exactextract import exact_extract
from exactextract.raster import NumPyRasterSource
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, box

from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.zones import ZoneSet, cell_coverage, zonal_class_areas, zonal_stats

CRS = "EPSG:3035"


def _grid(w, h, res=10.0, x0=0.0, y0=0.0):
    return AnalysisGrid.from_bounds((x0, y0, x0 + w * res, y0 + h * res), res, CRS)


def _layer(grid, values, chunk=1024, name="v", **attrs):
    arr = grid.wrap(da.from_array(values, chunks=chunk), name=name)
    arr.attrs.update(attrs)
    return arr


def _zones(geoms, grid, crs=CRS, **kw):
    gdf = gpd.GeoDataFrame({"zid": [f"z{i}" for i in range(len(geoms))], "label": [f"Zone {i}" for i in range(len(geoms))]},
                           geometry=geoms, crs=crs)
    return ZoneSet.from_gdf(gdf, grid, id_field="zid", name_field="label", **kw)


def _random_polygons(rng, n, extent):
    out = []
    for i in range(n):
        cx, cy = rng.uniform(0, extent, 2)
        t = np.sort(rng.uniform(0, 2 * np.pi, 25))
        r = rng.uniform(0.05, 0.25, 25) * extent
        p = shapely.make_valid(Polygon(np.c_[cx + r * np.cos(t), cy + r * np.sin(t)]))
        if i % 4 == 0:  # a hole
            p = p.difference(shapely.Point(cx, cy).buffer(0.03 * extent))
        out.append(max(shapely.get_parts(p), key=lambda g: g.area) if p.geom_type != "Polygon" else p)
    return out


def _accounting_closes(df, layer="v", rel=1e-9):
    total = df[f"{layer}_valid_km2"] + df[f"{layer}_masked_km2"] + df[f"{layer}_nodata_km2"] + df["area_outside_km2"]
    np.testing.assert_allclose(total, df["area_km2"], rtol=rel, atol=1e-15)


# -- coverage fractions -------------------------------------------------------------------------------------

def test_cell_coverage_equals_shapely_cell_intersections():
    rng = np.random.default_rng(3)
    from ecoassess.zones import _ring_edges

    for g in _random_polygons(rng, 8, 30.0):
        edges = _ring_edges(g, Affine(1, 0, 0, 0, -1, 30))  # 30 x 30 unit cells, top-left origin
        jj, ii = np.mgrid[0:30, 0:30]
        ref = shapely.area(shapely.intersection(shapely.box(ii, 30 - jj - 1, ii + 1, 30 - jj), g))
        np.testing.assert_allclose(cell_coverage(edges, 0, 30, 0, 30), ref, atol=1e-10)
        np.testing.assert_allclose(cell_coverage(edges, 7, 19, 11, 23), ref[7:19, 11:23], atol=1e-10)


@pytest.mark.filterwarnings("ignore:.*overlapping")
def test_hand_computed_2x2():
    grid = _grid(2, 2)  # cells of 10 m: x 0..20, y 0..20; values by row from the top
    values = np.array([[1.0, 2.0], [3.0, 4.0]], dtype="float32")
    half = box(0, 10, 5, 20)  # exactly half of the top-left cell
    one_and_half = box(0, 10, 15, 20)  # top-left cell + half of top-right
    tri = Polygon([(0, 0), (20, 0), (0, 20)])  # lower-left triangle: 1, 1/2, 1/2, 0 of cells (3, 1, 4, 2)
    zs = _zones([half, one_and_half, tri], grid)
    df = zonal_stats(zs, {"v": _layer(grid, values)}, stats=("mean", "std", "min", "max", "sum"))
    assert df.loc["z0", "v_mean"] == pytest.approx(1.0)
    assert df.loc["z0", "v_n_cells"] == pytest.approx(0.5)
    assert df.loc["z0", "v_valid_km2"] == pytest.approx(50e-6)
    assert df.loc["z0", "area_km2"] == pytest.approx(50e-6)
    assert df.loc["z1", "v_mean"] == pytest.approx(4 / 3)
    assert df.loc["z1", "v_std"] == pytest.approx(np.sqrt(2 / 9))
    assert (df.loc["z1", "v_min"], df.loc["z1", "v_max"]) == (1.0, 2.0)
    assert df.loc["z1", "v_sum"] == pytest.approx(2.0)
    # triangle: weights top-left 1/2, top-right 0, bottom-left 1, bottom-right 1/2
    assert df.loc["z2", "v_mean"] == pytest.approx((0.5 * 1 + 1 * 3 + 0.5 * 4) / 2.0)
    assert df.loc["z2", "v_n_cells"] == pytest.approx(2.0)
    assert df.loc["z2", "v_max"] == 4.0  # the diagonal only touches the top-right cell (coverage 0)
    assert list(df["name"]) == ["Zone 0", "Zone 1", "Zone 2"]
    _accounting_closes(df)


# -- against exactextract ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(11)
    grid = _grid(90, 70, res=30.0, x0=4_000_000, y0=2_500_000)
    values = rng.normal(0.4, 0.2, grid.shape).astype("float32")
    values[rng.random(grid.shape) < 0.07] = np.nan
    polys = [shapely.affinity.translate(p, 4_000_000, 2_500_000) for p in _random_polygons(rng, 15, 2400.0)]
    polys.append(MultiPolygon([box(4_000_100, 2_500_100, 4_000_155, 2_500_140),
                               box(4_002_000.5, 2_501_000.3, 4_002_070.2, 2_501_033.3)]))
    return grid, values, polys


def test_mean_std_min_max_count_match_exactextract(random_case):
    grid, values, polys = random_case
    with pytest.warns(UserWarning, match="overlapping"):
        zs = _zones(polys, grid)
    df = zonal_stats(zs, {"v": _layer(grid, values, chunk=7)})
    xmin, ymin, xmax, ymax = grid.bounds
    src = NumPyRasterSource(np.where(np.isnan(values), -9999.0, values.astype("float64")), xmin, ymin, xmax, ymax,
                            nodata=-9999.0, srs_wkt=grid.crs.to_wkt())
    gdf = zs.gdf.reset_index()
    ee = exact_extract(src, gdf, ["mean", "stdev", "min", "max", "count"], include_cols=["zid"], output="pandas")
    ee = ee.set_index("zid").loc[df.index]
    # exactextract keeps coverage fractions in float32: agreement to ~1e-6 relative
    np.testing.assert_allclose(df["v_mean"], ee["mean"], rtol=2e-6)
    np.testing.assert_allclose(df["v_std"], ee["stdev"], rtol=1e-5)
    np.testing.assert_array_equal(df["v_min"], ee["min"].astype("float32"))
    np.testing.assert_array_equal(df["v_max"], ee["max"].astype("float32"))
    np.testing.assert_allclose(df["v_n_cells"], ee["count"], rtol=1e-6)
    _accounting_closes(df)


def test_chunk_size_does_not_change_results(random_case):
    grid, values, polys = random_case
    with pytest.warns(UserWarning):
        zs = _zones(polys, grid)
    a = zonal_stats(zs, {"v": _layer(grid, values, chunk=7)})
    b = zonal_stats(zs, {"v": _layer(grid, values, chunk=1024)})
    num = a.select_dtypes("number").columns
    np.testing.assert_allclose(a[num], b[num], rtol=1e-12, atol=1e-15)
    assert (a["v_few_cells"] == b["v_few_cells"]).all()


@pytest.mark.filterwarnings("ignore:.*overlapping")
def test_area_accounting_with_mask_nodata_and_zone_half_outside():
    grid = _grid(40, 40)  # 400 m x 400 m
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, grid.shape).astype("float32")
    values[:, :5] = np.nan  # nodata strip on the west
    cloud = np.zeros(grid.shape, bool)
    cloud[:10, :] = True  # masked strip on the north
    half_out = box(-100, 100, 100, 300)  # 200 x 200 m, west half outside the grid
    inner = box(33, 41.5, 277.7, 391)
    far = box(1000, 1000, 1100, 1100)  # entirely outside
    zs = _zones([half_out, inner, far], grid)
    df = zonal_stats(zs, {"v": _layer(grid, values, chunk=16)}, masked=grid.wrap(da.from_array(cloud, chunks=16)))
    _accounting_closes(df)
    assert df.loc["z0", "area_km2"] == pytest.approx(0.04)
    assert df.loc["z0", "area_outside_km2"] == pytest.approx(0.02)
    assert df.loc["z0", "v_nodata_km2"] == pytest.approx(50 * 200 / 1e6)  # x 0..50 m is NaN
    assert df.loc["z0", "v_masked_km2"] == pytest.approx(0.0)
    assert df.loc["z1", "v_masked_km2"] == pytest.approx((277.7 - 33) * (391 - 300) / 1e6)
    # the entirely outside zone: NaN statistics, visible in the area columns, flagged
    assert np.isnan(df.loc["z2", "v_mean"]) and df.loc["z2", "v_few_cells"]
    assert df.loc["z2", "area_outside_km2"] == pytest.approx(0.01)
    # z1's mean by brute force: weights = shapely area of each cell ∩ polygon, valid = not NaN and not cloud
    jj, ii = np.mgrid[0:40, 0:40]
    w = shapely.area(shapely.intersection(shapely.box(ii * 10, 400 - (jj + 1) * 10, (ii + 1) * 10, 400 - jj * 10), inner)) / 100
    ok = np.isfinite(values) & ~cloud & (w > 0)
    assert df.loc["z1", "v_mean"] == pytest.approx(np.sum(w[ok] * values[ok]) / np.sum(w[ok]), rel=1e-12)
    assert df.loc["z1", "v_n_cells"] == pytest.approx(np.sum(w[ok]), rel=1e-12)


def test_zone_with_only_masked_cells_gets_nan_and_area(caplog):
    grid = _grid(10, 10)
    values = np.ones(grid.shape, "float32")
    cloud = np.zeros(grid.shape, bool)
    cloud[:5] = True
    zs = _zones([box(0, 60, 40, 100), box(0, 0, 40, 40)], grid)
    with caplog.at_level(logging.WARNING, logger="ecoassess.zones"):
        df = zonal_stats(zs, {"v": _layer(grid, values)}, masked=grid.wrap(cloud))
    assert np.isnan(df.loc["z0", "v_mean"]) and df.loc["z0", "v_masked_km2"] == pytest.approx(0.0016)
    assert df.loc["z1", "v_mean"] == 1.0
    assert "z0" in caplog.text


def test_several_layers_share_the_coverage_cache(tmp_path):
    grid = _grid(50, 50)
    rng = np.random.default_rng(5)
    polys = _random_polygons(rng, 5, 500.0)
    zs = _zones([p.intersection(box(0, 0, 500, 500)) for p in polys[:1]] + [box(10, 10, 200, 200)], grid,
                cache_dir=tmp_path)
    layers = {f"l{i}": _layer(grid, rng.normal(size=grid.shape).astype("float32"), chunk=16, name=f"l{i}")
              for i in range(3)}
    one = zonal_stats(zs, layers)
    computed = zs.coverage_computations
    assert computed > 0
    again = zonal_stats(zs, {"l1": layers["l1"]})  # second call: coverage from memory
    assert zs.coverage_computations == computed
    np.testing.assert_array_equal(again["l1_mean"], one["l1_mean"])
    zonal_class_areas(zs, _layer(grid, (rng.random(grid.shape) * 3).astype("uint8"), chunk=16, name="c"))
    assert zs.coverage_computations == computed
    # a new ZoneSet of the same polygons finds the coverage on disk
    zs2 = _zones(list(zs.gdf.geometry), grid, cache_dir=tmp_path)
    third = zonal_stats(zs2, layers)
    assert zs2.coverage_computations == 0
    np.testing.assert_array_equal(third["l2_std"], one["l2_std"])


def test_layers_must_share_the_zones_grid():
    grid = _grid(10, 10)
    zs = _zones([box(0, 0, 50, 50)], grid)
    other = _grid(10, 10, x0=5.0)
    with pytest.raises(InputError, match="grid"):
        zonal_stats(zs, {"v": _layer(other, np.ones(other.shape))})


# -- input checks ---------------------------------------------------------------------------------------------------

def test_zones_in_cgcs2000_degrees_on_an_albers_grid_have_geodesic_areas():
    crs = china_albers_crs()
    cells = [box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.25, 30.07)]
    dense = [shapely.segmentize(c, 0.005) for c in cells]  # vertices every ~500 m follow the true outline
    gdf = gpd.GeoDataFrame({"code": ["510101", "510102"]}, geometry=dense, crs="EPSG:4490")
    grid = AnalysisGrid.from_study_area(gdf, 100.0, crs)
    zs = ZoneSet.from_gdf(gdf, grid, id_field="code", source="counties.gpkg")
    geod = Geod(ellps="GRS80")
    for code, cell in zip(["510101", "510102"], dense):
        ref_km2 = abs(geod.geometry_area_perimeter(cell)[0]) / 1e6
        assert zs.gdf.loc[code, "area_km2"] == pytest.approx(ref_km2, rel=1e-4)
    df = zonal_stats(zs, {"v": grid.wrap(da.ones(grid.shape, chunks=64, dtype="float32"))})
    np.testing.assert_allclose(df["v_valid_km2"], df["area_km2"], rtol=1e-9)
    assert (df["area_outside_km2"] == 0).all()


def test_invalid_self_intersecting_polygon_is_repaired_and_logged(caplog):
    grid = _grid(10, 10)
    bowtie = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])  # two triangles of 2500 m² each
    with caplog.at_level(logging.WARNING, logger="ecoassess.zones"):
        zs = _zones([bowtie], grid)
    assert "repaired" in caplog.text and "z0" in caplog.text
    assert zs.area_km2[0] == pytest.approx(0.005)
    df = zonal_stats(zs, {"v": _layer(grid, np.ones(grid.shape))})
    assert df.loc["z0", "v_valid_km2"] == pytest.approx(0.005)


def test_missing_id_field_names_field_and_lists_available():
    grid = _grid(10, 10)
    gdf = gpd.GeoDataFrame({"county_code": ["a"], "name": ["A"]}, geometry=[box(0, 0, 10, 10)], crs=CRS)
    with pytest.raises(InputError) as err:
        ZoneSet.from_gdf(gdf, grid, id_field="code", source="/data/counties.gpkg")
    msg = str(err.value)
    assert "/data/counties.gpkg" in msg and "'code'" in msg and "county_code" in msg and "name" in msg
    assert err.value.field == "code"


def test_duplicate_ids_empty_geometries_and_points_are_refused():
    grid = _grid(10, 10)
    dup = gpd.GeoDataFrame({"id": [1, 1]}, geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10)], crs=CRS)
    with pytest.raises(InputError, match="duplicate zone ids: 1"):
        ZoneSet.from_gdf(dup, grid, id_field="id")
    empty = gpd.GeoDataFrame({"id": [1, 2]}, geometry=[box(0, 0, 10, 10), Polygon()], crs=CRS)
    with pytest.raises(InputError, match="empty geometry for zone id.* 2"):
        ZoneSet.from_gdf(empty, grid, id_field="id")
    pts = gpd.GeoDataFrame({"id": [7]}, geometry=[shapely.Point(1, 1)], crs=CRS)
    with pytest.raises(InputError, match="7"):
        ZoneSet.from_gdf(pts, grid, id_field="id")


def test_overlaps_are_reported_with_ids_and_area():
    grid = _grid(10, 10)
    with pytest.warns(UserWarning, match=r"z0/z1: 0.0005 km²"):
        zs = _zones([box(0, 0, 50, 50), box(40, 0, 90, 50), box(90, 0, 100, 50)], grid)  # z1/z2 only touch
    assert len(zs.overlaps) == 1
    df = zonal_stats(zs, {"v": _layer(grid, np.ones(grid.shape))})
    np.testing.assert_allclose(df["v_valid_km2"], [0.0025, 0.0025, 0.0005])


# -- class areas --------------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:.*overlapping")
def test_class_areas_hand_computed_and_add_up():
    grid = _grid(2, 2)
    classes = np.array([[1, 2], [255, 1]], dtype="uint8")
    zs = _zones([box(5, 0, 20, 20), box(-10, 0, 10, 10)], grid)
    df = zonal_class_areas(zs, _layer(grid, classes, name="lc", nodata=255))
    # z0: half of cell(1), full cell(2), half of cell(255), full cell(1) -> class 1: 150 m², class 2: 100 m²
    assert df.loc["z0", "class_1_km2"] == pytest.approx(150e-6)
    assert df.loc["z0", "class_2_km2"] == pytest.approx(100e-6)
    assert df.loc["z0", "nodata_km2"] == pytest.approx(50e-6)
    assert df.loc["z1", "area_outside_km2"] == pytest.approx(100e-6)
    assert df.attrs["class_columns"] == {1: "class_1_km2", 2: "class_2_km2"}
    cls_cols = list(df.attrs["class_columns"].values())
    np.testing.assert_allclose(df[cls_cols].sum(axis=1) + df["nodata_km2"] + df["area_outside_km2"], df["area_km2"])


@pytest.mark.realdata
def test_corine_class_areas_of_swiss_municipalities_match_exactextract(shared_data):
    import rasterio

    from ecoassess.grid import read_on_grid

    folder = shared_data / "corine-clc-switzerland"
    tif = folder / "bern_valais_g100_clc00.tif"
    shp = folder / "municipalities_g1a18" / "g1a18.shp"
    if not tif.exists() or not shp.exists():
        pytest.skip("CORINE raster or municipalities absent")
    with rasterio.open(tif) as src:
        grid = AnalysisGrid(src.crs, src.transform, src.width, src.height)
    muni = gpd.read_file(shp)
    muni = muni[muni["GMDNAME"].isin(["Bern", "Thun", "Sion", "Zermatt", "Köniz", "Interlaken"])]
    assert len(muni) >= 4
    zs = ZoneSet.from_gdf(muni, grid, id_field="GMDNR", name_field="GMDNAME", source=str(shp))
    classes = read_on_grid(tif, grid, kind="classes", chunk=256, name="clc")
    df = zonal_class_areas(zs, classes)
    cols = df.attrs["class_columns"]
    gdf = zs.gdf.reset_index()
    ee = exact_extract(str(tif), gdf, ["unique", "frac", "count"], include_cols=["GMDNR"], output="pandas")
    cell_km2 = grid.cell_area_m2 / 1e6
    for _, row in ee.iterrows():
        got = df.loc[row["GMDNR"]]
        valid_km2 = sum(got[c] for c in cols.values())
        assert valid_km2 == pytest.approx(row["count"] * cell_km2, rel=1e-5)
        for code, frac in zip(row["unique"], row["frac"]):
            assert got[cols[int(code)]] / valid_km2 == pytest.approx(frac, rel=1e-5, abs=1e-7)
    closure = df[list(cols.values())].sum(axis=1) + df["nodata_km2"] + df["area_outside_km2"]
    np.testing.assert_allclose(closure, df["area_km2"], rtol=1e-9)
