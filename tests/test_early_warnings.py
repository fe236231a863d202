"""The run's early warnings (预警, issue 22 part 3): the rules of indices/early_warning.yaml on small hand-built
result tables, each just above and just below its threshold; the findings of the demo-shaped tables that the
stage code gave before (issue 20/19); a rule file's mistakes named; the same table in zh and en."""

from pathlib import Path

import math

import pandas as pd
import pytest
import yaml

from ecoassess.errors import InputError
from ecoassess.report.warnings import WARNING_COLUMNS, catalog_messages, derive_warnings, load_rules
from ecoassess.resume import Parts
from ecoassess.stages.base import ALERT_COLUMNS, RunContext, RunResult

RULES = Path(__file__).resolve().parents[1] / "indices" / "early_warning.yaml"


def _found(w: pd.DataFrame, rule: str) -> list[tuple]:
    hit = w[w["rule"] == rule]
    return list(zip(hit["subject_id"], hit["indicator"], hit["value"], hit["limit"]))


# -- hand-built tables ------------------------------------------------------------------------------------------

def _county_ei():
    """Two counties and the whole area over two years; grades by HJ 192 §1.7 (55 ≤ EI < 75 良, 35 ≤ EI < 55 一般):
    A falls from 55.00 (良) to 54.99 (一般), B stays at 55.00 (良), the whole area falls but is not a county."""
    return pd.DataFrame({
        "code": ["A", "B", "000000", "A", "B", "000000"], "name": ["甲县", "乙县", "全区"] * 2,
        "year": [2023, 2023, 2023, 2024, 2024, 2024], "is_whole_area": [False, False, True] * 2,
        "ei": [55.0, 55.0, 60.0, 54.99, 55.0, 50.0], "grade": ["良", "良", "良", "一般", "良", "一般"]})


def test_an_ei_grade_drop_is_found_at_the_grade_boundary():
    w = derive_warnings({"county_ei": _county_ei()})
    assert _found(w, "ei_grade_drop") == [("A", "ei", 54.99, 55.0)]
    row = w[w["rule"] == "ei_grade_drop"].iloc[0]
    assert (row["level"], row["county_code"], row["county_name"], row["stage"]) == ("警示", "A", "甲县", "ei")
    assert "良（2023年）降为一般（2024年）" in row["message"] and "54.99" in row["message"]


def test_an_ei_grade_drop_compares_the_last_year_with_the_first():
    t = _county_ei()
    t = pd.concat([t, t.iloc[[0]].assign(year=2025, ei=56.0, grade="良")], ignore_index=True)   # A back to 良
    assert _found(derive_warnings({"county_ei": t}), "ei_grade_drop") == []


def _ei_change():
    """ΔEI classes of HJ 192 §1.7 by hand: −8 ≤ … (−8, −3] 明显变差, ≤ −8 显著变差, (−3, −1] 略微变差."""
    return pd.DataFrame({
        "code": ["A", "B", "C", "D"], "name": ["甲县", "乙县", "丙县", "丁县"], "years": ["2023-2024"] * 4,
        "delta_ei": [-3.0, -2.99, -8.0, -7.99],
        "change_class": ["明显变差", "略微变差", "显著变差", "明显变差"],
        "function_type": ["水土保持", "水源涵养", None, "生物多样性维护"],
        "function_zone_change_class": ["一般变差", "轻微变差", None, "明显变差"]})


def test_ei_change_classes_marked_and_significant_deterioration():
    w = derive_warnings({"county_ei_change": _ei_change()})
    assert _found(w, "ei_change_significant") == [("C", "delta_ei", -8.0, -8.0)]
    assert _found(w, "ei_change_marked") == [("A", "delta_ei", -3.0, -3.0), ("D", "delta_ei", -7.99, -3.0)]
    assert set(w.loc[w["rule"] == "ei_change_significant", "level"]) == {"警示"}
    assert set(w.loc[w["rule"] == "ei_change_marked", "level"]) == {"关注"}


def test_a_function_zone_county_whose_quality_fell():
    t = pd.concat([_ei_change(), pd.DataFrame({"code": ["E", "F"], "name": ["戊县", "己县"], "years": ["2023-2024"] * 2,
                                               "delta_ei": [0.5, 1.5], "change_class": ["无明显变化", "略微变好"],
                                               "function_type": ["水土保持"] * 2,
                                               "function_zone_change_class": ["基本稳定", "轻微变好"]})])
    w = derive_warnings({"county_ei_change": t})
    assert [r[0] for r in _found(w, "function_zone_quality_fell_markedly")] == ["D"]
    assert [r[0] for r in _found(w, "function_zone_quality_fell")] == ["A", "B"]
    d = w[w["rule"] == "function_zone_quality_fell_markedly"].iloc[0]
    assert "生物多样性维护" in d["message"] and "明显变差" in d["message"]


