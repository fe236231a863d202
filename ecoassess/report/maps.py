"""Print-quality static maps (PNG) for reports: zones coloured by a value, with the furniture an official map needs.

Every map carries a title, a legend (colour bar or classes, plus a hatched "no data" entry), zone labels, a
scale bar in km computed for the map's projected CRS at the map centre, a north arrow and a line naming the
CRS and the data source. Text is Chinese (``lang="zh"``) or English (``"en"``) and uses a CJK font
(:func:`ecoassess.report.fonts.find_cjk_font`), so Chinese county names never lose glyphs.

Maps are drawn in a projected CRS. A layer in geographic coordinates (degrees) is reprojected to the China
Albers equal-area conic (:func:`ecoassess.grid.china_albers_crs`) first, because neither a scale bar nor
areas make sense in degrees. On a conic projection grid north (up on the map) differs from true north away
from the central meridian: the north arrow is rotated by the meridian convergence at the map centre, so it
points to true north, and the CRS line says so.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from ecoassess.errors import InputError

log = logging.getLogger(__name__)

#: Map frame and legend column as fractions of the figure (left, bottom, width, height).
MAP_BOX = (0.03, 0.09, 0.72, 0.80)
LEGEND_BOX = (0.77, 0.09, 0.21, 0.80)
NO_DATA_FACE = "#d9d9d9"
EDGE = "#404040"


# -- scale bar and north arrow geometry (unit-tested) ---------------------------------------------------------------

def nice_scale_length_m(map_width_m: float, fraction: float = 0.25) -> float:
    """Largest 1, 2 or 5 × 10ⁿ metres not longer than ``fraction`` of the map width (in ground metres)."""
    if not map_width_m > 0:
        raise ValueError(f"map width must be > 0 m, got {map_width_m}")
    target = map_width_m * fraction
    exp = math.floor(math.log10(target))
    for mant in (5, 2, 1):
        if mant * 10 ** exp <= target * (1 + 1e-9):
            return float(mant * 10 ** exp)
    return float(10 ** exp)  # pragma: no cover (mant 1 always fits)


def ground_m_per_map_unit(crs, x: float, y: float, step: float | None = None) -> float:
    """Ground (geodesic) metres per map unit along the map's x axis at ``(x, y)``.

    Measured directly: two points ±``step`` map units either side are taken back to longitude/latitude and the
    geodesic between them on the CRS's ellipsoid is divided by their map distance. Includes the projection's
    scale factor and the unit of the axes (metres, feet, ...).
    """
    from pyproj import CRS, Geod, Transformer

    crs = CRS.from_user_input(crs)
    if not crs.is_projected:
        raise InputError("map scale needs a projected CRS", field="crs", expected="a projected CRS (metres)")
    step = step or 500.0
    to_geo = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_geo.transform([x - step, x + step], [y, y])
    geod = Geod(**_ellps(crs))
    _, _, dist = geod.inv(lon0, lat0, lon1, lat1)
    return dist / (2 * step)


def true_north_angle_deg(crs, x: float, y: float) -> float:
    """Clockwise angle (degrees) from grid north (map up) to true north at ``(x, y)``.

    Equals minus pyproj's ``meridian_convergence`` (which is the angle from true north to grid north):
    east of a conic's or transverse Mercator's central meridian in the northern hemisphere true north leans
    left (negative here).
    """
    from pyproj import CRS, Transformer

    crs = CRS.from_user_input(crs)
    geo = crs.geodetic_crs
    to_geo = Transformer.from_crs(crs, geo, always_xy=True)
    to_map = Transformer.from_crs(geo, crs, always_xy=True)
    lon, lat = to_geo.transform(x, y)
    d = 1e-4 if lat < 89.9 else -1e-4
    x2, y2 = to_map.transform(lon, lat + d)
    if d < 0:
        x2, y2 = 2 * x - x2, 2 * y - y2
    return math.degrees(math.atan2(x2 - x, y2 - y))


def _ellps(crs) -> dict:
    e = crs.ellipsoid
    return {"a": e.semi_major_metre, "b": e.semi_minor_metre}


# -- the furniture every map shares -------------------------------------------------------------------------------

def map_words(lang: str) -> dict:
    """The map's own words in ``lang`` (catalog domain "maps")."""
    from ecoassess.report.i18n import check_language, translator

    _ = translator(check_language(lang), "maps")
    return {"no_data": _("No data"), "north": _("N"), "km": _("km"), "m": _("m"), "sep": _("; "),
            "crs": _("Coordinate system: {crs}"), "source": _("Source: {source}"), "date": _("Date: {date}"),
            "true_north": _("North arrow points to true north (meridian convergence at map centre {angle:.2f}°)")}


