"""Planted land-cover changes 2023 → 2024 and their truth polygons.

Town growth on the edge of county seats, a quarry inside a red-line unit and one just outside, a new road
that enters a red-line unit, reforestation of steep dry land, and grassland ploughed to dry land. These are the
only differences between the two land-cover years.

Hard cases for the red-line stage (issue 19): a quarry straddling a unit boundary, a small quarry just above the
stage's default minimum mapping unit (12 cells = 10 800 m² against 9 cells = 8100 m²) and a small one just below it
(6 cells), persistent cloud over half of the quarry inside a unit in every scene of the assessment year
(:func:`persistent_cloud`), and a dry-land field near a unit that is harvested in the assessment year's scenes but
unchanged in land cover (:func:`seasonal_field`: a difference that must not become a patch).
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

    def add(kind, mask, to_class, min_cells=4):
        mask = mask & ~taken & inside & ~np.isin(lc0, lcm.WATER) & (lc0 != to_class)
        if mask.sum() < min_cells:
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
        # a quarry straddling a unit boundary: the red-line stage splits it into its inside and buffer parts
        wooded = np.isin(lc0, (lcm.FOREST, lcm.SHRUB, lcm.OPEN_FOREST)) & safe & ~taken
        near_wooded = ndimage.binary_erosion(wooded, iterations=int(150 / RES_M))
        red_share = ndimage.uniform_filter(in_red.astype("float32"), size=9)     # within ≈ 130 m
        rr, cc = np.nonzero(near_wooded & in_red & (red_share > 0.4) & (red_share < 0.6))
        if rr.size:
            j = int(rng.integers(rr.size))
            add("quarry_straddling", _blob(shape, rr[j], cc[j], rng.uniform(110, 140) / RES_M, nz), lcm.CONSTRUCTION)
        # small quarries deep inside units: 3 × 4 cells (above the 9-cell MMU) and 2 × 3 cells (below it)
        for kind, (h, w) in (("small_quarry", (3, 4)), ("tiny_quarry", (2, 3))):
            wooded = np.isin(lc0, (lcm.FOREST, lcm.SHRUB, lcm.OPEN_FOREST)) & ~taken
            ok = ndimage.binary_erosion(wooded & (depth_in > 300) & safe, iterations=3)
            rr, cc = np.nonzero(ok)
            if rr.size:
                j = int(rng.integers(rr.size))
                m = np.zeros(shape, dtype=bool)
                m[rr[j]: rr[j] + h, cc[j]: cc[j] + w] = True
                add(kind, m, lcm.CONSTRUCTION, min_cells=h * w)

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


def persistent_cloud(changes, redline_raster: np.ndarray) -> np.ndarray:
    """Cloud over the west half of the first quarry inside a red-line unit, in every scene of the assessment year.

    That part of the change is never observed after it happened: the red-line stage must leave it out of the patch
    and count it as not observable, never draw it from the cloud."""
    shape = changes[0][1].shape
    cloud = np.zeros(shape, dtype=bool)
    for kind, m, _ in changes:
        if kind == "quarry" and (m & (redline_raster > 0)).any():
            rows, cols = np.nonzero(m)
            split = int(np.median(cols))
            half = np.zeros(shape, dtype=bool)
            half[rows.min(): rows.max() + 1, : split] = True
            cloud = ndimage.binary_dilation(m, iterations=2) & half
            break
    return cloud


def seasonal_field(world: World, lucc: np.ndarray, redline_raster: np.ndarray, changes) -> np.ndarray:
    """A dry-land field (≈ 8 ha) within 300 m of a red-line unit, away from every planted change.

    Its land cover does not change; the assessment year's scenes show it harvested (bare soil) instead of growing:
    a seasonal-only difference that must not become a human-activity patch."""
    rng = world.rng("seasonal-field")
    taken = np.zeros(lucc.shape, dtype=bool)
    for _, m, _ in changes:
        taken |= m
    taken = ndimage.binary_dilation(taken, iterations=10)
    dist_out = ndimage.distance_transform_edt(redline_raster == 0) * RES_M
    dry = (lucc == lcm.DRY) & ~taken
    comp, nc = ndimage.label(dry)
    if nc == 0:
        return np.zeros(lucc.shape, dtype=bool)
    near = ndimage.maximum(dist_out < 300.0, comp, range(1, nc + 1)).astype(bool)
    sizes = ndimage.sum(dry, comp, range(1, nc + 1)) * near
    j = int(np.argmax(sizes))
    cells = comp == j + 1
    # centred on the field's cell nearest its centre of mass (a curved field's centre of mass can lie outside it)
    rr, cc = np.nonzero(cells)
    r0, c0 = ndimage.center_of_mass(cells)
    k = int(np.argmin((rr - r0) ** 2 + (cc - c0) ** 2))
    return cells & _blob(lucc.shape, rr[k], cc[k], 160 / RES_M, fractal(rng, lucc.shape, beta=2.8))
