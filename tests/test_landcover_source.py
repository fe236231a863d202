"""A classified map as the land-cover source of the assessment (issue 21 part 6): ecoassess.landcover.provenance,
the sidecar ``landcover predict`` writes and ``landcover assess`` completes, the manifest's
``extra.land_cover.maps[<year>]``, the ``landcover_sources`` table, validate, and the red-line patches' classes.

Expected numbers are computed here by hand: the worked example of Olofsson et al. 2014 §5 (Table 8), the
area-weighted overall accuracy and its interval from the sample counts (eqs. 1 and 5), class areas as cell counts
of the map read with rasterio.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from ecoassess.grid import china_albers_crs
from ecoassess.landcover.provenance import (MAP_KEYS, map_source, read_map_sidecar, record_accuracy, sidecar_path,
                                            sources_table, write_map_sidecar)
from tests import redline_scenes as S
from tests.builders import validate_problems

pytest.importorskip("sklearn")

Z95 = 1.959963984540054

# Olofsson et al. 2014 §5, Table 8: sample counts, rows = map class (deforestation, forest gain, stable forest,
# stable non-forest), columns = reference class; mapped areas in 30 m pixels
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])


def _olofsson_by_hand():
    """Overall accuracy and its standard error, eqs. 1 and 5, written out with numpy."""
    w = OLOFSSON_PIXELS / OLOFSSON_PIXELS.sum()
    n_i = OLOFSSON_COUNTS.sum(axis=1)
    users = np.diag(OLOFSSON_COUNTS) / n_i
    overall = float((w * users).sum())
    se = float(np.sqrt((w ** 2 * users * (1 - users) / (n_i - 1)).sum()))
    return overall, se


def _small_map(path, values):
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype="uint8", crs=china_albers_crs(), transform=from_origin(300_000, 3_300_000, 30, 30),
                       nodata=0) as dst:
        dst.write(values.astype("uint8"), 1)
    return path


@pytest.fixture()
def classified(tmp_path):
    """A tiny map with the sidecar predict writes, from a forest trained on four points."""
    from ecoassess.landcover.classify import save_model, train_classifier

    model = train_classifier(np.array([[0.1, 0.2], [0.2, 0.1], [0.8, 0.9], [0.9, 0.8]]), [21, 21, 12, 12],
                             ["red", "nir"], seed=0, n_estimators=5)
    model.extra["training_year"] = 2024
    model_json = save_model(model, tmp_path / "model")
    map_path = _small_map(tmp_path / "landcover_2024.tif", np.array([[21, 21, 12], [12, 12, 0]]))
    write_map_sidecar(map_path, model, model_json=model_json, year=2024)
    return map_path, json.loads(model_json.read_text(encoding="utf-8"))


def _olofsson_summary():
    from ecoassess.landcover import accuracy

    classes = [1, 2, 3, 4]
    conf = pd.DataFrame(OLOFSSON_COUNTS, index=pd.Index(classes, name="map"),
                        columns=pd.Index(classes, name="reference"))
    return accuracy.accuracy_summary(conf, pd.Series(OLOFSSON_PIXELS, index=classes))


def test_sidecar_of_a_prediction_names_legend_and_model(classified):
    map_path, model_meta = classified
    assert sidecar_path(map_path).name == "landcover_2024.tif.json"
    record = read_map_sidecar(map_path)
    assert record["legend"]["name"] == "cas_lucc" and record["legend"]["file"] == "layers/cas_lucc.yaml"
    assert record["model"]["sha256"] == model_meta["model_sha256"]
    assert record["model"]["file"] == str((map_path.parent / "model" / "model.pkl").resolve())
    assert record["accuracy"] is None
    entry = map_source(2024, _source(map_path))
    assert list(entry)[:len(MAP_KEYS)] == list(MAP_KEYS)
    assert entry["classified"] is True and entry["legend"] == "cas_lucc"
    assert entry["model"]["training_year"] == 2024
    assert entry["overall_accuracy"] is None and entry["validation_samples"] is None   # not assessed yet


def _source(path, legend="cas_lucc"):
    from ecoassess.config import RasterSource

    return RasterSource(path=path, legend=legend)


def test_accuracy_of_olofssons_example_goes_into_the_sidecar_and_the_manifest_entry(classified, tmp_path):
    map_path, _ = classified
    written = record_accuracy(map_path, summary=_olofsson_summary(), samples=640, results_dir=tmp_path / "acc")
    assert written == sidecar_path(map_path)
    overall, se = _olofsson_by_hand()
    assert round(overall, 3) == 0.947                               # Olofsson et al. 2014 §5
    entry = map_source(2024, _source(map_path))
    assert entry["overall_accuracy"] == pytest.approx(overall, abs=1e-6)
    low, high = entry["overall_accuracy_ci95"]
    assert low == pytest.approx(overall - Z95 * se, abs=1e-6) and high == pytest.approx(overall + Z95 * se, abs=1e-6)
    assert entry["validation_samples"] == 640
    acc = read_map_sidecar(map_path)["accuracy"]
    # user's accuracy 0.88 / 0.73 / 0.93 / 0.96 (Olofsson et al. 2014 §5)
    assert [round(acc["users_accuracy"][k], 2) for k in "1234"] == [0.88, 0.73, 0.93, 0.96]
    table = sources_table({"2024": entry})
    assert table.loc[0, "classified"] and table.loc[0, "validation_samples"] == 640
    assert table.loc[0, "overall_accuracy_ci95_low"] == pytest.approx(low)


def test_a_map_changed_after_prediction_claims_neither_model_nor_accuracy(classified, tmp_path):
    map_path, _ = classified
    record_accuracy(map_path, summary=_olofsson_summary(), samples=640)
    _small_map(map_path, np.array([[21, 12, 12], [12, 12, 0]]))     # edited by hand after the assessment
    entry = map_source(2024, _source(map_path))
    assert entry["classified"] is True
    assert entry["model"] is None and entry["overall_accuracy"] is None
    assert "describes another map" in entry["note"]
    assert record_accuracy(map_path, summary=_olofsson_summary(), samples=640) is None   # the sidecar untouched
    assert read_map_sidecar(map_path)["accuracy"]["validation_samples"] == 640


def test_a_product_map_is_not_classified(tmp_path):
    path = _small_map(tmp_path / "clcd_2023.tif", np.array([[1, 2], [3, 4]]))
    entry = map_source(2023, _source(path, "clcd"))
    assert entry == {"file": str(path), "legend": "clcd", "classified": False, "model": None,
                     "overall_accuracy": None, "overall_accuracy_ci95": None, "validation_samples": None}
    # a JSON beside the map that another tool wrote is no sidecar of ours
    sidecar_path(path).write_text(json.dumps({"type": "Feature"}), encoding="utf-8")
    assert map_source(2023, _source(path, "clcd"))["classified"] is False


def test_red_line_patches_carry_the_classes_of_both_dates():
    from ecoassess.redline.detect import detect_patches

    rng = np.random.default_rng(4)
    lc0 = S.base_landcover()
    lc1 = lc0.copy()
    lc1[70:86, 41:46] = 12                                              # grassland (31) ploughed to dry land
    res = detect_patches(S.dataset(S.reflectance(lc0, rng)), S.dataset(S.reflectance(lc0, rng)), S.units(),
                         land_cover_before=S.landcover_array(lc0), land_cover_after=S.landcover_array(lc1))
    row = res.patches.iloc[0]
    assert (row.land_cover_from, row.land_cover_to) == (31, 12)
    # a restored quarry (53 → forest 21): the classes as they were, not the mirrored view the rules type it by
    lc0 = S.base_landcover()
    lc0[20:30, 53:63] = 53
    lc1 = S.base_landcover()
    res = detect_patches(S.dataset(S.reflectance(lc0, rng)), S.dataset(S.reflectance(lc1, rng)), S.units(),
                         land_cover_before=S.landcover_array(lc0), land_cover_after=S.landcover_array(lc1))
    row = res.patches.iloc[0]
    assert row.change_type == "reduced" and (row.land_cover_from, row.land_cover_to) == (53, 21)
    # without land cover: 0 for both
    res = detect_patches(S.dataset(S.reflectance(lc0, rng)), S.dataset(S.reflectance(lc1, rng)), S.units())
    assert set(res.patches.land_cover_from) == {0} and set(res.patches.land_cover_to) == {0}


# -- the sample area: train → predict → assess → a run on the classified map -------------------------------------

@pytest.fixture(scope="module")
def area(tmp_path_factory):
    from ecoassess.config import load_config
    from ecoassess.grid import read_on_grid
    from ecoassess.landcover import commands
    from ecoassess.landcover.accuracy import propose_validation_sample
    from ecoassess.landcover.samples import draw_map_samples
    from ecoassess.pipeline import build_grid, read_study_area, run
    from ecoassess.sample import write_sample

    root = tmp_path_factory.mktemp("lcsource")
    config_path = write_sample(root / "sample")
    config = load_config(config_path)
    grid = build_grid(config, read_study_area(config))
    truth = read_on_grid(root / "sample" / "landcover" / "lucc_2024.tif", grid, kind="classes", dst_nodata=0)
    truth.attrs["nodata"] = 0
    draw_map_samples(truth, 40, seed=1).to_file(root / "train.gpkg")
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    raw["landcover_model"] = {"training": {"path": str(root / "train.gpkg"), "class_field": "class"},
                              "n_estimators": 30}
    (root / "sample" / "lc.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    lc_config = load_config(root / "sample" / "lc.yaml")
    pred = commands.predict(lc_config, root / "pred", year=2024)
    map_path = pred["map"]
    with rasterio.open(map_path) as src:
        mapped = src.read(1)
    import rioxarray

    layer = rioxarray.open_rasterio(map_path).squeeze("band", drop=True)
    layer.attrs["nodata"] = 0
    val = propose_validation_sample(layer, 320, min_per_class=20, seed=3)
    col, row = (~grid.transform) * (val.geometry.x.to_numpy(), val.geometry.y.to_numpy())
    val["reference_class"] = truth.values[np.floor(row).astype(int), np.floor(col).astype(int)]
    val = val[val["reference_class"] != 0]
    val.to_file(root / "validation.gpkg")
    commands.assess(lc_config, root / "acc", map_path=map_path, reference=root / "validation.gpkg")
    # the assessment config names the classified map for 2024 (no legend: the map's own), the product for 2023
    run_raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    run_raw["land_cover"]["2024"] = {"path": str(map_path)}
    (root / "sample" / "classified.yaml").write_text(yaml.safe_dump(run_raw, allow_unicode=True), encoding="utf-8")
    run(root / "sample" / "classified.yaml", root / "run", stages=["hj192 ei", "land cover"], quiet=True)
    manifest = json.loads((root / "run" / "manifest.json").read_text(encoding="utf-8"))
    return {"root": root, "map": map_path, "mapped": mapped, "val": val, "manifest": manifest, "grid": grid,
            "raw": run_raw, "product": root / "sample" / "landcover" / "lucc_2023.tif"}


def test_the_manifest_says_which_map_and_which_accuracy_the_run_rests_on(area):
    maps = area["manifest"]["extra"]["land_cover"]["maps"]
    assert set(maps) == {"2023", "2024"}
    product = maps["2023"]
    assert product["file"] == str(area["product"].resolve()) and product["legend"] == "cas_lucc"
    assert product["classified"] is False and product["model"] is None and product["overall_accuracy"] is None
    own = maps["2024"]
    assert own["file"] == str(area["map"]) and own["legend"] == "cas_lucc" and own["classified"] is True
    sidecar = json.loads((area["root"] / "pred" / "model" / "model.json").read_text(encoding="utf-8"))
    assert own["model"]["sha256"] == sidecar["model_sha256"]
    assert own["model"]["file"] == str(area["root"] / "pred" / "model" / "model.pkl")
    # the area-weighted overall accuracy (Olofsson et al. 2014 eqs. 1, 5) of the validation sample, by hand
    mapped, val = area["mapped"], area["val"]
    pixels = pd.Series(mapped[mapped != 0]).value_counts()
    w = pixels / pixels.sum()
    right = (val["map_class"].astype(int) == val["reference_class"].astype(int)).groupby(val["map_class"])
    n_i, users = right.size(), right.mean()
    overall = float((w * users).sum())
    se = float(np.sqrt((w ** 2 * users * (1 - users) / (n_i - 1)).sum()))
    assert own["validation_samples"] == len(val)
    assert own["overall_accuracy"] == pytest.approx(overall, abs=1e-6)
    assert own["overall_accuracy_ci95"] == pytest.approx([overall - Z95 * se, overall + Z95 * se], abs=1e-6)
    # the sidecar is an input of the run (hashed): a later assess is a different run
    inputs = {i["path"] for i in area["manifest"]["inputs"]} if isinstance(area["manifest"]["inputs"], list) \
        else set(area["manifest"]["inputs"])
    assert any(str(p).endswith("landcover_2024.tif.json") for p in inputs)


def test_the_classified_map_feeds_the_ei(area):
    cell_km2 = area["grid"].cell_area_m2 / 1e6
    mapped = area["mapped"]
    ei = pd.read_csv(area["root"] / "run" / "tables" / "county_ei.csv", dtype={"code": str})
    whole = ei[(ei["year"] == 2024) & ei["is_whole_area"]].iloc[0]
    # HJ 192 paddy and dry land of 2024 are the classified map's cells (cell centres in the area), not the product's;
    # the EI weighs edge cells by their covered share, hence the 1 % tolerance
    for column, code in (("paddy_km2", 11), ("dry_land_km2", 12)):
        from_map = (mapped == code).sum() * cell_km2
        assert whole[column] == pytest.approx(from_map, rel=0.01), column
    assert np.isfinite(whole["ei"])
    sources = pd.read_csv(area["root"] / "run" / "tables" / "landcover_sources.csv")
    assert sources.set_index("year")["classified"].to_dict() == {2023: False, 2024: True}
    assert sources.set_index("year").loc[2024, "validation_samples"] == len(area["val"])


def test_the_planted_product_differs_from_the_classified_map(area):
    # (so that the EI test above can tell which map was used)
    cell_km2 = area["grid"].cell_area_m2 / 1e6
    with rasterio.open(area["root"] / "sample" / "landcover" / "lucc_2024.tif") as src:
        planted = src.read(1)
    assert abs((planted == 11).sum() - (area["mapped"] == 11).sum()) * cell_km2 > 2.0


def test_validate_checks_a_classified_map_like_any_land_cover_raster(area, tmp_path):
    root = area["root"]
    raw = json.loads(json.dumps(area["raw"]))
    raw["land_cover"]["2024"] = {"path": str(area["map"]), "legend": "clcd"}
    bad = root / "sample" / "wrong_legend.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    problems = validate_problems(bad)
    assert any(p.startswith("land_cover.2024.legend: 'clcd', but") and "classified in legend 'cas_lucc'" in p
               for p in problems), problems
    # a copy whose footprint misses the study area is refused as any raster would be
    far = tmp_path / "far.tif"
    with rasterio.open(area["map"]) as src:
        profile = src.profile
        data = src.read(1)
        t = src.transform
    profile.update(transform=rasterio.Affine(t.a, t.b, t.c + 500_000, t.d, t.e, t.f), driver="GTiff")
    with rasterio.open(far, "w", **profile) as dst:
        dst.write(data, 1)
    shutil.copy(sidecar_path(area["map"]), sidecar_path(far))
    raw["land_cover"]["2024"] = {"path": str(far)}
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    problems = validate_problems(bad)
    assert any(p.startswith("land_cover.2024") and str(far) in p for p in problems), problems
