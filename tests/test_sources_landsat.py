"""Landsat C2 L2 reader against values computed by hand from the raw DN (plain rasterio) and the MTL text."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from ecoassess.errors import AllMaskedError, InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.sources import open_landsat_c2l2, open_scene

pytestmark = pytest.mark.realdata

LIVERPOOL = "landsat8-c2l2-liverpool-20200927"
LIV_ID = "LC08_L2SP_204023_20200927_20201006_02_T1"
FULL = "landsat8-c2l2-fullscene-5pct-001062-20201031"
FULL_ID = "LC08_L2SP_001062_20201031_20201106_02_T2"
ROLE_BAND = {"coastal": 1, "blue": 2, "green": 3, "red": 4, "nir": 5, "swir1": 6, "swir2": 7}


def mtl_factor(mtl_text: str, group: str, key: str) -> float:
    """Read KEY from GROUP of an MTL text by plain string search (independent of the reader's parser)."""
    block = mtl_text.split(f"GROUP = {group}\n", 1)[1].split(f"END_GROUP = {group}", 1)[0]
    return float(re.search(rf"^\s*{key} = (\S+)\s*$", block, re.M).group(1))


def raw(folder: Path, pid: str, suffix: str) -> np.ndarray:
    with rasterio.open(folder / f"{pid}_{suffix}.TIF") as src:
        return src.read(1)


@pytest.fixture(scope="module")
def liverpool(shared_data):
    folder = shared_data / LIVERPOOL
    return folder, (folder / f"{LIV_ID}_MTL.txt").read_text()


@pytest.fixture(scope="module")
def full(shared_data):
    folder = shared_data / FULL
    return folder, (folder / f"{FULL_ID}_MTL.txt").read_text()


def test_liverpool_scaled_reflectance_and_temperature_match_hand_computation(liverpool):
    folder, mtl = liverpool
    scene = open_landsat_c2l2(folder)
    assert scene.sensor == "landsat8" and scene.date.isoformat() == "2020-09-27"
    assert scene.grid.shape == (267, 433) and scene.grid.transform.c == 487005.0  # native grid of SR_B4
    assert scene.bands["red"].chunks is not None  # dask-backed
    pixels = [(0, 0), (10, 400), (133, 216), (266, 432), (200, 50)]
    for role, n in ROLE_BAND.items():
        mult = mtl_factor(mtl, "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", f"REFLECTANCE_MULT_BAND_{n}")
        add = mtl_factor(mtl, "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", f"REFLECTANCE_ADD_BAND_{n}")
        assert (mult, add) == (2.75e-05, -0.2)
        dn = raw(folder, LIV_ID, f"SR_B{n}").astype(np.float64)
        got = scene.bands[role].values
        assert got.dtype == np.float32
        for r, c in pixels:
            assert got[r, c] == pytest.approx(dn[r, c] * mult + add, abs=1e-6)
        np.testing.assert_allclose(got, dn * mult + add, atol=1e-6)
    mult = mtl_factor(mtl, "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS", "TEMPERATURE_MULT_BAND_ST_B10")
    add = mtl_factor(mtl, "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS", "TEMPERATURE_ADD_BAND_ST_B10")
    st = raw(folder, LIV_ID, "ST_B10").astype(np.float64)
    got = scene.thermal_k.values
    for r, c in pixels:
        assert got[r, c] == pytest.approx(st[r, c] * mult + add, abs=1e-4)
    assert scene.thermal_k.attrs["units"] == "K"


def test_liverpool_negative_water_reflectance_is_kept_and_no_qa_is_reported(liverpool):
    folder, _ = liverpool
    scene = open_landsat_c2l2(folder / f"{LIV_ID}_MTL.txt")  # the MTL file works as well as the folder
    dn = raw(folder, LIV_ID, "SR_B5")
    r, c = np.argwhere(dn < 7100)[0]  # 7100 * 2.75e-5 - 0.2 = -0.0048: sea
    nir = scene.bands["nir"].values
    assert nir[r, c] == pytest.approx(dn[r, c] * 2.75e-5 - 0.2, abs=1e-6) and nir[r, c] < 0
    assert int((nir < 0).sum()) == int((dn < 7273).sum()) > 60000  # ~60 % of the crop is sea with SR < 0
    assert scene.metadata["qa_available"] is False and "QA_PIXEL absent" in scene.metadata["qa_note"]
    assert scene.water is None
    assert bool(scene.valid.all()) and bool((scene.clear == scene.valid).all())
    assert scene.require_clear()["clear"] == 267 * 433


def test_full_scene_scaling_fill_and_thermal_fill(full):
    folder, mtl = full
    scene = open_landsat_c2l2(folder)
    qa = raw(folder, FULL_ID, "QA_PIXEL")
    red_dn = raw(folder, FULL_ID, "SR_B4").astype(np.float64)
    st_dn = raw(folder, FULL_ID, "ST_B10").astype(np.float64)
    mult = mtl_factor(mtl, "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", "REFLECTANCE_MULT_BAND_4")
    add = mtl_factor(mtl, "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", "REFLECTANCE_ADD_BAND_4")
    tm = mtl_factor(mtl, "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS", "TEMPERATURE_MULT_BAND_ST_B10")
    ta = mtl_factor(mtl, "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS", "TEMPERATURE_ADD_BAND_ST_B10")
    red, st, valid = scene.bands["red"].values, scene.thermal_k.values, scene.valid.values
    fill = (qa & 1) == 1
    # fill (DN 0) is NaN, never the scaled fill value -0.2
    assert np.isnan(red[red_dn == 0]).all() and not np.isnan(red[red_dn != 0]).any()
    assert not np.isclose(red, add).any()
    assert np.isnan(st[st_dn == 0]).all() and np.nanmin(st) > 150
    # valid = not QA fill and SR observed
    np.testing.assert_array_equal(valid, ~fill & (red_dn != 0))
    inside = np.argwhere(~fill & (red_dn != 0) & (st_dn != 0))
    for r, c in inside[:: max(1, len(inside) // 25)]:
        assert red[r, c] == pytest.approx(red_dn[r, c] * mult + add, abs=1e-6)
        assert st[r, c] == pytest.approx(st_dn[r, c] * tm + ta, abs=1e-4)
    assert scene.metadata["reflectance_scale"]["red"] == {"mult": mult, "add": add}
    assert scene.metadata["cloud_cover_percent"] == 99.94


def test_full_scene_qa_bits_match_bit_arithmetic(full):
    folder, _ = full
    scene = open_landsat_c2l2(folder)
    qa = raw(folder, FULL_ID, "QA_PIXEL").astype(np.int64)
    valid = scene.valid.values
    layers = {k: v.values for k, v in scene.mask_layers.items()}
    water, clear = scene.water.values, scene.clear.values
    bits = {"dilated_cloud": 1, "cirrus": 2, "cloud": 3, "cloud_shadow": 4, "snow": 5}
    # one pixel of every distinct QA value present, plus a regular sample
    picks = [tuple(np.argwhere(qa == v)[0]) for v in np.unique(qa)]
    picks += [tuple(p) for p in np.argwhere(np.ones_like(qa, bool))[::997]]
    for r, c in picks:
        q = int(qa[r, c])
        if q & 1:  # a fill pixel is never valid
            assert not valid[r, c]
        for name, b in bits.items():
            assert layers[name][r, c] == (valid[r, c] and bool((q >> b) & 1)), (name, q)
        assert water[r, c] == (valid[r, c] and bool((q >> 7) & 1))
        any_masked = any((q >> b) & 1 for b in bits.values())
        assert clear[r, c] == (valid[r, c] and not any_masked)
    # the 62 pixels with value 23888 have both 'clear' (bit 6) and 'cloud shadow' (bit 4): shadow wins
    assert 23888 & (1 << 6) and 23888 & (1 << 4)
    assert not clear[qa == 23888].any()
    # unmasking shadow (only) leaves exactly those pixels clear
    relaxed = open_landsat_c2l2(folder, mask_flags=("fill", "dilated_cloud", "cirrus", "cloud", "snow"))
    assert int(relaxed.clear.sum()) == int(((qa == 23888) & valid).sum()) == 62


def test_all_cloud_scene_raises_all_masked_naming_the_qa_file(full):
    folder, _ = full
    scene = open_scene("landsat_c2l2", folder)
    qa = raw(folder, FULL_ID, "QA_PIXEL")
    red_dn = raw(folder, FULL_ID, "SR_B4")
    n_valid = int((((qa & 1) == 0) & (red_dn != 0)).sum())
    with pytest.raises(AllMaskedError) as err:
        scene.require_clear()
    msg = str(err.value)
    assert f"{FULL_ID}_QA_PIXEL.TIF" in msg and "QA_PIXEL" in msg
    assert f"all {n_valid:,} observed pixels are masked" in msg and "cloud 99.9 %" in msg
    assert "no clear observation" in msg
    assert err.value.path.endswith("QA_PIXEL.TIF")
    summary = scene.mask_summary()
    assert summary["valid"] == n_valid and summary["clear"] == 0 and summary["cells"] == 386 * 379


def test_mtl_json_gives_the_same_scene_as_mtl_txt(full):
    folder, _ = full
    a = open_landsat_c2l2(folder / f"{FULL_ID}_MTL.txt")
    b = open_landsat_c2l2(folder / f"{FULL_ID}_MTL.json")
    assert a.date == b.date and a.sensor == b.sensor
    assert a.metadata["reflectance_scale"] == b.metadata["reflectance_scale"]
    assert a.metadata["thermal_scale"] == b.metadata["thermal_scale"]
    np.testing.assert_array_equal(a.bands["swir1"].values, b.bands["swir1"].values)


def test_reading_onto_a_coarser_grid_averages_scaled_reflectance_and_keeps_qa_nearest(liverpool, full):
    folder, _ = liverpool
    # 90 m cells aligned with the 30 m pixels: each is the mean of 3 x 3 pixels
    grid = AnalysisGrid(CRS.from_epsg(32630), Affine(90, 0, 487005.0 + 300, 0, -90, 5929995.0 - 300), 70, 30)
    scene = open_landsat_c2l2(folder, grid)
    dn = raw(folder, LIV_ID, "SR_B4").astype(np.float64)
    refl = dn * 2.75e-5 - 0.2
    got = scene.bands["red"].values
    for i, j in [(0, 0), (5, 7), (29, 69)]:
        r0, c0 = 10 + 3 * i, 10 + 3 * j
        assert got[i, j] == pytest.approx(refl[r0:r0 + 3, c0:c0 + 3].mean(), abs=1e-6)

    folder, _ = full
    grid = AnalysisGrid.from_bounds((150000, -430000, 360000, -210000), 1000, "EPSG:32620")
    scene = open_landsat_c2l2(folder, grid)
    cloud, valid = scene.mask_layers["cloud"].values, scene.valid.values
    with rasterio.open(folder / f"{FULL_ID}_QA_PIXEL.TIF") as src:
        qa = src.read(1)
        xs, ys = grid.x_coords(), grid.y_coords()
        for i in range(3, grid.height, 23):
            for j in range(5, grid.width, 19):
                q = int(qa[src.index(xs[j], ys[i])])
                assert valid[i, j] == ((q & 1) == 0), (i, j, q)  # nearest: the pixel containing the centre
                assert cloud[i, j] == (valid[i, j] and bool(q >> 3 & 1))


# -- bad inputs -------------------------------------------------------------------------------------------------

def _product_copy(src: Path, dst: Path, pid: str, mtl_edit=None, skip=()) -> Path:
    """A product folder in tmp: band files symlinked (never copied into the repo), MTL optionally edited."""
    dst.mkdir()
    for f in src.iterdir():
        if f.name in skip or f.name == "SOURCE.txt":
            continue
        if f.name.endswith("_MTL.txt"):
            text = f.read_text()
            (dst / f.name).write_text(mtl_edit(text) if mtl_edit else text)
        elif not f.name.endswith("_MTL.json"):
            (dst / f.name).symlink_to(f)
    return dst


def test_missing_band_file_named_in_the_mtl(liverpool, tmp_path):
    folder, _ = liverpool
    d = _product_copy(folder, tmp_path / "p", LIV_ID, skip={f"{LIV_ID}_SR_B6.TIF"})
    with pytest.raises(InputError) as err:
        open_landsat_c2l2(d)
    assert f"{LIV_ID}_SR_B6.TIF" in str(err.value) and "FILE_NAME_BAND_6" in str(err.value)


def test_mtl_without_scale_factors(liverpool, tmp_path):
    folder, _ = liverpool

    def drop_group(text):
        a = text.index("  GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS")
        b = text.index("  END_GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS\n") + len(
            "  END_GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS\n")
        return text[:a] + text[b:]

    d = _product_copy(folder, tmp_path / "p", LIV_ID, mtl_edit=drop_group)
    with pytest.raises(InputError) as err:
        open_landsat_c2l2(d)
    assert "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS" in str(err.value) and "_MTL.txt" in str(err.value)

    d2 = _product_copy(folder, tmp_path / "p2", LIV_ID,
                       mtl_edit=lambda t: re.sub(r"\n\s*REFLECTANCE_ADD_BAND_4 = -0.2", "", t, count=1))
    with pytest.raises(InputError) as err:
        open_landsat_c2l2(d2)
    assert "REFLECTANCE_ADD_BAND_4" in str(err.value)


def test_corrupt_band_file_and_missing_mtl(liverpool, tmp_path):
    folder, _ = liverpool
    d = _product_copy(folder, tmp_path / "p", LIV_ID, skip={f"{LIV_ID}_SR_B4.TIF"})
    (d / f"{LIV_ID}_SR_B4.TIF").write_bytes(b"II*\x00 this is not a tiff")
    with pytest.raises(InputError) as err:
        open_landsat_c2l2(d)
    assert f"{LIV_ID}_SR_B4.TIF" in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="MTL"):
        open_landsat_c2l2(empty)
    with pytest.raises(InputError, match="not found"):
        open_landsat_c2l2(tmp_path / "nowhere")


def test_unknown_mask_flag_and_saturated_needs_radsat(liverpool, full):
    with pytest.raises(ValueError, match="unknown Landsat mask flag"):
        open_landsat_c2l2(liverpool[0], mask_flags=("clouds",))
    scene = open_landsat_c2l2(full[0], mask_flags=("fill", "saturated"))
    radsat = raw(full[0], FULL_ID, "QA_RADSAT")
    valid = scene.valid.values
    np.testing.assert_array_equal(scene.mask_layers["saturated"].values, valid & ((radsat & 0x7F) != 0))
    # clear = valid and none of the flags: saturation together with QA_PIXEL bits (cloud = bit 3, snow = bit 5)
    both = open_landsat_c2l2(full[0], mask_flags=("fill", "cloud", "saturated", "snow"))
    qa = raw(full[0], FULL_ID, "QA_PIXEL")
    expected = valid & ((radsat & 0x7F) == 0) & ((qa & 0b101000) == 0)
    np.testing.assert_array_equal(both.clear.values, expected)


def test_opening_reads_no_pixels_and_computing_reads_one_window_per_chunk(full, monkeypatch):
    import ecoassess.grid as grid_mod

    calls = []
    original = grid_mod._WarpedBand.__getitem__

    def counting(self, key):
        calls.append((Path(self.path).name, key))
        return original(self, key)

    monkeypatch.setattr(grid_mod._WarpedBand, "__getitem__", counting)
    scene = open_landsat_c2l2(full[0], chunk=128)
    assert calls == []  # metadata and headers only
    scene.bands["red"].values
    assert len(calls) == 4 * 3 and {c[0] for c in calls} == {f"{FULL_ID}_SR_B4.TIF"}  # 386 x 379 in 128² chunks


def test_scene_date_from_metadata(liverpool, full):
    from ecoassess.sources import scene_date_from_metadata

    assert scene_date_from_metadata("landsat_c2l2", liverpool[0]).isoformat() == "2020-09-27"
    assert scene_date_from_metadata("landsat_c2l2", full[0] / f"{FULL_ID}_MTL.json").isoformat() == "2020-10-31"
    assert scene_date_from_metadata("geotiff", None) is None
