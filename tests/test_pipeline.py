"""The annual assessment run end to end on the bundled sample: tables, layers, manifest, failure behaviour."""

from __future__ import annotations

import hashlib
import shutil
import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import ecoassess
from ecoassess.cli import main
from ecoassess.errors import InputError
from ecoassess.grid import read_on_grid


@pytest.fixture(scope="module")
def sample_config(shared_sample):
    """The sample (conftest, read-only); the tests that write a config beside it use ``sample_copy``."""
    return shared_sample


@pytest.fixture(scope="module")
def run(sample_run):
    """The full run on the sample with the default config (conftest, shared and read-only)."""
    return sample_run


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _earlier_results(out):
    """A results folder of an earlier ecoassess run (its manifest lists its one file)."""
    from ecoassess.store import ResultsStore

    with ResultsStore(out) as store:
        store.path("earlier.txt").write_text("complete results of last year")


def test_every_zone_table_accounts_for_its_whole_area(run):
    for name in ("county_vegetation", "county_rsei", "redline_rsei", "function_zones_rsei"):
        table = run.tables[name]
        layers = [c[: -len("_valid_km2")] for c in table.columns if c.endswith("_valid_km2")]
        assert layers, name
        for layer in layers:
            total = (table[f"{layer}_valid_km2"] + table[f"{layer}_masked_km2"] + table[f"{layer}_nodata_km2"]
                     + table["area_outside_km2"])
            np.testing.assert_allclose(total, table["area_km2"], rtol=1e-9, err_msg=f"{name}.{layer}")
            # every sample cell is observed (three scenes a year fill each one's no-data strip), and cells on the
            # study area's edge have values too: nothing is "never observed" (edge cells whose centre fell outside
            # were NaN and counted as nodata)
            np.testing.assert_allclose(table[f"{layer}_nodata_km2"], 0.0, atol=1e-12, err_msg=f"{name}.{layer}")


def test_county_areas_add_up_to_the_study_area_and_match_the_polygons(run, sample_config):
    import geopandas as gpd

    from ecoassess.grid import china_albers_crs

    veg = run.tables["county_vegetation"]
    y = veg[veg["year"] == 2024]
    whole = y[y["code"] == "000000"]["area_km2"].iloc[0]
    counties = y[y["code"] != "000000"]
    assert counties["area_km2"].sum() == pytest.approx(whole, rel=1e-6)
    # independent: the county polygons' area in the equal-area CRS, by geopandas
    gdf = gpd.read_file(sample_config.parent / "vectors" / "counties.gpkg").to_crs(china_albers_crs().to_wkt())
    assert whole == pytest.approx(gdf.area.sum() / 1e6, rel=1e-6)


def test_ndvi_and_fvc_layers_follow_land_cover(run, sample_config):
    grid = run.grid
    lc = read_on_grid(sample_config.parent / "landcover" / "lucc_2024.tif", grid, kind="classes").values
    ndvi = rasterio.open(run.layers["ndvi_2024"]).read(1)
    fvc = rasterio.open(run.layers["fvc_2024"]).read(1)
    mean = {code: np.nanmean(ndvi[lc == code]) for code in (21, 11, 51, 43)}
    assert mean[21] > mean[51] + 0.2          # forest greener than towns
    assert mean[21] > mean[43]                # and than reservoirs
    assert np.nanmin(fvc) >= 0 and np.nanmax(fvc) <= 1
    veg = run.tables["county_vegetation"]
    soil, vegetation = veg["ndvi_soil"].iloc[0], veg["ndvi_veg"].iloc[0]
    assert -0.2 < soil < vegetation < 1.0


def test_rsei_loadings_and_grades_follow_the_landscape(run, sample_config):
    pca = run.tables["rsei_pca"]
    load = pca[pca["year"] == 2024].set_index("indicator")["pc1_loading"]
    assert load["ndvi"] > 0 and load["wet"] > 0 and load["lst_celsius"] < 0 and load["ndbsi"] < 0
    assert pca["joint_pca"].all()
    lc = read_on_grid(sample_config.parent / "landcover" / "lucc_2024.tif", run.grid, kind="classes").values
    rsei = rasterio.open(run.layers["rsei_2024"]).read(1)
    assert np.nanmean(rsei[lc == 21]) > np.nanmean(rsei[lc == 11]) > np.nanmean(rsei[lc == 51])
    shares = run.tables["county_rsei"].filter(regex=r"^grade\d_")
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-9)


