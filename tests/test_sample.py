"""The bundled synthetic sample area: determinism, geometry and physical plausibility, checked from the files."""

from __future__ import annotations

import hashlib
import json
import os
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import yaml
from rasterio.warp import Resampling, reproject

from ecoassess.grid import china_albers_crs
from ecoassess.sample import DESIGNED_OUTSIDE, write_sample

ALBERS = china_albers_crs().to_wkt()
SEED = int(os.environ.get("ECOASSESS_SAMPLE_SEED", "7"))   # other seeds can be checked by hand


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    cfg_path = write_sample(out, seed=SEED)
    return out, yaml.safe_load(cfg_path.read_text(encoding="utf-8"))


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(path, **kw):
    with rasterio.open(path) as src:
        return src.read(1, **kw), src.profile


def _on_grid(src_path, ref_profile, resampling=Resampling.nearest, dtype="float32"):
    """Read ``src_path`` onto the grid of ``ref_profile``."""
    with rasterio.open(src_path) as src:
        dst = np.zeros((ref_profile["height"], ref_profile["width"]), dtype=dtype)
        reproject(rasterio.band(src, 1), dst, dst_transform=ref_profile["transform"], dst_crs=ref_profile["crs"],
                  resampling=resampling)
    return dst


def test_same_seed_gives_identical_files(sample, tmp_path):
    out, cfg = sample
    again = tmp_path / "again"
    write_sample(again, seed=SEED, _imagery="first")
    first_scene = cfg["imagery"]["2024"][0]["path"]
    for rel in ["terrain/dem.tif", "landcover/lucc_2024.tif", f"{first_scene}/B08.tif", f"{first_scene}/SCL.tif", "tables/county_statistics.csv", "stations/air_daily.csv",
                "vectors/counties.gpkg", "truth/planted_changes.gpkg"]:
        assert _sha(out / rel) == _sha(again / rel), rel


def test_config_paths_exist_and_schema(sample):
    out, cfg = sample
    assert cfg["year"] == 2024 and cfg["baseline_year"] == 2023
    assert set(cfg["imagery"]) == {"2024", "2023"}
    for year, scenes in cfg["imagery"].items():
        assert len(scenes) == 3
        for s in scenes:
            assert s["kind"] == "sentinel2_l2a" and (out / s["path"]).is_dir()
    for t in cfg["thermal"].values():
        assert (out / t["path"]).is_dir()
    paths = [cfg["study_area"]["path"], cfg["dem"]["path"], cfg["rivers"]["path"], cfg["statistics"]["path"],
             cfg["constraint_events"]["path"], cfg["change_truth"]["path"]]
    paths += [v["path"] for v in cfg["land_cover"].values()] + [v["path"] for v in cfg["zones"].values()]
    for st in cfg["stations"].values():
        paths += [st["sites"], st["observations"]]
    for p in paths:
        assert (out / p).is_file(), p
    assert set(cfg["stations"]) == {"air", "surface_water", "drinking_water", "soil", "noise", "ecology_plots"}


def test_counties_tile_the_study_area(sample):
    out, _ = sample
    cty = gpd.read_file(out / "vectors" / "counties.gpkg")
    assert cty.crs.to_epsg() == 4490
    assert 3 <= len(cty) <= 5
    assert all(re.fullmatch(r"5199\d\d", c) for c in cty["code"])
    assert cty["name"].str.endswith("县").all()
    a = cty.to_crs(ALBERS)
    union = shapely.union_all(a.geometry.values)
    assert union.area == pytest.approx(a.area.sum(), rel=1e-6)            # no overlaps
    assert union.geom_type == "Polygon" and len(union.interiors) == 0      # no gaps
    side_km = (union.bounds[2] - union.bounds[0]) / 1000
    assert 18 < side_km < 27
    assert a.area.min() / a.area.max() > 0.3
    # irregular, not boxes: each boundary has many vertices and is far from its bounding rectangle
    for g in a.geometry:
        assert shapely.get_num_coordinates(g) > 100
        assert g.area / g.envelope.area < 0.9


