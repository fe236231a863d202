"""Early-warning rows (预警, issue 20 part 6) from the network stage's tables: each is a dict of the run's
``early_warnings`` columns (:data:`ecoassess.stages.base.ALERT_COLUMNS` without ``stage``) naming the station,
county, value, limit and the source clause. Plain functions on the tables of :mod:`ecoassess.network.tables`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoassess.network import standards

STAGE_RULES = {
    "air_annual_limit": "a station's GB 3095 annual statistic above the limit of its area class",
    "water_section_target": "a surface-water section worse than its target class (GB 3838-2002)",
    "drinking_water_target": "a drinking-water source worse than its target class (GB 3838-2002 Table 1 items)",
    "soil_above_control": "a soil metal above its GB 15618-2018 risk control value",
    "noise_limit": "a noise measurement above the GB 3096-2008 limit of the point's functional class",
}


def _subject(row, kind: str) -> dict:
    """The subject columns of an alert row; ``subject_type`` in the keys' style of every stage (``air_station``,
    ``redline_patch``)."""
    return {"county_code": row.get("county_code"), "county_name": row.get("county_name"),
            "subject_type": kind.replace(" ", "_").replace("-", "_"),
            "subject_id": row.get("station_id"), "subject_name": row.get("name")}


def _finite(x) -> bool:
    return x is not None and not (isinstance(x, float) and np.isnan(x)) and x is not pd.NA


def air_alerts(annual: pd.DataFrame) -> list[dict]:
    """One row per station-year and GB 3095 item whose valid annual statistic exceeds its limit."""
    items = standards.table("gb3095")["annual_items"]
    out = []
    for row in annual.to_dict("records"):
        for item in items:
            unit = "mgm3" if item.startswith("co_") else "ugm3"
            value, limit = row.get(f"{item}_{unit}"), row.get(f"{item}_limit_{unit}")
            if row.get(f"{item}_exceeds") is True and _finite(value):
                label = "mg/m³" if unit == "mgm3" else "µg/m³"
                out.append({"rule": "air_annual_limit", **_subject(row, "air station"), "indicator": item,
                            "value": float(value), "limit": float(limit), "unit": label,
                            "source": f"{row.get('gb3095')} Table 1 ({item}; area class {row.get('area_class')}: "
                                      f"{row.get('area_class_basis')})",
                            "message": f"{row.get('station_id')} {row.get('name') or ''}: {item} {value:g} > "
                                       f"{limit:g} {label}"})
    return out


def water_alerts(sections: pd.DataFrame, kind: str) -> list[dict]:
    """One row per section/source whose annual class is worse than its target class (``kind``:
    ``surface_water`` or ``drinking_water``); ``value`` and ``limit`` are class numbers (III → 3, 劣V → 6), the
    message names the classes."""
    rule = "water_section_target" if kind == "surface_water" else "drinking_water_target"
    what = "section" if kind == "surface_water" else "drinking-water source"
    labels = list(standards.table("water")["classes"]) + [standards.table("water")["worse_than_v"]]
    number = {k: i + 1 for i, k in enumerate(labels)}    # value and limit stay numbers in every table format
    out = []
    for row in sections.to_dict("records"):
        if row.get("meets_target") is False:
            out.append({"rule": rule, **_subject(row, f"{what}"), "indicator": "water_class",
                        "value": number[row["water_class"]], "limit": number[row["target_class"]],
                        "unit": "GB 3838 class number (1 = I … 5 = V, 6 = 劣V)",
                        "source": "GB 3838-2002 Table 1, single-factor rule (STANDARDS §7.3); target class from the "
                                  "site table",
                        "message": f"{row['station_id']} {row.get('name') or ''}: class {row['water_class']} worse "
                                   f"than target {row['target_class']} (deciding: {row.get('deciding_items')})"})
    return out


def soil_alerts(points: pd.DataFrame) -> list[dict]:
    """One row per sample and metal above its risk control value."""
    from ecoassess.network.soil import ABOVE_CONTROL, METALS

    out = []
    for row in points.to_dict("records"):
        for m in METALS:
            if row.get(f"{m}_status") == ABOVE_CONTROL:
                value, limit = row[f"{m}_mgkg"], row[f"{m}_control_mgkg"]
                out.append({"rule": "soil_above_control", **_subject(row, "soil point"), "indicator": m,
                            "value": float(value), "limit": float(limit), "unit": "mg/kg",
                            "source": f"GB 15618-2018 Table 3 (risk control value; pH band {row.get('ph_band')})",
                            "message": f"{row['station_id']} {row.get('name') or ''}: {m} {value:g} > control "
                                       f"{limit:g} mg/kg"})
    return out


def noise_alerts(measurements: pd.DataFrame) -> list[dict]:
    """One row per measurement and period (day/night) above its class limit."""
    out = []
    for row in measurements.to_dict("records"):
        for p in ("day", "night"):
            if row.get(f"meets_{p}") is False:
                value, limit = row[f"leq_{p}_dba"], row[f"limit_{p}_dba"]
                when = pd.Timestamp(row["time"]).date().isoformat() if _finite(row.get("time")) else ""
                out.append({"rule": "noise_limit", **_subject(row, "noise point"), "indicator": f"leq_{p}",
                            "value": float(value), "limit": float(limit), "unit": "dB(A)",
                            "source": f"GB 3096-2008 Table 1, class {row['function_class']} ({p})",
                            "message": f"{row['station_id']} {row.get('name') or ''} {when}: {p} Leq {value:g} > "
                                       f"{limit:g} dB(A)"})
    return out


def coverage_alerts(audit: pd.DataFrame) -> list[dict]:
    """One row per county and coverage rule with a shortfall (:func:`ecoassess.network.coverage.coverage_audit`)."""
    out = []
    for row in audit.to_dict("records"):
        short = row.get("shortfall")
        if _finite(short) and int(short) > 0:
            out.append({"rule": row["rule_id"], "county_code": row["county_code"], "county_name": row["county_name"],
                        "subject_type": "county", "subject_id": row["county_code"],
                        "subject_name": row["county_name"], "indicator": f"{row['station_type']} sites",
                        "value": int(row["present"]), "limit": int(row["required"]), "unit": "sites",
                        "source": row.get("source"),
                        "message": f"{row['county_name']}: {int(row['present'])} of {int(row['required'])} "
                                   f"{row['station_type']} sites required by {row['rule_id']} (shortfall {int(short)})"})
    return out
