"""The report's tables as an Excel workbook (openpyxl): one sheet per table, for a writer who reworks the numbers.

A first sheet lists the tables with their numbers and captions, each linked to its sheet. Each table sheet has its
caption in row 1 and the header row (units in the header: "面积 (km²)") in row 2, both frozen and printed on every
page; numbers stay numbers, shown with the table column's decimals. The workbook holds the numbers as the report
prints them: rounded to the column's decimals by the rule the text uses (GB/T 8170-2008 round half to even, as
:func:`ecoassess.report.i18n.format_number`), so that the workbook and the DOCX agree cell by cell; the full
precision is in the results folder's ``tables/results.xlsx``. Equal input gives equal bytes. Wording in the
gettext domain ``office``.
"""

from __future__ import annotations

import math
import numbers
import re
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from ecoassess.errors import InputError
from ecoassess.files import atomic_path, display_width, office_bytes
from ecoassess.report.i18n import check_language, format_value, translator
from ecoassess.report.model import Column, Report, Table

DOMAIN = "office"
#: what Excel refuses in a sheet name
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
#: control characters an XML file cannot hold (openpyxl refuses them)
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
MAX_WIDTH, MIN_WIDTH = 60, 8
#: a header wider than this (half-width characters) wraps onto more lines
HEADER_MAX_WIDTH = 40
HEADER_FILL = "D9D9D9"


