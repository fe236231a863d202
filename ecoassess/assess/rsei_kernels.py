"""Compiled per-chunk kernels of the RSEI (numba; no fastmath, so the arithmetic is plain IEEE as in numpy).

Used by :mod:`ecoassess.assess.rsei` through ``dask.array.map_blocks``; each reads its chunk once without
temporaries and releases the GIL. Formulas (STANDARDS §3, ``indices/rsei.yaml``):

* normalised indicator y = (x − lo)/(hi − lo), clipped to [0, 1] for percentile bounds; 0 for a constant layer;
* RSEI0 = Σ_j PC1_j · y_j over the pixels usable in the PCA (NaN elsewhere);
* RSEI = clip((RSEI0 − min)/(max − min), 0, 1); grade = the class whose [lower, upper) holds RSEI (the last
  class closed above), 0 where RSEI is NaN.
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = dict(nogil=True, cache=True)


def _flat_map(kernel, block, *args):
    """Run a kernel over the cells of a block of any layout; the result has the block's shape."""
    x = np.ascontiguousarray(block)
    return kernel(x.reshape(-1), *args).reshape(x.shape)


def normalise(block, lo, hi, clip, constant):
    """(x − lo)/(hi − lo) as float32 (computed in float64); clipped to [0, 1] if ``clip``; 0 if ``constant``."""
    return _flat_map(_normalise, block, float(lo), float(hi), bool(clip), bool(constant))


def rescale(block, lo0, hi0):
    """clip((score − lo0)/(hi0 − lo0), 0, 1) as float32; NaN stays NaN."""
    return _flat_map(_rescale, block, float(lo0), float(hi0))


def grade(block, lowers, uppers, codes):
    """Grade code of each cell: lowers[g] ≤ v < uppers[g] (the last class: v ≤ upper); 0 for NaN/no class."""
    return _flat_map(_grade, block, lowers, uppers, codes)


@numba.njit(**_JIT)
def _norm_value(v, lo, span, clip, constant):
    """One indicator value normalised: (v − lo)/span in float64, clipped to [0, 1] if ``clip``; 0 if ``constant``."""
    if v != v:
        return np.nan
    if constant:
        return 0.0
    y = (v - lo) / span
    if clip:
        y = min(max(y, 0.0), 1.0)
    return y


@numba.njit(**_JIT)
def _normalise(flat_in, lo, hi, clip, constant):
    flat = np.empty(flat_in.shape, np.float32)
    for i in range(flat_in.shape[0]):
        flat[i] = _norm_value(np.float64(flat_in[i]), lo, hi - lo, clip, constant)
    return flat


@numba.njit(**_JIT)
def pc1_score(xs, usable, lo, hi, clip, constant, pc1):
    """RSEI0 = Σ_j pc1_j · y_j (float64) where ``usable``, NaN elsewhere, from the raw indicators ``xs``
    (k, rows, cols); y_j is the normalised value rounded to float32, as in the layers the PCA saw."""
    k = xs.shape[0]
    out = np.empty(xs.shape[1:], np.float64)
    for r in range(xs.shape[1]):
        for c in range(xs.shape[2]):
            if not usable[r, c]:
                out[r, c] = np.nan
                continue
            s = 0.0
            for j in range(k):
                y = np.float32(_norm_value(np.float64(xs[j, r, c]), lo[j], hi[j] - lo[j], clip, constant[j]))
                s += pc1[j] * np.float64(y)
            out[r, c] = s
    return out


@numba.njit(**_JIT)
def _rescale(src, lo0, hi0):
    dst = np.empty(src.shape, np.float32)
    span = hi0 - lo0
    for i in range(src.shape[0]):
        v = src[i]
        dst[i] = np.nan if v != v else min(max((v - lo0) / span, 0.0), 1.0)
    return dst


@numba.njit(**_JIT)
def _grade(src, lowers, uppers, codes):
    dst = np.zeros(src.shape, np.uint8)
    last = lowers.shape[0] - 1
    for i in range(src.shape[0]):
        v = src[i]
        if v != v:
            continue
        for g in range(last, -1, -1):  # from the last class down: where classes overlap, the later one wins
            if v >= lowers[g] and (v < uppers[g] or (g == last and v <= uppers[g])):
                dst[i] = codes[g]
                break
    return dst
