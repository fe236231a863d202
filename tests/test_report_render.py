"""The report's HTML and PDF (issue 22 parts 4 and 5), checked as a reader would: a hand-built Chinese report
opened in headless Chromium (no console error, every image shown, no request leaving the machine), its PDF turned
into PNG pages (page count, pages not blank, headings found by pdftotext), the CJK font embedded and covering
every character of the text."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ecoassess.report.html import render_html
from ecoassess.report.i18n import untranslated
from ecoassess.report.model import Column, Paragraph, Report, Section, Table
from tests.report_samples import chinese_report, font_characters, html_text

REPORT_DIR = Path(__file__).parents[1] / "ecoassess" / "report"
HAVE_POPPLER = all(shutil.which(tool) for tool in ("pdftoppm", "pdftotext", "pdffonts", "pdfinfo"))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The Chinese sample report as HTML and PDF (60 rows in its long table: it runs over two pages)."""
    from ecoassess.report.pdf import render_pdf

    folder = tmp_path_factory.mktemp("report") / "zh"
    report = chinese_report(folder)
    html_path = render_html(report, folder / "report.html")
    pdf_path = render_pdf(html_path, folder / "report.pdf")
    return report, html_path, pdf_path


def test_the_render_catalog_translates_every_message():
    files = [REPORT_DIR / "html.py", REPORT_DIR / "pdf.py", REPORT_DIR / "__init__.py",
             *sorted((REPORT_DIR / "templates").glob("*.j2"))]
    assert untranslated("zh", "render", files) == []


def test_tables_and_figures_are_numbered_and_captioned_in_chinese(rendered):
    report, html_path, _ = rendered
    page = html_path.read_text(encoding="utf-8")
    text = html_text(html_path)
    # tables above ("表 n" in their <caption>), figures below (<figcaption>), numbered apart in reading order
    captions = re.findall(r"<caption><span class=\"label\">([^<]+)</span> ([^<]+)</caption>", page)
    assert captions == [("表 1", "各县生态质量指数（EI）及其分级"), ("表 2", "功能区县域指标（宽表）"),
                        ("表 3", "各图斑遥感生态指数")]
    assert re.findall(r"<figcaption><span class=\"label\">([^<]+)</span>", page) == ["图 1"]
    # the figure by a path relative to the HTML file, so the folder can be moved or zipped
    assert '<img src="figures/ei_bars.png"' in page
    # numbers for the language: grouped thousands, the column's decimals (72.4; 3,216.48; 12,345.678 → 12,345.7)
    assert ">3,216.48<" in page and ">72.4<" in page and ">12,345.7<" in page
    assert "注：EI 按 HJ 192-2015 计算" in text
    # a section without results says why instead of an empty table
    assert "本次运行未计算红线图斑" in text
    # contents: every section and subsection linked
    for section_id in ("summary", "ei", "ei-sub", "rsei", "redline"):
        assert f'<a href="#{section_id}">' in page and f'id="{section_id}"' in page
    # offline: nothing refers outside the file and its folder
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "@import" not in page


