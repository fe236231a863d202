"""Any legend a user brings (issue 21 part 9): a legend given as a path, the same checks as the shipped legends,
and the shipped IGBP legend (MODIS MCD12Q1 LC_Type1) on a run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from ecoassess.errors import ConfigError, InputError
from ecoassess.legends import available_legends, cas_code, legend_problems, load_legend
from tests.test_landcover_only_run import CELL_KM2, H, W, land_cover_years, write_world

MY_LEGEND = """\
# 本县自己的土地覆盖分类 (saved by Notepad as GBK)
name: 本县分类
long_name: 某县 2024 年土地覆盖
version: "1"
nodata: 0
classes:
  1: {zh: 森林, en: forest, color: "#1f7a1f", water: false, hj192: forest}
  2: {zh: 农田, en: farmland, color: "#f5e8a3", water: false, hj192: cropland, split: paddy_layer, default: dry_land, confidence: C}
  3: {zh: 城镇, en: town, color: "#e31a1c", water: false, hj192: urban}
  4: {zh: 草地, en: grass, color: "#a6d96a", water: false, hj192: grass_medium}
  5: {zh: 水面, en: water, color: "#1f5fbf", water: true, hj192: lake_reservoir}
"""


def _my_codes() -> dict[int, np.ndarray]:
    """The three years recoded into the user's own scheme (CAS 21→1, 12/11→2, 51/52→3, 31→4)."""
    lut = {0: 0, 21: 1, 12: 2, 11: 2, 51: 3, 52: 3, 31: 4}
    return {y: np.vectorize(lut.get)(v).astype("uint8") for y, v in land_cover_years().items()}


def test_shipped_legends_pass_the_checks_a_user_legend_gets():
    from ecoassess.catalog import data_dir, load_yaml

    assert {"cas_lucc", "clcd", "corine", "dynamic_world", "esa_worldcover", "igbp"} <= set(available_legends())
    for name in available_legends():
        assert legend_problems(load_yaml(data_dir("layers") / f"{name}.yaml")) == [], name


def test_igbp_legend_is_mcd12q1_lc_type1():
    igbp = load_legend("igbp")
    assert sorted(igbp.classes) == list(range(1, 18)) and igbp.nodata == 255
    assert igbp.classes[1]["color"] == "#05450a" and igbp.classes[17]["color"] == "#1c0dff"
    assert {igbp.classes[c]["hj192"] for c in (1, 2, 3, 4, 5)} == {"forest"}
    assert igbp.classes[8]["hj192"] == "forest" and igbp.classes[8]["confidence"] == "C"       # woody savanna
    assert igbp.classes[9]["hj192"] == "open_and_other_forest"                                   # savanna
    assert igbp.classes[10]["split"] == "fvc_5_20_50"
    assert igbp.water_codes == [17]
    # the CAS code each class counts as (STANDARDS §2.1 via the HJ 192 class)
    assert [cas_code(igbp, c) for c in (1, 9, 10, 12, 13, 16, 17)] == [21, 23, 32, 12, 51, 65, 43]


@pytest.mark.parametrize("change, message", [
    (lambda c: c[1].pop("color"), r"class 1: color None is not #rrggbb"),
    (lambda c: c[1].update(color="green"), r"class 1: color 'green' is not #rrggbb"),
    (lambda c: c[2].pop("split"), r"class 2: pending class 'cropland' needs a split rule"),
    (lambda c: c[2].update(default="paddy_rice"), r"class 2: default 'paddy_rice' is not a target"),
    (lambda c: c[3].update(hj192="城镇"), r"class 3: hj192 '城镇' is neither an HJ 192 sub-class"),
    (lambda c: c[4].update(water="no"), r"class 4: water 'no' is not true/false"),
    (lambda c: c[4].pop("zh"), r"class 4: 'zh' \(class name\) is missing"),
    (lambda c: c.update({0: dict(c[1])}), r"class 0: is the legend's nodata code"),
    (lambda c: c.update({"x1": dict(c[1])}), r"class 'x1': the code is not an integer"),
    (lambda c: c[5].update(confidence="high"), r"class 5: confidence 'high' is not A, B or C"),
])
def test_legend_problems_name_the_class(change, message):
    raw = yaml.safe_load(MY_LEGEND)
    change(raw["classes"])
    problems = legend_problems(raw)
    assert len(problems) == 1 and __import__("re").search(message, problems[0]), problems