def map_style():
    """Context in which a map is drawn and saved: the CJK font first (no missing glyphs), text kept as text in
    SVG and embedded as TrueType in PDF."""
    import matplotlib

    from ecoassess.report.fonts import font_rc

    return matplotlib.rc_context({**font_rc(), "svg.hashsalt": "ecoassess"})


def projected(gdf):
    """``gdf`` in a projected CRS: geographic layers go to CGCS2000 / China Albers (a scale bar needs metres)."""
    from ecoassess.grid import china_albers_crs

    if gdf.crs is None:
        raise InputError("the zone layer has no CRS", field="crs", expected="a layer with a defined (projected) CRS")
    if gdf.crs.is_geographic:
        target = china_albers_crs().to_wkt()
        log.info("reprojecting the zone layer from %s to CGCS2000 / China Albers for mapping", gdf.crs.name)
        return gdf.to_crs(target)
    return gdf


_projected = projected


def new_map(title: str, *, figsize_in=(8.0, 7.0), dpi: int = 200, title_pt: float = 17):
    """A figure with the map frame (``MAP_BOX``), an empty legend column (``LEGEND_BOX``) and the title; call
    inside :func:`map_style`. Returns ``(fig, ax, legend_ax)``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize_in, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(MAP_BOX)
    leg_ax = fig.add_axes(LEGEND_BOX)
    leg_ax.set_axis_off()
    fig.text(0.5, 0.95, title, ha="center", va="center", fontsize=title_pt)  # CJK fonts rarely ship a bold face
    return fig, ax, leg_ax


def fit_extent(ax, bounds, figsize_in=(8.0, 7.0), pad_fraction: float = 0.10) -> None:
    """Map extent ``bounds`` (xmin, ymin, xmax, ymax) with a margin, equal aspect, filling the map frame."""
    xmin, ymin, xmax, ymax = bounds
    pad = pad_fraction * max(xmax - xmin, ymax - ymin, 1.0)
    w, h = xmax - xmin + 2 * pad, ymax - ymin + 2 * pad
    box_ratio = (figsize_in[0] * MAP_BOX[2]) / (figsize_in[1] * MAP_BOX[3])  # width / height of the map frame
    if w / h < box_ratio:
        w = h * box_ratio
    else:
        h = w / box_ratio
    mx, my = (xmin + xmax) / 2, (ymin + ymax) / 2
    ax.set_xlim(mx - w / 2, mx + w / 2)
    ax.set_ylim(my - h / 2, my + h / 2)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for spine in ax.spines.values():
        spine.set_linewidth(1.0)


def draw_outline(ax, gdf, linewidth: float = 1.2, colour: str = "black") -> None:
    """The outer boundary of all zones of ``gdf``, a little heavier than the zone boundaries."""
    outline = gdf.geometry.union_all() if hasattr(gdf.geometry, "union_all") else gdf.geometry.unary_union
    type(gdf.geometry)([outline.boundary], crs=gdf.crs).plot(ax=ax, color=colour, linewidth=linewidth, zorder=4)


def halo_text(ax, x, y, text: str, *, halo: float = 2.2, zorder: float = 6, **kw):
    """Text with a white halo (readable over any fill). The halo is a stroked copy underneath, so that the text
    itself stays text in SVG and PDF (searchable, editable by a report writer); returns the text artist."""
    from matplotlib import patheffects

    ax.text(x, y, text, zorder=zorder - 0.01, color="white",
            path_effects=[patheffects.Stroke(linewidth=halo, foreground="white")], **kw)
    return ax.text(x, y, text, zorder=zorder, **{"color": "#111111", **kw})


def zone_labels(ax, gdf, label_field: str | None, size: float | None = None, zorder: float = 6) -> None:
    """Zone names at representative points, dark with a white halo (readable over any fill)."""
    if not label_field or label_field not in gdf.columns:
        return
    size = size or (9 if len(gdf) <= 20 else 7 if len(gdf) <= 60 else 5.5)
    for geom, text in zip(gdf.geometry, gdf[label_field]):
        if geom is None or geom.is_empty or text is None or (isinstance(text, float) and math.isnan(text)):
            continue
        pt = geom.representative_point()
        halo_text(ax, pt.x, pt.y, str(text), ha="center", va="center", fontsize=size, zorder=zorder)


def wrap_text(text: str, width: int) -> str:
    """``text`` on as many lines as it needs to fit ``width`` half-width units (a Chinese character counts two);
    lines break after a space or Chinese punctuation, else between Chinese characters, never inside a Latin word
    or a number; a trailing " (…)" goes whole onto its own line when it fits."""
    import unicodedata

    def units(t):
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in t)

    text = str(text)
    if units(text) <= width or "\n" in text:
        return text
    head, sep, tail = text.rpartition(" (")
    if sep and text.endswith(")") and units(head) <= width and units(tail) < width:
        return f"{head}\n({tail}"  # "名称\n(范围)": the range stays whole
    # break opportunities: after a space, before or after a wide character — but no line ends with an opening
    # bracket and none starts with closing punctuation (the Chinese line-breaking rule)
    opening, closing = "（《“【(", "）》”】，、：；。)"
    lines, line, last_break = [], "", -1
    for ch in text:
        wide = unicodedata.east_asian_width(ch) in "WF"
        if wide and ch not in closing and line and line[-1] not in opening:
            last_break = len(line)
        line += ch
        if ch == " " or (wide and ch not in opening):
            last_break = len(line)
        if units(line) > width and last_break > 0:
            lines.append(line[:last_break].rstrip())
            line, last_break = line[last_break:].lstrip(), -1
    if line:
        lines.append(line)
    return "\n".join(lines)


def add_furniture(fig, ax, crs, lang: str, *, source: str | None = None, date: str | None = None,
                  note_pt: float = 7.5) -> float:
    """Scale bar, north arrow (true north) and the line naming the CRS, the data source and the date, for the
    extent ``ax`` shows now; returns the north arrow's angle (degrees clockwise from map up)."""
    from pyproj import CRS

    words = map_words(lang)
    crs = CRS.from_user_input(crs)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    _scale_bar(ax, crs, (x0, x1, y0, y1), (cx, cy), words)
    angle = true_north_angle_deg(crs, cx, cy)
    _north_arrow(ax, angle, words["north"])
    parts = [words["crs"].format(crs=crs.name)]
    if source:
        parts.append(words["source"].format(source=source))
    if date:
        parts.append(words["date"].format(date=date))
    if abs(angle) >= 0.05:
        parts.append(words["true_north"].format(angle=abs(angle)))
    # wrapped to the frame's width (matplotlib's own wrap runs to the paper's edge)
    width_units = int(fig.get_figwidth() * (MAP_BOX[0] + LEGEND_BOX[0] + LEGEND_BOX[2] - 2 * MAP_BOX[0]) * 72
                      / (0.56 * note_pt))
    fig.text(0.03, 0.045, wrap_text(words["sep"].join(parts), width_units), ha="left", va="center",
             fontsize=note_pt, color="#222222")
    return angle