def test_manifest_lists_inputs_and_outputs_with_true_hashes(run):
    manifest = json.loads((run.out_dir / "manifest.json").read_text(encoding="utf-8"))
    outputs = {o["path"]: o for o in manifest["outputs"]}
    for rel in ("layers/ndvi_2024.tif", "tables/county_vegetation.csv", "results.gpkg", "maps/ndvi_by_county_2024.png"):
        assert outputs[rel]["sha256"] == _sha(run.out_dir / rel)
    some_input = manifest["inputs"][0]
    from pathlib import Path

    assert some_input["sha256"] == _sha(Path(some_input["path"]))
    assert manifest["catalogs"]["indices/spectral.yaml"]
    assert manifest["extra"]["rsei"][0]["loadings"]["ndvi"] > 0
    # the sample gives land cover and no rsei.water_mask: the land cover's water classes mask RSEI, and the
    # manifest and the PCA table say so (they said "mndwi", the default of the index definition)
    assert [r["water_mask"] for r in manifest["extra"]["rsei"]] == ["land_cover", "land_cover"]
    assert set(run.tables["rsei_pca"]["water_mask"]) == {"land_cover"}


def test_same_inputs_and_config_give_identical_tables_and_layers(run, sample_config, tmp_path):
    again = ecoassess.run(ecoassess.load_config(sample_config), out=tmp_path / "again")
    for rel in ("tables/county_vegetation.csv", "tables/county_rsei.csv", "tables/rsei_pca.csv",
                "layers/ndvi_2024.tif", "layers/rsei_2024.tif"):
        assert _sha(run.out_dir / rel) == _sha(again.out_dir / rel), rel


