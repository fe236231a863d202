"""Compiled per-chunk kernels for :mod:`ecoassess.zones` (numba, no fastmath: IEEE arithmetic as written).

Every kernel walks its chunk once (or twice where a second pass is needed), without temporaries, and releases
the GIL (``nogil``) so dask's threads run them side by side.

Coverage (:func:`coverage_window`, :func:`chunk_coverage`) reproduces the numpy formulation that preceded it
operation for operation — the same breakpoints, taken in the same order, the same piece formula and the same
order of the accumulation sums — so coverage fractions are bit for bit those of the vectorised version.

Moments (:func:`chunk_moments`) take the fully covered ("dense") cells of a chunk by runs of one zone within a
row: each run is summed in four interleaved partial sums and the run sums are added into the chunk totals
(rounding error grows with the row length plus the number of runs, not with the cell count, much as with numpy's
pairwise sums); then the boundary cells in their stored order. The squared deviations take a second pass around
the chunk mean (as before: no one-pass variance formula). Results agree with the numpy version to ~1e-15.

Absent options are passed as None (``nodata``, ``mask``): numba then compiles the checks out of the cell loops.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_JIT = dict(nogil=True, cache=True)


# -- exact coverage fractions ---------------------------------------------------------------------------------

@numba.njit(**_JIT)
def _edge_range(a, b, lo, hi):
    """First grid line strictly inside (min(a, b), max(a, b)) and not below ``lo``, and how many up to ``hi``."""
    first = max(np.floor(min(a, b)) + 1.0, np.float64(lo))
    n = min(np.ceil(max(a, b)) - 1.0, np.float64(hi)) - first + 1.0
    return first, int(max(n, 0.0))


@numba.njit(**_JIT)
def _add_piece(ua, va, ub, vb, s, r0, c0, h, w, pj, pi, pa, pb, n):
    """Store the piece (ua, va) → (ub, vb) of an edge of sign ``s`` at index ``n``; return the new count."""
    d = (vb - va) * s
    j = np.int64(np.floor((va + vb) * 0.5)) - r0
    um = (ua + ub) * 0.5
    fi = np.floor(um)
    m = um - fi
    i = np.int64(fi) - c0
    if d != 0 and j >= 0 and j < h and i < w:
        if i < 0:  # left of the window: the whole signed height goes to the first column
            m = 0.0
            i = 0
        pj[n] = j
        pi[n] = i
        pa[n] = d * (1.0 - m)
        pb[n] = d * m
        return n + 1
    return n


@numba.njit(**_JIT)
def _pieces(edges, lo, hi, r0, r1, c0, c1):
    """Pieces of the ring edges ``edges[lo:hi]`` over rows [r0, r1) × cols [c0, c1): (n, row, col, left part,
    right part), each array of length ≥ n.

    Each edge is cut at the horizontal and vertical grid lines it crosses; its breakpoints are taken in the
    order of their edge parameter t (ties: start, end, row crossings, column crossings — a stable sort of that
    concatenation) and every piece between consecutive breakpoints adds d·(1 − m) ("left part") to its cell
    and d·m ("right part") to the cell on its right.
    """
    h, w = r1 - r0, c1 - c0
    total = 0
    for k in range(lo, hi):
        u0, v0, u1, v1 = edges[k, 0], edges[k, 1], edges[k, 2], edges[k, 3]
        if not (max(v0, v1) > r0 and min(v0, v1) < r1 and min(u0, u1) < c1 and v0 != v1):
            continue
        ny = _edge_range(v0, v1, r0, r1)[1]
        nx = _edge_range(u0, u1, c0, c1)[1]
        total += 1 + ny + nx
    pj = np.empty(total, np.int64)
    pi = np.empty(total, np.int64)
    pa = np.empty(total)
    pb = np.empty(total)
    n = 0
    for k in range(lo, hi):
        u0, v0, u1, v1, s = edges[k, 0], edges[k, 1], edges[k, 2], edges[k, 3], edges[k, 4]
        if not (max(v0, v1) > r0 and min(v0, v1) < r1 and min(u0, u1) < c1 and v0 != v1):
            continue
        du, dv = u1 - u0, v1 - v0
        ylo, ny = _edge_range(v0, v1, r0, r1)
        xlo, nx = _edge_range(u0, u1, c0, c1)
        # crossings in increasing t: row lines run backwards when the edge goes up, column lines when it goes left
        ya, ys = (0, 1) if dv > 0 else (ny - 1, -1)
        xa, xs = (0, 1) if du > 0 else (nx - 1, -1)
        ua, va = u0, v0  # the start (t = 0) comes first
        end_done = False
        iy = ix = 0
        while iy < ny or ix < nx:
            ty = tx = 0.0
            if iy < ny:
                ky = ylo + (ya + ys * iy)
                ty = (ky - v0) / dv
            if ix < nx:
                kx = xlo + (xa + xs * ix)
                tx = (kx - u0) / du
            take_y = iy < ny and (ix >= nx or ty <= tx)
            t = ty if take_y else tx
            if not end_done and t >= 1.0:  # the end point sorts before crossings whose t rounded to 1
                n = _add_piece(ua, va, u1, v1, s, r0, c0, h, w, pj, pi, pa, pb, n)
                ua, va = u1, v1
                end_done = True
            if take_y:
                ub, vb = u0 + ty * du, ky
                iy += 1
            else:
                ub, vb = kx, v0 + tx * dv
                ix += 1
            n = _add_piece(ua, va, ub, vb, s, r0, c0, h, w, pj, pi, pa, pb, n)
            ua, va = ub, vb
        if not end_done:
            n = _add_piece(ua, va, u1, v1, s, r0, c0, h, w, pj, pi, pa, pb, n)
    return n, pj, pi, pa, pb


@numba.njit(**_JIT)
def _accumulate(edges, lo, hi, r0, r1, c0, c1):
    """Accumulation rows (h, w + 1) of the ring edges ``edges[lo:hi]`` over rows [r0, r1) × cols [c0, c1): all
    left parts added before all right parts, each in piece order (as one bincount over their concatenation)."""
    n, pj, pi, pa, pb = _pieces(edges, lo, hi, r0, r1, c0, c1)
    acc = np.zeros((r1 - r0, c1 - c0 + 1))
    for q in range(n):
        acc[pj[q], pi[q]] += pa[q]
    for q in range(n):
        acc[pj[q], pi[q] + 1] += pb[q]
    return acc


@numba.njit(**_JIT)
def coverage_window(edges, r0, r1, c0, c1):
    """Covered fraction (h, w) of each cell in rows [r0, r1) × cols [c0, c1): row-wise running sums of the
    accumulation rows."""
    h, w = r1 - r0, c1 - c0
    acc = _accumulate(edges, 0, edges.shape[0], r0, r1, c0, c1)
    out = np.empty((h, w))
    for r in range(h):
        s = acc[r, 0]
        if w > 0:
            out[r, 0] = s
        for c in range(1, w):
            s = s + acc[r, c]
            out[r, c] = s
    return out


@numba.njit(**_JIT)
def _grow(a, need):
    b = np.empty(max(2 * a.shape[0], need), a.dtype)
    b[:a.shape[0]] = a
    return b


@numba.njit(inline="always", **_JIT)  # called once per run: a call would cost more than most runs
def _run(s, a, b, dr, w, local, full_min, zero_max, dense, sz, sc, sf, n):
    """Cells [a, b) of chunk row ``dr``, all covered ``s``: claim free dense cells (full coverage) or append
    sparse triples (room for b − a more is there). Returns (n, any full)."""
    if s >= full_min:
        for dc in range(a, b):
            if dense[dr, dc] < 0:
                dense[dr, dc] = local
            else:
                sz[n] = local
                sc[n] = dr * w + dc
                sf[n] = 1.0
                n += 1
        return n, b > a
    if s > zero_max:
        f = min(s, 1.0)
        for dc in range(a, b):
            sz[n] = local
            sc[n] = dr * w + dc
            sf[n] = f
            n += 1
    return n, False


@numba.njit(**_JIT)
def chunk_coverage(edges, edge_off, bbox, zones, r0, c0, h, w, full_min, zero_max, dense):
    """Coverage of the zones ``zones`` (global indices) over the chunk window (r0, c0, h, w).

    ``edges``/``edge_off``: every zone's ring edges, zone z in rows edge_off[z]:edge_off[z + 1]; ``bbox``
    (umin, vmin, umax, vmax) per zone. ``dense`` (h, w), filled with −1 by the caller, receives the local index
    of the first zone covering each cell fully (coverage ≥ ``full_min``). Returns (any full cell, sparse zone,
    sparse flat cell, sparse fraction): partly covered cells (coverage > ``zero_max``) and full cells already
    claimed by an earlier zone, zone by zone, row-major inside each zone.

    Only the accumulation cells that pieces touch are visited. The parts [left parts, right parts] are put in a
    stable order by (row, column) — a counting sort by row, then each row's few entries by column — so each
    cell sums its parts in the order :func:`_accumulate` does; a row's running sum is constant between touched
    cells, so the cells in between are handled as runs (runs of zero coverage cost nothing). Coverage values
    are those of :func:`coverage_window`, bit for bit.
    """
    sz = np.empty(1024, np.int32)
    sc = np.empty(1024, np.int32)
    sf = np.empty(1024)
    n = 0
    any_full = False
    start = np.zeros(h + 2, np.int64)
    order = np.empty(0, np.int64)
    for local in range(zones.shape[0]):
        z = zones[local]
        umin, vmin, umax, vmax = bbox[z, 0], bbox[z, 1], bbox[z, 2], bbox[z, 3]
        zr0 = max(r0, np.int64(math.floor(vmin)))
        zr1 = min(r0 + h, np.int64(math.ceil(vmax)))
        zc0 = max(c0, np.int64(math.floor(umin)))
        zc1 = min(c0 + w, np.int64(math.ceil(umax)))
        if zr1 <= zr0 or zc1 <= zc0:
            continue
        rows, zw, off = zr1 - zr0, zc1 - zc0, zc0 - c0
        npc, pj, pi, pa, pb = _pieces(edges, edge_off[z], edge_off[z + 1], zr0, zr1, zc0, zc1)
        m = 2 * npc  # entry e < npc: left part of piece e; e ≥ npc: right part of piece e − npc
        if order.shape[0] < m:
            order = np.empty(2 * m, np.int64)
        # counting sort by row, stable: afterwards row r holds order[start[r]:start[r + 1]]
        start[:rows + 2] = 0
        for q in range(npc):
            start[pj[q] + 2] += 2
        for r in range(rows):
            start[r + 2] += start[r + 1]
        for e in range(m):  # start[r + 1]: next free slot of row r
            r = pj[e] if e < npc else pj[e - npc]
            order[start[r + 1]] = e
            start[r + 1] += 1
        for r in range(rows):
            a, b = start[r], start[r + 1]
            if a == b:
                continue
            if b - a > 64:  # a long row (a nearly horizontal edge): stable mergesort by column
                cols = np.empty(b - a, np.int64)
                for t in range(a, b):
                    e = order[t]
                    cols[t - a] = pi[e] if e < npc else pi[e - npc] + 1
                seg = order[a:b][np.argsort(cols, kind="mergesort")]
                order[a:b] = seg
            for t in range(a + 1, b):  # stable insertion sort by column (rows hold few entries; no-op if sorted)
                e = order[t]
                col = pi[e] if e < npc else pi[e - npc] + 1
                u = t - 1
                while u >= a:
                    f = order[u]
                    if (pi[f] if f < npc else pi[f - npc] + 1) <= col:
                        break
                    order[u + 1] = f
                    u -= 1
                order[u + 1] = e
            dr = r + zr0 - r0
            s = 0.0
            done = 0  # first column of the zone window whose coverage is not emitted yet
            t = a
            while t < b:
                e = order[t]
                col = pi[e] if e < npc else pi[e - npc] + 1
                acc = 0.0
                while t < b:
                    e = order[t]
                    if e < npc:
                        if pi[e] != col:
                            break
                        acc += pa[e]
                    else:
                        if pi[e - npc] + 1 != col:
                            break
                        acc += pb[e - npc]
                    t += 1
                if col >= zw:  # the extra accumulation column, right of the window
                    continue
                if col > done:
                    if n + col - done > sz.shape[0]:
                        sz, sc, sf = _grow(sz, n + col - done), _grow(sc, n + col - done), _grow(sf, n + col - done)
                    n, full = _run(s, off + done, off + col, dr, w, local, full_min, zero_max, dense, sz, sc, sf, n)
                    any_full |= full
                s = s + acc
                done = col
            if n + zw - done > sz.shape[0]:
                sz, sc, sf = _grow(sz, n + zw - done), _grow(sc, n + zw - done), _grow(sf, n + zw - done)
            n, full = _run(s, off + done, off + zw, dr, w, local, full_min, zero_max, dense, sz, sc, sf, n)
            any_full |= full
    return any_full, sz[:n].copy(), sc[:n].copy(), sf[:n].copy()


# -- per-zone moments -------------------------------------------------------------------------------------------
# ``nodata`` and ``mask`` are None when absent: numba then compiles the checks away (a runtime flag inside
# the cell loops costs a factor of three or four).

@numba.njit(inline="always", **_JIT)
def _valid(x, k, nodata, mask):
    """(value as float64, valid, masked) of cell k: masked when mask[k] ≠ 0, valid when not masked, finite and
    not ``nodata``."""
    v = x[k]
    fv = np.float64(v)
    ok = math.isfinite(fv)
    if nodata is not None:
        ok = ok & (v != nodata)
    masked = False
    if mask is not None:
        masked = mask[k] != 0
        ok = ok & (not masked)
    return fv, ok, masked


@numba.njit(**_JIT)
def _run_sums(x, a, b, nodata, mask):
    """Over cells [a, b): (n valid, Σ valid, min, max, n masked). The sum runs in four interleaved partial
    sums (cell a + 4i + j into partial j, added as (p0 + p1) + (p2 + p3), then the tail in order): a fixed
    order, like numpy's pairwise sums, that does not wait on one long chain of additions."""
    n = nm = 0
    p0 = p1 = p2 = p3 = 0.0
    mn = np.inf
    mx = -np.inf
    k = a
    while k + 4 <= b:
        v0, o0, m0 = _valid(x, k, nodata, mask)
        v1, o1, m1 = _valid(x, k + 1, nodata, mask)
        v2, o2, m2 = _valid(x, k + 2, nodata, mask)
        v3, o3, m3 = _valid(x, k + 3, nodata, mask)
        p0 += v0 if o0 else 0.0
        p1 += v1 if o1 else 0.0
        p2 += v2 if o2 else 0.0
        p3 += v3 if o3 else 0.0
        n += o0 + o1 + o2 + o3
        nm += m0 + m1 + m2 + m3
        mn = min(mn, v0 if o0 else np.inf, v1 if o1 else np.inf, v2 if o2 else np.inf, v3 if o3 else np.inf)
        mx = max(mx, v0 if o0 else -np.inf, v1 if o1 else -np.inf, v2 if o2 else -np.inf, v3 if o3 else -np.inf)
        k += 4
    s = (p0 + p1) + (p2 + p3)
    while k < b:
        fv, ok, masked = _valid(x, k, nodata, mask)
        nm += masked
        if ok:
            n += 1
            s += fv
            mn = min(mn, fv)
            mx = max(mx, fv)
        k += 1
    return n, s, mn, mx, nm


