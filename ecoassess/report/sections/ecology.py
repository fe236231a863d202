"""Sections on ecological quality: the HJ 192-2015 EI and its change, RSEI, vegetation (NDVI/FVC) and the
function-zone counties (HJ 192-2015 §6)."""

from __future__ import annotations

from ecoassess.report.model import Paragraph, Section
from ecoassess.report.sections.common import Ctx, counties_only, configured, make_table, missing_section, \
    period_span, read, sort_counties, why_missing

RSEI_GRADE_SHARES = ("grade5_excellent_share", "grade4_good_share", "grade3_moderate_share", "grade2_fair_share",
                     "grade1_poor_share")


def ei_section(ctx: Ctx) -> Section:
    """County EI with its sub-indices and grade (HJ 192-2015 §4–5), and its change (§5.3)."""
    _ = ctx._
    title = _("Ecological index (EI) and its sub-indices")
    ei = read(ctx, "county_ei")
    if ei is None:
        section = missing_section(ctx, "ei", title, why_missing(
            ctx, "hj192 ei", "county_ei", _("The HJ 192-2015 ecological index was not configured (hj192 in the "
                                            "config).")))
        parts = read(ctx, "county_ei_landcover_parts")
        if parts is not None and len(parts):  # a land-cover-only run: the sub-indices land cover gives alone
            section.blocks += [
                Paragraph(_("Without imagery the EI cannot be computed; the two sub-indices that rest on land "
                            "cover alone are given: biological abundance and land stress (HJ 192-2015).")),
                make_table(ctx, "ei_landcover_parts", _("Sub-indices from land cover by county"),
                           sort_counties(parts), [
                               ("name", _("County"), None, None), ("year", _("Year"), None, None),
                               ("biological_abundance", _("Biological abundance"), None, 2),
                               ("land_stress", _("Land stress"), None, 2)])]
        return section
    blocks: list = [Paragraph(_("The ecological index (EI) combines five sub-indices of HJ 192-2015 — "
                                "biological abundance, vegetation cover, water network density, land stress and "
                                "pollution load — and is then limited by the environmental restriction index "
                                "(events such as major pollution incidents). Grades: 优 (EI ≥ 75), 良 (55–75), "
                                "一般 (35–55), 较差 (20–35), 差 (< 20)."))]
    cols = [("name", _("County"), None, None), ("year", _("Year"), None, None),
            ("biological_abundance", _("Biological abundance"), None, 2),
            ("vegetation_cover", _("Vegetation cover"), None, 2),
            ("water_network_density", _("Water network density"), None, 2),
            ("land_stress", _("Land stress"), None, 2), ("pollution_load", _("Pollution load"), None, 2),
            ("ei_before_constraint", _("EI before restriction"), None, 2),
            ("constraint_events", _("Restriction events"), None, 0),
            ("ei", _("EI"), None, 2), ("grade", _("Grade"), None, None)]
    blocks += ei_range_paragraphs(ctx, ei)
    blocks.append(make_table(ctx, "ei_counties", _("Ecological index and sub-indices by county"),
                             sort_counties(ei), cols))
    change = read(ctx, "county_ei_change")
    if change is not None and len(change):
        blocks.append(make_table(ctx, "ei_change", _("Change of the ecological index by county"), change, [
            ("name", _("County"), None, None), ("years", _("Period"), None, None),
            ("ei_baseline", _("EI (baseline)"), None, 2), ("ei", _("EI"), None, 2),
            ("delta_ei", _("ΔEI"), None, 2),
            ("delta_ei_before_constraint", _("ΔEI before restriction"), None, 2),
            ("change_class", _("Change class"), None, None), ("fluctuation_level", _("Fluctuation"), None, None)]))
    else:
        blocks.append(Paragraph(_("No change of the EI is shown: the run had no EI of an earlier year "
                                  "(baseline_year or hj192.previous_results in the config).")))
    blocks += ctx.take_figures("ei")
    return Section("ei", title, blocks)


def ei_range_paragraphs(ctx: Ctx, ei) -> list[Paragraph]:
    """The lowest and highest county EI of each year, in words."""
    _ = ctx._
    out = []
    counties = counties_only(ei).dropna(subset=["ei"])
    for year, rows in counties.groupby(counties["year"].astype(int)):
        if len(rows) < 2:
            continue
        low, high = rows.loc[rows["ei"].idxmin()], rows.loc[rows["ei"].idxmax()]
        out.append(Paragraph(_("In {year}, the county EI ranges from {low} ({low_name}, {low_grade}) to {high} "
                               "({high_name}, {high_grade}).").format(
            year=year, low=ctx.num(float(low["ei"]), 2), low_name=low["name"], low_grade=ctx.term(low["grade"]),
            high=ctx.num(float(high["ei"]), 2), high_name=high["name"], high_grade=ctx.term(high["grade"]))))
    return out


