"""What the HJ 192 EI stage reads from the config: land cover, erosion classes, statistics rows, events.

Each function takes the run's opened inputs (:class:`~ecoassess.stages.base.RunInputs`: every file read once per
run) and hands data to the plain functions of :mod:`ecoassess.assess.ei_inputs` and :mod:`ecoassess.assess.hj192`.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from ecoassess.assess.ei_inputs import erosion_coverage_problems, rows_of_year
from ecoassess.errors import InputError
from ecoassess.stages.base import RunInputs


def land_cover_of(inputs: RunInputs, year: int):
    """The year's land cover on the grid (opened once per run) and its legend; an error naming the field when the
    EI year has none."""
    layer = inputs.land_cover(year)
    if layer is None:
        raise InputError(f"the HJ 192 EI needs land cover for {year}", field=f"land_cover.{year}",
                         expected="a land-cover raster with a legend (e.g. cas_lucc)")
    return layer, inputs.legend(year)


def erosion_km2(inputs: RunInputs, zones, land_cover: xr.DataArray, legend,
                fvc: xr.DataArray | None) -> tuple[pd.DataFrame | None, xr.DataArray | None, list[str]]:
    """Moderate and severe erosion areas per zone (SL 190-2007 → HJ 192 groups), the class layer and notes: from
    the given class raster (``erosion.classes``), else a RUSLE estimate on the DEM (stated as estimated)."""
    from ecoassess.assess.erosion import (erosion_areas_by_class, erosion_classes, estimate_soil_loss,
                                          read_erosion_classes)
    from ecoassess.layers.dem import dem_notes

    config, grid = inputs.config, inputs.grid
    spec = config.erosion
    if spec is None:
        return None, None, ["no erosion input: severe and moderate erosion areas counted as 0 km² "
                            "(land stress understated, EI overstated)"]
    if spec.classes is not None:
        classes = read_erosion_classes(spec.classes.path, grid, band=spec.classes.band,
                                       class_map=spec.classes.class_map, chunk=config.grid.chunk)
        notes = [f"erosion areas from the given SL 190-2007 class raster {spec.classes.path.name}"]
    else:
        if config.dem is None:
            raise InputError("a RUSLE erosion estimate needs a DEM", field="dem")
        # the height unit from the file's tag or dem.z_units (feet as metres tripled the slopes); voids as nodata
        dem = inputs.dem()
        r = _factor(spec.r_factor, inputs)
        k = _factor(spec.k_factor, inputs)
        loss = estimate_soil_loss(dem, land_cover, legend, r_factor=r, k_factor=k, fvc=fvc,
                                  slope_length_m=spec.slope_length_m, z_units=dem.attrs["z_units"])
        classes = erosion_classes(loss, region=spec.region)
        notes = [f"erosion areas ESTIMATED with RUSLE (R = {spec.r_factor}, K = {spec.k_factor}, SL 190 region "
                 f"{spec.region}); not a surveyed erosion map"] + dem_notes(dem)
    table = erosion_areas_by_class(zones, classes)
    source = spec.classes.path if spec.classes is not None else config.dem.path
    notes += erosion_coverage_problems(table, source)
    return table, classes, notes


def _factor(value, inputs: RunInputs):
    """A RUSLE factor: a number, or a raster read once per run onto the grid."""
    if isinstance(value, (int, float)):
        return float(value)
    return inputs.raster(value, kind="continuous", dtype="float32")


def statistics_rows(inputs: RunInputs, year: int) -> pd.DataFrame:
    """The statistics-table rows of ``year``, indexed by six-digit county code (``code``)."""
    source = inputs.config.statistics
    if source is None:
        raise InputError("the HJ 192 EI needs the county statistics table (emissions, precipitation, water "
                         "resources)", field="statistics")
    rows = rows_of_year(inputs.table(source.path, source.sheet), year, year_field=source.year_field,
                        county_field=source.county_field)
    rows.index = pd.Index(rows.pop("county_code"), name="code")
    return rows


def constraint_events(inputs: RunInputs, year: int) -> pd.DataFrame | None:
    """Constraint events of ``year`` with a six-digit ``county_code`` (None when the config names no events)."""
    source = inputs.config.constraint_events
    if source is None:
        return None
    return rows_of_year(inputs.table(source.path, source.sheet), year, year_field=source.year_field,
                        county_field=source.county_field)
