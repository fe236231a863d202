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


def test_invalid_polygon_is_repaired_when_that_keeps_its_area_and_refused_otherwise(caplog):
    grid = _grid(10, 10)
    # a square whose ring runs back over itself along a 1 m spike: invalid, and make_valid keeps its area
    spiked = Polygon([(0, 0), (100, 0), (100, 50), (101, 50), (100, 50), (100, 100), (0, 100)])
    assert not spiked.is_valid
    with caplog.at_level(logging.WARNING, logger="ecoassess.zones"):
        zs = _zones([spiked], grid)
    assert "repaired" in caplog.text and "z0" in caplog.text and "0.01 km² repaired" in caplog.text
    assert zs.area_km2[0] == pytest.approx(0.01)
    df = zonal_stats(zs, {"v": _layer(grid, np.ones(grid.shape))})
    assert df.loc["z0", "v_valid_km2"] == pytest.approx(0.01)
    # a bow-tie: its two lobes cancel in the ring as drawn (0 km²), make_valid makes 0.005 km² of it — a guess
    bowtie = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    with pytest.raises(InputError, match=r"\[geometry\]: invalid geometry whose repair would change its area: z0 "
                                         r"\(Self-intersection.*0 km² as drawn, 0.005 km² after make_valid\)"):
        _zones([bowtie], grid)


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


# -- compiled kernels: edge cases against brute force ---------------------------------------------------------------

def _cell_weights(grid, polys):
    """(n_zones, rows, cols) covered fraction of every cell by shapely (independent of the scan conversion)."""
    jj, ii = np.mgrid[0:grid.height, 0:grid.width]
    x0, y1, r = grid.bounds[0], grid.bounds[3], grid.resolution
    cells = shapely.box(x0 + ii * r, y1 - (jj + 1) * r, x0 + (ii + 1) * r, y1 - jj * r)
    return np.stack([shapely.area(shapely.intersection(cells, p)) / r**2 for p in polys])


def _brute_stats(weights, values, valid, masked):
    out = {k: [] for k in ("mean", "std", "min", "max", "sum", "n_cells", "masked", "nodata")}
    x = values.astype("float64")
    for w in weights:
        w = np.where(w >= 1 - 1e-9, 1.0, np.where(w > 1e-12, w, 0.0))
        ok = valid & (w > 0)
        n = w[ok].sum()
        mean = (w[ok] * x[ok]).sum() / n if n else np.nan
        out["mean"].append(mean)
        out["std"].append(np.sqrt((w[ok] * (x[ok] - mean) ** 2).sum() / n) if n else np.nan)
        out["min"].append(x[ok].min() if ok.any() else np.nan)
        out["max"].append(x[ok].max() if ok.any() else np.nan)
        out["sum"].append((w[ok] * x[ok]).sum() if n else np.nan)
        out["n_cells"].append(n)
        out["masked"].append(w[masked].sum())
        out["nodata"].append(w[~valid & ~masked].sum())
    return {k: np.asarray(v) for k, v in out.items()}


