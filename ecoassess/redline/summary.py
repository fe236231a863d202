"""Per red-line unit and per county summaries of a patch ledger (issue 19 part 6; STANDARDS §5.1 HJ 1141: area and
human disturbance of the red lines, county level and above).

Which ledger rows count, for every column below:

* a *disturbance* is a row of change type 新增 (new), 扩大 (expanded) or 无变化 (known from an earlier ledger),
  except a known row staff marked 误判 (false detection) that was not reported again; 减少 (reduced / restored) rows
  are counted on their own (``reduced_*``), never as disturbance;
* ``inside`` rows count for the unit they lie in; ``buffer`` rows (缓冲区) for the nearest unit, in the
  ``buffer_*`` columns only;
* ``disturbed_share`` = inside disturbance area / unit area (m² / m², equal-area grid); the area not observable
  (cloud, shadow, no data in either date) comes from the detection (:func:`ecoassess.redline.detect.unit_observability`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoassess.readers import code_text

DISTURBANCE = ("new", "expanded", "unchanged")
#: the per-row counts of both summaries, before the per-activity columns
COUNT_COLUMNS = ["patches_n", "patches_area_m2", "new_n", "new_area_m2", "expanded_n", "expanded_area_m2",
                 "known_n", "known_area_m2", "reduced_n", "reduced_area_m2", "false_detection_n",
                 "buffer_patches_n", "buffer_area_m2"]


def _flags(ledger: pd.DataFrame, false_label: str) -> pd.DataFrame:
    """The ledger's rows with boolean columns ``disturbance``, ``false`` (marked 误判 and not reported again)."""
    t = pd.DataFrame(ledger.drop(columns=[c for c in ("geometry",) if c in ledger.columns]))
    marked = t["check_result"].map(code_text) == false_label
    t["false"] = marked & ~t["reported"].astype(bool)
    t["disturbance"] = t["change_type"].isin(DISTURBANCE) & ~t["false"]
    t["area_m2"] = pd.to_numeric(t["area_m2"], errors="coerce").fillna(0.0)
    return t


def _counts(rows: pd.DataFrame, activity_types) -> dict:
    inside = rows[rows["location"] == "inside"]
    buffer = rows[(rows["location"] == "buffer") & rows["disturbance"]]
    dist = inside[inside["disturbance"]]
    out = {"patches_n": len(dist), "patches_area_m2": float(dist["area_m2"].sum())}
    for key, change in (("new", "new"), ("expanded", "expanded"), ("known", "unchanged")):
        part = dist[dist["change_type"] == change]
        out[f"{key}_n"], out[f"{key}_area_m2"] = len(part), float(part["area_m2"].sum())
    red = inside[inside["change_type"] == "reduced"]
    out["reduced_n"], out["reduced_area_m2"] = len(red), float(red["area_m2"].sum())
    out["false_detection_n"] = int(inside["false"].sum())
    out["buffer_patches_n"], out["buffer_area_m2"] = len(buffer), float(buffer["area_m2"].sum())
    for code in activity_types:
        part = dist[dist["activity_type"] == code]
        out[f"{code}_n"], out[f"{code}_area_m2"] = len(part), float(part["area_m2"].sum())
    return out


def unit_summary(ledger: pd.DataFrame, units: pd.DataFrame, activity_types, *, false_label: str = "误判"
                 ) -> pd.DataFrame:
    """One row per red-line unit: ``units`` (``DetectionResult.units``: unit_id, unit_name, area_m2, observed_m2,
    not_observable_m2, not_observable_share), :data:`COUNT_COLUMNS`, ``disturbed_m2``, ``disturbed_share`` and
    ``<type>_n`` / ``<type>_area_m2`` (inside disturbance) for each of ``activity_types``."""
    t = _flags(ledger, false_label)
    uid = t["unit_id"].map(code_text)
    rows = []
    for rec in units.to_dict("records"):
        c = _counts(t[uid == code_text(rec["unit_id"])], activity_types)
        area = float(rec["area_m2"])
        rows.append({**rec, **c, "disturbed_m2": c["patches_area_m2"],
                     "disturbed_share": c["patches_area_m2"] / area if area > 0 else np.nan})
    return pd.DataFrame(rows, columns=_columns(list(units.columns), activity_types))


def county_summary(ledger: pd.DataFrame, pieces: pd.DataFrame, activity_types, *, false_label: str = "误判"
                   ) -> pd.DataFrame:
    """One row per county with red-line units: ``pieces`` = the units cut by the counties (county_code,
    county_name, unit_id, area_m2, observed_m2, not_observable_m2), summed per county into ``units_n``,
    ``area_m2`` (red-line area in the county), ``observed_m2``, ``not_observable_m2``, ``not_observable_share``;
    the ledger's rows counted by their ``county_code`` (the county holding most of the patch part)."""
    t = _flags(ledger, false_label)
    code = t["county_code"].map(code_text)
    rows = []
    for (cc, name), part in pieces.groupby(["county_code", "county_name"], sort=True):
        area, lost = float(part["area_m2"].sum()), float(part["not_observable_m2"].sum())
        c = _counts(t[code == code_text(cc)], activity_types)
        rows.append({"county_code": cc, "county_name": name, "units_n": int(part["unit_id"].nunique()),
                     "area_m2": area, "observed_m2": float(part["observed_m2"].sum()), "not_observable_m2": lost,
                     "not_observable_share": lost / area if area > 0 else np.nan, **c,
                     "disturbed_m2": c["patches_area_m2"],
                     "disturbed_share": c["patches_area_m2"] / area if area > 0 else np.nan})
    head = ["county_code", "county_name", "units_n", "area_m2", "observed_m2", "not_observable_m2",
            "not_observable_share"]
    return pd.DataFrame(rows, columns=_columns(head, activity_types))


def _columns(head, activity_types) -> list[str]:
    return [*head, *COUNT_COLUMNS, "disturbed_m2", "disturbed_share",
            *[f"{code}_{k}" for code in activity_types for k in ("n", "area_m2")]]


__all__ = ["unit_summary", "county_summary", "DISTURBANCE", "COUNT_COLUMNS"]
