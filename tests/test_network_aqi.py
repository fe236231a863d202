"""AQI per HJ 633-2012 / HJ 633—2026 (STANDARDS §7.1 and §8 items 1–3).

The breakpoint table below is typed from STANDARDS §7.1, not read from indices/aqi_hj633.yaml, so a wrong YAML row
fails here. Every expected IAQI is the HJ 633 formula IAQI = IAQI_Lo + (IAQI_Hi − IAQI_Lo)/(BP_Hi − BP_Lo) ·
(C − BP_Lo), rounded up, with the arithmetic written out.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ecoassess.errors import InputError
from ecoassess.network.aqi import daily_aqi, hourly_aqi, iaqi
from ecoassess.network.standards import version_on

LEVELS = [0, 50, 100, 150, 200, 300, 400, 500]
# STANDARDS §7.1 (pollutant, averaging) -> breakpoints; 2026 differs only in PM10/PM2.5 at IAQI 100
BP_2012 = {
    ("so2", "24h"): [0, 50, 150, 475, 800, 1600, 2100, 2620],
    ("so2", "1h"): [0, 150, 500, 650, 800],
    ("no2", "24h"): [0, 40, 80, 180, 280, 565, 750, 940],
    ("no2", "1h"): [0, 100, 200, 700, 1200, 2340, 3090, 3840],
    ("co", "24h"): [0, 2, 4, 14, 24, 36, 48, 60],
    ("co", "1h"): [0, 5, 10, 35, 60, 90, 120, 150],
    ("o3", "8h"): [0, 100, 160, 215, 265, 800],
    ("o3", "1h"): [0, 160, 200, 300, 400, 800, 1000, 1200],
    ("pm10", "24h"): [0, 50, 150, 250, 350, 420, 500, 600],
    ("pm25", "24h"): [0, 35, 75, 115, 150, 250, 350, 500],
}
BP_2026 = dict(BP_2012)
BP_2026[("pm10", "24h")] = [0, 50, 120, 250, 350, 420, 500, 600]
BP_2026[("pm25", "24h")] = [0, 35, 60, 115, 150, 250, 350, 500]
TABLES = {"2012": BP_2012, "2026": BP_2026}


@pytest.mark.parametrize("version", ["2012", "2026"])
@pytest.mark.parametrize("key", list(BP_2012))
def test_every_breakpoint_gives_its_iaqi_level(version, key):
    """At each breakpoint C = BP_i the formula gives IAQI_i exactly (both neighbouring segments agree)."""
    for bp, level in zip(TABLES[version][key], LEVELS):
        assert iaqi(key[0], bp, key[1], version) == level, (version, key, bp)


@pytest.mark.parametrize("version", ["2012", "2026"])
@pytest.mark.parametrize("key", list(BP_2012))
def test_one_value_inside_every_segment(version, key):
    """C one unit (0.1 mg/m³ for CO) above each lower breakpoint: IAQI_Lo + ceil(ΔIAQI·step/ΔBP), with the ratio
    done in integers so the expectation has no float error."""
    bp = TABLES[version][key]
    step10 = 1 if key[0] == "co" else 10           # in tenths
    for i in range(1, len(bp)):
        c10 = round(bp[i - 1] * 10) + step10
        num = (LEVELS[i] - LEVELS[i - 1]) * (c10 - round(bp[i - 1] * 10))
        den = round(bp[i] * 10) - round(bp[i - 1] * 10)
        expected = LEVELS[i - 1] + -(-num // den)
        assert iaqi(key[0], c10 / 10, key[1], version) == expected, (version, key, c10 / 10)


# one value per row and version with the arithmetic written out
HAND = [
    ("2012", "so2", "24h", 100, 75),     # 50 + 50/(150−50)·(100−50) = 75
    ("2012", "so2", "1h", 300, 72),      # 50 + 50/(500−150)·(300−150) = 71.43 → 72
    ("2012", "no2", "24h", 100, 110),    # 100 + 50/(180−80)·(100−80) = 110
    ("2012", "no2", "1h", 450, 125),     # 100 + 50/(700−200)·(450−200) = 125
    ("2012", "co", "24h", 3.3, 83),      # 50 + 50/(4−2)·(3.3−2) = 82.5 → 83
    ("2012", "co", "1h", 12, 104),       # 100 + 50/(35−10)·(12−10) = 104
    ("2012", "o3", "8h", 180, 119),      # 100 + 50/(215−160)·(180−160) = 118.18 → 119
    ("2012", "o3", "1h", 250, 125),      # 100 + 50/(300−200)·(250−200) = 125
    ("2012", "pm10", "24h", 200, 125),   # 100 + 50/(250−150)·(200−150) = 125
    ("2012", "pm25", "24h", 100, 132),   # 100 + 50/(115−75)·(100−75) = 131.25 → 132
    ("2026", "pm10", "24h", 200, 131),   # 100 + 50/(250−120)·(200−120) = 130.77 → 131
    ("2026", "pm25", "24h", 100, 137),   # 100 + 50/(115−60)·(100−60) = 136.36 → 137
    ("2026", "pm25", "24h", 50, 80),     # 50 + 50/(60−35)·(50−35) = 80
    ("2026", "so2", "24h", 1000, 225),   # 200 + 100/(1600−800)·(1000−800) = 225
    ("2026", "o3", "8h", 500, 244),      # 200 + 100/(800−265)·(500−265) = 243.93 → 244
]


@pytest.mark.parametrize("version,pollutant,averaging,conc,expected", HAND)
def test_hand_computed_values(version, pollutant, averaging, conc, expected):
    assert iaqi(pollutant, conc, averaging, version) == expected


def test_so2_24h_row_is_not_the_1h_row():
    """§8 item 1: 150 µg/m³ of 24-h SO2 is IAQI 100 (1-h row would say 50); 500 is 150 + 50·25/325 = 153.8 → 154
    (1-h row: 100)."""
    assert iaqi("so2", 150, "24h", "2026") == 100
    assert iaqi("so2", 500, "24h", "2026") == 154
    assert iaqi("so2", 500, "1h", "2026") == 100


def test_o3_8h_over_800_is_not_extended():
    """§8 item 2: no 1000/1200 extension of the O3 8-h row. 2026: IAQI = 300; 2012: no 8-h IAQI, the 1-h one."""
    assert iaqi("o3", 801, "8h", "2026") == 300
    assert iaqi("o3", 1000, "8h", "2026") == 300          # an extended row would give 400
    assert math.isnan(iaqi("o3", 801, "8h", "2012"))
    # 2012 daily: 8 h 900 → none; daily max 1 h 850 → 300 + 100·(850−800)/200 = 325
    day = pd.DataFrame({"date": ["2020-07-01"], "o3_8h_ugm3": [900], "o3_1h_ugm3": [850], "pm25_ugm3": [20]})
    out = daily_aqi(day)
    assert np.isnan(out["iaqi_o3_8h"][0]) and out["iaqi_o3_1h"][0] == 325 and out["aqi"][0] == 325
    assert out["primary_pollutant"][0] == "O3_1h"
    assert "1-h" in out["aqi_notes"][0]
    # 2026 daily: 8 h 900 → 300; the 1-h value is not a 2026 daily indicator
    day26 = day.assign(date=["2026-07-01"])
    out26 = daily_aqi(day26)
    assert out26["iaqi_o3_8h"][0] == 300 and out26["aqi"][0] == 300 and np.isnan(out26["iaqi_o3_1h"][0])


def test_so2_1h_over_800():
    """2026: SO2 1 h > 800 → IAQI 200. 2012: the 24-h IAQI is reported (so2_24h_ugm3 200 → 100 + 50·50/325 =
    107.7 → 108), or nothing when the 24-h mean is not given."""
    assert iaqi("so2", 801, "1h", "2026") == 200
    assert iaqi("so2", 800, "1h", "2026") == 200          # the row's top breakpoint itself
    assert math.isnan(iaqi("so2", 801, "1h", "2012"))
    h = pd.DataFrame({"time": ["2020-01-05 09:00"], "so2_ugm3": [900], "so2_24h_ugm3": [200], "pm25_ugm3": [10]})
    out = hourly_aqi(h)
    assert out["iaqi_so2"][0] == 108 and out["aqi"][0] == 108 and out["primary_pollutant"][0] == "SO2"
    out2 = hourly_aqi(h.drop(columns="so2_24h_ugm3"))
    assert np.isnan(out2["iaqi_so2"][0]) and "so2_24h_ugm3" in out2["aqi_notes"][0]
    assert out2["aqi"][0] == 15        # PM2.5 10: 50·10/35 = 14.29 → 15


def test_rounding_up_and_concentration_rounding():
    """§8 item 3. PM2.5 36 (2012): 50 + 50·1/40 = 51.25 → 52, not 51. Concentrations first rounded half-to-even
    (GB/T 8170): 35.4 → 35 → 50; 35.5 → 36 → 52; 34.5 → 34 → 50·34/35 = 48.57 → 49. CO (1 decimal) 2.05 → 2.0 →
    50; 2.15 → 2.2 → 50 + 50·0.2/2 = 55 — which float arithmetic (50/2·0.2 + 50 = 55.000000000000014) would ceil
    to 56."""
    assert iaqi("pm25", 36, "24h", "2012") == 52
    assert iaqi("pm25", 35.4, "24h", "2012") == 50
    assert iaqi("pm25", 35.5, "24h", "2012") == 52
    assert iaqi("pm25", 34.5, "24h", "2012") == 49
    assert iaqi("co", 2.05, "24h", "2026") == 50
    assert iaqi("co", 2.15, "24h", "2026") == 55
    assert iaqi("co", 2.2, "24h", "2026") == 55


def test_pm_breakpoints_updated_in_2026():
    """§8 item 3: PM2.5 60 → 100 in 2026, 50 + 50·25/40 = 81.25 → 82 in 2012; PM10 120 → 100 in 2026,
    50 + 50·70/100 = 85 in 2012."""
    assert iaqi("pm25", 60, "24h", "2026") == 100
    assert iaqi("pm25", 60, "24h", "2012") == 82
    assert iaqi("pm10", 120, "24h", "2026") == 100
    assert iaqi("pm10", 120, "24h", "2012") == 85


def test_pm_hourly_uses_24h_row():
    """2026 real-time report: PM2.5 1-h 60 on the 24-h row → 100; PM10 1-h 200 → 131 (see HAND)."""
    assert iaqi("pm25", 60, "1h", "2026") == 100
    h = pd.DataFrame({"time": ["2026-03-02 10:00"], "pm25_ugm3": [60], "pm10_ugm3": [200]})
    out = hourly_aqi(h)
    assert out["iaqi_pm25"][0] == 100 and out["iaqi_pm10"][0] == 131 and out["aqi"][0] == 131


def test_above_the_top_breakpoint_is_500():
    assert iaqi("pm25", 600, "24h", "2026") == 500
    assert iaqi("co", 61, "24h", "2012") == 500


def test_version_by_date():
    """HJ 633—2026 from 2026-03-01: the same day values grade differently either side of it."""
    v = version_on("aqi", ["2026-02-28", "2026-03-01", "2026-02-28 23:00"])
    assert list(v) == ["2012", "2026", "2012"]
    d = pd.DataFrame({"date": ["2026-02-28", "2026-03-01"], "pm25_ugm3": [70, 70]})
    out = daily_aqi(d)
    # 2012: 50 + 50·35/40 = 93.75 → 94; 2026: 100 + 50·10/55 = 109.09 → 110
    assert list(out["aqi"]) == [94, 110]
    assert list(out["aqi_version"]) == ["HJ 633-2012", "HJ 633-2026"]
    with pytest.raises(InputError, match="before"):
        daily_aqi(d.assign(date=["2011-05-01", "2011-05-02"]))
    with pytest.raises(InputError, match="date"):
        daily_aqi(d.drop(columns="date"))
    assert list(daily_aqi(d.drop(columns="date"), version="2026")["aqi"]) == [110, 110]


@pytest.mark.parametrize("aqi_value,level,cat,colour", [
    (50, 1, "优", "#00E400"), (51, 2, "良", "#FFFF00"), (100, 2, "良", "#FFFF00"), (101, 3, "轻度污染", "#FF7E00"),
    (150, 3, "轻度污染", "#FF7E00"), (151, 4, "中度污染", "#FF0000"), (200, 4, "中度污染", "#FF0000"),
    (201, 5, "重度污染", "#99004C"), (300, 5, "重度污染", "#99004C"), (301, 6, "严重污染", "#7E0023")])
def test_categories(aqi_value, level, cat, colour):
    """Level, category and colour at each category boundary; the AQI comes from one CO 1-h value chosen so that
    the IAQI is exact (CO 1-h row 0, 5, 10, 35, 60, 90 mg/m³ at IAQI 0, 50, 100, 150, 200, 300)."""
    if aqi_value <= 100:
        c = aqi_value / 10                        # 0–5: 50/5 = 10 IAQI per mg/m³
    elif aqi_value <= 200:
        c = 10 + (aqi_value - 100) / 2            # 10–35: 50/25 = 2 IAQI per mg/m³
    else:
        c = 60 + (aqi_value - 200) * 30 / 100     # 60–90: 100/30 IAQI per mg/m³
    c = round(c, 1)
    out = hourly_aqi(pd.DataFrame({"time": ["2026-05-01 10:00"], "co_mgm3": [c]}))
    assert out["aqi"][0] == aqi_value
    assert (out["aqi_level"][0], out["aqi_category_zh"][0], out["aqi_colour"][0]) == (level, cat, colour)
    assert out["primary_pollutant"][0] == ("CO" if aqi_value > 50 else "")


def test_primary_pollutant_ties_and_exceeding():
    """PM10 150 and PM2.5 75 (2012) are both 100: both primary. 2012 超标污染物 = IAQI > 100; 2026 has none."""
    d = pd.DataFrame({"date": ["2020-01-01", "2020-01-02", "2026-04-01"], "pm10_ugm3": [150, 250, 250],
                      "pm25_ugm3": [75, 115, 115], "no2_ugm3": [20, 180, 20]})
    out = daily_aqi(d)
    assert out["primary_pollutant"][0] == "PM10,PM2.5"
    assert out["exceeding_pollutants"][0] == ""
    # day 2: PM10 250 → 150, PM2.5 115 → 150, NO2 180 → 150: three-way tie, all exceeding
    assert out["primary_pollutant"][1] == "NO2,PM10,PM2.5" and out["exceeding_pollutants"][1] == "NO2,PM10,PM2.5"
    assert out["exceeding_pollutants"][2] == ""


def test_aqi_at_most_50_has_no_primary_and_2026_minimum_is_1():
    d = pd.DataFrame({"date": ["2020-01-01", "2026-04-01"], "pm25_ugm3": [0.4, 0.4], "so2_ugm3": [0, 0]})
    out = daily_aqi(d)
    assert list(out["aqi"]) == [0, 1]        # 0.4 → 0 → IAQI 0; HJ 633—2026 AQI ranges 1–500
    assert list(out["primary_pollutant"]) == ["", ""]


def test_2012_daily_uses_o3_1h_and_2026_does_not():
    """2012 daily has 7 indicators: O3 daily max 1 h 300 → 150 decides; in 2026 only O3 8 h (100 → 50) counts."""
    d = pd.DataFrame({"date": ["2025-06-01", "2026-06-01"], "o3_8h_ugm3": [100, 100], "o3_1h_ugm3": [300, 300]})
    out = daily_aqi(d)
    assert list(out["aqi"]) == [150, 50]
    assert out["primary_pollutant"][0] == "O3_1h"


def test_text_values_missing_marks_units_and_completeness():
    d = pd.DataFrame({"station": ["城关", "城关"], "date": ["2026-05-01", "2026-05-02"],
                      "pm25_ugm3": ["40 µg/m³", "—"], "pm10_ugm3": ["70", "-"], "so2_ugm3": ["8", ""],
                      "no2_ugm3": ["25", "30"], "co_mgm3": ["0.6mg/m3", "0.7"], "o3_8h_ugm3": ["120", "130"]})
    out = daily_aqi(d)
    # PM2.5 40: 50 + 50·5/25 = 60; PM10 70: 50 + 50·20/70 = 64.29 → 65; O3 8h 120: 50 + 50·20/60 = 66.67 → 67
    assert out["aqi"][0] == 67 and out["primary_pollutant"][0] == "O3_8h" and out["complete"][0]
    assert not out["complete"][1] and out["missing_indicators"][1] == "SO2,PM10,PM2.5"
    # day 2 from what is there: O3 8 h 130: 50 + 50·30/60 = 75
    assert out["aqi"][1] == 75


def test_long_table_with_units():
    long = pd.DataFrame({"station": ["A"] * 3, "date": ["2026-05-01"] * 3, "pollutant": ["PM2.5", "CO", "O3_8h"],
                         "value": ["60", "1.2", "90"], "unit": ["µg/m³", "mg/m³", "μg/m3"]})
    out = daily_aqi(long)
    # PM2.5 60 → 100 (2026); CO 1.2: 50·1.2/2 = 30; O3 8h 90: 50·90/100 = 45
    assert out["aqi"][0] == 100 and out["iaqi_co"][0] == 30 and out["iaqi_o3_8h"][0] == 45
    bad = long.assign(unit=["µg/m³", "µg/m³", "µg/m³"])
    with pytest.raises(InputError, match="mg/m³"):
        daily_aqi(bad)


def test_bad_input_is_one_clear_error():
    with pytest.raises(InputError, match=r"pm25_ugm3.*row 1.*negative"):
        daily_aqi(pd.DataFrame({"date": ["2026-05-01", "2026-05-02"], "pm25_ugm3": [30, -5]}))
    with pytest.raises(InputError, match=r"pm25_ugm3.*row 0.*'abc'"):
        daily_aqi(pd.DataFrame({"date": ["2026-05-01"], "pm25_ugm3": ["abc"]}))
    with pytest.raises(InputError, match="no unit"):
        daily_aqi(pd.DataFrame({"date": ["2026-05-01"], "pm25": [30]}))
    with pytest.raises(InputError, match="co_ugm3"):
        daily_aqi(pd.DataFrame({"date": ["2026-05-01"], "co_ugm3": [800]}))
    with pytest.raises(InputError, match="negative"):
        iaqi("pm25", -1, "24h", "2026")
    with pytest.raises(InputError, match="version"):
        iaqi("pm25", 10, "24h", "2019")
