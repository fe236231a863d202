"""The annual assessment run: config → analysis grid → composites → NDVI/FVC → county tables, map, manifest.

Each stage is a plain function on xarray/geopandas objects; ``run`` strings them together, writes everything
into a :class:`~ecoassess.store.ResultsStore` (so a failed run leaves earlier results untouched) and records a
manifest. A year whose imagery fails (for example every pixel under cloud) is reported and the rest completes,
unless the config says ``run.on_error: stop``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel

from ecoassess.config import AssessmentConfig, load_config
from ecoassess.errors import EcoassessError, InputError
from ecoassess.grid import AnalysisGrid, rasterize_mask

log = logging.getLogger(__name__)


@dataclass
class VegetationYear:
    """The vegetation layers of one year on the analysis grid, and how they were made."""

    year: int
    ndvi: xr.DataArray
    fvc: xr.DataArray
    masked: xr.DataArray           # bool: observed but never clear, or water
    clear_count: xr.DataArray
    endmembers: object
    n_scenes: int
    composite_method: str


@dataclass
class RunResult:
    out_dir: Path
    grid: AnalysisGrid
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    layers: dict[str, Path] = field(default_factory=dict)
    maps: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


# -- stages ----------------------------------------------------------------------------------------------------

def read_study_area(config: AssessmentConfig) -> gpd.GeoDataFrame:
    """County polygons with a normalised six-digit ``code`` and ``name`` column (plus the original fields)."""
    from ecoassess.validate import normalise_code

    sa = config.study_area
    try:
        gdf = gpd.read_file(sa.path, layer=sa.layer)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot be read as a vector layer ({exc})", path=sa.path) from exc
    gdf = gdf.assign(code=gdf[sa.id_field].map(normalise_code), name=gdf[sa.name_field].astype(str))
    return gdf


def build_grid(config: AssessmentConfig, study_area: gpd.GeoDataFrame) -> AnalysisGrid:
    """The analysis grid over the study area (config.grid: CRS default China Albers, resolution)."""
    grid = AnalysisGrid.from_study_area(study_area, config.grid.resolution_m, config.grid.crs)
    log.info("analysis grid: %d x %d cells of %.6g m (%.1f km x %.1f km)", grid.width, grid.height,
             grid.resolution, grid.width * grid.resolution / 1000, grid.height * grid.resolution / 1000)
    return grid


def open_year_scenes(config: AssessmentConfig, year: int, grid: AnalysisGrid) -> list:
    """Every scene configured for ``year``, opened lazily on ``grid`` with the config's masking."""
    from ecoassess.sources import open_scene

    scenes = []
    for spec in config.imagery.get(year, []):
        options = {"grid": grid, "chunk": config.grid.chunk}
        if spec.kind == "sentinel2_l2a" and config.masking.scl_classes is not None:
            options["mask_scl"] = tuple(config.masking.scl_classes)
        if spec.kind == "landsat_c2l2" and config.masking.landsat_flags is not None:
            options["mask_flags"] = tuple(config.masking.landsat_flags)
        if spec.kind == "geotiff":
            options.update(bands={k: _band_ref(v) for k, v in spec.bands.items()}, date=spec.date,
                           sensor=spec.sensor or "geotiff", scale=spec.scale, offset=spec.offset,
                           nodata=spec.nodata, mask=spec.mask.model_dump() if spec.mask else None)
            scenes.append(open_scene("geotiff", **options))
        else:
            scenes.append(open_scene(spec.kind, path=spec.path, **options))
    return scenes


def _band_ref(ref):
    return {"path": ref.path, "band": ref.band} if hasattr(ref, "band") else ref


def vegetation_water_mask(config: AssessmentConfig, year: int, grid: AnalysisGrid,
                          bands: xr.Dataset | None) -> xr.DataArray | None:
    """Open water for masking vegetation statistics: from the year's land cover when given, else MNDWI > 0."""
    from ecoassess.layers.vegetation import normalized_difference

    water = water_mask_from_land_cover(config, year, grid)
    if water is not None:
        return water
    if bands is not None and "green" in bands and "swir1" in bands:
        log.info("%d: no land cover given; water masked where MNDWI > 0 (Xu 2006)", year)
        return normalized_difference(bands["green"], bands["swir1"]) > 0
    return None


