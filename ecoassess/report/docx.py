"""The report as an editable Word document (python-docx): what a report writer opens, edits and pastes from.

A4 with the margins of Word's Chinese default (2.54 cm top/bottom, 3.18 cm left/right); a title page; headings in
Word's own Heading styles (so the navigation pane and the contents field work) and a TOC field Word fills on
opening; real Word tables (borders, a header row repeated on every page, units in the header cells, numbers
right-aligned and formatted for the language by :func:`ecoassess.report.i18n.format_value`); captions in Word's
Caption style with SEQ fields ("表 1" above a table, "图 1" below a figure), so Word renumbers them when a writer
inserts one; figures from their 300-dpi PNG at the text width.

Fonts are not embedded in a DOCX: the styles name fonts every Chinese Windows/Office has — 宋体 (SimSun) for body
text and 黑体 (SimHei) for headings, title and captions as ``w:eastAsia``, Times New Roman / Arial for Latin
text. Elsewhere (LibreOffice on Linux) fontconfig substitutes an installed CJK font such as WenQuanYi Micro Hei.
Wording (caption labels, "Contents") is in the gettext domain ``office``.
"""

from __future__ import annotations

import math
import numbers
import re
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Emu, Pt, RGBColor

from ecoassess.errors import InputError
from ecoassess.files import atomic_path, display_width, office_bytes
from ecoassess.report.i18n import check_language, format_value, translator
from ecoassess.report.model import Figure, Paragraph, Report, Section, Table
from ecoassess.report.xlsx import check_rows, header_text

DOMAIN = "office"
#: East Asian fonts named in the styles: present on every Chinese Windows/Office PC (not embedded in a DOCX).
BODY_EAST_ASIA = "宋体"      # SimSun
HEADING_EAST_ASIA = "黑体"   # SimHei
BODY_LATIN = "Times New Roman"
HEADING_LATIN = "Arial"
#: A4 and Word's Chinese-default margins
PAGE_WIDTH, PAGE_HEIGHT = Cm(21.0), Cm(29.7)
MARGIN_TOP_BOTTOM, MARGIN_LEFT_RIGHT = Cm(2.54), Cm(3.18)
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN_LEFT_RIGHT
#: a figure is at most this tall (the rest of the page holds its caption)
FIGURE_MAX_HEIGHT = Cm(20)
BODY_PT, TABLE_PT, NOTE_PT = 12, 10.5, 9  # 小四, 五号, 小五
HEADING_PT = {1: 16, 2: 14, 3: 12}        # 三号, 四号, 小四
HEADER_SHADING = "D9D9D9"                 # light grey: stays readable in grayscale print
_UNIT = Pt(TABLE_PT) * 0.55  # a half-width character in a table (a CJK one is two), with room for bold Latin
_PAD = Cm(0.5)               # a table cell's left and right margins


def write_docx(report: Report, path: Path) -> Path:
    """Write ``report`` to ``path`` as a DOCX (written atomically; equal input gives equal bytes). Returns
    ``path``."""
    path = Path(path)
    check_language(report.lang)
    _check_figures(report)
    for table in report.tables():
        check_rows(table)
    doc = Document()
    _setup_page(doc)
    _setup_styles(doc, report.lang)
    _setup_properties(doc, report)
    w = _Writer(doc, report)
    w.title_page()
    w.contents()
    for section in report.sections:
        w.section(section, level=1)
    with atomic_path(path) as tmp:
        tmp.write_bytes(office_bytes(doc))
    return path


def _check_figures(report: Report) -> None:
    for fig in report.figures():
        if not Path(fig.png).is_file():
            raise InputError(f"the PNG of figure {fig.id!r} does not exist", path=fig.png, field="png",
                             expected="a PNG drawn before the report is written")


# -- page, styles, properties ----------------------------------------------------------------------------------
def _setup_page(doc) -> None:
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.PORTRAIT
    sec.page_width, sec.page_height = PAGE_WIDTH, PAGE_HEIGHT
    sec.top_margin = sec.bottom_margin = MARGIN_TOP_BOTTOM
    sec.left_margin = sec.right_margin = MARGIN_LEFT_RIGHT
    sec.header_distance = sec.footer_distance = Cm(1.5)
    sec.different_first_page_header_footer = True  # no page number on the title page
    para = sec.footer.paragraphs[0]
    para.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _field(para, "PAGE", "1")
    # ask Word to update the fields (contents, caption numbers, page numbers) when the document is opened
    settings = doc.settings.element
    update = OxmlElement("w:updateFields")
    update.set(qn("w:val"), "true")
    later = settings.find(qn("w:hdrShapeDefaults"))
    for tag in ("w:footnotePr", "w:endnotePr", "w:compat", "w:docVars", "w:rsids"):
        if later is None:
            later = settings.find(qn(tag))
    if later is not None:
        later.addprevious(update)
    else:
        settings.append(update)


