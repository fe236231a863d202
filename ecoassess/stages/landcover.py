"""Land-cover stage: class areas per zone and year, transitions, net/gross change, HJ 192 habitat areas (issue 21
part 7); in a run without imagery, also the HJ 192 parts land cover alone gives (part 8).

Every configured land-cover year is used (``land_cover.<year>``), over every zone set of the run (counties, the
whole study area, red-line units, function zones, ...). Tables (long form, km² on the equal-area grid):

* ``landcover_class_areas``: zone × year × legend class, with the zone's no-data and outside areas;
* ``landcover_transitions``: zone × year pair × from-class × to-class (consecutive years, and first → last);
* ``landcover_change``: zone × year pair × class: start, end, persistence, gain, loss, net, gross, swap;
* ``landcover_habitat``: zone × year × HJ 192-2015 habitat sub-class (STANDARDS §2.2), with ``landcover_assumptions``;
* ``county_ei_landcover_parts``: for land-cover years the EI stage cannot assess (no imagery or no statistics
  table), biological abundance (STANDARDS §1.2) and land stress (§1.5) per county and for the whole area.
"""

from __future__ import annotations

import logging

import pandas as pd

from ecoassess.errors import EcoassessError
from ecoassess.stages.base import RunContext, Stage
from ecoassess.stages.common import ei_years, formats

log = logging.getLogger(__name__)

#: the zone sets whose rows make the EI parts table (as county_ei: counties and the whole area)
_EI_ZONE_SETS = ("county", "study_area")


class LandCoverStage(Stage):
    """Land-cover accounting of every configured land-cover year; one resumable part.

    Uses ``vegetation`` (a year's FVC splits grass into high/medium/low cover, as the EI does) when the vegetation
    stage made it; without it the legend's default sub-class is used and listed in ``landcover_assumptions``."""

    name = "land cover"
    uses = ("vegetation",)

    def enabled(self, config) -> bool:
        return bool(config.land_cover)

    def run(self, ctx: RunContext) -> None:
        from ecoassess.resume import run_part

        run_part(ctx.store, self.name, lambda: _land_cover_part(ctx))


def _land_cover_part(ctx: RunContext) -> None:
    """The stage's work. A year whose land cover fails (unreadable, codes outside its legend) is a problem of the
    run and left out of the transitions; a failing HJ 192 part (e.g. a RUSLE estimate without a DEM) does not
    take the accounting tables with it."""
    from ecoassess.landcover.accounting import change_summary, transition_pairs, transition_table

    config, timer = ctx.config, ctx.timer
    lang = config.outputs.lang
    areas, habitat, transitions, change, notes = [], [], [], [], []
    wide: dict[tuple[str, int], pd.DataFrame] = {}
    legends, layers = {}, {}
    for y in sorted(config.land_cover):
        try:
            with timer.stage(f"land cover {y}"):
                legends[y], layers[y] = ctx.inputs.legend(y), ctx.inputs.land_cover(y)
                year_areas, year_habitat, year_notes = _year_tables(ctx, y, legends[y], layers[y], wide)
        except EcoassessError as exc:
            ctx.failed(f"land cover {y}", exc)
            legends.pop(y, None)
            continue
        areas += year_areas
        habitat += year_habitat
        notes += year_notes
    if not areas:
        raise EcoassessError("no land-cover year could be accounted (the problems of each year are listed above)")
    years = sorted(legends)
    for set_name, zones in ctx.zone_sets.items():
        for a, b in transition_pairs(years):
            with timer.stage(f"land cover {a}-{b} {set_name}"):
                same = legends[a].source == legends[b].source
                t = transition_table(zones, layers[a], layers[b], legends[a], None if same else legends[b],
                                     zone_set=set_name, from_year=a, to_year=b, lang=lang)
                transitions.append(t)
                if same:
                    change.append(change_summary(t, legends[a], lang=lang))
                else:
                    notes.append({"year": b, "zone_set": set_name, "assumption":
                                  f"{a}→{b}: the years use different legends ({legends[a].name}, "
                                  f"{legends[b].name}); the transitions cross-tabulate them, net and gross "
                                  "change per class are not computed"})
    tables = {
        "landcover_class_areas": (pd.concat(areas, ignore_index=True),
                                  "km² per land-cover class, zone and year (equal-area grid, coverage-weighted)"),
        "landcover_habitat": (pd.concat(habitat, ignore_index=True),
                              "km² per HJ 192-2015 habitat sub-class, zone and year (STANDARDS §2.2 crosswalk)"),
    }
    if transitions:
        tables["landcover_transitions"] = (pd.concat(transitions, ignore_index=True),
                                           "transition matrices (km², from-class × to-class; -1 = no data)")
    if change:
        tables["landcover_change"] = (pd.concat(change, ignore_index=True),
                                      "per class: start, end, persistence, gain, loss, net, gross, swap (km²; "
                                      "Pontius et al. 2004)")
    parts_years = [y for y in years if config.hj192.enabled and y not in ei_years(config)]
    parts = []
    for y in parts_years:
        try:
            with timer.stage(f"hj192 land-cover parts {y}"):
                table, assumed = ei_land_cover_parts(ctx, y, layers[y], legends[y],
                                                     {s: wide[(s, y)] for s in _EI_ZONE_SETS})
        except EcoassessError as exc:
            ctx.failed(f"land cover: HJ 192 parts {y}", exc)
            continue
        parts.append(table)
        notes += [{"year": y, "zone_set": "county", "assumption": a} for a in assumed]
    if parts:
        tables["county_ei_landcover_parts"] = (pd.concat(parts, ignore_index=True),
                                               "HJ 192-2015 biological abundance and land stress from land cover "
                                               "(years without the full EI)")
    from ecoassess.landcover.provenance import land_cover_maps, sources_table

    tables["landcover_sources"] = (sources_table(land_cover_maps(config)),
                                   "the land-cover map of each year: file, legend, classified or a product, model, "
                                   "overall accuracy with its 95 % interval (issue 21 part 6)")
    if notes:
        tables["landcover_assumptions"] = (pd.DataFrame(notes).drop_duplicates(ignore_index=True),
                                           "crosswalk defaults and [C] mappings behind the land-cover tables")
    for name, (table, description) in tables.items():
        ctx.result.tables[name] = table
        ctx.store.write_table(name, table, **formats(config), description=description)
    ctx.result.manifest["land_cover"] = {
        "years": years, "pairs": [f"{a}-{b}" for a, b in transition_pairs(years)],
        "legends": {str(y): {"name": lg.name, "version": lg.version, "file": lg.source} for y, lg in legends.items()},
        "zone_sets": list(ctx.zone_sets), "hj192_parts_years": [int(t["year"].iloc[0]) for t in parts]}