def vegetation_year(config: AssessmentConfig, year: int, grid: AnalysisGrid, inside: xr.DataArray) -> VegetationYear:
    """Composite the year's scenes, then NDVI and FVC (STANDARDS §4) on the grid, lazily."""
    from ecoassess.layers.vegetation import fvc, fvc_endmembers, ndvi
    from ecoassess.sources import composite

    scenes = open_year_scenes(config, year, grid)
    if not scenes:
        raise InputError(f"no imagery is configured for year {year}", field=f"imagery.{year}")
    comp = composite(scenes, method="median", months=tuple(config.composite.months),
                     min_clear=config.composite.min_clear)
    ndvi_layer = ndvi(comp.bands)
    if config.composite.method == "monthly_max_ndvi":
        monthly = composite(scenes, method="monthly_max_ndvi", months=tuple(config.composite.months),
                            min_clear=config.composite.min_clear)
        ndvi_layer = monthly.ndvi
    water = vegetation_water_mask(config, year, grid, comp.bands)
    masked = comp.masked if water is None else (comp.masked | (water & ~comp.nodata))
    masked = masked & inside
    valid = np.isfinite(ndvi_layer) & ~masked & inside
    endmembers = fvc_endmembers(ndvi_layer, valid)
    log.info("%d: FVC end-members NDVI_soil = %.4f, NDVI_veg = %.4f over %d valid pixels", year,
             endmembers.ndvi_soil, endmembers.ndvi_veg, endmembers.n_pixels)
    fvc_layer = fvc(ndvi_layer, endmembers)
    for layer in (ndvi_layer, fvc_layer, masked):
        layer.attrs["grid"] = grid
    return VegetationYear(year, ndvi_layer.where(inside), fvc_layer.where(inside), masked, comp.clear_count,
                          endmembers, len(scenes), config.composite.method)


def compute_indices(config: AssessmentConfig, names: list[str], out, *, year: int | None = None) -> dict:
    """Catalog indices on the year's composite, written as COGs into ``out`` (atomically, as one results folder)."""
    from ecoassess.cog import write_cog
    from ecoassess.sources import composite
    from ecoassess.spectral import load_catalog, share_outside_range
    from ecoassess.store import ResultsStore

    catalog = load_catalog()
    for name in names:
        catalog[name]  # unknown names fail before any work
    year = year or config.year
    study_area = read_study_area(config)
    grid = build_grid(config, study_area)
    comp = composite(open_year_scenes(config, year, grid), method="median", months=tuple(config.composite.months),
                     min_clear=config.composite.min_clear)
    written = {}
    with ResultsStore(Path(out)) as store:
        for name in names:
            layer = catalog.compute(name, comp.bands)
            rel = Path(f"{name.lower()}_{year}.tif")
            write_cog(layer, store.path(rel), nodata=float("nan"), dtype="float32",
                      tags={"formula": catalog[name].formula, "catalog_version": catalog.version})
            written[name] = {"path": Path(out) / rel, "valid_range": catalog[name].valid_range,
                             "share_outside_valid_range": share_outside_range(layer, catalog[name].valid_range)}
    return written


