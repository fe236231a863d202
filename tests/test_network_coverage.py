"""Coverage audit and proposed sites (ecoassess.network.coverage, .siting) on a small synthetic area built here:
two 10 km counties side by side (tests/test_network_overlay.py), a river flowing west → east through both."""

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from ecoassess.errors import InputError
from ecoassess.network.coverage import coverage_audit, hj664_min_points, representativeness, river_exits
from ecoassess.network.overlay import land_cover_at, overlay_stations
from ecoassess.network.siting import candidate_cells, propose_sites, write_proposals
from tests.test_network_overlay import UTM, X0, Y0, counties, land_cover, sites

pytest.importorskip("rioxarray")


@pytest.mark.parametrize("pop, area, expected, why", [
    (24.9, 19.9, 1, "both in the first bracket"),
    (25, 0, 2, "population 25 万 opens the 25–50 bracket (lower bound inclusive)"),
    (0, 20, 2, "area 20 km² opens the 20–50 bracket"),
    (49.99, 50, 4, "population says 2, area 50 says 4: the larger"),
    (100, 99.9, 6, "population 100 → 6 beats area 50–100 → 4"),
    (300, 100, 8, "300 万 is the last finite bracket (200–300), > 300 starts the open one"),
    (300.1, 100, 10, "> 300 万: max(10, ceil(100 / 60) = 2) = 10"),
    (10, 400, 8, "400 km² is still 200–400"),
    (10, 600, 10, "ceil(600 / 60) = 10"),
    (10, 661, 12, "ceil(661 / 60) = ceil(11.02) = 12"),
    (None, 30, 2, "area only"),
    (float("nan"), None, None, "neither known"),
])
def test_hj664_minimum_city_points_larger_of_two_criteria(pop, area, expected, why):
    assert hj664_min_points(pop, area) == expected, why


def test_hj664_strict_reading_of_50_km2_per_point():
    from ecoassess.network.coverage import load_rules

    strict = {**load_rules()["hj664"], "km2_per_point": 50}
    assert hj664_min_points(350, 661, strict) == 14          # ceil(661 / 50) = ceil(13.22)
    with pytest.raises(InputError, match="negative"):
        hj664_min_points(-1, 10)


def air_sites():
    """West county: 3 air sites (1 automatic 城市点, 1 not automatic, 1 without the field → counts); east: none."""
    return sites([("A1", "air", "520602", X0 + 3_000, Y0 + 5_000, {"automatic": "是", "station_class": "城市点"}),
                  ("A2", "air", "520602", X0 + 6_000, Y0 + 5_000, {"automatic": "否", "station_class": "城市点"}),
                  ("A3", "air", "520602", X0 + 8_000, Y0 + 8_000, {"automatic": None, "station_class": "背景点"}),
                  ("S1", "soil", "520602", X0 + 2_000, Y0 + 2_000),
                  ("W1", "surface_water", "520602", X0 + 9_500, Y0 + 5_100)])


def rivers():
    return gpd.GeoDataFrame({"name": ["清溪河", "小沟", "长滩河"], "order": [4, 1, 1],
                             "upstream_area_km2": [80.0, 5.0, 150.0]},
                            geometry=[LineString([(X0 + 1_000, Y0 + 5_000), (X0 + 25_000, Y0 + 5_000)]),
                                      LineString([(X0 + 9_000, Y0 + 1_000), (X0 + 11_000, Y0 + 1_000)]),
                                      # upstream area 150 km² makes it major; flows east → west out of the east county
                                      LineString([(X0 + 12_000, Y0 + 9_000), (X0 + 8_000, Y0 + 9_000)])],
                            crs=UTM)


def test_audit_shortfalls_per_county_and_rule():
    ov = overlay_stations(air_sites(), counties())
    built = pd.DataFrame({"county_code": ["520602", "520603"], "built_up_population_10k": ["30", ""],
                          "built_up_area_km2": [12.0, 55.0]})
    t = coverage_audit(ov, counties(), built_up=built, rivers=rivers()).table.set_index(["rule_id", "county_code"])
    # 2 automatic stations per county seat: A1 (是) and A3 (no value) count, A2 (否) does not
    assert t.loc[("county_seat_air_2", "520602"), ["required", "present", "shortfall"]].tolist() == [2, 2, 0]
    assert t.loc[("county_seat_air_2", "520603"), ["required", "present", "shortfall"]].tolist() == [2, 0, 2]
    # HJ 664: west 30 万 → 2, 12 km² → 1: 2 required; 城市点 A1, A2 count, 背景点 A3 does not
    assert t.loc[("hj664_city_air", "520602"), ["required", "present", "shortfall"]].tolist() == [2, 2, 0]
    # east: population empty, 55 km² → 4 required, none present
    assert t.loc[("hj664_city_air", "520603"), ["required", "present", "shortfall"]].tolist() == [4, 0, 4]
    assert t.loc[("soil_every_county", "520603"), ["required", "present", "shortfall"]].tolist() == [1, 0, 1]
    assert t.loc[("soil_every_county", "520602"), "shortfall"] == 0
    # exits: 清溪河 leaves west at x = 10 km (W1 500 m away serves it) and east at 20 km (none);
    # 长滩河 leaves east at x = 10 km going west (none); 小沟 (order 1, 5 km²) is not a major river
    assert t.loc[("river_exit_section", "520602"), ["required", "present", "shortfall"]].tolist() == [1, 1, 0]
    assert t.loc[("river_exit_section", "520603"), ["required", "present", "shortfall"]].tolist() == [2, 0, 2]
    assert "清溪河" in t.loc[("river_exit_section", "520603"), "note"]
    assert t["source"].notna().all() and set(t["confidence"]) <= {"A", "B", "C"}


