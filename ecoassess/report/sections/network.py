"""The monitoring network: sites per county and type, the coverage audit against the network rules, station
results graded to the national standards (GB 3095-2012 air, GB 3838-2002 water, GB 15618-2018 soil,
GB 3096-2008 noise), and where new points would help most."""

from __future__ import annotations

from functools import lru_cache

from ecoassess.report.model import Paragraph, Section
from ecoassess.report.sections.common import Ctx, make_table, missing_section, read, why_missing

#: GB 15618-2018 farmland classes, in the standard's order (data: the standard's class names).
SOIL_CLASSES = ("优先保护类", "安全利用类", "严格管控类")


def requirement_labels(_) -> dict[str, str]:
    """The coverage rules as requirements (the coverage table shows met ones too)."""
    return {"county_seat_air_2": _("At least 2 air stations in the county seat"),
            "hj664_city_air": _("Urban air stations by population and area (HJ 664-2013)"),
            "river_exit_section": _("A section where each river leaves the county"),
            "soil_every_county": _("At least 1 soil point per county")}


def station_types(_) -> dict[str, str]:
    return {"air": _("Air"), "surface_water": _("Surface water"), "drinking_water": _("Drinking water"),
            "soil": _("Soil"), "noise": _("Noise"), "ecology_plots": _("Ecology plots")}


