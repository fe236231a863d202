"""What the county ecological status report (县域生态环境状况报告) says, built from a results folder in one
language.

:func:`build_report` returns a :class:`~ecoassess.report.model.Report`: title page data, the summary (opening with
the early warnings, 预警), a section per part of the assessment (HJ 192-2015 EI, RSEI, vegetation, land cover,
red lines, monitoring network, function-zone counties), methods and data sources. A section appears when its
results exist and otherwise says why they are missing. All wording comes from the ``report`` gettext domain;
table values stay raw. Each part's section is built in :mod:`ecoassess.report.sections`.
"""

from __future__ import annotations

from ecoassess.report.i18n import check_language
from ecoassess.report.model import Figure, Paragraph, Report, Section, Table
from ecoassess.report.results import ResultsFolder
from ecoassess.report.sections.common import EI_GRADES, Ctx, counties_only, make_table, period_words, \
    read, whole_area

#: Figure id prefix → section id, longest prefix first (ei_change_* before ei_*).
FIGURE_SECTIONS = (("ei_change_", "ei"), ("ei_", "ei"), ("rsei_", "rsei"), ("ndvi_", "vegetation"),
                   ("fvc_", "vegetation"), ("landcover_", "landcover"), ("redline_", "redline"),
                   ("stations", "network"), ("station_", "network"), ("network_", "network"))


def build_report(results: ResultsFolder, figures: list[Figure], lang: str) -> Report:
    """The report of ``results`` in ``lang`` with ``figures`` (from the maps) placed in their sections by id."""
    from ecoassess.report.sections import ecology, landcover, methods, network, redline

    check_language(lang)
    ctx = Ctx(results, lang, place_figures(figures))
    _ = ctx._
    warnings = warnings_frame(results, lang)
    sections = [summary_section(ctx, warnings), ecology.ei_section(ctx), ecology.rsei_section(ctx),
                ecology.vegetation_section(ctx), landcover.landcover_section(ctx), redline.redline_section(ctx),
                network.network_section(ctx), ecology.function_zone_section(ctx), warnings_section(ctx, warnings),
                methods.methods_section(ctx), methods.sources_section(ctx)]
    appendix = [fig for figs in ctx.figures.values() for fig in figs]  # unknown ids, or a section without results
    if appendix:
        sections.append(Section("appendix", _("Appendix: other figures"), list(appendix)))
    title, subtitle = title_page(ctx)
    run = results.manifest.get("run") or {}
    date = str(run.get("ended_utc") or run.get("started_utc") or "")[:10]
    return Report(lang, title, subtitle, date, sections)


def place_figures(figures) -> dict[str, list[Figure]]:
    """``{section id: [figures]}`` by each figure's id prefix, in the order given; unknown ids go to the
    appendix."""
    placed: dict[str, list[Figure]] = {}
    for fig in figures or []:
        section = next((s for prefix, s in FIGURE_SECTIONS if fig.id.startswith(prefix)), "appendix")
        placed.setdefault(section, []).append(fig)
    return placed


def title_page(ctx: Ctx) -> tuple[str, str]:
    """Title (study area and year(s)) and subtitle (counties, ecoassess version)."""
    _ = ctx._
    given = ctx.results.config.get("given", {})
    area = given.get("name") or _("the study area")
    if ctx.lang == "zh" and area[-1:].isascii() and not area[-1:].isspace():
        area += " "   # "示例区 (sample) 2024年", not "(sample)2024年"
    year, base = ctx.year, ctx.baseline_year
    if year is not None:
        title = _("Ecological status report of {area}, {year}").format(area=area, year=year)
    else:
        title = _("Ecological status report of {area}").format(area=area)
    names = county_names(ctx)
    version = ctx.results.manifest.get("ecoassess_version", "")
    parts = []
    if names:
        parts.append(_("Counties assessed: {names}.").format(names=ctx.join(names)))
    if base is not None and year is not None and base != year:
        parts.append(_("Compared with {baseline}.").format(baseline=base))
    parts.append(_("Produced with ecoassess {version}.").format(version=version))
    subtitle = parts[0]
    for part in parts[1:]:
        subtitle = _("{previous} {next}").format(previous=subtitle, next=part)
    return title, subtitle


def county_names(ctx: Ctx) -> list[str]:
    for name, field in (("county_ei", "name"), ("county_vegetation", "name"), ("county_rsei", "name")):
        df = read(ctx, name)
        if df is not None and field in df.columns:
            return list(dict.fromkeys(str(n) for n in counties_only(df)[field].dropna()))
    return []


# -- early warnings --------------------------------------------------------------------------------------------

def warnings_frame(results: ResultsFolder, lang: str):
    """The early warnings (预警), most serious first: the rules of indices/early_warning.yaml applied to the saved
    results (:func:`ecoassess.report.warnings.derive_warnings`), worded in ``lang``, with each rule's title."""
    from ecoassess.report.warnings import derive_warnings, rule_titles

    df = derive_warnings(results, lang=check_language(lang), strict=False)
    titles = rule_titles(lang)
    df["rule_title"] = [titles.get(str(r), str(r)) for r in df["rule"]]
    return df


