"""Early warnings (预警, issue 22 part 3): the rules of ``indices/early_warning.yaml`` applied to a run's result
tables, one row per finding (:data:`WARNING_COLUMNS`), most serious level first.

The same derivation serves the pipeline (``ctx.result.tables``, written as the table ``early_warnings`` in the
run's language) and ``ecoassess report`` (the tables of a results folder, in the report's language): messages,
units, sources and level labels are message ids of the gettext domain ``warnings`` filled from the row.
"""

from __future__ import annotations

import logging
import math
import re
import string
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError
from ecoassess.report.i18n import DEFAULT_LANGUAGE, check_language, format_number, translator
from ecoassess.stages.base import ALERT_COLUMNS

log = logging.getLogger(__name__)

DOMAIN = "warnings"
RULES_FILE = "early_warning.yaml"
#: the columns of the ``early_warnings`` table
WARNING_COLUMNS = tuple(ALERT_COLUMNS)

#: the tables a run can write (README *Results*); a rule naming another table is a mistake in the rule file
KNOWN_TABLES = frozenset({
    "county_vegetation", "county_rsei", "redline_rsei", "function_zones_rsei", "rsei_pca", "county_ei",
    "county_ei_change", "function_zone_indicators", "ei_assumptions", "county_vegetation_change", "scene_quality",
    "landcover_class_areas", "landcover_transitions", "landcover_change", "landcover_habitat", "redline_patches",
    "redline_unit_summary", "redline_county_summary", "stations", "air_daily", "air_station_annual",
    "water_sections", "water_county_shares", "drinking_water_sources", "soil_points", "noise_measurements",
    "ecology_plots", "network_county_summary", "network_zone_summary", "network_coverage", "network_river_exits",
    "network_representativeness", "proposed_sites", "network_rejected_rows"})
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_true", "is_false", "notna")
_RULE_FIELDS = {"id", "title", "stage", "level", "table", "where", "for_each", "across_years", "grades", "when", "subject",
                "indicator", "value", "limit", "unit", "digits", "dates", "translate", "source", "confidence",
                "message"}
_REQUIRED = ("id", "title", "stage", "level", "table", "subject", "indicator", "value", "source", "message")
_SUBJECT_KEYS = ("type", "id", "name", "county_code", "county_name")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def load_rules(path=None) -> dict:
    """The rule file (``indices/early_warning.yaml`` by default), checked: an unknown table, operator, level, map
    or field is an :class:`InputError` naming the rule and the field."""
    path = Path(path) if path is not None else data_path("indices", RULES_FILE)
    try:
        spec = load_yaml(path)
    except FileNotFoundError:
        raise InputError("no such rule file", path=path) from None
    except Exception as exc:  # noqa: BLE001 - a YAML syntax error, named with its file
        raise InputError(f"not a readable YAML file ({exc})", path=path) from None
    check_rules(spec, path)
    return spec