def rsei_years(config: AssessmentConfig, grid: AnalysisGrid, inside: xr.DataArray) -> list:
    """RSEI (Xu 2013; STANDARDS §3) for every year with thermal imagery; a joint PCA when there are two years.

    Reflectance comes from the thermal product itself when it carries the six optical bands (a Landsat C2 L2
    product: one date, one sensor, as in Xu 2013); otherwise from the year's composite of ``imagery``.
    """
    from ecoassess.assess.rsei import RseiSettings, compute_rsei, rsei_indicators
    from ecoassess.assess.rsei import water_mask as mndwi_water_mask
    from ecoassess.sources import CORE_ROLES, composite, open_scene

    spec = config.rsei
    years = [y for y in config.years if y in config.thermal]
    if not spec.enabled or not years:
        return []
    settings = RseiSettings.from_spec(normalisation=spec.normalisation,
                                      water_mask=None if spec.water_mask == "land_cover" else spec.water_mask,
                                      wetness_index=spec.wetness_index)
    indicators, valids, waters = [], [], []
    for year in years:
        tspec = config.thermal[year]
        options = {"grid": grid, "chunk": config.grid.chunk}
        thermal = (open_scene("geotiff", bands={k: _band_ref(v) for k, v in tspec.bands.items()}, date=tspec.date,
                              **options) if tspec.kind == "geotiff" else open_scene(tspec.kind, path=tspec.path, **options))
        if all(role in thermal.bands for role in CORE_ROLES):
            bands, clear, sensor = thermal.bands, thermal.clear, thermal.sensor
        else:
            scenes = open_year_scenes(config, year, grid)
            comp = composite(scenes, method="median", months=tuple(config.composite.months))
            bands, clear, sensor = comp.bands, comp.clear_count > 0, scenes[0].sensor
            clear = clear & thermal.clear
        ind = rsei_indicators(bands, thermal.thermal_k, sensor=sensor, wetness_index=spec.wetness_index)
        if spec.water_mask == "land_cover" or (spec.water_mask is None and year in config.land_cover):
            water = water_mask_from_land_cover(config, year, grid)
        else:
            water = mndwi_water_mask(bands, clear, settings)
        valid = clear & inside if water is None else clear & inside & ~water
        indicators.append(ind)
        valids.append(valid)
        waters.append(water)
    if spec.joint_pca and len(years) > 1:
        return compute_rsei(indicators, valids, settings=settings, years=years, water=waters)
    results = []
    for ind, valid, year, water in zip(indicators, valids, years, waters):
        result = compute_rsei(ind, valid, settings=settings, water=water)
        result.year = year
        results.append(result)
    return results


def water_mask_from_land_cover(config: AssessmentConfig, year: int, grid: AnalysisGrid) -> xr.DataArray | None:
    """Open water of the year's land cover (legend water classes), lazily on the grid; None without land cover."""
    from ecoassess.grid import read_on_grid
    from ecoassess.legends import load_legend

    source = config.land_cover.get(year)
    if source is None:
        return None
    lc = read_on_grid(source.path, grid, band=source.band, kind="classes", crs=source.crs, chunk=config.grid.chunk,
                      name=f"land_cover_{year}")
    return load_legend(source.legend).water_mask(lc)


def zone_rsei_table(zones, result) -> pd.DataFrame:
    """RSEI mean/std and the area share of each grade per zone, with area accounting."""
    from ecoassess.assess.rsei import rsei_spec
    from ecoassess.zones import zonal_class_areas, zonal_stats

    masked = ~result.valid & np.isfinite(result.indicators["ndvi"])
    table = zonal_stats(zones, {"rsei": result.rsei}, masked=masked, stats=("mean", "std", "min", "max"))
    areas = zonal_class_areas(zones, result.grade, nodata=0)
    graded = sum(areas[c] for c in areas.attrs["class_columns"].values()) if areas.attrs["class_columns"] else 0
    for grade in rsei_spec()["grades"]:
        col = areas.attrs["class_columns"].get(grade["code"])
        share = areas[col] / graded if col is not None else 0.0
        table[f"grade{grade['code']}_{grade['en']}_share"] = share
    table.insert(0, "year", result.year)
    table["pc1_share"] = result.pc1_share
    table["joint_pca"] = result.joint
    return table


def county_vegetation_table(zones, veg: VegetationYear) -> pd.DataFrame:
    """Per-zone NDVI and FVC statistics with area accounting (valid / masked / nodata / outside, km²)."""
    from ecoassess.zones import zonal_stats

    table = zonal_stats(zones, {"ndvi": veg.ndvi, "fvc": veg.fvc}, masked=veg.masked, stats=("mean", "std", "min", "max"))
    table.insert(0, "year", veg.year)
    table["ndvi_soil"] = veg.endmembers.ndvi_soil
    table["ndvi_veg"] = veg.endmembers.ndvi_veg
    table["composite_method"] = veg.composite_method
    table["n_scenes"] = veg.n_scenes
    return table


# -- the run ---------------------------------------------------------------------------------------------------