def test_english_frame_wording_comes_from_the_message_ids(tmp_path):
    report = Report("en", "County report", "2024", "6 December 2026", [
        Section("s", "Ecological index", [Table("t", "EI by county", [Column("ei", "EI", None, 2)], [[1234.5]]),
                                          Paragraph("text")])])
    page = render_html(report, tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<span class="label">Table 1</span> EI by county' in page and ">1,234.50<" in page
    assert "Contents" in page and 'lang="en"' in page


@pytest.mark.skipif(not HAVE_POPPLER, reason="poppler-utils (pdftoppm, pdftotext, pdffonts) not installed; "
                                             "scripts/install_system_packages.sh installs them")
class TestPdf:
    def test_pages_title_contents_sections_and_a_table_over_two_pages(self, rendered):
        _, _, pdf = rendered
        pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                                                 text=True, check=True).stdout)[1])
        # title page, contents, 摘要, 生态质量指数 (table 1, figure 1, 分指数 with table 2), 遥感生态指数 (60 rows:
        # two pages), 生态保护红线: each chapter starts a page
        assert pages == 7
        text = [subprocess.run(["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(pdf), "-"],
                               capture_output=True, text=True, check=True).stdout for n in range(1, pages + 1)]
        assert "某市县域生态质量状况报告" in text[0] and "2024 年度" in text[0]
        assert "目录" in text[1] and "表目录" in text[1] and "图目录" in text[1]
        assert "摘要" in text[2]
        assert "生态质量指数" in text[3] and "表 1 各县生态质量指数" in text[3] and "图 1 各县生态质量指数" in text[3]
        assert "表 3 各图斑遥感生态指数" in text[4] and "P0000" in text[4]
        # the long table goes on over the next page, its header repeated there
        assert "P0059" in text[5] and "图斑编号" in text[5] and "表 3" not in text[5]
        assert "生态保护红线" in text[6] and "本次运行未计算红线图斑" in text[6]
        # page numbers at the foot of every page but the title page
        assert re.search(r"^\s*4\s*$", text[3], re.M) and not re.search(r"^\s*1\s*$", text[0], re.M)
        # the contents give each chapter's page (leaders ... page number)
        assert re.search(r"遥感生态指数\s*\.+\s*5", text[1])

    def test_pages_are_drawn_not_blank(self, rendered, tmp_path):
        import numpy as np
        from PIL import Image

        _, _, pdf = rendered
        subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
        pngs = sorted(tmp_path.glob("page-*.png"))
        assert len(pngs) == 7
        for png in pngs:
            gray = np.asarray(Image.open(png).convert("L"))
            assert gray.shape[0] > gray.shape[1]  # A4 portrait
            ink = (gray < 128).mean()
            assert ink > 0.001, png.name
        # the figure page holds the chart: many more dark-or-coloured pixels than a text page
        figure_page = np.asarray(Image.open(pngs[3]).convert("L"))
        assert (figure_page < 230).mean() > 5 * (np.asarray(Image.open(pngs[2]).convert("L")) < 230).mean()

    def test_the_cjk_font_is_embedded(self, rendered):
        _, _, pdf = rendered
        fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
        rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
        assert rows and any("WenQuanYi" in row[0] for row in rows)
        # every font in the file is embedded (column "emb" = yes): no fallback to the reader's fonts
        assert all(row[-5] == "yes" for row in rows), fonts


def test_every_character_of_the_chinese_text_is_in_the_embedded_font(rendered):
    from ecoassess.report.fonts import find_cjk_font

    _, html_path, _ = rendered
    covered = font_characters(find_cjk_font())
    used = {ord(ch) for ch in html_text(html_path) if not ch.isspace()}
    missing = sorted(chr(c) for c in used - covered)
    assert len(used) > 100 and missing == []


def open_page(browser, path: Path):
    """Open ``path`` and return (page, console errors, requested URLs)."""
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: requests.append(req.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, requests


def test_the_html_report_opens_in_chromium_without_errors_missing_images_or_network(browser, rendered):
    _, html_path, _ = rendered
    page, errors, requests = open_page(browser, html_path)
    try:
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
        assert images == [["figures/ei_bars.png", 600]]   # drawn 6 in × 100 dpi
        assert errors == []
        assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests
        # the table header is a real <thead> (print repeats it) and the contents link to the sections
        assert page.locator("table thead th").first.inner_text() == "县（区）"
        assert page.locator("nav.toc a[href='#rsei']").inner_text() == "遥感生态指数"
    finally:
        page.close()


def test_a_missing_figure_is_seen_by_the_browser_check(browser, tmp_path):
    """The check itself: a report whose figure file is gone shows an image of width 0 (and a failed request)."""
    report = chinese_report(tmp_path)
    html_path = render_html(report, tmp_path / "report.html")
    (tmp_path / "figures" / "ei_bars.png").unlink()
    page, errors, _ = open_page(browser, html_path)
    try:
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        assert widths == [0] and errors   # "Failed to load resource"
    finally:
        page.close()


def test_the_same_report_gives_the_same_pdf_wherever_it_is_staged(rendered, tmp_path):
    """A run's results are byte-identical whichever staging folder they were written in (resume, README): the
    PDF must not carry the folder's path (WeasyPrint names images by their URL)."""
    from ecoassess.report.pdf import render_pdf

    _, html_path, pdf_path = rendered
    other = tmp_path / "elsewhere.partial-99"
    shutil.copytree(html_path.parent, other)
    (other / "report.pdf").unlink()
    assert render_pdf(other / "report.html", other / "report.pdf").read_bytes() == pdf_path.read_bytes()