def test_an_rsei_grade_drop_of_the_county_mean():
    """RSEI grades (Xu 2013, STANDARDS §3.4): [0.6, 0.8) 良, [0.4, 0.6) 中等; 0.6 is 良."""
    t = pd.DataFrame({"code": ["A", "B", "000000"] * 2, "name": ["甲县", "乙县", "全区"] * 2,
                      "year": [2023] * 3 + [2024] * 3,
                      "rsei_mean": [0.60, 0.60, 0.61, 0.5999, 0.60, 0.30]})
    w = derive_warnings({"county_rsei": t})
    assert _found(w, "rsei_grade_drop") == [("A", "rsei_mean", 0.5999, 0.6)]
    assert "良（2023年）降为中等（2024年）" in w["message"].iloc[0]


def _patches():
    return pd.DataFrame({
        "patch_id": ["P1", "P2", "P3", "P4", "P5"], "change_type": ["new", "new", "expanded", "expanded", "reduced"],
        "reported": [True, True, True, False, True], "location": ["inside", "buffer", "inside", "inside", "inside"],
        "unit_id": ["U1"] * 5, "unit_name": ["龙台山红线"] * 5, "county_code": ["519902"] * 5,
        "county_name": ["柏溪县"] * 5, "area_m2": [38017.6, 900.0, 12000.4, 5000.0, 3000.0],
        "change_area_m2": [38017.6, 900.0, 3000.0, 1000.0, -500.0], "activity_name": ["采石场"] * 5})


def test_new_and_expanded_reported_patches_inside_a_red_line_unit():
    w = derive_warnings({"redline_patches": _patches()})
    assert [r[:3] for r in _found(w, "new_patch_inside_redline")] == [("P1", "area_m2", 38017.6)]
    assert [r[0] for r in _found(w, "expanded_patch_inside_redline")] == ["P3"]
    p1 = w[w["subject_id"] == "P1"].iloc[0]
    assert math.isnan(p1["limit"]) and p1["unit"] == "m²" and p1["subject_name"] == "龙台山红线"
    assert p1["message"] == "新增人类活动图斑 P1（采石场，38,018 m²）位于生态保护红线单元 龙台山红线（U1）内"


def _air():
    """A01: PM2.5 annual 35.1 over its limit 35 (flagged by the grading), 35.0 at A02 is not over."""
    items = ["so2_annual", "so2_p98", "no2_annual", "no2_p98", "pm10_annual", "pm10_p95", "pm25_annual",
             "pm25_p95", "co_p95", "o3_8h_p90"]
    rows = []
    for sid, pm25 in (("A01", 35.1), ("A02", 35.0)):
        row = {"station_id": sid, "name": f"{sid} 站", "county_code": "519901", "county_name": "青岗县",
               "area_class": 2, "gb3095": "GB 3095-2012 二级"}
        for item in items:
            u = "mgm3" if item.startswith("co_") else "ugm3"
            row.update({f"{item}_{u}": 1.0, f"{item}_limit_{u}": 100.0, f"{item}_exceeds": False})
        row.update(pm25_annual_ugm3=pm25, pm25_annual_limit_ugm3=35.0, pm25_annual_exceeds=pm25 > 35.0)
        rows.append(row)
    return pd.DataFrame(rows)


def test_an_air_station_over_its_annual_limit():
    w = derive_warnings({"air_station_annual": _air()})
    assert _found(w, "air_annual_limit") == [("A01", "pm25_annual", 35.1, 35.0)]
    row = w.iloc[0]
    assert row["message"] == "A01 A01 站：PM2.5 年平均浓度 35.1 µg/m³，超过限值 35 µg/m³"
    assert row["source"].startswith("GB 3095-2012 二级 表1") and row["unit"] == "µg/m³"


