"""The demo's report checked as a person would (issue 22, part 5), on the real demo results: `ecoassess demo`
ends with the report in every format and prints the paths; `ecoassess report --lang en` re-renders it; the HTML
report and the web map open in headless Chromium with no console error, no missing image and no request leaving
the machine; the PDF has its pages, headings and embedded fonts; every character of the Chinese report is in the
font; and the Word tables say what the Excel sheets hold."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from ecoassess.cli import main as cli
from ecoassess.store import usable_out_dir
from tests.report_samples import font_characters, html_text

FORMATS = (("html", "report.html"), ("pdf", "report.pdf"), ("docx", "report.docx"), ("xlsx", "report.xlsx"),
           ("webmap", "webmap.html"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory, report_rendering):
    out = tmp_path_factory.mktemp("demo") / "results"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    english = CliRunner().invoke(cli, ["report", str(out), "--lang", "en"])
    assert english.exit_code == 0, english.output
    return out, result.output, english.output


def test_the_demo_ends_with_the_report_in_every_format_and_prints_the_paths(demo):
    out, output, english = demo
    lines = output.splitlines()
    for fmt, name in FORMATS:
        assert f"  report zh/{fmt}: {out.resolve() / 'report' / 'zh' / name}" in lines
        assert f"  report en/{fmt}: {out.resolve() / 'report' / 'en' / name}" in english.splitlines()
        for lang in ("zh", "en"):
            assert (out / "report" / lang / name).stat().st_size > 0
    assert usable_out_dir(out) == out.resolve()  # the re-rendered report is listed: the folder is still ours


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("name", ["report.html", "webmap.html"])
def test_report_and_web_map_open_offline_without_errors_or_missing_images(browser, demo, lang, name):
    out, _, _ = demo
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: requests.append(req.url))
    try:
        page.goto((out / "report" / lang / name).as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
        assert errors == []
        assert requests and all(url.startswith(("file:", "data:")) for url in requests), \
            [u for u in requests if not u.startswith(("file:", "data:"))]
        assert all(width > 0 for _, width in images), [src for src, width in images if not width]
        if name == "report.html":
            assert len(images) >= 10  # the maps of every section the demo has
        else:
            assert page.locator(".leaflet-control-layers").count() == 1
    finally:
        page.close()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed "
                    "(scripts/install_system_packages.sh installs it)")
def test_the_pdf_has_its_pages_headings_and_embedded_fonts(demo, tmp_path):
    out, _, _ = demo
    pdf = out / "report" / "zh" / "report.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages >= 20
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for heading in ("总体状况", "预警信息", "生态环境状况指数", "遥感生态指数", "土地覆被", "生态保护红线",
                    "生态环境监测网络", "评价方法", "数据来源"):
        assert heading in text, heading
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
    assert rows and all(row[-5] == "yes" for row in rows), fonts
    subprocess.run(["pdftoppm", "-png", "-r", "30", "-f", "1", "-l", "12", str(pdf), str(tmp_path / "p")],
                   check=True)
    from PIL import Image
    import numpy as np

    inked = [(np.asarray(Image.open(p).convert("L")) < 200).mean() for p in sorted(tmp_path.glob("p-*.png"))]
    assert len(inked) == 12 and all(share > 0.002 for share in inked), inked  # no blank page among the first 12


def test_every_character_of_the_chinese_report_is_in_the_embedded_fonts(demo):
    from ecoassess.report.fonts import find_cjk_font, symbol_font

    out, _, _ = demo
    covered = font_characters(find_cjk_font()) | font_characters(symbol_font())
    used = {ord(ch) for ch in html_text(out / "report" / "zh" / "report.html") if not ch.isspace()}
    missing = sorted(chr(c) for c in used - covered)
    assert len(used) > 300 and missing == []
    # and the PDF embeds both: no character is left to the reader's fonts
    fonts = subprocess.run(["pdffonts", str(out / "report" / "zh" / "report.pdf")], capture_output=True, text=True,
                           check=True).stdout
    assert "WenQuanYi" in fonts and "DejaVu-Sans" in fonts


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_word_tables_hold_what_the_excel_sheets_hold(demo, lang):
    import docx
    import openpyxl

    out, _, _ = demo
    document = docx.Document(str(out / "report" / lang / "report.docx"))
    workbook = openpyxl.load_workbook(out / "report" / lang / "report.xlsx")
    sheets = workbook.worksheets[1:]  # the first is the contents
    assert len(document.tables) == len(sheets) >= 20
    for doc_table, ws in zip(document.tables, sheets):
        doc_rows = [[c.text for c in row.cells] for row in doc_table.rows]
        header = [" ".join(t.split()) for t in doc_rows[0]]
        assert header == [ws.cell(row=2, column=j + 1).value for j in range(len(header))], ws.title
        last = ws.max_row - (2 if ws.cell(row=ws.max_row, column=1).font.i else 0)  # a table's note: a blank row, then italics
        assert len(doc_rows) - 1 == last - 2, ws.title
        for i, doc_row in enumerate(doc_rows[1:]):
            for j, text in enumerate(doc_row):
                value = ws.cell(row=3 + i, column=j + 1).value
                if text == "":
                    assert value is None, (ws.title, i, j, value)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    decimals = len(text.split(".")[1]) if "." in text else 0
                    assert abs(float(text.replace(",", "")) - value) <= 0.5 * 10 ** -decimals + 1e-9, \
                        (ws.title, i, j, text, value)
                else:
                    assert text == str(value), (ws.title, i, j, text, value)
