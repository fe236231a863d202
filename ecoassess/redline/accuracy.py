"""Patch-level accuracy of red-line patches against planted / reference changes (issue 19 part 7).

Definitions (all areas in the patches' equal-area CRS):

* *region*: the red-line units and their buffer ring (what the ledger covers); reference changes are clipped to it.
* *patches*: the ledger's rows are parts of detected patches cut at unit boundaries; parts that touch and carry the
  same whole-patch values (``ndvi_before``, ``ndvi_after``, ``confidence``: ``detect_patches`` repeats them on each
  part) are merged back into one detected patch.
* a patch *matches* a reference change when their IoU (patch vs the change clipped to the region) is at least
  ``iou_min`` (0.5) or the patch's centroid lies inside the change (issue 19 part 7).
* recall = matched / relevant changes, *relevant* = whole area ≥ the MMU and at least one grid cell of it in the
  region; precision = patches matching any change / patches.
* area error of a matched change = (area of its matched patches − its clipped area) / its clipped area.
* seasonal-only polygons (a harvested field): the ledger rows that overlap one (must be none).
* cloud case: changes with ``cloud_share_after`` > 0 — the expected observable area is clipped area × (1 − share);
  a patch drawn only where observed is no larger than that.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


@dataclass
class Accuracy:
    """``summary``: recall, precision, counts, area error, seasonal and cloud figures; ``changes``: one row per
    reference change in the region (relevant or not) with its match and inside/buffer split; ``patches``: the
    merged detected patches with the change each matches."""

    summary: dict
    changes: pd.DataFrame
    patches: gpd.GeoDataFrame

    def text(self) -> str:
        """The report as printed by ``scripts/redline_accuracy.py``."""
        s = self.summary
        lines = [f"relevant changes (≥ MMU {s['mmu_m2']:.0f} m², in units + {s['buffer_m']:.0f} m buffer): "
                 f"{s['relevant_n']}, found {s['matched_n']}  recall {s['recall']:.3f}",
                 f"detected patches (parts merged): {s['patches_n']}, matching a change {s['true_patches_n']}  "
                 f"precision {s['precision']:.3f}",
                 f"area error over matched changes: total {s['area_error_total']:+.3f}, "
                 f"mean |error| {s['area_error_mean_abs']:.3f}",
                 f"seasonal-only fields: {s['seasonal_fields_n']}, ledger rows touching them: {s['seasonal_patches_n']}"]
        cols = ["change_id", "change_type", "area_m2", "relevant", "matched", "iou", "detected_m2", "area_error",
                "truth_inside_m2", "detected_inside_m2", "truth_buffer_m2", "detected_buffer_m2", "cloud_share_after",
                "observable_m2"]
        t = self.changes[[c for c in cols if c in self.changes.columns]]
        lines.append(t.to_string(index=False, float_format=lambda v: f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}"))
        return "\n".join(lines)


def merge_parts(ledger: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Whole detected patches from ledger rows (module docstring): columns ``rows`` (the ledger row numbers),
    ``area_m2``, ``inside_m2``, ``buffer_m2``, geometry."""
    n = len(ledger)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    geoms = ledger.geometry.values
    key = [tuple(np.round(pd.to_numeric(ledger[c], errors="coerce").to_numpy(dtype=float), 4))
           for c in ("ndvi_before", "ndvi_after", "confidence")]
    keys = list(zip(*key)) if n else []
    tree = shapely.STRtree(geoms)
    for i, j in zip(*tree.query(geoms, predicate="intersects")):
        if i < j and keys[i] == keys[j]:
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    rows = []
    loc = ledger["location"].to_numpy() if n else np.array([])
    area = pd.to_numeric(ledger["area_m2"]).to_numpy(dtype=float) if n else np.array([])
    for members in groups.values():
        rows.append({"rows": members, "area_m2": float(area[members].sum()),
                     "inside_m2": float(area[[m for m in members if loc[m] == "inside"]].sum()),
                     "buffer_m2": float(area[[m for m in members if loc[m] == "buffer"]].sum()),
                     "geometry": shapely.union_all(geoms[members])})
    return gpd.GeoDataFrame(rows, columns=["rows", "area_m2", "inside_m2", "buffer_m2", "geometry"],
                            geometry="geometry", crs=ledger.crs)