def save_map(fig, path, *, dpi: int = 300, formats=("png",)) -> dict[str, Path]:
    """Write ``fig`` to ``path`` with each suffix of ``formats`` (png at ``dpi``; pdf, svg vector), each file
    atomically; call inside :func:`map_style`. Returns ``{format: path}``."""
    from ecoassess.files import atomic_path

    out = {}
    base = Path(path)
    for fmt in formats:
        target = base.with_suffix("." + fmt)
        with atomic_path(target, suffix="." + fmt) as tmp:
            # no date in an SVG, fixed element ids: the same results give the same bytes
            fig.savefig(tmp, dpi=dpi, format=fmt, facecolor="white",
                        metadata={"Date": None} if fmt in ("svg", "pdf") else None)
        out[fmt] = target
    return out


# -- the county choropleth -----------------------------------------------------------------------------------------

def _classify(values: np.ndarray, classes) -> tuple[list[int | None], list]:
    idx: list[int | None] = []
    last = len(classes) - 1
    for v in values:
        hit = None
        if np.isfinite(v):
            for i, (lo, hi, _label, _colour) in enumerate(classes):
                if lo <= v < hi or (i == last and v == hi):
                    hit = i
                    break
        idx.append(hit)
    return idx, classes


def zone_choropleth(gdf, column: str, path, *, title: str, legend_label: str, label_field: str | None = "name",
                    lang: str = "zh", cmap: str = "RdYlGn", classes=None, dpi: int = 200, note: str | None = None,
                    figsize_in: tuple[float, float] = (8.0, 7.0), vmin: float | None = None,
                    vmax: float | None = None) -> Path:
    """Draw zones of ``gdf`` coloured by ``column`` to a PNG at ``path`` (written atomically); returns ``path``.

    ``classes``: list of ``(lower, upper, label, colour)`` (lower ≤ v < upper; the last class includes its upper
    bound) for a classed legend; otherwise a continuous colour bar over ``cmap`` (``vmin``/``vmax`` default to
    the data range). NaN values (and values outside every class) are drawn hatched grey as "no data".
    ``label_field``: zone names written at representative points (None: no labels). ``note``: the data source,
    written after the CRS. ``lang``: "zh" or "en" for the map's own words.
    """
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    from ecoassess.report.i18n import LANGUAGES

    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {sorted(LANGUAGES)}, got {lang!r}")
    words = map_words(lang)
    if column not in gdf.columns:
        raise InputError(f"has no column {column!r}", field=column, expected=f"one of {list(gdf.columns)}")
    gdf = projected(gdf)
    values = np.asarray(gdf[column], dtype="float64")

    with map_style():
        fig, ax, leg_ax = new_map(title, figsize_in=figsize_in, dpi=dpi)
        handles = []
        nodata = ~np.isfinite(values)
        if classes:
            idx, _ = _classify(values, classes)
            nodata = np.array([i is None for i in idx])
            colours = [classes[i][3] if i is not None else NO_DATA_FACE for i in idx]
            if (~nodata).any():
                gdf[~nodata].plot(ax=ax, color=[c for c, n in zip(colours, nodata) if not n], edgecolor=EDGE,
                                  linewidth=0.6)
            if np.isfinite(values[nodata]).any():
                log.warning("%d zone(s) have values outside every class; drawn as no data",
                            int(np.isfinite(values[nodata]).sum()))
            handles = [Patch(facecolor=c, edgecolor=EDGE, linewidth=0.6, label=lab) for _lo, _hi, lab, c in classes]
        else:
            finite = values[np.isfinite(values)]
            lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
            hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            norm, cm = Normalize(lo, hi), matplotlib.colormaps[cmap]
            if (~nodata).any():
                gdf[~nodata].plot(ax=ax, color=cm(norm(values[~nodata])), edgecolor=EDGE, linewidth=0.6)
            cax = fig.add_axes((0.79, 0.30, 0.035, 0.40))
            cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cm), cax=cax)
            cb.set_label(legend_label, fontsize=10)
            cb.ax.tick_params(labelsize=9)
        if nodata.any():
            gdf[nodata].plot(ax=ax, facecolor=NO_DATA_FACE, edgecolor=EDGE, hatch="///", linewidth=0.6)
            handles.append(Patch(facecolor=NO_DATA_FACE, edgecolor=EDGE, hatch="///", linewidth=0.6,
                                 label=words["no_data"]))
        if classes:
            leg_ax.legend(handles=handles, loc="center left", bbox_to_anchor=(0.0, 0.42), frameon=False,
                          title=legend_label, fontsize=9,
                          title_fontsize=10, handlelength=2.2, handleheight=1.4, alignment="left")
        elif handles:
            leg_ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 0.08), frameon=False, fontsize=9,
                          handlelength=2.2, handleheight=1.4)
        draw_outline(ax, gdf)
        fit_extent(ax, gdf.total_bounds, figsize_in)
        zone_labels(ax, gdf, label_field)
        add_furniture(fig, ax, gdf.crs, lang, source=note)
        save_map(fig, Path(path), dpi=dpi, formats=("png",))
    return Path(path)


