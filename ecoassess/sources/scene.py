"""The common result of every imagery reader: one acquisition's surface reflectance and masks on one analysis grid.

A :class:`Scene` is lazy: opening a product reads only metadata and raster headers; pixel values are read chunk by
chunk when an array is computed. The one eager operation is :meth:`Scene.mask_summary` (and
:meth:`Scene.require_clear`, which uses it), a single pass over the mask bands that counts observed, clear and
masked pixels; it is cached on the scene.

The summary has two parts. The mask counts (observed, clear before the reflectance-range screening, each mask
reason) read only the mask band and the red band; the range counts (clear after the screening, cells outside the
physical reflectance range per band) read every reflectance band. :func:`mask_counts` makes the first part alone,
so a composite can choose its scenes cheaply and get the range counts from the pass that reads the bands anyway
(:func:`range_count_tasks`, :func:`set_range_counts`).
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import dask
import numba
import numpy as np
import xarray as xr

from ecoassess.errors import AllMaskedError, InputError
from ecoassess.grid import DEFAULT_CHUNK, AnalysisGrid, declared_info, is_aligned, raster_info, read_on_grid

log = logging.getLogger(__name__)

#: Band roles a scene may carry (surface reflectance, unitless 0..1, may be slightly negative).
REFLECTANCE_ROLES: tuple[str, ...] = (
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir1", "swir2",
)
#: Roles every optical scene from a full product (Landsat C2 L2, Sentinel-2 L2A) carries.
CORE_ROLES: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "swir2")
#: the mask reason of an observation with a band outside the physical reflectance range
#: (:mod:`ecoassess.sources.reflectance_range`, which sets it)
RANGE_REASON = "reflectance_out_of_range"


@dataclass
class Scene:
    """One acquisition on one grid.

    ``bands`` holds float32 surface reflectance per band role (NaN where fill or outside the product);
    ``valid`` is True where the product observed the surface; ``clear`` where valid and not masked;
    ``water`` is the product's own water flag (kept separate, never removed from ``clear``);
    ``thermal_k`` is surface temperature in kelvin (Landsat C2 ST) or None. ``mask_layers`` maps each mask
    reason (``cloud``, ``cirrus``, SCL class names, ...) to a lazy boolean array (True = masked for that reason,
    restricted to valid pixels); they explain ``valid & ~clear`` and feed :meth:`mask_summary`.
    """

    sensor: str
    date: _dt.date
    path: str
    bands: xr.Dataset
    valid: xr.DataArray
    clear: xr.DataArray
    water: xr.DataArray | None
    thermal_k: xr.DataArray | None
    grid: AnalysisGrid
    metadata: dict
    mask_layers: dict[str, xr.DataArray] = field(default_factory=dict)
    #: per band role, the observed cells whose reflectance lies outside its physical range (lazy bool; set by
    #: :func:`ecoassess.sources.reflectance_range.screen_reflectance`, counted in :meth:`mask_summary`)
    range_checks: dict[str, xr.DataArray] = field(default_factory=dict)
    #: ``clear`` before the reflectance-range screening (lazy bool; set with ``range_checks``): reads no
    #: reflectance band but the red one, so the mask counts (:func:`mask_counts`) stay cheap
    clear_before_range: xr.DataArray | None = None
    _summary: dict | None = field(default=None, init=False, repr=False, compare=False)
    _mask_counts: dict | None = field(default=None, init=False, repr=False, compare=False)

    # -- convenience --------------------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """Product identifier (product id from the metadata, else the file/folder name)."""
        return str(self.metadata.get("product_id") or Path(self.path).name)

    @property
    def roles(self) -> list[str]:
        return list(self.bands.data_vars)

    def clear_bands(self) -> xr.Dataset:
        """``bands`` with every pixel that is not clear set to NaN (lazy)."""
        out = self.bands.where(self.clear)
        for role in out.data_vars:
            out[role].attrs = dict(self.bands[role].attrs)
        out.attrs = dict(self.bands.attrs)
        return out

    def __repr__(self) -> str:  # the default dataclass repr would print whole dask graphs
        return (f"Scene({self.sensor}, {self.date.isoformat()}, {self.id}, bands={self.roles}, "
                f"grid={self.grid.height}x{self.grid.width} @ {self.grid.resolution:.6g})")

    # -- the one eager check -----------------------------------------------------------------------------------
    def mask_summary(self) -> dict:
        """Counts of grid cells: ``cells``, ``valid`` (observed), ``clear``, ``masked`` (= valid − clear),
        ``by_reason`` {reason: masked valid cells} (reasons overlap) and ``outside_range`` {band: observed cells
        outside the physical reflectance range}. One pass over the mask (and reflectance) bands; cached."""
        if self._summary is None:
            mask_summaries([self])
        return self._summary

    def _mask_tasks(self) -> list:
        """Dask counts that read the mask band (and the red band, which defines "observed"): observed cells, clear
        cells before the range screening, and each mask reason but the range's."""
        valid = self.valid.data
        before = self.clear if self.clear_before_range is None else self.clear_before_range
        tasks = [valid.sum(), (before.data & valid).sum()]
        return tasks + [(layer.data & valid).sum() for name, layer in self.mask_layers.items()
                        if name != RANGE_REASON]

    def _range_tasks(self) -> list:
        """Dask counts that read every reflectance band: clear cells after the range screening, the range's mask
        reason, and per band the observed cells outside the range. Empty for a scene that is not screened."""
        if not self.range_checks:
            return []
        valid = self.valid.data
        tasks = [(self.clear.data & valid).sum()]
        if RANGE_REASON in self.mask_layers:
            tasks.append((self.mask_layers[RANGE_REASON].data & valid).sum())
        return tasks + [layer.data.sum() for layer in self.range_checks.values()]

    def _set_mask_counts(self, values) -> None:
        names = [n for n in self.mask_layers if n != RANGE_REASON]
        self._mask_counts = {"valid": int(values[0]), "clear": int(values[1]),
                             "by_reason": {n: int(v) for n, v in zip(names, values[2:])}}
        if not self.range_checks:  # nothing screened: the mask counts are the whole summary
            self._set_range_counts([])

    def _set_range_counts(self, values) -> None:
        m = self._mask_counts
        values = [int(v) for v in values]
        n_clear = values.pop(0) if self.range_checks else m["clear"]
        if self.range_checks and RANGE_REASON in self.mask_layers:
            by_reason = {**m["by_reason"], RANGE_REASON: values.pop(0)}
        else:
            by_reason = m["by_reason"]
        self._summary = {
            "cells": self.grid.n_cells,
            "valid": m["valid"],
            "clear": n_clear,
            "masked": m["valid"] - n_clear,
            "by_reason": {n: by_reason[n] for n in self.mask_layers if n in by_reason},  # in mask_layers' order
            "outside_range": dict(zip(self.range_checks, values)),
        }

    def clear_problem(self, min_fraction: float = 0.0, min_pixels: int = 1) -> str | None:
        """Why this scene has too few clear pixels (a sentence), or None when it has enough. See require_clear."""
        s = self.mask_summary()
        if s["valid"] == 0:
            return (f"scene {self.id} ({self.date.isoformat()}) has no observed pixel on the analysis grid "
                    f"({s['cells']:,} cells, all fill or outside the product footprint){self._why_unobserved()}")
        need = max(int(min_pixels), int(np.ceil(min_fraction * s["valid"])))
        if s["clear"] >= need:
            return None
        reasons = describe_reasons(s)
        if s["clear"] == 0:
            what = f"all {s['valid']:,} observed pixels are masked ({reasons}); no clear observation"
        else:
            what = (f"only {s['clear']:,} of {s['valid']:,} observed pixels are clear "
                    f"({100.0 * s['clear'] / s['valid']:.2f} %, {need:,} needed); masked: {reasons}")
        return f"scene {self.id} ({self.date.isoformat()}): {what}"

    def _why_unobserved(self) -> str:
        """Which input leaves no pixel observed: the red band (it defines "observed") or the mask file's fill.
        One extra pass over the red band, made only when nothing is observed."""
        red = self.bands.get("red") if hasattr(self.bands, "get") else None
        if red is None:
            return ""
        if not bool(np.isfinite(red.data).any().compute()):
            return (f": the red band {red.attrs.get('source', red.attrs.get('band_file', ''))} has no data there "
                    "(all nodata, or it lies elsewhere: wrong CRS?)")
        mask_file = self.metadata.get("mask_file")
        return f": {mask_file} marks every pixel as fill" if mask_file else ""

    def require_clear(self, min_fraction: float = 0.0, min_pixels: int = 1) -> dict:
        """Raise :class:`AllMaskedError` unless at least ``min_pixels`` clear pixels and at least ``min_fraction``
        of the observed pixels are clear; returns :meth:`mask_summary`. The message names the mask file (e.g.
        QA_PIXEL, SCL) and the share of each mask reason, so an all-cloud scene never becomes silent NaN tables."""
        problem = self.clear_problem(min_fraction, min_pixels)
        if problem is not None:
            raise AllMaskedError(problem, path=self.metadata.get("mask_file") or self.path,
                                 field=self.metadata.get("mask_band"),
                                 expected="a scene with clear (unmasked) observations")
        return self.mask_summary()


