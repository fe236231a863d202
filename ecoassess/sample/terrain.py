"""DEM of Sichuan-basin red-bed hills: a NNE–SSW anticline ridge, terraced hills and flat-floored valleys."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ecoassess.sample import hydrology
from ecoassess.sample.noise import fractal, smoothstep
from ecoassess.sample.world import RES_M, World

#: Upstream area (km²) from which a cell is a valley-floor channel.
VALLEY_KM2 = 0.25


@dataclass
class Terrain:
    dem_m: np.ndarray           # float32, metres
    down: np.ndarray            # flat index of the downstream cell (-1 = leaves the grid)
    order: np.ndarray           # flat indices, downstream cells first
    acc_cells: np.ndarray       # 2-D upstream cell count incl. self
    slope_deg: np.ndarray
    aspect_deg: np.ndarray      # clockwise from north, direction the slope faces
    hand_m: np.ndarray          # height above the nearest valley-floor channel cell
    ridge_weight: np.ndarray    # 0..1, how much of the anticline ridge a cell is on

    @property
    def upstream_km2(self) -> np.ndarray:
        return self.acc_cells * (RES_M * RES_M) / 1e6


def slope_aspect(dem: np.ndarray, res_m: float = RES_M):
    """Slope (degrees) and aspect (degrees clockwise from north, facing direction) by Horn's method."""
    p = np.pad(dem.astype("float64"), 1, mode="edge")
    a, b, c = p[:-2, :-2], p[:-2, 1:-1], p[:-2, 2:]
    d, f = p[1:-1, :-2], p[1:-1, 2:]
    g, h, i = p[2:, :-2], p[2:, 1:-1], p[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * res_m)      # towards east
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * res_m)      # towards south
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    aspect = (np.degrees(np.arctan2(-dzdx, dzdy)) + 360.0) % 360.0
    return slope.astype("float32"), aspect.astype("float32")


def hillshade(slope_deg, aspect_deg, sun_azimuth_deg: float, sun_elevation_deg: float) -> np.ndarray:
    """cos(incidence angle) of the sun on each cell (0 in self-shadow)."""
    zen = np.radians(90.0 - sun_elevation_deg)
    s = np.radians(slope_deg)
    rel = np.radians(sun_azimuth_deg - aspect_deg)
    cos_i = np.cos(zen) * np.cos(s) + np.sin(zen) * np.sin(s) * np.cos(rel)
    return np.clip(cos_i, 0.0, 1.0).astype("float32")


def make_terrain(world: World) -> Terrain:
    """Build the DEM (elevations ~255–790 m) and its drainage."""
    rng = world.rng("terrain")
    n = world.n
    km = n * RES_M / 1000.0
    rows, cols = np.indices(world.shape, dtype="float32")
    u, v = cols / n, rows / n                      # 0..1 west→east, north→south
    tilt = 90.0 * (1.0 - 0.55 * u - 0.45 * v)       # the basin floor drops to the south-east
    wobble = 0.04 * fractal(rng, (n, 1), beta=3.0)[:, 0][:, None]
    axis = 0.24 + 0.12 * (1.0 - v) + wobble          # anticline axis, NNE–SSW
    ridge_w = np.exp(-((np.abs(u - axis) * km) / 2.2) ** 2) * (0.75 + 0.25 * smoothstep(1.2 - v))
    hills = 75.0 * fractal(rng, world.shape, beta=3.3, cutoff_px=12000.0 / RES_M)
    detail = 9.0 * fractal(rng, world.shape, beta=2.3)
    z0 = ndimage.gaussian_filter(300.0 + tilt + 330.0 * ridge_w + hills + detail, 1.0)

    # drainage of the rough surface (routed at 60 m for speed), breached so channels descend monotonically
    zc0 = z0.reshape(n // 2, 2, n // 2, 2).mean(axis=(1, 3))
    down0, order0 = hydrology.flow_tree(zc0)
    up0 = (hydrology.accumulate(down0, order0) * (4 * RES_M * RES_M) / 1e6).reshape(zc0.shape)
    zch0 = hydrology.breach(zc0, down0, order0).reshape(zc0.shape) - 5.0 * np.log1p(up0)
    zch0 = hydrology.breach(zch0, down0, order0, drop=0.04).reshape(zc0.shape)
    up_km2 = np.zeros(world.shape)
    up_km2[::2, ::2] = up0                       # channels as 30 m lines, one cell wide
    zch = np.repeat(np.repeat(zch0, 2, axis=0), 2, axis=1)
    valley = up_km2 >= VALLEY_KM2
    dist_px, (ir, ic) = ndimage.distance_transform_edt(~valley, return_indices=True)
    zc = zch[ir, ic]
    floor_px = 1.0 + 2.0 * np.sqrt(np.clip(up_km2[ir, ic], 0, 400) / 4.0)   # wider floors on big rivers
    rel = np.maximum(z0 - zc, 0.0)
    step = 22.0                                           # red-bed sandstone terraces
    terr = np.floor(rel / step) * step + step * smoothstep((rel % step) / step * 1.6 - 0.3)
    rel = 0.55 * rel + 0.45 * terr
    z = zc + rel * smoothstep((dist_px - floor_px) / 10.0) + 0.5 * np.minimum(dist_px, floor_px)
    z = ndimage.gaussian_filter(z + 1.2 * fractal(rng, world.shape, beta=2.0), 0.7)
    lo, hi = np.percentile(z, [0.1, 99.9])
    dem = (255.0 + (z - lo) * (790.0 - 255.0) / (hi - lo)).astype("float32")

    down, order = hydrology.flow_tree(dem)
    acc = hydrology.accumulate(down, order).reshape(dem.shape)
    slope, aspect = slope_aspect(dem)
    vf = acc * (RES_M * RES_M) / 1e6 >= VALLEY_KM2
    _, (ir, ic) = ndimage.distance_transform_edt(~vf, return_indices=True)
    hand = np.maximum(dem - dem[ir, ic], 0.0).astype("float32")
    return Terrain(dem, down, order, acc, slope, aspect, hand, ridge_w.astype("float32"))
