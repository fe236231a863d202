"""Streaming statistics over the chunks of a dask-backed layer, in bounded memory.

* :func:`streaming_quantiles` — exact ``numpy.quantile(valid, qs)`` (method 'linear') by histogram refinement.
* :func:`streaming_covariance` — n, mean and covariance of k layers, merged chunk by chunk (Chan et al.).

Cells that are NaN/±inf, or True in ``mask``, are excluded everywhere. Per-chunk partials are combined by a
tree reduction (:func:`ecoassess.zones.tree_reduce`), so the driver never holds more than a few partials.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ecoassess.errors import AllMaskedError
from ecoassess.grid import DEFAULT_CHUNK
from ecoassess.zones import tree_reduce

#: Histogram bins per refinement pass.
N_BINS = 1 << 16
#: A bin holding at most this many values is gathered and sorted in memory (8 bytes each).
GATHER_LIMIT = 1 << 22
MAX_LEVELS = 12


def _as_dask(arr, chunks=None) -> da.Array:
    data = arr.data if isinstance(arr, xr.DataArray) else arr
    if not isinstance(data, da.Array):
        data = np.asarray(data)
        data = da.from_array(data, chunks=chunks or tuple(min(DEFAULT_CHUNK, max(s, 1)) for s in data.shape))
    if chunks is not None and data.chunks != chunks:
        data = data.rechunk(chunks)
    return data


def _valid_values(block, mask_block) -> np.ndarray:
    x = np.asarray(block)
    ok = np.isfinite(x) if x.dtype.kind in "fc" else np.ones(x.shape, bool)
    if mask_block is not None:
        m = np.asarray(mask_block)
        ok &= ~(m.astype(bool) if m.dtype != bool else m)
    return x[ok]


def _blocks(arr, mask):
    data = _as_dask(arr)
    blocks = data.to_delayed().ravel()
    if mask is None:
        return list(zip(blocks, [None] * len(blocks))), data.dtype
    m = _as_dask(mask, data.chunks).to_delayed().ravel()
    return list(zip(blocks, m)), data.dtype


def _run(pairs, leaf, combine):
    leaf_d = dask.delayed(leaf, pure=True)
    parts = [leaf_d(b, m) for b, m in pairs]
    (res,) = dask.compute(tree_reduce(parts, combine))
    return res


# -- quantiles ---------------------------------------------------------------------------------------------------

def _bin_index(v: np.ndarray, lo: float, scale: float) -> np.ndarray:
    """floor((v − lo)·scale) clipped to [0, N_BINS − 1]: monotone non-decreasing in v (each step is)."""
    b = np.floor((v - lo) * scale)
    return np.clip(b, 0, N_BINS - 1).astype(np.int64)


def _member(v: np.ndarray, chain) -> np.ndarray:
    ok = np.ones(v.shape, bool)
    for lo, scale, b in chain:
        ok &= _bin_index(v, lo, scale) == b
    return ok


def _quantile_pass(block, mask_block, *, tasks):
    """One pass: for each task (chain, mode, lo, scale) return counts/min/max+histogram, or the gathered values."""
    v = _valid_values(block, mask_block)
    vf = v.astype(np.float64, copy=False)
    out = []
    for chain, mode, lo, scale in tasks:
        sel = _member(vf, chain) if chain else slice(None)
        w = vf[sel]
        if mode == "gather":
            out.append(v[sel].copy() if chain else v.copy())
        elif mode == "range":
            out.append((w.size, w.min() if w.size else np.inf, w.max() if w.size else -np.inf))
        else:
            out.append((w.size, w.min() if w.size else np.inf, w.max() if w.size else -np.inf,
                        np.bincount(_bin_index(w, lo, scale), minlength=N_BINS)))
    return out


def _quantile_combine(*parts):
    acc = list(parts[0])
    for p in parts[1:]:
        for t, item in enumerate(p):
            a = acc[t]
            if isinstance(a, np.ndarray):
                acc[t] = np.concatenate([a, item])
            elif len(a) == 3:
                acc[t] = (a[0] + item[0], min(a[1], item[1]), max(a[2], item[2]))
            else:
                acc[t] = (a[0] + item[0], min(a[1], item[1]), max(a[2], item[2]), a[3] + item[3])
    return acc


def _numpy_linear(n: int, qs: np.ndarray, order_stat, weak_q: bool = False) -> np.ndarray:
    """numpy.quantile's 'linear' method (numpy ≥ 2.0 ``_quantile`` + ``_get_indexes`` + ``_lerp``), replicated.

    ``order_stat(r)`` returns the r-th smallest valid value (0-based) as a 0-d array of the input dtype.
    """
    virtual = (n - 1) * qs
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    below = virtual < 0
    prev[below] = 0
    nxt[below] = 0
    prev_i, next_i = prev.astype(np.intp), nxt.astype(np.intp)
    a = np.stack([order_stat(int(i) % n) for i in prev_i.ravel()]).reshape(qs.shape)
    b = np.stack([order_stat(int(i) % n) for i in next_i.ravel()]).reshape(qs.shape)
    gamma = np.asanyarray(virtual - prev_i, dtype=virtual.dtype)
    if weak_q:  # numpy: a Python float q uses weak promotion (float32 data -> float32 result)
        gamma = float(gamma.ravel()[0])
    diff_b_a = b - a
    lerp = np.add(a, diff_b_a * gamma)
    np.subtract(b, diff_b_a * (1 - gamma), out=lerp, where=gamma >= 0.5, casting="unsafe",
                dtype=type(lerp.dtype))
    return lerp


def streaming_quantiles(arr, qs, *, mask=None, value_range=None) -> np.ndarray:
    """Exact ``numpy.quantile(valid_values, qs)`` (method 'linear') in a few bounded-memory passes.

    valid = finite and not ``mask``. With n valid values, numpy's answer for q needs only the order statistics
    x₍ₖ₎ and x₍ₖ₊₁₎, k = ⌊(n − 1)q⌋. Pass 0 finds n, min and max (skipped when ``value_range`` = (lo, hi) is
    given; values outside it fall into the end bins, which stays exact). Each further pass bins the values of
    the interval holding a wanted rank with b(v) = ⌊(v − lo)·N/(hi − lo)⌋ — monotone in v, so bins are
    contiguous runs of the sorted values and counts locate the rank — until the rank's bin holds ≤ GATHER_LIMIT
    values (then they are gathered and sorted) or a single repeated value (min = max). The result is then
    computed with numpy's own interpolation formula on the exact order statistics, hence bit-identical to
    numpy (no approximation, so no error bound is needed). Memory: O(N_BINS + GATHER_LIMIT) per task.
    Raises :class:`AllMaskedError` when no value is valid.
    """
    scalar = np.ndim(qs) == 0
    q = np.asanyarray(qs)
    q = np.atleast_1d(q if q.dtype.kind == "f" else q.astype(np.float64))
    if np.any(~((q >= 0) & (q <= 1))):
        raise ValueError("quantiles must be in the range [0, 1]")
    pairs, dtype = _blocks(arr, mask)
    name = getattr(arr, "name", None) or "layer"

    if value_range is not None:
        vmin, vmax = float(value_range[0]), float(value_range[1])
        if not vmax > vmin:
            raise ValueError(f"value_range must be (lo, hi) with hi > lo, got {value_range}")
        n = None
    else:
        (n, vmin, vmax), = _run(pairs, lambda b, m: _quantile_pass(b, m, tasks=[((), "range", 0.0, 0.0)]),
                                _quantile_combine)
        _check_n(n, name)
    resolved: dict[int, object] = {}
    ranks_needed = _wanted_ranks(n, q) if n is not None else None
    if n is not None and vmin == vmax:  # a single repeated value
        resolved = {r: np.asarray(vmin).astype(dtype) for r in ranks_needed}
    # active intervals: (chain of (lo, scale, bin), count of valid values below it, lo, hi, mode)
    active = [] if resolved else [((), 0, vmin, vmax, "hist")]
    for level in range(MAX_LEVELS + 1):
        if not active:
            break
        tasks = []
        for chain, below, lo, hi, mode in active:
            if mode == "hist" and hi > lo and level < MAX_LEVELS:
                tasks.append((chain, "hist", lo, N_BINS / (hi - lo)))
            else:
                tasks.append((chain, "gather", 0.0, 0.0))
        results = _run(pairs, lambda b, m, t=tuple(tasks): _quantile_pass(b, m, tasks=t), _quantile_combine)
        if n is None:  # value_range given: the first pass also counts
            n = int(results[0][0])
            _check_n(n, name)
            ranks_needed = _wanted_ranks(n, q)
        new_active = []
        for (chain, below, lo, hi, _mode), task, res in zip(active, tasks, results):
            mine = [r for r in ranks_needed if r not in resolved and below <= r < below + _count(res)]
            if not mine:
                continue
            if task[1] == "gather":
                vals = np.sort(res)
                for r in mine:
                    resolved[r] = vals[r - below]
                continue
            cnt, mn, mx, hist = res
            if mn == mx:  # every value of the interval is the same
                for r in mine:
                    resolved[r] = np.asarray(mn).astype(dtype)
                continue
            cum = np.cumsum(hist)
            scale = task[3]
            for bin_ in sorted(set(np.searchsorted(cum, [r - below + 1 for r in mine]).tolist())):
                b_below = below + (int(cum[bin_ - 1]) if bin_ else 0)
                b_count = int(hist[bin_])
                b_lo, b_hi = lo + bin_ / scale, lo + (bin_ + 1) / scale
                mode = "gather" if b_count <= GATHER_LIMIT else "hist"
                new_active.append((chain + ((lo, scale, bin_),), b_below, b_lo, b_hi, mode))
        active = new_active
    missing = [r for r in ranks_needed if r not in resolved]
    if missing:  # pragma: no cover - MAX_LEVELS exhausted
        raise RuntimeError(f"quantile refinement did not converge for ranks {missing}")

    def order_stat(r):
        return np.asarray(resolved[r], dtype=dtype)

    out = _numpy_linear(n, q, order_stat, weak_q=type(qs) in (int, float))
    return out[0] if scalar else out


def _check_n(n, name):
    if n == 0:
        raise AllMaskedError("every value is NaN or masked, no quantile can be computed", field=str(name))


def _wanted_ranks(n: int, q: np.ndarray) -> list[int]:
    """0-based ranks ⌊(n − 1)q⌋ and the next one, clipped to [0, n − 1]."""
    prev = np.clip(np.floor((n - 1) * q), 0, n - 1).astype(np.int64)
    return sorted(set(prev.tolist()) | set(np.minimum(prev + 1, n - 1).tolist()))


def _count(res) -> int:
    return int(res.size) if isinstance(res, np.ndarray) else int(res[0])


# -- covariance ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CovarianceResult:
    """n valid cells, per-layer ``mean`` (k,), ``m2`` = Σ (x − mean)(x − mean)ᵀ (k, k), all float64.

    ``cov`` is the **sample** covariance M2/(n − 1) (as ``numpy.cov`` and scikit-learn's PCA);
    ``cov_population`` is M2/n.
    """

    n: int
    mean: np.ndarray
    m2: np.ndarray
    names: tuple = ()

    @property
    def cov(self) -> np.ndarray:
        return self.m2 / (self.n - 1) if self.n > 1 else np.full_like(self.m2, np.nan)

    @property
    def cov_population(self) -> np.ndarray:
        return self.m2 / self.n

    @property
    def corr(self) -> np.ndarray:
        d = np.sqrt(np.diag(self.m2))
        return self.m2 / np.outer(d, d)

    def pca(self):
        """(eigenvalues descending, eigenvectors as columns) of the sample covariance."""
        w, v = np.linalg.eigh(self.cov)
        order = np.argsort(w)[::-1]
        return w[order], v[:, order]


def _cov_leaf(blocks, mask_block):
    xs = [np.asarray(b) for b in blocks]
    ok = np.ones(xs[0].shape, bool)
    for x in xs:
        if x.dtype.kind in "fc":
            ok &= np.isfinite(x)
    if mask_block is not None:
        m = np.asarray(mask_block)
        ok &= ~(m.astype(bool) if m.dtype != bool else m)
    n = int(ok.sum())
    k = len(xs)
    if n == 0:
        return 0, np.zeros(k), np.zeros((k, k))
    X = np.empty((n, k))
    for j, x in enumerate(xs):
        X[:, j] = x[ok]
    mean = X.mean(axis=0)
    X -= mean
    return n, mean, X.T @ X


def _cov_merge(*parts):
    """Chan et al.: n = na + nb, δ = μb − μa, μ = μa + δ·nb/n, M2 = M2a + M2b + δδᵀ·na·nb/n."""
    n, mean, m2 = parts[0]
    for nb, mb, m2b in parts[1:]:
        if nb == 0:
            continue
        if n == 0:
            n, mean, m2 = nb, mb, m2b
            continue
        tot = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / tot)
        m2 = m2 + m2b + np.outer(delta, delta) * (n * nb / tot)
        n = tot
    return n, mean, m2


def streaming_covariance(arrays: list, *, mask=None) -> CovarianceResult:
    """Mean and covariance of k layers over cells valid in all of them (finite and not ``mask``), in float64.

    Per chunk: n, μ and M2 = Σ(x − μ)(x − μ)ᵀ (two-pass inside the chunk), merged with :func:`_cov_merge`.
    Raises :class:`AllMaskedError` when no cell is valid in every layer.
    """
    if not arrays:
        raise ValueError("streaming_covariance needs at least one layer")
    first = _as_dask(arrays[0])
    datas = [first] + [_as_dask(a, first.chunks) for a in arrays[1:]]
    dl = [d.to_delayed().ravel() for d in datas]
    ml = _as_dask(mask, first.chunks).to_delayed().ravel() if mask is not None else [None] * len(dl[0])
    leaf = dask.delayed(_cov_leaf, pure=True)
    parts = [leaf([d[i] for d in dl], ml[i]) for i in range(len(dl[0]))]
    (n, mean, m2), = dask.compute(tree_reduce(parts, _cov_merge))
    names = tuple(str(getattr(a, "name", None) or f"layer{i}") for i, a in enumerate(arrays))
    if n == 0:
        raise AllMaskedError("no cell is valid in every layer, no covariance can be computed",
                             field=", ".join(names))
    return CovarianceResult(int(n), np.asarray(mean, dtype=np.float64), np.asarray(m2, dtype=np.float64), names)


__all__ = ["streaming_quantiles", "streaming_covariance", "CovarianceResult", "N_BINS", "GATHER_LIMIT"]
