import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Geod
from shapely.geometry import box

from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid, china_albers_crs, is_equal_area, read_on_grid


def test_china_albers_is_equal_area_and_preserves_area():
    crs = china_albers_crs()
    assert is_equal_area(crs)
    assert not is_equal_area("EPSG:4326")
    assert not is_equal_area("EPSG:32648")
    # A 0.1° x 0.1° cell near Chengdu: the ellipsoidal (geodesic) area must equal its Albers planar area.
    cell = box(104.0, 30.0, 104.1, 30.1)
    geod_area, _ = Geod(ellps="GRS80").geometry_area_perimeter(cell)
    albers_area = gpd.GeoSeries([cell], crs="EPSG:4490").to_crs(crs.to_wkt()).area.iloc[0]
    assert albers_area == pytest.approx(abs(geod_area), rel=1e-4)


def test_grid_extent_is_snapped_outward_to_the_resolution():
    grid = AnalysisGrid.from_bounds((1005.0, 2003.0, 1987.0, 2999.5), 30, china_albers_crs())
    xmin, ymin, xmax, ymax = grid.bounds
    assert (xmin, ymin, xmax, ymax) == (990.0, 1980.0, 2010.0, 3000.0)
    assert grid.shape == (34, 34)
    assert grid.cell_area_m2 == 900.0
    assert xmin <= 1005 and xmax >= 1987 and ymin <= 2003 and ymax >= 2999.5


def test_read_on_grid_reprojects_lazily_and_marks_outside_as_nodata(tmp_path):
    # a 20 x 20 source in UTM 48N with values = column index, nodata 255
    src_path = tmp_path / "src.tif"
    data = np.tile(np.arange(20, dtype="uint8"), (20, 1))
    with rasterio.open(src_path, "w", driver="GTiff", width=20, height=20, count=1, dtype="uint8",
                       crs="EPSG:32648", transform=Affine(10, 0, 400000, 0, -10, 3300000), nodata=255) as dst:
        dst.write(data, 1)
    # grid in the same CRS but larger (outside cells must be nodata) and coarser (20 m)
    grid = AnalysisGrid.from_bounds((399900, 3299700, 400300, 3300100), 20, "EPSG:32648")
    arr = read_on_grid(src_path, grid, kind="classes")
    assert arr.chunks is not None  # dask-backed
    values = arr.values
    assert values.shape == grid.shape
    assert (values[0, :] == 255).all()  # first row lies north of the source
    inside = values[values != 255]
    assert set(np.unique(inside)) <= set(range(20))
    f = read_on_grid(src_path, grid, kind="reflectance", dtype="float32")
    fv = f.values
    assert np.isnan(fv[0, 0])
    # grid column 5 covers source columns 0 and 1 (values 0, 1); column 6 covers 2 and 3
    assert fv[5, 5] == pytest.approx(0.5) and fv[6, 6] == pytest.approx(2.5)
    assert values[5, 5] in (0, 1)


def test_missing_band_and_missing_file_name_the_file(tmp_path):
    grid = AnalysisGrid.from_bounds((0, 0, 100, 100), 10, china_albers_crs())
    with pytest.raises(InputError, match="nope.tif"):
        read_on_grid(tmp_path / "nope.tif", grid)
    p = tmp_path / "one.tif"
    with rasterio.open(p, "w", driver="GTiff", width=2, height=2, count=1, dtype="uint8",
                       crs="EPSG:32648", transform=Affine(10, 0, 0, 0, -10, 20)) as dst:
        dst.write(np.zeros((2, 2), "uint8"), 1)
    with pytest.raises(InputError, match="band 3"):
        read_on_grid(p, grid, band=3)
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="corrupt.tif.*cannot be read"):
        read_on_grid(corrupt, grid)