def _scale_bar(ax, crs, extent, centre, words) -> None:
    """Alternating black/white bar in the lower left, a nice round length in km (or m) at the map centre."""
    from matplotlib.patches import Rectangle

    x0, x1, y0, y1 = extent
    w, h = x1 - x0, y1 - y0
    k = ground_m_per_map_unit(crs, *centre, step=w / 20)
    length_m = nice_scale_length_m(w * k)
    bar = length_m / k  # map units
    bx, by, bh = x0 + 0.05 * w, y0 + 0.06 * h, 0.012 * h
    use_km = length_m >= 1000
    unit = words["km"] if use_km else words["m"]
    ax.add_patch(Rectangle((bx - 0.02 * w, by - 0.045 * h), bar + 0.09 * w, 0.045 * h + bh + 0.015 * h,
                           facecolor="white", edgecolor="none", alpha=0.85, zorder=9))
    for i in range(4):
        ax.add_patch(Rectangle((bx + i * bar / 4, by), bar / 4, bh, facecolor="black" if i % 2 == 0 else "white",
                               edgecolor="black", linewidth=0.8, zorder=10))
    for frac in (0.0, 0.5, 1.0):
        v = length_m * frac / (1000 if use_km else 1)
        ax.text(bx + frac * bar, by - 0.008 * h, f"{v:g}", ha="center", va="top", fontsize=8, zorder=11)
    ax.text(bx + bar + 0.012 * w, by + bh / 2, unit, ha="left", va="center", fontsize=8, zorder=11)


