"""Methods (standards, catalog versions, the assumptions and unconfirmed [C] coefficients of the EI, the RSEI
principal component) and the data sources with a summary of the run's manifest (inputs and their SHA-256,
package versions, run date, warnings) — what makes the report reproducible."""

from __future__ import annotations

import os

import pandas as pd

from ecoassess.report.model import Paragraph, Section
from ecoassess.report.sections.common import Ctx, make_table, read

#: Characters of a SHA-256 shown in the report (enough to tell files apart; the manifest has them whole).
SHA_CHARS = 12


def methods_section(ctx: Ctx) -> Section:
    _ = ctx._
    blocks: list = [Paragraph(_("The ecological index follows HJ 192-2015 (生态环境状况评价技术规范); "
                                "the RSEI follows Xu (2013); station results are graded to GB 3095-2012, GB 3838-2002, "
                                "GB 15618-2018 and GB 3096-2008. The coefficients and class tables used are kept "
                                "as versioned catalogs:"))]
    catalogs = ctx.results.manifest.get("catalogs") or {}
    if catalogs:
        df = pd.DataFrame({"file": list(catalogs), "version": [str(v) for v in catalogs.values()]})
        blocks.append(make_table(ctx, "catalogs", _("Catalogs of standards and coefficients used"), df, [
            ("file", _("Catalog"), None, None), ("version", _("Version"), None, None)]))
    assumptions = read(ctx, "ei_assumptions")
    if assumptions is not None and len(assumptions):
        grouped = assumptions.groupby("assumption", sort=False)["year"].apply(
            lambda ys: ctx.join(str(y) for y in sorted(set(ys)))).reset_index()
        grouped["unconfirmed"] = grouped["assumption"].str.startswith("[C]").map(
            lambda c: _("unconfirmed [C]") if c else _("assumption"))
        blocks.append(Paragraph(_("The EI rests on the following assumptions and defaults; those marked [C] are "
                                  "coefficients not yet confirmed against the published standard and should be "
                                  "checked before the results are published.")))
        blocks.append(make_table(ctx, "ei_assumptions", _("Assumptions and unconfirmed coefficients of the EI"),
                                 grouped, [("assumption", _("Assumption"), None, None),
                                           ("unconfirmed", _("Kind"), None, None), ("year", _("Years"), None, None)]))
    rsei = ctx.results.extra.get("rsei") or []
    for r in rsei if isinstance(rsei, list) else []:
        q = r.get("normalisation_quantiles") or [None, None]
        blocks.append(Paragraph(_("RSEI {year}: principal component analysis of {n} cells ({joint}); the first "
                                  "component carries {share} % of the variance; indicators normalised by their "
                                  "{low} % and {high} % percentiles; wetness index {wet}.").format(
            year=r.get("year"), n=ctx.num(r.get("n_pixels") or 0),
            joint=_("both years pooled") if r.get("joint_pca") else _("this year alone"),
            share=ctx.num((r.get("pc1_share") or 0) * 100, 1),
            low=ctx.num(q[0] * 100) if q[0] is not None else "", high=ctx.num(q[1] * 100) if q[1] is not None else "",
            wet=r.get("wetness_index", ""))))
    ends = ctx.results.extra.get("fvc_endmembers") or {}
    for year in sorted(ends, key=str):
        e = ends[year] or {}
        if "ndvi_soil" in e:
            blocks.append(Paragraph(_("FVC {year}: NDVI of bare soil {soil} and of full vegetation "
                                      "{veg}.").format(
                year=year, soil=ctx.num(e["ndvi_soil"], 3), veg=ctx.num(e["ndvi_veg"], 3))))
    return Section("methods", _("Methods"), blocks)


def sources_section(ctx: Ctx) -> Section:
    _ = ctx._
    m = ctx.results.manifest
    run = m.get("run") or {}
    started = str(run.get("started_utc") or "").replace("T", " ").rstrip("Z")
    blocks: list = [Paragraph(_("The assessment was run on {started} (UTC) with ecoassess {version}; the full "
                                "record of the run, with every input and output and its SHA-256, is manifest.json "
                                "in the results folder.").format(started=started,
                                                                 version=m.get("ecoassess_version", "")))]
    inputs = m.get("inputs") or []
    if inputs:
        paths = [str(i.get("path", "")) for i in inputs]
        try:
            root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
        except ValueError:
            root = ""
        df = pd.DataFrame({"file": [os.path.relpath(p, root) if root else p for p in paths],
                           "size_mb": [(i.get("size_bytes") or 0) / 1e6 for i in inputs],
                           "sha256": [str(i.get("sha256") or "")[:SHA_CHARS] for i in inputs]})
        blocks.append(make_table(ctx, "inputs", _("Input files"), df, [
            ("file", _("File"), None, None), ("size_mb", _("Size"), "MB", 2),
            ("sha256", _("SHA-256 (first 12 characters)"), None, None)],
            note=_("Paths relative to {root}.").format(root=root) if root else None))
    packages = m.get("packages") or {}
    if packages:
        df = pd.DataFrame({"package": list(packages), "version": [str(v) for v in packages.values()]})
        blocks.append(make_table(ctx, "packages", _("Software versions"), df, [
            ("package", _("Package"), None, None), ("version", _("Version"), None, None)]))
    extra = ctx.results.extra
    notes = [str(w) for w in (m.get("warnings") or [])] + [str(w) for w in (extra.get("input_warnings") or [])]
    problems = [str(p) for p in (extra.get("problems") or [])]
    if notes or problems:
        df = pd.DataFrame({"kind": [_("warning")] * len(notes) + [_("failed part")] * len(problems),
                           "text": notes + problems})
        blocks.append(make_table(ctx, "run_warnings", _("Warnings and failed parts of the run"), df, [
            ("kind", _("Kind"), None, None), ("text", _("Message"), None, None)]))
    else:
        blocks.append(Paragraph(_("The run completed every part without warnings.")))
    return Section("sources", _("Data sources and run record"), blocks)
