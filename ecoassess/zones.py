"""Zonal statistics with exact coverage fractions and area accounting, chunk by chunk.

A cell's weight ``w`` in a zone is the fraction of the cell covered by the zone's polygon (as in exactextract).
For a layer ``x`` and a zone, over *valid* cells (finite, not the layer's nodata, not ``masked``):

    n_cells = Σ w                      mean = Σ w·x / Σ w
    std     = sqrt(Σ w·(x − mean)² / Σ w)   (population, coverage-weighted; exactextract's ``stdev``)
    min/max = over valid cells with w > 0    sum = Σ w·x

Area accounting per zone and layer (km², A = cell area):

    valid_km2 = Σ_valid w·A     masked_km2 = Σ_masked w·A     nodata_km2 = Σ_(NaN or nodata, not masked) w·A
    area_outside_km2 = area(polygon) − area(polygon ∩ grid extent)          (shapely, in the grid's CRS)
    valid + masked + nodata + outside = area_km2   (to ~1e-12 relative; coverage is analytic in float64)

Coverage fractions are computed here, not by exactextract: each polygon ring is cut at the grid lines and
every piece adds its signed trapezoid area to an accumulation row (the exact-area scan conversion of font
rasterisers); a cumulative sum along each row gives every cell's covered fraction, exact up to float64
rounding. The scan conversion and the per-chunk accumulations are compiled (:mod:`ecoassess.zonal_kernels`,
numba, GIL released, so dask's threads run chunks side by side): a 1024² chunk crossed by a 20 000-vertex
ring takes 1.4 ms (5.5 ms vectorised with numpy); exactextract's ops hold the GIL — see scripts/bench_zonal.py.

Coverage of a zone set on a grid is computed once per chunk window and reused by every layer and every later
call: per chunk a small-int array of the zone fully covering each cell plus sparse (zone, cell, fraction)
triples for boundary cells, kept in an LRU memory cache (``cache_limit_mb``) and, with ``cache_dir``, written
to disk (shared by later processes and by dask.distributed workers on a shared filesystem).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import shapely
import xarray as xr

from ecoassess import zonal_kernels as zk
from ecoassess.errors import InputError
from ecoassess.grid import DEFAULT_CHUNK, AnalysisGrid, grid_of, single_band

log = logging.getLogger(__name__)

STATS = ("mean", "std", "min", "max", "sum")
#: Coverage at or above 1 − FULL_TOL counts as full (error ≤ 1e-9 of a cell's area per cell).
FULL_TOL = 1e-9
#: Coverage at or below ZERO_TOL is rounding noise of an uncovered cell and dropped.
ZERO_TOL = 1e-12


def _grid_token(grid: AnalysisGrid) -> str:
    h = hashlib.sha1()
    h.update(grid.crs.to_wkt().encode())
    h.update(np.asarray(list(grid.transform)[:6], dtype="float64").tobytes())
    h.update(f"{grid.width}x{grid.height}".encode())
    return h.hexdigest()[:16]


def _grid_label(grid: AnalysisGrid) -> str:
    return f"{grid.width}x{grid.height} cells of {grid.resolution:g} m, origin ({grid.transform.c:g}, {grid.transform.f:g})"


# -- exact coverage fractions ---------------------------------------------------------------------------------

def _ring_edges(geom, transform) -> np.ndarray:
    """Directed edges (u0, v0, u1, v1, sign) of every ring in cell coordinates (u = column, v = row).

    ``sign`` makes exterior rings add and holes subtract area, whatever their orientation.
    """
    a, c, e, f = transform.a, transform.c, transform.e, transform.f
    out = []
    for poly in shapely.get_parts(geom):
        if poly.is_empty:
            continue
        rings = [poly.exterior, *poly.interiors]
        for k, ring in enumerate(rings):
            xy = shapely.get_coordinates(ring)
            if len(xy) < 4:
                continue
            u = (xy[:, 0] - c) / a
            v = (xy[:, 1] - f) / e
            area2 = float(np.sum(u[:-1] * v[1:] - u[1:] * v[:-1]))
            if area2 == 0.0:
                continue
            s = -math.copysign(1.0, area2) if k == 0 else math.copysign(1.0, area2)
            out.append(np.column_stack([u[:-1], v[:-1], u[1:], v[1:], np.full(len(u) - 1, s)]))
    return np.concatenate(out) if out else np.zeros((0, 5))


def cell_coverage(edges: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Covered fraction of each cell in rows [r0, r1) × cols [c0, c1) by the polygon whose ring ``edges`` are given.

    Each edge is split at the grid lines; a piece inside cell (i, j) with signed height ``d`` and mean offset
    ``m`` from the cell's left side adds ``d·(1 − m)`` to acc[j, i] and ``d·m`` to acc[j, i+1] (pieces left of
    the window add ``d`` to the first column); ``coverage = cumsum(acc, axis=1)``. Exact up to float64 rounding.
    (Compiled: :func:`ecoassess.zonal_kernels.coverage_window`.)
    """
    h, w = r1 - r0, c1 - c0
    if h <= 0 or w <= 0:
        return np.zeros((max(h, 0), max(w, 0)))
    edges = np.ascontiguousarray(edges, dtype=np.float64).reshape(-1, 5)
    return zk.coverage_window(edges, int(r0), int(r1), int(c0), int(c1))


