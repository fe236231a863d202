"""The one analysis grid every layer of a run lives on, and lazy reprojection of raster files onto it.

Areas and lengths are computed on this grid, so its CRS is equal-area: by default the Albers conic equal-area
projection used for China (CGCS2000, central meridian 105°E, standard parallels 25°N and 47°N). The extent is
the study area's bounds snapped outward to whole cells, so that two runs with the same study area and
resolution produce the same grid, cell for cell.

Raster inputs are read through a GDAL warped VRT per chunk: nothing is loaded until a chunk is computed, and
a chunk reads only the source window it needs (DESIGN.md: lazy and chunked by default).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from pyproj import CRS as ProjCRS
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import AlbersEqualAreaConversion
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from ecoassess.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 1024

#: Resampling per kind of raster (issue: classes nearest or mode; reflectance bilinear/average).
RESAMPLING_BY_KIND = {
    "classes": Resampling.nearest,
    "classes_mode": Resampling.mode,
    "reflectance": Resampling.average,
    "continuous": Resampling.bilinear,
    "mask": Resampling.nearest,
}


def china_albers_crs() -> CRS:
    """CGCS2000 / Albers equal-area conic for China: lat_0 0, lon_0 105°E, standard parallels 25°N and 47°N."""
    conversion = AlbersEqualAreaConversion(
        latitude_first_parallel=25.0,
        latitude_second_parallel=47.0,
        latitude_false_origin=0.0,
        longitude_false_origin=105.0,
        easting_false_origin=0.0,
        northing_false_origin=0.0,
    )
    pcrs = ProjectedCRS(conversion=conversion, geodetic_crs=ProjCRS.from_epsg(4490), name="CGCS2000 / China Albers")
    return CRS.from_wkt(pcrs.to_wkt())


def is_equal_area(crs) -> bool:
    """True when ``crs`` is a projection that preserves area (Albers, Lambert azimuthal/cylindrical EA, ...)."""
    pcrs = ProjCRS.from_user_input(crs)
    if not pcrs.is_projected:
        return False
    method = (pcrs.coordinate_operation.method_name if pcrs.coordinate_operation else "").lower()
    return "equal area" in method or "albers" in method or "equal-area" in method


@dataclass(frozen=True)
class AnalysisGrid:
    """A north-up raster grid: CRS, affine transform (top-left origin, square cells) and size in cells."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def from_bounds(cls, bounds, resolution_m: float, crs) -> "AnalysisGrid":
        """Grid covering ``bounds`` (xmin, ymin, xmax, ymax in ``crs``), snapped outward to ``resolution_m``."""
        if resolution_m <= 0:
            raise ValueError(f"grid resolution must be > 0 m, got {resolution_m}")
        xmin, ymin, xmax, ymax = bounds
        res = float(resolution_m)
        x0 = math.floor(xmin / res) * res
        y0 = math.floor(ymin / res) * res
        x1 = math.ceil(xmax / res) * res
        y1 = math.ceil(ymax / res) * res
        width = max(1, int(round((x1 - x0) / res)))
        height = max(1, int(round((y1 - y0) / res)))
        return cls(CRS.from_user_input(crs), Affine(res, 0.0, x0, 0.0, -res, y1), width, height)

    @classmethod
    def from_study_area(cls, gdf, resolution_m: float, crs=None) -> "AnalysisGrid":
        """Grid over a GeoDataFrame of study-area polygons; ``crs`` defaults to :func:`china_albers_crs`."""
        target = CRS.from_user_input(crs) if crs is not None else china_albers_crs()
        if gdf.crs is None:
            raise InputError("the study-area layer has no CRS", field="crs", expected="a layer with a defined CRS")
        projected = gdf.to_crs(target.to_wkt())
        return cls.from_bounds(projected.total_bounds, resolution_m, target)

    # -- geometry -------------------------------------------------------------------------------------------
    @property
    def resolution(self) -> float:
        return float(self.transform.a)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0, y1 = self.transform.c, self.transform.f
        return (x0, y1 - self.height * self.resolution, x0 + self.width * self.resolution, y1)

    @property
    def cell_area_m2(self) -> float:
        """Area of one cell in m² (exact on an equal-area grid)."""
        return abs(self.transform.a * self.transform.e)

    @property
    def n_cells(self) -> int:
        return self.width * self.height

    def x_coords(self) -> np.ndarray:
        return self.transform.c + (np.arange(self.width) + 0.5) * self.transform.a

    def y_coords(self) -> np.ndarray:
        return self.transform.f + (np.arange(self.height) + 0.5) * self.transform.e

    def window_transform(self, row_off: int, col_off: int) -> Affine:
        return self.transform * Affine.translation(col_off, row_off)

    def windows(self, chunk: int = DEFAULT_CHUNK):
        """Yield ``rasterio.windows.Window`` blocks of at most ``chunk`` × ``chunk`` cells, row by row."""
        for r in range(0, self.height, chunk):
            for c in range(0, self.width, chunk):
                yield Window(c, r, min(chunk, self.width - c), min(chunk, self.height - r))

    def scaled(self, factor: int) -> "AnalysisGrid":
        """The same extent with cells ``factor`` times smaller (for benchmarks)."""
        res = self.resolution / factor
        return AnalysisGrid(self.crs, Affine(res, 0, self.transform.c, 0, -res, self.transform.f),
                            self.width * factor, self.height * factor)

    def to_dict(self) -> dict:
        return {
            "crs_wkt": self.crs.to_wkt(),
            "crs_name": ProjCRS.from_user_input(self.crs.to_wkt()).name,
            "resolution_m": self.resolution,
            "width": self.width,
            "height": self.height,
            "bounds": list(self.bounds),
            "transform": list(self.transform)[:6],
        }

    def empty(self, dtype="float32", fill=np.nan, chunk: int = DEFAULT_CHUNK, name: str | None = None) -> xr.DataArray:
        data = da.full(self.shape, fill, dtype=dtype, chunks=(chunk, chunk))
        return self.wrap(data, name=name)

    def wrap(self, data, name: str | None = None, attrs: dict | None = None) -> xr.DataArray:
        """Wrap a 2-D (dask or numpy) array of this grid's shape as a georeferenced DataArray."""
        if tuple(data.shape[-2:]) != self.shape:
            raise ValueError(f"array shape {data.shape} does not match grid {self.shape}")
        dims = ("y", "x") if data.ndim == 2 else tuple(f"dim_{i}" for i in range(data.ndim - 2)) + ("y", "x")
        arr = xr.DataArray(data, dims=dims, coords={"y": self.y_coords(), "x": self.x_coords()}, name=name,
                           attrs=dict(attrs or {}))
        arr.attrs["grid"] = self
        return arr


