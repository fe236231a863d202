"""What every report section needs: the translator, the results folder, tables built from results tables with
chosen columns, and the reason a section's results are missing (the manifest's skipped stages and problems)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from functools import lru_cache

from ecoassess.report.i18n import format_number, translator
from ecoassess.report.model import Column, Figure, Section, Table
from ecoassess.report.results import ResultsFolder

#: HJ 192-2015 §5.2 grades, best first (data: the standard's class names).
EI_GRADES = ("优", "良", "一般", "较差", "差")
#: Excel sheet names are at most 31 characters; table ids become sheet names.
MAX_TABLE_ID = 31
#: Columns holding years: shown as labels (2024, not 2,024).
YEAR_KEYS = {"year", "from_year", "to_year", "before", "after"}


@dataclass
class Ctx:
    """One report being built: results, language, the ``report`` domain's ``_``, figures by section."""
    results: ResultsFolder
    lang: str
    figures: dict = field(default_factory=dict)

    def __post_init__(self):
        self._ = translator(self.lang, "report")

    def num(self, value, digits=None) -> str:
        """A number for a sentence, as the language writes it."""
        return format_number(value, self.lang, digits)

    def join(self, items) -> str:
        """A list in a sentence: 、 in Chinese, ", " in English."""
        return self._(", ").join(items)

    @property
    def year(self) -> int | None:
        y = self.results.config.get("given", {}).get("year")
        return int(y) if y is not None else None

    @property
    def baseline_year(self) -> int | None:
        y = self.results.config.get("given", {}).get("baseline_year")
        return int(y) if y is not None else None

    def term(self, value):
        """A class name the results hold in Chinese (优, 明显变差, 红线内, 新增 …) in the report's language: English
        from the zh/en pairs of the standards' tables in ``indices/`` and ``layers/``; anything else as it is."""
        if self.lang == "zh" or not isinstance(value, str):
            return value
        return english_terms().get(value.strip(), value)

    def take_figures(self, section_id: str) -> list[Figure]:
        """The figures of ``section_id``, taken once (figures no section took end in the appendix)."""
        return list(self.figures.pop(section_id, []))


@lru_cache(maxsize=1)
def english_terms() -> dict[str, str]:
    """``{Chinese: English}`` of every entry with both a ``zh`` and an ``en`` name (or ``zh_<x>``/``en_<x>``) in the
    shipped YAML of ``indices/`` and ``layers/`` (grades, change classes, activity types, legends). Where two files
    name one Chinese term differently, the first (files in name order) wins."""
    from ecoassess.catalog import data_dir, load_yaml

    terms: dict[str, str] = {}

    def walk(node):
        if isinstance(node, dict):
            for key, zh in node.items():   # zh/en, and pairs such as zh_worse/en_worse
                en = node.get("en" + key[2:]) if isinstance(key, str) and key.startswith("zh") else None
                if isinstance(zh, str) and isinstance(en, str) and zh.strip() and en.strip():
                    terms.setdefault(zh.strip(), en.strip())
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for folder in ("indices", "layers"):
        for path in sorted(data_dir(folder).glob("*.yaml")):
            walk(load_yaml(path))
    return terms


def cell(value, _=None):
    """A results-table value as a raw table cell: numpy numbers become Python numbers, NaN/None become None,
    booleans become the translated yes/no (so that every renderer shows the same)."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, bool):
        return (_("yes") if value else _("no")) if _ else value
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, numbers.Number):
        return value
    try:
        import pandas as pd
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def year_label(value):
    """A year as a label: 2024 → "2024" (None for no value)."""
    v = cell(value)
    if v is None or isinstance(v, str):
        return v
    return str(int(v)) if float(v).is_integer() else str(v)


def make_table(ctx: Ctx, table_id: str, caption: str, df, columns, note: str | None = None,
               scale: dict | None = None) -> Table:
    """A report table from ``df`` with ``columns`` = [(key, label, unit, digits)]; ``scale``: {key: factor} for
    unit changes (m² → hm², share → %). A column the results table lacks (an older run) is left out."""
    assert len(table_id) <= MAX_TABLE_ID, table_id
    scale = scale or {}
    df = df.copy()
    for key in YEAR_KEYS & set(df.columns):  # a year is a label, not a quantity: no digit grouping
        df[key] = [year_label(v) for v in df[key]]
    if "name" in df.columns:  # the run named the whole area in its output language (全区 / study area)
        whole = whole_area_mask(df)
        if whole.any():
            df.loc[whole, "name"] = ctx._("Whole study area")
    cols = [Column(key, label, unit, digits) for key, label, unit, digits in columns if key in df.columns]
    rows = []
    for _, rec in df.iterrows():
        row = []
        for c in cols:
            v = ctx.term(cell(rec.get(c.key), ctx._))
            if c.key in scale and isinstance(v, (int, float)) and not isinstance(v, bool):
                v = round(v * scale[c.key], 10)  # 0.55 × 100 is 55, not 55.00000000000001 in Excel
            row.append(v)
        rows.append(row)
    return Table(table_id, caption, cols, rows, note)


def drop_geometry(df):
    return df.drop(columns=["geometry"]) if "geometry" in getattr(df, "columns", []) else df


def read(ctx: Ctx, name: str):
    """Table ``name`` without its geometry, or None when the run did not write it."""
    return drop_geometry(ctx.results.table(name)) if ctx.results.has(name) else None


def configured(ctx: Ctx, key: str) -> bool:
    """Whether the run's config gives ``key`` (dotted) a value."""
    node = ctx.results.config.get("given", {})
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node or node[part] in (None, {}, []):
            return False
        node = node[part]
    return True


