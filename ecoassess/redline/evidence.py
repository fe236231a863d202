"""Per-pixel change evidence between two dates on one grid: robust standardised index differences, a
misregistration-tolerant difference and hysteresis regions (thresholds: ``indices/redline_detection.yaml``).

* z = (Δ − median Δ) / σ, σ = 1.4826 × MAD of Δ over stable land (Rousseeuw & Croux 1993): relative, so a scene-wide
  shift of an index between the dates (season, sensor, atmosphere, band-specific gains) is not a change; the indices
  themselves (NDVI, BSI, NDBI, MNDWI) are ratios of band differences and do not move under a gain common to all bands.
* The tolerant difference compares each after-pixel with the min/max of the before 3×3 neighbourhood: an after
  scene shifted by up to a pixel resamples values from that neighbourhood, so a moved edge lies between the
  neighbours' values and gives no evidence there, while a new road one pixel wide still does (its after value is
  below every before neighbour). (Also comparing each before-pixel with the after neighbourhood, the symmetric
  test, would erase one-pixel-wide changes: the unchanged after neighbours of a new road explain its before
  value.)
* A change region (hysteresis, Canny 1986) = the 8-connected pixels with |z| ≥ grow_z on the tolerant difference
  holding at least one seed with |z| ≥ seed_z on it (or a land-cover transition seed), plus a one-cell fringe of
  pixels with |z| ≥ grow_z on the plain difference: the fringe restores the first row of a change that grows out of
  a like surface (a town's new edge, whose before neighbourhood holds town), while a whole town outline moved by
  misregistration, which touches no region, stays out.

Everything here is numpy on one in-memory window; NaN = not observed in either date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import ndimage

from ecoassess.catalog import data_path, load_yaml

#: index of the catalog -> the evidence name used in signals (ndvi_loss, bsi_gain, ...)
EVIDENCE_NAMES = {"NDVI": "ndvi", "BSI": "bsi", "NDBI": "ndbi", "MNDWI": "water"}
EIGHT = np.ones((3, 3), dtype=bool)


@lru_cache(maxsize=4)
def load_settings(path: str | None = None) -> dict:
    """The thresholds of ``indices/redline_detection.yaml`` (or a copy of it at ``path``)."""
    return load_yaml(path or data_path("indices", "redline_detection.yaml"))


def robust_location_scale(delta: np.ndarray, valid: np.ndarray, *, sigma_floor: float, mad_to_sigma: float = 1.4826,
                          trim_z: float = 3.0) -> tuple[float, float]:
    """Median and σ = ``mad_to_sigma`` × MAD of ``delta`` over ``valid`` pixels, re-estimated once over the stable
    pixels (|z| < ``trim_z`` in the first estimate); σ is at least ``sigma_floor``."""
    values = delta[valid]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, float(sigma_floor)
    med = float(np.median(values))
    sigma = max(mad_to_sigma * float(np.median(np.abs(values - med))), sigma_floor)
    stable = values[np.abs(values - med) < trim_z * sigma]
    if stable.size:
        med = float(np.median(stable))
        sigma = max(mad_to_sigma * float(np.median(np.abs(stable - med))), sigma_floor)
    return med, sigma


def _nan_filter(values: np.ndarray, size: int, kind: str) -> np.ndarray:
    """3×3 (``size``) minimum or maximum ignoring NaN neighbours (NaN only where every neighbour is NaN)."""
    fill = np.inf if kind == "min" else -np.inf
    filled = np.where(np.isfinite(values), values, fill)
    func = ndimage.minimum_filter if kind == "min" else ndimage.maximum_filter
    out = func(filled, size=size, mode="nearest")
    return np.where(np.isfinite(out), out, np.nan)


def tolerant_differences(before: np.ndarray, after: np.ndarray, size: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(decrease, increase): the after − before difference that no shift within the ``size`` neighbourhood explains:
    decrease = after − min₃(before) (negative only where the after value is below every before neighbour),
    increase = after − max₃(before)."""
    return after - _nan_filter(before, size, "min"), after - _nan_filter(before, size, "max")


