"""Found by the new-user audit of the county report (issue #22): a run limited by ``--stage`` is not "not
configured"; a missing section says why once; the whole area's row is named in the report's language; HJ 192's
"excluded" group is not a raw key; the English report names land-cover classes in English. Results folders are
built by hand in tmp_path (no run, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyogrio
import yaml

from ecoassess.report.content import build_report
from ecoassess.report.html import render_html
from ecoassess.report.i18n import untranslated
from ecoassess.report.model import Section
from ecoassess.report.results import ResultsFolder

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "ecoassess" / "report"


def _results(tmp_path, tables: dict, extra: dict, run: dict | None = None, name="r",
             without: tuple = ()) -> ResultsFolder:
    folder = tmp_path / name
    folder.mkdir()
    for table_name, df in tables.items():
        pyogrio.write_dataframe(df, folder / "results.gpkg", layer=table_name, driver="GPKG")
    manifest = {"ecoassess_version": "0.1.0",
                "run": {"started_utc": "2026-12-06T08:41:37Z", "ended_utc": "2026-12-06T08:41:56Z", **(run or {})},
                "config": {"given": {"name": "示例区", "year": 2024, "baseline_year": 2023,
                                     "imagery": {"2024": [{"path": "x"}]}, "land_cover": {"2024": {"path": "a.tif"}},
                                     "zones": {"redline": {"path": "r.gpkg"}}}},
                "inputs": [], "packages": {"ecoassess": "0.1.0"}, "warnings": [],
                "extra": {"problems": [], **extra}}
    for key in without:
        manifest["config"]["given"].pop(key)
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return ResultsFolder(folder)


def _section(report, sid) -> Section:
    return next(s for s in report.sections if s.id == sid)


def test_a_run_limited_by_stage_says_so_instead_of_not_configured(tmp_path):
    # `ecoassess run CONFIG --stage network`: the config has imagery, land cover and red lines, but the run
    # computed only the network; the sections must not tell the user to configure what is configured
    results = _results(tmp_path, {}, {"stages": ["network"], "limited_to_stages": ["network"]})
    en = build_report(results, [], "en")
    for sid in ("ei", "rsei", "vegetation", "landcover", "redline"):
        reason = _section(en, sid).missing
        assert "--stage" in reason and "network" in reason, (sid, reason)
        assert "not configured" not in reason and "configured" not in reason.replace("--stage", "")
    zh = build_report(results, [], "zh")
    reason = _section(zh, "landcover").missing
    assert "--stage" in reason and "network" in reason and "未配置" not in reason


def test_an_older_manifest_of_a_limited_run_is_recognised_by_its_command_line(tmp_path):
    results = _results(tmp_path, {}, {"stages": ["network"]},
                       run={"command_line": ["ecoassess", "run", "a.yaml", "--stage", "network", "--out", "R"]})
    assert "--stage" in _section(build_report(results, [], "en"), "redline").missing


def test_a_whole_run_still_says_a_stage_was_not_configured(tmp_path):
    # a whole run (limited_to_stages None) without the network stage: the not-configured reason stays
    results = _results(tmp_path, {}, {"stages": ["vegetation"], "limited_to_stages": None})
    reason = _section(build_report(results, [], "en"), "network").missing
    assert "network stage was not configured" in reason and "--stage" not in reason


def test_a_missing_section_states_its_reason_once_in_the_html(tmp_path):
    results = _results(tmp_path, {}, {"stages": ["network"], "limited_to_stages": ["network"]})
    report = build_report(results, [], "zh")
    redline = _section(report, "redline")
    assert redline.blocks == []  # the renderers show `missing`; a paragraph beside it said it twice
    html = render_html(report, tmp_path / "report.html").read_text(encoding="utf-8")
    start = html.index('<section id="redline"')
    part = html[start:html.index("</section>", start)]
    assert part.count(redline.missing) == 1


def _county_ei(whole_name: str):
    rows = []
    for year in (2023, 2024):
        rows.append({"code": "519901", "year": year, "name": "青岗县", "is_whole_area": False, "ei": 60.0,
                     "ei_before_constraint": 60.0, "constraint_events": 0, "grade": "良"})
        rows.append({"code": "000000", "year": year, "name": whole_name, "is_whole_area": True, "ei": 61.0,
                     "ei_before_constraint": 61.0, "constraint_events": 0, "grade": "良"})
    return pd.DataFrame(rows)


def test_the_whole_area_row_is_named_in_the_reports_language(tmp_path):
    # the run names the whole area in its outputs.lang (全区 or "study area"); the report in its own language
    zh_run = _results(tmp_path, {"county_ei": _county_ei("全区")}, {"stages": ["hj192 ei"]}, name="zh")
    en_run = _results(tmp_path, {"county_ei": _county_ei("study area")}, {"stages": ["hj192 ei"]}, name="en")
    for results in (zh_run, en_run):
        for lang, expected in (("en", "Whole study area"), ("zh", "全区")):
            table = next(t for t in build_report(results, [], lang).tables() if t.id == "ei_counties")
            names = [row[0] for row in table.rows]
            assert names.count(expected) == 2 and names.count("青岗县") == 2, (lang, names)


def _landcover_tables(excluded_km2: float):
    areas = pd.DataFrame({"zone_set": ["study_area"] * 2, "zone_id": ["000000"] * 2, "zone_name": ["全区"] * 2,
                          "year": [2024, 2024], "class_code": [11, 51], "class_name": ["水田", "城镇用地"],
                          "area_km2": [3.0, 1.0]})
    habitat = pd.DataFrame({"zone_set": ["study_area"] * 3, "zone_id": ["000000"] * 3, "year": [2024] * 3,
                            "hj192_group": ["cropland", "construction", "excluded"],
                            "hj192_class": ["paddy", "urban", "excluded"], "area_km2": [3.0, 1.0, excluded_km2]})
    transitions = pd.DataFrame({"zone_set": ["study_area"] * 2, "zone_id": ["000000"] * 2, "from_year": [2023] * 2,
                                "to_year": [2024] * 2, "from_class": [11, 11], "from_name": ["水田", "水田"],
                                "to_class": [11, 51], "to_name": ["水田", "城镇用地"], "area_km2": [2.5, 0.5]})
    return {"landcover_class_areas": areas, "landcover_habitat": habitat, "landcover_transitions": transitions}


LC_EXTRA = {"stages": ["land cover"], "land_cover": {"legends": {"2024": {"name": "cas_lucc"}}}}


def test_hj192_groups_the_standard_does_not_count_are_no_raw_key(tmp_path):
    none = _results(tmp_path, _landcover_tables(0.0), LC_EXTRA, name="none")
    for lang in ("zh", "en"):
        table = next(t for t in build_report(none, [], lang).tables() if t.id == "landcover_hj192")
        assert [row[0] for row in table.rows] == (["耕地", "建设用地"] if lang == "zh" else
                                                  ["Cropland", "Construction land"])
    sea = _results(tmp_path, _landcover_tables(0.7), LC_EXTRA, name="sea")
    table = next(t for t in build_report(sea, [], "zh").tables() if t.id == "landcover_hj192")
    assert table.rows[-1] == ["HJ 192 不计入的类型", 0.7]
    assert all(row[0] != "excluded" for row in table.rows)


def test_the_english_report_names_land_cover_classes_from_the_legend(tmp_path):
    legend = yaml.safe_load((ROOT / "layers" / "cas_lucc.yaml").read_text(encoding="utf-8"))["classes"]
    results = _results(tmp_path, _landcover_tables(0.0), LC_EXTRA)
    tables = {t.id: t for t in build_report(results, [], "en").tables()}
    assert [row[0] for row in tables["landcover_areas"].rows] == [legend[11]["en"], legend[51]["en"]]
    assert tables["landcover_transitions"].rows[0][2:4] == [legend[11]["en"], legend[51]["en"]]
    zh = {t.id: t for t in build_report(results, [], "zh").tables()}
    assert [row[0] for row in zh["landcover_areas"].rows] == ["水田", "城镇用地"]


def test_the_chinese_catalog_translates_the_audit_messages():
    files = [REPORT / "content.py", *sorted((REPORT / "sections").glob("*.py"))]
    assert untranslated("zh", "report", files) == []


def test_a_land_cover_only_run_says_no_imagery_in_the_readers_words_and_gives_the_land_cover_sub_indices(tmp_path):
    # the run's skip reasons are English log text; the Chinese report must not quote them
    skipped = [{"stage": "hj192 ei", "reason": "the EI needs imagery for its vegetation-cover index (NDVI); the run "
                "has land cover only, so biological abundance and land stress are given alone"},
               {"stage": "redline", "reason": "needs imagery for red-line change patches (composites of both "
                "years); the run has none (imagery.<year>)"}]
    parts = pd.DataFrame({"code": ["519902", "519901"], "name": ["柏溪县", "青岗县"], "year": [2024, 2024],
                          "biological_abundance": [49.72, 33.22], "land_stress": [19.88, 29.87]})
    results = _results(tmp_path, {"county_ei_landcover_parts": parts},
                       {"stages": ["land cover"], "skipped_stages": skipped, "limited_to_stages": None},
                       without=("imagery",))
    zh = build_report(results, [], "zh")
    for sid in ("ei", "redline"):
        assert _section(zh, sid).missing == "本次评价未配置遥感影像（配置文件中的 imagery）。"
    table = next(t for t in zh.tables() if t.id == "ei_landcover_parts")
    assert [c.label for c in table.columns] == ["县域", "年份", "生物丰度指数", "土地胁迫指数"]
    assert table.rows == [["青岗县", "2024", 33.22, 29.87], ["柏溪县", "2024", 49.72, 19.88]]
    html = render_html(zh, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "needs imagery" not in html and "the run has" not in html


def test_a_skip_for_another_reason_still_quotes_the_run(tmp_path):
    skipped = [{"stage": "rsei", "reason": "no thermal imagery for 2024 was configured"}]
    results = _results(tmp_path, {}, {"stages": ["vegetation"], "skipped_stages": skipped})
    assert "no thermal imagery for 2024" in _section(build_report(results, [], "en"), "rsei").missing


def test_short_text_cells_are_never_broken_inside_a_value(tmp_path):
    # the PDF had set 青岗县 and 警示 one character per line in narrow columns next to long ones
    from ecoassess.report.model import Column, Report, Table

    table = Table("t", "甲表", [Column("county", "县域"), Column("text", "预警内容"), Column("v", "数值", None, 1)],
                  [["青岗县", "A01 青岗城区空气自动站：PM10 年平均浓度 89 µg/m³，超过限值 70 µg/m³", 1.5],
                   ["柏溪县", None, 2.0]])
    report = Report("zh", "标题", "", "2026-12-06", [Section("s", "一节", [table])])
    html = render_html(report, tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<td class="short">青岗县</td>' in html and '<td class="short">柏溪县</td>' in html
    assert '<td>A01 青岗城区' in html  # a long text may wrap
    assert "td.short { white-space: nowrap; }" in html


def test_red_line_counts_agree_between_the_sentence_and_the_tables(tmp_path):
    # the unit/county summaries count disturbances only (a reduced patch, a false detection not reported again
    # are not); the sentence and the per-activity table counted every ledger row: 8 in the buffer against 7
    units = pd.DataFrame({"unit_id": ["HX-1"], "unit_name": ["甲红线"], "area_m2": [1e7], "patches_n": [1],
                          "patches_area_m2": [6e4], "new_n": [1], "buffer_patches_n": [2], "buffer_area_m2": [3e4],
                          "disturbed_share": [0.006], "not_observable_share": [0.0]})
    patches = pd.DataFrame({
        "patch_id": ["p1", "p2", "p3", "p4", "p5"], "location": ["inside", "buffer", "buffer", "buffer", "inside"],
        "change_type": ["new", "new", "expanded", "reduced", "unchanged"],
        "check_result": [None, None, None, None, "误判"], "reported": [True, True, True, True, False],
        "activity_type": ["mining", "mining", "settlement", "agriculture", "mining"],
        "activity_name": ["采石场", "采石场", "居民点", "农业用地", "采石场"],
        "area_m2": [60000.0, 10000.0, 20000.0, 50000.0, 9000.0]})
    results = _results(tmp_path, {"redline_unit_summary": units, "redline_patches": patches},
                       {"stages": ["redline"]})
    report = build_report(results, [], "en")
    text = " ".join(b.text for b in _section(report, "redline").blocks if hasattr(b, "text"))
    assert "1 human-activity patches were found inside the red lines and 2 in their buffer zone" in text
    assert "A further 2 patches of the ledger" in text
    act = next(t for t in build_report(results, [], "zh").tables() if t.id == "redline_activities")
    rows = {row[0]: row[1:] for row in act.rows}
    # 采石场: p1 inside 6 hm², p2 buffer 1 hm² (p5 is a false detection); 居民点: p3 2 hm²; p4 reduced: no row
    assert rows == {"采石场": [1, 6.0, 1, 1.0], "居民点": [0, 0.0, 1, 2.0]}
    assert sum(r[2] for r in rows.values()) == units["buffer_patches_n"].sum()


def test_a_published_warning_cites_the_standard_not_the_projects_digest():
    from ecoassess.report.warnings import published_source

    # by hand: the reference to STANDARDS.md goes, the standard and the other words stay
    assert published_source("GB 15618-2018 表1 风险筛选值（pH 6.5-7.5；STANDARDS §7.4）") == \
        "GB 15618-2018 表1 风险筛选值（pH 6.5-7.5）"
    assert published_source("HJ 1141-2020 生态保护红线人类干扰监测（STANDARDS §5.1）；变化类型 扩大（STANDARDS §5.2）") == \
        "HJ 1141-2020 生态保护红线人类干扰监测；变化类型 扩大"
    assert published_source("重点生态功能区县域生态环境质量变化分级（STANDARDS §6.1；分级阈值未经核实）") == \
        "重点生态功能区县域生态环境质量变化分级（分级阈值未经核实）"
    assert published_source("HJ 192-2015 grades of EI (STANDARDS §1.7)") == "HJ 192-2015 grades of EI"
    assert published_source("GB 3095-2012 Table 1") == "GB 3095-2012 Table 1"
    from ecoassess.report.i18n import translator
    from ecoassess.report.warnings import load_rules

    for lang in ("zh", "en"):
        _ = translator(lang, "warnings")
        for rule in load_rules()["rules"]:
            assert "STANDARDS" not in published_source(_(rule["source"])), (lang, rule["id"])


def test_short_values_keep_their_line_in_a_word_table_that_must_wrap():
    from ecoassess.files import display_width
    from ecoassess.report.docx import _PAD, _UNIT, TEXT_WIDTH, _column_widths

    row = ["警示", "云台县", "生态保护红线内新增人类活动图斑",
           "新增人类活动图斑 HX-519902-2024-0005（工矿用地，14,400 m²）位于柏溪县龙台山生物多样性维护生态保护红线单元",
           "HJ 1141-2020 生态保护红线人类干扰监测；变化类型 新增"]
    widths = _column_widths(["级别", "县域", "预警事项", "预警内容", "依据"], [row])
    assert abs(sum(widths) - TEXT_WIDTH) <= len(widths)
    # the level and the county on one line (before: 警 / 示, one character per line, beside the long finding)
    for j in (0, 1):
        assert widths[j] >= display_width(row[j]) * _UNIT + _PAD, j
    assert widths[3] > widths[4] > widths[0]  # the longest text gets the most room


def test_a_quantity_never_observed_leaves_out_its_warning_check_not_the_others():
    """A year with no SO2 observation has no SO2 columns in air_station_annual: the run's warnings still check PM2.5
    (before: the whole run failed on the SO2 column the rule names)."""
    import pytest

    from ecoassess.errors import InputError
    from ecoassess.report.warnings import derive_warnings

    annual = pd.DataFrame({"station_id": ["A1"], "name": ["城区站"], "county_code": ["519901"],
                           "county_name": ["青岗县"], "year": [2024], "area_class": ["二类区"],
                           "gb3095": ["GB 3095-2012"], "so2_annual_exceeds": [None],
                           "pm25_annual_ugm3": [58.0], "pm25_annual_limit_ugm3": [35.0],
                           "pm25_annual_exceeds": [True]})
    found = derive_warnings({"air_station_annual": annual}, lang="en", strict=False)
    assert list(found["indicator"]) == ["pm25_annual"] and list(found["value"]) == [58.0]
    with pytest.raises(InputError, match="so2_annual_ugm3"):
        derive_warnings({"air_station_annual": annual}, lang="en")


def test_the_deciding_items_of_a_water_section_are_named_in_words(tmp_path):
    from ecoassess.report.sections.common import Ctx
    from ecoassess.report.sections.network import item_names

    (tmp_path / "manifest.json").write_text(json.dumps({"ecoassess_version": "x"}), encoding="utf-8")
    from ecoassess.report.results import ResultsFolder

    results = ResultsFolder(tmp_path)
    # names from GB 3838-2002 Table 1 (indices/gb3838_2002.yaml)
    assert item_names(Ctx(results, "zh"), "codmn,cod,bod5,tp") == "高锰酸盐指数、化学需氧量、五日生化需氧量、总磷"
    assert item_names(Ctx(results, "en"), "nh3n, do") == "ammonia nitrogen, dissolved oxygen"
    assert item_names(Ctx(results, "zh"), "") is None
