"""FVC end-members (issue 18, item 6): a warning where fitted end-members make FVC meaningless, and end-members
fixed in the config for every year (what comparing years needs)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import ecoassess
from ecoassess.errors import ConfigError
from ecoassess.layers.vegetation import FvcEndmembers, endmember_warning


def test_the_desert_tiles_end_members_get_a_warning_and_ordinary_ones_do_not():
    # the audit's 96 % bare desert tile: 0.048 / 0.084, county FVC came out 0.50
    desert = endmember_warning(FvcEndmembers(0.048, 0.084, 1000))
    assert "only 0.036 apart" in desert and "fvc.ndvi_soil" in desert
    assert "far below full vegetation" in endmember_warning(FvcEndmembers(0.10, 0.42, 1000))
    assert endmember_warning(FvcEndmembers(0.12, 0.86, 1000)) == ""
    assert endmember_warning(FvcEndmembers(0.048, 0.084, 0, "fixed in the config (fvc.ndvi_soil, fvc.ndvi_veg)")) == ""


@pytest.fixture(scope="module")
def sample(sample_copy):
    """The module's copy of the sample (conftest): configs are written beside it."""
    return sample_copy


def _with_fvc(sample, tmp_path, fvc):
    raw = yaml.safe_load(sample.read_text(encoding="utf-8"))
    raw["fvc"] = fvc
    path = sample.parent / f"fvc_{len(list(sample.parent.glob('fvc_*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("fvc, message", [({"ndvi_soil": 0.1}, "give both ndvi_soil and ndvi_veg"),
                                          ({"ndvi_soil": 0.8, "ndvi_veg": 0.2}, "must be below ndvi_veg")])
def test_half_or_reversed_end_members_are_refused(sample, tmp_path, fvc, message):
    with pytest.raises(ConfigError, match=message):
        ecoassess.load_config(_with_fvc(sample, tmp_path, fvc))


def test_fixed_end_members_are_used_for_fvc_and_recorded(sample, tmp_path):
    from ecoassess.pipeline import build_grid, read_study_area, read_zone_sets
    from ecoassess.stages.vegetation import county_vegetation_table, vegetation_year

    config = ecoassess.load_config(_with_fvc(sample, tmp_path, {"ndvi_soil": 0.05, "ndvi_veg": 0.86}))
    study_area = read_study_area(config)
    grid = build_grid(config, study_area)
    zones = read_zone_sets(config, study_area, grid)
    veg = vegetation_year(config, 2024, grid, zones["county"].covered())
    assert (veg.endmembers.ndvi_soil, veg.endmembers.ndvi_veg) == (0.05, 0.86)
    ndvi, got = veg.ndvi.values, veg.fvc.values
    expected = np.clip((ndvi - np.float32(0.05)) / np.float32(0.86 - 0.05), 0, 1)  # STANDARDS §4, by hand
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    table = county_vegetation_table(zones["county"], veg)
    assert set(table["fvc_endmembers"]) == {"fixed in the config (fvc.ndvi_soil, fvc.ndvi_veg)"}
    assert set(table["fvc_warning"]) == {""} and set(table["ndvi_soil"]) == {0.05}
