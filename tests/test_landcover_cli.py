"""``ecoassess landcover train|predict|assess`` end to end on the sample area (issue 21 part 10 and its done-when):
trained on points drawn from the planted 2024 land cover, the map's accuracy is printed, and the error-adjusted
areas' 95 % intervals hold the true planted areas of the large classes.

The validation sample is drawn with engineer A's helper through the shared contract
(``ecoassess.landcover.accuracy.propose_validation_sample``), its ``reference_class`` filled from the planted land
cover (what staff would label), and ``assess`` uses the contract's estimator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("sklearn")

from ecoassess.cli import main  # noqa: E402
from ecoassess.config import load_config  # noqa: E402
from ecoassess.grid import read_on_grid  # noqa: E402
from ecoassess.landcover.samples import draw_map_samples  # noqa: E402
from ecoassess.pipeline import build_grid, read_study_area  # noqa: E402


@pytest.fixture(scope="module")
def area(sample_copy, tmp_path_factory):
    root = tmp_path_factory.mktemp("lc")
    config_path = sample_copy   # the module's copy of the sample (conftest): landcover.yaml is written beside it
    config = load_config(config_path)
    grid = build_grid(config, read_study_area(config))
    truth = read_on_grid(config_path.parent / "landcover" / "lucc_2024.tif", grid, kind="classes", dst_nodata=0)
    truth.attrs["nodata"] = 0
    train = draw_map_samples(truth, 300, seed=1)       # a stratified sample of the planted map, 300 per class
    train.to_file(root / "train.gpkg")
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    raw["landcover_model"] = {"training": {"path": str(root / "train.gpkg"), "class_field": "class"},
                              "terrain": ["elevation", "slope"]}
    lc_config = config_path.parent / "landcover.yaml"
    lc_config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return {"root": root, "config": lc_config, "grid": grid, "truth": truth.values, "raw": raw}


def invoke(*args):
    result = CliRunner().invoke(main, ["--quiet", *map(str, args)], catch_exceptions=False)
    return result


def test_train_predict_assess_on_the_sample_area(area):
    # engineer A's accuracy module (issue 21 part 4); until both branches are merged this part cannot run
    pytest.importorskip("ecoassess.landcover.accuracy", reason="ecoassess/landcover/accuracy.py not merged yet")
    root, config = area["root"], area["config"]
    r = invoke("landcover", "train", config, "--out", root / "train")
    assert r.exit_code == 0, r.output
    assert "16 classes" in r.output and "11 features" in r.output   # 6 bands + NDVI, MNDWI, NDBI + elevation, slope
    sidecar = json.loads((root / "train" / "model" / "model.json").read_text(encoding="utf-8"))
    assert sidecar["feature_names"][-2:] == ["elevation_m", "slope_deg"]
    assert sidecar["params"]["random_state"] == 0 and sidecar["params"]["n_jobs"] == 1
    # the 2024 scenes never see a few training points clearly (cloud in every scene): set aside with their rows
    rejected = pd.read_csv(root / "train" / "tables" / "landcover_rejected_samples.csv")
    assert len(rejected) < 50 and rejected["reason"].str.startswith("in a masked or unobserved pixel").all()
    manifest = json.loads((root / "train" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["extra"]["landcover"]["model"]["training_sample_sha256"] == sidecar["training_sample_sha256"]

    r = invoke("landcover", "predict", config, "--out", root / "pred", "--model", root / "train" / "model")
    assert r.exit_code == 0, r.output
    map_path = root / "pred" / "layers" / "landcover_2024.tif"
    areas = pd.read_csv(root / "pred" / "tables" / "landcover_class_areas.csv")
    cell_km2 = area["grid"].cell_area_m2 / 1e6
    import rioxarray

    mapped = rioxarray.open_rasterio(map_path).squeeze("band", drop=True)
    mv = mapped.values
    counts = pd.Series(mv[mv != 0]).value_counts()
    assert dict(zip(areas.class_code, areas.cells)) == counts.to_dict()
    assert areas["area_km2"].to_numpy() == pytest.approx(areas["cells"].to_numpy() * cell_km2)

    # the validation sample: the contract's helper on the map, labelled from the planted land cover
    from ecoassess.landcover.accuracy import propose_validation_sample

    mapped.attrs["nodata"] = 0
    val = propose_validation_sample(mapped, 800, seed=3)
    col, row = (~area["grid"].transform) * (val.geometry.x.to_numpy(), val.geometry.y.to_numpy())
    val["reference_class"] = area["truth"][np.floor(row).astype(int), np.floor(col).astype(int)]
    val = val[val["reference_class"] != 0]
    val.to_file(root / "validation.gpkg")
    r = invoke("landcover", "assess", config, "--out", root / "acc", "--map", map_path,
               "--reference", root / "validation.gpkg")
    assert r.exit_code == 0, r.output
    print(r.output)          # overall accuracy, per-class user's/producer's, adjusted areas: the done-when print
    import re

    overall = float(re.search(r"^overall accuracy (0\.\d+) \((\d+) samples; area-weighted", r.output, re.M).group(1))
    # the area-weighted overall accuracy estimates the share of the map that is right: compare with the truth
    right = float((mv[mv != 0] == area["truth"][mv != 0]).mean())
    assert abs(overall - right) < 0.05, (overall, right)
    adjusted = pd.read_csv(root / "acc" / "tables" / "landcover_adjusted_areas.csv").set_index("class")
    # the truth over the mapped cells (the map leaves cells never seen clearly as nodata)
    truth = pd.Series(area["truth"][mv != 0]).value_counts() * cell_km2
    truth = truth[truth.index != 0]
    large = truth[truth > 0.05 * truth.sum()].index                     # 11, 12, 21, 24 on the sample
    assert set(large) >= {11, 12, 21}
    inside = {c: adjusted.loc[c, "ci_low"] <= truth[c] <= adjusted.loc[c, "ci_high"] for c in large}
    print("truth inside the 95 % interval (this draw):", inside)
    # one draw's 95 % intervals miss a true area 5 % of the time each: the claim is checked as a coverage rate over
    # 20 independent validation draws (same map, the contract's estimator). Observed: 16-19 of 20 per large class
    # (the normal-approximation interval covers a little less than nominal with 50 samples per stratum); fewer
    # than 15 would mean a biased estimate (P(X <= 14) = 0.0003 at a coverage of 0.95, 1.5 % at 0.88).
    from ecoassess.landcover import accuracy

    areas_km2 = areas.set_index("class_code")["area_km2"]
    hits = dict.fromkeys(large, 0)
    for seed in range(20):
        draw = propose_validation_sample(mapped, 800, seed=100 + seed)
        c, r = (~area["grid"].transform) * (draw.geometry.x.to_numpy(), draw.geometry.y.to_numpy())
        ref = area["truth"][np.floor(r).astype(int), np.floor(c).astype(int)]
        keep = ref != 0
        conf = accuracy.confusion_matrix(draw["map_class"].to_numpy()[keep], ref[keep],
                                         classes=sorted(set(areas_km2.index) | set(ref[keep].tolist())))
        adj = accuracy.error_adjusted_areas(conf, areas_km2.reindex(conf.index).fillna(0.0))
        for code in large:
            hits[code] += bool(adj.loc[code, "ci_low"] <= truth[code] <= adj.loc[code, "ci_high"])
    print("truth inside the 95 % interval, out of 20 draws:", hits)
    assert all(h >= 15 for h in hits.values()), hits
    # the per-pixel map alone misses dry land by far more than the estimator's interval is wide
    assert abs(adjusted.loc[12, "mapped_area"] - truth[12]) > adjusted.loc[12, "ci_high"] - adjusted.loc[12, "ci_low"]
    confusion = pd.read_csv(root / "acc" / "tables" / "landcover_confusion.csv")
    assert confusion["total"].sum() == len(val)


def test_a_saved_model_is_reused_on_another_year_and_refused_for_other_features(area):
    root, config = area["root"], area["config"]
    if not (root / "train" / "model" / "model.json").is_file():
        assert invoke("landcover", "train", config, "--out", root / "train").exit_code == 0
    r = invoke("landcover", "predict", config, "--out", root / "pred2023", "--year", 2023,
               "--model", root / "train" / "model")
    assert r.exit_code == 0, r.output
    assert (root / "pred2023" / "layers" / "landcover_2023.tif").is_file()
    raw = dict(area["raw"])
    raw["landcover_model"] = {**raw["landcover_model"], "terrain": []}
    other = config.parent / "no_terrain.yaml"
    other.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    r = CliRunner().invoke(main, ["--quiet", "landcover", "predict", str(other), "--out", str(root / "pred_bad"),
                                  "--model", str(root / "train" / "model")])
    assert r.exit_code == 2
    assert "does not match the saved model: missing elevation_m, slope_deg" in r.output
    assert not (root / "pred_bad").exists()       # nothing half-written


def test_validate_names_landcover_model_problems(area):
    raw = dict(area["raw"])
    raw["landcover_model"] = {**raw["landcover_model"], "indices": ["NDVI", "NDXI"],
                              "training": {"path": str(area["root"] / "train.gpkg"), "class_field": "类别"}}
    bad = area["config"].parent / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    r = CliRunner().invoke(main, ["validate", str(bad)])
    assert r.exit_code == 1
    assert "landcover_model.indices: 'NDXI' is not an index of the catalog" in r.output
    assert "landcover_model.training:" in r.output and "has no column '类别'" in r.output


def test_several_seasons_are_stacked_from_the_scenes_of_their_months(area):
    from ecoassess.config import LandcoverModelSpec, SeasonSpec
    from ecoassess.landcover.features import build_features, sample_features
    from ecoassess.sources import composite
    from ecoassess.stages.base import RunInputs

    config = load_config(area["config"])
    inputs = RunInputs(config, area["grid"])
    spec = LandcoverModelSpec(seasons=[SeasonSpec(months=[5, 6]), SeasonSpec(months=[7, 8, 9])], bands=["red", "nir"],
                              indices=["NDVI"], terrain=["slope"])
    stack = build_features(inputs, spec, 2024)
    assert stack.names == ["m5-6:red", "m5-6:nir", "m5-6:NDVI", "m7-9:red", "m7-9:nir", "m7-9:NDVI", "slope_deg"]
    seasons = stack.description["seasons"]
    # the sample's 2024 scenes: 22 May (first season), 16 July and 4 September (second)
    assert [s["scenes"] for s in seasons] == [["2024-05-22"], ["2024-07-16", "2024-09-04"]]
    # the second season's red is the median of the clear observations of July and September: the composite of
    # those scenes alone, built here without the feature code
    july_sept = composite(inputs.scenes(2024), method="median", months=(7, 8, 9)).bands["red"].values
    rows, cols = np.array([100, 400, 700]), np.array([50, 300, 600])
    got = sample_features(stack, rows, cols)
    np.testing.assert_array_equal(got[:, 3], july_sept[rows, cols])
    # NDVI of the first season from its own red and nir
    red, nir = got[:, 0], got[:, 1]
    np.testing.assert_allclose(got[:, 2], (nir - red) / (nir + red), rtol=1e-5)
