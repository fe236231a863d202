"""The county ecological status report (issue 22): :func:`write_report` renders a results folder into
``RESULTS/report/<lang>/`` — ``report.html``, ``report.pdf``, ``report.docx``, ``report.xlsx``, ``webmap.html``
and ``figures/`` — from the saved results only (nothing is computed again).

Each language folder is written atomically: into a staging folder beside the results folder
(``<results>.report-<lang>.partial-<pid>``), then swapped in by renames. A ``report/<lang>`` folder holding files
ecoassess did not write (not listed in the results' manifest, or changed since) is never replaced. Afterwards the
results' manifest lists the new report files (size, SHA-256), so a later run still recognises the folder as its
own.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from ecoassess.errors import InputError
from ecoassess.files import swap_into
from ecoassess.report.fonts import find_cjk_font

__all__ = ["find_cjk_font", "zone_choropleth", "write_report", "FORMATS", "check_formats", "report_files"]

log = logging.getLogger(__name__)

#: the report formats, in the order they are written
FORMATS = ("html", "pdf", "docx", "xlsx", "webmap")
FILE_NAMES = {"html": "report.html", "pdf": "report.pdf", "docx": "report.docx", "xlsx": "report.xlsx",
              "webmap": "webmap.html"}
REPORT_DIR = "report"
_LEFTOVER = re.compile(r"^(?P<results>.+)\.report-(?P<lang>[a-z]+)\.(?P<what>partial|old)-(?P<pid>\d+)$")
_OS_LITTER = {".DS_Store", "Thumbs.db", "desktop.ini"}


def __getattr__(name):
    if name == "zone_choropleth":
        from ecoassess.report.maps import zone_choropleth

        return zone_choropleth
    raise AttributeError(name)


def check_formats(formats) -> tuple[str, ...]:
    """``formats`` (a list, or one comma-separated string) in the order of :data:`FORMATS`; a clear error naming
    the formats there are for one that is not."""
    if isinstance(formats, str):
        formats = [f for f in formats.split(",")]
    wanted = [str(f).strip().lower() for f in formats if str(f).strip()]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise InputError(f"report format {', '.join(map(repr, unknown))} is not available; choose from "
                         f"{', '.join(FORMATS)}")
    if not wanted:
        raise InputError(f"no report format given; choose from {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in wanted)


def write_report(results_dir, langs=("zh",), formats=FORMATS, tile_url: str | None = None,
                 tile_attribution: str | None = None, *, in_place: bool = False) -> dict[str, Path]:
    """Render the results folder ``results_dir`` into ``report/<lang>/`` in each of ``langs`` and ``formats``.

    Returns ``{"<lang>/<format>": path}`` of every file written (``"<lang>/figures"``: the figures folder).
    ``tile_url``/``tile_attribution``: the web map's basemap (none by default: it works offline).
    ``in_place``: write straight into ``report/<lang>`` (for a results folder that is itself a staging folder,
    as in a run) instead of staging beside it.
    """
    from ecoassess.report.i18n import check_language
    from ecoassess.report.results import ResultsFolder

    if isinstance(langs, str):
        langs = [lang.strip() for lang in langs.split(",") if lang.strip()]
    langs = list(dict.fromkeys(check_language(lang) for lang in langs))
    if not langs:
        raise InputError("no report language given; choose from zh, en")
    formats = check_formats(formats)
    results = ResultsFolder(results_dir)
    written: dict[str, Path] = {}
    for lang in langs:
        target = results.path / REPORT_DIR / lang
        if in_place:
            shutil.rmtree(target, ignore_errors=True)
            try:
                files = _render(results, target, lang, formats, tile_url, tile_attribution)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)   # no half report left unlisted in the results
                raise
        else:
            _recover(results.path, lang)
            _check_ours(results, lang)
            staging = results.path.with_name(f"{results.path.name}.report-{lang}.partial-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            try:
                files = _render(results, staging, lang, formats, tile_url, tile_attribution)
                _keep_other_formats(target, staging, files)
                _swap(staging, target, results.path, lang)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        _update_manifest(results.path, lang)
        written.update({f"{lang}/{key}": target / rel for key, rel in files.items()})
    return written


def _render(results, folder: Path, lang: str, formats, tile_url, tile_attribution) -> dict[str, str]:
    """Every format of one language into ``folder``; ``{format: path relative to folder}``."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    document = {"html", "pdf", "docx", "xlsx"} & set(formats)
    if document:
        from ecoassess.report.content import build_report

        figures = []
        if {"html", "pdf", "docx"} & set(formats):
            from ecoassess.report.figures import draw_report_maps

            figures = draw_report_maps(results, folder / "figures", lang)
            files["figures"] = "figures"
        report = build_report(results, figures, lang)
        if {"html", "pdf"} & set(formats):
            from ecoassess.report.html import render_html

            render_html(report, folder / FILE_NAMES["html"])
            if "pdf" in formats:
                from ecoassess.report.pdf import render_pdf

                render_pdf(folder / FILE_NAMES["html"], folder / FILE_NAMES["pdf"])
            if "html" not in formats:
                (folder / FILE_NAMES["html"]).unlink()
        if "docx" in formats:
            from ecoassess.report.docx import write_docx

            write_docx(report, folder / FILE_NAMES["docx"])
        if "xlsx" in formats:
            from ecoassess.report.xlsx import write_xlsx

            write_xlsx(report, folder / FILE_NAMES["xlsx"])
    if "webmap" in formats:
        from ecoassess.report.webmap import write_webmap

        write_webmap(results, folder / FILE_NAMES["webmap"], lang, tile_url=tile_url,
                     tile_attribution=tile_attribution)
    files.update({fmt: FILE_NAMES[fmt] for fmt in formats})
    return {key: files[key] for key in [*formats, "figures"] if key in files}