def network_section(ctx: Ctx) -> Section:
    _ = ctx._
    title = _("Monitoring network")
    summary = read(ctx, "network_county_summary")
    if summary is None:
        return missing_section(ctx, "network", title, why_missing(
            ctx, "network", "network_county_summary", _("The network stage was not configured (stations in the "
                                                        "config).")))
    types = station_types(_)
    net = ctx.results.extra.get("network") or {}
    blocks: list = [Paragraph(_("The monitoring network of the study area has {n} sites of {k} types; sites "
                                "outside the study area and rows that could not be used are left out and listed "
                                "in the results (network_rejected_rows).").format(
        n=ctx.num(int(net.get("sites") or summary["n_sites"].sum())),
        k=ctx.num(summary["station_type"].nunique())))]
    order = [t for t in types if t in set(summary["station_type"])] + sorted(
        t for t in set(summary["station_type"]) if t not in types)
    wide = summary.pivot_table(index=["county_code", "county_name"], columns="station_type", values="n_sites",
                               aggfunc="sum", fill_value=0).reset_index().sort_values("county_code")
    cols = [("county_name", _("County"), None, None)] + [(t, types.get(t, t), None, 0) for t in order]
    blocks.append(make_table(ctx, "network_sites", _("Monitoring sites by county and type"), wide, cols))
    cov = read(ctx, "network_coverage")
    if cov is not None and len(cov):
        rules = requirement_labels(_)
        cov = cov[cov["required"].notna()].assign(
            type_label=lambda d: d["station_type"].map(lambda t: types.get(t, t)),
            rule_label=lambda d: d["rule_id"].map(lambda r: rules.get(r, r)))
        short = cov[cov["shortfall"].fillna(0) > 0]
        blocks.append(Paragraph(_("The coverage audit checked {n} rules per county; {k} county-rule pairs fall "
                                  "short of the required number of sites.").format(
            n=ctx.num(cov["rule_id"].nunique()), k=ctx.num(len(short)))))
        blocks.append(make_table(ctx, "network_coverage", _("Coverage of the monitoring network"), cov, [
            ("county_name", _("County"), None, None), ("type_label", _("Type"), None, None),
            ("rule_label", _("Rule"), None, None), ("required", _("Required"), None, 0),
            ("present", _("Present"), None, 0), ("shortfall", _("Shortfall"), None, 0)]))
    air = read(ctx, "air_station_annual")
    if air is not None and len(air):
        blocks.append(make_table(ctx, "air_stations", _("Air quality at the automatic stations"), air, [
            ("name", _("Station"), None, None), ("county_name", _("County"), None, None),
            ("good_day_ratio", _("Good days"), "%", 1), ("pm25_annual_ugm3", _("PM2.5 annual mean"), "µg/m³", 0),
            ("pm10_annual_ugm3", _("PM10 annual mean"), "µg/m³", 0),
            ("o3_8h_p90_ugm3", _("O3 8-h 90th percentile"), "µg/m³", 0),
            ("no2_annual_ugm3", _("NO2 annual mean"), "µg/m³", 0),
            ("compliant", _("Meets GB 3095-2012"), None, None)],
            scale={"good_day_ratio": 100}))
    for name, table_id, caption in (("water_sections", "water_sections", _("Surface water sections")),
                                    ("drinking_water_sources", "drinking_water",
                                     _("Drinking-water sources"))):
        water = read(ctx, name)
        if water is not None and len(water):
            if "deciding_items" in water.columns:
                water["deciding_items"] = [item_names(ctx, v) for v in water["deciding_items"]]
            blocks.append(make_table(ctx, table_id, caption, water, [
                ("station_id", _("Code"), None, None),
                ("name", _("Site"), None, None), ("county_name", _("County"), None, None),
                ("river", _("Water body"), None, None), ("water_class", _("Water class"), None, None),
                ("target_class", _("Target class"), None, None), ("meets_target", _("Meets target"), None, None),
                ("deciding_items", _("Deciding items"), None, None)]))
    soil = read(ctx, "soil_points")
    if soil is not None and len(soil):
        wide = soil.pivot_table(index=["county_code", "county_name"], columns="soil_class", values="station_id",
                                aggfunc="count", fill_value=0).reset_index().sort_values("county_code")
        classes = [c for c in SOIL_CLASSES if c in wide.columns] + sorted(
            c for c in wide.columns if c not in ("county_code", "county_name", *SOIL_CLASSES))
        blocks.append(make_table(ctx, "soil_points", _("Soil points by county and class (GB 15618-2018)"), wide,
                                 [("county_name", _("County"), None, None)] + [(c, c, None, 0) for c in classes]))
    noise = read(ctx, "noise_measurements")
    if noise is not None and len(noise):
        per = noise.groupby(["station_id", "name", "county_name", "function_class"], as_index=False).agg(
            n=("meets_day", "size"), day=("meets_day", "mean"), night=("meets_night", "mean"))
        blocks.append(make_table(ctx, "noise_points", _("Noise: share of measurements meeting GB 3096-2008"), per, [
            ("name", _("Site"), None, None), ("county_name", _("County"), None, None),
            ("function_class", _("Function class"), None, None), ("n", _("Measurements"), None, 0),
            ("day", _("Meets by day"), "%", 0), ("night", _("Meets by night"), "%", 0)],
            scale={"day": 100, "night": 100}))
    proposed = read(ctx, "proposed_sites")
    if proposed is not None and len(proposed):
        rules = requirement_labels(_)
        proposed = proposed.assign(type_label=proposed["station_type"].map(lambda t: types.get(t, t)),
                                   rule_label=proposed["rule_id"].map(lambda r: rules.get(r, r)))
        blocks.append(make_table(ctx, "proposed_sites", _("Proposed new monitoring sites"), proposed, [
            ("proposal_id", _("Proposal"), None, None), ("type_label", _("Type"), None, None),
            ("county_name", _("County"), None, None), ("rule_label", _("Rule"), None, None),
            ("lon", _("Longitude"), "°", 5), ("lat", _("Latitude"), "°", 5)]))
    elif proposed is not None:
        blocks.append(Paragraph(_("The network meets every coverage rule checked: no new site is proposed.")))
    blocks += ctx.take_figures("network")
    return Section("network", title, blocks)


def item_names(ctx: Ctx, codes) -> str | None:
    """GB 3838 item codes as the results hold them ("codmn,tp") in words: 高锰酸盐指数、总磷 / permanganate index,
    total phosphorus (names from indices/gb3838_2002.yaml)."""
    if not isinstance(codes, str) or not codes.strip():
        return None
    items = _gb3838_items()
    key = "zh" if ctx.lang == "zh" else "en"
    return ctx.join([str(items.get(c.strip(), {}).get(key, c.strip())) for c in codes.split(",") if c.strip()])


@lru_cache(maxsize=1)
def _gb3838_items() -> dict:
    """The GB 3838-2002 items of indices/gb3838_2002.yaml, read once (not once per water section)."""
    from ecoassess.catalog import data_path, load_yaml

    return load_yaml(data_path("indices", "gb3838_2002.yaml"))["items"]
