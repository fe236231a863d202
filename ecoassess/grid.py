"""The one analysis grid every layer of a run lives on, and lazy reprojection of raster files onto it.

Areas and lengths are computed on this grid, so its CRS is equal-area: by default the Albers conic equal-area
projection used for China (CGCS2000, central meridian 105°E, standard parallels 25°N and 47°N). The extent is
the study area's bounds snapped outward to whole cells, so that two runs with the same study area and
resolution produce the same grid, cell for cell.

Raster inputs are read through one GDAL warped VRT per raster, of the whole grid: nothing is loaded until a chunk
is computed, and a chunk reads only the source window it needs (DESIGN.md: lazy and chunked by default). The VRT
warps in fixed blocks with an exact transformation, so a cell's value does not depend on the chunk size (issue 16,
finding 4).
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
import rioxarray  # noqa: F401  (registers the .rio accessor: layers carry their grid the rioxarray way)
import xarray as xr
from affine import Affine
from pyproj import CRS as ProjCRS
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import AlbersEqualAreaConversion
from rasterio.crs import CRS
from rasterio.enums import Resampling
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
        """Wrap a 2-D (dask or numpy) array of this grid's shape as a georeferenced DataArray.

        The grid rides on the coordinates the rioxarray way (``x``/``y`` cell centres and a ``spatial_ref``
        coordinate with the CRS and GeoTransform), so it survives xarray arithmetic and ``.rio`` works on it.
        """
        if tuple(data.shape[-2:]) != self.shape:
            raise ValueError(f"array shape {data.shape} does not match grid {self.shape}")
        dims = ("y", "x") if data.ndim == 2 else tuple(f"dim_{i}" for i in range(data.ndim - 2)) + ("y", "x")
        coords = {"y": self.y_coords(), "x": self.x_coords(), "spatial_ref": self.spatial_ref()}
        return xr.DataArray(data, dims=dims, coords=coords, name=name, attrs=dict(attrs or {}))

    def spatial_ref(self) -> xr.Variable:
        """The ``spatial_ref`` coordinate of this grid (CF grid mapping + GDAL GeoTransform, as rioxarray writes it)."""
        return xr.Variable((), 0, attrs=_spatial_ref_attrs(self.crs.to_wkt(), tuple(self.transform)[:6]))


@functools.lru_cache(maxsize=64)
def _spatial_ref_attrs(crs_wkt: str, transform: tuple) -> dict:
    template = xr.DataArray(np.zeros((1, 1)), dims=("y", "x")).rio.write_crs(crs_wkt)
    template = template.rio.write_transform(Affine(*transform))
    return dict(template.coords["spatial_ref"].attrs)


@functools.lru_cache(maxsize=64)
def _crs_from_wkt(wkt: str) -> CRS:
    return CRS.from_wkt(wkt)


def _snap(origin: float, first_centre: float, step: float, axis: str, name) -> float:
    """The edge of the first cell, snapped to the GeoTransform's lattice (coordinates carry float noise)."""
    offset = (first_centre - step / 2 - origin) / step
    if abs(offset - round(offset)) > 1e-6:
        raise ValueError(f"DataArray {name!r}: its {axis} coordinates are not the cell centres of its transform")
    return origin + round(offset) * step


def grid_of(arr) -> AnalysisGrid:
    """The :class:`AnalysisGrid` of a georeferenced DataArray or Dataset, read the rioxarray way.

    Works on any array built by ecoassess, and on ``rioxarray.open_rasterio`` / odc-geo arrays (a leading
    ``band`` dimension is allowed): CRS from the grid-mapping coordinate, transform from the GeoTransform and
    the ``x``/``y`` coordinates, so that slices and arithmetic results report their own grid.
    """
    name = getattr(arr, "name", None)
    if "x" not in arr.dims or "y" not in arr.dims:
        raise ValueError(f"DataArray {name!r} has no x/y dimensions (dims {tuple(arr.dims)}): not a raster layer")
    ref = arr.coords.get("spatial_ref")
    wkt = ref.attrs.get("crs_wkt") or ref.attrs.get("spatial_ref") if ref is not None else None
    crs = _crs_from_wkt(wkt) if wkt else arr.rio.crs
    if crs is None:
        raise ValueError(f"DataArray {name!r} carries no CRS (no spatial_ref coordinate; see rioxarray's write_crs)")
    gt = ref.attrs.get("GeoTransform") if ref is not None else None
    base = Affine.from_gdal(*map(float, gt.split())) if gt else arr.rio.transform(recalc=True)
    width, height = arr.sizes["x"], arr.sizes["y"]
    if base.b or base.d or base.a <= 0 or base.e >= 0:
        raise ValueError(f"DataArray {name!r} is not on a north-up grid (transform {tuple(base)[:6]})")
    x, y = arr.coords["x"].values, arr.coords["y"].values
    x0 = _snap(base.c, float(x[0]), base.a, "x", name) if width else base.c
    y0 = _snap(base.f, float(y[0]), base.e, "y", name) if height else base.f
    return AnalysisGrid(crs, Affine(base.a, 0.0, x0, 0.0, base.e, y0), width, height)


