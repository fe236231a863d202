"""Real inputs as users have them (issue 18, findings 1, 2, 3, 8, 9).

The cases are built as users get them: Landsat C2 L2 folders with an MTL.txt that names every band but only the
band files a user downloaded (uint16 DN, the C2 scale factors, DN 0 fill), a surface-temperature band as a plain
ST_B10 GeoTIFF, rasters without a CRS or without any georeference, a CF netCDF band.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.crs import CRS
from click.testing import CliRunner

from ecoassess.config import load_config
from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.sources import open_landsat_c2l2
from ecoassess.stages.base import open_product
from ecoassess.validate import validate_config
from tests.builders import write_two_counties, validate_problems

UTM = "EPSG:32648"
X0, Y0, RES, W, H = 403000.0, 3331000.0, 200.0, 100, 60          # covers both counties below
TRANSFORM = Affine(RES, 0, X0, 0, -RES, Y0)
PID = "LC09_L2SP_129039_20240715_20240724_02_T1"
SR_MULT, SR_ADD, ST_MULT, ST_ADD = 2.75e-05, -0.2, 0.00341802, 149.0
ALL_BANDS = ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "ST_B10", "QA_PIXEL")
VEGETATION_BANDS = ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "QA_PIXEL")


# -- builders ---------------------------------------------------------------------------------------------------

def _fields(seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible surface reflectance per OLI band and LST (°C) over a vegetation/bare-soil gradient with noise."""
    rng = np.random.default_rng(seed)
    veg = np.clip(np.linspace(0.1, 0.9, W)[None, :] + rng.normal(0, 0.08, (H, W)), 0, 1)
    soil = 1 - veg
    refl = {1: 0.04 + 0.06 * soil, 2: 0.03 + 0.08 * soil, 3: 0.06 + 0.08 * soil, 4: 0.03 + 0.20 * soil,
            5: 0.40 * veg + 0.25 * soil, 6: 0.15 * veg + 0.35 * soil, 7: 0.07 * veg + 0.28 * soil}
    refl = {k: v + rng.normal(0, 0.004, (H, W)) for k, v in refl.items()}
    lst = 22.0 + 16.0 * soil + rng.normal(0, 0.8, (H, W))
    return {"refl": refl, "lst": lst}


def _write(path, data, dtype="uint16", nodata=0, crs=UTM, transform=TRANSFORM):
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=dtype, nodata=nodata)
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype), 1)
    return path


def sr_dn(refl: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((refl - SR_ADD) / SR_MULT), 1, 65535).astype("uint16")


def st_dn(lst_c: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((lst_c + 273.15 - ST_ADD) / ST_MULT), 1, 65535).astype("uint16")


def mtl_text(drop_keys=()) -> str:
    """An MTL.txt laid out like a real C2 L2SP product's: it names all nine files, whatever the folder holds."""
    files = [(f"FILE_NAME_BAND_{k}", f'"{PID}_SR_B{k}.TIF"') for k in range(1, 8)]
    files += [("FILE_NAME_BAND_ST_B10", f'"{PID}_ST_B10.TIF"'), ("FILE_NAME_QUALITY_L1_PIXEL", f'"{PID}_QA_PIXEL.TIF"')]
    sr = [(f"REFLECTANCE_MULT_BAND_{k}", "2.75e-05") for k in range(1, 8)]
    sr += [(f"REFLECTANCE_ADD_BAND_{k}", "-0.2") for k in range(1, 8)]
    st = [("TEMPERATURE_MULT_BAND_ST_B10", "0.00341802"), ("TEMPERATURE_ADD_BAND_ST_B10", "149.0")]
    lines = ["GROUP = LANDSAT_METADATA_FILE"]
    for name, items in (("PRODUCT_CONTENTS", [("LANDSAT_PRODUCT_ID", f'"{PID}"'), ("PROCESSING_LEVEL", '"L2SP"'),
                                              ("COLLECTION_NUMBER", "02")] + files),
                        ("IMAGE_ATTRIBUTES", [("SPACECRAFT_ID", '"LANDSAT_9"'), ("SENSOR_ID", '"OLI_TIRS"'),
                                              ("WRS_PATH", "129"), ("WRS_ROW", "39"), ("DATE_ACQUIRED", "2024-07-15"),
                                              ("CLOUD_COVER", "0.00")]),
                        ("LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", sr),
                        ("LEVEL2_SURFACE_TEMPERATURE_PARAMETERS", st)):
        lines.append(f"  GROUP = {name}")
        lines += [f"    {k} = {v}" for k, v in items if k not in drop_keys]
        lines.append(f"  END_GROUP = {name}")
    return "\n".join(lines + ["END_GROUP = LANDSAT_METADATA_FILE", "END"]) + "\n"