def grid_of(arr: xr.DataArray) -> AnalysisGrid:
    """The :class:`AnalysisGrid` a DataArray was built on (stored in ``attrs['grid']``)."""
    grid = arr.attrs.get("grid")
    if not isinstance(grid, AnalysisGrid):
        raise ValueError(f"DataArray {arr.name!r} carries no analysis grid (attrs['grid'])")
    return grid


# -- lazy reprojection onto the grid --------------------------------------------------------------------------

class _WarpedBand:
    """Array-like view of one band of a raster file on the analysis grid; each slice is one windowed warp."""

    ndim = 2

    def __init__(self, path: str, band: int, grid: AnalysisGrid, resampling: Resampling, dtype, src_nodata,
                 dst_nodata, aligned: bool):
        self.path, self.band, self.grid = path, band, grid
        self.resampling, self.dtype = resampling, np.dtype(dtype)
        self.src_nodata, self.dst_nodata, self.aligned = src_nodata, dst_nodata, aligned
        self.shape = grid.shape

    def __getitem__(self, key):
        rows, cols = key
        r0, r1, _ = rows.indices(self.grid.height)
        c0, c1, _ = cols.indices(self.grid.width)
        window = Window(c0, r0, c1 - c0, r1 - r0)
        try:
            data = self._read(window)
        except rasterio.errors.RasterioError as exc:
            why = str(exc)
            if "See previous exception" in why:  # GDAL's wording; the cause it refers to is not shown to the user
                why = "its compressed blocks cannot be decoded: the file is damaged or truncated"
            raise InputError(f"band {self.band} cannot be read in rows {r0}-{r1}, columns {c0}-{c1} of the analysis "
                             f"grid ({why})", path=self.path, expected="an intact GeoTIFF/COG") from exc
        if self.aligned and self.src_nodata is not None and self.dst_nodata is not None \
                and not _same_value(self.src_nodata, self.dst_nodata):
            fill = data == self.src_nodata
            data = data.astype(self.dtype)  # a new array: the fill can be set in place
            data[fill] = self.dst_nodata
            return data
        return data.astype(self.dtype, copy=False)

    def _read(self, window: Window) -> np.ndarray:
        # no GDAL_CACHEMAX here: the block cache is one per process, and setting its size on every read made GDAL
        # flush the COG writer's half-written overview tiles, which it then read back and compressed again
        # (overviews cost +60 % instead of +25 % of a layer's write time). Peak memory did not grow without it
        # (scripts/bench_pipeline.py, scale 8: 853 MiB, 896-906 MiB before).
        # One thread per read, as open and warp options (dask runs the reads in parallel already); an Env setting
        # GDAL_NUM_THREADS cost ~0.25 ms per chunk read for the same effect.
        with rasterio.open(self.path, num_threads=1) as src:
            if self.aligned:
                return src.read(self.band, window=window)  # aligned: same grid, window always inside
            with WarpedVRT(src, crs=self.grid.crs, transform=self.grid.transform, width=self.grid.width,
                           height=self.grid.height, resampling=self.resampling,
                           src_nodata=self.src_nodata, nodata=self.dst_nodata, num_threads=1) as vrt:
                return vrt.read(self.band, window=window)