@numba.njit(**_JIT)
def _run_sq(x, a, b, nodata, mask, mu):
    """Σ (x − mu)² over the valid cells of [a, b), in the partial-sum order of :func:`_run_sums`."""
    p0 = p1 = p2 = p3 = 0.0
    k = a
    while k + 4 <= b:
        v0, o0, m0 = _valid(x, k, nodata, mask)
        v1, o1, m1 = _valid(x, k + 1, nodata, mask)
        v2, o2, m2 = _valid(x, k + 2, nodata, mask)
        v3, o3, m3 = _valid(x, k + 3, nodata, mask)
        d0, d1, d2, d3 = v0 - mu, v1 - mu, v2 - mu, v3 - mu
        p0 += d0 * d0 if o0 else 0.0
        p1 += d1 * d1 if o1 else 0.0
        p2 += d2 * d2 if o2 else 0.0
        p3 += d3 * d3 if o3 else 0.0
        k += 4
    s = (p0 + p1) + (p2 + p3)
    while k < b:
        fv, ok, masked = _valid(x, k, nodata, mask)
        if ok:
            d = fv - mu
            s += d * d
        k += 1
    return s


@numba.njit(**_JIT)
def chunk_moments(x, nodata, mask, dense, sp_zone, sp_cell, sp_frac, width, want_minmax,
                  W, MEAN, M2, MN, MX, WM, WN):
    """Coverage-weighted partials of one layer over one chunk, written into the (nz,) rows given.

    ``x`` flat chunk (any numeric dtype); a cell is *masked* when ``mask`` (flat uint8, or None) is non-zero,
    else *nodata* when not finite or equal to ``nodata`` (or None), else valid. ``dense`` (flat, empty for
    none): local zone covering the cell fully, −1 for none; ``sp_*``: (zone, cell, fraction) of boundary cells.
    Out: W = Σ w (valid), MEAN = Σ w·x / W (0 when W = 0), M2 = Σ w·(x − MEAN)², MN/MX (only with
    ``want_minmax``; left as they are otherwise), WM = Σ w (masked), WN = Σ w (nodata).

    Dense cells (weight 1) go by runs of one zone within a row: exact counts, and each run's sum (at most a row
    long, :func:`_run_sums`) is added to the zone's chunk total — rounding error grows with the row length plus
    the number of runs, not with the cell count. Boundary cells follow in their stored order. The squared
    deviations take a second pass around the chunk mean.
    """
    nz = W.shape[0]
    nd = dense.shape[0]
    rows = nd // width if nd else 0
    Wd, Sd, WMd, WNd = np.zeros(nz), np.zeros(nz), np.zeros(nz), np.zeros(nz)
    lo = np.full(nz, np.inf)
    hi = np.full(nz, -np.inf)
    for r in range(rows):
        k, end = r * width, (r + 1) * width
        while k < end:
            z = dense[k]
            b = k + 1
            while b < end and dense[b] == z:
                b += 1
            if z >= 0:
                n, s, mn, mx, nm = _run_sums(x, k, b, nodata, mask)
                Wd[z] += n
                Sd[z] += s
                WMd[z] += nm
                WNd[z] += (b - k) - n - nm
                lo[z] = min(lo[z], mn)
                hi[z] = max(hi[z], mx)
            k = b
    Ws, Ss, WMs, WNs = np.zeros(nz), np.zeros(nz), np.zeros(nz), np.zeros(nz)
    for q in range(sp_zone.shape[0]):
        z = sp_zone[q]
        f = sp_frac[q]
        fv, ok, masked = _valid(x, sp_cell[q], nodata, mask)
        if masked:
            WMs[z] += f
        elif not ok:
            WNs[z] += f
        else:
            Ws[z] += f
            Ss[z] += f * fv
            lo[z] = min(lo[z], fv)
            hi[z] = max(hi[z], fv)
    for z in range(nz):
        W[z] = Wd[z] + Ws[z]
        MEAN[z] = (Sd[z] + Ss[z]) / W[z] if W[z] > 0 else 0.0
        WM[z] = WMd[z] + WMs[z]
        WN[z] = WNd[z] + WNs[z]
        if want_minmax:
            MN[z] = min(MN[z], lo[z])
            MX[z] = max(MX[z], hi[z])
    # second pass: squared deviations from the chunk mean
    M2d = np.zeros(nz)
    for r in range(rows):
        k, end = r * width, (r + 1) * width
        while k < end:
            z = dense[k]
            b = k + 1
            while b < end and dense[b] == z:
                b += 1
            if z >= 0 and Wd[z] > 0:
                M2d[z] += _run_sq(x, k, b, nodata, mask, MEAN[z])
            k = b
    M2s = np.zeros(nz)
    for q in range(sp_zone.shape[0]):
        z = sp_zone[q]
        fv, ok, masked = _valid(x, sp_cell[q], nodata, mask)
        if ok:
            d = fv - MEAN[z]
            M2s[z] += sp_frac[q] * (d * d)
    for z in range(nz):
        M2[z] = M2d[z] + M2s[z]


