"""A scene listed twice (#16 finding 5) is refused, naming both entries and the files: a product by its product id
(also through a copy or a symlink), a plain GeoTIFF scene by the SHA-256 of its band files (also a copy under
another name). Before, it counted twice: clear count 4 with 3 scenes, and the median leant towards it."""

from __future__ import annotations

import os
import shutil

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from shapely.geometry import box

from ecoassess.config import load_config
from ecoassess.validate import validate_config
from ecoassess.errors import InputError
from tests.builders import validate_problems

UTM = "EPSG:32648"
FULL = dict(x0=403000, y0=3331000, res=200, width=100, height=60)   # covers both counties below


@pytest.fixture(scope="module")
def sample_config(sample_copy):
    """The module's copy of the sample (conftest): configs are written beside it."""
    return sample_copy


def _config_with(sample_config, name, extra_2024):
    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    raw["imagery"]["2024"] = raw["imagery"]["2024"] + extra_2024
    path = sample_config.parent / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path, raw



def test_a_product_listed_twice_is_refused_naming_both_entries(sample_config):
    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    first = raw["imagery"]["2024"][0]
    path, _ = _config_with(sample_config, "twice.yaml", [dict(first)])
    problems = validate_problems(path)
    assert len(problems) == 1, problems
    product = os.path.basename(first["path"])
    assert problems[0].startswith("imagery.2024[3]: the same scene as imagery.2024[0]: the same product "
                                  f"{product}")
    assert str(sample_config.parent / first["path"]) in problems[0]


def test_a_copied_or_symlinked_product_is_the_same_product(sample_config, tmp_path):
    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    one, two = (sample_config.parent / raw["imagery"]["2024"][i]["path"] for i in (1, 2))
    copy = tmp_path / "renamed_copy"
    shutil.copytree(one, copy)
    link = tmp_path / "link_to_product"
    link.symlink_to(two, target_is_directory=True)
    path, _ = _config_with(sample_config, "copies.yaml", [{"kind": "sentinel2_l2a", "path": str(copy)},
                                                         {"kind": "sentinel2_l2a", "path": str(link)}])
    problems = validate_problems(path)
    assert len(problems) == 2, problems
    assert problems[0].startswith("imagery.2024[3]: the same scene as imagery.2024[1]") and str(copy) in problems[0]
    assert problems[1].startswith("imagery.2024[4]: the same scene as imagery.2024[2]") and one.name not in problems[1]


def test_the_python_path_refuses_it_too(sample_config):
    """``open_year_scenes`` (the run's and a Python user's way to a year's scenes) and ``composite`` refuse it;
    today's composite counted the repeated scene twice."""
    from ecoassess.pipeline import build_grid, read_study_area
    from ecoassess.sources import composite, open_scene
    from ecoassess.stages.base import open_year_scenes

    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    path, _ = _config_with(sample_config, "twice_py.yaml", [dict(raw["imagery"]["2024"][0])])
    config = load_config(path)
    grid = build_grid(config, read_study_area(config))
    with pytest.raises(InputError, match=r"imagery\.2024\[3\]: the same scene as imagery\.2024\[0\]"):
        open_year_scenes(config, 2024, grid)
    scenes = [open_scene(s["kind"], path=sample_config.parent / s["path"], grid=grid) for s in raw["imagery"]["2024"]]
    with pytest.raises(InputError, match=r"scenes\[3\]: the same scene as scenes\[0\]"):
        composite(scenes + [scenes[0]])
    # three distinct scenes: a clear count of at most 3 per pixel, as before
    assert int(composite(scenes).clear_count.max().compute()) == 3


# -- plain GeoTIFF scenes -------------------------------------------------------------------------------------

def _tif(path, value, dtype="uint16"):
    with rasterio.open(path, "w", driver="GTiff", width=FULL["width"], height=FULL["height"], count=1, dtype=dtype,
                       crs=UTM, transform=Affine(FULL["res"], 0, FULL["x0"], 0, -FULL["res"], FULL["y0"]),
                       nodata=0) as dst:
        dst.write(np.full((FULL["height"], FULL["width"]), value, dtype), 1)


@pytest.fixture
def geotiff_area(tmp_path):
    (tmp_path / "v").mkdir()
    gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["甲县", "乙县"]},
                     geometry=[box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.2, 30.1)],
                     crs="EPSG:4490").to_file(tmp_path / "v" / "counties.gpkg")
    # three acquisitions: same size files, different content (so the size check alone cannot tell them apart)
    for i, (red, nir) in enumerate([(800, 3000), (900, 3100), (1000, 3200)]):
        _tif(tmp_path / f"red_{i}.tif", red)
        _tif(tmp_path / f"nir_{i}.tif", nir)
    return tmp_path


