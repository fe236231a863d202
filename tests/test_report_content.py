"""What the report says (issue #22, part 4): counts, missing sections and their reasons, the warnings first, the
same tables in both languages, and a complete Chinese catalog. Results folders are built by hand in tmp_path."""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import pandas as pd
import pyogrio
import pytest

from ecoassess.report.content import build_report, grade_counts
from ecoassess.report.i18n import untranslated
from ecoassess.report.model import Figure, Paragraph, Section, Table
from ecoassess.report.results import ResultsFolder

REPORT = Path(__file__).resolve().parents[1] / "ecoassess" / "report"
CODES = ["519901", "519902", "519903", "519904", "519905"]
NAMES = ["青岗县", "柏溪县", "云台县", "雁湖县", "石门县"]


def _county_ei():
    rows = []
    for year, grades, eis in ((2023, ["良", "良", "良", "良", "良"], [60, 65, 62, 66, 58]),
                              (2024, ["良", "良", "一般", "优", "良"], [58.0, 65.5, 54.9, 75.2, 58.0])):
        for code, name, grade, ei in zip(CODES, NAMES, grades, eis):
            rows.append({"code": code, "year": year, "name": name, "is_whole_area": False,
                         "biological_abundance": 40.0, "vegetation_cover": 80.0, "water_network_density": 30.0,
                         "land_stress": 20.0, "pollution_load": 1.0, "ei_before_constraint": float(ei),
                         "constraint_events": 0, "ei": float(ei), "grade": grade})
        rows.append({"code": "000000", "year": year, "name": "全区", "is_whole_area": True, "ei": 62.0,
                     "grade": "良"})
    return pd.DataFrame(rows)


def _county_ei_change():
    return pd.DataFrame({
        "code": CODES + ["000000"], "years": ["2023-2024"] * 6,
        "name": NAMES + ["全区"],
        "ei_baseline": [60, 65, 62, 66, 58, 62.0], "ei": [58.0, 65.5, 54.9, 75.2, 58.0, 62.0],
        "delta_ei": [-2.0, 0.5, -7.1, 9.2, 0.0, 0.0], "delta_ei_before_constraint": [-2.0, 0.5, -7.1, 9.2, 0, 0],
        "change_class": ["略微变差", "无明显变化", "明显变差", "显著变好", "无明显变化", "无明显变化"],
        "fluctuation_level": ["波动", "稳定", "较大波动", "剧烈波动", "稳定", "稳定"],
        "function_type": ["水土保持", None, None, None, None, None],
        "function_zone_change_class": ["轻微变差", None, None, None, None, None],
        "function_zone_change_verified": [False] * 6})



def _redline():
    units = pd.DataFrame({"unit_id": ["HX-1", "HX-2"], "unit_name": ["甲红线", "乙红线"],
                          "area_m2": [10_000_000.0, 5_000_000.0], "patches_n": [2, 0],
                          "patches_area_m2": [96234.0, 0.0], "new_n": [2, 0], "buffer_patches_n": [1, 0],
                          "buffer_area_m2": [10000.0, 0.0], "disturbed_share": [0.0096234, 0.0],
                          "not_observable_share": [0.02, 0.0]})
    patches = pd.DataFrame({"patch_id": ["p1", "p2", "p3"], "location": ["inside", "inside", "buffer"],
                            "activity_name": ["采石场", "采石场", "交通设施"],
                            "area_m2": [60000.0, 36234.0, 10000.0]})
    return {"redline_unit_summary": units, "redline_patches": patches}


def _results(tmp_path, tables: dict, extra: dict | None = None, name="full") -> ResultsFolder:
    folder = tmp_path / name
    folder.mkdir()
    for table_name, df in tables.items():
        pyogrio.write_dataframe(df, folder / "results.gpkg", layer=table_name, driver="GPKG")
    manifest = {"ecoassess_version": "0.1.0", "run": {"started_utc": "2026-12-06T08:41:37Z",
                                                        "ended_utc": "2026-12-06T08:41:56Z"},
                "config": {"given": {"name": "示例区", "year": 2024, "baseline_year": 2023,
                                     "imagery": {"2024": [{"path": "x"}]}}},
                "catalogs": {"indices/hj192_2015.yaml": "2026.11-1"},
                "inputs": [{"path": "/data/a/x.tif", "size_bytes": 2_000_000, "sha256": "ab" * 32},
                           {"path": "/data/b/y.csv", "size_bytes": 10, "sha256": "cd" * 32}],
                "packages": {"python": "3.11.7", "ecoassess": "0.1.0"}, "warnings": [],
                "extra": {"stages": ["vegetation", "hj192 ei", "redline"], "problems": [], **(extra or {})}}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return ResultsFolder(folder)


