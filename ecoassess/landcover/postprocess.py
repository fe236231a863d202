"""Post-processing of a classified land-cover map (issue 21 part 5), lazily and chunk by chunk.

* :func:`sieve` — patches smaller than a minimum mapping unit (``mmu_cells``, 8-connected) take the class that
  most of their neighbour cells hold (one pass). Per chunk with a halo of ``mmu_cells`` cells: a patch piece
  that does not reach the halo's edge is a whole patch, and its neighbours lie inside the halo; one that does
  holds a path of more than ``mmu_cells`` cells, so it is never taken for a small patch. The chunked result is
  therefore the whole-map result, whatever the chunks. (GDAL's sieve, ``rasterio.features.sieve``, merges a small
  patch into its *largest* neighbour polygon: a neighbour's size is a property of the whole map, which a chunk
  cannot see, so chunked and whole-map results differed on 0.3 % of a speckled test map; the neighbour-cell
  majority needs only the patch's own surroundings.)
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


#: the 8 neighbours of a cell (row, column offsets)
_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _sieve_block(block: np.ndarray, *, mmu_cells: int, nodata) -> np.ndarray:
    """One pass of the sieve on an array: 8-connected patches of one class smaller than ``mmu_cells`` take the
    class most of their outside neighbour cells hold (cell-edge and corner contacts counted; ties: the smallest
    code); nodata cells neither vote nor change."""
    from scipy import ndimage

    a = np.asarray(block)
    valid = np.ones(a.shape, bool) if nodata is None else a != nodata
    labels = np.zeros(a.shape, dtype="int64")
    n = 0
    for code in np.unique(a[valid]):
        lab, k = ndimage.label(a == code, structure=np.ones((3, 3), bool))
        labels[lab > 0] = lab[lab > 0] + n
        n += k
    if n == 0:
        return a
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small = (sizes < mmu_cells) & (np.arange(n + 1) > 0)
    if not small.any():
        return a
    h, w = a.shape
    pad_lab = np.pad(labels, 1)
    pad_a = np.pad(a, 1)
    pad_valid = np.pad(valid, 1)
    comps, votes = [], []
    for dr, dc in _NEIGHBOURS:
        nb_lab = pad_lab[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
        nb_cls = pad_a[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
        nb_ok = pad_valid[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
        hit = small[labels] & nb_ok & (nb_lab != labels) & valid
        comps.append(labels[hit])
        votes.append(nb_cls[hit].astype("int64"))
    comps, votes = np.concatenate(comps), np.concatenate(votes)
    if len(comps) == 0:
        return a
    pairs, counts = np.unique(np.stack([comps, votes]), axis=1, return_counts=True)
    # per component the most frequent neighbour class; np.unique sorts by (component, class), so among equal
    # counts the first (smallest code) wins with a stable sort on descending count
    order = np.lexsort((pairs[1], -counts, pairs[0]))
    first = np.ones(len(order), bool)
    first[1:] = pairs[0][order][1:] != pairs[0][order][:-1]
    chosen = np.zeros(n + 1, dtype="int64")
    has = np.zeros(n + 1, bool)
    chosen[pairs[0][order][first]] = pairs[1][order][first]
    has[pairs[0][order][first]] = True
    change = small[labels] & has[labels] & valid
    out = a.copy()
    out[change] = chosen[labels[change]].astype(a.dtype)
    return out


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
    if mad > 0:
        z = 0.6745 * (change - med) / mad
    else:
        z = xr.where(change == med, 0.0, xr.where(change > med, np.inf, -np.inf)).where(np.isfinite(change))
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