def mask_summaries(scenes) -> list[dict]:
    """:meth:`Scene.mask_summary` of several scenes in one dask pass (each mask band is read once; the reflectance
    bands too, for the range counts)."""
    todo = [s for s in scenes if s._summary is None]
    if todo:
        tasks = [(s._mask_tasks() if s._mask_counts is None else [], s._range_tasks()) for s in todo]
        values = dask.compute(*[t for mask, rng in tasks for t in mask + rng])
        i = 0
        for s, (mask, rng) in zip(todo, tasks):
            if mask:
                s._set_mask_counts(values[i:i + len(mask)])
                i += len(mask)
            if s._summary is None:
                s._set_range_counts(values[i:i + len(rng)])
            i += len(rng)
    return [s._summary for s in scenes]


def mask_counts(scenes) -> list[dict]:
    """Per scene ``{valid, clear, by_reason}`` counted on the mask band and the red band only (one dask pass over
    the scenes not yet counted): ``clear`` is before the reflectance-range screening, an upper bound of the
    summary's ``clear``, and ``by_reason`` lacks :data:`RANGE_REASON`. A summarised scene gives its summary's counts
    (then ``clear`` is after the screening)."""
    todo = [s for s in scenes if s._summary is None and s._mask_counts is None]
    if todo:
        tasks = [s._mask_tasks() for s in todo]
        values = dask.compute(*[t for group in tasks for t in group])
        i = 0
        for s, group in zip(todo, tasks):
            s._set_mask_counts(values[i:i + len(group)])
            i += len(group)
    return [s._mask_counts if s._summary is None else
            {k: s._summary[k] for k in ("valid", "clear", "by_reason")} for s in scenes]


