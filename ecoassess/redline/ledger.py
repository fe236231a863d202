"""The red-line patch ledger (台账) and its follow-up from one run to the next (issue 19 parts 4-5).

A ledger is the patch table of :func:`ecoassess.redline.detect.detect_patches` (STANDARDS §5.2 "Recommended patch
record") with a stable ``patch_id``, the area in 亩, the run's change type and the columns staff fill in (核查状态,
核查结果, 是否合法, 备注). Its columns, Chinese headers, staff vocabularies and thresholds are data:
``layers/redline_ledger.yaml``.

Follow-up (:func:`update_ledger`): last year's ledger, as staff filled it in, is given to the next run.

- Every ledger row is kept, in the order of the file staff gave (their sorting is theirs), with every staff value
  exactly as typed (text, numbers, dates; nothing stripped or re-coded). New patches are added at the end.
- A detection is the same patch as a ledger patch when at least ``match_min_overlap`` (0.5) of the smaller of the
  two lies inside the other; pairs are taken one to one, largest IoU first.
- A matched patch whose extent (the detection, or ledger patch ∪ detection when the detection leaves part of the
  patch out) is larger than its ledger ``area_m2`` by more than 20 % and 1000 m² is 扩大 (expanded): it takes the
  new extent and the detection's values; ``change_area_m2`` = new area − ledger area. A matched detection that ``detect_patches`` calls "reduced"
  makes the patch 减少 (its known extent kept). Any other matched patch, and a ledger patch not detected again,
  is 无变化: the row stays as it was (extent and values staff checked), only ``last_detected_year`` moves.
- ``reported`` (本期上报) is true for this run's findings (新增 / 扩大 / 减少); so a patch staff marked 误判 is not
  reported again unless it changes again, and then ``review_note`` (复核提示) says it was marked 误判.

Geometries through Excel: the Excel ledger keeps each patch's outline as WKT (WGS84, 9 decimals ≈ 0.1 mm) on a hidden
sheet ``几何`` keyed by patch id, beside the first 16 hex digits of the SHA-256 of that text; the CSV has both as its
last columns. The ledger is therefore complete in one file (staff mail the workbook, not a folder), any GIS reads
the CSV's WKT, sorting or filtering the 台账 sheet cannot detach an outline from its row, and an outline longer than
Excel's 32767 characters per cell is split over several cells. An edited outline no longer matches its checksum and
is refused, naming the row.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError
from ecoassess.files import atomic_path
from ecoassess.readers import code_text, read_table

log = logging.getLogger(__name__)

XLSX_NAME = "redline_ledger.xlsx"
CSV_NAME = "redline_ledger.csv"
#: the columns of the patch table ``detect_patches`` returns (the agreed schema), besides ``geometry``
PATCH_COLUMNS = ("area_m2", "unit_id", "unit_name", "location", "county_code", "county_name", "centroid_lon",
                 "centroid_lat", "activity_type", "activity_name", "change_type", "confidence", "evidence",
                 "ndvi_before", "ndvi_after", "fvc_before", "fvc_after", "before_period", "after_period",
                 "before_sensor", "after_sensor")
#: Excel holds at most 32767 characters in a cell: longer outlines are split over cells of this size
_WKT_CELL = 32000
#: parts of a ledger patch outside its new detection smaller than this share of it are slivers, not ground left
_SLIVER_SHARE = 0.001


@lru_cache(maxsize=1)
def ledger_spec() -> dict:
    """``layers/redline_ledger.yaml``, parsed."""
    return load_yaml(data_path("layers", "redline_ledger.yaml"))


def mu_m2() -> float:
    """Square metres in one 亩: 10000/15 = 666.67 (1 公顷 = 15 亩; see layers/redline_ledger.yaml)."""
    return 10000.0 / ledger_spec()["mu_per_hectare"]


def _columns() -> list[dict]:
    return ledger_spec()["columns"]


def ledger_columns() -> list[str]:
    """English keys of the ledger's columns, in the order written (the geometry columns not included)."""
    return [c["key"] for c in _columns()]


def staff_columns() -> list[str]:
    return list(ledger_spec()["staff_columns"])


def _labels(kind: str) -> dict:
    return ledger_spec()["labels"][kind]


