import os
import uuid

import dask.array as da
import numpy as np
import pytest
import rasterio

from ecoassess import cog
from ecoassess.cog import _pyramid, overview_factors, write_cog, write_cogs
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


# -- several layers in one pass ------------------------------------------------------------------------------------

_CALLS: dict[str, list] = {}  # map_blocks calls by token (module level: reached by reference from a worker thread)


def _recorded(block, block_info=None, *, log, fail_at=None):
    _CALLS[log].append(block_info[0]["chunk-location"])
    if block_info[0]["chunk-location"] == fail_at:
        raise RuntimeError("compute failed mid-way")
    return block


def _index_and_classes(grid, fail_at=None):
    """A float32 index (through a map_blocks function that records its calls) and uint8 classes derived from it.

    Returns the two layers and the list of chunk locations the function is called for."""
    token = uuid.uuid4().hex
    calls = _CALLS.setdefault(token, [])
    src = da.from_array(_source(grid.shape), chunks=512)
    idx = src.map_blocks(_recorded, log=token, fail_at=fail_at, dtype="float32", meta=np.array((), dtype="float32"))
    classes = da.where(da.isnan(idx), 0, da.clip(da.floor((idx + 1) * 2.5) + 1, 1, 5)).astype("uint8")
    return grid.wrap(idx, name="rsei"), grid.wrap(classes, name="rsei_grade", attrs={"nodata": 0}), calls


def test_write_cogs_gives_the_same_files_as_one_write_cog_per_layer(tmp_path):
    grid = _grid()
    idx, classes, _ = _index_and_classes(grid)
    opts = ({"tags": {"units": "1"}, "description": "RSEI"}, {"nodata": 0, "dtype": "uint8", "resampling": "mode"})
    (tmp_path / "one").mkdir()
    singles = [write_cog(idx, tmp_path / "one" / "rsei.tif", **opts[0]),
               write_cog(classes, tmp_path / "one" / "grade.tif", **opts[1])]
    outs = write_cogs([(idx, tmp_path / "both" / "rsei.tif", opts[0]),
                       (classes, tmp_path / "both" / "grade.tif", opts[1])])
    assert outs == [tmp_path / "both" / "rsei.tif", tmp_path / "both" / "grade.tif"]
    for single, out in zip(singles, outs):
        assert out.read_bytes() == single.read_bytes()
    assert sorted(os.listdir(tmp_path / "both")) == ["grade.tif", "rsei.tif"]
    with rasterio.open(outs[1]) as ds:
        assert ds.dtypes[0] == "uint8" and ds.nodata == 0 and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"


def test_write_cogs_computes_the_shared_graph_once_per_chunk(tmp_path):
    grid = _grid()
    chunks = [(i, j) for i in range(3) for j in range(3)]  # 1100 x 1300 in 512 chunks
    idx, classes, calls = _index_and_classes(grid)
    write_cogs([(idx, tmp_path / "rsei.tif", {}), (classes, tmp_path / "grade.tif", {})])
    assert sorted(calls) == chunks
    calls.clear()
    write_cog(idx, tmp_path / "rsei.tif")
    write_cog(classes, tmp_path / "grade.tif")
    assert sorted(calls) == sorted(chunks * 2)  # what write_cogs saves


def test_write_cogs_failing_layer_leaves_every_target_untouched_and_no_temp_files(tmp_path, monkeypatch):
    grid = _grid(1200, 1200)
    targets = [tmp_path / "rsei.tif", tmp_path / "grade.tif"]
    write_cogs([(layer, t, {}) for layer, t in zip(_index_and_classes(grid)[:2], targets)])
    before = [t.read_bytes() for t in targets]
    # a chunk of the second layer fails to compute (the first layer's chunks all compute)
    idx, _, _ = _index_and_classes(grid)
    _, bad, _ = _index_and_classes(grid, fail_at=(1, 1))
    with pytest.raises(RuntimeError, match="mid-way"):
        write_cogs([(idx + 1, targets[0], {}), (bad + 1, targets[1], {})])
    assert [t.read_bytes() for t in targets] == before
    assert sorted(os.listdir(tmp_path)) == ["grade.tif", "rsei.tif"]
    # everything computes, but assembling the second file fails: the first (complete) one is not moved in either
    real, seen = cog._assemble, []

    def assemble(template, stages, out):
        seen.append(out)
        if len(seen) == 2:
            raise cog.EcoassessError("disk full")
        return real(template, stages, out)

    monkeypatch.setattr(cog, "_assemble", assemble)
    with pytest.raises(cog.EcoassessError, match="disk full"):
        write_cogs([(idx + 1, targets[0], {}), (idx + 2, targets[1], {})])
    assert len(seen) == 2
    assert [t.read_bytes() for t in targets] == before
    assert sorted(os.listdir(tmp_path)) == ["grade.tif", "rsei.tif"]


@pytest.mark.parametrize("second, options, message", [
    ("other_grid", {}, "grade.tif: layer 1 is not on the grid of layer 0"),
    ("classes", {"resampling": "cubic"}, "grade.tif: unknown overview resampling 'cubic'"),
    ("classes", {"predictor": 7}, "grade.tif: unknown predictor 7"),
    ("classes", {"blocksize": 500}, "grade.tif: blocksize must be a positive multiple of 16"),
    ("classes", {"dtype": "complex64"}, "grade.tif: dtype complex64 cannot be written"),
    ("classes", {"chunk": 512}, r"grade.tif: unknown options \['chunk'\]"),
    ("same_path", {}, "rsei.tif: layer 1 has the same path as layer 0"),
])
def test_write_cogs_validates_every_layer_before_computing_or_writing(tmp_path, second, options, message):
    grid = _grid()
    idx, classes, calls = _index_and_classes(grid)
    other = _grid(1300, 1000)
    layer = {"other_grid": other.wrap(da.zeros(other.shape, "uint8", chunks=512)), "classes": classes,
             "same_path": classes}[second]
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        write_cogs([(idx, out / "rsei.tif", {}), (layer, out / ("rsei.tif" if second == "same_path" else "grade.tif"),
                                                   options)])
    assert calls == [] and not out.exists()