def write_landsat(folder, bands=ALL_BANDS, drop_keys=(), crs_of=None):
    """A Landsat 9 C2 L2 folder holding only ``bands`` (the MTL names all); ``crs_of``: {band: crs} overrides."""
    folder.mkdir(parents=True)
    f = _fields()
    for band in bands:
        crs = (crs_of or {}).get(band, UTM)
        if band.startswith("SR_B"):
            data = sr_dn(f["refl"][int(band[4:])])
        elif band == "ST_B10":
            data = st_dn(f["lst"])
        else:
            data = np.full((H, W), 21824, "uint16")  # clear, low confidences (C2 QA_PIXEL)
        _write(folder / f"{PID}_{band}.TIF", data, nodata=1 if band == "QA_PIXEL" else 0, crs=crs)
    (folder / f"{PID}_MTL.txt").write_text(mtl_text(drop_keys), encoding="utf-8")
    return folder


@pytest.fixture
def area(tmp_path):
    """Two counties over the products' footprint (tests/builders.py)."""
    return write_two_counties(tmp_path)


def write_config(root, imagery, thermal=None, tables=("csv",), name="assessment.yaml") -> object:
    cfg = {"year": 2024, "study_area": {"path": "v/counties.gpkg", "id_field": "code", "name_field": "name"},
           "grid": {"resolution_m": 200}, "imagery": {"2024": imagery},
           "outputs": {"tables": list(tables), "maps": False}}
    if thermal is not None:
        cfg["thermal"] = {"2024": thermal}
    path = root / name
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path



# -- 1. a folder holds the bands the configured stages read ---------------------------------------------------

def test_a_folder_with_only_sr_b2_to_b7_opens_for_the_vegetation_stages(tmp_path):
    folder = write_landsat(tmp_path / PID, bands=VEGETATION_BANDS)
    scene = open_landsat_c2l2(folder)  # before: refused, SR_B1 missing, then ST_B10 missing
    assert sorted(scene.roles) == ["blue", "green", "nir", "red", "swir1", "swir2"]
    assert scene.thermal_k is None
    red = scene.bands["red"].values
    np.testing.assert_allclose(red, sr_dn(_fields()["refl"][4]) * SR_MULT + SR_ADD, atol=1e-6)


def test_validate_asks_only_for_the_bands_the_configured_stages_read(area):
    folder = write_landsat(area / PID, bands=VEGETATION_BANDS)
    spec = {"kind": "landsat_c2l2", "path": PID}
    validate_config(write_config(area, [spec]))  # vegetation only: SR_B2–SR_B7 are enough
    problems = validate_problems(write_config(area, [spec], thermal=spec, name="rsei.yaml"))
    st = [p for p in problems if "ST_B10" in p]
    assert len(st) == 2, problems  # listed by imagery.2024[0] and thermal.2024: the same product serves both
    assert "ST_B10 missing" in st[0] and "RSEI (thermal.2024) needs the surface temperature" in st[0]
    assert f"{PID}_ST_B10.TIF" in st[0] and "FILE_NAME_BAND_ST_B10" in st[0]
    assert not any("SR_B1" in p for p in problems)