def test_water_sections_and_drinking_water_sources_worse_than_their_target():
    t = pd.DataFrame({"station_id": ["W1", "W2"], "name": ["断面一", "断面二"], "county_code": ["C"] * 2,
                      "county_name": ["甲县"] * 2, "water_class": ["IV", "III"], "target_class": ["III", "III"],
                      "meets_target": [False, True], "deciding_items": ["tp", ""]})
    w = derive_warnings({"water_sections": t, "drinking_water_sources": t.assign(water_class=["劣V", "II"])})
    assert _found(w, "water_section_target") == [("W1", "water_class", 4.0, 3.0)]
    assert _found(w, "drinking_water_target") == [("W1", "water_class", 6.0, 3.0)]


def test_soil_above_its_control_value_and_above_its_screening_value():
    """GB 15618-2018 paddy pH ≤ 5.5: Cd screening 0.3, control 1.5 mg/kg (the grading sets the status)."""
    base = {"county_code": "C", "county_name": "甲县", "ph_band": "pH≤5.5", "cd_screening_mgkg": 0.3,
            "cd_control_mgkg": 1.5}
    metals = ["hg", "as", "pb", "cr", "cu", "ni", "zn"]
    rows = []
    for sid, cd, status in (("S1", 1.51, "above_control"), ("S2", 1.5, "between"), ("S3", 0.3, "below_screening")):
        row = {"station_id": sid, "name": sid, **base, "cd_mgkg": cd, "cd_status": status}
        row.update({f"{m}_{k}": v for m in metals for k, v in
                    (("mgkg", 0.0), ("screening_mgkg", 1.0), ("control_mgkg", 2.0), ("status", "below_screening"))})
        rows.append(row)
    w = derive_warnings({"soil_points": pd.DataFrame(rows)})
    assert _found(w, "soil_above_control") == [("S1", "cd", 1.51, 1.5)]
    assert _found(w, "soil_above_screening") == [("S2", "cd", 1.5, 0.3)]
    assert w.iloc[0]["level"] == "警示" and "镉" in w.iloc[0]["message"]


def test_noise_over_the_limit_of_its_class_by_day_and_night():
    t = pd.DataFrame({"station_id": ["N1", "N2"], "name": ["测点一", "测点二"], "county_code": ["C"] * 2,
                      "county_name": ["甲县"] * 2, "time": pd.to_datetime(["2024-08-20 10:00", "2024-02-20 00:00"]),
                      "function_class": ["1", "2"], "leq_day_dba": [55.1, 60.0], "limit_day_dba": [55.0, 60.0],
                      "meets_day": [False, True], "leq_night_dba": [45.0, 50.2], "limit_night_dba": [45.0, 50.0],
                      "meets_night": [True, False]})
    w = derive_warnings({"noise_measurements": t})
    assert _found(w, "noise_limit") == [("N1", "leq_day", 55.1, 55.0), ("N2", "leq_night", 50.2, 50.0)]
    assert w.iloc[0]["message"] == "N1 测点一 2024-08-20：昼间等效声级 55.1 dB(A)，超过限值 55 dB(A)"


def test_a_network_shortfall_and_no_finding_where_the_rule_was_not_checked():
    t = pd.DataFrame({"county_code": ["C1", "C2", "C3"], "county_name": ["甲县", "乙县", "丙县"],
                      "station_type": ["air"] * 3, "rule_id": ["county_seat_air_2"] * 3, "required": [2, 2, None],
                      "present": [1, 2, 0], "shortfall": [1, 0, None], "source": ["铜仁市 二(一)1"] * 3})
    w = derive_warnings({"network_coverage": t})
    assert _found(w, "network_shortfall") == [("C1", "air sites", 1.0, 2.0)]
    assert w.iloc[0]["message"] == "甲县：环境空气监测点位 1 个，规则 county_seat_air_2 要求 2 个（缺 1 个）"
    assert w.iloc[0]["source"] == "铜仁市 二(一)1"


# -- the table as a whole ---------------------------------------------------------------------------------------

def _all_tables():
    return {"county_ei": _county_ei(), "county_ei_change": _ei_change(), "redline_patches": _patches(),
            "air_station_annual": _air()}


def test_the_table_has_its_columns_levels_first_and_the_same_findings_in_english():
    zh, en = derive_warnings(_all_tables()), derive_warnings(_all_tables(), lang="en")
    assert list(zh.columns) == list(WARNING_COLUMNS) == list(ALERT_COLUMNS)
    assert zh["level"].tolist() == sorted(zh["level"], key=["警示", "关注"].index)
    assert set(zh["level"]) == {"警示", "关注"} and set(en["level"]) == {"Warning", "Watch"}
    pd.testing.assert_frame_equal(zh.drop(columns=["level", "message", "source", "unit"]),
                                  en.drop(columns=["level", "message", "source", "unit"]))
    a01 = en[en["subject_id"] == "A01"].iloc[0]
    assert a01["message"] == "A01 A01 站: PM2.5 annual mean 35.1 > 35 µg/m³"
    assert "甲县: EI grade fell from 良 (2023) to 一般 (2024)" in en["message"].iloc[0]


