"""Monitoring-network stage (issue 20): every configured station type read through the registry, overlaid on
counties, red-line units, function zones and the assessment year's land cover, graded to the national standards,
summarised per county and zone, audited for coverage, with proposed new sites where a rule falls short, the rows
left out (its exceedances and shortfalls become early warnings, 预警, by the rules of indices/early_warning.yaml). Runs when ``stations`` are configured
(``ecoassess network CONFIG --out RESULTS``: the run limited to this stage).

Tables (README *Monitoring network*): ``stations`` (layer), ``air_daily`` (CSV only: one row per station-day),
``air_station_annual``, ``water_sections``, ``water_county_shares``, ``drinking_water_sources``, ``soil_points``,
``noise_measurements``, ``ecology_plots``, ``network_county_summary``, ``network_zone_summary``,
``network_coverage``, ``network_river_exits``, ``network_representativeness``, ``proposed_sites`` (layer),
``network_rejected_rows``."""

from __future__ import annotations

import logging

import geopandas as gpd
import pandas as pd

from ecoassess.errors import InputError
from ecoassess.resume import run_part
from ecoassess.stages.base import RunContext, Stage
from ecoassess.stages.common import formats

log = logging.getLogger(__name__)

REJECTED_COLUMNS = ["station_type", "file", "row", "station_id", "column", "value", "reason", "left_out"]


class NetworkStage(Stage):
    """The monitoring-network tables of the assessment year (module docstring)."""

    name = "network"

    def enabled(self, config) -> bool:
        return bool(config.stations)

    def run(self, ctx: RunContext) -> None:
        run_part(ctx.store, "network", lambda: _run(ctx))


def _run(ctx: RunContext) -> None:
    from ecoassess.network import tables
    from ecoassess.network.coverage import coverage_audit, read_built_up, representativeness
    from ecoassess.network.overlay import county_summary, overlay_stations, read_aliases, study_counties
    from ecoassess.validate import station_readings

    config, year = ctx.config, ctx.config.year
    net = config.network
    counties = ctx.study_area.copy()
    counties.attrs["path"] = str(config.study_area.path)
    study = study_counties(counties)
    zone_sets = {name: (ctx.inputs.vector(src.path, src.layer, key=f"zones.{name}", crs=src.crs,
                                          transformation=src.transformation), src.id_field, src.name_field)
                 for name, src in config.zones.items()}
    land_cover = ctx.inputs.land_cover(year)
    legend = ctx.inputs.legend(year) if land_cover is not None else None
    aliases = read_aliases(net.aliases) if net is not None and net.aliases is not None else None
    out = {}                      # table name -> frame, written in this order at the end
    overlaid, rejected, sites_of, obs_of = [], [], {}, {}
    with ctx.timer.stage("network: registry and overlay"):
        for kind in config.stations:
            sites, obs = station_readings(config, kind)
            over = overlay_stations(sites.table.assign(station_type=kind), counties, zone_sets, land_cover, legend,
                                    aliases)
            overlaid.append(over)
            sites_of[kind] = over
            obs_of[kind] = obs.table if obs is not None else pd.DataFrame({"station_id": [], "time": [],
                                                                           "source_row": []})
            rejected += _rejected(kind, sites, obs)
            if obs is not None and not len(obs.table) and len(obs.rejected):
                # every row left out (all of another year, all of unknown stations): nothing graded is a failure
                # of the run, not a table of empty statistics (exit code 3; the rows are in network_rejected_rows)
                reasons = obs.rejected["reason"].astype(str).value_counts()
                ctx.result.problems.append(
                    f"stations.{kind}.observations: no row of {obs.path.name} could be used for {year}: all "
                    f"{int(obs.rejected['row'].nunique())} rows were left out (most often: {reasons.index[0]}); "
                    "see network_rejected_rows")
    stations = gpd.GeoDataFrame(pd.concat(overlaid, ignore_index=True), geometry="geometry", crs="EPSG:4326")
    stations["lon"], stations["lat"] = stations.geometry.x.round(6), stations.geometry.y.round(6)
    out["stations"] = stations
    with ctx.timer.stage("network: grading"):
        if "air" in config.stations:
            sites, obs = sites_of["air"], obs_of["air"]
            out["air_daily"] = tables.air_daily(sites, obs) if len(obs) else None
            out["air_station_annual"] = _located(sites, tables.air_station_annual(sites, obs))
        for kind, name in (("surface_water", "water_sections"), ("drinking_water", "drinking_water_sources")):
            if kind in config.stations:
                graded = tables.water_sections(sites_of[kind], obs_of[kind], year)
                out[name] = _located(sites_of[kind], graded)
                if kind == "surface_water":
                    out["water_county_shares"] = tables.water_county_shares(graded, study)
        if "soil" in config.stations:
            graded, skipped = tables.soil_points(sites_of["soil"], obs_of["soil"])
            out["soil_points"] = _located(sites_of["soil"], graded)
            rejected += _skipped("soil", config.stations["soil"], skipped)
        if "noise" in config.stations:
            graded, skipped = tables.noise_measurements(sites_of["noise"], obs_of["noise"])
            out["noise_measurements"] = _located(sites_of["noise"], graded)
            rejected += _skipped("noise", config.stations["noise"], skipped)
        if "ecology_plots" in config.stations:
            out["ecology_plots"] = _located(sites_of["ecology_plots"],
                                            tables.ecology_plots(sites_of["ecology_plots"], obs_of["ecology_plots"]))
    with ctx.timer.stage("network: summaries and coverage"):
        out["network_county_summary"] = county_summary(stations, counties)
        out["network_zone_summary"] = _zone_summaries(stations, zone_sets)
        built_up = read_built_up(net.built_up) if net is not None and net.built_up is not None else None
        audit = _audit(ctx, stations, counties, built_up, coverage_audit)
        out["network_coverage"] = audit.table
        out["network_river_exits"] = audit.exits if len(audit.exits) else None
        out["network_representativeness"] = representativeness(stations, land_cover=land_cover, legend=legend,
                                                                zone_sets=zone_sets)
        out["proposed_sites"] = _proposals(ctx, stations, counties, audit, land_cover, legend)
    out["network_rejected_rows"] = pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
    fmt = formats(config)
    for name, table in out.items():
        if table is None:
            continue
        if name == "air_daily":   # one row per station-day: a year of a province's stations is too long for a sheet
            ctx.store.write_table(name, table, gpkg=not fmt["csv"], csv=True if fmt["csv"] else False, xlsx=False,
                                  description="daily AQI of every air station (CSV only: one row per station-day)")
        else:
            ctx.store.write_table(name, table, **fmt)
        ctx.result.tables[name] = table
    ctx.result.manifest["network"] = {"station_types": list(config.stations), "sites": int(len(stations)),
                                      "rejected_rows": int(len(out["network_rejected_rows"]))}
    log.info("network: %d sites of %d types, %d rows or values left out", len(stations), len(config.stations),
             len(out["network_rejected_rows"]))