def test_a_missing_reflectance_band_names_the_stage_that_needs_it(tmp_path, area):
    folder = write_landsat(area / PID, bands=tuple(b for b in VEGETATION_BANDS if b != "SR_B5"))
    problems = validate_problems(write_config(area, [{"kind": "landsat_c2l2", "path": PID}]))
    assert len(problems) == 1, problems
    assert problems[0].startswith("imagery.2024[0].path: ")
    assert "SR_B5 missing" in problems[0] and "the vegetation stages (imagery.2024[0]) need the nir reflectance" \
        in problems[0]
    with pytest.raises(InputError, match="SR_B5 missing"):
        open_landsat_c2l2(folder)


def test_the_run_makes_vegetation_from_sr_b2_b7_and_rsei_once_st_b10_is_there(area):
    from ecoassess.pipeline import run

    write_landsat(area / PID, bands=VEGETATION_BANDS)
    spec = {"kind": "landsat_c2l2", "path": PID}
    result = run(write_config(area, [spec]), area / "out")
    assert not result.problems, result.problems
    assert "county_vegetation" in result.tables and "rsei_pca" not in result.tables
    assert result.tables["county_vegetation"]["ndvi_mean"].notna().all()

    _write(area / PID / f"{PID}_ST_B10.TIF", st_dn(_fields()["lst"]))
    result = run(write_config(area, [spec], thermal=spec, name="rsei.yaml"), area / "out2")
    assert not result.problems, result.problems
    pca = result.tables["rsei_pca"].set_index("indicator")
    lo, hi = pca.loc["lst_celsius", ["normalisation_lower", "normalisation_upper"]]
    assert 20 < lo < hi < 42  # °C: the ST_B10 scale factors of the MTL
    assert result.tables["county_rsei"]["rsei_mean"].notna().all()


# -- 2. validate lists every problem of a product at once --------------------------------------------------------

def test_validate_lists_every_problem_of_a_product_in_one_run(area):
    write_landsat(area / PID, bands=("SR_B2", "SR_B3", "SR_B4", "SR_B6", "QA_PIXEL"),
                  drop_keys=("REFLECTANCE_ADD_BAND_3",), crs_of={"SR_B2": None})
    spec = {"kind": "landsat_c2l2", "path": PID}
    problems = validate_problems(write_config(area, [spec], thermal=spec))
    mine = [p for p in problems if p.startswith("imagery.2024[0].path")]
    text = "\n".join(mine)
    for expected in ("SR_B5 missing", "SR_B7 missing", "ST_B10 missing", "REFLECTANCE_ADD_BAND_3",
                     "SR_B2 (blue) has no CRS"):
        assert expected in text, (expected, problems)
    assert len(mine) == 5, mine  # one line each, not "the first problem"
    assert not any("SR_B1" in p for p in problems)


# -- 3. a thermal band as a plain GeoTIFF: its own scale, offset and nodata ----------------------------------

def _geotiff_scene(root, thermal_ref, *, fill_corner=True):
    f = _fields()
    bands = {}
    for role, k in (("blue", 2), ("green", 3), ("red", 4), ("nir", 5), ("swir1", 6), ("swir2", 7)):
        bands[role] = _write(root / f"B{k}.tif", sr_dn(f["refl"][k])).name
    st = st_dn(f["lst"])
    if fill_corner:
        st[:5, :5] = 0  # fill, as at a scene edge
    _write(root / "ST_B10.tif", st)  # uint16 DN, nodata 0: as USGS delivers it
    bands["thermal_k"] = thermal_ref
    return {"kind": "geotiff", "date": "2024-07-15", "sensor": "landsat9", "scale": SR_MULT, "offset": SR_ADD,
            "nodata": 0, "bands": bands}


