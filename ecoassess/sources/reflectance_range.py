"""Surface reflectance outside its physical range is not an observation (issue 18, item 5).

The bounds are data: ``indices/reflectance.yaml`` (−0.2 … 1.6, the range a Landsat C2 L2 product encodes:
SR = DN × 0.0000275 − 0.2 for DN 1 … 65455; USGS LSDS-1619/1618). Every reader passes its scene through
:func:`screen_reflectance`: an observation with any band outside the bounds is taken out of ``clear`` like a
cloud (mask reason :data:`REASON`), so a composite uses the other scenes' clear observations there, and
:func:`scene_quality_table` reports the share of each band outside the bounds, per scene. The counts ride on the
scene's one eager pass (:func:`ecoassess.sources.scene.mask_summaries`), or on the pass that reads the bands for
the composite (:func:`ecoassess.sources.scene.range_count_tasks`).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import pandas as pd

from ecoassess.catalog import data_path, load_yaml
from ecoassess.sources.scene import RANGE_REASON, Scene, mask_summaries, wrap_like

log = logging.getLogger(__name__)

#: the mask reason of an observation with a band outside the physical range (Scene.mask_layers, mask_summary)
REASON = RANGE_REASON


@lru_cache(maxsize=None)
def reflectance_spec() -> dict:
    """``indices/reflectance.yaml``: the physical range of surface reflectance, its tolerance and source."""
    return load_yaml(data_path("indices", "reflectance.yaml"))


def reflectance_range() -> tuple[float, float]:
    """(lower, upper) bounds of valid surface reflectance, unitless (``indices/reflectance.yaml``)."""
    lo, hi = reflectance_spec()["surface_reflectance"]["valid_range"]
    return float(lo), float(hi)


def screen_reflectance(scene: Scene, bounds: tuple[float, float] | None = None) -> Scene:
    """``scene`` with every observation that has a reflectance band outside ``bounds`` (default
    :func:`reflectance_range`, ± the tolerance of ``indices/reflectance.yaml``) taken out of ``clear`` (lazy).

    Adds the mask reason :data:`REASON` (counted in ``mask_summary``) and, per band, the observed cells outside the
    bounds (``scene.range_checks``, counted in ``mask_summary()['outside_range']``). NaN (fill) is never outside.
    """
    spec = reflectance_spec()["surface_reflectance"]
    lo, hi = bounds if bounds is not None else reflectance_range()
    tol = float(spec.get("tolerance", 0.0))
    valid = scene.valid.data
    any_out = None
    for role in scene.roles:
        r = scene.bands[role].data
        out = (r < lo - tol) | (r > hi + tol)
        scene.range_checks[role] = wrap_like(scene.grid, out & valid, name=f"{role}_out_of_range")
        any_out = out if any_out is None else any_out | out
    if any_out is None:
        return scene
    scene.mask_layers[REASON] = wrap_like(scene.grid, any_out & valid, name=REASON)
    if scene.clear_before_range is None:  # screened twice: the mask-only clear stays the first one
        scene.clear_before_range = scene.clear
    scene.clear = wrap_like(scene.grid, scene.clear.data & ~any_out, name="clear")
    scene.metadata["reflectance_range"] = [lo, hi]
    return scene


def scene_quality_table(scenes, label: str = "") -> pd.DataFrame:
    """One row per scene and reflectance band: observed cells, cells outside the physical range and their share.

    Columns: ``input`` (``label``, e.g. ``imagery.2024``), ``scene``, ``date``, ``sensor``, ``band``,
    ``valid_cells``, ``outside_cells``, ``share_outside`` (of the observed cells; NaN when none is observed),
    ``lower``, ``upper`` (the bounds). One pass over the scenes not yet summarised (:func:`mask_summaries`)."""
    rows = []
    for scene, summary in zip(scenes, mask_summaries(scenes)):
        lo, hi = scene.metadata.get("reflectance_range") or reflectance_range()
        n = summary["valid"]
        for band, k in summary.get("outside_range", {}).items():
            rows.append({"input": label, "scene": scene.id, "date": scene.date.isoformat(), "sensor": scene.sensor,
                         "band": band, "valid_cells": n, "outside_cells": k,
                         "share_outside": k / n if n else float("nan"), "lower": lo, "upper": hi})
    columns = ["input", "scene", "date", "sensor", "band", "valid_cells", "outside_cells", "share_outside", "lower",
               "upper"]
    return pd.DataFrame(rows, columns=columns)


def out_of_range_warnings(table: pd.DataFrame) -> list[str]:
    """One sentence per scene with reflectance outside the bounds: its bands and shares (for the log and the
    manifest's ``warnings``)."""
    notes = []
    hit = table[table["outside_cells"] > 0]
    for (label, scene), rows in hit.groupby(["input", "scene"], sort=False):
        first = rows.iloc[0]
        shares = ", ".join(f"{r.band} {r.share_outside:.2%}" for r in rows.itertuples())
        notes.append(f"{label + ': ' if label else ''}scene {scene} ({first['date']}) has surface reflectance outside "
                     f"{first['lower']:g} … {first['upper']:g} ({shares} of its observed cells); those observations "
                     "are masked (reflectance_out_of_range)")
    return notes
