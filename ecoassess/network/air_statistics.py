"""Station air statistics per GB 3095 / HJ 663 (STANDARDS §7.2; rules in ``indices/gb3095.yaml``): daily values
from hourly ones with the data-validity rules, annual statistics of a station-year, and compliance with the limits of
the station's area class.

Validity applied (``gb3095.yaml`` ``validity``; GB 3095-2012 §8 Table 4 / HJ 663-2013 as recalled [B]):
a 24-h mean needs ≥ 20 hourly values of the day; an 8-h O3 mean ≥ 6 of its 8 hours; the daily max 8-h O3 ≥ 14 valid
8-h means among the 17 ending 08:00…24:00; an annual statistic ≥ 324 valid days in the year and ≥ 27 in every month
(February ≥ 25), applied to percentiles as well [C]. A statistic that fails its rule is left empty (NaN), never
computed from too few days, and its day count is reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoassess.errors import InputError
from ecoassess.network import standards
from ecoassess.network.aqi import daily_aqi
from ecoassess.network.values import check_not_negative, round_gbt8170, to_datetime, to_number

HOURLY_MEAN_COLUMNS = ("so2_ugm3", "no2_ugm3", "co_mgm3", "pm10_ugm3", "pm25_ugm3")
DAILY_STAT_COLUMNS = ("so2_ugm3", "no2_ugm3", "co_mgm3", "pm10_ugm3", "pm25_ugm3", "o3_8h_ugm3")


def _need(df: pd.DataFrame, columns, path=None):
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", path=path, field=missing[0],
                         expected=", ".join(columns))


def _numbers(df: pd.DataFrame, columns, path=None) -> pd.DataFrame:
    out = df.copy()
    for c in columns:
        if c in out.columns:
            out[c] = to_number(out[c], name=c, path=path)
            check_not_negative(out[c], name=c, path=path)
    return out


def daily_from_hourly(hourly: pd.DataFrame, *, station: str = "station", time: str = "time",
                      hour_label: str = "end", path=None) -> pd.DataFrame:
    """Daily values of each station from its hourly values: 24-h means of SO2, NO2, CO, PM10, PM2.5 (≥ 20 hours),
    the daily maximum 1-h O3 (≥ 20 hours [C]) and the daily maximum 8-h O3 (GB 3095: the largest of the 8-h moving
    means ending 08:00…24:00 of the day, each of ≥ 6 hours, and ≥ 14 such means). Columns: ``station``, ``date``,
    the daily columns of :func:`ecoassess.network.aqi.daily_aqi` and ``n_hours_<column>``.

    ``hour_label``: 'end' (default; Chinese platforms label the 00:00–01:00 mean '01:00', so '00:00' is the last
    hour of the previous day) or 'start'."""
    _need(hourly, [station, time], path)
    if hour_label not in ("end", "start"):
        raise ValueError("hour_label must be 'end' or 'start'")
    o3 = "o3_ugm3" if "o3_ugm3" in hourly.columns else ("o3_1h_ugm3" if "o3_1h_ugm3" in hourly.columns else None)
    cols = [c for c in HOURLY_MEAN_COLUMNS if c in hourly.columns] + ([o3] if o3 else [])
    if not cols:
        raise InputError("no hourly pollutant column", path=path, expected=", ".join(HOURLY_MEAN_COLUMNS + ("o3_ugm3",)))
    df = _numbers(hourly[[station, time] + cols], cols, path)
    t = to_datetime(df[time], name=time, path=path)
    start = t - pd.Timedelta(hours=1) if hour_label == "end" else t
    if ((start.dt.minute != 0) | (start.dt.second != 0)).any():
        label = start.index[(start.dt.minute != 0) | (start.dt.second != 0)][0]
        raise InputError(f"row {label}: {hourly.loc[label, time]!r} is not on the hour", path=path, field=time,
                         expected="hourly values at whole hours")
    df = df.assign(_date=start.dt.normalize(), _hour=start.dt.hour)
    dup = df.duplicated([station, "_date", "_hour"])
    if dup.any():
        label = dup.idxmax()
        raise InputError(f"row {label}: a second value for station {df.loc[label, station]} at that hour", path=path,
                         field=time, expected="one row per station and hour")
    v = standards.table("gb3095")["validity"]
    rows = []
    for (st, day), g in df.groupby([station, "_date"], sort=True):
        rec = {station: st, "date": day}
        grid = g.set_index("_hour").reindex(range(24))
        for c in cols:
            vals = grid[c].to_numpy(dtype=float)
            n = int(np.isfinite(vals).sum())
            if c == o3:
                rec["n_hours_o3_1h_ugm3"] = n
                rec["o3_1h_ugm3"] = np.nanmax(vals) if n >= v["hourly_values_per_24h_mean"] else np.nan
                means = []
                for k in range(17):                       # windows of start-hours k … k+7, ending 08:00 … 24:00
                    w = vals[k:k + 8]
                    means.append(np.nanmean(w) if np.isfinite(w).sum() >= v["hourly_values_per_8h_mean"] else np.nan)
                means = np.asarray(means)
                n8 = int(np.isfinite(means).sum())
                rec["n_8h_means_o3"] = n8
                rec["o3_8h_ugm3"] = np.nanmax(means) if n8 >= v["valid_8h_means_per_day_max8h"] else np.nan
            else:
                rec[f"n_hours_{c}"] = n
                rec[c] = np.nanmean(vals) if n >= v["hourly_values_per_24h_mean"] else np.nan
        rows.append(rec)
    return pd.DataFrame(rows)


def percentile_hj663(values, p: float) -> float:
    """The p-th percentile of ``values`` (NaN ignored) by HJ 663: sorted X1 ≤ … ≤ Xn, k = 1 + (n − 1)·p/100,
    s = ⌊k⌋, m_p = X_s + (X_{s+1} − X_s)(k − s) (``gb3095.yaml`` percentile_rule [B])."""
    x = np.sort(np.asarray(values, dtype=float)[np.isfinite(np.asarray(values, dtype=float))])
    n = len(x)
    if n == 0:
        return float("nan")
    k = 1 + (n - 1) * p / 100.0
    s = int(np.floor(k))
    if s >= n:
        return float(x[-1])
    return float(x[s - 1] + (x[s] - x[s - 1]) * (k - s))


def _enough_days(dates: pd.Series, year: int) -> bool:
    v = standards.table("gb3095")["validity"]
    if len(dates) < v["daily_values_per_year"]:
        return False
    per_month = dates.dt.month.value_counts()
    for month in range(1, 13):
        need = v["daily_values_per_february"] if month == 2 else v["daily_values_per_month"]
        if per_month.get(month, 0) < need:
            return False
    return True


def annual_statistics(daily: pd.DataFrame, *, station: str = "station", date: str = "date", aqi_version=None,
                      path=None) -> pd.DataFrame:
    """Annual statistics of each station-year from daily values (columns as for
    :func:`ecoassess.network.aqi.daily_aqi`): the items of ``gb3095.yaml`` ``annual_items`` (annual means of SO2, NO2,
    PM10, PM2.5; 98th percentiles of daily SO2/NO2, 95th of PM10/PM2.5 and CO, 90th of the daily max 8-h O3), each
    rounded like its concentrations (GB/T 8170) and empty when the year fails the validity rule; ``n_days_<column>``
    and ``valid_<column>``; and the AQI good-day ratio (days of AQI ≤ 100 over complete days, with
    ``n_aqi_days``/``n_good_days``; HJ 633 version by date unless ``aqi_version``)."""
    _need(daily, [station, date], path)
    present = [c for c in DAILY_STAT_COLUMNS if c in daily.columns]
    df = _numbers(daily, present, path)
    d = to_datetime(df[date], name=date, path=path)
    df = df.assign(**{date: d.dt.normalize()})
    dup = df.duplicated([station, date])
    if dup.any():
        label = dup.idxmax()
        raise InputError(f"row {label}: a second row for station {df.loc[label, station]} on {df.loc[label, date].date()}",
                         path=path, field=date, expected="one row per station and day")
    t = standards.table("gb3095")
    items = t["annual_items"]
    decimals = t["statistic_decimals"]
    aqi = daily_aqi(df, version=aqi_version, path=path)
    df = df.assign(_year=df[date].dt.year, _aqi=aqi["aqi"].to_numpy(), _complete=aqi["complete"].to_numpy())
    rows = []
    for (st, year), g in df.groupby([station, "_year"], sort=True):
        rec = {station: st, "year": int(year)}
        valid = {}
        for c in present:
            ok = g[c].notna()
            rec[f"n_days_{c}"] = int(ok.sum())
            valid[c] = _enough_days(g.loc[ok, date], year)
            rec[f"valid_{c}"] = valid[c]
        for name, item in items.items():
            c = item["column"]
            if c not in present or not valid[c]:
                rec[name] = np.nan
                continue
            vals = g[c].dropna().to_numpy()
            stat = item["statistic"]
            value = vals.mean() if stat == "mean" else percentile_hj663(vals, float(stat.split("_")[1]))
            rec[name] = float(round_gbt8170([value], decimals["mgm3" if c.startswith("co_") else "ugm3"])[0])
        full = g["_complete"].to_numpy(dtype=bool)
        rec["n_aqi_days"] = int(full.sum())
        rec["n_good_days"] = int((g["_aqi"].to_numpy()[full] <= 100).sum())
        rec["good_day_ratio"] = rec["n_good_days"] / rec["n_aqi_days"] if rec["n_aqi_days"] else np.nan
        rows.append(rec)
    return pd.DataFrame(rows)


def _area_class(value, label) -> str:
    text = str(value).strip()
    key = {"1": "1", "一类": "1", "一类区": "1", "一": "1", "i": "1", "class1": "1", "2": "2", "二类": "2",
           "二类区": "2", "二": "2", "ii": "2", "class2": "2"}.get(text.lower().replace(" ", ""))
    if key is None:
        raise InputError(f"row {label}: area class {value!r}", field="area_class",
                         expected="一类 / 1 (national parks, nature reserves, …) or 二类 / 2 (the rest)")
    return key


def annual_compliance(stats: pd.DataFrame, area_class=None, *, version=None, stage: str | None = None) -> pd.DataFrame:
    """Compliance of each station-year of :func:`annual_statistics` with the GB 3095 limits of its area class
    (``area_class`` column, or one value for all: 一类/1, 二类/2). ``version`` '2012' or '2026' (default: the one in
    force on 31 December of the row's year); ``stage`` of GB 3095—2026: 'transition' (default; the transition end
    date is unknown [C]) or 'final'. Adds per item ``<item>_limit``, ``<item>_ratio`` (statistic / limit) and
    ``<item>_exceeds`` (True/False, NA without a valid statistic), then ``compliant``: True when every item is
    valid and within its limit, False when a valid item exceeds, NA otherwise; and ``gb3095`` (which limits)."""
    t = standards.table("gb3095")
    out = stats.copy()
    if area_class is None:
        if "area_class" not in out.columns:
            raise InputError("no area class", field="area_class",
                             expected="an 'area_class' column or area_class= 一类 / 二类")
        classes = [_area_class(v, i) for i, v in out["area_class"].items()]
    else:
        classes = [_area_class(area_class, "all")] * len(out)
    if version is None:
        versions = standards.version_on("gb3095", pd.to_datetime(out["year"].astype(int).astype(str) + "-12-31"))
    else:
        versions = pd.Series(standards.check_version("gb3095", version), index=out.index)
    items = t["annual_items"]
    limits = {name: [] for name in items}
    used = []
    for v, cls in zip(versions, classes):
        ver = t["versions"][v]
        st = stage or ver["default_stage"]
        if st not in ver["stages"]:
            raise InputError(f"GB 3095-{v} has no stage {st!r}", field="stage", expected=", ".join(ver["stages"]))
        lim = ver["stages"][st]["limits"][cls]
        phase = "" if len(ver["stages"]) == 1 else f" ({st})"   # a version with one set of limits has no phase
        used.append(f"{ver['standard'].rsplit(' ', 1)[0]}{phase} {t['area_classes'][cls]['limits']}")
        for name, item in items.items():
            limits[name].append(float(lim[item["limit"]]))
    compliant = pd.array([True] * len(out), dtype="boolean")
    for name in items:
        lim = np.asarray(limits[name])
        value = out[name].to_numpy(dtype=float) if name in out.columns else np.full(len(out), np.nan)
        exceeds = pd.array([pd.NA if not np.isfinite(x) else bool(x > lim_i) for x, lim_i in zip(value, lim)],
                           dtype="boolean")
        out[f"{name}_limit"] = lim
        out[f"{name}_ratio"] = value / lim
        out[f"{name}_exceeds"] = exceeds
        compliant = compliant & ~exceeds     # Kleene logic: a False stays False, an NA only spoils a True
    out["compliant"] = compliant
    out["gb3095"] = used
    return out