def test_landcover_follows_terrain_and_rivers(sample):
    out, _ = sample
    lc, prof = _read(out / "landcover" / "lucc_2023.tif")
    assert prof["dtype"] == "uint8" and prof["nodata"] == 0
    dem = _on_grid(out / "terrain" / "dem.tif", prof, Resampling.bilinear)
    valid = (lc > 0) & (dem > 0)
    assert 240 < dem[valid].min() < 320 and 650 < dem[valid].max() < 900
    gy, gx = np.gradient(np.where(valid, dem, np.nan), 30.0)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    mean = lambda m: float(np.nanmean(slope[m & valid]))  # noqa: E731
    assert mean(lc == 21) > 2 * mean(lc == 11)
    assert mean(lc == 66) > mean(lc == 21)
    codes = set(np.unique(lc[valid]).tolist())
    assert {11, 12, 21, 22, 24, 41, 43, 51, 52, 53, 66} <= codes
    # urban land lies closer to the rivers than forest does
    rivers = gpd.read_file(out / "vectors" / "rivers.gpkg").to_crs(prof["crs"].to_wkt())
    big = rivers[rivers["upstream_area_km2"] >= 8]
    from rasterio import features
    from scipy import ndimage
    burn = features.rasterize([(g, 1) for g in big.geometry], out_shape=lc.shape, transform=prof["transform"])
    dist = ndimage.distance_transform_edt(burn == 0) * 30.0
    assert dist[lc == 51].mean() < 0.7 * dist[lc == 21].mean()


def test_rivers_drain_downhill(sample):
    out, _ = sample
    riv = gpd.read_file(out / "vectors" / "rivers.gpkg")
    assert {"river_id", "name", "order"} <= set(riv.columns)
    assert riv["river_id"].is_unique and riv["order"].max() >= 3
    with rasterio.open(out / "terrain" / "dem.tif") as dem:
        utm = riv.to_crs(dem.crs.to_wkt())
        heads = [next(dem.sample([g.coords[0]]))[0] for g in utm.geometry]
        ends = [next(dem.sample([g.coords[-1]]))[0] for g in utm.geometry]
    assert np.mean(np.array(heads) > np.array(ends)) > 0.95


def test_planted_changes_are_in_the_land_cover(sample):
    out, _ = sample
    truth = gpd.read_file(out / "truth" / "planted_changes.gpkg")
    assert set(truth["change_type"]) == {"town_growth", "quarry", "road", "reforestation", "grassland_to_cropland",
                                         "quarry_straddling", "small_quarry", "tiny_quarry"}
    a, prof = _read(out / "landcover" / "lucc_2023.tif")
    b, _ = _read(out / "landcover" / "lucc_2024.tif")
    from rasterio import features
    t = truth.to_crs(prof["crs"].to_wkt())
    inside = features.rasterize([(g, i + 1) for i, g in enumerate(t.geometry)], out_shape=a.shape,
                                transform=prof["transform"])
    for i, row in enumerate(t.itertuples(), start=1):
        m = inside == i
        assert m.sum() > 0
        changed = (a[m] != b[m]).mean()
        assert changed > 0.6, row.change_type
        assert (b[m] == row.to_class).mean() > 0.6
        share = np.bincount(a[m], minlength=256) / m.sum()
        assert share[row.from_class] >= 0.8 * share.max()
    assert (a[inside == 0] != b[inside == 0]).mean() < 0.002                # nothing else changes
    assert truth["area_m2"].between(1_500, 2_000_000).all()
    # the hard cases of the red-line stage: 12 and 6 cells either side of its 9-cell (8100 m²) default MMU
    small = truth.set_index("change_type")["area_m2"]
    assert 9_000 < small["small_quarry"] < 12_000 and 4_500 < small["tiny_quarry"] < 6_500


