"""Messages that misled (#16, finding 9): each bad input gets one message naming the file, the field and what was
expected — bad codes in a statistics table, a full disk, an archive given as a product, a Gauss-Krüger layer with
zone-prefixed eastings, a symlink loop."""

import errno
import logging

import geopandas as gpd
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from shapely.geometry import box

from ecoassess.validate import validate_config
from tests.builders import validate_problems, write_statistics_csv


def _counties(root):
    counties = gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["甲县", "乙县"]},
                                geometry=[box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.2, 30.1)],
                                crs="EPSG:4490")
    counties.to_file(root / "counties.gpkg")


def _write_config(root, **more):
    cfg = {"year": 2024, "baseline_year": 2023,
           "study_area": {"path": "counties.gpkg", "id_field": "code", "name_field": "name"}, **more}
    path = root / "assessment.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path



# -- 9a: codes in a statistics table ----------------------------------------------------------------------------

def test_full_width_digits_are_read_as_codes_with_a_warning_and_bad_codes_are_named(tmp_path, caplog):
    _counties(tmp_path)
    write_statistics_csv(tmp_path / "stats.csv")
    table = pd.read_csv(tmp_path / "stats.csv", dtype={"county_code": str})
    table.loc[0, "county_code"] = "５１９９０１"  # 519901 (2023) typed with a Chinese input method (line 2)
    table.loc[1, "county_code"] = "5199O1"  # 519901 (2024) with the letter O for a zero (line 3)
    table.to_csv(tmp_path / "stats.csv", index=False)
    path = _write_config(tmp_path, statistics={"path": "stats.csv"})
    with caplog.at_level(logging.WARNING):
        problems = validate_problems(path)
    assert problems == ["statistics: stats.csv line 3, field 'county_code': '5199O1' is not a 6-digit GB/T 2260 "
                        "code",
                        "statistics: stats.csv: no row for county 519901 in year 2024 (line(s) 3 hold no valid "
                        "code)"]
    warned = [r.getMessage() for r in caplog.records if "full-width" in r.getMessage()]
    assert warned == ["stats.csv line 2, field 'county_code': '５１９９０１' is written with full-width digits; "
                      "read as 519901"]


def test_full_width_codes_alone_pass_validate(tmp_path):
    _counties(tmp_path)
    write_statistics_csv(tmp_path / "stats.csv")
    table = pd.read_csv(tmp_path / "stats.csv", dtype={"county_code": str})
    table["county_code"] = table["county_code"].str.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    table.to_csv(tmp_path / "stats.csv", index=False)
    config = validate_config(_write_config(tmp_path, statistics={"path": "stats.csv"}))
    from ecoassess.stages.base import RunInputs
    from ecoassess.stages.ei_inputs import statistics_rows

    assert sorted(statistics_rows(RunInputs(config, None), 2024).index) == ["519901", "519902"]


def test_bad_codes_in_a_text_study_area_field_are_named(tmp_path):
    counties = gpd.GeoDataFrame({"code": ["519901", "51990X"], "name": ["甲县", "乙县"]},
                                geometry=[box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.2, 30.1)],
                                crs="EPSG:4490")
    counties.to_file(tmp_path / "counties.gpkg")
    problems = validate_problems(_write_config(tmp_path))
    assert any("51990X" in p and "GB/T 2260" in p for p in problems), problems


# -- 9c: an archive given as a product ---------------------------------------------------------------------------

def test_a_zipped_sentinel2_product_is_named_an_archive_with_how_to_unpack_it(tmp_path):
    import zipfile

    _counties(tmp_path)
    with zipfile.ZipFile(tmp_path / "S2A_MSIL2A_20240705.zip", "w") as z:
        z.writestr("S2A_MSIL2A_20240705.SAFE/MTD_MSIL2A.xml", "<xml/>")
    scenes = {"2023": [{"kind": "sentinel2_l2a", "path": "S2A_MSIL2A_20240705.zip"}],
              "2024": [{"kind": "sentinel2_l2a", "path": "S2A_MSIL2A_20240705.zip"}]}
    problems = validate_problems(_write_config(tmp_path, imagery=scenes))
    zipped = tmp_path / "S2A_MSIL2A_20240705.zip"
    assert problems == [f"imagery.{y}[0].path: {zipped}: is a ZIP archive, not a Sentinel-2 L2A SAFE folder, a folder "
                        f"of band COGs or a STAC item; unpack it first, e.g. unzip '{zipped}' -d "
                        f"'{tmp_path / 'S2A_MSIL2A_20240705'}', and give the unpacked folder (for Sentinel-2 the "
                        "*.SAFE folder inside) as the path" for y in (2023, 2024)]


