"""The red-line patch ledger (台账) and its follow-up across runs (issue 19 parts 4-5).

Patches are built by hand as rectangles on the China Albers grid (metres), so every area, growth and overlap
below is rectangle arithmetic written beside the assertion.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import openpyxl
import pytest
import shapely
from pyproj import Transformer

from ecoassess.errors import InputError
from ecoassess.grid import china_albers_crs
from ecoassess.redline.ledger import (CSV_NAME, XLSX_NAME, ledger_columns, ledger_spec, mu_m2, read_ledger,
                                      staff_columns, update_ledger, write_ledger)

CRS = china_albers_crs()
X0, Y0 = -100000.0, 3400000.0  # about 103.9°E 32.0°N
STAFF = staff_columns()
ZH = {c["key"]: c["zh"] for c in ledger_spec()["columns"]}


def rect(x, y, w, h):
    return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


def lonlat(x, y):
    lon, lat = Transformer.from_crs(CRS, 4326, always_xy=True).transform(x, y)
    return round(lon, 6), round(lat, 6)


def patch_table(specs) -> gpd.GeoDataFrame:
    """``specs``: (geometry, overrides) → a table with the columns of detect_patches (the agreed schema)."""
    rows, geoms = [], []
    for geom, over in specs:
        lon, lat = lonlat(geom.centroid.x, geom.centroid.y)
        row = dict(area_m2=geom.area, unit_id="HX51-01", unit_name="龙门山水源涵养生态保护红线", location="inside",
                   county_code="510101", county_name="甲县", centroid_lon=lon, centroid_lat=lat, activity_type="03",
                   activity_name="工矿用地", change_type="new", confidence=0.82, evidence="ndvi_loss,bsi_gain,lc:21->51",
                   ndvi_before=0.71, ndvi_after=0.18, fvc_before=0.83, fvc_after=0.07,
                   before_period="2023-05/2023-09", after_period="2024-05/2024-09", before_sensor="Sentinel-2 MSI",
                   after_sensor="Sentinel-2 MSI")
        row.update(over)
        rows.append(row)
        geoms.append(geom)
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=CRS)


# 2024: four patches of county 510101 from north to south, and one buffer patch of county 510102
A, B, C, D = rect(0, 4000, 50, 100), rect(1000, 3000, 100, 100), rect(3000, 2000, 40, 50), rect(5000, 1000, 60, 50)
E = rect(8000, 0, 30, 30)
YEAR1 = [(A, {}), (B, {}), (C, {"activity_type": "01", "activity_name": "农业用地"}), (D, {}),
         (E, {"location": "buffer", "county_code": "510102", "county_name": "乙县", "confidence": 0.55})]


@pytest.fixture
def first(tmp_path):
    ledger = update_ledger(patch_table(YEAR1), year=2024)
    paths = write_ledger(ledger, tmp_path / "2024")
    return ledger, paths


def test_one_mu_is_a_fifteenth_of_a_hectare():
    assert mu_m2() == pytest.approx(666.6666667)  # 10000 / 15


def test_first_run_ids_areas_and_defaults(first):
    ledger, _ = first
    # ids: per county, north to south (A, B, C, D have centroids at y = 4050, 3050, 2025, 1025 m)
    assert ledger["patch_id"].tolist() == ["HX-510101-2024-0001", "HX-510101-2024-0002", "HX-510101-2024-0003",
                                           "HX-510101-2024-0004", "HX-510102-2024-0001"]
    assert ledger["area_m2"].tolist() == [5000.0, 10000.0, 2000.0, 3000.0, 900.0]  # 50x100, 100x100, 40x50, ...
    # 亩 = m² × 15 / 10000: 5000 → 7.5, 10000 → 15, 2000 → 3, 3000 → 4.5, 900 → 1.35
    assert ledger["area_mu"].tolist() == pytest.approx([7.5, 15.0, 3.0, 4.5, 1.35])
    assert ledger["change_type"].tolist() == ["new"] * 5 and ledger["reported"].all()
    assert ledger["check_status"].tolist() == ["未核查"] * 5
    assert ledger[["check_result", "legality", "remarks"]].isna().all().all()
    assert ledger["first_year"].tolist() == [2024] * 5 and ledger["last_detected_year"].tolist() == [2024] * 5
    assert ledger.crs == CRS


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_write_then_read_back_equal(first, kind):
    ledger, paths = first
    back = read_ledger(paths[kind]).table
    attrs = ledger_columns()
    assert back[attrs].to_dict("records") == ledger[attrs].to_dict("records")
    assert list(back.dtypes[attrs]) == list(ledger.dtypes[attrs])
    # outlines in WGS84 to 9 decimals (1e-9° ≈ 0.1 mm): back on the grid within 0.1 mm; a vertex off by 0.1 mm
    # moves a 300 m perimeter's area by at most 300 × 0.0001 = 0.03 m²
    grid = back.to_crs(CRS).geometry
    for g0, g1 in zip(ledger.geometry, grid):
        assert g0.hausdorff_distance(g1) < 1e-4
        assert abs(g0.area - g1.area) < 0.03


def test_excel_ledger_reads_well(first):
    ledger, paths = first
    wb = openpyxl.load_workbook(paths["xlsx"])
    assert wb.sheetnames == ["台账", "几何"] and wb["几何"].sheet_state == "hidden"
    ws = wb["台账"]
    header = [c.value for c in ws[1]]
    assert header[:4] == ["图斑编号", "变化类型", "本期上报", "位置"] and "核查状态" in header and "面积(亩)" in header
    assert ws.freeze_panes == "B2"
    letter = {h: openpyxl.utils.get_column_letter(j) for j, h in enumerate(header, start=1)}
    # widths: CJK characters count twice; the unit name has 13 of them → 26 + 2
    assert ws.column_dimensions[letter["红线单元名称"]].width == 28
    assert ws.column_dimensions[letter["图斑编号"]].width == len("HX-510101-2024-0001") + 2
    assert ws[f"{letter['变化类型']}2"].value == "新增" and ws[f"{letter['本期上报']}2"].value == "是"
    assert ws[f"{letter['位置']}6"].value == "缓冲区"
    assert ws[f"{letter['面积(亩)']}2"].number_format == "0.00"
    lists = {str(dv.sqref): dv.formula1 for dv in ws.data_validations.dataValidation}
    assert lists == {f"{letter['核查状态']}2:{letter['核查状态']}6": '"未核查,核查中,已核查"',
                     f"{letter['核查结果']}2:{letter['核查结果']}6": '"属实,部分属实,误判,无法核实"',
                     f"{letter['是否合法']}2:{letter['是否合法']}6": '"合法,违法,待定"'}
    geo = [[c.value for c in r] for r in wb["几何"].iter_rows()]
    assert geo[0] == ["图斑编号", "几何校验码", "几何(WKT_WGS84)"]
    assert [r[0] for r in geo[1:]] == ledger["patch_id"].tolist()
    assert geo[1][2].startswith("POLYGON ((103.") and len(geo[1][1]) == 16


# -- staff fill the workbook in ----------------------------------------------------------------------------------

FILLED = {  # what staff type, per patch (remarks: a line break, a trailing blank, a number, a date)
    "HX-510101-2024-0001": ("已核查", "属实", "违法", "现场为采石场，已立案（2024-10-12）\n责任人：张三"),
    "HX-510101-2024-0002": ("已核查", "属实", "待定", 42),
    "HX-510101-2024-0003": ("已核查", "误判", None, "季节性耕作，非人类活动 "),
    "HX-510101-2024-0004": ("已核查", "误判", "合法", dt.datetime(2024, 11, 3)),
    "HX-510102-2024-0001": ("核查中", None, None, "   "),
}
STAFF_ORDER = ["HX-510102-2024-0001", "HX-510101-2024-0003", "HX-510101-2024-0001", "HX-510101-2024-0004",
               "HX-510101-2024-0002"]


def fill_in(path, order=STAFF_ORDER, values=FILLED):
    """Staff type their values, sort the rows their own way and leave blank rows between them."""
    wb = openpyxl.load_workbook(path)
    ws = wb["台账"]
    header = [c.value for c in ws[1]]
    rows = {r[0]: list(r) for r in ws.iter_rows(min_row=2, values_only=True)}
    ws.delete_rows(2, ws.max_row)
    out_row = 2
    for k, pid in enumerate(order):
        row = rows[pid]
        for key, v in zip(STAFF, values[pid]):
            row[header.index(ZH[key])] = v
        for j, v in enumerate(row, start=1):
            ws.cell(row=out_row, column=j, value=v)
        out_row += 2 if k % 2 else 1  # a blank row after every second patch
    wb.save(path)


def staff_cells(path) -> dict:
    """``{patch_id: (staff values)}`` as openpyxl reads them from the Excel ledger."""
    ws = openpyxl.load_workbook(path)["台账"]
    header = [c.value for c in ws[1]]
    cols = [header.index(ZH[k]) for k in STAFF]
    return {r[0]: tuple(r[j] for j in cols) for r in ws.iter_rows(min_row=2, values_only=True) if r[0]}


# 2025: A again as it was; B grown by 40 %; C (误判) again unchanged; D (误判) grown; F new; E not detected
B2 = rect(1000, 3000, 100, 140)  # 14000 m² = 10000 × 1.4, containing B
D2 = rect(5000, 1000, 60, 100)  # 6000 m², containing D (3000 m²)
F = rect(20000, 500, 50, 50)
YEAR2 = [(A, {}), (B2, {"after_period": "2025-05/2025-09"}), (C, {"activity_type": "01", "activity_name": "农业用地"}),
         (D2, {}), (F, {"activity_type": "07", "activity_name": "交通设施"})]


@pytest.fixture
def second(first, tmp_path):
    _, paths = first
    fill_in(paths["xlsx"])
    previous = read_ledger(paths["xlsx"])
    ledger = update_ledger(patch_table(YEAR2), previous, year=2025)
    return paths, ledger, write_ledger(ledger, tmp_path / "2025")


def test_second_run_keeps_staff_values_ids_and_order(second):
    paths, ledger, new_paths = second
    # staff's row order kept (blank rows gone), the new patch added at the end
    assert ledger["patch_id"].tolist() == STAFF_ORDER + ["HX-510101-2025-0001"]
    by_id = ledger.set_index("patch_id")
    for pid, typed in FILLED.items():
        assert tuple(by_id.loc[pid, STAFF]) == typed
    # ... byte for byte in the workbook of the second run (same text, same cell types)
    assert {k: v for k, v in staff_cells(new_paths["xlsx"]).items() if k in FILLED} == FILLED
    assert staff_cells(new_paths["xlsx"])["HX-510101-2025-0001"] == ("未核查", None, None, None)
    # ... and after a third run with no detections at all
    third = update_ledger(patch_table([(A, {})]).iloc[:0], read_ledger(new_paths["xlsx"]),
                          year=2026)
    assert {pid: tuple(third.set_index("patch_id").loc[pid, STAFF]) for pid in FILLED} == FILLED


def test_second_run_marks_grown_patches_and_reports_only_changes(second):
    _, ledger, _ = second
    t = ledger.set_index("patch_id")
    a, b, c, d = (t.loc[f"HX-510101-2024-000{i}"] for i in (1, 2, 3, 4))
    e, f = t.loc["HX-510102-2024-0001"], t.loc["HX-510101-2025-0001"]
    # B: 14000 m² vs 10000 m²: +4000 m² = +40 % (> 20 % and > 1000 m²) → 扩大, new extent, 14000 × 15 / 10000 亩
    assert (b.change_type, b.reported, b.area_m2, b.change_area_m2) == ("expanded", True, 14000.0, 4000.0)
    assert b.area_mu == pytest.approx(21.0) and b.after_period == "2025-05/2025-09"
    assert (b.centroid_lon, b.centroid_lat) == lonlat(X0 + 1050, Y0 + 3070)  # centre of the 100 x 140 m rectangle
    assert b.geometry.equals(B2) and b.review_note is None
    # A detected again as it was: 无变化, not reported, the row as staff checked it
    assert (a.change_type, a.reported, a.change_area_m2, a.last_detected_year) == ("unchanged", False, 0.0, 2025)
    assert a.area_m2 == 5000.0 and a.first_year == 2024
    # C: marked 误判, back unchanged → not reported again
    assert (c.change_type, c.reported, c.review_note) == ("unchanged", False, None)
    # D: marked 误判, grown 3000 → 6000 m² (+100 %, +3000 m²) → reported again, with a note
    assert (d.change_type, d.reported, d.area_m2) == ("expanded", True, 6000.0)
    assert d.review_note == "上期核查结果为误判，本期再次变化（扩大），请复核"
    # E not detected: kept as it was
    assert (e.change_type, e.reported, e.last_detected_year, e.area_m2) == ("unchanged", False, 2024, 900.0)
    # F new: the county's first id of 2025
    assert (f.change_type, f.reported, f.first_year, f.area_m2) == ("new", True, 2025, 2500.0)


def test_second_run_from_a_gbk_csv(first, tmp_path):
    """The CSV ledger opened and saved by Excel on Chinese Windows: GBK text, staff values in Chinese."""
    _, paths = first
    text = paths["csv"].read_text(encoding="utf-8-sig")
    head, *lines = text.split("\n")
    pid = "HX-510101-2024-0003"
    i = next(k for k, line in enumerate(lines) if line.startswith(pid))
    lines[i] = lines[i].replace(",未核查,,,", ",已核查,误判,合法,平山乡村民反映为秋收后裸地")
    gbk = tmp_path / "台账_2024.csv"
    gbk.write_bytes("\n".join([head, *lines]).replace("\n", "\r\n").encode("gbk"))
    previous = read_ledger(gbk)
    row = previous.table.set_index("patch_id").loc[pid]
    assert tuple(row[STAFF]) == ("已核查", "误判", "合法", "平山乡村民反映为秋收后裸地")
    ledger = update_ledger(patch_table(YEAR2), previous, year=2025)
    again = ledger.set_index("patch_id").loc[pid]
    assert tuple(again[STAFF]) == ("已核查", "误判", "合法", "平山乡村民反映为秋收后裸地")
    assert (again.change_type, again.reported) == ("unchanged", False)


# -- matching and growth thresholds ------------------------------------------------------------------------------

def _one(old_geom, new_geom, **over):
    prev = update_ledger(patch_table([(old_geom, {})]), year=2024)
    return update_ledger(patch_table([(new_geom, over)]), prev, year=2025)


def test_growth_must_pass_both_thresholds():
    # 100x100 → 100x115: +1500 m² (> 1000) but +15 % (≤ 20 %) → 无变化
    assert _one(rect(0, 0, 100, 100), rect(0, 0, 100, 115))["change_type"].tolist() == ["unchanged"]
    # 40x50 → 40x62.5: +25 % but +500 m² (≤ 1000) → 无变化
    assert _one(rect(0, 0, 40, 50), rect(0, 0, 40, 62.5))["change_type"].tolist() == ["unchanged"]
    # 40x50 → 40x80: +60 % and +1200 m² → 扩大
    out = _one(rect(0, 0, 40, 50), rect(0, 0, 40, 80))
    assert out["change_type"].tolist() == ["expanded"] and out["change_area_m2"].tolist() == [1200.0]


def test_matching_needs_half_of_the_smaller_patch():
    # shifted 60 m east: 40x100 = 4000 m² shared, 0.4 of the smaller (10000 m²) < 0.5 → a new patch
    out = _one(rect(0, 0, 100, 100), rect(60, 0, 100, 100))
    assert out["patch_id"].tolist() == ["HX-510101-2024-0001", "HX-510101-2025-0001"]
    assert out["change_type"].tolist() == ["unchanged", "new"]
    # shifted 40 m: 6000 m² shared (0.6) → the same patch; union 140x100 = 14000 m², +40 % → 扩大
    out = _one(rect(0, 0, 100, 100), rect(40, 0, 100, 100))
    assert out["patch_id"].tolist() == ["HX-510101-2024-0001"]
    assert out["change_type"].tolist() == ["expanded"] and out["area_m2"].tolist() == [14000.0]


def test_a_reduced_detection_keeps_the_known_extent():
    out = _one(rect(0, 0, 100, 100), rect(0, 0, 100, 60), change_type="reduced", fvc_after=0.6)
    row = out.iloc[0]
    assert (row.change_type, row.reported, row.area_m2, row.change_area_m2) == ("reduced", True, 10000.0, 6000.0)
    assert row.fvc_after == 0.6 and row.geometry.equals(rect(0, 0, 100, 100))


def test_ids_continue_after_those_of_the_same_year():
    prev = update_ledger(patch_table([(rect(0, 0, 50, 50), {})]), year=2025)
    out = update_ledger(patch_table([(rect(0, 0, 50, 50), {}), (rect(900, 0, 50, 50), {})]), prev, year=2025)
    assert out["patch_id"].tolist() == ["HX-510101-2025-0001", "HX-510101-2025-0002"]


def test_unit_id_names_the_patch_without_a_county():
    out = update_ledger(patch_table([(rect(0, 0, 50, 50), {"county_code": None, "county_name": None,
                                                           "unit_id": "SC 07-2"})]), year=2024)
    assert out["patch_id"].tolist() == ["HX-SC_07_2-2024-0001"]


# -- bad ledgers: one message naming the row or column -----------------------------------------------------------

def _edit(path, fn):
    wb = openpyxl.load_workbook(path)
    fn(wb)
    wb.save(path)


def test_unknown_column_is_named(first):
    _, paths = first

    def add(wb):
        ws = wb["台账"]
        ws.cell(row=1, column=ws.max_column + 1, value="核查人")
        ws.cell(row=3, column=ws.max_column, value="李四")
    _edit(paths["xlsx"], add)
    with pytest.raises(InputError, match=r"unknown column '核查人' \(column AG\)") as err:
        read_ledger(paths["xlsx"])
    assert "备注" in str(err.value) and str(paths["xlsx"]) in str(err.value)


def test_duplicate_ids_name_the_rows(first):
    _, paths = first

    def copy_row(wb):
        ws = wb["台账"]
        for j, c in enumerate(ws[3], start=1):
            ws.cell(row=9, column=j, value=c.value)
    _edit(paths["xlsx"], copy_row)
    with pytest.raises(InputError, match=r"duplicate patch ids: HX-510101-2024-0002 in rows 3, 9"):
        read_ledger(paths["xlsx"])


def test_edited_outline_names_the_row(first):
    _, paths = first
    fill_in(paths["xlsx"])  # patch 0004 is now on row 6 of 台账 (E 2, C 3, blank, A 5, D 6)

    def move(wb):
        ws = wb["几何"]
        for r in range(2, ws.max_row + 1):
            if ws.cell(row=r, column=1).value == "HX-510101-2024-0004":
                ws.cell(row=r, column=3).value = ws.cell(row=r, column=3).value.replace("103.", "103.1", 1)
    _edit(paths["xlsx"], move)
    with pytest.raises(InputError, match=r"row 6 \(patch HX-510101-2024-0004\): its id or its outline \(sheet 几何 "
                                         r"row 5\) was edited"):
        read_ledger(paths["xlsx"])


def test_edited_outline_in_the_csv_names_the_row(first):
    _, paths = first
    lines = paths["csv"].read_text(encoding="utf-8-sig").split("\n")
    lines[3] = lines[3].replace("POLYGON ((103.", "POLYGON ((104.", 1)  # row 4 of the file
    paths["csv"].write_text("\n".join(lines), encoding="utf-8-sig")
    with pytest.raises(InputError, match=r"row 4 \(patch HX-510101-2024-0003\): its id or its outline \(row 4\) "
                                         "was edited"):
        read_ledger(paths["csv"])


def test_an_edited_id_in_the_csv_names_the_row(first):
    """The audit's case: in the CSV the id and the outline sit in one row, so only the checksum over both tells."""
    _, paths = first
    lines = paths["csv"].read_text(encoding="utf-8-sig").split("\n")
    lines[3] = lines[3].replace("HX-510101-2024-0003", "HX-510101-2024-0099", 1)
    paths["csv"].write_text("\n".join(lines), encoding="utf-8-sig")
    with pytest.raises(InputError, match=r"row 4 \(patch HX-510101-2024-0099\): its id or its outline"):
        read_ledger(paths["csv"])