def test_redline_and_changes(sample):
    out, _ = sample
    red = gpd.read_file(out / "vectors" / "redline.gpkg").to_crs(ALBERS)
    truth = gpd.read_file(out / "truth" / "planted_changes.gpkg").to_crs(ALBERS)
    assert red["unit_id"].str.fullmatch(r"HX-5199-\d{3}").all()
    assert set(red["type"]) <= {"水源涵养", "生物多样性维护", "水土保持", "防风固沙"}
    # the area attribute is the true (ellipsoidal) area, as the tables compute it — not UTM's scaled one
    from pyproj import Geod

    geodesic_km2 = gpd.read_file(out / "vectors" / "redline.gpkg").geometry.apply(
        lambda g: abs(Geod(ellps="GRS80").geometry_area_perimeter(g)[0]) / 1e6)
    np.testing.assert_allclose(red["area_km2"], geodesic_km2, rtol=2e-4, atol=1e-4)
    union = shapely.union_all(red.geometry.values)
    hits = truth.geometry.intersection(union).area / truth.area
    activity = truth["change_type"].isin(["quarry", "road"])
    assert (hits[activity] > 0.3).any()                  # some quarry/road inside a unit
    assert (hits[truth["change_type"] == "quarry"] < 0.01).any()    # a quarry just outside
    assert (hits < 0.01).sum() >= 3
    outside_q = truth[(truth["change_type"] == "quarry") & (hits < 0.01)]
    assert (outside_q.distance(union) < 600).all()       # "just outside"
    fz = gpd.read_file(out / "vectors" / "function_zones.gpkg").to_crs(ALBERS)
    cty = gpd.read_file(out / "vectors" / "counties.gpkg").to_crs(ALBERS)
    assert set(fz["function_type"]) <= {"水源涵养", "生物多样性维护", "防风固沙", "水土保持"}
    assert shapely.union_all(fz.geometry.values).area == pytest.approx(shapely.union_all(cty.geometry.values).area,
                                                                       rel=0.01)


def test_sentinel2_scenes_decode_to_plausible_reflectance(sample):
    out, cfg = sample
    lc, lprof = _read(out / "landcover" / "lucc_2024.tif")
    july = next(s["path"] for s in cfg["imagery"]["2024"] if "0716" in s["path"])
    folder = out / july
    item = json.loads((folder / f"{folder.name}.json").read_text(encoding="utf-8"))
    assert item["properties"]["s2:processing_baseline"] == "05.10" and item["properties"]["proj:epsg"] == 32648
    assert item["assets"]["red"]["href"] == "./B04.tif"
    rb = item["assets"]["red"]["raster:bands"][0]
    assert (rb["scale"], rb["offset"], rb["nodata"]) == (0.0001, -0.1, 0)
    with rasterio.open(folder / "B04.tif") as src:
        assert src.profile["blockxsize"] == 512 and src.dtypes[0] == "uint16" and src.nodata == 0
        assert src.profile["compress"].lower() == "deflate" and src.profile["tiled"]
    refl = {}
    for band in ("B04", "B08", "B03", "B11"):
        dn = _on_grid(folder / f"{band}.tif", lprof, Resampling.average)
        refl[band] = np.where(dn > 0, dn * rb["scale"] + rb["offset"], np.nan)
    scl = _on_grid(folder / "SCL.tif", lprof, Resampling.nearest)
    clear = np.isin(scl, (4, 5, 6))
    from scipy import ndimage
    forest, water = clear & (lc == 21), clear & ndimage.binary_erosion(lc == 43)
    red, nir = refl["B04"], refl["B08"]
    assert np.nanmedian(nir[forest]) > 3 * np.nanmedian(red[forest])
    assert 0.2 < np.nanmedian(nir[forest]) < 0.45 and np.nanmedian(red[forest]) < 0.06
    assert np.nanmedian(nir[water]) < 0.08 and np.nanmedian(refl["B03"][water]) > np.nanmedian(nir[water])
    urban = clear & (lc == 51)
    assert np.nanmedian(refl["B11"][urban]) > np.nanmedian(nir[urban])
    cloud = np.isin(scl, (8, 9))
    assert cloud.mean() > 0.01
    assert np.nanmedian(refl["B03"][scl == 9]) > 0.3 > np.nanmedian(refl["B03"][clear])
    shadow = scl == 3
    assert shadow.sum() > 100 and np.nanmedian(nir[shadow & (lc == 21)]) < np.nanmedian(nir[forest])
    # paddies green up from May to July
    may = out / next(s["path"] for s in cfg["imagery"]["2024"] if "0522" in s["path"])
    nir_may = np.where(True, _on_grid(may / "B08.tif", lprof, Resampling.average) * 1e-4 - 0.1, np.nan)
    scl_may = _on_grid(may / "SCL.tif", lprof)
    paddy = (lc == 11) & clear & np.isin(scl_may, (4, 5, 6))
    assert np.nanmedian(nir[paddy]) > np.nanmedian(nir_may[paddy]) + 0.1


