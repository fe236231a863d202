"""Stations joined to counties, zones and land cover (ecoassess.network.overlay): a given county code is checked
against the location, renamed units are matched through aliases, summaries count every county × type."""

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import xarray as xr
from shapely.geometry import Point, box

from ecoassess.errors import InputError
from ecoassess.network.overlay import county_summary, overlay_stations, zone_summary

pytest.importorskip("rioxarray")      # registers the .rio accessor the land-cover rasters use

UTM = "EPSG:32648"                       # UTM 48N: x 400 km ≈ 104°E, y 3320 km ≈ 30°N
X0, Y0 = 400_000.0, 3_320_000.0


def counties(codes=("520602", "520603"), names=("碧江区", "万山区")):
    """Two 10 km × 10 km counties side by side (west, east)."""
    geoms = [box(X0, Y0, X0 + 10_000, Y0 + 10_000), box(X0 + 10_000, Y0, X0 + 20_000, Y0 + 10_000)]
    return gpd.GeoDataFrame({"code": list(codes), "name": list(names)}, geometry=geoms, crs=UTM)


def sites(rows):
    """Registry-shaped sites from (station_id, station_type, county_code, x, y | None, extra dict)."""
    recs, geoms = [], []
    for sid, stype, code, x, y, *extra in rows:
        recs.append({"station_id": sid, "name": sid, "station_type": stype, "county_code": code,
                     "mapped": x is not None, **(extra[0] if extra else {})})
        geoms.append(Point(x, y) if x is not None else None)
    return gpd.GeoDataFrame(recs, geometry=geoms, crs=UTM).to_crs("EPSG:4326")


def land_cover(res=100.0):
    """Paddy (11) everywhere, urban (51) in the east half of the east county's centre; 0 = nodata at the NW corner."""
    xs = X0 + (np.arange(200) + 0.5) * res
    ys = Y0 + 10_000 - (np.arange(100) + 0.5) * res
    data = np.full((100, 200), 11, dtype="uint8")
    data[:, (xs > X0 + 15_000) & (xs < X0 + 17_000)] = 51
    data[:5, :5] = 0
    da = xr.DataArray(data, dims=("y", "x"), coords={"x": xs, "y": ys})
    return da.rio.write_crs(UTM).rio.write_nodata(0)


def test_disagreeing_code_is_reported_and_location_used(caplog):
    s = sites([("A1", "air", "520602", X0 + 5_000, Y0 + 5_000),       # agrees
               ("A2", "air", "520602", X0 + 15_000, Y0 + 5_000),      # given west, lies in the east county
               ("W1", "surface_water", "520603", None, None),         # no coordinates: keeps its given county
               ("W2", "surface_water", "520603", X0 + 30_000, Y0 + 5_000),   # outside the study area
               ("S1", "soil", None, X0 + 2_000, Y0 + 2_000)])          # no county given
    with caplog.at_level(logging.WARNING):
        out = overlay_stations(s, counties())
    o = out.set_index("station_id")
    assert list(out["station_id"]) == ["A1", "A2", "W1", "W2", "S1"]
    assert not o.loc["A1", "county_disagrees"] and o.loc["A1", "county_code"] == "520602"
    assert o.loc["A2", "county_disagrees"]
    assert o.loc["A2", "county_code"] == "520603" and o.loc["A2", "county_name"] == "万山区"
    assert o.loc["A2", "county_code_given"] == "520602" and o.loc["A2", "county_code_located"] == "520603"
    assert "520602" in o.loc["A2", "county_check"] and "520603" in o.loc["A2", "county_check"]
    assert "A2" in caplog.text and "another county" in caplog.text
    assert o.loc["W1", "county_code"] == "520603" and not o.loc["W1", "county_disagrees"]
    assert pd.isna(o.loc["W1", "county_code_located"])
    assert pd.isna(o.loc["W2", "county_code"]) and "outside every county" in o.loc["W2", "county_check"]
    assert o.loc["S1", "county_code"] == "520602" and not o.loc["S1", "county_disagrees"]


def test_abolished_code_matched_by_gbt2260_name_and_explicit_alias():
    # 522200 铜仁地区 was abolished (layers/gbt2260.csv: last listed 2010-12); the prefecture is now 520600 铜仁市
    cty = gpd.GeoDataFrame({"code": ["520600", "520500"], "name": ["铜仁市", "毕节市"]},
                           geometry=counties().geometry.values, crs=UTM)
    s = sites([("A1", "air", "522200", X0 + 5_000, Y0 + 5_000), ("W1", "surface_water", "522200", None, None)])
    o = overlay_stations(s, cty).set_index("station_id")
    assert o.loc["A1", "county_code"] == "520600" and not o.loc["A1", "county_disagrees"]
    assert "铜仁地区" in o.loc["A1", "county_given_as"] and "铜仁市" in o.loc["A1", "county_given_as"]
    assert o.loc["W1", "county_code"] == "520600"
    # a study area of one's own codes and a given name only: the name without its unit suffix still matches
    own = gpd.GeoDataFrame({"code": ["529901", "529902"], "name": ["铜仁市", "襄阳市"]},
                           geometry=counties().geometry.values, crs=UTM)
    s2 = sites([("W2", "surface_water", None, None, None, {"county_name": "铜仁地区"})])
    assert overlay_stations(s2, own).iloc[0]["county_code"] == "529901"
    # a rename that changed the name itself (襄樊市 → 襄阳市, 2010) needs the alias table
    s3 = sites([("W3", "surface_water", None, None, None, {"county_name": "襄樊市"})])
    got = overlay_stations(s3, own).iloc[0]
    assert pd.isna(got["county_code"]) and got["county_given_as"] == "襄樊市 is not a county of the study area"
    o3 = overlay_stations(s3, own, aliases={"襄樊市": "襄阳市"}).iloc[0]
    assert o3["county_code"] == "529902" and o3["county_given_as"] == "alias 襄樊市 → 襄阳市"


