"""Raster labels → clean polygons: vectorise, simplify as a coverage (shared edges stay shared), reproject."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from rasterio import features
from shapely.geometry import shape

from ecoassess.sample.world import UTM_EPSG, World


def polygonize(labels: np.ndarray, world: World, *, simplify_m: float = 0.0, res_m: float = 30.0) -> dict:
    """``{label: (Multi)Polygon}`` in UTM for every non-zero label; simplified together as a coverage."""
    labels = labels.astype("int32")
    parts: dict[int, list] = {}
    for geom, val in features.shapes(labels, mask=labels > 0, transform=world.transform(res_m), connectivity=4):
        parts.setdefault(int(val), []).append(shape(geom))
    keys = sorted(parts)
    geoms = [shapely.union_all(parts[k]) for k in keys]
    # a vertex at every cell corner on both sides of each shared edge makes the polygons a valid coverage
    geoms = list(shapely.set_precision(shapely.segmentize(np.array(geoms, dtype=object), res_m), 0.001))
    if simplify_m > 0 and geoms:
        geoms = list(shapely.coverage_simplify(np.array(geoms, dtype=object), simplify_m))
        geoms = [shapely.make_valid(g) for g in geoms]
    return dict(zip(keys, geoms))


def to_gdf(records: list[dict], geoms: list, crs_out: int) -> gpd.GeoDataFrame:
    """GeoDataFrame from attribute records and UTM geometries, reprojected to ``crs_out``."""
    gdf = gpd.GeoDataFrame(records, geometry=geoms, crs=UTM_EPSG)
    return gdf.to_crs(crs_out) if crs_out != UTM_EPSG else gdf


def rasterize(geoms_values, world: World, res_m: float = 30.0, dtype="int32") -> np.ndarray:
    """Burn ``[(geom, value), ...]`` (UTM) into the world grid (0 elsewhere)."""
    return features.rasterize(list(geoms_values), out_shape=world.shape_at(res_m), transform=world.transform(res_m),
                              fill=0, dtype=dtype)
