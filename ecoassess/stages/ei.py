"""HJ 192-2015 EI stage: county EI with every intermediate, ΔEI and change classes, function-zone indicators."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import pandas as pd

from ecoassess.config import AssessmentConfig
from ecoassess.errors import EcoassessError, InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.readers import read_vector
from ecoassess.stages.base import RunContext, RunInputs, Stage
from ecoassess.stages.common import ei_years, formats, with_code, with_geometry
from ecoassess.stages.ei_inputs import constraint_events, erosion_km2, land_cover_of, statistics_rows
from ecoassess.stages.vegetation import vegetation_year

log = logging.getLogger(__name__)


def ei_year(config: AssessmentConfig, year: int, grid: AnalysisGrid, zone_sets: dict, vegetation=None,
            inputs: RunInputs | None = None):
    """HJ 192-2015 EI of every county and the whole area for ``year`` (STANDARDS §1), with every intermediate.

    ``vegetation``: the year's :class:`~ecoassess.stages.vegetation.VegetationYear` when the vegetation stage
    made it (its FVC splits grass classes; its monthly-maximum NDVI, made in the same pass as its composite).
    ``inputs``: the run's opened inputs (:class:`~ecoassess.stages.base.RunInputs`); without them, opened here.
    Returns the :class:`~ecoassess.assess.hj192.EiResult`, the erosion class layer (or None) and the habitat areas.
    """
    from ecoassess.assess import ei_inputs as gather
    from ecoassess.assess.hj192 import EiInputs, compute_ei

    inputs = inputs or RunInputs(config, grid)
    counties = zone_sets["county"]
    land_cover, legend = land_cover_of(inputs, year)
    grass = None
    if gather.needs_grass_split(legend):  # e.g. CLCD/WorldCover grass: split by this year's FVC (5/20/50 %)
        if vegetation is None:
            inside = counties.covered(chunk=config.grid.chunk)
            vegetation = vegetation_year(config, year, grid, inside, inputs)
        grass = gather.grass_fvc_km2(counties, vegetation.fvc, land_cover, legend)
    habitat, assumptions = gather.habitat_km2(counties, land_cover, legend, grass_fvc_areas=grass)
    if vegetation is not None and vegetation.monthly_max_ndvi is not None:
        monthly_ndvi, n_dates = vegetation.monthly_max_ndvi, vegetation.monthly_max_dates
    else:
        monthly = inputs.composite(year, "monthly_max_ndvi")
        monthly_ndvi, n_dates = monthly.ndvi, len(monthly.dates)
    ndvi_mean, ndvi_weight = gather.zone_ndvi(counties, monthly_ndvi)
    erosion, erosion_layer, erosion_notes = erosion_km2(inputs, counties, land_cover, legend, None)
    rivers = (None if config.rivers is None else
              gather.river_length_km(inputs.vector(config.rivers.path, config.rivers.layer, key="rivers",
                                                          crs=config.rivers.crs,
                                                          transformation=config.rivers.transformation), counties))
    notes = [f"vegetation cover from the May–September monthly-maximum NDVI composite of {n_dates} "
             "scene(s) (float NDVI with A_veg = 121.165124)",
             "river length from the river layer clipped to each county" if rivers is not None else
             "river length from the statistics table (river_length_km)",
             f"other land stress = {' + '.join(gather.OTHER_STRESS_SUBCLASSES)} areas of the land cover [C]"]
    if grass is not None:
        notes.append(f"{legend.name} grass split into high/medium/low cover by the {year} FVC (5/20/50 %, STANDARDS "
                     "§1.2; FVC by the 5 %/95 % NDVI dichotomy, STANDARDS §4)")
    area = pd.Series(counties.area_km2 - counties.area_outside_km2, index=counties.ids)
    ei_inputs = EiInputs(
        habitat_km2=habitat, ndvi_mean=ndvi_mean, ndvi_scale="float", statistics=statistics_rows(inputs, year),
        river_length_km=rivers, area_km2=area, ndvi_weight=ndvi_weight,
        severe_erosion_km2=None if erosion is None else erosion["severe_erosion_km2"],
        moderate_erosion_km2=None if erosion is None else erosion["moderate_erosion_km2"],
        other_stress_km2=gather.other_stress_km2(habitat), events=constraint_events(inputs, year),
        event_zone_field="county_code", names=pd.Series(counties.names, index=counties.ids), year=year,
        whole_area_id="000000", whole_area_name="全区" if config.outputs.lang == "zh" else "study area",
        assumptions=list(assumptions) + erosion_notes + notes)
    return compute_ei(ei_inputs, coefficients=config.hj192.coefficients), erosion_layer, habitat

class EiStage(Stage):
    """HJ 192-2015 EI per county and year, ΔEI and its change class, function-zone indicators: one resumable part.

    Uses ``vegetation`` (the years' FVC and monthly-maximum NDVI) when the vegetation stage made it."""

    name = "hj192 ei"
    uses = ("vegetation",)

    def skip_reason(self, config: AssessmentConfig) -> str | None:
        """In a run without imagery: the EI needs vegetation cover (NDVI); the land-cover stage gives its
        land-cover parts instead."""
        if config.hj192.enabled and config.land_cover and not config.imagery:
            return ("the EI needs imagery for its vegetation-cover index (NDVI); the run has land cover only, so "
                    "biological abundance and land stress are given alone (county_ei_landcover_parts)")
        return None

    def enabled(self, config: AssessmentConfig) -> bool:
        if not config.hj192.enabled:
            return False
        if not ei_years(config):
            log.info("HJ 192 EI skipped: it needs land cover, imagery and the statistics table")
            return False
        return True

    def run(self, ctx: RunContext) -> None:
        from ecoassess.resume import run_part

        run_part(ctx.store, self.name, lambda: _ei_part(ctx, ei_years(ctx.config)))


def _ei_part(ctx: RunContext, years: list[int]) -> None:
    """The EI of every year, ΔEI, function-zone indicators and assumptions: one resumable part of the run."""
    from ecoassess.assess.ei_inputs import habitat_km2
    from ecoassess.assess.hj192 import function_zone_indicators
    from ecoassess.cog import write_cog

    config, store, timer, zone_sets, result = ctx.config, ctx.store, ctx.timer, ctx.zone_sets, ctx.result
    vegetation = ctx.product("vegetation", {})
    try:
        tables, assumptions = [], []
        for year in years:
            with timer.stage(f"hj192 ei {year}"):
                ei, erosion_layer, habitat = ei_year(config, year, ctx.grid, zone_sets, vegetation.get(year),
                                                     ctx.inputs)
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
        table = with_code(pd.concat(tables))
        cols = ["code", "year"] + [c for c in table.columns if c not in ("code", "year")]
        table = table[cols]
        result.tables["county_ei"] = table
        store.write_table("county_ei", with_geometry_or_total(zone_sets, table), **formats(config))
        if config.outputs.maps:
            result.maps.update(write_ei_map(store, zone_sets["county"], table, config))
        change = ei_change_table(config, table, zone_sets, ctx.inputs)
        if change is not None:
            result.tables["county_ei_change"] = change
            store.write_table("county_ei_change", change, **formats(config))
        if "function_zones" in config.zones and config.zones["function_zones"].type_field:
            fz_source = config.zones["function_zones"]
            fz = zone_sets["function_zones"]
            land_cover, legend = land_cover_of(ctx.inputs, years[-1])
            fz_habitat, _ = habitat_km2(fz, land_cover, legend)
            types = ctx.inputs.vector(fz_source.path, fz_source.layer, key="zones.function_zones").set_index(
                fz_source.id_field)[fz_source.type_field]
            area = pd.Series(fz.area_km2 - fz.area_outside_km2, index=fz.ids)
            indicators = function_zone_indicators(fz_habitat, area, types.reindex(fz.ids))
            indicators.insert(0, "year", years[-1])
            indicators.insert(1, "name", pd.Series(fz.names, index=fz.ids))
            indicators = with_code(indicators)
            result.tables["function_zone_indicators"] = indicators
            store.write_table("function_zone_indicators", indicators, **formats(config))
        notes = pd.DataFrame(assumptions).drop_duplicates()
        result.tables["ei_assumptions"] = notes
        store.write_table("ei_assumptions", notes, **formats(config))
    except EcoassessError as exc:
        ctx.failed("hj192 ei", exc)


def write_ei_map(store, counties, table: pd.DataFrame, config: AssessmentConfig) -> dict[str, Path]:
    """County map of the assessment year's EI in the five HJ 192-2015 grades (class limits from the coefficients)."""
    from ecoassess.assess.hj192_coefficients import load_hj192
    from ecoassess.report.maps import zone_choropleth
    from ecoassess.report.styles import colours

    year = config.year if config.year in set(table["year"]) else int(table["year"].max())
    rows = table[(table["year"] == year) & (table["code"] != "000000")]
    gdf = with_geometry(counties, rows.drop(columns=["name"]).merge(
        pd.DataFrame({"code": counties.ids.astype(str), "name": counties.names}), on="code"))
    zh = config.outputs.lang == "zh"
    grades = load_hj192(config.hj192.coefficients).raw["grades"]["classes"]
    classes = [(g["lower"] if g["lower"] is not None else 0.0, g["upper"] if g["upper"] is not None else 100.0,
                f"{g['zh'] if zh else g['en']} ({g['lower'] or 0:g}–{g['upper'] or 100:g})", colour)
               for g, colour in zip(grades, colours("ei_grade"))][::-1]  # layers/report_styles.yaml
    rel = Path("maps") / f"ei_by_county_{year}.png"
    zone_choropleth(gdf, "ei", store.path(rel),
                    title=f"{year}年各县生态环境状况指数(EI)" if zh else f"Ecological index (EI) by county, {year}",
                    legend_label="EI 等级" if zh else "EI grade", label_field="name", lang=config.outputs.lang,
                    classes=classes, note=f"{config.name}; HJ 192-2015")
    return {f"ei_by_county_{year}": rel}


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

def ei_change_table(config: AssessmentConfig, table: pd.DataFrame, zone_sets: dict,
                    inputs: RunInputs | None = None) -> pd.DataFrame | None:
    """ΔEI against the baseline year (this run or earlier results), change classes, the fluctuation flag and,
    for counties of key ecological function zones, the 7-class change (cut-offs unverified, marked).
    ``inputs``: the run's opened inputs (the function-zone file is read once per run)."""
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
    # ΔEI is of the published EI, after the 环境限制指数 (as DYX's code does; STANDARDS §1.7/§1.8 do not say);
    # the change without the constraint shows how much of it the year's events make
    raw = table.pivot_table(index="code", columns="year", values="ei_before_constraint", aggfunc="first")
    if base in raw.columns and config.year in raw.columns:
        change["delta_ei_before_constraint"] = (raw[config.year] - raw[base]).reindex(change.index)
    change["change_class"] = change_class(change["delta_ei"])
    change = change.join(fluctuation_flag(wide)[["fluctuation_level", "fluctuating"]])
    change.insert(0, "years", f"{base}-{config.year}")
    change["baseline_source"] = "this run" if base in set(table["year"]) else "hj192.previous_results"
    fz = config.zones.get("function_zones")
    if fz is not None and fz.type_field:
        zones_gdf = (inputs.vector(fz.path, fz.layer, key="zones.function_zones", crs=fz.crs,
                                   transformation=fz.transformation) if inputs is not None
                     else read_vector(fz.path, fz.layer, key="zones.function_zones", crs=fz.crs,
                                      transformation=fz.transformation))
        types = dominant_function_type(zone_sets["county"], zones_gdf, fz.type_field)
        change["function_type"] = types.reindex(change.index)
        key = change["function_type"].notna()
        change["function_zone_change_class"] = function_zone_change_class(change["delta_ei"]).where(key)
        change["function_zone_change_verified"] = False  # cut-offs [C]: indices/hj192_2015.yaml
    return with_code(change)

def with_geometry_or_total(zone_sets, table: pd.DataFrame) -> gpd.GeoDataFrame:
    """County rows with their polygons, the whole-area row (000000) with the dissolved study area."""
    counties = with_geometry(zone_sets["county"], table[table["code"] != "000000"])
    whole = with_geometry(zone_sets["study_area"], table[table["code"] == "000000"])
    return gpd.GeoDataFrame(pd.concat([counties, whole], ignore_index=True), geometry="geometry", crs=counties.crs)
