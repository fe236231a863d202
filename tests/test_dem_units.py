"""DEM units and voids (#16 finding 6): a DEM in feet with its unit tag gives the same erosion as the metre DEM;
``dem.z_units`` states the unit of an untagged file and may not contradict a tag; an untagged −32768 void is
nodata (with a warning), not a height; implausible heights are refused naming the file and ``dem``."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import rasterio
import yaml

from ecoassess.config import load_config
from ecoassess.validate import validate_config
from ecoassess.errors import ConfigError

FOOT_M = 0.3048


@pytest.fixture(scope="module")
def sample_config(sample_copy):
    """The module's copy of the sample (conftest): DEMs and configs are written beside it."""
    return sample_copy


def _sample_dem(sample_config):
    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    path = sample_config.parent / raw["dem"]["path"]
    with rasterio.open(path) as src:
        return src.read(1, masked=True), src.profile


def _write_dem(path, heights, profile, *, units=None, nodata="keep"):
    profile = dict(profile)
    if nodata != "keep":
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(heights.astype(profile["dtype"]), 1)
        if units is not None:
            dst.units = (units,)
    return path


def _config_with_dem(sample_config, name, **dem):
    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    raw["dem"] = dem
    path = sample_config.parent / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _severe_and_moderate_km2(config_path):
    """The erosion path of the EI stage (RUSLE from the DEM) for the sample's 2024 land cover, per county."""
    from ecoassess.pipeline import build_grid, read_study_area, read_zone_sets
    from ecoassess.stages.base import RunInputs
    from ecoassess.stages.ei_inputs import erosion_km2, land_cover_of

    config = load_config(config_path)
    study_area = read_study_area(config)
    grid = build_grid(config, study_area)
    zones = read_zone_sets(config, study_area, grid)
    inputs = RunInputs(config, grid)
    land_cover, legend = land_cover_of(inputs, 2024)
    table, _, notes = erosion_km2(inputs, zones["county"], land_cover, legend, None)
    return table[["severe_erosion_km2", "moderate_erosion_km2"]], notes


@pytest.fixture(scope="module")
def metre_erosion(sample_config):
    return _severe_and_moderate_km2(sample_config)


def test_a_dem_in_feet_with_its_unit_tag_gives_the_metre_dems_erosion(sample_config, metre_erosion):
    heights, profile = _sample_dem(sample_config)
    in_feet = np.ma.filled(heights / FOOT_M, profile["nodata"])
    _write_dem(sample_config.parent / "dem_ft.tif", in_feet, profile, units="ft")
    feet, notes = _severe_and_moderate_km2(_config_with_dem(sample_config, "dem_ft.yaml", path="dem_ft.tif"))
    metres, metre_notes = metre_erosion
    assert metres["severe_erosion_km2"].sum() > 1.0  # the sample has severe erosion to compare
    # the same areas (the feet are float32: a class flip of a cell or so at most, 30 m cells = 0.0009 km²)
    np.testing.assert_allclose(feet.to_numpy(), metres.to_numpy(), atol=2 * 0.0009)
    assert any("DEM heights in foot (the unit tag 'ft' of dem_ft.tif), converted to metres (× 0.3048)" in n
               for n in notes), notes
    assert any("DEM heights in metre (dem.tif has no unit tag and dem.z_units is not set: taken as metres)" in n
               for n in metre_notes), metre_notes


def test_dem_z_units_states_the_unit_of_an_untagged_file_and_may_not_contradict_a_tag(sample_config,
                                                                                       metre_erosion):
    heights, profile = _sample_dem(sample_config)
    in_feet = np.ma.filled(heights / FOOT_M, profile["nodata"])
    _write_dem(sample_config.parent / "dem_ft_untagged.tif", in_feet, profile)
    stated, notes = _severe_and_moderate_km2(_config_with_dem(sample_config, "dem_ft_stated.yaml",
                                                              path="dem_ft_untagged.tif", z_units="foot"))
    np.testing.assert_allclose(stated.to_numpy(), metre_erosion[0].to_numpy(), atol=2 * 0.0009)
    assert any("DEM heights in foot (dem.z_units: foot (dem_ft_untagged.tif has no unit tag))" in n for n in notes)

    _write_dem(sample_config.parent / "dem_m_tagged.tif", heights.filled(profile["nodata"]), profile, units="metre")
    with pytest.raises(ConfigError) as caught:
        validate_config(_config_with_dem(sample_config, "dem_conflict.yaml", path="dem_m_tagged.tif", z_units="foot"))
    (problem,) = caught.value.problems
    assert problem.startswith("dem: ") and "dem_m_tagged.tif [dem.z_units]" in problem
    assert "dem.z_units says foot, but band 1 of the file is tagged 'metre'" in problem