@dataclass
class ChunkCoverage:
    """Coverage of one chunk window: zones (global indices), a dense local-zone array, sparse boundary triples.

    ``dense[r, c]`` is the local index of a zone covering cell (r, c) fully, −1 for none (None: no full cell).
    ``sp_zone, sp_cell, sp_frac``: further (local zone, flat cell, fraction) pairs — partly covered cells and
    full cells of a second, overlapping zone. A cell's weight in a zone is the sum of its entries.
    """

    window: tuple[int, int, int, int]  # row_off, col_off, height, width
    zones: np.ndarray
    dense: np.ndarray | None
    sp_zone: np.ndarray
    sp_cell: np.ndarray
    sp_frac: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (self.zones, self.sp_zone, self.sp_cell, self.sp_frac))
                   + (self.dense.nbytes if self.dense is not None else 0))

    @property
    def uniform_zone(self) -> int | None:
        """Local index of the single zone covering the whole chunk fully, else None."""
        if self.dense is None or self.sp_zone.size:
            return None
        first = int(self.dense.flat[0])
        if first >= 0 and (self.dense == first).all():
            return first
        return None

    def save(self, path: Path) -> None:
        arrays = dict(window=np.asarray(self.window), zones=self.zones, sp_zone=self.sp_zone,
                      sp_cell=self.sp_cell, sp_frac=self.sp_frac)
        if self.dense is not None:
            arrays["dense"] = self.dense
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
        os.close(fd)
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "ChunkCoverage":
        with np.load(path) as z:
            return cls(tuple(int(v) for v in z["window"]), z["zones"], z["dense"] if "dense" in z else None,
                       z["sp_zone"], z["sp_cell"], z["sp_frac"])


# -- the zone set ----------------------------------------------------------------------------------------------