def single_band(arr: xr.DataArray) -> xr.DataArray:
    """A 2-D (y, x) layer: the size-1 ``band`` dimension of a ``rioxarray.open_rasterio`` array is dropped."""
    extra = [d for d in arr.dims if d not in ("y", "x")]
    if extra and all(arr.sizes[d] == 1 for d in extra):
        arr = arr.isel({d: 0 for d in extra}, drop=True)
    return arr


def grid_or_none(arr) -> AnalysisGrid | None:
    """:func:`grid_of`, or None for an array that carries no grid (e.g. a plain numpy-backed test array)."""
    try:
        return grid_of(arr)
    except ValueError:
        return None


# -- lazy reprojection onto the grid --------------------------------------------------------------------------

#: Side in cells of the blocks the warp is computed in (issue 16, finding 4). A cell's value is computed in the one
#: fixed 64 × 64 block of the analysis grid that holds it, whatever window a chunk reads, so it cannot depend on
#: ``grid.chunk``: before, each chunk was warped as a whole and NDVI differed in nearly every pixel between chunk
#: 256 and 1024 (max 0.19). Small enough that a chunk's edge blocks waste little work, large enough that the
#: per-block overhead (source window, transformer) stays small (scripts/bench_warp.py).
WARP_BLOCK = 64

#: Largest error of the warp's coordinate transformation, in source pixels. GDAL's default (0.125 px) moved a cell's
#: source position by up to an eighth of a pixel (bilinear DEM up to 1.6 m, B04 up to 28 DN from an exact warp).
#: 0.001 px leaves one class flip in 0.5 M cells and < 0.3 DN; exact (0) costs 3-6× the read time
#: (scripts/bench_warp.py) and made the sample's run 87 s instead of ~20 s (scripts/bench_pipeline.py, scale 1).
#: Chunk independence does not rest on this: the approximation is computed per fixed warp block.
WARP_MAX_ERROR_PX = 0.001

#: Source pixels added around the source window GDAL computes for each block (it samples the block's edges), so a
#: kernel near a block's edge never lacks a source pixel it would have had in a larger block.
WARP_SOURCE_EXTRA = 2

_GDAL_RESAMPLING = {Resampling.nearest: "NearestNeighbour", Resampling.bilinear: "Bilinear",
                    Resampling.cubic: "Cubic", Resampling.average: "Average", Resampling.mode: "Mode"}


class _WarpedBand:
    """Array-like view of one band of a raster file on the analysis grid; each slice is one windowed read.

    A raster not on the grid is read through a GDAL warped VRT of the whole grid (:func:`_warped_vrt_xml`) that
    computes cells in fixed :data:`WARP_BLOCK` blocks, so a slice returns the same values whatever its size.
    """

    ndim = 2

    def __init__(self, path: str, band: int, grid: AnalysisGrid, resampling: Resampling, dtype, src_nodata,
                 dst_nodata, aligned: bool, vrt_xml: str | None = None):
        self.path, self.band, self.grid = path, band, grid
        self.resampling, self.dtype = resampling, np.dtype(dtype)
        self.src_nodata, self.dst_nodata, self.aligned = src_nodata, dst_nodata, aligned
        self.vrt_xml = vrt_xml
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
        if self.aligned:
            with rasterio.open(self.path, num_threads=1) as src:
                return src.read(self.band, window=window)  # aligned: same grid, window always inside
        # GDAL_VRT_WARP_USE_DATASET_RASTERIO=NO: without it GDAL warps a multi-block window in one go (its
        # transformer and kernel then depend on the window); with it every block is warped on its own and cached.
        # rasterio sets the option thread-locally in dask's worker threads.
        with rasterio.Env(GDAL_VRT_WARP_USE_DATASET_RASTERIO="NO"), rasterio.open(self.vrt_xml) as vrt:
            return vrt.read(1, window=window)