def _north_arrow(ax, angle_deg: float, letter: str) -> None:
    """A two-tone north arrow beside the map's upper right corner, turned clockwise by ``angle_deg`` (true north)."""
    from matplotlib.patches import Polygon

    ins = ax.figure.add_axes((0.775, 0.76, 0.09, 0.14))  # top of the legend column, outside the map frame
    ins.set_xlim(-1.6, 1.6)
    ins.set_ylim(-1.4, 2.0)
    ins.set_aspect("equal")
    ins.set_axis_off()
    t = math.radians(angle_deg)

    def rot(pts):
        return [(x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)) for x, y in pts]

    ins.add_patch(Polygon(rot([(0, 1.0), (-0.42, -0.8), (0, -0.4)]), closed=True, facecolor="black",
                          edgecolor="black", linewidth=0.8))
    ins.add_patch(Polygon(rot([(0, 1.0), (0.42, -0.8), (0, -0.4)]), closed=True, facecolor="white",
                          edgecolor="black", linewidth=0.8))
    lx, ly = rot([(0, 1.45)])[0]
    ins.text(lx, ly, letter, ha="center", va="center", fontsize=12)


__all__ = ["zone_choropleth", "nice_scale_length_m", "ground_m_per_map_unit", "true_north_angle_deg", "map_words",
           "map_style", "projected", "new_map", "fit_extent", "draw_outline", "zone_labels", "halo_text", "wrap_text",
           "add_furniture", "save_map", "MAP_BOX", "LEGEND_BOX"]
