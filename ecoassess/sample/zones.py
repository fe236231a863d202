"""Ecological conservation red-line units (over forests and reservoir catchments) and ecological function zones."""

from __future__ import annotations

import numpy as np
import shapely
from scipy import ndimage

from ecoassess.sample import landcover as lcm
from ecoassess.sample.counties import Counties
from ecoassess.sample.landcover import Landscape
from ecoassess.sample.terrain import Terrain
from ecoassess.sample.vectors import polygonize, rasterize
from ecoassess.sample.world import RES_M, World

PLACE_NAMES = ["龙台山", "白云岭", "青峰岭", "凤凰山", "鹰嘴岩", "九龙坡", "玉皇顶", "翠屏岭", "狮子山", "卧牛岭",
               "天池山", "宝峰寨", "观音岩", "金顶山", "飞龙岭", "铜鼓山"]


def make_redline(world: World, terrain: Terrain, land: Landscape, counties: Counties):
    """Red-line units: compact forest blocks (> 1 km²) and reservoir surroundings, split by county."""
    lc = land.lucc
    natural = np.isin(lc, (lcm.FOREST, lcm.SHRUB, lcm.OPEN_FOREST, lcm.GRASS_HIGH, lcm.BARE_ROCK, lcm.RESERVOIR))
    frac = ndimage.gaussian_filter(natural.astype("float32"), 3.0)
    m = frac > 0.72
    near_res = ndimage.distance_transform_edt(land.reservoir_labels == 0) * RES_M < 450.0
    water_src = near_res & ~np.isin(lc, (lcm.URBAN, lcm.RURAL, lcm.PADDY))
    m |= water_src
    m = ndimage.binary_opening(m, iterations=2)
    m = ndimage.binary_closing(m, iterations=2)
    m &= ~np.isin(lc, (lcm.URBAN,)) & (counties.labels > 0)
    lab = np.where(m, counties.labels, 0)
    units = np.zeros_like(lab)
    k = 0
    for cl in range(1, len(counties.codes) + 1):
        comp, nc = ndimage.label(lab == cl)
        if nc == 0:
            continue
        sizes = ndimage.sum(np.ones_like(comp), comp, range(1, nc + 1)) * RES_M * RES_M / 1e6
        for j in np.argsort(-sizes):
            if sizes[j] < 1.0:
                break
            k += 1
            units[comp == j + 1] = k
    polys = polygonize(units, world, simplify_m=45.0)
    county_polys = counties.geoms_utm
    records, geoms = [], []
    for i, key in enumerate(sorted(polys)):
        g = polys[key]
        cidx = int(np.bincount(counties.labels[units == key]).argmax()) - 1
        g = shapely.make_valid(g.intersection(county_polys[cidx]))
        cells = units == key
        water_share = (land.reservoir_labels[cells] > 0).mean() + near_res[cells].mean()
        ridge = float(terrain.ridge_weight[cells].mean())
        kind = "水源涵养" if water_share > 0.25 else ("生物多样性维护" if ridge > 0.35 else "水土保持")
        place = PLACE_NAMES[i % len(PLACE_NAMES)]
        records.append({"unit_id": f"HX-5199-{i + 1:03d}", "name": f"{counties.names[cidx]}{place}{kind}生态保护红线",
                        "type": kind, "county_code": counties.codes[cidx]})
        geoms.append(g)
    raster = rasterize([(g, i + 1) for i, g in enumerate(geoms)], world)
    return records, geoms, raster


def make_function_zones(world: World, terrain: Terrain, land: Landscape, counties: Counties):
    """A partition of the study area into 3 ecological function zones from smoothed terrain and cover."""
    inside = counties.labels > 0
    ridge = ndimage.gaussian_filter(terrain.ridge_weight, 25.0)
    forest = ndimage.gaussian_filter(np.isin(land.lucc, (lcm.FOREST, lcm.SHRUB)).astype("float32"), 25.0)
    res = ndimage.gaussian_filter((land.reservoir_labels > 0).astype("float32"), 30.0)
    zone = np.full(world.shape, 3, dtype=np.int32)                     # 水土保持 by default
    zone[res > np.percentile(res[inside], 80)] = 1                     # 水源涵养 around the reservoirs
    zone[(ridge > 0.35) | (forest > 0.55)] = 2                          # 生物多样性维护 on the ridge
    zone = ndimage.median_filter(zone[::3, ::3], size=11)                 # majority at 90 m
    zone = np.repeat(np.repeat(zone, 3, axis=0), 3, axis=1)[: world.n, : world.n]
    zone[~inside] = 0
    # merge fragments below 8 km² into their surroundings
    for _ in range(3):
        for z in (1, 2, 3):
            comp, nc = ndimage.label(zone == z)
            sizes = ndimage.sum(np.ones_like(comp), comp, range(1, nc + 1)) * RES_M * RES_M / 1e6
            for j in np.flatnonzero(sizes < 8.0):
                cells = comp == j + 1
                ring = ndimage.binary_dilation(cells, iterations=2) & ~cells & (zone > 0)
                if ring.any():
                    zone[cells] = np.bincount(zone[ring]).argmax()
    polys = polygonize(zone, world, simplify_m=90.0)
    outline = shapely.union_all(counties.geoms_utm)
    kinds = {1: ("水源涵养", "东部水库群水源涵养生态功能区"), 2: ("生物多样性维护", "龙台山低山生物多样性维护生态功能区"),
             3: ("水土保持", "丘陵农业区水土保持生态功能区")}
    records, geoms = [], []
    for i, key in enumerate(sorted(polys)):
        g = shapely.make_valid(polys[key].intersection(outline))
        kind, name = kinds[key]
        records.append({"zone_id": f"FZ-5199-{i + 1:02d}", "name": name, "function_type": kind})
        geoms.append(g)
    # the intersection with the outline can leave slivers uncovered near the edge: give them to the largest zone
    rest = outline.difference(shapely.union_all(geoms))
    if not rest.is_empty:
        j = int(np.argmax([g.area for g in geoms]))
        geoms[j] = shapely.make_valid(shapely.union_all([geoms[j], rest]))
    return records, geoms