def run(config, out, *, scheduler: str | None = None, quiet: bool = False) -> RunResult:
    """Run the assessment of ``config`` (a loaded config or a path to assessment.yaml) into folder ``out``."""
    from ecoassess.manifest import RunTimer, build_manifest, write_manifest
    from ecoassess.store import ResultsStore

    if not isinstance(config, AssessmentConfig):
        config = load_config(config)
    out = Path(out)
    timer = RunTimer()
    client = _connect(scheduler or config.run.scheduler)
    try:
        with ResultsStore(out) as store:
            with timer.stage("study area and grid"):
                study_area = read_study_area(config)
                grid = build_grid(config, study_area)
                zone_sets = read_zone_sets(config, study_area, grid)
                inside = rasterize_mask(zone_sets["county"].gdf.geometry, grid, chunk=config.grid.chunk)
            result = RunResult(out_dir=out, grid=grid)
            _vegetation_stage(config, grid, zone_sets, inside, store, timer, result)
            _rsei_stage(config, grid, zone_sets, inside, store, timer, result)
            _ei_stage(config, grid, zone_sets, store, timer, result)
            if config.outputs.maps and "county_vegetation" in result.tables:
                with timer.stage("maps"):
                    result.maps.update(_write_maps(store, zone_sets["county"], result.tables["county_vegetation"],
                                                   config))
            with timer.stage("manifest"):
                manifest = build_manifest(
                    config=config.to_yaml_dict(), config_path=config.source_path, inputs=config_input_paths(config),
                    outputs_dir=store.path("."), timings=timer.timings, grid=grid.to_dict(),
                    catalogs=_catalog_versions(), extra={"problems": result.problems, **result.manifest})
                write_manifest(manifest, store.path("manifest.json"))
                result.manifest = manifest
        result.layers = {k: out / v for k, v in result.layers.items()}
        result.maps = {k: out / v for k, v in result.maps.items()}
        return result
    finally:
        if client is not None:
            client.close()


def read_zone_sets(config: AssessmentConfig, study_area: gpd.GeoDataFrame, grid: AnalysisGrid) -> dict:
    """Counties, the whole study area (one dissolved zone) and every configured zone set, on the grid."""
    from ecoassess.zones import ZoneSet

    sets = {"county": ZoneSet.from_gdf(study_area, grid, id_field="code", name_field="name", kind="county",
                                       source=config.study_area.path)}
    sets["study_area"] = ZoneSet.from_gdf(_dissolve(sets["county"].gdf, config), grid, id_field="code",
                                          name_field="name", kind="study_area", source=config.study_area.path)
    for name, source in config.zones.items():
        try:
            gdf = gpd.read_file(source.path, layer=source.layer)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"cannot be read as a vector layer ({exc})", path=source.path) from exc
        sets[name] = ZoneSet.from_gdf(gdf, grid, id_field=source.id_field, name_field=source.name_field, kind=name,
                                      source=source.path)
    return sets


def _isolated(config: AssessmentConfig, result: RunResult, what: str, exc: EcoassessError) -> None:
    """Record a failed part of the run (or re-raise when the config says to stop at the first error)."""
    if config.run.on_error == "stop":
        raise exc
    message = f"{what}: {exc}"
    log.error(message)
    result.problems.append(message)


def _vegetation_stage(config, grid, zone_sets, inside, store, timer, result: RunResult) -> None:
    """NDVI/FVC layers and the county vegetation table, year by year (a failing year is reported)."""
    rows = []
    for year in [y for y in config.years if y in config.imagery]:  # a baseline may come from earlier results
        try:
            with timer.stage(f"vegetation {year}"):
                veg = vegetation_year(config, year, grid, inside)
                result.layers.update(_write_layers(store, veg))
            with timer.stage(f"zonal statistics {year}"):
                rows.append(pd.concat([county_vegetation_table(zone_sets["county"], veg),
                                       county_vegetation_table(zone_sets["study_area"], veg)]))
        except EcoassessError as exc:
            _isolated(config, result, f"vegetation {year}", exc)
    if not rows:
        raise EcoassessError("no year could be assessed:\n  " + "\n  ".join(result.problems))
    table = _with_code(pd.concat(rows))
    result.tables["county_vegetation"] = table
    result.manifest["fvc_endmembers"] = _endmember_summary(table)
    store.write_table("county_vegetation", _with_geometry(zone_sets["county"], table), **_formats(config))


