"""A hand-built Chinese (or English) report for the renderer tests: sections, a subsection, a long table that runs
over pages, a wide table, a figure drawn by matplotlib and a section whose results are missing; and what the font
checks read: the text an HTML page shows, and the characters a font file has."""

from __future__ import annotations

import html.parser
from pathlib import Path

from ecoassess.report.model import Column, Figure, Paragraph, Report, Section, Table

COUNTIES = ["青川县", "平武县", "北川羌族自治县", "汶川县"]


def draw_figure(path: Path, title: str = "EI") -> Path:
    """A small bar chart as PNG (the maps engineer's figures stand in this place in a real report)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ecoassess.report.fonts import font_rc

    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(font_rc()):
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        ax.bar(COUNTIES, [72.4, 65.1, 58.9, 49.3], color=["#1a9850", "#91cf60", "#d9ef8b", "#fee08b"])
        ax.set_ylabel("EI")
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return path


def chinese_report(folder: Path, long_rows: int = 60) -> Report:
    """The report; its figure is drawn to ``folder/figures/ei_bars.png``."""
    png = draw_figure(folder / "figures" / "ei_bars.png", "各县生态质量指数")
    ei = Table("county_ei", "各县生态质量指数（EI）及其分级",
               [Column("name", "县（区）"), Column("code", "行政区划代码"), Column("ei", "生态质量指数", None, 1),
                Column("grade", "分级"), Column("area_km2", "面积", "km²", 2)],
               [[name, f"5199{i:02d}", v, g, a] for i, (name, v, g, a) in
                enumerate(zip(COUNTIES, [72.4, 65.1, 58.9, 49.3], ["优", "良", "良", "一般"],
                              [3216.48, 5974.0, 3083.51, 4083.32]), start=1)],
               note="EI 按 HJ 192-2015 计算；分级：优 ≥ 70，良 55–70，一般 35–55。")
    long = Table("rsei_by_patch", "各图斑遥感生态指数",
                 [Column("patch", "图斑编号"), Column("county", "县（区）"), Column("rsei", "RSEI", None, 3),
                  Column("area", "面积", "hm²", 1)],
                 [[f"P{i:04d}", COUNTIES[i % 4], 0.35 + (i % 13) / 20, 12345.678 + i] for i in range(long_rows)])
    wide = Table("wide_indicators", "功能区县域指标（宽表）",
                 [Column(f"c{j}", f"指标{j}", "%", 1) for j in range(12)],
                 [[j * 1.05 + i for j in range(12)] for i in range(4)])
    figure = Figure("ei_bars", "各县生态质量指数", png)
    return Report("zh", "某市县域生态质量状况报告", "2024 年度", "2026年12月6日", [
        Section("summary", "摘要", [Paragraph("2024 年全市 4 个县（区）中，生态质量为优的 1 个，良 2 个，一般 1 个。"
                                              "与 2023 年相比，汶川县生态质量指数下降 3.2，属明显变差。")]),
        Section("ei", "生态质量指数", [Paragraph("各县生态质量指数见表 1 和图 1。"), ei, figure,
                                     Section("ei-sub", "分指数", [wide])]),
        Section("rsei", "遥感生态指数", [long]),
        Section("redline", "生态保护红线", missing="本次运行未计算红线图斑：配置中没有 zones.redline。"),
    ])


class _Text(html.parser.HTMLParser):
    """The text a reader sees (no <style> or <script>; <title> kept as it is shown in the tab)."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_text(path: Path) -> str:
    parser = _Text()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    return "".join(parser.parts)


def font_characters(path: Path) -> set[int]:
    """The code points a font file maps (the first font of a .ttc collection)."""
    from fontTools.ttLib import TTFont

    path = Path(path)
    font = TTFont(str(path), fontNumber=0, lazy=True) if path.suffix.lower() == ".ttc" else TTFont(str(path), lazy=True)
    return set(font.getBestCmap())
