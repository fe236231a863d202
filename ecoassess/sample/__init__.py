"""The bundled synthetic sample area: a hilly county group in the Sichuan basin, generated from a seed.

``write_sample(out_dir, seed=0, scale=1)`` writes counties, DEM, rivers, two years of land cover with planted
changes (and their truth), Sentinel-2 L2A-like scenes, Landsat 9 C2 L2 thermal products, red-line units,
function zones, monitoring stations, county statistics and an ``assessment.yaml`` that points at all of it.
Deterministic (byte-identical files for one seed), no downloads. ``scale=k`` enlarges the area k-fold
(side × √k, same resolutions, 4·k counties); used by the benchmarks.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from rasterio.warp import Resampling, reproject

from ecoassess.grid import china_albers_crs
from ecoassess.sample import changes, config, counties, landcover, landsat, rivers, scenes, stations, tables, terrain
from ecoassess.sample import spectra, zones
from ecoassess.sample.io import write_cog, write_csv, write_gpkg
from ecoassess.sample.stations import DESIGNED_OUTSIDE
from ecoassess.sample.vectors import polygonize, to_gdf
from ecoassess.sample.world import GEO_EPSG, RES_M, UTM_EPSG, World

__all__ = ["write_sample", "DESIGNED_OUTSIDE", "YEAR", "BASELINE_YEAR"]

log = logging.getLogger(__name__)

YEAR, BASELINE_YEAR = 2024, 2023
S2_DATES = {
    2024: [scenes.SceneSpec("2024-05-22", "sentinel-2b", 0.08, orbit_edge=True),
           scenes.SceneSpec("2024-07-16", "sentinel-2a", 0.15, cirrus=True),
           scenes.SceneSpec("2024-09-04", "sentinel-2b", 0.03)],
    # the baseline scenes are misregistered by 6 m east, 4 m south (0.6 of a 10 m pixel): the red-line stage must
    # not see change along every edge
    2023: [scenes.SceneSpec("2023-05-28", "sentinel-2a", 0.12, shift_m=(6.0, -4.0)),
           scenes.SceneSpec("2023-07-22", "sentinel-2b", 0.04, orbit_edge=True, shift_m=(6.0, -4.0)),
           scenes.SceneSpec("2023-09-10", "sentinel-2a", 0.20, cirrus=True, shift_m=(6.0, -4.0))],
}
LANDSAT_DATES = {2024: "2024-07-24", 2023: "2023-07-21"}


def _albers_lucc(world: World, lucc: np.ndarray, path: Path) -> None:
    """Reproject a UTM class raster (nearest) onto a 30 m China Albers grid snapped to whole cells."""
    albers = china_albers_crs()
    from rasterio.warp import transform_bounds
    from affine import Affine
    xmin, ymin, xmax, ymax = transform_bounds(f"EPSG:{UTM_EPSG}", albers, *world.bounds, densify_pts=51)
    x0, y1 = np.floor(xmin / RES_M) * RES_M, np.ceil(ymax / RES_M) * RES_M
    w, h = int(np.ceil((xmax - x0) / RES_M)), int(np.ceil((y1 - ymin) / RES_M))
    dst = np.zeros((h, w), dtype="uint8")
    transform = Affine(RES_M, 0, x0, 0, -RES_M, y1)
    reproject(lucc, dst, src_transform=world.transform(), src_crs=f"EPSG:{UTM_EPSG}", src_nodata=0,
              dst_transform=transform, dst_crs=albers, dst_nodata=0, resampling=Resampling.nearest)
    write_cog(path, dst, transform, albers, nodata=0, overview_resampling="mode")


def write_sample(out_dir, *, seed: int = 0, scale: int = 1, _imagery: str = "all") -> Path:
    """Generate the sample area into ``out_dir``; return the path of ``out_dir/assessment.yaml``.

    ``_imagery`` (private, for tests): "all", or "first" to render only the first scene of the assessment year.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = World.create(seed, scale)
    ter = terrain.make_terrain(world)
    cty = counties.make_counties(world, ter)
    land = landcover.make_landscape(world, ter, cty)
    riv_records, riv_geoms, name_raster, name_list = rivers.make_rivers(world, ter)
    red_records, red_geoms, red_raster = zones.make_redline(world, ter, land, cty)
    fz_records, fz_geoms = zones.make_function_zones(world, ter, land, cty)
    lucc_now, chg_records, chg_geoms, planted = changes.plant_changes(world, ter, land, cty, red_raster)
    lucc = {BASELINE_YEAR: land.lucc, YEAR: lucc_now}
    # what the assessment year's scenes show: one dry-land field harvested (land cover unchanged), and persistent
    # cloud over half of the quarry inside a red-line unit
    harvested = changes.seasonal_field(world, lucc_now, red_raster, planted)
    shown = {BASELINE_YEAR: land.lucc, YEAR: np.where(harvested, spectra.HARVESTED_DRY, lucc_now).astype("uint8")}
    forced_cloud = {BASELINE_YEAR: None, YEAR: changes.persistent_cloud(planted, red_raster)}
    for rec, (_, m, _) in zip(chg_records, planted):
        rec["cloud_share_after"] = round(float(forced_cloud[YEAR][m].mean()), 4)
    log.info("sample layout built in %.1f s", time.perf_counter() - t0)

    # terrain and land cover
    write_cog(out / "terrain" / "dem.tif", ter.dem_m, world.transform(), f"EPSG:{UTM_EPSG}", nodata=-9999.0)
    for y, arr in lucc.items():
        _albers_lucc(world, arr, out / "landcover" / f"lucc_{y}.tif")

    # vectors
    albers = china_albers_crs().to_wkt()
    cty_gdf = to_gdf([{"code": c, "name": n, "name_en": e} for c, n, e in zip(cty.codes, cty.names, cty.names_en)],
                     cty.geoms_utm, GEO_EPSG)
    write_gpkg(cty_gdf, out / "vectors" / "counties.gpkg", "counties")
    riv_gdf = to_gdf(riv_records, riv_geoms, GEO_EPSG)
    write_gpkg(riv_gdf, out / "vectors" / "rivers.gpkg", "rivers")
    red = to_gdf(red_records, red_geoms, UTM_EPSG)
    red["area_km2"] = (red.geometry.to_crs(albers).area / 1e6).round(4)  # equal-area, as the tables compute it
    write_gpkg(red.to_crs(GEO_EPSG), out / "vectors" / "redline.gpkg", "redline")
    write_gpkg(to_gdf(fz_records, fz_geoms, GEO_EPSG), out / "vectors" / "function_zones.gpkg", "function_zones")
    truth = to_gdf(chg_records, chg_geoms, UTM_EPSG)
    truth["area_m2"] = truth.geometry.to_crs(albers).area.round(1)
    write_gpkg(truth, out / "truth" / "planted_changes.gpkg", "planted_changes")
    field_geom = polygonize(harvested.astype("int32"), world).get(1)
    seasonal = to_gdf([{"case_id": "SEA-001", "case_type": "harvest_only", "land_cover": landcover.DRY}],
                      [field_geom], UTM_EPSG)
    seasonal["area_m2"] = seasonal.geometry.to_crs(albers).area.round(1)
    write_gpkg(seasonal, out / "truth" / "seasonal_only.gpkg", "seasonal_only")

    # imagery
    scene_paths, thermal_paths = {}, {}
    for y in (YEAR, BASELINE_YEAR):
        scene_paths[y] = []
        thermal_paths[y] = f"imagery/{y}/{landsat.product_id(LANDSAT_DATES[y])}"
        if _imagery != "all" and y != YEAR:
            continue
        rng = world.rng(f"imagery-{y}")
        cls10 = scenes.class_map_10m(world, shown[y], rng)
        surf = scenes.surface_fields(world, rng)
        ydir = out / "imagery" / str(y)
        specs = S2_DATES[y] if _imagery == "all" else S2_DATES[y][:1]
        for spec in specs:
            folder = scenes.write_scene(world, ter, cls10, surf, spec, ydir, world.rng(f"scene-{spec.date}"),
                                        forced_cloud=forced_cloud[y])
            scene_paths[y].append(folder.relative_to(out).as_posix())
        del cls10, surf
        if _imagery != "all":
            continue
        landsat.write_landsat(world, ter, shown[y], LANDSAT_DATES[y], ydir, world.rng(f"landsat-{y}"))
    log.info("imagery written at %.1f s", time.perf_counter() - t0)

    # stations
    rng = world.rng("stations")
    picker = stations._Picker(world, cty, rng)
    st = {
        "air": stations.air(picker, land, YEAR, rng),
        "surface_water": stations.surface_water(picker, land, ter, name_raster, name_list, YEAR, rng),
        "drinking_water": stations.drinking_water(picker, land, ter, name_raster, name_list, YEAR, rng),
        "soil": stations.soil(picker, land, YEAR, rng),
        "noise": stations.noise(picker, land, YEAR, rng),
        "ecology_plots": stations.ecology(picker, land, YEAR, rng),
    }
    for kind, (sites, obs) in st.items():
        s_path, o_path = config.STATION_FILES[kind]
        write_csv(sites, out / s_path)
        write_csv(obs, out / o_path)

    # tables
    cty_alb = cty_gdf.to_crs(albers)
    riv_alb = riv_gdf.to_crs(albers)
    areas = (cty_alb.area / 1e6).tolist()
    river_km = [float(riv_alb.geometry.intersection(g).length.sum() / 1000.0) for g in cty_alb.geometry]
    urban = [float((lucc[BASELINE_YEAR][cty.labels == k + 1] == landcover.URBAN).mean()) for k in range(len(cty.codes))]
    write_csv(tables.county_statistics(cty.codes, areas, river_km, urban, world.rng("tables")),
              out / "tables" / "county_statistics.csv")
    write_csv(tables.constraint_events(cty.codes, YEAR), out / "tables" / "constraint_events.csv")

    cfg = config.assessment_config(scene_paths, thermal_paths, YEAR, BASELINE_YEAR)
    path = config.write_config(out / "assessment.yaml", cfg)
    (out / "README.md").write_text(config.README.format(seed=seed, scale=scale, n_counties=len(cty.codes), year=YEAR),
                                   encoding="utf-8")
    log.info("sample written to %s in %.1f s", out, time.perf_counter() - t0)
    return path
