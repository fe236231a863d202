"""Planted land-cover changes 2023 → 2024 and their truth polygons.

Town growth on the edge of county seats, a quarry inside a red-line unit and one just outside, a new road
that enters a red-line unit, reforestation of steep dry land, and grassland ploughed to dry land. These are the
only differences between the two land-cover years.
"""

from __future__ import annotations

import numpy as np
import shapely
from rasterio import features
from scipy import ndimage
from shapely.geometry import LineString

from ecoassess.sample import landcover as lcm
from ecoassess.sample.landcover import Landscape
from ecoassess.sample.noise import fractal
from ecoassess.sample.terrain import Terrain
from ecoassess.sample.vectors import polygonize
from ecoassess.sample.world import RES_M, World


def _blob(shape, r0, c0, radius_px, noise):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    d = np.hypot(rows - r0, cols - c0) / radius_px
    return d * (1.0 + 0.3 * np.clip(noise, -1.5, 1.5)) < 1.0


def plant_changes(world: World, terrain: Terrain, land: Landscape, counties, redline_raster: np.ndarray):
    """Return (lucc_2024, truth records, truth geometries in UTM, per-change pixel masks)."""
    rng = world.rng("changes")
    shape = world.shape
    lc0 = land.lucc
    lc1 = lc0.copy()
    inside = counties.labels > 0
    nz = fractal(rng, shape, beta=2.8)
    in_red = redline_raster > 0
    depth_in = ndimage.distance_transform_edt(in_red) * RES_M          # metres inside a unit
    dist_out = ndimage.distance_transform_edt(~in_red) * RES_M         # metres outside all units
    clear_out = dist_out >= 75.0          # clearly outside: cell edges cannot touch a (simplified) unit
    taken = np.zeros(shape, dtype=bool)
    changes = []                                                       # (type, mask, to_class)
    safe = ndimage.binary_erosion(inside, iterations=int(600 / RES_M))

    def add(kind, mask, to_class):
        mask = mask & ~taken & inside & ~np.isin(lc0, lcm.WATER) & (lc0 != to_class)
        if mask.sum() < 4:
            return False
        taken[ndimage.binary_dilation(mask, iterations=3)] = True
        lc1[mask] = to_class
        changes.append((kind, mask, to_class))
        return True

    for _ in range(world.scale):
        # quarries: one deep inside a red-line unit, one 100–400 m outside any unit, both on wooded slopes
        wooded = np.isin(lc0, (lcm.FOREST, lcm.SHRUB, lcm.OPEN_FOREST)) & (terrain.slope_deg > 8) & safe & ~taken
        for in_unit, where in ((True, wooded & (depth_in > 400)), (False, wooded & (dist_out > 200) & (dist_out < 420))):
            rr, cc = np.nonzero(where)
            if rr.size:
                j = int(rng.integers(rr.size))
                m = _blob(shape, rr[j], cc[j], rng.uniform(140, 190) / RES_M, nz)
                add("quarry", m & (in_red if in_unit else clear_out), lcm.CONSTRUCTION)
        # a new road from a township into a red-line unit
        towns = [t for t in land.towns if not t.seat]
        rr, cc = np.nonzero((depth_in > 600) & safe & ~taken)
        if towns and rr.size:
            t = towns[int(rng.integers(len(towns)))]
            d = np.hypot(rr - t.row, cc - t.col)
            j = int(np.argsort(d)[min(5, d.size - 1)])
            p0, p1 = np.array(world.xy(t.row, t.col)), np.array(world.xy(rr[j], cc[j]))
            mid = (p0 + p1) / 2 + rng.normal(0, 250, 2)
            line = LineString([tuple(p0), tuple(mid), tuple(p1)])
            m = features.rasterize([(line, 1)], out_shape=shape, transform=world.transform(), dtype="uint8") > 0
            add("road", m & ~np.isin(lc0, (lcm.URBAN,)), lcm.CONSTRUCTION)
        # town growth on one side of county seats
        for t in [t for t in land.towns if t.seat][:2]:
            ang = rng.uniform(0, 2 * np.pi)
            r0 = t.row - np.sin(ang) * t.radius_m / RES_M
            c0 = t.col + np.cos(ang) * t.radius_m / RES_M
            m = _blob(shape, r0, c0, rng.uniform(280, 380) / RES_M, nz) & (terrain.slope_deg < 15)
            add("town_growth", m & clear_out & (lc0 != lcm.URBAN), lcm.URBAN)
        # reforestation (退耕还林) of the steepest dry-land patches, outside the red line
        steep_dry = (lc0 == lcm.DRY) & clear_out & safe & ~taken
        score = ndimage.gaussian_filter(terrain.slope_deg * steep_dry, 3)
        for _k in range(2):
            score_k = np.where(~taken & steep_dry, score, 0)
            r, c = np.unravel_index(int(np.argmax(score_k)), shape)
            m = _blob(shape, r, c, rng.uniform(200, 260) / RES_M, nz) & (lc0 == lcm.DRY)
            add("reforestation", m, lcm.FOREST)
        # grassland ploughed to dry land, outside the red line
        grass = np.isin(lc0, (lcm.GRASS_HIGH, lcm.GRASS_MID, lcm.GRASS_LOW)) & clear_out & safe
        comp, nc = ndimage.label(grass)
        if nc:
            sizes = ndimage.sum(grass, comp, range(1, nc + 1))
            for j in np.argsort(-sizes)[: 2]:
                cells = comp == j + 1
                if (cells & taken).any():
                    continue
                r, c = [int(v) for v in ndimage.center_of_mass(cells)]
                m = cells & _blob(shape, r, c, 12, nz)
                if m.sum() < 20:
                    m = cells
                add("grassland_to_cropland", m, lcm.DRY)

    labels = np.zeros(shape, dtype=np.int32)
    for i, (_, m, _) in enumerate(changes, start=1):
        labels[m] = i
    polys = polygonize(labels, world)
    records, geoms = [], []
    for i, (kind, m, to_class) in enumerate(changes, start=1):
        g = polys[i]
        records.append({"change_id": f"CHG-{i:03d}", "change_type": kind,
                        "from_class": int(np.bincount(lc0[m]).argmax()), "to_class": int(to_class),
                        "area_m2": float(m.sum() * RES_M * RES_M), "inside_redline": bool((m & in_red).any())})
        geoms.append(shapely.make_valid(g))
    return lc1, records, geoms, changes
