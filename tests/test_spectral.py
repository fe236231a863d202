"""The spectral index catalog: every entry's worked example, the grammar on load, and spyndex agreement."""

import json

import numpy as np
import pytest
import rasterio
import xarray as xr

from ecoassess.errors import InputError
from ecoassess.spectral import CatalogError, load_catalog

CATALOG = load_catalog()

# spyndex band and constant names for our band roles and constants
SPYNDEX_BANDS = {"coastal": "A", "blue": "B", "green": "G", "red": "R", "rededge1": "RE1", "rededge2": "RE2",
                 "rededge3": "RE3", "nir": "N", "nir08": "N2", "swir1": "S1", "swir2": "S2", "thermal": "T"}
SPYNDEX_CONSTANTS = {"G": "g", "C1": "C1", "C2": "C2", "L": "L", "alpha": "alpha", "gamma": "gamma"}


def test_catalog_has_at_least_25_checked_entries_and_a_version():
    assert len(CATALOG.names()) >= 25
    assert CATALOG.version
    for required in ("NDVI", "EVI", "EVI2", "SAVI", "MSAVI", "kNDVI", "NDWI", "MNDWI", "NDMI", "NBR", "NDBI", "SI",
                     "IBI", "NDBSI", "BSI", "TCB_OLI_TOA", "TCG_OLI_TOA", "TCW_OLI_TOA", "TCW_TM_SR", "TCW_ETM_TOA",
                     "TCW_S2", "LST"):
        assert required in CATALOG


@pytest.mark.parametrize("name", CATALOG.names())
def test_worked_example_of_every_entry(name):
    index = CATALOG[name]
    example = index.example
    value = index.evaluate({k: float(v) for k, v in example["inputs"].items()})
    assert value == pytest.approx(example["expected"], rel=1e-8, abs=1e-9), example.get("working")


def test_index_referring_to_other_indices_is_expanded():
    ndbsi = CATALOG["NDBSI"]
    assert set(ndbsi.bands) == {"blue", "green", "red", "nir", "swir1"}