def _geotiff_config(root, scenes):
    cfg = {"year": 2024, "study_area": {"path": "v/counties.gpkg", "id_field": "code", "name_field": "name"},
           "imagery": {"2024": [{"kind": "geotiff", "date": date, "scale": 0.0001,
                                 "bands": {"red": red, "nir": nir}} for date, red, nir in scenes]}}
    path = root / "assessment.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def test_distinct_geotiff_scenes_of_the_same_size_pass(geotiff_area):
    config = validate_config(_geotiff_config(geotiff_area, [("2024-06-01", "red_0.tif", "nir_0.tif"),
                                                       ("2024-07-01", "red_1.tif", "nir_1.tif"),
                                                       ("2024-08-01", "red_2.tif", "nir_2.tif")]))
    assert len(config.imagery[2024]) == 3


def test_a_geotiff_copy_under_another_name_and_date_is_found_by_its_content(geotiff_area):
    shutil.copy(geotiff_area / "red_1.tif", geotiff_area / "red_copy.tif")
    shutil.copy(geotiff_area / "nir_1.tif", geotiff_area / "nir_copy.tif")
    (geotiff_area / "linked").mkdir()
    (geotiff_area / "linked" / "red.tif").symlink_to(geotiff_area / "red_2.tif")
    problems = validate_problems(_geotiff_config(geotiff_area, [("2024-06-01", "red_0.tif", "nir_0.tif"),
                                                        ("2024-07-01", "red_1.tif", "nir_1.tif"),
                                                        ("2024-08-01", "red_2.tif", "nir_2.tif"),
                                                        ("2024-08-15", "red_copy.tif", "nir_copy.tif"),
                                                        ("2024-09-01", "linked/red.tif", "nir_2.tif")]))
    assert len(problems) == 2, problems
    assert problems[0].startswith("imagery.2024[3]: the same scene as imagery.2024[1]: its band ")
    assert "red_copy.tif" in problems[0] or "nir_copy.tif" in problems[0]
    assert "SHA-256" in problems[0]
    assert problems[1].startswith("imagery.2024[4]: the same scene as imagery.2024[2]: its band ")
    assert "is the same file" in problems[1]


def test_geotiff_scenes_twice_through_composite(geotiff_area):
    """The clear count of a composite of three distinct scenes is 3; the same three plus one of them again (its
    files through a symlinked folder, another date) are refused (they gave 4 before)."""
    from ecoassess.grid import AnalysisGrid
    from ecoassess.sources import composite, open_scene

    grid = AnalysisGrid.from_bounds((403000, 3319000, 423000, 3331000), 200, UTM)
    (geotiff_area / "again").symlink_to(geotiff_area, target_is_directory=True)

    def scene(i, date):
        return open_scene("geotiff", grid=grid, date=date, scale=0.0001,
                          bands={"red": geotiff_area / f"red_{i}.tif", "nir": geotiff_area / f"nir_{i}.tif"})

    scenes = [scene(0, "2024-06-01"), scene(1, "2024-07-01"), scene(2, "2024-08-01")]
    assert int(composite(scenes).clear_count.max().compute()) == 3
    copy = open_scene("geotiff", grid=grid, date="2024-08-20", scale=0.0001,
                      bands={"red": geotiff_area / "again" / "red_0.tif", "nir": geotiff_area / "again" / "nir_0.tif"})
    with pytest.raises(InputError, match=r"scenes\[3\]: the same scene as scenes\[0\]"):
        composite(scenes + [copy])


def test_one_acquisition_downloaded_twice_under_two_product_ids_is_refused(sample_config, tmp_path):
    """A re-downloaded product gets another id (``…_0_L2A`` → ``…_1_L2A``) over the same pixels: the audit's
    copy passed validate and counted twice (whole-area NDVI 0.688 → 0.639)."""
    import json

    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    first = sample_config.parent / raw["imagery"]["2024"][0]["path"]
    again = tmp_path / first.name.replace("_0_L2A", "_1_L2A")
    shutil.copytree(first, again)
    for item in again.glob("*.json"):
        meta = json.loads(item.read_text(encoding="utf-8"))
        meta["id"] = again.name
        item.write_text(json.dumps(meta), encoding="utf-8")
    path, _ = _config_with(sample_config, "reprocessed.yaml", [{"kind": "sentinel2_l2a", "path": str(again)}])
    problems = validate_problems(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith("imagery.2024[3]: the same scene as imagery.2024[0]: its largest band file ")
    assert "the same content (SHA-256" in problems[0]