@pytest.fixture
def full(tmp_path):
    return _results(tmp_path, {"county_ei": _county_ei(), "county_ei_change": _county_ei_change(),
                               **_redline()})


def _section(report, section_id) -> Section:
    return next(b for b in report.walk() if isinstance(b, Section) and b.id == section_id)


def _text(section) -> str:
    return " ".join(b.text for b in section.blocks if isinstance(b, Paragraph))


def test_the_summary_counts_counties_per_grade_of_the_assessment_year(full):
    # 2024 by hand: 优 519904; 良 519901, 519902, 519905; 一般 519903 — the whole area's row (良) is not a county
    assert grade_counts(full.table("county_ei"), 2024) == {"优": 1, "良": 3, "一般": 1}
    summary = _section(build_report(full, [], "en"), "summary")
    text = _text(summary)
    # grades and classes in English from the zh/en pairs of indices/hj192_2015.yaml
    assert "In 2024" in text and "of the 5 counties" in text and "excellent 1, good 3, fair 1" in text
    assert "The EI of the whole study area is 62.00 (good)" in text
    # changed: three counties, most negative first, with ΔEI and class
    assert "the EI of 3 of 5 counties changed: 云台县 ΔEI -7.10 (markedly worse), 青岗县 ΔEI -2.00 (slightly worse), " \
           "雁湖县 ΔEI 9.20 (significantly better)" in text
    zh = _text(_section(build_report(full, [], "zh"), "summary"))
    assert "5个县域" in zh and "“优”1个、“良”3个、“一般”1个" in zh


def test_the_summary_opens_with_the_early_warnings_most_serious_first(full):
    # by hand from the tables of `full` and indices/early_warning.yaml: 云台县 良 → 一般 (EI grade fell, 警示);
    # 云台县 ΔEI −7.1 明显变差 (关注); 青岗县, a 水土保持 function-zone county, 轻微变差 (关注). The red-line
    # patches of `full` have no change type (an older run): that rule is left out, not an error
    report = build_report(full, [], "en")
    assert report.sections[0].id == "summary"
    first = report.sections[0].blocks[0]
    assert isinstance(first, Section) and first.id == "summary_warnings" and first.missing is None
    assert "3 early warnings of 3 kinds" in first.blocks[0].text
    by_kind = first.blocks[1]
    assert isinstance(by_kind, Table) and report.tables()[0] is by_kind  # table 1 of the report
    assert by_kind.rows == [["Warning", "EI grade fell", 1, "云台县"], ["Watch", "EI markedly worse", 1, "云台县"],
                            ["Watch", "Function-zone county quality fell", 1, "青岗县"]]
    detail = next(t for t in report.tables() if t.id == "early_warnings")
    assert [c.key for c in detail.columns] == ["level", "county_name", "rule_title", "message", "source"]
    assert [row[:3] for row in detail.rows] == [
        ["Warning", "云台县", "EI grade fell"], ["Watch", "云台县", "EI markedly worse"],
        ["Watch", "青岗县", "Function-zone county quality fell"]]
    assert [s.id for s in report.sections].index("warnings") > [s.id for s in report.sections].index("network")
    zh = build_report(full, [], "zh").tables()[0]
    assert zh.rows[0][:2] == ["警示", "EI 等级下降"]


def test_no_warnings_is_said_in_words_and_no_table_is_empty(tmp_path):
    one_year = _county_ei().query("year == 2023")  # no grade can fall within one year
    results = _results(tmp_path, {"county_ei": one_year})
    report = build_report(results, [], "en")
    warnings = _section(report, "summary_warnings")
    assert not any(isinstance(b, Table) for b in warnings.blocks)
    assert "No early warning was raised" in _text(warnings)
    assert all(t.rows for t in report.tables())