def test_absent_tables_are_skipped_and_no_table_gives_an_empty_typed_table():
    w = derive_warnings({})
    assert w.empty and list(w.columns) == list(WARNING_COLUMNS)
    assert w["value"].dtype == float and w["limit"].dtype == float


def test_tables_read_back_from_text_files_give_the_same_findings():
    """A results folder read back (CSV: booleans and codes as text) gives what the run's tables gave."""
    tables = {k: t.astype(str).replace({"nan": None, "None": None}) for k, t in _all_tables().items()}
    a, b = derive_warnings(_all_tables()), derive_warnings(tables)
    assert list(zip(a["rule"], a["subject_id"], a["indicator"])) == list(zip(b["rule"], b["subject_id"],
                                                                             b["indicator"]))
    assert a["value"].tolist() == b["value"].tolist()


# -- the findings of the stage code this replaces ---------------------------------------------------------------

def test_demo_shaped_tables_give_the_findings_the_stage_code_gave():
    """Rows shaped as the demo's tables (ecoassess demo: air_station_annual A02, water_sections W02/W09,
    noise_measurements N10, network_coverage of 519902, redline_patches 0001/0004/0008); the (rule, subject,
    indicator) the network and red-line stages gave for them before (their early_warnings.csv), with the coverage
    rules now under one rule, network_shortfall."""
    air = _air().iloc[[1]].assign(station_id="A02", name="青岗县背景站", pm25_annual_ugm3=43.0,
                                  pm25_annual_exceeds=True, pm25_p95_ugm3=98.0, pm25_p95_limit_ugm3=75.0,
                                  pm25_p95_exceeds=True, o3_8h_p90_ugm3=166.0, o3_8h_p90_limit_ugm3=160.0,
                                  o3_8h_p90_exceeds=True)
    water = pd.DataFrame({"station_id": ["W02", "W09", "W01"], "name": ["九曲河青岗断面", "黑龙滩水库库心", "x"],
                          "county_code": ["519901", "519902", "519901"], "county_name": ["青岗县", "柏溪县", "青岗县"],
                          "water_class": ["IV", "III", "II"], "target_class": ["III", "II", "III"],
                          "meets_target": [False, False, True], "deciding_items": ["codmn,cod,bod5,tp", "tp", ""]})
    noise = pd.DataFrame({"station_id": ["N10"] * 4, "name": ["雁湖城区2类区测点"] * 4, "county_code": ["519904"] * 4,
                          "county_name": ["雁湖县"] * 4, "function_class": ["2"] * 4,
                          "time": ["2024-02-20", "2024-05-20", "2024-08-20", "2024-11-20"],
                          "leq_day_dba": [60.2, 58.0, 60.7, 57.0], "limit_day_dba": [60.0] * 4,
                          "meets_day": [False, True, False, True], "leq_night_dba": [48.0, 50.9, 49.0, 47.0],
                          "limit_night_dba": [50.0] * 4, "meets_night": [True, False, True, True]})
    coverage = pd.DataFrame({"county_code": ["519902"] * 4, "county_name": ["柏溪县"] * 4,
                             "station_type": ["air", "air", "soil", "surface_water"],
                             "rule_id": ["hj664_city_air", "county_seat_air_2", "soil_every_county",
                                         "river_exit_section"],
                             "required": [None, 2, 1, 4], "present": [1, 1, 8, 0], "shortfall": [None, 1, 0, 4],
                             "source": ["HJ 664", "铜仁市", "铜仁市", "铜仁市"]})
    patches = _patches().iloc[:3].assign(patch_id=["HX-0001", "HX-0004", "HX-0008"],
                                         location=["inside", "buffer", "buffer"])
    w = derive_warnings({"air_station_annual": air, "water_sections": water, "noise_measurements": noise,
                         "network_coverage": coverage, "redline_patches": patches})
    assert sorted(zip(w["rule"], w["subject_id"], w["indicator"])) == sorted([
        ("air_annual_limit", "A02", "pm25_annual"), ("air_annual_limit", "A02", "pm25_p95"),
        ("air_annual_limit", "A02", "o3_8h_p90"),
        ("water_section_target", "W02", "water_class"), ("water_section_target", "W09", "water_class"),
        ("noise_limit", "N10", "leq_day"), ("noise_limit", "N10", "leq_night"), ("noise_limit", "N10", "leq_day"),
        ("network_shortfall", "519902", "air sites"), ("network_shortfall", "519902", "surface_water sites"),
        ("new_patch_inside_redline", "HX-0001", "area_m2")])


