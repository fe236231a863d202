"""Helpers every stage of a run shares: scenes of a year, land-cover water, table keys and geometry, failures."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import xarray as xr

from ecoassess.config import AssessmentConfig
from ecoassess.errors import EcoassessError
from ecoassess.grid import AnalysisGrid

if TYPE_CHECKING:
    from ecoassess.pipeline import RunResult

log = logging.getLogger(__name__)


def open_year_scenes(config: AssessmentConfig, year: int, grid: AnalysisGrid) -> list:
    """Every scene configured for ``year``, opened lazily on ``grid`` with the config's masking.

    A scene listed twice (same product id, or GeoTIFF band files of the same content) is refused: it would count
    twice in the composite."""
    from ecoassess.errors import InputError
    from ecoassess.sources import open_scene
    from ecoassess.sources.duplicates import duplicate_problems

    repeated = duplicate_problems(f"imagery.{year}", config.imagery.get(year, []))
    if repeated:
        raise InputError("; ".join(repeated), path=config.source_path, field=f"imagery.{year}",
                         expected="each scene listed once")
    scenes = []
    for spec in config.imagery.get(year, []):
        options = {"grid": grid, "chunk": config.grid.chunk}
        if spec.kind == "sentinel2_l2a" and config.masking.scl_classes is not None:
            options["mask_scl"] = tuple(config.masking.scl_classes)
        if spec.kind == "landsat_c2l2" and config.masking.landsat_flags is not None:
            options["mask_flags"] = tuple(config.masking.landsat_flags)
        if spec.kind == "geotiff":
            options.update(bands={k: band_ref(v) for k, v in spec.bands.items()}, date=spec.date,
                           sensor=spec.sensor or "geotiff", scale=spec.scale, offset=spec.offset,
                           nodata=spec.nodata, mask=spec.mask.model_dump() if spec.mask else None)
            scenes.append(open_scene("geotiff", **options))
        else:
            scenes.append(open_scene(spec.kind, path=spec.path, **options))
    return scenes


def ei_years(config: AssessmentConfig) -> list[int]:
    """The years the HJ 192 EI stage assesses: enabled, with land cover, imagery and the statistics table."""
    if not config.hj192.enabled or config.statistics is None:
        return []
    return [y for y in config.years if y in config.land_cover and y in config.imagery]


def band_ref(ref):
    return {"path": ref.path, "band": ref.band} if hasattr(ref, "band") else ref

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

def isolated(config: AssessmentConfig, result: RunResult, what: str, exc: EcoassessError) -> None:
    """Record a failed part of the run (or re-raise when the config says to stop at the first error)."""
    if config.run.on_error == "stop":
        raise exc
    message = f"{what}: {exc}"
    log.error(message)
    result.problems.append(message)

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
