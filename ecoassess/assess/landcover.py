"""Land-cover class areas → HJ 192-2015 habitat sub-class areas, with every assumption made visible.

Each legend class (``layers/<legend>.yaml``) carries ``hj192``: either a final HJ 192 sub-class (``forest``,
``grass_high``, ..., ``excluded`` for sea) or a *pending* class (``grass``, ``cropland``, ``water``, ``built``,
``bare``, ``flooded``) that the product cannot resolve, with a ``split`` rule and a ``default`` sub-class. The rules
and their target sub-classes live in ``indices/hj192_2015.yaml`` (``landcover_splits``):

==================  ==========================================  ================================================
rule                targets                                     auxiliary data (keyword of :func:`habitat_areas`)
==================  ==========================================  ================================================
fvc_5_20_50         grass_low / grass_medium / grass_high       ``grass_fvc_areas``: grass km² per FVC class
                    (FVC 5–20 / 20–50 / > 50 %; < 5 % → low)    (STANDARDS §1.2, §2.3)
paddy_layer         paddy / dry_land                            ``paddy_share``: share of cropland that is paddy
river_lake          river / lake_reservoir                      ``river_share``: share of open water that is river
built_type          urban / rural_settlement / other_constr.    ``built_shares``: shares per target
bare_type           sand / saline / bare_soil / bare_rock / ... ``bare_shares``: shares per target
paddy_in_flooded    tidal_flat_wetland / paddy                  ``splits={'paddy_in_flooded': share of paddy}``
==================  ==========================================  ================================================

Auxiliary data is given per zone (a Series or DataFrame indexed by zone id) or for all zones (a number or a
``{target: share}`` dict). Where a zone has pending area and no auxiliary data, the class's ``default`` sub-class
takes all of it; every default used is listed in the returned assumptions (with the zones and km² concerned), and
so is every crosswalk mapping marked ``confidence: C`` that carries area.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from ecoassess.assess.hj192_coefficients import Hj192Coefficients, as_coefficients
from ecoassess.errors import InputError

log = logging.getLogger(__name__)

_CLASS_COLUMN = re.compile(r"^class_(-?\d+(?:\.0)?)_km2$")
#: codes of :func:`grass_cover_class`: 0 = not grass / no FVC, then one code per target of rule fvc_5_20_50
GRASS_FVC_CODES = {1: "grass_low", 2: "grass_medium", 3: "grass_high"}


def _legend(legend):
    from ecoassess.legends import Legend, load_legend

    return legend if isinstance(legend, Legend) else load_legend(str(legend))


def class_columns(class_areas: pd.DataFrame) -> dict[int, str]:
    """code → column of a :func:`ecoassess.zones.zonal_class_areas` table (``attrs['class_columns']`` or names)."""
    cols = class_areas.attrs.get("class_columns")
    if cols:
        return {int(k): v for k, v in cols.items()}
    out = {}
    for c in class_areas.columns:
        m = _CLASS_COLUMN.match(str(c))
        if m:
            out[int(float(m.group(1)))] = c
    return out


def legend_codes(legend, hj192_class: str) -> list[int]:
    """Codes of ``legend`` whose ``hj192`` entry is ``hj192_class`` (e.g. the ``grass`` codes to mask FVC with)."""
    lg = _legend(legend)
    return sorted(c for c, v in lg.classes.items() if v.get("hj192") == hj192_class)


def check_legend(legend, coefficients=None) -> None:
    """Every class maps to a known sub-class, or to a pending class with a known split rule and a valid default."""
    lg = _legend(legend)
    co = as_coefficients(coefficients)
    finals = set(co.subclasses) | {co.excluded_subclass}
    problems = []
    for code, c in lg.classes.items():
        target = c.get("hj192")
        if target in finals:
            continue
        if target not in co.pending_classes:
            problems.append(f"class {code}: hj192 {target!r} is neither an HJ 192 sub-class nor a pending class")
            continue
        rule = co.splits.get(c.get("split"))
        if rule is None:
            problems.append(f"class {code}: pending class {target!r} needs a split rule from {sorted(co.splits)}, "
                            f"got {c.get('split')!r}")
        elif c.get("default") not in rule.targets:
            problems.append(f"class {code}: default {c.get('default')!r} is not a target of {rule.name} "
                            f"{list(rule.targets)}")
    if problems:
        raise InputError("; ".join(problems), path=lg.source, field="classes.hj192",
                         expected="HJ 192 sub-classes from indices/hj192_2015.yaml")


def grass_cover_class(fvc, *, percent: bool = False, coefficients=None) -> np.ndarray:
    """Grass cover class codes (``GRASS_FVC_CODES``) from growing-season FVC, for grass pixels only.

    FVC is a fraction in [0, 1] (``percent=True``: 0–100). Thresholds from rule ``fvc_5_20_50`` (5/20/50 %):
    ≥ 50 % → 3 (grass_high), [20, 50) → 2 (grass_medium), < 20 % → 1 (grass_low, FVC below 5 % included as the
    rule's ``below_lowest``); NaN → 0. Mask the result to the legend's ``grass`` codes before zonal areas.
    """
    co = as_coefficients(coefficients)
    thr = co.splits["fvc_5_20_50"].fvc_thresholds_pct
    x = np.asarray(fvc, dtype="float64")
    pct = x if percent else x * 100.0
    out = np.where(np.isnan(pct), 0, 1).astype("uint8")
    out[pct >= thr[1]] = 2
    out[pct >= thr[2]] = 3
    return out


def grass_fvc_areas_from_class_areas(class_areas: pd.DataFrame) -> pd.DataFrame:
    """A :func:`zonal_class_areas` table of :func:`grass_cover_class` codes → km² columns grass_low/medium/high."""
    cols = class_columns(class_areas)
    out = pd.DataFrame(0.0, index=class_areas.index, columns=list(GRASS_FVC_CODES.values()))
    for code, name in GRASS_FVC_CODES.items():
        if code in cols:
            out[name] = class_areas[cols[code]].astype(float)
    return out


def _zones_text(ids, limit: int = 10) -> str:
    ids = list(ids)
    head = ", ".join(str(i) for i in ids[:limit])
    return head + (f" … ({len(ids)} zones)" if len(ids) > limit else "")


def _shares(rule, given, index: pd.Index, keyword: str) -> pd.DataFrame:
    """Shares of each target per zone (rows sum to 1), NaN rows where no auxiliary data covers the zone."""
    targets = list(rule.targets)
    out = pd.DataFrame(np.nan, index=index, columns=targets)
    if given is None:
        return out

    def share_of_frame(s: pd.Series) -> pd.DataFrame:
        if rule.share_of is None:
            raise InputError(f"rule {rule.name} splits into {targets}: give a DataFrame or dict of shares per target",
                             field=keyword, expected="shares per target")
        bad = s[(s < 0) | (s > 1)]
        if len(bad):
            raise InputError(f"share of {rule.share_of} outside [0, 1] for zone(s) {_zones_text(bad.index)}",
                             field=keyword, expected="a share in [0, 1]")
        other = [t for t in targets if t != rule.share_of]
        if len(other) != 1:
            raise InputError(f"rule {rule.name} has {len(targets)} targets: a single share is ambiguous",
                             field=keyword, expected="a DataFrame or dict of shares per target")
        return pd.DataFrame({rule.share_of: s, other[0]: 1.0 - s})[targets]

    if isinstance(given, (int, float, np.floating, np.integer)) and not isinstance(given, bool):
        frame = share_of_frame(pd.Series(float(given), index=index))
    elif isinstance(given, pd.Series):
        frame = share_of_frame(pd.to_numeric(given, errors="coerce").reindex(index).astype(float))
    elif isinstance(given, dict):
        frame = pd.DataFrame([given] * len(index), index=index)
    elif isinstance(given, pd.DataFrame):
        frame = given.reindex(index)
    else:
        raise InputError(f"unsupported auxiliary data of type {type(given).__name__}", field=keyword,
                         expected="a number, Series, dict or DataFrame")
    unknown = [c for c in frame.columns if c not in targets]
    if unknown:
        raise InputError(f"unknown target(s) {unknown} for rule {rule.name}", field=keyword,
                         expected=f"columns from {targets}")
    frame = frame.reindex(columns=targets).apply(pd.to_numeric, errors="coerce").astype(float)
    if (frame < 0).any().any():
        raise InputError(f"negative value(s) for rule {rule.name}", field=keyword, expected="areas or shares ≥ 0")
    total = frame.fillna(0.0).sum(axis=1)
    has = frame.notna().any(axis=1) & (total > 0)
    out.loc[has] = frame.loc[has].fillna(0.0).div(total[has], axis=0).to_numpy()
    return out


def habitat_areas(class_areas: pd.DataFrame, legend, *, grass_fvc_areas: pd.DataFrame | None = None,
                  paddy_share=None, river_share=None, built_shares=None, bare_shares=None,
                  splits: dict | None = None, coefficients=None) -> tuple[pd.DataFrame, list[str]]:
    """Areas (km²) per HJ 192 habitat sub-class per zone, and the list of assumptions applied.

    ``class_areas``: a :func:`ecoassess.zones.zonal_class_areas` table (``class_<code>_km2`` columns, index = zone
    id); ``legend``: a :class:`~ecoassess.legends.Legend` or its name. Auxiliary data for the split rules (module
    docstring): ``grass_fvc_areas`` (km² of grass per FVC class, columns grass_low/grass_medium/grass_high; only the
    proportions are used, applied to the land-cover grass area), ``paddy_share``, ``river_share``,
    ``built_shares``, ``bare_shares``, or any rule by name in ``splits``.

    Returns (DataFrame with one column per sub-class in group order plus ``excluded``, index = zone id;
    assumptions). Codes the legend does not define raise :class:`InputError`; the legend's nodata code is skipped.
    """
    lg = _legend(legend)
    co: Hj192Coefficients = as_coefficients(coefficients)
    check_legend(lg, co)
    cols = class_columns(class_areas)
    if not cols:
        raise InputError("no class_<code>_km2 columns", field="class_areas",
                         expected="a table from ecoassess.zones.zonal_class_areas")
    unknown = sorted(c for c in cols if c not in lg.classes and c != lg.nodata)
    if unknown:
        raise InputError(f"class code(s) {unknown} are not in legend '{lg.name}' (codes: {sorted(lg.classes)})",
                         path=lg.source, field="classes", expected="every raster code in the legend")

    aux = dict(splits or {})
    for rule_name, value in (("fvc_5_20_50", grass_fvc_areas), ("paddy_layer", paddy_share),
                             ("river_lake", river_share), ("built_type", built_shares), ("bare_type", bare_shares)):
        if value is not None:
            if rule_name in aux:
                raise InputError(f"auxiliary data for {rule_name} given twice", field=rule_name)
            aux[rule_name] = value
    bad_rules = sorted(set(aux) - set(co.splits))
    if bad_rules:
        raise InputError(f"unknown split rule(s) {bad_rules}", field="splits", expected=f"one of {sorted(co.splits)}")

    index = class_areas.index
    names = list(co.subclasses) + [co.excluded_subclass]
    out = pd.DataFrame(0.0, index=index, columns=names)
    assumptions: list[str] = []
    pending: dict[tuple[str, str, str], pd.Series] = {}        # (rule, default, pending class) -> km² per zone
    pending_codes: dict[tuple[str, str, str], list[int]] = {}
    for code in sorted(cols):
        if code == lg.nodata:
            continue
        c = lg.classes[code]
        km2 = pd.to_numeric(class_areas[cols[code]], errors="coerce").fillna(0.0).astype(float)
        target = c["hj192"]
        if c.get("confidence") == "C" and km2.sum() > 0:
            assumptions.append(f"{lg.name} class {code} ({c.get('en', c.get('zh'))}) → {target} [C]"
                               + (f": {c['note']}" if c.get("note") else ""))
        if target in out.columns:
            out[target] += km2
            continue
        key = (c["split"], c["default"], target)
        pending[key] = pending.get(key, 0.0) + km2
        pending_codes.setdefault(key, []).append(code)

    shares_cache: dict[str, pd.DataFrame] = {}
    for (rule_name, default, target), km2 in pending.items():
        rule = co.splits[rule_name]
        if rule_name not in shares_cache:
            shares_cache[rule_name] = _shares(rule, aux.get(rule_name), index, rule_name)
        sh = shares_cache[rule_name]
        known = sh.notna().all(axis=1)
        for t in rule.targets:
            out[t] += np.where(known, km2 * sh[t].fillna(0.0), 0.0)
        fallback = km2.where(~known, 0.0)
        out[default] += fallback
        used = fallback[fallback > 0]
        codes = ", ".join(str(x) for x in pending_codes[(rule_name, default, target)])
        if len(used):
            why = "no auxiliary data given" if rule_name not in aux else "auxiliary data missing for these zones"
            assumptions.append(
                f"{lg.name} class {codes} ({target}) not split by {rule_name} ({why}): {used.sum():.6g} km² in "
                f"{len(used)} zone(s) ({_zones_text(used.index)}) counted as {default} (crosswalk default) [C]")
        n_split = int((known & (km2 > 0)).sum())
        if n_split:
            log.info("%s class %s (%s) split by %s in %d zone(s)", lg.name, codes, target, rule_name, n_split)
    out.attrs.update({"legend": lg.name, "legend_version": lg.version, "assumptions": list(assumptions),
                      "coefficients_version": co.version})
    return out, assumptions
