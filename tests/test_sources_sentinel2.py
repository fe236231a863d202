"""Sentinel-2 L2A reader: the real 29RKH tile (COG + STAC, baseline 02.14), and small synthetic SAFE and COG + STAC
products with baseline ≥ 04.00 (BOA_ADD_OFFSET −1000). Expected values are computed in the tests from raw DN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.sources import open_scene, open_sentinel2_l2a

TILE = "sentinel2-l2a-fulltile-decimated-29RKH-20200219"
ITEM = "S2A_29RKH_20200219_0_L2A.json"
# SCL pixel counts of the 549 x 549 SCL.tif, as listed in the tile's SOURCE.txt
SOURCE_SCL_COUNTS = {2: 1, 5: 289159, 7: 3, 8: 967, 9: 837, 10: 10434}


def read_raw(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


# -- the real 29RKH tile --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tile(shared_data):
    return shared_data / TILE


@pytest.fixture(scope="module")
def tile_scene(tile):
    return open_sentinel2_l2a(tile)


@pytest.mark.realdata
def test_29rkh_metadata_and_dn_over_10000(tile, tile_scene):
    s = tile_scene
    assert s.sensor == "sentinel2a" and s.date.isoformat() == "2020-02-19"
    assert s.metadata["processing_baseline"] == "02.14"
    assert set(s.metadata["boa_add_offset_dn"].values()) == {0.0}
    assert s.grid.shape == (1098, 1098) and s.grid.resolution == 100.0  # native grid of B04
    assert s.bands["red"].chunks is not None
    for role, f in {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}.items():
        dn = read_raw(tile / f"{f}.tif").astype(np.float64)
        got = s.bands[role].values
        for r, c in [(0, 0), (17, 900), (549, 549), (1097, 1097), (300, 12)]:
            assert got[r, c] == pytest.approx(dn[r, c] / 10000.0, abs=1e-7)
        np.testing.assert_allclose(got, dn / 10000.0, atol=1e-7)
    # no 20 m red-edge files beside the item: those assets are skipped, not an error
    assert "rededge1" in s.metadata["skipped_assets"] and "rededge1" not in s.bands


@pytest.mark.realdata
def test_29rkh_200m_bands_land_on_the_100m_grid(tile, tile_scene):
    for role, f in {"swir1": "B11", "swir2": "B12"}.items():
        dn = read_raw(tile / f"{f}.tif").astype(np.float64)  # 549 x 549 at 200 m
        got = tile_scene.bands[role].values  # 1098 x 1098 at 100 m
        # each 100 m cell lies inside exactly one 200 m pixel: it takes that pixel's value
        expected = np.repeat(np.repeat(dn, 2, axis=0), 2, axis=1) / 10000.0
        for r, c in [(0, 0), (1, 1), (2, 3), (777, 1001), (1097, 0)]:
            assert got[r, c] == pytest.approx(dn[r // 2, c // 2] / 10000.0, abs=1e-7)
        np.testing.assert_allclose(got, expected, atol=1e-7)


@pytest.mark.realdata
def test_29rkh_scl_mask_counts_match_source_txt(tile, tile_scene):
    scl = read_raw(tile / "SCL.tif")
    values, counts = np.unique(scl, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist())) == SOURCE_SCL_COUNTS
    summary = tile_scene.mask_summary()
    n = sum(SOURCE_SCL_COUNTS.values())
    assert summary["valid"] == 4 * n  # every 200 m SCL pixel is four 100 m cells
    masked = SOURCE_SCL_COUNTS[8] + SOURCE_SCL_COUNTS[9] + SOURCE_SCL_COUNTS[10]
    assert summary["masked"] == 4 * masked
    assert summary["clear"] / summary["valid"] == pytest.approx((n - masked) / n, abs=1e-12)
    assert summary["by_reason"]["cloud_medium_probability"] == 4 * 967
    assert summary["by_reason"]["cloud_high_probability"] == 4 * 837
    assert summary["by_reason"]["thin_cirrus"] == 4 * 10434
    assert int(tile_scene.water.sum()) == 0  # no SCL 6 in this desert tile
    # a custom mask: also mask dark area (2) and unclassified (7)
    s = open_sentinel2_l2a(tile, mask_scl={0, 1, 2, 3, 7, 8, 9, 10, 11})
    assert s.mask_summary()["masked"] == 4 * (masked + 1 + 3)


@pytest.mark.realdata
def test_29rkh_on_a_200m_grid(tile):
    grid = AnalysisGrid(CRS.from_epsg(32629), Affine(200, 0, 199980, 0, -200, 2800020), 549, 549)
    s = open_sentinel2_l2a(tile / ITEM, grid)  # the item file itself works too
    b11 = read_raw(tile / "B11.tif").astype(np.float64)
    np.testing.assert_allclose(s.bands["swir1"].values, b11 / 10000.0, atol=1e-7)
    b04 = read_raw(tile / "B04.tif").astype(np.float64)
    mean2x2 = b04.reshape(549, 2, 549, 2).mean(axis=(1, 3)) / 10000.0
    np.testing.assert_allclose(s.bands["red"].values, mean2x2, atol=1e-6)
    scl = read_raw(tile / "SCL.tif")
    np.testing.assert_array_equal(s.clear.values, ~np.isin(scl, [0, 1, 3, 8, 9, 10, 11]))


@pytest.mark.realdata
def test_stac_item_without_red_asset(tile, tmp_path):
    item = json.loads((tile / ITEM).read_text())
    for key, asset in item["assets"].items():
        asset["href"] = str(tile / Path(asset["href"]).name)  # absolute local paths
    del item["assets"]["red"]
    (tmp_path / "item.json").write_text(json.dumps(item))
    with pytest.raises(InputError) as err:
        open_sentinel2_l2a(tmp_path / "item.json")
    assert "item.json" in str(err.value) and "assets.red" in str(err.value) and "B04" in str(err.value)


# -- synthetic products ------------------------------------------------------------------------------------------

CRS50 = CRS.from_epsg(32650)
T10 = Affine(10, 0, 500000, 0, -10, 4000000)
T20 = Affine(20, 0, 500000, 0, -20, 4000000)
BANDS10 = ("B02", "B03", "B04", "B08")
BANDS20 = ("B05", "B11", "B12")


def synthetic_dn(seed=0):
    rng = np.random.default_rng(seed)
    dn = {b: rng.integers(1, 12000, size=(20, 20)).astype("uint16") for b in BANDS10}
    dn.update({b: rng.integers(1, 12000, size=(10, 10)).astype("uint16") for b in BANDS20})
    dn["B04"][0, 0] = 0          # no data
    dn["B04"][1, 1] = 500        # below the offset: negative reflectance
    dn["B08"][1, 1] = 800
    scl = np.full((10, 10), 4, dtype="uint8")
    scl[0, 5:] = 0               # no data
    scl[2, :] = 6                # water
    scl[3, 0:4] = [3, 8, 9, 10]  # shadow, clouds, cirrus
    scl[4, 0:3] = [11, 1, 2]     # snow, saturated, dark area (2 is not masked by default)
    dn["SCL"] = scl
    return dn


def write(path, arr, transform, driver="GTiff"):
    opts = {"QUALITY": "100", "REVERSIBLE": "YES"} if driver == "JP2OpenJPEG" else {"tiled": False}
    with rasterio.open(path, "w", driver=driver, width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype=arr.dtype, crs=CRS50, transform=transform, nodata=0, **opts) as dst:
        dst.write(arr, 1)


def make_cog_stac(folder: Path, dn: dict, baseline="05.10", raster_offset=-0.1, applied=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    keys = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B05": "rededge1", "B11": "swir16",
            "B12": "swir22", "SCL": "scl"}
    assets = {}
    for band, key in keys.items():
        write(folder / f"{band}.tif", dn[band], T10 if band in BANDS10 else T20)
        rb = {"nodata": 0}
        if band != "SCL" and raster_offset is not None:
            rb.update({"scale": 0.0001, "offset": raster_offset})
        assets[key] = {"href": f"./{band}.tif", "type": "image/tiff; application=geotiff", "raster:bands": [rb]}
    props = {"datetime": "2023-07-14T03:25:11Z", "platform": "sentinel-2b", "s2:processing_baseline": baseline}
    if applied is not None:
        props["earthsearch:boa_offset_applied"] = applied
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "S2B_50SMH_20230714_0_L2A", "properties": props,
            "geometry": None, "links": [], "assets": assets}
    path = folder / "S2B_50SMH_20230714_0_L2A.json"
    path.write_text(json.dumps(item))
    return path


def refl(dn, offset=-1000.0, q=10000.0):
    out = (dn.astype(np.float64) + offset) / q
    return np.where(dn == 0, np.nan, out)


def test_cog_stac_baseline_05_10_applies_the_minus_1000_offset(tmp_path):
    dn = synthetic_dn()
    make_cog_stac(tmp_path / "item", dn)
    s = open_scene("sentinel2_l2a", tmp_path / "item")
    assert s.sensor == "sentinel2b" and s.date.isoformat() == "2023-07-14"
    assert s.metadata["processing_baseline"] == "05.10"
    assert s.metadata["boa_add_offset_dn"]["red"] == pytest.approx(-1000.0)
    for role, band in {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}.items():
        np.testing.assert_allclose(s.bands[role].values, refl(dn[band]), atol=1e-7)
    red = s.bands["red"].values
    assert np.isnan(red[0, 0]) and red[1, 1] == pytest.approx(-0.05, abs=1e-7)  # (500 - 1000) / 10000, kept
    up = lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)  # noqa: E731 - 20 m pixel -> its four 10 m cells
    np.testing.assert_allclose(s.bands["swir1"].values, up(refl(dn["B11"])), atol=1e-7)
    np.testing.assert_allclose(s.bands["swir2"].values, up(refl(dn["B12"])), atol=1e-7)
    np.testing.assert_allclose(s.bands["rededge1"].values, up(refl(dn["B05"])), atol=1e-7)
    scl = up(dn["SCL"])
    valid = (scl != 0) & (dn["B04"] != 0)
    np.testing.assert_array_equal(s.valid.values, valid)
    np.testing.assert_array_equal(s.clear.values, valid & ~np.isin(scl, [0, 1, 3, 8, 9, 10, 11]))
    np.testing.assert_array_equal(s.water.values, valid & (scl == 6))
    assert s.clear.values[scl == 2].all()  # dark area is not masked by default
    assert s.mask_summary()["by_reason"]["thin_cirrus"] == 4


def test_cog_stac_offset_rules(tmp_path):
    dn = synthetic_dn(1)
    # offset already applied to the COG values (Element84 flag): DN / 10000
    make_cog_stac(tmp_path / "a", dn, applied=True)
    s = open_sentinel2_l2a(tmp_path / "a")
    np.testing.assert_allclose(s.bands["red"].values, refl(dn["B04"], 0.0), atol=1e-7)
    # no raster:bands at all, baseline 04.00: the ESA default offset -1000
    make_cog_stac(tmp_path / "b", dn, baseline="04.00", raster_offset=None)
    s = open_sentinel2_l2a(tmp_path / "b")
    np.testing.assert_allclose(s.bands["nir"].values, refl(dn["B08"]), atol=1e-7)
    # baseline 02.14: no offset even without raster:bands
    make_cog_stac(tmp_path / "c", dn, baseline="02.14", raster_offset=None)
    s = open_sentinel2_l2a(tmp_path / "c")
    np.testing.assert_allclose(s.bands["nir"].values, refl(dn["B08"], 0.0), atol=1e-7)
    # explicit override
    s = open_sentinel2_l2a(tmp_path / "b", boa_offset=0)
    np.testing.assert_allclose(s.bands["nir"].values, refl(dn["B08"], 0.0), atol=1e-7)


def test_cog_stac_missing_file_and_no_item(tmp_path):
    dn = synthetic_dn(2)
    make_cog_stac(tmp_path / "x", dn)
    (tmp_path / "x" / "B12.tif").unlink()
    with pytest.raises(InputError) as err:
        open_sentinel2_l2a(tmp_path / "x")
    assert "B12.tif" in str(err.value) and "assets.swir22" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="STAC item"):
        open_sentinel2_l2a(tmp_path / "empty")
    make_cog_stac(tmp_path / "y", dn)
    (tmp_path / "y" / "B04.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="B04.tif"):
        open_sentinel2_l2a(tmp_path / "y")


MTD_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>2022-06-15T03:05:59.024Z</PRODUCT_START_TIME>
      <PRODUCT_URI>{uri}</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
      <Datatake datatakeIdentifier="GS2A_20220615T030559_036418_N04.00">
        <SPACECRAFT_NAME>Sentinel-2A</SPACECRAFT_NAME>
      </Datatake>
      <Product_Organisation><Granule_List><Granule granuleIdentifier="x" imageFormat="JPEG2000">
{image_files}
      </Granule></Granule_List></Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <QUANTIFICATION_VALUES_LIST>
        <{qtag} unit="none">10000</{qtag}>
        <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
{offsets}
    </Product_Image_Characteristics>
  </n1:General_Info>
  <n1:Quality_Indicators_Info><Cloud_Coverage_Assessment>12.5</Cloud_Coverage_Assessment></n1:Quality_Indicators_Info>
</n1:Level-2A_User_Product>
"""