def write_xlsx(report: Report, path: Path) -> Path:
    """Write the tables of ``report`` to ``path`` as an .xlsx workbook (written atomically). Returns ``path``."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.hyperlink import Hyperlink

    path = Path(path)
    _ = translator(check_language(report.lang), DOMAIN)
    tables = report.tables()
    for table in tables:
        check_rows(table)
    wb = Workbook()
    contents = wb.active
    contents.title = _sheet_title(_("Contents"), set())
    names = sheet_names([t.id for t in tables], reserved={contents.title})

    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor=HEADER_FILL)
    thin = Side(style="thin", color="000000")
    head_border = Border(top=thin, bottom=thin, left=thin, right=thin)
    wrap_centre = Alignment(horizontal="center", vertical="center", wrap_text=True)

    # the contents sheet
    contents["A1"] = _text(report.title)
    contents["A1"].font = Font(bold=True, size=14)
    contents["A2"] = _text(report.subtitle)
    contents["A3"] = _text(report.date)
    heads = [_("No."), _("Caption"), _("Sheet")]
    contents.append([])
    contents.append(heads)
    head_row = contents.max_row
    for cell in contents[head_row]:
        cell.font, cell.fill, cell.border, cell.alignment = bold, head_fill, head_border, wrap_centre
    label = _("Table {n}")
    widths = [display_width(h) for h in heads]
    for n, table in enumerate(tables, start=1):
        number = label.replace("{n}", str(n))
        sheet = names[table.id]
        contents.append([number, _text(table.caption), sheet])
        row = contents.max_row
        for col in (1, 2):
            cell = contents.cell(row=row, column=col)
            cell.hyperlink = Hyperlink(ref=cell.coordinate, location=f"{_quote(sheet)}!A1", display=cell.value)
            cell.style = "Hyperlink"
        for j, value in enumerate((number, table.caption, sheet)):
            widths[j] = max(widths[j], display_width(value))
    for j, width in enumerate(widths, start=1):
        contents.column_dimensions[get_column_letter(j)].width = _width(width)
    contents.freeze_panes = f"A{head_row + 1}"

    # one sheet per table
    for n, table in enumerate(tables, start=1):
        ws = wb.create_sheet(names[table.id])
        ws["A1"] = _text(_("Table {n}. {caption}").replace("{n}", str(n)).replace("{caption}", table.caption))
        ws["A1"].font = Font(bold=True, size=12)
        headers = [header_text(c, _) for c in table.columns]
        widths = [min(display_width(h), HEADER_MAX_WIDTH) for h in headers]
        for j, head in enumerate(headers, start=1):
            cell = ws.cell(row=2, column=j, value=_text(head))
            cell.font, cell.fill, cell.border, cell.alignment = bold, head_fill, head_border, wrap_centre
        lines = max((math.ceil(display_width(h) / HEADER_MAX_WIDTH) for h in headers), default=1)
        if lines > 1:  # a very long header wraps: Excel does not grow the row by itself
            ws.row_dimensions[2].height = 15 * lines
        for i, row in enumerate(table.rows, start=3):
            for j, (value, col) in enumerate(zip(row, table.columns), start=1):
                cell = ws.cell(row=i, column=j)
                cell_value = excel_value(value, col.digits)
                if cell_value is None:
                    continue
                cell.value = cell_value
                if isinstance(cell_value, str):
                    cell.data_type = "s"  # never a formula, whatever the text starts with
                else:
                    cell.number_format = number_format(col.digits, cell_value)
                widths[j - 1] = max(widths[j - 1], display_width(format_value(value, report.lang, col.digits)))
        if table.note:
            ws.cell(row=3 + len(table.rows) + 1, column=1, value=_text(table.note)).font = Font(italic=True)
        for j, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(j)].width = _width(width)
        ws.freeze_panes = "A3"
        ws.print_title_rows = "1:2"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True

    props = wb.properties
    props.creator = props.lastModifiedBy = "ecoassess"
    props.title = report.title
    props.language = "zh-CN" if report.lang == "zh" else "en-GB"
    with atomic_path(path) as tmp:
        tmp.write_bytes(office_bytes(wb))
    return path


def check_rows(table: Table) -> None:
    """Every row of ``table`` has a value for each column (None for no value), else an error naming the row."""
    ncols = len(table.columns)
    for i, row in enumerate(table.rows):
        if len(row) != ncols:
            raise InputError(f"table {table.id!r} row {i + 1} has {len(row)} values for {ncols} columns",
                             field="rows", expected=f"{ncols} values per row")


def header_text(column: Column, _) -> str:
    """A header cell: the label with its unit, "面积 (km²)"."""
    if column.unit:
        return _("{label} ({unit})").format(label=column.label, unit=column.unit)
    return column.label


def excel_value(value, digits: int | None):
    """A cell value: numbers as Python numbers rounded to ``digits`` half to even (as the report's text), None
    for no value (None/NaN), anything else as text."""
    if value is None:
        return None
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        if isinstance(value, numbers.Integral):
            return int(value)
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value) or digits is None:
            return value if not math.isinf(value) else str(value)
        rounded = float(Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN))
        return rounded + 0.0  # no -0.0
    return _text(str(value))


def number_format(digits: int | None, value=None) -> str:
    """Excel number format showing ``value`` as the report's text does: grouped thousands and ``digits``
    decimals; with no ``digits``, the decimals the value has (up to 6, as
    :func:`ecoassess.report.i18n.format_number`)."""
    if digits is None:
        if value is None or float(value).is_integer():
            digits = 0
        else:
            digits = len(f"{Decimal(str(value)):f}".partition(".")[2].rstrip("0")[:6])
    return "#,##0" + ("." + "0" * digits if digits > 0 else "")


def sheet_names(ids: list[str], reserved=()) -> dict[str, str]:
    """Sheet name of each table id: Excel's rules (≤ 31 characters, none of []:*?/\\, unique regardless of case),
    ``~2``, ``~3``… appended where two would clash."""
    taken = {r.casefold() for r in reserved}
    out = {}
    for table_id in ids:
        if table_id not in out:
            out[table_id] = _sheet_title(table_id, taken)
            taken.add(out[table_id].casefold())
    return out


def _sheet_title(name: str, taken: set[str]) -> str:
    base = _SHEET_BAD.sub("_", _ILLEGAL.sub("", name)).strip("'")[:31] or "table"
    cand, i = base, 2
    while cand.casefold() in taken:
        suffix = f"~{i}"
        cand = base[: 31 - len(suffix)] + suffix
        i += 1
    return cand


def _quote(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'"


def _text(value: str) -> str:
    return _ILLEGAL.sub("", value)


def _width(chars: int) -> float:
    return float(min(MAX_WIDTH, max(MIN_WIDTH, chars + 2)))


__all__ = ["write_xlsx", "check_rows", "sheet_names", "excel_value", "number_format", "header_text"]