# -- the rule file ----------------------------------------------------------------------------------------------

def _edited(tmp_path, edit) -> Path:
    spec = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    edit({r["id"]: r for r in spec["rules"]}, spec)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


def test_a_threshold_edited_in_a_copy_of_the_rule_file_changes_the_findings(tmp_path):
    t = {"network_coverage": pd.DataFrame({"county_code": ["C1", "C2"], "county_name": ["甲县", "乙县"],
                                           "station_type": ["air"] * 2, "rule_id": ["r"] * 2, "required": [2, 4],
                                           "present": [1, 2], "shortfall": [1, 2], "source": ["s"] * 2})}
    assert len(derive_warnings(t, rules=RULES)) == 2

    def stricter(rules, _):
        rules["network_shortfall"]["when"][0]["value"] = 1            # a shortfall of more than one site
        rules["rsei_grade_drop"]["grades"]["lower"] = [0.0, 0.2, 0.4, 0.55, 0.8]   # 良 from 0.55
    path = _edited(tmp_path, stricter)
    assert [r[0] for r in _found(derive_warnings(t, rules=path), "network_shortfall")] == ["C2"]
    rsei = pd.DataFrame({"code": ["A", "A"], "name": ["甲县"] * 2, "year": [2023, 2024], "rsei_mean": [0.6, 0.5999]})
    assert len(derive_warnings({"county_rsei": rsei})) == 1
    assert derive_warnings({"county_rsei": rsei}, rules=path).empty


@pytest.mark.parametrize("edit, field", [
    (lambda r, s: r["ei_grade_drop"].update(table="county_eii"), "rules.ei_grade_drop.table"),
    (lambda r, s: r["noise_limit"]["when"][0].update(op="greater"), "rules.noise_limit.when[0].op"),
    (lambda r, s: r["soil_above_control"].update(level="red"), "rules.soil_above_control.level"),
    (lambda r, s: r["water_section_target"].update(threshold=3), "rules.water_section_target.threshold"),
    (lambda r, s: r["water_section_target"].update(value={"column": "water_class", "map": "nope"}),
     "rules.water_section_target.value"),
])
def test_a_mistake_in_the_rule_file_names_the_rule_and_field(tmp_path, edit, field):
    with pytest.raises(InputError) as err:
        load_rules(_edited(tmp_path, edit))
    assert f"[{field}]" in str(err.value) and str(tmp_path) in str(err.value)


def test_a_column_the_table_lacks_names_the_rule_field_and_table(tmp_path):
    path = _edited(tmp_path, lambda r, s: r["air_annual_limit"]["when"][0].update(column="{item}_exceed"))
    with pytest.raises(InputError, match=r"\[rules.air_annual_limit.when\[0\].column\]: rule air_annual_limit: "
                                         r"table air_station_annual has no column 'so2_annual_exceed'"):
        derive_warnings({"air_station_annual": _air()}, rules=path)
    # the table absent: the rule is skipped
    assert derive_warnings({}, rules=path).empty


def test_the_rules_grades_are_those_of_the_standards_tables():
    from ecoassess.catalog import data_path, load_yaml

    rules = {r["id"]: r for r in load_rules()["rules"]}
    hj192 = load_yaml(data_path("indices", "hj192_2015.yaml"))["grades"]["classes"][::-1]     # worst first
    assert rules["ei_grade_drop"]["grades"]["labels"] == [c["zh"] for c in hj192]
    assert rules["ei_grade_drop"]["grades"]["lower"] == [c["lower"] for c in hj192]
    rsei = load_yaml(data_path("indices", "rsei.yaml"))["grades"]
    assert rules["rsei_grade_drop"]["grades"]["labels"] == [c["zh"] for c in rsei]
    assert rules["rsei_grade_drop"]["grades"]["lower"] == [c["lower"] for c in rsei]