def _rsei_stage(config, grid, zone_sets, inside, store, timer, result: RunResult) -> None:
    """RSEI layers, per-zone RSEI tables and the PCA report (skipped without thermal imagery)."""
    from ecoassess.assess.rsei import rsei_change
    from ecoassess.cog import write_cog

    if not config.thermal or not config.rsei.enabled:
        return
    try:
        with timer.stage("rsei"):
            rsei = rsei_years(config, grid, inside)
            for r in rsei:
                for name, layer, nodata, dtype in (("rsei", r.rsei, float("nan"), "float32"),
                                                   ("rsei_grade", r.grade, 0, "uint8")):
                    rel = Path("layers") / f"{name}_{r.year}.tif"
                    write_cog(layer, store.path(rel), nodata=nodata, dtype=dtype,
                              tags={"long_name": layer.attrs.get("long_name", name), "pc1_share": f"{r.pc1_share:.4f}",
                                    "joint_pca": str(r.joint)})
                    result.layers[f"{name}_{r.year}"] = rel
            if len(rsei) == 2:
                delta, classes = rsei_change(rsei[0], rsei[1])
                for name, layer, nodata, dtype in (("rsei_change", delta, float("nan"), "float32"),
                                                   ("rsei_change_class", classes, -99, "int16")):
                    rel = Path("layers") / f"{name}_{rsei[0].year}_{rsei[1].year}.tif"
                    write_cog(layer, store.path(rel), nodata=nodata, dtype=dtype)
                    result.layers[rel.stem] = rel
        with timer.stage("rsei zonal statistics"):
            for set_name, zones in zone_sets.items():
                if set_name == "study_area":
                    continue
                parts = [zone_rsei_table(zones, r) for r in rsei]
                if set_name == "county":
                    parts += [zone_rsei_table(zone_sets["study_area"], r) for r in rsei]
                table = _with_code(pd.concat(parts))
                result.tables[f"{set_name}_rsei"] = table
                store.write_table(f"{set_name}_rsei", _with_geometry(zones, table), **_formats(config))
            pca = pd.DataFrame([{"year": r.year, "indicator": k, "pc1_loading": v, "normalisation_lower": r.bounds[k][0],
                                 "normalisation_upper": r.bounds[k][1], "pc1_share": r.pc1_share,
                                 "eigenvalues": ", ".join(f"{e:.6g}" for e in r.eigenvalues),
                                 "pc1_flipped": r.flipped, "joint_pca": r.joint, "wetness_index": r.wetness_index,
                                 "n_pixels": r.n_pixels, "warnings": " | ".join(r.warnings)}
                                for r in rsei for k, v in r.loadings.items()])
            result.tables["rsei_pca"] = pca
            store.write_table("rsei_pca", pca, **_formats(config))
            result.manifest["rsei"] = [r.summary() for r in rsei]
    except EcoassessError as exc:
        _isolated(config, result, "rsei", exc)


