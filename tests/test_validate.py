"""``ecoassess validate``: problems found from file headers — raster footprints against the study area, station
coordinates, empty statistics cells, unreadable STAC items — each naming the key, the file and what was expected."""

import json
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine
from shapely.geometry import box

from ecoassess.config import load_config
from ecoassess.validate import check_inputs
from tests.builders import write_statistics_csv

UTM = "EPSG:32648"
# The two counties span 104.0-104.2°E, 30.0-30.1°N (EPSG:4490): x 403550-422918, y 3319055-3330288 in UTM 48N.
FULL = dict(x0=403000, y0=3331000, res=200, width=100, height=60)   # covers the whole study area


def _tif(path, *, x0, y0, res, width, height, crs=UTM, dtype="uint8", value=21):
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype=dtype, crs=crs,
                       transform=Affine(res, 0, x0, 0, -res, y0), nodata=0) as dst:
        dst.write(np.full((height, width), value, dtype), 1)


def _write_inputs(root):
    (root / "v").mkdir()
    counties = gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["甲县", "乙县"]},
                                geometry=[box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.2, 30.1)],
                                crs="EPSG:4490")
    counties.to_file(root / "v" / "counties.gpkg")
    for role in ("red", "nir"):
        _tif(root / f"{role}.tif", dtype="uint16", value=1000, **FULL)
    _tif(root / "lc.tif", **FULL)
    _tif(root / "dem.tif", dtype="float32", value=450.0, **FULL)
    pd.DataFrame({"station_id": ["A1", "A2", "A3", "A4"], "lon": [104.02, 104.08, 104.12, 104.25],
                  "lat": [30.02, 30.05, 30.08, 30.05]}).to_csv(root / "sites.csv", index=False)
    write_statistics_csv(root / "stats.csv")


def _config(root, **changes):
    scene = {"kind": "geotiff", "bands": {"red": "red.tif", "nir": "nir.tif"}, "scale": 0.0001}
    cfg = {
        "year": 2024,
        "baseline_year": 2023,
        "study_area": {"path": "v/counties.gpkg", "id_field": "code", "name_field": "name"},
        "imagery": {str(y): [{**scene, "date": f"{y}-07-01"}] for y in (2023, 2024)},
        "land_cover": {"2024": {"path": "lc.tif", "legend": "cas_lucc"}},
        "dem": {"path": "dem.tif"},
        "stations": {"air": {"sites": "sites.csv"}},
        "statistics": {"path": "stats.csv"},
    }
    for key, value in changes.items():
        target = cfg
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value
    path = root / "assessment.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _problems(root, **changes) -> str:
    return "\n".join(check_inputs(load_config(_config(root, **changes))))


