"""Issue 18 item 2 for Sentinel-2: one reading of a product names every problem it has (missing band files,
missing assets, missing BOA offsets, unreadable band files), as for Landsat, so one `validate` lists everything."""

from __future__ import annotations

import pytest

from ecoassess.errors import InputError, ProductProblems
from ecoassess.sources import open_sentinel2_l2a
from tests.test_sources_sentinel2 import make_cog_stac, make_safe, synthetic_dn


@pytest.fixture(scope="module")
def jp2_driver():
    import rasterio

    if "JP2OpenJPEG" not in rasterio.drivers.raster_driver_extensions().values():
        pytest.skip("GDAL has no JP2OpenJPEG driver: cannot write a synthetic SAFE")


def test_a_stac_product_names_every_missing_and_unreadable_band_at_once(tmp_path):
    make_cog_stac(tmp_path / "x", synthetic_dn(5))
    (tmp_path / "x" / "B12.tif").unlink()
    (tmp_path / "x" / "B08.tif").unlink()
    (tmp_path / "x" / "B03.tif").write_bytes(b"not a tiff")
    with pytest.raises(ProductProblems) as err:
        open_sentinel2_l2a(tmp_path / "x")
    text = "\n".join(err.value.problems)
    assert "B12.tif" in text and "assets.swir22" in text and "B08.tif" in text and "assets.nir" in text
    assert len(err.value.problems) == 2            # the unreadable B03 is found once the files are all there
    (tmp_path / "x" / "B12.tif").write_bytes(b"")  # now: every file present, two unreadable
    make_cog_stac(tmp_path / "y", synthetic_dn(5))
    for band in ("B03", "B11"):
        (tmp_path / "y" / f"{band}.tif").write_bytes(b"not a tiff")
    with pytest.raises(ProductProblems) as err:
        open_sentinel2_l2a(tmp_path / "y")
    assert [p for p in err.value.problems if "B03.tif" in p] and [p for p in err.value.problems if "B11.tif" in p]


def test_a_safe_names_a_missing_band_and_a_missing_offset_together(tmp_path, jp2_driver):
    offsets = {i: -1000 for i in range(13) if i != 11}          # B11 (band_id 11) has no BOA_ADD_OFFSET
    safe = make_safe(tmp_path, synthetic_dn(6), offsets=offsets)
    next(safe.glob("GRANULE/*/IMG_DATA/R10m/*_B08_10m.jp2")).unlink()
    with pytest.raises(InputError) as err:
        open_sentinel2_l2a(safe)
    problems = err.value.problems
    assert any("_B08_10m.jp2" in p for p in problems) and any("band_id=11" in p for p in problems), problems


@pytest.fixture(scope="module")
def first_scene_sample(shared_sample):
    """The sample's folder (conftest, read-only); the tests use its first 2024 scene only."""
    return shared_sample.parent


def _copy(sample, tmp_path):
    """A copy to break (files are only removed from it and added: hard links do)."""
    from tests.builders import link_copy

    return link_copy(sample, tmp_path / "s")


def test_validate_lists_each_problem_of_a_sentinel2_product(tmp_path, first_scene_sample):
    import yaml

    from ecoassess.errors import ConfigError
    from ecoassess.validate import validate_config

    cfg_path = _copy(first_scene_sample, tmp_path) / "assessment.yaml"
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    scene = tmp_path / "s" / cfg["imagery"]["2024"][0]["path"]
    (scene / "B08.tif").unlink()
    (scene / "B11.tif").unlink()
    cfg["imagery"] = {"2024": cfg["imagery"]["2024"][:1]}
    for key in ("baseline_year", "thermal", "land_cover", "change_truth"):
        cfg.pop(key, None)
    cfg["land_cover"] = {"2024": {"path": "landcover/lucc_2024.tif", "legend": "cas_lucc"}}
    (tmp_path / "s" / "one.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        validate_config(tmp_path / "s" / "one.yaml")
    scene_problems = [p for p in err.value.problems if p.startswith("imagery.2024[0]")]
    assert len(scene_problems) == 2 and "B08.tif" in scene_problems[0] + scene_problems[1] \
        and "B11.tif" in scene_problems[0] + scene_problems[1], err.value.problems


def test_a_scene_whose_cloud_mask_file_is_missing_is_warned_about(tmp_path, first_scene_sample):
    """A partial download: the STAC item lists SCL, its file is not there; validate says so (the audit found two
    false red-line patches from such a scene, and validate had said OK)."""
    from ecoassess.config import load_config
    from ecoassess.validate import cloud_mask_warnings

    import yaml

    root = _copy(first_scene_sample, tmp_path)
    raw = yaml.safe_load((root / "assessment.yaml").read_text(encoding="utf-8"))
    raw["imagery"] = {"2024": raw["imagery"]["2024"][:1]}
    for key in ("baseline_year", "thermal", "land_cover"):
        raw.pop(key, None)
    (root / "one.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    cfg = load_config(root / "one.yaml")
    assert cloud_mask_warnings(cfg) == []
    scene = cfg.imagery[2024][0].path
    (scene / "SCL.tif").unlink()
    (warning,) = cloud_mask_warnings(cfg)
    assert warning.startswith("imagery.2024[0]: ") and scene.name in warning
    assert "no cloud mask (its metadata lists the mask (scl) but the file is missing)" in warning