def test_an_untagged_void_is_nodata_not_a_height(sample_config, caplog):
    heights, profile = _sample_dem(sample_config)
    values = heights.filled(-32768.0)
    values[300:340, 300:360] = -32768.0   # a void inside the study area (SRTM style), no nodata tag
    _write_dem(sample_config.parent / "dem_void.tif", values, profile, nodata=None)
    _write_dem(sample_config.parent / "dem_void_tagged.tif", values, profile, nodata=-32768.0)
    with caplog.at_level(logging.WARNING):
        untagged, notes = _severe_and_moderate_km2(_config_with_dem(sample_config, "dem_void.yaml",
                                                                    path="dem_void.tif"))
    assert any("dem_void.tif has no nodata tag but holds void values" in r.getMessage() for r in caplog.records)
    assert any("dem_void.tif has no nodata tag but holds void values (2,400 cells of -32768)" in n for n in notes)
    tagged, _ = _severe_and_moderate_km2(_config_with_dem(sample_config, "dem_void_tagged.yaml",
                                                          path="dem_void_tagged.tif"))
    # the same as a file that declares its nodata: the void's 30 km cliffs make no severe erosion
    np.testing.assert_array_equal(untagged.to_numpy(), tagged.to_numpy())


def test_implausible_heights_are_refused_naming_file_and_field(sample_config):
    heights, profile = _sample_dem(sample_config)
    in_cm = heights.filled(profile["nodata"]) * 100.0     # centimetres, as a DEM in metres: 25,000-85,000 "m"
    _write_dem(sample_config.parent / "dem_cm.tif", in_cm, profile)
    with pytest.raises(ConfigError) as caught:
        validate_config(_config_with_dem(sample_config, "dem_cm.yaml", path="dem_cm.tif"))
    (problem,) = caught.value.problems
    low, high = float(heights.min()) * 100, float(heights.max()) * 100
    assert problem.startswith(f"dem: {sample_config.parent / 'dem_cm.tif'} holds heights from {low:,.6g} to "
                              f"{high:,.6g} m")
    assert "outside the plausible -500…9000 m" in problem

    values = heights.filled(profile["nodata"])
    values[10:20, 10:20] = -32767.0
    _write_dem(sample_config.parent / "dem_hole.tif", values, profile)  # nodata tag -9999, another void value
    with pytest.raises(ConfigError) as caught:
        validate_config(_config_with_dem(sample_config, "dem_hole.yaml", path="dem_hole.tif"))
    (problem,) = caught.value.problems
    assert "holds heights from -32,767 to" in problem and "is -32767 a nodata value the file does not declare" in problem


def test_a_void_value_under_a_nan_nodata_tag_is_no_height_either(sample_config):
    """A file that declares NaN as its nodata but holds −32768 voids: the voids are not taken as nodata
    silently (the file says what its nodata is), and as heights they are refused."""
    heights, profile = _sample_dem(sample_config)
    values = heights.filled(np.nan)
    values[300:310, 300:310] = -32768.0
    _write_dem(sample_config.parent / "dem_nan_void.tif", values, profile, nodata=float("nan"))
    with pytest.raises(ConfigError) as caught:
        validate_config(_config_with_dem(sample_config, "dem_nan_void.yaml", path="dem_nan_void.tif"))
    (problem,) = caught.value.problems
    assert "dem_nan_void.tif holds heights from -32,768 to" in problem


def test_small_voids_of_a_dem_larger_than_one_scan_window_are_found(tmp_path, monkeypatch):
    """A large DEM was scanned decimated, so 2×2 pits of −32768 between the sampled cells were never seen and the run
    interpolated them as heights (the audit: +0.13 km² severe erosion, no message)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    import ecoassess.layers.dem as dem_module

    heights = np.full((300, 300), 500.0, "float32")
    for r, c in ((7, 11), (101, 203), (251, 53)):
        heights[r:r + 2, c:c + 2] = -32768
    path = tmp_path / "big_dem.tif"
    with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=1, dtype="float32",
                       crs="EPSG:32648", transform=from_origin(400000, 3300000, 30, 30)) as dst:
        dst.write(heights, 1)
    monkeypatch.setattr(dem_module, "SCAN_WINDOW_CELLS", 300 * 16)  # many windows, as for a 10⁹-cell DEM
    dem_module._scan.cache_clear()
    scan = dem_module.scan_dem(path)
    assert scan.voids == {-32768.0: 12} and scan.cells_read == 300 * 300 and (scan.low, scan.high) == (500, 500)
