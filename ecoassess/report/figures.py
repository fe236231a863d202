"""The report's print maps, drawn from a results folder: one figure per map whose results exist.

:func:`draw_report_maps` draws EI grades by county (HJ 192-2015 §5, each year), the ΔEI change class, RSEI and its
grades, NDVI and FVC in fixed class breaks (the same every year, so that years compare), land cover in the
legend's colours, red-line units with encroachment patches, monitoring stations by type, station status (GB 3095
compliance in HJ 633 colours, GB 3838 classes) and network coverage gaps with the proposed points. Styles come
from ``layers/report_styles.yaml`` (:mod:`ecoassess.report.styles`); title, legend, scale bar, north arrow and the
CRS / source / date line from :mod:`ecoassess.report.maps`. Each map is written as PNG (300 dpi), PDF and SVG.
A map whose results are absent is skipped without a word: the report says why its section is missing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError
from ecoassess.report import maps as M
from ecoassess.report import styles as S
from ecoassess.report.i18n import check_language, format_number, translator
from ecoassess.report.model import Figure

log = logging.getLogger(__name__)

WHOLE_AREA_CODE = "000000"
#: PNG at 300 dpi for documents, SVG (text kept as text) for a writer who edits a map. No PDF per map: subsetting
#: the CJK font into each file took 1 s a map (17.6 of 43 s for the demo's 17); the report's PDF holds them all.
FORMATS = ("png", "svg")


@dataclass
class _Ctx:
    results: object
    out_dir: Path
    lang: str
    _: object
    counties: object  # GeoDataFrame code, name, geometry (projected) or None
    source: str
    date: str | None

    @property
    def size(self) -> tuple[float, float]:
        f = S.figure_style()
        return float(f["width_in"]), float(f["height_in"])

    @property
    def dpi(self) -> int:
        return int(S.figure_style()["dpi"])

    def max_pixels(self) -> int:
        """Pixels across the map frame at print resolution: rasters are read no finer than this."""
        w, h = self.size
        return int(math.ceil(max(w * M.MAP_BOX[2], h * M.MAP_BOX[3]) * self.dpi))


# -- entry point ---------------------------------------------------------------------------------------------------

def draw_report_maps(results, out_dir, lang: str) -> list[Figure]:
    """Draw every map whose results exist in ``results`` (a :class:`~ecoassess.report.results.ResultsFolder`)
    into ``out_dir`` as ``<id>.png`` (300 dpi) and ``<id>.svg``; the figures in report order, each
    with its caption in ``lang``."""
    check_language(lang)
    ctx = _Ctx(results, Path(out_dir), lang, translator(lang, "maps"), _counties(results), _source(results, lang),
               _run_date(results))
    figures: list[Figure] = []
    for draw in (_ei_grade_maps, _ei_change_maps, _rsei_maps, _vegetation_maps, _landcover_maps, _redline_maps,
                 _station_maps, _station_status_maps, _network_gap_maps):
        figures.extend(draw(ctx))
    return figures


# -- what every map needs ------------------------------------------------------------------------------------------

def _run_date(results) -> str | None:
    run = results.manifest.get("run") or {}
    stamp = run.get("ended_utc") or run.get("started_utc")
    return str(stamp)[:10] if stamp else None


def _source(results, lang: str) -> str:
    _ = translator(lang, "maps")
    name = ((results.config.get("given") or {}).get("name")) or ""
    version = results.manifest.get("ecoassess_version", "")
    text = _("ecoassess {version} results").format(version=version)
    return f"{name}{M.map_words(lang)['sep']}{text}" if name else text


def _counties(results):
    """County polygons (code, name) from the first county table with geometry; None when there is none."""
    for table in ("county_ei", "county_rsei", "county_vegetation"):
        if not results.has(table):
            continue
        gdf = results.table(table)
        if "geometry" not in gdf or gdf.crs is None:
            continue
        gdf = gdf[gdf["code"].astype(str) != WHOLE_AREA_CODE]
        if "is_whole_area" in gdf:
            gdf = gdf[~gdf["is_whole_area"].astype(bool)]
        gdf = gdf.assign(code=gdf["code"].astype(str)).drop_duplicates("code")[["code", "name", "geometry"]]
        return M.projected(gdf.reset_index(drop=True))
    return None


def _figure(ctx, fig_id: str, caption: str, fig) -> Figure:
    paths = M.save_map(fig, ctx.out_dir / f"{fig_id}.png", dpi=ctx.dpi, formats=FORMATS)
    return Figure(fig_id, caption, paths["png"], paths.get("pdf"), paths.get("svg"))


def _start(ctx, title: str):
    return M.new_map(title, figsize_in=ctx.size, dpi=ctx.dpi, title_pt=S.fonts()["title_pt"])


def _finish(ctx, fig, ax, crs, bounds, standard: str | None = None) -> None:
    M.fit_extent(ax, bounds, ctx.size)
    source = ctx.source + (M.map_words(ctx.lang)["sep"] + standard if standard else "")
    M.add_furniture(fig, ax, crs, ctx.lang, source=source, date=ctx.date, note_pt=S.fonts()["note_pt"])


def _legend(ax, handles, title: str, ncol: int = 1) -> None:
    """Legend in the right-hand column, below the north arrow."""
    f = S.fonts()
    for h in handles:
        h.set_label(_wrap(h.get_label()))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 0.82), frameon=False, title=title,
              fontsize=f["legend_pt"], title_fontsize=f["legend_title_pt"], handlelength=2.2, handleheight=1.4,
              alignment="left", ncol=ncol, labelspacing=0.45)


def _patch(colour, label, hatch=None, **hatch_kw):
    from matplotlib.patches import Patch

    kw = {"hatch": hatch, **hatch_kw}
    return Patch(facecolor=colour, edgecolor=S.lines()["colours"]["zone"], linewidth=0.6, label=label, **kw)


def _marker(colour, marker, label, size=8.0):
    from matplotlib.lines import Line2D

    return Line2D([], [], linestyle="none", marker=marker, markersize=size, markerfacecolor=colour,
                  markeredgecolor="black", markeredgewidth=0.6, label=label)


def _wrap(text: str, width: int = 20) -> str:
    return M.wrap_text(text, width)


def _class_map(ctx, gdf, column: str, scheme_name: str, names: dict, fig_id: str, caption: str,
               legend_title: str, labels=None, standard: str | None = None) -> Figure:
    """Zones of ``gdf`` filled by the class in ``column`` (scheme ``scheme_name``; ``names``: key → legend
    text), classes absent from the data still in the legend (the scale is the standard's, not the data's)."""
    lines = S.lines()
    sch = S.scheme(scheme_name)
    by_key = sch.by_key()
    keys = gdf[column].where(gdf[column].notna(), None)
    with M.map_style():
        fig, ax, leg_ax = _start(ctx, caption)
        handles = []
        for cls in sch.classes:
            sel = (keys == cls.key).to_numpy()
            if sel.any():
                gdf[sel].plot(ax=ax, facecolor=cls.colour, edgecolor=lines["colours"]["zone"],
                              linewidth=lines["zone_pt"], **cls.hatch_kw())
            handles.append(_patch(cls.colour, names.get(cls.key, str(cls.key)), **cls.hatch_kw()))
        missing = ~keys.isin(list(by_key)).to_numpy()
        if missing.any():
            gdf[missing].plot(ax=ax, facecolor=lines["colours"]["no_data"], edgecolor=lines["colours"]["zone"],
                              linewidth=lines["zone_pt"], hatch="///")
            handles.append(_patch(lines["colours"]["no_data"], ctx._("No data"), "///"))
        M.draw_outline(ax, gdf, lines["outline_pt"])
        _legend(leg_ax, handles, legend_title)
        if labels is not None:
            gdf = gdf.assign(_label=labels)
        M.zone_labels(ax, gdf, "_label" if labels is not None else "name", size=S.fonts()["label_pt"])
        _finish(ctx, fig, ax, gdf.crs, gdf.total_bounds, standard)
        return _figure(ctx, fig_id, caption, fig)


# -- EI ------------------------------------------------------------------------------------------------------------

def _hj192() -> dict:
    return load_yaml(data_path("indices", "hj192_2015.yaml"))


def _range_text(lower, upper) -> str:
    if lower is None:
        return f"< {upper:g}"
    if upper is None:
        return f"≥ {lower:g}"
    return f"{lower:g}–{upper:g}"


def _county_rows(ctx, table: str):
    """``table`` joined to the county polygons by code (rows of the whole area left out)."""
    if ctx.counties is None or not ctx.results.has(table):
        return None
    rows = ctx.results.table(table)
    if "code" not in rows:
        raise InputError(f"table {table!r} has no 'code' column", path=ctx.results.path / "results.gpkg",
                         field="code", expected="the county code of each row")
    rows = rows.drop(columns=[c for c in ("geometry", "name") if c in rows]).assign(code=rows["code"].astype(str))
    rows = rows[rows["code"] != WHOLE_AREA_CODE]
    return ctx.counties.merge(rows, on="code", how="inner")


def _ei_grade_maps(ctx) -> list[Figure]:
    gdf = _county_rows(ctx, "county_ei")
    if gdf is None or "grade" not in gdf or "year" not in gdf:
        return []
    _ = ctx._
    grades = _hj192()["grades"]["classes"]
    names = {g["zh"]: f"{g['zh'] if ctx.lang == 'zh' else g['en']} ({_range_text(g['lower'], g['upper'])})"
             for g in grades}
    out = []
    for year in sorted({int(y) for y in gdf["year"].dropna()}):
        rows = gdf[gdf["year"] == year]
        labels = [f"{n}\n{format_number(v, ctx.lang, 2)}" if np.isfinite(v) else str(n)
                  for n, v in zip(rows["name"], rows["ei"].astype(float))]
        out.append(_class_map(ctx, rows, "grade", "ei_grade", names, f"ei_grade_{year}",
                              _("Ecological index (EI) grade by county, {year}").format(year=year),
                              _("EI grade"), labels, "HJ 192-2015"))
    return out


def _ei_change_maps(ctx) -> list[Figure]:
    gdf = _county_rows(ctx, "county_ei_change")
    if gdf is None or "change_class" not in gdf:
        return []
    _ = ctx._
    names = {}
    for c in _hj192()["change_classes"]["classes"]:
        lo, hi = c["lower"], c["upper"]
        if "zh" in c:  # the middle class: |ΔEI| < upper
            names[c["zh"]] = f"{c['zh'] if ctx.lang == 'zh' else c['en']} (|ΔEI| < {hi:g})"
            continue
        # HJ 192 change grading: better ΔEI in [lo, hi), worse ΔEI in (−hi, −lo]
        better = f"ΔEI ≥ {lo:g}" if hi is None else f"{lo:g} ≤ ΔEI < {hi:g}"
        worse = f"ΔEI ≤ −{lo:g}" if hi is None else f"−{hi:g} < ΔEI ≤ −{lo:g}"
        for side, rng in (("better", better), ("worse", worse)):
            label = c[f"zh_{side}"] if ctx.lang == "zh" else c[f"en_{side}"]
            names[c[f"zh_{side}"]] = f"{label} ({rng})"
    out = []
    for years in sorted(gdf["years"].astype(str).unique()) if "years" in gdf else [""]:
        rows = gdf[gdf["years"].astype(str) == years] if years else gdf
        labels = [f"{n}\n{_signed(v, ctx.lang)}" for n, v in zip(rows["name"], rows["delta_ei"].astype(float))]
        fig_id = f"ei_change_{years.replace('-', '_')}" if years else "ei_change"
        out.append(_class_map(ctx, rows, "change_class", "ei_change", names, fig_id,
                              _("Change of the ecological index (ΔEI) by county, {years}").format(
                                  years=years.replace("-", "–")),
                              _("ΔEI change class"), labels, "HJ 192-2015"))
    return out


def _signed(v: float, lang: str) -> str:
    if not np.isfinite(v):
        return ""
    text = format_number(abs(v), lang, 2)
    return ("+" if v > 0 else "−" if v < 0 else "±") + text


# -- rasters -------------------------------------------------------------------------------------------------------

def read_raster_for_map(path, max_pixels: int, *, categorical: bool, dst_crs=None):
    """Band 1 of ``path`` read no finer than ``max_pixels`` across (overviews are used when the file has them,
    so a province-sized layer costs what the figure shows), masked where nodata; warped to ``dst_crs`` when the
    raster is in another CRS. Returns ``(masked array, (left, right, bottom, top), crs)``."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    resampling = Resampling.nearest if categorical else Resampling.average
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError("raster has no CRS", path=path, field="crs", expected="a georeferenced layer")
            from pyproj import CRS

            own = CRS.from_wkt(src.crs.to_wkt())
            if own.is_geographic or (dst_crs is not None and not own.equals(dst_crs, ignore_axis_order=True)):
                from ecoassess.grid import china_albers_crs

                target = dst_crs if dst_crs is not None and not dst_crs.is_geographic else china_albers_crs()
                with WarpedVRT(src, crs=rasterio.crs.CRS.from_wkt(CRS.from_user_input(target).to_wkt()),
                               resampling=Resampling.nearest) as vrt:
                    return _read_decimated(vrt, max_pixels, resampling)
            return _read_decimated(src, max_pixels, resampling)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"unreadable raster ({exc})", path=path, expected="a GeoTIFF layer") from None