def check_rules(spec, path=None) -> None:
    """Every rule of ``spec`` well-formed (see :func:`load_rules`)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("rules"), list) or not spec.get("levels"):
        raise InputError("a rule file has `levels` and a list of `rules`", path=path, field="rules",
                         expected="see indices/early_warning.yaml")
    levels = [lv["id"] for lv in spec["levels"]]
    maps = spec.get("maps") or {}
    seen = set()
    for i, rule in enumerate(spec["rules"]):
        name = rule.get("id", f"#{i + 1}") if isinstance(rule, dict) else f"#{i + 1}"

        def bad(field, msg, expected=None, name=name):
            raise InputError(f"rule {name}: {msg}", path=path, field=f"rules.{name}.{field}", expected=expected)

        if not isinstance(rule, dict):
            bad("", "not a mapping")
        for key in _REQUIRED:
            if key not in rule:
                bad(key, "missing")
        unknown = sorted(set(rule) - _RULE_FIELDS)
        if unknown:
            bad(unknown[0], "unknown field", ", ".join(sorted(_RULE_FIELDS)))
        if name in seen:
            bad("id", "used by two rules")
        seen.add(name)
        if rule["table"] not in KNOWN_TABLES:
            bad("table", f"unknown table {rule['table']!r}", "a table of the results (README)")
        if rule["level"] not in levels:
            bad("level", f"unknown level {rule['level']!r}", " or ".join(levels))
        for part in ("where", "when"):
            for j, cond in enumerate(rule.get(part) or []):
                if not isinstance(cond, dict) or "column" not in cond:
                    bad(f"{part}[{j}]", "a condition is {column, op, value}")
                if cond.get("op") not in OPERATORS:
                    bad(f"{part}[{j}].op", f"unknown operator {cond.get('op')!r}", " ".join(OPERATORS))
                if cond["op"] in ("in", "not_in") and not isinstance(cond.get("value"), list):
                    bad(f"{part}[{j}].value", f"{cond['op']} needs a list")
        subject = rule["subject"]
        if not isinstance(subject, dict) or set(subject) - set(_SUBJECT_KEYS) or "type" not in subject:
            bad("subject", "unknown or missing keys", "type, id, name, county_code, county_name")
        for field in ("value", "limit"):
            ref = rule.get(field)
            if isinstance(ref, dict) and (ref.get("map") not in maps or "column" not in ref):
                bad(field, f"unknown map {ref.get('map')!r}", " or ".join(maps) or "a map in `maps`")
        years = rule.get("across_years")
        if years is not None:
            grades = rule.get("grades") or {}
            if not {"key", "year"} <= set(years) or ("grade" in years) == ("classify" in years):
                bad("across_years", "needs key, year and one of grade or classify")
            if not grades.get("labels") or len(grades.get("lower") or []) != len(grades["labels"]):
                bad("grades", "labels (worst first) and as many lower bounds")
        translate = rule.get("translate") or {}
        if not isinstance(translate, dict) or not all(isinstance(v, list) for v in translate.values()):
            bad("translate", "a mapping column → list of the values shown as words")
        for j, entry in enumerate(rule.get("for_each") or []):
            if not isinstance(entry, dict):
                bad(f"for_each[{j}]", "a mapping of variables")


def derive_warnings(tables, rules=None, lang: str | None = None, strict: bool = True) -> pd.DataFrame:
    """The early warnings of a run: every rule of ``rules`` (a rule file path or its parsed mapping; default the
    shipped ``indices/early_warning.yaml``) applied to ``tables`` (``{name: DataFrame}``, or a
    :class:`~ecoassess.report.results.ResultsFolder`), worded in ``lang`` (default zh).

    A rule whose table is absent is skipped; a column a rule names that its table lacks is an
    :class:`InputError` naming the rule, the field and the table — or, with ``strict=False`` (a run's own tables,
    where a quantity never observed has no column; results saved by an older version), that rule (or that
    ``for_each`` entry of it) is left out with a logged note."""
    lang = check_language(lang or DEFAULT_LANGUAGE)
    spec = load_rules(rules) if rules is None or isinstance(rules, (str, Path)) else rules
    if not isinstance(rules, (str, Path)) and rules is not None:
        check_rules(spec)
    tables = _as_mapping(tables)
    _ = translator(lang, DOMAIN)
    labels = {lv["id"]: _(lv["label"]) for lv in spec["levels"]}
    rank = {lv["id"]: i for i, lv in enumerate(spec["levels"])}
    rows = []
    for order, rule in enumerate(spec["rules"]):
        table = tables.get(rule["table"])
        if table is None:
            continue
        try:
            found_rows = list(_apply(rule, pd.DataFrame(table), spec.get("maps") or {}, _, lang, strict))
        except InputError as exc:
            if strict:
                raise
            log.warning("early-warning rule %s not applied: %s", rule["id"], exc)
            continue
        for found in found_rows:
            rows.append((rank[rule["level"]], order, len(rows), {**found, "level": labels[rule["level"]]}))
    rows.sort(key=lambda r: r[:3])
    out = pd.DataFrame([r[3] for r in rows], columns=list(WARNING_COLUMNS))
    return out.astype({"value": "float64", "limit": "float64"})


class _Tables(Mapping):
    """A results folder's tables as a mapping (read when a rule asks for one)."""

    def __init__(self, folder):
        self.folder = folder

    def __getitem__(self, name):
        if not self.folder.has(name):
            raise KeyError(name)
        return self.folder.table(name)

    def __iter__(self):
        return iter(self.folder.tables)

    def __len__(self):
        return len(self.folder.tables)