def test_one_scene_per_year_has_an_orbit_edge(sample):
    out, cfg = sample
    for year, scenes in cfg["imagery"].items():
        fractions = []
        for s in scenes:
            with rasterio.open(out / s["path"] / "B02.tif") as src:
                fractions.append(float((src.read(1, out_shape=(200, 200)) == 0).mean()))
        assert sum(f > 0.03 for f in fractions) == 1, (year, fractions)


def test_landsat_thermal_decodes_to_plausible_lst(sample):
    out, cfg = sample
    folder = out / cfg["thermal"]["2024"]["path"]
    pid = folder.name
    mtl = (folder / f"{pid}_MTL.txt").read_text(encoding="utf-8")
    get = lambda key: re.search(rf"^\s*{key} = (.+)$", mtl, re.M).group(1).strip().strip('"')  # noqa: E731
    assert get("SPACECRAFT_ID") == "LANDSAT_9" and get("FILE_NAME_BAND_ST_B10") == f"{pid}_ST_B10.TIF"
    for group in ("PRODUCT_CONTENTS", "IMAGE_ATTRIBUTES", "PROJECTION_ATTRIBUTES",
                  "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS"):
        assert f"GROUP = {group}" in mtl and f"END_GROUP = {group}" in mtl
    mult, add = float(get("TEMPERATURE_MULT_BAND_ST_B10")), float(get("TEMPERATURE_ADD_BAND_ST_B10"))
    rm, ra = float(get("REFLECTANCE_MULT_BAND_4")), float(get("REFLECTANCE_ADD_BAND_4"))
    lc, lprof = _read(out / "landcover" / "lucc_2024.tif")
    st = _on_grid(folder / f"{pid}_ST_B10.TIF", lprof)
    qa = _on_grid(folder / f"{pid}_QA_PIXEL.TIF", lprof, dtype="uint16")
    red = _on_grid(folder / f"{pid}_SR_B4.TIF", lprof) * rm + ra
    nir = _on_grid(folder / f"{pid}_SR_B5.TIF", lprof) * rm + ra
    lst = np.where(st > 0, st * mult + add - 273.15, np.nan)
    clear = (qa & (1 << 6)) > 0
    cloud = (qa & (1 << 3)) > 0
    assert 0.001 < cloud.mean() < 0.2
    med = lambda m: float(np.nanmedian(lst[m & clear & ~((qa & (1 << 4)) > 0)]))  # noqa: E731
    from scipy import ndimage
    t_forest, t_urban, t_water = med(lc == 21), med(lc == 51), med(ndimage.binary_erosion(lc == 43))
    assert 20 < t_forest < 30 and 32 < t_urban < 45
    assert t_water < t_forest < t_urban
    assert np.nanmedian(lst[cloud]) < t_forest
    assert (((qa & (1 << 7)) > 0) & np.isin(lc, (41, 43))).sum() > 0.5 * (np.isin(lc, (41, 43)) & clear).sum()
    assert np.nanmedian(nir[clear & (lc == 21)]) > 0.2 > np.nanmedian(red[clear & (lc == 21)])


