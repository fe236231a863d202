import hashlib
import json
import time

import pandas as pd

from ecoassess.manifest import RunTimer, build_manifest, sha256_file, write_manifest
from ecoassess.store import ResultsStore


def test_sha256_matches_hashlib(tmp_path):
    p = tmp_path / "band.bin"
    p.write_bytes(bytes(range(256)) * 5000 + b"tail")
    assert sha256_file(p, chunk=1000) == hashlib.sha256(p.read_bytes()).hexdigest()


def _run(tmp_path, out_name):
    inputs = tmp_path / "inputs"
    (inputs / "bands").mkdir(parents=True, exist_ok=True)
    (inputs / "bands" / "b04.tif").write_bytes(b"red" * 100)
    (inputs / "zones.gpkg").write_bytes(b"zones")
    cfg_path = tmp_path / "assessment.yaml"
    cfg_path.write_text("area: 测试\n", encoding="utf-8")
    config = {"area": "测试", "zones": "inputs/zones.gpkg", "sources": {"bands": "inputs/bands"}, "year": 2024}
    timer = RunTimer()
    with ResultsStore(tmp_path / out_name) as store:
        with timer.stage("composite"):
            time.sleep(0.02)
        with timer.stage("tables"):
            store.write_table("县级结果", pd.DataFrame({"县名": ["甲县"], "ei": [60.5]}), gpkg=False)
        manifest = build_manifest(config=config, config_path=cfg_path,
                                  inputs=[inputs / "bands", inputs / "zones.gpkg"], outputs_dir=store.staging,
                                  timings=timer.timings, grid={"resolution_m": 30}, extra={"note": "测试"},
                                  catalogs={"indices": "2024.1"}, warnings=["县 X: no data"],
                                  registry=store.outputs)
        write_manifest(manifest, store.path("manifest.json"))
    return manifest, tmp_path / out_name


def test_manifest_contents(tmp_path):
    manifest, out = _run(tmp_path, "out")
    assert list(manifest)[:4] == ["manifest_version", "ecoassess_version", "run", "config"]
    inputs = {e["path"]: e for e in manifest["inputs"]}
    band = tmp_path / "inputs" / "bands" / "b04.tif"
    assert inputs[str(band)]["sha256"] == hashlib.sha256(band.read_bytes()).hexdigest()
    assert inputs[str(band)]["size_bytes"] == 300
    assert manifest["config"]["resolved_paths"]["zones"] == str((tmp_path / "inputs" / "zones.gpkg").resolve())
    assert manifest["config"]["sha256"] == sha256_file(tmp_path / "assessment.yaml")
    assert manifest["run"]["started_utc"] <= manifest["run"]["ended_utc"]
    stages = manifest["timings"]["stages_s"]
    assert list(stages) == ["composite", "tables"] and stages["composite"] >= 0.02
    outputs = {e["path"]: e for e in manifest["outputs"]}
    assert "manifest.json" not in outputs
    csv = out / "tables" / "县级结果.csv"
    assert outputs["tables/县级结果.csv"]["sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert outputs["tables/县级结果.csv"]["kind"] == "table"
    pk = manifest["packages"]
    for name in ("python", "numpy", "rasterio", "rioxarray", "gdal", "pyproj", "proj", "geopandas"):
        assert name in pk
    assert manifest["catalogs"] == {"indices": "2024.1"} and manifest["warnings"] == ["县 X: no data"]
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["extra"]["note"] == "测试"


def test_same_inputs_give_identical_tables_and_hashes(tmp_path):
    m1, _ = _run(tmp_path, "out1")
    m2, _ = _run(tmp_path, "out2")
    assert m1["outputs"] == m2["outputs"]
    assert m1["inputs"] == m2["inputs"]
    assert list(m1) == list(m2)


def test_nan_and_infinity_are_written_as_null(tmp_path):
    """A zone without data gives NaN statistics; the manifest must still be valid JSON (it crashed the run)."""
    import numpy as np

    path = write_manifest({"a": float("nan"), "b": [1.5, float("inf"), np.float32("nan")], "c": {"d": np.float64(2.0)},
                           "e": (np.int64(3), -float("inf"))}, tmp_path / "manifest.json")
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": None, "b": [1.5, None, None], "c": {"d": 2.0},
                                                            "e": [3, None]}
