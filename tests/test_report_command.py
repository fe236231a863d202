"""``ecoassess report`` and :func:`ecoassess.report.write_report` (issue 22 part 4): every format of every
language written into ``RESULTS/report/<lang>/``, atomically, never over files ecoassess did not write, and listed
in the results' manifest so that a later run still takes the folder for its own.

The other report parts (content, figures, docx, xlsx, webmap) are built by other engineers: here they are small
test doubles put in place of their modules; the end-to-end test on the demo results runs once they are merged."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ecoassess.cli import main
from ecoassess.report import write_report
from ecoassess.report.model import Column, Figure, Paragraph, Report, Section, Table
from ecoassess.store import ResultsStore, usable_out_dir
from tests.report_samples import draw_figure

pytestmark = pytest.mark.usefixtures("report_rendering")  # runs here end with their report (conftest)

FORMATS = ("html", "pdf", "docx", "xlsx", "webmap")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fake_parts(calls: list) -> dict[str, types.ModuleType]:
    """Stand-ins for ecoassess.report.{content, figures, docx, xlsx, webmap} with the agreed signatures."""
    def draw_report_maps(results, out_dir, lang):
        calls.append(("figures", lang))
        return [Figure("ei_map", "EI" if lang == "en" else "生态质量指数", draw_figure(Path(out_dir) / "ei_map.png"))]

    def build_report(results, figures, lang):
        calls.append(("content", lang))
        if results.has("county_ei"):
            ei = results.table("county_ei")
            body = [Table("county_ei", "EI", [Column("name", "县"), Column("ei", "EI", None, 1)],
                          ei[["name", "ei"]].values.tolist()), *figures]
            missing = None
        else:
            body, missing = [], "no county_ei" if lang == "en" else "本次运行没有 county_ei 表。"
        return Report(lang, "报告" if lang == "zh" else "Report", "2024", "2026-12-06",
                      [Section("summary", "摘要", [Paragraph("正文")]), Section("ei", "EI", body, missing=missing)])

    def write_docx(report, path):
        calls.append(("docx", report.lang))
        Path(path).write_bytes(b"PK docx " + report.title.encode())
        return Path(path)

    def write_xlsx(report, path):
        calls.append(("xlsx", report.lang))
        Path(path).write_bytes(b"PK xlsx " + str(len(report.tables())).encode())
        return Path(path)

    def write_webmap(results, path, lang, tile_url=None, tile_attribution=None):
        calls.append(("webmap", lang, tile_url, tile_attribution))
        Path(path).write_text("<!DOCTYPE html><title>map</title>", encoding="utf-8")
        return Path(path)

    found = {}
    for name, funcs in {"content": [build_report], "figures": [draw_report_maps], "docx": [write_docx],
                        "xlsx": [write_xlsx], "webmap": [write_webmap]}.items():
        module = types.ModuleType(f"ecoassess.report.{name}")
        for f in funcs:
            setattr(module, f.__name__, f)
        found[name] = module
    return found


@pytest.fixture
def parts(monkeypatch):
    """The fakes in place (sys.modules, and as attributes of the package); the calls they received."""
    import ecoassess.report as package

    calls: list = []
    for name, module in _fake_parts(calls).items():
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setattr(package, name, module, raising=False)
    return calls


def _results(folder: Path, with_ei: bool = True, config: dict | None = None) -> Path:
    """A small results folder written by the store, with the run's config recorded in its manifest."""
    from ecoassess.manifest import build_manifest, write_manifest

    with ResultsStore(folder) as store:
        if with_ei:
            store.write_table("county_ei", pd.DataFrame({"code": ["519901", "519902"], "name": ["青川县", "平武县"],
                                                         "ei": [72.44, 65.06]}))
        else:
            store.write_table("scene_quality", pd.DataFrame({"scene": ["a"], "share": [0.1]}))
        store.flush()
        manifest = build_manifest(config=config or {}, config_path=None, inputs=[], outputs_dir=store.path("."),
                                  timings={}, registry=store.outputs)
        write_manifest(manifest, store.path("manifest.json"))
    return folder


def _manifest_outputs(folder: Path) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return {o["path"]: o for o in manifest["outputs"]}


