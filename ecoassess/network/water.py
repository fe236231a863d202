"""Surface-water class per GB 3838-2002 by the single-factor rule (STANDARDS §7.3, §8 item 15; table in
``indices/gb3838_2002.yaml``).

Sample tables have one column per item with its unit: ``ph``, ``do_mgl``, ``codmn_mgl``, ``cod_mgl``, ``bod5_mgl``,
``nh3n_mgl``, ``tp_mgl``, ``tn_mgl``, ``cu_mgl`` … ``sulfide_mgl``, ``fecal_coliform_per_l``. The routine item set
decides the class (TN and faecal coliform do not); rivers and lakes differ in TP; TN is classed separately for lakes
and never for rivers; DO must be ≥ its limit; pH outside 6–9 is 劣V.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoassess.errors import InputError
from ecoassess.network import standards
from ecoassess.network.values import check_not_negative, to_datetime, to_number

BODY_ALIASES = {"river": "river", "河流": "river", "河": "river", "stream": "river", "canal": "river", "渠": "river",
                "lake": "lake", "湖泊": "lake", "湖": "lake", "reservoir": "lake", "水库": "lake", "湖库": "lake",
                "库": "lake"}


def _labels() -> list[str]:
    t = standards.table("water")
    return list(t["classes"]) + [t["worse_than_v"]]


def column_of(item: str) -> str:
    """The column name of ``item`` (``tp`` → ``tp_mgl``, ``ph`` → ``ph``)."""
    spec = standards.table("water")["items"][item]
    return spec.get("column") or f"{item}_{spec['unit']}"


def _body(value, label) -> str:
    key = BODY_ALIASES.get(str(value).strip().lower())
    if key is None:
        raise InputError(f"row {label}: water body {value!r}", field="body",
                         expected="river / 河流 or lake / reservoir / 湖泊 / 水库")
    return key


def item_class(item: str, values, body: str = "river") -> np.ndarray:
    """Class index of each value of ``item`` (0 = I … 4 = V, 5 = 劣V; −1 when missing): the best class whose limit
    the value meets (≤; DO ≥); pH inside 6–9 → 0, outside → 劣V."""
    spec = standards.table("water")["items"][item]
    v = np.asarray(values, dtype=float)
    out = np.full(v.shape, -1, dtype=int)
    ok = np.isfinite(v)
    if spec["direction"] == "range":
        low, high = spec["range"]
        out[ok] = np.where((v[ok] >= low) & (v[ok] <= high), 0, 5)
        return out
    limits = spec["limits_by_body"][body] if "limits_by_body" in spec else spec["limits"]
    cls = np.full(v.shape, 5, dtype=int)
    for i in range(len(limits) - 1, -1, -1):          # from V down to I: the last one met is the best class
        meets = v >= limits[i] if spec["direction"] == "ge" else v <= limits[i]
        cls = np.where(meets, i, cls)
    out[ok] = cls[ok]
    return out


def water_class(df: pd.DataFrame, body="river", *, path=None) -> pd.DataFrame:
    """Single-factor class of each sample (row). ``body``: 'river' or 'lake' (湖泊/水库 alike) for all rows, or None
    to read a ``body`` column. Adds ``class_<item>`` per assessed item, ``water_class`` (I…V, 劣V; empty without any
    routine item), ``deciding_items`` (the item(s) at that class, ','-joined), ``items_over_iii`` (worse than
    class III: the main pollutants), ``quality_zh`` (优 / 良好 / 轻度污染 / 中度污染 / 重度污染), ``n_items`` and,
    for lakes with a TN column, ``tn_class`` (separate; never part of ``water_class``)."""
    t = standards.table("water")
    labels = _labels()
    if body is None:
        if "body" not in df.columns:
            raise InputError("no water body type", path=path, field="body",
                             expected="body='river' / 'lake' or a 'body' column")
        bodies = pd.Series([_body(v, i) for i, v in df["body"].items()], index=df.index)
    else:
        bodies = pd.Series(_body(body, "all"), index=df.index)
    out = df.copy()
    cols = {}
    for item in t["routine_items"] + ["tn"]:
        col = column_of(item)
        if col in df.columns:
            values = to_number(df[col], name=col, path=path)
            if item != "ph":
                check_not_negative(values, name=col, path=path)
            elif (values.dropna() > 14).any():
                label = values.index[values > 14][0]
                raise InputError(f"row {label}: pH {values[label]:g}", path=path, field=col, expected="0–14")
            cols[item] = values.to_numpy()
    routine = [i for i in t["routine_items"] if i in cols]
    if not routine:
        raise InputError("no GB 3838 item column", path=path,
                         expected=", ".join(column_of(i) for i in t["routine_items"][:8]) + ", …")
    n = len(df)
    classes = {}
    for item in routine:
        c = np.full(n, -1, dtype=int)
        for b in bodies.unique():
            m = (bodies == b).to_numpy()
            c[m] = item_class(item, cols[item][m], b)
        classes[item] = c
        out[f"class_{item}"] = [labels[k] if k >= 0 else None for k in c]
    stack = np.vstack([classes[i] for i in routine])
    worst = stack.max(axis=0)
    out["water_class"] = [labels[k] if k >= 0 else None for k in worst]
    out["deciding_items"] = [",".join(i for i in routine if classes[i][j] == worst[j]) if worst[j] >= 0 else ""
                             for j in range(n)]
    out["items_over_iii"] = [",".join(i for i in routine if classes[i][j] > 2) for j in range(n)]
    out["quality_zh"] = [t["qualitative"][labels[k]] if k >= 0 else None for k in worst]
    out["n_items"] = (stack >= 0).sum(axis=0)
    if "tn" in cols and (bodies == "lake").any():
        tn = item_class("tn", cols["tn"], "lake")
        out["tn_class"] = [labels[k] if (k >= 0 and b == "lake") else None for k, b in zip(tn, bodies)]
    return out


def section_annual_class(df: pd.DataFrame, body="river", *, section: str = "section", date: str = "date",
                         path=None) -> pd.DataFrame:
    """Annual class of each section: the annual mean of each item, then :func:`water_class` [C: 评价办法 recalled].
    One row per section and year with the means, ``n_samples`` and the columns of :func:`water_class`."""
    for c in (section, date):
        if c not in df.columns:
            raise InputError(f"missing column {c!r}", path=path, field=c, expected=f"{section}, {date} and items")
    t = standards.table("water")
    items = [column_of(i) for i in t["routine_items"] + ["tn"] if column_of(i) in df.columns]
    num = df[[section, date]].copy()
    for c in items:
        num[c] = to_number(df[c], name=c, path=path)
    d = to_datetime(num[date], name=date, path=path)
    keys = [section, "year"]
    if body is None:
        num["body"] = df["body"]
        keys.append("body")
    num["year"] = d.dt.year
    means = num.groupby(keys, sort=True)[items].mean().reset_index()
    counts = num.groupby(keys, sort=True).size().reset_index(name="n_samples")
    annual = means.merge(counts, on=keys)
    return water_class(annual, body=body, path=path)


def county_shares(classes: pd.DataFrame, *, county: str = "county", class_column: str = "water_class") -> pd.DataFrame:
    """Per county: ``n_sections`` (with a class), ``share_i_iii`` (优良, classes I–III) and ``share_worse_v``
    (劣V), as fractions 0–1."""
    t = standards.table("water")
    good = set(t["good_classes"])
    c = classes[[county, class_column]].dropna(subset=[class_column])
    g = c.groupby(county, sort=True)[class_column]
    return pd.DataFrame({"n_sections": g.size(),
                         "share_i_iii": g.apply(lambda s: s.isin(good).mean()),
                         "share_worse_v": g.apply(lambda s: (s == t["worse_than_v"]).mean())}).reset_index()


def drinking_source_compliance(classes: pd.DataFrame, target="III", *, class_column: str = "water_class"
                               ) -> pd.DataFrame:
    """Whether each drinking-water source meets its target class (``target``: one class for all, or the name of a
    column of targets such as 'target_class'): ``meets_target`` True when its class is the target or better, NA
    without a class. Only the Table 1 basic items are judged here (the supplementary/specific items of Tables 2–3
    are not)."""
    labels = _labels()
    rank = {k: i for i, k in enumerate(labels)}
    targets = classes[target] if isinstance(target, str) and target in classes.columns else \
        pd.Series(target, index=classes.index)
    bad = ~targets.isin(list(rank))
    if bad.any():
        label = bad.idxmax()
        raise InputError(f"row {label}: target class {targets[label]!r}", field="target_class",
                         expected="I, II, III, IV or V")
    out = classes.copy()
    out["target_class"] = targets
    out["meets_target"] = pd.array([pd.NA if c not in rank else rank[c] <= rank[tc]
                                    for c, tc in zip(classes[class_column], targets)], dtype="boolean")
    return out
