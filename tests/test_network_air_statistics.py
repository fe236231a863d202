"""Station air statistics: daily values from hourly ones, HJ 663 percentiles, annual validity, GB 3095 compliance
(STANDARDS §7.2). Expected values are worked by hand below, or by numpy (the percentile)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecoassess.errors import InputError
from ecoassess.network.air_statistics import annual_compliance, annual_statistics, daily_from_hourly, percentile_hj663


def _day(hours_missing=(), pm25=None, o3=None):
    """One day of hourly values labelled by the END of the hour: 01:00 … 24:00 (= next day 00:00)."""
    start = pd.Timestamp("2026-05-01 00:00")
    rows = []
    for h in range(24):
        if h in hours_missing:
            continue
        rows.append({"station": "S1", "time": (start + pd.Timedelta(hours=h + 1)).strftime("%Y-%m-%d %H:%M"),
                     "pm25_ugm3": str(pm25[h]) if pm25 is not None else str(h + 1),
                     "o3_ugm3": o3[h] if o3 is not None else (160.0 if 12 <= h <= 15 else 0.0)})
    return pd.DataFrame(rows)


def test_24h_mean_needs_20_hours():
    # PM2.5 of hour h (0-based start hour) is h + 1 = 1 … 24: mean 12.5; the 24:00 row belongs to 2026-05-01
    out = daily_from_hourly(_day())
    assert len(out) == 1 and out["date"][0] == pd.Timestamp("2026-05-01")
    assert out["pm25_ugm3"][0] == pytest.approx(12.5) and out["n_hours_pm25_ugm3"][0] == 24
    # hours 0–3 missing: 20 left, mean of 5 … 24 = 14.5
    assert daily_from_hourly(_day(hours_missing=range(4)))["pm25_ugm3"][0] == pytest.approx(14.5)
    # 5 missing: 19 hours — no 24-h mean
    assert np.isnan(daily_from_hourly(_day(hours_missing=range(5)))["pm25_ugm3"][0])


def test_o3_daily_max_8h():
    """O3 160 µg/m³ in start-hours 12–15, else 0: the 8-h windows (start k … k+7, k = 0 … 16, ending 08:00 …
    24:00) holding all four hours give 4·160/8 = 80; daily max 1 h = 160."""
    out = daily_from_hourly(_day())
    assert out["o3_8h_ugm3"][0] == pytest.approx(80.0) and out["o3_1h_ugm3"][0] == 160
    # hours 0–4 missing: windows k = 0, 1, 2 have 5, 4, 3 missing (> 2) → invalid; 14 valid windows → valid
    five = daily_from_hourly(_day(hours_missing=range(5)))
    assert five["n_8h_means_o3"][0] == 14 and five["o3_8h_ugm3"][0] == pytest.approx(80.0)
    # hours 0–5 missing: k = 0 … 3 invalid → 13 valid < 14 → no daily max 8 h
    six = daily_from_hourly(_day(hours_missing=range(6)))
    assert six["n_8h_means_o3"][0] == 13 and np.isnan(six["o3_8h_ugm3"][0])


def test_window_with_two_missing_hours_is_averaged_over_six():
    """Hours 12 and 13 missing: the window 8 … 15 has 6 values (160, 160 at 14, 15 and four zeros): 320/6."""
    out = daily_from_hourly(_day(hours_missing=(12, 13)))
    assert out["o3_8h_ugm3"][0] == pytest.approx(320 / 6)


def test_hourly_input_errors():
    with pytest.raises(InputError, match="time"):
        daily_from_hourly(_day().drop(columns="time"))
    bad = _day()
    bad.loc[3, "time"] = "2026-05-01 03:30"
    with pytest.raises(InputError, match="on the hour"):
        daily_from_hourly(bad)
    dup = pd.concat([_day(), _day().iloc[[0]]], ignore_index=True)
    with pytest.raises(InputError, match="second value"):
        daily_from_hourly(dup)


def test_percentile_hj663():
    """1 … 10, p = 90: k = 1 + 9·0.9 = 9.1 → X9 + 0.1·(X10 − X9) = 9.1; equal to numpy's 'linear' percentile."""
    assert percentile_hj663(range(1, 11), 90) == pytest.approx(9.1)
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 30.0, 347)
    for p in (90, 95, 98):
        assert percentile_hj663(x, p) == pytest.approx(np.percentile(x, p, method="linear"))
    assert percentile_hj663([np.nan, 5.0], 95) == 5.0