def test_a_gbk_legend_file_given_as_a_path_loads(tmp_path):
    path = tmp_path / "我的图例.yaml"
    path.write_bytes(MY_LEGEND.encode("gbk"))
    legend = load_legend(path)
    assert legend.name == "本县分类" and legend.label(3) == "城镇" and legend.source == str(path)
    assert load_legend(str(path)) == legend


def test_bad_legend_file_is_one_input_error_naming_it(tmp_path):
    path = tmp_path / "legend.yaml"
    raw = yaml.safe_load(MY_LEGEND)
    raw["classes"][3]["hj192"] = "town"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputError, match=r"legend\.yaml \[legend\]: class 3: hj192 'town'"):
        load_legend(path)
    path.write_text("classes: {1: [unclosed", encoding="utf-8")
    with pytest.raises(InputError, match="is not readable YAML"):
        load_legend(path)
    with pytest.raises(InputError, match="legend file not found"):
        load_legend(tmp_path / "nowhere.yaml")


def test_config_resolves_a_legend_path_and_validate_checks_it(tmp_path):
    from ecoassess.config import load_config
    from ecoassess.validate import validate_config

    config_path = write_world(tmp_path, legend="legends/my_legend.yaml", codes=_my_codes())
    (tmp_path / "legends").mkdir()
    legend_file = tmp_path / "legends" / "my_legend.yaml"
    legend_file.write_bytes(MY_LEGEND.encode("gbk"))
    config = load_config(config_path)
    assert config.land_cover[2015].legend == legend_file.resolve()
    validate_config(config)
    # a raster code the user's legend lacks is named by validate, with the file and the legend
    raw = yaml.safe_load(MY_LEGEND)
    del raw["classes"][4]
    legend_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lc_2015\.tif holds code\(s\) \[4\] that legend '本县分类'"):
        validate_config(load_config(config_path))
    # a legend path that does not exist is a schema error naming it
    config_path.write_text(config_path.read_text(encoding="utf-8").replace("legends/my_legend.yaml",
                                                                           "legends/missing.yaml"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_config(config_path)


def test_a_run_with_a_legend_given_as_a_path(tmp_path):
    from ecoassess.cli import main

    config_path = write_world(tmp_path / "in", legend="legends/my_legend.yaml", codes=_my_codes())
    (tmp_path / "in" / "legends").mkdir()
    (tmp_path / "in" / "legends" / "my_legend.yaml").write_bytes(MY_LEGEND.encode("gbk"))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(config_path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    areas = pd.read_csv(out / "tables" / "landcover_class_areas.csv", encoding="utf-8-sig", dtype={"zone_id": str})
    a = areas[(areas["zone_id"] == "519901") & (areas["year"] == 2015)].set_index("class_code")
    assert a.loc[1, "class_name"] == "森林" and a.loc[1, "area_km2"] == pytest.approx(300 * CELL_KM2)
    assert a.loc[3, "area_km2"] == pytest.approx(30 * CELL_KM2)
    hab = pd.read_csv(out / "tables" / "landcover_habitat.csv", encoding="utf-8-sig", dtype={"zone_id": str})
    h = hab[(hab["zone_id"] == "519902") & (hab["year"] == 2015)].set_index("hj192_class")["area_km2"]
    # farmland (2) is pending: no paddy layer → the default dry land, and the assumption says so
    assert h["dry_land"] == pytest.approx(300 * CELL_KM2) and h["grass_medium"] == pytest.approx(300 * CELL_KM2)
    notes = pd.read_csv(out / "tables" / "landcover_assumptions.csv", encoding="utf-8-sig")["assumption"]
    assert notes.str.contains("not split by paddy_layer").any()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    # the user's legend is an input of the run: listed and hashed (a changed legend gives another run key)
    assert [i for i in manifest["inputs"] if i["path"].endswith("legends/my_legend.yaml") and len(i["sha256"]) == 64]
    assert manifest["extra"]["land_cover"]["legends"]["2015"]["name"] == "本县分类"


def test_an_igbp_raster_runs_with_the_shipped_legend(tmp_path):
    """MCD12Q1 LC_Type1 codes: 519901 evergreen broadleaf forest (2) and croplands (12), savanna (9) in a corner;
    519902 water bodies (17) and grasslands (10), 255 (fill) in a strip."""
    from ecoassess.cli import main

    v = np.zeros((H, W), "uint8")
    v[:, :10], v[:, 10:20], v[:5, :5] = 2, 12, 9
    v[:, 20:30], v[:, 30:] = 17, 10
    v[0, 20:] = 255
    later = v.copy()
    later[:, 10:15] = 13                                   # croplands → urban and built-up
    config_path = write_world(tmp_path / "in", legend="igbp", codes={2020: v, 2024: later})
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(config_path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    hab = pd.read_csv(out / "tables" / "landcover_habitat.csv", encoding="utf-8-sig", dtype={"zone_id": str})
    h = hab[(hab["zone_set"] == "county") & (hab["zone_id"] == "519901") & (hab["year"] == 2020)]
    h = h.set_index("hj192_class")["area_km2"]
    assert h["forest"] == pytest.approx((300 - 25) * CELL_KM2)
    assert h["open_and_other_forest"] == pytest.approx(25 * CELL_KM2)
    assert h["dry_land"] == pytest.approx(300 * CELL_KM2)
    h2 = hab[(hab["zone_set"] == "county") & (hab["zone_id"] == "519902") & (hab["year"] == 2020)]
    h2 = h2.set_index("hj192_class")["area_km2"]
    assert h2["lake_reservoir"] == pytest.approx(290 * CELL_KM2)      # 10 fill cells of 300 in row 0
    assert h2["grass_medium"] == pytest.approx(290 * CELL_KM2)        # no FVC without imagery: the default
    change = pd.read_csv(out / "tables" / "landcover_change.csv", encoding="utf-8-sig", dtype={"zone_id": str})
    c = change[(change["zone_id"] == "519901")].set_index("class_code")
    assert c.loc[12, "net_change_km2"] == pytest.approx(-150 * CELL_KM2)
    assert c.loc[13, "gain_km2"] == pytest.approx(150 * CELL_KM2)
    areas = pd.read_csv(out / "tables" / "landcover_class_areas.csv", encoding="utf-8-sig", dtype={"zone_id": str})
    b = areas[(areas["zone_id"] == "519902") & (areas["year"] == 2020)]
    assert b["nodata_km2"].iloc[0] == pytest.approx(20 * CELL_KM2)
    assert set(b["class_name"]) >= {"水体", "草地", "常绿针叶林"}


def test_sampled_codes_skip_nodata_and_read_windows_of_a_large_raster(tmp_path):
    """validate's code check: the file's and the legend's nodata are not codes; a raster above ``max_cells`` is
    read in windows (here the windows cover this small raster, so the stray code is found either way)."""
    import rasterio
    from rasterio.transform import from_origin

    from ecoassess.landcover.accounting import sampled_unknown_codes

    values = np.full((H, W), 21, "int16")
    values[:, :3] = -9999                                   # the file's own nodata
    values[4, 7] = 77
    path = tmp_path / "lc.tif"
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=1, dtype="int16", crs="EPSG:4490",
                       transform=from_origin(104.0, 30.0, 0.001, 0.001), nodata=-9999) as dst:
        dst.write(values, 1)
    cas = load_legend("cas_lucc")
    assert sampled_unknown_codes(path, cas) == [77]
    assert sampled_unknown_codes(path, cas, max_cells=100) == [77]
    assert sampled_unknown_codes(tmp_path / "missing.tif", cas) == []     # the raster checks name a missing file