def patch_accuracy(ledger: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, units: gpd.GeoDataFrame, *, mmu_m2: float,
                   buffer_m: float, cell_m2: float, seasonal: gpd.GeoDataFrame | None = None,
                   iou_min: float = 0.5) -> Accuracy:
    """Accuracy of ``ledger`` (rows of ``redline_patches``, equal-area CRS) against ``truth`` (polygons with
    ``change_id``, ``change_type``, optional ``cloud_share_after``) over ``units`` (module docstring)."""
    crs = ledger.crs
    if crs is None or not crs.is_projected:
        raise ValueError("the ledger must be in the run's equal-area CRS")
    units_g = shapely.union_all(units.to_crs(crs).geometry.make_valid().values)
    ring = units_g.buffer(buffer_m).difference(units_g) if buffer_m > 0 else shapely.Polygon()
    region = shapely.union(units_g, ring)
    truth = truth.to_crs(crs).reset_index(drop=True)
    patches = merge_parts(ledger)
    pg = patches.geometry.values
    cent = shapely.centroid(pg)

    rows, patch_match = [], [None] * len(patches)
    for k, t in truth.iterrows():
        full = shapely.make_valid(t.geometry)
        clipped = shapely.intersection(full, region)
        inside_m2 = shapely.intersection(full, units_g).area
        relevant = full.area >= mmu_m2 and clipped.area >= cell_m2
        if clipped.area <= 0:
            continue
        matched, best_iou = [], 0.0
        for j, g in enumerate(pg):
            if not g.intersects(full):
                continue
            iou = shapely.intersection(g, clipped).area / shapely.union(g, clipped).area
            if iou >= iou_min or full.contains(cent[j]):
                matched.append(j)
                best_iou = max(best_iou, iou)
                patch_match[j] = t.get("change_id", k)
        det = float(sum(patches["area_m2"].iloc[j] for j in matched))
        share = float(t.get("cloud_share_after", 0.0) or 0.0)
        rows.append({"change_id": t.get("change_id", k), "change_type": t.get("change_type"),
                     "area_m2": full.area, "region_m2": clipped.area, "relevant": relevant, "matched": bool(matched),
                     "iou": best_iou, "detected_m2": det,
                     "area_error": (det - clipped.area) / clipped.area if matched else np.nan,
                     "truth_inside_m2": inside_m2, "truth_buffer_m2": shapely.intersection(full, ring).area,
                     "detected_inside_m2": float(sum(patches["inside_m2"].iloc[j] for j in matched)),
                     "detected_buffer_m2": float(sum(patches["buffer_m2"].iloc[j] for j in matched)),
                     "cloud_share_after": share, "observable_m2": clipped.area * (1.0 - share)})
    changes = pd.DataFrame(rows)
    patches["change_id"] = patch_match
    rel = changes[changes["relevant"]] if len(changes) else changes
    found = rel[rel["matched"]] if len(rel) else rel
    seasonal_n = 0
    if seasonal is not None and len(seasonal) and len(ledger):
        sg = shapely.union_all(seasonal.to_crs(crs).geometry.make_valid().values)
        seasonal_n = int(sum(shapely.intersection(g, sg).area > 0 for g in ledger.geometry.values))
    summary = {
        "mmu_m2": float(mmu_m2), "buffer_m": float(buffer_m), "relevant_n": int(len(rel)),
        "matched_n": int(len(found)), "recall": len(found) / len(rel) if len(rel) else float("nan"),
        "patches_n": int(len(patches)), "true_patches_n": int(sum(m is not None for m in patch_match)),
        "precision": (sum(m is not None for m in patch_match) / len(patches)) if len(patches) else float("nan"),
        "area_error_total": (float(found["detected_m2"].sum()) / float(found["region_m2"].sum()) - 1.0
                             if len(found) else float("nan")),
        "area_error_mean_abs": float(found["area_error"].abs().mean()) if len(found) else float("nan"),
        "seasonal_fields_n": 0 if seasonal is None else int(len(seasonal)), "seasonal_patches_n": seasonal_n}
    return Accuracy(summary, changes, patches)


__all__ = ["Accuracy", "patch_accuracy", "merge_parts"]
