"""Vegetation stage: composites, NDVI and FVC (STANDARDS §4) per year, county table, COGs and the county map."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ecoassess.config import AssessmentConfig
from ecoassess.errors import EcoassessError, InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.materialize import materialize
from ecoassess.stages.base import RunContext, RunInputs, Stage
from ecoassess.stages.common import ei_years, formats, with_code, with_geometry

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
    n_dates: int                   # acquisition dates behind the NDVI composite
    monthly_max_ndvi: xr.DataArray | None  # May–Sep monthly-max NDVI on every cell (for HJ 192), if made
    monthly_max_dates: int
    cache: object = field(default=None, repr=False)  # keeps the materialised composite layers alive
    #: bool: observed, clear and not water, but NDVI outside its catalog valid_range (NaN in ndvi and fvc)
    invalid: xr.DataArray | None = None

def vegetation_water_mask(inputs: RunInputs, year: int, bands: xr.Dataset | None) -> xr.DataArray | None:
    """Open water for masking vegetation statistics: from the year's land cover when given, else MNDWI > 0."""
    from ecoassess.spectral import load_catalog

    water = inputs.water(year)
    if water is not None:
        return water
    if bands is not None and "green" in bands and "swir1" in bands:
        log.info("%d: no land cover given; water masked where MNDWI > 0 (Xu 2006)", year)
        mndwi = load_catalog().compute_many(["MNDWI"], {"green": bands["green"], "swir1": bands["swir1"]})["MNDWI"]
        return mndwi > 0
    return None

def vegetation_year(config: AssessmentConfig, year: int, grid: AnalysisGrid, inside: xr.DataArray,
                    inputs: RunInputs | None = None) -> VegetationYear:
    """Composite the year's scenes, then NDVI and FVC (STANDARDS §4) on the grid, lazily.

    ``inputs``: the run's opened inputs (:class:`~ecoassess.stages.base.RunInputs`); without them the scenes
    and land cover are opened here."""
    from ecoassess.layers.vegetation import FvcEndmembers, endmember_warning, fvc, fvc_endmembers, ndvi
    from ecoassess.sources.composite import pending_range_counts, settle_range_counts
    from ecoassess.spectral import bound_to_valid_range, outside_valid_range

    inputs = inputs or RunInputs(config, grid)
    scenes = inputs.scenes(year)
    if not scenes:
        raise InputError(f"no imagery is configured for year {year}", field=f"imagery.{year}")
    # the scenes' reflectance-range counts come from the materialisation below, which reads every band anyway
    comp = inputs.composite(year, "median", range_counts_later=True)
    ndvi_layer, n_dates = ndvi(comp.bands), len(comp.dates)
    monthly = None
    if config.composite.method == "monthly_max_ndvi" or year in ei_years(config):
        # HJ 192's vegetation cover needs the May–Sep monthly-max NDVI: made here, so the scenes are read once
        monthly = inputs.composite(year, "monthly_max_ndvi", range_counts_later=True)
    if config.composite.method == "monthly_max_ndvi":
        ndvi_layer, n_dates = monthly.ndvi, len(monthly.dates)
    water = vegetation_water_mask(inputs, year, comp.bands)
    masked = comp.masked if water is None else (comp.masked | (water & ~comp.nodata))
    masked = masked & inside
    # NDVI outside its catalog valid_range (−1…1: a ratio of slightly negative reflectance, e.g. red −0.010 and
    # nir 0.0101 give 206) is not a measurement: NaN, and its area is counted as invalid (issue 18, item 5)
    invalid = outside_valid_range(ndvi_layer) & inside & ~masked
    ndvi_layer = bound_to_valid_range(ndvi_layer)
    # the composite is computed once; the quantile passes, the COGs and the zonal statistics read the result
    layers = {"ndvi": ndvi_layer, "masked": masked, "clear_count": comp.clear_count, "invalid": invalid}
    if monthly is not None and monthly.ndvi is not ndvi_layer:
        layers["monthly_max_ndvi"] = monthly.ndvi
    # one pass over the scenes for every composite, which also counts each scene's reflectance outside its range
    pending, range_counts = pending_range_counts(comp, monthly)
    cache = materialize(layers, reductions=range_counts)
    settle_range_counts(pending, cache.reductions)
    if inputs.drop_stale_composites(year):  # a scene had only out-of-range clear pixels: without it (rare)
        cache.close()
        return vegetation_year(config, year, grid, inside, inputs)
    ndvi_all_cells, masked = cache["ndvi"], cache["masked"]
    monthly_ndvi = None if monthly is None else cache.get("monthly_max_ndvi", ndvi_all_cells)
    ndvi_layer = ndvi_all_cells.where(inside)
    valid = np.isfinite(ndvi_layer) & ~masked
    if config.fvc.ndvi_soil is not None:
        endmembers = FvcEndmembers(config.fvc.ndvi_soil, config.fvc.ndvi_veg, 0,
                                   "fixed in the config (fvc.ndvi_soil, fvc.ndvi_veg)")
        log.info("%d: FVC end-members fixed by the config: NDVI_soil = %.4f, NDVI_veg = %.4f", year,
                 endmembers.ndvi_soil, endmembers.ndvi_veg)
    else:
        endmembers = fvc_endmembers(ndvi_layer, valid)
        log.info("%d: FVC end-members NDVI_soil = %.4f, NDVI_veg = %.4f over %d valid pixels", year,
                 endmembers.ndvi_soil, endmembers.ndvi_veg, endmembers.n_pixels)
    if warning := endmember_warning(endmembers):
        log.warning("%d: %s", year, warning)
    fvc_layer = fvc(ndvi_layer, endmembers)
    return VegetationYear(year, ndvi_layer, fvc_layer, masked, cache["clear_count"], endmembers, len(scenes),
                          config.composite.method, n_dates, monthly_ndvi,
                          0 if monthly is None else len(monthly.dates), cache, cache["invalid"])

