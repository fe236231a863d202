"""GB 3096-2008 limits per functional class and HJ 640-2012 grades (STANDARDS §7.5)."""

from __future__ import annotations

import pandas as pd
import pytest

from ecoassess.errors import InputError
from ecoassess.network.noise import hj640_grade, noise_compliance

# STANDARDS §7.5: class -> (day, night) dB(A)
LIMITS = {"0": (50, 40), "1": (55, 45), "2": (60, 50), "3": (65, 55), "4a": (70, 55), "4b": (70, 60)}


@pytest.mark.parametrize("cls", list(LIMITS))
def test_each_class_at_and_above_its_limits(cls):
    day, night = LIMITS[cls]
    df = pd.DataFrame({"functional_class": [cls, cls], "leq_day_dba": [day, day + 2.3],
                       "leq_night_dba": [night, night + 0.1]})
    out = noise_compliance(df)
    assert list(out["limit_day_dba"]) == [day, day] and list(out["limit_night_dba"]) == [night, night]
    assert list(out["meets_day"].astype(bool)) == [True, False]
    assert list(out["exceed_day_db"]) == [0.0, 2.3] and list(out["exceed_night_db"]) == [0.0, 0.1]


def test_class_texts_rounding_and_missing():
    """'4A类' is 4a (night 55), '4b类区' 4b (night 60); 60.04 is reported as 60.0 and meets 60; 60.06 → 60.1."""
    df = pd.DataFrame({"functional_class": ["4A类", "4b类区", "1类", 2.0],
                       "leq_night_dba": ["58 dB(A)", "60.04", "60.06", "—"]})
    out = noise_compliance(df)
    assert list(out["functional_class"]) == ["4a", "4b", "1", "2"]
    assert list(out["limit_night_dba"]) == [55, 60, 45, 50]
    assert list(out["exceed_night_db"][:3]) == [3.0, 0.0, pytest.approx(15.1)]
    assert pd.isna(out["meets_night"][3]) and pd.isna(out["exceed_night_db"][3])
    with pytest.raises(InputError, match="functional class"):
        noise_compliance(pd.DataFrame({"functional_class": ["5"], "leq_day_dba": [50]}))
    with pytest.raises(InputError, match=r"leq_day_dba.*negative"):
        noise_compliance(pd.DataFrame({"functional_class": ["1"], "leq_day_dba": [-3]}))


def test_hj640_grades():
    """Regional day ≤ 50.0 一级, 50.1–55.0 二级, 55.1–60.0 三级, 60.1–65.0 四级, > 65.0 五级 (night 40/45/50/55);
    road traffic day 68/70/72/74. Values are rounded to 0.1 dB first (50.04 → 50.0)."""
    g = hj640_grade([50.0, 50.04, 50.1, 55.0, 55.1, 60.0, 60.1, 65.0, 65.1])
    assert list(g["grade"]) == ["一级", "一级", "二级", "二级", "三级", "三级", "四级", "四级", "五级"]
    assert list(hj640_grade([40.0, 40.1, 55.1], "night")["grade"]) == ["一级", "二级", "五级"]
    assert list(hj640_grade([68.0, 68.1, 74.0, 74.1], "day", "road_traffic")["grade"]) == \
        ["一级", "二级", "四级", "五级"]
    assert list(hj640_grade([58.0, 64.1], "night", "road_traffic")["grade"]) == ["一级", "五级"]
    with pytest.raises(InputError):
        hj640_grade([50], "evening")
