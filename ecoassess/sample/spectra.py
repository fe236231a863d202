"""Surface reflectance model: each class is a mix of a green-canopy spectrum and a background spectrum, with a
vegetation fraction that changes over the season (crops green up in July, paddies are flooded in May).

Values are typical Sentinel-2 L2A surface reflectances (blue, green, red, NIR, SWIR1.6, SWIR2.2) of the
named surfaces in summer; the Landsat OLI bands reuse them (coastal ≈ blue).
"""

from __future__ import annotations

import numpy as np

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")

CANOPY = np.array([0.025, 0.055, 0.028, 0.40, 0.17, 0.075])
BACKGROUND = {
    "soil": np.array([0.080, 0.100, 0.130, 0.200, 0.290, 0.250]),     # purple (red-bed) soil
    "litter": np.array([0.060, 0.080, 0.100, 0.220, 0.300, 0.220]),   # dry grass / stubble
    "flooded": np.array([0.060, 0.075, 0.060, 0.045, 0.020, 0.012]),  # paddy water
    "river": np.array([0.060, 0.080, 0.070, 0.040, 0.015, 0.010]),    # turbid river
    "lake": np.array([0.045, 0.055, 0.035, 0.020, 0.010, 0.007]),     # reservoir water
    "urban": np.array([0.100, 0.110, 0.120, 0.150, 0.200, 0.190]),
    "rock": np.array([0.130, 0.150, 0.170, 0.220, 0.310, 0.260]),     # sandstone, quarry faces
}
CLOUD = np.array([0.50, 0.49, 0.48, 0.52, 0.36, 0.26])

#: class -> (background per season May/Jul/Sep, vegetation fraction per season, brightness)
CLASS_MODEL = {
    11: (("flooded", "flooded", "litter"), (0.22, 0.88, 0.55), 1.00),
    12: (("soil", "soil", "soil"), (0.40, 0.78, 0.50), 1.00),
    21: (("litter",) * 3, (0.92, 0.95, 0.93), 0.80),
    22: (("litter",) * 3, (0.78, 0.84, 0.80), 0.90),
    23: (("litter",) * 3, (0.62, 0.70, 0.66), 0.92),
    24: (("soil",) * 3, (0.66, 0.76, 0.72), 0.95),
    31: (("litter",) * 3, (0.68, 0.78, 0.70), 1.00),
    32: (("litter",) * 3, (0.42, 0.52, 0.45), 1.00),
    33: (("litter",) * 3, (0.15, 0.22, 0.18), 1.00),
    41: (("river",) * 3, (0.0, 0.0, 0.0), 1.00),
    42: (("lake",) * 3, (0.0, 0.0, 0.0), 1.00),
    43: (("lake",) * 3, (0.0, 0.0, 0.0), 1.00),
    51: (("urban",) * 3, (0.12, 0.14, 0.12), 1.00),
    52: (("urban",) * 3, (0.35, 0.40, 0.38), 0.95),
    53: (("rock",) * 3, (0.02, 0.03, 0.02), 1.00),
    65: (("soil",) * 3, (0.05, 0.07, 0.05), 1.00),
    66: (("rock",) * 3, (0.03, 0.04, 0.03), 1.00),
}
#: rendering-only class (not a CAS/LUCC code): dry land after harvest, stubble on bare soil — the land cover is
#: still 12 旱地; the sample shows one field so in the assessment year (a seasonal-only difference)
HARVESTED_DRY = 112
CLASS_MODEL[HARVESTED_DRY] = (("soil",) * 3, (0.06, 0.08, 0.06), 1.00)
VEGETATED = {11, 12, 21, 22, 23, 24, 31, 32, 52}
WATER = {41, 42, 43}


def season_position(month: int, day: int) -> float:
    """0 = late May, 1 = mid July, 2 = mid September (clamped), for interpolating the class model."""
    doy = (month - 1) * 30.4 + day
    return float(np.clip(np.interp(doy, [140.0, 195.0, 258.0], [0.0, 1.0, 2.0]), 0.0, 2.0))


def class_tables(season: float):
    """Per-class lookup tables (256 entries): vegetation fraction, brightness, background spectra (256, 6)."""
    fv = np.zeros(256, dtype="float32")
    bright = np.ones(256, dtype="float32")
    bg = np.zeros((256, 6), dtype="float32")
    i0 = int(np.floor(min(season, 1.999)))
    w = season - i0
    for code, (bgs, fvs, b) in CLASS_MODEL.items():
        fv[code] = (1 - w) * fvs[i0] + w * fvs[i0 + 1]
        bg[code] = (1 - w) * BACKGROUND[bgs[i0]] + w * BACKGROUND[bgs[i0 + 1]]
        bright[code] = b
    return fv, bright, bg


def surface_reflectance(classes: np.ndarray, season: float, greenness: np.ndarray, brightness: np.ndarray,
                        illumination: np.ndarray):
    """Six reflectance bands (float32) for a class raster; noise fields are zero-mean/unit-std."""
    fv_t, br_t, bg_t = class_tables(season)
    veg = np.isin(classes, list(VEGETATED | {33, 51, 53, 65, 66, HARVESTED_DRY}))
    fv = np.clip(fv_t[classes] + np.where(veg, 0.07 * greenness, 0.0), 0.0, 1.0)
    b = br_t[classes] * (1.0 + 0.05 * brightness)
    water = np.isin(classes, list(WATER))
    illum = np.where(water, 1.0, illumination)
    out = []
    for k in range(6):
        refl = (fv * CANOPY[k] + (1.0 - fv) * bg_t[classes, k]) * b * illum
        out.append(refl.astype("float32"))
    return out