def why_missing(ctx: Ctx, stage: str, table: str, not_configured: str, config_key: str | None = None) -> str:
    """Why ``table`` of ``stage`` is absent, in the reader's words: the stage was skipped (with the run's reason),
    failed (with the run's problem), was not configured (``not_configured``, already translated), or else the
    table was simply not written. ``config_key``: the config entry the table needs (e.g. zones.function_zones);
    when the config does not give it, the reason is ``not_configured`` even though the stage ran."""
    _ = ctx._
    extra = ctx.results.extra
    for s in extra.get("skipped_stages") or ctx.results.manifest.get("skipped_stages") or []:
        if s.get("stage") == stage:
            if not configured(ctx, "imagery") and not configured(ctx, "thermal"):
                # the run's reason is English log text (needs imagery ...); the reader's is the config entry
                return _("No imagery was configured (imagery in the config).")
            return _("The run skipped the {stage} stage: {reason}.").format(stage=stage, reason=s.get("reason", ""))
    problems = [p for p in extra.get("problems") or [] if str(p).startswith(stage)]
    if problems:
        return _("The {stage} stage failed in this run: {problem}.").format(stage=stage, problem="; ".join(problems))
    stages = extra.get("stages")
    if stages is not None and stage not in stages and limited_run(ctx):
        return _("This run computed only the stages {stages} (ecoassess run --stage); run the whole assessment "
                 "for this section.").format(stages=ctx.join(stages))
    if stages is not None and stage not in stages or config_key and not configured(ctx, config_key):
        return not_configured
    return _("The run did not write the table {table}.").format(table=table)


def limited_run(ctx: Ctx) -> bool:
    """Whether the run was limited to some stages (``ecoassess run --stage``): the manifest's
    ``extra.limited_to_stages``, or for an older manifest its command line."""
    extra = ctx.results.extra
    if "limited_to_stages" in extra:
        return extra["limited_to_stages"] is not None
    args = (ctx.results.manifest.get("run") or {}).get("command_line") or []
    return any(str(a) == "--stage" or str(a).startswith("--stage=") for a in args)


def missing_section(ctx: Ctx, section_id: str, title: str, reason: str) -> Section:
    """A section whose results are absent: no blocks, only the reason (each renderer shows ``missing`` once)."""
    return Section(section_id, title, [], missing=reason)


def counties_only(df, code="code"):
    """Rows of counties, without the whole study area's row (code 000000 / is_whole_area)."""
    if "is_whole_area" in df.columns:
        return df[~df["is_whole_area"].fillna(False).astype(bool)]
    return df[df[code].astype(str) != "000000"] if code in df.columns else df


def whole_area_mask(df, code="code"):
    """Which rows are the whole study area's (is_whole_area, else code 000000 — 0 when read back as a number)."""
    import pandas as pd

    if "is_whole_area" in df.columns:
        return df["is_whole_area"].fillna(False).astype(bool)
    if code in df.columns:
        return df[code].astype(str).str.zfill(6) == "000000"
    return pd.Series(False, index=df.index)


def whole_area(df, code="code"):
    return df[whole_area_mask(df, code)]


def sort_counties(df, code="code"):
    """By year (when there is one), then county code, with the whole study area's row last in each year."""
    whole = (df["is_whole_area"].fillna(False).astype(bool) if "is_whole_area" in df.columns
             else df[code].astype(str) == "000000" if code in df.columns else None)
    df = df.assign(_whole=whole if whole is not None else False)
    keys = [k for k in ("year", "_whole", code) if k in df.columns]
    return df.sort_values(keys, kind="stable")


def period_words(ctx: Ctx, years: str) -> str:
    """'2023-2024' as the language says it: 2023—2024年 / 2023 and 2024."""
    parts = str(years).split("-")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return ctx._("{a} and {b}").format(a=parts[0], b=parts[1])
    return str(years)


def period_span(ctx: Ctx, period) -> str:
    """'2023-05-28/2023-09-10' as '2023-05-28 to 2023-09-10'; a list of dates 'a, b, c' joined for the
    language."""
    text = str(period or "")
    if "/" in text:
        start, end = text.split("/", 1)
        return ctx._("{start} to {end}").format(start=start, end=end)
    return ctx.join(p.strip() for p in text.split(",")) if "," in text else text