def test_a_truncated_file_fails_on_read_with_its_name(tmp_path):
    path = tmp_path / "truncated.tif"
    data = np.random.default_rng(0).integers(0, 10000, (512, 512)).astype("uint16")
    with rasterio.open(path, "w", driver="GTiff", width=512, height=512, count=1, dtype="uint16", crs="EPSG:32648",
                       transform=Affine(10, 0, 400000, 0, -10, 3300000), tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate") as dst:
        dst.write(data, 1)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    grid = AnalysisGrid.from_bounds((400000, 3294880, 405120, 3300000), 10, "EPSG:32648")
    arr = read_on_grid(path, grid, chunk=256)
    with pytest.raises(InputError, match="truncated.tif.*cannot be read"):
        arr.values


def test_a_raster_without_crs_is_refused_unless_its_crs_is_declared(tmp_path):
    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       transform=Affine(30, 0, 399990, 0, -30, 3300000)) as dst:
        dst.write(np.arange(16, dtype="uint8").reshape(4, 4), 1)
    grid = AnalysisGrid.from_bounds((399990, 3299880, 400110, 3300000), 30, "EPSG:32648")
    with pytest.raises(InputError, match="nocrs.tif.*has no CRS"):
        read_on_grid(path, grid)
    values = read_on_grid(path, grid, crs="EPSG:32648", kind="classes").values
    assert values.tolist() == np.arange(16).reshape(4, 4).tolist()


def test_reading_leaves_the_process_wide_gdal_block_cache_setting_alone(tmp_path):
    """GDAL's block cache is one per process: a chunk read that set its size made GDAL flush a concurrent COG
    write's half-filled overview tiles (then read back and compressed again). Reads must not touch it."""
    from rasterio.env import get_gdal_config

    src_path = tmp_path / "src.tif"
    with rasterio.open(src_path, "w", driver="GTiff", width=40, height=30, count=1, dtype="uint16",
                       crs="EPSG:32648", transform=Affine(30, 0, 400000, 0, -30, 3300000)) as dst:
        dst.write(np.arange(1200, dtype="uint16").reshape(30, 40), 1)
    before = get_gdal_config("GDAL_CACHEMAX")
    aligned = AnalysisGrid.from_bounds((400000, 3299100, 401200, 3300000), 30, "EPSG:32648")
    warped = AnalysisGrid.from_bounds((399900, 3299000, 401300, 3300100), 20, "EPSG:32648")
    for grid in (aligned, warped):
        read_on_grid(src_path, grid, kind="reflectance", dtype="float32", chunk=16).values
        assert get_gdal_config("GDAL_CACHEMAX") == before


def _utm_source(path, res_m, size, seed=0):
    """A noisy uint16 raster in UTM 48N (noise shows any difference of kernel or source position at once)."""
    data = np.random.default_rng(seed).integers(1, 10000, (size, size)).astype("uint16")
    data[:5, :7] = 0  # some fill
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="uint16", crs="EPSG:32648",
                       transform=Affine(res_m, 0, 400000, 0, -res_m, 3320000), nodata=0, tiled=True,
                       blockxsize=256, blockysize=256) as dst:
        dst.write(data, 1)
    return path


@pytest.mark.parametrize("kind", ["classes", "continuous", "reflectance", "classes_mode"])
@pytest.mark.parametrize("source_res, grid_res, extent_m", [(10, 30, 24000), (30, 10, 6000)],
                         ids=["downsampling", "upsampling"])
def test_a_reprojected_cell_does_not_depend_on_the_chunk_size(tmp_path, kind, source_res, grid_res, extent_m):
    """Issue 16, finding 4: each chunk was warped on its own (GDAL's 0.125 px approximation of the transformation
    and a kernel scale per chunk), so NDVI differed in nearly every pixel between ``grid.chunk`` 256 and 1024.
    A source in UTM on a China Albers grid must give identical cells for any chunk size, also for chunk sizes that
    are no multiple of the warp's block size, and the grid's edge (outside the source) too."""
    from rasterio.warp import transform_bounds

    src = _utm_source(tmp_path / "src.tif", source_res, extent_m // source_res)
    with rasterio.open(src) as ds:
        xmin, ymin, xmax, ymax = transform_bounds(ds.crs, china_albers_crs(), *ds.bounds)
    # the grid overhangs the source on the west and north: edge cells are nodata in every chunking
    grid = AnalysisGrid.from_bounds((xmin - 300, ymin + 500, xmax - 400, ymax + 300), grid_res, china_albers_crs())
    layers = {chunk: read_on_grid(src, grid, kind=kind, dtype="float32", chunk=chunk).values
              for chunk in (64, 100, 256, max(grid.shape))}
    reference = layers.pop(max(grid.shape))
    assert np.isnan(reference).any() and (~np.isnan(reference)).mean() > 0.8
    for chunk, values in layers.items():
        differ = ~((values == reference) | (np.isnan(values) & np.isnan(reference)))
        assert not differ.any(), f"chunk {chunk}: {differ.sum()} of {differ.size} cells differ from one chunk"