def _as_mapping(tables) -> Mapping:
    if hasattr(tables, "table") and hasattr(tables, "has"):
        return _Tables(tables)
    return tables


def _apply(rule: dict, table: pd.DataFrame, maps: dict, _, lang: str, strict: bool = True) -> list[dict]:
    """The findings of one rule on its table. Not ``strict``: a ``for_each`` entry whose column the table lacks
    (no SO2 was observed all year, so the annual table has no SO2 column) is left out with a logged note; the
    others still apply."""
    table = _filter(rule, "where", table.reset_index(drop=True), {})
    if rule.get("across_years"):
        table = _across_years(rule, table)
    found = []   # (row position, for_each position, finding): a subject's findings together, in table order
    for k, variables in enumerate(rule.get("for_each") or [{}]):
        variables = {n: (_(v) if n == "label" and isinstance(v, str) else v) for n, v in variables.items()}
        try:
            hits = _filter(rule, "when", table, variables)
            findings = [(i, k, _finding(rule, row, variables, maps, _, lang))
                        for i, row in zip(hits.index, hits.to_dict("records"))]
        except InputError as exc:
            if strict or "has no column" not in str(exc):
                raise
            log.info("early-warning rule %s%s not applied: %s", rule["id"],
                     f" ({variables})" if variables else "", exc)
            continue
        found += findings
    return [f for _i, _k, f in sorted(found, key=lambda x: x[:2])]


def _column(rule: dict, field: str, table: pd.DataFrame, name: str, variables: dict) -> str:
    col = _fill(name, variables, rule, field)
    if col not in table.columns:
        raise InputError(f"rule {rule['id']}: table {rule['table']} has no column {col!r}",
                         field=f"rules.{rule['id']}.{field}",
                         expected="one of " + ", ".join(map(str, table.columns)))
    return col


def _fill(template, variables: dict, rule: dict, field: str) -> str:
    if not isinstance(template, str) or not variables:
        return template
    try:
        return template.format_map(variables)
    except (KeyError, ValueError) as exc:
        raise InputError(f"rule {rule['id']}: placeholder {exc} is not a for_each variable",
                         field=f"rules.{rule['id']}.{field}", expected=", ".join(variables)) from None


def _filter(rule: dict, part: str, table: pd.DataFrame, variables: dict) -> pd.DataFrame:
    keep = pd.Series(True, index=table.index)
    for j, cond in enumerate(rule.get(part) or []):
        col = _column(rule, f"{part}[{j}].column", table, cond["column"], variables)
        keep &= _holds(table[col], cond["op"], cond.get("value"))
    return table[keep]


def _holds(values: pd.Series, op: str, target) -> pd.Series:
    """Where ``values op target`` holds; a missing value never does (except for ``ne``/``not_in``, which it does
    not hold either: a row without a value is not a finding)."""
    present = values.notna()
    if op == "notna":
        return present
    if op in ("is_true", "is_false"):
        words = values.map(lambda v: str(v).strip().lower() if v is not None and v is not pd.NA else "")
        return present & words.isin(_TRUE if op == "is_true" else _FALSE)
    if op in ("in", "not_in"):
        inside = values.astype(object).map(lambda v: _same_in(v, target))
        return present & (inside if op == "in" else ~inside)
    if op in ("eq", "ne"):
        same = values.astype(object).map(lambda v: _same_in(v, [target]))
        return present & (same if op == "eq" else ~same)
    numbers = pd.to_numeric(values, errors="coerce")
    t = float(target)
    return numbers.notna() & {"lt": numbers < t, "le": numbers <= t, "gt": numbers > t, "ge": numbers >= t}[op]


