"""The network stage with awkward real-shaped inputs (issue 20): a GBK station list and observations as the
national networks publish them (text numbers, '—', full-width digits, a trailing unit, a cell that is no number),
a study area without imagery or land cover, the ``network`` config section and its checks, the
``ecoassess network`` command, and the one cell reading shared by the registry and ``values.to_number``."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from shapely.geometry import box

from ecoassess.cli import main
from ecoassess.config import load_config
from ecoassess.errors import ConfigError, InputError
from ecoassess.network.units import _number, parse_cell
from ecoassess.network.values import to_number
from ecoassess.pipeline import run
from ecoassess.validate import validate_config

SITES_GBK = """站点编码,站点名称,区县代码,lon,lat,automatic
A1,东城监测站,519901,104.615,30.015,是
A2,东郊监测站,519901,104.605,30.022,是
"""
# A1: 2024-01-01 plain numbers; 01-02 '３５' (full-width) and '12 μg/m3'; 01-03 '—' for PM2.5; 01-04 'abc'
OBS_GBK = """站点编码,日期,PM2.5(μg/m3),PM10(μg/m3),SO2(μg/m3),NO2(μg/m3),CO(mg/m3),O3-8h(μg/m3)
A1,2024-01-01,66,101,10,28,0.9,62
A1,2024/1/2,３５,70,12 μg/m3,40,1.0,100
A1,2024年1月3日,—,80,8,30,0.8,90
A1,2024-01-04,abc,60,7,25,0.7,80
A2,2024-01-01,20,40,5,15,0.4,70
"""


def _write_area(folder):
    counties = gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["东城县", "西山县"]},
                                geometry=[box(104.60, 30.00, 104.63, 30.03), box(104.57, 30.00, 104.60, 30.03)],
                                crs="EPSG:4490")
    counties.to_file(folder / "counties.gpkg", driver="GPKG")
    (folder / "air_sites.csv").write_bytes(SITES_GBK.encode("gbk"))
    (folder / "air_daily.csv").write_bytes(OBS_GBK.encode("gbk"))


def _config(folder, **network) -> dict:
    cfg = {"name": "GBK 站点", "year": 2024,
           "study_area": {"path": "counties.gpkg", "id_field": "code", "name_field": "name", "codes": "any"},
           "stations": {"air": {"sites": "air_sites.csv", "observations": "air_daily.csv"}}}
    if network:
        cfg["network"] = network
    path = folder / "assessment.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def area(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gbk")
    _write_area(folder)
    return folder


def test_gbk_station_files_with_published_values_through_the_stage(area, tmp_path):
    result = run(_config(area), tmp_path / "out", stages=["network"])
    assert not result.problems
    daily = result.tables["air_daily"].set_index(["station_id", pd.to_datetime(result.tables["air_daily"]["time"])])
    a1 = daily.loc["A1"]
    assert a1.loc["2024-01-02", "pm25_ugm3"] == 35 and a1.loc["2024-01-02", "so2_ugm3"] == 12
    assert np.isnan(a1.loc["2024-01-03", "pm25_ugm3"]) and not a1.loc["2024-01-03", "complete"]
    # 'abc' is left out as a value, said in the rejected rows (file, line, column), the rest of the row kept
    rejected = result.tables["network_rejected_rows"]
    abc = rejected[rejected["value"] == "abc"].iloc[0]
    assert (abc["file"], abc["row"], abc["column"], abc["left_out"]) == ("air_daily.csv", 5, "PM2.5(μg/m3)", "value")
    assert "not a number" in abc["reason"]
    assert a1.loc["2024-01-04", "pm10_ugm3"] == 60
    # the same day as in the sample (A01 2024-01-01): PM2.5 66 → IAQI 50 + 50·31/40 = 88.75 → 89
    assert a1.loc["2024-01-01", "aqi"] == 89
    # 2024-01-02: PM2.5 35 → 50; O3_8h 100 → 50; NO2 40 → 50; PM10 70 → 50 + 50·20/100 = 60: AQI 60
    assert a1.loc["2024-01-02", "aqi"] == 60
    names = result.tables["stations"].set_index("station_id")["name"]
    assert names["A1"] == "东城监测站"                       # GBK names read as Chinese
    # four days are far from the 324 valid days of GB 3095: no annual statistic, never one from too few days
    annual = result.tables["air_station_annual"].set_index("station_id")
    assert np.isnan(annual.loc["A1", "pm25_annual_ugm3"]) and annual.loc["A1", "n_days_pm25_ugm3"] == 2
    # the county without a station: shortfall 2; without land cover no site can be proposed, and it is said
    audit = result.tables["network_coverage"]
    west = audit[(audit["county_code"] == "519902") & (audit["rule_id"] == "county_seat_air_2")].iloc[0]
    assert (west["present"], west["shortfall"]) == (0, 2)
    assert "proposed_sites" not in result.tables
    assert any("no land cover" in w for w in result.warnings)


def test_network_section_is_checked_by_validate(area, tmp_path):
    (area / "built_up.csv").write_text("county_code,built_up_population_10k,built_up_area_km2\n519901,12,abc\n",
                                       encoding="utf-8")
    (area / "aliases.csv").write_text("alias,current\n519900,\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        validate_config(_config(area, proposals={"soil": 2}, built_up="built_up.csv", aliases="aliases.csv"))
    text = "\n".join(err.value.problems)
    assert "network.proposals.soil: no stations.soil is configured" in text
    assert "network.built_up" in text and "row 2" in text and "built_up_area_km2" in text and "'abc'" in text
    assert "network.aliases" in text and "[current]" in text
    with pytest.raises(ConfigError, match="network.proposals.air"):
        load_config(_config(area, proposals={"air": -1}))


def test_built_up_table_sets_the_hj664_requirement(area, tmp_path):
    """519901's built-up area: 30 万人 (25 ≤ x < 50 → 2 points), 8 km² (< 20 → 1): the larger, 2 (HJ 664-2013
    Table 1). Only 城市点 count for HJ 664; a site without a station_class counts, so both A1 and A2 do."""
    (area / "built_up_ok.csv").write_text("county_code,built_up_population_10k,built_up_area_km2\n519901,30,8\n",
                                          encoding="utf-8")
    result = run(_config(area, built_up="built_up_ok.csv", proposals={"air": 0}), tmp_path / "out",
                 stages=["network"])
    audit = result.tables["network_coverage"]
    row = audit[(audit["county_code"] == "519901") & (audit["rule_id"] == "hj664_city_air")].iloc[0]
    assert (row["required"], row["present"], row["shortfall"]) == (2, 2, 0)


def test_network_command(area, tmp_path):
    out = tmp_path / "cli"
    res = CliRunner().invoke(main, ["network", str(_config(area)), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "air_station_annual" in res.output and (out / "tables" / "network_coverage.csv").is_file()
    assert "county_vegetation" not in res.output
    bare = area / "bare.yaml"
    bare.write_text(yaml.safe_dump({"year": 2024, "study_area": {"path": "counties.gpkg", "id_field": "code",
                                                                  "name_field": "name", "codes": "any"}}),
                    encoding="utf-8")
    res = CliRunner().invoke(main, ["network", str(bare), "--out", str(tmp_path / "bare")])
    assert res.exit_code == 2 and "stations: none configured" in res.output


def test_one_cell_reading_for_registry_and_to_number():
    """units.parse_cell is the one implementation: what the registry reads is what to_number reads."""
    for cell, value in (("３５", 35.0), ("12 µg/m³", 12.0), ("1,234", 1234.0), ("—", None), ("缺测", None)):
        assert parse_cell(cell, "ugm3").value == value
        got = to_number(pd.Series([cell]))[0]
        assert (np.isnan(got) if value is None else got == value)
    below = parse_cell("未检出（0.01）", "mgl")        # full-width brackets as typed on a Chinese keyboard
    assert below.below_detection and below.detection_limit == 0.01 and below.value is None
    assert to_number(pd.Series(["未检出（0.01）"]), below_detection="half")[0] == 0.005
    assert "detection limit" in _number("ND(0.004)", "mgl")[1]
    # a trailing unit must be the column's for the registry; to_number (no column unit) takes any known one
    assert _number("0.8 mg/m³", "ugm3")[0] is None and to_number(pd.Series(["0.8 mg/m³"]))[0] == 0.8
    with pytest.raises(InputError, match="unknown text 'a'"):
        to_number(pd.Series(["35a"], name="pm25_ugm3"))


def test_observations_all_of_another_year_are_a_problem_of_the_run(tmp_path):
    """The audit's case: every air row dated 2023 in a 2024 assessment gave exit 0 and a table of empty statistics."""
    _write_area(tmp_path)
    (tmp_path / "air_daily.csv").write_bytes(OBS_GBK.replace("2024", "2023").encode("gbk"))
    result = run(_config(tmp_path), tmp_path / "out", stages=["network"])
    (problem,) = result.problems
    assert problem.startswith("stations.air.observations: no row of air_daily.csv could be used for 2024: all 5 rows")
    assert "network_rejected_rows" in problem and "2023" in problem


def test_values_in_another_unit_than_the_header_are_warned_about(tmp_path):
    """The audit's case: PM2.5 in mg/m³ under a µg/m³ header (0.066 for 66) became annual means of 0.0 µg/m³
    without a word. The median is three orders of magnitude off any station: validate warns, naming the column."""
    from ecoassess.validate import station_warnings

    _write_area(tmp_path)
    mg = OBS_GBK.replace(",66,", ",0.066,").replace(",20,40,", ",0.020,40,").replace(",abc,", ",0.05,")
    mg = mg.replace(",３５,", ",0.035,").replace(",—,", ",0.04,")
    (tmp_path / "air_daily.csv").write_bytes(mg.encode("gbk"))
    warnings = station_warnings(load_config(_config(tmp_path)))
    (doubt,) = [w for w in warnings if "another unit" in w]
    assert "air_daily.csv column 'pm25_ugm3': median 0.04 µg/m³ is outside the 1–1000 µg/m³" in doubt
    # the file as published (µg/m³) raises no such doubt
    _write_area(tmp_path)
    assert not [w for w in station_warnings(load_config(_config(tmp_path))) if "another unit" in w]
