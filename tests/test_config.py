"""The assessment config: schema and input checks, each bad input named with key, file/field and expectation."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine
from shapely.geometry import box

from ecoassess.validate import validate_config
from ecoassess.errors import ConfigError
from tests.builders import write_statistics_csv


def _write_inputs(root):
    (root / "v").mkdir()
    counties = gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["甲县", "乙县"]},
                                geometry=[box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.2, 30.1)], crs="EPSG:4490")
    counties.to_file(root / "v" / "counties.gpkg")
    for role in ("red", "nir"):
        with rasterio.open(root / f"{role}.tif", "w", driver="GTiff", width=4, height=4, count=1, dtype="uint16",
                           crs="EPSG:32648", transform=Affine(10, 0, 410000, 0, -10, 3325000), nodata=0) as dst:
            dst.write(np.full((4, 4), 1000, "uint16"), 1)
    write_statistics_csv(root / "stats.csv")


def _config(root, **changes):
    cfg = {
        "name": "测试",
        "year": 2024,
        "baseline_year": 2023,
        "study_area": {"path": "v/counties.gpkg", "id_field": "code", "name_field": "name"},
        "grid": {"resolution_m": 30},
        "imagery": {
            "2024": [{"kind": "geotiff", "date": "2024-07-01", "bands": {"red": "red.tif", "nir": "nir.tif"},
                      "scale": 0.0001}],
            "2023": [{"kind": "geotiff", "date": "2023-07-01", "bands": {"red": "red.tif", "nir": "nir.tif"},
                      "scale": 0.0001}],
        },
        "statistics": {"path": "stats.csv"},
    }
    for key, value in changes.items():
        target = cfg
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    path = root / "assessment.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture()
def root(tmp_path):
    _write_inputs(tmp_path)
    return tmp_path


def _problems(path):
    with pytest.raises(ConfigError) as info:
        validate_config(path)
    return "\n".join(info.value.problems)


def test_a_valid_config_loads_with_paths_resolved_against_its_folder(root):
    cfg = validate_config(_config(root))
    assert cfg.study_area.path == (root / "v" / "counties.gpkg").resolve()
    assert cfg.years == [2023, 2024]
    assert cfg.imagery[2024][0].bands["red"] == (root / "red.tif").resolve()
    assert cfg.composite.months == [5, 6, 7, 8, 9]


def test_unknown_key_is_named_with_a_suggestion(root):
    text = _problems(_config(root, **{"grid": {"resolution": 30}}))
    assert "grid: unknown key 'resolution'" in text and "did you mean 'resolution_m'" in text


def test_missing_file_names_key_and_path(root):
    text = _problems(_config(root, **{"study_area.path": "v/nope.gpkg"}))
    assert "study_area.path" in text and "nope.gpkg" in text and "not found" in text


def test_field_that_does_not_exist_lists_the_available_fields(root):
    text = _problems(_config(root, **{"study_area.name_field": "NAME"}))
    assert "study_area.name_field: field 'NAME' does not exist" in text and "code, name" in text


def test_impossible_date_and_date_outside_its_year(root):
    cfg = _config(root)
    raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    raw["imagery"]["2024"][0]["date"] = "2024-02-30"
    raw["imagery"]["2023"][0]["date"] = "2022-07-01"
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    text = "\n".join(info.value.problems)
    assert "imagery.2024[0].date" in text and "2024-02-30" in text
    # the schema error stops before input checks; fix it and see the year check
    raw["imagery"]["2024"][0]["date"] = "2024-07-01"
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    text = _problems(cfg)
    assert "imagery.2023[0]" in text and "2022-07-01" in text and "not in year 2023" in text


def test_baseline_after_year_and_non_equal_area_grid(root):
    text = _problems(_config(root, baseline_year=2025))
    assert "baseline_year 2025 must be before year 2024" in text
    text = _problems(_config(root, baseline_year=2022))
    assert "not the baseline year 2022" in text  # the change outputs would silently disappear
    text = _problems(_config(root, **{"grid": {"crs": "EPSG:4326", "resolution_m": 30}}))
    assert "grid.crs" in text and "not an equal-area projection" in text


def test_statistics_table_unit_typo_missing_column_negative_value_missing_county(root):
    table = pd.read_csv(root / "stats.csv", dtype={"county_code": str})
    table = table.rename(columns={"cod_emission_t": "cod_emission_kg"}).drop(columns=["precipitation_mm"])
    table.loc[1, "so2_emission_t"] = -5
    table = table[~((table.county_code == "519902") & (table.year == 2023))]
    table.to_csv(root / "stats.csv", index=False)
    text = _problems(_config(root))
    assert "column 'cod_emission_kg' has unit 'kg', expected 't'" in text
    assert "column 'precipitation_mm' is missing" in text
    assert "line 3: column 'so2_emission_t' = -5 is below 0" in text
    assert "no row for county 519902 in year 2023" in text


def test_study_area_codes_must_be_gb2260_and_unique(root):
    gdf = gpd.read_file(root / "v" / "counties.gpkg")
    gdf["code"] = ["51990", "51990"]
    gdf.to_file(root / "v" / "counties.gpkg")
    text = _problems(_config(root, statistics=None))
    assert "not GB/T 2260 six-digit codes: 51990" in text


def test_all_problems_are_reported_at_once(root):
    text = _problems(_config(root, **{"study_area.name_field": "NAME", "statistics.county_field": "county"}))
    assert "NAME" in text and "column 'county' does not exist" in text


def test_a_schema_error_does_not_hide_the_input_problems_of_other_sections(root):
    """A typo in one section and a wrong field in another: validate names both at once (it stopped at the first)."""
    text = _problems(_config(root, **{"grid": {"resoluton": 30}, "statistics.county_field": "county"}))
    assert "unknown key 'resoluton'; did you mean 'resolution_m'" in text
    assert "column 'county' does not exist" in text
    # a faulty required section: only the schema problem can be named
    text = _problems(_config(root, **{"study_area.id_fild": "code", "statistics.county_field": "county"}))
    assert "id_fild" in text and "county" not in text.replace("id_fild", "")


def test_not_yaml_and_not_a_mapping(tmp_path):
    bad = tmp_path / "a.yaml"
    bad.write_text("year: [2024\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        validate_config(bad)
    bad.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        validate_config(bad)


def test_layers_without_crs_or_in_the_wrong_crs_are_named(root):
    gdf = gpd.read_file(root / "v" / "counties.gpkg")
    gdf.set_crs(None, allow_override=True).to_file(root / "v" / "nocrs.gpkg")
    text = _problems(_config(root, **{"study_area.path": "v/nocrs.gpkg", "statistics": None}))
    assert "nocrs.gpkg has no CRS" in text
    with rasterio.open(root / "lc.tif", "w", driver="GTiff", width=2, height=2, count=1, dtype="uint8",
                       transform=Affine(30, 0, 0, 0, -30, 60)) as dst:
        dst.write(np.full((2, 2), 21, "uint8"), 1)
    text = _problems(_config(root, land_cover={"2024": {"path": "lc.tif", "legend": "cas_lucc"}}))
    assert "land_cover.2024.path" in text and "lc.tif has no CRS" in text


def test_output_compression_defaults_to_deflate_and_names_the_choices(root):
    assert validate_config(_config(root)).outputs.compression == "deflate"
    assert validate_config(_config(root, outputs={"compression": "zstd"})).outputs.compression == "zstd"
    text = _problems(_config(root, outputs={"compression": "lzma"}))
    assert "outputs.compression" in text and "deflate" in text and "zstd" in text


def test_land_cover_water_mask_for_rsei_needs_land_cover_in_every_rsei_year(root):
    thermal = {str(y): {"kind": "geotiff", "date": f"{y}-07-01", "bands": {"thermal": "red.tif"}} for y in (2023, 2024)}
    text = _problems(_config(root, thermal=thermal, rsei={"water_mask": "land_cover"}))
    assert "rsei.water_mask is land_cover" in text and "[2023, 2024]" in text
    assert validate_config(_config(root, thermal=thermal, rsei={"water_mask": "mndwi"})).rsei.water_mask == "mndwi"
