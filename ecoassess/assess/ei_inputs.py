"""The per-county inputs of the HJ 192-2015 EI, computed from data: areas, NDVI, rivers, erosion, table rows.

Plain functions on layers, zone sets and tables (no config, no file reading: ``ecoassess.stages.ei_inputs``
reads what the config names). Each returns pandas objects indexed by zone id, in the units :class:`EiInputs`
documents, and says where every number came from (the ``assumptions`` end up in the results and the report):

* habitat sub-class areas: the year's land cover through its legend's HJ 192 crosswalk (``layers/``);
* vegetation cover: zone mean of the May–September monthly-maximum NDVI composite (float NDVI);
* river length: the river layer clipped to each zone in the equal-area CRS, else the statistics table;
* erosion: areas per zone of the SL 190-2007 classes (given, or a RUSLE estimate stated as estimated);
* other land stress: sand + saline land + bare rock of the land cover [C: STANDARDS §1.5];
* statistics and constraint events: the tables' rows of the year.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from ecoassess.errors import InputError

log = logging.getLogger(__name__)

#: HJ 192 sub-classes counted as 其他土地胁迫 (sandification, salinisation, rocky desertification) [C].
OTHER_STRESS_SUBCLASSES = ("sand", "saline", "bare_rock")


def habitat_km2(zones, land_cover: xr.DataArray, legend, *,
                grass_fvc_areas: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str]]:
    """km² per HJ 192 sub-class per zone (coverage-weighted) and the crosswalk assumptions used.

    ``grass_fvc_areas``: grass km² per FVC class (:func:`grass_fvc_km2`) for legends whose grass class must be
    split into high/medium/low cover (STANDARDS §1.2, 5/20/50 %).
    """
    from ecoassess.assess.landcover import habitat_areas
    from ecoassess.zones import zonal_class_areas

    class_areas = zonal_class_areas(zones, land_cover, nodata=legend.nodata)
    if not class_areas.attrs["class_columns"]:
        raise InputError("has no land-cover class anywhere in the study area (only nodata)",
                         path=land_cover.attrs.get("source"),
                         expected=f"codes of {legend.source} over the study area (check its CRS and nodata)")
    unknown = legend.unknown_codes(class_areas.attrs["class_columns"])
    if unknown:
        raise InputError(f"land-cover codes {unknown} are not in the legend '{legend.name}'",
                         path=land_cover.attrs.get("source"), expected=f"codes of {legend.source}")
    return habitat_areas(class_areas, legend, grass_fvc_areas=grass_fvc_areas)


def needs_grass_split(legend) -> bool:
    """True when the legend has a grass class that HJ 192 splits by cover (CLCD, WorldCover, Dynamic World, ...)."""
    from ecoassess.assess.landcover import legend_codes

    return bool(legend_codes(legend, "grass"))


def grass_fvc_km2(zones, fvc: xr.DataArray, land_cover: xr.DataArray, legend) -> pd.DataFrame:
    """Grass area per FVC cover class (low < 20 %, medium 20–50 %, high ≥ 50 %) per zone, lazily per chunk."""
    import dask.array as da

    from ecoassess.assess.landcover import grass_cover_class, grass_fvc_areas_from_class_areas, legend_codes
    from ecoassess.zones import zonal_class_areas

    codes = np.asarray(legend_codes(legend, "grass"))

    def block(f, lc):
        return np.where(np.isin(lc, codes), grass_cover_class(f), 0).astype("uint8")

    data = da.map_blocks(block, fvc.data, land_cover.data.rechunk(fvc.data.chunks), dtype="uint8")
    layer = fvc.copy(data=data)
    layer.attrs.update({"nodata": 0})
    return grass_fvc_areas_from_class_areas(zonal_class_areas(zones, layer, nodata=0))


def river_length_km(rivers: gpd.GeoDataFrame, zones) -> pd.Series:
    """River length (km) per zone: river lines clipped to each zone polygon in the grid's equal-area CRS."""
    rivers = rivers.to_crs(zones.gdf.crs)
    polys = zones.gdf.geometry
    lengths = {}
    for zone_id, poly in polys.items():
        clipped = rivers.geometry.intersection(poly)
        lengths[zone_id] = float(clipped.length.sum()) / 1000.0
    return pd.Series(lengths, name="river_length_km")


def erosion_coverage_problems(table: pd.DataFrame, source) -> list[str]:
    """Erosion areas where the class layer has no value (DEM or class raster without data there: a wrong CRS,
    nodata) would silently count as no erosion and raise EI: an error below half of a zone, a note below 99 %."""
    inside = table["area_km2"] - table["area_outside_km2"]
    share = (1 - table["erosion_nodata_km2"] / inside.where(inside > 0)).fillna(1.0)
    poor = share[share < 0.5]
    if len(poor):
        listed = ", ".join(f"{z} {max(0.0, 100 * v):.0f} %" for z, v in poor.head(5).items())
        raise InputError(f"gives erosion classes for less than half of zone(s) {listed}; without data the "
                         "erosion would count as none", path=source,
                         expected="data over the whole study area (check its CRS and nodata)")
    partial = share[share < 0.99]
    return [f"erosion classes cover only {100 * v:.1f} % of zone {z} ({source}); the rest counts as no erosion"
            for z, v in partial.items()]


def other_stress_km2(habitat: pd.DataFrame) -> pd.Series:
    """其他土地胁迫面积: sand + saline + bare rock sub-class areas [C: STANDARDS §1.5].

    ``habitat``: :func:`habitat_km2`'s table (one column per HJ 192 sub-class, named without unit)."""
    missing = [c for c in OTHER_STRESS_SUBCLASSES if c not in habitat.columns]
    if missing:  # a renamed column must not turn the stress area silently into 0
        raise ValueError(f"habitat table has no sub-class column(s) {missing}; columns: {list(habitat.columns)}")
    return habitat[list(OTHER_STRESS_SUBCLASSES)].sum(axis=1)


def zone_ndvi(zones, ndvi: xr.DataArray) -> tuple[pd.Series, pd.Series]:
    """Zone mean NDVI over observed pixels (water included: HJ 192 averages every pixel) and its weight (km²)."""
    from ecoassess.zones import zonal_stats

    table = zonal_stats(zones, {"ndvi": ndvi}, stats=("mean",))
    return table["ndvi_mean"], table["ndvi_valid_km2"]


def dominant_function_type(counties, function_zones_gdf: gpd.GeoDataFrame, type_field: str) -> pd.Series:
    """The function type covering the largest share of each county (NaN when no zone overlaps it)."""
    fz = function_zones_gdf.to_crs(counties.gdf.crs)
    out = {}
    for code, poly in counties.gdf.geometry.items():
        overlap = fz.geometry.intersection(poly).area
        out[code] = fz[type_field].iloc[int(np.argmax(overlap.values))] if overlap.max() > 0 else np.nan
    return pd.Series(out, name="function_type")


def rows_of_year(table: pd.DataFrame, year: int, *, year_field: str, county_field: str) -> pd.DataFrame:
    """The rows of ``year`` (a year column of numbers or text), with a six-digit ``county_code`` (GB/T 2260)."""
    from ecoassess.readers import normalise_code

    rows = table[pd.to_numeric(table[year_field], errors="coerce") == year].copy()
    rows["county_code"] = rows[county_field].map(normalise_code)
    return rows