def _same_value(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def raster_info(path) -> dict:
    """CRS, transform, size, band count, dtype and nodata of a raster file, with a clear error if unreadable."""
    path = str(path)
    if not os.path.exists(path):
        raise InputError("file not found", path=path)
    try:
        with rasterio.open(path) as src:
            return {"crs": src.crs, "transform": src.transform, "width": src.width, "height": src.height,
                    "count": src.count, "dtype": src.dtypes[0], "nodata": src.nodata, "res": src.res,
                    "bounds": tuple(src.bounds), "descriptions": src.descriptions}
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot be read as a raster ({exc})", path=path,
                         expected="a GeoTIFF/COG or another GDAL-readable raster") from exc


def is_aligned(info: dict, grid: AnalysisGrid, crs=None) -> bool:
    """Whether a raster (its :func:`raster_info`) lies exactly on ``grid``: same CRS, transform and size, so it is
    read window by window without warping. ``crs`` stands in for a file without one."""
    src_crs = info["crs"] if info["crs"] is not None else crs
    return (src_crs is not None and CRS.from_user_input(src_crs) == grid.crs and info["transform"] == grid.transform
            and (info["height"], info["width"]) == grid.shape)


def read_on_grid(path, grid: AnalysisGrid, *, band: int = 1, kind: str = "continuous", dtype=None,
                 src_nodata=None, dst_nodata=None, chunk: int = DEFAULT_CHUNK, name: str | None = None,
                 crs=None) -> xr.DataArray:
    """One band of ``path`` on ``grid``, lazily (dask), resampled according to ``kind``.

    ``kind``: ``classes`` (nearest), ``classes_mode`` (mode), ``reflectance`` (average), ``continuous``
    (bilinear), ``mask`` (nearest). ``src_nodata`` overrides the file's nodata tag. Float outputs use NaN
    as nodata unless ``dst_nodata`` says otherwise. Cells outside the file are nodata.
    ``crs`` names the CRS of a file that has none (a clear error is raised otherwise).
    """
    path = str(path)
    info = raster_info(path)
    if band < 1 or band > info["count"]:
        raise InputError(f"has {info['count']} band(s), band {band} was asked for", path=path, field=f"band {band}")
    src_crs = info["crs"]
    if src_crs is None:
        if crs is None:
            raise InputError("has no CRS", path=path, field="crs",
                             expected="a georeferenced raster (or declare its CRS in the config)")
        src_crs = CRS.from_user_input(crs)
    if kind not in RESAMPLING_BY_KIND:
        raise ValueError(f"unknown raster kind {kind!r}; one of {sorted(RESAMPLING_BY_KIND)}")
    resampling = RESAMPLING_BY_KIND[kind]
    nodata = info["nodata"] if src_nodata is None else src_nodata
    out_dtype = np.dtype(dtype or info["dtype"])
    if dst_nodata is None:
        dst_nodata = float("nan") if out_dtype.kind == "f" else nodata
    aligned = is_aligned(info, grid, src_crs)
    if not aligned and log.isEnabledFor(logging.INFO):  # the CRS label costs an EPSG lookup (~10 ms)
        log.info("reprojecting %s band %d from %s at %.6g to the analysis grid (%.6g m) with %s resampling",
                 Path(path).name, band, _crs_label(src_crs), info["res"][0], grid.resolution, resampling.name)
    if info["crs"] is None:
        # WarpedVRT needs the CRS on the dataset: wrap the file in a VRT that declares it.
        path = _declare_crs_vrt(path, src_crs)
    arr = _WarpedBand(path, band, grid, resampling, out_dtype, nodata, dst_nodata, aligned)
    key = (path, os.path.getmtime(path) if os.path.exists(path) else 0, grid, band, kind, str(out_dtype),
           repr(nodata), repr(dst_nodata), chunk)
    token = f"read-{Path(path).name}-{band}-{kind}-{abs(hash(key))}"
    data = da.from_array(arr, chunks=(chunk, chunk), name=token, lock=False, asarray=True, meta=np.empty((0, 0), out_dtype))
    out = grid.wrap(data, name=name or Path(path).stem)
    out.attrs.update({"source": str(path), "band": band, "resampling": resampling.name,
                      "nodata": dst_nodata, "reprojected": not aligned})
    return out