def test_a_landsat_tar_is_named_an_archive(tmp_path):
    import tarfile

    from ecoassess.errors import InputError
    from ecoassess.sources import open_scene, scene_date_from_metadata

    mtl = tmp_path / "LC09_L2SP_129039_20240705_20240706_02_T1_MTL.txt"
    mtl.write_text("GROUP = LANDSAT_METADATA_FILE\nEND_GROUP = LANDSAT_METADATA_FILE\nEND\n")
    archive = tmp_path / "LC09_L2SP_129039_20240705_20240706_02_T1.tar"
    with tarfile.open(archive, "w") as t:
        t.add(mtl, arcname=mtl.name)
    for call in (lambda: scene_date_from_metadata("landsat_c2l2", archive),
                 lambda: open_scene("landsat_c2l2", path=archive)):
        with pytest.raises(InputError, match=r"is a tar archive, not a Landsat Collection 2 Level-2 product folder "
                                             r"or its MTL file; unpack it first, e\.g\. mkdir .* && tar -xf "):
            call()


# -- 9e: symlink loops -------------------------------------------------------------------------------------------

def _loop(folder):
    (folder / "a").symlink_to(folder / "b")
    (folder / "b").symlink_to(folder / "a")
    return folder / "a"


def test_a_symlink_loop_in_a_config_path_is_one_problem_naming_it(tmp_path):
    from ecoassess.cli import main

    _counties(tmp_path)
    loop = _loop(tmp_path)
    path = _write_config(tmp_path, dem={"path": "a"})
    (problem,) = validate_problems(path)  # the words in brackets are Python's, and differ between its versions
    assert problem.startswith(f"dem.path: {loop}: a symlink loop (")
    assert problem.endswith("); point the link at the real file or folder")
    res = CliRunner().invoke(main, ["validate", str(path)])
    assert res.exit_code == 1 and "Traceback" not in res.output and f"dem.path: {loop}: a symlink loop" in res.output


