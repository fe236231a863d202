"""River network derived from the DEM: D8 channels above a contributing-area threshold, split at confluences,
Strahler-ordered, named along main stems (the larger branch keeps the name upstream)."""

from __future__ import annotations

import numpy as np
from shapely.geometry import LineString

from ecoassess.sample import hydrology
from ecoassess.sample.landcover import RIVER_KM2
from ecoassess.sample.terrain import Terrain
from ecoassess.sample.world import World

RIVER_NAMES = ["清溪河", "白马河", "龙溪河", "九曲河", "桃花溪", "石板河", "青龙河", "柏林溪", "双溪河", "黄桷溪",
               "马鞍河", "凤鸣溪", "梨子沟", "大堰河", "花溪河", "柳林沟", "沙溪河", "蟠龙河", "观音溪", "红岩沟",
               "碧水溪", "鹿鸣河", "金鸡溪", "竹林沟", "雁塘河", "长滩河", "平桥溪", "杨柳河", "石门沟", "响水溪"]


def _chaikin(xy: np.ndarray) -> np.ndarray:
    if len(xy) < 3:
        return xy
    q = 0.75 * xy[:-1] + 0.25 * xy[1:]
    r = 0.25 * xy[:-1] + 0.75 * xy[1:]
    mid = np.empty((2 * (len(xy) - 1), 2))
    mid[0::2], mid[1::2] = q, r
    return np.vstack([xy[:1], mid[1:-1], xy[-1:]])


def make_rivers(world: World, terrain: Terrain):
    """Records, UTM LineStrings and a per-cell river-name raster (index into the names list, -1 off-river)."""
    up = terrain.upstream_km2
    channel = up >= RIVER_KM2
    segs = hydrology.trace_streams(channel, terrain.down, terrain.acc_cells)
    acc = terrain.acc_cells.ravel()

    def inflow_acc(s):
        cells = s["cells"]
        return acc[cells[-2] if s["end"] >= 0 and len(cells) > 1 else cells[-1]]

    names = [None] * len(segs)
    counter = [0]

    def new_name():
        k = counter[0]
        counter[0] += 1
        base = RIVER_NAMES[k % len(RIVER_NAMES)]
        return base if k < len(RIVER_NAMES) else f"{base}{k // len(RIVER_NAMES) + 1}支"

    for i in sorted(range(len(segs)), key=lambda k: -inflow_acc(segs[k])):
        s = segs[i]
        if names[i] is None:
            names[i] = new_name()
        ups = sorted(s["ups"], key=lambda k: -inflow_acc(segs[k]))
        for j, u in enumerate(ups):
            if names[u] is None:
                names[u] = names[i] if j == 0 else new_name()
    records, geoms = [], []
    name_list = sorted(set(names), key=names.index)
    name_raster = np.full(world.shape, -1, dtype=np.int32)
    n = world.n
    for i, s in enumerate(segs):
        rows, cols = np.divmod(np.asarray(s["cells"]), n)
        if len(rows) < 2:
            continue
        x, y = world.xy(rows, cols)
        xy = _chaikin(np.column_stack([x, y]))
        geoms.append(LineString(xy).simplify(3.0))
        records.append({"river_id": len(records) + 1, "name": names[i], "order": int(s["order"]),
                        "upstream_area_km2": round(float(up.flat[s["cells"][-1]]), 3)})
        name_raster[rows, cols] = name_list.index(names[i])
    return records, geoms, name_raster, name_list
