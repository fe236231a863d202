"""Plain GeoTIFF scenes with a declared band mapping, scale/offset, nodata and a clear/masked-values mask."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.sources import open_geotiff_scene, open_scene

CRS48 = CRS.from_epsg(32648)
T = Affine(30, 0, 400000, 0, -30, 3300000)


def write(path, arrays, nodata=None, transform=T):
    arrays = np.atleast_3d(arrays) if arrays.ndim == 3 else arrays[None]
    with rasterio.open(path, "w", driver="GTiff", width=arrays.shape[2], height=arrays.shape[1],
                       count=arrays.shape[0], dtype=arrays.dtype, crs=CRS48, transform=transform,
                       nodata=nodata) as dst:
        dst.write(arrays)
    return path


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(7)
    red = rng.integers(1, 10000, size=(12, 16)).astype("uint16")
    nir = rng.integers(1, 10000, size=(12, 16)).astype("uint16")
    red[0, 0] = 0
    stack = np.stack([rng.integers(1, 10000, size=(12, 16)).astype("uint16") for _ in range(3)])
    qa = np.zeros((12, 16), dtype="uint8")
    qa[5, :] = 1   # cloud
    qa[6, :3] = 2  # shadow
    qa[11, 15] = 255  # the mask file's nodata
    return {
        "red": write(tmp_path / "red.tif", red, nodata=0), "red_dn": red,
        "nir": write(tmp_path / "nir.tif", nir, nodata=0), "nir_dn": nir,
        "stack": write(tmp_path / "stack.tif", stack, nodata=0), "stack_dn": stack,
        "qa": write(tmp_path / "qa.tif", qa, nodata=255), "qa_v": qa,
    }


def test_band_mapping_scale_offset_and_nodata(files):
    s = open_geotiff_scene({"red": files["red"], "nir": str(files["nir"]),
                            "swir1": {"path": files["stack"], "band": 2},
                            "swir2": {"path": files["stack"], "band": 3, "scale": 1e-4, "offset": 0.0}},
                           None, date="2021-07-03", sensor="gf1", scale=2.75e-5, offset=-0.2)
    assert s.sensor == "gf1" and s.date.isoformat() == "2021-07-03"
    assert s.grid.shape == (12, 16) and s.grid.transform == T
    assert s.bands["red"].chunks is not None
    red = s.bands["red"].values
    assert np.isnan(red[0, 0])  # nodata 0 -> NaN, not 0 * scale + offset
    np.testing.assert_allclose(red[1:], files["red_dn"][1:] * 2.75e-5 - 0.2, atol=1e-6)
    np.testing.assert_allclose(s.bands["swir1"].values, files["stack_dn"][1] * 2.75e-5 - 0.2, atol=1e-6)
    np.testing.assert_allclose(s.bands["swir2"].values, files["stack_dn"][2] * 1e-4, atol=1e-7)
    assert not s.valid.values[0, 0] and s.valid.values.sum() == 12 * 16 - 1
    assert bool((s.clear == s.valid).all()) and s.water is None and s.thermal_k is None


def test_mask_clear_values_and_masked_values(files):
    bands = {"red": files["red"], "nir": files["nir"]}
    qa = files["qa_v"]
    # DN 1…9999 as reflectance 0.0001…0.9999 (scale 1e-4): unscaled DN would lie outside the physical range of
    # reflectance and be masked (reflectance_out_of_range; indices/reflectance.yaml)
    s = open_scene("geotiff", grid=None, bands=bands, date="2021-07-03", scale=1e-4,
                   mask={"path": files["qa"], "clear_values": [0]})
    valid = (files["red_dn"] != 0) & (qa != 255)
    np.testing.assert_array_equal(s.valid.values, valid)
    np.testing.assert_array_equal(s.clear.values, valid & (qa == 0))
    s2 = open_geotiff_scene(bands, None, date="2021-07-03", scale=1e-4,
                            mask={"path": files["qa"], "masked_values": [1, 2]})
    np.testing.assert_array_equal(s2.clear.values, valid & ~np.isin(qa, [1, 2]))
    summary = s2.mask_summary()
    assert summary["by_reason"] == {"value_1": 16, "value_2": 3, "reflectance_out_of_range": 0}
    assert summary["clear"] == int((valid & (qa == 0)).sum())


def test_thermal_role_and_reprojection_onto_a_grid(files):
    grid = AnalysisGrid(CRS48, Affine(60, 0, 400000, 0, -60, 3300000), 8, 6)
    s = open_geotiff_scene({"nir": files["nir"], "thermal_k": {"path": files["stack"], "band": 1,
                                                               "scale": 0.00341802, "offset": 149.0}},
                           grid, date="2021-07-03")
    st = files["stack_dn"][0].astype(np.float64) * 0.00341802 + 149.0
    np.testing.assert_allclose(s.thermal_k.values, st.reshape(6, 2, 8, 2).mean(axis=(1, 3)), atol=1e-3)
    assert s.thermal_k.attrs["units"] == "K" and "thermal_k" not in s.bands
    nir = files["nir_dn"].astype(np.float64)
    np.testing.assert_allclose(s.bands["nir"].values, nir.reshape(6, 2, 8, 2).mean(axis=(1, 3)), rtol=1e-6)


def test_bad_inputs_name_file_and_field(files, tmp_path):
    with pytest.raises(InputError) as err:
        open_geotiff_scene({"red": files["red"], "NIR": files["nir"]}, None, date="2021-07-03")
    msg = str(err.value)
    assert "'NIR'" in msg and "nir" in msg and "swir1" in msg  # lists the known roles
    with pytest.raises(InputError, match="nothing.tif"):
        open_geotiff_scene({"red": tmp_path / "nothing.tif"}, None, date="2021-07-03")
    (tmp_path / "bad.tif").write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.tif"):
        open_geotiff_scene({"red": tmp_path / "bad.tif"}, None, date="2021-07-03")
    with pytest.raises(InputError, match="band 4"):
        open_geotiff_scene({"red": {"path": files["stack"], "band": 4}}, None, date="2021-07-03")
    with pytest.raises(InputError, match="date"):
        open_geotiff_scene({"red": files["red"]}, None, date="July 2021")
    with pytest.raises(InputError, match="clear_values"):
        open_geotiff_scene({"red": files["red"]}, None, date="2021-07-03", mask={"path": files["qa"]})
    with pytest.raises(InputError, match="kind"):
        open_scene("modis", "x")


def test_mask_dict_as_dumped_by_the_config(files):
    # the config's SceneMask.model_dump() carries both keys, one of them None
    mask = {"path": files["qa"], "clear_values": None, "masked_values": [1]}
    s = open_geotiff_scene({"red": files["red"]}, None, date="2021-07-03", mask=mask, scale=1e-4)
    valid = (files["red_dn"] != 0) & (files["qa_v"] != 255)
    np.testing.assert_array_equal(s.clear.values, valid & (files["qa_v"] != 1))
