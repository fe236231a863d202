"""Vegetation change stage (issue 18 item 7): ΔNDVI and ΔFVC between two dates, their classes and a county table.

The two dates are ``vegetation_change.before``/``after`` — periods that may lie in one year (before and after an
event) — or, by default, ``baseline_year`` and ``year`` (their composites, as the vegetation stage makes them).
A period is composited like a year (``composite.method``, ``composite.min_clear``) from the scenes it selects;
water is masked as in the vegetation stage (the land cover of the period's year, else MNDWI > 0).

ΔFVC uses ONE pair of end-members for both dates: ``fvc.ndvi_soil``/``ndvi_veg`` when the config fixes them,
else the 5 %/95 % quantiles of the valid NDVI of both dates pooled (:mod:`ecoassess.layers.vegetation_change`);
so FVC here differs from ``county_vegetation``'s when that fits each year on its own. Statistics are over the
cells observed clear on both dates, so ``ndvi_change_mean`` = ``ndvi_after_mean`` − ``ndvi_before_mean``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ecoassess.config import AssessmentConfig, PeriodSpec
from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.stages.base import RunContext, RunInputs, Stage
from ecoassess.stages.common import formats, with_code, with_geometry

log = logging.getLogger(__name__)


@dataclass
class PeriodNdvi:
    """The NDVI of one date of the change on the analysis grid (NaN outside the study area and where unobserved)."""

    key: str                       # "before" or "after"
    period: PeriodSpec
    ndvi: xr.DataArray
    masked: xr.DataArray           # bool: observed but never clear, or water
    dates: list[dt.date]           # acquisition dates behind the composite
    cache: object = field(default=None, repr=False)  # keeps materialised layers alive

    @property
    def valid(self) -> xr.DataArray:
        return np.isfinite(self.ndvi) & ~self.masked


@dataclass
class VegetationChange:
    """ΔNDVI, ΔFVC (after − before), their classes, and how they were made."""

    before: PeriodNdvi
    after: PeriodNdvi
    endmembers: object             # FvcEndmembers used for both dates
    fvc_before: xr.DataArray
    fvc_after: xr.DataArray
    ndvi_change: xr.DataArray      # NaN unless observed clear on both dates
    fvc_change: xr.DataArray
    ndvi_class: xr.DataArray       # int16 −2..2, nodata −99
    fvc_class: xr.DataArray
    masked: xr.DataArray           # masked (cloud, water) on either date
    ndvi_breaks: tuple
    fvc_breaks: tuple

    @property
    def suffix(self) -> str:
        return f"{self.before.period.label}_{self.after.period.label}"


def change_periods(config: AssessmentConfig) -> tuple[PeriodSpec, PeriodSpec] | None:
    """(before, after): the configured periods, else baseline_year and year when both have imagery, else None."""
    spec = config.vegetation_change
    if spec.before is not None:
        return spec.before, spec.after
    if config.baseline_year is not None and {config.baseline_year, config.year} <= set(config.imagery):
        return PeriodSpec(year=config.baseline_year), PeriodSpec(year=config.year)
    return None


def period_scenes(config: AssessmentConfig, inputs: RunInputs, key: str, period: PeriodSpec) -> list:
    """The opened scenes the period selects (InputError naming the period when there is none)."""
    months = config.composite.months
    scenes = [s for y in period.years for s in inputs.scenes(y) if period.contains(s.date, months)]
    if not scenes:
        first, last = period.span(months)
        listed = sorted(s.date.isoformat() for y in period.years for s in inputs.scenes(y))
        raise InputError(f"no scene of imagery.{', imagery.'.join(map(str, period.years))} was acquired in the "
                         f"{key} period {period.label} ({first} … {last}); scenes: {', '.join(listed) or 'none'}",
                         path=config.source_path, field=f"vegetation_change.{key}",
                         expected="at least one scene acquired in the period")
    return scenes


def period_ndvi(config: AssessmentConfig, key: str, period: PeriodSpec, grid: AnalysisGrid, inside: xr.DataArray,
                inputs: RunInputs, made: dict | None = None) -> PeriodNdvi:
    """The NDVI and mask of one period. A whole year is the vegetation stage's (``made``: its product, ``{year:
    VegetationYear}``; made here when absent); other periods are composited from the scenes they select."""
    from ecoassess.layers.vegetation import ndvi
    from ecoassess.materialize import materialize
    from ecoassess.sources import composite
    from ecoassess.stages.vegetation import vegetation_water_mask, vegetation_year

    method = config.composite.method
    if period.whole_year:
        veg = (made or {}).get(period.year) or vegetation_year(config, period.year, grid, inside, inputs)
        dates = inputs.composite(period.year, method).dates
        return PeriodNdvi(key, period, veg.ndvi, veg.masked, list(dates), veg)
    scenes = period_scenes(config, inputs, key, period)
    comp = composite(scenes, method="median", months=None, min_clear=config.composite.min_clear)
    layer, dates = ndvi(comp.bands), comp.dates
    if method == "monthly_max_ndvi":
        monthly = composite(scenes, method=method, months=None, min_clear=config.composite.min_clear)
        layer, dates = monthly.ndvi, monthly.dates
    water = vegetation_water_mask(inputs, period.years[0], comp.bands)
    masked = comp.masked if water is None else (comp.masked | (water & ~comp.nodata))
    cache = materialize({"ndvi": layer.where(inside), "masked": masked & inside})
    log.info("vegetation change: %s period %s from %d scene(s) (%s)", key, period.label, len(dates),
             ", ".join(d.isoformat() for d in dates))
    return PeriodNdvi(key, period, cache["ndvi"], cache["masked"], list(dates), cache)


def vegetation_change(config: AssessmentConfig, before: PeriodNdvi, after: PeriodNdvi) -> VegetationChange:
    """ΔNDVI and ΔFVC (after − before) on the cells observed clear on both dates, FVC of both dates from one pair
    of end-members (config-fixed, else pooled), and the change classes (breaks: config, else
    ``indices/vegetation_change.yaml``)."""
    from ecoassess.layers.vegetation import FvcEndmembers, endmember_warning, fvc
    from ecoassess.layers.vegetation_change import classify_change, default_breaks, pooled_fvc_endmembers

    if config.fvc.ndvi_soil is not None:
        endmembers = FvcEndmembers(config.fvc.ndvi_soil, config.fvc.ndvi_veg, 0,
                                   "fixed in the config (fvc.ndvi_soil, fvc.ndvi_veg)")
    else:
        endmembers = pooled_fvc_endmembers([before.ndvi, after.ndvi], [before.valid, after.valid])
    log.info("vegetation change: FVC end-members NDVI_soil = %.4f, NDVI_veg = %.4f for both dates (%s)",
             endmembers.ndvi_soil, endmembers.ndvi_veg, endmembers.method)
    if warning := endmember_warning(endmembers):
        log.warning("vegetation change: %s", warning)
    both = before.valid & after.valid
    fvc_before, fvc_after = fvc(before.ndvi, endmembers), fvc(after.ndvi, endmembers)
    ndvi_change = _delta(after.ndvi, before.ndvi, both, "NDVI change (after - before)")
    fvc_change = _delta(fvc_after, fvc_before, both, "FVC change (after - before)")
    spec = config.vegetation_change
    ndvi_breaks = tuple(spec.ndvi_breaks or default_breaks("ndvi"))
    fvc_breaks = tuple(spec.fvc_breaks or default_breaks("fvc"))
    return VegetationChange(before, after, endmembers, fvc_before, fvc_after, ndvi_change, fvc_change,
                            classify_change(ndvi_change, ndvi_breaks, name="ndvi_change_class"),
                            classify_change(fvc_change, fvc_breaks, name="fvc_change_class"),
                            before.masked | after.masked, ndvi_breaks, fvc_breaks)


def _delta(after: xr.DataArray, before: xr.DataArray, both: xr.DataArray, long_name: str) -> xr.DataArray:
    out = (after - before).where(both).astype("float32")
    out.attrs = {"long_name": long_name, "units": "1"}
    return out


def county_change_table(zones, change: VegetationChange) -> pd.DataFrame:
    """Per zone: mean NDVI and FVC of each date and their change over the cells observed clear on both dates, area
    (km²) of each change class, the end-members, and area accounting (valid on both dates / masked / nodata)."""
    from ecoassess.layers.vegetation import endmember_warning
    from ecoassess.layers.vegetation_change import change_spec
    from ecoassess.zones import zonal_class_areas, zonal_stats

    both = np.isfinite(change.ndvi_change)
    layers = {"ndvi_before": change.before.ndvi.where(both), "ndvi_after": change.after.ndvi.where(both),
              "ndvi_change": change.ndvi_change, "fvc_before": change.fvc_before.where(both),
              "fvc_after": change.fvc_after.where(both), "fvc_change": change.fvc_change}
    stats = zonal_stats(zones, layers, masked=change.masked, stats=("mean",))
    table = stats[["name", "area_km2"]].copy()
    table.insert(0, "before", change.before.period.label)
    table.insert(1, "after", change.after.period.label)
    table["before_dates"] = ", ".join(d.isoformat() for d in change.before.dates)
    table["after_dates"] = ", ".join(d.isoformat() for d in change.after.dates)
    for accounting in ("valid", "masked", "nodata"):
        table[f"{accounting}_km2"] = stats[f"ndvi_change_{accounting}_km2"]
    table["area_outside_km2"] = stats["area_outside_km2"]
    for name in layers:
        table[f"{name}_mean"] = stats[f"{name}_mean"]
    spec = change_spec()
    for quantity, classes in (("ndvi", change.ndvi_class), ("fvc", change.fvc_class)):
        areas = zonal_class_areas(zones, classes, nodata=spec["nodata"])
        columns = areas.attrs["class_columns"]
        for c in spec["classes"]:
            column = columns.get(c["code"])
            table[f"{quantity}_{c['key']}_km2"] = areas[column] if column is not None else 0.0
    table["ndvi_breaks"] = ", ".join(f"{b:g}" for b in change.ndvi_breaks)
    table["fvc_breaks"] = ", ".join(f"{b:g}" for b in change.fvc_breaks)
    table["ndvi_soil"] = change.endmembers.ndvi_soil
    table["ndvi_veg"] = change.endmembers.ndvi_veg
    table["fvc_endmembers"] = change.endmembers.method
    table["fvc_warning"] = endmember_warning(change.endmembers)
    return table


def write_change_layers(store, change: VegetationChange) -> dict[str, Path]:
    """ΔNDVI, ΔFVC and their classes as COGs (one pass), tagged with the periods, breaks and end-members."""
    from ecoassess.cog import write_cogs

    tags = {"before": change.before.period.label, "after": change.after.period.label,
            "before_dates": ", ".join(d.isoformat() for d in change.before.dates),
            "after_dates": ", ".join(d.isoformat() for d in change.after.dates)}
    fvc_tags = {**tags, "ndvi_soil": f"{change.endmembers.ndvi_soil:.6g}",
                "ndvi_veg": f"{change.endmembers.ndvi_veg:.6g}", "fvc_endmembers": change.endmembers.method}
    outputs = []
    for name, layer, nodata, dtype, extra in (
            ("ndvi_change", change.ndvi_change, float("nan"), "float32", tags),
            ("ndvi_change_class", change.ndvi_class, int(change.ndvi_class.attrs["nodata"]), "int16",
             {**tags, "breaks": change.ndvi_class.attrs["breaks"]}),
            ("fvc_change", change.fvc_change, float("nan"), "float32", fvc_tags),
            ("fvc_change_class", change.fvc_class, int(change.fvc_class.attrs["nodata"]), "int16",
             {**fvc_tags, "breaks": change.fvc_class.attrs["breaks"]})):
        rel = Path("layers") / f"{name}_{change.suffix}.tif"
        outputs.append((rel, layer, {"nodata": nodata, "dtype": dtype,
                                     "tags": {"long_name": layer.attrs.get("long_name", name), **extra}}))
    write_cogs([(layer, store.path(rel), options) for rel, layer, options in outputs])
    return {rel.stem: rel for rel, _, _ in outputs}


# -- the run ---------------------------------------------------------------------------------------------------

class VegetationChangeStage(Stage):
    """ΔNDVI/ΔFVC layers and ``county_vegetation_change`` between two dates; one resumable part."""

    name = "vegetation change"
    needs_imagery = "NDVI/FVC change between two dates"

    def skip_reason(self, config: AssessmentConfig) -> str | None:
        asked = config.vegetation_change.enabled and config.baseline_year is not None
        return super().skip_reason(config) if asked else None
    uses = ("vegetation",)

    def enabled(self, config: AssessmentConfig) -> bool:
        return config.vegetation_change.enabled and change_periods(config) is not None

    def run(self, ctx: RunContext) -> None:
        from ecoassess.resume import run_part

        run_part(ctx.store, self.name, lambda: _change_part(ctx))


def _change_part(ctx: RunContext) -> None:
    config, store, timer, zone_sets = ctx.config, ctx.store, ctx.timer, ctx.zone_sets
    before_period, after_period = change_periods(config)
    made = ctx.product("vegetation", {})
    with timer.stage("vegetation change"):
        before = period_ndvi(config, "before", before_period, ctx.grid, ctx.inside, ctx.inputs, made)
        after = period_ndvi(config, "after", after_period, ctx.grid, ctx.inside, ctx.inputs, made)
        change = vegetation_change(config, before, after)
        ctx.result.layers.update(write_change_layers(store, change))
    with timer.stage("vegetation change zonal statistics"):
        table = with_code(pd.concat([county_change_table(zone_sets["county"], change),
                                     county_change_table(zone_sets["study_area"], change)]))
    ctx.result.tables["county_vegetation_change"] = table
    store.write_table("county_vegetation_change", with_geometry(zone_sets["county"], table), **formats(config))
    em = change.endmembers
    ctx.result.manifest["vegetation_change"] = {
        "before": {"period": before_period.label, "dates": [d.isoformat() for d in before.dates]},
        "after": {"period": after_period.label, "dates": [d.isoformat() for d in after.dates]},
        "fvc_endmembers": {"ndvi_soil": em.ndvi_soil, "ndvi_veg": em.ndvi_veg, "method": em.method,
                           "n_pixels": em.n_pixels},
        "ndvi_breaks": list(change.ndvi_breaks), "fvc_breaks": list(change.fvc_breaks),
        "classes": "indices/vegetation_change.yaml"}
