"""GB 3838-2002 single-factor class (STANDARDS §7.3, §8 item 15). Limits in the comments are STANDARDS §7.3's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecoassess.errors import InputError
from ecoassess.network.water import (county_shares, drinking_source_compliance, item_class, section_annual_class,
                                     water_class)


def test_tp_river_vs_lake():
    """TP 0.05 mg/L: river limits 0.02/0.1/0.2/0.3/0.4 → II; lake 0.01/0.025/0.05/0.1/0.2 → III.
    TP 0.3: river IV, lake 劣V (> 0.2)."""
    df = pd.DataFrame({"tp_mgl": [0.05, 0.3]})
    assert list(water_class(df, "river")["water_class"]) == ["II", "IV"]
    assert list(water_class(df, "湖泊")["water_class"]) == ["III", "劣V"]
    assert list(water_class(df, "水库")["water_class"]) == ["III", "劣V"]


def test_tn_never_for_rivers_and_separate_for_lakes():
    """TN 3.0 (> 2.0: 劣V) with TP 0.02: a river is I (TP ≤ 0.02) and has no TN class; a lake is II on the routine
    items (TP > 0.01, ≤ 0.025) and its TN 劣V is reported on its own, not in the class."""
    df = pd.DataFrame({"tp_mgl": [0.02], "tn_mgl": [3.0]})
    river = water_class(df, "river")
    assert river["water_class"][0] == "I" and "tn_class" not in river.columns
    lake = water_class(df, "lake")
    # lake TP 0.02: > 0.01 (I), ≤ 0.025 (II) → II; TN not part of the class
    assert lake["water_class"][0] == "II" and lake["tn_class"][0] == "劣V"
    assert "tn" not in lake["deciding_items"][0]


def test_do_is_at_least():
    """DO ≥ 7.5 → I, ≥ 6 → II, ≥ 5 → III, ≥ 3 → IV, ≥ 2 → V, below → 劣V (a '≤' rule would put 9 in 劣V)."""
    cls = item_class("do", [9.0, 7.5, 7.49, 6.0, 5.0, 3.0, 2.0, 1.99, np.nan])
    assert list(cls) == [0, 0, 1, 1, 2, 3, 4, 5, -1]
    assert list(water_class(pd.DataFrame({"do_mgl": [9.0, 1.5]}))["water_class"]) == ["I", "劣V"]


def test_boundaries_belong_to_the_better_class():
    """NH3-N 0.15 → I, 0.5 → II, 1.0 → III, 1.5 → IV, 2.0 → V, 2.01 → 劣V; COD 15 (I = II = 15) → I."""
    assert list(item_class("nh3n", [0.15, 0.16, 0.5, 1.0, 1.5, 2.0, 2.01])) == [0, 1, 1, 2, 3, 4, 5]
    assert list(item_class("cod", [15, 15.1, 20, 40, 40.5])) == [0, 2, 2, 4, 5]


def test_ph_outside_6_9_is_worse_than_v():
    df = pd.DataFrame({"ph": [6.0, 9.0, 5.9, 9.1], "do_mgl": [8, 8, 8, 8]})
    out = water_class(df)
    assert list(out["water_class"]) == ["I", "I", "劣V", "劣V"]
    assert list(out["deciding_items"][2:]) == ["ph", "ph"]


def test_deciding_items_and_main_pollutants():
    """DO 5.5 (III), CODMn 9 (IV: > 6, ≤ 10), NH3-N 1.2 (IV), TP 0.15 (III river): class IV decided by codmn and
    nh3n; both are worse than III."""
    df = pd.DataFrame({"do_mgl": [5.5], "codmn_mgl": ["9"], "nh3n_mgl": ["1.2 mg/L"], "tp_mgl": [0.15]})
    out = water_class(df, "river")
    assert out["water_class"][0] == "IV" and out["deciding_items"][0] == "codmn,nh3n"
    assert out["items_over_iii"][0] == "codmn,nh3n" and out["quality_zh"][0] == "轻度污染"
    assert out["class_do"][0] == "III" and out["n_items"][0] == 4


def test_faecal_coliform_does_not_decide():
    out = water_class(pd.DataFrame({"do_mgl": [8], "fecal_coliform_per_l": [90000]}))
    assert out["water_class"][0] == "I"


def test_published_text_and_errors():
    df = pd.DataFrame({"do_mgl": ["8.1", "—"], "nh3n_mgl": ["", "0.3"]})
    out = water_class(df)
    assert list(out["water_class"]) == ["I", "II"] and list(out["n_items"]) == [1, 1]
    with pytest.raises(InputError, match=r"nh3n_mgl.*row 0.*negative"):
        water_class(pd.DataFrame({"nh3n_mgl": [-0.1]}))
    with pytest.raises(InputError, match="water body"):
        water_class(pd.DataFrame({"nh3n_mgl": [0.1]}), body="sea")
    with pytest.raises(InputError, match="no GB 3838 item"):
        water_class(pd.DataFrame({"tp": [0.1]}))
    with pytest.raises(InputError, match="below-detection"):
        water_class(pd.DataFrame({"cd_mgl": ["0.0005L"]}))
    mixed = water_class(pd.DataFrame({"body": ["河流", "水库"], "tp_mgl": [0.05, 0.05]}), body=None)
    assert list(mixed["water_class"]) == ["II", "III"]


def test_section_annual_class_from_annual_means():
    """Section A: NH3-N 0.4 and 1.8 → mean 1.1 → IV (one sample alone would be II or V); TP 0.1, 0.2 → mean
    0.15 → III (river)."""
    df = pd.DataFrame({"section": ["A", "A", "B"], "date": ["2026-01-10", "2026/7/10", "2026-03-01"],
                       "nh3n_mgl": [0.4, 1.8, 0.1], "tp_mgl": [0.1, 0.2, 0.01]})
    out = section_annual_class(df, "river").set_index("section")
    assert out.loc["A", "nh3n_mgl"] == pytest.approx(1.1) and out.loc["A", "water_class"] == "IV"
    assert out.loc["A", "n_samples"] == 2 and out.loc["B", "water_class"] == "I"


def test_county_shares_and_drinking_sources():
    """County X: II, III, 劣V, IV → I–III share 2/4, 劣V 1/4."""
    classes = pd.DataFrame({"county": ["X"] * 4 + ["Y"], "water_class": ["II", "III", "劣V", "IV", "I"]})
    shares = county_shares(classes).set_index("county")
    assert shares.loc["X", "share_i_iii"] == 0.5 and shares.loc["X", "share_worse_v"] == 0.25
    assert shares.loc["Y", "n_sections"] == 1 and shares.loc["Y", "share_i_iii"] == 1.0
    src = pd.DataFrame({"water_class": ["II", "III", "IV", None], "target_class": ["II", "II", "III", "III"]})
    assert list(drinking_source_compliance(src)["meets_target"].astype(object)) == [True, True, False, pd.NA]
    assert list(drinking_source_compliance(src, "target_class")["meets_target"].astype(object)) == \
        [True, False, False, pd.NA]
    with pytest.raises(InputError, match="target class"):
        drinking_source_compliance(src, "VI")
