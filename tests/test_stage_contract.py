"""The stage contract (issue 17): stages declared in order, and every configured input opened once per run."""

from __future__ import annotations

from collections import Counter

import pytest

import ecoassess
from ecoassess.pipeline import STAGES
from ecoassess.stages.base import RunContext, Stage, check_stage_order


class _Needs(Stage):
    name = "needs vegetation"
    needs = ("vegetation",)


class _Provides(Stage):
    name = "makes vegetation"
    provides = ("vegetation",)


def test_load_config_opens_no_input_and_validate_names_a_broken_one(sample_copy, tmp_path):
    config_path = sample_copy  # a broken raster and a config are written beside it: the module's copy
    raw = config_path.read_text(encoding="utf-8")
    (config_path.parent / "landcover" / "broken_2023.tif").write_bytes(b"II*\x00 not a raster")
    broken = config_path.with_name("broken.yaml")
    broken.write_text(raw.replace("landcover/lucc_2023.tif", "landcover/broken_2023.tif"), encoding="utf-8")
    config = ecoassess.load_config(broken)  # the schema is fine: the raster is not opened, no error
    assert str(config.land_cover[2023].path).endswith("broken_2023.tif")
    with pytest.raises(ecoassess.ConfigError, match="land_cover.2023"):
        ecoassess.validate_config(config)
    with pytest.raises(ecoassess.ConfigError, match="land_cover.2023"):
        ecoassess.run(config, out=tmp_path / "results")  # the run checks the inputs before computing
    assert not (tmp_path / "results").exists()


def test_the_declared_stages_are_in_an_order_that_satisfies_every_need():
    check_stage_order(STAGES)
    assert [s.name for s in STAGES][:1] == ["vegetation"]
    check_stage_order([_Provides(), _Needs()])
    with pytest.raises(ValueError, match="needs vegetation.*no earlier stage provides"):
        check_stage_order([_Needs(), _Provides()])
    with pytest.raises(ValueError, match="unique name"):
        check_stage_order([_Provides(), _Provides()])


def test_each_input_of_the_sample_is_opened_once_by_the_stages(shared_sample, tmp_path, monkeypatch):
    """After validate's header checks, the run opens each product, land-cover raster and zone file once,
    however many stages and years use it (the vegetation, RSEI and EI stages each opened them again before)."""
    import ecoassess.grid
    import ecoassess.readers
    import ecoassess.sources

    config = ecoassess.load_config(shared_sample)
    config.outputs.maps = False
    ecoassess.validate_config(config)  # a config changed after validate is validated again by the run
    opened = Counter()

    def counting(name, real):
        def reader(path, *args, **kwargs):
            opened[(name, str(path))] += 1
            return real(path, *args, **kwargs)
        return reader

    for name in ("open_sentinel2_l2a", "open_landsat_c2l2"):
        monkeypatch.setattr(ecoassess.sources, name, counting(name, getattr(ecoassess.sources, name)))
    monkeypatch.setattr(ecoassess.readers, "read_vector", counting("read_vector", ecoassess.readers.read_vector))
    monkeypatch.setattr(ecoassess.grid, "read_on_grid", counting("read_on_grid", ecoassess.grid.read_on_grid))
    seen = {}
    real_run = STAGES[-1].run

    def last_stage(ctx: RunContext):  # look at what the run opened, before the context is cleared
        real_run(ctx)
        seen.update(ctx.inputs.opened)
    monkeypatch.setattr(STAGES[-1], "run", last_stage)

    result = ecoassess.run(config, out=tmp_path / "results", quiet=True)
    assert {"county_vegetation", "county_rsei", "county_ei", "function_zone_indicators"} <= set(result.tables)
    products = [str(s.path) for year in config.imagery for s in config.imagery[year]]
    products += [str(s.path) for s in config.thermal.values()]
    assert sorted(p for (kind, p) in opened if kind.startswith("open_")) == sorted(products)
    rasters = {p for (kind, p) in opened if kind == "read_on_grid"}  # every band file, land cover, DEM
    assert {str(config.land_cover[y].path) for y in config.land_cover} | {str(config.dem.path)} <= rasters
    assert {k: n for k, n in opened.items() if n != 1} == {}, "opened more than once"
    vectors = {p for (kind, p) in opened if kind == "read_vector"}
    assert str(config.zones["function_zones"].path) in vectors and str(config.rivers.path) in vectors
    assert all(n == 1 for n in seen.values()), seen
    assert {f"land_cover.{y}" for y in config.land_cover} <= set(seen)


def test_a_config_changed_after_validate_is_checked_again_by_the_run(shared_sample, tmp_path):
    config = ecoassess.validate_config(shared_sample)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00 not a raster")
    config.land_cover[2023].path = broken  # edited in a notebook after validating
    with pytest.raises(ecoassess.ConfigError, match="broken.tif"):
        ecoassess.run(config, out=tmp_path / "results")


def test_a_failing_stage_is_a_problem_of_the_run_and_the_next_stages_go_on(shared_sample, tmp_path):
    from ecoassess.errors import EcoassessError
    from ecoassess.pipeline import run_stages
    from ecoassess.stages.base import RunResult

    class Broken(Stage):
        name = "broken"

        def run(self, ctx):
            raise EcoassessError("no data")

    class Fine(Stage):
        name = "fine"

        def run(self, ctx):
            ctx.result.tables["fine"] = "made"

    config = ecoassess.load_config(shared_sample)
    ctx = RunContext(config, None, None, {}, None, None, None, RunResult(tmp_path, None), None)
    run_stages(ctx, [Broken(), Fine()])
    assert ctx.result.problems == ["broken: no data"] and ctx.result.tables == {"fine": "made"}
    with pytest.raises(EcoassessError, match="no part of the run completed:\n  broken: no data"):
        run_stages(RunContext(config, None, None, {}, None, None, None, RunResult(tmp_path, None), None), [Broken()])
    config.run.on_error = "stop"
    with pytest.raises(EcoassessError, match="^no data$"):
        run_stages(ctx, [Broken(), Fine()])
