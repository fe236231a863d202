"""Flow routing on a DEM: a priority-flood drainage tree (depressions are breached, not filled, so paths keep
following the terrain), flow accumulation, catchment labelling and stream tracing."""

from __future__ import annotations

import heapq

import numpy as np

# D8 neighbour offsets (row, col)
OFFSETS = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]


def flow_tree(dem: np.ndarray):
    """Drainage tree by priority flood from the grid edge.

    Returns ``down`` (flat index of the downstream cell, -1 for edge cells, which drain off the grid) and
    ``order`` (all flat indices, each cell after its downstream cell).
    """
    h, w = dem.shape
    z = dem.astype("float64").ravel().tolist()
    n = h * w
    done = bytearray(n)
    down = [-1] * n
    heap = []
    for i in range(n):
        r, c = divmod(i, w)
        if r == 0 or c == 0 or r == h - 1 or c == w - 1:
            done[i] = 1
            heap.append((z[i], i))
    heapq.heapify(heap)
    nbr = [dr * w + dc for dr, dc in OFFSETS]
    pop, push = heapq.heappop, heapq.heappush
    order = []
    append = order.append
    while heap:
        _, i = pop(heap)
        append(i)
        r, c = divmod(i, w)
        interior = 0 < r < h - 1 and 0 < c < w - 1
        for k, off in enumerate(nbr):
            if not interior:
                rr, cc = r + OFFSETS[k][0], c + OFFSETS[k][1]
                if rr < 0 or rr >= h or cc < 0 or cc >= w:
                    continue
            j = i + off
            if done[j]:
                continue
            done[j] = 1
            down[j] = i
            push(heap, (z[j], j))
    return np.asarray(down, dtype=np.int64), np.asarray(order, dtype=np.int64)


def accumulate(down: np.ndarray, order: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Number of cells (or sum of ``weights``) draining through each cell, itself included (flat array)."""
    acc = (np.ones(down.size) if weights is None else weights.ravel().astype("float64")).tolist()
    dl = down.tolist()
    for i in reversed(order.tolist()):
        d = dl[i]
        if d >= 0:
            acc[d] += acc[i]
    return np.asarray(acc)


def breach(values: np.ndarray, down: np.ndarray, order: np.ndarray, drop: float = 0.05) -> np.ndarray:
    """Lower cells so that every value is at least ``drop`` below its upstream neighbours (flat array)."""
    v = values.ravel().astype("float64").tolist()
    dl = down.tolist()
    for i in reversed(order.tolist()):
        d = dl[i]
        if d >= 0 and v[d] > v[i] - drop:
            v[d] = v[i] - drop
    return np.asarray(v)


def propagate_labels(down: np.ndarray, order: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Label every cell with the first non-zero seed label found downstream of it (its catchment's)."""
    lab = seeds.ravel().astype(np.int64).tolist()
    dl = down.tolist()
    for i in order.tolist():
        if lab[i] == 0:
            d = dl[i]
            if d >= 0:
                lab[i] = lab[d]
    return np.asarray(lab).reshape(seeds.shape)


def trace_streams(channel: np.ndarray, down: np.ndarray, acc: np.ndarray):
    """Split a channel mask into segments between heads, confluences and the grid edge.

    Returns a list of dicts: ``cells`` (flat indices, downstream order, ending with the confluence cell it
    joins if any), ``down_seg`` (segment it flows into, -1 at the edge), ``order`` (Strahler), ``ups``.
    """
    flat = channel.ravel()
    acc = acc.ravel()
    idx = np.flatnonzero(flat)
    inflow = np.zeros(flat.size, dtype=np.int32)
    d = down[idx]
    d = d[d >= 0]
    d = d[flat[d]]
    np.add.at(inflow, d, 1)
    starts = [int(i) for i in idx if inflow[i] != 1]
    start_set = set(starts)
    seg_of_start = {}
    segments = []
    for s in starts:
        cells = [s]
        j = int(down[s])
        while j >= 0 and flat[j] and j not in start_set:
            cells.append(j)
            j = int(down[j])
        end = j if (j >= 0 and flat[j]) else -1
        if end >= 0:
            cells.append(end)
        seg_of_start[s] = len(segments)
        segments.append({"cells": cells, "end": end})
    for seg in segments:
        seg["down_seg"] = seg_of_start[seg["end"]] if seg["end"] >= 0 else -1
    ups = {i: [] for i in range(len(segments))}
    for i, seg in enumerate(segments):
        if seg["down_seg"] >= 0:
            ups[seg["down_seg"]].append(i)
    for i in sorted(range(len(segments)), key=lambda k: acc[segments[k]["cells"][0]]):
        u = [segments[k]["order"] for k in ups[i]]
        m = max(u) if u else 0
        segments[i]["order"] = 1 if not u else (m + 1 if u.count(m) >= 2 else m)
        segments[i]["ups"] = ups[i]
    return segments
