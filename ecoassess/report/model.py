"""The report as a document, independent of its format: sections holding paragraphs, tables and figures.

:func:`ecoassess.report.content.build_report` fills it from a results folder in one language; the renderers
(HTML, PDF, DOCX, Excel) only lay it out. All wording is already translated here; values stay raw (numbers as
numbers) and are formatted for the language by :func:`ecoassess.report.i18n.format_value` when rendered, so that
the Excel workbook keeps numbers as numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Union


@dataclass(frozen=True)
class Column:
    """One table column: ``key`` (the results-table column it came from), ``label`` (translated), ``unit``
    (shown in the header: "面积 (km²)"), ``digits`` (decimals when rendered; None: as it is)."""
    key: str
    label: str
    unit: str | None = None
    digits: int | None = None


@dataclass
class Table:
    """A numbered table: ``id`` (stable, used for the Excel sheet and cross-checks), ``caption`` (translated),
    ``rows`` of raw values in column order (None: no value)."""
    id: str
    caption: str
    columns: list[Column]
    rows: list[list]
    note: str | None = None


@dataclass
class Figure:
    """A numbered figure: a map or chart drawn to ``png`` (300 dpi), with vector ``pdf``/``svg`` copies when
    drawn."""
    id: str
    caption: str
    png: Path
    pdf: Path | None = None
    svg: Path | None = None


@dataclass
class Paragraph:
    text: str


Block = Union[Paragraph, Table, Figure, "Section"]


@dataclass
class Section:
    """A section (or subsection, when inside another). ``missing``: why its results are absent (the section then
    says so instead of showing an empty table)."""
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    missing: str | None = None


@dataclass
class Report:
    lang: str
    title: str
    subtitle: str
    date: str
    sections: list[Section]

    def walk(self) -> Iterator[Block]:
        """Every block in reading order, subsections' blocks included (sections themselves too)."""
        def visit(blocks):
            for b in blocks:
                yield b
                if isinstance(b, Section):
                    yield from visit(b.blocks)
        yield from visit(self.sections)

    def tables(self) -> list[Table]:
        """The tables in reading order: table n is ``tables()[n - 1]``."""
        return [b for b in self.walk() if isinstance(b, Table)]

    def figures(self) -> list[Figure]:
        """The figures in reading order: figure n is ``figures()[n - 1]``."""
        return [b for b in self.walk() if isinstance(b, Figure)]
