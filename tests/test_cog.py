import os

import dask.array as da
import numpy as np
import pytest
import rasterio

from ecoassess.cog import _pyramid, overview_factors, write_cog
from ecoassess.grid import AnalysisGrid, china_albers_crs


def _grid(width=1300, height=1100, res=30.0):
    return AnalysisGrid.from_bounds((0, 0, width * res, height * res), res, china_albers_crs())


def _source(shape):
    """Deterministic float32 field with a NaN hole and a NaN edge."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype("float32")
    a = (np.sin(x / 50) * np.cos(y / 70) + x / shape[1]).astype("float32")
    a[100:180, 200:330] = np.nan
    a[:, -3:] = np.nan
    return a


def test_cog_is_valid_and_values_round_trip(tmp_path):
    grid = _grid()
    src = _source(grid.shape)
    layer = grid.wrap(da.from_array(src, chunks=512), name="ndvi")
    out = write_cog(layer, tmp_path / "ndvi.tif", tags={"units": "1", "formula": "(N - R) / (N + R)", "source": "测试"},
                    description="NDVI")
    with rasterio.open(out) as ds:
        assert ds.profile["tiled"] and ds.block_shapes == [(512, 512)]
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
        assert ds.overviews(1) == overview_factors(grid.width, grid.height, 512) == [2, 4]
        assert np.isnan(ds.nodata)
        assert ds.dtypes[0] == "float32"
        assert ds.crs == grid.crs and ds.transform == grid.transform
        assert ds.tags()["formula"] == "(N - R) / (N + R)" and ds.tags()["source"] == "测试"
        assert ds.descriptions == ("NDVI",) and ds.units == ("1",)
        back = ds.read(1)
        ov2 = ds.read(1, out_shape=(ds.height // 2 + ds.height % 2, ds.width // 2 + ds.width % 2))
    np.testing.assert_array_equal(back, src)  # bit-exact, NaN where NaN
    # the 2x overview is the NaN-aware mean of 2x2 blocks (checked where the raster divides evenly)
    h2, w2 = grid.height // 2, grid.width // 2
    blocks = src[:h2 * 2, :w2 * 2].astype("float64").reshape(h2, 2, w2, 2)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmean(blocks, axis=(1, 3))
    np.testing.assert_allclose(ov2[:h2, :w2], expected, rtol=1e-6, equal_nan=True)


def test_class_layer_uses_nearest_or_mode_and_integer_nodata(tmp_path):
    grid = _grid(700, 600)
    classes = (np.arange(grid.n_cells).reshape(grid.shape) // 37 % 5).astype("uint8")
    classes[:10, :10] = 255
    layer = grid.wrap(da.from_array(classes, chunks=512), name="landcover", attrs={"nodata": 255})
    out = write_cog(layer, tmp_path / "lc.tif", resampling="mode")
    with rasterio.open(out) as ds:
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8"
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        np.testing.assert_array_equal(ds.read(1), classes)
        assert set(np.unique(ds.read(1, out_shape=(300, 350)))) <= {0, 1, 2, 3, 4, 255}


def test_pyramid_mode_and_nearest_on_a_small_block():
    block = np.array([[1, 1, 2, 2], [1, 3, 2, 9], [0, 0, 7, 7], [0, 9, 7, 9]], dtype="uint8")
    assert _pyramid(block, [2], "mode", 9)[2].tolist() == [[1, 2], [0, 7]]
    assert _pyramid(block, [2], "nearest", None)[2].tolist() == [[3, 9], [9, 9]]
    assert _pyramid(block, [2], "average", 9)[2].tolist() == [[2, 2], [0, 7]]


def test_failed_compute_leaves_existing_file_untouched_and_no_temp_files(tmp_path):
    grid = _grid(1200, 1200)
    target = tmp_path / "layer.tif"
    write_cog(grid.wrap(da.from_array(_source(grid.shape), chunks=512), name="v1"), target)
    before = target.read_bytes()

    def explode(block, block_info=None):
        if block_info[0]["chunk-location"] == (1, 1):
            raise RuntimeError("compute failed mid-way")
        return block

    bad = grid.wrap(da.from_array(_source(grid.shape) + 1, chunks=512).map_blocks(explode, dtype="float32"))
    with pytest.raises(RuntimeError, match="mid-way"):
        write_cog(bad, target)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["layer.tif"]


def test_unaligned_chunks_are_rechunked_and_small_rasters_have_no_overviews(tmp_path):
    grid = _grid(300, 200)
    src = _source(grid.shape)
    out = write_cog(grid.wrap(da.from_array(src, chunks=(77, 91))), tmp_path / "small.tif", compress="zstd")
    with rasterio.open(out) as ds:
        assert ds.overviews(1) == []
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        np.testing.assert_array_equal(ds.read(1), src)


def test_tile_layout_follows_gdal_cog_conventions(tmp_path):
    """Overview tiles before full-resolution tiles, offsets increasing, 4-byte size leader and repeated trailer."""
    import struct

    from ecoassess.cog import _read_ifds

    grid = _grid(1300, 1100)
    out = write_cog(grid.wrap(da.from_array(_source(grid.shape), chunks=1024)), tmp_path / "l.tif")
    data = out.read_bytes()
    with open(out, "rb") as fh:
        bo, _, ifds = _read_ifds(fh)
    assert len(ifds) == 3
    starts = []
    for ifd in reversed(ifds):  # smallest overview first
        offs, counts = ifd["arrays"][324]["values"], ifd["arrays"][325]["values"]
        assert np.all(np.diff(offs.astype("int64")) > 0)
        for o, n in zip(offs.tolist(), counts.tolist()):
            assert struct.unpack(bo + "I", data[o - 4:o])[0] == n
            assert data[o + n:o + n + 4] == data[o + n - 4:o + n]
        starts.append((int(offs[0]), int(offs[-1])))
    assert all(a[1] < b[0] for a, b in zip(starts, starts[1:]))
    assert b"LAYOUT=IFDS_BEFORE_DATA" in data[:400]


def test_on_a_distributed_cluster_strips_are_computed_there_and_written_here(tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = _grid(1300, 1100)
    src = _source(grid.shape)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl, \
            distributed.Client(cl):
        out = write_cog(grid.wrap(da.from_array(src, chunks=512)), tmp_path / "d.tif")
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(1), src)
        assert ds.overviews(1) == [2, 4] and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
