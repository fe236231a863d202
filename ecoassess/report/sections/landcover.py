"""Land cover and its change across the years: class areas, gains and losses, the largest transitions, the
HJ 192-2015 habitat groups, and which map (and which accuracy) the accounts rest on."""

from __future__ import annotations

from ecoassess.report.model import Paragraph, Section
from ecoassess.report.sections.common import Ctx, make_table, missing_section, read, why_missing

#: How many of the largest transitions between classes the report lists.
TOP_TRANSITIONS = 10


def _study_area(df):
    """The whole study area's rows (zone_set ``study_area``), else the counties' rows summed."""
    if "zone_set" not in df.columns:
        return df
    if (df["zone_set"] == "study_area").any():
        return df[df["zone_set"] == "study_area"]
    return df[df["zone_set"] == "county"]


def class_labels(ctx: Ctx) -> dict[int, str]:
    """{class code: name in the report's language} from the legends the run used (manifest extra.land_cover);
    empty for Chinese (the tables' class names are the legend's Chinese names) or when no legend can be read."""
    if ctx.lang == "zh":
        return {}
    from ecoassess.errors import InputError
    from ecoassess.legends import load_legend

    labels: dict[int, str] = {}
    for info in ((ctx.results.extra.get("land_cover") or {}).get("legends") or {}).values():
        legend = None
        for key in ((info or {}).get("name"), (info or {}).get("file")):
            try:
                legend = load_legend(key) if key else None
            except (InputError, OSError):
                legend = None
            if legend is not None:
                break
        if legend is not None:
            labels.update({int(code): str(c[ctx.lang]) for code, c in legend.classes.items() if c.get(ctx.lang)})
    return labels


def _relabel(df, labels: dict[int, str], code: str, name: str):
    """``df`` with ``name`` in the report's language where ``labels`` knows the class ``code``."""
    if not labels or code not in df.columns or name not in df.columns:
        return df
    df = df.copy()
    df[name] = [labels.get(int(c), n) if c == c else n for c, n in zip(df[code], df[name])]
    return df


def map_paragraphs(ctx: Ctx) -> list[Paragraph]:
    """Which land-cover map each year rests on and its accuracy (manifest extra.land_cover.maps); a product
    map is named as such, with no accuracy assessed in this run."""
    _ = ctx._
    lc = ctx.results.extra.get("land_cover") or {}
    out = []
    maps = lc.get("maps") or {}
    for year in sorted(maps, key=str):
        m = maps[year] or {}
        legend = m.get("legend") or ""
        file = m.get("file") or ""
        if m.get("classified"):
            acc = m.get("overall_accuracy")
            if acc is None:
                out.append(Paragraph(_("{year}: land cover classified in this run from imagery ({file}, legend "
                                       "{legend}, model {model}); no accuracy was assessed.").format(
                    year=year, file=file, legend=legend, model=m.get("model") or "")))
                continue
            ci = m.get("overall_accuracy_ci95") or [None, None]
            ci_text = ""
            if ci and None not in ci:
                ci_text = _(" (95 % confidence interval {low}–{high} %)").format(
                    low=ctx.num(ci[0] * 100, 1), high=ctx.num(ci[1] * 100, 1))
            out.append(Paragraph(_("{year}: land cover classified in this run from imagery ({file}, legend "
                                   "{legend}, model {model}); overall accuracy {accuracy} %{ci}, from {n} "
                                   "validation samples.").format(
                year=year, file=file, legend=legend, model=m.get("model") or "",
                accuracy=ctx.num(float(acc) * 100, 1), ci=ci_text, n=ctx.num(m.get("validation_samples") or 0))))
        else:
            out.append(Paragraph(_("{year}: the land-cover product {file} (legend {legend}); it is a product "
                                   "map, and no accuracy was assessed in this run.").format(
                year=year, file=file, legend=legend)))
    if not maps:
        legends = lc.get("legends") or {}
        given = ctx.results.config.get("given", {}).get("land_cover") or {}
        for year in sorted(legends, key=str):
            path = (given.get(str(year)) or {}).get("path", "")
            name = (legends[year] or {}).get("name", "")
            out.append(Paragraph(_("{year}: the land-cover product {file} (legend {legend}); it is a product "
                                   "map, and no accuracy was assessed in this run.").format(
                year=year, file=path.rsplit("/", 1)[-1], legend=name)))
    return out