def make_safe(root: Path, dn: dict, baseline="04.00", offsets=None, qtag="BOA_QUANTIFICATION_VALUE") -> Path:
    uri = f"S2A_MSIL2A_20220615T030559_N{baseline.replace('.', '')}_R075_T50SMH_20220615T070000.SAFE"
    safe = root / uri
    granule = "GRANULE/L2A_T50SMH_A036418_20220615T031245/IMG_DATA"
    entries = []
    for band, arr in dn.items():
        res = 10 if band in BANDS10 else 20
        rel = f"{granule}/R{res}m/T50SMH_20220615T030559_{band}_{res}m"
        (safe / rel).parent.mkdir(parents=True, exist_ok=True)
        write(safe / (rel + ".jp2"), arr, T10 if res == 10 else T20, driver="JP2OpenJPEG")
        entries.append(f"        <IMAGE_FILE>{rel}</IMAGE_FILE>")
    off = ""
    if offsets is not None:
        off = "      <BOA_ADD_OFFSET_VALUES_LIST>\n" + "\n".join(
            f'        <BOA_ADD_OFFSET band_id="{i}">{v}</BOA_ADD_OFFSET>' for i, v in offsets.items()
        ) + "\n      </BOA_ADD_OFFSET_VALUES_LIST>"
    (safe / "MTD_MSIL2A.xml").write_text(MTD_TEMPLATE.format(uri=uri, baseline=baseline, image_files="\n".join(entries),
                                                             offsets=off, qtag=qtag))
    return safe


