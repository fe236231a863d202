"""Human-activity patches in the ecological conservation red lines (生态保护红线): counts and areas per unit,
per county and per activity type, inside the red line and in its buffer."""

from __future__ import annotations

from ecoassess.report.model import Paragraph, Section
from ecoassess.report.sections.common import Ctx, make_table, missing_section, period_span, read, why_missing

M2_PER_HM2 = 10_000
M2_PER_KM2 = 1_000_000


def disturbances(patches):
    """The ledger rows that count as disturbance (new, expanded or known, not marked 误判 unless reported again),
    by the rule of the unit and county summaries (STANDARDS §5.1; :mod:`ecoassess.redline.summary`)."""
    from ecoassess.redline.summary import DISTURBANCE, _flags

    if "change_type" not in patches.columns:  # an older ledger: every row counts
        return patches
    if {"check_result", "reported"} <= set(patches.columns):
        return patches[_flags(patches, "误判")["disturbance"].to_numpy()]
    return patches[patches["change_type"].isin(DISTURBANCE)]


def redline_section(ctx: Ctx) -> Section:
    _ = ctx._
    title = _("Human activities in the ecological conservation red lines")
    units = read(ctx, "redline_unit_summary")
    if units is None:
        return missing_section(ctx, "redline", title, why_missing(
            ctx, "redline", "redline_unit_summary", _("The red-line stage was not configured (zones.redline in "
                                                      "the config).")))
    rl = ctx.results.extra.get("redline") or {}
    blocks: list = []
    patches = read(ctx, "redline_patches")
    n_inside = n_buffer = n_other = 0
    if patches is not None and len(patches):
        # count as the unit and county summaries do (ecoassess.redline.summary): disturbances only, so that the
        # sentence, the per-unit table and the per-activity table agree (the demo said 8 in the buffer, its
        # tables 7: a reduced patch was counted in one and not the other)
        every = len(patches)
        patches = disturbances(patches)
        n_inside = int((patches["location"] == "inside").sum())
        n_buffer = int((patches["location"] == "buffer").sum())
        n_other = every - len(patches)
    blocks.append(Paragraph(_("Imagery of {before} was compared with {after} over {n} red-line units: {inside} "
                              "human-activity patches were found inside the red lines and {buffer} in their "
                              "buffer zone; every patch is listed in the ledger (台账) for checking on site.").format(
        before=period_span(ctx, (rl.get("before") or {}).get("period", rl.get("before_year", ""))),
        after=period_span(ctx, (rl.get("after") or {}).get("period", rl.get("after_year", ""))),
        n=ctx.num(len(units)), inside=ctx.num(n_inside), buffer=ctx.num(n_buffer))))
    if n_other:
        blocks.append(Paragraph(_("A further {n} patches of the ledger (activity reduced or land restored, or "
                                  "marked as false detections) are not counted as disturbance.").format(
            n=ctx.num(n_other))))
    blocks.append(make_table(ctx, "redline_units", _("Human-activity patches by red-line unit"), units, [
        ("unit_name", _("Red-line unit"), None, None), ("area_m2", _("Unit area"), "km²", 2),
        ("patches_n", _("Patches inside"), None, 0), ("patches_area_m2", _("Patch area inside"), "hm²", 2),
        ("new_n", _("New patches"), None, 0), ("buffer_patches_n", _("Patches in the buffer"), None, 0),
        ("buffer_area_m2", _("Patch area in the buffer"), "hm²", 2),
        ("disturbed_share", _("Disturbed share"), "%", 2),
        ("not_observable_share", _("Not observable"), "%", 1)],
        scale={"area_m2": 1 / M2_PER_KM2, "patches_area_m2": 1 / M2_PER_HM2, "buffer_area_m2": 1 / M2_PER_HM2,
               "disturbed_share": 100, "not_observable_share": 100}))
    counties = read(ctx, "redline_county_summary")
    if counties is not None and len(counties):
        blocks.append(make_table(ctx, "redline_counties", _("Human-activity patches in the red lines by county"),
                                 counties, [
            ("county_name", _("County"), None, None), ("units_n", _("Units"), None, 0),
            ("area_m2", _("Red-line area"), "km²", 2), ("patches_n", _("Patches inside"), None, 0),
            ("patches_area_m2", _("Patch area inside"), "hm²", 2), ("new_n", _("New patches"), None, 0),
            ("buffer_patches_n", _("Patches in the buffer"), None, 0)],
            scale={"area_m2": 1 / M2_PER_KM2, "patches_area_m2": 1 / M2_PER_HM2}))
    if patches is not None and len(patches):
        by = patches.groupby(["activity_name", "location"], as_index=False).agg(
            n=("patch_id", "count"), area_m2=("area_m2", "sum"))
        wide = by.pivot_table(index="activity_name", columns="location", values=["n", "area_m2"],
                              aggfunc="sum", fill_value=0)
        wide.columns = [f"{a}_{b}" for a, b in wide.columns]
        wide = wide.reset_index()
        for c in ("n_inside", "n_buffer", "area_m2_inside", "area_m2_buffer"):
            if c not in wide.columns:
                wide[c] = 0
        wide = wide.sort_values(["n_inside", "area_m2_inside"], ascending=False)
        blocks.append(make_table(ctx, "redline_activities", _("Human-activity patches by activity type"), wide, [
            ("activity_name", _("Activity type"), None, None), ("n_inside", _("Patches inside"), None, 0),
            ("area_m2_inside", _("Area inside"), "hm²", 2), ("n_buffer", _("Patches in the buffer"), None, 0),
            ("area_m2_buffer", _("Area in the buffer"), "hm²", 2)],
            scale={"area_m2_inside": 1 / M2_PER_HM2, "area_m2_buffer": 1 / M2_PER_HM2}))
    else:
        blocks.append(Paragraph(_("No human-activity patch was found in or around the red lines.")))
    blocks += ctx.take_figures("redline")
    return Section("redline", title, blocks)