def hysteresis(grow: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The 8-connected components of ``grow`` that contain at least one ``seeds`` pixel."""
    labels, n = ndimage.label(grow, structure=EIGHT)
    if n == 0:
        return np.zeros(grow.shape, dtype=bool)
    keep = np.zeros(n + 1, dtype=bool)
    keep[np.unique(labels[seeds & grow])] = True
    keep[0] = False
    return keep[labels]


@dataclass
class Evidence:
    """Standardised differences ``z`` (per index), seeds and the hysteresis signal masks (``ndvi_loss``, ...)."""

    z: dict[str, np.ndarray]
    seeds: dict[str, np.ndarray]
    signals: dict[str, np.ndarray]
    stats: dict[str, dict] = field(default_factory=dict)


def change_evidence(before: dict[str, np.ndarray], after: dict[str, np.ndarray], observed: np.ndarray, *,
                    settings: dict | None = None, extra_seeds: np.ndarray | None = None) -> Evidence:
    """Evidence of change per index of ``before``/``after`` (catalog names: NDVI, BSI, NDBI, MNDWI; NaN where not
    observed), over ``observed`` pixels. ``extra_seeds`` (e.g. land-cover transitions) seed regions like the
    tolerant difference does. ``water_gain`` needs MNDWI ≤ ``water_mndwi`` before and above it after (Xu 2006),
    ``water_loss`` the reverse; cells that are water in both dates give no other evidence (see the YAML)."""
    s = settings or load_settings()
    rob, hys = s["robust"], s["hysteresis"]
    grow_z, seed_z, size = float(hys["grow_z"]), float(hys["seed_z"]), int(hys["neighbourhood_px"])
    z, seeds, signals, stats = {}, {}, {}, {}
    water_mndwi = float(s["water_mndwi"])
    stable_water = None
    if "MNDWI" in before:
        with np.errstate(invalid="ignore"):
            stable_water = (before["MNDWI"] > water_mndwi) & (after["MNDWI"] > water_mndwi)
    for name, ev in EVIDENCE_NAMES.items():
        if name not in before:
            continue
        b = np.where(observed, before[name], np.nan)
        a = np.where(observed, after[name], np.nan)
        delta = a - b
        med, sigma = robust_location_scale(delta, observed, sigma_floor=float(rob["sigma_floor"][name]),
                                           mad_to_sigma=float(rob["mad_to_sigma"]), trim_z=float(rob["trim_z"]))
        stats[name] = {"median_delta": med, "sigma_delta": sigma}
        zz = (delta - med) / sigma
        dec, inc = tolerant_differences(b, a, size)
        z[name] = zz
        for sign, tol in (("loss", dec), ("gain", inc)):
            zt = (tol - med) / sigma
            if sign == "loss":
                plain, grow, seed = zz <= -grow_z, zt <= -grow_z, zt <= -seed_z
            else:
                plain, grow, seed = zz >= grow_z, zt >= grow_z, zt >= seed_z
            allowed = observed.copy()
            if name == "MNDWI":  # open water appears (gain) or disappears (loss): the class changes (Xu 2006)
                with np.errstate(invalid="ignore"):
                    wb, wa = b > water_mndwi, a > water_mndwi
                allowed &= (wa & ~wb) if sign == "gain" else (wb & ~wa)
            elif stable_water is not None:
                allowed &= ~stable_water
            plain &= allowed
            grow &= allowed
            seed &= grow
            seeds[f"{ev}_{sign}"] = seed
            all_seeds = seed if extra_seeds is None else seed | (extra_seeds & plain)
            core = hysteresis(grow | (extra_seeds & plain if extra_seeds is not None else False), all_seeds)
            signals[f"{ev}_{sign}"] = core | (plain & ndimage.binary_dilation(core, structure=EIGHT))
    return Evidence(z, seeds, signals, stats)