def test_stations_lie_in_their_counties(sample):
    out, cfg = sample
    cty = gpd.read_file(out / "vectors" / "counties.gpkg")
    outside = {}
    for kind, spec in cfg["stations"].items():
        sites = pd.read_csv(out / spec["sites"], dtype={"county_code": str})
        obs = pd.read_csv(out / spec["observations"])
        assert sites["station_id"].is_unique and set(obs["station_id"]) <= set(sites["station_id"])
        pts = gpd.GeoDataFrame(sites, geometry=gpd.points_from_xy(sites.lon, sites.lat), crs=spec["crs"])
        joined = gpd.sjoin(pts, cty[["code", "geometry"]], how="left", predicate="within")
        out_ids = sorted(joined.loc[joined["code"].isna(), "station_id"])
        if out_ids:
            outside[kind] = out_ids
        inside = joined[joined["code"].notna()]
        assert (inside["code"] == inside["county_code"]).all(), kind
    assert outside == DESIGNED_OUTSIDE
    air = pd.read_csv(out / cfg["stations"]["air"]["sites"], dtype={"county_code": str})
    assert set(cty["code"]) - set(air["county_code"])           # a county without an air station (gap)


def test_station_observations_are_plausible(sample):
    out, cfg = sample
    air = pd.read_csv(out / cfg["stations"]["air"]["observations"])
    assert air["date"].str.startswith("2024").all() and air.groupby("station_id").size().min() == 366
    assert 15 < air["pm25_ugm3"].mean() < 70 and (air["pm25_ugm3"] > 75).any()
    both = air.dropna(subset=["pm10_ugm3", "pm25_ugm3"])
    assert len(both) > 0.95 * len(air) and (both["pm10_ugm3"] >= both["pm25_ugm3"]).all()
    winter = air["date"].str[5:7].isin(["01", "12"])
    summer = air["date"].str[5:7].isin(["06", "07"])
    assert air.loc[winter, "pm25_ugm3"].mean() > 1.5 * air.loc[summer, "pm25_ugm3"].mean()
    assert air.loc[summer, "o3_8h_ugm3"].mean() > air.loc[winter, "o3_8h_ugm3"].mean()
    water = pd.read_csv(out / cfg["stations"]["surface_water"]["observations"])
    n = water.groupby("station_id").size()
    assert (n == 12).sum() >= len(n) - 1 and (n == 11).sum() == 1       # one month missing at one section
    assert water["ph"].between(6, 9).all() and (water["nh3n_mgl"] > 1.0).any()
    soil = pd.read_csv(out / cfg["stations"]["soil"]["observations"])
    sites = pd.read_csv(out / cfg["stations"]["soil"]["sites"])
    assert set(sites["land_use"]) <= {"paddy", "other", "orchard"} and "paddy" in set(sites["land_use"])
    assert len(soil) == len(sites) and (soil["cd_mgkg"] > 0.3).any() and (soil["cd_mgkg"] < 0.3).mean() > 0.5
    noise = pd.read_csv(out / cfg["stations"]["noise"]["sites"], dtype={"function_class": str})
    assert set(noise["function_class"]) <= {"0", "1", "2", "3", "4a", "4b"}