def rsei_section(ctx: Ctx) -> Section:
    """County RSEI and its grades, and the principal component it rests on."""
    _ = ctx._
    title = _("Remote sensing ecological index (RSEI)")
    rsei = read(ctx, "county_rsei")
    if rsei is None:
        return missing_section(ctx, "rsei", title, why_missing(
            ctx, "rsei", "county_rsei", _("The RSEI was not configured (rsei.enabled and thermal imagery in the "
                                          "config).")))
    blocks: list = [Paragraph(_("The RSEI combines greenness (NDVI), wetness, heat (land surface temperature) "
                                "and dryness (NDBSI) by their first principal component; it ranges from 0 (poor) "
                                "to 1 (excellent). The shares of the five RSEI grades are of each county's valid "
                                "area."))]
    cols = [("name", _("County"), None, None), ("year", _("Year"), None, None),
            ("rsei_mean", _("Mean RSEI"), None, 3),
            ("grade5_excellent_share", _("Excellent"), "%", 1), ("grade4_good_share", _("Good"), "%", 1),
            ("grade3_moderate_share", _("Moderate"), "%", 1), ("grade2_fair_share", _("Fair"), "%", 1),
            ("grade1_poor_share", _("Poor"), "%", 1), ("rsei_valid_km2", _("Valid area"), "km²", 2)]
    cols = [c for c in cols if c[0] in rsei.columns]
    blocks.append(make_table(ctx, "rsei_counties", _("RSEI by county"), sort_counties(rsei), cols,
                             scale={k: 100 for k in RSEI_GRADE_SHARES}))
    pca = read(ctx, "rsei_pca")
    if pca is not None and len(pca):
        names = {"ndvi": _("Greenness (NDVI)"), "wet": _("Wetness"), "lst_celsius": _("Heat (LST)"),
                 "ndbsi": _("Dryness (NDBSI)")}
        pca = pca.assign(indicator_label=[names.get(str(i), str(i)) for i in pca["indicator"]])
        blocks.append(make_table(ctx, "rsei_pca", _("Loadings of the first principal component"), pca, [
            ("year", _("Year"), None, None), ("indicator_label", _("Indicator"), None, None),
            ("pc1_loading", _("PC1 loading"), None, 3), ("pc1_share", _("PC1 share of variance"), "%", 1)],
            scale={"pc1_share": 100}))
        share = float(pca["pc1_share"].iloc[0]) * 100
        blocks.append(Paragraph(_("The first principal component carries {share} % of the variance of the four "
                                  "indicators.").format(share=ctx.num(share, 1))))
    blocks += ctx.take_figures("rsei")
    return Section("rsei", title, blocks)