@pytest.fixture()
def root(tmp_path):
    _write_inputs(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def sample(shared_sample):
    """The sample (conftest, read-only); the test that breaks a product copies it."""
    return shared_sample


# -- the valid configs ------------------------------------------------------------------------------------------

def test_the_generated_sample_has_no_problems(sample):
    assert check_inputs(load_config(sample)) == []


def test_the_small_config_has_no_problems(root):
    assert _problems(root) == ""


# -- raster footprints ----------------------------------------------------------------------------------------

def test_dem_declared_geographic_while_its_coordinates_are_utm_metres(root):
    _tif(root / "dem_nocrs.tif", crs=None, dtype="float32", value=450.0, **FULL)
    text = _problems(root, dem={"path": "dem_nocrs.tif", "crs": "EPSG:4326"})
    assert "dem: " in text and "dem_nocrs.tif covers (403000, 3319000, 423000, 3331000) (EPSG:4326)" in text
    assert "which does not overlap the study area" in text and "counties.gpkg" in text
    assert "wrong CRS declared?" in text


def test_land_cover_tagged_geographic_and_a_band_far_away(root):
    _tif(root / "lc_4326.tif", crs="EPSG:4326", **FULL)
    _tif(root / "far.tif", dtype="uint16", value=1000, **{**FULL, "x0": 600000})
    scene = {"kind": "geotiff", "date": "2024-07-01", "bands": {"red": "far.tif", "nir": "nir.tif"}}
    text = _problems(root, land_cover={"2024": {"path": "lc_4326.tif", "legend": "cas_lucc"}},
                     **{"imagery.2024": [scene]})
    assert "land_cover.2024: " in text and "lc_4326.tif covers" in text and "does not overlap" in text
    assert "imagery.2024[0].bands.red: " in text and "far.tif covers (600000," in text
    assert "bands.nir" not in text


def test_land_cover_covering_less_than_half_of_the_study_area_bbox(root):
    # the study area's bbox is ~19.4 km wide: 6 km of it is ~30 %, 12 km ~62 %
    _tif(root / "lc_part.tif", **{**FULL, "width": 30})
    text = _problems(root, land_cover={"2024": {"path": "lc_part.tif", "legend": "cas_lucc"}})
    assert "land_cover.2024: " in text and "lc_part.tif covers (403000, 3319000, 409000, 3331000)" in text
    assert "(EPSG:32648), only 28% of the bounding box of the study area" in text
    assert "(expected at least 50%)" in text
    _tif(root / "lc_part.tif", **{**FULL, "width": 60})
    assert _problems(root, land_cover={"2024": {"path": "lc_part.tif", "legend": "cas_lucc"}}) == ""


def test_a_study_area_relabelled_to_a_wrong_crs_is_named(root):
    gdf = gpd.read_file(root / "v" / "counties.gpkg")
    # degrees under a metre CRS's label: said once, of the study area itself (not once per raster it "misses")
    gdf.set_crs(UTM, allow_override=True).to_file(root / "v" / "relabelled.gpkg")
    text = _problems(root, **{"study_area.path": "v/relabelled.gpkg"})
    assert ("relabelled.gpkg has coordinates (104, 30, 104.2, 30.1), which look like degrees, but its CRS "
            "EPSG:32648 counts in metres") in text
    assert "wrong CRS declared?" not in text
    # metres relabelled to a neighbouring zone: every raster misses it, and each message names the study area
    gdf.to_crs(UTM).set_crs("EPSG:32647", allow_override=True).to_file(root / "v" / "zone47.gpkg")
    text = _problems(root, **{"study_area.path": "v/zone47.gpkg"})
    for key in ("land_cover.2024", "dem", "imagery.2023[0].bands.red", "imagery.2024[0].bands.nir"):
        assert f"{key}: " in text
    assert text.count("zone47.gpkg, bounds") >= 6 and "wrong CRS declared?" in text

def test_sentinel2_and_landsat_products_are_checked_against_the_study_area(sample, tmp_path):
    config = load_config(sample)
    gdf = gpd.read_file(config.study_area.path)
    gdf.geometry = gdf.geometry.translate(xoff=2.0)   # 200 km east of every raster
    gdf.to_file(tmp_path / "moved.gpkg")
    config.study_area.path = tmp_path / "moved.gpkg"
    text = "\n".join(check_inputs(config))
    for key in ("imagery.2024[0]", "imagery.2023[2]", "thermal.2024", "thermal.2023", "land_cover.2023", "dem"):
        assert f"{key}: " in text and "does not overlap the study area" in text, key
    assert "B04.tif covers" in text and "_SR_B4.TIF covers" in text


# -- stations -------------------------------------------------------------------------------------------------

def test_swapped_lon_and_lat_are_named_with_file_column_and_lines(root):
    sites = pd.read_csv(root / "sites.csv")
    sites.loc[[0, 2], ["lon", "lat"]] = sites.loc[[0, 2], ["lat", "lon"]].to_numpy()
    sites.to_csv(root / "sites.csv", index=False)
    text = _problems(root)
    assert "stations.air.sites: column 'lat' of sites.csv holds values outside [-90, 90] on line(s) 2, 4" in text
    assert "column 'lon'" not in text and "outside the study area" not in text   # one problem, not three


def test_sites_in_projected_metres_with_a_geographic_crs(root):
    pd.DataFrame({"station_id": ["A1", "A2"], "lon": [405000.0, 410000.0], "lat": [3320000.0, 3325000.0]}
                 ).to_csv(root / "sites.csv", index=False)
    text = _problems(root)
    assert "column 'lon' of sites.csv holds values outside [-180, 180] on line(s) 2, 3" in text
    assert "column 'lat' of sites.csv holds values outside [-90, 90] on line(s) 2, 3" in text


def test_most_sites_outside_the_study_area_but_one_outside_is_legal(root):
    # A4 (104.25°E) lies ~5 km outside: legal; and the UTM sites with the right crs are inside
    assert _problems(root) == ""
    pd.DataFrame({"station_id": ["A1", "A2"], "x": [405000.0, 410000.0], "y": [3320000.0, 3325000.0]}
                 ).to_csv(root / "utm.csv", index=False)
    stations = {"sites": "utm.csv", "x_field": "x", "y_field": "y", "crs": UTM}
    assert _problems(root, stations={"air": stations}) == ""
    # the same sites declared in another UTM zone land ~600 km away
    text = _problems(root, stations={"air": {**stations, "crs": "EPSG:32649"}})
    assert "stations.air.sites: 2 of 2 sites in utm.csv lie more than 10 km outside the study area" in text
    assert "counties.gpkg" in text and "line(s) 2, 3" in text and "'EPSG:32649' wrong?" in text


# -- statistics table ------------------------------------------------------------------------------------------

def test_empty_cells_of_required_columns_are_problems_but_optional_columns_may_be_empty(root):
    text = (root / "stats.csv").read_text(encoding="utf-8").splitlines()
    header = text[0].split(",")
    rows = [line.split(",") for line in text[1:]]
    rows[0][header.index("so2_emission_t")] = ""
    rows[3][header.index("precipitation_mm")] = "n/a"
    for row in rows:
        row[header.index("river_length_km")] = ""
    (root / "stats.csv").write_text("\n".join([text[0]] + [",".join(r) for r in rows]) + "\n", encoding="utf-8")
    text = _problems(root)
    assert ("statistics: stats.csv line 2: column 'so2_emission_t' is empty for county 519901 in year 2023, "
            "expected a number") in text
    assert "line 5: column 'precipitation_mm' is empty for county 519902 in year 2024" in text
    assert "river_length_km" not in text


def test_a_year_whose_scenes_all_lie_outside_the_composite_months_is_a_problem(root):
    text = _problems(root, composite={"months": [1, 2]})
    assert "imagery.2024: every scene (2024-07-01) lies outside the composite months [1, 2]" in text
    assert "imagery.2023: every scene" in text
    assert "outside the composite months" not in _problems(root, composite={"months": [6, 7, 8]})


def test_a_gbk_encoded_table_with_chinese_text_is_read(root):
    """Excel on Chinese Windows saves CSV as GBK: it is read (as GB18030), not refused as unreadable."""
    from ecoassess.readers import read_table

    table = pd.read_csv(root / "stats.csv").assign(county_name=lambda t: t["county_code"].map(
        {519901: "甲县", 519902: "乙县"}))
    table.to_csv(root / "stats.csv", index=False, encoding="gbk")
    assert _problems(root) == ""
    assert list(read_table(root / "stats.csv")["county_name"][:2]) == ["甲县", "甲县"]
    (root / "stats.csv").write_bytes(b"county_code,year\n\xff\xfe\x00\x81,2024\n")  # neither UTF-8 nor GB18030
    assert "cannot be read as a table" in _problems(root)


# -- Sentinel-2 STAC item ---------------------------------------------------------------------------------------

def test_a_sentinel2_stac_item_that_is_not_valid_json_is_named(root):
    folder = root / "S2A_48RVU_20240716_0_L2A"
    folder.mkdir()
    for band in ("B02", "B03", "B04", "B08"):
        shutil.copy(root / "red.tif", folder / f"{band}.tif")
    item = {"type": "Feature", "properties": {"datetime": "2024-07-16T03:40:00Z"},
            "assets": {"B04": {"href": "B04.tif"}}}
    (folder / "S2A_48RVU_20240716_0_L2A.json").write_text(json.dumps(item)[:-20], encoding="utf-8")
    text = _problems(root, **{"imagery.2024": [{"kind": "sentinel2_l2a", "path": folder.name}]})
    assert "imagery.2024[0].path: " in text and "S2A_48RVU_20240716_0_L2A.json: is not valid JSON (" in text
    assert "holds neither" not in text


def test_a_landsat_product_missing_a_band_file_or_a_scale_factor_is_named(sample, tmp_path):
    """validate opens each product as the run will (no pixels): a deleted ST_B10 and an MTL without a scale factor
    were found only halfway through the run."""
    copy = tmp_path / "s"
    shutil.copytree(sample.parent, copy)
    (st,) = (copy / "imagery" / "2024").glob("LC09*/*_ST_B10.TIF")
    st.unlink()
    (mtl,) = (copy / "imagery" / "2023").glob("LC09*/*_MTL.txt")
    mtl.write_text("".join(line for line in mtl.read_text().splitlines(keepends=True)
                           if "REFLECTANCE_MULT_BAND_4 " not in line))
    text = "\n".join(check_inputs(load_config(copy / "assessment.yaml")))
    assert "thermal.2024.path: " in text and "ST_B10.TIF named in the MTL is missing" in text
    assert "thermal.2023.path: " in text and "[LEVEL2_SURFACE_REFLECTANCE_PARAMETERS/REFLECTANCE_MULT_BAND_4]: " \
        "has no scale factor" in text
