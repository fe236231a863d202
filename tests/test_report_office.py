"""The report as DOCX and Excel (issue 22, parts 4 and 5): the Word document re-opened and its tables compared
cell by cell with the workbook; numbering, headings, fonts, page set-up and the workbook's layout checked against
values written out by hand."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

docx = pytest.importorskip("docx")
openpyxl = pytest.importorskip("openpyxl")

from docx.shared import Cm  # noqa: E402

from ecoassess.errors import InputError  # noqa: E402
from ecoassess.report.docx import write_docx  # noqa: E402
from ecoassess.report.i18n import untranslated  # noqa: E402
from ecoassess.report.model import Column, Figure, Paragraph, Report, Section, Table  # noqa: E402
from ecoassess.report.xlsx import number_format, sheet_names, write_xlsx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NAN = float("nan")

WORDS = {
    "zh": dict(title="示例县生态环境状况报告", subtitle="2023 年度", date="2024 年 3 月", ei="生态环境状况指数",
               county="县", area="面积", ei_col="EI", grade="等级", sub="分指数", lc="土地利用",
               missing="缺少红线结果：未运行红线监测。", cap1="各县生态环境状况指数", cap2="分指数",
               cap3="土地利用面积", fig1="EI 等级分布图", fig2="EI 变化图", text="全县生态环境状况总体为良。",
               redline="生态保护红线"),
    "en": dict(title="Example County Ecological Status Report", subtitle="Year 2023", date="March 2024",
               ei="Ecological index", county="County", area="Area", ei_col="EI", grade="Grade", sub="Sub-indices",
               lc="Land cover", missing="No red-line results: the red-line stage was not run.",
               cap1="Ecological index by county", cap2="Sub-indices", cap3="Land-cover area",
               fig1="EI grade map", fig2="EI change map", text="The county's ecological status is good.",
               redline="Ecological red lines"),
}
#: table 1's rows: value, digits → text by hand (en and zh group thousands and use "." alike)
EI_ROWS = [["甲县", 1234.5678, 62.125, "良"],
           ["乙县", None, 55.0, "一般"],
           ["丙县", 98765.4321, NAN, None]]
EI_TEXT = [["甲县", "1,234.57", "62.12", "良"],   # 62.125 → 62.12: GB/T 8170 half to even
           ["乙县", "", "55.00", "一般"],
           ["丙县", "98,765.43", "", ""]]


def _png(path: Path, colour: str, tall: bool = False) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 6) if tall else (6, 4), dpi=50)
    ax.bar([1, 2, 3], [3, 1, 2], color=colour)
    fig.savefig(path)
    plt.close(fig)
    return path


def _report(lang: str, folder: Path) -> Report:
    w = WORDS[lang]
    folder.mkdir(parents=True, exist_ok=True)
    fig1 = Figure("ei_grade_map", w["fig1"], _png(folder / "ei_grade.png", "tab:green"))
    fig2 = Figure("ei_change_map", w["fig2"], _png(folder / "ei_change.png", "tab:red", tall=True))
    ei = Table("county_ei", w["cap1"],
               [Column("county", w["county"]), Column("area_km2", w["area"], "km²", 2),
                Column("ei", w["ei_col"], None, 2), Column("grade", w["grade"])],
               [list(r) for r in EI_ROWS], note="EI: HJ 192-2015")
    sub = Table("county_ei_sub_indices_with_a_very_long_identifier", w["cap2"],
                [Column("county", w["county"]), Column("bio", "Biological richness", None, 1),
                 Column("n", "Pixels", None, None)],
                [["甲县", 70.05, 1200], ["乙县", 69.95, 0]])
    lc = Table("county_ei_sub_indices_with_a_very_long_identifier_2", w["cap3"],
               [Column("class", w["lc"]), Column("area_km2", w["area"], "km²", 0)],
               [["耕地", 2.5], ["林地", 3.5], ["草地", -0.4]])   # 2.5 → 2, 3.5 → 4 (half to even)
    return Report(lang, w["title"], w["subtitle"], w["date"], [
        Section("summary", w["ei"], [Paragraph(w["text"]), ei, fig1,
                                     Section("sub", w["sub"], [Paragraph(w["text"]), sub, fig2])]),
        Section("redline", w["redline"], [], missing=w["missing"]),
        Section("landcover", w["lc"], [lc]),
    ])


@pytest.fixture(scope="module", params=["zh", "en"])
def written(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"office_{request.param}")
    report = _report(request.param, folder / "figures")
    docx_path = write_docx(report, folder / "report.docx")
    xlsx_path = write_xlsx(report, folder / "report.xlsx")
    return report, docx_path, xlsx_path


def _body_paragraphs(document):
    return [p for p in document.paragraphs]


def _captions(document, kind: str) -> list[str]:
    label = {"table": ("表", "Table"), "figure": ("图", "Figure")}[kind]
    return [p.text for p in document.paragraphs if p.style.name == "Caption" and p.text.startswith(label)]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


# -- Part 5: the DOCX and the workbook hold the same tables ----------------------------------------------------
def test_every_docx_table_matches_its_workbook_sheet_cell_by_cell(written):
    report, docx_path, xlsx_path = written
    document = docx.Document(str(docx_path))
    wb = openpyxl.load_workbook(xlsx_path)
    tables = report.tables()
    assert len(document.tables) == len(tables) == 3
    names = sheet_names([t.id for t in tables], reserved={wb.sheetnames[0]})
    assert wb.sheetnames[1:] == [names[t.id] for t in tables]
    for table, doc_table in zip(tables, document.tables):
        ws = wb[names[table.id]]
        doc_rows = [[c.text for c in row.cells] for row in doc_table.rows]
        doc_rows[0] = [" ".join(t.split()) for t in doc_rows[0]]  # a unit may be on a line of its own
        assert doc_rows[0] == [ws.cell(row=2, column=j + 1).value for j in range(len(table.columns))]
        assert len(doc_rows) - 1 == len(table.rows)
        for i, doc_row in enumerate(doc_rows[1:]):
            for j, (text, col) in enumerate(zip(doc_row, table.columns)):
                value = ws.cell(row=3 + i, column=j + 1).value
                if text == "":
                    assert value is None, (table.id, i, j)
                elif isinstance(value, (int, float)):
                    assert _number(text) == pytest.approx(value, abs=1e-9), (table.id, i, j, text, value)
                    if col.digits is not None:  # the text shows exactly the column's decimals
                        decimals = len(text.split(".")[1]) if "." in text else 0
                        assert decimals == col.digits, (table.id, i, j, text)
                        assert round(value, col.digits) == value
                    # what Excel shows: its number format "#,##0.00" read as Python's ",.2f"
                    fmt = ws.cell(row=3 + i, column=j + 1).number_format
                    assert re.fullmatch(r"#,##0(\.0+)?", fmt), fmt
                    shown_decimals = len(fmt.partition(".")[2])
                    assert f"{value:,.{shown_decimals}f}" == text, (table.id, i, j, fmt, text)
                else:
                    assert text == value, (table.id, i, j)


def test_table_values_are_what_a_person_writes_by_hand(written):
    report, docx_path, xlsx_path = written
    doc_table = docx.Document(str(docx_path)).tables[0]
    assert [[c.text for c in row.cells] for row in doc_table.rows[1:]] == EI_TEXT
    head = [c.text for c in doc_table.rows[0].cells]
    assert head[1] == ("面积 (km²)" if report.lang == "zh" else "Area (km²)")
    wb = openpyxl.load_workbook(xlsx_path)
    ws = wb[wb.sheetnames[1]]
    assert [[c.value for c in row] for row in ws.iter_rows(min_row=3, max_row=5, max_col=4)] == [
        ["甲县", 1234.57, 62.12, "良"], ["乙县", None, 55.0, "一般"], ["丙县", 98765.43, None, None]]
    lc = wb[wb.sheetnames[3]]
    assert [lc.cell(row=r, column=2).value for r in (3, 4, 5)] == [2, 4, 0]   # 2.5 → 2, 3.5 → 4, -0.4 → 0
    with zipfile.ZipFile(xlsx_path) as z:                                       # not "-0"
        assert "<v>-0" not in z.read("xl/worksheets/sheet4.xml").decode()
    assert lc.cell(row=3, column=2).number_format == "#,##0"
    assert ws.cell(row=3, column=2).number_format == "#,##0.00"
    assert ws.cell(row=3, column=2).data_type == "n"
    sub = wb[wb.sheetnames[2]]
    assert sub.cell(row=3, column=3).number_format == "#,##0" and sub.cell(row=4, column=3).value == 0   # "1,200"


def test_none_is_an_empty_cell_in_both(written):
    _, docx_path, xlsx_path = written
    doc_table = docx.Document(str(docx_path)).tables[0]
    assert doc_table.rows[2].cells[1].text == "" and doc_table.rows[3].cells[3].text == ""   # None
    assert doc_table.rows[3].cells[2].text == ""                                             # NaN
    ws = openpyxl.load_workbook(xlsx_path).worksheets[1]
    assert ws["B4"].value is None and ws["D5"].value is None and ws["C5"].value is None


def test_a_negative_value_that_rounds_to_zero_has_no_minus_sign():
    from ecoassess.report.i18n import format_number

    assert format_number(-0.4, "zh", 0) == "0" and format_number(-0.004, "en", 2) == "0.00"
    assert format_number(-0.0, "en") == "0" and format_number(-1e-9, "en") == "0"
    assert format_number(-0.5, "en", 0) == "0" and format_number(-1.5, "en", 0) == "-2"   # half to even
    assert format_number(-0.006, "en", 2) == "-0.01"


def test_numbers_are_right_aligned_and_text_left(written):
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    _, docx_path, _ = written
    row = docx.Document(str(docx_path)).tables[0].rows[1]
    aligns = [c.paragraphs[0].alignment for c in row.cells]
    assert aligns == [WD_ALIGN_PARAGRAPH.LEFT, WD_ALIGN_PARAGRAPH.RIGHT, WD_ALIGN_PARAGRAPH.RIGHT,
                      WD_ALIGN_PARAGRAPH.LEFT]


# -- the Word document ----------------------------------------------------------------------------------------
def test_captions_are_numbered_in_order_with_seq_fields(written):
    report, docx_path, _ = written
    document = docx.Document(str(docx_path))
    zh = report.lang == "zh"
    tables = _captions(document, "table")
    figures = _captions(document, "figure")
    assert tables == ([f"表 {n}  {t.caption}" for n, t in enumerate(report.tables(), 1)] if zh
                      else [f"Table {n}. {t.caption}" for n, t in enumerate(report.tables(), 1)])
    assert len(figures) == len(report.figures()) == 2
    assert [re.match(r"\D+(\d+)", c).group(1) for c in figures] == ["1", "2"]
    xml = document.element.body.xml
    seq_table, seq_figure = ("表", "图") if zh else ("Table", "Figure")
    assert xml.count(f"SEQ {seq_table} \\* ARABIC") == 3 and xml.count(f"SEQ {seq_figure} \\* ARABIC") == 2


def test_table_captions_sit_above_tables_and_figure_captions_below_figures(written):
    _, docx_path, _ = written
    document = docx.Document(str(docx_path))
    body = list(document.element.body.iterchildren())
    tag = lambda el: el.tag.rsplit("}", 1)[1]  # noqa: E731
    for i, el in enumerate(body):
        if tag(el) == "tbl":
            prev = body[i - 1]
            assert tag(prev) == "p" and "Caption" in prev.xml and "SEQ" in prev.xml
        if tag(el) == "p" and "<w:drawing" in el.xml:
            nxt = body[i + 1]
            assert "Caption" in nxt.xml and "SEQ" in nxt.xml


def test_headings_are_word_heading_styles_and_a_toc_field_is_there(written):
    report, docx_path, _ = written
    document = docx.Document(str(docx_path))
    headings = [(p.style.name, p.text) for p in document.paragraphs if p.style.name.startswith("Heading")]
    w = WORDS[report.lang]
    assert headings == [("Heading 1", w["ei"]), ("Heading 2", w["sub"]), ("Heading 1", w["redline"]),
                        ("Heading 1", w["lc"])]
    assert 'TOC \\o "1-3"' in document.element.body.xml
    assert document.settings.element.find(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}updateFields") is not None


def test_a_missing_section_says_why_in_italics(written):
    report, docx_path, _ = written
    document = docx.Document(str(docx_path))
    paras = document.paragraphs
    at = next(i for i, p in enumerate(paras)
              if p.text == WORDS[report.lang]["redline"] and p.style.name == "Heading 1")
    reason = paras[at + 1]
    assert reason.text == WORDS[report.lang]["missing"]
    assert all(r.italic for r in reason.runs)


def test_the_styles_name_cjk_fonts_a_chinese_office_pc_has(written):
    _, docx_path, _ = written
    document = docx.Document(str(docx_path))
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"

    def east_asia(style_name):
        fonts = document.styles[style_name].element.find(f"{w}rPr/{w}rFonts")
        assert fonts.get(f"{w}asciiTheme") is None and fonts.get(f"{w}eastAsiaTheme") is None
        return fonts.get(f"{w}eastAsia")

    assert east_asia("Normal") == "宋体"
    assert east_asia("Heading 1") == east_asia("Heading 2") == east_asia("Title") == "黑体"
    assert east_asia("Caption") == "黑体"


def test_a4_page_with_margins_and_figures_within_the_text_width(written):
    _, docx_path, _ = written
    document = docx.Document(str(docx_path))
    sec = document.sections[0]
    assert abs(sec.page_width - Cm(21.0)) < Cm(0.01) and abs(sec.page_height - Cm(29.7)) < Cm(0.01)
    text_width = sec.page_width - sec.left_margin - sec.right_margin
    assert abs(text_width - Cm(21.0 - 2 * 3.18)) < Cm(0.01)
    shapes = document.inline_shapes
    assert len(shapes) == 2
    assert abs(shapes[0].width - text_width) < Cm(0.01)                     # the wide figure fills the width
    assert shapes[1].height <= Cm(20.01) and shapes[1].width < text_width   # the tall one is kept on its page
    assert abs(shapes[1].width / shapes[1].height - 4 / 6) < 0.01


def test_header_rows_repeat_on_every_page(written):
    _, docx_path, _ = written
    for table in docx.Document(str(docx_path)).tables:
        assert "<w:tblHeader" in table.rows[0]._tr.xml
        assert "<w:tblHeader" not in table.rows[1]._tr.xml


# -- the workbook -------------------------------------------------------------------------------------------------
def test_the_contents_sheet_links_each_table(written):
    report, _, xlsx_path = written
    wb = openpyxl.load_workbook(xlsx_path)
    contents = wb.worksheets[0]
    assert contents.title == ("目录" if report.lang == "zh" else "Contents")
    rows = [r for r in contents.iter_rows(min_row=1) if r[0].hyperlink is not None]
    assert [r[0].value for r in rows] == (["表 1", "表 2", "表 3"] if report.lang == "zh"
                                          else ["Table 1", "Table 2", "Table 3"])
    assert [r[1].value for r in rows] == [t.caption for t in report.tables()]
    assert [r[0].hyperlink.location for r in rows] == [f"'{name}'!A1" for name in wb.sheetnames[1:]]


def test_each_table_sheet_has_a_caption_a_header_with_units_and_frozen_rows(written):
    report, _, xlsx_path = written
    ws = openpyxl.load_workbook(xlsx_path).worksheets[1]
    zh = report.lang == "zh"
    assert ws["A1"].value == ("表 1  各县生态环境状况指数" if zh else "Table 1. Ecological index by county")
    assert ws["B2"].value == ("面积 (km²)" if zh else "Area (km²)")
    assert ws.freeze_panes == "A3"
    assert ws["A7"].value == "EI: HJ 192-2015"   # the note, after a blank row
    # the width counts a CJK character double: "一般" is 4 half-width characters, the header "面积 (km²)" 10
    assert ws.column_dimensions["D"].width >= 8


def test_sheet_names_follow_excels_rules():
    names = sheet_names(["a" * 40, "a" * 40 + "x", "A" * 31, "what/is:this?", "目录"], reserved={"目录"})
    assert names["a" * 40] == "a" * 31
    assert names["a" * 40 + "x"] == "a" * 29 + "~2"
    assert names["A" * 31] == "A" * 29 + "~3"       # Excel does not tell case apart
    assert names["what/is:this?"] == "what_is_this_"
    assert names["目录"] == "目录~2"
    assert all(len(n) <= 31 for n in names.values())


def test_a_number_without_digits_shows_the_decimals_it_has():
    assert number_format(None, 1200) == "#,##0"                # 1,200
    assert number_format(None, 0.125) == "#,##0.000"           # 0.125
    assert number_format(None, 2.0) == "#,##0"                 # 2
    assert number_format(None, 1 / 3) == "#,##0.000000"        # 0.333333 (at most six, as the text)
    assert number_format(1, 1 / 3) == "#,##0.0"


def test_cjk_characters_count_double_in_column_widths(tmp_path):
    long_zh = "生态环境状况指数等级变化情况"   # 14 CJK characters = 28 half-width
    report = Report("zh", "t", "", "", [Section("s", "s", [
        Table("t", "c", [Column("a", "A"), Column("b", "B")], [[long_zh, "abcdefghijklmn"]])])])
    ws = openpyxl.load_workbook(write_xlsx(report, tmp_path / "w.xlsx")).worksheets[1]
    assert ws.column_dimensions["A"].width == 30      # 28 + 2
    assert ws.column_dimensions["B"].width == 16      # 14 + 2


# -- both ---------------------------------------------------------------------------------------------------------
def test_equal_input_gives_equal_bytes(written, tmp_path):
    report, docx_path, xlsx_path = written
    for path, writer in ((docx_path, write_docx), (xlsx_path, write_xlsx)):
        with zipfile.ZipFile(path) as z:
            assert {i.date_time for i in z.infolist()} == {(2000, 1, 1, 0, 0, 0)}
            core = z.read("docProps/core.xml").decode()
            assert re.findall(r"<dcterms:(?:created|modified)[^>]*>([^<]*)<", core) == \
                ["2000-01-01T00:00:00Z"] * 2
        again = writer(report, tmp_path / path.name)
        assert again.read_bytes() == path.read_bytes()


def test_a_missing_figure_file_is_named(tmp_path):
    report = Report("en", "t", "", "", [Section("s", "s", [Figure("ei_map", "c", tmp_path / "nowhere.png")])])
    with pytest.raises(InputError, match=r"nowhere\.png.*\[png\].*'ei_map'"):
        write_docx(report, tmp_path / "r.docx")
    assert not (tmp_path / "r.docx").exists()


def test_a_row_of_the_wrong_length_is_named(tmp_path):
    report = Report("en", "t", "", "", [Section("s", "s", [
        Table("county_ei", "c", [Column("a", "A"), Column("b", "B")], [["x"]])])])
    with pytest.raises(InputError, match="county_ei.*row 1 has 1 values for 2 columns"):
        write_docx(report, tmp_path / "r.docx")
    assert not list(tmp_path.iterdir())


def test_the_office_wording_is_all_translated():
    files = [ROOT / "ecoassess/report/docx.py", ROOT / "ecoassess/report/xlsx.py"]
    assert untranslated("zh", "office", files) == []


def test_a_wide_table_fills_the_text_width_and_wraps_headers_not_numbers(tmp_path):
    from docx.shared import Pt

    heads = ["县（市、区）", "面积", "生物丰度指数", "植被覆盖指数", "水网密度指数", "土地胁迫指数", "污染负荷指数",
             "生态环境状况指数 EI", "等级"]
    columns = [Column(f"c{j}", h, "km²" if j == 1 else None, 2 if 0 < j < 8 else None) for j, h in enumerate(heads)]
    rows = [["青岗县", 111.0123, 49.57, 84.73, 31.85, 19.88, 1.18, 65.26, "一般"]]
    report = Report("zh", "t", "", "", [Section("s", "s", [Table("wide", "c", columns, rows)])])
    document = docx.Document(str(write_docx(report, tmp_path / "w.docx")))
    sec = document.sections[0]
    text_width = sec.page_width - sec.left_margin - sec.right_margin
    table = document.tables[0]
    widths = [table.columns[j].cells[1].width for j in range(len(heads))]
    assert abs(sum(widths) - text_width) < Cm(0.05)
    # "111.01": six characters of half an em (digits of Times at 10.5 pt) plus Word's 0.19 cm cell margins
    assert widths[1] >= 6 * Pt(10.5) / 2 + Cm(0.38)
    assert widths[8] >= 2 * Pt(10.5) + Cm(0.38)          # "一般": two full-width characters on one line
    assert table.rows[0].cells[1].text == "面积\n(km²)"   # the unit on a line of its own, not split itself
