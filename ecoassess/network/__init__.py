"""Monitoring-network overlay (issue 20): station registry, observations graded to the national standards
(STANDARDS §7), overlay on counties and zones, coverage audit and proposed points.

The submodules are plain functions on tables, usable alone::

    import ecoassess.network
    ecoassess.network.aqi.daily_aqi(df)                    # HJ 633 daily AQI (version by date)
    ecoassess.network.water.water_class(df, body="lake")   # GB 3838-2002 single-factor class

The run's network stage (:mod:`ecoassess.stages.network`, ``ecoassess network CONFIG --out RESULTS``) puts them
together."""

from ecoassess.network import (air_statistics, aqi, coverage, noise, overlay, registry, siting, soil,
                               standards, tables, units, values, water)
from ecoassess.network.air_statistics import annual_compliance, annual_statistics, daily_from_hourly
from ecoassess.network.aqi import daily_aqi, hourly_aqi, iaqi
from ecoassess.network.coverage import coverage_audit, hj664_min_points, representativeness, river_exits
from ecoassess.network.noise import noise_compliance
from ecoassess.network.overlay import county_summary, overlay_stations, zone_summary
from ecoassess.network.registry import read_observations, read_sites
from ecoassess.network.siting import propose_sites, write_proposals
from ecoassess.network.soil import soil_class
from ecoassess.network.units import parse_cell
from ecoassess.network.values import to_number
from ecoassess.network.water import section_annual_class, water_class

__all__ = ["air_statistics", "aqi", "coverage", "noise", "overlay", "registry", "siting", "soil",
           "standards", "tables", "units", "values", "water",
           "annual_compliance", "annual_statistics", "daily_from_hourly", "daily_aqi", "hourly_aqi", "iaqi",
           "coverage_audit", "hj664_min_points", "representativeness", "river_exits", "noise_compliance",
           "county_summary", "overlay_stations", "zone_summary", "read_observations", "read_sites",
           "propose_sites", "write_proposals", "soil_class", "parse_cell", "to_number", "section_annual_class",
           "water_class"]
