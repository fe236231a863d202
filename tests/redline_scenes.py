"""Synthetic two-date scenes for the red-line detection tests (tests/test_redline_detect.py).

A 100 × 100 grid of 30 m cells in CGCS2000 / China Albers. Reflectance per class = a linear mix of a canopy and a
background spectrum (ecoassess/sample/spectra.py, typical Sentinel-2 L2A summer values) with per-pixel cover and
band noise, so that the two dates differ everywhere a little (noise) and only the planted cells a lot.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import xarray as xr
from shapely.geometry import Polygon, box

from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.sample.spectra import BACKGROUND, CANOPY

RES = 30.0
N = 100
X0, Y1 = 500_000.0, 3_500_000.0
ROLES = ("blue", "green", "red", "nir", "swir1", "swir2")

#: class -> (background, vegetation cover, brightness); "harvest" is cropland after harvest (cover 0.10)
MODEL = {21: ("litter", 0.93, 0.80), 31: ("litter", 0.70, 1.0), 12: ("soil", 0.78, 1.0), 51: ("urban", 0.12, 1.0),
         53: ("rock", 0.03, 1.0), 65: ("soil", 0.05, 1.0), 42: ("lake", 0.0, 1.0), "harvest": ("litter", 0.10, 1.0)}

GRID = AnalysisGrid(china_albers_crs(), __import__("affine").Affine(RES, 0, X0, 0, -RES, Y1), N, N)


def cells(r0, r1, c0, c1):
    """Polygon of the cells rows r0..r1-1, cols c0..c1-1 (grid coordinates)."""
    return box(X0 + c0 * RES, Y1 - r1 * RES, X0 + c1 * RES, Y1 - r0 * RES)


def xy(col, row):
    return (X0 + col * RES, Y1 - row * RES)


def base_landcover() -> np.ndarray:
    lc = np.full((N, N), 21, dtype="int32")           # forest
    lc[5:46, 5:31] = 12                                # cropland inside unit A
    lc[88:98, 25:51] = 12                              # cropland across A's edge
    lc[70:86, 20:36] = 51                              # a town inside A
    lc[70:86, 36:46] = 31                              # grassland beside it
    lc[88:98, 5:16] = 42                               # a lake
    lc[2:7, 80:91] = 65                                # bare soil
    return lc


#: planted changes: name -> (rows, cols, to-class); truth areas in m² are cells × 900
PLANTED = {
    "quarry": ((slice(10, 18), slice(35, 43)), 53),           # 8×8 = 64 cells inside A
    "road": ((slice(55, 56), slice(5, 46)), 53),              # 1×41 cells inside A
    "town_growth": ((slice(70, 86), slice(36, 41)), 51),      # 16×5 beside the town
    "straddle": ((slice(25, 35), slice(46, 56)), 53),         # 10×10, cols 46–49 inside A, 50–55 in the buffer
    "at_mmu": ((slice(40, 43), slice(60, 63)), 53),           # 3×3 = 9 cells = 8100 m² (the default MMU)
    "below_mmu": ((slice(45, 47), slice(60, 64)), 53),        # 2×4 = 8 cells = 7200 m²
    "diagonal": ((slice(58, 68), slice(72, 82)), 53),         # 10×10 across unit B's diagonal edge
}


def after_landcover(names=None) -> np.ndarray:
    lc = base_landcover()
    for name, (where, to) in PLANTED.items():
        if names is None or name in names:
            lc[where] = to
    return lc


def reflectance(lc: np.ndarray, rng, *, harvest: bool = False) -> dict:
    """Six bands (float32) for a class raster; ``harvest``: cropland cells at harvest (cover 0.10)."""
    cover = np.zeros(lc.shape)
    bright = np.ones(lc.shape)
    bg = np.zeros(lc.shape + (6,))
    for code, (b, fv, br) in MODEL.items():
        if code == "harvest":
            continue
        key = "harvest" if (harvest and code == 12) else code
        b, fv, br = MODEL[key]
        m = lc == code
        cover[m], bright[m], bg[m] = fv, br, BACKGROUND[b]
    veg = cover > 0
    cover = np.clip(cover + np.where(veg, rng.normal(0, 0.02, lc.shape), 0), 0, 1)
    texture = 1 + rng.normal(0, 0.03, lc.shape)        # illumination / texture: same factor in every band
    out = {}
    for k, role in enumerate(ROLES):
        v = bright * texture * (cover * CANOPY[k] + (1 - cover) * bg[..., k]) + rng.normal(0, 0.003, lc.shape)
        out[role] = v.astype("float32")
    return out


def dataset(bands: dict, *, clear=None, period=None, sensor="sentinel2_l2a") -> xr.Dataset:
    ds = xr.Dataset({r: GRID.wrap(v) for r, v in bands.items()})
    if clear is not None:
        ds["clear"] = GRID.wrap(clear)
    ds.attrs.update({"period": period, "sensor": sensor})
    return ds


def landcover_array(lc: np.ndarray) -> xr.DataArray:
    return GRID.wrap(lc.astype("uint8"), name="land_cover")


def units() -> gpd.GeoDataFrame:
    """Unit A: cols 0–49, all rows (edges on cell edges). Unit B: a polygon with a diagonal edge on the right."""
    a = cells(0, 100, 0, 50)
    b = Polygon([xy(70, 40), xy(100, 40), xy(100, 100), xy(95, 100)])   # left edge from (70, 40) to (95, 100)
    return gpd.GeoDataFrame({"unit_id": ["HX-A", "HX-B"], "name": ["白云岭水源涵养生态保护红线", "青峰岭生物多样性维护生态保护红线"]},
                            geometry=[a, b], crs=GRID.crs.to_wkt())


def shift_half_pixel(bands: dict) -> dict:
    """The scene resampled at a half-cell offset in x and y (bilinear: the mean of the four cells around each
    shifted centre), as a second date misregistered by half a pixel would be."""
    out = {}
    for r, v in bands.items():
        p = np.pad(v.astype("float64"), ((1, 0), (1, 0)), mode="edge")
        out[r] = (0.25 * (p[1:, 1:] + p[:-1, 1:] + p[1:, :-1] + p[:-1, :-1])).astype("float32")
    return out
