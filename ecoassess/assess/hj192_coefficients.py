"""Load and validate ``indices/hj192_2015.yaml``, the one place of every HJ 192-2015 coefficient and class table.

``load_hj192()`` reads the shipped file; ``load_hj192(path)`` reads a corrected copy. Every key is checked for
presence and type before anything is computed; a problem raises :class:`Hj192CoefficientError` naming the file and
the dotted key (``biological_abundance.a_bio.value``) and what was expected. Consistency rules checked as well: the
composite weights sum to 1, each group's sub-class weights sum to 1 (or, for a corrected copy that deliberately uses
DYX's 0.5, at most 1 — a warning is logged), ``a_veg_float = a_veg × 10000``, thresholds ascend, every sub-class
named anywhere exists.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError

log = logging.getLogger(__name__)

FILE_NAME = "hj192_2015.yaml"
CONFIDENCES = ("A", "B", "C")
SUB_INDICES = ("biological_abundance", "vegetation_cover", "water_network_density", "land_stress", "pollution_load")


class Hj192CoefficientError(InputError):
    """The HJ 192 coefficient file is missing a key or holds a value of the wrong type; ``field`` is the key."""


@dataclass(frozen=True)
class Coefficient:
    key: str
    value: object
    unit: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Group:
    name: str
    zh: str
    weight: float
    subclasses: dict[str, float]   # sub-class -> weight within the group (insertion order = display order)
    subclass_zh: dict[str, str]


@dataclass(frozen=True)
class PollutionTerm:
    name: str
    zh: str
    column: str
    denominator: str               # 'precipitation_volume' | 'area'
    weight: float
    a: float


@dataclass(frozen=True)
class SplitRule:
    name: str
    targets: tuple[str, ...]
    share_of: str | None
    below_lowest: str | None
    fvc_thresholds_pct: tuple[float, ...] | None
    confidence: str


@dataclass(frozen=True)
class ConstraintRule:
    event_type: str
    severity: str
    cap_class: str | None
    downgrade_steps: int
    level: int | None
    verify: bool
    confidence: str
    source: str


@dataclass
class Hj192Coefficients:
    """Parsed, validated contents of the coefficient file (see ``indices/hj192_2015.yaml`` for meanings)."""

    path: Path
    version: str
    raw: dict
    composite_weights: dict[str, float]
    display_decimals: int
    cap_max: float
    a_bio: float
    biodiversity_rule: str
    groups: dict[str, Group]
    excluded_subclass: str
    a_veg: float
    a_veg_float: float
    ndvi_scales: dict[str, tuple[float, float]]        # scale name -> (ndvi factor, coefficient)
    min_mean_ndvi_x10000: float
    max_abs_ndvi_float: float
    a_riv: float
    a_lak: float
    a_res: float
    water_resources_unit: str
    water_area_subclasses: tuple[str, ...]
    wnd_cap_mode: str
    wet_year_enabled: bool
    wet_year_r_keep_max: float
    wet_year_r_reduce_max: float
    wet_year_above: float
    a_ero: float
    land_stress_weights: dict[str, float]
    construction_subclasses: tuple[str, ...]
    precipitation_volume_unit: str
    precipitation_factor: float
    emission_unit: str
    pollution_terms: dict[str, PollutionTerm]
    boundary_tolerance: float
    grades: list[dict]
    change_classes: list[dict]
    fluctuation_min_abs_delta: float
    fluctuation_min_reversals: int
    fluctuation_levels: list[dict]
    fluctuation_flag_label: str
    constraint_value_below: float
    constraint_levels: dict[int, tuple[str | None, int]]
    constraint_rules: list[ConstraintRule]
    function_aliases: dict[str, str]
    function_indicators: dict[str, tuple[str, ...]]
    function_indicator_zh: dict[str, str]
    function_types: dict[str, dict[str, float]]
    function_type_zh: dict[str, str]
    function_types_with_wci: tuple[str, ...]
    wci_a: float
    wci_weights: dict[str, float]
    splits: dict[str, SplitRule]
    pending_classes: tuple[str, ...]
    coefficients: list[Coefficient] = field(default_factory=list)

    # -- derived views ---------------------------------------------------------------------------------------------
    @property
    def subclasses(self) -> tuple[str, ...]:
        """Every HJ 192 habitat sub-class, in group order."""
        return tuple(s for g in self.groups.values() for s in g.subclasses)

    def group_of(self, subclass: str) -> str:
        for g in self.groups.values():
            if subclass in g.subclasses:
                return g.name
        raise KeyError(subclass)

    def grade_names(self) -> list[str]:
        return [g["zh"] for g in self.grades]

    def confidence_table(self) -> pd.DataFrame:
        """Every coefficient read: key, value, unit, confidence, source (for the report's assumption list)."""
        return pd.DataFrame([c.__dict__ for c in self.coefficients])

    def unconfirmed(self) -> pd.DataFrame:
        """The [C] coefficients this result rests on."""
        t = self.confidence_table()
        return t[t["confidence"] == "C"].reset_index(drop=True)


class _Reader:
    def __init__(self, raw: dict, path: Path):
        self.raw, self.path = raw, path
        self.coefficients: list[Coefficient] = []

    def fail(self, key: str, message: str, expected: str | None = None):
        raise Hj192CoefficientError(message, path=self.path, field=key, expected=expected)

    def get(self, key: str, kind=None, *, optional: bool = False, default=None):
        node = self.raw
        parts = key.split(".")
        for i, p in enumerate(parts):
            if not isinstance(node, dict):
                self.fail(".".join(parts[:i]), f"key '{'.'.join(parts[:i])}' is a {type(node).__name__}",
                          "a mapping")
            if p not in node:
                # YAML may read integer-looking keys as int
                alt = int(p) if p.isdigit() and int(p) in node else None
                if alt is None:
                    if optional:
                        return default
                    self.fail(key, f"missing key '{key}'", "the key as in the shipped indices/" + FILE_NAME)
                p = alt
            node = node[p]
        if kind is not None and not _is(node, kind):
            self.fail(key, f"key '{key}' is {node!r} ({type(node).__name__})", _kind_name(kind))
        return node

    def number(self, key: str, *, positive: bool = False) -> float:
        v = self.get(key, "number")
        if not math.isfinite(float(v)) or (positive and float(v) <= 0):
            self.fail(key, f"key '{key}' = {v!r}", "a finite positive number" if positive else "a finite number")
        return float(v)

    def coef(self, key: str, *, positive: bool = True, kind="number"):
        """A {value, unit, source, confidence} entry; returns the value and records it."""
        self.get(key, dict)
        value = self.get(key + ".value", kind)
        if kind == "number":
            value = float(value)
            if not math.isfinite(value) or (positive and value <= 0):
                self.fail(key + ".value", f"key '{key}.value' = {value!r}",
                          "a finite positive number" if positive else "a finite number")
        source = self.get(key + ".source", str)
        conf = self.get(key + ".confidence", str)
        if conf not in CONFIDENCES:
            self.fail(key + ".confidence", f"key '{key}.confidence' = {conf!r}", "one of A, B, C")
        unit = self.get(key + ".unit", optional=True, default="")
        self.coefficients.append(Coefficient(key, value, "" if unit is None else str(unit), source, conf))
        return value


def _is(v, kind) -> bool:
    if kind == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "str_list":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == "number_list":
        return isinstance(v, list) and all(_is(x, "number") for x in v)
    if kind is bool:
        return isinstance(v, bool)
    return isinstance(v, kind)


def _kind_name(kind) -> str:
    return {"number": "a number", "int": "an integer", "str_list": "a list of strings",
            "number_list": "a list of numbers",
            dict: "a mapping", list: "a list", str: "a string", bool: "true or false"}.get(kind, str(kind))


def _check_classes(r: _Reader, key: str, classes: list, fields: tuple[str, ...]) -> list[dict]:
    """[lower, upper) class lists: bounds numbers or null, contiguous, ascending or descending as listed."""
    out = []
    for i, c in enumerate(classes):
        k = f"{key}[{i}]"
        if not isinstance(c, dict):
            r.fail(k, f"entry {k} is {c!r}", "a mapping")
        for f in ("lower", "upper", *fields):
            if f not in c:
                r.fail(f"{k}.{f}", f"missing key '{k}.{f}'")
        for f in ("lower", "upper"):
            if c[f] is not None and not _is(c[f], "number"):
                r.fail(f"{k}.{f}", f"key '{k}.{f}' = {c[f]!r}", "a number or null")
        if c["lower"] is not None and c["upper"] is not None and not c["lower"] < c["upper"]:
            r.fail(k, f"class {k} has lower {c['lower']} ≥ upper {c['upper']}", "lower < upper")
        out.append(dict(c))
    return out


def _parse(raw: dict, path: Path) -> Hj192Coefficients:
    if not isinstance(raw, dict):
        raise Hj192CoefficientError("the file is not a YAML mapping", path=path, expected="a mapping of keys")
    r = _Reader(raw, path)
    version = r.get("version")
    if not isinstance(version, (str, int, float)):
        r.fail("version", f"key 'version' is {version!r}", "a version string")

    # composite
    cw = {k: r.coef(f"composite.weights.{k}") for k in SUB_INDICES}
    extra = set(r.get("composite.weights", dict)) - set(SUB_INDICES)
    if extra:
        r.fail("composite.weights", f"unknown sub-index weight(s) {sorted(extra)}", f"exactly {list(SUB_INDICES)}")
    if abs(sum(cw.values()) - 1.0) > 1e-9:
        r.fail("composite.weights", f"the composite weights sum to {sum(cw.values()):.12g}", "a sum of 1")
    decimals = r.get("composite.display_decimals", "int")
    cap_max = r.coef("capping.max")

    # biological abundance
    a_bio = r.coef("biological_abundance.a_bio")
    bd_rule = r.coef("biological_abundance.biodiversity_rule", kind=str)
    if bd_rule not in ("mean_with_hq", "hq_only"):
        r.fail("biological_abundance.biodiversity_rule.value", f"unknown rule {bd_rule!r}", "mean_with_hq or hq_only")
    groups = {}
    gw_total = 0.0
    for gname in r.get("biological_abundance.groups", dict):
        gk = f"biological_abundance.groups.{gname}"
        zh = r.get(f"{gk}.zh", str)
        gw = r.coef(f"{gk}.weight")
        gw_total += gw
        subs, subzh = {}, {}
        for sname in r.get(f"{gk}.subclasses", dict):
            subs[sname] = r.coef(f"{gk}.subclasses.{sname}")
            subzh[sname] = r.get(f"{gk}.subclasses.{sname}.zh", str)
        if not subs:
            r.fail(f"{gk}.subclasses", f"group {gname} has no sub-classes", "at least one sub-class")
        total = sum(subs.values())
        if total > 1.0 + 1e-9:
            r.fail(f"{gk}.subclasses", f"sub-class weights of {gname} sum to {total:.12g}", "a sum ≤ 1")
        if abs(total - 1.0) > 1e-9:
            log.warning("%s: sub-class weights of group %s sum to %.6g, not 1", path, gname, total)
        groups[gname] = Group(gname, zh, gw, subs, subzh)
    if abs(gw_total - 1.0) > 1e-9:
        r.fail("biological_abundance.groups", f"the group weights sum to {gw_total:.12g}", "a sum of 1")
    all_subs = [s for g in groups.values() for s in g.subclasses]
    dup = sorted({s for s in all_subs if all_subs.count(s) > 1})
    if dup:
        r.fail("biological_abundance.groups", f"sub-class(es) {dup} appear in two groups", "each sub-class once")
    excluded = r.get("biological_abundance.excluded_subclass", str)

    def subclass_list(key):
        vals = r.coef(key, kind="str_list")
        unknown = [v for v in vals if v not in all_subs]
        if unknown:
            r.fail(key + ".value", f"unknown sub-class(es) {unknown}", f"names from {all_subs}")
        return tuple(vals)

    # vegetation cover
    a_veg = r.coef("vegetation_cover.a_veg")
    a_veg_float = r.coef("vegetation_cover.a_veg_float")
    if abs(a_veg_float - a_veg * 10000.0) > 1e-9 * a_veg_float:
        r.fail("vegetation_cover.a_veg_float.value",
               f"a_veg_float = {a_veg_float!r} is not a_veg × 10000 = {a_veg * 10000.0!r}", "a_veg × 10000")
    scales = {}
    for sname in r.get("vegetation_cover.ndvi_scales", dict):
        sk = f"vegetation_cover.ndvi_scales.{sname}"
        coef_name = r.get(f"{sk}.coefficient", str)
        if coef_name not in ("a_veg", "a_veg_float"):
            r.fail(f"{sk}.coefficient", f"unknown coefficient {coef_name!r}", "a_veg or a_veg_float")
        scales[sname] = (r.number(f"{sk}.ndvi_factor", positive=True), a_veg if coef_name == "a_veg" else a_veg_float)
    for need in ("x10000", "float"):
        if need not in scales:
            r.fail(f"vegetation_cover.ndvi_scales.{need}", f"missing key 'vegetation_cover.ndvi_scales.{need}'")
    min_ndvi = r.coef("vegetation_cover.sanity.min_mean_ndvi_x10000")
    max_float = r.coef("vegetation_cover.sanity.max_abs_ndvi_float")

    # water network density
    wk = "water_network_density"
    a_riv, a_lak, a_res = r.coef(f"{wk}.a_riv"), r.coef(f"{wk}.a_lak"), r.coef(f"{wk}.a_res")
    wr_unit = r.coef(f"{wk}.water_resources_unit", kind=str)
    r.coef(f"{wk}.river_length_unit", kind=str)
    water_subs = subclass_list(f"{wk}.water_area_subclasses")
    cap_mode = r.coef(f"{wk}.cap_mode", kind=str)
    if cap_mode not in ("mean", "per_term"):
        r.fail(f"{wk}.cap_mode.value", f"cap_mode = {cap_mode!r}", "mean or per_term")
    wy_enabled = r.get(f"{wk}.wet_year_rule.enabled", bool)
    wy_keep = r.coef(f"{wk}.wet_year_rule.r_keep_max")
    wy_red = r.coef(f"{wk}.wet_year_rule.r_reduce_max")
    wy_above = r.coef(f"{wk}.wet_year_rule.above_reduce_max", positive=False)
    if not wy_keep < wy_red:
        r.fail(f"{wk}.wet_year_rule", f"r_keep_max {wy_keep} ≥ r_reduce_max {wy_red}", "r_keep_max < r_reduce_max")

    # land stress
    a_ero = r.coef("land_stress.a_ero")
    lsw = {k: r.coef(f"land_stress.weights.{k}")
           for k in ("severe_erosion", "moderate_erosion", "construction", "other_stress")}
    constr_subs = subclass_list("land_stress.construction_subclasses")

    # pollution load
    pk = "pollution_load"
    pv_unit = r.coef(f"{pk}.precipitation_volume.unit", kind=str)
    r.get(f"{pk}.precipitation_volume.formula", str)
    pv_factor = r.coef(f"{pk}.precipitation_volume.factor_mm_km2_to_unit")
    em_unit = r.coef(f"{pk}.emission_unit", kind=str)
    terms = {}
    for tname in r.get(f"{pk}.terms", dict):
        tk = f"{pk}.terms.{tname}"
        den = r.get(f"{tk}.denominator", str)
        if den not in ("precipitation_volume", "area"):
            r.fail(f"{tk}.denominator", f"denominator = {den!r}", "precipitation_volume or area")
        terms[tname] = PollutionTerm(tname, r.get(f"{tk}.zh", str), r.get(f"{tk}.column", str), den,
                                     r.coef(f"{tk}.weight"), r.coef(f"{tk}.a"))
    if not terms:
        r.fail(f"{pk}.terms", "no pollution-load terms", "the six terms of HJ 192 §1.6")

    # grades, change classes, fluctuation
    tol = r.number("boundary_tolerance")
    if tol < 0:
        r.fail("boundary_tolerance", f"boundary_tolerance = {tol}", "a number ≥ 0")
    grades = _check_classes(r, "grades.classes", r.get("grades.classes", list), ("code", "zh", "en"))
    for a, b in zip(grades, grades[1:]):
        if a["lower"] is None or a["lower"] != b["upper"]:
            r.fail("grades.classes", f"grades {a['zh']} and {b['zh']} do not meet ({a['lower']} vs {b['upper']})",
                   "classes listed best first, each lower bound equal to the next upper bound")
    changes = _check_classes(r, "change_classes.classes", r.get("change_classes.classes", list), ("level",))
    for i, c in enumerate(changes):
        if c["lower"] is None:
            r.fail(f"change_classes.classes[{i}].lower", "change classes need a lower bound on |ΔEI|", "a number ≥ 0")
        if c["lower"] == 0.0:
            if "zh" not in c:
                r.fail(f"change_classes.classes[{i}].zh", f"missing key 'change_classes.classes[{i}].zh'")
        else:
            for f in ("zh_better", "zh_worse"):
                if f not in c:
                    r.fail(f"change_classes.classes[{i}].{f}", f"missing key 'change_classes.classes[{i}].{f}'")
    for a, b in zip(changes, changes[1:]):
        if a["upper"] != b["lower"]:
            r.fail("change_classes.classes", f"change classes do not meet ({a['upper']} vs {b['lower']})",
                   "ascending classes, each upper bound equal to the next lower bound")
    if changes[0]["lower"] != 0.0:
        r.fail("change_classes.classes[0].lower", "the first change class must start at |ΔEI| = 0", "0")
    fl_delta = r.coef("fluctuation.min_abs_delta")
    fl_rev = r.coef("fluctuation.min_reversals")
    if fl_rev != int(fl_rev) or fl_rev < 1:
        r.fail("fluctuation.min_reversals.value", f"min_reversals = {fl_rev}", "an integer ≥ 1")
    fl_levels = _check_classes(r, "fluctuation.levels", r.get("fluctuation.levels", list), ("zh",))
    fl_label = r.get("fluctuation.flag_label", str)

    # constraint
    grade_names = [g["zh"] for g in grades]
    c_below = r.coef("constraint.value_below_grade")
    levels = {}
    for lv, spec in r.get("constraint.levels", dict).items():
        lk = f"constraint.levels.{lv}"
        try:
            lv_int = int(lv)
        except (TypeError, ValueError):
            r.fail(lk, f"level key {lv!r}", "an integer level")
        if not isinstance(spec, dict):
            r.fail(lk, f"{lk} is {spec!r}", "a mapping")
        cap = spec.get("cap_class")
        if cap is not None and cap not in grade_names:
            r.fail(f"{lk}.cap_class", f"cap_class {cap!r}", f"null or one of {grade_names}")
        steps = spec.get("downgrade_steps")
        if not _is(steps, "int") or steps < 0:
            r.fail(f"{lk}.downgrade_steps", f"downgrade_steps = {steps!r}", "an integer ≥ 0")
        levels[lv_int] = (cap, steps)
    rules = []
    for i, rule in enumerate(r.get("constraint.rules", list)):
        rk = f"constraint.rules[{i}]"
        if not isinstance(rule, dict):
            r.fail(rk, f"{rk} is {rule!r}", "a mapping")
        for f in ("event_type", "severity", "source", "confidence"):
            if not isinstance(rule.get(f), str):
                r.fail(f"{rk}.{f}", f"key '{rk}.{f}' is {rule.get(f)!r}", "a string")
        if rule["confidence"] not in CONFIDENCES:
            r.fail(f"{rk}.confidence", f"confidence {rule['confidence']!r}", "one of A, B, C")
        level = rule.get("level")
        if level is not None:
            if level not in levels:
                r.fail(f"{rk}.level", f"level {level!r} is not defined in constraint.levels",
                       f"one of {sorted(levels)}")
            cap, steps = levels[level]
        else:
            cap, steps = rule.get("cap_class"), rule.get("downgrade_steps")
            if cap is not None and cap not in grade_names:
                r.fail(f"{rk}.cap_class", f"cap_class {cap!r}", f"null or one of {grade_names}")
            if not _is(steps, "int") or steps < 0:
                r.fail(f"{rk}.downgrade_steps", f"downgrade_steps = {steps!r}", "an integer ≥ 0 (or a level)")
        rules.append(ConstraintRule(rule["event_type"], rule["severity"], cap, int(steps), level,
                                    bool(rule.get("verify", False)), rule["confidence"], rule["source"]))

    # function zones
    fk = "function_zones"
    aliases = r.get(f"{fk}.aliases", dict)
    indicators, ind_zh = {}, {}
    for iname in r.get(f"{fk}.indicators", dict):
        ik = f"{fk}.indicators.{iname}"
        gl = r.get(f"{ik}.groups", "str_list")
        bad = [g for g in gl if g not in groups]
        if bad:
            r.fail(f"{ik}.groups", f"unknown group(s) {bad}", f"names from {list(groups)}")
        indicators[iname] = tuple(gl)
        ind_zh[iname] = r.get(f"{ik}.zh", str)
    ftypes, ftype_zh, with_wci = {}, {}, []
    for tname in r.get(f"{fk}.types", dict):
        tk = f"{fk}.types.{tname}"
        ftype_zh[tname] = r.get(f"{tk}.zh", str)
        coefs = {}
        for iname in r.get(f"{tk}.coefficients", dict):
            if iname not in indicators:
                r.fail(f"{tk}.coefficients.{iname}", f"unknown indicator {iname!r}", f"one of {list(indicators)}")
            coefs[iname] = r.coef(f"{tk}.coefficients.{iname}")
        ftypes[tname] = coefs
        if r.get(f"{tk}.water_conservation_index", bool, optional=True, default=False):
            with_wci.append(tname)
    for zh, en in aliases.items():
        if en not in ftypes:
            r.fail(f"{fk}.aliases.{zh}", f"alias {zh!r} points at unknown type {en!r}", f"one of {list(ftypes)}")
    wci_a = r.coef(f"{fk}.water_conservation_index.a")
    wci_w = {g: r.coef(f"{fk}.water_conservation_index.weights.{g}")
             for g in r.get(f"{fk}.water_conservation_index.weights", dict)}
    bad = [g for g in wci_w if g not in groups]
    if bad:
        r.fail(f"{fk}.water_conservation_index.weights", f"unknown group(s) {bad}", f"names from {list(groups)}")

    # land-cover splits
    sk = "landcover_splits"
    pending = tuple(r.get(f"{sk}.pending_classes", "str_list"))
    splits = {}
    for sname in r.get(f"{sk}.rules", dict):
        rk = f"{sk}.rules.{sname}"
        targets = tuple(r.get(f"{rk}.targets", "str_list"))
        bad = [t for t in targets if t not in all_subs]
        if bad or len(targets) < 2:
            r.fail(f"{rk}.targets", f"targets {list(targets)}", f"two or more sub-classes from {all_subs}")
        share_of = r.get(f"{rk}.share_of", str, optional=True)
        if share_of is not None and share_of not in targets:
            r.fail(f"{rk}.share_of", f"share_of {share_of!r} is not a target", f"one of {list(targets)}")
        below = r.get(f"{rk}.below_lowest", str, optional=True)
        if below is not None and below not in targets:
            r.fail(f"{rk}.below_lowest", f"below_lowest {below!r} is not a target", f"one of {list(targets)}")
        thr = None
        if r.get(f"{rk}.fvc_thresholds_pct", optional=True) is not None:
            thr = tuple(float(v) for v in r.coef(f"{rk}.fvc_thresholds_pct", kind="number_list"))
            if list(thr) != sorted(thr) or len(thr) != len(targets):
                r.fail(f"{rk}.fvc_thresholds_pct.value", f"thresholds {list(thr)}",
                       f"{len(targets)} ascending thresholds (one lower bound per target)")
        conf = r.get(f"{rk}.confidence", str)
        if conf not in CONFIDENCES:
            r.fail(f"{rk}.confidence", f"confidence {conf!r}", "one of A, B, C")
        splits[sname] = SplitRule(sname, targets, share_of, below, thr, conf)

    return Hj192Coefficients(
        path=path, version=str(version), raw=raw, composite_weights=cw, display_decimals=decimals, cap_max=cap_max,
        a_bio=a_bio, biodiversity_rule=bd_rule, groups=groups, excluded_subclass=excluded, a_veg=a_veg,
        a_veg_float=a_veg_float, ndvi_scales=scales, min_mean_ndvi_x10000=min_ndvi, max_abs_ndvi_float=max_float,
        a_riv=a_riv, a_lak=a_lak, a_res=a_res, water_resources_unit=wr_unit, water_area_subclasses=water_subs,
        wnd_cap_mode=cap_mode, wet_year_enabled=wy_enabled, wet_year_r_keep_max=wy_keep,
        wet_year_r_reduce_max=wy_red, wet_year_above=wy_above, a_ero=a_ero, land_stress_weights=lsw,
        construction_subclasses=constr_subs, precipitation_volume_unit=pv_unit, precipitation_factor=pv_factor,
        emission_unit=em_unit, pollution_terms=terms, boundary_tolerance=tol, grades=grades, change_classes=changes,
        fluctuation_min_abs_delta=fl_delta, fluctuation_min_reversals=int(fl_rev), fluctuation_levels=fl_levels,
        fluctuation_flag_label=fl_label, constraint_value_below=c_below, constraint_levels=levels,
        constraint_rules=rules, function_aliases=dict(aliases), function_indicators=indicators,
        function_indicator_zh=ind_zh, function_types=ftypes, function_type_zh=ftype_zh,
        function_types_with_wci=tuple(with_wci), wci_a=wci_a, wci_weights=wci_w, splits=splits,
        pending_classes=pending, coefficients=r.coefficients)


@lru_cache(maxsize=8)
def _load_cached(path_str: str, mtime: float) -> Hj192Coefficients:
    path = Path(path_str)
    try:
        raw = load_yaml(path)
    except yaml.YAMLError as exc:
        raise Hj192CoefficientError(f"is not valid YAML ({exc})", path=path, expected="a YAML mapping") from exc
    return _parse(raw, path)


def load_hj192(path=None) -> Hj192Coefficients:
    """The HJ 192-2015 coefficients: the shipped ``indices/hj192_2015.yaml``, or a corrected copy at ``path``.

    Raises :class:`Hj192CoefficientError` (naming the key) for a missing key or a wrong type, ``InputError`` for a
    missing file. Results are cached per (path, modification time).
    """
    p = data_path("indices", FILE_NAME) if path is None else Path(path)
    if not p.is_file():
        raise InputError("coefficient file not found", path=p, expected="a copy of indices/" + FILE_NAME)
    return _load_cached(str(p.resolve()), p.stat().st_mtime)


def as_coefficients(coefficients=None) -> Hj192Coefficients:
    """``None`` → the shipped file; a path → that file; an :class:`Hj192Coefficients` → itself."""
    if isinstance(coefficients, Hj192Coefficients):
        return coefficients
    return load_hj192(coefficients)