def test_an_edited_id_names_the_row(first):
    _, paths = first
    _edit(paths["xlsx"], lambda wb: setattr(wb["台账"]["A4"], "value", "HX-510101-2024-0099"))
    with pytest.raises(InputError, match=r"row 4: patch HX-510101-2024-0099 has no outline"):
        read_ledger(paths["xlsx"])


def test_a_row_without_id_is_named(first):
    _, paths = first
    _edit(paths["xlsx"], lambda wb: setattr(wb["台账"]["A3"], "value", None))
    with pytest.raises(InputError, match=r"row 3 has values but no 图斑编号"):
        read_ledger(paths["xlsx"])


def test_text_in_a_number_column_is_named(first):
    _, paths = first
    col = openpyxl.utils.get_column_letter(ledger_columns().index("area_m2") + 1)
    _edit(paths["xlsx"], lambda wb: setattr(wb["台账"][f"{col}2"], "value", "约5000"))
    with pytest.raises(InputError, match=r"row 2: 面积\(平方米\) is '约5000'.*expected: a number"):
        read_ledger(paths["xlsx"])


def test_a_deleted_column_is_named(first):
    _, paths = first
    _edit(paths["xlsx"], lambda wb: wb["台账"].delete_cols(ledger_columns().index("evidence") + 1))
    with pytest.raises(InputError, match=r"判读依据 are missing"):
        read_ledger(paths["xlsx"])


def test_a_csv_saved_from_the_workbook_is_refused_with_advice(first, tmp_path):
    _, paths = first
    import csv

    saved = tmp_path / "台账.csv"
    ws = openpyxl.load_workbook(paths["xlsx"])["台账"]
    with saved.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(ws.iter_rows(values_only=True))
    with pytest.raises(InputError, match=r"no outline columns .* the Excel ledger itself"):
        read_ledger(saved)


def test_same_ledger_same_bytes(first, tmp_path):
    ledger, paths = first
    again = write_ledger(ledger, tmp_path / "again")
    for kind in ("xlsx", "csv"):
        assert again[kind].read_bytes() == paths[kind].read_bytes()


def test_not_a_ledger_file(tmp_path):
    p = tmp_path / "ledger.gpkg"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="redline_ledger.xlsx or redline_ledger.csv"):
        read_ledger(p)


def test_the_ledger_definitions_are_not_a_land_cover_legend():
    from ecoassess.legends import available_legends

    assert "redline_ledger" not in available_legends() and "cas_lucc" in available_legends()
    assert XLSX_NAME == "redline_ledger.xlsx" and CSV_NAME == "redline_ledger.csv"