def _year_tables(ctx: RunContext, year: int, legend, layer, wide: dict):
    """Class-area and habitat rows of one year over every zone set (and its wide class areas into ``wide``)."""
    from ecoassess.assess.ei_inputs import grass_fvc_km2, needs_grass_split
    from ecoassess.landcover.accounting import class_area_rows, class_areas_km2, habitat_rows

    config = ctx.config
    veg = (ctx.product("vegetation", {}) or {}).get(year)
    areas, habitat, notes = [], [], []
    for set_name, zones in ctx.zone_sets.items():
        w = class_areas_km2(zones, layer, legend)
        wide[(set_name, year)] = w
        areas.append(class_area_rows(w, zones, legend, zone_set=set_name, year=year, lang=config.outputs.lang))
        # grass split by this year's FVC when the vegetation stage made it (as the EI does), else the default
        grass = grass_fvc_km2(zones, veg.fvc, layer, legend) if veg is not None and needs_grass_split(legend) else None
        rows, assumed = habitat_rows(w, zones, legend, zone_set=set_name, year=year, grass_fvc_areas=grass,
                                     coefficients=config.hj192.coefficients)
        habitat.append(rows)
        notes += [{"year": year, "zone_set": set_name, "assumption": a} for a in assumed]
    return areas, habitat, notes


def ei_land_cover_parts(ctx: RunContext, year: int, land_cover, legend, wide: dict) -> tuple[pd.DataFrame, list[str]]:
    """Biological abundance (STANDARDS §1.2: HQ; no biodiversity index) and land stress (§1.5) of ``year`` per
    county and for the whole area (000000, from its own areas, not an average), from the land cover alone —
    erosion from the configured classes or RUSLE estimate (``erosion``), else counted as 0 (said). ``wide``: the
    year's :func:`~ecoassess.landcover.accounting.class_areas_km2` of the county and study-area zone sets."""
    from ecoassess.assess.ei_inputs import other_stress_km2
    from ecoassess.assess.hj192 import biological_abundance, group_areas, land_stress
    from ecoassess.assess.hj192_coefficients import as_coefficients
    from ecoassess.assess.landcover import habitat_areas
    from ecoassess.stages.ei_inputs import erosion_km2

    co = as_coefficients(ctx.config.hj192.coefficients)
    frames, notes = [], []
    for set_name in _EI_ZONE_SETS:
        zones = ctx.zone_sets[set_name]
        habitat, assumed = habitat_areas(wide[set_name], legend, coefficients=co)
        area = pd.Series(zones.area_km2 - zones.area_outside_km2, index=zones.ids)
        erosion, _, erosion_notes = erosion_km2(ctx.inputs, zones, land_cover, legend, None)
        zero = pd.Series(0.0, index=zones.ids)
        severe = zero if erosion is None else erosion["severe_erosion_km2"]
        moderate = zero if erosion is None else erosion["moderate_erosion_km2"]
        construction = habitat[list(co.construction_subclasses)].sum(axis=1)
        stress = land_stress(severe, moderate, construction, other_stress_km2(habitat), area, coefficients=co)
        bio = biological_abundance(habitat, area, coefficients=co)
        frame = pd.concat([pd.DataFrame({"name": zones.names, "year": year, "area_km2": area.to_numpy()},
                                        index=zones.ids), group_areas(habitat, coefficients=co).add_prefix("habitat_"), bio, stress],
                          axis=1)
        frames.append(frame)
        notes += assumed + erosion_notes
    notes.append("biological abundance = HQ (habitat quality) only: no biodiversity index (HJ 623-2011) is used")
    notes.append("vegetation cover, water network density and pollution load need imagery, rivers and the "
                 "statistics table: not computed for this year, so no EI")
    table = pd.concat(frames)
    table.index = table.index.astype(str)
    table.index.name = "code"
    return table.reset_index(), list(dict.fromkeys(notes))