def test_a_missing_table_gives_a_section_that_says_why(tmp_path):
    extra = {"stages": ["vegetation", "hj192 ei", "redline", "rsei"],
             "skipped_stages": [{"stage": "rsei", "reason": "no thermal imagery for 2024 was configured"}],
             "problems": ["redline: the red-line layer has no unit_id field"]}
    results = _results(tmp_path, {"county_ei": _county_ei()}, extra)
    report = build_report(results, [], "en")
    rsei, redline, network = (_section(report, s) for s in ("rsei", "redline", "network"))
    assert "skipped the rsei stage: no thermal imagery for 2024 was configured" in rsei.missing
    assert "redline stage failed" in redline.missing and "no unit_id field" in redline.missing
    assert "network stage was not configured" in network.missing
    vegetation = _section(report, "vegetation")  # the stage ran but wrote no table
    assert "did not write the table county_vegetation" in vegetation.missing
    for s in (rsei, redline, network, vegetation):
        assert s.blocks == [] and s.missing  # the reason (shown once by each renderer), never an empty table
    # the EI stage ran, but the config gives no function zones: that is the reason, not "a table was not written"
    assert "No function zones were configured (zones.function_zones" in _section(report, "function_zones").missing
    assert "ei" not in {s.id for s in report.sections if s.missing}
    zh = build_report(results, [], "zh")
    assert "跳过了“rsei”环节" in _section(zh, "rsei").missing
    assert "未配置监测网络" in _section(zh, "network").missing


def test_a_run_without_an_ei_says_so_in_the_summary_and_in_its_section(tmp_path):
    results = _results(tmp_path, _redline(), {"stages": ["vegetation"]})
    report = build_report(results, [], "en")
    assert "HJ 192-2015 ecological index was not configured" in _section(report, "ei").missing
    assert "No ecological index was computed" in _text(_section(report, "summary"))


def test_every_table_is_rectangular_with_short_unique_ids(full):
    for lang in ("zh", "en"):
        tables = build_report(full, [], lang).tables()
        assert tables
        for t in tables:
            assert t.rows and all(len(row) == len(t.columns) for row in t.rows), t.id
            assert len(t.id) <= 31
        assert len({t.id for t in tables}) == len(tables)


def test_zh_and_en_reports_have_the_same_tables_and_values(full):
    zh, en = build_report(full, [], "zh"), build_report(full, [], "en")
    assert [t.id for t in zh.tables()] == [t.id for t in en.tables()]
    assert [s.id for s in zh.sections] == [s.id for s in en.sections]
    for a, b in zip(zh.tables(), en.tables()):
        assert [(c.key, c.unit if c.unit in (None, "%", "km²", "hm²", "MB") else "") for c in a.columns] == \
               [(c.key, c.unit if c.unit in (None, "%", "km²", "hm²", "MB") else "") for c in b.columns]
        assert [c.digits for c in a.columns] == [c.digits for c in b.columns]
        assert len(a.rows) == len(b.rows)
        for ra, rb in zip(a.rows, b.rows):
            for va, vb in zip(ra, rb):
                if isinstance(va, numbers.Number):
                    assert va == vb, a.id
                else:
                    assert type(va) is type(vb), a.id


def test_red_line_areas_are_converted_by_hand(full):
    report = build_report(full, [], "en")
    units = next(t for t in report.tables() if t.id == "redline_units")
    keys = [c.key for c in units.columns]
    row = units.rows[0]
    assert row[keys.index("area_m2")] == pytest.approx(10.0)                # 10 000 000 m² = 10 km²
    assert row[keys.index("patches_area_m2")] == pytest.approx(9.6234)       # 96 234 m² = 9.6234 hm²
    assert row[keys.index("disturbed_share")] == pytest.approx(0.96234)      # share → %
    activities = next(t for t in report.tables() if t.id == "redline_activities")
    assert activities.rows[0][:3] == ["mining and quarrying", 2, pytest.approx(9.6234)]  # redline_activity_types
    assert activities.rows[1][:5] == ["交通设施", 0, 0, 1, pytest.approx(1.0)]
    assert "2 human-activity patches were found inside the red lines and 1 in their buffer" in \
           _text(_section(report, "redline"))