def test_a_thermal_geotiff_takes_its_own_scale_offset_and_nodata(area):
    ref = {"path": "ST_B10.tif", "scale": ST_MULT, "offset": ST_ADD, "nodata": 0}
    scene_spec = _geotiff_scene(area, ref)
    config = load_config(write_config(area, [scene_spec], thermal=scene_spec))  # before: 'unknown key scale'
    grid = AnalysisGrid(CRS.from_user_input(UTM), TRANSFORM, W, H)
    scene = open_product(config, config.thermal[2024], grid)
    dn = st_dn(_fields()["lst"]).astype("float64")
    got = scene.thermal_k.values
    assert np.isnan(got[:5, :5]).all()  # DN 0 is fill, not 149 K
    np.testing.assert_allclose(got[10:, 10:], dn[10:, 10:] * ST_MULT + ST_ADD, rtol=1e-6)
    red = scene.bands["red"].values  # the scene-level reflectance factors still apply to the other bands
    np.testing.assert_allclose(red, sr_dn(_fields()["refl"][4]) * SR_MULT + SR_ADD, atol=1e-6)

    from ecoassess.pipeline import run

    result = run(config, area / "out")
    assert not result.problems, result.problems
    pca = result.tables["rsei_pca"].set_index("indicator")
    assert 20 < pca.loc["lst_celsius", "normalisation_lower"] < pca.loc["lst_celsius", "normalisation_upper"] < 42


@pytest.mark.parametrize("case", [
    "scene factors",  # the scene's reflectance factors applied to the ST DN as well: LST ≈ −273 °C
    "dn as kelvin",   # the case: the ST DN taken as kelvin, LST = DN − 273.15 (30,000–53,000 °C)
])
def test_an_implausible_lst_is_refused_naming_the_band_and_the_range(area, case):
    from ecoassess.pipeline import run

    scene_spec = _geotiff_scene(area, "ST_B10.tif", fill_corner=False)
    if case == "dn as kelvin":
        scene_spec = {**scene_spec, "scale": 1.0, "offset": 0.0}
        scene_spec["bands"] = {**{r: {"path": p, "scale": SR_MULT, "offset": SR_ADD}
                                  for r, p in scene_spec["bands"].items() if r != "thermal_k"},
                               "thermal_k": "ST_B10.tif"}
    result = run(write_config(area, [scene_spec], thermal=scene_spec), area / "out")
    assert "rsei_pca" not in result.tables
    [problem] = [p for p in result.problems if p.startswith("rsei:")]
    assert "ST_B10.tif" in problem and "thermal.2024.bands.thermal_k" in problem
    assert "outside -60 … 80 °C" in problem and "scale: 0.00341802, offset: 149.0, nodata: 0" in problem
    assert "Traceback" not in problem


# -- 8. georeference declared in the config ----------------------------------------------------------------------

def test_a_band_without_crs_takes_the_declared_one_and_the_suggested_key_is_accepted(area):
    f = _fields()
    for k in (4, 5):
        _write(area / f"B{k}.tif", sr_dn(f["refl"][k]), crs=None)
    plain = {"kind": "geotiff", "date": "2024-07-15", "scale": SR_MULT, "offset": SR_ADD,
             "bands": {"red": "B4.tif", "nir": "B5.tif"}}
    problems = validate_problems(write_config(area, [plain]))
    assert any("has no CRS" in p and "imagery.2024[0].bands.red.crs" in p for p in problems)  # the key suggested ...
    declared = {**plain, "bands": {"red": {"path": "B4.tif", "crs": UTM}, "nir": {"path": "B5.tif", "crs": UTM}}}
    config = validate_config(write_config(area, [declared], name="declared.yaml"))  # ... is accepted
    scene = open_product(config, config.imagery[2024][0], AnalysisGrid(CRS.from_user_input(UTM), TRANSFORM, W, H))
    np.testing.assert_allclose(scene.bands["red"].values, sr_dn(f["refl"][4]) * SR_MULT + SR_ADD, atol=1e-6)

    wrong = {**plain, "bands": {"red": {"path": "B4.tif", "crs": "EPSG:32649"}, "nir": {"path": "B5.tif", "crs": UTM}}}
    problems = validate_problems(write_config(area, [wrong], name="wrong.yaml"))
    assert any(p.startswith("imagery.2024[0].bands.red") and "does not overlap" in p for p in problems), problems