def test_zones_and_land_cover_at_each_site():
    red = gpd.GeoDataFrame({"unit_id": ["HX-1", "HX-2"], "name": ["甲红线", "乙红线"]},
                           geometry=[box(X0, Y0, X0 + 3_000, Y0 + 3_000), box(X0 + 1_000, Y0, X0 + 4_000, Y0 + 3_000)],
                           crs=UTM)
    fz = gpd.GeoDataFrame({"zone_id": ["FZ-1"], "function_type": ["水源涵养"]},
                          geometry=[box(X0, Y0, X0 + 20_000, Y0 + 10_000)], crs=UTM)
    s = sites([("S1", "soil", "520602", X0 + 2_050, Y0 + 2_050),     # in both red-line units: smallest id
               ("A1", "air", "520603", X0 + 16_050, Y0 + 5_050),     # urban cell
               ("A2", "air", "520602", X0 + 150, Y0 + 9_950),        # nodata corner
               ("W1", "surface_water", "520603", None, None)])
    o = overlay_stations(s, counties(), {"redline": red, "function_zones": (fz, "zone_id")}, land_cover(),
                         "cas_lucc").set_index("station_id")
    assert o.loc["S1", "redline_id"] == "HX-1" and o.loc["S1", "redline_name"] == "甲红线"
    assert pd.isna(o.loc["A1", "redline_id"]) and o.loc["A1", "function_zones_id"] == "FZ-1"
    assert o.loc["S1", "land_cover_code"] == 11 and o.loc["S1", "land_cover_name"] == "水田"
    assert o.loc["A1", "land_cover_code"] == 51 and o.loc["A1", "land_cover_name"] == "城镇用地"
    assert o.loc["A2", "land_cover_code"] is pd.NA and pd.isna(o.loc["A2", "land_cover_name"])
    assert pd.isna(o.loc["W1", "function_zones_id"]) and o.loc["W1", "land_cover_code"] is pd.NA


def test_county_summary_has_every_county_and_zone_summary_counts():
    s = sites([("A1", "air", "520602", X0 + 5_000, Y0 + 5_000), ("A2", "air", "520602", X0 + 15_000, Y0 + 5_000),
               ("W1", "surface_water", "520603", None, None),
               ("W2", "surface_water", "520603", X0 + 30_000, Y0 + 5_000)])
    fz = gpd.GeoDataFrame({"zone_id": ["FZ-1", "FZ-2"]}, geometry=[box(X0, Y0, X0 + 10_000, Y0 + 10_000),
                                                                    box(X0 + 10_000, Y0, X0 + 20_000, Y0 + 10_000)],
                          crs=UTM)
    o = overlay_stations(s, counties(), {"function_zones": fz})
    cs = county_summary(o, counties()).set_index(["county_code", "station_type"])
    assert cs.loc[("520602", "air"), ["n_sites", "n_mapped", "n_county_disagrees"]].tolist() == [1, 1, 0]
    assert cs.loc[("520603", "air"), ["n_sites", "n_mapped", "n_county_disagrees"]].tolist() == [1, 1, 1]
    assert cs.loc[("520602", "surface_water"), "n_sites"] == 0          # a county with none has its row
    assert cs.loc[("520603", "surface_water"), ["n_sites", "n_mapped"]].tolist() == [1, 0]
    assert cs.loc[("", "surface_water"), "n_sites"] == 1                 # the site outside every county
    zs = zone_summary(o, "function_zones", fz).set_index(["function_zones_id", "station_type"])["n_sites"]
    assert zs[("FZ-1", "air")] == 1 and zs[("FZ-2", "air")] == 1 and zs[("FZ-1", "surface_water")] == 0


def test_bad_inputs_name_file_and_field():
    s = sites([("A1", "air", "520602", X0 + 5_000, Y0 + 5_000)])
    with pytest.raises(InputError, match=r"lacks mapped"):
        overlay_stations(s.drop(columns="mapped"), counties())
    bad = counties(codes=("520602", "52060"))
    bad.attrs["path"] = "counties.shp"
    with pytest.raises(InputError, match=r"counties.shp \[code\].*feature 2 \('52060'\)"):
        overlay_stations(s, bad)
    with pytest.raises(InputError, match=r"\[county\].*no field 'county'"):
        overlay_stations(s, counties(), code_field="county")
    with pytest.raises(InputError, match="zone set 'redline': no id field"):
        overlay_stations(s, counties(), {"redline": counties()[["geometry"]]})
