"""Baseline (2023) land cover in CAS/LUCC codes, laid out by terrain: paddy on valley floors, dry land on
gentle slopes, forest/shrub on hills and the ridge, bare rock on its steepest faces, towns on rivers,
reservoirs behind dams, scattered rural settlements and a road between the county seats."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rasterio import features
from scipy import ndimage
from shapely.geometry import LineString

from ecoassess.sample import hydrology
from ecoassess.sample.counties import Counties
from ecoassess.sample.noise import fractal
from ecoassess.sample.terrain import Terrain
from ecoassess.sample.world import RES_M, World

PADDY, DRY, FOREST, SHRUB, OPEN_FOREST, ORCHARD = 11, 12, 21, 22, 23, 24
GRASS_HIGH, GRASS_MID, GRASS_LOW = 31, 32, 33
RIVER, LAKE, RESERVOIR = 41, 42, 43
URBAN, RURAL, CONSTRUCTION = 51, 52, 53
BARE_SOIL, BARE_ROCK = 65, 66
WATER = (RIVER, LAKE, RESERVOIR)
CLASS_NAMES = {11: "水田", 12: "旱地", 21: "有林地", 22: "灌木林", 23: "疏林地", 24: "其他林地", 31: "高覆盖度草地",
               32: "中覆盖度草地", 33: "低覆盖度草地", 41: "河渠", 42: "湖泊", 43: "水库坑塘", 51: "城镇用地",
               52: "农村居民点", 53: "其他建设用地", 65: "裸土地", 66: "裸岩石质地"}

#: upstream area (km²) of mapped rivers, and of rivers wide enough to be land-cover water
RIVER_KM2 = 1.2
RIVER_LC_KM2 = 12.0
WIDE_RIVER_KM2 = 60.0


@dataclass
class Town:
    name: str
    row: int
    col: int
    radius_m: float
    county: int          # county label (1..n)
    seat: bool


@dataclass
class Landscape:
    lucc: np.ndarray                 # uint8 CAS codes, 2023
    towns: list[Town]
    reservoirs: list[dict]           # {"name", "row", "col", "area_km2", "mask_label"}
    reservoir_labels: np.ndarray     # int, reservoir id per cell
    river_dist_m: np.ndarray         # distance to the nearest mapped river (m)
    roads: list[LineString] = field(default_factory=list)


TOWN_NAMES = ["城关镇", "河坝镇", "石桥镇", "白庙镇", "龙潭镇", "新店镇", "双河镇", "高桥乡", "永兴镇", "柳林镇",
              "金鸡镇", "观音镇", "马鞍镇", "黄桷镇", "三星镇", "太平镇", "仁和镇", "兴隆镇", "清水镇", "回龙镇"]
RESERVOIR_NAMES = ["黑龙滩水库", "团结水库", "红旗水库", "胜利水库", "青山水库", "白云水库", "向阳水库", "东风水库",
                   "幸福水库", "龙泉水库", "跃进水库", "长虹水库"]


def _disk_blob(world, rng, r0, c0, radius_px, shape_noise, limit):
    rows, cols = np.ogrid[: world.n, : world.n]
    d = np.hypot(rows - r0, cols - c0) / max(radius_px, 1e-6)
    return (d * (1.0 + 0.3 * np.clip(shape_noise, -1.5, 1.5)) < 1.0) & limit


def _reservoir(terrain: Terrain, dam: int, target_km2: float):
    """Cells flooded behind a dam at flat index ``dam``: its catchment below a crest chosen for ``target_km2``."""
    dem = terrain.dem_m
    seeds = np.zeros(dem.shape, dtype=np.int64)
    seeds.flat[dam] = 1
    basin = hydrology.propagate_labels(terrain.down, terrain.order, seeds) == 1
    zd = float(dem.flat[dam])
    best = None
    for h in np.arange(6.0, 45.0, 2.0):
        m = basin & (dem < zd + h)
        lab, _ = ndimage.label(m)
        m = lab == lab.flat[dam]
        area = m.sum() * RES_M * RES_M / 1e6
        best = m
        if area >= target_km2:
            break
    return best


def make_landscape(world: World, terrain: Terrain, counties: Counties) -> Landscape:
    rng = world.rng("landcover")
    n, shape = world.n, world.shape
    slope, hand = terrain.slope_deg, terrain.hand_m
    up = terrain.upstream_km2
    rivers = up >= RIVER_KM2
    river_dist_m = ndimage.distance_transform_edt(~rivers) * RES_M
    nz = [fractal(rng, shape, beta=b) for b in (3.0, 3.0, 2.6, 2.6, 3.2)]

    # --- natural and farmed surfaces --------------------------------------------------------------------------
    lc = np.full(shape, FOREST, dtype=np.uint8)
    cult = (hand < 55.0 + 25.0 * nz[0]) & (slope < 17.0 + 4.0 * nz[1]) & (terrain.ridge_weight < 0.45 + 0.1 * nz[0])
    lc[cult] = DRY
    lc[(hand < 9.0 + 4.0 * nz[1]) & (slope < 7.0)] = PADDY
    nat = ~cult
    lc[nat & (nz[2] > 1.1)] = SHRUB
    lc[nat & (nz[3] > 1.3)] = OPEN_FOREST
    lc[nat & (slope > 22.0) & (nz[2] > 0.3)] = SHRUB
    grass = nat & (nz[4] > 1.55) & (slope < 25)
    lc[grass & (nz[3] < 0.0)] = GRASS_HIGH
    lc[grass & (nz[3] >= 0.0)] = GRASS_MID
    lc[grass & (nz[3] >= 1.0)] = GRASS_LOW
    lc[(slope > 26.0) & (terrain.ridge_weight > 0.5) & (nz[1] > 0.2)] = BARE_ROCK
    lc[cult & (nz[4] < -2.3)] = BARE_SOIL
    orchard_zone = cult & (lc == DRY) & (nz[3] > 0.9)
    lc[orchard_zone] = ORCHARD

    # --- rivers -----------------------------------------------------------------------------------------------
    lc_river = up >= RIVER_LC_KM2
    lc_river |= ndimage.binary_dilation(up >= WIDE_RIVER_KM2)
    lc[lc_river] = RIVER

    # --- reservoirs behind dams on mid-size streams -------------------------------------------------------------
    res_labels = np.zeros(shape, dtype=np.int32)
    reservoirs = []
    inside = counties.labels > 0
    cand = np.flatnonzero((up >= 2.0).ravel() & (up <= 10.0).ravel() & inside.ravel() & (hand.ravel() < 1.0))
    rng.shuffle(cand)
    for dam in cand[: 400]:
        if len(reservoirs) >= 2 * world.scale:
            break
        r, c = divmod(int(dam), n)
        if any(np.hypot(r - q["row"], c - q["col"]) < 4000 / RES_M for q in reservoirs):
            continue
        if any(np.hypot(r - sr, c - sc) < 3000 / RES_M for sr, sc in counties.seeds_rc):
            continue
        m = _reservoir(terrain, int(dam), float(rng.uniform(0.35, 0.9)))
        area = m.sum() * RES_M * RES_M / 1e6
        if area < 0.25 or (m & (res_labels > 0)).any() or not inside[m].all():
            continue
        k = len(reservoirs) + 1
        res_labels[m] = k
        reservoirs.append({"name": RESERVOIR_NAMES[(k - 1) % len(RESERVOIR_NAMES)], "row": r, "col": c,
                           "area_km2": area, "id": k})
    lc[res_labels > 0] = RESERVOIR
    # farm ponds (坑塘) among the paddies
    ponds = (lc == PADDY) & (rng.random(shape) < 0.0009)
    lc[ndimage.binary_dilation(ponds, iterations=1) & (lc == PADDY)] = RESERVOIR

    # --- towns: a county seat on a river in each county, plus townships -----------------------------------------
    towns: list[Town] = []
    tn = fractal(rng, shape, beta=2.8)
    big_river = up >= 8.0
    for k in range(1, len(counties.codes) + 1):
        sr, sc = counties.seeds_rc[k - 1]
        own = (counties.labels == k)
        core = ndimage.binary_erosion(own, iterations=int(1500 / RES_M))
        ok = core & big_river & (res_labels == 0)
        for fallback in (core & (up >= 2.0), own & (up >= 2.0), own):  # small or dry counties at large scales
            if ok.any():
                break
            ok = fallback
        rr, cc = np.nonzero(ok)
        j = int(np.argmin(np.hypot(rr - sr, cc - sc)))
        towns.append(Town(TOWN_NAMES[0] if k == 1 else f"{counties.names[k - 1][:2]}镇", int(rr[j]), int(cc[j]),
                          float(rng.uniform(800, 1050)), k, True))
        # townships on other river reaches of the county
        cand_t = np.flatnonzero((ok | (core & (up >= 3.0))).ravel())
        rng.shuffle(cand_t)
        added = 0
        for t in cand_t:
            r, c = divmod(int(t), n)
            if all(np.hypot(r - q.row, c - q.col) > 3500 / RES_M for q in towns):
                towns.append(Town(TOWN_NAMES[(len(towns)) % len(TOWN_NAMES)], r, c, float(rng.uniform(220, 380)),
                                  k, False))
                added += 1
                if added >= 2:
                    break
    seat_names = {}
    for t in towns:
        if t.seat:
            t.name = f"{counties.names[t.county - 1][:-1]}城区"
            seat_names[t.county] = t.name
    buildable = (slope < 15.0) & ~np.isin(lc, WATER)
    for t in towns:
        blob = _disk_blob(world, rng, t.row, t.col, t.radius_m / RES_M, tn, buildable)
        lc[ndimage.binary_closing(blob, iterations=2) & ~np.isin(lc, WATER)] = URBAN

    # --- road linking the county seats (other construction land) -----------------------------------------------
    seats = [t for t in towns if t.seat]
    roads = []
    order = sorted(seats, key=lambda t: (t.col, t.row))
    for a, b in zip(order[:-1], order[1:]):
        pts = [world.xy(a.row, a.col)]
        for f in (0.33, 0.66):
            r = a.row + f * (b.row - a.row) + rng.normal(0, 15)
            c = a.col + f * (b.col - a.col) + rng.normal(0, 15)
            pts.append(world.xy(r, c))
        pts.append(world.xy(b.row, b.col))
        roads.append(LineString([(float(x), float(y)) for x, y in pts]))
    road_mask = features.rasterize([(g, 1) for g in roads], out_shape=shape, transform=world.transform(),
                                   dtype="uint8").astype(bool)
    lc[road_mask & ~np.isin(lc, WATER + (URBAN,))] = CONSTRUCTION

    # --- rural settlements (农村居民点): small clusters at the foot of slopes ------------------------------------
    p = np.where((hand > 3) & (hand < 30) & (slope < 14) & np.isin(lc, (PADDY, DRY, ORCHARD)), 0.012, 0.0)
    hamlets = rng.random(shape) < p
    grow = hamlets | (ndimage.binary_dilation(hamlets) & (rng.random(shape) < 0.5))
    lc[grow & np.isin(lc, (PADDY, DRY, ORCHARD, FOREST))] = RURAL
    return Landscape(lc, towns, reservoirs, res_labels, river_dist_m.astype("float32"), roads)
