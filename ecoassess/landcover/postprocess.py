"""Post-processing of a classified land-cover map (issue 21 part 5), lazily and chunk by chunk.

* :func:`sieve` — patches smaller than a minimum mapping unit (``mmu_cells``, 8-connected) are merged into their
  largest neighbour (``rasterio.features.sieve``, GDAL's sieve filter). Per chunk with a halo of ``mmu_cells``
  cells: a patch piece that does not reach the halo's edge is a whole patch; one that does holds a path of more
  than ``mmu_cells`` cells, so it is never taken for a small patch. Small patches are therefore found exactly as
  on the whole map; which neighbour absorbs one is decided by the neighbours' sizes within the halo, which can
  differ from the whole-map sieve only when that neighbour reaches beyond it (tests compare both on the sample).
* :func:`majority_filter` — each cell takes the most frequent class of its ``size`` × ``size`` window (nodata
  cells do not vote; a tie keeps the cell's own class when it is among the tied, else the smallest code).
* :func:`spectral_change` and :func:`update_map` — the "update" mode: last year's map changes only where this
  year's classification differs AND the spectral change says so, so that classifier noise does not show up as
  land-cover change. Evidence: for each index (default ΔNDVI and ΔNBR, ``indices/landcover_model.yaml``) the
  modified z-score 0.6745·(d − median d)/MAD d of the cell's change d; |z| > 3.5 (Iglewicz & Hoaglin 1993) is a
  change. Median and MAD are exact quantiles over the valid cells (:func:`ecoassess.stats.streaming_quantiles`).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr


def _as_dask(layer: xr.DataArray) -> da.Array:
    data = layer.data
    return data if isinstance(data, da.Array) else da.from_array(np.asarray(data), chunks=1024)


def _sieve_block(block: np.ndarray, *, mmu_cells: int, nodata) -> np.ndarray:
    from rasterio import features

    a = np.ascontiguousarray(block)
    work = a.astype("int32") if a.dtype not in (np.int16, np.int32, np.uint8, np.uint16) else a
    mask = None if nodata is None else (work != nodata)
    out = features.sieve(work, size=int(mmu_cells), mask=mask, connectivity=8)
    if nodata is not None:
        out = np.where(a == nodata, a, out)
    return out.astype(a.dtype)


def sieve(class_map: xr.DataArray, mmu_cells: int, *, nodata=None) -> xr.DataArray:
    """``class_map`` with patches of fewer than ``mmu_cells`` cells merged into a neighbour (module docstring);
    nodata cells stay nodata and are no neighbour. ``mmu_cells`` ≤ 1 returns the map unchanged."""
    if mmu_cells <= 1:
        return class_map
    nodata = class_map.attrs.get("nodata") if nodata is None else nodata
    data = _as_dask(class_map)
    depth = min(int(mmu_cells), *(max(c) for c in data.chunks))
    out = da.map_overlap(_sieve_block, data, depth=depth, boundary=nodata if nodata is not None else 0,
                         trim=True, dtype=data.dtype, meta=np.empty((0, 0), data.dtype), mmu_cells=mmu_cells,
                         nodata=nodata)
    res = class_map.copy(data=out)
    res.attrs = {**class_map.attrs, "sieve_mmu_cells": int(mmu_cells)}
    return res


def _majority_block(block: np.ndarray, *, size: int, nodata) -> np.ndarray:
    from scipy import ndimage

    codes = np.unique(block)
    if nodata is not None:
        codes = codes[codes != nodata]
    if len(codes) <= 1:
        return block
    counts = np.stack([ndimage.uniform_filter((block == c).astype("float32"), size=size, mode="constant")
                       for c in codes])
    counts = np.rint(counts * size * size).astype("int32")
    best = counts.max(axis=0)
    own = np.searchsorted(codes, block).clip(0, len(codes) - 1)
    own_count = np.take_along_axis(counts, own[None], axis=0)[0]
    own_valid = codes[own] == block
    out = codes[np.argmax(counts == best, axis=0)]  # the smallest code among the tied
    out = np.where(own_valid & (own_count == best), block, out).astype(block.dtype)
    if nodata is not None:
        out = np.where(block == nodata, block, out)
    return out


def majority_filter(class_map: xr.DataArray, size: int = 3, *, nodata=None) -> xr.DataArray:
    """The most frequent class in each ``size`` × ``size`` window (odd size; module docstring for ties)."""
    if size < 3 or size % 2 == 0:
        raise ValueError(f"majority filter size must be an odd number >= 3, got {size}")
    nodata = class_map.attrs.get("nodata") if nodata is None else nodata
    data = _as_dask(class_map)
    out = da.map_overlap(_majority_block, data, depth=size // 2, boundary=nodata if nodata is not None else 0,
                         trim=True, dtype=data.dtype, meta=np.empty((0, 0), data.dtype), size=size, nodata=nodata)
    res = class_map.copy(data=out)
    res.attrs = {**class_map.attrs, "majority_filter": int(size)}
    return res


def modified_z(change: xr.DataArray, *, mask=None) -> tuple[xr.DataArray, dict]:
    """0.6745·(d − median d)/MAD d of a change layer (Iglewicz & Hoaglin 1993) and ``{median, mad}``; median and
    MAD over the finite cells not in ``mask``. A MAD of 0 (half the cells exactly unchanged) gives ±inf for every
    cell that differs from the median and 0 for the rest."""
    from ecoassess.stats import streaming_quantiles

    med = float(streaming_quantiles(change, [0.5], mask=mask)[0])
    mad = float(streaming_quantiles(abs(change - med), [0.5], mask=mask)[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = 0.6745 * (change - med) / mad if mad > 0 else xr.where(change == med, 0.0, np.inf * np.sign(change - med))
    return z, {"median": med, "mad": mad}


def spectral_change(before: dict[str, xr.DataArray], after: dict[str, xr.DataArray], *, z: float = 3.5
                    ) -> tuple[xr.DataArray, dict]:
    """True where at least one index's change (after − before) has |modified z| > ``z``; False where it is not
    observed on both dates. ``before``/``after``: ``{index name: layer}``. Returns (evidence, per-index
    ``{median, mad, threshold}``)."""
    evidence, stats = None, {}
    for name in before:
        d = (after[name] - before[name]).astype("float32")
        zs, s = modified_z(d)
        hit = abs(zs) > z
        stats[name] = {**s, "z": z}
        evidence = hit if evidence is None else (evidence | hit)
    evidence.name = "change_evidence"
    return evidence, stats


def update_map(previous: xr.DataArray, classified: xr.DataArray, evidence: xr.DataArray, *, nodata=None
               ) -> xr.DataArray:
    """Last year's map, changed to this year's class only where the classes differ and ``evidence`` is True; a cell
    without last year's class (nodata) takes this year's."""
    nodata = previous.attrs.get("nodata") if nodata is None else nodata
    prev, new, ev = _as_dask(previous), _as_dask(classified), _as_dask(evidence)
    new, ev = new.rechunk(prev.chunks), ev.rechunk(prev.chunks)
    take = ev & (new != prev)
    if nodata is not None:
        take = take | (prev == nodata)
    out = da.where(take, new, prev).astype(prev.dtype)
    res = previous.copy(data=out)
    res.attrs = {**previous.attrs, "updated_by": "classification where the spectral change agrees"}
    return res


__all__ = ["sieve", "majority_filter", "modified_z", "spectral_change", "update_map"]
