"""Streaming statistics over the chunks of a dask-backed layer, in bounded memory.

* :func:`streaming_quantiles` — exact ``numpy.quantile(valid, qs)`` (method 'linear') by histogram refinement.
* :func:`streaming_quantiles_many` — the same for several layers, every pass reading all of them together.
* :func:`streaming_range` — n, min and max of the valid values.
* :func:`streaming_covariance` — n, mean and covariance of k layers, merged chunk by chunk (Chan et al.).

The per-chunk work runs in compiled kernels (:mod:`ecoassess.stats_kernels`).

Cells that are NaN/±inf, or True in ``mask``, are excluded everywhere. Per-chunk partials are combined by a
tree reduction (:func:`ecoassess.zones.tree_reduce`), so the driver never holds more than a few partials.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ecoassess import stats_kernels as kernels
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


def _flat(block) -> np.ndarray:
    x = np.asarray(block)
    return np.ascontiguousarray(x).reshape(-1)


def _flat_mask(mask_block, size: int) -> np.ndarray:
    if mask_block is None:
        return np.zeros(size, bool)
    m = _flat(mask_block)
    return m if m.dtype == bool else m.astype(bool)


def _chunk_pairs(arrays: list, mask):
    """Per chunk: (tuple of the arrays' blocks, mask block or None); every array on the first one's chunks."""
    first = _as_dask(arrays[0])
    datas = [first] + [_as_dask(a, first.chunks) for a in arrays[1:]]
    # unoptimised: the chunks keep the keys of the arrays' own graphs, so a pass computed together with those
    # arrays (materialize's reductions) shares their tasks instead of computing fused copies
    blocks = [d.to_delayed(optimize_graph=False).ravel() for d in datas]
    if mask is None:
        return [(tuple(b[i] for b in blocks), None) for i in range(len(blocks[0]))], [d.dtype for d in datas]
    masks = _as_dask(mask, first.chunks).to_delayed(optimize_graph=False).ravel()
    return [(tuple(b[i] for b in blocks), masks[i]) for i in range(len(masks))], [d.dtype for d in datas]


def _reduction(pairs, leaf, combine):
    """``leaf`` on every chunk pair, merged by ``combine`` in a tree: one dask Delayed (not computed)."""
    leaf_d = dask.delayed(leaf, pure=True)
    return tree_reduce([leaf_d(b, m) for b, m in pairs], combine)


def _run(pairs, leaf, combine):
    (res,) = dask.compute(_reduction(pairs, leaf, combine))
    return res


# -- quantiles ---------------------------------------------------------------------------------------------------

def _chain_arrays(chain):
    return (np.array([c[0] for c in chain], np.float64), np.array([c[1] for c in chain], np.float64),
            np.array([c[2] for c in chain], np.int64))


def _quantile_pass(blocks, mask_block, *, tasks):
    """One pass over a chunk of several layers: per task (layer, chain, mode, lo, scale) the counts, min, max
    (+ histogram) or the gathered values of the layer's valid values inside the task's interval."""
    flats = [_flat(b) for b in blocks]
    m = _flat_mask(mask_block, flats[0].size)
    out: list = [None] * len(tasks)
    gathers: dict[int, list[int]] = {}  # layer -> its gather tasks, done in one scan of the layer
    for t, (layer, chain, mode, lo, scale) in enumerate(tasks):
        x = flats[layer]
        if mode == "range":
            out[t] = kernels.range_count(x, m)
        elif mode == "gather":
            gathers.setdefault(layer, []).append(t)
        else:
            out[t] = kernels.histogram(x, m, *_chain_arrays(chain), lo, scale, N_BINS)
    for layer, ts in gathers.items():
        chains = [_chain_arrays(tasks[t][1]) for t in ts]  # one refinement level: chains of equal length
        near = np.array([kernels.interval_envelope(*c, N_BINS) for c in chains], np.float64).reshape(-1, 2)
        values, owner = kernels.gather(flats[layer], m, *(np.stack(c) for c in zip(*chains)), N_BINS,
                                       np.ascontiguousarray(near[:, 0]), np.ascontiguousarray(near[:, 1]))
        for k, t in enumerate(ts):
            out[t] = values[owner == k]
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


def streaming_ranges(layers: dict, *, mask=None) -> dict[str, tuple[int, float, float]]:
    """``{name: (n, min, max)}`` of each layer's valid values (finite and not ``mask``), all in one pass;
    (0, inf, −inf) for a layer without valid values."""
    names = list(layers)
    (res,) = dask.compute(range_reduction([layers[n] for n in names], mask=mask))
    return dict(zip(names, range_results(res)))


def range_reduction(layers: list, *, mask=None):
    """(n, min, max) of each layer's valid values as one dask reduction, not computed: compute it alone, or with
    other work over the same chunks (:func:`ecoassess.materialize.materialize`'s ``reductions``); the computed
    value, or several such values merged, goes through :func:`range_results`."""
    pairs, _ = _chunk_pairs(list(layers), mask)
    return _reduction(pairs, partial(_quantile_pass, tasks=_range_tasks(range(len(layers)))), _quantile_combine)


def range_results(*computed) -> list[tuple[int, float, float]]:
    """``[(n, min, max)]`` per layer from computed :func:`range_reduction` values (several: merged, as for the
    same layers of several years)."""
    res = _quantile_combine(*computed)
    return [(int(r[0]), float(r[1]), float(r[2])) for r in res]


def _range_tasks(layer_indices) -> tuple:
    return tuple((i, (), "range", 0.0, 0.0) for i in layer_indices)


def streaming_range(arr, *, mask=None) -> tuple[int, float, float]:
    """(n, min, max) of the valid values (finite and not ``mask``) in one pass; (0, inf, −inf) when none."""
    return streaming_ranges({"layer": arr}, mask=mask)["layer"]


class _RankSearch:
    """The refinement state of one layer: which order statistics are wanted, found, and still being narrowed."""

    def __init__(self, name: str, dtype, q: np.ndarray, value_range):
        self.name, self.dtype, self.q = name, dtype, q
        self.n: int | None = None
        self.ranks: list[int] = []
        self.resolved: dict[int, object] = {}
        # active intervals: (chain of (lo, scale, bin), count of valid values below it, lo, hi, mode)
        self.active: list = []
        if value_range is not None:
            lo, hi = float(value_range[0]), float(value_range[1])
            if not hi > lo:
                raise ValueError(f"value_range must be (lo, hi) with hi > lo, got {value_range}")
            self.active = [((), 0, lo, hi, "hist")]

    def start(self, n: int, vmin: float, vmax: float) -> None:
        _check_n(n, self.name)
        self.n = int(n)
        self.ranks = _wanted_ranks(self.n, self.q)
        if vmin == vmax:  # a single repeated value
            self.resolved = {r: np.asarray(vmin).astype(self.dtype) for r in self.ranks}
            self.active = []
        else:
            self.active = [((), 0, vmin, vmax, "hist")]

    def tasks(self, level: int) -> list:
        out = []
        for chain, _below, lo, hi, mode in self.active:
            if mode == "hist" and hi > lo and level < MAX_LEVELS:
                out.append((chain, "hist", lo, N_BINS / (hi - lo)))
            else:
                out.append((chain, "gather", 0.0, 0.0))
        return out

    def update(self, tasks: list, results: list) -> None:
        if self.n is None:  # value_range given: the first histogram pass also counts
            self.n = int(results[0][0])
            _check_n(self.n, self.name)
            self.ranks = _wanted_ranks(self.n, self.q)
        new_active = []
        for (chain, below, lo, hi, _mode), task, res in zip(self.active, tasks, results):
            mine = [r for r in self.ranks if r not in self.resolved and below <= r < below + _count(res)]
            if not mine:
                continue
            if task[1] == "gather":
                vals = np.sort(res)
                for r in mine:
                    self.resolved[r] = vals[r - below]
                continue
            cnt, mn, mx, hist = res
            if mn == mx:  # every value of the interval is the same
                for r in mine:
                    self.resolved[r] = np.asarray(mn).astype(self.dtype)
                continue
            cum = np.cumsum(hist)
            scale = task[3]
            for bin_ in sorted(set(np.searchsorted(cum, [r - below + 1 for r in mine]).tolist())):
                b_below = below + (int(cum[bin_ - 1]) if bin_ else 0)
                b_count = int(hist[bin_])
                b_lo, b_hi = lo + bin_ / scale, lo + (bin_ + 1) / scale
                mode = "gather" if b_count <= GATHER_LIMIT else "hist"
                new_active.append((chain + ((lo, scale, bin_),), b_below, b_lo, b_hi, mode))
        self.active = new_active

    def result(self, weak_q: bool) -> np.ndarray:
        missing = [r for r in self.ranks if r not in self.resolved]
        if missing:  # pragma: no cover - MAX_LEVELS exhausted
            raise RuntimeError(f"quantile refinement did not converge for ranks {missing} of {self.name}")
        return _numpy_linear(self.n, self.q, lambda r: np.asarray(self.resolved[r], dtype=self.dtype), weak_q)


class QuantileRefinement:
    """The passes of :func:`streaming_quantiles_many`, one at a time, so a caller can run one of them together
    with other work over the same chunks (RSEI computes the first while it materialises its indicators).

    ``next_reduction(layers, mask)`` builds the next pass as a dask reduction (None when every quantile is
    found); ``take(*computed)`` narrows the search with its computed value (several values — the same pass over
    the layers of several years — are merged); :meth:`run` does all remaining passes; :meth:`result` gives
    ``{name: quantiles}``. ``layers`` are those of ``names``, in order.
    """

    def __init__(self, names, dtypes, qs, value_ranges: dict | None = None):
        q = np.asanyarray(qs)
        q = np.atleast_1d(q if q.dtype.kind == "f" else q.astype(np.float64))
        if np.any(~((q >= 0) & (q <= 1))):
            raise ValueError("quantiles must be in the range [0, 1]")
        ranges = value_ranges or {}
        self.names = [str(n) for n in names]
        self.searches = [_RankSearch(str(n), dt, q, ranges.get(n)) for n, dt in zip(names, dtypes)]
        self.weak_q = type(qs) in (int, float)  # numpy: a Python float q keeps a float32 layer's precision
        self.level = 0
        self._pending: tuple | None = None

    def _next_tasks(self) -> tuple | None:
        if self._pending is None:
            need_range = [i for i, s in enumerate(self.searches) if s.n is None and not s.active]
            if need_range:  # pass 0: n, min and max
                self._pending = _range_tasks(need_range)
            elif self.level <= MAX_LEVELS:
                self._pending = tuple((i, chain, mode, lo, scale) for i, s in enumerate(self.searches)
                                      for chain, mode, lo, scale in s.tasks(self.level)) or None
        return self._pending

    def next_reduction(self, layers: list, mask=None):
        """The next pass over ``layers`` as one dask reduction (not computed), or None when all are found."""
        tasks = self._next_tasks()
        if tasks is None:
            return None
        pairs, _ = _chunk_pairs(list(layers), mask)
        return _reduction(pairs, partial(_quantile_pass, tasks=tasks), _quantile_combine)

    def take(self, *computed) -> None:
        """Narrow the search with the computed value(s) of the pass :meth:`next_reduction` built."""
        tasks, self._pending = self._pending, None
        results = _quantile_combine(*computed)
        if tasks[0][2] == "range":
            for (i, *_), (n, vmin, vmax) in zip(tasks, results):
                self.searches[i].start(n, vmin, vmax)
            return
        for i, s in enumerate(self.searches):
            mine = [(t[1:], r) for t, r in zip(tasks, results) if t[0] == i]
            if mine:
                s.update([t for t, _ in mine], [r for _, r in mine])
        self.level += 1

    def run(self, layers: list, mask=None) -> dict:
        """Every remaining pass over ``layers``; returns :meth:`result`."""
        while (reduction := self.next_reduction(layers, mask)) is not None:
            (value,) = dask.compute(reduction)
            self.take(value)
        return self.result()

    def result(self) -> dict:
        return {n: s.result(self.weak_q) for n, s in zip(self.names, self.searches)}

    @property
    def counts(self) -> dict:
        """``{name: number of valid values}`` (known after the first pass; None before)."""
        return {n: s.n for n, s in zip(self.names, self.searches)}


def streaming_quantiles_many(layers: dict, qs, *, mask=None, value_ranges: dict | None = None) -> dict:
    """:func:`streaming_quantiles` of several layers (same grid) at once: each pass reads every layer's chunk
    together, so k layers cost as many passes as one. ``mask`` is shared; ``value_ranges`` maps a layer name to
    its (lo, hi). Returns ``{name: quantiles}``.
    """
    names = list(layers)
    arrays = [layers[n] for n in names]
    dtypes = [_as_dask(a).dtype for a in arrays]
    return QuantileRefinement(names, dtypes, qs, value_ranges).run(arrays, mask)


def streaming_quantiles(arr, qs, *, mask=None, value_range=None) -> np.ndarray:
    """Exact ``numpy.quantile(valid_values, qs)`` (method 'linear') in a few bounded-memory passes.

    valid = finite and not ``mask``. With n valid values, numpy's answer for q needs only the order statistics
    x₍ₖ₎ and x₍ₖ₊₁₎, k = ⌊(n − 1)q⌋. Pass 0 finds n, min and max (skipped when ``value_range`` = (lo, hi) is
    given; values outside it fall into the end bins, which stays exact). Each further pass bins the values of
    the interval holding a wanted rank with b(v) = ⌊(v − lo)·N/(hi − lo)⌋ — monotone in v, so bins are
    contiguous runs of the sorted values and counts locate the rank — until the rank's bin holds ≤ GATHER_LIMIT
    values (then they are gathered and sorted) or a single repeated value (min = max). The result is then
    computed with numpy's own interpolation formula on the exact order statistics, hence bit-identical to
    numpy (no approximation, so no error bound is needed). Memory: O(N_BINS + GATHER_LIMIT) per task; the
    per-chunk work runs in compiled kernels (:mod:`ecoassess.stats_kernels`).
    Raises :class:`AllMaskedError` when no value is valid.
    """
    name = getattr(arr, "name", None) or "layer"
    out = streaming_quantiles_many({name: arr}, qs, mask=mask,
                                   value_ranges={name: value_range} if value_range is not None else None)[name]
    return out[0] if np.ndim(qs) == 0 else out


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
    xs = np.stack([np.asarray(b) for b in blocks]).reshape(len(blocks), -1)  # one copy, C-contiguous
    return kernels.covariance(xs, _flat_mask(mask_block, xs.shape[1]))


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
    pairs, _ = _chunk_pairs(list(arrays), mask)
    n, mean, m2 = _run(pairs, _cov_leaf, _cov_merge)
    names = tuple(str(getattr(a, "name", None) or f"layer{i}") for i, a in enumerate(arrays))
    if n == 0:
        raise AllMaskedError("no cell is valid in every layer, no covariance can be computed",
                             field=", ".join(names))
    return CovarianceResult(int(n), np.asarray(mean, dtype=np.float64), np.asarray(m2, dtype=np.float64), names)


__all__ = ["streaming_quantiles", "streaming_quantiles_many", "streaming_range", "streaming_ranges",
           "QuantileRefinement", "range_reduction", "range_results",
           "streaming_covariance", "CovarianceResult", "N_BINS", "GATHER_LIMIT"]