def ei_year(config: AssessmentConfig, year: int, grid: AnalysisGrid, zone_sets: dict):
    """HJ 192-2015 EI of every county and the whole area for ``year`` (STANDARDS §1), with every intermediate.

    Returns the :class:`~ecoassess.assess.hj192.EiResult`, the erosion class layer (or None) and the habitat areas.
    """
    from ecoassess.assess import ei_inputs as gather
    from ecoassess.assess.hj192 import EiInputs, compute_ei
    from ecoassess.sources import composite

    counties = zone_sets["county"]
    land_cover, legend = gather.land_cover_layer(config, year, grid)
    grass = None
    if gather.needs_grass_split(legend):  # e.g. CLCD/WorldCover grass: split by this year's FVC (5/20/50 %)
        inside = rasterize_mask(counties.gdf.geometry, grid, chunk=config.grid.chunk)
        grass = gather.grass_fvc_km2(counties, vegetation_year(config, year, grid, inside).fvc, land_cover, legend)
    habitat, assumptions = gather.habitat_km2(counties, land_cover, legend, grass_fvc_areas=grass)
    monthly = composite(open_year_scenes(config, year, grid), method="monthly_max_ndvi",
                        months=tuple(config.composite.months), min_clear=config.composite.min_clear)
    ndvi_mean, ndvi_weight = gather.zone_ndvi(counties, monthly.ndvi)
    erosion, erosion_layer, erosion_notes = gather.erosion_km2(config, counties, grid, land_cover, legend, None)
    rivers = gather.river_length_km(config, counties)
    notes = [f"vegetation cover from the May–September monthly-maximum NDVI composite of {len(monthly.dates)} "
             "scene(s) (float NDVI with A_veg = 121.165124)",
             "river length from the river layer clipped to each county" if rivers is not None else
             "river length from the statistics table (river_length_km)",
             f"other land stress = {' + '.join(gather.OTHER_STRESS_SUBCLASSES)} areas of the land cover [C]"]
    if grass is not None:
        notes.append(f"{legend.name} grass split into high/medium/low cover by the {year} FVC (5/20/50 %, STANDARDS "
                     "§1.2; FVC by the 5 %/95 % NDVI dichotomy, STANDARDS §4)")
    area = pd.Series(counties.area_km2 - counties.area_outside_km2, index=counties.ids)
    inputs = EiInputs(
        habitat_km2=habitat, ndvi_mean=ndvi_mean, ndvi_scale="float", statistics=gather.statistics_rows(config, year),
        river_length_km=rivers, area_km2=area, ndvi_weight=ndvi_weight,
        severe_erosion_km2=None if erosion is None else erosion["severe_erosion_km2"],
        moderate_erosion_km2=None if erosion is None else erosion["moderate_erosion_km2"],
        other_stress_km2=gather.other_stress_km2(habitat), events=gather.constraint_events(config, year),
        event_zone_field="county_code", names=pd.Series(counties.names, index=counties.ids), year=year,
        whole_area_id="000000", whole_area_name="全区" if config.outputs.lang == "zh" else "study area",
        assumptions=list(assumptions) + erosion_notes + notes)
    return compute_ei(inputs, coefficients=config.hj192.coefficients), erosion_layer, habitat


def _ei_stage(config, grid, zone_sets, store, timer, result: RunResult) -> None:
    """HJ 192-2015 EI per county and year, ΔEI and its change class, function-zone indicators."""
    from ecoassess.assess.ei_inputs import habitat_km2, land_cover_layer
    from ecoassess.assess.hj192 import function_zone_indicators
    from ecoassess.cog import write_cog

    if not config.hj192.enabled:
        return
    years = [y for y in config.years if y in config.land_cover and y in config.imagery]
    if config.statistics is None or not years:
        log.info("HJ 192 EI skipped: it needs land cover, imagery and the statistics table")
        return
    try:
        tables, assumptions = [], []
        for year in years:
            with timer.stage(f"hj192 ei {year}"):
                ei, erosion_layer, habitat = ei_year(config, year, grid, zone_sets)
                if erosion_layer is not None:
                    rel = Path("layers") / f"erosion_class_{year}.tif"
                    write_cog(erosion_layer, store.path(rel), nodata=0, dtype="uint8", resampling="nearest",
                              tags={"long_name": "SL 190-2007 erosion intensity class",
                                    "source": erosion_layer.attrs.get("erosion_source", "")})
                    result.layers[f"erosion_class_{year}"] = rel
                tables.append(ei.table.assign(year=year))
                assumptions += [{"year": year, "assumption": a} for a in ei.assumptions]
                assumptions += [{"year": year, "assumption": f"capped at 100: {r.zone} {r.quantity} "
                                 f"{r.before:.4g} -> {r.after:.4g}"} for r in ei.capped.itertuples()]
                result.manifest.setdefault("hj192", {})[str(year)] = {
                    "coefficients": str(ei.coefficients.path), "version": ei.coefficients.version,
                    "ei": {str(k): float(v) for k, v in ei.table["ei"].items()}}
        table = _with_code(pd.concat(tables))
        cols = ["code", "year"] + [c for c in table.columns if c not in ("code", "year")]
        table = table[cols]
        result.tables["county_ei"] = table
        store.write_table("county_ei", _with_geometry_or_total(zone_sets, table), **_formats(config))
        change = ei_change_table(config, table, zone_sets)
        if change is not None:
            result.tables["county_ei_change"] = change
            store.write_table("county_ei_change", change, **_formats(config))
        if "function_zones" in config.zones and config.zones["function_zones"].type_field:
            fz_source = config.zones["function_zones"]
            fz = zone_sets["function_zones"]
            land_cover, legend = land_cover_layer(config, years[-1], grid)
            fz_habitat, _ = habitat_km2(fz, land_cover, legend)
            types = gpd.read_file(fz_source.path, layer=fz_source.layer).set_index(fz_source.id_field)[
                fz_source.type_field]
            area = pd.Series(fz.area_km2 - fz.area_outside_km2, index=fz.ids)
            indicators = function_zone_indicators(fz_habitat, area, types.reindex(fz.ids))
            indicators.insert(0, "year", years[-1])
            indicators.insert(1, "name", pd.Series(fz.names, index=fz.ids))
            indicators = _with_code(indicators)
            result.tables["function_zone_indicators"] = indicators
            store.write_table("function_zone_indicators", indicators, **_formats(config))
        notes = pd.DataFrame(assumptions).drop_duplicates()
        result.tables["ei_assumptions"] = notes
        store.write_table("ei_assumptions", notes, **_formats(config))
    except EcoassessError as exc:
        _isolated(config, result, "hj192 ei", exc)