def _read_decimated(src, max_pixels: int, resampling):
    scale = max(src.width / max_pixels, src.height / max_pixels, 1.0)
    shape = (max(1, int(round(src.height / scale))), max(1, int(round(src.width / scale))))
    data = src.read(1, out_shape=shape, resampling=resampling, masked=True)
    if np.issubdtype(data.dtype, np.floating):
        data = np.ma.masked_invalid(data)
    b = src.bounds
    return data, (b.left, b.right, b.bottom, b.top), src.crs


def _raster_map(ctx, path, fig_id: str, caption: str, legend_title: str, *, breaks=None, colours=None,
                labels=None, codes=None, standard: str | None = None, legend_ncol: int = 1) -> Figure | None:
    """A layer drawn in classes: ``breaks`` + ``colours`` for values (fixed limits), or ``codes`` → colours
    for class codes; the counties' boundaries and names on top; cells without a value inside the counties in
    the no-data gray."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from pyproj import CRS

    lines = S.lines()
    counties = ctx.counties
    crs = CRS.from_user_input(counties.crs) if counties is not None else None
    data, extent, rcrs = read_raster_for_map(path, ctx.max_pixels(), categorical=breaks is None, dst_crs=crs)
    rcrs = CRS.from_user_input(rcrs.to_wkt())
    if counties is not None and not rcrs.equals(crs):
        counties = counties.to_crs(rcrs.to_wkt())
    inside = np.ones(data.shape, dtype=bool)
    if counties is not None:  # only the study area is shown: a land-cover tile is often larger
        from rasterio.features import geometry_mask
        from rasterio.transform import from_bounds

        left, right, bottom, top = extent
        inside = geometry_mask(list(counties.geometry), out_shape=data.shape, invert=True,
                               transform=from_bounds(left, bottom, right, top, data.shape[1], data.shape[0]))
    gaps = bool((np.ma.getmaskarray(data) & inside).any())
    data = np.ma.masked_where(~inside, data)
    with M.map_style():
        fig, ax, leg_ax = _start(ctx, caption)
        handles = []
        if breaks is not None:
            cmap, norm = ListedColormap(colours), BoundaryNorm(breaks, len(colours))
            shown = np.ma.masked_where(~np.isfinite(data.filled(np.nan).astype("float64")), data)
            handles = [_patch(c, lab) for c, lab in zip(colours, labels)][::-1]  # high values on top
        else:
            lut_codes = sorted(codes)
            index = np.full(int(max(lut_codes)) + 2, -1, dtype="int64")
            for i, code in enumerate(lut_codes):
                index[int(code)] = i
            raw = np.where(np.ma.getmaskarray(data), -1, np.ma.getdata(data).astype("int64"))
            idx = np.where((raw >= 0) & (raw < len(index)), index[np.clip(raw, 0, len(index) - 1)], -1)
            shown = np.ma.masked_less(idx, 0)
            cols = [codes[c][0] for c in lut_codes]
            cmap = ListedColormap(cols)
            norm = BoundaryNorm(np.arange(len(cols) + 1) - 0.5, len(cols))
            present = set(np.unique(idx[idx >= 0]).tolist())
            handles = [_patch(codes[c][0], codes[c][1]) for i, c in enumerate(lut_codes)
                       if i in present or codes[c][2]]
        if counties is not None:  # cells without a value show the hatched no-data gray (apart from every class)
            counties.plot(ax=ax, facecolor=lines["colours"]["no_data"], edgecolor="#8c8c8c", linewidth=0,
                          hatch="///", zorder=0)
        ax.imshow(shown, extent=extent, cmap=cmap, norm=norm, interpolation="nearest", zorder=1)
        if counties is not None:
            # county boundaries with a white casing: visible over dark and light classes alike
            counties.boundary.plot(ax=ax, color="white", linewidth=lines["zone_pt"] + 1.4, zorder=2)
            counties.boundary.plot(ax=ax, color=lines["colours"]["zone"], linewidth=lines["zone_pt"], zorder=3)
            M.draw_outline(ax, counties, lines["outline_pt"])
            M.zone_labels(ax, counties, "name", size=S.fonts()["label_pt"])
            bounds = counties.total_bounds
            if gaps:
                handles.append(_patch(lines["colours"]["no_data"], ctx._("No data"), "///"))
        else:
            bounds = (extent[0], extent[2], extent[1], extent[3])
        _legend(leg_ax, handles, legend_title, legend_ncol)
        _finish(ctx, fig, ax, rcrs, bounds, standard)
        return _figure(ctx, fig_id, caption, fig)


def _layer_years(results, prefix: str) -> list[int]:
    out = []
    for name in results.layers:
        head, _, tail = name.rpartition("_")
        if head == prefix and tail.isdigit() and len(tail) == 4:
            out.append(int(tail))
    return sorted(out)


def _rsei_maps(ctx) -> list[Figure]:
    _ = ctx._
    out = []
    rsei = S.scheme("rsei")
    grades = load_yaml(data_path("indices", "rsei.yaml"))["grades"]
    grade_colours = {c.key: c.colour for c in S.scheme("rsei_grade").classes}
    codes = {int(g["code"]): (grade_colours[int(g["code"])],
                              f"{g['zh'] if ctx.lang == 'zh' else g['en']} ({g['lower']:g}–{g['upper']:g})", True)
             for g in grades}
    years = sorted(set(_layer_years(ctx.results, "rsei")) | set(_layer_years(ctx.results, "rsei_grade")))
    for year in years:
        if f"rsei_{year}" in ctx.results.layers:
            out.append(_raster_map(
                ctx, ctx.results.layers[f"rsei_{year}"], f"rsei_{year}",
                _("Remote sensing ecological index (RSEI), {year}").format(year=year), _("RSEI"),
                breaks=rsei.breaks, colours=[c.colour for c in rsei.classes], labels=S.break_labels(rsei.breaks)))
        if f"rsei_grade_{year}" in ctx.results.layers:
            out.append(_raster_map(
                ctx, ctx.results.layers[f"rsei_grade_{year}"], f"rsei_grade_{year}",
                _("RSEI grade, {year}").format(year=year), _("RSEI grade"), codes=codes))
    return [f for f in out if f is not None]


def _vegetation_maps(ctx) -> list[Figure]:
    _ = ctx._
    out = []
    titles = {"ndvi": (_("Normalised difference vegetation index (NDVI), {year}"), _("NDVI"), None),
              "fvc": (_("Fractional vegetation cover (FVC), {year}"), _("FVC"), "SL 190-2007")}
    for prefix in ("ndvi", "fvc"):
        sch = S.scheme(prefix)
        title, legend, standard = titles[prefix]
        for year in _layer_years(ctx.results, prefix):
            out.append(_raster_map(ctx, ctx.results.layers[f"{prefix}_{year}"], f"{prefix}_{year}",
                                   title.format(year=year), legend, breaks=sch.breaks,
                                   colours=[c.colour for c in sch.classes],
                                   labels=list(sch.labels or S.break_labels(sch.breaks)), standard=standard))
    return out


# -- land cover ----------------------------------------------------------------------------------------------------

def _landcover_sources(results) -> dict[int, tuple[Path, str]]:
    """``{year: (raster path, legend)}`` of the run's land-cover rasters that are still where the config said."""
    given = (results.config.get("given") or {}).get("land_cover") or {}
    resolved = results.config.get("resolved_paths") or {}
    out = {}
    for year, entry in given.items():
        if not isinstance(entry, dict) or not str(year).isdigit():
            continue
        path = Path(resolved.get(f"land_cover.{year}.path") or entry.get("path") or "")
        if path.is_file():
            out[int(year)] = (path, entry.get("legend") or "cas_lucc")
        else:
            log.info("land-cover raster of %s is no longer at %s; its map is left out", year, path)
    return out