def test_write_cogs_on_a_distributed_cluster_computes_strips_of_all_layers_together(tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = _grid()
    idx, classes, calls = _index_and_classes(grid)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl, \
            distributed.Client(cl):
        outs = write_cogs([(idx, tmp_path / "d" / "rsei.tif", {}), (classes, tmp_path / "d" / "grade.tif", {})])
        assert sorted(calls) == [(i, j) for i in range(3) for j in range(3)]
        refs = [write_cog(idx, tmp_path / "rsei.tif"), write_cog(classes, tmp_path / "grade.tif")]
    for out, ref in zip(outs, refs):
        assert out.read_bytes() == ref.read_bytes()
    with rasterio.open(outs[0]) as ds:
        np.testing.assert_array_equal(ds.read(1), _source(grid.shape))


def test_overviews_coarser_than_a_chunk_are_cascaded_from_the_coarsest_chunk_level(tmp_path):
    grid = _grid(4200, 100)
    src = _source(grid.shape)
    assert overview_factors(grid.width, grid.height, 64)[-1] == 128  # > the 64-pixel compute chunk
    out = write_cog(grid.wrap(da.from_array(src, chunks=64)), tmp_path / "wide.tif", blocksize=64)
    with rasterio.open(out) as ds:
        assert len(ds.overviews(1)) == 7 and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        np.testing.assert_array_equal(ds.read(1), src)
        assert np.isfinite(ds.read(1, out_shape=(1, 33))).any()


def test_default_compression_applies_where_a_write_names_none(tmp_path):
    """A run's output.compression (default_compression) sets ZSTD for writes that do not name a compression;
    an explicit compression still wins, values are the same, and an unknown name is refused before any work."""
    from ecoassess.cog import ZSTD_LEVEL, default_compression

    grid = _grid(1100, 1300)
    src = _source(grid.shape)
    layer = grid.wrap(da.from_array(src, chunks=1024))
    plain = write_cog(layer, tmp_path / "plain.tif")
    with default_compression("zstd"):
        zstd = write_cog(layer, tmp_path / "zstd.tif")
        classes = write_cog(grid.wrap(da.from_array((src > 0.5).astype("uint8"), chunks=1024)),
                            tmp_path / "classes.tif", nodata=255)
        explicit = write_cog(layer, tmp_path / "explicit.tif", compress="deflate")
    after = write_cog(layer, tmp_path / "after.tif")
    expect = {plain: "DEFLATE", zstd: "ZSTD", classes: "ZSTD", explicit: "DEFLATE", after: "DEFLATE"}
    for path, compression in expect.items():
        with rasterio.open(path) as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == compression, path.name
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            if ds.dtypes[0] == "float32":
                np.testing.assert_array_equal(ds.read(1), src)
                assert ds.overviews(1) == [2, 4]
    assert ZSTD_LEVEL == 1
    with pytest.raises(ValueError, match="unknown COG compression"):
        with default_compression("jpeg2000"):
            pass
    with pytest.raises(ValueError, match="unknown compression 'lerc'"):
        write_cog(layer, tmp_path / "lerc.tif", compress="lerc")
    assert not (tmp_path / "lerc.tif").exists()


def test_overview_tiles_go_to_gdal_once_and_whole(tmp_path, monkeypatch):
    """A chunk covers only part of an overview tile (1024² chunk → 256² at level 4): the writer holds the parts
    and hands GDAL each tile once, complete (GDAL would otherwise keep half-written tiles in memory until the
    end, or compress them twice); nothing is left held, and the overviews equal a whole-array pyramid."""
    from ecoassess import cog

    grid = _grid(2600, 2300)
    src = _source(grid.shape)
    writes: dict[int, list] = {}
    original = cog._StageWriter.__init__

    def recording_init(self, full, levels, *args):
        original(self, full, levels, *args)
        for f, ds in levels.items():
            if f > 1:
                real = ds.write
                ds.write = lambda a, band, window, f=f, real=real: (writes.setdefault(f, []).append(window),
                                                                      real(a, band, window=window))[1]

    monkeypatch.setattr(cog._StageWriter, "__init__", recording_init)
    out = write_cog(grid.wrap(da.from_array(src, chunks=1024)), tmp_path / "ovr.tif")
    assert sorted(writes) == [2, 4, 8]
    for f, windows in writes.items():
        h, w = -(-grid.height // f), -(-grid.width // f)
        tiles = {(int(win.row_off), int(win.col_off)) for win in windows}
        assert len(tiles) == len(windows) == (-(-h // 512)) * (-(-w // 512)), f  # each tile once
        for win in windows:
            assert win.row_off % 512 == 0 and win.col_off % 512 == 0
            assert win.height == min(512, h - win.row_off) and win.width == min(512, w - win.col_off)
    with rasterio.open(out) as ds:
        assert ds.overviews(1) == [2, 4, 8]
        level4 = ds.read(1, out_shape=(-(-grid.height // 4), -(-grid.width // 4)))
    expected = cog._pyramid(src, [4], "average", None)[4]
    np.testing.assert_allclose(level4, expected, rtol=1e-6, equal_nan=True)
