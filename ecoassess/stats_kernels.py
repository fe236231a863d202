"""Compiled per-chunk kernels for :mod:`ecoassess.stats` (numba, no fastmath: IEEE results equal to numpy's).

Each kernel reads one chunk once, without temporaries, and releases the GIL (``nogil``) so dask's threads run
them side by side. A value is *valid* when it is finite (integers always are) and its ``mask`` cell is False.
Bins are ``b(v) = clip(floor((v − lo)·scale), 0, nbins − 1)`` computed in float64 (monotone non-decreasing in v,
so a bin is a contiguous run of the sorted values); a refined interval is named by its chain of (lo, scale, bin)
and membership recomputes the same bins, so it agrees bit for bit with the pass that counted them.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_JIT = dict(nogil=True, cache=True)


@numba.njit(**_JIT)
def _is_valid(v, m) -> bool:
    return (not m) and math.isfinite(v)


@numba.njit(**_JIT)
def _bin(v, lo, scale, nbins):
    f = (v - lo) * scale
    if f < 0.0:
        return 0
    if f >= nbins:  # clip before converting: floor of a huge value overflows an int64
        return nbins - 1
    return int(math.floor(f))


@numba.njit(**_JIT)
def _member(v, chain_lo, chain_scale, chain_bin, nbins) -> bool:
    for level in range(chain_lo.shape[0]):
        if _bin(v, chain_lo[level], chain_scale[level], nbins) != chain_bin[level]:
            return False
    return True


@numba.njit(**_JIT)
def range_count(x, mask):
    """(n valid, min, max) of the flat chunk ``x`` (float64 min/max; +inf/−inf when n = 0)."""
    n = 0
    lo = np.inf
    hi = -np.inf
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        if _is_valid(v, mask[i]):
            n += 1
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    return n, lo, hi


@numba.njit(**_JIT)
def histogram(x, mask, chain_lo, chain_scale, chain_bin, lo, scale, nbins):
    """(n, min, max, counts per bin) of the valid values of ``x`` that lie in the interval named by the chain."""
    counts = np.zeros(nbins, np.int64)
    n = 0
    vmin = np.inf
    vmax = -np.inf
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        if not _is_valid(v, mask[i]) or not _member(v, chain_lo, chain_scale, chain_bin, nbins):
            continue
        n += 1
        if v < vmin:
            vmin = v
        if v > vmax:
            vmax = v
        counts[_bin(v, lo, scale, nbins)] += 1
    return n, vmin, vmax, counts


@numba.njit(**_JIT)
def gather(x, mask, chains_lo, chains_scale, chains_bin, nbins, near_lo, near_hi):
    """The valid values of ``x`` (its own dtype) in the intervals named by several chains of equal length (row t
    of the (T, L) chain arrays names interval t), in one scan: (values, interval index of each value).

    ``[near_lo[t], near_hi[t]]`` must contain every value of interval t (:func:`interval_envelope`): a value
    outside all envelopes is skipped after two comparisons per interval; only the few inside are binned.
    """
    values = np.empty(x.shape[0], x.dtype)
    owner = np.empty(x.shape[0], np.int32)
    k = 0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        for t in range(near_lo.shape[0]):
            if near_lo[t] <= v <= near_hi[t] and _is_valid(v, mask[i]) \
                    and _member(v, chains_lo[t], chains_scale[t], chains_bin[t], nbins):  # NaN fails the comparisons
                values[k] = x[i]
                owner[k] = t
                k += 1
                break  # the intervals of one pass are disjoint (their envelopes overlap by the margins only)
    return values[:k].copy(), owner[:k].copy()


def interval_envelope(chain_lo, chain_scale, chain_bin, nbins) -> tuple[float, float]:
    """A value range holding every value whose bins follow the chain: each level's bin [lo + b/s, lo + (b+1)/s]
    widened by 1 % of a bin and 1e-12 relative (rounding of (v − lo)·s), unbounded for the clipped end bins."""
    near_lo, near_hi = -np.inf, np.inf
    for lo, scale, b in zip(chain_lo, chain_scale, chain_bin):
        a, z = lo + b / scale, lo + (b + 1) / scale
        margin = 0.01 / scale + 1e-12 * max(abs(a), abs(z))
        if b > 0:
            near_lo = max(near_lo, a - margin)
        if b < nbins - 1:
            near_hi = min(near_hi, z + margin)
    return near_lo, near_hi


#: Sums may be reordered (vectorised); no flag that assumes finite values, since validity is tested.
_SUM_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
_TILE = 512


@numba.njit(nogil=True, cache=True, fastmath=_SUM_FASTMATH)
def covariance(xs, mask):
    """n, mean (k,) and M2 = Σ (x − mean)(x − mean)ᵀ (k, k) of the columns of ``xs`` (k, N) valid in all layers.

    One pass of shifted sums in float64: with s = the chunk's first valid column, S1 = Σ (x − s) and
    S2 = Σ (x − s)(x − s)ᵀ give mean = s + S1/n and M2 = S2 − S1 S1ᵀ/n. The shift keeps the sums near the
    data's spread (no cancellation from large means such as LST in °C). Valid columns are gathered into tiles
    of 512 so the sums vectorise (summation order differs from numpy's, as pairwise and BLAS orders do).
    """
    k, size = xs.shape
    buf = np.empty((k, _TILE))
    shift = np.zeros(k)
    s1 = np.zeros(k)
    s2 = np.zeros((k, k))
    n = 0
    fill = 0
    for i in range(size + 1):
        if i < size and not mask[i]:
            good = True
            for j in range(k):
                if not math.isfinite(xs[j, i]):
                    good = False
                    break
            if good:
                if n + fill == 0:
                    for j in range(k):
                        shift[j] = xs[j, i]
                for j in range(k):
                    buf[j, fill] = np.float64(xs[j, i]) - shift[j]
                fill += 1
        if fill == _TILE or (i == size and fill > 0):
            for a in range(k):
                acc = 0.0
                for t in range(fill):
                    acc += buf[a, t]
                s1[a] += acc
                for b in range(a, k):
                    acc2 = 0.0
                    for t in range(fill):
                        acc2 += buf[a, t] * buf[b, t]
                    s2[a, b] += acc2
            n += fill
            fill = 0
    m2 = np.zeros((k, k))
    if n == 0:
        return 0, s1, m2
    for a in range(k):
        for b in range(a, k):
            m2[a, b] = s2[a, b] - s1[a] * s1[b] / n
            m2[b, a] = m2[a, b]
    return n, shift + s1 / n, m2