def previous_ei(config: AssessmentConfig) -> pd.DataFrame:
    """``code, year, ei, name`` rows of the ``county_ei`` layer of earlier runs' results.gpkg (may be empty)."""
    import pyogrio

    rows = []
    for path in config.hj192.previous_results:
        try:
            layer = pyogrio.read_dataframe(path, layer="county_ei", read_geometry=False,
                                           columns=["code", "year", "name", "ei"])
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"has no readable 'county_ei' layer ({exc})", path=path, field="county_ei",
                             expected="the results.gpkg of an earlier ecoassess run") from exc
        rows.append(layer.assign(code=layer["code"].astype(str), source=str(path)))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["code", "year", "name", "ei"])


def ei_change_table(config: AssessmentConfig, table: pd.DataFrame, zone_sets: dict) -> pd.DataFrame | None:
    """ΔEI against the baseline year (this run or earlier results), change classes, the fluctuation flag and,
    for counties of key ecological function zones, the 7-class change (cut-offs unverified, marked)."""
    from ecoassess.assess.ei_inputs import dominant_function_type
    from ecoassess.assess.hj192 import change_class, fluctuation_flag, function_zone_change_class

    previous = previous_ei(config)
    series = pd.concat([previous[["code", "year", "ei"]], table[["code", "year", "ei"]]])
    series = series.drop_duplicates(["code", "year"], keep="last")  # this run wins over earlier results
    series = series.astype({"code": str, "year": int, "ei": float})
    wide = series.pivot(index="code", columns="year", values="ei").reindex(table["code"].unique())
    base = config.baseline_year
    if base is None or base not in wide.columns or config.year not in wide.columns:
        if base is not None:
            log.warning("no EI for the baseline year %s (neither computed nor in hj192.previous_results)", base)
        return None
    names = table.drop_duplicates("code").set_index("code")["name"]
    change = pd.DataFrame({"name": names, "ei_baseline": wide[base], "ei": wide[config.year]})
    change["delta_ei"] = change["ei"] - change["ei_baseline"]
    change["change_class"] = change_class(change["delta_ei"])
    change = change.join(fluctuation_flag(wide)[["fluctuation_level", "fluctuating"]])
    change.insert(0, "years", f"{base}-{config.year}")
    change["baseline_source"] = "this run" if base in set(table["year"]) else "hj192.previous_results"
    fz = config.zones.get("function_zones")
    if fz is not None and fz.type_field:
        types = dominant_function_type(zone_sets["county"], gpd.read_file(fz.path, layer=fz.layer), fz.type_field)
        change["function_type"] = types.reindex(change.index)
        key = change["function_type"].notna()
        change["function_zone_change_class"] = function_zone_change_class(change["delta_ei"]).where(key)
        change["function_zone_change_verified"] = False  # cut-offs [C]: indices/hj192_2015.yaml
    return _with_code(change)


def _with_geometry_or_total(zone_sets, table: pd.DataFrame) -> gpd.GeoDataFrame:
    """County rows with their polygons, the whole-area row (000000) with the dissolved study area."""
    counties = _with_geometry(zone_sets["county"], table[table["code"] != "000000"])
    whole = _with_geometry(zone_sets["study_area"], table[table["code"] == "000000"])
    return gpd.GeoDataFrame(pd.concat([counties, whole], ignore_index=True), geometry="geometry", crs=counties.crs)


