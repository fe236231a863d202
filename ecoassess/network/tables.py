"""The network stage's station tables (issue 20, part 2): the registry's sites (overlaid on counties and zones)
joined to their observations and graded by the standards' modules, one table per station type. Plain functions
on frames: no config, no file reading.

Conventions decided here (each [C], stated in the README's *Monitoring network*):

* air area class (GB 3095 §4.1): a site-table column ``area_class`` (一类/二类, 1/2) wins; otherwise a site inside a
  red-line unit (zone set ``redline``) is 一类区 — red lines hold the nature reserves and "other areas needing
  special protection" — and every other site 二类区; ``area_class_basis`` says which;
* water body (GB 3838 TP limits): the site's ``water_body`` (river/lake); a site without one is graded as a river,
  said in ``water_body_basis``;
* a section's annual class is the class of its annual item means (:func:`ecoassess.network.water.
  section_annual_class`); sections are sampled monthly, so a year has 12 expected months and every month
  without a sample is listed in ``missing_months``;
* a target class (``target_class`` of the site table: I–V, Ⅲ, Ⅲ类 …) is compared with the annual class.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

from ecoassess.network import standards
from ecoassess.network.air_statistics import annual_compliance, annual_statistics
from ecoassess.network.aqi import daily_aqi
from ecoassess.network.noise import noise_compliance
from ecoassess.network.soil import METALS, soil_class
from ecoassess.network.water import county_shares, section_annual_class

#: site columns carried into every station table, after ``station_id``
SITE_COLUMNS = ["name", "county_code", "county_name"]
#: months a water section is expected to be sampled in a year (monthly monitoring) [C]
MONTHS_PER_YEAR = 12
#: the standards' own unit of each annual air item (GB 3095: CO in mg/m³, the rest in µg/m³)
AIR_UNITS = {"co": "mgm3"}
ROMAN = {"I": "I", "II": "II", "III": "III", "IV": "IV", "V": "V", "1": "I", "2": "II", "3": "III", "4": "IV",
         "5": "V"}


def _site_info(sites: pd.DataFrame, extra=()) -> pd.DataFrame:
    cols = ["station_id"] + [c for c in [*SITE_COLUMNS, *extra] if c in sites.columns]
    return pd.DataFrame(sites[cols]).reset_index(drop=True)


def _first(table: pd.DataFrame, front) -> pd.DataFrame:
    front = [c for c in front if c in table.columns]
    return table[front + [c for c in table.columns if c not in front]]


# -- air ---------------------------------------------------------------------------------------------------------

def air_area_class(sites: pd.DataFrame, redline: str = "redline") -> pd.DataFrame:
    """``station_id``, ``area_class`` ('1' 一类区 / '2' 二类区) and ``area_class_basis`` of each air site (the rule in
    the module docstring). A site-table value that is no class is left to the overlay, and said."""
    from ecoassess.network.air_statistics import _area_class
    from ecoassess.errors import InputError

    given = sites["area_class"] if "area_class" in sites.columns else pd.Series([None] * len(sites))
    zone = sites[f"{redline}_id"] if f"{redline}_id" in sites.columns else pd.Series([None] * len(sites))
    classes, basis = [], []
    for g, z in zip(given, zone):
        text = None if g is None or (isinstance(g, float) and np.isnan(g)) or str(g).strip() == "" else g
        if text is not None:
            try:
                classes.append(_area_class(text, None))
                basis.append("site table (area_class)")
                continue
            except InputError:
                note = f"area_class {text!r} is not 一类/二类: "
        else:
            note = ""
        if z is not None and not (isinstance(z, float) and np.isnan(z)):
            classes.append("1")
            basis.append(f"{note}inside red-line unit {z}: 一类区 [C]")
        else:
            classes.append("2")
            basis.append(f"{note}outside the red lines: 二类区 [C]")
    return pd.DataFrame({"station_id": sites["station_id"].to_numpy(), "area_class": classes,
                         "area_class_basis": basis})


def air_daily(sites: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """One row per station-day: the observed daily values, the IAQI of each, AQI, category, primary pollutant
    (:func:`ecoassess.network.aqi.daily_aqi`, HJ 633 version by date), with the site's name and county."""
    days = obs.drop(columns=["source_row"], errors="ignore")
    graded = daily_aqi(days)
    return _first(_site_info(sites).merge(graded, on="station_id", how="right"),
                  ["station_id", *SITE_COLUMNS, "time"])