def _warped_vrt_xml(path: str, band: int, src_crs: CRS, info: dict, grid: AnalysisGrid, resampling: Resampling,
                    src_nodata, dst_nodata, dtype: np.dtype) -> str:
    """A GDAL ``VRTWarpedDataset`` (XML) of band ``band`` of ``path`` on the whole of ``grid``.

    Everything that decides a cell's value is fixed here, per raster, rather than per chunk (issue 16, finding 4):
    the block the cell is warped in (:data:`WARP_BLOCK`), the transformation (:data:`WARP_MAX_ERROR_PX`, approximated per block if at all),
    the kernel's scale (XSCALE/YSCALE: GDAL otherwise derives it per warped region from the ratio of its source
    and destination windows, so a downsampling bilinear/cubic kernel's footprint varied from block to block) and
    the source margin (:data:`WARP_SOURCE_EXTRA`). The source CRS is declared in the transformer, so a file
    without one needs no wrapper. Cells outside the file are ``dst_nodata`` (0 when there is none).
    """
    from xml.sax.saxutils import escape

    from rasterio.dtypes import _gdal_typename
    from rasterio.warp import transform_bounds

    src_transform = info["transform"]
    xscale, yscale = _warp_scale(src_crs, src_transform, grid)
    vrt_dtype = dtype if dtype.kind == "f" else np.dtype(info["dtype"])
    gdal_type = _gdal_typename(vrt_dtype.name)

    def gt(affine: Affine) -> str:
        return ",".join(repr(float(v)) for v in affine.to_gdal())

    def num(value) -> str:
        return "nan" if isinstance(value, float) and math.isnan(value) else repr(value)

    transform_xml = f"""<GenImgProjTransformer>
            <SrcGeoTransform>{gt(src_transform)}</SrcGeoTransform>
            <SrcInvGeoTransform>{gt(~src_transform)}</SrcInvGeoTransform>
            <DstGeoTransform>{gt(grid.transform)}</DstGeoTransform>
            <DstInvGeoTransform>{gt(~grid.transform)}</DstInvGeoTransform>"""
    if src_crs != grid.crs:
        try:  # as GDAL does: PROJ picks the datum transformation valid over the source's extent
            bounds = rasterio.transform.array_bounds(info["height"], info["width"], src_transform)
            aoi = transform_bounds(src_crs, "EPSG:4326", *bounds, densify_pts=21)
            aoi_xml = f'<Options><Option key="AREA_OF_INTEREST">{",".join(repr(v) for v in aoi)}</Option></Options>'
        except Exception:  # noqa: BLE001 - no AOI: PROJ's default choice
            aoi_xml = ""
        transform_xml += f"""
            <ReprojectTransformer><ReprojectionTransformer>
              <SourceSRS>{escape(src_crs.to_wkt())}</SourceSRS>
              <TargetSRS>{escape(grid.crs.to_wkt())}</TargetSRS>{aoi_xml}
            </ReprojectionTransformer></ReprojectTransformer>"""
    transform_xml += "\n          </GenImgProjTransformer>"
    if WARP_MAX_ERROR_PX > 0:
        transform_xml = (f"<ApproxTransformer><MaxError>{WARP_MAX_ERROR_PX!r}</MaxError>"
                         f"<BaseTransformer>{transform_xml}</BaseTransformer></ApproxTransformer>")
    nodata_xml = f"<NoDataValue>{num(dst_nodata)}</NoDataValue>" if dst_nodata is not None else ""
    mapping = "".join([f"<SrcNoDataReal>{num(src_nodata)}</SrcNoDataReal>" if src_nodata is not None else "",
                       f"<DstNoDataReal>{num(dst_nodata)}</DstNoDataReal>" if dst_nodata is not None else ""])
    init_dest = "NO_DATA" if dst_nodata is not None else "0"
    return f"""<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}" subClass="VRTWarpedDataset">
  <SRS>{escape(grid.crs.to_wkt())}</SRS>
  <GeoTransform>{gt(grid.transform)}</GeoTransform>
  <VRTRasterBand dataType="{gdal_type}" band="1" subClass="VRTWarpedRasterBand">{nodata_xml}</VRTRasterBand>
  <BlockXSize>{WARP_BLOCK}</BlockXSize>
  <BlockYSize>{WARP_BLOCK}</BlockYSize>
  <GDALWarpOptions>
    <WarpMemoryLimit>67108864</WarpMemoryLimit>
    <ResampleAlg>{_GDAL_RESAMPLING[resampling]}</ResampleAlg>
    <WorkingDataType>{gdal_type}</WorkingDataType>
    <Option name="INIT_DEST">{init_dest}</Option>
    <Option name="XSCALE">{xscale!r}</Option>
    <Option name="YSCALE">{yscale!r}</Option>
    <Option name="SOURCE_EXTRA">{WARP_SOURCE_EXTRA}</Option>
    <Option name="ERROR_OUT_IF_EMPTY_SOURCE_WINDOW">FALSE</Option>
    <SourceDataset relativeToVRT="0">{escape(path)}</SourceDataset>
    <Transformer>
          {transform_xml}
    </Transformer>
    <BandList><BandMapping src="{band}" dst="1">{mapping}</BandMapping></BandList>
  </GDALWarpOptions>
</VRTDataset>
"""