def test_river_exit_points_are_where_the_river_leaves():
    ov = overlay_stations(air_sites(), counties())
    ex = river_exits(rivers(), counties(), ov).to_crs(UTM)
    # computed on China Albers: the UTM lines and boxes are straight there between their reprojected vertices,
    # which moves the crossings by < 1 m
    got = {(r.county_code, r.river): (r.geometry.x, r.geometry.y, r.served, r.sections) for r in ex.itertuples()}
    want = {("520602", "清溪河"): (X0 + 10_000, Y0 + 5_000, True, "W1"),
            ("520603", "清溪河"): (X0 + 20_000, Y0 + 5_000, False, ""),
            ("520603", "长滩河"): (X0 + 10_000, Y0 + 9_000, False, "")}
    assert got.keys() == want.keys()
    for key, (x, y, served, sections) in want.items():
        assert got[key][0] == pytest.approx(x, abs=1.0) and got[key][1] == pytest.approx(y, abs=1.0), key
        assert got[key][2:] == (served, sections), key
    # where a new section would go: 250 m upstream of the exit, inside the county. Measured on China Albers,
    # whose scale along this parallel (~30°N, between the standard parallels 25° and 47°) is ~1 % short of UTM's
    east = ex[(ex.county_code == "520603") & (ex.river == "清溪河")].iloc[0]
    p = gpd.GeoSeries([Point(east.site_lon, east.site_lat)], crs="EPSG:4326").to_crs(UTM).iloc[0]
    assert p.x == pytest.approx(X0 + 19_750, abs=0.02 * 250) and p.y == pytest.approx(Y0 + 5_000, abs=1.0)
    with pytest.raises(InputError, match="no stream order or upstream area field"):
        river_exits(rivers()[["name", "geometry"]], counties())


def test_river_along_the_boundary_is_one_exit():
    # leaves the west county at x = 10 km, runs 300 m in the east county, comes back, leaves again 600 m on
    line = LineString([(X0 + 5_000, Y0 + 5_000), (X0 + 10_300, Y0 + 5_000), (X0 + 10_300, Y0 + 5_300),
                       (X0 + 9_900, Y0 + 5_300), (X0 + 9_900, Y0 + 5_600), (X0 + 15_000, Y0 + 5_600)])
    riv = gpd.GeoDataFrame({"name": ["曲河"], "order": [3]}, geometry=[line], crs=UTM)
    ex = river_exits(riv, counties()).to_crs(UTM)
    west = ex[ex.county_code == "520602"]
    assert len(west) == 1 and west.geometry.iloc[0].y == pytest.approx(Y0 + 5_600, abs=1.0)   # the downstream one
    assert (ex.county_code == "520603").sum() == 1          # the east county's brief exit at x = 10 km, y 5.0–5.3


def test_bad_built_up_table_names_row_and_field():
    ov = overlay_stations(air_sites(), counties())
    bad = pd.DataFrame({"county_code": ["520602"], "built_up_population_10k": ["12.5万"], "built_up_area_km2": [3]})
    bad.attrs["path"] = "built_up.csv"
    with pytest.raises(InputError, match=r"built_up.csv \[built_up_population_10k\]: row 2: '12.5万'"):
        coverage_audit(ov, counties(), built_up=bad)