def _unit_names(table: pd.DataFrame) -> pd.DataFrame:
    """GB 3095 annual items with their unit in the name: ``pm25_annual`` → ``pm25_annual_ugm3``,
    ``pm25_annual_limit`` → ``pm25_annual_limit_ugm3``, ``co_p95`` → ``co_p95_mgm3``."""
    renames = {}
    for item in standards.table("gb3095")["annual_items"]:
        unit = AIR_UNITS.get(item.split("_")[0], "ugm3")
        renames[item] = f"{item}_{unit}"
        renames[f"{item}_limit"] = f"{item}_limit_{unit}"
    return table.rename(columns=renames)


def air_station_annual(sites: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """One row per station and year: GB 3095 annual statistics with their valid-day counts, the good-day ratio
    (AQI ≤ 100 over complete days), the station's area class and compliance with its limits
    (:mod:`ecoassess.network.air_statistics`). A station without observations has a row with empty values."""
    days = obs.drop(columns=["source_row"], errors="ignore")
    if len(days):
        stats = annual_statistics(days, station="station_id", date="time")
    else:
        stats = pd.DataFrame({"station_id": pd.Series([], dtype=object), "year": pd.Series([], dtype=int)})
    classes = air_area_class(sites)
    stats = classes.merge(stats, on="station_id", how="left")
    graded = annual_compliance(stats.dropna(subset=["year"]).astype({"year": int}))
    missing = stats[stats["year"].isna()]
    table = pd.concat([graded, missing], ignore_index=True) if len(missing) else graded
    table["n_days_observed"] = table["station_id"].map(obs.groupby("station_id").size()).fillna(0).astype(int)
    table = _site_info(sites).merge(table, on="station_id", how="right")
    return _unit_names(_first(table, ["station_id", *SITE_COLUMNS, "year", "area_class", "area_class_basis",
                                      "n_days_observed", "n_aqi_days", "n_good_days", "good_day_ratio"]))


# -- water -------------------------------------------------------------------------------------------------------

def target_class(value) -> str | None:
    """A GB 3838 class written as published (III, Ⅲ, Ⅲ类, 3, iii) as I…V; None when empty or not a class."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip().upper().removesuffix("类").strip()
    text = text.removeprefix("CLASS").strip()
    return ROMAN.get(text)


def _month_list(year: int, months) -> str:
    """Months as ``2024-08`` text, ','-joined (unambiguous in CSV and Excel)."""
    return ",".join(f"{year}-{k:02d}" for k in months)


def _months(obs: pd.DataFrame, year: int) -> pd.DataFrame:
    months = obs.assign(month=pd.to_datetime(obs["time"]).dt.month).groupby("station_id")["month"]
    sampled = months.apply(lambda m: sorted(set(m)))
    return pd.DataFrame({"station_id": sampled.index,
                         "n_samples": obs.groupby("station_id").size().reindex(sampled.index).to_numpy(),
                         "months_sampled": [len(m) for m in sampled],
                         "missing_months": [_month_list(year, [k for k in range(1, MONTHS_PER_YEAR + 1) if k not in m])
                                            for m in sampled]})


def water_sections(sites: pd.DataFrame, obs: pd.DataFrame, year: int) -> pd.DataFrame:
    """One row per section (every site, also one without samples): annual item means and the single-factor class
    (:func:`ecoassess.network.water.section_annual_class`, by its water body), deciding items, months sampled and
    missing in ``year`` (``2024-08``), the target class and whether the class meets it. Used for surface-water sections and drinking-water
    sources alike."""
    info = _site_info(sites, ["river", "water_body", "target_class"])
    body = info["water_body"] if "water_body" in info.columns else pd.Series([None] * len(info))
    info["water_body_basis"] = np.where(body.isna(), "not given: graded as a river [C]", "site table")
    info["water_body"] = body.fillna("river")
    given_target = info["target_class"] if "target_class" in info.columns else pd.Series([None] * len(info))
    info["target_class_given"] = given_target
    info["target_class"] = [target_class(v) for v in given_target]
    parts = []
    for b, group in info.groupby("water_body", sort=True):
        o = obs[obs["station_id"].isin(group["station_id"])].drop(columns=["source_row"], errors="ignore")
        if len(o):
            annual = section_annual_class(o, body=b, section="station_id", date="time")
            parts.append(annual.drop(columns=["n_samples"], errors="ignore"))
    graded = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"station_id": []})
    table = info.merge(graded, on="station_id", how="left")
    if len(obs):
        table = table.merge(_months(obs, year), on="station_id", how="left")
    for col in ("n_samples", "months_sampled"):
        table[col] = table[col].fillna(0).astype(int) if col in table.columns else 0
    table["missing_months"] = table.get("missing_months", pd.Series(index=table.index, dtype=object)).fillna(
        _month_list(year, range(1, MONTHS_PER_YEAR + 1)))
    labels = list(standards.table("water")["classes"]) + [standards.table("water")["worse_than_v"]]
    rank = {k: i for i, k in enumerate(labels)}
    cls = table["water_class"] if "water_class" in table.columns else pd.Series([None] * len(table))
    table["water_class"] = cls
    table["meets_target"] = pd.array([pd.NA if c not in rank or t is None else rank[c] <= rank[t]
                                      for c, t in zip(cls, table["target_class"])], dtype="boolean")
    return _first(table, ["station_id", *SITE_COLUMNS, "river", "water_body", "water_body_basis", "year",
                          "n_samples", "months_sampled", "missing_months", "water_class", "deciding_items",
                          "items_over_iii", "quality_zh", "target_class", "target_class_given", "meets_target"])


def water_county_shares(sections: pd.DataFrame, counties: pd.DataFrame) -> pd.DataFrame:
    """Per county of the study area (``county_code``, ``county_name``): sections with a class, share at I–III and
    share 劣V (:func:`ecoassess.network.water.county_shares`); counties without a graded section have 0 sections
    and empty shares."""
    shares = county_shares(sections, county="county_code") if sections["water_class"].notna().any() else \
        pd.DataFrame({"county_code": [], "n_sections": [], "share_i_iii": [], "share_worse_v": []})
    out = pd.DataFrame(counties[["county_code", "county_name"]]).merge(shares, on="county_code", how="left")
    out["n_sections"] = out["n_sections"].fillna(0).astype(int)
    return out


# -- soil, noise, ecology ------------------------------------------------------------------------------------------

def soil_points(sites: pd.DataFrame, obs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(graded, not graded): one row per soil sample with the site's land use and the pH of the sample (else the
    site's), each metal against its GB 15618 screening/control values and the point's class
    (:func:`ecoassess.network.soil.soil_class`). Samples without pH or land use cannot be graded: they form the
    second frame (station_id, time, source_row, reason)."""
    info = _site_info(sites, ["land_use", "ph"]).rename(columns={"ph": "ph_site"})
    table = info.merge(obs, on="station_id", how="inner")
    if "ph" not in table.columns:
        table["ph"] = np.nan
    if "ph_site" in table.columns:
        table["ph"] = table["ph"].fillna(pd.to_numeric(table["ph_site"], errors="coerce"))
    if "land_use" not in table.columns:
        table["land_use"] = None
    lacking = table["ph"].isna() | table["land_use"].isna()
    reasons = np.where(table["ph"].isna(), "no pH (sample or site): the GB 15618 values depend on it",
                       "no land use in the site table: the GB 15618 values depend on it")
    skipped = pd.DataFrame({"station_id": table.loc[lacking, "station_id"], "time": table.loc[lacking, "time"],
                            "source_row": table.loc[lacking, "source_row"], "reason": reasons[lacking.to_numpy()]})
    ok = table[~lacking].drop(columns=["ph_site"], errors="ignore").reset_index(drop=True)
    graded = soil_class(ok) if len(ok) and any(f"{m}_mgkg" in ok.columns for m in METALS) else ok
    return _first(graded, ["station_id", *SITE_COLUMNS, "time", "land_use", "ph", "ph_band", "soil_class",
                           "n_metals"]), skipped


def noise_measurements(sites: pd.DataFrame, obs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(graded, not graded): one row per noise point and measurement, day and night Leq against the limits of the
    point's GB 3096 functional class (:func:`ecoassess.network.noise.noise_compliance`). Measurements of points
    without a class form the second frame (station_id, time, source_row, reason)."""
    table = _site_info(sites, ["function_class"]).merge(obs, on="station_id", how="inner")
    if "function_class" not in table.columns:
        table["function_class"] = None
    lacking = table["function_class"].isna()
    skipped = pd.DataFrame({"station_id": table.loc[lacking, "station_id"], "time": table.loc[lacking, "time"],
                            "source_row": table.loc[lacking, "source_row"],
                            "reason": "no GB 3096 functional class in the site table: no limit to compare with"})
    ok = table[~lacking].reset_index(drop=True)
    graded = noise_compliance(ok) if len(ok) else ok
    return _first(graded, ["station_id", *SITE_COLUMNS, "time", "function_class"]), skipped


def ecology_plots(sites: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """One row per plot and observation, values as observed (no national standard grades them); a plot without
    observations has one row with empty values."""
    extra = [c for c in sites.columns if c not in ("geometry", "station_type", "mapped", "source_row", "station_id")
             and not c.startswith("county_") and c not in SITE_COLUMNS and not c.endswith(("_id", "_name"))
             and not c.startswith("land_cover")]
    table = _site_info(sites, extra).merge(obs, on="station_id", how="left")
    return _first(table, ["station_id", *SITE_COLUMNS, "time"])