def _same_in(v, targets) -> bool:
    """``v`` equals one of ``targets``, comparing numbers as numbers and everything else as text (a code read
    back as an integer from a CSV still matches "519901")."""
    for t in targets:
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            try:
                if float(v) == float(t):
                    return True
            except (TypeError, ValueError):
                pass
        elif str(v) == str(t):
            return True
    return False


def _across_years(rule: dict, table: pd.DataFrame) -> pd.DataFrame:
    """One row per key: its last year, with the first year's grade beside it (module docstring of the YAML)."""
    spec, grades = rule["across_years"], rule["grades"]
    key = _column(rule, "across_years.key", table, spec["key"], {})
    year = _column(rule, "across_years.year", table, spec["year"], {})
    labels, lower = list(grades["labels"]), list(grades["lower"])
    t = table.copy()
    if "classify" in spec:
        col = _column(rule, "across_years.classify", table, spec["classify"], {})
        t["grade"] = pd.to_numeric(t[col], errors="coerce").map(lambda v: _grade_of(v, labels, lower))
    else:
        col = _column(rule, "across_years.grade", table, spec["grade"], {})
        t["grade"] = t[col]
    t = t[t["grade"].isin(labels)]
    t["_year"] = pd.to_numeric(t[year], errors="coerce")
    t = t.dropna(subset=["_year"]).sort_values([key, "_year"], kind="stable")
    out = []
    for _, group in t.groupby(key, sort=False):
        if group["_year"].nunique() < 2:
            continue
        first, last = group.iloc[0], group.iloc[-1].to_dict()
        i0, i1 = labels.index(first["grade"]), labels.index(last["grade"])
        # years as text: a year is a label, not a number grouped in thousands
        last.update(baseline_year=str(int(first["_year"])), baseline_grade=first["grade"], year=str(int(last["_year"])),
                    baseline_grade_lower=lower[i0], grade_steps=i1 - i0)
        out.append(last)
    columns = list(t.columns) + ["baseline_year", "baseline_grade", "baseline_grade_lower", "grade_steps"]
    return pd.DataFrame(out, columns=columns).drop(columns="_year")


def _grade_of(v: float, labels: list, lower: list):
    """The grade of ``v``: the best grade whose lower bound it reaches (lower bound inclusive)."""
    if v is None or math.isnan(v):
        return None
    grade = labels[0]
    for label, low in zip(labels, lower):
        if low is None or v >= low:
            grade = label
    return grade


def _finding(rule: dict, row: dict, variables: dict, maps: dict, _, lang: str) -> dict:
    rid, subject = rule["id"], rule["subject"]
    out = {"stage": rule["stage"], "rule": rid, "subject_type": subject["type"]}
    for key in _SUBJECT_KEYS[1:]:
        col = subject.get(key)
        if col is not None and col not in row:
            raise InputError(f"rule {rid}: table {rule['table']} has no column {col!r}",
                             field=f"rules.{rid}.subject.{key}", expected="one of " + ", ".join(map(str, row)))
        out[key if key.startswith("county") else f"subject_{key}"] = _text(row.get(col)) if col else None
    out["value"] = _number(rule, "value", row, variables, maps)
    out["limit"] = _number(rule, "limit", row, variables, maps)
    context = {**{k: v for k, v in row.items() if isinstance(k, str)}, **variables}
    out["indicator"] = _placeholders(rule, "indicator", str(rule["indicator"]), context, lang, translate=None)
    out["unit"] = _(_fill(rule.get("unit") or "", variables, rule, "unit")) if rule.get("unit") else None
    context.update({k: out[k] for k in ("value", "limit", "unit", "indicator", "subject_id", "subject_name")})
    for col in rule.get("dates") or []:
        context[col] = _date(context.get(col))
    for col, known in (rule.get("translate") or {}).items():   # keys of the data shown as words (air → 空气)
        if context.get(col) in known:
            context[col] = _(context[col])
    out["source"] = published_source(_placeholders(rule, "source", rule["source"], context, lang, translate=_))
    out["message"] = _placeholders(rule, "message", rule["message"], context, lang, translate=_)
    return out