def _assert_stats_match(df, ref, cell_km2, layer="v"):
    for s in ("mean", "std", "min", "max", "sum", "n_cells"):
        np.testing.assert_allclose(df[f"{layer}_{s}"], ref[s], rtol=1e-9, atol=1e-12, err_msg=s)
    np.testing.assert_allclose(df[f"{layer}_masked_km2"], ref["masked"] * cell_km2, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(df[f"{layer}_nodata_km2"], ref["nodata"] * cell_km2, rtol=1e-9, atol=1e-15)


@pytest.fixture(scope="module")
def kernel_case():
    rng = np.random.default_rng(21)
    grid = _grid(45, 38)  # 450 m x 380 m, odd sizes: ragged edge chunks
    polys = _random_polygons(rng, 6, 380.0)
    polys += [box(-50, 200, 130.5, 300),  # half outside the grid
              box(200, 100, 350, 250),  # overlaps others; whole chunks inside it with chunk=16
              Polygon([(0, 0), (60, 0), (0, 60)])]  # bbox meets chunks its area does not reach
    return grid, polys, _cell_weights(grid, polys)


@pytest.mark.filterwarnings("ignore:.*overlapping")
@pytest.mark.parametrize("dtype, nodata", [("float32", None), ("float64", -9999.0), ("uint16", 0), ("int16", -300),
                                           ("uint8", 255), ("int32", None)])
@pytest.mark.parametrize("mask_kind", [None, "bool", "float", "uint8"])
def test_stats_match_brute_force_over_dtypes_masks_and_nodata(kernel_case, dtype, nodata, mask_kind):
    grid, polys, weights = kernel_case
    rng = np.random.default_rng(hash((dtype, mask_kind)) % 2**32)
    if dtype.startswith("float"):
        values = rng.normal(0.4, 0.2, grid.shape).astype(dtype)
        values[rng.random(grid.shape) < 0.07] = np.nan
        values[rng.random(grid.shape) < 0.01] = -np.inf
        values[:16, :16] = np.nan  # one all-NaN chunk
    else:
        info = np.iinfo(dtype)
        values = rng.integers(max(info.min, -300), min(info.max, 4000) + 1, grid.shape).astype(dtype)
    if nodata is not None:
        values[rng.random(grid.shape) < 0.05] = nodata
    valid = np.isfinite(values.astype("float64")) & ((values != nodata) if nodata is not None else True)
    masked = np.zeros(grid.shape, bool)
    mask_layer = None
    if mask_kind:
        masked = rng.random(grid.shape) < 0.2
        masked[16:32, 16:32] = True  # one fully masked chunk
        m = {"bool": masked, "float": np.where(masked, 2.5, np.where(rng.random(grid.shape) < 0.3, np.nan, 0.0)),
             "uint8": masked.astype("uint8") * 7}[mask_kind]
        mask_layer = _layer(grid, m, chunk=16, name="m")
    nd_attr = {} if nodata is None else {"nodata": nodata}
    layer = _layer(grid, values, chunk=16, **nd_attr)
    zs = _zones(polys, grid)
    df = zonal_stats(zs, {"v": layer}, masked=mask_layer, stats=("mean", "std", "min", "max", "sum"))
    ref = _brute_stats(weights, values, valid & ~masked, masked)
    _assert_stats_match(df, ref, grid.cell_area_m2 / 1e6)
    _accounting_closes(df)
    # chunking must not matter, and several layers in one call give each layer's own result
    df2 = zonal_stats(zs, {"v": _layer(grid, values, chunk=(7, 11), **nd_attr), "w": layer}, masked=mask_layer,
                      stats=("mean", "std", "min", "max", "sum"))
    num = [c for c in df.columns if c.startswith("v_") and c != "v_few_cells"]
    np.testing.assert_allclose(df2[num], df[num], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(df2[[c.replace("v_", "w_") for c in num]].to_numpy(), df2[num].to_numpy())


@pytest.mark.filterwarnings("ignore:.*overlapping")
def test_zone_without_valid_cells_in_some_chunks_and_in_all(kernel_case, caplog):
    grid, polys, weights = kernel_case
    values = np.full(grid.shape, np.nan, "float32")
    values[20:, 20:] = 1.5  # only the south-east has data
    zs = _zones(polys, grid)
    with caplog.at_level(logging.WARNING, logger="ecoassess.zones"):
        df = zonal_stats(zs, {"v": _layer(grid, values, chunk=8)}, stats=("mean", "std", "min", "max", "sum"))
    ref = _brute_stats(weights, values, np.isfinite(values), np.zeros(grid.shape, bool))
    _assert_stats_match(df, ref, grid.cell_area_m2 / 1e6)
    empty = np.isnan(ref["mean"])
    assert empty.any() and (~empty).any()
    assert df["v_mean"].isna().to_numpy().tolist() == empty.tolist()
    assert (df.loc[~empty, "v_std"] < 1e-12).all() and (df.loc[~empty, "v_min"] == 1.5).all()
    assert all(i in caplog.text for i in df.index[empty])
    _accounting_closes(df)


def test_nodata_semantics_follow_numpy_comparison():
    grid = _grid(4, 4)
    zs = _zones([box(0, 0, 40, 40)], grid)
    u8 = np.arange(16, dtype="uint8").reshape(4, 4) * 17  # 0, 17, ..., 255
    for nd in (-1, 300, 2.5):  # outside uint8 or not an integer: marks no cell
        df = zonal_stats(zs, {"v": _layer(grid, u8, nodata=nd)})
        assert df.loc["z0", "v_n_cells"] == 16 and df.loc["z0", "v_nodata_km2"] == 0
    df = zonal_stats(zs, {"v": _layer(grid, u8, nodata=255.0)})
    assert df.loc["z0", "v_n_cells"] == 15 and df.loc["z0", "v_max"] == 238
    f32 = np.full((4, 4), 0.5, "float32")
    f32[0, :3] = np.float32(0.1)
    df = zonal_stats(zs, {"v": _layer(grid, f32, nodata=0.1)})  # numpy: float32 x == 0.1 compares in float32
    assert df.loc["z0", "v_n_cells"] == 13 and df.loc["z0", "v_mean"] == 0.5
    df = zonal_stats(zs, {"v": _layer(grid, f32, nodata=np.float64(0.1))})  # a float64 0.1 equals no float32
    assert df.loc["z0", "v_n_cells"] == 16


@pytest.mark.filterwarnings("ignore:.*overlapping")
def test_bool_float16_and_big_endian_layers():
    grid = _grid(6, 5)
    zs = _zones([box(0, 0, 60, 50), box(5, 5, 33, 41)], grid)
    rng = np.random.default_rng(4)
    base = rng.normal(size=grid.shape)
    ref = zonal_stats(zs, {"v": _layer(grid, base.astype("float64"))}, stats=STATS_ALL)
    be = zonal_stats(zs, {"v": _layer(grid, base.astype(">f8"))}, stats=STATS_ALL)
    np.testing.assert_array_equal(be.select_dtypes("number"), ref.select_dtypes("number"))
    h = base.astype("float16")
    a = zonal_stats(zs, {"v": _layer(grid, h)}, stats=STATS_ALL)
    b = zonal_stats(zs, {"v": _layer(grid, h.astype("float64"))}, stats=STATS_ALL)
    np.testing.assert_array_equal(a.select_dtypes("number"), b.select_dtypes("number"))
    flags = base > 0
    c = zonal_stats(zs, {"v": _layer(grid, flags)}, stats=("mean", "min", "max"))
    d = zonal_stats(zs, {"v": _layer(grid, flags.astype("float64"))}, stats=("mean", "min", "max"))
    np.testing.assert_array_equal(c.select_dtypes("number"), d.select_dtypes("number"))


STATS_ALL = ("mean", "std", "min", "max", "sum")


@pytest.mark.filterwarnings("ignore:.*overlapping")
def test_chunk_coverage_is_the_per_zone_coverage(kernel_case):
    grid, polys, weights = kernel_case
    from ecoassess.zones import FULL_TOL, ZERO_TOL, _ring_edges

    zs = _zones(polys, grid)
    for window in [(0, 0, 38, 45), (0, 0, 16, 16), (16, 32, 16, 13), (32, 0, 6, 45), (5, 7, 19, 23)]:
        r0, c0, h, w = window
        cov = zs._compute_coverage(window)
        got = np.zeros((len(polys), h * w))
        if cov.dense is not None:
            d = cov.dense.ravel()
            cells = np.flatnonzero(d >= 0)
            np.add.at(got, (cov.zones[d[cells]], cells), 1.0)
        np.add.at(got, (cov.zones[cov.sp_zone], cov.sp_cell), cov.sp_frac)
        for z, p in enumerate(polys):
            exp = cell_coverage(_ring_edges(p, grid.transform), r0, r0 + h, c0, c0 + w).ravel()
            exp = np.where(exp >= 1 - FULL_TOL, 1.0, np.where(exp > ZERO_TOL, np.minimum(exp, 1.0), 0.0))
            np.testing.assert_array_equal(got[z], exp)
            np.testing.assert_allclose(got[z], weights[z, r0:r0 + h, c0:c0 + w].ravel(), atol=1e-9)
        assert set(cov.zones) >= {z for z in range(len(polys)) if got[z].any()}


def test_coverage_of_polygons_on_grid_lines_and_through_cell_corners():
    transform = Affine(1, 0, 0, 0, -1, 12)  # 12 x 12 unit cells
    from ecoassess.zones import _ring_edges

    shapes = [box(2, 3, 9, 10),  # edges on grid lines
              Polygon([(6, 1), (11, 6), (6, 11), (1, 6)]),  # a diamond through cell corners
              Polygon([(0, 0), (12, 12), (12, 0)]),  # the diagonal of the grid
              box(-3, -2, 5.5, 4).difference(box(1, 1, 3, 3)),  # outside on two sides, with a grid-aligned hole
              Polygon([(3, 3), (9, 3.0000001), (9, 9), (3, 9)])]  # nearly horizontal edge
    jj, ii = np.mgrid[0:12, 0:12]
    cells = shapely.box(ii, 12 - jj - 1, ii + 1, 12 - jj)
    for g in shapes:
        ref = shapely.area(shapely.intersection(cells, g))
        edges = _ring_edges(g, transform)
        np.testing.assert_allclose(cell_coverage(edges, 0, 12, 0, 12), ref, atol=1e-12)
        np.testing.assert_allclose(cell_coverage(edges, 3, 8, 4, 11), ref[3:8, 4:11], atol=1e-12)
    assert cell_coverage(np.zeros((0, 5)), 0, 3, 0, 4).shape == (3, 4)
    assert cell_coverage(_ring_edges(shapes[0], transform), 5, 5, 0, 4).shape == (0, 4)


@pytest.mark.filterwarnings("ignore:.*overlapping")
@pytest.mark.parametrize("dtype, nodata", [("int16", -3), ("uint8", None), ("int32", 7), ("int64", None),
                                           ("uint32", 3), ("float64", None), ("bool", None)])
def test_class_areas_match_brute_force(kernel_case, dtype, nodata):
    grid, polys, weights = kernel_case
    rng = np.random.default_rng(8)
    codes = {"int16": [-3, -1, 0, 5, 900], "uint8": [0, 3, 255], "int32": [7, -100000, 3, 2**30],  # wide: sorted
             "int64": [-2, 40, 77777], "uint32": [3, 2**31 + 5, 2**31 + 1],  # narrow: lookup table
             "float64": [0.5, 2.25, np.nan], "bool": [False, True]}[dtype]
    values = rng.choice(np.array(codes, dtype=dtype), grid.shape)
    values[16:32, :16] = codes[0]  # a chunk of one code (for int16 the nodata: a chunk without a valid cell)
    zs = _zones(polys, grid)
    attrs = {} if nodata is None else {"nodata": nodata}
    df = zonal_class_areas(zs, _layer(grid, values, chunk=16, name="lc", **attrs))
    cell_km2 = grid.cell_area_m2 / 1e6
    w = np.where(weights >= 1 - 1e-9, 1.0, np.where(weights > 1e-12, weights, 0.0))
    bad = np.isnan(values.astype("float64")) | ((values == nodata) if nodata is not None else False)
    np.testing.assert_allclose(df["nodata_km2"], (w * bad).sum(axis=(1, 2)) * cell_km2, rtol=1e-9, atol=1e-15)
    present = sorted({c for c in np.unique(values[~bad & (w > 0).any(axis=0)]).tolist()})
    assert sorted(df.attrs["class_columns"]) == present
    for code, col in df.attrs["class_columns"].items():
        exp = (w * ((values == code) & ~bad)).sum(axis=(1, 2)) * cell_km2
        np.testing.assert_allclose(df[col], exp, rtol=1e-9, atol=1e-15, err_msg=str(code))
    cols = list(df.attrs["class_columns"].values())
    closure = df[cols].sum(axis=1) + df["nodata_km2"] + df["area_outside_km2"]
    np.testing.assert_allclose(closure, df["area_km2"], rtol=1e-9)


def test_chunk_coverage_of_long_nearly_horizontal_edges():
    grid = _grid(300, 12)  # 3000 m x 120 m
    from ecoassess.zones import FULL_TOL, ZERO_TOL, _ring_edges

    # a sliver whose long edges cross ~280 columns within one or two rows, one going east, one going west
    sliver = Polygon([(50, 61), (2900, 64.5), (2900, 78), (20, 71)])
    zigzag = Polygon([(0, 5), (3000, 9), (3000, 25), (0, 21)]).difference(box(1000.5, 12, 1010.5, 16))
    zs = _zones([sliver, zigzag], grid)
    cov = zs._compute_coverage((0, 0, 12, 300))
    got = np.zeros((2, 12 * 300))
    if cov.dense is not None:
        d = cov.dense.ravel()
        cells = np.flatnonzero(d >= 0)
        np.add.at(got, (cov.zones[d[cells]], cells), 1.0)
    np.add.at(got, (cov.zones[cov.sp_zone], cov.sp_cell), cov.sp_frac)
    weights = _cell_weights(grid, [sliver, zigzag])
    for z, p in enumerate([sliver, zigzag]):
        exp = cell_coverage(_ring_edges(p, grid.transform), 0, 12, 0, 300).ravel()
        exp = np.where(exp >= 1 - FULL_TOL, 1.0, np.where(exp > ZERO_TOL, np.minimum(exp, 1.0), 0.0))
        np.testing.assert_array_equal(got[z], exp)
        np.testing.assert_allclose(got[z], weights[z].ravel(), atol=1e-9)


def test_covered_layer_marks_every_cell_a_zone_overlaps_with_positive_area():
    """ZoneSet.covered: cells with an overlap of positive area (shapely, independently), whatever the chunking;
    a cell only touching a zone at an edge or corner is not covered."""
    grid = _grid(37, 29, res=10.0)
    rng = np.random.default_rng(11)
    geoms = [shapely.affinity.translate(g, 20, 15) for g in _random_polygons(rng, 3, 300.0)]
    zones = _zones(geoms, grid)
    jj, ii = np.mgrid[0:29, 0:37]
    cells = shapely.box(ii * 10.0, 290 - (jj + 1) * 10.0, (ii + 1) * 10.0, 290 - jj * 10.0)
    union = shapely.union_all(geoms)
    ref = shapely.area(shapely.intersection(cells, union)) > 1e-9
    for chunk in (8, 13, 64):
        got = zones.covered(chunk=chunk).values
        assert got.dtype == bool and got.shape == (29, 37)
        np.testing.assert_array_equal(got, ref)
    on_lines = _zones([box(0, 0, 50, 40)], grid).covered(chunk=8).values  # neighbours share only edges/corners
    expected = np.zeros((29, 37), bool)
    expected[29 - 4:, :5] = True
    np.testing.assert_array_equal(on_lines, expected)
