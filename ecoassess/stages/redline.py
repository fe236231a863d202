"""Red-line encroachment stage (issue 19; STANDARDS §5): human-activity patches in and around the red-line units
(``zones.redline``) between two years, the patch ledger (台账) carried on from last year's, chips and summaries.

Outputs: table ``redline_patches`` (the ledger: GeoPackage layer + CSV), ``redline/redline_ledger.xlsx`` and
``.csv`` (the ledger staff fill in; :mod:`ecoassess.redline.ledger`), ``redline/chips/<patch_id>.png``, tables
``redline_unit_summary`` and ``redline_county_summary`` (:mod:`ecoassess.redline.summary`), an early warning per new
patch inside a unit, and ``manifest.redline`` (years, the detection's settings and statistics, table versions).

Memory: the detection holds both dates in memory over one window, the units' bounding box grown by the buffer:
measured ≈ 0.32 kB per window cell above the run's ≈ 0.45 GB base (peak RSS 0.61 GB for 0.50 M cells on the
sample, 1.11 GB for 2.07 M cells at ``scale=4``). A window above ``redline.max_cells`` (default 20 M cells ≈ 6.5 GB)
is refused before anything is read, with the numbers: split the units into several runs, or raise the limit on a
machine with the memory. (Windows per group of units would bound it further; their robust statistics would then
be per window.)
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import xarray as xr

from ecoassess.config import AssessmentConfig
from ecoassess.errors import EcoassessError, InputError
from ecoassess.stages.base import RunContext, Stage
from ecoassess.stages.common import formats

log = logging.getLogger(__name__)

ROLES = ("blue", "green", "red", "nir", "swir1")
#: cells added around the units + buffer: the detection's 3×3 neighbourhood and its 90 m mask dilation see
#: beyond a patch's edge
WINDOW_PAD_CELLS = 8
#: memory of the detection per window cell (measured on the sample at scale 1 and 4: module docstring)
BYTES_PER_CELL = 330


def redline_problem(config: AssessmentConfig) -> str | None:
    """Why the red-line stage cannot run on ``config`` (None when it can); validate reports it when ``redline``
    is configured, the stage stays off silently otherwise."""
    if "redline" not in config.zones:
        return "zones.redline is not set (the red-line units: {path, id_field, name_field})"
    before, after = config.redline_years()
    if before is None:
        return ("no before year: set baseline_year or redline.before_year (the date the patches are measured "
                "against)")
    if before >= after:
        return f"redline.before_year {before} must be before the after year {after}"
    lacking = [y for y in (before, after) if y not in config.imagery]
    if lacking:
        return (f"no imagery for year(s) {lacking} (imagery has {sorted(config.imagery)}); the red-line comparison "
                f"needs a composite of both {before} and {after}")
    return None


class RedlineStage(Stage):
    """Red-line patches, ledger, chips and summaries; one resumable part (``redline``)."""

    name = "redline"
    needs_imagery = "red-line change patches (composites of both years)"

    def skip_reason(self, config: AssessmentConfig) -> str | None:
        return super().skip_reason(config) if "redline" in config.zones else None

    def enabled(self, config: AssessmentConfig) -> bool:
        return redline_problem(config) is None

    def run(self, ctx: RunContext) -> None:
        from ecoassess.resume import run_part

        run_part(ctx.store, self.name, lambda: _redline_part(ctx))


def _redline_part(ctx: RunContext) -> None:
    """The stage's work; when it fails, what it wrote into the results folder (``redline/``) is removed, so that
    no partial ledger or chips are left beside the failure (tables and the result are only filled at its end)."""
    try:
        with ctx.timer.stage("redline"):
            _redline(ctx)
    except EcoassessError as exc:
        ctx.store.discard("redline")
        ctx.failed("redline", exc)


def window_slices(grid, bounds, pad_m: float) -> tuple[slice, slice]:
    """(rows, cols) of ``grid`` covering ``bounds`` (xmin, ymin, xmax, ymax, grid CRS) grown by ``pad_m``."""
    xmin, ymin, xmax, ymax = bounds
    res, x0, y1 = grid.resolution, grid.transform.c, grid.transform.f
    c0 = max(0, math.floor((xmin - pad_m - x0) / res))
    c1 = min(grid.width, math.ceil((xmax + pad_m - x0) / res))
    r0 = max(0, math.floor((y1 - (ymax + pad_m)) / res))
    r1 = min(grid.height, math.ceil((y1 - (ymin - pad_m)) / res))
    if c1 <= c0 or r1 <= r0:
        raise InputError("the red-line units lie outside the analysis grid", field="zones.redline",
                         expected="units inside the study area")
    return slice(r0, r1), slice(c0, c1)


def _date(ctx: RunContext, year: int, rows: slice, cols: slice) -> tuple[xr.Dataset, dict]:
    """The year's median composite over the window, in memory: the five reflectance roles (NaN where fewer than
    ``composite.min_clear`` clear observations) and ``mask`` = observed but never clear (cloud, shadow: the
    detection grows it by its mask dilation; never-observed cells stay plain no data)."""
    comp = ctx.inputs.composite(year, "median")
    missing = [r for r in ROLES if r not in comp.bands.data_vars]
    if missing:
        raise InputError(f"the {year} composite lacks band roles {missing}", field=f"imagery.{year}",
                         expected="imagery with blue, green, red, nir and swir1")
    ds = comp.bands[list(ROLES)].assign(mask=comp.masked).isel(y=rows, x=cols).compute()
    scenes = comp.metadata.get("scenes", [])
    dates = sorted(s["date"] for s in scenes)
    sensors = sorted({str(s["sensor"]) for s in scenes})
    meta = {"period": f"{dates[0]}/{dates[-1]}" if dates else str(year), "sensor": "+".join(sensors) or None,
            "scenes": len(scenes)}
    return ds, meta


def _land_cover(ctx: RunContext, years, rows, cols):
    """Land cover of both years on the window and its legend, or (None, None, None, why not)."""
    config = ctx.config
    if not config.redline_spec.use_land_cover:
        return None, None, None, "redline.use_land_cover is false"
    lacking = [y for y in years if y not in config.land_cover]
    if lacking:
        return None, None, None, f"no land cover for {lacking}"
    legends = {config.land_cover[y].legend for y in years}
    if len(legends) > 1:
        return None, None, None, f"the two years' land cover use different legends {sorted(legends)}"
    layers = [ctx.inputs.land_cover(y).isel(y=rows, x=cols).compute() for y in years]
    return layers[0], layers[1], legends.pop(), None


def _redline(ctx: RunContext) -> None:
    from ecoassess.grid import grid_of
    from ecoassess.redline.activity import load_activity_table
    from ecoassess.redline.detect import detect_patches
    from ecoassess.redline.evidence import load_settings
    from ecoassess.redline.ledger import CSV_NAME, XLSX_NAME, ledger_spec, read_ledger, update_ledger, write_ledger

    config, store, result = ctx.config, ctx.store, ctx.result
    spec = config.redline_spec
    before_year, after_year = config.redline_years()
    zone = config.zones["redline"]
    units = ctx.inputs.vector(zone.path, zone.layer, key="zones.redline", crs=zone.crs,
                              transformation=zone.transformation)
    units.attrs["path"] = str(zone.path)
    settings = load_settings()
    buffer_m = float(settings["buffer_m"] if spec.buffer_m is None else spec.buffer_m)
    grid = ctx.grid
    ubounds = units.to_crs(grid.crs.to_wkt()).total_bounds
    rows, cols = window_slices(grid, ubounds, buffer_m + WINDOW_PAD_CELLS * grid.resolution)
    n_cells = (rows.stop - rows.start) * (cols.stop - cols.start)
    if n_cells > spec.max_cells:
        raise InputError(f"the red-line units and their {buffer_m:g} m buffer span {rows.stop - rows.start} × "
                         f"{cols.stop - cols.start} = {n_cells:,} cells, above redline.max_cells = {spec.max_cells:,} "
                         f"(the detection holds both dates in memory, ≈ {n_cells * BYTES_PER_CELL / 2**30:.1f} GiB)",
                         path=zone.path, field="redline.max_cells",
                         expected="fewer units per run (split zones.redline), a coarser grid, or a larger "
                                  "redline.max_cells on a machine with the memory")
    table = load_activity_table(spec.activity_table)
    before, meta_b = _date(ctx, before_year, rows, cols)
    after, meta_a = _date(ctx, after_year, rows, cols)
    lc_b, lc_a, legend, lc_note = _land_cover(ctx, (before_year, after_year), rows, cols)
    res = detect_patches(before, after, units, counties=ctx.study_area, land_cover_before=lc_b,
                         land_cover_after=lc_a, legend=legend or "cas_lucc", buffer_m=buffer_m, mmu_m2=spec.mmu_m2,
                         activity_table=table, unit_id_field=zone.id_field, unit_name_field=zone.name_field,
                         county_code_field="code", county_name_field="name",
                         before_period=meta_b["period"], after_period=meta_a["period"],
                         before_sensor=meta_b["sensor"], after_sensor=meta_a["sensor"], settings=settings)
    previous = read_ledger(spec.ledger) if spec.ledger is not None else None
    ledger = update_ledger(res.patches, previous, year=after_year)
    summaries = _summaries(ctx, res, units, zone, ledger, table, grid_of(before))

    # written only now that everything is computed; chips first: a failure there leaves no ledger (and
    # _redline_part removes what this stage wrote)
    folder = Path("redline")
    chips = []
    if spec.chips and len(ledger):
        from ecoassess.redline.chips import write_chips

        chip_dir = store.path(folder / "chips" / "x").parent
        rgb = [ds[["red", "green", "blue"]].to_array("band").rio.write_crs(grid.crs.to_wkt()) for ds in (before, after)]
        for path in write_chips(ledger, rgb[0], rgb[1], chip_dir, units=units):
            rel = folder / "chips" / path.name
            store.path(rel, kind="chip", description="before/after image chip of a patch")
            chips.append(rel.as_posix())
    for name, what in ((XLSX_NAME, "the patch ledger (台账) for staff: sheet 台账 + hidden outlines"),
                       (CSV_NAME, "the patch ledger (台账) as CSV, outlines as WKT")):
        store.path(folder / name, kind="ledger", description=what)
    write_ledger(ledger, store.path(folder / XLSX_NAME).parent)
    result.files["redline_ledger"] = folder / XLSX_NAME
    if chips:
        result.files["redline_chips"] = folder / "chips"
    fmt = formats(config)
    store.write_table("redline_patches", ledger, gpkg=fmt["gpkg"], csv=fmt["csv"], xlsx=False,
                      description="red-line patch ledger (台账), one row per patch part, English keys")
    result.tables["redline_patches"] = ledger
    for name, t, what in summaries:
        store.write_table(name, t, **fmt, description=what)
        result.tables[name] = t

    info = dict(res.info, land_cover_note=lc_note)
    result.manifest["redline"] = json.loads(json.dumps({
        "before_year": before_year, "after_year": after_year, "before": meta_b, "after": meta_a,
        "window": {"row_off": rows.start, "col_off": cols.start, "height": rows.stop - rows.start,
                   "width": cols.stop - cols.start, "cells": n_cells},
        "detection": info, "detection_settings": "indices/redline_detection.yaml",
        "activity_table": table.path, "activity_table_version": table.version,
        "ledger_version": ledger_spec()["version"], "previous_ledger": str(spec.ledger) if spec.ledger else None,
        "patches": int(len(ledger)), "reported": int(ledger["reported"].sum()) if len(ledger) else 0,
        "chips": len(chips)}, default=_jsonable))


def _summaries(ctx, res, units, zone, ledger, table, wgrid) -> list:
    """[(name, table, description)] of ``redline_unit_summary`` and ``redline_county_summary``; ``wgrid``: the
    detection window's grid."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from ecoassess.redline.detect import prepare_units, unit_observability
    from ecoassess.redline.ledger import ledger_spec
    from ecoassess.redline.summary import county_summary, unit_summary

    false_label = ledger_spec()["false_detection"]
    types = list(table.types)
    per_unit = unit_summary(ledger, res.units, types, false_label=false_label)
    # the units cut by the counties, each piece with its own observability
    ug = prepare_units(units, wgrid.crs, zone.id_field, zone.name_field)
    counties = ctx.study_area.to_crs(wgrid.crs.to_wkt())
    pieces, geoms = [], []
    for uid, g in zip(ug["unit_id"], ug.geometry):
        for code, name, cg in zip(counties["code"], counties["name"], counties.geometry):
            part = shapely.intersection(g, cg)
            if part.area >= 0.01 * wgrid.resolution ** 2:   # not the slivers where unit and county edges touch
                pieces.append({"county_code": code, "county_name": name, "unit_id": uid, "unit_name": uid})
                geoms.append(part)
    pieces = gpd.GeoDataFrame(pieces, geometry=geoms, crs=ug.crs) if pieces else None
    if pieces is not None and res.observed is not None:
        obs = unit_observability(pieces, res.observed, wgrid)
        pieces_t = pieces.drop(columns="geometry").reset_index(drop=True)
        pieces_t[["area_m2", "observed_m2", "not_observable_m2"]] = obs[["area_m2", "observed_m2",
                                                                          "not_observable_m2"]].to_numpy()
    else:
        pieces_t = pd.DataFrame(columns=["county_code", "county_name", "unit_id", "area_m2", "observed_m2",
                                         "not_observable_m2"])
    per_county = county_summary(ledger, pieces_t, types, false_label=false_label)
    return [("redline_unit_summary", per_unit, "per red-line unit: patches by type, new vs known, share disturbed, "
                                               "area not observable"),
            ("redline_county_summary", per_county, "per county: the same over its red-line units")]


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


__all__ = ["RedlineStage", "redline_problem", "window_slices"]
