"""Environmental noise per GB 3096-2008 (limits by functional class) and the HJ 640-2012 city-wide grades
(STANDARDS §7.5; table in ``indices/gb3096_2008.yaml``).

Point tables: ``function_class`` (the station registry's name, ``indices/station_observations.yaml``) or
``functional_class`` (0, 1, 2, 3, 4a, 4b; '1类', '4a类' also read), ``leq_day_dba`` and/or
``leq_night_dba`` (equivalent continuous A-weighted level, dB(A)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoassess.errors import InputError
from ecoassess.network import standards
from ecoassess.network.values import check_not_negative, round_gbt8170, to_number

PERIODS = ("day", "night")
#: the class column: the registry's site field first (``function_class``), then this module's older name
CLASS_COLUMNS = ("function_class", "functional_class")


def functional_class(value, label=None) -> str:
    """'0', '1', '2', '3', '4a' or '4b' for a class text ('1类', '4A', '4a类区', 2)."""
    text = str(value).strip().lower().replace("类区", "").replace("类", "").replace("class", "").strip()
    if text.endswith(".0"):
        text = text[:-2]
    if text not in standards.table("noise")["classes"]:
        raise InputError(f"row {label}: functional class {value!r}", field="functional_class",
                         expected="0, 1, 2, 3, 4a or 4b (GB 3096-2008 声环境功能区)")
    return text


def noise_compliance(df: pd.DataFrame, *, path=None) -> pd.DataFrame:
    """Per point and period present: ``limit_<period>_dba`` of its class, ``exceed_<period>_db`` (Leq − limit when
    above, else 0; NaN without a value) and ``meets_<period>`` (Leq ≤ limit; NA without a value). Leq is rounded to
    0.1 dB (GB/T 8170) before the comparison, so 60.04 meets a limit of 60 and 60.06 exceeds it by 0.1."""
    col = next((c for c in CLASS_COLUMNS if c in df.columns), None)
    if col is None:
        raise InputError("missing column 'function_class'", path=path, field="function_class",
                         expected="0, 1, 2, 3, 4a or 4b per point (column function_class or functional_class)")
    present = [p for p in PERIODS if f"leq_{p}_dba" in df.columns]
    if not present:
        raise InputError("no Leq column", path=path, field="leq_day_dba", expected="leq_day_dba and/or leq_night_dba")
    classes = standards.table("noise")["classes"]
    keys = [functional_class(v, i) for i, v in df[col].items()]
    out = df.copy()
    out[col] = keys
    for p in present:
        col = f"leq_{p}_dba"
        leq = to_number(df[col], name=col, path=path)
        check_not_negative(leq, name=col, path=path)
        # Leq is reported to 0.1 dB (HJ 640 grades are written so) and compared as reported [C]
        leq = pd.Series(round_gbt8170(leq.to_numpy(), standards.table("noise")["hj640"]["decimals"]), index=leq.index)
        limit = np.array([float(classes[k][p]) for k in keys])
        exceed = np.round(np.clip(leq.to_numpy() - limit, 0, None), 1)
        out[f"limit_{p}_dba"] = limit
        out[f"exceed_{p}_db"] = np.where(leq.isna(), np.nan, exceed)
        out[f"meets_{p}"] = pd.array([pd.NA if np.isnan(x) else bool(x <= lim) for x, lim in zip(leq, limit)],
                                     dtype="boolean")
    return out


def hj640_grade(leq_dba, period: str = "day", kind: str = "regional") -> pd.DataFrame:
    """HJ 640-2012 grade of city-wide mean levels ``leq_dba`` (regional or road_traffic; day or night): the value
    rounded to 0.1 dB, then ≤ the first bound 一级 (好) … above the last 五级 (差). Columns ``leq_dba`` (rounded),
    ``grade``, ``grade_word``."""
    t = standards.table("noise")["hj640"]
    if kind not in ("regional", "road_traffic") or period not in PERIODS:
        raise InputError(f"unknown HJ 640 grading {kind!r}/{period!r}", field="kind/period",
                         expected="kind regional or road_traffic, period day or night")
    values = to_number(pd.Series(leq_dba), name=f"{kind}_{period}_leq_dba")
    check_not_negative(values, name=f"{kind}_{period}_leq_dba")
    v = round_gbt8170(values.to_numpy(), t["decimals"])
    idx = np.searchsorted(np.asarray(t[kind][period], dtype=float), v, side="left")
    ok = np.isfinite(v)
    return pd.DataFrame({"leq_dba": v,
                         "grade": [t["grades"][i] if o else None for i, o in zip(idx, ok)],
                         "grade_word": [t["words"][i] if o else None for i, o in zip(idx, ok)]},
                        index=values.index)