def test_every_format_is_written_and_listed_in_the_manifest(parts, tmp_path):
    folder = _results(tmp_path / "results")
    written = write_report(folder, langs=("zh", "en"), formats=FORMATS, tile_url="https://t.example/{z}/{x}/{y}.png",
                           tile_attribution="© example")
    for lang in ("zh", "en"):
        base = folder / "report" / lang
        assert {k: v for k, v in written.items() if k.startswith(lang)} == {
            f"{lang}/html": base / "report.html", f"{lang}/pdf": base / "report.pdf",
            f"{lang}/docx": base / "report.docx", f"{lang}/xlsx": base / "report.xlsx",
            f"{lang}/webmap": base / "webmap.html", f"{lang}/figures": base / "figures"}
        assert all(p.exists() for p in written.values())
        assert (base / "report.pdf").read_bytes()[:5] == b"%PDF-"
        assert '<img src="figures/ei_map.png"' in (base / "report.html").read_text(encoding="utf-8")
    assert ("webmap", "en", "https://t.example/{z}/{x}/{y}.png", "© example") in parts
    # the manifest lists each report file with its size and SHA-256, as computed here from the files
    outputs = _manifest_outputs(folder)
    for rel in ("report/zh/report.pdf", "report/en/report.html", "report/zh/figures/ei_map.png"):
        path = folder / rel
        assert outputs[rel]["sha256"] == _sha(path) and outputs[rel]["size_bytes"] == path.stat().st_size
        assert outputs[rel]["kind"] == "report"
    assert "results.gpkg" in outputs   # what the run listed is still there
    # nothing left beside the results folder (staging and backups are gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    # and a later run takes the folder for its own: nothing in it is foreign
    assert usable_out_dir(folder) == folder.resolve()


def test_only_the_formats_asked_for_are_written(parts, tmp_path):
    folder = _results(tmp_path / "results")
    written = write_report(folder, langs="en", formats="pdf,xlsx")
    assert sorted(written) == ["en/figures", "en/pdf", "en/xlsx"]
    # the PDF is laid out from the HTML, which is not kept when html is not asked for
    assert sorted(p.name for p in (folder / "report" / "en").iterdir()) == ["figures", "report.pdf", "report.xlsx"]
    assert not any(c[0] == "webmap" or c[0] == "docx" for c in parts)
    # only the web map: no report document is built, no figure drawn — and the earlier PDF, workbook and figures
    # stay (a user re-rendering one format does not lose the others), still listed in the manifest
    pdf_before = _sha(folder / "report" / "en" / "report.pdf")
    parts.clear()
    assert sorted(write_report(folder, langs="en", formats=["webmap"])) == ["en/webmap"]
    assert [c[0] for c in parts] == ["webmap"]
    assert sorted(p.name for p in (folder / "report" / "en").iterdir()) == [
        "figures", "report.pdf", "report.xlsx", "webmap.html"]
    assert _sha(folder / "report" / "en" / "report.pdf") == pdf_before
    assert {"report/en/report.pdf", "report/en/report.xlsx", "report/en/webmap.html"} <= set(_manifest_outputs(folder))
    assert usable_out_dir(folder) == folder.resolve()


