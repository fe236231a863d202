"""The red-line stage in a run (issue 19): ``ecoassess redline`` on the sample, accuracy against its planted changes,
the second run with a filled-in ledger, nothing written half, summaries and validate's messages.

The sample is shared (conftest, read-only) and the stage runs once on it per module (the command line, redline
stage only), into the module's own folder;
the hard cases it plants are described in ecoassess/sample/changes.py.
"""

from __future__ import annotations

import shutil

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner

from ecoassess.cli import main
from ecoassess.config import load_config, parse_config, read_config_file
from ecoassess.errors import EcoassessError, InputError
from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.redline.accuracy import merge_parts, patch_accuracy
from ecoassess.redline.checks import redline_problems, redline_warnings
from ecoassess.redline.ledger import read_ledger, write_ledger
from ecoassess.redline.summary import county_summary, unit_summary
from ecoassess.stages.redline import window_slices

TYPES = ["agriculture", "settlement", "industry", "mining", "energy", "tourism", "transport", "water", "other"]


@pytest.fixture(scope="module")
def sample(shared_sample):
    """The sample's folder (seed 0, scale 1; conftest, read-only)."""
    return shared_sample.parent


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The module's folder for the runs' results."""
    return tmp_path_factory.mktemp("redline")


@pytest.fixture(scope="module")
def first(sample, work):
    out = work / "first"
    res = CliRunner().invoke(main, ["redline", str(sample / "assessment.yaml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    (work / "first.summary").write_text(res.stdout, encoding="utf-8")   # the run summary, for a test
    return out


def layer(out, name):
    return gpd.read_file(out / "results.gpkg", layer=name)


@pytest.fixture(scope="module")
def accuracy(sample, first):
    cfg = load_config(sample / "assessment.yaml")
    manifest = pd.read_json(first / "manifest.json", typ="series")
    info = manifest["extra"]["redline"]["detection"]
    return patch_accuracy(layer(first, "redline_patches"), gpd.read_file(cfg.change_truth.path),
                          gpd.read_file(cfg.zones["redline"].path), mmu_m2=info["mmu_m2"], buffer_m=info["buffer_m"],
                          cell_m2=info["cell_area_m2"], seasonal=gpd.read_file(sample / "truth" / "seasonal_only.gpkg"))


# -- the run's outputs ---------------------------------------------------------------------------------------------

def test_outputs_of_the_redline_command(first):
    layers = {n for n, _ in pyogrio.list_layers(first / "results.gpkg")}
    assert {"redline_patches", "redline_unit_summary", "redline_county_summary"} <= layers
    # only the red-line stage ran (and nothing it needs)
    assert not any(n.startswith(("county_vegetation", "county_rsei", "county_ei")) for n in layers)
    ledger = read_ledger(first / "redline" / "redline_ledger.xlsx").table
    gpkg = layer(first, "redline_patches")
    assert list(ledger["patch_id"]) == list(gpkg["patch_id"]) and len(ledger) >= 8
    chips = sorted(p.stem for p in (first / "redline" / "chips").glob("*.png"))
    assert chips == sorted(gpkg["patch_id"])
    manifest = pd.read_json(first / "manifest.json", typ="series")
    red = manifest["extra"]["redline"]
    assert (red["before_year"], red["after_year"]) == (2023, 2024)
    assert red["detection"]["mmu_m2"] == 9 * 900.0        # the default: 9 cells of 30 m
    assert red["detection"]["buffer_m"] == 500.0
    assert red["activity_table_version"] and red["ledger_version"]
    outputs = [o["path"] for o in manifest["outputs"]]
    assert "redline/redline_ledger.xlsx" in outputs and any(k.startswith("redline/chips/") for k in outputs)
    # the run summary names the files staff open: the ledger workbook and the chips
    summary = (first.parent / "first.summary").read_text(encoding="utf-8").splitlines()
    assert f"  file   redline_ledger: {first / 'redline' / 'redline_ledger.xlsx'}" in summary, summary
    assert f"  file   redline_chips: {first / 'redline' / 'chips'}" in summary


def test_excel_ledger_opens_with_chinese_headers_and_staff_lists(first):
    wb = openpyxl.load_workbook(first / "redline" / "redline_ledger.xlsx")
    ws = wb["台账"]
    headers = [c.value for c in ws[1]]
    assert headers[:4] == ["图斑编号", "变化类型", "本期上报", "位置"]
    assert {"核查状态", "核查结果", "是否合法", "备注"} <= set(headers)
    col = headers.index("核查状态") + 1
    assert {ws.cell(row=r, column=col).value for r in range(2, ws.max_row + 1)} == {"未核查"}
    assert wb["几何"].sheet_state == "hidden"
    assert any("误判" in dv.formula1 for dv in ws.data_validations.dataValidation)


def test_recall_precision_and_no_seasonal_patch(accuracy):
    s = accuracy.summary
    print(accuracy.text())
    assert s["relevant_n"] >= 7
    assert s["recall"] >= 0.9 and s["precision"] >= 0.9
    assert s["seasonal_fields_n"] == 1 and s["seasonal_patches_n"] == 0
    changes = accuracy.changes.set_index("change_type")
    assert bool(changes.loc["small_quarry", "matched"])          # 12 cells, above the 9-cell MMU
    assert not bool(changes.loc["tiny_quarry", "relevant"])      # 6 cells, below it
    assert not bool(changes.loc["tiny_quarry", "matched"])


def test_straddling_quarry_is_split_into_inside_and_buffer(accuracy, first):
    row = accuracy.changes.set_index("change_type").loc["quarry_straddling"]
    assert row["matched"]
    patch = accuracy.patches[accuracy.patches["change_id"] == row["change_id"]].iloc[0]
    ledger = layer(first, "redline_patches").iloc[patch["rows"]]
    assert sorted(ledger["location"]) == ["buffer", "inside"]
    whole = shapely.union_all(ledger.geometry.values).area       # the whole patch: whole 30 m cells
    assert whole / 900.0 == pytest.approx(round(whole / 900.0), abs=1e-6)
    assert abs(ledger["area_m2"].sum() - whole) < 900.0           # parts add up to the patch within a cell
    share_detected = patch["inside_m2"] / patch["area_m2"]
    share_truth = row["truth_inside_m2"] / (row["truth_inside_m2"] + row["truth_buffer_m2"])
    assert 0.2 < share_truth < 0.8                               # really straddling
    assert abs(share_detected - share_truth) <= 0.15


def test_cloudy_quarry_is_drawn_only_where_observed(accuracy, sample):
    from rasterio import features

    from ecoassess.pipeline import build_grid, read_study_area
    from ecoassess.stages.base import RunInputs

    cloudy = accuracy.changes[accuracy.changes["cloud_share_after"] > 0].iloc[0]
    assert cloudy["matched"] and cloudy["relevant"]
    patch = accuracy.patches[accuracy.patches["change_id"] == cloudy["change_id"]]
    assert len(patch) == 1
    cfg = load_config(sample / "assessment.yaml")
    grid = build_grid(cfg, read_study_area(cfg))
    red = RunInputs(cfg, grid).composite(2024, "median").bands["red"].values
    unobserved = (~np.isfinite(red)).astype("uint8")
    blocked = shapely.union_all([shapely.geometry.shape(g) for g, _ in features.shapes(
        unobserved, mask=unobserved > 0, transform=grid.transform)])
    truth = gpd.read_file(cfg.change_truth.path).to_crs(grid.crs.to_wkt())
    quarry = truth[truth["change_id"] == cloudy["change_id"]].geometry.iloc[0]
    # the cloud is there (≈ cloud_share_after of the quarry is never observed in 2024) ...
    assert quarry.intersection(blocked).area >= 0.25 * quarry.area
    # ... and the patch lies only where both dates were observed, no larger than the observable part
    assert patch.geometry.iloc[0].intersection(blocked).area < 1e-6
    assert patch["area_m2"].iloc[0] <= cloudy["observable_m2"]


def test_unit_summary_adds_up_with_the_ledger(first):
    ledger = layer(first, "redline_patches")
    units = layer(first, "redline_unit_summary")
    for u in units.itertuples():
        mine = ledger[(ledger["unit_id"] == u.unit_id) & (ledger["location"] == "inside")
                      & ledger["change_type"].isin(["new", "expanded", "unchanged"])]
        assert u.patches_n == len(mine)
        assert u.patches_area_m2 == pytest.approx(mine["area_m2"].sum())
        assert u.disturbed_share == pytest.approx(mine["area_m2"].sum() / u.area_m2)
        assert u.observed_m2 + u.not_observable_m2 == pytest.approx(u.area_m2)
    # the unit under persistent cloud reports area not observable
    assert units["not_observable_m2"].max() > 0
    counties = layer(first, "redline_county_summary")
    assert counties["area_m2"].sum() == pytest.approx(units["area_m2"].sum(), rel=1e-6)
    assert counties["not_observable_m2"].sum() == pytest.approx(units["not_observable_m2"].sum(), abs=900.0)


def test_a_warning_per_new_patch_inside_a_unit(first):
    ledger = layer(first, "redline_patches")
    new_inside = ledger[(ledger["change_type"] == "new") & (ledger["location"] == "inside")]
    warnings = pd.read_csv(first / "tables" / "early_warnings.csv", dtype=str)
    mine = warnings[warnings["rule"] == "new_patch_inside_redline"]
    assert sorted(mine["subject_id"]) == sorted(new_inside["patch_id"]) and len(mine) >= 3
    assert set(mine["stage"]) == {"redline"}


# -- the second run: last year's ledger as staff filled it in --------------------------------------------------

@pytest.fixture(scope="module")
def second(sample, first, work):
    """Last year's ledger: the first run's, with staff values typed in and one patch smaller than now (it grew)."""
    prev = read_ledger(first / "redline" / "redline_ledger.xlsx").table.to_crs(china_albers_crs().to_wkt())
    grown = int(np.flatnonzero(prev["area_m2"].to_numpy() > 30000)[0])
    small = prev.geometry.iloc[grown].buffer(-45.0, join_style="mitre")   # 1.5 cells off every side
    prev.loc[prev.index[grown], "geometry"] = small
    prev.loc[prev.index[grown], "area_m2"] = small.area
    prev.loc[prev.index[grown], "area_mu"] = small.area / 666.6666666666666   # 1 亩 = 10000/15 m²
    false_i = [i for i in range(len(prev)) if prev.iloc[i]["location"] == "inside" and i != grown][-1]
    staff = {0: ("已核查", "属实", "违法", "2024-10-08 现场核实"), 1: ("核查中", None, "待定", "0012"),
             false_i: ("已核查", "误判", None, "山体阴影")}
    for i, (status, result, legal, remark) in staff.items():
        for key, v in zip(("check_status", "check_result", "legality", "remarks"), (status, result, legal, remark)):
            prev.loc[prev.index[i], key] = v
    folder = work / "last_year"
    folder.mkdir()
    write_ledger(prev, folder)
    out = work / "second"
    res = CliRunner().invoke(main, ["-q", "redline", str(sample / "assessment.yaml"), "--out", str(out),
                                    "--ledger", str(folder / "redline_ledger.xlsx")])
    assert res.exit_code == 0, res.output
    return prev, grown, staff, read_ledger(out / "redline" / "redline_ledger.xlsx").table, out, false_i


def test_second_run_keeps_ids_order_and_staff_values(second):
    prev, _, staff, now, _, _ = second
    assert list(now["patch_id"][: len(prev)]) == list(prev["patch_id"])
    assert len(now) == len(prev)            # the same imagery: no new patch
    for i, values in staff.items():
        got = tuple(now.iloc[i][k] for k in ("check_status", "check_result", "legality", "remarks"))
        assert got == values
    assert now.iloc[1]["remarks"] == "0012"  # typed text stays text


def test_second_run_marks_the_grown_patch_expanded_and_reports_only_changes(second):
    prev, grown, staff, now, out, false_i = second
    assert now.iloc[grown]["change_type"] == "expanded" and bool(now.iloc[grown]["reported"])
    assert now.iloc[grown]["patch_id"] == prev.iloc[grown]["patch_id"]
    assert now.iloc[grown]["area_m2"] > prev.iloc[grown]["area_m2"] * 1.2
    # the same dates again: a restored patch (减少) is detected as reduced again and so reported again (ledger.py);
    # every other known patch is 无变化 and not reported
    others = [i for i in range(len(prev)) if i != grown and prev.iloc[i]["change_type"] != "reduced"]
    assert len(others) >= 8
    assert set(now.iloc[others]["change_type"]) == {"unchanged"}
    assert not now.iloc[others]["reported"].any()
    # no new patch: no new-patch warning; the grown patch, when inside its unit, is the one warning (扩大). The
    # table is there also when empty: "no warning", not "not computed"
    warnings = pd.read_csv(out / "tables" / "early_warnings.csv", dtype=str)
    inside = now.iloc[grown]["location"] == "inside"
    assert list(warnings["subject_id"]) == ([now.iloc[grown]["patch_id"]] if inside else [])
    assert set(warnings["rule"]) <= {"expanded_patch_inside_redline"}
    # the patch staff marked 误判 is not counted as disturbance
    units = layer(out, "redline_unit_summary").set_index("unit_id")
    false_row = now.iloc[false_i]
    assert units.loc[false_row["unit_id"], "false_detection_n"] == 1


def test_a_failed_run_leaves_no_partial_ledger(sample, first, tmp_path, monkeypatch):
    import ecoassess.redline.chips as chips
    from ecoassess.pipeline import run

    out = tmp_path / "results"
    shutil.copytree(first, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise InputError("disk image reader failed", path="chips")
    monkeypatch.setattr(chips, "write_chips", broken)
    cfg = load_config(sample / "assessment.yaml")
    with pytest.raises(EcoassessError, match="disk image reader failed"):
        run(cfg, out, stages=["redline"], quiet=True)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before       # the earlier results, ledger included, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]   # no staging, no .incomplete left


def test_window_too_large_is_refused_with_the_numbers(sample, tmp_path):
    from ecoassess.pipeline import run

    raw = read_config_file(sample / "assessment.yaml")
    raw["redline"] = {"max_cells": 1000}
    cfg = parse_config(raw, base_dir=sample)
    with pytest.raises(EcoassessError, match=r"redline.max_cells = 1,000"):
        run(cfg, tmp_path / "out", stages=["redline"], quiet=True)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -- validate ------------------------------------------------------------------------------------------------------

def _config(sample, tmp_path, redline=None, units=None, **top):
    raw = read_config_file(sample / "assessment.yaml")
    if redline is not None:
        raw["redline"] = redline
    if units is not None:
        path = tmp_path / "units.gpkg"
        units.to_file(path, layer="redline")
        raw["zones"]["redline"]["path"] = str(path)
    raw.update(top)
    return parse_config(raw, base_dir=sample)


def test_units_without_ids_and_duplicated_ids_are_named(sample, tmp_path):
    units = gpd.read_file(sample / "vectors" / "redline.gpkg")
    units.loc[1, "unit_id"] = None
    units.loc[3, "unit_id"] = units.loc[0, "unit_id"]
    problems = redline_problems(_config(sample, tmp_path, units=units))
    text = "\n".join(problems)
    assert "1 unit(s)" in text and "have no id in 'unit_id' (feature(s) 2)" in text
    assert f"unit id '{units.loc[0, 'unit_id']}' occurs 2 times" in text and "features 1, 4" in text


def test_overlapping_units_are_refused_and_slivers_only_warned(sample, tmp_path):
    units = gpd.read_file(sample / "vectors" / "redline.gpkg")
    albers = china_albers_crs().to_wkt()
    a = units.to_crs(albers)
    g0 = a.geometry.iloc[0]
    x0, y0, x1, y1 = g0.bounds
    cx, cy = g0.representative_point().x, g0.representative_point().y
    # a unit that takes a 200 m × 200 m square out of unit 1's interior: overlap 40 000 m²
    square = shapely.box(cx - 100, cy - 100, cx + 100, cy + 100)
    assert g0.contains(square)
    b = a.copy()
    b.loc[1, "geometry"] = shapely.union(a.geometry.iloc[1], square)
    problems = redline_problems(_config(sample, tmp_path, units=b.to_crs(units.crs)))
    overlap = [p for p in problems if "overlap" in p]
    assert len(overlap) == 1 and "overlap by 40,000 m²" in overlap[0]
    assert f"'{units.loc[0, 'unit_id']}'" in overlap[0] and f"'{units.loc[1, 'unit_id']}'" in overlap[0]
    # a 10 m × 10 m sliver (100 m² < one 900 m² cell): a warning, not a problem
    c = a.copy()
    c.loc[1, "geometry"] = shapely.union(a.geometry.iloc[1], shapely.box(cx, cy, cx + 10, cy + 10))
    cfg = _config(sample, tmp_path, units=c.to_crs(units.crs))
    assert not [p for p in redline_problems(cfg) if "overlap" in p]
    warned = redline_warnings(cfg)
    assert len(warned) == 1 and "overlap by 100 m²" in warned[0]


def test_before_year_without_imagery_and_mmu_below_a_cell(sample, tmp_path):
    problems = redline_problems(_config(sample, tmp_path, redline={"before_year": 2020}))
    assert len(problems) == 1 and "no imagery for year(s) [2020]" in problems[0]
    problems = redline_problems(_config(sample, tmp_path, redline={"mmu_m2": 500}))
    assert problems == ["redline.mmu_m2: 500 m² is below one grid cell (30 m × 30 m = 900 m²); expected at least "
                        "one cell (default: 9 cells = 8100 m²)"]
    assert redline_problems(_config(sample, tmp_path, redline={"mmu_m2": 900})) == []


def test_a_ledger_that_does_not_read_names_the_row(sample, first, tmp_path):
    text = (first / "redline" / "redline_ledger.csv").read_text(encoding="utf-8-sig").splitlines()
    bad = tmp_path / "ledger.csv"
    bad.write_text("\n".join(text + [text[1]]) + "\n", encoding="utf-8-sig")   # a copied row: a duplicate id
    problems = redline_problems(_config(sample, tmp_path, redline={"ledger": str(bad)}))
    assert len(problems) == 1 and problems[0].startswith("redline.ledger:")
    assert "duplicate patch ids" in problems[0] and "rows" in problems[0]


def test_the_redline_command_says_why_it_cannot_run(sample_copy, tmp_path):
    import yaml

    sample = sample_copy.parent  # a config is written beside the sample: the module's copy
    raw = read_config_file(sample / "assessment.yaml")
    raw["redline"] = {"mmu_m2": 100}
    cfg = sample / "bad_mmu.yaml"
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    res = CliRunner().invoke(main, ["validate", str(cfg)])
    assert res.exit_code == 1 and "redline.mmu_m2: 100 m² is below one grid cell" in res.output
    raw.pop("redline")
    raw.pop("baseline_year")
    raw["imagery"].pop("2023", None)
    raw["imagery"].pop(2023, None)
    raw["thermal"].pop("2023", None)
    raw["thermal"].pop(2023, None)
    raw["land_cover"].pop("2023", None)
    raw["land_cover"].pop(2023, None)
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    res = CliRunner().invoke(main, ["redline", str(cfg), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "no before year: set baseline_year or redline.before_year" in res.output
    assert "Traceback" not in res.output


# -- by hand -------------------------------------------------------------------------------------------------------

def test_window_slices_by_hand():
    from affine import Affine

    grid = AnalysisGrid(china_albers_crs(), Affine(30.0, 0.0, 0.0, 0.0, -30.0, 300.0), 10, 10)
    # x 45 - 30 = 15 → col floor(15/30) = 0; 95 + 30 = 125 → ceil(125/30) = 5
    # y: top 200 + 30 = 230 → row floor((300 - 230)/30) = 2; bottom 100 - 30 = 70 → ceil((300 - 70)/30) = 8
    assert window_slices(grid, (45, 100, 95, 200), 30.0) == (slice(2, 8), slice(0, 5))
    # clipped to the grid
    assert window_slices(grid, (-500, -500, 1000, 1000), 0.0) == (slice(0, 10), slice(0, 10))
    with pytest.raises(InputError, match="outside the analysis grid"):
        window_slices(grid, (1000, 1000, 2000, 2000), 0.0)


def _ledger(rows):
    cols = ["patch_id", "unit_id", "location", "county_code", "change_type", "activity_type", "area_m2",
            "check_result", "reported"]
    return pd.DataFrame(rows, columns=cols)


def test_summaries_by_hand():
    ledger = _ledger([
        ("A", "U1", "inside", "510001", "new", "mining", 900.0, None, True),
        ("B", "U1", "inside", "510001", "unchanged", "settlement", 1800.0, None, False),
        ("C", "U1", "inside", "510001", "unchanged", "mining", 2700.0, "误判", False),   # staff: false detection
        ("D", "U1", "buffer", "510001", "new", "mining", 450.0, None, True),
        ("E", "U1", "inside", "510001", "reduced", "agriculture", 600.0, None, True),
        ("F", "U2", "inside", "510002", "expanded", "transport", 300.0, None, True),
    ])
    units = pd.DataFrame({"unit_id": ["U1", "U2"], "unit_name": ["一号", "二号"], "area_m2": [100000.0, 50000.0],
                          "observed_m2": [90000.0, 50000.0], "not_observable_m2": [10000.0, 0.0],
                          "not_observable_share": [0.1, 0.0]})
    u = unit_summary(ledger, units, TYPES).set_index("unit_id")
    # U1: disturbance = A (new 900) + B (known 1800); C is 误判 and not reported again; E is restoration
    assert (u.loc["U1", "patches_n"], u.loc["U1", "patches_area_m2"]) == (2, 2700.0)
    assert (u.loc["U1", "new_n"], u.loc["U1", "new_area_m2"], u.loc["U1", "known_area_m2"]) == (1, 900.0, 1800.0)
    assert (u.loc["U1", "reduced_n"], u.loc["U1", "reduced_area_m2"], u.loc["U1", "false_detection_n"]) == (1, 600.0, 1)
    assert (u.loc["U1", "buffer_patches_n"], u.loc["U1", "buffer_area_m2"]) == (1, 450.0)
    assert u.loc["U1", "disturbed_share"] == pytest.approx(2700.0 / 100000.0)         # 0.027
    assert (u.loc["U1", "mining_n"], u.loc["U1", "mining_area_m2"]) == (1, 900.0)      # C is not counted
    assert (u.loc["U1", "settlement_area_m2"], u.loc["U1", "agriculture_n"]) == (1800.0, 0)
    assert u.loc["U2", "disturbed_share"] == pytest.approx(300.0 / 50000.0)           # 0.006
    assert (u.loc["U2", "expanded_n"], u.loc["U2", "transport_area_m2"]) == (1, 300.0)
    assert u.loc["U1", "not_observable_share"] == 0.1
    # counties: 510001 holds all of U1 and half of U2, 510002 the other half of U2
    pieces = pd.DataFrame({"county_code": ["510001", "510001", "510002"], "county_name": ["甲县", "甲县", "乙县"],
                           "unit_id": ["U1", "U2", "U2"], "area_m2": [100000.0, 25000.0, 25000.0],
                           "observed_m2": [90000.0, 25000.0, 25000.0], "not_observable_m2": [10000.0, 0.0, 0.0]})
    c = county_summary(ledger, pieces, TYPES).set_index("county_code")
    assert (c.loc["510001", "units_n"], c.loc["510001", "area_m2"]) == (2, 125000.0)
    assert c.loc["510001", "not_observable_share"] == pytest.approx(10000.0 / 125000.0)  # 0.08
    assert c.loc["510001", "disturbed_share"] == pytest.approx(2700.0 / 125000.0)       # 0.0216
    assert c.loc["510002", "disturbed_share"] == pytest.approx(300.0 / 25000.0)         # 0.012


def test_accuracy_by_hand():
    crs = china_albers_crs().to_wkt()
    units = gpd.GeoDataFrame({"unit_id": ["U"]}, geometry=[shapely.box(-1000, -1000, 50, 1000)], crs=crs)
    # truth 1: 100 × 100 at the origin; truth 2: 60 × 60 (3600 m² = the MMU); truth 3: 20 × 20, below it
    truth = gpd.GeoDataFrame({"change_id": ["T1", "T2", "T3"], "change_type": ["a", "b", "c"]},
                             geometry=[shapely.box(0, 0, 100, 100), shapely.box(200, 200, 260, 260),
                                       shapely.box(-300, 0, -280, 20)], crs=crs)
    # patch A = 100 × 50 over T1 (IoU 5000 / 10000 = 0.5), cut at the unit edge x = 50 into two ledger rows;
    # patch C = 10 × 10 in T2's middle (IoU 100 / 3600 = 0.03, but its centroid lies in T2); patch B matches nothing
    rows = [(shapely.box(0, 0, 50, 50), "inside", 0.1), (shapely.box(50, 0, 100, 50), "buffer", 0.1),
            (shapely.box(225, 225, 235, 235), "buffer", 0.2), (shapely.box(300, 0, 320, 20), "buffer", 0.3)]
    ledger = gpd.GeoDataFrame({"location": [r[1] for r in rows], "area_m2": [r[0].area for r in rows],
                               "ndvi_before": [0.8] * 4, "ndvi_after": [0.2] * 4,
                               "confidence": [r[2] for r in rows]}, geometry=[r[0] for r in rows], crs=crs)
    merged = merge_parts(ledger)
    assert len(merged) == 3 and sorted(merged["area_m2"]) == [100.0, 400.0, 5000.0]
    seasonal = gpd.GeoDataFrame(geometry=[shapely.box(310, 10, 400, 100)], crs=crs)
    acc = patch_accuracy(ledger, truth, units, mmu_m2=3600.0, buffer_m=500.0, cell_m2=100.0, seasonal=seasonal)
    s = acc.summary
    assert (s["relevant_n"], s["matched_n"], s["recall"]) == (2, 2, 1.0)       # T3 < MMU is not relevant
    assert (s["patches_n"], s["true_patches_n"]) == (3, 2)
    assert s["precision"] == pytest.approx(2 / 3)
    t = acc.changes.set_index("change_id")
    assert t.loc["T1", "iou"] == pytest.approx(0.5)
    assert t.loc["T1", "area_error"] == pytest.approx((5000 - 10000) / 10000)   # −0.5
    assert (t.loc["T1", "truth_inside_m2"], t.loc["T1", "truth_buffer_m2"]) == (5000.0, 5000.0)
    assert (t.loc["T1", "detected_inside_m2"], t.loc["T1", "detected_buffer_m2"]) == (2500.0, 2500.0)
    # total area error: (5000 + 100) / (10000 + 3600) − 1
    assert s["area_error_total"] == pytest.approx(5100 / 13600 - 1)
    assert s["seasonal_patches_n"] == 1                                          # B touches the field