def warnings_table(ctx: Ctx, df) -> Table:
    """Every warning with its finding and basis (the section after the results)."""
    _ = ctx._
    columns = [("level", _("Level"), None, None), ("county_name", _("County"), None, None),
               ("rule_title", _("Warning"), None, None), ("message", _("Finding"), None, None),
               ("source", _("Basis"), None, None)]
    return make_table(ctx, "early_warnings", _("Early warnings"), df, columns)


def warnings_by_kind(ctx: Ctx, df) -> Table:
    """The warnings counted per kind, most serious first, with the counties they concern (the summary's table)."""
    import pandas as pd

    _ = ctx._
    rows = []
    for (level, title), group in df.groupby(["level", "rule_title"], sort=False):
        counties = list(dict.fromkeys(str(c) for c in group["county_name"].dropna()))
        rows.append({"level": level, "rule_title": title, "n": len(group), "counties": ctx.join(counties)})
    columns = [("level", _("Level"), None, None), ("rule_title", _("Warning"), None, None),
               ("n", _("Number"), None, 0), ("counties", _("Counties"), None, None)]
    return make_table(ctx, "warnings_by_kind", _("Early warnings by kind"), pd.DataFrame(rows), columns)


def warnings_block(ctx: Ctx, df) -> Section:
    """What the summary opens with: the warnings per kind, and where the full list is."""
    _ = ctx._
    title = _("Early warnings")
    if not len(df):
        return Section("summary_warnings", title, [Paragraph(_("No early warning was raised by this run."))])
    text = _("This run raised {n} early warnings of {kinds} kinds; the section on early warnings lists each with its "
             "value, limit and basis. Each should be checked on site.").format(
        n=ctx.num(len(df)), kinds=ctx.num(int(df["rule_title"].nunique())))
    return Section("summary_warnings", title, [Paragraph(text), warnings_by_kind(ctx, df)])


def warnings_section(ctx: Ctx, df) -> Section:
    """Every early warning, most serious first (indices/early_warning.yaml gives the rules and their sources)."""
    _ = ctx._
    title = _("Early warnings in detail")
    if not len(df):
        return Section("warnings", title, [Paragraph(_("No early warning was raised by this run."))])
    intro = _("Each warning below follows from a rule applied to this run's results; the rules, their thresholds "
              "and their sources are kept in indices/early_warning.yaml.")
    return Section("warnings", title, [Paragraph(intro), warnings_table(ctx, df)])


# -- summary ---------------------------------------------------------------------------------------------------

def grade_counts(county_ei, year) -> dict[str, int]:
    """Counties per HJ 192 grade in ``year`` (the whole study area's row left out), in grade order."""
    rows = counties_only(county_ei)
    rows = rows[rows["year"].astype(int) == int(year)]
    counts = rows["grade"].value_counts()
    order = [g for g in EI_GRADES if g in counts] + sorted(g for g in counts.index if g not in EI_GRADES)
    return {g: int(counts[g]) for g in order}


def summary_section(ctx: Ctx, warnings) -> Section:
    """The summary in plain words: the early warnings first, then grades and changes."""
    _ = ctx._
    blocks: list = [warnings_block(ctx, warnings)]
    ei = read(ctx, "county_ei")
    if ei is not None and len(ei):
        year = ctx.year if ctx.year in set(ei["year"].astype(int)) else int(ei["year"].max())
        counts = grade_counts(ei, year)
        n = sum(counts.values())
        parts = [_("{grade} {n}").format(grade=ctx.term(g), n=ctx.num(k)) for g, k in counts.items()]
        blocks.append(Paragraph(_("In {year}, the ecological index (EI, HJ 192-2015) of the {n} counties is "
                                  "graded as follows: {parts}.").format(year=year, n=ctx.num(n),
                                                                         parts=ctx.join(parts))))
        whole = whole_area(ei)
        whole = whole[whole["year"].astype(int) == year]
        if len(whole):
            blocks.append(Paragraph(_("The EI of the whole study area is {ei} ({grade}).").format(
                ei=ctx.num(float(whole["ei"].iloc[0]), 2), grade=ctx.term(whole["grade"].iloc[0]))))
    change = read(ctx, "county_ei_change")
    if change is not None and len(change):
        blocks.append(Paragraph(change_sentence(ctx, change)))
    if len(blocks) == 1:
        blocks.append(Paragraph(_("No ecological index was computed in this run: see the section on the "
                                  "ecological index for the reason.")))
    return Section("summary", _("Summary"), blocks)


def change_sentence(ctx: Ctx, change) -> str:
    """Which counties' EI changed and by how much (HJ 192-2015 §5.3 change classes)."""
    _ = ctx._
    rows = counties_only(change)
    years = period_words(ctx, rows["years"].iloc[0]) if "years" in rows.columns and len(rows) else ""
    changed = rows[rows["change_class"].astype(str) != "无明显变化"]
    if not len(changed):
        return _("Between {years}, no county's EI changed markedly (all: 无明显变化).").format(years=years)
    items = [_("{name} ΔEI {delta} ({change_class})").format(
        name=r["name"], delta=ctx.num(float(r["delta_ei"]), 2), change_class=ctx.term(r["change_class"]))
        for _i, r in changed.sort_values("delta_ei").iterrows()]
    return _("Between {years}, the EI of {n} of {total} counties changed: {items}; the others show no marked "
             "change.").format(years=years, n=ctx.num(len(changed)), total=ctx.num(len(rows)),
                               items=ctx.join(items))