def test_a_raster_without_any_georeference_takes_a_declared_transform(area):
    f = _fields()
    for k in (4, 5):
        _write(area / f"B{k}.tif", sr_dn(f["refl"][k]), crs=None, transform=None)
    bare = {"kind": "geotiff", "date": "2024-07-15", "scale": SR_MULT, "offset": SR_ADD,
            "bands": {"red": {"path": "B4.tif", "crs": UTM}, "nir": {"path": "B5.tif", "crs": UTM}}}
    problems = validate_problems(write_config(area, [bare]))
    assert any("imagery.2024[0].bands.red.transform" in p and "no georeference" in p for p in problems), problems
    gt = [X0, RES, 0, Y0, 0, -RES]
    placed = {**bare, "bands": {r: {**ref, "transform": gt} for r, ref in bare["bands"].items()}}
    config = validate_config(write_config(area, [placed], name="placed.yaml"))
    scene = open_product(config, config.imagery[2024][0], AnalysisGrid(CRS.from_user_input(UTM), TRANSFORM, W, H))
    np.testing.assert_allclose(scene.bands["nir"].values, sr_dn(f["refl"][5]) * SR_MULT + SR_ADD, atol=1e-6)


def test_a_cf_netcdf_band_is_placed_by_its_grid_mapping(area):
    """GDAL reads CF grid_mapping / crs_wkt itself: no code of ours, this pins it."""
    import xarray as xr
    from pyproj import CRS as ProjCRS

    f = _fields()
    x = X0 + RES * (np.arange(W) + 0.5)
    y = Y0 - RES * (np.arange(H) + 0.5)
    for k in (4, 5):
        ds = xr.Dataset({"reflectance": (("y", "x"), sr_dn(f["refl"][k]), {"grid_mapping": "crs"})},
                        coords={"x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m"}),
                                "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m"})})
        ds["crs"] = xr.DataArray(0, attrs=ProjCRS.from_user_input(UTM).to_cf())
        ds.to_netcdf(area / f"B{k}.nc")
    nc = {"kind": "geotiff", "date": "2024-07-15", "scale": SR_MULT, "offset": SR_ADD,
          "bands": {"red": "B4.nc", "nir": "B5.nc"}}
    config = validate_config(write_config(area, [nc]))
    scene = open_product(config, config.imagery[2024][0], AnalysisGrid(CRS.from_user_input(UTM), TRANSFORM, W, H))
    np.testing.assert_allclose(scene.bands["red"].values, sr_dn(f["refl"][4]) * SR_MULT + SR_ADD, atol=1e-6)


# -- 9. run summary and manifest ------------------------------------------------------------------------------------

def test_summary_lists_only_the_written_formats_and_the_manifest_has_the_no_cloud_mask_warning(area):
    from ecoassess.cli import main

    write_landsat(area / PID, bands=VEGETATION_BANDS[:-1])  # no QA_PIXEL: no cloud mask
    config = write_config(area, [{"kind": "landsat_c2l2", "path": PID}], tables=("csv",))
    out = area / "out"
    res = CliRunner().invoke(main, ["run", str(config), "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if line.strip().startswith("table")]
    assert lines and all("results.gpkg" not in line and "results.xlsx" not in line for line in lines), lines
    assert any("tables/county_vegetation.csv" in line for line in lines)
    assert not (out / "results.gpkg").exists() and not (out / "tables" / "results.xlsx").exists()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    [warning] = [w for w in manifest["warnings"] if "no cloud mask" in w]
    assert warning.startswith("imagery.2024[0]: no cloud mask for scene " + PID) and "QA_PIXEL" in warning
    assert "no cloud mask" in res.output  # the summary says it too
    assert isinstance(pd.read_csv(out / "tables" / "county_vegetation.csv"), pd.DataFrame)