def _located(sites: gpd.GeoDataFrame, table: pd.DataFrame) -> gpd.GeoDataFrame:
    """``table`` with each row's site point (EPSG:4326; empty for a site without coordinates)."""
    geoms = sites[["station_id", "geometry"]].drop_duplicates("station_id")
    merged = pd.DataFrame(table).merge(pd.DataFrame(geoms), on="station_id", how="left")
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=sites.crs)


def _rejected(kind: str, sites, obs) -> list[dict]:
    """The registry's rejected rows of a type's two files, and its sites outside the study area (left out)."""
    rows = []
    for frame in (sites.rejected, None if obs is None else obs.rejected):
        if frame is not None and len(frame):
            rows += frame.assign(station_type=kind).to_dict("records")
    for r in sites.outside.to_dict("records"):
        rows.append({"station_type": kind, "file": sites.path.name, "row": r["row"], "station_id": r["station_id"],
                     "column": None, "value": f"{r['lon']:.6f}, {r['lat']:.6f}",
                     "reason": f"site {r['station_id']} {r['name'] or ''} lies outside the study area: left out "
                               "with its observations", "left_out": "row"})
    return rows


def _skipped(kind: str, source, skipped: pd.DataFrame) -> list[dict]:
    name = source.observations.name if source.observations is not None else source.sites.name
    return [{"station_type": kind, "file": name, "row": r["source_row"], "station_id": r["station_id"],
             "column": None, "value": None, "reason": f"{r['reason']}: not graded", "left_out": "row"}
            for r in skipped.to_dict("records")]


def _zone_summaries(stations, zone_sets) -> pd.DataFrame | None:
    from ecoassess.network.overlay import zone_summary

    parts = []
    for name, spec in zone_sets.items():
        z = zone_summary(stations, name, spec).rename(columns={f"{name}_id": "zone_id"})
        parts.append(z.assign(zone_set=name)[["zone_set", "zone_id", "station_type", "n_sites"]])
    return pd.concat(parts, ignore_index=True) if parts else None


def _audit(ctx: RunContext, stations, counties, built_up, coverage_audit):
    """The coverage audit; with the configured rivers for the river-exit rule when they carry a stream order or
    upstream area (else the rule is left out, and said)."""
    rivers = None
    if ctx.config.rivers is not None:
        src = ctx.config.rivers
        rivers = ctx.inputs.vector(src.path, src.layer, key="rivers", crs=src.crs, transformation=src.transformation)
    try:
        return coverage_audit(stations, counties, built_up=built_up, rivers=rivers)
    except InputError as exc:
        if rivers is None:
            raise
        note = f"network: the river-exit rule is not checked ({exc})"
        log.warning(note)
        ctx.result.warnings.append(note)
        return coverage_audit(stations, counties, built_up=built_up)


def _proposals(ctx: RunContext, stations, counties, audit, land_cover, legend):
    """Proposed sites of every configured type: ``network.proposals.<type>`` of them, or as many as the type's
    shortfall (per county the largest shortfall of its rules, summed; unserved river exits count one each)."""
    from ecoassess.network.siting import propose_sites

    net = ctx.config.network
    asked = dict(net.proposals) if net is not None else {}
    parts = []
    for kind in ctx.config.stations:
        short = audit.table[audit.table["station_type"].str.split(",").map(lambda s: kind in s)]
        need = int(short.groupby("county_code")["shortfall"].max().fillna(0).sum()) if len(short) else 0
        k = asked.get(kind, need)
        if k <= 0:
            continue
        if land_cover is None:
            note = (f"network: no land cover for {ctx.config.year}: {k} {kind} site(s) cannot be proposed "
                    "(siting needs the land cover)")
            log.warning(note)
            ctx.result.warnings.append(note)
            continue
        parts.append(propose_sites(kind, k, counties, stations, land_cover, legend=legend, audit=audit))
    if not parts:
        return None
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs="EPSG:4326")
