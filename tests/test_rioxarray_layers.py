"""Layers carry their grid the rioxarray way (issue 17 part 4): it survives xarray operations, and arrays opened
with ``rioxarray.open_rasterio`` are accepted by the zonal statistics and the COG writer."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
from shapely.geometry import box

from ecoassess.cog import write_cog
from ecoassess.grid import AnalysisGrid, china_albers_crs, grid_of, read_on_grid
from ecoassess.zones import ZoneSet, zonal_class_areas, zonal_stats

FILL = -9999.0


@pytest.fixture
def grid():
    # China Albers, 30 m cells, an origin that is not a round number (as a study area's snapped bounds are)
    return AnalysisGrid.from_bounds((-1_203_330.0, 3_401_010.0, -1_197_330.0, 3_405_510.0), 30.0, china_albers_crs())


@pytest.fixture
def values(grid):
    rng = np.random.default_rng(7)
    v = rng.uniform(0, 1, grid.shape).astype("float32")
    v[:20, :30] = FILL  # a block of fill values
    return v


def _write_tif(path, grid, data, nodata):
    with rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height, count=1, dtype=data.dtype,
                       crs=grid.crs, transform=grid.transform, nodata=nodata) as dst:
        dst.write(data, 1)
    return path


def _zones(grid):
    x0, y0, x1, y1 = grid.bounds
    mid = (x0 + x1) / 2
    gdf = gpd.GeoDataFrame({"code": ["A", "B"], "name": ["west", "east"]},
                           geometry=[box(x0 - 500, y0 + 100, mid + 17, y1 - 50), box(mid + 17, y0, x1 + 900, y1)],
                           crs=grid.crs.to_wkt())
    return ZoneSet.from_gdf(gdf, grid, id_field="code", name_field="name")


def test_the_grid_survives_arithmetic_where_and_slicing(grid, values):
    layer = grid.wrap(values, name="v")
    assert layer.rio.crs == grid.crs
    assert layer.rio.transform() == grid.transform
    assert grid_of((layer * 2 + 1).where(layer > 0.5)) == grid
    assert grid_of(xr.where(layer > 0.5, layer, 0)) == grid
    part = layer.isel(y=slice(10, 40), x=slice(25, 60))
    expected = AnalysisGrid(grid.crs, grid.transform * grid.transform.translation(25, 10), 35, 30)
    assert grid_of(part) == expected
    assert part.rio.transform() == expected.transform


def test_an_array_without_a_crs_is_refused_with_its_name(grid, values):
    plain = xr.DataArray(values, dims=("y", "x"), name="ndvi_2024")
    with pytest.raises(ValueError, match="ndvi_2024.*no CRS"):
        grid_of(plain)


def test_open_rasterio_layers_give_the_same_zonal_tables_as_ecoassess_layers(tmp_path, grid, values):
    tif = _write_tif(tmp_path / "v.tif", grid, values, FILL)
    ours = read_on_grid(tif, grid, dtype="float32", src_nodata=FILL, dst_nodata=float("nan"), name="v")
    theirs = rioxarray.open_rasterio(tif, chunks=256).rename("v")  # (band=1, y, x), raw values, _FillValue
    assert theirs.dims == ("band", "y", "x") and theirs.attrs["_FillValue"] == FILL
    zones = _zones(grid)
    expected = zonal_stats(zones, {"v": ours})
    got = zonal_stats(zones, {"v": theirs})
    # reference by hand: the mean of the non-fill cells wholly inside the east zone's full-row block
    inside = values[:, grid.width // 2 + 1:]
    assert got.loc["B", "v_mean"] == pytest.approx(inside[inside != FILL].mean(), rel=1e-4)
    assert got.equals(expected), got.compare(expected)
    assert got.loc["A", "v_nodata_km2"] > 0  # the fill block lies in the west zone and is counted as nodata


def test_open_rasterio_class_layer_areas_match(tmp_path, grid):
    classes = (np.arange(grid.n_cells).reshape(grid.shape) % 4).astype("uint8")
    classes[:5] = 255
    tif = _write_tif(tmp_path / "c.tif", grid, classes, 255)
    ours = read_on_grid(tif, grid, kind="classes", name="c")
    theirs = rioxarray.open_rasterio(tif).rename("c")
    zones = _zones(grid)
    assert zonal_class_areas(zones, theirs).equals(zonal_class_areas(zones, ours, nodata=255))


def test_the_cog_writer_takes_an_open_rasterio_array(tmp_path, grid, values):
    tif = _write_tif(tmp_path / "v.tif", grid, values, FILL)
    out = write_cog(rioxarray.open_rasterio(tif, chunks=256), tmp_path / "out.tif")
    with rasterio.open(out) as src:
        assert src.crs == grid.crs and src.transform == grid.transform
        written = src.read(1)
    expected = np.where(values == FILL, np.nan, values)  # the file's fill value is the COG's nodata (NaN)
    np.testing.assert_array_equal(written, expected)


def test_an_int16_layer_keeps_its_fill_value_as_nodata_in_the_cog(tmp_path, grid):
    values = (np.arange(grid.n_cells).reshape(grid.shape) % 7 - 3).astype("int16")  # real zeros among the data
    values[:10] = -32768
    tif = _write_tif(tmp_path / "i.tif", grid, values, -32768)
    out = write_cog(rioxarray.open_rasterio(tif), tmp_path / "i_cog.tif")
    with rasterio.open(out) as src:
        assert src.nodata == -32768  # was 0: repr(np.int16(-32768)) in the VRT read as 0 by GDAL
        np.testing.assert_array_equal(src.read(1, masked=True).mask, values == -32768)


def test_a_layer_of_two_bands_is_refused_naming_it(tmp_path, grid, values):
    with rasterio.open(tmp_path / "two.tif", "w", driver="GTiff", width=grid.width, height=grid.height, count=2,
                       dtype="float32", crs=grid.crs, transform=grid.transform) as dst:
        dst.write(np.stack([values, values]))
    two = rioxarray.open_rasterio(tmp_path / "two.tif")
    from ecoassess.errors import InputError

    with pytest.raises(InputError, match="'bands'.*a single band"):
        zonal_stats(_zones(grid), {"bands": two})


def test_a_water_mask_is_a_layer_of_its_own_not_land_cover_nodata(grid):
    from ecoassess.legends import load_legend

    lc = grid.wrap(np.full(grid.shape, 21, "uint8"), name="lc", attrs={"nodata": 0})
    lc[:, :10] = 41  # cas_lucc 41: river/canal (open water)
    water = load_legend("cas_lucc").water_mask(lc)
    table = zonal_stats(_zones(grid), {"water": water.astype("float32")})
    assert "nodata" not in water.attrs and (table["water_nodata_km2"] == 0).all()
