"""The station registry (#20 part 1): site lists and observation tables as offices get them — GBK CSV with text
values, Excel, GeoJSON/GeoPackage points, a national list, GCJ-02 coordinates, unit typos, duplicates, dates
outside the year, water sections without coordinates. Every case is built here."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from ecoassess.config import StationSource
from ecoassess.errors import InputError
from ecoassess.network.registry import read_observations, read_sites
from ecoassess.network.units import _number, column_kind

# two counties, 0.1° x 0.1° each (CGCS2000 ~ WGS84 here)
STUDY = gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["甲县", "乙县"]},
                         geometry=[shapely.box(104.0, 30.0, 104.1, 30.1), shapely.box(104.1, 30.0, 104.2, 30.1)],
                         crs="EPSG:4490")
STUDY.attrs["path"] = "counties.gpkg"


def _spec(sites, observations=None, **kw):
    return StationSource.model_validate({"sites": str(sites), **({"observations": str(observations)}
                                                                 if observations else {}), **kw})


def _write_gbk(path, text):
    path.write_bytes(text.encode("gbk"))
    return path


# -- values and columns ------------------------------------------------------------------------------------------

def test_cells_as_published_by_the_networks():
    assert _number("35", "ugm3") == (35.0, None)
    assert _number("３５", "ugm3") == (35.0, None)            # full-width digits from a Chinese input method
    assert _number("12 µg/m³", "ugm3") == (12.0, None)       # a trailing unit that is the column's unit
    assert _number("12μg/m3", "ugm3") == (12.0, None)        # Greek mu, no superscript
    assert _number("1,234", "ugm3") == (1234.0, None)
    for missing in ("—", "-", "", " ", "--", "/", "NA"):
        assert _number(missing, "ugm3") == (None, None), missing
    value, why = _number("0.012 mg/m³", "ugm3")                 # a unit other than the column's
    assert value is None and "mg/m³" in why and "µg/m³" in why
    value, why = _number("0.01L", "mgl")                        # Chinese notation: below the limit 0.01
    assert value is None and "detection limit" in why
    assert "not a number" in _number("abc", "mgl")[1]


def test_column_units_are_recognised_and_wrong_units_named():
    assert column_kind("pm25_ugm3", "air").name == "pm25_ugm3"
    assert column_kind("PM2.5(μg/m³)", "air").name == "pm25_ugm3"
    assert column_kind("氨氮(mg/L)", "surface_water").name == "nh3n_mgl"
    assert column_kind("leq_day_db", "noise").name == "leq_day_dba"       # dB accepted for dB(A)
    assert column_kind("o3_8h_ugm3", "air").quantity == "o3_8h"
    assert column_kind("cod_mgl", "surface_water").quantity == "cod"      # not codmn
    bad = column_kind("pm25_mgm3", "air")
    assert "µg/m³" in bad.problem and "pm25_ugm3" in bad.problem and "mg/m³" in bad.problem
    assert "unknown unit 'ugm'" in column_kind("pm25_ugm", "air").problem
    assert column_kind("co_ugm3", "air").problem is not None                # CO is in mg/m³ (HJ 633)
    assert column_kind("quarter", "noise") is None                          # kept as it is


# -- sites ---------------------------------------------------------------------------------------------------

def test_gbk_sites_and_observations_with_text_values(tmp_path):
    sites = _write_gbk(tmp_path / "sites.csv", "站点编码,站点名称,区县代码,lon,lat\n"
                                               "A01,甲县城区站,519901,104.05,30.05\n"
                                               "A02,乙县背景站,519902,104.15,30.02\n")
    # GBK has Greek μ but no ³ nor the micro sign µ: GBK tables write μg/m3
    obs = _write_gbk(tmp_path / "obs.csv", "站点编码,监测日期,PM2.5(μg/m3),pm10_ugm3\n"
                                           "A01,2024-01-01,35,60\n"
                                           "A01,2024年1月2日,—,70\n"
                                           "A02,2024/1/1,-,\n"
                                           "A02,2024-01-02,12 μg/m3,0.05 mg/m3\n")
    s = read_sites(_spec(sites, obs), STUDY, "air")
    assert list(s.table["station_id"]) == ["A01", "A02"] and list(s.table["name"]) == ["甲县城区站", "乙县背景站"]
    assert list(s.table["county_code"]) == ["519901", "519902"] and s.table["mapped"].all()
    assert s.table.crs.to_epsg() == 4326 and s.outside_count == 0 and s.rejected.empty
    o = read_observations(_spec(sites, obs), s, 2024)
    t = o.table.set_index(["station_id", o.table["time"].dt.strftime("%Y-%m-%d")])
    assert t.loc[("A01", "2024-01-01"), "pm25_ugm3"] == 35.0
    assert math.isnan(t.loc[("A01", "2024-01-02"), "pm25_ugm3"]) and t.loc[("A01", "2024-01-02"), "pm10_ugm3"] == 70
    assert math.isnan(t.loc[("A02", "2024-01-01"), "pm25_ugm3"])
    assert t.loc[("A02", "2024-01-02"), "pm25_ugm3"] == 12.0
    assert o.units == {"pm25_ugm3": "µg/m³", "pm10_ugm3": "µg/m³"}
    # the mg/m³ cell is the only one left out, with its line (header = line 1) and column
    assert len(o.rejected) == 1
    r = o.rejected.iloc[0]
    assert (r["row"], r["column"], r["left_out"], r["file"]) == (5, "pm10_ugm3", "value", "obs.csv")
    assert "mg/m³" in r["reason"]


def test_excel_sites(tmp_path):
    path = tmp_path / "sites.xlsx"
    pd.DataFrame({"station_id": [1001, 1002], "name": ["一号", "二号"], "county_code": [519901, 519902],
                  "lon": [104.05, 104.15], "lat": [30.05, 30.05]}).to_excel(path, index=False)
    s = read_sites(_spec(path), STUDY, "air")
    assert list(s.table["station_id"]) == ["1001", "1002"] and list(s.table["county_code"]) == ["519901", "519902"]


@pytest.mark.parametrize("name,driver", [("sites.geojson", "GeoJSON"), ("sites.gpkg", "GPKG")])
def test_point_layers(tmp_path, name, driver):
    gdf = gpd.GeoDataFrame({"station_id": ["N1", "N2", "N3"], "name": ["一类", "二类", "四a"],
                            "功能区类别": ["1类", "2", "4A类"]},
                           geometry=[shapely.Point(104.05, 30.05), shapely.Point(104.15, 30.05),
                                     shapely.Point(104.12, 30.08)], crs="EPSG:4326")
    gdf.to_file(tmp_path / name, driver=driver)
    s = read_sites(_spec(tmp_path / name), STUDY, "noise")
    assert list(s.table["function_class"]) == ["1", "2", "4a"]
    assert np.allclose(s.table.geometry.x, [104.05, 104.15, 104.12])


def test_a_national_list_counts_the_sites_outside_and_a_swap_only_when_swapped_falls_inside(tmp_path):
    rows = ["station_id,lon,lat", "A1,104.05,30.05", "BJ,116.40,39.90", "GZ,113.26,23.13", "KS,75.99,39.47"]
    path = tmp_path / "national.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    s = read_sites(_spec(path), STUDY, "air")
    assert list(s.table["station_id"]) == ["A1"] and s.outside_count == 3
    assert sorted(s.outside["station_id"]) == ["BJ", "GZ", "KS"] and list(s.outside["row"]) == [3, 4, 5]
    # one of our sites written lat,lon: read the other way round it lies in the study area
    path.write_text("\n".join(rows + ["A2,30.07,104.12"]) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_sites(_spec(path), STUDY, "air")
    text = str(err.value)
    assert "national.csv" in text and "line(s) 6" in text and "swapped" in text and "column 'lat'" in text
    assert "BJ" not in text
    # Beijing's coordinates swapped (39.90, 116.40) do not fall inside: no swap suspected, just outside
    path.write_text("\n".join(rows[:2] + ["BJ,39.90,116.40"]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"column 'lat' of national.csv holds values outside \[-90, 90\] on "
                                         r"line\(s\) 3") as err:
        read_sites(_spec(path), STUDY, "air")
    assert "swapped" not in str(err.value)


def test_gcj02_sites_are_converted_to_wgs84_within_a_few_metres(tmp_path):
    from tests.test_china_coordinates import _published_wgs_to_gcj

    truth = [(104.05, 30.05), (104.15, 30.02)]
    gcj = [_published_wgs_to_gcj(lon, lat) for lon, lat in truth]
    # the offset is some 300-600 m here: reading GCJ-02 as WGS84 would be that far off
    assert 200 < _metres(*truth[0], *gcj[0]) < 1000
    path = tmp_path / "amap.csv"
    path.write_text("station_id,lon,lat\n" + "".join(f"G{i},{a:.8f},{b:.8f}\n" for i, (a, b) in enumerate(gcj)),
                    encoding="utf-8")
    s = read_sites(_spec(path, crs="gcj02"), STUDY, "air")
    for (lon, lat), p in zip(truth, s.table.geometry):
        assert _metres(lon, lat, p.x, p.y) < 0.05   # 1e-8° written to the file: millimetres; a few metres allowed


def _metres(lon0, lat0, lon1, lat1):
    return math.hypot((lon1 - lon0) * 111_320 * math.cos(math.radians(lat0)), (lat1 - lat0) * 110_574)


def test_duplicate_station_id_is_refused_naming_file_column_and_lines(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text("station_id,lon,lat\nA1,104.05,30.05\nA2,104.06,30.05\nA1,104.07,30.05\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_sites(_spec(path), STUDY, "air")
    text = str(err.value)
    assert "sites.csv" in text and "'A1'" in text and "lines 2, 4" in text and "column 'station_id'" in text


def test_water_sections_without_coordinates_keep_their_county(tmp_path):
    path = _write_gbk(tmp_path / "sections.csv", "断面编码,断面名称,区县代码,河流,水体类型,lon,lat\n"
                                                 "W1,青龙河甲县断面,519901,青龙河,河流,104.05,30.05\n"
                                                 "W2,白马河乙县断面,519902,白马河,河流,,\n"
                                                 "W3,团结水库,519902,团结水库,水库,—,—\n"
                                                 "W4,无名断面,,无名河,河流,,\n")
    s = read_sites(_spec(path), STUDY, "surface_water")
    t = s.table.set_index("station_id")
    assert list(t.index) == ["W1", "W2", "W3"]
    assert t.loc["W1", "mapped"] and not t.loc["W2", "mapped"] and not t.loc["W3", "mapped"]
    assert t.loc["W2", "county_code"] == "519902" and t.loc["W2", "geometry"] is None
    assert list(t["water_body"]) == ["river", "river", "lake"] and t.loc["W2", "river"] == "白马河"
    # W4: neither coordinates nor county: left out, and said why
    assert list(s.rejected["station_id"]) == ["W4"] and s.rejected.iloc[0]["row"] == 5
    assert "cannot be placed" in s.rejected.iloc[0]["reason"]


def test_soil_land_use_and_ph_on_the_site_list(tmp_path):
    path = _write_gbk(tmp_path / "soil.csv", "点位编号,土地利用类型,pH,lon,lat\n"
                                             "S1,水田,6.8,104.05,30.05\nS2,旱地,7.9,104.15,30.05\n"
                                             "S3,林地,15,104.12,30.02\n")
    s = read_sites(_spec(path), STUDY, "soil")
    assert list(s.table["land_use"][:2]) == ["paddy", "other"] and pd.isna(s.table["land_use"].iloc[2])
    assert s.table["ph"].iloc[0] == 6.8 and pd.isna(s.table["ph"].iloc[2])
    assert set(s.rejected["column"]) == {"土地利用类型", "pH"} and set(s.rejected["left_out"]) == {"value"}


# -- observations ------------------------------------------------------------------------------------------------

def _air_sites(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text("station_id,lon,lat\nA1,104.05,30.05\nA2,104.15,30.05\nFAR,116.4,39.9\n", encoding="utf-8")
    return path


def test_unit_typo_is_refused_naming_file_and_column(tmp_path):
    sites = _air_sites(tmp_path)
    obs = tmp_path / "daily.csv"
    obs.write_text("station_id,date,pm25_mgm3,pm10_ugm3\nA1,2024-01-01,0.035,60\n", encoding="utf-8")
    s = read_sites(_spec(sites, obs), STUDY, "air")
    with pytest.raises(InputError) as err:
        read_observations(_spec(sites, obs), s, 2024)
    text = str(err.value)
    assert "daily.csv" in text and "column 'pm25_mgm3'" in text and "line 1" in text and "µg/m³" in text


def test_duplicates_dates_outside_the_year_and_unknown_stations_are_rejected_rows(tmp_path):
    sites = _air_sites(tmp_path)
    obs = tmp_path / "daily.csv"
    obs.write_text("station_id,date,pm25_ugm3\n"
                   "A1,2024-01-01,30\n"      # 2
                   "A1,2024-01-01,30\n"      # 3: same values as line 2: left out, line 2 kept
                   "A2,2024-01-01,40\n"      # 4
                   "A2,2024-01-01,44\n"      # 5: disagrees with line 4: both left out
                   "A1,2023-12-31,50\n"      # 6: not in 2024
                   "A1,2024-13-01,50\n"      # 7: not a date
                   "FAR,2024-01-01,20\n"     # 8: its site lies outside the study area
                   "ZZ,2024-01-01,20\n"      # 9: not in the site list
                   "A1,2024-01-02,-999\n",   # 10: a missing-value code: value left out, row kept
                   encoding="utf-8")
    s = read_sites(_spec(sites, obs), STUDY, "air")
    assert s.outside_count == 1
    o = read_observations(_spec(sites, obs), s, 2024)
    assert list(zip(o.table["station_id"], o.table["source_row"])) == [("A1", 2), ("A1", 10)]
    assert math.isnan(o.table["pm25_ugm3"].iloc[1])
    why = dict(zip(o.rejected["row"], o.rejected["reason"]))
    assert sorted(why) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "repeats line 2" in why[3] and "also on line(s) 5" in why[4] and "also on line(s) 4" in why[5]
    assert "not in 2024" in why[6] and "not a date" in why[7]
    assert "outside the study area" in why[8] and "not in the site list" in why[9]
    assert "plausible range" in why[10]
    assert (o.rejected.set_index("row").loc[10, "left_out"] == "value"
            and (o.rejected.set_index("row").drop(10)["left_out"] == "row").all())