@dataclass
class Ledger:
    """A ledger read from a file: ``table`` (English keys, EPSG:4326, the file's row order), the file, and the
    sheet/file row of each table row (for messages)."""

    table: gpd.GeoDataFrame
    path: Path
    rows: list[int]


# -- the follow-up ----------------------------------------------------------------------------------------------

def update_ledger(patches: gpd.GeoDataFrame, previous=None, *, year: int,
                  match_min_overlap: float | None = None, growth_min_percent: float | None = None,
                  growth_min_m2: float | None = None) -> gpd.GeoDataFrame:
    """This run's ledger: ``previous`` (a :class:`Ledger`, a ledger GeoDataFrame or a path; None the first year)
    carried forward and ``patches`` (the table of ``detect_patches``, equal-area CRS) matched into it.

    Returns a GeoDataFrame in the patches' CRS with the columns of :func:`ledger_columns`; the thresholds default
    to ``layers/redline_ledger.yaml``."""
    spec = ledger_spec()
    overlap_min = spec["match_min_overlap"] if match_min_overlap is None else match_min_overlap
    grow_pct = spec["growth_min_percent"] if growth_min_percent is None else growth_min_percent
    grow_m2 = spec["growth_min_m2"] if growth_min_m2 is None else growth_min_m2
    det = _check_patches(patches)
    crs = det.crs
    if previous is None:
        prev = _empty_ledger(crs)
    else:
        if isinstance(previous, (str, Path)):
            previous = read_ledger(previous)
        prev = previous.table if isinstance(previous, Ledger) else previous
        _check_unique_ids(prev, getattr(previous, "path", None), getattr(previous, "rows", None))
        prev = prev.to_crs(crs)
    pairs = match_patches(prev.geometry.values, det.geometry.values, overlap_min)
    by_old = dict(pairs)
    false_label = spec["false_detection"]

    rows = []
    for i in range(len(prev)):
        old = prev.iloc[i]
        row = {k: old.get(k) for k in ledger_columns()}
        row["geometry"] = old.geometry
        row.update(change_type="unchanged", reported=False, change_area_m2=0.0, review_note=None)
        j = by_old.get(i)
        if j is not None:
            new = det.iloc[j]
            row["last_detected_year"] = int(year)
            extent, extent_m2 = _new_extent(old.geometry, new.geometry, float(new["area_m2"]))
            growth_m2 = extent_m2 - float(old["area_m2"])
            if new["change_type"] == "reduced":
                row.update(_detection_values(new, keep_extent=True), change_type="reduced", reported=True,
                           change_area_m2=float(new["area_m2"]))
            elif growth_m2 > grow_m2 and growth_m2 > float(old["area_m2"]) * grow_pct / 100.0:
                row.update(_detection_values(new, keep_extent=False), change_type="expanded", reported=True,
                           change_area_m2=growth_m2, area_m2=extent_m2, geometry=extent)
                row.update(_centroid_lonlat(extent, crs))
            if row["reported"] and _text(old.get("check_result")) == false_label:
                label = _labels("change_type")[row["change_type"]]
                row["review_note"] = f"上期核查结果为{false_label}，本期再次变化（{label}），请复核"
        rows.append(row)

    matched_new = {j for _, j in pairs}
    fresh = det.iloc[[j for j in range(len(det)) if j not in matched_new]]
    fresh = fresh.assign(_key=[_id_key(r) for _, r in fresh.iterrows()])
    fresh = fresh.sort_values(["_key", "centroid_lat", "centroid_lon", "area_m2"], ascending=[True, False, True, False],
                              kind="mergesort")
    next_seq: dict[str, int] = {}
    for _, new in fresh.iterrows():
        stem = f"{spec['id_prefix']}-{new['_key']}-{int(year)}-"
        if stem not in next_seq:
            taken = [int(m.group(1)) for pid in prev.get("patch_id", []) if isinstance(pid, str)
                     for m in [re.fullmatch(re.escape(stem) + r"(\d+)", pid)] if m]
            next_seq[stem] = max(taken, default=0) + 1
        row = {k: None for k in ledger_columns()}
        row.update(_detection_values(new, keep_extent=False))
        row.update(patch_id=f"{stem}{next_seq[stem]:04d}", change_type=str(new["change_type"]), reported=True,
                   change_area_m2=float(new["area_m2"]), first_year=int(year), last_detected_year=int(year),
                   geometry=new.geometry)
        for key, staff in ledger_spec()["staff_columns"].items():
            row[key] = staff.get("default")
        next_seq[stem] += 1
        rows.append(row)

    out = gpd.GeoDataFrame(rows, columns=[*ledger_columns(), "geometry"], geometry="geometry", crs=crs)
    out["area_mu"] = out["area_m2"].astype(float) / mu_m2()
    return _typed(out)


