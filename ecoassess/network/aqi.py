"""Air quality index per HJ 633-2012 / HJ 633—2026 (STANDARDS §7.1, §8 items 1–3), from hourly or daily station
observations (tables in ``indices/aqi_hj633.yaml``).

Tables are wide (one column per pollutant, unit in the name) or long (``pollutant``, ``value`` and optionally
``unit`` columns). Wide column names:

* hourly: ``so2_ugm3``, ``no2_ugm3``, ``co_mgm3``, ``o3_ugm3`` (or ``o3_1h_ugm3``), ``pm10_ugm3``, ``pm25_ugm3``;
  optional ``so2_24h_ugm3`` (the SO2 24-h mean, for the 2012 rule of SO2 1 h > 800);
* daily: ``so2_ugm3``, ``no2_ugm3``, ``co_mgm3``, ``pm10_ugm3``, ``pm25_ugm3`` (24-h means; ``*_24h_*`` also
  accepted), ``o3_8h_ugm3`` (daily maximum 8-h mean) and, for 2012, ``o3_1h_ugm3`` (daily maximum 1-h value).

The version is chosen per row from its ``date``/``time`` column (HJ 633—2026 from 2026-03-01) unless ``version=``
fixes it. Concentrations are rounded first (2026 §4.2.2; GB/T 8170), IAQI and AQI are rounded up (2012 §6.2, 2026
§4.2.6) with exact integer arithmetic (no 75.000000001 → 76).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoassess.errors import InputError
from ecoassess.network import standards
from ecoassess.network.values import check_not_negative, round_gbt8170, to_number

POLLUTANTS = ("so2", "no2", "co", "o3", "pm10", "pm25")
UNIT = {"so2": "ugm3", "no2": "ugm3", "co": "mgm3", "o3": "ugm3", "pm10": "ugm3", "pm25": "ugm3"}
UNIT_TEXT = {"ugm3": "µg/m³", "mgm3": "mg/m³"}
#: pollutant names seen in published long tables → the stem used here
ALIASES = {"so2": "so2", "二氧化硫": "so2", "no2": "no2", "二氧化氮": "no2", "co": "co", "一氧化碳": "co",
           "o3": "o3", "臭氧": "o3", "o3_1h": "o3_1h", "o3-1h": "o3_1h", "o3_8h": "o3_8h", "o3-8h": "o3_8h",
           "o3_8h_max": "o3_8h", "pm10": "pm10", "pm2.5": "pm25", "pm2_5": "pm25", "pm25": "pm25",
           "so2_24h": "so2_24h"}
UNIT_ALIASES = {"µg/m³": "ugm3", "μg/m³": "ugm3", "ug/m3": "ugm3", "µg/m3": "ugm3", "μg/m3": "ugm3",
                "ugm3": "ugm3", "mg/m³": "mgm3", "mg/m3": "mgm3", "mgm3": "mgm3"}
DATE_COLUMNS = ("time", "datetime", "date")

HOURLY_COLUMNS = {"so2": ("so2_ugm3", "so2_1h_ugm3"), "no2": ("no2_ugm3", "no2_1h_ugm3"),
                  "co": ("co_mgm3", "co_1h_mgm3"), "o3": ("o3_ugm3", "o3_1h_ugm3"),
                  "pm10": ("pm10_ugm3", "pm10_1h_ugm3"), "pm25": ("pm25_ugm3", "pm25_1h_ugm3")}
HOURLY_LABELS = {"so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3", "pm10": "PM10", "pm25": "PM2.5"}
#: output column of the IAQI of each daily indicator
DAILY_IAQI_NAMES = {"so2_24h": "iaqi_so2", "no2_24h": "iaqi_no2", "co_24h": "iaqi_co", "o3_8h": "iaqi_o3_8h",
                    "o3_1h": "iaqi_o3_1h", "pm10_24h": "iaqi_pm10", "pm25_24h": "iaqi_pm25"}
DAILY_COLUMNS = {"so2_24h": ("so2_ugm3", "so2_24h_ugm3"), "no2_24h": ("no2_ugm3", "no2_24h_ugm3"),
                 "co_24h": ("co_mgm3", "co_24h_mgm3"), "o3_8h": ("o3_8h_ugm3",), "o3_1h": ("o3_1h_ugm3",),
                 "pm10_24h": ("pm10_ugm3", "pm10_24h_ugm3"), "pm25_24h": ("pm25_ugm3", "pm25_24h_ugm3")}
#: the daily indicators a day needs to count as a valid day of the good-day ratio (both versions) [C]
CORE_DAILY = ("so2_24h", "no2_24h", "co_24h", "o3_8h", "pm10_24h", "pm25_24h")


def _row(version: str, row: str) -> dict:
    rows = standards.table("aqi")["versions"][version]["rows"]
    if row not in rows:
        raise InputError(f"no HJ 633-{version} breakpoint row {row!r}", field="averaging",
                         expected=", ".join(sorted(rows)))
    return rows[row]


def _decimals(version: str, row: str) -> int:
    return standards.table("aqi")["versions"][version]["concentration_rounding"]["decimals"][_row(version, row)["unit"]]


def round_concentration(values, row: str, version: str) -> np.ndarray:
    """Concentrations rounded as HJ 633—2026 §4.2.2 says (µg/m³ to integers, CO mg/m³ to 1 decimal, GB/T 8170)."""
    return round_gbt8170(values, _decimals(version, row))


def _iaqi_rounded(row: str, conc, version: str):
    """IAQI of already-rounded concentrations (array) on breakpoint row ``row``: (iaqi as float, over-range mask).
    Over-range cells where the version computes nothing (2012) are NaN."""
    spec = _row(version, row)
    ver = standards.table("aqi")["versions"][version]
    levels = standards.table("aqi")["iaqi_levels"]
    bp = spec["bp"]
    c = np.asarray(conc, dtype=float)
    out = np.full(c.shape, np.nan)
    ok = np.isfinite(c)
    # exact arithmetic in tenths: rounded concentrations (≤ 1 decimal) and breakpoints are whole numbers of tenths
    c10 = np.where(ok, np.rint(c * 10), 0).astype(np.int64)
    bp10 = np.rint(np.asarray(bp, dtype=float) * 10).astype(np.int64)
    over = ok & (c10 > bp10[-1])
    inside = ok & ~over
    seg = np.clip(np.searchsorted(bp10, c10, side="left"), 1, len(bp10) - 1)
    lo, hi = bp10[seg - 1], bp10[seg]
    il = np.asarray(levels, dtype=np.int64)[seg - 1]
    ih = np.asarray(levels, dtype=np.int64)[seg]
    num = (ih - il) * (c10 - lo)
    den = hi - lo
    value = il + -((-num) // den)           # IAQI_Lo + ceil(...): IAQI rounded up
    out[inside] = value[inside]
    if over.any():
        rule_name = spec.get("over_range")
        if rule_name:
            rule = ver["over_range"][rule_name]
            out[over] = rule["iaqi"] if isinstance(rule, dict) and "iaqi" in rule else np.nan
        else:   # above the row's top breakpoint: reported as 500
            out[over] = levels[-1]
    return out, over


def iaqi(pollutant: str, concentration: float, averaging: str, version) -> float:
    """The IAQI of one concentration (µg/m³; CO mg/m³) of ``pollutant`` ('so2', 'no2', 'co', 'o3', 'pm10', 'pm25')
    averaged over ``averaging`` ('1h', '8h', '24h') under HJ 633 ``version`` ('2012' or '2026').

    The concentration is rounded first (2026 §4.2.2), the IAQI rounded up. PM10/PM2.5 1-h values use the 24-h
    row (2026). Over range: 2026 gives SO2 1 h > 800 → 200 and O3 8 h > 800 → 300; 2012 computes nothing there
    (NaN: report the 24-h SO2 / 1-h O3 IAQI instead). Above the top breakpoint of any other row → 500. Missing → NaN;
    a negative concentration raises an InputError."""
    version = standards.check_version("aqi", version)
    p = ALIASES.get(str(pollutant).strip().lower(), str(pollutant).strip().lower())
    if p not in POLLUTANTS:
        raise InputError(f"unknown pollutant {pollutant!r}", field="pollutant", expected=", ".join(POLLUTANTS))
    avg = str(averaging).strip().lower().replace(" ", "")
    avg = {"24": "24h", "1": "1h", "8": "8h", "daily": "24h", "hourly": "1h"}.get(avg, avg)
    if p in ("pm10", "pm25") and avg == "1h":
        avg = "24h"
    row = f"{p}_{avg}"
    _row(version, row)
    c = float(concentration) if concentration is not None else np.nan
    if np.isfinite(c) and c < 0:
        raise InputError(f"negative concentration {c:g}", field=row, expected="a value ≥ 0")
    value, _ = _iaqi_rounded(row, round_concentration([c], row, version), version)
    return float(value[0])


# -- tables ---------------------------------------------------------------------------------------------------------

def _long_to_wide(df: pd.DataFrame, daily: bool) -> pd.DataFrame:
    """A long table (``pollutant``, ``value``, optional ``unit``) as a wide one with unit-named columns."""
    keys = [c for c in df.columns if c not in ("pollutant", "value", "unit")]
    stems = df["pollutant"].astype(str).str.strip().str.lower().map(lambda s: ALIASES.get(s, s))
    unknown = ~stems.isin(set(ALIASES.values()))
    if unknown.any():
        label = unknown.idxmax()
        raise InputError(f"row {label}: unknown pollutant {df.loc[label, 'pollutant']!r}", field="pollutant",
                         expected="SO2, NO2, CO, O3 (O3_8h, O3_1h), PM10, PM2.5")
    units = stems.map(lambda s: UNIT[s.split("_")[0]])
    if "unit" in df.columns:
        given = df["unit"].astype(str).str.strip().map(lambda u: UNIT_ALIASES.get(u, UNIT_ALIASES.get(u.lower(), u)))
        bad = given.ne(units) & df["unit"].notna()
        if bad.any():
            label = bad.idxmax()
            raise InputError(f"row {label}: {df.loc[label, 'pollutant']} given in {df.loc[label, 'unit']!r}",
                             field="unit", expected=f"{UNIT_TEXT[units[label]]} (CO in mg/m³, the others in µg/m³)")
    if daily:
        stems = stems.replace({"o3": "o3_8h"})  # a daily O3 without averaging is the daily max 8 h [C]
    names = stems + "_" + units
    wide_in = df.assign(_name=names.values)
    dup = wide_in.duplicated(keys + ["_name"])
    if dup.any():
        label = dup.idxmax()
        raise InputError(f"row {label}: a second value of {df.loc[label, 'pollutant']} for the same "
                         f"{', '.join(map(str, keys))}", field="pollutant", expected="one value per key and pollutant")
    wide = wide_in.pivot(index=keys, columns="_name", values="value") if keys else None
    if wide is None:
        raise InputError("a long table needs key columns (station, date/time) besides pollutant/value/unit",
                         field="pollutant", expected="station, time, pollutant, value")
    wide.columns.name = None
    return wide.reset_index()


def _prepare(df: pd.DataFrame, columns: dict, daily: bool, path=None) -> tuple[pd.DataFrame, dict]:
    """The input as a wide table and {indicator row: float Series} of its concentrations (checked)."""
    if not isinstance(df, pd.DataFrame):
        raise InputError("expected a table (pandas DataFrame)", path=path)
    if "pollutant" in df.columns and "value" in df.columns:
        df = _long_to_wide(df, daily)
    wrong = [c for c in df.columns if isinstance(c, str) and (c.lower() in POLLUTANTS or c.lower() in ("pm2.5", "o3_8h")
                                                              or c.lower() in ("co_ugm3", "co_24h_ugm3", "co_1h_ugm3"))]
    if wrong:
        raise InputError(f"column {wrong[0]!r} has no unit (or the wrong one) in its name", path=path, field=wrong[0],
                         expected="names with units: so2_ugm3, no2_ugm3, co_mgm3, o3_ugm3 / o3_8h_ugm3, pm10_ugm3, "
                                  "pm25_ugm3 (CO in mg/m³)")
    found = {}
    for row, names in columns.items():
        name = next((n for n in names if n in df.columns), None)
        if name is not None:
            values = to_number(df[name], name=name, path=path)
            check_not_negative(values, name=name, path=path)
            found[row] = values
    if not found:
        raise InputError("no pollutant column found", path=path,
                         expected="columns like " + ", ".join(n[0] for n in columns.values()))
    return df.reset_index(drop=True), {k: v.reset_index(drop=True) for k, v in found.items()}


def _versions_of(df: pd.DataFrame, version) -> pd.Series:
    if version is not None:
        return pd.Series(standards.check_version("aqi", version), index=df.index)
    col = next((c for c in DATE_COLUMNS if c in df.columns), None)
    if col is None:
        raise InputError("no date to choose the HJ 633 version", field="date/time",
                         expected="a 'time' or 'date' column, or version='2012' / '2026'")
    return standards.version_on("aqi", df[col])


def _join(parts: list[tuple[str, np.ndarray]], n: int) -> np.ndarray:
    """Per row, the labels whose mask is true, joined by ',' in the given order."""
    out = pd.Series([""] * n, dtype=object)
    for label, mask in parts:
        m = pd.Series(mask)
        out = out.where(~m, np.where(out == "", label, out + "," + label))
    return out.to_numpy()


def _finish(df: pd.DataFrame, sub: dict[str, np.ndarray], versions: pd.Series, indicators_of: dict,
            notes: list[list[str]], labels: dict, names: dict) -> pd.DataFrame:
    """AQI, level, category, colour, primary pollutant(s) from the IAQI columns ``sub`` {indicator: array};
    ``labels`` {indicator: display name}, ``names`` {indicator: output column}."""
    t = standards.table("aqi")
    out = df.copy()
    n = len(df)
    vers = versions.to_numpy()
    keys = list(dict.fromkeys(k for v in indicators_of.values() for k in v))
    used = {}     # indicator -> IAQI where it is one of the row's version's indicators, else NaN
    for k in keys:
        in_version = np.isin(vers, [v for v, ind in indicators_of.items() if k in ind])
        used[k] = np.where(in_version, sub[k], np.nan) if k in sub else np.full(n, np.nan)
    stack = np.vstack([used[k] for k in keys]) if keys else np.full((1, n), np.nan)
    has = np.isfinite(stack).any(axis=0)
    aqi = np.where(has, np.nanmax(np.where(np.isfinite(stack), stack, -np.inf), axis=0), np.nan)
    aqi_min = np.array([t["versions"][v]["aqi_min"] for v in vers], dtype=float) if n else np.zeros(0)
    aqi = np.where(has, np.maximum(aqi, aqi_min), np.nan)
    above = has & (aqi > t["primary_pollutant_above"])
    exc_defined = np.array([t["versions"][v]["exceeding_pollutants"]["defined"] for v in vers], dtype=bool)
    exc_above = np.array([t["versions"][v]["exceeding_pollutants"].get("iaqi_above", np.inf) for v in vers],
                         dtype=float)
    in_version = {k: np.isin(vers, [v for v, ind in indicators_of.items() if k in ind]) for k in keys}
    for r, values in sub.items():
        out[names[r]] = values
    out["aqi"] = aqi
    cats = t["categories"]
    idx = np.clip(np.searchsorted([c["max_aqi"] for c in cats], np.nan_to_num(aqi, nan=0), side="left"),
                  0, len(cats) - 1)
    out["aqi_level"] = pd.array(np.where(has, np.array([c["level"] for c in cats])[idx], 0), dtype="Int64")
    out.loc[~has, "aqi_level"] = pd.NA
    for key in ("level_zh", "category_zh", "category_en"):
        out[f"aqi_{key}"] = np.where(has, np.array([c[key] for c in cats], dtype=object)[idx], None)
    colours = np.array(["#{:02X}{:02X}{:02X}".format(*c["rgb"]) for c in cats], dtype=object)
    out["aqi_colour"] = np.where(has, colours[idx], None)
    out["primary_pollutant"] = _join([(labels[k], above & (used[k] == aqi)) for k in keys], n)
    out["exceeding_pollutants"] = _join([(labels[k], exc_defined & (used[k] > exc_above)) for k in keys], n)
    out["missing_indicators"] = _join([(labels[k], in_version[k] & ~np.isfinite(used[k])) for k in keys], n)
    out["aqi_version"] = ["HJ 633-" + v for v in vers]
    out["aqi_notes"] = ["; ".join(x) for x in notes]
    return out


def hourly_aqi(df: pd.DataFrame, version=None, *, path=None) -> pd.DataFrame:
    """Real-time (hourly) AQI of each row: the input's columns plus ``iaqi_so2`` … ``iaqi_pm25``, ``aqi``,
    ``aqi_level`` (1–6), ``aqi_level_zh``, ``aqi_category_zh``/``_en``, ``aqi_colour`` (hex), ``primary_pollutant``
    (ties joined by ','), ``exceeding_pollutants`` (2012 only), ``missing_indicators``, ``aqi_version``,
    ``aqi_notes``. 1-h rows for SO2, NO2, CO, O3; PM10/PM2.5 on their 24-h rows. SO2 1 h > 800: 2026 → 200;
    2012 → the IAQI of ``so2_24h_ugm3`` when the table has it, else missing (said in ``aqi_notes``)."""
    df, conc = _prepare(df, HOURLY_COLUMNS, daily=False, path=path)
    versions = _versions_of(df, version)
    extra = {}
    if "so2_24h_ugm3" in df.columns:
        extra["so2_24h"] = to_number(df["so2_24h_ugm3"], name="so2_24h_ugm3", path=path)
        check_not_negative(extra["so2_24h"], name="so2_24h_ugm3", path=path)
    sub = {r: np.full(len(df), np.nan) for r in conc}
    notes = [[] for _ in range(len(df))]
    for v in versions.unique():
        m = (versions == v).to_numpy()
        hourly_rows = standards.table("aqi")["versions"][v]["hourly_indicators"]
        for key, values in conc.items():
            row = hourly_rows[key]
            vals, over = _iaqi_rounded(row, round_concentration(values[m], row, v), v)
            if row == "so2_1h" and v == "2012" and over.any():
                idx = np.flatnonzero(m)[over]
                if "so2_24h" in extra:
                    alt, _ = _iaqi_rounded("so2_24h", round_concentration(extra["so2_24h"].to_numpy()[idx],
                                                                          "so2_24h", v), v)
                    vals[over] = alt
                for j in idx:
                    notes[j].append("SO2 1-h > 800 µg/m³: IAQI from the 24-h mean (HJ 633-2012)"
                                    if "so2_24h" in extra else
                                    "SO2 1-h > 800 µg/m³: no IAQI (HJ 633-2012 needs the 24-h mean: so2_24h_ugm3)")
            if row == "so2_1h" and v == "2026" and over.any():
                for j in np.flatnonzero(m)[over]:
                    notes[j].append("SO2 1-h > 800 µg/m³: IAQI = 200 (HJ 633—2026)")
            sub[key][m] = vals
    indicators = {v: list(HOURLY_COLUMNS) for v in versions.unique()}
    return _finish(df, sub, versions, indicators, notes, HOURLY_LABELS, {k: f"iaqi_{k}" for k in HOURLY_COLUMNS})


def daily_aqi(df: pd.DataFrame, version=None, *, path=None) -> pd.DataFrame:
    """Daily AQI of each row (station-day): the input's columns plus the IAQI of each daily indicator
    (``iaqi_so2``, ``iaqi_no2``, ``iaqi_co``, ``iaqi_o3_8h``, ``iaqi_o3_1h`` (2012 only), ``iaqi_pm10``,
    ``iaqi_pm25``) and the columns of :func:`hourly_aqi`, plus ``complete`` (all six core indicators present: a valid
    day for the good-day ratio [C]). 2012: 7 indicators incl. the daily max 1-h O3; O3 8 h > 800 → no 8-h IAQI,
    the 1-h one reports O3. 2026: 6 indicators; O3 8 h > 800 → 300."""
    df, conc = _prepare(df, DAILY_COLUMNS, daily=True, path=path)
    versions = _versions_of(df, version)
    sub = {r: np.full(len(df), np.nan) for r in conc}
    notes = [[] for _ in range(len(df))]
    for v in versions.unique():
        m = (versions == v).to_numpy()
        for row, values in conc.items():
            vals, over = _iaqi_rounded(row, round_concentration(values[m], row, v), v)
            if row == "o3_8h" and over.any():
                text = ("O3 8-h > 800 µg/m³: IAQI from the daily max 1-h value (HJ 633-2012)" if v == "2012"
                        else "O3 8-h > 800 µg/m³: IAQI = 300 (HJ 633—2026)")
                if v == "2012" and "o3_1h" not in conc:
                    text = "O3 8-h > 800 µg/m³: no IAQI (HJ 633-2012 needs the daily max 1-h value: o3_1h_ugm3)"
                for j in np.flatnonzero(m)[over]:
                    notes[j].append(text)
            sub[row][m] = vals
    indicators = {v: standards.table("aqi")["versions"][v]["daily_indicators"] for v in versions.unique()}
    if "o3_1h" in sub:  # the 1-h O3 is not a 2026 daily indicator: do not show an IAQI that was not used
        sub["o3_1h"][(versions == "2026").to_numpy()] = np.nan
    out = _finish(df, sub, versions, indicators, notes, standards.table("aqi")["labels"], DAILY_IAQI_NAMES)
    present = np.ones(len(df), dtype=bool)
    for row in CORE_DAILY:
        present &= np.isfinite(conc[row].to_numpy()) if row in conc else False
    out["complete"] = present
    return out
