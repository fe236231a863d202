"""The results folder never replaces what ecoassess did not write; a killed run's leftovers are recovered or removed.

Each case is one an audit met (issue #16): ``--out`` on a folder of the user's own files, ``.``, ``..``, ``/``, a
symlink to a shared drive, a results folder inside an input folder; kill -9 between the renames of a commit, stale
staging and spill folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from ecoassess.cli import main
from ecoassess.materialize import remove_stale_spill_folders
from ecoassess.resume import Parts
from ecoassess.store import FORCED_SUBFOLDER, OutFolderError, ResultsStore, recover_interrupted


def _results(out, text="run 1", **kwargs):
    with ResultsStore(out, **kwargs) as store:
        store.path("layers/a.tif").write_text(text)
        store.write_table("t", pd.DataFrame({"a": [1, 2]}))
    return store


def _user_folder(path):
    path.mkdir(parents=True)
    files = {"report.docx": b"PK\x03\x04 the county report", "photos/site1.jpg": b"\xff\xd8 photo",
             "assessment.yaml": b"name: x\n"}
    for rel, body in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(body)
    return files


def _unchanged(path, files):
    return all((path / rel).read_bytes() == body for rel, body in files.items())


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_folder_of_the_users_own_files_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "report"
    files = _user_folder(folder)
    with pytest.raises(OutFolderError, match=r"report: holds files that are not results of an earlier ecoassess "
                                             r"run, or were changed after it \(assessment.yaml, photos/site1.jpg, report.docx\).*--force"):
        ResultsStore(folder)
    assert _unchanged(folder, files) and sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_force_puts_the_results_into_a_new_subfolder_and_deletes_nothing(tmp_path):
    folder = tmp_path / "report"
    files = _user_folder(folder)
    store = _results(folder, force=True)
    assert store.out_dir == folder / FORCED_SUBFOLDER and (folder / FORCED_SUBFOLDER / "tables" / "t.csv").exists()
    _results(folder, text="run 2", force=True)  # again: the subfolder is ours now, so it is replaced
    assert (folder / FORCED_SUBFOLDER / "layers" / "a.tif").read_text() == "run 2"
    assert _unchanged(folder, files) and sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_earlier_results_the_user_edited_are_refused_and_kept(tmp_path):
    """A reviewer's sheet added to the workbook, a corrected table: the names are the manifest's, the content is the
    user's (an audit lost both when the same command ran again)."""
    out = tmp_path / "results"
    _results(out)
    csv = out / "tables" / "t.csv"
    csv.write_text(csv.read_text() + "3\n")  # a correction appended by hand
    edited = csv.read_bytes()
    with pytest.raises(OutFolderError, match=r"tables/t.csv \(changed since ecoassess wrote it\)"):
        _results(out, text="run 2")
    assert csv.read_bytes() == edited
    store = _results(out, text="run 2", force=True)
    assert store.out_dir == out / FORCED_SUBFOLDER and csv.read_bytes() == edited
    other = tmp_path / "other"
    _results(other)
    (other / "layers" / "a.tif.xml").write_text("<metadata>written by the user in ArcGIS</metadata>")
    with pytest.raises(OutFolderError, match=r"\(layers/a.tif.xml\)"):
        _results(other, text="run 2")


def test_earlier_results_with_a_file_the_user_added_are_refused_but_gis_side_files_are_not(tmp_path):
    out = tmp_path / "results"
    _results(out)
    (out / "layers" / "a.tif.aux.xml").write_text("<PAMDataset/>")  # ArcGIS/QGIS opened the layer
    (out / ".DS_Store").write_bytes(b"\0")
    _results(out, text="run 2")
    assert (out / "layers" / "a.tif").read_text() == "run 2" and not (out / "layers" / "a.tif.aux.xml").exists()
    (out / "my_notes.docx").write_bytes(b"the user's own work")
    with pytest.raises(OutFolderError, match="my_notes.docx"):
        _results(out, text="run 3")
    assert (out / "my_notes.docx").exists() and (out / "layers" / "a.tif").read_text() == "run 2"


