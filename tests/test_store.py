import hashlib
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from openpyxl import load_workbook
from shapely.geometry import box

from ecoassess.store import ResultsStore


def _counties():
    return gpd.GeoDataFrame({"县名": ["成都市锦江区", "绵阳市涪城区"], "等级": ["优", "良"], "ei": [78.5, 61.25]},
                            geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)], crs="EPSG:4547")


def _hashes(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_tables_round_trip_with_chinese_text(tmp_path):
    out = tmp_path / "results"
    gdf = _counties()
    plain = pd.DataFrame({"指标": ["植被覆盖度", "水网密度"], "权重": [0.25, 0.1]})
    long_name = "county_table_with_a_very_long_name_over_31"
    with ResultsStore(out) as store:
        store.write_table("县级结果", gdf)
        store.write_table("weights", plain)
        store.write_table(long_name, plain)
        assert not out.exists()  # nothing visible before commit
    g = gpd.read_file(out / "results.gpkg", layer="县级结果")
    assert list(g["县名"]) == list(gdf["县名"]) and g.crs == gdf.crs and g.geometry.equals(gdf.geometry)
    w = gpd.read_file(out / "results.gpkg", layer="weights")
    assert list(w["指标"]) == ["植被覆盖度", "水网密度"]
    raw = (out / "tables" / "县级结果.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM so Excel detects UTF-8
    csv = pd.read_csv(out / "tables" / "县级结果.csv", encoding="utf-8-sig")
    assert list(csv.columns) == ["县名", "等级", "ei"] and list(csv["等级"]) == ["优", "良"]
    wb = load_workbook(out / "tables" / "results.xlsx")
    assert wb.sheetnames == ["县级结果", "weights", long_name[:31]]
    ws = wb["县级结果"]
    assert [c.value for c in ws[1]] == ["县名", "等级", "ei"]
    assert ws["A1"].font.bold and ws["A2"].value == "成都市锦江区" and ws["C3"].value == 61.25
    assert ws.column_dimensions["A"].width >= 12  # six wide characters
    assert set(store.outputs) == {"results.gpkg", "tables/results.xlsx", "tables/县级结果.csv",
                                  "tables/weights.csv", f"tables/{long_name}.csv"}


def test_failed_run_keeps_previous_results_intact(tmp_path):
    out = tmp_path / "results"
    with ResultsStore(out) as store:
        store.write_table("t", _counties())
        store.path("notes/readme.txt").write_text("run 1", encoding="utf-8")
    first = _hashes(out)
    with pytest.raises(RuntimeError):
        with ResultsStore(out) as store:
            store.path("notes/readme.txt").write_text("run 2", encoding="utf-8")
            raise RuntimeError("a stage failed")
    assert _hashes(out) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # staging removed
    store = ResultsStore(out)
    store.path("x.txt").write_text("x")
    store.abort()
    assert _hashes(out) == first and sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_commit_replaces_previous_results_and_is_deterministic(tmp_path):
    out = tmp_path / "results"
    runs = []
    for _ in range(2):
        store = ResultsStore(out)
        store.write_table("县级结果", _counties())
        store.path("old_only.txt" if not runs else "new_only.txt").write_text("x")
        assert store.commit() == out.absolute()
        runs.append(_hashes(out))
    assert "old_only.txt" not in runs[1] and "new_only.txt" in runs[1]
    common = {k: v for k, v in runs[0].items() if k not in ("old_only.txt", "manifest.json")}
    # byte-identical tables (the manifest lists the different files)
    assert {k: v for k, v in runs[1].items() if k not in ("new_only.txt", "manifest.json")} == common
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    with pytest.raises(Exception):
        store.path("late.txt")


def test_workbook_is_written_once_per_flush_not_after_every_table(tmp_path, monkeypatch):
    """Rewriting the whole workbook after each table made table writing quadratic in the number of tables."""
    calls = []
    original = ResultsStore._write_xlsx
    monkeypatch.setattr(ResultsStore, "_write_xlsx", lambda self: (calls.append(len(self._sheets)), original(self)))
    out = tmp_path / "results"
    with ResultsStore(out) as store:
        for i in range(5):
            store.write_table(f"t{i}", _counties())
        assert calls == []
        store.flush()
        store.flush()  # nothing new: not written again
        assert calls == [5] and store.path("tables/results.xlsx").exists()
        store.write_table("t5", _counties(), gpkg=False)
    assert calls == [5, 6]  # commit wrote the table added after the flush
    assert load_workbook(out / "tables" / "results.xlsx").sheetnames == [f"t{i}" for i in range(6)]


def test_geopackage_keeps_a_custom_crs_and_an_epsg_code(tmp_path):
    """The EPSG lookup pyogrio makes per layer is cached; the stored SRS must stay what it was."""
    from pyproj import CRS

    from ecoassess.grid import china_albers_crs

    albers = CRS.from_user_input(china_albers_crs())
    out = tmp_path / "results"
    custom = _counties().set_crs(albers, allow_override=True)
    with ResultsStore(out) as store:
        store.write_table("albers", custom)
        store.write_table("albers_again", custom)
        store.write_table("epsg", _counties())
    for layer in ("albers", "albers_again"):
        crs = gpd.read_file(out / "results.gpkg", layer=layer).crs
        assert crs.to_epsg() is None and crs.equals(albers, ignore_axis_order=True)
    assert gpd.read_file(out / "results.gpkg", layer="epsg").crs.to_epsg() == 4547
    assert type(custom.crs) is type(albers)  # the caller's frame is not touched


def test_a_commit_that_cannot_replace_the_folder_says_where_the_results_are(tmp_path, monkeypatch):
    from ecoassess.errors import EcoassessError

    out = tmp_path / "results"
    store = ResultsStore(out)
    store.write_table("t", _counties())
    real_rename = os.rename

    def refuse(src, dst):
        if Path(dst) == out.absolute():
            raise PermissionError(13, "Permission denied", str(dst))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(EcoassessError, match=r"could not be moved to .*results \(Permission denied\); they are "
                                             r"complete in .*results\.ready-"):
        store.commit()
    # complete, and marked so: the next run finishes the move (recover_interrupted)
    assert (out.with_name(f"results.ready-{os.getpid()}") / "tables" / "results.xlsx").exists() and not out.exists()