def _landcover_maps(ctx) -> list[Figure]:
    """The land-cover map of each year the run accounted (none when the run made no land-cover tables: a
    ``--stage network`` run still names the rasters in its config)."""
    from ecoassess.legends import load_legend

    if not ctx.results.has("landcover_class_areas"):
        return []
    _ = ctx._
    out = []
    for year, (path, legend_name) in sorted(_landcover_sources(ctx.results).items()):
        legend = load_legend(legend_name)
        codes = {int(code): (c["color"], c["zh"] if ctx.lang == "zh" else c["en"], False)
                 for code, c in legend.classes.items()}
        out.append(_raster_map(ctx, path, f"landcover_{year}", _("Land cover, {year}").format(year=year),
                               _("Land cover class"), codes=codes, standard=legend.long_name))
    return out


# -- red lines -----------------------------------------------------------------------------------------------------

def _redline_units(results):
    if results.has("redline_rsei"):
        gdf = results.table("redline_rsei")
        if "geometry" in gdf and gdf.crs is not None:
            return M.projected(gdf.drop_duplicates("code")[["code", "name", "geometry"]])
    zone = ((results.config.get("given") or {}).get("zones") or {}).get("redline") or {}
    path = zone.get("path")
    if path and Path(path).is_file():
        import pyogrio

        gdf = pyogrio.read_dataframe(path)
        name = zone.get("name_field")
        return M.projected(gdf.assign(name=gdf[name]) if name in gdf else gdf)
    return None