def range_count_tasks(scenes) -> tuple[list, list]:
    """(the scenes among ``scenes`` whose summary lacks only its range counts, the dask reductions that count them,
    flat): compute the reductions in the pass that reads the bands anyway (``materialize(reductions=...)``) and
    give their values to :func:`set_range_counts`. A scene appears once however often it is listed."""
    pending, seen, tasks = [], set(), []
    for s in scenes:
        if s._summary is None and s._mask_counts is not None and id(s) not in seen:
            seen.add(id(s))
            pending.append(s)
            tasks += s._range_tasks()
    return pending, tasks


def set_range_counts(scenes, values) -> None:
    """Complete the summaries of ``scenes`` (from :func:`range_count_tasks`) with the computed ``values``."""
    values = list(values)
    i = 0
    for s in scenes:
        n = (1 + (RANGE_REASON in s.mask_layers) + len(s.range_checks)) if s.range_checks else 0  # _range_tasks
        s._set_range_counts(values[i:i + n])
        i += n
    if i != len(values):
        raise ValueError(f"set_range_counts: {len(values)} values for {i} range counts")


def describe_reasons(summary: dict) -> str:
    """'cloud 99.9 %, cirrus 76.0 %' — share of observed pixels per mask reason, largest first (reasons overlap)."""
    n = max(summary["valid"], 1)
    items = sorted(((v, k) for k, v in summary["by_reason"].items() if v), reverse=True)
    if not items:
        return "no mask reason recorded"
    return ", ".join(f"{k} {100.0 * v / n:.1f} %" for v, k in items)


# -- helpers shared by the readers -----------------------------------------------------------------------------

def native_grid(path, crs=None, transform=None) -> AnalysisGrid:
    """The grid of a raster file itself (CRS, transform, size): what a reader uses when no grid is given.
    ``crs``/``transform``: declared for a file that carries none."""
    info = declared_info(raster_info(path), crs, transform)
    if info["crs"] is None:
        raise InputError("has no CRS, so the product's own grid cannot be used", path=path, field="crs",
                         expected="a georeferenced raster, declare its CRS (crs: EPSG:...), or pass an analysis grid")
    return AnalysisGrid(info["crs"], info["transform"], info["width"], info["height"])