# -- class areas ------------------------------------------------------------------------------------------------

@numba.njit(**_JIT)
def _is_bad(v, has_nodata, nodata):
    return (has_nodata and v == nodata) or not math.isfinite(np.float64(v))


@numba.njit(**_JIT)
def class_gather(x, has_nodata, nodata, dense, sp_zone, sp_cell, sp_frac, nz):
    """Valid covered cells of a class chunk: (zone, code, weight) — dense cells (weight 1) in cell order, then
    the boundary cells in their stored order — and the nodata weight per zone (dense counts + boundary sums)."""
    total = sp_zone.shape[0]
    for k in range(dense.shape[0]):
        if dense[k] >= 0:
            total += 1
    oz = np.empty(total, np.int64)
    oc = np.empty(total, x.dtype)
    ow = np.empty(total)
    WNd, WNs = np.zeros(nz), np.zeros(nz)
    n = 0
    for k in range(dense.shape[0]):
        z = dense[k]
        if z < 0:
            continue
        v = x[k]
        if _is_bad(v, has_nodata, nodata):
            WNd[z] += 1.0
            continue
        oz[n] = z
        oc[n] = v
        ow[n] = 1.0
        n += 1
    for q in range(sp_zone.shape[0]):
        z = sp_zone[q]
        v = x[sp_cell[q]]
        if _is_bad(v, has_nodata, nodata):
            WNs[z] += sp_frac[q]
            continue
        oz[n] = z
        oc[n] = v
        ow[n] = sp_frac[q]
        n += 1
    return oz[:n], oc[:n], ow[:n], WNd + WNs