def _year(drop=None):
    """2025 (HJ 633-2012, GB 3095-2012): day i = 1 … 365. PM2.5 80 on days with i % 5 == 0 (73 days), else 20;
    PM10 0.4·i; CO i/100 mg/m³; O3 8 h 0.4·i; SO2 10; NO2 20."""
    dates = pd.date_range("2025-01-01", "2025-12-31", freq="D")
    i = np.arange(1, 366)
    df = pd.DataFrame({"station": "S1", "date": dates, "pm25_ugm3": np.where(i % 5 == 0, 80.0, 20.0),
                       "pm10_ugm3": 0.4 * i, "co_mgm3": i / 100, "o3_8h_ugm3": 0.4 * i,
                       "so2_ugm3": 10.0, "no2_ugm3": 20.0})
    if drop is not None:
        df.loc[df["date"].isin(drop), "pm25_ugm3"] = np.nan
    return df


def test_annual_statistics_by_hand():
    s = annual_statistics(_year()).iloc[0]
    # PM2.5 mean (292·20 + 73·80)/365 = 11680/365 = 32.0; p95: k = 1 + 364·0.95 = 346.8, X346 = X347 = 80
    assert s["pm25_annual"] == 32 and s["pm25_p95"] == 80
    # PM10 mean 0.4·183 = 73.2 → 73; p95 = X346 + 0.8·(X347 − X346) = 138.4 + 0.32 = 138.72 → 139
    assert s["pm10_annual"] == 73 and s["pm10_p95"] == 139
    # CO p95 = 3.46 + 0.8·0.01 = 3.468 → 3.5 (1 decimal); O3 p90: k = 1 + 364·0.9 = 328.6 → 131.2 + 0.6·0.4 = 131.44
    assert s["co_p95"] == 3.5 and s["o3_8h_p90"] == 131
    # SO2/NO2 constant: means and 98th percentiles equal the constant
    assert (s["so2_annual"], s["so2_p98"], s["no2_annual"], s["no2_p98"]) == (10, 10, 20, 20)
    # AQI (2012): PM2.5 80 → 100 + 50·5/40 = 106.25 → 107 > 100 on 73 days; the rest ≤ 100 → 292/365 = 0.8
    assert (s["n_aqi_days"], s["n_good_days"]) == (365, 292) and s["good_day_ratio"] == pytest.approx(0.8)
    assert s["n_days_pm25_ugm3"] == 365 and s["valid_pm25_ugm3"]


def _days(month_counts):
    """The first n days of each month of 2025 for {month: n}."""
    return [pd.Timestamp(2025, m, d) for m, n in month_counts.items() for d in range(1, n + 1)]


def test_validity_324_days_and_per_month():
    # Jan 1–5 missing: 26 days in January (< 27) → no PM2.5 statistic although 360 days
    s = annual_statistics(_year(drop=_days({1: 5}))).iloc[0]
    assert s["n_days_pm25_ugm3"] == 360 and not s["valid_pm25_ugm3"] and np.isnan(s["pm25_annual"])
    assert not np.isnan(s["pm10_annual"])          # other pollutants unaffected
    # Jan 1–4 missing: 27 left → valid
    assert annual_statistics(_year(drop=_days({1: 4}))).iloc[0]["valid_pm25_ugm3"]
    # February needs 25: 3 missing (25 left) valid, 4 missing (24) not
    assert annual_statistics(_year(drop=_days({2: 3}))).iloc[0]["valid_pm25_ugm3"]
    assert not annual_statistics(_year(drop=_days({2: 4}))).iloc[0]["valid_pm25_ugm3"]
    # every month at its minimum or above but 323 days in all → invalid; 324 → valid
    drop42 = {1: 4, 2: 3, 3: 4, 4: 3, 5: 4, 6: 3, 7: 4, 8: 4, 9: 3, 10: 4, 11: 3, 12: 3}     # 42 days
    s42 = annual_statistics(_year(drop=_days(drop42))).iloc[0]
    assert s42["n_days_pm25_ugm3"] == 323 and not s42["valid_pm25_ugm3"]
    drop41 = {**drop42, 11: 2}
    s41 = annual_statistics(_year(drop=_days(drop41))).iloc[0]
    assert s41["n_days_pm25_ugm3"] == 324 and s41["valid_pm25_ugm3"]