def match_patches(old, new, min_overlap: float) -> list[tuple[int, int]]:
    """One-to-one pairs ``(i_old, j_new)`` of geometries (same equal-area CRS) of which at least ``min_overlap`` of
    the smaller lies inside the other; candidates taken largest intersection-over-union first."""
    old, new = np.asarray(old), np.asarray(new)
    if not len(old) or not len(new):
        return []
    tree = shapely.STRtree(old)
    j_idx, i_idx = tree.query(new, predicate="intersects")
    candidates = []
    for i, j in zip(i_idx.tolist(), j_idx.tolist()):
        inter = shapely.intersection(old[i], new[j]).area
        smaller = min(old[i].area, new[j].area)
        if smaller > 0 and inter / smaller >= min_overlap:
            candidates.append((-inter / shapely.union(old[i], new[j]).area, i, j))
    pairs, used_old, used_new = [], set(), set()
    for _, i, j in sorted(candidates):
        if i not in used_old and j not in used_new:
            pairs.append((i, j))
            used_old.add(i)
            used_new.add(j)
    return sorted(pairs)


def _new_extent(old, new, new_area_m2: float):
    """(outline, area in m²) of a matched patch now: the detection's when it covers the ledger patch (all but
    slivers under 0.1 % of it: the outline's trip through WGS84 text), else the union of the two (a patch that
    moved keeps the ground it covered), with its polygon area."""
    if shapely.difference(old, new).area <= _SLIVER_SHARE * old.area:
        return new, new_area_m2
    union = shapely.union(old, new)
    return union, float(union.area)


def _detection_values(new, *, keep_extent: bool) -> dict:
    """The ledger values a detection brings; with ``keep_extent`` not its area, centroid and outline."""
    skip = {"area_m2", "centroid_lon", "centroid_lat"} if keep_extent else set()
    return {k: new[k] for k in PATCH_COLUMNS if k not in skip and k != "change_type"}


def _centroid_lonlat(geom, crs) -> dict:
    c = gpd.GeoSeries([geom.centroid], crs=crs).to_crs(4326).iloc[0]
    return {"centroid_lon": round(c.x, 6), "centroid_lat": round(c.y, 6)}


def _id_key(row) -> str:
    """The county code, else the red-line unit id, of a patch id (characters other than letters, digits, CJK and _
    replaced by _, so that the id's dashes stay separators)."""
    key = code_text(row.get("county_code")) or code_text(row.get("unit_id")) or "NA"
    return re.sub(r"[^0-9A-Za-z_\u4e00-\u9fff]", "_", key)


def _check_patches(patches) -> gpd.GeoDataFrame:
    if not isinstance(patches, gpd.GeoDataFrame):
        raise InputError("the patch table is not a GeoDataFrame", field="patches",
                         expected="the table of detect_patches")
    missing = [c for c in PATCH_COLUMNS if c not in patches.columns]
    if missing:
        raise InputError(f"the patch table lacks the column(s) {', '.join(missing)}", field="patches",
                         expected=f"the columns of detect_patches: {', '.join(PATCH_COLUMNS)}")
    if patches.crs is None or not patches.crs.is_projected:
        raise InputError(f"the patch table's CRS is {patches.crs}", field="patches",
                         expected="the analysis grid's equal-area CRS (areas and overlaps are computed on it)")
    bad = sorted(set(patches["change_type"].dropna()) - set(_labels("change_type")) - {"unchanged"})
    if bad:
        raise InputError(f"the patch table has change_type {', '.join(map(str, bad))}", field="change_type",
                         expected="new, expanded or reduced")
    return patches.reset_index(drop=True)