def _redline_maps(ctx) -> list[Figure]:
    if not ctx.results.has("redline_patches"):
        return []
    units = _redline_units(ctx.results)
    patches = ctx.results.table("redline_patches")
    if units is None or "geometry" not in patches:
        return []
    _ = ctx._
    lines = S.lines()
    patches = M.projected(patches).to_crs(units.crs)
    sch = S.scheme("redline_patch")
    names = {"new": _("New patch"), "expanded": _("Expanded patch"), "unchanged": _("Unchanged patch"),
             "reduced": _("Reduced patch")}
    rec = ctx.results.extra.get("redline") or {}
    before, after = rec.get("before_year"), rec.get("after_year")
    period = f"{before}–{after}" if before and after else ""
    caption = _("Ecological conservation red-line units and encroachment patches, {period}").format(period=period)
    with M.map_style():
        fig, ax, leg_ax = _start(ctx, caption)
        frame = ctx.counties.to_crs(units.crs) if ctx.counties is not None else units
        if ctx.counties is not None:
            frame.plot(ax=ax, facecolor="white", edgecolor=lines["colours"]["zone"], linewidth=lines["zone_pt"])
            M.draw_outline(ax, frame, lines["outline_pt"])
        units.plot(ax=ax, facecolor="#c7e9c0", edgecolor=lines["colours"]["redline"], linewidth=lines["redline_pt"],
                   hatch="..", zorder=2)
        handles = [_patch("#c7e9c0", _("Red-line unit"), "..")]
        kinds = patches["change_type"].astype(str) if "change_type" in patches else None
        n_buffer = 0
        for cls in sch.classes:
            sel = patches[(kinds == cls.key).to_numpy()] if kinds is not None else patches.iloc[0:0]
            if sel.empty:
                continue
            sel.plot(ax=ax, facecolor=cls.colour, edgecolor="black", linewidth=lines["patch_pt"], zorder=5)
            pts = sel.geometry.representative_point()
            # inside the red line: filled symbol; in the buffer zone around it: hollow, in the class colour
            buffer = (sel["location"].astype(str) == "buffer").to_numpy() if "location" in sel else \
                np.zeros(len(sel), dtype=bool)
            ax.scatter(pts.x[~buffer], pts.y[~buffer], s=46, marker=cls.marker, c=cls.colour, edgecolors="black",
                       linewidths=0.7, zorder=6)
            ax.scatter(pts.x[buffer], pts.y[buffer], s=46, marker=cls.marker, c="white", edgecolors=cls.colour,
                       linewidths=1.5, zorder=6)
            n_buffer += int(buffer.sum())
            handles.append(_marker(cls.colour, cls.marker, f"{names.get(cls.key, cls.key)} ({len(sel)})"))
        if n_buffer:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=8, markerfacecolor="white",
                                  markeredgecolor="black", markeredgewidth=1.2,
                                  label=_("Hollow symbol: in the buffer zone") + f" ({n_buffer})"))
        M.zone_labels(ax, frame, "name", size=S.fonts()["label_pt"])
        _legend(leg_ax, handles, _("Legend"))
        _finish(ctx, fig, ax, units.crs, frame.total_bounds)
        return [_figure(ctx, f"redline_patches_{after}" if after else "redline_patches", caption, fig)]


