"""Agricultural soil per GB 15618-2018 (STANDARDS §7.4, §8 item 16; table in ``indices/gb15618_2018.yaml``):
each metal against the screening and control values of its pH band and land use, and the point's class
优先保护类 / 安全利用类 / 严格管控类.

Sample tables: ``ph``, ``land_use`` (水田 / 果园 / 其他 (旱地, 水浇地 …) / 水旱轮作) and metals in mg/kg (total content):
``cd_mgkg``, ``hg_mgkg``, ``as_mgkg``, ``pb_mgkg``, ``cr_mgkg``, ``cu_mgkg``, ``ni_mgkg``, ``zn_mgkg``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoassess.errors import InputError
from ecoassess.network import standards
from ecoassess.network.values import check_not_negative, to_number

METALS = ("cd", "hg", "as", "pb", "cr", "cu", "ni", "zn")
BELOW, BETWEEN, ABOVE_SCREENING, ABOVE_CONTROL = "below_screening", "between", "above_screening", "above_control"


def ph_band(ph) -> np.ndarray:
    """Band index of each pH (0: pH ≤ 5.5, 1: 5.5 < pH ≤ 6.5, 2: 6.5 < pH ≤ 7.5, 3: pH > 7.5; −1 when missing);
    upper bounds belong to the lower band (GB 15618 Table 1 headings)."""
    bands = standards.table("soil")["ph_bands"]
    uppers = [b["upper"] for b in bands if b["upper"] is not None]
    v = np.asarray(ph, dtype=float)
    out = np.searchsorted(np.asarray(uppers, dtype=float), v, side="left")   # v == 5.5 → 0
    return np.where(np.isfinite(v), out, -1)


def land_use_key(value, label=None) -> str:
    """'paddy', 'orchard', 'other' or 'rotation' for a land-use text (水田, 果园, 旱地 …)."""
    text = str(value).strip().lower()
    for key, spec in standards.table("soil")["land_uses"].items():
        if text in [str(a).lower() for a in spec["aliases"]]:
            return key
    raise InputError(f"row {label}: land use {value!r}", field="land_use",
                     expected="水田, 果园, 其他 (旱地, 水浇地) or 水旱轮作")


def screening_value(metal: str, ph, land_use) -> float:
    """The risk screening value (mg/kg) of ``metal`` at soil ``ph`` on ``land_use`` (Table 1): an element without
    a row for the land use takes 其他 (or 'all'); Cu on orchards uses the 果园 row; 水旱轮作 takes the smaller of 水田
    and 其他 [C]."""
    t = standards.table("soil")
    band = int(ph_band([ph])[0])
    if band < 0:
        return float("nan")
    rows = t["screening"][metal]
    key = land_use_key(land_use)
    if "all" in rows:
        return float(rows["all"][band])
    if key == "rotation":
        return float(min(rows.get("paddy", rows["other"])[band], rows["other"][band]))
    return float(rows.get(key, rows["other"])[band])


def control_value(metal: str, ph) -> float:
    """The risk control value (mg/kg) of ``metal`` at soil ``ph`` (Table 3); NaN for Cu, Ni, Zn (none defined)."""
    t = standards.table("soil")
    band = int(ph_band([ph])[0])
    if band < 0 or metal not in t["control"]:
        return float("nan")
    return float(t["control"][metal][band])


def soil_class(df: pd.DataFrame, *, path=None) -> pd.DataFrame:
    """Per sample point: for each metal column ``<metal>_mgkg`` present, ``<metal>_screening_mgkg``,
    ``<metal>_control_mgkg``, ``<metal>_pi`` (C / screening) and ``<metal>_status`` (below_screening, between
    (screening < C ≤ control), above_control, or above_screening for Cu/Ni/Zn, which have no control value);
    then ``ph_band`` and ``soil_class``: 优先保护类 when every metal is ≤ its screening value, 严格管控类 when any
    is above its control value, else 安全利用类 [B]. A point without pH or land use raises an InputError."""
    for c in ("ph", "land_use"):
        if c not in df.columns:
            raise InputError(f"missing column {c!r}", path=path, field=c, expected="ph, land_use and <metal>_mgkg")
    metals = [m for m in METALS if f"{m}_mgkg" in df.columns]
    if not metals:
        raise InputError("no metal column", path=path, field="cd_mgkg",
                         expected=", ".join(f"{m}_mgkg" for m in METALS))
    ph = to_number(df["ph"], name="ph", path=path)
    bad = ph.isna() | (ph < 0) | (ph > 14)
    if bad.any():
        label = bad.idxmax()
        raise InputError(f"row {label}: pH {df.loc[label, 'ph']!r}", path=path, field="ph",
                         expected="a pH 0–14 (the screening value depends on it)")
    uses = [land_use_key(v, i) for i, v in df["land_use"].items()]
    out = df.copy()
    out["ph_band"] = [standards.table("soil")["ph_bands"][b]["name"] for b in ph_band(ph)]
    worst = np.zeros(len(df), dtype=int)       # 0 优先保护, 1 安全利用, 2 严格管控
    counted = np.zeros(len(df), dtype=int)
    for m in metals:
        col = f"{m}_mgkg"
        c = to_number(df[col], name=col, path=path)
        check_not_negative(c, name=col, path=path)
        scr = np.array([screening_value(m, p, u) for p, u in zip(ph, uses)])
        ctl = np.array([control_value(m, p) for p in ph])
        status = np.where(c <= scr, BELOW, np.where(np.isnan(ctl), ABOVE_SCREENING,
                                                    np.where(c <= ctl, BETWEEN, ABOVE_CONTROL)))
        status = np.where(c.isna(), None, status)
        out[f"{m}_screening_mgkg"] = scr
        out[f"{m}_control_mgkg"] = ctl
        out[f"{m}_pi"] = c.to_numpy() / scr
        out[f"{m}_status"] = status
        level = np.select([status == ABOVE_CONTROL, np.isin(status, [BETWEEN, ABOVE_SCREENING])], [2, 1], 0)
        worst = np.maximum(worst, level)
        counted += c.notna().to_numpy()
    names = standards.table("soil")["point_classes"]
    out["soil_class"] = [names[k] if n else None for k, n in zip(worst, counted)]   # no metal value: no class
    out["n_metals"] = counted
    return out