@pytest.fixture(scope="module")
def jp2_driver():
    if "JP2OpenJPEG" not in rasterio.drivers.raster_driver_extensions().values():
        pytest.skip("GDAL has no JP2OpenJPEG driver: cannot write a synthetic SAFE")


def test_safe_baseline_04_reads_offsets_per_band_from_the_mtd(tmp_path, jp2_driver):
    dn = synthetic_dn(3)
    offsets = {i: -1000 for i in range(13)}
    offsets[12] = -1100  # B12 (band_id 12): proves the per-band value is used
    safe = make_safe(tmp_path, dn, offsets=offsets)
    s = open_sentinel2_l2a(safe)
    assert s.metadata["layout"] == "SAFE" and s.sensor == "sentinel2a" and s.date.isoformat() == "2022-06-15"
    assert s.metadata["cloud_cover_percent"] == 12.5 and s.metadata["processing_baseline"] == "04.00"
    np.testing.assert_allclose(s.bands["red"].values, refl(dn["B04"]), atol=1e-7)
    np.testing.assert_allclose(s.bands["blue"].values, refl(dn["B02"]), atol=1e-7)
    up = lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)  # noqa: E731
    np.testing.assert_allclose(s.bands["swir2"].values, up(refl(dn["B12"], -1100.0)), atol=1e-7)
    np.testing.assert_allclose(s.bands["swir1"].values, up(refl(dn["B11"])), atol=1e-7)
    scl = up(dn["SCL"])
    np.testing.assert_array_equal(s.water.values, s.valid.values & (scl == 6))
    np.testing.assert_array_equal(s.clear.values, s.valid.values & ~np.isin(scl, [0, 1, 3, 8, 9, 10, 11]))
    # the MTD file works as the path as well
    assert open_sentinel2_l2a(safe / "MTD_MSIL2A.xml").metadata["product_id"] == safe.name.removesuffix(".SAFE")