@numba.njit(**_JIT)
def class_range(x, has_nodata, nodata, dense, sp_cell):
    """(lowest, highest, count) of the valid covered cells of an integer class chunk, as int64."""
    lo = np.iinfo(np.int64).max
    hi = np.iinfo(np.int64).min
    n = 0
    for k in range(dense.shape[0]):
        if dense[k] >= 0 and not _is_bad(x[k], has_nodata, nodata):
            v = np.int64(x[k])
            lo = min(lo, v)
            hi = max(hi, v)
            n += 1
    for q in range(sp_cell.shape[0]):
        v = x[sp_cell[q]]
        if not _is_bad(v, has_nodata, nodata):
            lo = min(lo, np.int64(v))
            hi = max(hi, np.int64(v))
            n += 1
    return lo, hi, n


@numba.njit(**_JIT)
def class_weights_small(x, offset, nvals, has_nodata, nodata, dense, sp_zone, sp_cell, sp_frac, nz):
    """Class weights of a chunk of integers in a short range (code − ``offset`` in [0, nvals)), no gathering.

    Returns (codes − offset present among the valid covered cells, ascending; M (nz, ncodes) with M[z, c] = Σ w,
    dense cells first then boundary cells in their stored order; nodata weight per zone).
    """
    present = np.zeros(nvals, np.bool_)
    WNd, WNs = np.zeros(nz), np.zeros(nz)
    for k in range(dense.shape[0]):
        z = dense[k]
        if z < 0:
            continue
        v = x[k]
        if _is_bad(v, has_nodata, nodata):
            WNd[z] += 1.0
            continue
        present[np.int64(v) - offset] = True
    for q in range(sp_zone.shape[0]):
        v = x[sp_cell[q]]
        if _is_bad(v, has_nodata, nodata):
            WNs[sp_zone[q]] += sp_frac[q]
            continue
        present[np.int64(v) - offset] = True
    lut = np.full(nvals, -1, np.int64)
    nc = 0
    for c in range(nvals):
        if present[c]:
            lut[c] = nc
            nc += 1
    codes = np.empty(nc, np.int64)
    for c in range(nvals):
        if present[c]:
            codes[lut[c]] = c
    M = np.zeros((nz, nc))
    for k in range(dense.shape[0]):
        z = dense[k]
        if z < 0:
            continue
        v = x[k]
        if _is_bad(v, has_nodata, nodata):
            continue
        M[z, lut[np.int64(v) - offset]] += 1.0
    for q in range(sp_zone.shape[0]):
        v = x[sp_cell[q]]
        if _is_bad(v, has_nodata, nodata):
            continue
        M[sp_zone[q], lut[np.int64(v) - offset]] += sp_frac[q]
    return codes, M, WNd + WNs
