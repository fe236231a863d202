"""Shapefiles written on Chinese Windows (GBK text, no .cpg): county names and field names must come out right
through config/validate, the run's readers and the zonal tables, and the encoding used must be said (#16, 7)."""

import logging

import dask.array as da
import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import yaml
from shapely.geometry import box

from ecoassess.validate import validate_config

NAMES = ["甲县", "乙县"]
TYPES = ["水源涵养", "生物多样性维护"]


def _shapefile(path, frame, encoding, *, cpg=False):
    """Write ``frame`` as a shapefile with its text in ``encoding``; no .cpg unless asked (as GBK tools write)."""
    pyogrio.write_dataframe(frame, path, encoding=encoding)
    cpg_path = path.with_suffix(".cpg")
    if not cpg and cpg_path.exists():
        cpg_path.unlink()
    return path


def _counties():
    return gpd.GeoDataFrame({"代码": ["519901", "519902"], "名称": NAMES},
                            geometry=[box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.2, 30.1)], crs="EPSG:4490")


def _function_zones():
    return gpd.GeoDataFrame({"编号": ["F1", "F2"], "名称": ["一区", "二区"], "类型": TYPES},
                            geometry=[box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.2, 30.1)], crs="EPSG:4490")


@pytest.fixture
def gbk_inputs(tmp_path):
    _shapefile(tmp_path / "counties.shp", _counties(), "GBK")
    _shapefile(tmp_path / "fz.shp", _function_zones(), "GBK")
    assert not (tmp_path / "counties.cpg").exists()
    cfg = {"year": 2024,
           "study_area": {"path": "counties.shp", "id_field": "代码", "name_field": "名称"},
           "zones": {"function_zones": {"path": "fz.shp", "id_field": "编号", "name_field": "名称",
                                        "type_field": "类型"}}}
    (tmp_path / "assessment.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return tmp_path


def test_gbk_shapefile_without_cpg_passes_validate_with_its_chinese_field_names(gbk_inputs, caplog):
    with caplog.at_level(logging.INFO, logger="ecoassess"):
        config = validate_config(gbk_inputs / "assessment.yaml")  # raised "field '代码' does not exist (fields: ´úÂë …)"
    assert config.study_area.id_field == "代码"
    said = [r.getMessage() for r in caplog.records if "counties.shp" in r.getMessage()]
    assert said and "GB18030" in said[0] and ".cpg" in said[0]


def test_gbk_names_come_out_right_in_the_run_readers_and_zonal_tables(gbk_inputs):
    from ecoassess.readers import read_vector
    from ecoassess.pipeline import build_grid, read_study_area, read_zone_sets
    from ecoassess.zones import zonal_stats

    config = validate_config(gbk_inputs / "assessment.yaml")
    counties = read_study_area(config)
    assert list(counties["name"]) == NAMES
    assert list(counties["code"]) == ["519901", "519902"]
    grid = build_grid(config, counties.assign())
    sets = read_zone_sets(config, counties, grid)
    ones = grid.wrap(da.ones((grid.height, grid.width), dtype="float32", chunks=256), name="v")
    table = zonal_stats(sets["county"], {"v": ones})
    assert sorted(table["name"]) == sorted(NAMES)
    fz = zonal_stats(sets["function_zones"], {"v": ones})
    assert sorted(fz["name"]) == ["一区", "二区"]
    # the function-zone type field the EI stage reads
    types = read_vector(gbk_inputs / "fz.shp").set_index("编号")["类型"]
    assert list(types) == TYPES


def test_statistics_table_codes_match_gbk_study_area(gbk_inputs):
    from ecoassess.tables import _study_area_codes

    config = validate_config(gbk_inputs / "assessment.yaml")
    assert _study_area_codes(config) == {"519901", "519902"}


def test_the_encoding_used_is_recorded_for_the_manifest(gbk_inputs):
    from ecoassess.readers import input_encodings

    found = input_encodings([gbk_inputs / "counties.shp", gbk_inputs / "fz.shp", gbk_inputs / "assessment.yaml"])
    assert set(found) == {str(gbk_inputs / "counties.shp"), str(gbk_inputs / "fz.shp")}
    assert all(v["encoding"] == "GB18030" for v in found.values())


def test_utf8_shapefile_without_cpg_is_read_as_utf8(tmp_path):
    from ecoassess.readers import read_vector, vector_encoding, vector_info

    path = _shapefile(tmp_path / "u.shp", _counties(), "UTF-8")
    assert vector_encoding(path)[0] == "UTF-8"
    assert list(read_vector(path)["名称"]) == NAMES
    assert list(vector_info(path)["fields"]) == ["代码", "名称"]


def test_a_cpg_that_is_present_wins(tmp_path):
    from ecoassess.readers import input_encodings, read_vector, vector_encoding

    path = _shapefile(tmp_path / "c.shp", _counties(), "GBK", cpg=True)
    assert vector_encoding(path) == (None, "its .cpg file")
    assert list(read_vector(path)["名称"]) == NAMES
    # a .cpg naming another encoding is obeyed, not second-guessed
    path.with_suffix(".cpg").write_text("ISO-8859-1")
    assert vector_encoding(path) == (None, "its .cpg file")
    assert "名称" not in read_vector(path).columns  # as the .cpg says: Latin-1
    assert input_encodings([path]) == {}


def test_ascii_and_geopackage_inputs_need_no_detection(tmp_path):
    from ecoassess.readers import input_encodings, read_vector, vector_encoding

    ascii_frame = _counties().rename(columns={"代码": "code", "名称": "name"}).assign(name=["A", "B"])
    path = _shapefile(tmp_path / "a.shp", ascii_frame, "GBK")
    assert vector_encoding(path)[0] is None
    gpkg = tmp_path / "c.gpkg"
    _counties().to_file(gpkg)
    assert vector_encoding(gpkg) == (None, "defined by the format")
    assert list(read_vector(gpkg)["名称"]) == NAMES
    assert input_encodings([path, gpkg]) == {}


def test_a_name_cut_inside_a_character_by_the_field_width_is_still_utf8():
    from ecoassess.readers import _decodes

    cut = "四川省成都市".encode("utf-8")[:-1]  # a fixed-width DBF field may end inside a character
    assert _decodes([cut], "UTF-8")
    assert not _decodes(["四川省".encode("gbk")], "UTF-8")
    assert _decodes(["四川省".encode("gbk")], "GB18030")


def test_gbk_reads_give_chinese_names_in_the_zone_table_of_a_shapefile_given_directly(gbk_inputs):
    from ecoassess.readers import read_vector
    from ecoassess.grid import AnalysisGrid
    from ecoassess.zones import ZoneSet

    grid = AnalysisGrid.from_study_area(read_vector(gbk_inputs / "counties.shp"), 500.0)
    zs = ZoneSet.from_file(gbk_inputs / "counties.shp", grid, id_field="代码", name_field="名称")
    assert list(zs.names) == NAMES
    assert np.all(np.asarray(zs.area_km2) > 0)


def test_gbk_names_whose_bytes_are_also_valid_utf8_are_read_as_gbk(tmp_path):
    """平山 / 太平 / 小山 / 平原 in GBK are valid UTF-8 bytes ('ƽɽ', '̫ƽ', 'Сɽ', 'ƽԭ'): the audit's red-line units
    came out as that, recorded as 'UTF-8, detected'."""
    from shapely.geometry import box

    from ecoassess.readers import read_vector, vector_encoding

    names = ["平山", "太平", "小山", "平原"]
    for name in names:  # the case: each is valid UTF-8 as GBK bytes
        name.encode("gbk").decode("utf-8")
    frame = gpd.GeoDataFrame({"unit_id": ["A", "B", "C", "D"], "name": names},
                             geometry=[box(i, 0, i + 1, 1) for i in range(4)], crs="EPSG:4490")
    path = _shapefile(tmp_path / "units.shp", frame, "GBK")
    encoding, how = vector_encoding(path)
    assert encoding == "GB18030" and "valid UTF-8 and GB18030" in how
    assert list(read_vector(path)["name"]) == names
    utf8 = _shapefile(tmp_path / "units_utf8.shp", frame, "UTF-8")  # the same names in UTF-8 stay UTF-8
    assert vector_encoding(utf8)[0] == "UTF-8" and list(read_vector(utf8)["name"]) == names


def test_a_gbk_csv_whose_bytes_are_also_valid_utf8_is_read_as_gbk(tmp_path):
    from ecoassess.readers import read_table

    text = "county_code,name\n519901,平山\n519902,小山\n"
    (tmp_path / "gbk.csv").write_bytes(text.encode("gbk"))
    (tmp_path / "utf8.csv").write_bytes(text.encode("utf-8"))
    for name in ("gbk.csv", "utf8.csv"):
        assert list(read_table(tmp_path / name)["name"]) == ["平山", "小山"], name
