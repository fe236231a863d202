"""GB/T 2260 codes against the shipped code table (#18 item 11): unknown, abolished and misnamed codes, county
areas off their reference, and the sample's test range left quiet."""

from __future__ import annotations

import geopandas as gpd
import shapely
import yaml

from ecoassess.admin_codes import code_table, stem
from ecoassess.validate import validate_config


def _config(tmp_path, rows, **study_extra):
    gdf = gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[1] for r in rows],
                            "official_km2": [r[2] if len(r) > 2 else None for r in rows]},
                           geometry=[shapely.box(109.0 + 0.2 * i, 27.6, 109.2 + 0.2 * i, 27.8)
                                     for i in range(len(rows))], crs="EPSG:4490")
    gdf.to_file(tmp_path / "counties.gpkg")
    raw = {"year": 2024, "study_area": {"path": "counties.gpkg", "id_field": "code", "name_field": "name",
                                        **study_extra}}
    (tmp_path / "assessment.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return tmp_path / "assessment.yaml"


def test_the_table_has_a_vintage_and_history():
    table = code_table()
    assert table["520600"]["name"] == "铜仁市" and table["520600"]["status"] == "current"
    assert table["522200"]["status"] == "abolished" and table["522200"]["name"] == "铜仁地区"
    assert "桥东区" in table["130502"]["former_names"]  # renamed 襄都区 in 2020
    assert stem("铜仁地区") == stem("铜仁市") == "铜仁"


def test_unknown_abolished_and_misnamed_codes_are_warned_naming_the_feature(tmp_path):
    config = validate_config(_config(tmp_path, [("520602", "碧江区"), ("510199", "某县"), ("522200", "铜仁地区"),
                                                ("510100", "绵阳市"), ("520600", "铜仁地区"), ("130502", "桥东区")]))
    w = config._input_warnings
    assert any("feature 2" in m and "510199" in m and "no vintage" in m for m in w), w
    assert any("feature 3" in m and "522200" in m and "abolished" in m and "520600" in m for m in w), w
    assert any("feature 4" in m and "绵阳市" in m and "成都市" in m for m in w), w
    assert not any("feature 1 " in m or "feature 5 " in m or "feature 6 " in m for m in w), w  # old names allowed
    assert all("counties.gpkg" in m for m in w)


def test_test_range_codes_and_codes_any_are_quiet(tmp_path):
    config = validate_config(_config(tmp_path, [("519901", "甲县"), ("519902", "乙县")]))
    assert config._input_warnings == []
    config = validate_config(_config(tmp_path, [("510199", "某县")], codes="any"))
    assert config._input_warnings == []


def test_a_county_far_from_its_reference_area_is_flagged(tmp_path):
    # each box is 0.2° x 0.2° at 27.7°N: about 438 km²
    config = validate_config(_config(tmp_path, [("520602", "碧江区", 440.0), ("520603", "万山区", 320.0)],
                                     reference_area_field="official_km2"))
    flagged = [m for m in config._input_warnings if "km²" in m]
    assert len(flagged) == 1 and "万山区" in flagged[0] and "official_km2" in flagged[0], config._input_warnings