def test_the_command_re_renders_from_saved_results_and_prints_each_path(parts, tmp_path):
    folder = _results(tmp_path / "results", config={"report": {"languages": ["zh"], "formats": ["html", "docx"]}})
    result = CliRunner().invoke(main, ["report", str(folder), "--lang", "en"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines == [f"  report en/html: {folder.resolve() / 'report/en/report.html'}",
                     f"  report en/docx: {folder.resolve() / 'report/en/report.docx'}",
                     f"  report en/figures: {folder.resolve() / 'report/en/figures'}"]
    # the config's formats were the default; --format overrides them
    result = CliRunner().invoke(main, ["report", str(folder), "--format", "xlsx"])
    assert result.exit_code == 0 and result.output.splitlines() == [
        f"  report zh/xlsx: {folder.resolve() / 'report/zh/report.xlsx'}"]


def test_missing_tables_still_render_with_the_section_saying_why(parts, tmp_path):
    folder = _results(tmp_path / "results", with_ei=False)
    result = CliRunner().invoke(main, ["report", str(folder), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert "本次运行没有 county_ei 表。" in (folder / "report" / "zh" / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("args, message", [
    (["--format", "html,odt"], "report format 'odt' is not available; choose from html, pdf, docx, xlsx, webmap"),
    (["--lang", "fr"], "report language 'fr' is not available; choose one of zh, en"),
    (["--format", ","], "no report format given"),
])
def test_unknown_format_or_language_is_one_clear_line(parts, tmp_path, args, message):
    folder = _results(tmp_path / "results")
    result = CliRunner().invoke(main, ["report", str(folder), *args])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (folder / "report").exists()


def test_a_folder_that_is_not_results_is_named(parts, tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not an ecoassess results folder (no manifest.json)" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no such results folder" in result.output


def test_files_ecoassess_did_not_write_are_never_replaced(parts, tmp_path):
    folder = _results(tmp_path / "results")
    write_report(folder, langs="zh", formats=["html", "docx"])
    docx = folder / "report" / "zh" / "report.docx"
    docx.write_bytes(b"PK the reviewer's edited report")          # edited after ecoassess wrote it
    (folder / "report" / "zh" / "notes.txt").write_text("mine")   # and a file of the user's
    before = {p: p.read_bytes() for p in (folder / "report" / "zh").rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["report", str(folder), "--format", "html,docx"])
    assert result.exit_code == 2
    assert "report/zh/notes.txt" in result.output and "report/zh/report.docx (changed since ecoassess wrote it)" \
        in result.output and "not rendered over them" in result.output
    assert {p: p.read_bytes() for p in (folder / "report" / "zh").rglob("*") if p.is_file()} == before
    # the other language is not affected
    assert CliRunner().invoke(main, ["report", str(folder), "--lang", "en", "--format", "html"]).exit_code == 0


def test_a_failing_format_leaves_the_earlier_report_as_it_was(parts, tmp_path, monkeypatch):
    folder = _results(tmp_path / "results")
    write_report(folder, langs="zh", formats=["html", "docx"])
    before = {p: p.read_bytes() for p in (folder / "report").rglob("*") if p.is_file()}
    manifest_before = (folder / "manifest.json").read_bytes()

    def broken(report, path):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sys.modules["ecoassess.report.docx"], "write_docx", broken)
    with pytest.raises(OSError):
        write_report(folder, langs="zh", formats=["html", "docx"])
    assert {p: p.read_bytes() for p in (folder / "report").rglob("*") if p.is_file()} == before
    assert (folder / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_what_a_killed_report_left_is_cleaned_up_or_put_back(parts, tmp_path):
    folder = _results(tmp_path / "results")
    write_report(folder, langs="zh", formats=["html"])
    dead = 2 ** 22 + 12345    # above Linux's pid_max default: no such process
    # killed while rendering: its staging folder is deleted
    (tmp_path / f"results.report-zh.partial-{dead}").mkdir()
    (tmp_path / f"results.report-zh.partial-{dead}" / "report.html").write_text("half")
    # killed between its two renames: the earlier report is put back before rendering again
    (folder / "report" / "zh").rename(tmp_path / f"results.report-zh.old-{dead}")
    write_report(folder, langs="zh", formats=["html"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert (folder / "report" / "zh" / "report.html").is_file() and usable_out_dir(folder)


@pytest.fixture(scope="module")
def sample_config(tmp_path_factory):
    from ecoassess.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("sample"), seed=0)


def test_run_then_report_in_english_then_run_again(sample_config, tmp_path):
    """The run ends with its report (zh, html and xlsx here), ``report --lang en`` adds the English one, and the
    next run into the same folder succeeds: the manifest listed every report file."""
    import yaml

    config = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    config["report"] = {"languages": ["zh"], "formats": ["html", "xlsx"]}
    config_path = sample_config.with_name("assessment-report.yaml")
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "results"
    with pytest.MonkeyPatch.context() as mp:
        import ecoassess.report as package

        calls: list = []
        for name, module in _fake_parts(calls).items():
            mp.setitem(sys.modules, module.__name__, module)
            mp.setattr(package, name, module, raising=False)
        runner = CliRunner()
        first = runner.invoke(main, ["run", str(config_path), "--out", str(out)])
        assert first.exit_code == 0, first.output
        assert f"  report zh/html: {out.resolve() / 'report/zh/report.html'}" in first.output.splitlines()
        assert (out / "report" / "zh" / "report.xlsx").is_file()
        listed = _manifest_outputs(out)
        assert listed["report/zh/report.html"]["sha256"] == _sha(out / "report/zh/report.html")
        english = runner.invoke(main, ["report", str(out), "--lang", "en"])
        assert english.exit_code == 0, english.output
        assert (out / "report" / "en" / "report.html").is_file() and not (out / "report" / "en" / "report.pdf").exists()
        again = runner.invoke(main, ["run", str(config_path), "--out", str(out)])
        assert again.exit_code == 0, again.output
    # the second run replaced the folder as a whole: its own zh report, no English one any more
    assert (out / "report" / "zh" / "report.html").is_file() and not (out / "report" / "en").exists()


def test_the_report_section_of_the_config(sample_config, tmp_path):
    import yaml

    from ecoassess.config import load_config
    from ecoassess.errors import ConfigError

    assert load_config(sample_config).report.model_dump() == {
        "languages": ["zh"], "formats": ["html", "pdf", "docx", "xlsx", "webmap"], "tile_url": None,
        "tile_attribution": None}
    config = yaml.safe_load(sample_config.read_text(encoding="utf-8"))
    for report, message in (({"tile_url": "https://t.example/{z}/{x}/{y}.png"}, "tile_attribution: required"),
                            ({"tile_url": "https://t.example/tiles.png", "tile_attribution": "x"}, "{z}, {x} and {y}"),
                            ({"formats": ["odt"]}, "report.formats"), ({"languages": ["fr"]}, "report.languages")):
        path = sample_config.with_name("assessment-bad-report.yaml")
        path.write_text(yaml.safe_dump({**config, "report": report}, allow_unicode=True), encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert message in str(info.value) and "report" in str(info.value)