# -- monitoring network --------------------------------------------------------------------------------------------

def _type_names(_) -> dict:
    return {"air": _("Air"), "surface_water": _("Surface water section"), "drinking_water": _("Drinking water source"),
            "soil": _("Soil"), "noise": _("Noise"), "ecology_plots": _("Ecology plot")}


def _base_counties(ctx, ax, crs=None):
    lines = S.lines()
    frame = ctx.counties if crs is None else ctx.counties.to_crs(crs)
    frame.plot(ax=ax, facecolor="#f7f7f7", edgecolor=lines["colours"]["zone"], linewidth=lines["zone_pt"])
    M.draw_outline(ax, frame, lines["outline_pt"])
    return frame


def _points(ctx, table: str):
    if not ctx.results.has(table):
        return None
    gdf = ctx.results.table(table)
    if "geometry" not in gdf or gdf.crs is None or gdf.empty:
        return None
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    return gdf.to_crs(ctx.counties.crs) if ctx.counties is not None else M.projected(gdf)


def _station_maps(ctx) -> list[Figure]:
    st = _points(ctx, "stations")
    if st is None or ctx.counties is None or "station_type" not in st:
        return []
    _ = ctx._
    names = _type_names(_)
    sch = S.scheme("station_type")
    caption = _("Monitoring stations by type")
    with M.map_style():
        fig, ax, leg_ax = _start(ctx, caption)
        frame = _base_counties(ctx, ax)
        handles = []
        kinds = st["station_type"].astype(str)
        for cls in sch.classes:
            sel = st[(kinds == cls.key).to_numpy()]
            if sel.empty:
                continue
            ax.scatter(sel.geometry.x, sel.geometry.y, s=34, marker=cls.marker, c=cls.colour, edgecolors="black",
                       linewidths=0.6, zorder=5)
            handles.append(_marker(cls.colour, cls.marker, f"{names.get(cls.key, cls.key)} ({len(sel)})"))
        M.zone_labels(ax, frame, "name", size=S.fonts()["label_pt"] + 1, zorder=4)
        _legend(leg_ax, handles, _("Station type (number)"))
        _finish(ctx, fig, ax, frame.crs, frame.total_bounds)
        return [_figure(ctx, "stations", caption, fig)]


