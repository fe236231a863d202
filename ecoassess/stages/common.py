"""Helpers the stages share: the EI years, table keys and geometry, output formats."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from ecoassess.config import AssessmentConfig


def ei_years(config: AssessmentConfig) -> list[int]:
    """The years the HJ 192 EI stage assesses: enabled, with land cover, imagery and the statistics table."""
    if not config.hj192.enabled or config.statistics is None:
        return []
    return [y for y in config.years if y in config.land_cover and y in config.imagery]


def with_code(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table.index.name = "code"
    return table.reset_index()

def with_geometry(zones, table: pd.DataFrame) -> gpd.GeoDataFrame:
    """Attach each zone's polygon (analysis CRS) to a table keyed by ``code`` (the zone id)."""
    geoms = zones.gdf.geometry.rename("geometry").reset_index()
    geoms.columns = ["code", "geometry"]
    geoms["code"] = geoms["code"].astype(str)
    merged = geoms.merge(table.assign(code=table["code"].astype(str)), on="code", how="right")
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=zones.gdf.crs)

def formats(config: AssessmentConfig) -> dict:
    return {fmt: fmt in config.outputs.tables for fmt in ("gpkg", "csv", "xlsx")}
