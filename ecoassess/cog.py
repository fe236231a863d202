"""Write dask-backed layers to Cloud-Optimized GeoTIFFs in one pass, with bounded memory, atomically.

:func:`write_cog` writes one layer; :func:`write_cogs` several layers on the same grid in one pass, so that the
parts of their graphs they share (an index and the classes derived from it, say) are computed once per chunk.

How (every tile is compressed exactly once, and compression overlaps the computation):

1. the layers are computed chunk by chunk (one ``dask.array.store``, threaded scheduler; strip by strip, all
   layers together, on a ``dask.distributed`` cluster). Each chunk is written to a tiled, compressed *stage*
   GeoTIFF of the full resolution, and its overview pyramid (2×, 4×, ... — average, nearest or mode) is
   computed from the chunk in numpy and written to one small stage GeoTIFF per level, a tile at a time once the
   chunks covering it are done (:class:`_StageWriter`); GDAL compresses the tiles in its thread pool
   (``GDAL_NUM_THREADS=ALL_CPUS``) while the next chunks compute;
2. GDAL's COG driver writes a *template* COG of the same structure from an empty VRT (same size, CRS, nodata,
   metadata, compression, overview sizes; sparse, so it holds only the header and the IFDs, a few kB);
3. the COG is assembled: template header, then the compressed tiles copied byte for byte from the stage files
   (smallest overview first, full resolution last, each tile with GDAL's 4-byte size leader and repeated-last-
   4-bytes trailer), and the tile offset/size arrays of the template patched to point at them.

The result is what GDAL's COG driver writes (``LAYOUT=COG``) without decoding and re-encoding a tiled
intermediate. All temporary files live in the target folder, are removed whatever happens, and the COG is
moved into place with ``os.replace`` only when complete (all layers of a write are complete before the first
is moved): an existing file at ``path`` is either replaced by a complete file or left untouched.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import os
import struct
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import dask
import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from ecoassess.errors import DiskSpaceError, EcoassessError, space_errno, space_message
from ecoassess.grid import AnalysisGrid, grid_of, single_band

log = logging.getLogger(__name__)

_PREDICTORS = {0: None, 1: "NO", 2: "STANDARD", 3: "FLOATING_POINT", "NO": "NO", "YES": "STANDARD",
               "STANDARD": "STANDARD", "FLOATING_POINT": "FLOATING_POINT"}
#: DEFLATE level for float layers: with the floating-point predictor, level 1 gives the same file size as GDAL's
#: default level 6 on index layers (measured on NDVI: 48 MB both) for ~35% less CPU.
FLOAT_DEFLATE_LEVEL = 1
#: DEFLATE level for integer (class, count) layers: level 3 instead of GDAL's 6 is 3.4x less CPU for an 11 %
#: larger file (measured on a 39 Mpx RSEI grade layer: 0.58 s / 8.0 MB vs 1.96 s / 7.2 MB).
INT_DEFLATE_LEVEL = 3
#: ZSTD level (any layer): level 1 with the floating-point predictor writes a 39 Mpx RSEI layer ~40 % faster than
#: DEFLATE level 1 for the same size (measured: 0.88 s / 128 MiB vs 1.46 s / 130 MiB, with overviews).
ZSTD_LEVEL = 1
#: compression when a write does not name one: DEFLATE (every GIS reads it), or :func:`default_compression`'s
_DEFAULT_COMPRESSION: list[str] = []
_COMPRESSIONS = ("deflate", "zstd", "lzw", "none")
_RESAMPLINGS = ("average", "nearest", "mode")
_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
               "int32": "Int32", "uint64": "UInt64", "int64": "Int64", "float32": "Float32", "float64": "Float64"}


@contextlib.contextmanager
def default_compression(name: str | None):
    """Write COGs with ``name`` (deflate, zstd, lzw, none) where a write names no compression, inside the block
    (a run's ``outputs.compression``); None leaves the default as it is."""
    if name is None:
        yield
        return
    if str(name).lower() not in _COMPRESSIONS:
        raise ValueError(f"unknown COG compression {name!r}; one of {', '.join(_COMPRESSIONS)}")
    _DEFAULT_COMPRESSION.append(str(name).lower())
    try:
        yield
    finally:
        _DEFAULT_COMPRESSION.pop()


def overview_factors(width: int, height: int, blocksize: int = 512) -> list[int]:
    """Decimation factors 2, 4, 8, ... until the smallest overview fits in one ``blocksize`` tile (as GDAL's COG)."""
    factors: list[int] = []
    f = 1
    while max(math.ceil(width / f), math.ceil(height / f)) > blocksize:
        f *= 2
        factors.append(f)
    return factors


# -- overviews in numpy -------------------------------------------------------------------------------------------

def _valid(a: np.ndarray, nodata) -> np.ndarray:
    if a.dtype.kind == "f":
        ok = ~np.isnan(a)
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            ok &= a != nodata
        return ok
    return np.ones(a.shape, bool) if nodata is None else a != nodata


def _fill(dtype: np.dtype, nodata):
    if nodata is not None:
        return nodata
    return np.nan if dtype.kind == "f" else 0


def _pyramid(block: np.ndarray, factors: list[int], resampling: str, nodata) -> dict[int, np.ndarray]:
    """Overviews of ``block`` (whose top-left corner is a multiple of every factor) for each factor.

    ``average``: mean of the valid cells of each f×f block (exact, cascaded through sums and counts); blocks
    without valid cells are nodata. ``nearest``: the cell at offset f//2 (clamped at the edge). ``mode``: the
    most frequent valid value (ties → the smallest value).
    """
    out: dict[int, np.ndarray] = {}
    if not factors:
        return out
    h, w = block.shape
    fill = _fill(block.dtype, nodata)
    if resampling == "average":
        ok = _valid(block, nodata)
        full = bool(ok.all()) and h % factors[-1] == 0 and w % factors[-1] == 0
        acc = "float32" if block.dtype == np.float32 else "float64"
        s = block.astype(acc, copy=False) if full else np.where(ok, block, 0).astype(acc, copy=False)
        n = None if full else ok.astype("int32")
        level = 1
        for f in factors:
            while level < f:
                s = _sum2x2(s)
                n = None if n is None else _sum2x2(n)
                if level == 1:
                    s = s.astype("float64")
                level *= 2
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = s / (f * f) if n is None else s / n
            if block.dtype.kind != "f":
                mean = np.rint(mean)
            out[f] = (mean if n is None else np.where(n > 0, mean, fill)).astype(block.dtype)
        return out
    for f in factors:
        oh, ow = -(-h // f), -(-w // f)
        if resampling == "nearest":
            rows = np.minimum(np.arange(oh) * f + f // 2, h - 1)
            cols = np.minimum(np.arange(ow) * f + f // 2, w - 1)
            out[f] = block[np.ix_(rows, cols)]
            continue
        # mode: count each valid value per f×f block (class layers have few distinct values)
        ok = _valid(block, nodata)
        padded = np.pad(block, ((0, oh * f - h), (0, ow * f - w)))
        okp = np.pad(ok, ((0, oh * f - h), (0, ow * f - w)))
        best = np.full((oh, ow), fill, dtype=block.dtype)
        best_n = np.zeros((oh, ow), "int64")
        for v in np.unique(block[ok]):
            cnt = ((padded == v) & okp).reshape(oh, f, ow, f).sum(axis=(1, 3))
            better = cnt > best_n
            best[better], best_n[better] = v, cnt[better]
        out[f] = best
    return out


def _sum2x2(x: np.ndarray) -> np.ndarray:
    """Sum of each 2×2 cell block (an odd last row/column is summed with zeros)."""
    if x.shape[0] % 2 or x.shape[1] % 2:
        x = np.pad(x, ((0, x.shape[0] % 2), (0, x.shape[1] % 2)))
    return x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]


class _StageWriter:
    """``dask.array.store`` target: writes each block to the full-resolution stage file and its overviews.

    A chunk's window at an overview level covers parts of tiles (a 1024² chunk is a 256² corner of a 512² tile at
    level 4). GDAL would keep such half-written tiles in its block cache until the file is closed — memory
    growing with the area — and compress again any it had to flush. So overview data is gathered here tile by
    tile and each tile goes to GDAL once, whole: only tiles still waiting for a neighbouring chunk are held.
    """

    def __init__(self, full, levels: dict, chunk_factors: list[int], resampling: str, nodata):
        self.full, self.levels = full, levels
        self.chunk_factors, self.resampling, self.nodata = chunk_factors, resampling, nodata
        self.locks = {f: threading.Lock() for f in levels}  # one per file: GDAL datasets are not thread-safe
        self.shape = (full.height, full.width)
        self.dtype = np.dtype(full.dtypes[0])
        self.ndim = 2
        self.tile = full.block_shapes[0][0]
        self.partial: dict[int, dict[tuple[int, int], list]] = {f: {} for f in levels}  # (tile row, col) -> [data, n]

    def __setitem__(self, key, value):
        rows, cols = key
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        block = np.asarray(value, dtype=self.dtype)
        pyramid = _pyramid(block, self.chunk_factors, self.resampling, self.nodata)  # outside the lock
        with self.locks[1]:
            if not self.full.closed:  # closed: the write failed elsewhere, this block is not needed
                self.full.write(block, 1, window=Window(c0, r0, c1 - c0, r1 - r0))  # chunks are whole tiles
        for f, a in pyramid.items():
            with self.locks[f]:
                if not self.levels[f].closed:
                    self._write_tiles(f, a, r0 // f, c0 // f)

    def _write_tiles(self, f: int, a: np.ndarray, r0: int, c0: int) -> None:
        """Write the tiles of level ``f`` that ``a`` (at row ``r0``, column ``c0``) completes; hold the others."""
        ds, t = self.levels[f], self.tile
        h, w = a.shape
        for tr in range(r0 // t, (r0 + h - 1) // t + 1):
            for tc in range(c0 // t, (c0 + w - 1) // t + 1):
                y, x = tr * t, tc * t
                th, tw = min(t, ds.height - y), min(t, ds.width - x)
                y0, y1, x0, x1 = max(r0, y), min(r0 + h, y + th), max(c0, x), min(c0 + w, x + tw)
                part = a[y0 - r0:y1 - r0, x0 - c0:x1 - c0]
                if part.shape != (th, tw):
                    held = self.partial[f].setdefault((tr, tc), [np.empty((th, tw), a.dtype), 0])
                    held[0][y0 - y:y1 - y, x0 - x:x1 - x] = part
                    held[1] += part.size
                    if held[1] < th * tw:
                        continue
                    part = self.partial[f].pop((tr, tc))[0]
                ds.write(part, 1, window=Window(x, y, tw, th))

    def close(self) -> None:
        """Close the stage files, each under its lock: tasks of a failed computation may still be writing."""
        for f, ds in self.levels.items():
            with self.locks[f]:
                ds.close()


def _distributed_client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _store(arrays: list[da.Array], targets: list[_StageWriter]) -> None:
    """Compute ``arrays`` chunk by chunk into ``targets`` in one graph: parts they share are computed once."""
    client = _distributed_client()
    if client is not None:
        # Workers may be other machines: compute strips of chunks there (all arrays together), write them here; two
        # strips in flight. Strips end on row-chunk boundaries common to all arrays.
        bounds = sorted(set.intersection(*(set(np.cumsum((0,) + a.chunks[0]).tolist()) for a in arrays)))
        pending = []

        def write(r0: int, r1: int, futures) -> None:
            for a, target, fut in zip(arrays, targets, futures):
                target[r0:r1, 0:a.shape[1]] = fut.result()

        for r0, r1 in zip(bounds[:-1], bounds[1:]):
            pending.append((int(r0), int(r1), client.compute([a[r0:r1] for a in arrays])))
            if len(pending) > 1:
                write(*pending.pop(0))
        for strip in pending:
            write(*strip)
        return
    scheduler = dask.config.get("scheduler", None)
    if scheduler not in ("sync", "synchronous", "single-threaded", "threads", "threading"):
        scheduler = "threads"
    da.store(arrays, targets, lock=False, scheduler=scheduler)


# -- TIFF structure: just enough to find and patch tile offsets ---------------------------------------------------

_TILE_OFFSETS, _TILE_BYTECOUNTS = 324, 325
_CHECK_TAGS = (256, 257, 258, 259, 317, 322, 323, 339)  # size, bits, compression, predictor, tile size, format
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 11: 4, 12: 8, 16: 8, 17: 8, 18: 8}
_TYPE_NP = {3: "u2", 4: "u4", 16: "u8"}


def _read_ifds(fh) -> tuple[str, bool, list[dict]]:
    """Byte order, BigTIFF flag and the IFDs of an open TIFF: per IFD the tags we check and the tile arrays."""
    fh.seek(0)
    head = fh.read(16)
    bo = {b"II": "<", b"MM": ">"}.get(head[:2])
    if bo is None:
        raise EcoassessError("not a TIFF file")
    magic = struct.unpack(bo + "H", head[2:4])[0]
    big = magic == 43
    offset = struct.unpack(bo + "Q", head[8:16])[0] if big else struct.unpack(bo + "I", head[4:8])[0]
    ifds = []
    while offset:
        fh.seek(offset)
        n = struct.unpack(bo + ("Q" if big else "H"), fh.read(8 if big else 2))[0]
        esize = 20 if big else 12
        raw = fh.read(n * esize)
        nxt = struct.unpack(bo + ("Q" if big else "I"), fh.read(8 if big else 4))[0]
        ifd = {"tags": {}, "arrays": {}}
        for i in range(n):
            e = raw[i * esize:(i + 1) * esize]
            if big:
                tag, typ, count = struct.unpack(bo + "HHQ", e[:12])
                inline_pos, inline_len = offset + 8 + i * esize + 12, 8
            else:
                tag, typ, count = struct.unpack(bo + "HHI", e[:8])
                inline_pos, inline_len = offset + 2 + i * esize + 8, 4
            nbytes = _TYPE_SIZE.get(typ, 1) * count
            if nbytes <= inline_len:
                pos = inline_pos
            else:
                pos = struct.unpack(bo + ("Q" if big else "I"), e[-inline_len:])[0]
            if tag in (_TILE_OFFSETS, _TILE_BYTECOUNTS):
                if typ not in _TYPE_NP:
                    raise EcoassessError(f"unexpected TIFF type {typ} for tag {tag}")
                here = fh.tell()
                fh.seek(pos)
                values = np.frombuffer(fh.read(nbytes), dtype=bo + _TYPE_NP[typ]).astype("uint64")
                fh.seek(here)
                ifd["arrays"][tag] = {"pos": pos, "type": typ, "values": values}
            elif tag in _CHECK_TAGS and nbytes <= inline_len:
                ifd["tags"][tag] = (typ, bytes(e[-inline_len:][:nbytes]) if nbytes else b"")
        ifds.append(ifd)
        offset = nxt
    return bo, big, ifds


def _tag_values(ifd: dict, bo: str) -> dict:
    vals = {}
    for tag, (typ, raw) in ifd["tags"].items():
        fmt = {3: "H", 4: "I", 16: "Q"}.get(typ)
        vals[tag] = struct.unpack(bo + fmt, raw[:struct.calcsize(fmt)])[0] if fmt else raw
    return vals


def _copy_tile(src: int, dst: int, offset: int, n: int, pos: int, bo: str) -> None:
    """Copy one tile of ``n`` bytes to ``pos`` with GDAL's size leader and last-4-bytes trailer (in-kernel)."""
    tail = os.pread(src, 4, offset + n - 4)
    os.pwrite(dst, struct.pack(bo + "I", n), pos)
    done = 0
    while done < n:
        try:
            step = os.copy_file_range(src, dst, n - done, offset + done, pos + 4 + done)
        except (AttributeError, OSError):
            step = os.pwrite(dst, os.pread(src, min(n - done, 1 << 24), offset + done), pos + 4 + done)
        if step <= 0:
            raise EcoassessError("short copy while assembling the COG")
        done += step
    os.pwrite(dst, tail, pos + 4 + n)


def _assemble(template: Path, stages: list[Path], out: Path) -> None:
    """Write the COG ``out``: the template's header and IFDs, then the raw tiles of ``stages`` (level order)."""
    header = template.read_bytes()
    with open(template, "rb") as fh:
        bo, big, t_ifds = _read_ifds(fh)
    if len(t_ifds) != len(stages):
        raise EcoassessError(f"COG template has {len(t_ifds)} IFDs, expected {len(stages)}")
    if any(ifd["arrays"][_TILE_OFFSETS]["values"].any() for ifd in t_ifds):
        raise EcoassessError("COG template unexpectedly holds tile data")
    handles = [open(p, "rb") for p in stages]
    try:
        s_ifds = []
        for ifd, fh in zip(t_ifds, handles):
            sbo, _, sifds = _read_ifds(fh)
            a, b = _tag_values(ifd, bo), _tag_values(sifds[0], sbo)
            diff = {k for k in _CHECK_TAGS if a.get(k, None) != b.get(k, None)}
            # absent Predictor means 1 (none)
            if diff - {317} or (317 in diff and {a.get(317, 1), b.get(317, 1)} != {1}):
                raise EcoassessError(f"stage file {fh.name} does not match the COG template (tags {sorted(diff)})")
            s_ifds.append(sifds[0])
        new = [None] * len(stages)
        with open(out, "w+b") as dst:
            dst.write(header)
            dst.flush()
            pos = len(header)
            for level in reversed(range(len(stages))):  # smallest overview first, full resolution last
                fh, arrays = handles[level], s_ifds[level]["arrays"]
                offs, counts = arrays[_TILE_OFFSETS]["values"], arrays[_TILE_BYTECOUNTS]["values"]
                new_offs = np.zeros_like(offs)
                for k, (o, n) in enumerate(zip(offs.tolist(), counts.tolist())):
                    if n == 0:
                        continue  # sparse tile stays sparse
                    _copy_tile(fh.fileno(), dst.fileno(), o, n, pos, bo)
                    new_offs[k] = pos + 4
                    pos += n + 8
                new[level] = (new_offs, counts)
            for ifd, (offs, counts) in zip(t_ifds, new):
                for tag, values in ((_TILE_OFFSETS, offs), (_TILE_BYTECOUNTS, counts)):
                    spec = ifd["arrays"][tag]
                    if len(values) != len(spec["values"]):
                        raise EcoassessError("stage file and COG template differ in tile count")
                    np_type = np.dtype(bo + _TYPE_NP[spec["type"]])
                    if values.size and int(values.max()) > np.iinfo(np_type).max:
                        raise EcoassessError("tile offsets do not fit the template's TIFF type (BigTIFF needed)")
                    os.pwrite(dst.fileno(), values.astype(np_type).tobytes(), spec["pos"])
    finally:
        for fh in handles:
            fh.close()


# -- VRT template --------------------------------------------------------------------------------------------------

def _empty_vrt(path: Path, width: int, height: int, grid, dtype: np.dtype, nodata, *, transform=None,
               overviews=(), tags=None, description=None, units=None) -> None:
    t = transform or grid.transform
    gt = ",".join(repr(float(v)) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    md = "".join(f'<MDI key="{escape(str(k), {chr(34): "&quot;"})}">{escape(v)}</MDI>'
                 for k, v in (tags or {}).items())
    ov = "".join(f"<Overview><SourceFilename relativeToVRT=\"0\">{escape(str(p))}</SourceFilename>"
                 f"<SourceBand>1</SourceBand></Overview>" for p in overviews)
    nd = "" if nodata is None else f"<NoDataValue>{'nan' if _is_nan(nodata) else repr(nodata)}</NoDataValue>"
    desc = f"<Description>{escape(description)}</Description>" if description else ""
    unit = f"<UnitType>{escape(units)}</UnitType>" if units else ""
    path.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{escape(grid.crs.to_wkt())}</SRS>'
        f"<GeoTransform>{gt}</GeoTransform>{'<Metadata>' + md + '</Metadata>' if md else ''}"
        f'<VRTRasterBand dataType="{_GDAL_TYPES[dtype.name]}" band="1">{desc}{nd}{unit}{ov}</VRTRasterBand>'
        f"</VRTDataset>", encoding="utf-8")


def _fill_to_nodata(data: da.Array, declared, nodata, out_dtype) -> da.Array:
    """Cells holding the layer's declared fill value (ecoassess's ``nodata`` or rioxarray's ``_FillValue``) become
    the output's nodata: NaN in float data (later filled with ``nodata``), ``nodata`` in integer data."""
    if declared is None or _is_nan(declared) or (nodata is not None and not _is_nan(nodata) and declared == nodata):
        return data
    if data.dtype.kind != "f" and (nodata is None or _is_nan(nodata)):
        if out_dtype.kind != "f":
            return data  # an integer output without nodata: nothing can mark the cells
        data = data.astype(out_dtype)
    fill = np.asarray(declared).astype(data.dtype)
    if fill != declared:  # the declared value cannot occur in this dtype
        return data
    return da.where(data == fill, np.asarray(np.nan if data.dtype.kind == "f" else nodata, dtype=data.dtype), data)


def _is_nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _tag_text(value) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


# -- one write: validated layers, their stage files, templates, assembly ------------------------------------------

@dataclass
class _Layer:
    """One validated layer of a write: its computation (cast, nodata filled, tile-aligned chunks) and encoding."""

    path: Path
    grid: AnalysisGrid
    data: da.Array
    dtype: np.dtype
    nodata: object
    compress: str  # GDAL's name
    predictor: str | None  # GDAL's name; None: not set
    level: int | None
    blocksize: int
    resampling: str
    factors: list[int]  # overview factors
    step: int  # compute chunk (rows and columns)
    description: str | None
    tags: dict[str, str]
    stem: str = field(default_factory=lambda: f".{os.getpid()}-{uuid.uuid4().hex[:8]}")
    temps: dict[Path, None] = field(default_factory=dict)  # every temporary file named so far, in order

    @property
    def chunk_factors(self) -> list[int]:
        """Overviews computed from each chunk."""
        return [f for f in self.factors if self.step % f == 0]

    @property
    def late_factors(self) -> list[int]:
        """Overviews coarser than a chunk: cascaded from the coarsest chunk level once all chunks are written."""
        return [f for f in self.factors if self.step % f]

    @property
    def sizes(self) -> dict[int, tuple[int, int]]:
        """Width and height of the full resolution (1) and of each overview level."""
        g = self.grid
        return {1: (g.width, g.height), **{f: (-(-g.width // f), -(-g.height // f)) for f in self.factors}}

    def transform(self, f: int):
        return self.grid.transform * self.grid.transform.scale(f)

    def temp(self, suffix: str) -> Path:
        """A temporary file next to the target (recorded: removed whatever happens)."""
        p = self.path.parent / f".{self.path.name}{self.stem}.{suffix}"
        self.temps[p] = None
        return p


def _plan(arr: xr.DataArray, path: Path, chunk: int, *, nodata, dtype, compress, predictor, blocksize, overviews,
          tags, description, resampling, level) -> _Layer:
    """Validate one layer and its options (see :func:`write_cog`); builds the dask graph, computes nothing."""
    grid = grid_of(arr)
    arr = single_band(arr)  # a rioxarray.open_rasterio array: (band=1, y, x)
    if arr.ndim != 2:
        raise ValueError(f"a COG holds one 2-D layer, got dims {arr.dims}")
    if blocksize % 16 or blocksize <= 0:
        raise ValueError(f"blocksize must be a positive multiple of 16, got {blocksize}")
    data = arr.data if isinstance(arr.data, da.Array) else da.from_array(np.asarray(arr.data), chunks=chunk)
    out_dtype = np.dtype(dtype) if dtype is not None else data.dtype
    if out_dtype == np.bool_:
        out_dtype = np.dtype("uint8")
    if out_dtype.name not in _GDAL_TYPES:
        raise ValueError(f"dtype {out_dtype} cannot be written to a GeoTIFF")
    declared = arr.attrs.get("nodata", arr.attrs.get("_FillValue"))  # ecoassess's / rioxarray's fill value
    declared = declared.item() if isinstance(declared, np.generic) else declared  # np.int16(-32768) → -32768
    nodata = nodata.item() if isinstance(nodata, np.generic) else nodata  # (the VRT must get a plain number)
    if nodata is None:
        nodata = float("nan") if out_dtype.kind == "f" else declared
        if out_dtype.kind != "f" and _is_nan(nodata):
            nodata = None
    data = _fill_to_nodata(data, declared, nodata, out_dtype)
    if data.dtype.kind == "f" and nodata is not None and not _is_nan(nodata):
        data = da.where(da.isnan(data), np.asarray(nodata, dtype=data.dtype), data)
    elif data.dtype.kind == "f" and out_dtype.kind != "f":
        raise ValueError(f"casting float layer {arr.name!r} to {out_dtype} needs an integer nodata value")
    if data.dtype != out_dtype:
        data = data.astype(out_dtype)
    if predictor is None:
        predictor = 3 if out_dtype.kind == "f" else 1
    pred = _PREDICTORS.get(predictor.upper() if isinstance(predictor, str) else predictor, "?")
    if pred == "?":
        raise ValueError(f"unknown predictor {predictor!r}; one of None, 1, 2, 3")
    if compress is None:
        compress = _DEFAULT_COMPRESSION[-1] if _DEFAULT_COMPRESSION else "deflate"
    if str(compress).lower() not in _COMPRESSIONS:
        raise ValueError(f"unknown compression {compress!r}; one of {', '.join(_COMPRESSIONS)}")
    if level is None and str(compress).lower() == "deflate":
        level = FLOAT_DEFLATE_LEVEL if out_dtype.kind == "f" else INT_DEFLATE_LEVEL
    elif level is None and str(compress).lower() == "zstd":
        level = ZSTD_LEVEL
    rs = (resampling or ("average" if out_dtype.kind == "f" else "nearest")).lower()
    if rs not in _RESAMPLINGS:
        raise ValueError(f"unknown overview resampling {resampling!r}; one of {', '.join(_RESAMPLINGS)}")
    if description is None and arr.name is not None:
        description = str(arr.name)

    # chunks must start on tile boundaries (whole tiles are compressed once) and on overview cell boundaries
    rc, cc = data.chunks
    step = rc[0] if len(rc) > 1 else cc[0] if len(cc) > 1 else chunk
    if step % blocksize:
        if chunk % blocksize:
            raise ValueError(f"chunk {chunk} must be a multiple of blocksize {blocksize}")
        step = chunk
    return _Layer(path=path, grid=grid, data=data.rechunk((step, step)),  # a no-op when the chunks line up
                  dtype=out_dtype, nodata=nodata, compress=str(compress).upper(), predictor=pred, level=level,
                  blocksize=blocksize, resampling=rs,
                  factors=overview_factors(grid.width, grid.height, blocksize) if overviews else [], step=step,
                  description=description, tags={str(k): _tag_text(v) for k, v in (tags or {}).items()})


def _compute_stages(layers: list[_Layer]) -> None:
    """Write every layer's stage files (full resolution and one per overview level) in one pass over the chunks."""
    files: list[dict] = [{} for _ in layers]
    writers: list[_StageWriter] = []
    try:
        for layer, fs in zip(layers, files):
            creation = dict(driver="GTiff", count=1, dtype=layer.dtype.name, crs=layer.grid.crs, nodata=layer.nodata,
                            tiled=True, blockxsize=layer.blocksize, blockysize=layer.blocksize,
                            compress=layer.compress, bigtiff="IF_SAFER", interleave="band", num_threads="ALL_CPUS")
            if layer.predictor:
                creation["predictor"] = {"NO": 1, "STANDARD": 2, "FLOATING_POINT": 3}[layer.predictor]
            if layer.level is not None:
                creation.update({"zlevel": layer.level, "zstd_level": layer.level})
            readback = layer.chunk_factors[-1] if layer.late_factors else None  # read again for the late overviews
            for f, (w, h) in layer.sizes.items():
                fs[f] = rasterio.open(layer.temp(f"stage{f}.tif"), "w+" if f == readback else "w", width=w,
                                      height=h, transform=layer.transform(f), **creation)
            writers.append(_StageWriter(fs[1], fs, layer.chunk_factors, layer.resampling, layer.nodata))
        _store([layer.data for layer in layers], writers)
        for layer, fs in zip(layers, files):
            if layer.late_factors:  # overviews coarser than a chunk: cascade from the coarsest chunk level
                prev = layer.chunk_factors[-1]
                base = fs[prev].read(1)
                for f in layer.late_factors:
                    fs[f].write(_pyramid(base, [f // prev], layer.resampling, layer.nodata)[f // prev], 1)
    finally:
        for writer in writers:
            writer.close()
        for ds in (ds for fs in files for ds in fs.values()):  # those opened before a failure to open the next
            ds.close()


def _write_template(layer: _Layer) -> Path:
    """The layer's COG header and IFDs from GDAL's own COG writer (an empty, sparse copy of the same structure)."""
    data_bytes = sum(layer.temp(f"stage{f}.tif").stat().st_size for f in layer.sizes)
    ovr_vrts = []
    for f in layer.factors:
        v = layer.temp(f"ovr{f}.vrt")
        _empty_vrt(v, *layer.sizes[f], layer.grid, layer.dtype, layer.nodata, transform=layer.transform(f))
        ovr_vrts.append(v)
    main_vrt = layer.temp("template.vrt")
    _empty_vrt(main_vrt, layer.grid.width, layer.grid.height, layer.grid, layer.dtype, layer.nodata,
               overviews=ovr_vrts, tags=layer.tags, description=layer.description, units=layer.tags.get("units"))
    template = layer.temp("template.tif")
    options = dict(COMPRESS=layer.compress, BLOCKSIZE=str(layer.blocksize), SPARSE_OK="TRUE",
                   OVERVIEWS="FORCE_USE_EXISTING" if layer.factors else "NONE",
                   BIGTIFF="YES" if data_bytes > 3_900_000_000 else "NO")
    if layer.predictor:
        options["PREDICTOR"] = layer.predictor
    if layer.level is not None:
        options["LEVEL"] = str(layer.level)
    if layer.factors:
        options["OVERVIEW_RESAMPLING"] = layer.resampling.upper()
    with rasterio.open(main_vrt) as src:
        rio_copy(src, template, driver="COG", **options)
    return template


# -- public ---------------------------------------------------------------------------------------------------------

def write_cogs(layers: list[tuple[xr.DataArray, str | Path, dict]], *, chunk: int = 1024) -> list[Path]:
    """Write several 2-D layers on the same grid as COGs in one pass: ``[(arr, path, options), ...]``.

    ``options`` holds :func:`write_cog`'s keyword arguments for that layer (nodata, dtype, compress, predictor,
    blocksize, overviews, tags, description, resampling, level); ``chunk`` is shared. All layers are computed
    in one ``dask.array.store``, so the parts of their graphs they share (e.g. an index and the classes derived
    from it) are computed once per chunk. Everything is validated before anything is computed or written
    (``ValueError`` naming the layer's path). The files are replaced (``os.replace``) only once every layer is
    complete: if any layer fails, none of the target files is touched and all temporary files are removed.
    Returns the paths.
    """
    plans: list[_Layer] = []
    seen: dict[Path, int] = {}
    for i, (arr, path, options) in enumerate(layers):
        path = Path(path)
        try:
            unknown = sorted(set(options or {}) - set(_OPTIONS))
            if unknown:
                raise ValueError(f"unknown options {unknown}; write_cog's options are {', '.join(_OPTIONS)}")
            plan = _plan(arr, path, chunk, **{**_OPTIONS, **(options or {})})
            if plans and plan.grid != plans[0].grid:
                g, g0 = plan.grid, plans[0].grid
                raise ValueError(f"layer {i} is not on the grid of layer 0 ({plans[0].path}): {g.width} x {g.height} "
                                 f"{g.transform[:6]} vs {g0.width} x {g0.height} {g0.transform[:6]}"
                                 + ("" if g.crs == g0.crs else ", other CRS"))
            if seen.setdefault(path.resolve(), i) != i:
                raise ValueError(f"layer {i} has the same path as layer {seen[path.resolve()]}")
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        plans.append(plan)
    if not plans:
        return []
    for plan in plans:
        plan.path.parent.mkdir(parents=True, exist_ok=True)
    where = ", ".join(str(plan.path) for plan in plans)
    try:
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_PAM_ENABLED="NO"):
            _compute_stages(plans)
            templates = []
            for plan in plans:
                where = str(plan.path)
                templates.append(_write_template(plan))
        for plan, template in zip(plans, templates):
            where = str(plan.path)
            _assemble(template, [plan.temp(f"stage{f}.tif") for f in plan.sizes], plan.temp("partial.tif"))
        for plan in plans:  # every layer is complete: now (and only now) the targets are replaced
            os.replace(plan.temp("partial.tif"), plan.path)
    except (rasterio.errors.RasterioError, OSError) as exc:
        if space_errno(exc) is not None:
            raise DiskSpaceError(space_message(space_errno(exc), where, plans[0].path.parent, "folder")) from exc
        if isinstance(exc, OSError):
            raise
        raise EcoassessError(f"{where}: writing the COG failed ({exc})") from exc
    finally:
        for p in (p for plan in plans for p in plan.temps):
            for q in (p, Path(str(p) + ".aux.xml"), Path(str(p) + ".ovr")):
                try:
                    q.unlink()
                except FileNotFoundError:
                    pass
    for plan in plans:
        log.info("wrote COG %s (%d x %d, %s, overviews %s)", plan.path, plan.grid.width, plan.grid.height,
                 plan.dtype.name, plan.factors or "none")
    return [plan.path for plan in plans]


def write_cog(arr: xr.DataArray, path, *, nodata=None, dtype=None, compress: str | None = None, predictor=None,
              blocksize: int = 512, overviews: bool = True, tags: dict | None = None,
              description: str | None = None, resampling: str | None = None, level: int | None = None,
              chunk: int = 1024) -> Path:
    """Write the 2-D layer ``arr`` (dask-backed, on its :class:`~ecoassess.grid.AnalysisGrid`) as a COG at ``path``.

    ``nodata``: float layers use NaN unless a number is given (NaN cells are then filled with it); integer
    layers use ``nodata`` or ``arr.attrs['nodata']``. ``dtype`` casts (NaN → ``nodata`` for integer outputs).
    ``compress``: deflate, zstd, lzw, none (None: deflate, or the :func:`default_compression` in force);
    ``level`` its level (default: GDAL's, but :data:`FLOAT_DEFLATE_LEVEL` / :data:`INT_DEFLATE_LEVEL` with DEFLATE
    and :data:`ZSTD_LEVEL` with ZSTD). ``predictor``: 1 (none), 2 (horizontal),
    3 (floating point); None = 3 for float layers, 1 otherwise. ``resampling`` of the overviews: ``average``
    (default for float layers), ``nearest`` (default for integer/class layers) or ``mode``. ``tags`` (units, formula, source, ...)
    are written as GDAL metadata (``units`` also as the band's unit); ``description`` (default ``arr.name``)
    is the band description. ``chunk`` (a multiple of ``blocksize``) is the compute chunk when ``arr``'s
    chunks do not line up with the tiles. Returns ``path``. Several layers that share inputs: :func:`write_cogs`.
    """
    given = locals()
    return write_cogs([(arr, path, {k: given[k] for k in _OPTIONS})], chunk=chunk)[0]


#: write_cog's per-layer options and their defaults (the keys of write_cogs' option dicts)
_OPTIONS = {name: p.default for name, p in inspect.signature(write_cog).parameters.items()
            if p.kind is p.KEYWORD_ONLY and name != "chunk"}

__all__ = ["write_cog", "write_cogs", "overview_factors", "default_compression"]
