"""Running some stages only (``ecoassess redline``/``network``, ``run(stages=...)``): the named stages and what
they need, in run order."""

import pytest

from ecoassess.errors import InputError
from ecoassess.stages.base import Stage, check_stage_order, select_stages


def _stage(name, needs=(), provides=()):
    return type(f"S_{name}", (Stage,), {"name": name, "needs": tuple(needs), "provides": tuple(provides)})()


STAGES = (_stage("veg", provides=["vegetation"]), _stage("rsei", provides=["rsei"]),
          _stage("change", needs=["vegetation"], provides=["change"]), _stage("ei", needs=["vegetation"]),
          _stage("report", needs=["change"]), _stage("network"))
check_stage_order(STAGES)


def names(stages):
    return [s.name for s in stages]


def test_a_stage_runs_with_what_it_needs_transitively_in_run_order():
    assert names(select_stages(STAGES, ["report"])) == ["veg", "change", "report"]
    assert names(select_stages(STAGES, ["network"])) == ["network"]
    assert names(select_stages(STAGES, ["network", "ei"])) == ["veg", "ei", "network"]
    assert names(select_stages(STAGES, None)) == names(STAGES)


def test_an_unknown_stage_is_named_with_the_known_ones():
    with pytest.raises(InputError) as err:
        select_stages(STAGES, ["redlines"])
    assert "'redlines'" in str(err.value) and "network" in str(err.value)


def test_the_pipeline_stages_can_be_selected_by_name():
    from ecoassess.pipeline import STAGES as PIPELINE

    for stage in PIPELINE:
        chosen = select_stages(PIPELINE, [stage.name])
        assert chosen[-1] is stage
        check_stage_order(chosen)


def test_an_unknown_stage_on_the_command_line_is_one_clear_line(tmp_path):
    from click.testing import CliRunner

    from ecoassess.cli import main

    cfg = tmp_path / "assessment.yaml"
    cfg.write_text("year: 2024\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["run", str(cfg), "--out", str(tmp_path / "out"), "--stage", "redlines"])
    assert res.exit_code == 2, res.output
    assert "unknown stage(s) 'redlines'" in res.output and "Traceback" not in res.output
