"""RSEI stage: per-year RSEI (joint PCA over two years), layers, per-zone tables and the PCA report."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ecoassess.config import AssessmentConfig
from ecoassess.errors import EcoassessError
from ecoassess.grid import AnalysisGrid
from ecoassess.stages.base import RunContext, RunInputs, Stage
from ecoassess.stages.common import formats, with_code, with_geometry

log = logging.getLogger(__name__)


def rsei_years(config: AssessmentConfig, grid: AnalysisGrid, inside: xr.DataArray,
               inputs: RunInputs | None = None) -> list:
    """RSEI (Xu 2013; STANDARDS §3) for every year with thermal imagery; a joint PCA when there are two years.

    Reflectance comes from the thermal product itself when it carries the six optical bands (a Landsat C2 L2
    product: one date, one sensor, as in Xu 2013; opened with the config's ``masking``); otherwise from the
    year's composite of ``imagery`` (with ``composite.months`` and ``composite.min_clear``, as the vegetation
    stage makes it). ``inputs``: the run's opened inputs; without them the products are opened here.
    """
    from ecoassess.assess.rsei import RseiSettings, compute_rsei, rsei_indicators
    from ecoassess.assess.rsei import water_mask as mndwi_water_mask
    from ecoassess.sources import CORE_ROLES

    spec = config.rsei
    years = [y for y in config.years if y in config.thermal]
    if not spec.enabled or not years:
        return []
    settings = RseiSettings.from_spec(normalisation=spec.normalisation,
                                      water_mask=None if spec.water_mask == "land_cover" else spec.water_mask,
                                      wetness_index=spec.wetness_index)
    inputs = inputs or RunInputs(config, grid)
    indicators, valids, waters, water_sources, lst_notes = [], [], [], [], []
    for year in years:
        thermal = inputs.thermal(year)
        # before the indicators are bounded to their valid ranges: a thermal band with the wrong scale is refused
        lst_notes.append(check_lst_range(f"thermal.{year}", thermal.thermal_k, thermal.valid & inside,
                                         config.thermal[year].kind))
        if all(role in thermal.bands for role in CORE_ROLES):
            bands, clear, sensor = thermal.bands, thermal.clear, thermal.sensor
        else:
            scenes = inputs.scenes(year)
            comp = inputs.composite(year, "median")
            bands, clear, sensor = comp.bands, comp.clear_count > 0, scenes[0].sensor
            clear = clear & thermal.clear
        ind = rsei_indicators(bands, thermal.thermal_k, sensor=sensor, wetness_index=spec.wetness_index)
        if spec.water_mask == "land_cover" or (spec.water_mask is None and year in config.land_cover):
            water = inputs.water(year)
            water_sources.append("land_cover" if water is not None else "none")
        else:
            water = mndwi_water_mask(bands, clear, settings)
            water_sources.append(settings.water_mask)
        valid = clear & inside if water is None else clear & inside & ~water
        indicators.append(ind)
        valids.append(valid)
        waters.append(water)
    if spec.joint_pca and len(years) > 1:
        results = compute_rsei(indicators, valids, settings=settings, years=years, water=waters)
    else:
        results = []
        for ind, valid, year, water in zip(indicators, valids, years, waters):
            result = compute_rsei(ind, valid, settings=settings, water=water)
            result.year = year
            results.append(result)
    for result, source in zip(results, water_sources):  # the mask each year really used, for tables and manifest
        result.settings = dataclasses.replace(result.settings, water_mask=source)
    for result, note in zip(results, lst_notes):
        if note:
            result.warnings.append(note)
    return results


#: Share of RSEI's pixels whose LST may lie outside the catalog's valid range (indices/spectral.yaml, LST:
#: −60…+80 °C for land) before the thermal band is refused: a few such pixels are fires, industrial hot spots or
#: sensor artefacts (a warning in rsei_pca and the manifest); more are a scaling error.
LST_MAX_SHARE_OUTSIDE = 0.01


def check_lst_range(key: str, thermal_k, observed, kind: str = "geotiff") -> str | None:
    """Refuse a thermal band whose LST is not a land surface temperature in °C (issue 18, finding 3).
    ``observed``: bool layer of the pixels to check (observed by the product, inside the study area).

    A thermal band read with the wrong scale/offset (a plain ST_B10 GeoTIFF taken as kelvin: 30,000–53,000 °C; or
    the reflectance factors applied to it: −273 °C) or with its fill DN as a value would go into the PCA and the
    tables unnoticed, as min–max normalisation hides any affine error. More than :data:`LST_MAX_SHARE_OUTSIDE` of
    the pixels outside the catalog's valid range: InputError naming the band, the key to fix and the range found
    (the stage reports it as a problem); fewer: the warning returned (rsei_pca ``warnings``, the manifest; those
    pixels are NaN in RSEI and counted as invalid). One pass over the thermal band (and the observed mask)."""
    import warnings

    import dask
    import dask.array as da

    from ecoassess.errors import InputError

    from ecoassess.spectral import load_catalog

    if thermal_k is None:
        return None
    lst = load_catalog().compute_many(["LST"], {"thermal": thermal_k})["LST"]
    lo_ok, hi_ok = (float(v) for v in lst.attrs.get("valid_range", (-60.0, 80.0)))
    data, ok = da.asarray(lst.data), da.asarray(observed.data) & da.isfinite(da.asarray(lst.data))
    outside = ok & ((data < lo_ok) | (data > hi_ok))
    inside = da.where(ok, data, np.nan)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN chunks (outside the study area)
        n, n_out, lo, hi = dask.compute(ok.sum(), outside.sum(), da.nanmin(inside), da.nanmax(inside))
    n, n_out = int(n), int(n_out)
    if n == 0 or n_out == 0:
        return None
    share = n_out / n
    band = (thermal_k.attrs.get("band_file") or thermal_k.attrs.get("source") or "the thermal band") \
        if thermal_k is not None else "the thermal band"
    found = f"LST from {band} is {lo:.1f} … {hi:.1f} °C; {share:.2%} of its {n:,} observed pixels lie outside " \
            f"{lo_ok:g} … {hi_ok:g} °C"
    if share > LST_MAX_SHARE_OUTSIDE:
        if kind == "geotiff":
            fix, field = (f"declare them: a Landsat C2 ST_B10 GeoTIFF is {key}.bands.thermal_k: {{path: ..., "
                          "scale: 0.00341802, offset: 149.0, nodata: 0}, giving kelvin"), f"{key}.bands.thermal_k"
        else:
            fix, field = "check the product's MTL TEMPERATURE_MULT/ADD factors", f"{key}.path"
        raise InputError(f"{found}, implausible for land: the band's scale, offset or nodata are wrong or not "
                         f"declared, and RSEI is not computed on it ({fix})",
                         path=thermal_k.attrs.get("source") if thermal_k is not None else None,
                         field=field,
                         expected=f"surface temperature in kelvin, LST within {lo_ok:g} … {hi_ok:g} °C on land")
    note = (f"{key}: {found} (at most {LST_MAX_SHARE_OUTSIDE:.0%} tolerated: hot spots or artefacts; they are left "
            "out of RSEI and counted in rsei_invalid_km2)")
    log.warning("RSEI: %s", note)
    return note

def zone_rsei_table(zones, result) -> pd.DataFrame:
    """RSEI mean/std and the area share of each grade per zone, with area accounting (valid / masked / nodata /
    invalid — clear land with an indicator outside its catalog valid_range — / outside, km²)."""
    from ecoassess.assess.rsei import rsei_spec
    from ecoassess.zones import zonal_class_areas, zonal_stats

    masked = ~result.valid & np.isfinite(result.indicators["ndvi"])
    invalid = None
    if result.invalid is not None:
        masked = masked & ~result.invalid
        invalid = {"rsei": result.invalid}
    table = zonal_stats(zones, {"rsei": result.rsei}, masked=masked, stats=("mean", "std", "min", "max"),
                        invalid=invalid)
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

class RseiStage(Stage):
    """RSEI layers, per-zone RSEI tables and the PCA report (skipped without thermal imagery); one resumable part."""

    name = "rsei"
    needs_imagery = "RSEI (optical and thermal bands)"

    def skip_reason(self, config: AssessmentConfig) -> str | None:
        return super().skip_reason(config) if config.rsei.enabled else None

    def enabled(self, config: AssessmentConfig) -> bool:
        return bool(config.thermal) and config.rsei.enabled

    def run(self, ctx: RunContext) -> None:
        from ecoassess.resume import run_part

        run_part(ctx.store, self.name, lambda: _rsei_part(ctx))


def _rsei_part(ctx: RunContext) -> None:
    from ecoassess.assess.rsei import rsei_change
    from ecoassess.cog import write_cogs

    config, store, timer, zone_sets, result = ctx.config, ctx.store, ctx.timer, ctx.zone_sets, ctx.result
    try:
        with timer.stage("rsei"):
            rsei = rsei_years(config, ctx.grid, ctx.inside, ctx.inputs)
            outputs = []  # (layer, relative path, options): every layer of every year written in one pass
            for r in rsei:
                for name, layer, nodata, dtype in (("rsei", r.rsei, float("nan"), "float32"),
                                                   ("rsei_grade", r.grade, 0, "uint8")):
                    tags = {"long_name": layer.attrs.get("long_name", name), "pc1_share": f"{r.pc1_share:.4f}",
                            "joint_pca": str(r.joint)}
                    outputs.append((layer, Path("layers") / f"{name}_{r.year}.tif",
                                    {"nodata": nodata, "dtype": dtype, "tags": tags}))
            if len(rsei) == 2:
                delta, classes = rsei_change(rsei[0], rsei[1])
                for name, layer, nodata, dtype in (("rsei_change", delta, float("nan"), "float32"),
                                                   ("rsei_change_class", classes, -99, "int16")):
                    outputs.append((layer, Path("layers") / f"{name}_{rsei[0].year}_{rsei[1].year}.tif",
                                    {"nodata": nodata, "dtype": dtype}))
            write_cogs([(layer, store.path(rel), options) for layer, rel, options in outputs])
            result.layers.update({rel.stem: rel for _, rel, _ in outputs})
        with timer.stage("rsei zonal statistics"):
            for set_name, zones in zone_sets.items():
                if set_name == "study_area":
                    continue
                parts = [zone_rsei_table(zones, r) for r in rsei]
                if set_name == "county":
                    parts += [zone_rsei_table(zone_sets["study_area"], r) for r in rsei]
                table = with_code(pd.concat(parts))
                result.tables[f"{set_name}_rsei"] = table
                store.write_table(f"{set_name}_rsei", with_geometry(zones, table), **formats(config))
            pca = pd.DataFrame([{"year": r.year, "indicator": k, "pc1_loading": v, "normalisation_lower": r.bounds[k][0],
                                 "normalisation_upper": r.bounds[k][1], "pc1_share": r.pc1_share,
                                 "eigenvalues": ", ".join(f"{e:.6g}" for e in r.eigenvalues),
                                 "pc1_flipped": r.flipped, "pc1_flip_reason": r.flip_reason,
                                 "loadings_as_expected": not any("unexpected sign" in w for w in r.warnings),
                                 "joint_pca": r.joint, "wetness_index": r.wetness_index,
                                 "n_pixels": r.n_pixels,
                                 "water_mask": r.settings.water_mask, "warnings": " | ".join(r.warnings)}
                                for r in rsei for k, v in r.loadings.items()])
            result.tables["rsei_pca"] = pca
            store.write_table("rsei_pca", pca, **formats(config))
            result.manifest["rsei"] = [r.summary() for r in rsei]
    except EcoassessError as exc:
        ctx.failed("rsei", exc)
