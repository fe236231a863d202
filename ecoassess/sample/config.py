"""The sample's ``assessment.yaml`` and README."""

from __future__ import annotations

from pathlib import Path

import yaml

STATION_FILES = {
    "air": ("stations/air_sites.csv", "stations/air_daily.csv"),
    "surface_water": ("stations/water_sections.csv", "stations/water_monthly.csv"),
    "drinking_water": ("stations/drinking_sources.csv", "stations/drinking_monthly.csv"),
    "soil": ("stations/soil_points.csv", "stations/soil_samples.csv"),
    "noise": ("stations/noise_points.csv", "stations/noise_quarterly.csv"),
    "ecology_plots": ("stations/ecology_plots.csv", "stations/ecology_annual.csv"),
}


def assessment_config(scenes: dict, thermal: dict, year: int, baseline: int) -> dict:
    """``scenes``/``thermal``: {year: [relative folder paths]} / {year: relative folder path}."""
    return {
        "name": "川中丘陵示例区 (synthetic sample)",
        "year": year,
        "baseline_year": baseline,
        "study_area": {"path": "vectors/counties.gpkg", "id_field": "code", "name_field": "name"},
        "grid": {"resolution_m": 30},
        "imagery": {str(y): [{"kind": "sentinel2_l2a", "path": p} for p in scenes[y]] for y in (year, baseline)},
        "composite": {"method": "median", "months": [5, 6, 7, 8, 9]},
        "thermal": {str(y): {"kind": "landsat_c2l2", "path": thermal[y]} for y in (year, baseline)},
        "land_cover": {str(y): {"path": f"landcover/lucc_{y}.tif", "legend": "cas_lucc"} for y in (year, baseline)},
        "dem": {"path": "terrain/dem.tif"},
        # RUSLE inputs for the HJ 192 land-stress index (no erosion survey in the sample): R in MJ·mm·ha⁻¹·h⁻¹·a⁻¹
        # and K in t·ha·h·ha⁻¹·MJ⁻¹·mm⁻¹, typical of the purple-soil hills of the Sichuan basin
        "erosion": {"r_factor": 4500.0, "k_factor": 0.032, "region": "southwest_purple_soil"},
        "rivers": {"path": "vectors/rivers.gpkg", "length_field": None},
        "zones": {
            "redline": {"path": "vectors/redline.gpkg", "id_field": "unit_id", "name_field": "name",
                        "type_field": "type"},
            "function_zones": {"path": "vectors/function_zones.gpkg", "id_field": "zone_id", "name_field": "name",
                               "type_field": "function_type"},
        },
        "stations": {k: {"sites": s, "observations": o, "id_field": "station_id", "x_field": "lon",
                         "y_field": "lat", "crs": "EPSG:4490"} for k, (s, o) in STATION_FILES.items()},
        "statistics": {"path": "tables/county_statistics.csv", "county_field": "county_code", "year_field": "year"},
        "constraint_events": {"path": "tables/constraint_events.csv"},
        "change_truth": {"path": "truth/planted_changes.gpkg"},
        "outputs": {"tables": ["gpkg", "csv", "xlsx"], "maps": True, "lang": "zh"},
    }


#: one comment per top-level key of the sample's assessment.yaml (README "The config" has the full table)
KEY_COMMENTS = {
    "name": "title of the assessment (used in maps and the manifest)",
    "year": "assessment year; baseline_year: the earlier year that changes (ΔRSEI, ΔEI) are measured against",
    "study_area": "counties: id_field holds six-digit GB/T 2260 codes; any CRS (reprojected to the grid)",
    "grid": "analysis grid: equal-area CRS (default CGCS2000 China Albers), cell size in metres",
    "imagery": "optical scenes per year (sentinel2_l2a | landsat_c2l2 | geotiff), composited per pixel",
    "composite": "median of clear observations in these months (or monthly_max_ndvi); min_clear observations",
    "thermal": "per year a Landsat C2 L2 product: LST for RSEI (its own bands give RSEI's reflectance)",
    "land_cover": "per year a land-cover raster and its legend (layers/*.yaml): water mask, HJ 192 habitat",
    "dem": "terrain for the RUSLE erosion estimate",
    "erosion": "RUSLE estimate for the HJ 192 land-stress index (or classes: an SL 190-2007 class raster)",
    "rivers": "river lines for the HJ 192 water-network index (clipped to each county)",
    "zones": "further zone sets with their own tables: red-line units, ecological function zones",
    "stations": "monitoring sites and observations: graded, audited and mapped by the network stage",
    "statistics": "county statistics (emissions, precipitation, water resources): units in the column names",
    "constraint_events": "events that limit the HJ 192 grade (环境限制指数)",
    "change_truth": "planted changes: the red-line stage's accuracy (scripts/redline_accuracy.py)",
    "outputs": "tables (gpkg, csv, xlsx), maps, label language",
}