def _scale_block(block, scale, offset, fill=None):
    """DN → physical value, ``float32(float64(DN) · scale + offset)``, NaN where DN == ``fill`` (a warped block
    has its fill as NaN already, and NaN stays NaN)."""
    x = np.ascontiguousarray(block)
    flat = x.reshape(-1)
    if fill is None:
        return _scale_flat(flat, scale, offset).reshape(x.shape)
    return _scale_fill_flat(flat, flat.dtype.type(fill), scale, offset).reshape(x.shape)


@numba.njit(nogil=True, cache=True)
def _scale_flat(x, scale, offset):
    out = np.empty(x.shape, np.float32)
    for i in range(x.shape[0]):
        out[i] = np.float64(np.float32(x[i])) * scale + offset
    return out


@numba.njit(nogil=True, cache=True)
def _scale_fill_flat(x, fill, scale, offset):
    out = np.empty(x.shape, np.float32)
    for i in range(x.shape[0]):
        out[i] = np.nan if x[i] == fill else np.float64(np.float32(x[i])) * scale + offset
    return out


def read_scaled(path, grid: AnalysisGrid, *, band: int = 1, kind: str = "reflectance", scale: float = 1.0,
                offset: float = 0.0, src_nodata=0, chunk: int = DEFAULT_CHUNK, name: str,
                attrs: dict | None = None, crs=None, transform=None) -> xr.DataArray:
    """``DN * scale + offset`` of one band on ``grid`` as lazy float32, NaN where DN == ``src_nodata`` or outside.

    Fill is turned into NaN by the warp itself (``src_nodata``), i.e. *before* scaling and before any averaging, so a
    fill DN never leaks into a resampled or scaled value. A band already on ``grid`` is read as stored and turned
    into values in one compiled pass (same numbers: DN → float32 → float64 · scale + offset → float32).
    ``crs``/``transform``: declared for a file that carries none.
    """
    info = declared_info(raster_info(path), crs, transform)
    where = {"crs": crs, "transform": transform}
    if src_nodata is not None and is_aligned(info, grid) and np.can_cast(np.min_scalar_type(src_nodata), info["dtype"]):
        # on the grid already: read the DN as stored; fill → NaN and scaling in one compiled pass
        raw = read_on_grid(path, grid, band=band, kind=kind, src_nodata=src_nodata, dst_nodata=src_nodata,
                           chunk=chunk, name=name, **where)
        data = raw.data.map_blocks(_scale_block, float(scale), float(offset), src_nodata, dtype=np.float32)
        raw.attrs["nodata"] = float("nan")
    else:
        raw = read_on_grid(path, grid, band=band, kind=kind, dtype="float32", src_nodata=src_nodata,
                           dst_nodata=float("nan"), chunk=chunk, name=name, **where)
        data = raw.data
        if scale != 1.0 or offset != 0.0:
            data = data.map_blocks(_scale_block, float(scale), float(offset), dtype=np.float32)
    out = grid.wrap(data, name=name)
    out.attrs.update(raw.attrs)
    out.attrs.update({"scale": float(scale), "add_offset_applied": float(offset)})
    out.attrs.update(attrs or {})
    return out


def wrap_like(grid: AnalysisGrid, data, name: str, attrs: dict | None = None) -> xr.DataArray:
    """Wrap a lazy array computed from other arrays on ``grid`` as a named layer with the given attributes."""
    if isinstance(data, xr.DataArray):
        data = data.data
    return grid.wrap(data, name=name, attrs=attrs)


def make_dataset(grid: AnalysisGrid, arrays: dict[str, xr.DataArray], attrs: dict | None = None) -> xr.Dataset:
    ds = xr.Dataset({k: v for k, v in arrays.items()})
    for k, v in arrays.items():
        ds[k].attrs = dict(v.attrs)
    ds.attrs.update(attrs or {})
    return ds


def parse_date(value) -> _dt.date:
    """A date from a ``date``/``datetime`` or an ISO string ('2020-09-27', '2020-02-19T11:34:25.405Z')."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    text = str(value).strip()
    try:
        return _dt.date.fromisoformat(text[:10])
    except ValueError as exc:
        raise ValueError(f"not an ISO date: {value!r}") from exc


def maybe_float(value) -> float | None:
    """``float(value)``, or None for a missing or non-numeric metadata value (e.g. cloud cover)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