def _crs_label(crs) -> str:
    return _crs_label_of_wkt(CRS.from_user_input(crs).to_wkt())


@functools.lru_cache(maxsize=64)
def _crs_label_of_wkt(wkt: str) -> str:
    crs = wkt
    try:
        epsg = CRS.from_user_input(crs).to_epsg()
    except Exception:  # noqa: BLE001 - any CRS without an EPSG code
        epsg = None
    return f"EPSG:{epsg}" if epsg else ProjCRS.from_user_input(crs).name


def _declare_crs_vrt(path: str, crs: CRS) -> str:
    """A VRT beside nothing (in /vsimem) that gives ``path`` the CRS ``crs``."""
    from rasterio.shutil import copy as rio_copy

    vrt_path = f"/vsimem/ecoassess-crs-{abs(hash((path, crs.to_wkt())))}.vrt"
    with rasterio.open(path) as src:
        rio_copy(src, vrt_path, driver="VRT")
    with rasterio.open(vrt_path, "r+") as dst:
        dst.crs = crs
    return vrt_path


def rasterize_mask(geometries, grid: AnalysisGrid, *, chunk: int = DEFAULT_CHUNK, all_touched: bool = False,
                   name: str = "inside") -> xr.DataArray:
    """Lazy boolean layer: True for cells whose centre lies inside any of ``geometries`` (in ``grid.crs``).

    Rasterized chunk by chunk (GDAL), so it never holds more than one chunk in memory.
    """
    from rasterio import features
    from shapely import STRtree, box

    geoms = [g for g in geometries if g is not None and not g.is_empty]
    tree = STRtree(geoms)

    def block(block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        transform = grid.window_transform(r0, c0)
        x0, y1 = transform.c, transform.f
        bbox = box(x0, y1 - (r1 - r0) * grid.resolution, x0 + (c1 - c0) * grid.resolution, y1)
        hits = [geoms[i] for i in tree.query(bbox)]
        if not hits:
            return np.zeros((r1 - r0, c1 - c0), dtype=bool)
        return features.rasterize(((g, 1) for g in hits), out_shape=(r1 - r0, c1 - c0), transform=transform,
                                  fill=0, all_touched=all_touched, dtype="uint8").astype(bool)

    chunks = da.core.normalize_chunks((chunk, chunk), grid.shape)
    data = da.map_blocks(block, chunks=chunks, dtype=bool, meta=np.empty((0, 0), bool),
                         name=f"rasterize-{name}-{abs(hash((grid, len(geoms), name)))}")
    return grid.wrap(data, name=name)


# -- plausible grid sizes --------------------------------------------------------------------------------------

#: Default upper limit of the analysis grid's cell count (``grid.max_cells``): 2·10⁹ cells are ~8 GB per float32
#: layer, i.e. a province at 1 m or all of China at ~70 m; beyond it a run takes days and a typo (0.01 for 10)
#: would look like a hang.
DEFAULT_MAX_CELLS = 2_000_000_000
#: Fewer cells than this across the study area's narrower side is no raster analysis (and a metre/km mix-up).
MIN_CELLS_ACROSS = 10
#: Cell sizes offered as a suggestion (m), finest first.
_NICE_RESOLUTIONS_M = (1, 2, 5, 10, 20, 30, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)


def grid_cells(width_m: float, height_m: float, resolution_m: float) -> tuple[int, int]:
    """Columns and rows of a grid of ``resolution_m`` cells over a ``width_m`` × ``height_m`` box (whole cells)."""
    cols = max(1, math.ceil(width_m / resolution_m - 1e-9))
    rows = max(1, math.ceil(height_m / resolution_m - 1e-9))
    return cols, rows


def grid_size_problem(width_m: float, height_m: float, resolution_m: float,
                      max_cells: int = DEFAULT_MAX_CELLS) -> str | None:
    """Why ``resolution_m`` is implausible for a study area of ``width_m`` × ``height_m`` metres (its bounding box
    in the grid CRS), or None: more than ``max_cells`` cells, or fewer than :data:`MIN_CELLS_ACROSS` across the
    narrower side. The sentence names ``grid.resolution_m``, the study area's size, the cell count and a value
    that would do."""
    cols, rows = grid_cells(width_m, height_m, resolution_m)
    cells = cols * rows
    size = f"the study area is {width_m / 1000:,.4g} km × {height_m / 1000:,.4g} km"
    too_many = cells > max_cells
    too_few = min(cols, rows) < MIN_CELLS_ACROSS
    if not (too_many or too_few):
        return None

    def fits(res: float) -> bool:
        c, r = grid_cells(width_m, height_m, res)
        return c * r <= max_cells and min(c, r) >= MIN_CELLS_ACROSS

    fitting = [r for r in _NICE_RESOLUTIONS_M if fits(r)]
    if fitting:
        best = 30 if 30 in fitting else (fitting[0] if too_many else fitting[-1])
        c, r = grid_cells(width_m, height_m, best)
        hint = f"; e.g. grid.resolution_m: {best} gives {c * r:,} cells ({c:,} × {r:,})"
    else:
        hint = "; no cell size fits: is the study area layer the right one, or its CRS?"
    if too_many:
        return (f"grid.resolution_m: {resolution_m:g} m gives {cells:,} cells ({cols:,} × {rows:,}; {size}), more than "
                f"grid.max_cells = {max_cells:,}: the run would not finish (expected a cell size in metres, e.g. "
                f"10-30 for Sentinel-2/Landsat, or raise grid.max_cells){hint}")
    return (f"grid.resolution_m: {resolution_m:g} m gives only {cols:,} × {rows:,} = {cells:,} cells ({size}), fewer "
            f"than {MIN_CELLS_ACROSS} across: no layer or table would mean anything (expected a cell size in metres, "
            f"not kilometres){hint}")
