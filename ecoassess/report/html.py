"""The report as one HTML file (Jinja2 templates in ``templates/``): title page, contents, numbered tables and
figures, print CSS for A4 (page numbers, each chapter on a new page, table headers repeated on every page).

Issue 22 part 4. Tables are captioned above ("表 1 …"), figures below ("图 1 …"), as GB/T 7713.1-2006 §6.4
lays out a report. The file works offline: the CSS is inlined, figures are linked by paths relative to the HTML
file (``figures/<id>.png``), nothing is fetched from a network. Wording of the page frame is in the ``render``
message catalog; the report's own wording comes translated in the :class:`~ecoassess.report.model.Report`.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

from ecoassess.files import atomic_path
from ecoassess.report.i18n import format_value, translations
from ecoassess.report.model import Figure, Paragraph, Report, Section, Table

TEMPLATES = Path(__file__).with_name("templates")
#: a table with more columns than this is set on a landscape A4 page in print
WIDE_COLUMNS = 8
#: fonts the page asks for, the CJK ones first (WenQuanYi is what scripts/install_system_packages.sh installs;
#: the others are what Windows and macOS offices have)
FONT_STACK = ('"WenQuanYi Micro Hei", "ecoassess Symbols", "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "SimHei", '
              '"PingFang SC", sans-serif')
HTML_LANG = {"zh": "zh-CN", "en": "en"}


def _environment(lang: str):
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=False, lstrip_blocks=False)
    env.install_gettext_translations(translations(lang, "render"), newstyle=True)
    env.tests.update(section_block=lambda b: isinstance(b, Section), table_block=lambda b: isinstance(b, Table),
                     figure_block=lambda b: isinstance(b, Figure),
                     number_cell=lambda v: isinstance(v, numbers.Number) and not isinstance(v, bool))
    return env


#: a text column whose every value is at most this many characters (county names, grades, 警示/关注) is never
#: broken inside a value: the PDF had set 青岗县 one character per line in a narrow column
SHORT_TEXT = 8


def short_columns(table: Table) -> set[int]:
    """Indices of the text columns of ``table`` whose values are all short (:data:`SHORT_TEXT`) strings."""
    out = set()
    for i in range(len(table.columns)):
        values = [row[i] for row in table.rows if i < len(row) and row[i] is not None]
        if values and all(isinstance(v, str) and len(v) <= SHORT_TEXT for v in values):
            out.add(i)
    return out


def numbering(report: Report) -> dict[str, int]:
    """``{table or figure id: its number}``, tables and figures counted apart in reading order."""
    found = {t.id: n for n, t in enumerate(report.tables(), start=1)}
    found.update({f.id: n for n, f in enumerate(report.figures(), start=1)})
    return found


def render_html(report: Report, path, *, version: str | None = None) -> Path:
    """Write ``report`` as HTML to ``path`` (atomically); figures are linked relative to ``path``'s folder, so
    they must lie inside it (``figures/``) for the file to be moved with its folder. Returns ``path``."""
    from ecoassess._version import __version__

    path = Path(path)
    env = _environment(report.lang)
    folder = path.parent.absolute()

    def image_src(figure: Figure) -> str:
        return Path(os.path.relpath(Path(figure.png).absolute(), folder)).as_posix()

    def cell_text(value, column) -> str:
        return format_value(value, report.lang, column.digits)

    text = env.get_template("report.html.j2").render(
        report=report, numbers=numbering(report), tables=report.tables(), figures=report.figures(),
        image_src=image_src, cell_text=cell_text, short_columns=short_columns, version=version or __version__, wide_columns=WIDE_COLUMNS,
        font_stack=FONT_STACK, html_lang=HTML_LANG.get(report.lang, report.lang))
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


__all__ = ["render_html", "numbering", "TEMPLATES", "FONT_STACK", "Paragraph"]