def test_a_symlink_loop_as_config_or_out_is_one_line(tmp_path):
    from ecoassess.cli import main

    _counties(tmp_path)
    loop = _loop(tmp_path)
    res = CliRunner().invoke(main, ["run", str(loop), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and res.exception is None or isinstance(res.exception, SystemExit)
    assert "the config file is a symlink loop" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["run", str(_write_config(tmp_path)), "--out", str(loop / "results")])
    assert res.exit_code == 2 and "symlink loop" in res.output and str(loop) in res.output


# -- 9b: a full disk -----------------------------------------------------------------------------------------------

def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_writing_a_table_names_the_file_the_results_folder_and_the_free_space(tmp_path,
                                                                                                 monkeypatch):
    from ecoassess.errors import DiskSpaceError
    from ecoassess.store import ResultsStore

    out = tmp_path / "results"
    monkeypatch.setattr(pd.DataFrame, "to_csv", _disk_full)
    with pytest.raises(DiskSpaceError) as err:
        with ResultsStore(out) as store:
            store.write_table("county_ndvi", pd.DataFrame({"code": ["519901"], "ndvi": [0.5]}), gpkg=False)
    text = str(err.value)
    assert text.startswith("no space left on the disk while writing ")
    assert "tables/county_ndvi.csv" in text and f"(results folder {out};" in text
    assert " free there): free some space, or give --out on a disk with room" in text
    assert not out.exists()  # nothing half-written


def test_a_file_too_large_for_the_file_system_says_so(tmp_path, monkeypatch):
    from ecoassess.errors import DiskSpaceError
    from ecoassess.store import ResultsStore

    monkeypatch.setattr(ResultsStore, "_write_gpkg", lambda *a: (_ for _ in ()).throw(
        OSError(errno.EFBIG, "File too large")))
    with pytest.raises(DiskSpaceError, match=r"the file is larger than the file system allows \(FAT32: 4 GB per "
                                             r"file\) while writing .*results\.gpkg .*NTFS"):
        with ResultsStore(tmp_path / "r") as store:
            store.write_table("t", pd.DataFrame({"a": [1]}))


def test_a_full_disk_while_writing_a_cog_names_the_layer(tmp_path, monkeypatch):
    import dask.array as da

    from ecoassess import cog
    from ecoassess.errors import DiskSpaceError
    from ecoassess.grid import AnalysisGrid

    grid = AnalysisGrid.from_bounds((0, 0, 640, 640), 10.0, "EPSG:3035")
    layer = grid.wrap(da.ones((grid.height, grid.width), dtype="float32", chunks=64), name="ndvi")
    monkeypatch.setattr(cog, "_assemble", _disk_full)
    target = tmp_path / "layers" / "ndvi_2024.tif"
    with pytest.raises(DiskSpaceError, match=rf"^no space left on the disk while writing {target} \(folder "
                                             rf"{target.parent}; .* free there\)"):
        cog.write_cog(layer, target)
    assert not target.exists()


def test_a_full_disk_while_spilling_names_the_spill_folder(tmp_path, monkeypatch):
    import dask.array as da
    import numpy as np

    from ecoassess.errors import DiskSpaceError
    from ecoassess.grid import AnalysisGrid
    from ecoassess.materialize import materialize

    grid = AnalysisGrid.from_bounds((0, 0, 640, 640), 10.0, "EPSG:3035")
    layer = grid.wrap(da.ones((grid.height, grid.width), dtype="float32", chunks=32), name="v")
    monkeypatch.setattr(np, "save", _disk_full)
    with pytest.raises(DiskSpaceError, match=rf"while writing {tmp_path}/ecoassess-spill-\S+ \(spill folder .*"
                                             r"free there\): .*TMPDIR.*--memory-budget-mb"):
        materialize({"v": layer}, memory_budget_mb=0, spill_root=tmp_path)


def test_the_cli_prints_one_line_for_a_full_disk(tmp_path, monkeypatch):
    from ecoassess import pipeline
    from ecoassess.cli import main

    _counties(tmp_path)
    monkeypatch.setattr(pipeline, "run", _disk_full)
    out = tmp_path / "results"
    res = CliRunner().invoke(main, ["run", str(_write_config(tmp_path)), "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: no space left on the disk while writing {out} "
                                                   f"(results folder {out}; ")


# -- 9d: Gauss-Krüger eastings with the zone prefix under the label of a CRS without it ------------------------

def _raster(path, crs="EPSG:32648"):
    import numpy as np
    import rasterio
    from affine import Affine

    with rasterio.open(path, "w", driver="GTiff", width=100, height=60, count=1, dtype="float32", crs=crs,
                       transform=Affine(200, 0, 403000, 0, -200, 3331000), nodata=-9999) as dst:
        dst.write(np.full((60, 100), 450.0, "float32"), 1)


def test_zone_prefixed_eastings_under_a_crs_without_prefix_are_said_once_naming_the_study_area(tmp_path):
    _counties(tmp_path)
    prefixed = gpd.read_file(tmp_path / "counties.gpkg").to_crs("EPSG:4523")  # zone 35: x ≈ 35 400 000
    prefixed.set_crs("EPSG:4544", allow_override=True).to_file(tmp_path / "gk.gpkg")  # the label without prefix
    _raster(tmp_path / "dem.tif")
    _raster(tmp_path / "lc.tif")
    path = _write_config(tmp_path, dem={"path": "dem.tif"}, land_cover={"2024": {"path": "lc.tif",
                                                                                  "legend": "cas_lucc"}})
    text = path.read_text(encoding="utf-8").replace("counties.gpkg", "gk.gpkg")
    path.write_text(text, encoding="utf-8")
    problems = validate_problems(path)
    assert len(problems) == 1, problems  # not one "does not overlap" per raster
    (problem,) = problems
    assert problem.startswith(f"study_area: {tmp_path / 'gk.gpkg'} has eastings 354")
    assert ("carry the 3-degree Gauss-Krüger zone number 35 in front (35500000 = zone 35, easting 500000), but its "
            "CRS CGCS2000 / 3-degree Gauss-Kruger CM 105E (EPSG:4544) counts eastings without the zone prefix"
            in problem)
    assert "EPSG:4523 (CGCS2000 / 3-degree Gauss-Kruger zone 35)" in problem


def test_gauss_krueger_coordinates_that_match_their_label_pass(tmp_path):
    _counties(tmp_path)
    for code, name in (("EPSG:4523", "prefixed.gpkg"), ("EPSG:4544", "plain.gpkg")):
        gpd.read_file(tmp_path / "counties.gpkg").to_crs(code).to_file(tmp_path / name)
    _raster(tmp_path / "dem.tif")
    for name in ("prefixed.gpkg", "plain.gpkg"):
        path = _write_config(tmp_path, dem={"path": "dem.tif"})
        path.write_text(path.read_text(encoding="utf-8").replace("counties.gpkg", name), encoding="utf-8")
        validate_config(path)