def test_dot_and_dotdot_and_root_are_refused_with_one_line(tmp_path, monkeypatch):
    data = tmp_path / "data"
    files = _user_folder(data)
    monkeypatch.chdir(data)
    for out in (".", "..", "/"):
        with pytest.raises(OutFolderError):
            ResultsStore(out)
    assert _unchanged(data, files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no hidden '...partial-<pid>' beside it
    result = CliRunner().invoke(main, ["run", str(data / "assessment.yaml"), "--out", "/"])
    assert result.exit_code == 2 and "root of a file system" in result.output and "Traceback" not in result.output


def test_an_out_that_is_a_symlink_puts_the_results_where_it_points(tmp_path):
    share = tmp_path / "share" / "results"
    _results(share)
    link = tmp_path / "local" / "results"
    link.parent.mkdir()
    link.symlink_to(share, target_is_directory=True)
    _results(link, text="run 2")
    assert link.is_symlink() and (share / "layers" / "a.tif").read_text() == "run 2"
    assert sorted(p.name for p in share.parent.iterdir()) == ["results"]


def test_a_symlink_loop_as_out_is_one_clear_error(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OutFolderError, match="loop"):
        ResultsStore(loop / "results")


def test_results_inside_an_input_folder_are_not_listed_as_inputs(tmp_path):
    from ecoassess.manifest import build_manifest
    from ecoassess.pipeline import _results_folders_of

    product = tmp_path / "S2A_48RVU_20240716_0_L2A"
    product.mkdir()
    (product / "B04.tif").write_bytes(b"band")
    out = product / "results"
    _results(out)
    staging = product / f"results.partial-{_dead_pid()}"
    staging.mkdir()
    (staging / "x.tif").write_bytes(b"staging")
    manifest = build_manifest(config={}, config_path=None, inputs=[product], outputs_dir=out, timings={},
                              exclude_inputs=_results_folders_of(out))
    assert [e["path"] for e in manifest["inputs"]] == [str(product / "B04.tif")]


# -- a commit killed between its renames, stale staging -------------------------------------------------------

def _killed_commit(out, pid, *, renamed_old: bool, ready: bool = True):
    """The folders a run with ``pid`` leaves when killed during its commit (see ResultsStore.commit)."""
    _results(out, text="earlier")
    if ready:
        new = out.with_name(f"{out.name}.ready-{pid}")
        _results(new, text="finished")
    if renamed_old:
        os.rename(out, out.with_name(f"{out.name}.old-{pid}"))


def test_a_commit_killed_after_the_earlier_results_were_moved_away_is_completed(tmp_path):
    out, pid = tmp_path / "results", _dead_pid()
    _killed_commit(out, pid, renamed_old=True)
    assert not out.exists()
    done = recover_interrupted(out)
    assert "completed the interrupted commit" in done[0]
    assert (out / "layers" / "a.tif").read_text() == "finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_commit_killed_before_the_swap_is_completed_too(tmp_path):
    out, pid = tmp_path / "results", _dead_pid()
    _killed_commit(out, pid, renamed_old=False)
    recover_interrupted(out)
    assert (out / "layers" / "a.tif").read_text() == "finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_earlier_results_moved_away_without_finished_ones_are_restored(tmp_path):
    out, pid = tmp_path / "results", _dead_pid()
    _killed_commit(out, pid, renamed_old=True, ready=False)
    done = recover_interrupted(out)
    assert "restored the earlier results" in done[0] and (out / "layers" / "a.tif").read_text() == "earlier"


def test_the_next_run_recovers_and_removes_stale_leftovers_and_says_so(tmp_path, caplog):
    out, pid = tmp_path / "results", _dead_pid()
    _results(out, text="earlier")
    stale = out.with_name(f"results.partial-{pid}")
    (stale / "layers").mkdir(parents=True)
    (stale / "layers" / "half.tif").write_bytes(b"\0" * 1000)
    old = out.with_name(f"results.old-{_dead_pid()}")
    _results(old, text="older")
    _results(out, text="run 2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert "results.partial-" in caplog.text and "unfinished results of a stopped run" in caplog.text


def test_a_folder_a_live_run_is_writing_is_not_touched(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        out = tmp_path / "results"
        staging = out.with_name(f"results.partial-{sleeper.pid}")
        staging.mkdir()
        (staging / "x.tif").write_bytes(b"being written")
        with pytest.raises(OutFolderError, match=f"another ecoassess run \\(process {sleeper.pid}\\)"):
            ResultsStore(out)
        assert (staging / "x.tif").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stale_spill_folders_of_killed_runs_are_removed(tmp_path):
    dead = tmp_path / f"ecoassess-spill-{_dead_pid()}-abc123"
    live = tmp_path / f"ecoassess-spill-{os.getppid()}-def456"
    other = tmp_path / "ecoassess-spill-somebody-else"
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "0_0_0.npy").write_bytes(b"\0" * 100)
    assert remove_stale_spill_folders(tmp_path) == [dead]
    assert live.exists() and other.exists() and not dead.exists()


# -- resumable parts --------------------------------------------------------------------------------------------

class _Result:
    """What a part may add to a run's result (stages.base.RunResult)."""

    def __init__(self):
        self.tables, self.layers, self.maps, self.manifest, self.problems = {}, {}, {}, {}, []
        self.warnings, self.alerts, self.files = [], [], {}


def _part(store, result, calls):
    def fn():
        calls.append(1)
        store.path("layers/p.tif").write_text("layer")
        table = pd.DataFrame({"code": ["510101"], "ei": [61.25]})
        store.write_table("county_x", table)
        result.tables["county_x"] = table
        result.layers["p"] = "layers/p.tif"
        result.manifest["x"] = {"2024": 1.5}
        return 42
    return fn


def test_a_part_completed_before_a_kill_is_replayed_not_rerun(tmp_path):
    out, calls = tmp_path / "results", []
    store = ResultsStore(out, run_key="k1")
    store.parts = Parts(store, _Result(), "k1")
    assert store.parts.run("part a", _part(store, store.parts.result, calls)) == 42
    store.path("layers/half_written.tif").write_text("a part that did not complete")
    dead = out.with_name(f"results.partial-{_dead_pid()}")
    os.rename(store.staging, dead)  # as if this process had been killed now
    # the same run again: the completed part is replayed
    again, result = ResultsStore(out, run_key="k1"), _Result()
    again.parts = Parts(again, result, "k1")
    assert again.parts.run("part a", _part(again, result, calls)) == 42 and calls == [1]
    assert result.layers == {"p": "layers/p.tif"} and result.manifest == {"x": {"2024": 1.5}}
    assert list(result.tables["county_x"]["ei"]) == [61.25] and "part a" in again.parts.reused
    assert not (again.staging / "layers" / "half_written.tif").exists()
    again.commit()
    assert (out / "tables" / "county_x.csv").exists() and (out / "layers" / "p.tif").read_text() == "layer"
    assert not (out / ".ecoassess-resume").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_another_run_key_reuses_nothing_and_removes_the_stale_staging(tmp_path):
    out, calls = tmp_path / "results", []
    store = ResultsStore(out, run_key="k1")
    store.parts = Parts(store, _Result(), "k1")
    store.parts.run("part a", _part(store, store.parts.result, calls))
    os.rename(store.staging, out.with_name(f"results.partial-{_dead_pid()}"))
    other = ResultsStore(out, run_key="k2")  # the config or an input changed
    other.parts = Parts(other, _Result(), "k2")
    other.parts.run("part a", _part(other, other.parts.result, calls))
    assert calls == [1, 1] and not other.parts.reused and other.adopted is None
    other.abort()
    assert list(tmp_path.iterdir()) == []
