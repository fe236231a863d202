"""A run with three land-cover years and no imagery (issue 21 parts 7 and 8): the land-cover tables are made, the
stages that need imagery are skipped with their reason in the log, the manifest and the run summary.

The small world lies on the analysis grid's own lattice (China Albers, 30 m cells), so every expected number is a
count of cells: two counties of 20 × 30 cells, a function zone whose edges cut cells in half.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import yaml
from click.testing import CliRunner
from rasterio.transform import from_origin

from ecoassess.grid import china_albers_crs
from ecoassess.landcover.accounting import NO_DATA

RES = 30.0
X0, Y1 = 300_000.0, 3_300_900.0
H, W = 30, 40
CELL_KM2 = RES * RES / 1e6
A_BIO = 511.2642131067          # STANDARDS §1.2
A_ERO = 236.0435677948          # STANDARDS §1.5


def land_cover_years() -> dict[int, np.ndarray]:
    """County 519901 (columns 0–19) in 2015: forest (21) in columns 0–9, dry land (12) in 10–19 but urban (51) in
    rows 0–2 of columns 10–19. County 519902 (columns 20–39): paddy (11) and grass (31). Then changes and a gap."""
    y2015 = np.zeros((H, W), "uint8")
    y2015[:, :10] = 21
    y2015[:, 10:20] = 12
    y2015[:3, 10:20] = 51
    y2015[:, 20:30] = 11
    y2015[:, 30:] = 31
    y2020 = y2015.copy()
    y2020[10:20, 0:5] = 12          # 50 cells of forest cleared for dry land
    y2020[20:25, 30:40] = 0         # a gap (no data) of 50 cells in 519902
    y2020[:, 25:30] = 51            # 150 cells of paddy built over
    y2024 = y2020.copy()
    y2024[10:15, 0:5] = 21          # 25 cells reforested
    y2024[20:25, 30:40] = 31        # the gap mapped again: grass
    y2024[0:3, 10:20] = 52          # urban → rural settlement (30 cells)
    return {2015: y2015, 2020: y2020, 2024: y2024}


def _write_raster(path: Path, values: np.ndarray, crs) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=1, dtype=values.dtype,
                       crs=crs, transform=from_origin(X0, Y1, RES, RES), nodata=0) as dst:
        dst.write(values, 1)


def write_world(folder: Path, *, legend="cas_lucc", years=None, codes=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    crs = china_albers_crs().to_wkt()
    counties = gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["青岗县", "柏溪县"]},
                                geometry=[shapely.box(X0, Y1 - H * RES, X0 + 20 * RES, Y1),
                                          shapely.box(X0 + 20 * RES, Y1 - H * RES, X0 + 40 * RES, Y1)], crs=crs)
    counties.to_file(folder / "counties.gpkg")
    # a function zone over columns 5.5–14.5 and rows 0.5–29.5 (half cells along its edges)
    fz = gpd.GeoDataFrame({"zone_id": ["FZ1"], "name": ["水源涵养区"], "function_type": ["水源涵养"]},
                          geometry=[shapely.box(X0 + 5.5 * RES, Y1 - 29.5 * RES, X0 + 14.5 * RES, Y1 - 0.5 * RES)],
                          crs=crs)
    fz.to_file(folder / "function_zones.gpkg")
    (folder / "landcover").mkdir(exist_ok=True)
    values = codes or land_cover_years()
    land_cover = {}
    for year, v in values.items():
        _write_raster(folder / "landcover" / f"lc_{year}.tif", v, crs)
        land_cover[str(year)] = {"path": f"landcover/lc_{year}.tif", "legend": legend}
    config = {"name": "land cover only", "year": max(values), "baseline_year": sorted(values)[-2],
              "study_area": {"path": "counties.gpkg", "id_field": "code", "name_field": "name", "codes": "any"},
              "grid": {"resolution_m": RES, "chunk": 64},
              "land_cover": land_cover,
              "zones": {"function_zones": {"path": "function_zones.gpkg", "id_field": "zone_id",
                                           "name_field": "name", "type_field": "function_type"}},
              "outputs": {"tables": ["gpkg", "csv"], "maps": False, "lang": "zh"}}
    path = folder / "assessment.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from ecoassess.cli import main

    folder = tmp_path_factory.mktemp("lc_only")
    config = write_world(folder / "inputs")
    out = folder / "out"
    res = CliRunner().invoke(main, ["run", str(config), "--out", str(out)])
    return res, out


def _table(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / "tables" / f"{name}.csv", encoding="utf-8-sig", dtype={"zone_id": str, "code": str})


def test_a_land_cover_only_run_completes_and_says_what_it_skipped(finished):
    res, out = finished
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    skipped = {s["stage"]: s["reason"] for s in manifest["extra"]["skipped_stages"]}
    assert set(skipped) == {"vegetation", "rsei", "hj192 ei", "vegetation change", "scene quality"}
    assert "needs imagery" in skipped["vegetation"] and "vegetation-cover" in skipped["hj192 ei"]
    # the run summary (stderr) and the manifest's warnings say it too
    assert "stage vegetation skipped: needs imagery for NDVI and FVC" in res.output
    assert any(w.startswith("stage hj192 ei skipped") for w in manifest["warnings"])
    assert manifest["extra"]["land_cover"]["years"] == [2015, 2020, 2024]
    assert manifest["extra"]["land_cover"]["pairs"] == ["2015-2020", "2020-2024", "2015-2024"]
    for name in ("landcover_class_areas", "landcover_transitions", "landcover_change", "landcover_habitat",
                 "county_ei_landcover_parts"):
        assert (out / "tables" / f"{name}.csv").is_file(), name


def test_every_year_is_accounted_and_matrices_add_up(finished):
    _, out = finished
    areas = _table(out, "landcover_class_areas")
    trans = _table(out, "landcover_transitions")
    years = land_cover_years()
    assert sorted(areas["year"].unique()) == [2015, 2020, 2024]
    assert set(areas["zone_set"]) == {"county", "study_area", "function_zones"}
    for (zone_set, zone_id), rows in trans.groupby(["zone_set", "zone_id"]):
        a = areas[(areas["zone_set"] == zone_set) & (areas["zone_id"] == zone_id)]
        for (y0, y1), t in rows.groupby(["from_year", "to_year"]):
            for year, col in ((y0, "from_class"), (y1, "to_class")):
                sums = t.groupby(col)["area_km2"].sum()
                of_year = a[a["year"] == year].set_index("class_code")["area_km2"]
                nodata = a[a["year"] == year]["nodata_km2"].iloc[0]
                for code, km2 in of_year.items():
                    assert sums.get(code, 0.0) == pytest.approx(km2, abs=1e-12), (zone_set, zone_id, y0, y1, code)
                assert sums.get(NO_DATA, 0.0) == pytest.approx(nodata, abs=1e-12)
    # first → last in county 519901 by numpy: cells of (2015 class, 2024 class)
    t = trans[(trans["zone_id"] == "519901") & (trans["from_year"] == 2015) & (trans["to_year"] == 2024)]
    got = {(r.from_class, r.to_class): r.area_km2 for r in t.itertuples()}
    a, b = years[2015][:, :20], years[2024][:, :20]
    pairs, counts = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1, return_counts=True)
    hand = {(int(i), int(j)): n * CELL_KM2 for (i, j), n in zip(pairs.T, counts)}
    assert got.keys() == hand.keys()
    for key in hand:
        assert got[key] == pytest.approx(hand[key])
    # forest → dry land 2015→2024: rows 15–19 of columns 0–4 stay cleared = 25 cells
    assert got[(21, 12)] == pytest.approx(25 * CELL_KM2)


def test_change_of_the_gap_pair_and_function_zone_areas(finished):
    _, out = finished
    change = _table(out, "landcover_change")
    c = change[(change["zone_id"] == "519902") & (change["from_year"] == 2015) & (change["to_year"] == 2020)]
    c = c.set_index("class_code")
    # paddy (11): 300 cells; 150 built over (urban 51) → loss 150 cells, net −150
    assert c.loc[11, ["start_km2", "loss_km2", "net_change_km2"]].tolist() == pytest.approx(
        [300 * CELL_KM2, 150 * CELL_KM2, -150 * CELL_KM2])
    # grass (31): 300 cells, 50 of them no data in 2020 → over cells with data in both years start 250, no change
    assert c.loc[31, ["start_km2", "end_km2", "gross_change_km2"]].tolist() == pytest.approx(
        [250 * CELL_KM2, 250 * CELL_KM2, 0.0])
    assert c.loc[51, "gain_km2"] == pytest.approx(150 * CELL_KM2)
    # the function zone (columns 5.5–14.5, rows 0.5–29.5) in 2015: forest over columns 5.5–10 → 4.5 columns ×
    # 29 rows; dry land columns 10–14.5 rows 3–29.5 → 4.5 × 26.5; urban columns 10–14.5 rows 0.5–3 → 4.5 × 2.5
    hab = _table(out, "landcover_habitat")
    fz = hab[(hab["zone_set"] == "function_zones") & (hab["year"] == 2015)].set_index("hj192_class")["area_km2"]
    assert fz["forest"] == pytest.approx(4.5 * 29 * CELL_KM2)
    assert fz["dry_land"] == pytest.approx(4.5 * 26.5 * CELL_KM2)
    assert fz["urban"] == pytest.approx(4.5 * 2.5 * CELL_KM2)
    assert fz.sum() == pytest.approx(9 * 29 * CELL_KM2)


def test_biological_abundance_and_land_stress_by_hand(finished):
    _, out = finished
    parts = _table(out, "county_ei_landcover_parts").set_index(["code", "year"])
    # 519901 in 2015 (600 cells): forest 300, dry land 270, urban 30 cells
    # HQ = A_bio × (0.35·0.6·forest + 0.11·0.4·dry land + 0.04·0.3·urban) / area (STANDARDS §1.2)
    hq = A_BIO * (0.35 * 0.6 * 300 + 0.11 * 0.4 * 270 + 0.04 * 0.3 * 30) / 600
    assert hq == pytest.approx(64.1125323236, abs=1e-9)
    assert parts.loc[("519901", 2015), "hq"] == pytest.approx(hq, rel=1e-12)
    assert parts.loc[("519901", 2015), "biological_abundance"] == pytest.approx(hq, rel=1e-12)
    # land stress = A_ero × 0.2 × construction / area, no erosion input (STANDARDS §1.5)
    assert parts.loc[("519901", 2015), "land_stress"] == pytest.approx(A_ERO * 0.2 * 30 / 600, rel=1e-12)
    # the whole area (000000) from its own totals: construction 30 cells of 1200 in 2015
    assert parts.loc[("000000", 2015), "land_stress"] == pytest.approx(A_ERO * 0.2 * 30 / 1200, rel=1e-12)
    notes = _table(out, "landcover_assumptions")["assumption"]
    assert notes.str.contains("no erosion input").any()


def test_validate_passed_the_land_cover_only_config(tmp_path):
    from ecoassess.validate import validate_config

    config = validate_config(write_world(tmp_path))
    assert sorted(config.land_cover) == [2015, 2020, 2024] and not config.imagery


def test_asking_a_land_cover_only_run_for_an_imagery_stage_says_why_nothing_was_made(tmp_path):
    import ecoassess
    from ecoassess.errors import EcoassessError

    config = write_world(tmp_path / "in")
    with pytest.raises(EcoassessError, match=r"no part of the run completed:\n  vegetation skipped: needs imagery"):
        ecoassess.run(config, out=tmp_path / "out", stages=["vegetation"])
    result = ecoassess.run(config, out=tmp_path / "out", stages=["land cover"])
    assert "landcover_transitions" in result.tables and result.manifest["extra"].get("skipped_stages") is None


def test_a_year_with_a_code_outside_its_legend_is_a_problem_and_the_rest_is_accounted(tmp_path, monkeypatch):
    """A rare code that validate's sample missed: the run names the year, the file and the code, and accounts the
    other two years (their transitions included) instead of failing as a whole."""
    import ecoassess
    import ecoassess.landcover.accounting as accounting

    years = land_cover_years()
    years[2020][7, 7] = 77
    config = write_world(tmp_path / "in", codes=years)
    monkeypatch.setattr(accounting, "sampled_unknown_codes", lambda *a, **k: [])
    result = ecoassess.run(config, out=tmp_path / "out")
    assert len(result.problems) == 1
    assert "land cover 2020" in result.problems[0] and "lc_2020.tif" in result.problems[0]
    assert "[77]" in result.problems[0]
    assert sorted(result.tables["landcover_class_areas"]["year"].unique()) == [2015, 2024]
    t = result.tables["landcover_transitions"]
    assert set(zip(t["from_year"], t["to_year"])) == {(2015, 2024)}