def test_zero_air_county_gets_first_proposals_on_built_up_cells():
    ov = overlay_stations(air_sites(), counties())
    lc = land_cover()
    audit = coverage_audit(ov, counties())
    p = propose_sites("air", 3, counties(), ov, lc, audit=audit, legend="cas_lucc")
    assert list(p["proposal_id"]) == ["P-air-01", "P-air-02", "P-air-03"]
    # the east county has 0 of 2: both of its points come first, on urban (51) cells, ≥ 1 km apart
    assert list(p["county_code"][:2]) == ["520603", "520603"]
    assert list(p["rule_id"][:2]) == ["county_seat_air_2"] * 2
    assert p["reason"].iloc[0].startswith("万山区: 0 of 2") and p["reason"].iloc[1].startswith("万山区: 1 of 2")
    codes, _ = land_cover_at(p.geometry, lc, "cas_lucc")
    assert list(codes) == [51, 51, 51]
    utm = p.to_crs(UTM)
    assert utm.geometry.iloc[0].distance(utm.geometry.iloc[1]) >= 1_000
    # the urban strip is x 15–17 km: 2 km × 10 km; a 2 km disc on it covers at most 2 km × 4 km = 8 km²
    assert 0 < p["gain_km2"].iloc[0] <= 8.0
    # the third: no shortfall left (the west county has its 2), maximal coverage, no rule
    assert pd.isna(p["rule_id"].iloc[2]) and "not yet within 2000 m" in p["reason"].iloc[2]
    # deterministic
    again = propose_sites("air", 3, counties(), ov, lc, audit=audit)
    assert again.drop(columns="geometry").equals(p.drop(columns="geometry"))


def test_surface_water_proposals_go_to_unserved_exits_then_soil_to_cropland():
    ov = overlay_stations(air_sites(), counties())
    audit = coverage_audit(ov, counties(), rivers=rivers())
    p = propose_sites("surface_water", 5, counties(), ov, land_cover(), audit=audit)
    assert len(p) == 2 and set(p["rule_id"]) == {"river_exit_section"}        # only river exits qualify: no
    assert set(p["county_code"]) == {"520603"}                                 # river class in this land cover
    soil = propose_sites("soil", 2, counties(), ov, land_cover(), audit=audit)
    # the east county has no soil point (shortfall 1): its point comes first, on paddy within reach of the
    # urban strip (x 15–17 km; near_m 1500 m, measured between 300 m siting cells: ≤ 1500 + 300 m)
    first = soil.iloc[0]
    assert first["county_code"] == "520603" and first["rule_id"] == "soil_every_county"
    assert list(land_cover_at(soil.geometry, land_cover(), "cas_lucc")[0]) == [11, 11]
    x = soil.to_crs(UTM).geometry.x.iloc[0] - X0
    assert 15_000 - 1_800 <= x <= 17_000 + 1_800
    # no settlement, no road: no cell is reachable, the shortfall is left open rather than met on unreachable land
    remote = land_cover().where(land_cover() != 51, 21).rio.write_crs(UTM).rio.write_nodata(0)
    cells = candidate_cells("soil", remote, "cas_lucc", counties())
    assert not cells["eligible"].any() and (cells["share"] > 0.99).sum() > 0
    assert len(propose_sites("soil", 1, counties(), ov, remote, audit=audit)) == 0


def test_representativeness_shares_by_hand():
    # a site on the corner between cells at x = 15 km: urban strip x 15–17 km east of it, paddy west of it
    s = sites([("A9", "air", "520603", X0 + 15_000, Y0 + 5_000)])
    red = gpd.GeoDataFrame({"unit_id": ["HX-1"]}, geometry=[box(X0 + 15_000, Y0, X0 + 20_000, Y0 + 10_000)],
                           crs=UTM)
    ov = overlay_stations(s, counties())
    rep = representativeness(ov, land_cover=land_cover(), legend="cas_lucc", zone_sets={"redline": red},
                             radius_m={"air": 1_000.0})
    lcs = rep[rep.layer == "land_cover"].set_index("class")["share"]
    # the cells whose centres lie within 1 km are mirror images across x = 15 km: half urban, half paddy
    assert lcs["51"] == pytest.approx(0.5, abs=1e-12) and lcs["11"] == pytest.approx(0.5, abs=1e-12)
    red_share = rep[rep.layer == "redline"].set_index("class")["share"]
    assert red_share["HX-1"] == pytest.approx(0.5, abs=0.01) and red_share["none"] == pytest.approx(0.5, abs=0.01)
    assert set(rep["radius_m"]) == {1_000.0}


def test_proposals_written_as_a_geopackage_layer_beside_others(tmp_path):
    ov = overlay_stations(air_sites(), counties())
    p = propose_sites("air", 2, counties(), ov, land_cover())
    path = tmp_path / "network.gpkg"
    counties().to_file(path, layer="counties", driver="GPKG")
    write_proposals(p, path)
    import pyogrio

    assert sorted(n for n, _ in pyogrio.list_layers(path)) == ["counties", "proposed_sites"]
    back = gpd.read_file(path, layer="proposed_sites")
    assert list(back["proposal_id"]) == list(p["proposal_id"])
    assert np.allclose(back["lon"], p["lon"]) and back.crs.to_epsg() == 4326
    assert not list(tmp_path.glob(".network-*"))                                # no temporary left behind
    assert math.isfinite(back["gain_km2"].iloc[0])
