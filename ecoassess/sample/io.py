"""Deterministic writers: Cloud-Optimized GeoTIFFs (512 tiles, DEFLATE), GeoPackages with a fixed timestamp, CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import rasterio
from rasterio.io import MemoryFile
from rasterio.shutil import copy as rio_copy

#: GeoPackage ``last_change`` stamp, fixed so that files are byte-identical between runs.
FIXED_TIMESTAMP = "2025-01-01T00:00:00Z"


def write_cog(path, array: np.ndarray, transform, crs, *, nodata=0, overview_resampling: str = "average",
              predictor: int | None = None, band_description: str | None = None, overviews: bool = True) -> Path:
    """Write a single-band COG (tiled 512, DEFLATE; internal overviews unless ``overviews`` is False)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = array.dtype.name
    if predictor is None:
        predictor = 3 if array.dtype.kind == "f" else 2
    profile = dict(driver="GTiff", width=array.shape[1], height=array.shape[0], count=1, dtype=dtype,
                   crs=crs, transform=transform, nodata=nodata)
    with rasterio.Env(GDAL_NUM_THREADS="1"):
        with MemoryFile() as mem:
            with mem.open(**profile) as tmp:
                tmp.write(array, 1)
                if band_description:
                    tmp.set_band_description(1, band_description)
            with mem.open() as src:
                rio_copy(src, path, driver="COG", BLOCKSIZE=512, COMPRESS="DEFLATE", PREDICTOR=predictor,
                         OVERVIEW_RESAMPLING=overview_resampling.upper(), NUM_THREADS=2, BIGTIFF="NO",
                         OVERVIEWS="AUTO" if overviews else "NONE")
    return path


def write_gpkg(gdf, path, layer: str) -> Path:
    """Write a GeoDataFrame as a one-layer GeoPackage whose bytes depend only on its content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_TIMESTAMP})
    try:
        pyogrio.write_dataframe(gdf, path, layer=layer, driver="GPKG", spatial_index=True)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})
    return path


def write_csv(df, path) -> Path:
    """UTF-8 CSV with ``\\n`` line ends and no index."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return path
