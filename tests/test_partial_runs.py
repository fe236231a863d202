"""A run limited to some stages (``ecoassess redline``/``network``, ``run --stage``) never replaces earlier results
that hold more than it makes: the audit's `redline --out` into the annual results folder deleted every layer."""

import json

import pytest

from ecoassess.store import FORCED_SUBFOLDER, OutFolderError, usable_out_dir


def _earlier_results(folder, stages):
    folder.mkdir()
    extra = {} if stages is None else {"stages": stages}
    (folder / "manifest.json").write_text(json.dumps({"ecoassess_version": "x", "outputs": [], "extra": extra}),
                                          encoding="utf-8")
    return folder


def test_a_red_line_run_refuses_the_folder_of_a_whole_run(tmp_path):
    out = _earlier_results(tmp_path / "res", ["vegetation", "rsei", "ei", "network", "redline"])
    with pytest.raises(OutFolderError) as err:
        usable_out_dir(out, stages=["redline"])
    text = str(err.value)
    assert "vegetation, rsei, ei, network" in text and "res-redline" in text and "--force" in text
    assert usable_out_dir(out, stages=["redline"], force=True) == out / FORCED_SUBFOLDER
    assert usable_out_dir(out) == out                       # the whole run replaces it, as before


def test_results_without_a_record_of_their_stages_count_as_a_whole_run(tmp_path):
    out = _earlier_results(tmp_path / "old", None)
    with pytest.raises(OutFolderError, match="the whole assessment"):
        usable_out_dir(out, stages=["network"])


def test_a_red_line_run_may_replace_an_earlier_red_line_run(tmp_path):
    out = _earlier_results(tmp_path / "res", ["redline"])
    assert usable_out_dir(out, stages=["redline"]) == out
    assert usable_out_dir(tmp_path / "new", stages=["redline"]) == tmp_path / "new"