class ZoneSet:
    """Polygons of one zone set (counties, red-line units, function zones) on one analysis grid.

    Attributes: ``ids`` (zone ids, input order), ``names``, ``area_km2`` (polygon area in the grid's equal-area
    CRS), ``area_outside_km2`` (part outside the grid), ``gdf`` (reprojected, repaired, indexed by id),
    ``overlaps`` (DataFrame id_a, id_b, overlap_km2), ``coverage_computations`` (chunks computed so far).
    """

    def __init__(self, gdf, grid: AnalysisGrid, *, id_field: str, name_field: str | None = None,
                 kind: str = "zones", source=None, cache_dir=None, cache_limit_mb: float = 1024.0,
                 overlap_tol_m2: float = 1.0):
        self.grid, self.id_field, self.name_field, self.kind = grid, id_field, name_field, kind
        self.source = None if source is None else str(source)
        label = self.source or f"{kind} layer"
        columns = [c for c in gdf.columns if c != gdf.geometry.name]
        for field in (id_field, name_field):
            if field is not None and field not in gdf.columns:
                raise InputError(f"{kind} layer has no field {field!r}; available fields: {', '.join(map(str, columns))}",
                                 path=self.source, field=field, expected="an existing attribute field")
        if gdf.crs is None:
            raise InputError(f"{kind} layer has no CRS", path=self.source, field="crs",
                             expected="a layer with a defined CRS")
        ids = gdf[id_field]
        if ids.isna().any():
            raise InputError(f"{int(ids.isna().sum())} feature(s) have no id", path=self.source, field=id_field,
                             expected="an id in every feature")
        dup = ids[ids.duplicated()].unique()
        if len(dup):
            raise InputError(f"duplicate zone ids: {', '.join(map(str, dup[:20]))}", path=self.source,
                             field=id_field, expected="unique ids")
        if not gdf.crs.equals(grid.crs.to_wkt(), ignore_axis_order=True):
            log.info("reprojecting %d %s from %s to the analysis grid CRS", len(gdf), kind, gdf.crs.name)
            gdf = gdf.to_crs(grid.crs.to_wkt())
        geoms = np.asarray(gdf.geometry.values, dtype=object)
        bad = [i for i, g in enumerate(geoms) if g is None or g.is_empty]
        if bad:
            raise InputError(f"empty geometry for zone id(s) {', '.join(str(ids.iloc[i]) for i in bad[:20])}",
                             path=self.source, field="geometry", expected="a polygon for every zone")
        invalid = ~shapely.is_valid(geoms)
        if invalid.any():
            why = [shapely.is_valid_reason(geoms[i]) for i in np.flatnonzero(invalid)]
            before_km2 = shapely.area(geoms[invalid]) / 1e6  # the ring's shoelace area, as drawn
            geoms = geoms.copy()
            geoms[invalid] = shapely.make_valid(geoms[invalid])
            after_km2 = shapely.area(geoms[invalid]) / 1e6
            # a bow-tie's lobes cancel in the drawn area: a repair that changes the area is a guess at what was
            # meant, and every area in the tables would rest on it — refuse it, name the zones
            changed = np.abs(after_km2 - before_km2) > REPAIR_AREA_TOLERANCE * np.maximum(after_km2, before_km2)
            if changed.any():
                listed = "; ".join(f"{ids.iloc[i]} ({r}; {b:.6g} km² as drawn, {a:.6g} km² after make_valid)"
                                   for i, r, b, a, c in zip(np.flatnonzero(invalid), why, before_km2, after_km2,
                                                            changed) if c)
                raise InputError(f"invalid geometry whose repair would change its area: {listed}",
                                 path=self.source, field="geometry",
                                 expected="valid polygons (fix them, e.g. QGIS 'Fix geometries', and check the result)")
            log.warning("%s: repaired %d invalid geometr%s with make_valid (check the result): %s", label,
                        int(invalid.sum()), "y" if invalid.sum() == 1 else "ies",
                        "; ".join(f"{ids.iloc[i]} ({r}; area {b:.6g} km² as drawn, {a:.6g} km² repaired)"
                                  for i, r, b, a in zip(np.flatnonzero(invalid), why, before_km2, after_km2)))
        fixed = [_polygonal(g) for g in geoms]
        bad = [i for i, g in enumerate(fixed) if g is None]
        if bad:
            raise InputError(f"zone id(s) {', '.join(str(ids.iloc[i]) for i in bad[:20])} have no polygonal area "
                             f"(type {geoms[bad[0]].geom_type})", path=self.source, field="geometry",
                             expected="Polygon or MultiPolygon geometries")
        geoms = np.asarray(fixed, dtype=object)

        self.ids = ids.to_numpy()
        self.names = (gdf[name_field].to_numpy() if name_field else np.asarray([str(i) for i in self.ids], dtype=object))
        area_m2 = shapely.area(geoms)
        gb = shapely.box(*grid.bounds)
        inside = shapely.contains(gb, geoms)
        outside_m2 = np.zeros(len(geoms))
        if (~inside).any():
            outside_m2[~inside] = area_m2[~inside] - shapely.area(shapely.intersection(geoms[~inside], gb))
        self.area_km2 = area_m2 / 1e6
        self.area_outside_km2 = np.maximum(outside_m2, 0.0) / 1e6
        import geopandas as gpd

        self.gdf = gpd.GeoDataFrame({"name": self.names, "area_km2": self.area_km2}, geometry=list(geoms),
                                    crs=grid.crs.to_wkt(), index=pd.Index(self.ids, name=id_field))
        self.overlaps = _overlaps(geoms, self.ids, overlap_tol_m2)
        if len(self.overlaps):
            head = "; ".join(f"{r.id_a}/{r.id_b}: {r.overlap_km2:.6g} km²" for r in self.overlaps.head(10).itertuples())
            warnings.warn(f"{label}: {len(self.overlaps)} overlapping zone pair(s) (cells count in each): {head}",
                          UserWarning, stacklevel=3)

        # cell-space ring edges and bounding boxes, once
        edges = [_ring_edges(g, grid.transform) for g in geoms]
        bb = np.array([[e[:, [0, 2]].min(), e[:, [1, 3]].min(), e[:, [0, 2]].max(), e[:, [1, 3]].max()]
                       if e.size else [np.inf, np.inf, -np.inf, -np.inf] for e in edges])
        self._bbox = np.ascontiguousarray(bb.reshape(-1, 4))  # umin, vmin, umax, vmax (cell units)
        # every zone's edges in one array: zone z in rows _edge_off[z]:_edge_off[z + 1]
        self._edge_off = np.concatenate([[0], np.cumsum([len(e) for e in edges])]).astype(np.int64)
        self._edges_all = np.ascontiguousarray(np.concatenate(edges) if edges else np.zeros((0, 5)), dtype=np.float64)
        h = hashlib.sha1()
        h.update(_grid_token(grid).encode())
        for i, g in zip(self.ids, geoms):
            h.update(str(i).encode())
            h.update(shapely.to_wkb(g))
        self.token = h.hexdigest()[:20]
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.cache_limit_bytes = int(cache_limit_mb * 2**20)
        self.coverage_computations = 0
        self._init_cache()

    @classmethod
    def from_gdf(cls, gdf, grid: AnalysisGrid, *, id_field: str, name_field: str | None = None,
                 kind: str = "zones", source=None, **kw) -> "ZoneSet":
        """Zone set from a GeoDataFrame (any CRS; reprojected to ``grid.crs``); see the class docstring."""
        return cls(gdf, grid, id_field=id_field, name_field=name_field, kind=kind, source=source, **kw)

    @classmethod
    def from_file(cls, path, grid: AnalysisGrid, *, id_field: str, layer=None, **kw) -> "ZoneSet":
        from ecoassess.readers import read_vector

        if not os.path.exists(path):
            raise InputError("file not found", path=path)
        return cls(read_vector(path, layer), grid, id_field=id_field, source=path, **kw)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"ZoneSet({self.kind!r}, {len(self)} zones, grid {_grid_label(self.grid)})"

    # -- coverage cache ---------------------------------------------------------------------------------------
    def _init_cache(self):
        self._lock = threading.Lock()
        self._mem: OrderedDict = OrderedDict()
        self._mem_bytes = 0

    def __getstate__(self):
        state = self.__dict__.copy()
        for k in ("_lock", "_mem", "_mem_bytes"):
            state.pop(k, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_cache()

    def __dask_tokenize__(self):
        return ("ecoassess.ZoneSet", self.token)

    def clear_cache(self) -> None:
        with self._lock:
            self._mem.clear()
            self._mem_bytes = 0

    def candidates(self, window) -> np.ndarray:
        """Indices of zones whose bounding box meets ``window`` = (row_off, col_off, height, width)."""
        r0, c0, h, w = window
        b = self._bbox
        return np.flatnonzero((b[:, 0] < c0 + w) & (b[:, 2] > c0) & (b[:, 1] < r0 + h) & (b[:, 3] > r0))

    def _cache_path(self, window) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"coverage-{self.token}" / "r{}_c{}_h{}_w{}.npz".format(*window)

    def coverage(self, window) -> ChunkCoverage:
        """Coverage of ``window`` (row_off, col_off, height, width): from memory, from ``cache_dir``, or computed."""
        key = tuple(int(v) for v in window)
        with self._lock:
            hit = self._mem.get(key)
            if hit is not None:
                self._mem.move_to_end(key)
                return hit
        path = self._cache_path(key)
        cov = None
        if path is not None and path.exists():
            try:
                cov = ChunkCoverage.load(path)
            except Exception:  # noqa: BLE001 - a corrupt cache file is recomputed
                cov = None
        if cov is None:
            cov = self._compute_coverage(key)
            with self._lock:
                self.coverage_computations += 1
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                cov.save(path)
        with self._lock:
            if key not in self._mem:
                self._mem[key] = cov
                self._mem_bytes += cov.nbytes
                while self._mem_bytes > self.cache_limit_bytes and len(self._mem) > 1:
                    _, old = self._mem.popitem(last=False)
                    self._mem_bytes -= old.nbytes
        return cov

    # -- layers -------------------------------------------------------------------------------------------------
    def covered(self, *, chunk: int = DEFAULT_CHUNK, name: str = "inside") -> xr.DataArray:
        """Lazy bool layer: True for every cell that any zone covers, even in part (coverage fraction > 0).

        The cells whose values enter this zone set's tables: layers limited to it keep a value in every partly
        covered boundary cell, so a zone's area splits into valid / masked / nodata by what was observed, not by
        where cell centres fall. Uses (and fills) the same per-chunk coverage cache as the zonal statistics.
        """
        def block(block_info=None):
            (r0, r1), (c0, c1) = block_info[None]["array-location"]
            cov = self.coverage((r0, c0, r1 - r0, c1 - c0))
            out = np.zeros((r1 - r0) * (c1 - c0), dtype=bool)
            if cov.dense is not None:
                out |= cov.dense.reshape(-1) >= 0
            out[cov.sp_cell[cov.sp_frac > 0]] = True
            return out.reshape(r1 - r0, c1 - c0)

        chunks = da.core.normalize_chunks((chunk, chunk), self.grid.shape)
        data = da.map_blocks(block, chunks=chunks, dtype=bool, meta=np.empty((0, 0), bool),
                             name=f"covered-{name}-{self.token}-{_grid_token(self.grid)}-{chunk}")
        return self.grid.wrap(data, name=name)

    def _compute_coverage(self, window) -> ChunkCoverage:
        r0, c0, h, w = window
        zones = self.candidates(window).astype(np.int64)
        dtype = np.int16 if len(zones) < 2**15 else np.int32
        dense = np.full((h, w), -1, dtype=dtype)
        any_full, sz, sc, sf = zk.chunk_coverage(self._edges_all, self._edge_off, self._bbox, zones, int(r0), int(c0),
                                                 int(h), int(w), 1.0 - FULL_TOL, ZERO_TOL, dense)
        return ChunkCoverage(tuple(window), zones, dense if any_full else None, sz.astype(dtype), sc, sf)


#: an invalid zone geometry is repaired (make_valid) only when that changes its area by at most this share
REPAIR_AREA_TOLERANCE = 0.01


def _polygonal(geom):
    """The polygonal part of ``geom`` (Polygon/MultiPolygon), None when it has none."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
    if not parts:
        return None
    polys = [q for p in parts for q in shapely.get_parts(p)]
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _overlaps(geoms, ids, tol_m2: float) -> pd.DataFrame:
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    sel = a < b
    a, b = a[sel], b[sel]
    rows = []
    if a.size:
        area = shapely.area(shapely.intersection(geoms[a], geoms[b]))
        for i, j, ar in zip(a, b, area):
            if ar > tol_m2:
                rows.append((ids[i], ids[j], ar / 1e6))
    return pd.DataFrame(rows, columns=["id_a", "id_b", "overlap_km2"])


# -- per-chunk partial sums --------------------------------------------------------------------------------------

def _layer_nodata(layer: xr.DataArray):
    nd = layer.attrs.get("nodata", layer.attrs.get("_FillValue"))
    if nd is None or (isinstance(nd, float) and math.isnan(nd)):
        return None
    return nd


def _as_mask(m) -> np.ndarray | None:
    if m is None:
        return None
    m = np.asarray(m)
    if m.dtype == bool:
        return m
    if m.dtype.kind == "f":
        return (m != 0) & ~np.isnan(m)
    return m != 0


def _kernel_layer(x, nodata):
    """(flat contiguous array a kernel can read, has nodata, nodata in that array's dtype) for a layer chunk.

    A cell is nodata exactly when numpy's ``x == nodata`` says so: the value is cast to the chunk's dtype and
    kept only when numpy finds the cast value equal to ``nodata`` (a nodata outside the dtype's range, or not
    representable in it, marks no cell). Dtypes the kernels do not take (bool, float16, non-native byte order,
    others) are widened exactly first.
    """
    x = np.asarray(x)
    dt = x.dtype
    has, nd = False, None
    if nodata is not None:
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cand = np.asarray(nodata).astype(dt)
                has = bool(cand == nodata)
        except (TypeError, ValueError, OverflowError):
            has = False
        if has:
            nd = cand
    if dt.kind == "b":
        x = x.view(np.uint8)
    elif dt.kind not in "iuf" or dt.itemsize < 4 and dt.kind == "f" or not dt.isnative:
        x = x.astype(np.float64 if dt.kind not in "iu" else dt.newbyteorder("="))
    x = np.ascontiguousarray(x).reshape(-1)
    nd = x.dtype.type(nd) if has else x.dtype.type(0)
    return x, has, nd


def _mask_flat(m) -> np.ndarray | None:
    """The chunk's mask as flat uint8 (non-zero = masked, as :func:`_as_mask`), None without a mask."""
    mask = _as_mask(m)
    if mask is None:
        return None
    return np.ascontiguousarray(mask).reshape(-1).view(np.uint8)


def _dense_flat(cov: ChunkCoverage) -> np.ndarray:
    if cov.dense is None:
        return np.zeros(0, cov.sp_zone.dtype)
    return np.ascontiguousarray(cov.dense).reshape(-1)


def _chunk_stats(zones: ZoneSet, window, blocks, mask_block, nodatas, want_minmax: bool):
    """Per-zone partials of one chunk: zones (global idx) and arrays (k, nz) W, mean, M2, min, max, Wmasked, Wnodata.

    The accumulation is :func:`ecoassess.zonal_kernels.chunk_moments`, one call per layer (GIL released).
    """
    cov = zones.coverage(window)
    nz, k = cov.zones.size, len(blocks)
    W, MEAN, M2 = np.zeros((k, nz)), np.zeros((k, nz)), np.zeros((k, nz))
    MN, MX = np.full((k, nz), np.inf), np.full((k, nz), -np.inf)
    WM, WN = np.zeros((k, nz)), np.zeros((k, nz))
    if nz == 0:
        return cov.zones, (W, MEAN, M2, MN, MX, WM, WN)
    mask = _mask_flat(mask_block)
    dense = _dense_flat(cov)
    width = int(window[3])
    for li, (x, nodata) in enumerate(zip(blocks, nodatas)):
        xf, has, nd = _kernel_layer(x, nodata)
        zk.chunk_moments(xf, nd if has else None, mask, dense, cov.sp_zone, cov.sp_cell, cov.sp_frac, width,
                         want_minmax, W[li], MEAN[li], M2[li], MN[li], MX[li], WM[li], WN[li])
    return cov.zones, (W, MEAN, M2, MN, MX, WM, WN)


def _scatter_stats(part, k: int, n_zones: int):
    zidx, arrays = part
    if isinstance(zidx, str):  # already global
        return arrays
    W, MEAN, M2 = np.zeros((k, n_zones)), np.zeros((k, n_zones)), np.zeros((k, n_zones))
    MN, MX = np.full((k, n_zones), np.inf), np.full((k, n_zones), -np.inf)
    WM, WN = np.zeros((k, n_zones)), np.zeros((k, n_zones))
    out = (W, MEAN, M2, MN, MX, WM, WN)
    for dst, src in zip(out, arrays):
        dst[:, zidx] = src
    return out


def _merge_stats(a, b):
    """Chan et al. merge of (W, mean, M2) plus min/max and area buckets, elementwise over (layer, zone)."""
    Wa, ma, M2a, mna, mxa, wma, wna = a
    Wb, mb, M2b, mnb, mxb, wmb, wnb = b
    W = Wa + Wb
    delta = mb - ma
    with np.errstate(invalid="ignore", divide="ignore"):
        frac_b = np.where(W > 0, Wb / W, 0.0)
        mean = ma + delta * frac_b
        M2 = M2a + M2b + np.where(W > 0, delta * delta * Wa * frac_b, 0.0)
    return (W, mean, M2, np.minimum(mna, mnb), np.maximum(mxa, mxb), wma + wmb, wna + wnb)


def _combine_stats(k: int, n_zones: int):
    def combine(*parts):
        acc = _scatter_stats(parts[0], k, n_zones)
        for p in parts[1:]:
            acc = _merge_stats(acc, _scatter_stats(p, k, n_zones))
        return ("global", acc)
    return combine


def tree_reduce(items: list, combine, split_every: int = 8):
    """Reduce a list of Delayed objects pairwise-ish (``split_every`` at a time) so memory stays bounded."""
    combine_d = dask.delayed(combine, pure=True)
    while True:  # at least one combine, so the result is always in combined form
        items = [combine_d(*items[i:i + split_every]) for i in range(0, len(items), split_every)]
        if len(items) == 1:
            return items[0]


# -- layer plumbing ----------------------------------------------------------------------------------------------

def _check_grid(zones: ZoneSet, arr: xr.DataArray, name: str) -> AnalysisGrid:
    try:
        g = grid_of(arr)
    except ValueError as exc:
        raise InputError(str(exc), field=name, expected="a layer built on the zones' analysis grid") from exc
    if g != zones.grid:
        raise InputError(f"layer {name!r} is on grid {_grid_label(g)}, the zones on {_grid_label(zones.grid)}",
                         field=name, expected="every layer on the zones' analysis grid")
    return g


def _dask_data(arr: xr.DataArray, chunks=None, name=None) -> da.Array:
    arr = single_band(arr)
    if arr.ndim != 2:
        name = name or arr.name
        raise InputError(f"layer {name!r} has dimensions {dict(arr.sizes)}", field=str(name),
                         expected="a 2-D (y, x) layer, or a single band (band=1, y, x)")
    data = arr.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=chunks or (DEFAULT_CHUNK, DEFAULT_CHUNK))
    if chunks is not None and data.chunks != chunks:
        data = data.rechunk(chunks)
    return data


def _windows(chunks):
    rows = np.concatenate([[0], np.cumsum(chunks[0])])
    cols = np.concatenate([[0], np.cumsum(chunks[1])])
    for i in range(len(chunks[0])):
        for j in range(len(chunks[1])):
            yield i, j, (int(rows[i]), int(cols[j]), int(chunks[0][i]), int(chunks[1][j]))


def _chunked_inputs(zones: ZoneSet, layers: dict, masked):
    names = list(layers)
    first = _dask_data(layers[names[0]], name=names[0])
    chunks = first.chunks
    datas = [first] + [_dask_data(layers[n], chunks, name=n) for n in names[1:]]
    mask = None
    if masked is not None:
        _check_grid(zones, masked, "masked")
        mask = _dask_data(masked, chunks, name="masked").to_delayed()
    return chunks, [d.to_delayed() for d in datas], mask


# -- public API ----------------------------------------------------------------------------------------------

def zonal_stats(zones: ZoneSet, layers: dict[str, xr.DataArray], *, masked: xr.DataArray | None = None,
                stats=("mean", "std", "min", "max"), min_valid_cells: float = 1.0,
                invalid: dict[str, xr.DataArray] | None = None) -> pd.DataFrame:
    """Coverage-weighted statistics of each layer over each zone, with area accounting (module docstring).

    ``masked``: True/non-zero = masked (cloud, water, ...), counted in ``<layer>_masked_km2``.
    ``invalid``: {layer: bool layer}, True = observed but the value is not valid (outside the index's catalog
    ``valid_range``); such cells without a value in the layer and not masked are counted in
    ``<layer>_invalid_km2`` instead of ``<layer>_nodata_km2`` (the column is there only for these layers), so
    valid + masked + nodata + invalid + outside = area_km2 still holds.
    Columns: ``name, area_km2, area_outside_km2`` and per layer ``<layer>_<stat>`` for ``stats`` (subset of
    mean, std, min, max, sum), ``<layer>_n_cells`` (Σ coverage over valid cells), ``<layer>_few_cells``
    (n_cells < ``min_valid_cells``), ``<layer>_valid_km2``, ``<layer>_masked_km2``, ``<layer>_nodata_km2``.
    Zones without a valid cell get NaN statistics (and a logged warning); their areas show why.
    """
    if isinstance(layers, xr.DataArray):
        layers = {str(layers.name or "value"): layers}
    if not layers:
        raise ValueError("zonal_stats needs at least one layer")
    unknown = set(stats) - set(STATS)
    if unknown:
        raise ValueError(f"unknown statistic(s) {sorted(unknown)}; one of {STATS}")
    for name, arr in layers.items():
        _check_grid(zones, arr, name)
    invalid = dict(invalid or {})
    unknown_invalid = set(invalid) - set(layers)
    if unknown_invalid:
        raise ValueError(f"invalid= names layer(s) {sorted(unknown_invalid)} that are not in layers")
    names = list(layers)
    # each invalid mask rides along as a 0/1 layer: its coverage-weighted sum over the unmasked cells is the
    # invalid area (masked cells stay masked, as in every other column)
    aux = {}
    for name, flag in invalid.items():
        _check_grid(zones, flag, f"invalid {name}")
        layer = layers[name]
        aux[f"invalid:{name}"] = (flag.astype(bool) & ~np.isfinite(layer)).astype("float32")
    layers = {**layers, **aux}
    all_names = list(layers)
    k, nzt = len(all_names), len(zones)
    chunks, blocks, mask = _chunked_inputs(zones, layers, masked)
    nodatas = [_layer_nodata(layers[n]) for n in all_names]
    want_minmax = "min" in stats or "max" in stats
    zs = dask.delayed(zones, traverse=False)
    parts = []
    for i, j, window in _windows(chunks):
        if zones.candidates(window).size == 0:
            continue
        parts.append(dask.delayed(_chunk_stats, pure=True)(
            zs, window, [b[i, j] for b in blocks], None if mask is None else mask[i, j], nodatas, want_minmax))
    if parts:
        (_, acc), = dask.compute(tree_reduce(parts, _combine_stats(k, nzt)))
    else:
        acc = _scatter_stats((np.zeros(0, np.int64), [np.zeros((k, 0))] * 7), k, nzt)
    W, MEAN, M2, MN, MX, WM, WN = acc
    cell_km2 = zones.grid.cell_area_m2 / 1e6
    out = {"name": zones.names, "area_km2": zones.area_km2, "area_outside_km2": zones.area_outside_km2}
    for li, name in enumerate(names):
        has = W[li] > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            col = {
                "mean": np.where(has, MEAN[li], np.nan),
                "std": np.where(has, np.sqrt(np.maximum(M2[li], 0.0) / W[li]), np.nan),
                "min": np.where(has, MN[li], np.nan),
                "max": np.where(has, MX[li], np.nan),
                "sum": np.where(has, MEAN[li] * W[li], np.nan),
            }
        for s in stats:
            out[f"{name}_{s}"] = col[s]
        out[f"{name}_n_cells"] = W[li]
        out[f"{name}_few_cells"] = W[li] < min_valid_cells
        out[f"{name}_valid_km2"] = W[li] * cell_km2
        out[f"{name}_masked_km2"] = WM[li] * cell_km2
        out[f"{name}_nodata_km2"] = WN[li] * cell_km2
        if name in invalid:
            ai = all_names.index(f"invalid:{name}")
            invalid_km2 = np.where(W[ai] > 0, MEAN[ai] * W[ai], 0.0) * cell_km2
            out[f"{name}_invalid_km2"] = invalid_km2
            out[f"{name}_nodata_km2"] = np.maximum(WN[li] * cell_km2 - invalid_km2, 0.0)
        empty = np.flatnonzero(~has)
        if empty.size:
            log.warning("layer %s: %d %s without a valid cell (statistics NaN): %s", name, empty.size, zones.kind,
                        ", ".join(str(zones.ids[i]) for i in empty[:20]) + (" ..." if empty.size > 20 else ""))
    df = pd.DataFrame(out, index=pd.Index(zones.ids, name=zones.id_field))
    df.attrs.update({"cell_area_m2": zones.grid.cell_area_m2, "min_valid_cells": min_valid_cells,
                     "zones": zones.kind, "std": "population, coverage-weighted"})
    return df


#: Integer class codes spanning fewer values than this (per chunk) are tallied through a lookup table.
_CLASS_SPAN = 2**20


def _chunk_classes(zones: ZoneSet, window, block, nodata):
    """Per chunk: zones (global), codes, class weights (nz, ncodes), nodata weights (nz,)."""
    cov = zones.coverage(window)
    nz = cov.zones.size
    x = np.asarray(block)
    xf, has, nd = _kernel_layer(x, nodata)
    dense = _dense_flat(cov)
    span = None  # integer codes in a short range: compiled passes with a lookup table, no gathering or sorting
    if xf.dtype.kind in "iu" and xf.dtype.itemsize <= 2:
        info = np.iinfo(xf.dtype)
        span = int(info.min), int(info.max) - int(info.min) + 1
    elif xf.dtype in (np.int32, np.uint32, np.int64):
        lo, hi, n = zk.class_range(xf, has, nd, dense, cov.sp_cell)
        if n and int(hi) - int(lo) < _CLASS_SPAN:
            span = int(lo), int(hi) - int(lo) + 1
    if span is not None:
        codes, M, WN = zk.class_weights_small(xf, span[0], span[1], has, nd, dense, cov.sp_zone, cov.sp_cell,
                                              cov.sp_frac, nz)
        return cov.zones, (codes + span[0]).astype(x.dtype), M, WN
    z, c, w, WN = zk.class_gather(xf, has, nd, dense, cov.sp_zone, cov.sp_cell, cov.sp_frac, nz)
    if not z.size:
        return cov.zones, np.zeros(0, x.dtype), np.zeros((nz, 0)), WN
    codes, inv = np.unique(c, return_inverse=True)
    M = np.bincount(z * codes.size + inv, w, minlength=nz * codes.size).reshape(nz, codes.size)
    return cov.zones, codes.astype(x.dtype, copy=False), M, WN


def _combine_classes(n_zones: int):
    def to_global(p):
        if isinstance(p[0], str):
            return p[1]
        zidx, codes, M, WN = p
        G = {}
        for ci, code in enumerate(codes.tolist()):
            col = np.zeros(n_zones)
            col[zidx] = M[:, ci]
            G[code] = col
        wn = np.zeros(n_zones)
        wn[zidx] = WN
        return G, wn

    def combine(*parts):
        G, wn = to_global(parts[0])
        G = dict(G)
        for p in parts[1:]:
            g2, wn2 = to_global(p)
            wn = wn + wn2
            for code, col in g2.items():
                G[code] = G[code] + col if code in G else col
        return ("global", (G, wn))
    return combine


def zonal_class_areas(zones: ZoneSet, classes: xr.DataArray, *, nodata=None) -> pd.DataFrame:
    """Area in km² of each class in each zone: Σ coverage × cell area over cells of that class.

    Columns: ``name, area_km2``, one ``class_<code>_km2`` per class found (``df.attrs['class_columns']`` maps
    code → column), ``nodata_km2`` (``nodata``, default the layer's nodata attribute, or NaN) and
    ``area_outside_km2``; classes + nodata + outside = area_km2.
    """
    name = str(classes.name or "classes")
    _check_grid(zones, classes, name)
    if nodata is None:
        nodata = _layer_nodata(classes)
    data = _dask_data(classes, name=name)
    blocks = data.to_delayed()
    zs = dask.delayed(zones, traverse=False)
    parts = [dask.delayed(_chunk_classes, pure=True)(zs, window, blocks[i, j], nodata)
             for i, j, window in _windows(data.chunks) if zones.candidates(window).size]
    nzt = len(zones)
    if parts:
        (_, (G, wn)), = dask.compute(tree_reduce(parts, _combine_classes(nzt)))
    else:
        G, wn = {}, np.zeros(nzt)
    cell_km2 = zones.grid.cell_area_m2 / 1e6
    out = {"name": zones.names, "area_km2": zones.area_km2}
    colmap = {}
    for code in sorted(G):
        label = f"{code:g}" if isinstance(code, float) else str(code)
        colmap[code] = f"class_{label}_km2"
        out[colmap[code]] = G[code] * cell_km2
    out["nodata_km2"] = wn * cell_km2
    out["area_outside_km2"] = zones.area_outside_km2
    df = pd.DataFrame(out, index=pd.Index(zones.ids, name=zones.id_field))
    df.attrs.update({"class_columns": colmap, "cell_area_m2": zones.grid.cell_area_m2, "layer": name})
    return df
