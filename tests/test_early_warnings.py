"""The run's early-warning rows (预警): added by stages with RunContext.alert, kept when a part is resumed."""

from pathlib import Path

import pytest

from ecoassess.resume import Parts
from ecoassess.stages.base import ALERT_COLUMNS, RunContext, RunResult


class _Store:
    """What Parts needs of a results store: a staging folder, a recorder slot and the file registry."""

    def __init__(self, staging: Path):
        self.staging, self.recorder, self._registry = staging, None, {}


def _ctx(result):
    return RunContext(config=None, grid=None, study_area=None, zone_sets={}, inside=None, store=None, timer=None,
                      result=result, inputs=None)


def test_an_alert_has_every_column_and_refuses_unknown_ones():
    result = RunResult(out_dir=Path("."), grid=None)
    ctx = _ctx(result)
    ctx.alert(stage="network", rule="air_annual_mean", message="PM2.5 annual mean 41 > 35 µg/m³",
              county_code="519901", subject_type="station", subject_id="A01", indicator="pm25", value=41.0,
              limit=35.0, unit="µg/m³", source="GB 3095-2012 Table 1")
    assert list(result.alerts[0]) == list(ALERT_COLUMNS)
    assert result.alerts[0]["value"] == 41.0 and result.alerts[0]["county_name"] is None
    with pytest.raises(ValueError, match="threshold"):
        ctx.alert(stage="network", rule="x", message="m", threshold=3)


def test_alerts_and_warnings_of_a_part_come_back_when_the_part_is_reused(tmp_path):
    first = RunResult(out_dir=tmp_path, grid=None)
    parts = Parts(_Store(tmp_path), first, key="k")

    def part():
        _ctx(first).alert(stage="redline", rule="new_patch_inside", message="new patch HX-1 in unit U1")
        first.warnings.append("a scene without a cloud mask")
        return 7

    assert parts.run("redline", part) == 7
    second = RunResult(out_dir=tmp_path, grid=None)
    again = Parts(_Store(tmp_path), second, key="k")
    assert again.run("redline", lambda: pytest.fail("a completed part must not run again")) == 7
    assert second.alerts == first.alerts and second.warnings == ["a scene without a cloud mask"]


def test_a_record_half_written_when_the_run_was_killed_is_removed_without_a_warning(tmp_path, caplog):
    from ecoassess.files import RESUME_DIR
    from ecoassess.resume import _records

    first = RunResult(out_dir=tmp_path, grid=None)
    Parts(_Store(tmp_path), first, key="k").run("ei", lambda: 1)
    half = tmp_path / RESUME_DIR / ".0123456789abcdef.pkl.4242.tmp.pkl"
    half.write_bytes(b"\x80\x05half")
    with caplog.at_level("WARNING"):
        assert list(_records(tmp_path)) == ["ei"]
    assert not half.exists() and "cannot be read" not in caplog.text


def test_a_run_without_warnings_writes_an_empty_table_with_every_column(tmp_path):
    import pandas as pd
    import pyogrio

    from ecoassess.config import parse_config
    from ecoassess.pipeline import write_alerts
    from ecoassess.store import ResultsStore

    (tmp_path / "x.gpkg").write_bytes(b"")   # the schema wants the file to exist; nothing reads it here
    cfg = parse_config({"year": 2024, "study_area": {"path": "x.gpkg", "id_field": "c", "name_field": "n"},
                        "outputs": {"tables": ["gpkg", "csv"], "maps": False}}, base_dir=tmp_path)
    with ResultsStore(tmp_path / "out") as store:
        ctx = RunContext(config=cfg, grid=None, study_area=None, zone_sets={}, inside=None, store=store, timer=None,
                         result=RunResult(out_dir=tmp_path / "out", grid=None), inputs=None)
        write_alerts(ctx)
        store.path("manifest.json").write_text("{}", encoding="utf-8")
    table = pd.read_csv(tmp_path / "out" / "tables" / "early_warnings.csv")
    assert table.empty and list(table.columns) == list(ALERT_COLUMNS)
    assert pyogrio.read_info(tmp_path / "out" / "results.gpkg", layer="early_warnings")["features"] == 0


def test_the_files_a_part_wrote_and_the_files_it_listed_for_the_user_are_both_kept(tmp_path):
    """RunResult.files (the ledger for the run summary) and the record's own list of written files share a name:
    the first version let one overwrite the other, and a resumed run deleted every layer of its reused parts."""
    from ecoassess.resume import _records

    class _FileStore(_Store):
        def path(self, rel):
            self.recorder.append(("file", rel))
            return self.staging / rel

    first = RunResult(out_dir=tmp_path, grid=None)
    store = _FileStore(tmp_path)

    def part():
        store.path("layers/ndvi_2024.tif").write_text("layer")
        first.files["redline_ledger"] = "redline/redline_ledger.xlsx"

    (tmp_path / "layers").mkdir()
    Parts(store, first, key="k").run("vegetation 2024", part)
    (record,) = _records(tmp_path).values()
    assert record["files"] == ["layers/ndvi_2024.tif"]
    second = RunResult(out_dir=tmp_path, grid=None)
    Parts(_Store(tmp_path), second, key="k").run("vegetation 2024", lambda: pytest.fail("must be reused"))
    assert second.files == {"redline_ledger": "redline/redline_ledger.xlsx"}