def _set_fonts(rpr_owner, latin: str, east_asia: str) -> None:
    """Explicit fonts on a style's (or run's) rFonts, theme fonts removed (a theme font overrides a named one)."""
    rpr = rpr_owner.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in list(fonts.attrib):
        del fonts.attrib[attr]
    for key, name in (("w:ascii", latin), ("w:hAnsi", latin), ("w:eastAsia", east_asia), ("w:cs", latin)):
        fonts.set(qn(key), name)


def _set_lang(rpr_owner, lang: str) -> None:
    rpr = rpr_owner.get_or_add_rPr()
    el = rpr.find(qn("w:lang"))
    if el is None:
        el = OxmlElement("w:lang")
        rpr.append(el)
    el.set(qn("w:val"), "zh-CN" if lang == "zh" else "en-GB")
    el.set(qn("w:eastAsia"), "zh-CN")


def _style(doc, name: str, base: str | None = None, kind=WD_STYLE_TYPE.PARAGRAPH):
    try:
        return doc.styles[name]
    except KeyError:
        style = doc.styles.add_style(name, kind)
        if base:
            style.base_style = doc.styles[base]
        style.quick_style = True
        return style


def _setup_styles(doc, lang: str) -> None:
    zh = lang == "zh"
    # document defaults: every run without a style of its own gets the CJK body font
    defaults = doc.styles.element.find(qn("w:docDefaults"))
    rpr_default = defaults.find(qn("w:rPrDefault")) if defaults is not None else None
    if rpr_default is not None and rpr_default.find(qn("w:rPr")) is not None:
        holder = _RprHolder(rpr_default)
        _set_fonts(holder, BODY_LATIN, BODY_EAST_ASIA)
        _set_lang(holder, lang)

    normal = doc.styles["Normal"]
    _set_fonts(normal.element, BODY_LATIN, BODY_EAST_ASIA)
    _set_lang(normal.element, lang)
    normal.font.size = Pt(BODY_PT)
    normal.font.color.rgb = RGBColor(0, 0, 0)
    pf = normal.paragraph_format
    pf.line_spacing = 1.5
    pf.space_before, pf.space_after = Pt(0), Pt(0 if zh else 6)
    pf.widow_control = True

    for level, size in HEADING_PT.items():
        h = doc.styles[f"Heading {level}"]
        _set_fonts(h.element, HEADING_LATIN, HEADING_EAST_ASIA)
        h.font.size = Pt(size)
        h.font.bold = True
        h.font.color.rgb = RGBColor(0, 0, 0)
        h.paragraph_format.space_before = Pt(18 if level == 1 else 12)
        h.paragraph_format.space_after = Pt(6)
        h.paragraph_format.line_spacing = 1.25
        h.paragraph_format.first_line_indent = Pt(0)

    for name, size in (("Title", 26), ("Subtitle", 16)):
        st = doc.styles[name]
        _set_fonts(st.element, HEADING_LATIN, HEADING_EAST_ASIA)
        st.font.size = Pt(size)
        st.font.bold = name == "Title"
        st.font.italic = False
        st.font.color.rgb = RGBColor(0, 0, 0)
        ppr = st.element.get_or_add_pPr()
        for border in ppr.findall(qn("w:pBdr")):
            ppr.remove(border)
        st.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
        st.paragraph_format.first_line_indent = Pt(0)
        st.paragraph_format.space_after = Pt(12)

    caption = doc.styles["Caption"]
    _set_fonts(caption.element, HEADING_LATIN, HEADING_EAST_ASIA)
    caption.font.size = Pt(TABLE_PT)
    caption.font.bold = False
    caption.font.color.rgb = RGBColor(0, 0, 0)
    caption.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    caption.paragraph_format.first_line_indent = Pt(0)
    caption.paragraph_format.space_before = Pt(6)
    caption.paragraph_format.space_after = Pt(6)
    for tag in ("w:semiHidden", "w:unhideWhenUsed"):  # hidden in Word's style gallery until used: show it
        for el in caption.element.findall(qn(tag)):
            caption.element.remove(el)

    table_text = _style(doc, "Table Text", "Normal")
    table_text.font.size = Pt(TABLE_PT)
    table_text.paragraph_format.line_spacing = 1.0
    table_text.paragraph_format.first_line_indent = Pt(0)
    table_text.paragraph_format.space_before = table_text.paragraph_format.space_after = Pt(2)

    note = _style(doc, "Table Note", "Normal")
    note.font.size = Pt(NOTE_PT)
    note.paragraph_format.line_spacing = 1.0
    note.paragraph_format.first_line_indent = Pt(0)
    note.paragraph_format.space_before, note.paragraph_format.space_after = Pt(3), Pt(9)

    figure = _style(doc, "Figure", "Normal")
    figure.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    figure.paragraph_format.first_line_indent = Pt(0)
    figure.paragraph_format.line_spacing = 1.0
    figure.paragraph_format.space_before = Pt(6)
    figure.paragraph_format.keep_with_next = True  # the caption below stays on the figure's page

    for level in (1, 2, 3):
        toc = _style(doc, f"TOC {level}", "Normal")
        toc.paragraph_format.first_line_indent = Pt(0)
        toc.paragraph_format.left_indent = Pt(BODY_PT * 2 * (level - 1))
        toc.paragraph_format.line_spacing = 1.25