def vegetation_section(ctx: Ctx) -> Section:
    """County NDVI and FVC per year and their change between the two dates."""
    _ = ctx._
    title = _("Vegetation (NDVI and fractional vegetation cover)")
    veg = read(ctx, "county_vegetation")
    if veg is None:
        if not configured(ctx, "imagery"):
            reason = _("No imagery was configured (imagery in the config).")
        else:
            reason = why_missing(ctx, "vegetation", "county_vegetation", _("The vegetation stage was not "
                                                                           "configured."))
        return missing_section(ctx, "vegetation", title, reason)
    blocks: list = []
    if ctx.year is not None and ctx.year not in set(veg["year"].astype(int)):
        blocks.append(Paragraph(_("No imagery for {year} was configured: vegetation is shown for {years} "
                                  "only.").format(year=ctx.year, years=ctx.join(
                                      str(y) for y in sorted(set(veg["year"].astype(int)))))))
    blocks.append(make_table(ctx, "vegetation_counties", _("NDVI and fractional vegetation cover by county"),
                             sort_counties(veg), [
        ("name", _("County"), None, None), ("year", _("Year"), None, None), ("ndvi_mean", _("Mean NDVI"), None, 3),
        ("fvc_mean", _("Mean FVC"), "%", 1), ("ndvi_valid_km2", _("Valid area"), "km²", 2),
        ("n_scenes", _("Scenes"), None, 0)], scale={"fvc_mean": 100}))
    change = read(ctx, "county_vegetation_change")
    if change is not None and len(change):
        blocks.append(make_table(ctx, "vegetation_change", _("Change of NDVI and vegetation cover by county"),
                                 change, [
            ("name", _("County"), None, None), ("ndvi_before_mean", _("NDVI before"), None, 3),
            ("ndvi_after_mean", _("NDVI after"), None, 3), ("ndvi_change_mean", _("NDVI change"), None, 3),
            ("fvc_before_mean", _("FVC before"), "%", 1), ("fvc_after_mean", _("FVC after"), "%", 1),
            ("fvc_change_mean", _("FVC change"), _("percentage points"), 1),
            ("fvc_marked_decrease_km2", _("FVC marked decrease"), "km²", 2),
            ("fvc_marked_increase_km2", _("FVC marked increase"), "km²", 2)],
            scale={"fvc_before_mean": 100, "fvc_after_mean": 100, "fvc_change_mean": 100}))
        whole = change[change["code"].astype(str) == "000000"] if "code" in change.columns else change.iloc[0:0]
        if len(whole) and "fvc_before_mean" in whole.columns:
            w = whole.iloc[0]
            blocks.append(Paragraph(_("Over the whole study area, the mean vegetation cover went from {before} % to "
                                      "{after} % ({change} percentage points); {down} km² show a marked decrease "
                                      "and {up} km² a marked increase.").format(
                before=ctx.num(w["fvc_before_mean"] * 100, 1), after=ctx.num(w["fvc_after_mean"] * 100, 1),
                change=ctx.num(w["fvc_change_mean"] * 100, 1), down=ctx.num(w["fvc_marked_decrease_km2"], 2),
                up=ctx.num(w["fvc_marked_increase_km2"], 2))))
        first = change.iloc[0]
        before = period_span(ctx, first.get("before_dates") or first.get("before"))
        after = period_span(ctx, first.get("after_dates") or first.get("after"))
        blocks.append(Paragraph(_("The change compares {before} with {after} over the cells clear on both "
                                  "dates.").format(before=before, after=after)))
    else:
        blocks.append(Paragraph(why_missing(ctx, "vegetation change", "county_vegetation_change", _(
            "The change of vegetation was not computed: it needs imagery of two dates (vegetation_change in the "
            "config)."))))
    blocks += ctx.take_figures("vegetation")
    return Section("vegetation", title, blocks)


def function_zone_section(ctx: Ctx) -> Section:
    """Counties of key ecological function zones: their indicators (HJ 192-2015 §6) and change class."""
    _ = ctx._
    title = _("Counties in key ecological function zones")
    fz = read(ctx, "function_zone_indicators")
    change = read(ctx, "county_ei_change")
    has_change = change is not None and "function_zone_change_class" in change.columns and \
        change["function_zone_change_class"].notna().any()
    if fz is None and not has_change:
        return missing_section(ctx, "function_zones", title, why_missing(
            ctx, "hj192 ei", "function_zone_indicators", _("No function zones were configured (zones."
                                                            "function_zones in the config)."), "zones.function_zones"))
    blocks: list = []
    if fz is not None and len(fz):
        cols = [("name", _("Function zone"), None, None), ("year", _("Year"), None, None),
                ("function_type_zh", _("Function type"), None, None),
                ("forest_grass_cover", _("Forest and grass cover"), "%", 2),
                ("forest_cover", _("Forest cover"), "%", 2), ("grass_cover", _("Grass cover"), "%", 2),
                ("water_wetland_ratio", _("Water and wetland share"), "%", 2),
                ("cropland_construction_ratio", _("Cropland and construction share"), "%", 2),
                ("water_conservation_index", _("Water conservation index"), None, 2)]
        blocks.append(make_table(ctx, "function_zone_indicators", _("Indicators of the function zones"), fz,
                                 [c for c in cols if c[0] in fz.columns]))
    if has_change:
        rows = counties_only(change)
        rows = rows[rows["function_zone_change_class"].notna()]
        blocks.append(make_table(ctx, "function_zone_change", _("Change of ecological quality of the "
                                                                 "function-zone counties"), rows, [
            ("name", _("County"), None, None), ("function_type", _("Function type"), None, None),
            ("years", _("Period"), None, None), ("delta_ei", _("ΔEI"), None, 2),
            ("function_zone_change_class", _("Change class"), None, None),
            ("function_zone_change_verified", _("Verified"), None, None)]))
    return Section("function_zones", title, blocks)
