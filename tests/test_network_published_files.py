"""Station tables as offices export them: GBK CSV, Chinese names, text numbers with units, '—' gaps, read with the
project's reader and graded; errors name the file."""

from __future__ import annotations

import pytest

from ecoassess.errors import InputError
from ecoassess.network.aqi import daily_aqi
from ecoassess.network.soil import soil_class
from ecoassess.readers import read_table

AIR = ("station,date,pm25_ugm3,pm10_ugm3,so2_ugm3,no2_ugm3,co_mgm3,o3_8h_ugm3\n"
       "城关镇,2026-03-01,76 μg/m3,98,9,31,0.9 mg/m3,88\n"
       "城关镇,2026-03-02,—,110,8,—,0.8,92\n"
       "平山,2026/3/3,35.5,50,6,20,0.6,70\n")


def test_gbk_air_table(tmp_path):
    path = tmp_path / "日报.csv"
    path.write_bytes(AIR.encode("gbk"))
    df = read_table(path, dtype=str, keep_default_na=False)
    out = daily_aqi(df, path=path)
    assert list(out["station"]) == ["城关镇", "城关镇", "平山"]
    # day 1: PM2.5 76 → 100 + 50·16/55 = 114.5 → 115 (2026); PM10 98 → 50 + 50·48/70 = 84.3 → 85
    assert out["aqi"][0] == 115 and out["primary_pollutant"][0] == "PM2.5" and out["complete"][0]
    # day 2: PM2.5 and NO2 missing: PM10 110 → 50 + 50·60/70 = 92.9 → 93; not a complete day
    assert out["aqi"][1] == 93 and not out["complete"][1] and out["missing_indicators"][1] == "NO2,PM2.5"
    # day 3: PM2.5 35.5 → 36 (half to even) → 50 + 50·1/25 = 52; PM10 50 → 50
    assert out["aqi"][2] == 52 and out["primary_pollutant"][2] == "PM2.5"


def test_gbk_error_names_file_row_and_column(tmp_path):
    path = tmp_path / "日报.csv"
    path.write_bytes(AIR.replace(",9,31,", ",-9,31,").encode("gbk"))
    df = read_table(path, dtype=str, keep_default_na=False)
    with pytest.raises(InputError) as err:
        daily_aqi(df, path=path)
    assert str(path) in str(err.value) and "so2_ugm3" in str(err.value) and "row 0" in str(err.value)


def test_gbk_soil_table(tmp_path):
    path = tmp_path / "土壤点位.csv"
    text = ("point,ph,land_use,cd_mgkg,as_mgkg\n"
            "T01,6.5,水田,0.45,20\n"        # pH 6.5 → band 5.5–6.5: paddy Cd 0.4 < 0.45 ≤ control 2.0 → 安全利用类
            "T02,6.5,旱地,0.25,—\n")        # other Cd 0.3 → 优先保护类
    path.write_bytes(text.encode("gbk"))
    out = soil_class(read_table(path, dtype=str, keep_default_na=False), path=path)
    assert list(out["soil_class"]) == ["安全利用类", "优先保护类"]
    assert list(out["cd_screening_mgkg"]) == [0.4, 0.3]