def landcover_section(ctx: Ctx) -> Section:
    _ = ctx._
    title = _("Land cover and its change")
    areas = read(ctx, "landcover_class_areas")
    if areas is None:
        return missing_section(ctx, "landcover", title, why_missing(
            ctx, "land cover", "landcover_class_areas", _("No land-cover map was configured (land_cover in the "
                                                          "config)."), "land_cover"))
    blocks: list = list(map_paragraphs(ctx))
    labels = class_labels(ctx)
    sa = _relabel(_study_area(areas), labels, "class_code", "class_name")
    group = ["year", "class_code", "class_name"]
    sums = sa.groupby(group, as_index=False)["area_km2"].sum()
    years = sorted(int(y) for y in sums["year"].unique())
    wide = sums.pivot_table(index=["class_code", "class_name"], columns="year", values="area_km2",
                            aggfunc="sum").reset_index()
    cols = [("class_name", _("Land-cover class"), None, None)]
    for y in years:
        key = f"area_{y}"
        total = wide[y].sum()
        wide[key] = wide[y]
        wide[f"share_{y}"] = wide[y] / total * 100 if total else None
        cols += [(key, _("Area {year}").format(year=y), "km²", 2), (f"share_{y}", _("Share {year}").format(year=y),
                                                                     "%", 2)]
    wide = wide[wide[years].fillna(0).gt(0).any(axis=1)].sort_values("class_code")
    blocks.append(make_table(ctx, "landcover_areas", _("Land-cover class areas of the study area"), wide, cols))
    change = read(ctx, "landcover_change")
    if change is not None and len(change):
        ch = _relabel(_study_area(change), labels, "class_code", "class_name")
        first_pair = ch[["from_year", "to_year"]].drop_duplicates().sort_values(["from_year", "to_year"])
        for _i, (a, b) in first_pair.iterrows():
            part = ch[(ch["from_year"] == a) & (ch["to_year"] == b)]
            part = part.groupby(["class_code", "class_name"], as_index=False)[
                ["start_km2", "end_km2", "gain_km2", "loss_km2", "net_change_km2"]].sum().sort_values("class_code")
            part = part[(part["start_km2"] > 0) | (part["end_km2"] > 0)]
            blocks.append(make_table(ctx, f"landcover_change_{a}_{b}", _("Gains and losses of land-cover "
                                                                         "classes, {a}–{b}").format(a=a, b=b), part, [
                ("class_name", _("Land-cover class"), None, None), ("start_km2", _("Area {year}").format(year=a),
                                                                     "km²", 2),
                ("end_km2", _("Area {year}").format(year=b), "km²", 2), ("gain_km2", _("Gain"), "km²", 2),
                ("loss_km2", _("Loss"), "km²", 2), ("net_change_km2", _("Net change"), "km²", 2)]))
    trans = read(ctx, "landcover_transitions")
    if trans is not None and len(trans):
        tr = _relabel(_relabel(_study_area(trans), labels, "from_class", "from_name"), labels, "to_class", "to_name")
        tr = tr[tr["from_class"] != tr["to_class"]]
        tr = tr.groupby(["from_year", "to_year", "from_name", "to_name"], as_index=False)["area_km2"].sum()
        tr = tr[tr["area_km2"] > 0].sort_values("area_km2", ascending=False).head(TOP_TRANSITIONS)
        if len(tr):
            blocks.append(make_table(ctx, "landcover_transitions", _("The largest land-cover transitions"), tr, [
                ("from_year", _("From year"), None, None), ("to_year", _("To year"), None, None),
                ("from_name", _("From class"), None, None), ("to_name", _("To class"), None, None),
                ("area_km2", _("Area"), "km²", 4)]))
        else:
            blocks.append(Paragraph(_("No land changed class between the years compared.")))
    habitat = read(ctx, "landcover_habitat")
    if habitat is not None and len(habitat):
        hb = _study_area(habitat)
        hb = hb.groupby(["year", "hj192_group"], as_index=False)["area_km2"].sum()
        # classes HJ 192 does not count (the legend's hj192: excluded, e.g. sea) are a row only when they cover some area
        if hb.loc[hb["hj192_group"] == "excluded", "area_km2"].round(4).eq(0).all():
            hb = hb[hb["hj192_group"] != "excluded"]
        groups = {"forest_land": _("Forest land"), "grassland": _("Grassland"),
                  "water_wetland": _("Water and wetland"), "cropland": _("Cropland"),
                  "construction": _("Construction land"), "unused": _("Unused land"),
                  "excluded": _("Not counted by HJ 192")}
        wide = hb.pivot_table(index="hj192_group", columns="year", values="area_km2", aggfunc="sum").reset_index()
        order = {g: i for i, g in enumerate(groups)}
        wide = wide.assign(_o=wide["hj192_group"].map(lambda g: order.get(g, len(order)))).sort_values("_o")
        wide["group_label"] = [groups.get(g, g) for g in wide["hj192_group"]]
        hcols = [("group_label", _("HJ 192 land type"), None, None)]
        for y in sorted(int(y) for y in hb["year"].unique()):
            wide[f"area_{y}"] = wide[y]
            hcols.append((f"area_{y}", _("Area {year}").format(year=y), "km²", 2))
        blocks.append(make_table(ctx, "landcover_hj192", _("Land types of HJ 192-2015 in the study area"),
                                 wide, hcols))
    blocks += ctx.take_figures("landcover")
    return Section("landcover", title, blocks)