def test_compliance_2012_class2():
    """2025 → GB 3095-2012 二级: PM2.5 annual 32 ≤ 35 but its p95 80 > 75 (24-h limit) → not compliant."""
    c = annual_compliance(annual_statistics(_year()), "二类").iloc[0]
    assert c["pm25_annual_limit"] == 35 and not c["pm25_annual_exceeds"]
    assert c["pm25_p95_limit"] == 75 and c["pm25_p95_exceeds"] and c["pm25_p95_ratio"] == pytest.approx(80 / 75)
    assert c["co_p95_limit"] == 4 and not c["co_p95_exceeds"]
    assert c["compliant"] == False  # noqa: E712 - a pandas BooleanDtype scalar, not a Python bool
    assert c["gb3095"] == "GB 3095-2012 二级"


def _stats(**values):
    base = {"so2_annual": 5, "so2_p98": 10, "no2_annual": 20, "no2_p98": 40, "pm10_annual": 40, "pm10_p95": 90,
            "pm25_annual": 30, "pm25_p95": 60, "co_p95": 1.0, "o3_8h_p90": 150}
    base.update(values)
    return pd.DataFrame([{"station": "S1", "year": 2027, **base}])


def test_compliance_2026_stages_and_classes():
    """GB 3095—2026 (2027 → in force on 31 Dec): transition 二级 PM2.5 annual 30 / 24 h 60 → compliant at 30/60;
    final 二级 25/50 → exceeds; 一类 transition PM10 annual 40, O3 8 h 100 → 150 exceeds."""
    ok = annual_compliance(_stats(), "2").iloc[0]
    assert ok["pm25_annual_limit"] == 30 and ok["pm25_p95_limit"] == 60 and bool(ok["compliant"])
    assert ok["gb3095"] == "GB 3095—2026 (transition) 二级"
    over = annual_compliance(_stats(pm25_annual=31), "2").iloc[0]
    assert over["pm25_annual_exceeds"] and not bool(over["compliant"])
    final = annual_compliance(_stats(), "2", stage="final").iloc[0]
    assert final["pm25_annual_limit"] == 25 and final["pm25_annual_exceeds"] and final["no2_p98_limit"] == 50
    one = annual_compliance(_stats(), "一类").iloc[0]
    assert one["o3_8h_p90_limit"] == 100 and one["o3_8h_p90_exceeds"] and one["pm10_annual_limit"] == 40
    # 2012 二类 for the same numbers (fixed version): PM10 annual 70
    v12 = annual_compliance(_stats(), "2", version="2012").iloc[0]
    assert v12["pm10_annual_limit"] == 70 and v12["pm25_annual_limit"] == 35


def test_compliance_unknown_without_valid_statistics():
    """A missing statistic leaves compliance unknown (NA) unless another item already exceeds."""
    unknown = annual_compliance(_stats(pm25_annual=np.nan), "2").iloc[0]
    assert pd.isna(unknown["compliant"]) and pd.isna(unknown["pm25_annual_exceeds"])
    failing = annual_compliance(_stats(pm25_annual=np.nan, pm10_annual=61), "2").iloc[0]
    assert failing["compliant"] == False  # noqa: E712
    with pytest.raises(InputError, match="area class"):
        annual_compliance(_stats(), "三类")
    with pytest.raises(InputError, match="area_class"):
        annual_compliance(_stats())
    per_row = annual_compliance(_stats().assign(area_class="一类区"))
    assert per_row["pm25_annual_limit"][0] == 15


def test_daily_input_errors():
    y = _year()
    y["pm25_ugm3"] = y["pm25_ugm3"].astype(str)     # as read from a text export
    y.loc[10, "pm25_ugm3"] = "-3"
    with pytest.raises(InputError, match=r"pm25_ugm3.*row 10.*negative"):
        annual_statistics(y)
    dup = pd.concat([_year(), _year().iloc[[0]]], ignore_index=True)
    with pytest.raises(InputError, match="second row"):
        annual_statistics(dup)


def test_hourly_to_daily_to_aqi_chain():
    """The daily table built from hourly values is what daily_aqi reads: PM2.5 mean 12.5 → 12 (half to even) →
    50·12/35 = 17.1 → 18; O3 max 8 h 80 → 50·80/100 = 40 → AQI 40 (2026, no primary pollutant)."""
    from ecoassess.network.aqi import daily_aqi

    out = daily_aqi(daily_from_hourly(_day()))
    assert out["iaqi_pm25"][0] == 18 and out["iaqi_o3_8h"][0] == 40 and out["aqi"][0] == 40
    assert out["primary_pollutant"][0] == "" and out["aqi_version"][0] == "HJ 633-2026"
