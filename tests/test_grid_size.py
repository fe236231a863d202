"""Grid size guards (#16 finding 8): a cell size implausible for the study area is refused before any computing,
naming ``grid.resolution_m``, the study area's size, the cell count and a value that would do."""

from __future__ import annotations

import re

import geopandas as gpd
import pytest
import yaml

from ecoassess.config import load_config
from ecoassess.validate import validate_config
from ecoassess.errors import ConfigError, InputError
from ecoassess.grid import china_albers_crs


@pytest.fixture(scope="module")
def sample_config(sample_copy):
    """The module's copy of the sample (conftest): configs are written beside it."""
    return sample_copy


def _with_grid(sample_config, tmp_path, **grid):
    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    raw["grid"] = {**raw.get("grid", {}), **grid}
    path = sample_config.parent / f"grid_{tmp_path.name}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _study_box_m(sample_config):
    """Width and height (m) of the study area's bounding box in the grid CRS, by geopandas (not ecoassess)."""
    raw = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    gdf = gpd.read_file(sample_config.parent / raw["study_area"]["path"]).to_crs(china_albers_crs().to_wkt())
    x0, y0, x1, y1 = gdf.total_bounds
    return x1 - x0, y1 - y0


def _problem(path) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_config(path)
    grid_problems = [p for p in caught.value.problems if p.startswith("grid.")]
    assert len(grid_problems) == 1, caught.value.problems
    return grid_problems[0]


def test_a_centimetre_grid_is_refused_with_its_cell_count(sample_config, tmp_path):
    problem = _problem(_with_grid(sample_config, tmp_path, resolution_m=0.01))
    assert problem.startswith("grid.resolution_m: 0.01 m gives ")
    cells = int(re.search(r"gives ([\d,]+) cells", problem).group(1).replace(",", ""))
    width, height = _study_box_m(sample_config)
    # ~4.8·10¹² cells: the box's area over the cell's, within the few cells the densified box adds
    assert cells == pytest.approx(width * height / 0.01 ** 2, rel=2e-3)
    assert f"{width / 1000:.4g} km × {height / 1000:.4g} km" in problem
    assert "grid.max_cells = 2,000,000,000" in problem
    assert "e.g. grid.resolution_m: 30" in problem


def test_a_kilometre_grid_with_a_cell_or_two_is_refused(sample_config, tmp_path):
    problem = _problem(_with_grid(sample_config, tmp_path, resolution_m=1e6))
    assert "grid.resolution_m: 1e+06 m gives only 1 × 1 = 1 cells" in problem
    assert "fewer than 10 across" in problem and "e.g. grid.resolution_m: 30" in problem


def test_max_cells_is_configurable(sample_config, tmp_path):
    width, height = _study_box_m(sample_config)
    at_30 = -(-width // 30) * -(-height // 30)   # whole 30 m cells over the box (ceil), ~537,000
    problem = _problem(_with_grid(sample_config, tmp_path, max_cells=int(at_30 // 2)))
    assert f"more than grid.max_cells = {int(at_30 // 2):,}" in problem
    assert validate_config(_with_grid(sample_config, tmp_path, max_cells=int(at_30 * 2))).grid.max_cells == int(at_30 * 2)


def test_the_run_and_the_grid_builder_refuse_it_too_when_the_config_was_loaded_unchecked(sample_config, tmp_path):
    import ecoassess
    from ecoassess.errors import ConfigError
    from ecoassess.pipeline import build_grid, read_study_area

    config = load_config(_with_grid(sample_config, tmp_path, resolution_m=1e6))  # schema only: no size check yet
    with pytest.raises(InputError) as caught:  # building the grid from Python checks it too
        build_grid(config, read_study_area(config))
    assert "[grid.resolution_m]" in str(caught.value) and "fewer than 10 across" in str(caught.value)
    with pytest.raises(ConfigError, match="fewer than 10 across"):  # run validates the loaded config first
        ecoassess.run(config, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_cli_prints_one_line_per_problem_and_no_traceback(sample_config, tmp_path):
    from click.testing import CliRunner

    from ecoassess.cli import main

    out = CliRunner().invoke(main, ["validate", str(_with_grid(sample_config, tmp_path, resolution_m=0.01))])
    assert out.exit_code == 1
    assert "grid.resolution_m: 0.01 m gives" in out.output and "Traceback" not in out.output