def test_bad_entries_are_named_on_load(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("""
version: x
indices:
  A: {long_name: a, formula: (nir - reed) / 2, reference: r, example: {inputs: {}, expected: 0}}
  B: {long_name: b, formula: (nir - , reference: r, example: {inputs: {}, expected: 0}}
  C: {long_name: c, formula: D + 1, reference: r, example: {inputs: {}, expected: 0}}
  D: {long_name: d, formula: C + 1, reference: r, example: {inputs: {}, expected: 0}}
""", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(str(bad))
    text = str(info.value)
    assert "B: bad formula" in text
    bad.write_text(bad.read_text().replace("  B: {long_name: b, formula: (nir - , reference: r, example: {inputs: {}, expected: 0}}\n", ""))
    with pytest.raises(CatalogError) as info:
        load_catalog(str(bad))
    text = str(info.value)
    assert "A: formula names reed" in text and "refers to itself" in text


def test_a_worked_example_that_disagrees_with_its_formula_stops_the_load(tmp_path):
    """Every load recomputes each entry's worked example, so a typo in a user's own catalog is caught there."""
    own = tmp_path / "own.yaml"
    entry = ("  GNDVI2: {long_name: green NDVI, formula: (nir - green) / (nir + green), reference: Gitelson 1996, "
             "example: {inputs: {nir: 0.40, green: 0.08}, expected: %s, working: 0.32/0.48}}\n")
    own.write_text("version: mine-1\nindices:\n" + entry % "0.6666666667", encoding="utf-8")
    catalog = load_catalog(str(own))
    assert catalog.version == "mine-1" and catalog["GNDVI2"].bands == ("green", "nir")
    own.write_text("version: mine-1\nindices:\n" + entry % "0.6", encoding="utf-8")  # (0.32/0.48 is 0.667)
    with pytest.raises(CatalogError, match=r"GNDVI2: the worked example gives 0.6666666667 from the formula, but "
                                           r"expects 0.6 \(0.32/0.48\)"):
        load_catalog(str(own))


@pytest.mark.parametrize("text", ["indices: {A: [", "", "just a string", "version: 1\n"])
def test_a_catalog_file_that_is_not_a_catalog_is_one_clear_error(tmp_path, text):
    bad = tmp_path / "cat.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match=r"cat.yaml: (not a readable YAML file|expected a mapping with 'version' "
                                           r"and 'indices)"):
        load_catalog(bad)


def test_unknown_index_name_suggests_close_ones():
    with pytest.raises(CatalogError, match="did you mean .*NDVI"):
        CATALOG["NDIV"]


def _spyndex_params(index, bands):
    params = {SPYNDEX_BANDS[b]: bands[b] for b in index.bands}
    params.update({SPYNDEX_CONSTANTS[k]: v for k, v in index.constants.items()})
    return params


def _spyndex_value(index, bands):
    import spyndex

    params = _spyndex_params(index, bands)
    if index.spyndex == "kNDVI":
        sigma = 0.5 * (bands["nir"] + bands["red"])
        params = {"kNN": 1.0, "kNR": spyndex.computeKernel("RBF", {"a": bands["nir"], "b": bands["red"], "sigma": sigma})}
    return np.asarray(spyndex.computeIndex(index.spyndex, params), dtype="float64")


def _agree(bands):
    checked = []
    for name in CATALOG.names():
        index = CATALOG[name]
        if not index.spyndex or not set(index.bands) <= set(bands):
            continue
        ours = np.asarray(index.evaluate(bands), dtype="float64")
        theirs = _spyndex_value(index, bands)
        both = np.isfinite(ours) & np.isfinite(theirs)
        assert (np.isfinite(ours) == np.isfinite(theirs)).all(), name
        np.testing.assert_allclose(ours[both], theirs[both], rtol=0, atol=1e-6, err_msg=name)
        checked.append(name)
    return checked


def test_agrees_with_spyndex_on_the_120_real_landsat8_pixels(shared_data):
    pytest.importorskip("spyndex")
    raw = json.loads((shared_data / "landsat8-c2l2-pixel-samples-spyndex" / "spectral.json").read_text())
    col = {k: np.array([v[i] for i in sorted(v, key=int)]) for k, v in raw.items() if k != "class"}
    bands = {"coastal": col["SR_B1"], "blue": col["SR_B2"], "green": col["SR_B3"], "red": col["SR_B4"],
             "nir": col["SR_B5"], "swir1": col["SR_B6"], "swir2": col["SR_B7"], "thermal": col["ST_B10"]}
    checked = _agree(bands)
    assert len(checked) >= 15


def test_agrees_with_spyndex_on_the_liverpool_crop(shared_data):
    pytest.importorskip("spyndex")
    folder = shared_data / "landsat8-c2l2-liverpool-20200927"
    prefix = "LC08_L2SP_204023_20200927_20201006_02_T1"
    bands = {}
    for role, band in {"coastal": 1, "blue": 2, "green": 3, "red": 4, "nir": 5, "swir1": 6, "swir2": 7}.items():
        with rasterio.open(folder / f"{prefix}_SR_B{band}.TIF") as src:
            dn = src.read(1).astype("float64")
        bands[role] = np.where(dn == 0, np.nan, dn * 2.75e-05 - 0.2)[::3, ::3]  # every 3rd pixel keeps it quick
    _agree(bands)


def test_compute_on_a_dataset_keeps_nan_and_reports_range():
    from ecoassess.spectral import share_outside_range

    ds = xr.Dataset({"nir": ("x", np.array([0.4, 0.0, -0.05, np.nan])), "red": ("x", np.array([0.05, 0.0, 0.02, 0.1]))})
    out = CATALOG.compute("NDVI", ds)
    assert out.attrs["catalog_version"] == CATALOG.version
    assert np.isnan(out.values[1]) and np.isnan(out.values[3])
    # (-0.05 - 0.02) / (-0.03) = 2.33: outside [-1, 1], reported not clipped
    assert out.values[2] == pytest.approx(2.3333333, rel=1e-6)
    assert share_outside_range(out, CATALOG["NDVI"].valid_range) == pytest.approx(0.5)


def test_sensor_band_maps_are_data_and_the_readers_use_them():
    from ecoassess.sensors import landsat_spacecrafts, sentinel2_bands, sensors_spec
    from ecoassess.sources import landsat, sentinel2

    assert landsat.SPACECRAFTS == landsat_spacecrafts()
    assert landsat.SPACECRAFTS["LANDSAT_8"] == ("landsat8", {"coastal": 1, "blue": 2, "green": 3, "red": 4, "nir": 5,
                                                             "swir1": 6, "swir2": 7}, "ST_B10")
    assert landsat.SPACECRAFTS["LANDSAT_5"][1]["swir2"] == 7 and landsat.SPACECRAFTS["LANDSAT_5"][2] == "ST_B6"
    assert sentinel2.S2_BANDS == sentinel2_bands()
    assert sentinel2.S2_BANDS["nir08"] == ("B8A", 20, 8) and sentinel2.S2_BANDS["swir1"] == ("B11", 20, 11)
    roles = set(sensors_spec()["roles"])
    for name, sensor in sensors_spec()["sensors"].items():
        assert set(sensor["bands"]) <= roles, name


def test_compute_many_equals_compute_one_by_one():
    """The per-chunk evaluation of several indices gives exactly the values of separate compute calls."""
    import dask.array as da

    from ecoassess.grid import AnalysisGrid

    catalog = load_catalog()
    grid = AnalysisGrid.from_bounds((0, 0, 500, 300), 10, "EPSG:32650")
    rng = np.random.default_rng(9)
    roles = ["blue", "green", "red", "nir", "swir1", "swir2"]
    bands = {}
    for role in roles:
        x = rng.uniform(0.0, 0.5, grid.shape).astype("float32")
        x[rng.random(grid.shape) < 0.05] = np.nan
        x[0, :3] = 0.0  # zero denominators → NaN
        bands[role] = grid.wrap(da.from_array(x, chunks=16), name=role)
    names = ["NDVI", "NDBSI", "TCW_OLI_SR", "EVI"]
    many = catalog.compute_many(names, bands)
    assert list(many) == names
    for name in names:
        one = catalog.compute(name, bands)
        np.testing.assert_array_equal(many[name].values, one.values, err_msg=name)
        assert many[name].attrs["formula"] == one.attrs["formula"] and many[name].name == name
    with pytest.raises(InputError, match="swir1"):
        catalog.compute_many(["NDVI", "NDBSI"], {r: bands[r] for r in ("red", "nir", "blue", "green")})