def _with_code(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table.index.name = "code"
    return table.reset_index()


def _with_geometry(zones, table: pd.DataFrame) -> gpd.GeoDataFrame:
    """Attach each zone's polygon (analysis CRS) to a table keyed by ``code`` (the zone id)."""
    geoms = zones.gdf.geometry.rename("geometry").reset_index()
    geoms.columns = ["code", "geometry"]
    geoms["code"] = geoms["code"].astype(str)
    merged = geoms.merge(table.assign(code=table["code"].astype(str)), on="code", how="right")
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=zones.gdf.crs)


def _catalog_versions() -> dict:
    from ecoassess.assess.rsei import rsei_spec
    from ecoassess.legends import load_legend
    from ecoassess.spectral import load_catalog
    from ecoassess.tables import statistics_spec

    from ecoassess.assess.erosion import rusle_table
    from ecoassess.assess.hj192_coefficients import load_hj192
    from ecoassess.validate import available_legends

    versions = {"indices/spectral.yaml": load_catalog().version, "indices/rsei.yaml": rsei_spec()["version"],
                "indices/statistics_table.yaml": statistics_spec()["version"],
                "indices/hj192_2015.yaml": load_hj192().version, "indices/rusle.yaml": rusle_table().get("version", "")}
    versions.update({f"layers/{name}.yaml": load_legend(name).version for name in available_legends()})
    return versions


def _dissolve(gdf: gpd.GeoDataFrame, config: AssessmentConfig) -> gpd.GeoDataFrame:
    name = "全区" if config.outputs.lang == "zh" else "study area"
    return gpd.GeoDataFrame({"code": ["000000"], "name": [name]}, geometry=[gdf.union_all()], crs=gdf.crs)


def _formats(config: AssessmentConfig) -> dict:
    return {fmt: fmt in config.outputs.tables for fmt in ("gpkg", "csv", "xlsx")}


def _write_layers(store, veg: VegetationYear) -> dict[str, Path]:
    from ecoassess.cog import write_cog

    written = {}
    for name, layer, nodata, dtype in (("ndvi", veg.ndvi, float("nan"), "float32"),
                                       ("fvc", veg.fvc, float("nan"), "float32"),
                                       ("clear_count", veg.clear_count, -1, "int16")):
        rel = Path("layers") / f"{name}_{veg.year}.tif"
        write_cog(layer, store.path(rel), nodata=nodata, dtype=dtype,
                  tags={k: str(v) for k, v in layer.attrs.items() if k in ("long_name", "units", "formula",
                                                                            "ndvi_soil", "ndvi_veg")})
        written[f"{name}_{veg.year}"] = rel
    return written


def _write_maps(store, counties, table: pd.DataFrame, config: AssessmentConfig) -> dict[str, Path]:
    from ecoassess.report.maps import zone_choropleth

    year = config.year if config.year in set(table["year"]) else int(table["year"].max())
    rows = table[(table["year"] == year) & (table["code"] != "000000")]
    gdf = _with_geometry(counties, rows)
    zh = config.outputs.lang == "zh"
    rel = Path("maps") / f"ndvi_by_county_{year}.png"
    zone_choropleth(
        gdf, "ndvi_mean", store.path(rel),
        title=f"{year}年各县归一化植被指数(NDVI)均值" if zh else f"Mean NDVI by county, {year}",
        legend_label="NDVI 均值" if zh else "mean NDVI", label_field="name", lang=config.outputs.lang,
        cmap="RdYlGn", note=config.name)
    return {f"ndvi_by_county_{year}": rel}


def _endmember_summary(table: pd.DataFrame) -> dict:
    first = table.drop_duplicates("year").set_index("year")
    return {int(y): {"ndvi_soil": float(r["ndvi_soil"]), "ndvi_veg": float(r["ndvi_veg"])} for y, r in first.iterrows()}


def config_input_paths(config: AssessmentConfig) -> list[Path]:
    """Every file or folder a config names (for the manifest's input list)."""
    found: list[Path] = []

    def walk(value):
        if isinstance(value, Path):
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                if name != "source_path":
                    walk(getattr(value, name))

    walk(config)
    return sorted(set(found))



def _connect(address: str | None):
    if not address:
        return None
    from distributed import Client

    log.info("running on the dask.distributed scheduler at %s", address)
    return Client(address)