def county_vegetation_table(zones, veg: VegetationYear) -> pd.DataFrame:
    """Per-zone NDVI and FVC statistics with area accounting (valid / masked / nodata / invalid / outside, km²;
    invalid = observed and clear, but NDVI outside its catalog valid_range)."""
    from ecoassess.layers.vegetation import endmember_warning
    from ecoassess.zones import zonal_stats

    invalid = None if veg.invalid is None else {"ndvi": veg.invalid, "fvc": veg.invalid}
    table = zonal_stats(zones, {"ndvi": veg.ndvi, "fvc": veg.fvc}, masked=veg.masked, stats=("mean", "std", "min", "max"),
                        invalid=invalid)
    table.insert(0, "year", veg.year)
    table["ndvi_soil"] = veg.endmembers.ndvi_soil
    table["ndvi_veg"] = veg.endmembers.ndvi_veg
    table["fvc_endmembers"] = veg.endmembers.method
    table["fvc_warning"] = endmember_warning(veg.endmembers)
    table["composite_method"] = veg.composite_method
    table["n_scenes"] = veg.n_scenes
    return table


# -- the run ---------------------------------------------------------------------------------------------------

class VegetationStage(Stage):
    """NDVI/FVC layers and the county vegetation table, year by year (a failing year is reported), and the map.

    Provides ``vegetation``: ``{year: VegetationYear}`` of the years computed in this run (a year reused from an
    interrupted run's staging is not in it; the EI stage then makes what it needs itself)."""

    name = "vegetation"
    needs_imagery = "NDVI and FVC (county_vegetation)"
    provides = ("vegetation",)

    def run(self, ctx: RunContext) -> None:
        from ecoassess.resume import run_part

        config, store, timer, zone_sets = ctx.config, ctx.store, ctx.timer, ctx.zone_sets
        years_made: dict = {}
        ctx.provide("vegetation", years_made)

        def year_part(year: int) -> pd.DataFrame:
            with timer.stage(f"vegetation {year}"):
                veg = vegetation_year(config, year, ctx.grid, ctx.inside, ctx.inputs)
                ctx.result.layers.update(write_vegetation_layers(store, veg))
                years_made[year] = veg
            with timer.stage(f"zonal statistics {year}"):
                return pd.concat([county_vegetation_table(zone_sets["county"], veg),
                                  county_vegetation_table(zone_sets["study_area"], veg)])

        rows = []
        for year in [y for y in config.years if y in config.imagery]:  # a baseline may come from earlier results
            try:
                rows.append(run_part(store, f"vegetation {year}", lambda: year_part(year)))
            except EcoassessError as exc:
                ctx.failed(f"vegetation {year}", exc)
        if not rows:
            raise EcoassessError("no year could be assessed (the problems of each year are listed above)")
        table = with_code(pd.concat(rows))
        ctx.result.tables["county_vegetation"] = table
        ctx.result.manifest["fvc_endmembers"] = endmember_summary(table)
        store.write_table("county_vegetation", with_geometry(zone_sets["county"], table), **formats(config))
        if config.outputs.maps:
            with timer.stage("maps"):
                ctx.result.maps.update(write_vegetation_map(store, zone_sets["county"], table, config))

def write_vegetation_layers(store, veg: VegetationYear) -> dict[str, Path]:
    """NDVI, FVC and the clear-observation count as COGs, in one pass over the composite they share."""
    from ecoassess.cog import write_cogs

    outputs = []
    for name, layer, nodata, dtype in (("ndvi", veg.ndvi, float("nan"), "float32"),
                                       ("fvc", veg.fvc, float("nan"), "float32"),
                                       ("clear_count", veg.clear_count, -1, "int16")):
        tags = {k: str(v) for k, v in layer.attrs.items() if k in ("long_name", "units", "formula", "ndvi_soil",
                                                                   "ndvi_veg")}
        outputs.append((f"{name}_{veg.year}", layer, Path("layers") / f"{name}_{veg.year}.tif",
                        {"nodata": nodata, "dtype": dtype, "tags": tags}))
    write_cogs([(layer, store.path(rel), options) for _, layer, rel, options in outputs])
    return {key: rel for key, _, rel, _ in outputs}

def write_vegetation_map(store, counties, table: pd.DataFrame, config: AssessmentConfig) -> dict[str, Path]:
    from ecoassess.report.maps import zone_choropleth

    year = config.year if config.year in set(table["year"]) else int(table["year"].max())
    rows = table[(table["year"] == year) & (table["code"] != "000000")]
    gdf = with_geometry(counties, rows)
    zh = config.outputs.lang == "zh"
    rel = Path("maps") / f"ndvi_by_county_{year}.png"
    zone_choropleth(
        gdf, "ndvi_mean", store.path(rel),
        title=f"{year}年各县归一化植被指数(NDVI)均值" if zh else f"Mean NDVI by county, {year}",
        legend_label="NDVI 均值" if zh else "mean NDVI", label_field="name", lang=config.outputs.lang,
        cmap="RdYlGn", note=config.name)
    return {f"ndvi_by_county_{year}": rel}

def endmember_summary(table: pd.DataFrame) -> dict:
    first = table.drop_duplicates("year").set_index("year")
    return {int(y): {"ndvi_soil": float(r["ndvi_soil"]), "ndvi_veg": float(r["ndvi_veg"]),
                     "method": r["fvc_endmembers"], "warning": r["fvc_warning"]} for y, r in first.iterrows()}