def _warp_scale(src_crs: CRS, src_transform: Affine, grid: AnalysisGrid) -> tuple[float, float]:
    """GDAL's XSCALE/YSCALE for warping onto ``grid``: destination cells per source pixel along x and y.

    Measured once per raster, at the grid's centre, across one grid cell (the ratio varies little over a study
    area in a conformal or equal-area projection); > 1 when upsampling, < 1 when downsampling.
    """
    from rasterio.warp import transform as transform_points

    cx = grid.transform.c + grid.width / 2 * grid.transform.a
    cy = grid.transform.f + grid.height / 2 * grid.transform.e
    half = grid.resolution / 2
    xs, ys = transform_points(grid.crs, src_crs, [cx - half, cx + half, cx, cx], [cy, cy, cy - half, cy + half])
    inverse = ~src_transform
    cols, rows = zip(*(inverse * (x, y) for x, y in zip(xs, ys)))
    along_x = math.hypot(cols[1] - cols[0], rows[1] - rows[0])  # source pixels one grid cell spans along x
    along_y = math.hypot(cols[3] - cols[2], rows[3] - rows[2])
    if not (along_x > 0 and along_y > 0 and math.isfinite(along_x) and math.isfinite(along_y)):
        return 1.0, 1.0
    return 1.0 / along_x, 1.0 / along_y


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


def declared_info(info: dict, crs=None, transform=None) -> dict:
    """:func:`raster_info` with a declared CRS and transform (GDAL GeoTransform order) standing in for a file that
    carries none; what the file says wins where it says something (the config checks name a contradiction)."""
    out = dict(info)
    if out["crs"] is None and crs is not None:
        out["crs"] = CRS.from_user_input(crs)
    if transform is not None and info["transform"].is_identity:
        t = Affine.from_gdal(*map(float, transform))
        out["transform"] = t
        x0, y1 = t.c, t.f
        x1, y0 = t * (info["width"], info["height"])
        out["bounds"] = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        out["res"] = (abs(t.a), abs(t.e))
    return out


def is_aligned(info: dict, grid: AnalysisGrid, crs=None) -> bool:
    """Whether a raster (its :func:`raster_info`) lies exactly on ``grid``: same CRS, transform and size, so it is
    read window by window without warping. ``crs`` stands in for a file without one."""
    src_crs = info["crs"] if info["crs"] is not None else crs
    return (src_crs is not None and CRS.from_user_input(src_crs) == grid.crs and info["transform"] == grid.transform
            and (info["height"], info["width"]) == grid.shape)


def read_on_grid(path, grid: AnalysisGrid, *, band: int = 1, kind: str = "continuous", dtype=None,
                 src_nodata=None, dst_nodata=None, chunk: int = DEFAULT_CHUNK, name: str | None = None,
                 crs=None, transform=None) -> xr.DataArray:
    """One band of ``path`` on ``grid``, lazily (dask), resampled according to ``kind``.

    ``kind``: ``classes`` (nearest), ``classes_mode`` (mode), ``reflectance`` (average), ``continuous``
    (bilinear), ``mask`` (nearest). ``src_nodata`` overrides the file's nodata tag. Float outputs use NaN
    as nodata unless ``dst_nodata`` says otherwise. Cells outside the file are nodata.
    ``crs`` names the CRS of a file that has none (a clear error is raised otherwise); ``transform`` (GDAL
    GeoTransform order) places a file that has no georeference.
    """
    path = str(path)
    info = declared_info(raster_info(path), None, transform)
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
    vrt_xml = None if aligned else _warped_vrt_xml(path, band, CRS.from_user_input(src_crs), info, grid, resampling,
                                                   nodata, dst_nodata, out_dtype)
    arr = _WarpedBand(path, band, grid, resampling, out_dtype, nodata, dst_nodata, aligned, vrt_xml)
    key = (path, os.path.getmtime(path) if os.path.exists(path) else 0, grid, band, kind, str(out_dtype),
           repr(nodata), repr(dst_nodata), chunk, vrt_xml)
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