def _station_status_maps(ctx) -> list[Figure]:
    air, water = _points(ctx, "air_station_annual"), _points(ctx, "water_sections")
    if ctx.counties is None or (air is None and water is None):
        return []
    _ = ctx._
    years = sorted({int(y) for t in (air, water) if t is not None and "year" in t for y in t["year"].dropna()})
    year = years[-1] if years else None
    caption = (_("Air stations and surface-water sections: status, {year}").format(year=year) if year
               else _("Air stations and surface-water sections: status"))
    air_names = {"compliant": _("Air: meets GB 3095 (annual)"), "exceeds": _("Air: exceeds GB 3095 (annual)")}
    with M.map_style():
        fig, ax, leg_ax = _start(ctx, caption)
        frame = _base_counties(ctx, ax)
        handles = []
        if air is not None and "compliant" in air:
            if year is not None and "year" in air:
                air = air[air["year"] == year]
            status = np.where(air["compliant"].astype("boolean").fillna(False), "compliant", "exceeds")
            status = np.where(air["compliant"].isna(), "", status)
            for cls in S.scheme("air_status").classes:
                sel = air[status == cls.key]
                if sel.empty:
                    continue
                ax.scatter(sel.geometry.x, sel.geometry.y, s=60, marker=cls.marker, c=cls.colour,
                           edgecolors="black", linewidths=0.7, zorder=6)
                handles.append(_marker(cls.colour, cls.marker, f"{air_names[cls.key]} ({len(sel)})", 9))
        if water is not None and "water_class" in water:
            if year is not None and "year" in water:
                water = water[water["year"] == year]
            sch = S.scheme("water_class")
            for cls in sch.classes:
                sel = water[(water["water_class"].astype(str) == str(cls.key)).to_numpy()]
                if sel.empty:
                    continue
                ax.scatter(sel.geometry.x, sel.geometry.y, s=52, marker=cls.marker, c=cls.colour,
                           edgecolors="black", linewidths=0.7, zorder=6)
                for x, y in zip(sel.geometry.x, sel.geometry.y):  # the class beside the symbol: readable in gray
                    M.halo_text(ax, x, y, " " + _roman(cls.key), ha="left", va="bottom", fontsize=7.5, zorder=7)
                handles.append(_marker(cls.colour, cls.marker,
                                       _("Water: class {cls} (GB 3838)").format(cls=_roman(cls.key)) +
                                       f" ({len(sel)})"))
        if not handles:
            return []
        M.zone_labels(ax, frame, "name", size=S.fonts()["label_pt"] + 1, zorder=4)
        _legend(leg_ax, handles, _("Status (number)"))
        _finish(ctx, fig, ax, frame.crs, frame.total_bounds, "GB 3095-2012; GB 3838-2002")
        fid = f"station_status_{year}" if year else "station_status"
        return [_figure(ctx, fid, caption, fig)]


