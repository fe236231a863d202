"""Chinese coordinates as offices get them (#18 items 10, 12, 13): GCJ-02/BD-09 web-map layers, old datums,
broken .prj files. Each case is built here; before the fix each passed without a word."""

from __future__ import annotations

import logging
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
import yaml

from ecoassess import china
from ecoassess.config import load_config
from ecoassess.errors import ConfigError
from ecoassess.pipeline import read_study_area, read_zone_sets
from ecoassess.validate import validate_config

# -- the published forward formula, written out once more (scalar, math only) as the test's reference ---------

_A, _EE = 6378245.0, 0.00669342162296594323


def _published_wgs_to_gcj(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    pi = math.pi
    ret_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
               + (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
               + (20.0 * math.sin(y * pi) + 40.0 * math.sin(y / 3.0 * pi)) * 2.0 / 3.0
               + (160.0 * math.sin(y / 12.0 * pi) + 320 * math.sin(y * pi / 30.0)) * 2.0 / 3.0)
    ret_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
               + (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
               + (20.0 * math.sin(x * pi) + 40.0 * math.sin(x / 3.0 * pi)) * 2.0 / 3.0
               + (150.0 * math.sin(x / 12.0 * pi) + 300.0 * math.sin(x / 30.0 * pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sq = math.sqrt(magic)
    d_lat = (ret_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sq) * pi)
    d_lon = (ret_lon * 180.0) / (_A / sq * math.cos(rad) * pi)
    return lon + d_lon, lat + d_lat


def _published_gcj_to_bd(lon: float, lat: float) -> tuple[float, float]:
    x_pi = math.pi * 3000.0 / 180.0
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * x_pi)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * x_pi)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _metres(lon0, lat0, lon1, lat1):
    return np.hypot((np.asarray(lon1) - lon0) * 111_320 * np.cos(np.radians(lat0)),
                    (np.asarray(lat1) - lat0) * 110_574)


def test_inverse_recovers_wgs84_to_a_millimetre_and_naive_is_metres_off():
    rng = np.random.default_rng(18)
    lon, lat = rng.uniform(75, 134, 500), rng.uniform(19, 52, 500)
    gcj = np.array([_published_wgs_to_gcj(a, b) for a, b in zip(lon, lat)])
    assert np.allclose(np.column_stack(china.wgs84_to_gcj02(lon, lat)), gcj, atol=1e-12, rtol=0)
    back = china.gcj02_to_wgs84(gcj[:, 0], gcj[:, 1])
    assert _metres(lon, lat, *back).max() < 1e-3
    naive = 2 * gcj - np.column_stack(china.wgs84_to_gcj02(gcj[:, 0], gcj[:, 1]))
    assert _metres(lon, lat, naive[:, 0], naive[:, 1]).max() > 0.5  # why the inverse is iterated
    bd = np.array([_published_gcj_to_bd(a, b) for a, b in gcj])
    back = china.bd09_to_wgs84(bd[:, 0], bd[:, 1])
    assert _metres(lon, lat, *back).max() < 1e-3
    # outside China's box both systems are WGS84
    assert china.gcj02_to_wgs84(np.array([2.35]), np.array([48.85]))[0][0] == 2.35


# -- a study area and a zone layer -------------------------------------------------------------------------------

COUNTIES = [("520602", "碧江区", shapely.box(109.10, 27.60, 109.30, 27.80)),
            ("520603", "万山区", shapely.box(109.30, 27.60, 109.50, 27.80))]


def _write(tmp_path, name, gdf, driver="GPKG"):
    path = tmp_path / name
    gdf.to_file(path, driver=driver)
    return path


def _config(tmp_path, study, *, zones=None, stations=None, study_extra=None):
    raw = {"year": 2024, "study_area": {"path": str(study), "id_field": "code", "name_field": "name",
                                        **(study_extra or {})}}
    if zones:
        raw["zones"] = zones
    if stations:
        raw["stations"] = stations
    path = tmp_path / "assessment.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _study(tmp_path, crs="EPSG:4326"):
    gdf = gpd.GeoDataFrame({"code": [c for c, _, _ in COUNTIES], "name": [n for _, n, _ in COUNTIES]},
                           geometry=[g for _, _, g in COUNTIES], crs="EPSG:4326").to_crs(crs)
    return _write(tmp_path, "counties.gpkg", gdf)


def _as_gcj(gdf, kind="gcj02"):
    def fwd(xy):
        pts = [_published_wgs_to_gcj(a, b) for a, b in xy]
        if kind == "bd09":
            pts = [_published_gcj_to_bd(a, b) for a, b in pts]
        return np.array(pts)
    return gdf.set_geometry(shapely.transform(gdf.geometry.values, fwd), crs="EPSG:4326")


@pytest.mark.parametrize("kind", ["gcj02", "bd09"])
def test_declared_web_map_zones_land_within_a_metre_of_their_wgs84_original(tmp_path, kind):
    study = _study(tmp_path)
    original = gpd.read_file(study).assign(zone_id=["a", "b"])
    densified = original.set_geometry(original.geometry.segmentize(0.01))
    zones = _write(tmp_path, f"zones_{kind}.gpkg", _as_gcj(densified, kind))
    cfg_path = _config(tmp_path, study, zones={"function_zones": {"path": str(zones), "id_field": "zone_id",
                                                                   "crs": kind}})
    config = validate_config(cfg_path)
    from ecoassess.pipeline import build_grid

    sa = read_study_area(config)
    grid = build_grid(config, sa)
    got = read_zone_sets(config, sa, grid)["function_zones"].gdf.to_crs("EPSG:4326")
    a = shapely.get_coordinates(got.geometry.values)
    b = shapely.get_coordinates(densified.geometry.values)
    assert len(a) == len(b)
    assert _metres(b[:, 0], b[:, 1], a[:, 0], a[:, 1]).max() < 1.0  # before the fix: 300-700 m off


def test_undeclared_gcj_zones_are_warned_about(tmp_path, caplog):
    study = _study(tmp_path)
    original = gpd.read_file(study).assign(zone_id=["a", "b"])
    zones = _write(tmp_path, "zones.gpkg", _as_gcj(original.set_geometry(original.geometry.segmentize(0.01))))
    cfg = _config(tmp_path, study, zones={"function_zones": {"path": str(zones), "id_field": "zone_id"}})
    with caplog.at_level(logging.WARNING):
        config = validate_config(cfg)
    msgs = [w for w in config._input_warnings if w.startswith("zones.function_zones")]
    assert msgs and "zones.gpkg" in msgs[0] and "crs: gcj02" in msgs[0], config._input_warnings
    assert any("zones.function_zones" in r.getMessage() for r in caplog.records)


def test_wgs84_zones_are_not_flagged_as_gcj(tmp_path):
    study = _study(tmp_path)
    zones = _write(tmp_path, "zones.gpkg", gpd.read_file(study).assign(zone_id=["a", "b"]))
    config = validate_config(_config(tmp_path, study, zones={"fz": {"path": str(zones), "id_field": "zone_id"}}))
    assert not [w for w in config._input_warnings if w.startswith("zones.fz")]


def test_gcj_station_table_is_converted_before_checking(tmp_path):
    study = _study(tmp_path)
    lon, lat = _published_wgs_to_gcj(109.2, 27.7)
    sites = tmp_path / "sites.csv"
    sites.write_text(f"station_id,lon,lat\nA,{lon},{lat}\n", encoding="utf-8")
    config = validate_config(_config(tmp_path, study, stations={"air": {"sites": str(sites), "crs": "gcj02"}}))
    assert config.stations["air"].crs == "gcj02"
    with pytest.raises(ConfigError, match="not a CRS PROJ understands"):
        validate_config(_config(tmp_path, study, stations={"air": {"sites": str(sites), "crs": "gcj-99"}}))


# -- old datums ---------------------------------------------------------------------------------------------------

def test_beijing_1954_layer_is_warned_and_a_configured_transformation_is_applied(tmp_path):
    study = _study(tmp_path, crs="EPSG:2435")  # Beijing 1954 / 3-degree Gauss-Kruger CM 114E... placed by PROJ
    config = validate_config(_config(tmp_path, study))
    warned = [w for w in config._input_warnings if "Beijing 1954" in w]
    assert warned and "study_area" in warned[0] and "counties.gpkg" in warned[0] and "transformation" in warned[0]
    # 7 parameters (an illustrative shift of the size of the Beijing 1954 offsets, not a published set)
    params = [15.8, -154.4, -82.3, 0.0, 0.0, 0.0, 0.0]
    config = validate_config(_config(tmp_path, study, study_extra={"transformation": params}))
    assert not [w for w in config._input_warnings if "Beijing 1954" in w]
    moved = read_study_area(config).to_crs("EPSG:4490")
    plain = gpd.read_file(study).to_crs("EPSG:4490")  # PROJ's zero ballpark shift to CGCS2000
    shift = _metres(*shapely.get_coordinates(plain.geometry.values).T, *shapely.get_coordinates(moved.geometry.values).T)
    assert 20 < shift.min() and shift.max() < 176  # horizontal part of |(15.8, -154.4, -82.3)| ≈ 175 m
    # a PROJ pipeline
    pipeline = ("+proj=pipeline +step +inv +proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=500000 +y_0=0 +ellps=krass "
                "+step +proj=cart +ellps=krass +step +proj=helmert +x=15.8 +y=-154.4 +z=-82.3 "
                "+step +inv +proj=cart +ellps=GRS80 +step +proj=unitconvert +xy_in=rad +xy_out=deg")
    config = validate_config(_config(tmp_path, study, study_extra={"transformation": pipeline}))
    via_pipeline = read_study_area(config).to_crs("EPSG:4490")
    d = _metres(*shapely.get_coordinates(moved.geometry.values).T,
                *shapely.get_coordinates(via_pipeline.geometry.values).T)
    assert d.max() < 1.0


def test_a_transformation_string_must_be_a_pipeline(tmp_path):
    study = _study(tmp_path)
    with pytest.raises(ConfigError, match="PROJ pipeline"):
        load_config(_config(tmp_path, study, study_extra={"transformation": "EPSG:1234"}))


# -- broken .prj ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["trailing", "no_parameters"])
def test_a_damaged_prj_is_named(tmp_path, damage):
    gdf = gpd.GeoDataFrame({"code": ["520602"], "name": ["碧江区"]}, geometry=[COUNTIES[0][2]], crs="EPSG:4490")
    shp = _write(tmp_path, "counties.shp", gdf, driver="ESRI Shapefile")
    prj = shp.with_suffix(".prj")
    if damage == "trailing":
        prj.write_text(prj.read_text() + "]]x0;garbage", encoding="utf-8")
    else:
        prj.write_text('PROJCS["CGCS2000_3_Degree_GK_CM_108E",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",'
                       'DATUM["D_China_2000",SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
                       'UNIT["Degree",0.0174532925199433]],PROJECTION["Gauss_Kruger"],UNIT["Meter",1.0]]',
                       encoding="utf-8")
    try:
        config = validate_config(_config(tmp_path, shp))
        messages = config._input_warnings
    except ConfigError as exc:  # a layer the damage leaves unplaceable may also fail a check: it must name the .prj
        messages = exc.problems
    assert any("counties.prj" in m for m in messages), messages