def _keep_other_formats(target: Path, staging: Path, rendered: dict[str, str]) -> None:
    """Carry the earlier report's files of the formats not rendered now (``--format html`` leaves the PDF, Word,
    Excel and web map of the earlier report in place), and its figures when none were drawn."""
    kept = []
    for key, name in [*FILE_NAMES.items(), ("figures", "figures")]:
        old, new = target / name, staging / name
        if key in rendered or not old.exists() or new.exists():
            continue
        if old.is_dir():
            shutil.copytree(old, new, copy_function=shutil.copy2)
        else:
            shutil.copy2(old, new)
        kept.append(name)
    if kept:
        log.info("kept from the earlier report in %s: %s", target, ", ".join(kept))


def report_files(results_path: Path, lang: str) -> list[str]:
    """Paths (relative to the results folder) of the files in ``report/<lang>``."""
    folder = results_path / REPORT_DIR / lang
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(results_path).as_posix() for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name not in _OS_LITTER)


def _check_ours(results, lang: str) -> None:
    """Refuse when ``report/<lang>`` holds files ecoassess did not write: not in the manifest's outputs, or
    changed since (size or SHA-256 differ) — a reviewer's edited report.docx is not overwritten."""
    from ecoassess.files import sha256_file

    listed = {o["path"]: o for o in results.manifest.get("outputs", []) if isinstance(o, dict) and "path" in o}
    foreign = []
    for rel in report_files(results.path, lang):
        entry = listed.get(rel)
        path = results.path / rel
        if entry is None or path.is_symlink():
            foreign.append(rel)
        elif path.stat().st_size != entry.get("size_bytes") or (
                entry.get("sha256") and sha256_file(path) != entry["sha256"]):
            foreign.append(f"{rel} (changed since ecoassess wrote it)")
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError(f"{results.path / REPORT_DIR / lang}: holds files ecoassess did not write, or that were "
                         f"changed after it wrote them ({shown}); the report is not rendered over them. Move them "
                         "elsewhere (e.g. an edited report.docx) and render again")


def _swap(staging: Path, target: Path, results_path: Path, lang: str) -> None:
    """Put the complete ``staging`` folder in place of ``target`` in renames; the earlier report is deleted last."""
    target.parent.mkdir(parents=True, exist_ok=True)
    backup = results_path.with_name(f"{results_path.name}.report-{lang}.old-{os.getpid()}")
    shutil.rmtree(backup, ignore_errors=True)
    if swap_into(staging, target, backup):
        shutil.rmtree(backup, ignore_errors=True)


def _recover(results_path: Path, lang: str) -> None:
    """Clean up what a killed ``write_report`` of ``lang`` left beside the results folder: its staging folder is
    deleted; a backup whose swap did not finish is put back (or deleted when the new report is in place)."""
    import psutil

    target = results_path / REPORT_DIR / lang
    try:
        entries = list(results_path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        m = _LEFTOVER.match(entry.name)
        if not m or m["results"] != results_path.name or m["lang"] != lang:
            continue
        pid = int(m["pid"])
        if pid != os.getpid() and psutil.pid_exists(pid):
            raise InputError(f"{results_path}: another ecoassess process ({pid}) is writing its {lang} report "
                             f"({entry.name}); wait for it to finish")
        if m["what"] == "old" and not target.exists():
            os.rename(entry, target)
            log.warning("restored the earlier %s report of %s from %s (a report run was stopped halfway)", lang,
                        results_path, entry.name)
        else:
            shutil.rmtree(entry, ignore_errors=True)
            log.warning("removed %s, left by a stopped report run", entry.name)


def _update_manifest(results_path: Path, lang: str) -> None:
    """List the files of ``report/<lang>`` among the results' outputs (size, SHA-256), replacing what the
    manifest said of that folder before."""
    from ecoassess.files import MANIFEST_NAME
    from ecoassess.manifest import _file_entry, write_manifest

    path = results_path / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    prefix = f"{REPORT_DIR}/{lang}/"
    outputs = [o for o in manifest.get("outputs", []) if not str(o.get("path", "")).startswith(prefix)]
    for rel in report_files(results_path, lang):
        entry = _file_entry(results_path / rel, rel)
        entry.update({"kind": "report", "description": f"the report ({lang})"})
        outputs.append(entry)
    manifest["outputs"] = sorted(outputs, key=lambda o: str(o.get("path", "")))
    write_manifest(manifest, path)