#: settings the sample leaves at their defaults, shown commented out at the end of the file
OPTIONAL = """
# Optional settings, at their defaults (remove the # to change one):
# rsei: {normalisation: percentile, water_mask: land_cover, joint_pca: true}   # water_mask: mndwi | otsu | none
# masking: {scl_classes: [0, 1, 3, 8, 9, 10, 11]}                            # Sentinel-2 SCL classes not clear
# run: {on_error: continue, memory_budget_mb: 256}                           # on_error: stop = fail fast
# and under outputs: compression: deflate                                    # zstd: faster, newer GIS only
"""


def write_config(path: Path, cfg: dict) -> Path:
    """The sample's assessment.yaml: each top-level key with a comment line, optional settings at the end."""
    parts = ["# Synthetic sample area generated by ecoassess.sample.write_sample — not real data.\n"
             "# Paths are relative to this file. Check it with: ecoassess validate assessment.yaml\n"]
    for key, value in cfg.items():
        comment = KEY_COMMENTS.get(key)
        flow = None if isinstance(value, (dict, list)) else False  # a lone scalar in flow style is "{k: v}"
        parts.append((f"\n# {comment}\n" if comment else "")
                     + yaml.safe_dump({key: value}, allow_unicode=True, sort_keys=False, default_flow_style=flow,
                                      width=120))
    path.write_text("".join(parts) + OPTIONAL, encoding="utf-8")
    return path


README = """# 川中丘陵示例区 — synthetic sample area

Everything in this folder is **synthetic**, generated by `ecoassess.sample.write_sample(out_dir, seed={seed},
scale={scale})` from random fields; it imitates a hilly county group in the Sichuan basin (≈104.6°E, 30.1°N) but
no file is real data. County codes use the non-existent prefecture 5199xx. Same seed → byte-identical files.

| path | content |
| --- | --- |
| `assessment.yaml` | the assessment config that points at everything below (paths relative) |
| `vectors/counties.gpkg` | {n_counties} fictional counties (EPSG:4490): `code`, `name`, `name_en`; they tile the study area |
| `terrain/dem.tif` | DEM, float32 m, 30 m, EPSG:32648; ridge, terraced hills, flat valley floors |
| `vectors/rivers.gpkg` | rivers derived from the DEM (D8 flow accumulation ≥ 1.2 km²; EPSG:4490): `river_id`, `name`, `order` (Strahler), `upstream_area_km2` |
| `landcover/lucc_2023.tif`, `lucc_2024.tif` | CAS/LUCC codes (uint8, nodata 0, 30 m, China Albers) |
| `truth/planted_changes.gpkg` | the only land-cover changes 2023→2024 (EPSG:32648): `change_id`, `change_type`, `from_class`, `to_class`, `area_m2` (Albers), `inside_redline`, `cloud_share_after` (share under cloud in every 2024 scene) |
| `truth/seasonal_only.gpkg` | a dry-land field shown harvested in the 2024 scenes, land cover unchanged: a difference that is not a change |
| `imagery/<year>/<S2 scene>/` | Sentinel-2 L2A-like scene clipped to the area: B02/B03/B04/B08 (10 m), B11/B12/SCL (20 m) COGs, STAC item `<id>.json`; DN = (reflectance + 0.1) × 10000 (baseline 05.10) |
| `imagery/<year>/LC09_L2SP_…/` | Landsat 9 C2 L2 product: SR_B1–B7, ST_B10, QA_PIXEL (30 m) and MTL.txt |
| `vectors/redline.gpkg` | ecological conservation red-line units (EPSG:4490): `unit_id`, `name`, `type`, `county_code`, `area_km2` (equal-area) |
| `vectors/function_zones.gpkg` | ecological function zones (EPSG:4490): `zone_id`, `name`, `function_type` |
| `stations/*.csv` | monitoring sites (lon/lat EPSG:4490) and {year} observations: air (daily), surface water and drinking-water sources (monthly), soil (one sample), noise (quarterly), ecology plots (annual) |
| `tables/county_statistics.csv` | emissions, precipitation, water resources, river length per county and year |
| `tables/constraint_events.csv` | environmental events that constrain the EI grade |

Planted details to find: a quarry inside a red-line unit (half of it under cloud in every 2024 scene) and one
just outside, a quarry straddling a unit boundary, a 12-cell and a 6-cell quarry inside units (either side of a
9-cell minimum mapping unit), a new road entering a unit, town growth, reforestation, grassland ploughed, and a
harvested field near a unit that is not a change; the 2023 scenes are misregistered by 6 m east and 4 m south;
one scene per year has an orbit-edge no-data strip; clouds and shadows are flagged in SCL/QA_PIXEL; the last county has no air station; water section W01 misses August;
section W99 (outflow) lies just outside the study area; a few exceedances in every station type.
Scale: `scale=k` enlarges the area (side × √k) at the same resolutions, with 4·k counties.
"""