def _number(rule: dict, field: str, row: dict, variables: dict, maps: dict):
    ref = rule.get(field)
    if ref is None:
        return math.nan
    if isinstance(ref, (int, float)) and not isinstance(ref, bool):
        return float(ref)
    mapping = None
    if isinstance(ref, dict):
        mapping, ref = maps[ref["map"]], ref["column"]
    col = _fill(ref, variables, rule, field)
    if col not in row:
        raise InputError(f"rule {rule['id']}: table {rule['table']} has no column {col!r}",
                         field=f"rules.{rule['id']}.{field}", expected="one of " + ", ".join(map(str, row)))
    v = row[col]
    if mapping is not None:
        v = mapping.get(str(v))
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _placeholders(rule: dict, field: str, template: str, context: dict, lang: str, translate) -> str:
    """``template`` (translated when ``translate``) with its {placeholders} from ``context``, numbers formatted
    for ``lang`` with the rule's ``digits``."""
    text = translate(template) if translate else template
    digits = rule.get("digits") or {}
    names = [f[1] for f in string.Formatter().parse(text) if f[1]]
    values = {}
    for name in names:
        if name not in context:
            raise InputError(f"rule {rule['id']}: {field} names {{{name}}}, which is neither a column of "
                             f"{rule['table']} nor a variable", field=f"rules.{rule['id']}.{field}",
                             expected="one of " + ", ".join(map(str, context)))
        values[name] = _shown(context[name], lang, digits.get(name))
    return re.sub(r"\s+", " ", text.format_map(values)).strip()


def _shown(v, lang: str, digits) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__") \
            or isinstance(v, str):
        return str(v)
    v = float(v)
    if digits is not None:
        return format_number(v, lang, int(digits))
    return format_number(float(f"{v:.6g}"), lang)


def _text(v):
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def _date(v) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    try:
        return pd.Timestamp(v).date().isoformat()
    except (TypeError, ValueError):
        return str(v)


_STANDARDS_REF = re.compile(r"(?<=[(（])STANDARDS §[\d.]+[;；]\s*|\s*[;；]?\s*STANDARDS §[\d.]+(?=[)）;；]|$)"
                            r"|\s*[(（]STANDARDS §[\d.]+[)）]")


def published_source(text: str) -> str:
    """``text`` without the references to STANDARDS.md (the project's digest of the standards, which the rule file
    cites for its reviewers): a published warning cites the standard itself. "（{ph_band}；STANDARDS §7.4）" →
    "（{ph_band}）", "分级（STANDARDS §1.7）" → "分级", "（STANDARDS §6.1；未经核实）" → "（未经核实）"."""
    return _STANDARDS_REF.sub("", text)


def rule_titles(lang: str | None = None, rules=None) -> dict[str, str]:
    """``{rule id: title}`` in ``lang``: what each kind of warning is called (the report counts warnings by it)."""
    spec = load_rules(rules) if rules is None or isinstance(rules, (str, Path)) else rules
    _ = translator(check_language(lang or DEFAULT_LANGUAGE), DOMAIN)
    return {rule["id"]: _(rule["title"]) for rule in spec["rules"]}


def catalog_messages(rules=None) -> list[str]:
    """Every message id the rule file uses (messages, sources, units, for_each labels, level labels): what the
    ``warnings`` catalog must translate."""
    spec = load_rules(rules) if rules is None or isinstance(rules, (str, Path)) else rules
    ids = [lv["label"] for lv in spec["levels"]]
    for rule in spec["rules"]:
        ids += [rule["title"], rule["message"], rule["source"]]
        for variables in rule.get("for_each") or [{}]:
            if rule.get("unit"):
                ids.append(rule["unit"].format_map(variables) if variables else rule["unit"])
            if "label" in variables:
                ids.append(variables["label"])
        for known in (rule.get("translate") or {}).values():
            ids += list(known)
    return sorted(set(i for i in ids if i))
