"""Report outputs: print-quality maps (:mod:`ecoassess.report.maps`) and the fonts they need."""

from __future__ import annotations

from ecoassess.report.fonts import find_cjk_font

__all__ = ["find_cjk_font", "zone_choropleth"]


def __getattr__(name):
    if name == "zone_choropleth":
        from ecoassess.report.maps import zone_choropleth

        return zone_choropleth
    raise AttributeError(name)
