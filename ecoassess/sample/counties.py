"""Fictional counties (province 51, non-existent prefecture 99): watershed partition of the DEM, so boundaries
follow ridges and divides; the study area's outer edge is an irregular shape inside the grid."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ecoassess.sample.noise import fractal
from ecoassess.sample.terrain import Terrain
from ecoassess.sample.vectors import polygonize, rasterize
from ecoassess.sample.world import RES_M, World

NAMES = [("青岗县", "Qinggang"), ("柏溪县", "Baixi"), ("云台县", "Yuntai"), ("雁湖县", "Yanhu"), ("鹤鸣县", "Heming"),
         ("桐坪县", "Tongping"), ("梓岩县", "Ziyan"), ("槐溪县", "Huaixi"), ("杉坪县", "Shanping"),
         ("岭泉县", "Lingquan"), ("丹岩县", "Danyan"), ("松坡县", "Songpo"), ("榕岗县", "Ronggang"),
         ("蓼溪县", "Liaoxi"), ("黛泉县", "Daiquan"), ("樟垭县", "Zhangya"), ("橙塘县", "Chengtang"),
         ("枥山县", "Lishan"), ("苇坝县", "Weiba"), ("芸洞县", "Yundong")]


@dataclass
class Counties:
    codes: list[str]
    names: list[str]
    names_en: list[str]
    geoms_utm: list                 # simplified polygons, a coverage
    labels: np.ndarray              # int raster (1..n, 0 outside), rasterised from the polygons
    seeds_rc: list[tuple[int, int]]

    def code_at(self, r, c) -> str:
        lab = int(self.labels[r, c])
        return self.codes[lab - 1] if lab else ""


def _best_candidates(rng, mask: np.ndarray, k: int, tries: int = 40):
    """Mitchell's best-candidate sampling: ``k`` well-spread cells inside ``mask``."""
    rr, cc = np.nonzero(mask)
    pts = []
    for _ in range(k):
        cand = rng.integers(0, rr.size, tries)
        if not pts:
            j = cand[0]
        else:
            p = np.array(pts)
            d = np.min(np.hypot(rr[cand][:, None] - p[:, 0], cc[cand][:, None] - p[:, 1]), axis=1)
            j = cand[int(np.argmax(d))]
        pts.append((int(rr[j]), int(cc[j])))
    return pts


def _flood(cost: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """Marker-controlled watershed (Meyer flooding, 4-connected): regions meet along high ``cost``."""
    h, w = cost.shape
    cl = cost.ravel().tolist()
    lab = markers.ravel().astype(np.int64).tolist()
    heap = [(cl[i], i) for i in np.flatnonzero(markers.ravel()).tolist()]
    heapq.heapify(heap)
    while heap:
        _, i = heapq.heappop(heap)
        r, c = divmod(i, w)
        for j, ok in ((i - w, r > 0), (i + w, r < h - 1), (i - 1, c > 0), (i + 1, c < w - 1)):
            if ok and lab[j] == 0:
                lab[j] = lab[i]
                heapq.heappush(heap, (cl[j], j))
    return np.asarray(lab, dtype=np.int32).reshape(h, w)


def make_counties(world: World, terrain: Terrain) -> Counties:
    rng = world.rng("counties")
    n = world.n
    k = 4 * world.scale
    # outer edge: a noisy rounded square ~ 90 % of the grid side
    rows, cols = np.indices(world.shape, dtype="float32")
    x, y = (cols + 0.5) / n * 2 - 1, (rows + 0.5) / n * 2 - 1
    r = (np.abs(x) ** 5 + np.abs(y) ** 5) ** 0.2
    wobble = 0.045 * fractal(rng, world.shape, beta=3.6)
    inside = r + wobble < 0.9
    lab, nlab = ndimage.label(inside)
    inside = lab == (1 + int(np.argmax(ndimage.sum(inside, lab, range(1, nlab + 1)))))
    inside = ndimage.binary_fill_holes(inside)
    # seeds well spread; watershed on elevation + distance so regions meet on divides with balanced sizes
    core = ndimage.binary_erosion(inside, iterations=int(2500 / RES_M))
    seeds = _best_candidates(rng, core, k)
    markers = np.zeros(world.shape, dtype=np.int32)
    for i, (sr, sc) in enumerate(seeds, start=1):
        markers[max(sr - 3, 0): sr + 4, max(sc - 3, 0): sc + 4] = i
    dist = ndimage.distance_transform_edt(markers == 0) * RES_M / 1000.0   # km to the nearest seed
    hand = ndimage.gaussian_filter(terrain.hand_m, 2.0)
    cost = (30.0 * dist + 1.2 * hand).reshape(n // 2, 2, n // 2, 2).mean(axis=(1, 3))   # flooded at 60 m
    part = _flood(cost, markers[::2, ::2])
    part = np.repeat(np.repeat(part, 2, axis=0), 2, axis=1)
    part = np.where(inside, part, 0)
    # keep one connected piece per county (stray islands go to the neighbour that surrounds them)
    for i in range(1, k + 1):
        li, nl = ndimage.label(part == i)
        if nl > 1:
            sizes = ndimage.sum(np.ones_like(li), li, range(1, nl + 1))
            keep = 1 + int(np.argmax(sizes))
            stray = (li > 0) & (li != keep)
            part[stray] = 0
    holes = inside & (part == 0)
    if holes.any():
        _, (ir, ic) = ndimage.distance_transform_edt(part == 0, return_indices=True)
        part[holes] = part[ir, ic][holes]
    polys = polygonize(part, world, simplify_m=60.0)
    order = sorted(polys, key=lambda i: (-seeds[i - 1][0], seeds[i - 1][1]))   # south-west first, like codes
    codes, names, names_en, geoms, new_seeds = [], [], [], [], []
    for j, i in enumerate(order):
        codes.append(f"5199{j + 1:02d}")
        names.append(NAMES[j % len(NAMES)][0] if j < len(NAMES) else f"示例{j + 1}县")
        names_en.append(NAMES[j % len(NAMES)][1] + " County" if j < len(NAMES) else f"Sample {j + 1} County")
        geoms.append(polys[i])
        new_seeds.append(seeds[i - 1])
    labels = rasterize([(g, j + 1) for j, g in enumerate(geoms)], world)
    return Counties(codes, names, names_en, geoms, labels, new_seeds)