def test_every_rule_names_its_source_and_every_word_is_in_the_chinese_catalog():
    from ecoassess.report.i18n import catalog_path, untranslated
    from babel.messages.pofile import read_po

    for rule in load_rules()["rules"]:
        assert rule["source"] and rule.get("confidence") in ("A", "B", "C"), rule["id"]
    with catalog_path("zh", "warnings").open("rb") as f:
        catalog = read_po(f, locale="zh", domain="warnings")
    missing = [m for m in catalog_messages() if catalog.get(m) is None or not catalog.get(m).string]
    assert missing == []
    root = Path(__file__).resolve().parents[1]
    assert untranslated("zh", "warnings", [root / "ecoassess" / "report" / "warnings.py"]) == []


# -- the pipeline writes the table; resumed parts keep their tables ---------------------------------------------

class _Store:
    """What Parts needs of a results store: a staging folder, a recorder slot and the file registry."""

    def __init__(self, staging: Path):
        self.staging, self.recorder, self._registry = staging, None, {}


def test_warnings_of_a_part_come_back_when_the_part_is_reused(tmp_path):
    first = RunResult(out_dir=tmp_path, grid=None)
    parts = Parts(_Store(tmp_path), first, key="k")

    def part():
        first.warnings.append("a scene without a cloud mask")
        return 7

    assert parts.run("redline", part) == 7
    second = RunResult(out_dir=tmp_path, grid=None)
    again = Parts(_Store(tmp_path), second, key="k")
    assert again.run("redline", lambda: pytest.fail("a completed part must not run again")) == 7
    assert second.warnings == ["a scene without a cloud mask"]


def test_a_record_half_written_when_the_run_was_killed_is_removed_without_a_warning(tmp_path, caplog):
    from ecoassess.files import RESUME_DIR
    from ecoassess.resume import _records

    first = RunResult(out_dir=tmp_path, grid=None)
    Parts(_Store(tmp_path), first, key="k").run("ei", lambda: 1)
    half = tmp_path / RESUME_DIR / ".0123456789abcdef.pkl.4242.tmp.pkl"
    half.write_bytes(b"\x80\x05half")
    with caplog.at_level("WARNING"):
        assert list(_records(tmp_path)) == ["ei"]
    assert not half.exists() and "cannot be read" not in caplog.text


def _ctx(tmp_path, store, tables):
    from ecoassess.config import parse_config

    (tmp_path / "x.gpkg").write_bytes(b"")   # the schema wants the file to exist; nothing reads it here
    cfg = parse_config({"year": 2024, "study_area": {"path": "x.gpkg", "id_field": "c", "name_field": "n"},
                        "outputs": {"tables": ["gpkg", "csv"], "maps": False}}, base_dir=tmp_path)
    result = RunResult(out_dir=tmp_path / "out", grid=None, tables=dict(tables))
    return RunContext(config=cfg, grid=None, study_area=None, zone_sets={}, inside=None, store=store, timer=None,
                      result=result, inputs=None)


def test_a_run_without_warnings_writes_an_empty_table_with_every_column(tmp_path):
    import pyogrio

    from ecoassess.pipeline import write_alerts
    from ecoassess.store import ResultsStore

    with ResultsStore(tmp_path / "out") as store:
        write_alerts(_ctx(tmp_path, store, {}))
        store.path("manifest.json").write_text("{}", encoding="utf-8")
    table = pd.read_csv(tmp_path / "out" / "tables" / "early_warnings.csv")
    assert table.empty and list(table.columns) == list(ALERT_COLUMNS)
    assert pyogrio.read_info(tmp_path / "out" / "results.gpkg", layer="early_warnings")["features"] == 0


def test_the_pipeline_derives_the_table_from_the_run_s_tables(tmp_path):
    import pyogrio

    from ecoassess.pipeline import write_alerts
    from ecoassess.store import ResultsStore

    with ResultsStore(tmp_path / "out") as store:
        ctx = _ctx(tmp_path, store, {"county_ei": _county_ei(), "redline_patches": _patches()})
        write_alerts(ctx)
        store.path("manifest.json").write_text("{}", encoding="utf-8")
    stored = pyogrio.read_dataframe(tmp_path / "out" / "results.gpkg", layer="early_warnings")
    assert list(zip(stored["rule"], stored["subject_id"])) == [
        ("ei_grade_drop", "A"), ("new_patch_inside_redline", "P1"), ("expanded_patch_inside_redline", "P3")]
    assert stored["level"].tolist() == ["警示"] * 3 and stored["value"].dtype == float