def test_safe_old_baseline_and_bad_safes(tmp_path, jp2_driver):
    dn = synthetic_dn(4)
    safe = make_safe(tmp_path / "old", dn, baseline="02.14", qtag="L2A_BOA_QUANTIFICATION_VALUE")
    s = open_sentinel2_l2a(safe)
    np.testing.assert_allclose(s.bands["nir"].values, refl(dn["B08"], 0.0), atol=1e-7)
    # baseline 04.00 without the offsets list: the MTD is incomplete
    safe = make_safe(tmp_path / "nooff", dn, baseline="04.00", offsets=None)
    with pytest.raises(InputError) as err:
        open_sentinel2_l2a(safe)
    assert "MTD_MSIL2A.xml" in str(err.value) and "BOA_ADD_OFFSET" in str(err.value)
    # a band file named in the MTD is missing
    safe = make_safe(tmp_path / "miss", dn, offsets={i: -1000 for i in range(13)})
    next(safe.glob("GRANULE/*/IMG_DATA/R10m/*_B08_10m.jp2")).unlink()
    with pytest.raises(InputError) as err:
        open_sentinel2_l2a(safe)
    assert "_B08_10m.jp2" in str(err.value)


def test_scene_date_from_metadata_for_sentinel2(tmp_path, jp2_driver):
    from ecoassess.sources import scene_date_from_metadata

    dn = synthetic_dn(5)
    item = make_cog_stac(tmp_path / "cog", dn)
    assert scene_date_from_metadata("sentinel2_l2a", item).isoformat() == "2023-07-14"
    safe = make_safe(tmp_path / "safe", dn, offsets={i: -1000 for i in range(13)})
    assert scene_date_from_metadata("sentinel2_l2a", safe).isoformat() == "2022-06-15"


def test_a_red_band_without_data_is_named_not_the_scl(tmp_path):
    """"Observed" comes from the red band: when it holds only nodata, the message must name it, not the mask."""
    from ecoassess.errors import AllMaskedError

    dn = synthetic_dn()
    dn["B04"][:] = 0
    make_cog_stac(tmp_path / "item", dn)
    s = open_scene("sentinel2_l2a", tmp_path / "item")
    with pytest.raises(AllMaskedError, match=r"no observed pixel.*the red band .*B04\.tif has no data there"):
        s.require_clear()
    dn = synthetic_dn()
    dn["SCL"][:] = 0
    make_cog_stac(tmp_path / "item2", dn)
    with pytest.raises(AllMaskedError, match=r"no observed pixel.*SCL\.tif marks every pixel as fill"):
        open_scene("sentinel2_l2a", tmp_path / "item2").require_clear()