def test_statistics_table(sample):
    out, cfg = sample
    stats = pd.read_csv(out / cfg["statistics"]["path"], dtype={"county_code": str})
    cty = gpd.read_file(out / "vectors" / "counties.gpkg")
    assert len(stats) == 2 * len(cty)
    assert set(map(tuple, stats[["county_code", "year"]].values)) == {(c, y) for c in cty["code"] for y in (2023, 2024)}
    assert (stats.drop(columns=["county_code", "year"]) >= 0).all().all()
    assert stats["precipitation_mm"].between(600, 1500).all()
    # river length agrees with the river layer clipped to each county
    riv = gpd.read_file(out / "vectors" / "rivers.gpkg").to_crs(ALBERS)
    for code, g in cty.to_crs(ALBERS).set_index("code").geometry.items():
        km = riv.geometry.intersection(g).length.sum() / 1000
        assert stats.loc[stats.county_code == code, "river_length_km"].iloc[0] == pytest.approx(km, rel=0.01)
    ev = pd.read_csv(out / cfg["constraint_events"]["path"], dtype={"county_code": str})
    assert len(ev) >= 1 and set(ev["county_code"]) <= set(cty["code"])


def test_hard_cases_for_the_redline_stage(sample):
    """Issue 19's planted set: a boundary-straddling quarry, a seasonal-only difference, persistent cloud over half
    of a quarry in every assessment-year scene, and baseline scenes misregistered by a fraction of a pixel."""
    out, cfg = sample
    red = gpd.read_file(out / "vectors" / "redline.gpkg").to_crs(ALBERS)
    truth = gpd.read_file(out / "truth" / "planted_changes.gpkg").to_crs(ALBERS)
    union = shapely.union_all(red.geometry.values)
    straddle = truth[truth["change_type"] == "quarry_straddling"].geometry.iloc[0]
    assert 0.15 < straddle.intersection(union).area / straddle.area < 0.85
    # the harvested field: land cover is dry land in both years, but its NDVI drops in every 2024 scene
    field = gpd.read_file(out / "truth" / "seasonal_only.gpkg")
    assert field["case_type"].tolist() == ["harvest_only"] and field.crs.to_epsg() == 32648
    a, prof = _read(out / "landcover" / "lucc_2023.tif")
    b, _ = _read(out / "landcover" / "lucc_2024.tif")
    from rasterio import features
    cells = features.rasterize([(field.to_crs(prof["crs"].to_wkt()).geometry.iloc[0], 1)], out_shape=a.shape,
                               transform=prof["transform"]) > 0
    assert (a[cells] == 12).all() and (b[cells] == 12).all()
    with rasterio.open(out / cfg["imagery"]["2024"][2]["path"] / "B04.tif") as r4, \
            rasterio.open(out / cfg["imagery"]["2024"][2]["path"] / "B08.tif") as r8:
        geom = [field.geometry.iloc[0]]
        m = features.rasterize([(geom[0], 1)], out_shape=r4.shape, transform=r4.transform) > 0
        red4, nir8 = r4.read(1)[m] / 1e4 - 0.1, r8.read(1)[m] / 1e4 - 0.1
    assert np.median((nir8 - red4) / (nir8 + red4)) < 0.35          # bare soil with stubble, not a growing crop
    # persistent cloud: about half of the quarry inside a unit is under thick cloud in every 2024 scene
    quarry = truth[(truth["change_type"] == "quarry") & truth["inside_redline"]].iloc[0]
    assert 0.2 < quarry["cloud_share_after"] < 0.7
    q_utm = gpd.GeoSeries([quarry.geometry], crs=ALBERS).to_crs(32648).iloc[0]
    for scene in cfg["imagery"]["2024"]:
        with rasterio.open(out / scene["path"] / "SCL.tif") as scl:
            m = features.rasterize([(q_utm, 1)], out_shape=scl.shape, transform=scl.transform) > 0
            cloudy = np.isin(scl.read(1)[m], (8, 9)).mean()
        assert 0.15 < cloudy < 0.8, scene["path"]
    # the baseline scenes are declared 6 m east and 4 m south of where the 2024 scenes are
    def origin(year):
        with rasterio.open(out / cfg["imagery"][str(year)][0]["path"] / "B04.tif") as src:
            return src.transform.c, src.transform.f
    (x23, y23), (x24, y24) = origin(2023), origin(2024)
    assert (x23 - x24, y23 - y24) == pytest.approx((6.0, -4.0))
