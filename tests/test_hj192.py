"""HJ 192-2015 EI: hand-computed counties, capping, constraint, grade/change boundaries, whole-area totals, the NDVI
scale trap, corrected/broken coefficient files, the land-cover crosswalks (incl. CORINE on real Swiss data) and the
§1.9 function-zone indicators.

Expected values are written out by hand with the coefficients of STANDARDS.md §1 as literal numbers; the code under
test is never used to produce an expected value.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import yaml

from ecoassess.assess.hj192 import (EiInputs, apply_constraint, biological_abundance, change_class, compute_ei,
                                    ecological_index, fluctuation_flag, function_zone_indicators, grade, land_stress,
                                    pollution_load, vegetation_cover, water_network_density)
from ecoassess.assess.hj192_coefficients import Hj192CoefficientError, load_hj192
from ecoassess.assess.landcover import grass_cover_class, habitat_areas
from ecoassess.catalog import data_path
from ecoassess.errors import InputError

TOL = 0.01

# -- the made-up county A (1000 km²): every input known ----------------------------------------------------------
HAB_A = {"forest": 300.0, "shrub": 100.0, "open_and_other_forest": 50.0,
         "grass_high": 80.0, "grass_medium": 40.0, "grass_low": 20.0,
         "river": 10.0, "lake_reservoir": 20.0, "tidal_flat_wetland": 5.0,
         "paddy": 120.0, "dry_land": 150.0,
         "urban": 30.0, "rural_settlement": 40.0, "other_construction": 15.0,
         "sand": 0.0, "saline": 0.0, "bare_soil": 10.0, "bare_rock": 10.0, "other_unused": 0.0}   # Σ = 1000
STATS_A = {"cod_emission_t": 5000.0, "nh3n_emission_t": 400.0, "so2_emission_t": 1500.0, "dust_emission_t": 2000.0,
           "nox_emission_t": 3000.0, "solid_waste_discarded_t": 10.0, "precipitation_mm": 1000.0,
           "water_resources_1e6m3": 600.0, "river_length_km": 500.0}
# county B (100 km²): small, urban, for the whole-area test
HAB_B = {**{k: 0.0 for k in HAB_A}, "forest": 10.0, "dry_land": 40.0, "urban": 50.0}
STATS_B = {"cod_emission_t": 2000.0, "nh3n_emission_t": 200.0, "so2_emission_t": 3000.0, "dust_emission_t": 1000.0,
           "nox_emission_t": 2000.0, "solid_waste_discarded_t": 5.0, "precipitation_mm": 800.0,
           "water_resources_1e6m3": 30.0, "river_length_km": 20.0}

# Hand computation for A ------------------------------------------------------------------------------------------
# 林地 = 0.6·300 + 0.25·100 + 0.15·50 = 180 + 25 + 7.5 = 212.5
# 草地 = 0.6·80 + 0.3·40 + 0.1·20 = 48 + 12 + 2 = 62
# 水域湿地 = 0.1·10 + 0.3·20 + 0.6·5 = 1 + 6 + 3 = 10
# 耕地 = 0.6·120 + 0.4·150 = 72 + 60 = 132
# 建设用地 = 0.3·30 + 0.4·40 + 0.3·15 = 9 + 16 + 4.5 = 29.5
# 未利用地 = 0.2·10 + 0.2·10 = 4
# Σ = 0.35·212.5 + 0.21·62 + 0.28·10 + 0.11·132 + 0.04·29.5 + 0.01·4
#   = 74.375 + 13.02 + 2.8 + 14.52 + 1.18 + 0.04 = 105.935
HQ_A = 511.2642131067 * 105.935 / 1000            # = 54.1608
BA_A = (60.0 + HQ_A) / 2                           # BI = 60 → 57.0804
VC_A = 0.0121165124 * 6500                         # NDVI ×10⁴ = 6500 → 78.7573
WND_A = (84.3704083981 * 500 / 1000                # river 500 km        → 42.1852
         + 591.7908642005 * 30 / 1000              # water 10 + 20 km²   → 17.7537
         + 86.3869548281 * 600 / 1000) / 3         # 600 × 10⁶ m³        → 51.8322   mean 37.2570
LS_A = 236.0435677948 * (0.4 * 20 + 0.2 * 50 + 0.2 * 85 + 0.2 * 5) / 1000   # (8 + 10 + 17 + 1) = 36 → 8.4976
# precipitation volume = 1000 mm × 1000 km² × 0.1 = 100 000 (10⁴ m³)
PL_A = (0.2 * 4.3937397289 * 5000 / 100000        # COD   0.0439
        + 0.2 * 40.1764754986 * 400 / 100000      # NH3-N 0.0321
        + 0.2 * 0.0648660287 * 1500 / 1000       # SO2   0.0195
        + 0.1 * 4.0904459321 * 2000 / 1000       # dust  0.8181
        + 0.2 * 0.5103049278 * 3000 / 1000       # NOx   0.3062
        + 0.1 * 0.0749894283 * 10 / 1000)        # solid 0.0001   Σ = 1.2199


def hand_ei(ba, vc, wnd, ls, pl):
    return 0.35 * ba + 0.25 * vc + 0.15 * wnd + 0.15 * (100 - ls) + 0.10 * (100 - pl)


EI_A = hand_ei(BA_A, VC_A, WND_A, LS_A, PL_A)      # 19.9781 + 19.6893 + 5.5886 + 13.7254 + 9.8780 = 68.8594


def _inputs(habs: dict, stats: dict, ndvi: dict, *, bi=None, **kw) -> EiInputs:
    idx = pd.Index(list(habs), name="zone_id")
    hab = pd.DataFrame([habs[z] for z in idx], index=idx)
    st = pd.DataFrame([stats[z] for z in idx], index=idx)
    return EiInputs(habitat_km2=hab, ndvi_mean=pd.Series(ndvi), ndvi_scale="x10000", statistics=st,
                    area_km2=hab.sum(axis=1), biodiversity_index=None if bi is None else pd.Series(bi), **kw)


def _county_a(**kw) -> EiInputs:
    return _inputs({"A": HAB_A}, {"A": STATS_A}, {"A": 6500.0}, bi={"A": 60.0},
                   severe_erosion_km2=pd.Series({"A": 20.0}), moderate_erosion_km2=pd.Series({"A": 50.0}),
                   other_stress_km2=pd.Series({"A": 5.0}), **kw)


# -- (a) every sub-index and EI by hand ------------------------------------------------------------------------------

def test_made_up_county_matches_the_hand_computation():
    res = compute_ei(_county_a(whole_area=False))
    row = res.table.loc["A"]
    assert row["hq_weighted_km2"] == pytest.approx(105.935, abs=1e-9)
    assert row["hq"] == pytest.approx(HQ_A, abs=TOL)
    assert row["hq"] == pytest.approx(54.16, abs=TOL)
    assert row["biological_abundance"] == pytest.approx(BA_A, abs=TOL)
    assert row["vegetation_cover"] == pytest.approx(VC_A, abs=TOL)
    assert row["vegetation_cover"] == pytest.approx(78.76, abs=TOL)
    assert row["water_area_km2"] == 30.0
    assert row["water_network_density"] == pytest.approx(WND_A, abs=TOL)
    assert row["water_network_density"] == pytest.approx(37.26, abs=TOL)
    assert row["construction_km2"] == 85.0
    assert row["land_stress"] == pytest.approx(LS_A, abs=TOL)
    assert row["land_stress"] == pytest.approx(8.50, abs=TOL)
    assert row["precipitation_volume_1e4m3"] == pytest.approx(100000.0)
    assert row["pollution_load"] == pytest.approx(PL_A, abs=TOL)
    assert row["pollution_load"] == pytest.approx(1.22, abs=TOL)
    assert row["ei_before_constraint"] == pytest.approx(EI_A, abs=TOL)
    assert row["ei"] == pytest.approx(68.86, abs=TOL)
    assert row["grade"] == "良"
    # the sub-index functions on their own give the same numbers
    idx = pd.Index(["A"])
    area = pd.Series([1000.0], index=idx)
    hab = pd.DataFrame([HAB_A], index=idx)
    assert biological_abundance(hab, area, pd.Series([60.0], index=idx))["biological_abundance"]["A"] \
        == pytest.approx(BA_A, abs=TOL)
    assert vegetation_cover(pd.Series([6500.0], index=idx), "x10000")["vegetation_cover"]["A"] \
        == pytest.approx(VC_A, abs=TOL)
    assert water_network_density(pd.Series([500.0], index=idx), pd.Series([30.0], index=idx),
                                 pd.Series([600.0], index=idx), area)["water_network_density"]["A"] \
        == pytest.approx(WND_A, abs=TOL)
    assert land_stress(20.0, 50.0, 85.0, 5.0, area)["land_stress"]["A"] == pytest.approx(LS_A, abs=TOL)
    em = pd.DataFrame([{k: v for k, v in STATS_A.items() if k.endswith("_t")}], index=idx)
    assert pollution_load(em, pd.Series([1000.0], index=idx), area)["pollution_load"]["A"] \
        == pytest.approx(PL_A, abs=TOL)
    subs = {"biological_abundance": pd.Series([BA_A]), "vegetation_cover": pd.Series([VC_A]),
            "water_network_density": pd.Series([WND_A]), "land_stress": pd.Series([LS_A]),
            "pollution_load": pd.Series([PL_A])}
    assert ecological_index(subs)[0] == pytest.approx(EI_A, abs=1e-9)


def test_table_is_unrounded_and_display_rounds():
    res = compute_ei(_county_a(whole_area=False))
    assert res.table.loc["A", "ei"] != round(res.table.loc["A", "ei"], 2)
    assert res.display().loc["A", "ei"] == round(EI_A, 2)


def test_statistics_units_are_converted_explicitly():
    # water resources given in 亿 m³ (10⁸ m³): 6.0 × 100 = 600 × 10⁶ m³ → same EI as county A
    stats = {k: v for k, v in STATS_A.items() if k != "water_resources_1e6m3"} | {"water_resources_1e8m3": 6.0}
    inp = _inputs({"A": HAB_A}, {"A": stats}, {"A": 6500.0}, bi={"A": 60.0},
                  severe_erosion_km2=pd.Series({"A": 20.0}), moderate_erosion_km2=pd.Series({"A": 50.0}),
                  other_stress_km2=pd.Series({"A": 5.0}), whole_area=False)
    row = compute_ei(inp).table.loc["A"]
    assert row["water_resources_1e6m3"] == pytest.approx(600.0)
    assert row["ei"] == pytest.approx(EI_A, abs=TOL)


def test_sea_classed_as_excluded_is_not_part_of_the_zone_area():
    hab = pd.DataFrame([HAB_A | {"excluded": 100.0}], index=pd.Index(["A"], name="zone_id"))
    inp = _county_a(whole_area=False)
    inp.habitat_km2, inp.area_km2 = hab, pd.Series({"A": 1100.0})     # polygon 1100 km² = 1000 land + 100 sea
    res = compute_ei(inp)
    assert res.table.loc["A", "area_km2"] == 1000.0 and res.table.loc["A", "excluded_km2"] == 100.0
    assert res.table.loc["A", "ei"] == pytest.approx(EI_A, abs=TOL)
    assert any("excluded (sea)" in a for a in res.assumptions)


def test_missing_erosion_is_an_explicit_assumption():
    inp = _inputs({"A": HAB_A}, {"A": STATS_A}, {"A": 6500.0}, whole_area=False)
    res = compute_ei(inp)
    # LS = 236.0435677948 × 0.2·85 / 1000 (construction only)
    assert res.table.loc["A", "land_stress"] == pytest.approx(236.0435677948 * 17 / 1000, abs=TOL)
    assert any("erosion area not given" in a for a in res.assumptions)
    assert any("no biodiversity index" in a for a in res.assumptions)
    assert any("tidal_flat_wetland" in a and "[C]" in a for a in res.assumptions)


# -- (b) capping -----------------------------------------------------------------------------------------------------

def test_values_above_100_are_capped_logged_and_recorded(caplog):
    inp = _inputs({"A": HAB_A}, {"A": STATS_A}, {"A": 9000.0}, whole_area=False)   # 0.0121165124 × 9000 = 109.05
    with caplog.at_level(logging.WARNING, logger="ecoassess.assess.hj192"):
        res = compute_ei(inp)
    row = res.table.loc["A"]
    assert row["vegetation_cover_raw"] == pytest.approx(0.0121165124 * 9000, abs=TOL)
    assert row["vegetation_cover"] == 100.0
    assert "vegetation_cover above 100 capped" in caplog.text and "109.0" in caplog.text
    assert list(res.capped["quantity"]) == ["vegetation_cover"]
    assert res.capped.loc[0, "before"] == pytest.approx(109.0486, abs=1e-3)
    assert row["capped"] == "vegetation_cover"


def test_water_network_cap_on_mean_or_per_term():
    # terms: 84.3704083981 × 2000/1000 = 168.74; 591.7908642005 × 30/1000 = 17.75; 86.3869548281 × 600/1000 = 51.83
    area = pd.Series([1000.0])
    mean = water_network_density(2000.0, 30.0, 600.0, area)
    per = water_network_density(2000.0, 30.0, 600.0, area, cap_mode="per_term")
    raw = (84.3704083981 * 2 + 591.7908642005 * 0.03 + 86.3869548281 * 0.6) / 3          # 79.44, below 100
    assert mean["water_network_density"][0] == pytest.approx(raw, abs=TOL)
    assert per["water_network_density"][0] == pytest.approx((100 + 591.7908642005 * 0.03 + 86.3869548281 * 0.6) / 3,
                                                            abs=TOL)


def test_wet_year_rule_is_off_by_default_but_r_is_reported():
    area = pd.Series([1000.0])
    out = water_network_density(0.0, 0.0, 1800.0, area, water_resources_mean_1e6m3=pd.Series([1000.0]))
    assert out["water_resources_ratio_r"][0] == pytest.approx(1.8)
    assert out["water_resources_used_1e6m3"][0] == 1800.0
    on = water_network_density(0.0, 0.0, 1800.0, area, water_resources_mean_1e6m3=pd.Series([1000.0]),
                               wet_year_rule=True)
    assert on["water_resources_used_1e6m3"][0] == pytest.approx(1000.0 * (2.4 - 1.8))      # 600
    assert on["water_network_density"][0] == pytest.approx(86.3869548281 * 600 / 1000 / 3, abs=TOL)


# -- (c) constraint semantics --------------------------------------------------------------------------------------

def test_constraint_downgrades_and_caps_never_adds():
    ei = pd.Series({"z1": 80.0, "z2": 60.0, "z3": 40.0, "z4": 25.0, "z5": 10.0, "z6": 80.0, "z7": 80.0, "z8": 60.0,
                    "z9": 60.0, "z10": 70.0})
    events = pd.DataFrame([
        {"zone_id": "z1", "event_type": "突发环境事件", "severity": "较大"},   # level 2: 优 → 良 = 74.9
        {"zone_id": "z2", "event_type": "突发环境事件", "severity": "较大"},   # 良 → 一般 = 54.9
        {"zone_id": "z3", "event_type": "生态破坏事件", "severity": "重大"},   # level 3: 一般 → 较差 = 34.9
        {"zone_id": "z4", "level": 3},                                         # 较差 → 差 = 19.9
        {"zone_id": "z5", "event_type": "突发环境事件", "severity": "特大"},   # already 差: unchanged 10
        {"zone_id": "z6", "event_type": "突发环境事件", "severity": "重大"},   # 优 → 良, cap 一般 = 54.9
        {"zone_id": "z7", "event_type": "突发环境事件", "severity": "一般"},   # not 优: 74.9
        {"zone_id": "z8", "event_type": "突发环境事件", "severity": "一般"},   # 良 stays 良: 60
        {"zone_id": "z9", "event_type": "突发环境事件", "severity": "一般"},   # two events: strictest (较大) = 54.9
        {"zone_id": "z9", "event_type": "突发环境事件", "severity": "较大"},
    ])
    out = apply_constraint(ei, events)
    expected = {"z1": 74.9, "z2": 54.9, "z3": 34.9, "z4": 19.9, "z5": 10.0, "z6": 54.9, "z7": 74.9, "z8": 60.0,
                "z9": 54.9, "z10": 70.0}
    for z, v in expected.items():
        assert out.loc[z, "ei"] == pytest.approx(v, abs=1e-9), z
    assert list(out["grade"]) == ["良", "一般", "较差", "差", "差", "一般", "良", "良", "一般", "良"]
    assert list(out["grade_before_constraint"][:5]) == ["优", "良", "一般", "较差", "差"]
    assert out.loc["z9", "constraint_events"] == 2
    assert out.loc["z10", "constraint_rule"] is None
    # a grade step, not an addition: the same event on 80 and on 76 gives the same 74.9
    out2 = apply_constraint(pd.Series({"a": 76.0}), pd.DataFrame([{"zone_id": "a", "level": 2}]))
    assert out2.loc["a", "ei"] == pytest.approx(74.9)


def test_unknown_event_severity_is_a_clear_error():
    with pytest.raises(InputError, match="no constraint rule.*严重"):
        apply_constraint(pd.Series({"a": 80.0}),
                         pd.DataFrame([{"zone_id": "a", "event_type": "突发环境事件", "severity": "严重"}]))


def test_constraint_in_compute_ei_uses_the_events_of_the_year():
    events = pd.DataFrame([{"county_code": "A", "year": 2024, "event_type": "突发环境事件", "severity": "较大"},
                           {"county_code": "A", "year": 2023, "event_type": "突发环境事件", "severity": "重大"}])
    res = compute_ei(_county_a(events=events, event_zone_field="county_code", year=2024))
    row = res.table.loc["A"]
    assert row["ei_before_constraint"] == pytest.approx(EI_A, abs=TOL)        # 68.86 良
    assert row["ei"] == pytest.approx(54.9) and row["grade"] == "一般"        # 较大 → one grade down
    assert res.table.loc["total", "ei"] == pytest.approx(EI_A, abs=TOL)       # county event not propagated


# -- (d) grade and change-class boundaries ---------------------------------------------------------------------------

@pytest.mark.parametrize("ei, label", [(100, "优"), (75.0, "优"), (74.99, "良"), (55.0, "良"), (54.999, "一般"),
                                       (35.0, "一般"), (34.99, "较差"), (20.0, "较差"), (19.99, "差"), (0.0, "差")])
def test_grade_boundaries(ei, label):
    assert grade(ei) == label


@pytest.mark.parametrize("delta, label", [(0.0, "无明显变化"), (0.999, "无明显变化"), (-0.999, "无明显变化"),
                                          (1.0, "略微变好"), (-1.0, "略微变差"), (2.999, "略微变好"),
                                          (3.0, "明显变好"), (-3.0, "明显变差"), (7.999, "明显变好"),
                                          (8.0, "显著变好"), (-8.0, "显著变差"), (-12.5, "显著变差")])
def test_change_class_boundaries(delta, label):
    assert change_class(delta) == label


def test_float_artefacts_at_boundaries_follow_exact_arithmetic():
    assert 64.02 - 61.02 < 3.0                    # 2.999999999999993 in binary floating point
    assert change_class(64.02 - 61.02) == "明显变好"
    assert change_class(61.02 - 64.02) == "明显变差"
    assert grade(75.0 - 1e-12) == "优"            # a floating-point 74.999999999999 that is 75 exactly
    assert grade(74.9999) == "良"                  # a real difference (far above the 1e-9 tolerance)
    s = grade(pd.Series([80.0, np.nan]))
    assert s.iloc[0] == "优" and pd.isna(s.iloc[1])


def test_fluctuation_heuristic():
    years = pd.DataFrame({2019: [60.0, 60.0, 60.0], 2020: [62.0, 60.5, 61.0], 2021: [60.5, 61.0, 62.0],
                          2022: [63.0, 61.2, 71.0]}, index=["up-down", "stable", "rising"])
    out = fluctuation_flag(years)
    # up-down: Δ = +2, −1.5, +2.5 → two reversals, max |Δ| 2.5 → 波动
    assert out.loc["up-down", "n_reversals"] == 2 and bool(out.loc["up-down", "fluctuating"])
    assert out.loc["up-down", "fluctuation_level"] == "波动"
    assert out.loc["up-down", "label"] == "生态环境敏感"
    assert not out.loc["stable", "fluctuating"] and out.loc["stable", "fluctuation_level"] == "稳定"
    # rising: +1, +1, +9 → no reversal, max 9 → 剧烈波动 level but not flagged
    assert not out.loc["rising", "fluctuating"] and out.loc["rising", "fluctuation_level"] == "剧烈波动"
    one = fluctuation_flag(pd.Series({2020: 50.0, 2021: 54.0, 2022: 50.0}))
    assert one["fluctuating"] and one["fluctuation_level"] == "较大波动"


# -- (e) whole area from totals ----------------------------------------------------------------------------------------

def test_whole_area_is_computed_from_totals_not_averaged():
    inp = _inputs({"A": HAB_A, "B": HAB_B}, {"A": STATS_A, "B": STATS_B}, {"A": 6500.0, "B": 3000.0},
                  severe_erosion_km2=pd.Series({"A": 20.0, "B": 0.0}),
                  moderate_erosion_km2=pd.Series({"A": 50.0, "B": 0.0}),
                  other_stress_km2=pd.Series({"A": 5.0, "B": 0.0}),
                  ndvi_weight=pd.Series({"A": 1000.0, "B": 100.0}))
    t = compute_ei(inp).table
    # county B (100 km²): HQ Σ = 0.35·0.6·10 + 0.11·0.4·40 + 0.04·0.3·50 = 2.1 + 1.76 + 0.6 = 4.46
    hq_b = 511.2642131067 * 4.46 / 100
    vc_b = 0.0121165124 * 3000
    wnd_b = (84.3704083981 * 20 / 100 + 0 + 86.3869548281 * 30 / 100) / 3
    ls_b = 236.0435677948 * 0.2 * 50 / 100
    pl_b = (0.2 * 4.3937397289 * 2000 / 8000 + 0.2 * 40.1764754986 * 200 / 8000 + 0.2 * 0.0648660287 * 3000 / 100
            + 0.1 * 4.0904459321 * 1000 / 100 + 0.2 * 0.5103049278 * 2000 / 100 + 0.1 * 0.0749894283 * 5 / 100)
    ei_b = hand_ei(hq_b, vc_b, wnd_b, ls_b, pl_b)
    ei_a = hand_ei(HQ_A, VC_A, WND_A, LS_A, PL_A)           # no BI in this test: BA = HQ
    assert t.loc["B", "ei"] == pytest.approx(ei_b, abs=TOL)
    assert t.loc["A", "ei"] == pytest.approx(ei_a, abs=TOL)
    # whole area (1100 km²) from totals:
    # 林地 0.6·310 + 25 + 7.5 = 218.5; 草地 62; 水域 10; 耕地 0.6·120 + 0.4·190 = 148; 建设 0.3·80 + 16 + 4.5 = 44.5;
    # 未利用 4 → Σ = 0.35·218.5 + 0.21·62 + 0.28·10 + 0.11·148 + 0.04·44.5 + 0.01·4 = 110.395
    hq_w = 511.2642131067 * 110.395 / 1100
    vc_w = 0.0121165124 * (6500 * 1000 + 3000 * 100) / 1100           # pixel-weighted NDVI 6181.8
    wnd_w = (84.3704083981 * 520 / 1100 + 591.7908642005 * 30 / 1100 + 86.3869548281 * 630 / 1100) / 3
    ls_w = 236.0435677948 * (0.4 * 20 + 0.2 * 50 + 0.2 * 135 + 0.2 * 5) / 1100   # (8 + 10 + 27 + 1) = 46
    vol_w = 1000 * 1000 * 0.1 + 800 * 100 * 0.1                                    # 108 000 × 10⁴ m³
    pl_w = (0.2 * 4.3937397289 * 7000 / vol_w + 0.2 * 40.1764754986 * 600 / vol_w
            + 0.2 * 0.0648660287 * 4500 / 1100 + 0.1 * 4.0904459321 * 3000 / 1100
            + 0.2 * 0.5103049278 * 5000 / 1100 + 0.1 * 0.0749894283 * 15 / 1100)
    ei_w = hand_ei(hq_w, vc_w, wnd_w, ls_w, pl_w)
    row = t.loc["total"]
    assert bool(row["is_whole_area"]) and row["area_km2"] == 1100.0
    assert row["precipitation_volume_1e4m3"] == pytest.approx(vol_w)
    assert row["ndvi_mean"] == pytest.approx(6800000 / 1100)
    assert row["ei"] == pytest.approx(ei_w, abs=TOL)
    mean_of_counties = (ei_a + ei_b) / 2
    assert abs(row["ei"] - mean_of_counties) > 1.0
    assert abs(row["ei"] - t.loc[["A", "B"], "ei"].mean()) > 1.0


# -- (f) NDVI scale trap -------------------------------------------------------------------------------------------

def test_float_ndvi_where_x10000_is_expected_is_a_clear_error():
    with pytest.raises(InputError, match=r"below 2 in ×10⁴ mode: float NDVI"):
        vegetation_cover(pd.Series({"A": 0.65}), "x10000")
    inp = _inputs({"A": HAB_A}, {"A": STATS_A}, {"A": 0.65}, whole_area=False)
    with pytest.raises(InputError, match="ndvi_scale"):
        compute_ei(inp)
    with pytest.raises(InputError, match="outside"):
        vegetation_cover(pd.Series({"A": 6500.0}), "float")
    # float NDVI with the float coefficient 121.165124 equals the ×10⁴ result
    assert vegetation_cover(pd.Series({"A": 0.65}), "float")["vegetation_cover"]["A"] == pytest.approx(
        121.165124 * 0.65, abs=1e-9)
    assert 121.165124 * 0.65 == pytest.approx(0.0121165124 * 6500, abs=1e-9)
    with pytest.raises(InputError, match="unknown NDVI scale"):
        vegetation_cover(pd.Series({"A": 0.65}), "percent")


# -- (g) corrected copy honoured, broken copy named ----------------------------------------------------------------

def _copy(tmp_path, edit):
    raw = yaml.safe_load(data_path("indices", "hj192_2015.yaml").read_text(encoding="utf-8"))
    edit(raw)
    p = tmp_path / "hj192_corrected.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return p


def test_a_corrected_coefficient_copy_is_honoured(tmp_path, caplog):
    def dyx(raw):
        raw["biological_abundance"]["groups"]["water_wetland"]["subclasses"]["tidal_flat_wetland"]["value"] = 0.5
    p = _copy(tmp_path, dyx)
    with caplog.at_level(logging.WARNING):
        co = load_hj192(p)
    assert "sum to 0.9" in caplog.text
    res = compute_ei(_county_a(whole_area=False), coefficients=p)
    # 水域湿地 = 0.1·10 + 0.3·20 + 0.5·5 = 9.5 → Σ = 105.935 − 0.28·0.5 = 105.795
    hq = 511.2642131067 * 105.795 / 1000
    assert res.table.loc["A", "hq"] == pytest.approx(hq, abs=TOL)
    assert res.coefficients.path == p.resolve() and co.groups["water_wetland"].subclasses["tidal_flat_wetland"] == 0.5
    # the shipped file is untouched
    assert load_hj192().groups["water_wetland"].subclasses["tidal_flat_wetland"] == 0.6


@pytest.mark.parametrize("edit, key", [
    (lambda r: r["biological_abundance"].pop("a_bio"), "biological_abundance.a_bio"),
    (lambda r: r["water_network_density"]["a_riv"].update(value="84.37"), "water_network_density.a_riv.value"),
    (lambda r: r["pollution_load"]["terms"]["cod"]["a"].update(confidence="maybe"),
     "pollution_load.terms.cod.a.confidence"),
    (lambda r: r["vegetation_cover"]["a_veg_float"].update(value=1.21165124), "vegetation_cover.a_veg_float.value"),
    (lambda r: r["composite"]["weights"]["vegetation_cover"].update(value=0.3), "composite.weights"),
    (lambda r: r["constraint"]["rules"][0].update(level=7), "constraint.rules[0].level"),
    (lambda r: r.pop("grades"), "grades.classes"),
])
def test_a_broken_coefficient_copy_names_the_key(tmp_path, edit, key):
    p = _copy(tmp_path, edit)
    with pytest.raises(Hj192CoefficientError) as err:
        load_hj192(p)
    assert err.value.field == key
    assert key in str(err.value) and str(p) in str(err.value)


def test_missing_coefficient_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_hj192(tmp_path / "nope.yaml")


# -- (h) crosswalks ----------------------------------------------------------------------------------------------------

PRODUCTS = {"clcd": set(range(1, 10)), "esa_worldcover": {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100},
            "dynamic_world": set(range(0, 9)), "corine": set(range(1, 45)), "cas_lucc": None}


@pytest.mark.parametrize("name", list(PRODUCTS))
def test_every_class_of_each_product_is_mapped(name):
    raw = yaml.safe_load(data_path("layers", f"{name}.yaml").read_text(encoding="utf-8"))
    co = load_hj192()
    finals = set(co.subclasses) | {"excluded"}
    codes = {int(k) for k in raw["classes"]}
    if PRODUCTS[name] is not None:
        assert codes == PRODUCTS[name]
    for k in ("name", "long_name", "version", "nodata"):
        assert k in raw
    for code, c in raw["classes"].items():
        for k in ("zh", "en", "color", "water", "hj192"):
            assert k in c, (name, code, k)
        assert c["color"].startswith("#") and len(c["color"]) == 7
        if c["hj192"] not in finals:
            assert c["hj192"] in co.pending_classes, (name, code)
            rule = co.splits[c["split"]]
            assert c["default"] in rule.targets, (name, code)
    # run through habitat_areas: one zone with 1 km² of every class adds up
    ca = pd.DataFrame([{f"class_{c}_km2": 1.0 for c in codes}], index=pd.Index(["z"]))
    hab, _ = habitat_areas(ca, name)
    assert hab.sum(axis=1)["z"] == pytest.approx(len(codes))


def test_key_crosswalk_decisions():
    cor = yaml.safe_load(data_path("layers", "corine.yaml").read_text(encoding="utf-8"))["classes"]
    assert [cor[c]["hj192"] for c in (1, 2)] == ["urban", "urban"]
    assert {cor[c]["hj192"] for c in range(3, 10)} == {"other_construction"}
    assert {cor[c]["hj192"] for c in (15, 16, 17)} == {"open_and_other_forest"}      # 园地 → 其他林地
    assert cor[18]["hj192"] == "grass_high"
    assert {cor[c]["hj192"] for c in (23, 24, 25)} == {"forest"}
    assert {cor[c]["hj192"] for c in (35, 36)} == {"tidal_flat_wetland"}
    assert cor[40]["hj192"] == "river" and cor[41]["hj192"] == "lake_reservoir"
    assert {cor[c]["hj192"] for c in (42, 43, 44)} == {"excluded"}


def test_split_rules_with_and_without_auxiliary_data():
    ca = pd.DataFrame({"class_4_km2": [100.0, 50.0], "class_1_km2": [200.0, 80.0], "class_5_km2": [10.0, 4.0],
                       "nodata_km2": [1.0, 0.0]}, index=pd.Index(["A", "B"], name="zone_id"))
    fvc = pd.DataFrame({"grass_low": [1.0], "grass_medium": [3.0], "grass_high": [6.0]}, index=["A"])
    hab, notes = habitat_areas(ca, "clcd", grass_fvc_areas=fvc, paddy_share=pd.Series({"A": 0.25}),
                               river_share=0.4)
    # A: grass 100 × 0.1/0.3/0.6; cropland 200 × 0.25 paddy; water 10 × 0.4 river
    assert list(hab.loc["A", ["grass_low", "grass_medium", "grass_high"]]) == pytest.approx([10.0, 30.0, 60.0])
    assert hab.loc["A", "paddy"] == pytest.approx(50.0) and hab.loc["A", "dry_land"] == pytest.approx(150.0)
    assert hab.loc["A", "river"] == pytest.approx(4.0) and hab.loc["A", "lake_reservoir"] == pytest.approx(6.0)
    # B: no FVC, no paddy share → defaults, listed
    assert hab.loc["B", "grass_medium"] == 50.0 and hab.loc["B", "dry_land"] == 80.0
    assert hab.loc["B", "river"] == pytest.approx(1.6)
    assert any("fvc_5_20_50" in n and "grass_medium" in n and "(B)" in n for n in notes)
    assert any("paddy_layer" in n and "dry_land" in n and "(B)" in n for n in notes)
    assert not any("river_lake" in n for n in notes)
    with pytest.raises(InputError, match=r"\[99\]"):
        habitat_areas(ca.assign(class_99_km2=1.0), "clcd")


def test_grass_cover_classes_from_fvc():
    codes = grass_cover_class(np.array([0.0, 0.04, 0.05, 0.199, 0.2, 0.499, 0.5, 1.0, np.nan]))
    assert list(codes) == [1, 1, 1, 1, 2, 2, 3, 3, 0]


MUNICIPALITIES = ["351", "581", "942", "6002", "6266", "6300"]   # Bern, Interlaken, Thun, Brig-Glis, Sion, Zermatt


def test_corine_crosswalk_on_swiss_municipalities_matches_exactextract(shared_data):
    folder = shared_data / "corine-clc-switzerland"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    import geopandas as gpd
    import rasterio
    from exactextract import exact_extract

    from ecoassess.grid import AnalysisGrid, read_on_grid
    from ecoassess.zones import ZoneSet, zonal_class_areas

    tif = folder / "bern_valais_g100_clc00.tif"
    gdf = gpd.read_file(folder / "municipalities_g1a18" / "g1a18.shp")
    gdf = gdf[gdf["GMDNR"].isin(MUNICIPALITIES)]
    assert len(gdf) == len(MUNICIPALITIES)
    with rasterio.open(tif) as src:
        grid = AnalysisGrid(src.crs, src.transform, src.width, src.height)
        raster_crs = src.crs
    zones = ZoneSet.from_gdf(gdf, grid, id_field="GMDNR", name_field="GMDNAME")
    lc = read_on_grid(tif, grid, kind="classes")
    hab, notes = habitat_areas(zonal_class_areas(zones, lc, nodata=255), "corine")
    shares = hab.div(hab.sum(axis=1), axis=0)

    # independent: exactextract class fractions + the crosswalk table read directly
    cross = yaml.safe_load(data_path("layers", "corine.yaml").read_text(encoding="utf-8"))["classes"]
    target = {int(k): (v.get("default") or v["hj192"]) for k, v in cross.items()}   # no FVC given → defaults
    ee = exact_extract(str(tif), gdf.to_crs(raster_crs), ["unique", "frac"], include_cols=["GMDNR"],
                       output="pandas")
    for _, r in ee.iterrows():
        expect: dict[str, float] = {}
        for code, frac in zip(r["unique"], r["frac"]):
            expect[target[int(code)]] = expect.get(target[int(code)], 0.0) + float(frac)
        got = shares.loc[r["GMDNR"]]
        for sub in shares.columns:
            assert got[sub] == pytest.approx(expect.get(sub, 0.0), abs=1e-6), (r["GMDNR"], sub)
    # plausibility: Zermatt is glacier/rock, Sion has vineyards (园地 → 其他林地), Bern is urban
    assert shares.loc["6300", "other_unused"] > 0.4 and shares.loc["6300", "bare_rock"] > 0.25
    assert shares.loc["6266", "open_and_other_forest"] > 0.25
    assert shares.loc["351", "urban"] > 0.3
    assert any("class 26" in n and "grass_medium" in n for n in notes)


# -- (i) function-zone indicators --------------------------------------------------------------------------------------

def test_function_zone_indicators_for_the_four_types():
    types = ["防风固沙", "水土保持", "水源涵养", "生物多样性维护"]
    idx = pd.Index(types)
    hab = pd.DataFrame([HAB_A] * 4, index=idx)
    out = function_zone_indicators(hab, pd.Series(1000.0, index=idx), pd.Series(types, index=idx))
    # county A: 林地 450, 草地 140, 水域湿地 35, 耕地 270, 建设 85 (area 1000 km²)
    hand = {
        "防风固沙": {"forest_grass_cover": 105.4407423028 * 590 / 1000, "water_wetland_ratio": 824.4023083265 * 35 / 1000,
                 "cropland_construction_ratio": 165.0437365902 * 355 / 1000},
        "水土保持": {"forest_grass_cover": 104.5696957022 * 590 / 1000, "water_wetland_ratio": 1418.4397163121 * 35 / 1000,
                 "cropland_construction_ratio": 150.6477854776 * 355 / 1000},
        "水源涵养": {"forest_cover": 104.4277360067 * 450 / 1000, "grass_cover": 120.5836247438 * 140 / 1000,
                 "water_wetland_ratio": 321.4400514304 * 35 / 1000,
                 "cropland_construction_ratio": 102.7221366204 * 355 / 1000,
                 # 526.7925984400 × (0.45·35 + 0.35·450 + 0.20·140)/1000 = 526.79 × 0.20125 = 106.02 → capped
                 "water_conservation_index": 100.0},
        "生物多样性维护": {"forest_cover": 113.3915409910 * 450 / 1000, "grass_cover": 130.9414691633 * 140 / 1000,
                    "water_wetland_ratio": 329.9241174530 * 35 / 1000,
                    "cropland_construction_ratio": 116.2115049390 * 355 / 1000},
    }
    indicators = ["forest_grass_cover", "forest_cover", "grass_cover", "water_wetland_ratio",
                  "cropland_construction_ratio", "water_conservation_index"]
    for t, values in hand.items():
        for ind in indicators:
            if ind in values:
                assert out.loc[t, ind] == pytest.approx(values[ind], abs=TOL), (t, ind)
            else:
                assert np.isnan(out.loc[t, ind]), (t, ind)
    assert out.loc["水源涵养", "water_conservation_index_raw"] == pytest.approx(526.7925984400 * 0.20125, abs=TOL)
    assert out.loc["水源涵养", "function_type"] == "water_conservation"
    # a single type for all zones, by its English key
    one = function_zone_indicators(hab.iloc[:1], 1000.0, "soil_conservation")
    assert one["water_wetland_ratio"].iloc[0] == pytest.approx(1418.4397163121 * 35 / 1000, abs=TOL)
    with pytest.raises(InputError, match="unknown function-zone type"):
        function_zone_indicators(hab.iloc[:1], 1000.0, "荒漠化防治")


def test_function_zone_county_seven_change_classes_and_their_boundaries():
    from ecoassess.assess.hj192 import function_zone_change_class
    from ecoassess.assess.hj192_coefficients import load_hj192

    assert function_zone_change_class(1.0) == "基本稳定"          # |Δ| ≤ 1
    assert function_zone_change_class(-1.01) == "轻微变差"
    assert function_zone_change_class(2.0) == "轻微变好"          # 1 < |Δ| ≤ 2
    assert function_zone_change_class(2.5) == "一般变好"
    assert function_zone_change_class(-4.0) == "一般变差"
    assert function_zone_change_class(4.2) == "明显变好"
    assert load_hj192().raw["function_zone_change_classes"]["verified"] is False


def test_other_land_stress_is_sand_saline_and_bare_rock_from_the_land_cover():
    """STANDARDS §1.5 其他土地胁迫 (sand + saline + bare rock [C]), from the habitat table the EI stage builds; it
    was silently 0 when the helper looked for the columns under another name."""
    from ecoassess.assess.ei_inputs import other_stress_km2

    ca = pd.DataFrame([{"class_61_km2": 2.0, "class_63_km2": 3.0, "class_66_km2": 5.0, "class_65_km2": 7.0,
                        "class_21_km2": 10.0}, {"class_21_km2": 4.0}], index=pd.Index(["a", "b"])).fillna(0.0)
    hab, _ = habitat_areas(ca, "cas_lucc")
    assert other_stress_km2(hab).to_dict() == {"a": 10.0, "b": 0.0}  # sand 2 + saline 3 + bare rock 5; not bare soil
    with pytest.raises(ValueError, match="bare_rock"):
        other_stress_km2(hab.drop(columns="bare_rock"))


def test_erosion_layer_without_data_over_a_zone_is_an_error_not_zero_erosion():
    """A DEM in the wrong CRS or full of nodata gave erosion class 0 everywhere: 0 km² of erosion, EI too high."""
    from ecoassess.assess.ei_inputs import erosion_coverage_problems

    table = pd.DataFrame({"area_km2": [100.0, 50.0, 10.0], "area_outside_km2": [0.0, 10.0, 0.0],
                          "erosion_nodata_km2": [0.0, 2.0, 0.0]}, index=pd.Index(["a", "b", "c"]))
    notes = erosion_coverage_problems(table, "dem.tif")
    assert notes == ["erosion classes cover only 95.0 % of zone b (dem.tif); the rest counts as no erosion"]
    table.loc["c", "erosion_nodata_km2"] = 6.0  # 40 % classified
    with pytest.raises(InputError, match=r"dem.tif.*less than half of zone\(s\) c 40 %"):
        erosion_coverage_problems(table, "dem.tif")


def test_land_cover_with_only_nodata_over_the_study_area_names_the_file():
    import dask.array as da
    import geopandas as gpd
    from shapely.geometry import box

    from ecoassess.assess.ei_inputs import habitat_km2
    from ecoassess.grid import AnalysisGrid
    from ecoassess.legends import load_legend
    from ecoassess.zones import ZoneSet

    grid = AnalysisGrid.from_bounds((0, 0, 300, 300), 30, "EPSG:3035")
    zones = ZoneSet.from_gdf(gpd.GeoDataFrame({"code": ["z"]}, geometry=[box(0, 0, 300, 300)], crs="EPSG:3035"),
                             grid, id_field="code")
    legend = load_legend("cas_lucc")
    lc = grid.wrap(da.zeros(grid.shape, dtype="uint8", chunks=5), name="lc")
    lc.attrs.update({"source": "/data/lucc_2024.tif", "nodata": legend.nodata})
    with pytest.raises(InputError, match=r"lucc_2024.tif.*no land-cover class anywhere in the study area"):
        habitat_km2(zones, lc, legend)