def test_the_land_cover_map_and_its_accuracy_are_named(tmp_path):
    areas = pd.DataFrame({"zone_set": ["study_area"] * 4, "zone_id": ["all"] * 4, "zone_name": ["全区"] * 4,
                          "year": [2023, 2023, 2024, 2024], "class_code": [11, 21, 11, 21],
                          "class_name": ["水田", "有林地", "水田", "有林地"], "area_km2": [30.0, 70.0, 25.0, 75.0]})
    maps = {"2023": {"file": "lucc_2023.tif", "legend": "cas_lucc", "classified": False},
            "2024": {"file": "landcover_2024.tif", "legend": "cas_lucc", "classified": True, "model": "rf",
                     "overall_accuracy": 0.873, "overall_accuracy_ci95": [0.85, 0.896], "validation_samples": 300}}
    results = _results(tmp_path, {"landcover_class_areas": areas}, {"land_cover": {"maps": maps}})
    report = build_report(results, [], "en")
    text = _text(_section(report, "landcover"))
    assert "2023: the land-cover product lucc_2023.tif (legend cas_lucc); it is a product map, and no accuracy " \
           "was assessed in this run." in text
    assert "overall accuracy 87.3 % (95 % confidence interval 85.0–89.6 %), from 300 validation samples" in text
    table = next(t for t in report.tables() if t.id == "landcover_areas")
    assert table.rows == [["paddy field", 30.0, 30.0, 25.0, 25.0], ["forest", 70.0, 70.0, 75.0, 75.0]]


def test_figures_go_to_their_sections_by_id_and_unknown_ones_to_an_appendix(tmp_path):
    vegetation = pd.DataFrame({"code": CODES[:2], "year": [2024, 2024], "name": NAMES[:2], "ndvi_mean": [0.7, 0.6],
                               "fvc_mean": [0.55, 0.5], "ndvi_valid_km2": [80.0, 90.0], "n_scenes": [3, 3]})
    full = _results(tmp_path, {"county_ei": _county_ei(), "county_vegetation": vegetation, **_redline()})
    figs = [Figure(i, i, tmp_path / f"{i}.png") for i in
            ("ei_change_2023_2024", "ei_2024", "ndvi_2024", "fvc_2024", "redline_units", "network_gaps", "odd_1")]
    report = build_report(full, figs, "en")
    where = {f.id: s.id for s in report.sections for f in s.blocks if isinstance(f, Figure)}
    assert where == {"ei_change_2023_2024": "ei", "ei_2024": "ei", "ndvi_2024": "vegetation",
                     "fvc_2024": "vegetation", "redline_units": "redline",
                     "network_gaps": "appendix",  # its section has no results here: the figure is not lost
                     "odd_1": "appendix"}
    assert [f.id for f in report.figures()][-2:] == ["network_gaps", "odd_1"]


def test_title_page_names_the_area_year_counties_and_version(full):
    report = build_report(full, [], "zh")
    assert report.title == "示例区2024年生态环境状况报告"
    assert "青岗县、柏溪县" in report.subtitle and "2023年" in report.subtitle and "0.1.0" in report.subtitle
    assert report.date == "2026-12-06"
    assert build_report(full, [], "en").title == "Ecological status report of 示例区, 2024"
    manifest = json.loads((full.path / "manifest.json").read_text(encoding="utf-8"))
    manifest["config"]["given"]["name"] = "川中示例区 (sample)"
    (full.path / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    assert build_report(ResultsFolder(full.path), [], "zh").title == "川中示例区 (sample) 2024年生态环境状况报告"


def test_the_chinese_catalog_translates_every_message():
    files = [REPORT / "content.py", *sorted((REPORT / "sections").glob("*.py"))]
    assert untranslated("zh", "report", files) == []


def test_a_year_without_imagery_is_named_and_a_column_an_older_run_lacks_is_left_out(tmp_path):
    vegetation = pd.DataFrame({"code": CODES[:2], "year": [2023, 2023], "name": NAMES[:2], "ndvi_mean": [0.7, 0.6],
                               "fvc_mean": [0.55, 0.5], "ndvi_valid_km2": [80.0, 90.0]})  # no n_scenes
    report = build_report(_results(tmp_path, {"county_vegetation": vegetation}), [], "en")
    section = _section(report, "vegetation")
    assert section.missing is None
    assert "No imagery for 2024 was configured: vegetation is shown for 2023 only." in _text(section)
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert [c.key for c in table.columns] == ["name", "year", "ndvi_mean", "fvc_mean", "ndvi_valid_km2"]
    assert table.rows == [["青岗县", "2023", 0.7, 55.0, 80.0], ["柏溪县", "2023", 0.6, 50.0, 90.0]]