def _check_unique_ids(table, path=None, rows=None) -> None:
    ids = table["patch_id"].tolist()
    seen: dict = {}
    for n, pid in enumerate(ids):
        seen.setdefault(pid, []).append(rows[n] if rows else n + 1)
    dup = {pid: r for pid, r in seen.items() if len(r) > 1}
    if dup:
        text = "; ".join(f"{pid} in rows {', '.join(map(str, r))}" for pid, r in dup.items())
        raise InputError(f"duplicate patch ids: {text}", path=path, field="图斑编号",
                         expected="each patch once; delete the copied rows")


def _empty_ledger(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({k: [] for k in ledger_columns()}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def _text(value):
    return code_text(value)


def _typed(out: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The ledger's column types: text as str or None, floats, ints, a bool; staff values untouched."""
    out = out.copy()
    for col in _columns():
        key, kind = col["key"], col["type"]
        if kind in ("text", "label"):
            out[key] = pd.Series([code_text(v) for v in out[key]], index=out.index, dtype=object)
        elif kind == "float":
            out[key] = pd.to_numeric(out[key], errors="coerce").astype(float)
        elif kind == "int":
            out[key] = out[key].astype("int64")
        elif kind == "bool":
            out[key] = out[key].astype(bool)
        else:  # staff
            out[key] = pd.Series([None if _is_missing(v) else v for v in out[key]], index=out.index, dtype=object)
    return out


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


# -- writing ----------------------------------------------------------------------------------------------------

def geometry_text(geom, patch_id: str) -> tuple[str, str]:
    """(WKT in WGS84 to ``geometry.decimals`` decimals, its checksum with the patch id) of a WGS84 geometry."""
    wkt = shapely.to_wkt(geom, rounding_precision=ledger_spec()["geometry"]["decimals"], trim=True)
    return wkt, _checksum(wkt, patch_id)


def _checksum(wkt: str, patch_id: str) -> str:
    """The first 16 hex digits of SHA-256 over the id and the outline: an edited outline, and in the CSV (where
    both sit in one row) an edited id, no longer match."""
    return hashlib.sha256(f"{patch_id}\n{wkt}".encode("utf-8")).hexdigest()[:16]


def _cells(ledger: gpd.GeoDataFrame) -> list[list]:
    """The rows as written: codes as Chinese labels, booleans 是/否, NaN empty, staff values as they are."""
    labels = {"change_type": _labels("change_type"), "location": _labels("location")}
    yes_no = _labels("reported")
    out = []
    for rec in ledger[ledger_columns()].itertuples(index=False, name=None):
        row = []
        for col, v in zip(_columns(), rec):
            if _is_missing(v):
                row.append(None)
            elif col["type"] == "label":
                row.append(labels[col["key"]].get(v, v))
            elif col["type"] == "bool":
                row.append(yes_no[bool(v)])
            elif hasattr(v, "item") and not isinstance(v, str):
                row.append(v.item())
            else:
                row.append(v)
        out.append(row)
    return out


def write_ledger(ledger: gpd.GeoDataFrame, out_dir) -> dict[str, Path]:
    """Write ``redline_ledger.xlsx`` (sheet 台账 + hidden sheet 几何) and ``redline_ledger.csv`` (UTF-8 with BOM,
    geometry as its last two columns) into ``out_dir``, each atomically. Returns ``{"xlsx": path, "csv": path}``.

    The GeoPackage layer is the run's: ``store.write_table("redline_ledger", ledger, csv=False, xlsx=False)``."""
    out_dir = Path(out_dir)
    wgs = ledger.geometry.to_crs(4326)
    geoms = [geometry_text(g, pid) for g, pid in zip(wgs, ledger["patch_id"])]
    cells = _cells(ledger)
    headers = [c["zh"] for c in _columns()]
    gspec = ledger_spec()["geometry"]
    paths = {"xlsx": out_dir / XLSX_NAME, "csv": out_dir / CSV_NAME}

    frame = pd.DataFrame([r + [w, s] for r, (w, s) in zip(cells, geoms)],
                         columns=headers + [gspec["wkt"]["zh"], gspec["checksum"]["zh"]], dtype=object)
    with atomic_path(paths["csv"]) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")
    with atomic_path(paths["xlsx"]) as tmp:
        tmp.write_bytes(_workbook_bytes(ledger, cells, geoms))
    return paths


def _workbook_bytes(ledger, cells, geoms) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    from ecoassess.files import display_width, office_bytes

    spec = ledger_spec()
    gspec = spec["geometry"]
    wb = Workbook()
    ws = wb.active
    ws.title = spec["ledger_sheet"]
    cols = _columns()
    ws.append([c["zh"] for c in cols])
    staff_fill = PatternFill("solid", fgColor="FFF2CC")
    head_fill = PatternFill("solid", fgColor="D9E1F2")
    for j, col in enumerate(cols, start=1):
        cell = ws.cell(row=1, column=j)
        cell.font = Font(bold=True)
        cell.fill = staff_fill if col["type"] == "staff" else head_fill
        cell.alignment = Alignment(horizontal="center", vertical="center")
    for r, row in enumerate(cells, start=2):
        for j, (col, v) in enumerate(zip(cols, row), start=1):
            cell = ws.cell(row=r, column=j, value=v)
            if isinstance(v, str) and v.startswith("="):
                cell.data_type = "s"  # text typed with a leading '=' stays text, not a formula
            if col.get("format") and isinstance(v, (int, float)):
                cell.number_format = col["format"]
            if col["type"] == "staff":
                cell.fill = staff_fill
    for j, col in enumerate(cols, start=1):
        shown = [col["zh"]] + [_shown(row[j - 1], col) for row in cells[:200]]
        ws.column_dimensions[get_column_letter(j)].width = min(40, max(display_width(s) for s in shown) + 2)
    last = max(len(cells) + 1, 2)
    for key, staff in spec["staff_columns"].items():
        if not staff.get("values"):
            continue
        letter = get_column_letter(ledger_columns().index(key) + 1)
        dv = DataValidation(type="list", formula1='"' + ",".join(staff["values"]) + '"', allow_blank=True,
                            showErrorMessage=True, errorStyle="warning", errorTitle=staff["zh"],
                            error="不在可选值中：" + "、".join(staff["values"]))
        dv.add(f"{letter}2:{letter}{last}")
        ws.add_data_validation(dv)
    ws.freeze_panes = "B2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{last}"

    gs = wb.create_sheet(gspec["sheet"])
    n_parts = max([1] + [math.ceil(len(w) / _WKT_CELL) for w, _ in geoms])
    gs.append([cols[0]["zh"], gspec["checksum"]["zh"], gspec["wkt"]["zh"]]
              + [f"{gspec['wkt']['zh']}({k})" for k in range(2, n_parts + 1)])
    for pid, (wkt, sha) in zip(ledger["patch_id"], geoms):
        gs.append([pid, sha] + [wkt[k:k + _WKT_CELL] for k in range(0, len(wkt), _WKT_CELL)])
    gs.sheet_state = "hidden"
    return office_bytes(wb)


def _shown(v, col) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and col.get("format"):
        decimals = len(col["format"].partition(".")[2])
        return f"{v:.{decimals}f}"
    return str(v)


# -- reading ----------------------------------------------------------------------------------------------------

def read_ledger(path) -> Ledger:
    """A ledger as ecoassess wrote it and staff filled it in: the Excel workbook (Chinese headers) or the CSV
    (UTF-8 or GBK). Headers may be the Chinese ones or the English keys. Blank rows are skipped. Unknown columns,
    duplicate ids, rows without an id and edited outlines are an :class:`InputError` naming the row or column."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError("the ledger file does not exist", path=path, expected="last run's redline_ledger.xlsx or .csv")
    if suffix == ".xlsx":
        header, rows, outlines = _xlsx_rows(path)
    elif suffix == ".csv":
        header, rows, outlines = _csv_rows(path)
    else:
        raise InputError(f"is a {suffix or 'suffix-less'} file", path=path,
                         expected="a ledger written by ecoassess: redline_ledger.xlsx or redline_ledger.csv")
    return _ledger_from_rows(path, header, rows, outlines)


def _header_keys(path, header: list, has_data: list[bool], geometry_in_table: bool) -> list[str | None]:
    """The English key of each column (None: an empty trailing column); unknown headers are refused."""
    from openpyxl.utils import get_column_letter

    gspec = ledger_spec()["geometry"]
    names = {}
    for c in _columns():
        names[c["zh"]] = names[c["key"]] = c["key"]
    if geometry_in_table:
        for g in ("wkt", "checksum"):
            names[gspec[g]["zh"]] = names[gspec[g]["key"]] = gspec[g]["key"]
    keys = []
    for j, (h, data) in enumerate(zip(header, has_data)):
        text = "" if h is None else str(h).strip()
        if not text and not data:
            keys.append(None)
            continue
        if text not in names:
            shown = f"'{text}'" if text else "(no header)"
            raise InputError(f"unknown column {shown} (column {get_column_letter(j + 1)})", path=path,
                             field=text or get_column_letter(j + 1),
                             expected="only the columns ecoassess wrote (" + "、".join(c["zh"] for c in _columns())
                             + "); put notes in 备注")
        keys.append(names[text])
    found = set(keys)
    wanted = ledger_columns() + ([gspec["wkt"]["key"], gspec["checksum"]["key"]] if geometry_in_table else [])
    missing = [k for k in wanted if k not in found]
    if geometry_in_table and {gspec["wkt"]["key"], gspec["checksum"]["key"]} <= set(missing):
        raise InputError("this CSV has no outline columns (saved from the Excel ledger's 台账 sheet?)", path=path,
                         field=gspec["wkt"]["zh"], expected="the Excel ledger itself (redline_ledger.xlsx, its "
                         "outlines are on a hidden sheet) or the redline_ledger.csv ecoassess wrote")
    if missing:
        zh = {c["key"]: c["zh"] for c in _columns()} | {gspec[g]["key"]: gspec[g]["zh"] for g in ("wkt", "checksum")}
        raise InputError(f"the column(s) {', '.join(zh[k] for k in missing)} are missing (deleted?)", path=path,
                         field=zh[missing[0]], expected="every column ecoassess wrote; hide columns instead")
    doubled = sorted({k for k in keys if k is not None and keys.count(k) > 1})
    if doubled:
        raise InputError(f"the column {doubled[0]} appears twice", path=path, field=doubled[0],
                         expected="each column once")
    return keys


def _xlsx_rows(path: Path):
    from openpyxl import load_workbook

    spec = ledger_spec()
    gspec = spec["geometry"]
    try:
        wb = load_workbook(path, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to open belongs to this file
        raise InputError(f"cannot be opened as an Excel workbook ({exc})", path=path) from exc
    for sheet in (spec["ledger_sheet"], gspec["sheet"]):
        if sheet not in wb.sheetnames:
            raise InputError(f"has no sheet '{sheet}' (sheets: {', '.join(wb.sheetnames)})", path=path, field=sheet,
                             expected="the workbook ecoassess wrote, with its sheets 台账 and (hidden) 几何")
    values = [list(r) for r in wb[spec["ledger_sheet"]].iter_rows(values_only=True)]
    header, body = (values[0], values[1:]) if values else ([], [])
    rows = [(n, r) for n, r in enumerate(body, start=2)]
    outlines = {}
    for n, r in enumerate(wb[gspec["sheet"]].iter_rows(min_row=2, values_only=True), start=2):
        if not r or r[0] is None:
            continue
        parts = [p for p in r[2:] if p is not None]
        outlines[str(r[0]).strip()] = (r[1], "".join(str(p) for p in parts), f"sheet {gspec['sheet']} row {n}")
    return header, rows, outlines


def _csv_rows(path: Path):
    table = read_table(path, dtype=str, keep_default_na=False, header=None)
    values = [[None if v == "" else v for v in r] for r in table.itertuples(index=False, name=None)]
    header, body = (values[0], values[1:]) if values else ([], [])
    return header, [(n, r) for n, r in enumerate(body, start=2)], None


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _ledger_from_rows(path: Path, header, rows, outlines) -> Ledger:
    gspec = ledger_spec()["geometry"]
    width = max([len(header)] + [len(r) for _, r in rows])
    header = list(header) + [None] * (width - len(header))
    rows = [(n, list(r) + [None] * (width - len(r))) for n, r in rows]
    has_data = [any(not _blank(r[j]) for _, r in rows) for j in range(width)]
    keys = _header_keys(path, header, has_data, geometry_in_table=outlines is None)
    records, numbers, geoms = [], [], []
    for n, r in rows:
        if all(_blank(v) for v in r):
            continue  # blank rows staff left between patches
        rec = {k: v for k, v in zip(keys, r) if k is not None}
        pid = code_text(rec["patch_id"])
        if pid is None:
            raise InputError(f"row {n} has values but no 图斑编号", path=path, field="图斑编号",
                             expected="every patch row keeps the id ecoassess gave it; patches cannot be added by "
                                      "hand (they have no outline)")
        rec["patch_id"] = pid
        records.append(rec)
        numbers.append(n)
    _check_unique_ids(pd.DataFrame({"patch_id": [r["patch_id"] for r in records]}), path, numbers)
    for rec, n in zip(records, numbers):
        if outlines is None:
            sha, wkt, where = rec.pop(gspec["checksum"]["key"]), rec.pop(gspec["wkt"]["key"]), f"row {n}"
        elif rec["patch_id"] in outlines:
            sha, wkt, where = outlines[rec["patch_id"]]
        else:
            raise InputError(f"row {n}: patch {rec['patch_id']} has no outline on the hidden sheet "
                             f"{gspec['sheet']} (its 图斑编号 was edited?)", path=path, field="图斑编号",
                             expected="the ids ecoassess wrote")
        if wkt is None or sha is None or _checksum(str(wkt), rec["patch_id"]) != str(sha).strip():
            raise InputError(f"row {n} (patch {rec['patch_id']}): its id or its outline ({where}) was edited: they "
                             "do not match their checksum", path=path, field=gspec["wkt"]["zh"],
                             expected="ids and outlines as ecoassess wrote them; put corrections in 备注")
        try:
            geoms.append(shapely.from_wkt(str(wkt)))
        except Exception as exc:  # noqa: BLE001 - shapely's GEOS errors
            raise InputError(f"row {n} (patch {rec['patch_id']}): its outline is not WKT ({exc})", path=path,
                             field=gspec["wkt"]["zh"]) from exc
        for col in _columns():
            rec[col["key"]] = _cell_value(rec[col["key"]], col, path, n)
    if outlines is not None:
        kept = {r["patch_id"] for r in records}
        for pid in sorted(set(outlines) - kept):
            log.warning("%s: patch %s is on the sheet %s but not on %s (row deleted?); it is dropped from the "
                        "ledger", path, pid, gspec["sheet"], ledger_spec()["ledger_sheet"])
    table = gpd.GeoDataFrame(records, columns=ledger_columns(), geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    return Ledger(_typed(table), path, numbers)


def _cell_value(v, col: dict, path, n: int):
    """A cell read back into the ledger's type; staff values as they are (empty text → None)."""
    kind, key = col["type"], col["key"]
    if kind == "staff":
        return None if v is None or v == "" else v
    if _blank(v):
        if kind in ("int", "bool") or key in ("patch_id", "area_m2"):
            raise InputError(f"row {n}: {col['zh']} is empty", path=path, field=col["zh"],
                             expected="the value ecoassess wrote")
        return np.nan if kind == "float" else None
    try:
        if kind == "float":
            return float(v)
        if kind == "int":
            f = float(v)
            if not f.is_integer():
                raise ValueError(v)
            return int(f)
        if kind == "bool":
            text = str(v).strip()
            by_label = {label: code for code, label in _labels(key).items()}
            return by_label[text] if text in by_label else {"True": True, "False": False}[text]
        if kind == "label":
            text = str(v).strip()
            codes = _labels(key)
            by_label = {label: code for code, label in codes.items()}
            if text in by_label:
                return by_label[text]
            if text in codes:
                return text
            raise ValueError(v)
    except (ValueError, KeyError):
        expected = {"float": "a number", "int": "a whole number", "bool": "是 or 否",
                    "label": "one of " + "、".join(_labels(key).values()) if kind == "label" else ""}[kind]
        raise InputError(f"row {n}: {col['zh']} is {v!r}", path=path, field=col["zh"], expected=expected) from None
    return code_text(v)


__all__ = ["Ledger", "read_ledger", "update_ledger", "write_ledger", "match_patches", "ledger_columns",
           "staff_columns", "ledger_spec", "mu_m2", "geometry_text", "PATCH_COLUMNS", "XLSX_NAME", "CSV_NAME"]