def test_a_failing_run_stops_with_a_clear_message_and_keeps_earlier_results(run, sample_config, tmp_path):
    out = tmp_path / "kept"
    shutil.copytree(run.out_dir, out)
    before = _sha(out / "manifest.json")
    config = ecoassess.load_config(sample_config)
    broken = tmp_path / "lucc_broken.tif"
    raw = config.land_cover[2023].path.read_bytes()
    broken.write_bytes(raw[: len(raw) // 3])
    config.land_cover[2023].path = broken
    config.run.on_error = "stop"
    with pytest.raises(InputError, match="lucc_broken.tif"):
        ecoassess.run(config, out=out)
    assert _sha(out / "manifest.json") == before
    assert not list(tmp_path.glob("kept.partial-*"))


def test_with_on_error_continue_a_failing_year_is_reported_and_the_rest_completes(sample_config, tmp_path):
    config = ecoassess.load_config(sample_config)
    config.imagery[2023] = config.imagery[2023][:1]
    config.thermal = {}                      # vegetation only, to keep it quick
    config.outputs.maps = False
    gone = tmp_path / "missing.tif"
    shutil.copyfile(config.land_cover[2023].path, gone)
    config.land_cover[2023].path = gone
    ecoassess.validate_config(config)
    gone.unlink()  # gone after validate (which names a missing file): the run reports the year and goes on
    result = ecoassess.run(config, out=tmp_path / "partial")
    assert any("vegetation 2023" in p and "missing.tif" in p for p in result.problems)
    assert set(result.tables["county_vegetation"]["year"]) == {2024}
    manifest = json.loads((result.out_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["extra"]["problems"] == result.problems
    assert any(i.get("missing") and i["path"].endswith("missing.tif") for i in manifest["inputs"])
    assert result.out_dir == tmp_path / "partial" and result.kept_earlier is None  # nothing earlier to keep

    # again, into the folder that now holds results: a run with failed parts never replaces earlier results
    before = {p.relative_to(result.out_dir): _sha(p) for p in result.out_dir.rglob("*") if p.is_file()}
    again = ecoassess.run(config, out=tmp_path / "partial")
    assert again.kept_earlier == tmp_path / "partial" and again.out_dir == tmp_path / "partial.incomplete"
    kept = tmp_path / "partial"
    assert {p.relative_to(kept): _sha(p) for p in kept.rglob("*") if p.is_file()} == before
    assert (again.out_dir / "manifest.json").exists() and all(p.exists() for p in again.layers.values())


def test_cli_run_with_failed_parts_exits_3_and_keeps_earlier_results(sample_copy, tmp_path):
    sample_config = sample_copy  # a config is written beside the sample: the module's copy
    import yaml

    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    raw["thermal"] = {}
    raw["outputs"] = {**raw.get("outputs", {}), "maps": False}
    land_cover = tmp_path / "lucc_2023.tif"
    shutil.copyfile(sample_config.parent / raw["land_cover"]["2023"]["path"], land_cover)
    raw["land_cover"]["2023"]["path"] = str(land_cover)
    bad = sample_config.parent / "broken_2023_land_cover.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "res"
    _earlier_results(out)
    from ecoassess.cli import _run_and_report
    from ecoassess.validate import validate_config

    config = validate_config(bad)
    land_cover.write_bytes(b"II*\x00 not a raster")  # broken after validate (which would refuse it): the run reports it

    with pytest.raises(SystemExit) as exit_info:
        _run_and_report(config, out, None, quiet=True)
    assert exit_info.value.code == 3
    assert sorted(p.name for p in out.iterdir()) == ["earlier.txt", "manifest.json"]
    assert (tmp_path / "res.incomplete" / "manifest.json").exists()


def test_cli_validate_and_run_errors(sample_copy, tmp_path):
    sample_config = sample_copy  # a config is written beside the sample: the module's copy
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", str(sample_config)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    text = sample_config.read_text(encoding="utf-8").replace("id_field: code", "id_field: CODE", 1)
    bad = sample_config.parent / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    res = runner.invoke(main, ["validate", "--json", str(bad)])
    assert res.exit_code == 1
    problems = json.loads(res.stdout)["problems"]
    assert any("field 'CODE' does not exist" in p for p in problems)
    res = runner.invoke(main, ["run", str(bad), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "CODE" in (res.output + str(res.exception))
    assert not (tmp_path / "x").exists()


def test_indices_cli_lists_the_catalog_and_computes_layers(sample_config, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["indices", "list", "--json"])
    assert res.exit_code == 0
    listed = json.loads(res.stdout)
    assert len(listed["indices"]) >= 25
    res = runner.invoke(main, ["indices", "compute", "MNDWI", "NDBSI", "--config", str(sample_config),
                               "--out", str(tmp_path / "idx")])
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "idx" / "mndwi_2024.tif") as src:
        values = src.read(1)
    assert np.nanmin(values) >= -1 and np.nanmax(values) <= 1 and np.isfinite(values).mean() > 0.5
    assert "outside the valid range" in res.output
    res = runner.invoke(main, ["indices", "compute", "LST", "--config", str(sample_config),
                               "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "[imagery.2024]: index LST needs band role(s) thermal, which the 2024 imagery" in res.output
    res = runner.invoke(main, ["indices", "compute", "NDVI", "--year", "2019", "--config", str(sample_config),
                               "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "[imagery.2019]: no imagery for year 2019" in res.output
    # an index of one's own, from a catalog file of one's own (indices/README.md)
    own = tmp_path / "own.yaml"
    own.write_text("version: mine-1\nindices:\n  GRVI: {long_name: green-red vegetation index, formula: "
                   "(green - red) / (green + red), valid_range: [-1, 1], reference: Tucker 1979, example: "
                   "{inputs: {green: 0.08, red: 0.05}, expected: 0.2307692308}}\n", encoding="utf-8")
    res = runner.invoke(main, ["indices", "list", "--json", "--catalog", str(own)])
    assert res.exit_code == 0 and [i["name"] for i in json.loads(res.stdout)["indices"]] == ["GRVI"]
    res = runner.invoke(main, ["indices", "compute", "GRVI", "--catalog", str(own), "--config", str(sample_config),
                               "--out", str(tmp_path / "own")])
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "own" / "grvi_2024.tif") as src:
        assert src.tags()["catalog_version"] == "mine-1"
        grvi = src.read(1)
    with rasterio.open(tmp_path / "idx" / "mndwi_2024.tif") as src:  # same composite: green from MNDWI's inputs
        assert np.isfinite(grvi).sum() == np.isfinite(src.read(1)).sum()


def test_ei_table_recomputes_by_hand_and_the_whole_area_comes_from_totals(run):
    ei = run.tables["county_ei"]
    # EI = 0.35 BA + 0.25 VC + 0.15 WND + 0.15 (100 - LS) + 0.10 (100 - PL)   (HJ 192-2015; STANDARDS §1.1)
    by_hand = (0.35 * ei["biological_abundance"] + 0.25 * ei["vegetation_cover"] + 0.15 * ei["water_network_density"]
               + 0.15 * (100 - ei["land_stress"]) + 0.10 * (100 - ei["pollution_load"]))
    np.testing.assert_allclose(ei["ei_before_constraint"], by_hand, rtol=1e-12)
    # HQ = A_bio * weighted habitat area / area, A_bio = 511.2642131067 (STANDARDS §1.2)
    np.testing.assert_allclose(ei["hq_raw"], 511.2642131067 * ei["hq_weighted_km2"] / ei["area_km2"], rtol=1e-12)
    # LSI = A_ero * (0.4 severe + 0.2 moderate + 0.2 construction + 0.2 other) / area, other = sand + saline + bare
    # rock [C] (STANDARDS §1.5); the sample has bare rock, so "other" must not be 0
    other = ei["sand_km2"] + ei["saline_km2"] + ei["bare_rock_km2"]
    assert other.max() > 0
    np.testing.assert_allclose(ei["other_stress_km2"], other, rtol=1e-12)
    np.testing.assert_allclose(ei["land_stress_raw"], 236.0435677948 * (
        0.4 * ei["severe_erosion_km2"] + 0.2 * ei["moderate_erosion_km2"] + 0.2 * ei["construction_km2"]
        + 0.2 * other) / ei["area_km2"], rtol=1e-9)
    for year, rows in ei.groupby("year"):
        whole = rows[rows["code"] == "000000"].iloc[0]
        counties = rows[rows["code"] != "000000"]
        for total in ("area_km2", "hq_weighted_km2", "river_length_km", "water_area_km2", "construction_km2",
                      "severe_erosion_km2", "cod_emission_t"):
            assert whole[total] == pytest.approx(counties[total].sum(), rel=1e-9), total
        assert whole["ei_before_constraint"] != pytest.approx(counties["ei_before_constraint"].mean(), abs=1e-3)
    # the planted constraint event (a 较大 event in 2024) caps its county one grade down, never adds to EI
    hit = ei[(ei["year"] == 2024) & ei["constraint_rule"].fillna("").str.len().gt(0)]
    assert len(hit) == 1 and hit["ei"].iloc[0] < hit["ei_before_constraint"].iloc[0]


def test_ei_change_classes_follow_the_standard_thresholds(run):
    change = run.tables["county_ei_change"]
    for _, row in change.iterrows():
        d = abs(row["delta_ei"])
        expected = "无明显变化" if d < 1 else ("略微" if d < 3 else ("明显" if d < 8 else "显著"))
        assert row["change_class"].startswith(expected[:2]), row.to_dict()
    # the change without the 环境限制指数, from the EI table's own columns
    ei = run.tables["county_ei"].set_index(["code", "year"])["ei_before_constraint"]
    for _, row in change.iterrows():
        assert row["delta_ei_before_constraint"] == pytest.approx(ei[row["code"], 2024] - ei[row["code"], 2023])
    assert "county_ei" in run.tables and (run.out_dir / "layers" / "erosion_class_2024.tif").exists()
    assert run.maps["ei_by_county_2024"].exists()


def test_baseline_ei_can_come_from_last_years_results(run, sample_config, tmp_path):
    config = ecoassess.load_config(sample_config)
    config.baseline_year = None      # this run computes only 2024 ...
    config.thermal = {}
    config.outputs.maps = False
    config.hj192.previous_results = [run.out_dir / "results.gpkg"]   # ... and reads 2023 from last year's results
    config.baseline_year = 2023
    config.imagery.pop(2023)
    config.land_cover.pop(2023)
    result = ecoassess.run(config, out=tmp_path / "next")
    assert set(result.tables["county_ei"]["year"]) == {2024}
    change = result.tables["county_ei_change"].set_index("code")
    earlier = run.tables["county_ei_change"].set_index("code")
    np.testing.assert_allclose(change["ei_baseline"], earlier.loc[change.index, "ei_baseline"], rtol=1e-12)
    assert (change["baseline_source"] == "hj192.previous_results").all()
    assert "function_zone_change_class" in change.columns and not change["function_zone_change_verified"].any()


def _with_clcd_2024(config, tmp_path):
    """The config with its 2024 CAS land cover recoded to CLCD (one grass class, as HJ 192 needs split)."""
    cas_to_clcd = {11: 1, 12: 1, 21: 2, 22: 3, 23: 2, 24: 2, 31: 4, 32: 4, 33: 4, 41: 5, 42: 5, 43: 5,
                   51: 8, 52: 8, 53: 8, 65: 7, 66: 7}
    with rasterio.open(config.land_cover[2024].path) as src:
        cas, profile = src.read(1), src.profile
    clcd = np.zeros_like(cas)
    for a, b in cas_to_clcd.items():
        clcd[cas == a] = b
    assert set(np.unique(cas)) <= set(cas_to_clcd) | {0}
    path = tmp_path / "clcd_2024.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(clcd, 1)
    config.land_cover[2024].path, config.land_cover[2024].legend = path, "clcd"
    return config


def test_a_grass_class_without_cover_levels_is_split_by_this_years_fvc(sample_config, tmp_path):
    """CLCD has one grass class; HJ 192 needs high/medium/low cover: the run splits it by FVC 5/20/50 %."""
    from ecoassess.pipeline import build_grid, read_study_area, read_zone_sets
    from ecoassess.stages.ei import ei_year

    config = _with_clcd_2024(ecoassess.load_config(sample_config), tmp_path)
    study_area = read_study_area(config)
    grid = build_grid(config, study_area)
    ei, _, habitat = ei_year(config, 2024, grid, read_zone_sets(config, study_area, grid))
    grass = habitat[["grass_high", "grass_medium", "grass_low"]]
    with_grass = grass[grass.sum(axis=1) > 0.5]
    assert len(with_grass) >= 2
    assert (with_grass.gt(0).sum(axis=1) >= 2).all()    # more than one cover level: a real split, not a default
    assert any("FVC" in a or "fvc" in a for a in ei.assumptions)


@pytest.mark.parametrize("method", ["median", "monthly_max_ndvi"])
def test_ei_reuses_the_vegetation_stage_layers_with_the_same_result(sample_config, tmp_path, method):
    """With either composite and a grass-splitting legend, EI from the vegetation stage's layers (FVC, and the
    monthly-max NDVI made in the same pass as the composite) equals EI computed from scratch."""
    import pandas as pd

    from ecoassess.pipeline import build_grid, read_study_area, read_zone_sets
    from ecoassess.stages.ei import ei_year
    from ecoassess.stages.vegetation import vegetation_year

    config = _with_clcd_2024(ecoassess.load_config(sample_config), tmp_path)
    config.composite.method = method
    study_area = read_study_area(config)
    grid = build_grid(config, study_area)
    zone_sets = read_zone_sets(config, study_area, grid)
    veg = vegetation_year(config, 2024, grid, zone_sets["county"].covered())
    fresh, _, fresh_habitat = ei_year(config, 2024, grid, zone_sets)
    assert veg.monthly_max_ndvi is not None and veg.monthly_max_dates > 0
    reused, _, reused_habitat = ei_year(config, 2024, grid, zone_sets, veg)
    pd.testing.assert_frame_equal(reused.table, fresh.table, rtol=1e-12)
    pd.testing.assert_frame_equal(reused_habitat, fresh_habitat, rtol=1e-12)


def test_cli_run_with_no_memory_budget_and_zstd_gives_the_same_results(run, sample_copy, tmp_path):
    """``--memory-budget-mb 0``: every cache goes to disk; ``outputs.compression: zstd``: every layer COG is ZSTD.
    Tables and layer values equal the default run's (in memory, DEFLATE); the manifest records both settings."""
    sample_config = sample_copy  # a config is written beside the sample: the module's copy
    import pandas as pd
    import yaml

    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    raw.setdefault("outputs", {})["compression"] = "zstd"
    config = sample_config.with_name("assessment-zstd.yaml")  # beside the original: same relative paths
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "spilled"
    res = CliRunner().invoke(main, ["-q", "run", str(config), "--out", str(out), "--memory-budget-mb", "0"])
    assert res.exit_code == 0, res.output
    layers = sorted((out / "layers").glob("*.tif"))
    assert layers and {p.name for p in layers} == {p.name for p in (run.out_dir / "layers").glob("*.tif")}
    for path in layers:
        with rasterio.open(path) as zstd, rasterio.open(run.out_dir / "layers" / path.name) as deflate:
            assert zstd.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "ZSTD", path.name
            assert deflate.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE", path.name
            np.testing.assert_array_equal(zstd.read(1), deflate.read(1), err_msg=path.name)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    from ecoassess.materialize import memory_budget_mb

    assert manifest["extra"]["memory_budget_mb"] == 0 and manifest["extra"]["output_compression"] == "zstd"
    assert run.manifest["extra"]["memory_budget_mb"] == memory_budget_mb()  # the environment's or the default
    assert run.manifest["extra"]["output_compression"] == "deflate"
    for name in ("county_vegetation", "county_rsei", "county_ei"):
        spilled = pd.read_csv(out / "tables" / f"{name}.csv", dtype={"code": str})
        in_memory = pd.read_csv(run.out_dir / "tables" / f"{name}.csv", dtype={"code": str})
        pd.testing.assert_frame_equal(spilled, in_memory, rtol=1e-12)


def test_cli_unwritable_results_folder_is_one_line_not_a_traceback(sample_config, tmp_path):
    (tmp_path / "a_file").write_text("x")
    res = CliRunner().invoke(main, ["run", str(sample_config), "--out", str(tmp_path / "a_file" / "res")])
    assert res.exit_code == 2, res.output
    assert "a_file: is a file, not a folder" in res.output and "partial" not in res.output
    assert "Traceback" not in res.output


def test_sigterm_removes_the_half_written_results_and_keeps_the_earlier_ones(sample_config, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "res"
    _earlier_results(out)
    proc = subprocess.Popen([sys.executable, "-m", "ecoassess", "--quiet", "run", str(sample_config), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("res.partial-*/*")) and time.monotonic() < deadline:  # the run is writing
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]
    assert sorted(p.name for p in out.iterdir()) == ["earlier.txt", "manifest.json"]


def test_kill_9_twice_then_the_same_command_gives_byte_identical_results_and_reuses_the_done_parts(
        run, sample_config, tmp_path):
    """kill -9 (no clean-up possible) after the first part and again after the third, spilling to disk; the same
    command then completes with every output byte-identical to an uninterrupted run (the manifest and the report
    documents that quote it aside),
    reusing the parts that were complete, and leaves no staging or spill folder behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "res"
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "ECOASSESS_MEMORY_BUDGET_MB": "0"}  # spill everything
    (tmp_path / "tmp").mkdir()
    cmd = [sys.executable, "-m", "ecoassess", "--quiet", "run", str(sample_config), "--out", str(out)]
    for parts_done in (1, 3):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        records = tmp_path / f"res.partial-{proc.pid}" / ".ecoassess-resume"
        deadline = time.monotonic() + 120
        def done():  # completed records only: ".<name>.pkl.<pid>.tmp.pkl" is one still being written
            return [p for p in records.glob("*.pkl") if not p.name.startswith(".")]

        while len(done()) < parts_done and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists()
    assert list((tmp_path / "tmp").glob("ecoassess-spill-*"))  # the killed runs could not clean up
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reference = {p.relative_to(run.out_dir).as_posix(): _sha(p) for p in run.out_dir.rglob("*") if p.is_file()}
    resumed = {p.relative_to(out).as_posix(): _sha(p) for p in out.rglob("*") if p.is_file()}
    reference.pop("manifest.json"), resumed.pop("manifest.json")
    # the report's documents quote the manifest (the run's date and time, its record): present in both; their maps
    # and the web map are byte-identical like every other output
    documents = {rel for rel in reference if rel.startswith("report/") and "/report." in rel}
    assert documents and documents == {rel for rel in resumed if rel.startswith("report/") and "/report." in rel}
    for rel in documents:
        reference.pop(rel), resumed.pop(rel)
    assert any(rel.startswith("report/zh/figures/") for rel in reference)
    assert resumed == reference
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["extra"]["resumed"]["parts_s"]) >= {"vegetation 2023", "vegetation 2024", "rsei"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "tmp"]
    assert not list((tmp_path / "tmp").glob("ecoassess-spill-*"))