def _roman(key) -> str:
    """GB 3838 class as printed: Ⅰ … Ⅴ, 劣Ⅴ."""
    table = {"I": "Ⅰ", "II": "Ⅱ", "III": "Ⅲ", "IV": "Ⅳ", "V": "Ⅴ"}
    text = str(key)
    return "劣Ⅴ" if text == "劣V" else table.get(text, text)


def _network_gap_maps(ctx) -> list[Figure]:
    if ctx.counties is None or not ctx.results.has("network_coverage"):
        return []
    _ = ctx._
    cov = ctx.results.table("network_coverage")
    if "shortfall" not in cov or "county_code" not in cov:
        return []
    cov = cov.assign(county_code=cov["county_code"].astype(str))
    short = cov.groupby("county_code")["shortfall"].apply(lambda s: s.sum(min_count=1)).rename("shortfall_total")
    gdf = ctx.counties.merge(short, left_on="code", right_index=True, how="left")
    sch = S.scheme("shortfall")
    lines = S.lines()
    caption = _("Monitoring network: missing sites by county and proposed points")
    proposed = _points(ctx, "proposed_sites")
    names = _type_names(_)
    with M.map_style():
        fig, ax, leg_ax = _start(ctx, caption)
        idx = S.bin_index(gdf["shortfall_total"].to_numpy(dtype="float64"), sch.breaks)
        handles = []
        for i, cls in enumerate(sch.classes):
            sel = gdf[idx == i]
            if not sel.empty:
                sel.plot(ax=ax, facecolor=cls.colour, edgecolor=lines["colours"]["zone"], linewidth=lines["zone_pt"])
            handles.append(_patch(cls.colour, _("{n} missing").format(n=sch.labels[i])))
        if (idx < 0).any():
            gdf[idx < 0].plot(ax=ax, facecolor=lines["colours"]["no_data"], edgecolor=lines["colours"]["zone"],
                              linewidth=lines["zone_pt"], hatch="///")
            handles.append(_patch(lines["colours"]["no_data"], _("Not assessed"), "///"))
        M.draw_outline(ax, gdf, lines["outline_pt"])
        if proposed is not None and "station_type" in proposed:
            by_key = S.scheme("station_type").by_key()
            for kind, sel in proposed.groupby(proposed["station_type"].astype(str)):
                cls = by_key.get(kind)
                colour, marker = (cls.colour, cls.marker) if cls else ("#000000", "o")
                ax.scatter(sel.geometry.x, sel.geometry.y, s=90, marker=marker, c=colour, edgecolors="black",
                           linewidths=1.4, zorder=6)
                handles.append(_marker(colour, marker, _("Proposed: {type}").format(
                    type=names.get(kind, kind)) + f" ({len(sel)})", 10))
        M.zone_labels(ax, gdf, "name", size=S.fonts()["label_pt"] + 1, zorder=4)
        _legend(leg_ax, handles, _("Required sites missing"))
        _finish(ctx, fig, ax, gdf.crs, gdf.total_bounds)
        return [_figure(ctx, "network_gaps", caption, fig)]


__all__ = ["draw_report_maps", "read_raster_for_map"]