class _RprHolder:
    """Lets :func:`_set_fonts` work on ``w:rPrDefault`` (which holds an ``w:rPr`` but has no get_or_add_rPr)."""

    def __init__(self, element):
        self.element = element

    def get_or_add_rPr(self):
        return self.element.find(qn("w:rPr"))


def _setup_properties(doc, report: Report) -> None:
    props = doc.core_properties
    props.title = report.title
    props.subject = report.subtitle
    props.author = "ecoassess"
    props.last_modified_by = "ecoassess"
    props.language = "zh-CN" if report.lang == "zh" else "en-GB"
    props.revision = 1
    props.comments = ""
    props.keywords = ""


# -- fields ------------------------------------------------------------------------------------------------------
def _fld_char(run, kind: str) -> None:
    el = OxmlElement("w:fldChar")
    el.set(qn("w:fldCharType"), kind)
    run._r.append(el)


def _field_begin(para, instruction: str):
    _fld_char(para.add_run(), "begin")
    instr = OxmlElement("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = f" {instruction} "
    para.add_run()._r.append(instr)
    _fld_char(para.add_run(), "separate")


def _field(para, instruction: str, shown: str):
    """A Word field (``SEQ 表 \\* ARABIC``, ``PAGE``) whose last computed result is ``shown``."""
    _field_begin(para, instruction)
    para.add_run(shown)
    _fld_char(para.add_run(), "end")


# -- the body ----------------------------------------------------------------------------------------------------
class _Writer:
    def __init__(self, doc, report: Report):
        self.doc, self.report = doc, report
        self.lang = report.lang
        self._ = translator(report.lang, DOMAIN)
        self.table_no = 0
        self.figure_no = 0
        # the first body paragraph of a fresh Document() is empty: the title page reuses it
        self._first = doc.paragraphs[0] if doc.paragraphs else None

    def _para(self, text: str = "", style: str | None = None):
        if self._first is not None:
            para, self._first = self._first, None
            if text:
                para.add_run(text)
            if style:
                para.style = self.doc.styles[style]
            return para
        return self.doc.add_paragraph(text, style=style)

    def title_page(self) -> None:
        r = self.report
        spacer = self._para()
        spacer.paragraph_format.space_before = Cm(6)
        self._para(r.title, "Title")
        if r.subtitle:
            self._para(r.subtitle, "Subtitle")
        date = self._para(r.date, "Subtitle")
        date.paragraph_format.space_before = Cm(4)
        for run in date.runs:
            run.font.size = Pt(14)
        date.add_run().add_break(WD_BREAK.PAGE)

    def contents(self) -> None:
        """A contents heading (not itself in the contents) and a TOC field over Heading 1–3, pre-filled with the
        section titles so that it reads right before Word updates it (with page numbers) on opening."""
        _ = self._
        head = self._para(_("Contents"), "TOC Heading")
        head.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _set_fonts(self.doc.styles["TOC Heading"].element, HEADING_LATIN, HEADING_EAST_ASIA)
        entries = [(lvl, s.title) for lvl, s in _sections(self.report.sections, 1) if lvl <= 3]
        if not entries:
            entries = [(1, "")]
        for i, (lvl, title) in enumerate(entries):
            para = self._para(style=f"TOC {lvl}")
            if i == 0:
                _field_begin(para, 'TOC \\o "1-3" \\h \\z \\u')
            para.add_run(title)
            if i == len(entries) - 1:
                _fld_char(para.add_run(), "end")
        self.doc.paragraphs[-1].add_run().add_break(WD_BREAK.PAGE)

    def section(self, section: Section, level: int) -> None:
        self.doc.add_heading(section.title, level=min(level, 9))
        if section.missing:
            para = self._body_paragraph(section.missing)
            for run in para.runs:
                run.italic = True
        for block in section.blocks:
            if isinstance(block, Section):
                self.section(block, level + 1)
            elif isinstance(block, Paragraph):
                self._body_paragraph(block.text)
            elif isinstance(block, Table):
                self.table(block)
            elif isinstance(block, Figure):
                self.figure(block)
            else:
                raise InputError(f"section {section.id!r} holds a {type(block).__name__}", field="blocks",
                                 expected="Paragraph, Table, Figure or Section")

    def _body_paragraph(self, text: str):
        para = self.doc.add_paragraph(text)
        if self.lang == "zh":  # Chinese body text: first line indented by two characters
            para.paragraph_format.first_line_indent = Pt(2 * BODY_PT)
        return para

    def _caption(self, label: str, template: str, number: int, text: str):
        """'表 1  caption': wording from the catalog (``template`` holds ``{n}`` and ``{caption}``), the number a
        Word SEQ field named by the label ("表", "Figure"), which Word renumbers."""
        para = self.doc.add_paragraph(style="Caption")
        seq = label.replace("{n}", "").strip() or "Table"
        before, _, after = template.partition("{n}")
        if before:
            para.add_run(before)
        _field(para, f"SEQ {seq} \\* ARABIC", str(number))
        para.add_run(after.replace("{caption}", text))
        return para

    def table(self, table: Table) -> None:
        _ = self._
        self.table_no += 1
        cap = self._caption(_("Table {n}"), _("Table {n}. {caption}"), self.table_no, table.caption)
        cap.paragraph_format.keep_with_next = True
        check_rows(table)
        ncols = len(table.columns)
        doc_table = self.doc.add_table(rows=1 + len(table.rows), cols=ncols)
        doc_table.style = self.doc.styles["Table Grid"]
        doc_table.alignment = WD_TABLE_ALIGNMENT.CENTER
        doc_table.autofit = False
        numeric = [any(_is_number(row[j]) for row in table.rows) for j in range(ncols)]
        headers = [header_text(c, _) for c in table.columns]
        texts = [[format_value(v, self.lang, c.digits) for v, c in zip(row, table.columns)] for row in table.rows]
        widths = _column_widths(headers, texts)
        _set_grid(doc_table, widths)
        header_row = doc_table.rows[0]
        _mark_header(header_row)
        for j, (text, column) in enumerate(zip(headers, table.columns)):
            cell = header_row.cells[j]
            _shade(cell, HEADER_SHADING)
            lines = [text]
            if column.unit and _text_emu(text) > widths[j]:  # the unit on a line of its own: 面积 / (km²)
                lines = self._header_lines(column)
            self._cell(cell, lines[0], WD_ALIGN_PARAGRAPH.CENTER, bold=True)
            for line in lines[1:]:
                run = cell.paragraphs[0].add_run()
                run.add_break()
                run.add_text(line)
                run.bold = True
        for i, row in enumerate(texts):
            doc_row = doc_table.rows[i + 1]
            _cant_split(doc_row)
            for j, text in enumerate(row):
                align = WD_ALIGN_PARAGRAPH.RIGHT if numeric[j] else WD_ALIGN_PARAGRAPH.LEFT
                self._cell(doc_row.cells[j], text, align)
        for j, width in enumerate(widths):
            for cell in doc_table.columns[j].cells:
                cell.width = width
        if table.note:
            self.doc.add_paragraph(table.note, style="Table Note")
        else:  # a little air between the table and the next paragraph
            spacer = self.doc.add_paragraph(style="Table Note")
            spacer.paragraph_format.space_before = Pt(0)

    def _header_lines(self, column) -> list[str]:
        """A header with its unit split where the catalog's wording has a space before the unit's part."""
        template = self._("{label} ({unit})")
        head, _, tail = template.partition("{unit}")
        cut = head.rstrip().rfind(" ")
        if "{label}" not in head or cut < head.index("{label}") + len("{label}"):
            return [header_text(column, self._)]
        first = head[:cut].replace("{label}", column.label)
        second = (head[cut:].strip() + column.unit + tail).replace("{label}", column.label)
        return [first, second]

    def _cell(self, cell, text: str, align, bold: bool = False) -> None:
        para = cell.paragraphs[0]
        para.style = self.doc.styles["Table Text"]
        para.alignment = align
        if text:
            run = para.add_run(text)
            run.bold = bold or None
        cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER

    def figure(self, figure: Figure) -> None:
        from docx.image.image import Image

        self.figure_no += 1
        image = Image.from_file(str(figure.png))
        aspect = image.px_height / image.px_width if image.px_width else 1.0
        width = min(TEXT_WIDTH, int(FIGURE_MAX_HEIGHT / aspect)) if aspect > 0 else TEXT_WIDTH
        para = self.doc.add_paragraph(style="Figure")
        para.add_run().add_picture(str(figure.png), width=Emu(int(width)))
        self._caption(self._("Figure {n}"), self._("Figure {n}. {caption}"), self.figure_no, figure.caption)


def _sections(sections, level):
    for s in sections:
        yield level, s
        yield from _sections([b for b in s.blocks if isinstance(b, Section)], level + 1)


def _is_number(value) -> bool:
    return (isinstance(value, numbers.Number) and not isinstance(value, bool)
            and not (isinstance(value, float) and math.isnan(value)))


def _text_emu(text: str) -> int:
    """Width (EMU) a table cell needs to hold ``text`` on one line."""
    return int(max(display_width(text), 4) * _UNIT + _PAD)


def _column_widths(headers: list[str], texts: list[list[str]]) -> list[int]:
    """Column widths (EMU) filling the text width, from the text they hold (CJK characters count double): each
    header on one line when the table fits so; else the headers wrap (between Chinese characters, never inside a
    word) and the values keep their line; only a table too wide even so wraps its values."""
    unit, pad = _UNIT, _PAD
    want, least = [], []
    for j, head in enumerate(headers):
        body = max((display_width(row[j]) for row in texts), default=0)
        token = max((display_width(t) for t in _UNBREAKABLE.findall(head)), default=0)
        want.append(int(max(body, display_width(head), 4) * unit + pad))
        least.append(int(max(body, token, 2) * unit + pad))
    if sum(want) <= TEXT_WIDTH:
        return _spread(want, want, TEXT_WIDTH)
    if sum(least) <= TEXT_WIDTH:
        return _spread(least, [w - m for w, m in zip(want, least)], TEXT_WIDTH)
    # too wide whatever: the long texts (findings, sources) wrap; short values (a level, a county, a number) keep
    # their line — shared in proportion to width, 警示 had been given one character per line beside a long finding
    short = [m <= SHORT_VALUE * unit + pad for m in least]
    fixed = sum(m for m, s in zip(least, short) if s)
    long_total = sum(m for m, s in zip(least, short) if not s)
    if long_total and fixed < TEXT_WIDTH * 0.6:
        room = TEXT_WIDTH - fixed
        return [m if s else int(m * room / long_total) for m, s in zip(least, short)]
    return [int(m * TEXT_WIDTH / sum(least)) for m in least]


#: a column whose longest value is at most this many half-width characters keeps it on one line in a table that
#: has to wrap (12: six Chinese characters, a county name or a number)
SHORT_VALUE = 12

#: where a header may not break: inside a run of Latin letters/digits/signs ("(km²)"); a CJK character alone
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_UNBREAKABLE = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


def _spread(base: list[int], weights: list[int], total: int) -> list[int]:
    """``base`` widened to ``total``, the room shared in proportion to ``weights``."""
    room, weight = total - sum(base), sum(weights) or 1
    return [int(b + room * w / weight) for b, w in zip(base, weights)]


def _set_grid(table, widths) -> None:
    grid = table._tbl.tblGrid
    for col, width in zip(grid.findall(qn("w:gridCol")), widths):
        col.set(qn("w:w"), str(int(width / 635)))  # EMU → twentieths of a point
    tbl_pr = table._tbl.tblPr
    tbl_w = tbl_pr.find(qn("w:tblW"))
    if tbl_w is None:
        tbl_w = OxmlElement("w:tblW")
        tbl_pr.append(tbl_w)
    tbl_w.set(qn("w:type"), "dxa")
    tbl_w.set(qn("w:w"), str(int(sum(widths) / 635)))


def _tr_pr(row):
    return row._tr.get_or_add_trPr()


def _mark_header(row) -> None:
    """The header row repeats at the top of every page the table runs onto, and never splits."""
    tr_pr = _tr_pr(row)
    for tag in ("w:cantSplit", "w:tblHeader"):
        el = OxmlElement(tag)
        el.set(qn("w:val"), "true")
        tr_pr.append(el)


def _cant_split(row) -> None:
    el = OxmlElement("w:cantSplit")
    el.set(qn("w:val"), "true")
    _tr_pr(row).append(el)


def _shade(cell, fill: str) -> None:
    tc_pr = cell._tc.get_or_add_tcPr()
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    tc_pr.append(shd)


__all__ = ["write_docx", "BODY_EAST_ASIA", "HEADING_EAST_ASIA"]
