"""The interactive web map of the report (issue 22, part 2): one self-contained ``webmap.html`` that works offline.

Layers, each only when its results table exists: counties coloured by HJ 192-2015 EI grade (§1.7; popups with EI
and its sub-indices per year, ΔEI and change class), RSEI by county (grades of ``indices/rsei.yaml``), red-line
units and human-activity patches (popups with the ledger attributes and the before/after chip), monitoring
stations by type (popups with their values and classes), coverage gaps (network shortfalls per county, river
exits without a section) and proposed sites; a layer control and a legend.

Government networks often have no internet: every script and style is inlined (Leaflet, vendored in
``assets/leaflet``; folium's CDN defaults — jQuery, Bootstrap, awesome-markers, Font Awesome — are dropped, the map
needs none of them) and there is no basemap unless ``tile_url`` is given. Wording comes from the ``webmap``
message catalog; values are formatted by :func:`ecoassess.report.i18n.format_value`; every text from the data
(county and station names, notes) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import folium
import pandas as pd
import shapely
from jinja2 import Template

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError
from ecoassess.files import atomic_path
from ecoassess.report.i18n import check_language, format_value, translator
from ecoassess.report.results import ResultsFolder

log = logging.getLogger(__name__)

LEAFLET_VERSION = "1.9.4"
ASSETS = Path(__file__).with_name("assets")
#: Longest side of a before/after chip in a popup (px), its largest encoded size, and the budget of all chips in
#: one page: beyond the budget a popup says the chip was left out (the ledger folder has it).
CHIP_MAX_PX = 720
CHIP_MAX_BYTES = 120_000
CHIPS_BUDGET_BYTES = 12_000_000
NO_DATA_COLOUR = "#d9d9d9"
STATION_COLOURS = {"air": "#1f78b4", "surface_water": "#33a0c8", "drinking_water": "#6a3d9a", "soil": "#b15928",
                   "noise": "#e7298a", "ecology_plots": "#33a02c"}
EXCEEDS_COLOUR = "#a50f15"
REDLINE_COLOUR = "#e8003d"
PATCH_COLOUR = "#ff7f00"
GAP_COLOUR = "#7b3294"
PROPOSED_COLOUR = "#000000"
WHOLE_AREA_CODE = "000000"
#: Leaflet panes and their stacking: a layer switched on later is drawn above the others of its pane only, so that
#: stations stay above (and clickable over) counties, and patches above red-line units above counties. Leaflet's
#: own overlays are at 400, markers 600, tooltips 650, popups 700.
ZONES, REDLINES, POINTS = "ea_zones", "ea_redlines", "ea_points"
PANES = {ZONES: 401, REDLINES: 402, POINTS: 620}
YEAR_COLUMNS = {"year", "first_year", "last_detected_year", "quarter", "before", "after"}


def N_(message: str) -> str:
    """Marks a message id for extraction; it is translated where it is shown."""
    return message


#: English names of the HJ 192 fluctuation levels, in the order of ``fluctuation.levels`` (the file names them in
#: Chinese only); Chinese pages show the data value itself.
FLUCTUATION_EN = (N_("stable"), N_("fluctuating"), N_("large fluctuation"), N_("severe fluctuation"))

STATION_TYPES = {"air": N_("Air quality stations"), "surface_water": N_("Surface-water sections"),
                 "drinking_water": N_("Drinking-water sources"), "soil": N_("Soil points"),
                 "noise": N_("Noise measurement points"), "ecology_plots": N_("Ecology plots")}

# (column, label, unit, digits) of each popup; the first column present in the table is shown
EI_ROWS = [("ei", N_("EI"), None, 1), ("grade", N_("Grade"), None, None),
           ("biological_abundance", N_("Biological abundance index"), None, 1),
           ("vegetation_cover", N_("Vegetation cover index"), None, 1),
           ("water_network_density", N_("Water network density index"), None, 1),
           ("land_stress", N_("Land stress index"), None, 1),
           ("pollution_load", N_("Pollution load index"), None, 1),
           ("ei_before_constraint", N_("EI before the environmental restriction index"), None, 1)]
EI_CHANGE_ROWS = [("years", N_("Years"), None, None), ("ei_baseline", N_("EI of the baseline year"), None, 1),
                  ("delta_ei", N_("ΔEI"), None, 2), ("change_class", N_("Change class"), None, None),
                  ("fluctuation_level", N_("Fluctuation"), None, None),
                  ("function_zone_change_class", N_("Change class of the function-zone county"), None, None)]
RSEI_ROWS = [("rsei_mean", N_("Mean RSEI"), None, 3), ("_grade", N_("Grade"), None, None),
             ("rsei_valid_km2", N_("Area assessed"), "km²", 1), ("area_km2", N_("Area"), "km²", 1)]
UNIT_ROWS = [("code", N_("Unit"), None, None), ("area_km2", N_("Area"), "km²", 2),
             ("rsei_mean", N_("Mean RSEI"), None, 3), ("patches_n", N_("Patches"), None, 0),
             ("new_n", N_("New patches"), None, 0), ("patches_area_m2", N_("Patch area"), "m²", 0),
             ("disturbed_share", N_("Share disturbed"), None, 4)]
PATCH_ROWS = [("change_type", N_("Change type"), None, None), ("activity_name", N_("Activity"), None, None),
              ("unit_name", N_("Red-line unit"), None, None), ("county_name", N_("County"), None, None),
              ("location", N_("Location"), None, None), ("area_m2", N_("Area"), "m²", 0),
              ("area_mu", N_("Area"), "mu", 2), ("confidence", N_("Confidence"), None, 2),
              ("ndvi_before", N_("NDVI before"), None, 3), ("ndvi_after", N_("NDVI after"), None, 3),
              ("before_period", N_("Before"), None, None), ("after_period", N_("After"), None, None),
              ("first_year", N_("First detected"), None, None),
              ("last_detected_year", N_("Last detected"), None, None),
              ("check_status", N_("Field check"), None, None), ("check_result", N_("Check result"), None, None),
              ("legality", N_("Legality"), None, None), ("remarks", N_("Remarks"), None, None)]
STATION_ROWS = [("station_id", N_("Station"), None, None), ("station_class", N_("Class"), None, None),
                ("county_name", N_("County"), None, None), ("river", N_("River"), None, None),
                ("function_zones_name", N_("Function zone"), None, None),
                ("redline_name", N_("Red-line unit"), None, None)]
AIR_ROWS = [("year", N_("Year"), None, None), ("good_day_ratio", N_("Share of good days"), None, 3),
            ("so2_annual_ugm3", N_("SO₂ annual mean"), "µg/m³", 0),
            ("no2_annual_ugm3", N_("NO₂ annual mean"), "µg/m³", 0),
            ("pm10_annual_ugm3", N_("PM10 annual mean"), "µg/m³", 0),
            ("pm25_annual_ugm3", N_("PM2.5 annual mean"), "µg/m³", 0),
            ("co_p95_mgm3", N_("CO 95th percentile"), "mg/m³", 1),
            ("o3_8h_p90_ugm3", N_("O₃ 8-hour 90th percentile"), "µg/m³", 0),
            ("gb3095", N_("GB 3095-2012 assessment"), None, None), ("compliant", N_("Meets the standard"), None, None)]
WATER_ROWS = [("year", N_("Year"), None, None), ("water_class", N_("Water quality class"), None, None),
              ("quality_zh", N_("Quality"), None, None), ("target_class", N_("Target class"), None, None),
              ("meets_target", N_("Meets the target"), None, None),
              ("deciding_items", N_("Deciding items"), None, None),
              ("n_samples", N_("Samples"), None, 0), ("do_mgl", N_("Dissolved oxygen"), "mg/L", 2),
              ("codmn_mgl", N_("Permanganate index"), "mg/L", 2), ("cod_mgl", N_("COD"), "mg/L", 1),
              ("nh3n_mgl", N_("Ammonia nitrogen"), "mg/L", 3), ("tp_mgl", N_("Total phosphorus"), "mg/L", 3)]
SOIL_ROWS = [("soil_class", N_("Soil class"), None, None), ("land_use", N_("Land use"), None, None),
             ("ph", N_("pH"), None, 2)] + [
    (f"{m}_mgkg", label, "mg/kg", None) for m, label in (
        ("cd", N_("Cd")), ("hg", N_("Hg")), ("as", N_("As")), ("pb", N_("Pb")), ("cr", N_("Cr")),
        ("cu", N_("Cu")), ("ni", N_("Ni")), ("zn", N_("Zn")))]
NOISE_COLUMNS = [("quarter", N_("Quarter"), None, 0), ("leq_day_dba", N_("Leq day"), "dB(A)", 1),
                 ("leq_night_dba", N_("Leq night"), "dB(A)", 1), ("meets_day", N_("Day meets"), None, None),
                 ("meets_night", N_("Night meets"), None, None)]
ECOLOGY_ROWS = [("ecosystem", N_("Ecosystem"), None, None), ("canopy_cover_pct", N_("Canopy cover"), "%", 1),
                ("species_richness", N_("Species richness"), None, 0), ("biomass_t_ha", N_("Biomass"), "t/ha", 2)]
GAP_ROWS = [("station_type", N_("Station type"), None, None), ("rule_id", N_("Rule"), None, None),
            ("required", N_("Required"), None, 0), ("present", N_("Present"), None, 0),
            ("shortfall", N_("Shortfall"), None, 0), ("note", N_("Note"), None, None)]
PROPOSED_ROWS = [("proposal_id", N_("Proposal"), None, None), ("_type", N_("Station type"), None, None),
                 ("county_name", N_("County"), None, None), ("rule_id", N_("Rule"), None, None),
                 ("reason", N_("Reason"), None, None), ("gain_km2", N_("Area gained"), "km²", 2)]

POPUP_CSS = """
.leaflet-interactive:focus{outline:none}
.ea-popup{font:12px/1.35 "Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif}
.ea-popup h4{margin:0 0 4px;font-size:14px}
.ea-popup table{border-collapse:collapse;margin:2px 0 6px}
.ea-popup th,.ea-popup td{border-bottom:1px solid #ddd;padding:1px 6px 1px 0;text-align:left;vertical-align:top}
.ea-popup td.n{text-align:right}
.ea-popup .note{color:#555;font-size:11px}
.ea-popup img{display:block;width:540px;max-width:80vw;margin-top:4px}
.ea-legend{background:rgba(255,255,255,.93);padding:6px 9px;
 border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);font:12px/1.4 "Noto Sans CJK SC","WenQuanYi Micro Hei",
 "Microsoft YaHei",sans-serif;max-height:calc(100vh - 90px);overflow-y:auto}
.ea-legend b{display:block;margin-top:4px}
.ea-legend i{display:inline-block;width:14px;height:11px;margin-right:5px;vertical-align:-1px;border:1px solid #555}
.ea-legend i.pt{border-radius:50%;width:10px;height:10px}
.ea-title{background:rgba(255,255,255,.93);padding:4px 10px;
 border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);font:bold 15px/1.4 "Noto Sans CJK SC","WenQuanYi Micro Hei",
 "Microsoft YaHei",sans-serif}
"""

CONTROL_JS = """function eaControl(map, position, cls, content) {
    var control = L.control({position: position});
    control.onAdd = function () {
        var div = L.DomUtil.create('div', cls + ' leaflet-control');
        div.innerHTML = content;
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
    };
    control.addTo(map);
}"""

BIND_POPUP = folium.JsCode("""function(feature, layer) {
    var p = feature.properties;
    if (p._popup) { layer.bindPopup(p._popup, {maxWidth: 580, minWidth: 200, maxHeight: 440}); }
    if (p._tooltip) { layer.bindTooltip(p._tooltip, {sticky: true}); }
}""")


def write_webmap(results: ResultsFolder, path: Path, lang: str, tile_url: str | None = None,
                 tile_attribution: str | None = None) -> Path:
    """Write the offline web map of ``results`` to ``path`` (atomically) in ``lang``; returns ``path``.

    A basemap only from ``tile_url``, an XYZ template with ``{z}``, ``{x}``, ``{y}`` (e.g. an intranet
    天地图 service); ``tile_attribution`` is HTML shown in the corner (default: the tile host). The layers are in
    WGS 84 / CGCS2000 longitude-latitude: tiles in GCJ-02 (most commercial Chinese maps) lie a few hundred metres
    off them. The page refers to nothing outside itself but the tile URL (checked before it is written).
    """
    check_language(lang)
    if not isinstance(results, ResultsFolder):
        results = ResultsFolder(results)
    if tile_url is not None and not all(k in tile_url for k in ("{z}", "{x}", "{y}")):
        raise InputError(f"tile URL {tile_url!r} is not a tile template", field="tile_url",
                         expected="an XYZ template such as https://host/{z}/{x}/{y}.png")
    _ = translator(lang, "webmap")
    page = _Page(results, lang, _)
    page.build(tile_url, tile_attribution)
    text = stable_ids(page.map.get_root().render())
    outside = [u for u in external_urls(text) if u != tile_url]
    if outside:  # a folium element brought a CDN link: the page would not work offline
        raise RuntimeError(f"web map refers to resources outside the file: {outside[:3]}")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def grade_colours() -> tuple[str, ...]:
    """Colours of the five grades, best first: the EI grade scheme of the print maps (layers/report_styles.yaml);
    the web map's RSEI grades use the same ramp."""
    from ecoassess.report.styles import colours

    return colours("ei_grade")


def stable_ids(text: str) -> str:
    """folium names every element ``<kind>_<32 random hex digits>``; numbered in order of first appearance instead,
    the same results give the same page (a resumed run is byte-identical to an uninterrupted one)."""
    import re

    numbers: dict[str, str] = {}

    def number(match) -> str:
        return numbers.setdefault(match.group(0), f"{match.group(1)}_{len(numbers) + 1}")

    return re.sub(r"(?<![A-Za-z0-9_])([A-Za-z][A-Za-z0-9_]*?)_[0-9a-f]{32}(?![0-9a-f])", number, text)


class _LinkCollector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def external_urls(text: str) -> list[str]:
    """Every ``src``/``href`` of ``text`` (an HTML page) that is not a data: URI or a fragment, plus any
    ``url(http...)`` in its styles: what a browser would fetch (or link to) outside the file."""
    parser = _LinkCollector()
    parser.feed(text)
    urls = [u for u in parser.urls if not u.startswith(("data:", "#"))]
    urls += re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", text)
    return urls


def _vendored_head() -> str:
    """Leaflet's script and style, inlined; the CSS's images become data: URIs."""
    folder = ASSETS / "leaflet"
    css = (folder / "leaflet.css").read_text(encoding="utf-8")

    def inline(match):
        name = match.group(1)
        file = folder / "images" / name
        if not file.is_file():  # an image the map never shows (no such rule is used)
            return "url(data:,)"
        return "url(data:image/png;base64," + base64.b64encode(file.read_bytes()).decode("ascii") + ")"

    css = re.sub(r"url\(images/([\w.-]+)\)", inline, css)
    js = (folder / "leaflet.js").read_text(encoding="utf-8")
    return f"<style>{css}{POPUP_CSS}</style>\n<script>{js}</script>\n<script>{CONTROL_JS}</script>"


def _is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


class _Page:
    """Builds the folium map layer by layer."""

    def __init__(self, results: ResultsFolder, lang: str, _):
        self.results, self.lang, self._ = results, lang, _
        self.legend: list[tuple[str, list[tuple[str, str, str]]]] = []  # (heading, [(kind, colour, label)])
        self.bounds: list[tuple[float, float, float, float]] = []
        self.chip_bytes = 0
        self.chips_left_out = 0
        self.counties = None  # county polygons (EPSG:4326) by code, for the coverage gaps
        hj = load_yaml(data_path("indices", "hj192_2015.yaml"))
        self.ei_grades = hj["grades"]["classes"]
        self.ei_changes = hj["change_classes"]["classes"] + hj["function_zone_change_classes"]["classes"]
        self.fluctuation = [lvl["zh"] for lvl in hj["fluctuation"]["levels"]]
        self.rsei_grades = load_yaml(data_path("indices", "rsei.yaml"))["grades"]

    # -- formatting -------------------------------------------------------------------------------------------------
    def fmt(self, value, digits=None) -> str:
        """A value as escaped text for a popup: numbers for the language, yes/no translated."""
        if _is_missing(value):
            return ""
        if isinstance(value, (bool,)) or type(value).__name__ == "bool_":
            return self._("yes") if value else self._("no")
        if hasattr(value, "strftime"):
            return html.escape(value.strftime("%Y-%m-%d"))
        if isinstance(value, float) and digits is None and math.isfinite(value) and value:
            value = float(f"{value:.4g}")  # a measured value: four significant digits, as many decimals as it needs
        return html.escape(format_value(value, self.lang, digits))

    def cell(self, col: str, value, digits=None) -> str:
        """``fmt`` except that years and quarters are written as they are (2024, not 2,024)."""
        if col in YEAR_COLUMNS and isinstance(value, (int, float)) and not _is_missing(value) \
                and float(value).is_integer():
            return str(int(value))
        return self.fmt(value, digits)

    def label(self, msgid: str, unit: str | None) -> str:
        text = html.escape(self._(msgid))
        return f"{text} ({html.escape(unit)})" if unit else text

    def rows_table(self, record, rows) -> str:
        """A two-column table of ``rows`` (column, label, unit, digits) from ``record``; empty values skipped."""
        cells = []
        for col, msgid, unit, digits in rows:
            value = record.get(col)
            if _is_missing(value) or value == "":
                continue
            num = isinstance(value, (int, float)) and not isinstance(value, bool)
            cells.append(f"<tr><th>{self.label(msgid, unit)}</th><td{' class=n' if num else ''}>"
                         f"{self.cell(col, value, digits)}</td></tr>")
        return f"<table>{''.join(cells)}</table>" if cells else ""

    def wide_table(self, records: list[dict], rows, heading_col: str) -> str:
        """Rows as lines, records (years) as columns: ``heading_col`` heads each column."""
        if not records:
            return ""
        head = "".join(f"<th class=n>{self.cell(heading_col, r.get(heading_col))}</th>" for r in records)
        lines = [f"<tr><th></th>{head}</tr>"]
        for col, msgid, unit, digits in rows:
            values = [r.get(col) for r in records]
            if all(_is_missing(v) for v in values):
                continue
            lines.append(f"<tr><th>{self.label(msgid, unit)}</th>"
                         + "".join(f"<td class=n>{self.cell(col, v, digits)}</td>" for v in values) + "</tr>")
        return f"<table>{''.join(lines)}</table>"

    def long_table(self, records: list[dict], columns) -> str:
        """Records as lines under a header of ``columns`` (noise measurements per quarter)."""
        head = "".join(f"<th>{self.label(m, u)}</th>" for _, m, u, _ in columns)
        body = "".join("<tr>" + "".join(f"<td class=n>{self.cell(c, r.get(c), d)}</td>" for c, _, _, d in columns)
                       + "</tr>" for r in records)
        return f"<table><tr>{head}</tr>{body}</table>"

    def popup(self, title: str, *parts: str) -> str:
        return f"<div class=ea-popup><h4>{html.escape(str(title))}</h4>{''.join(p for p in parts if p)}</div>"

    def grade_label(self, grades, grade_zh) -> str:
        """A grade (a data value from the standard, Chinese) in the report language."""
        for g in grades:
            if g["zh"] == grade_zh:
                return g["zh"] if self.lang == "zh" else g["en"]
        return "" if _is_missing(grade_zh) else str(grade_zh)

    def change_label(self, value) -> str:
        if _is_missing(value) or self.lang == "zh":
            return value
        for c in self.ei_changes:
            for key in ("zh", "zh_better", "zh_worse"):
                if c.get(key) == value:
                    return c[key.replace("zh", "en")]
        return value

    # -- reading ------------------------------------------------------------------------------------------------------
    def table(self, name: str, needs=(), geometry=False):
        """Table ``name`` (None when the run did not make it), in longitude/latitude when it has geometry;
        a clear error naming the table and column when a needed column is missing."""
        if not self.results.has(name):
            return None
        df = self.results.table(name)
        for col in needs:
            if col not in df.columns:
                raise InputError(f"table {name!r} has no column {col!r}", path=self.results.path / "results.gpkg",
                                 field=f"{name}.{col}", expected="a results folder written by ecoassess run")
        if geometry:
            if "geometry" not in df.columns or getattr(df, "crs", None) is None:
                raise InputError(f"table {name!r} has no georeferenced geometry",
                                 path=self.results.path / "results.gpkg", field=f"{name}.geometry",
                                 expected="polygons or points with a CRS")
            df = df[df.geometry.notna() & ~df.geometry.is_empty].to_crs(4326)
            # 6 decimals of a degree are ~0.1 m: enough for any map, and the page is smaller
            df = df.set_geometry(shapely.set_precision(df.geometry.values, 1e-6))
            if len(df):
                self.bounds.append(tuple(df.total_bounds))
        return df

    # -- layers -------------------------------------------------------------------------------------------------------
    def build(self, tile_url, tile_attribution):
        _ = self._
        self.map = folium.Map(tiles=None, control_scale=False, zoom_start=9, location=[0, 0])
        # no CDN: the map needs only Leaflet, inlined from the package
        self.map.default_js, self.map.default_css = [], []
        root = self.map.get_root()
        root.header.add_child(folium.Element(_vendored_head()), name="vendored_leaflet")
        root.title = _("Ecological status web map")
        if tile_url:
            attribution = tile_attribution or html.escape(re.sub(r"^\w+://([^/]+).*", r"\1", tile_url))
            folium.TileLayer(tiles=tile_url, attr=attribution, name=_("Basemap"), overlay=False,
                             control=True).add_to(self.map)
        for pane, z_index in PANES.items():
            folium.map.CustomPane(pane, z_index=z_index, pointer_events=True).add_to(self.map)
        self.add_ei()
        self.add_rsei()
        self.add_redline_units()
        self.add_patches()
        self.add_stations()
        self.add_gaps()
        self.add_proposed()
        self.add_title_and_legend()  # before the layer list: the title is above it
        folium.LayerControl(collapsed=False, position="topright").add_to(self.map)
        if self.bounds:
            xs0, ys0, xs1, ys1 = zip(*self.bounds)
            self.map.fit_bounds([[min(ys0), min(xs0)], [max(ys1), max(xs1)]], padding=(10, 10))

    def geojson(self, gdf, name: str, pane: str, show: bool = True, point_radius: float | None = None):
        """``gdf`` (with ``_popup``, ``_tooltip`` and ``_style`` columns) as one layer of the map, drawn in
        ``pane`` (one of ``PANES``: points above red lines above zones, whichever layer is switched on last)."""
        gdf = gdf[["_popup", "_tooltip", "_style", "geometry"]].rename(columns={"_style": "style"})
        marker = None
        if point_radius:
            marker = folium.CircleMarker(radius=point_radius)
            marker.options["pane"] = POINTS  # folium's marker options drop an unknown 'pane'
        folium.GeoJson(gdf.__geo_interface__, name=html.escape(name), show=show, marker=marker,
                       on_each_feature=BIND_POPUP, smooth_factor=0.5, pane=pane).add_to(self.map)

    def add_ei(self):
        _ = self._
        ei = self.table("county_ei", needs=("code", "year", "name", "ei", "grade"), geometry=True)
        if ei is None or not len(ei):
            return
        ei = ei[(ei["code"].astype(str) != WHOLE_AREA_CODE)
                & ~ei.get("is_whole_area", pd.Series(False, index=ei.index)).fillna(False).astype(bool)]
        change = self.table("county_ei_change", needs=("code",))
        latest = ei.sort_values("year").groupby("code", sort=False).tail(1).sort_values("code")
        self.counties = latest[["code", "name", "geometry"]].copy()
        colours = {g["zh"]: c for g, c in zip(self.ei_grades, grade_colours())}
        popups, tips, styles = [], [], []
        for _i, row in latest.iterrows():
            years = ei[ei["code"] == row["code"]].sort_values("year")
            records = []
            for rec in years.drop(columns="geometry").to_dict("records"):
                rec["grade"] = self.grade_label(self.ei_grades, rec.get("grade"))
                records.append(rec)
            parts = [self.wide_table(records, EI_ROWS, "year")]
            if change is not None:
                for rec in change[change["code"].astype(str) == str(row["code"])].to_dict("records"):
                    for col in ("change_class", "function_zone_change_class"):
                        rec[col] = self.change_label(rec.get(col))
                    level = rec.get("fluctuation_level")
                    if self.lang != "zh" and level in self.fluctuation[:len(FLUCTUATION_EN)]:
                        rec["fluctuation_level"] = self._(FLUCTUATION_EN[self.fluctuation.index(level)])
                    parts.append(self.rows_table(rec, EI_CHANGE_ROWS))
            title = f"{row['name']} ({row['code']})"
            popups.append(self.popup(title, *parts))
            tips.append(html.escape(f"{row['name']}: EI {format_value(row['ei'], self.lang, 1)}"))
            styles.append({"fillColor": colours.get(row["grade"], NO_DATA_COLOUR), "color": "#404040",
                           "weight": 1.5, "fillOpacity": 0.75})
        latest = latest.assign(_popup=popups, _tooltip=tips, _style=styles)
        year = int(latest["year"].max())
        self.geojson(latest, _("Counties by EI grade ({year})").format(year=year), ZONES)
        self.legend.append((_("EI grade (HJ 192-2015)"), [
            ("box", c, f"{self.grade_label(self.ei_grades, g['zh'])} ({self.range_text(g)})")
            for g, c in zip(self.ei_grades, grade_colours())]))

    def range_text(self, g) -> str:
        lo, hi = g.get("lower"), g.get("upper")
        if lo is None:
            return f"< {format_value(hi, self.lang)}"
        if hi is None:
            return f"≥ {format_value(lo, self.lang)}"
        return f"{format_value(lo, self.lang)}–{format_value(hi, self.lang)}"

    def add_legend(self, heading: str, entry: tuple[str, str, str]):
        """Adds ``entry`` under ``heading`` (a new heading at the end when there is none yet)."""
        for h, entries in self.legend:
            if h == heading:
                entries.append(entry)
                return
        self.legend.append((heading, [entry]))

    def rsei_grade(self, value):
        if _is_missing(value):
            return None
        for g in self.rsei_grades:
            if g["lower"] <= value < g["upper"] or (g is self.rsei_grades[-1] and value == g["upper"]):
                return g
        return None

    def add_rsei(self):
        _ = self._
        rsei = self.table("county_rsei", needs=("code", "year", "name", "rsei_mean"), geometry=True)
        if rsei is None or not len(rsei):
            return
        rsei = rsei[rsei["code"].astype(str) != WHOLE_AREA_CODE]
        latest = rsei.sort_values("year").groupby("code", sort=False).tail(1).sort_values("code")
        colours = {g["code"]: c for g, c in zip(self.rsei_grades, grade_colours()[::-1])}  # rsei.yaml: worst first
        popups, tips, styles = [], [], []
        for _i, row in latest.iterrows():
            records = []
            for rec in rsei[rsei["code"] == row["code"]].sort_values("year").drop(columns="geometry").to_dict(
                    "records"):
                g = self.rsei_grade(rec.get("rsei_mean"))
                rec["_grade"] = "" if g is None else g["zh"] if self.lang == "zh" else g["en"]
                records.append(rec)
            popups.append(self.popup(f"{row['name']} ({row['code']})", self.wide_table(records, RSEI_ROWS, "year")))
            tips.append(html.escape(f"{row['name']}: RSEI {format_value(row['rsei_mean'], self.lang, 3)}"))
            g = self.rsei_grade(row["rsei_mean"])
            styles.append({"fillColor": NO_DATA_COLOUR if g is None else colours[g["code"]], "color": "#404040",
                           "weight": 1.5, "fillOpacity": 0.75})
        latest = latest.assign(_popup=popups, _tooltip=tips, _style=styles)
        year = int(latest["year"].max())
        self.geojson(latest, _("RSEI by county ({year})").format(year=year), ZONES, show=False)
        self.legend.append((_("RSEI grade"), [
            ("box", colours[g["code"]], f"{g['zh'] if self.lang == 'zh' else g['en']} "
                                        f"({format_value(g['lower'], self.lang, 1)}–"
                                        f"{format_value(g['upper'], self.lang, 1)})")
            for g in self.rsei_grades[::-1]]))

    def add_redline_units(self):
        _ = self._
        units = self.table("redline_rsei", needs=("code", "name"), geometry=True)
        if units is None or not len(units):
            return
        if "year" in units.columns:
            units = units.sort_values("year").groupby("code", sort=False).tail(1).sort_values("code")
        summary = self.table("redline_unit_summary", needs=("unit_id",))
        if summary is not None:
            units = units.merge(summary.drop(columns=[c for c in ("area_m2",) if c in summary.columns]),
                                left_on="code", right_on="unit_id", how="left")
        popups = [self.popup(r["name"], self.rows_table(r, UNIT_ROWS)) for r in units.to_dict("records")]
        units = units.assign(_popup=popups, _tooltip=[html.escape(str(n)) for n in units["name"]],
                             _style=[{"color": REDLINE_COLOUR, "weight": 2, "dashArray": "6 4",
                                      "fillColor": REDLINE_COLOUR, "fillOpacity": 0.08}] * len(units))
        self.geojson(units, _("Ecological conservation red-line units"), REDLINES)
        self.add_legend(_("Red lines"), ("line", REDLINE_COLOUR, _("Red-line unit")))

    def chip_uri(self, patch_id) -> str | None:
        """The patch's before/after chip as a data: URI, at most ``CHIP_MAX_PX`` wide and ``CHIP_MAX_BYTES``;
        None when there is none or the page's chip budget is spent."""
        if _is_missing(patch_id) or not re.fullmatch(r"[\w.-]+", str(patch_id)):
            return None
        file = self.results.file(f"redline/chips/{patch_id}.png")
        if file is None:
            return None
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(file) as im:
                im.load()
                im = im.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            log.warning("%s: unreadable chip image, left out of the web map (%s)", file, exc)
            return None
        if max(im.size) > CHIP_MAX_PX:
            scale = CHIP_MAX_PX / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
        # JPEG: the chips are imagery; ~55 kB at 720 px against ~150 kB as PNG, and ten times faster to encode
        for quality in (85, 70):
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=quality)
            if buf.tell() <= CHIP_MAX_BYTES:
                break
        data, mime = buf.getvalue(), "image/jpeg"
        if len(data) > CHIP_MAX_BYTES or self.chip_bytes + len(data) > CHIPS_BUDGET_BYTES:
            if not self.chips_left_out:
                log.warning("web map: chips from %s on are left out (the page holds at most %d MB of them); "
                            "the red-line folder has them all", patch_id, CHIPS_BUDGET_BYTES // 1_000_000)
            self.chips_left_out += 1
            return None
        self.chip_bytes += len(data)
        return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")

    def add_patches(self):
        _ = self._
        patches = self.table("redline_patches", needs=("patch_id",), geometry=True)
        if patches is None or not len(patches):
            return
        popups = []
        alt, no_chip = html.escape(_("Before and after")), html.escape(_("No before/after image in this page"))
        for rec in patches.drop(columns="geometry").to_dict("records"):
            uri = self.chip_uri(rec["patch_id"])
            chip = f"<img src=\"{uri}\" alt=\"{alt}\">" if uri else f"<div class=note>{no_chip}</div>"
            popups.append(self.popup(rec["patch_id"], self.rows_table(rec, PATCH_ROWS), chip))
        # a patch is a few pixels at county scale: its outline is drawn thick so that it stays visible and clickable
        patches = patches.assign(_popup=popups, _tooltip=[html.escape(str(p)) for p in patches["patch_id"]],
                                 _style=[{"color": PATCH_COLOUR, "weight": 4, "fillColor": PATCH_COLOUR,
                                          "fillOpacity": 0.6}] * len(patches))
        self.geojson(patches, _("Human-activity patches in the red lines"), REDLINES)
        self.add_legend(_("Red lines"), ("box", PATCH_COLOUR, _("Patch")))

    def station_details(self):
        """{station_id: (popup html of its values, exceeds: bool)} from the tables of each station type."""
        details: dict[str, list[str]] = {}
        exceeds: dict[str, bool] = {}

        def add(sid, text, bad=False):
            details.setdefault(str(sid), []).append(text)
            exceeds[str(sid)] = exceeds.get(str(sid), False) or bool(bad)

        air = self.table("air_station_annual", needs=("station_id",))
        if air is not None:
            for rec in air.drop(columns="geometry", errors="ignore").to_dict("records"):
                add(rec["station_id"], self.rows_table(rec, AIR_ROWS), rec.get("compliant") is False
                    or rec.get("compliant") == 0)
        for name in ("water_sections", "drinking_water_sources"):
            water = self.table(name, needs=("station_id",))
            if water is not None:
                for rec in water.drop(columns="geometry", errors="ignore").to_dict("records"):
                    add(rec["station_id"], self.rows_table(rec, WATER_ROWS),
                        not _is_missing(rec.get("meets_target")) and not rec.get("meets_target"))
        soil = self.table("soil_points", needs=("station_id",))
        if soil is not None:
            for rec in soil.drop(columns="geometry", errors="ignore").to_dict("records"):
                statuses = [rec.get(c) for c in rec if c.endswith("_status")]
                add(rec["station_id"], self.rows_table(rec, SOIL_ROWS),
                    any(s in ("between", "above_control") for s in statuses))
        noise = self.table("noise_measurements", needs=("station_id",))
        if noise is not None:
            noise = noise.drop(columns="geometry", errors="ignore")
            for sid, group in noise.groupby("station_id", sort=False):
                recs = group.sort_values([c for c in ("time", "quarter") if c in group.columns]).to_dict("records")
                bad = any(r.get(c) is False or r.get(c) == 0 for r in recs for c in ("meets_day", "meets_night"))
                add(sid, self.long_table(recs, NOISE_COLUMNS), bad)
        plots = self.table("ecology_plots", needs=("station_id",))
        if plots is not None:
            for rec in plots.drop(columns="geometry", errors="ignore").to_dict("records"):
                add(rec["station_id"], self.rows_table(rec, ECOLOGY_ROWS))
        return details, exceeds

    def add_stations(self):
        _ = self._
        stations = self.table("stations", needs=("station_id", "name", "station_type"), geometry=True)
        if stations is None or not len(stations):
            return
        stations = stations[stations.geometry.geom_type == "Point"]
        details, exceeds = self.station_details()
        entries = []
        types = list(STATION_TYPES) + sorted(set(stations["station_type"].astype(str)) - set(STATION_TYPES))
        for kind in types:
            group = stations[stations["station_type"].astype(str) == kind]
            if not len(group):
                continue
            colour = STATION_COLOURS.get(kind, "#666666")
            popups, styles = [], []
            for rec in group.drop(columns="geometry").to_dict("records"):
                sid = str(rec["station_id"])
                popups.append(self.popup(rec["name"], self.rows_table(rec, STATION_ROWS), *details.get(sid, [])))
                bad = exceeds.get(sid, False)
                styles.append({"color": EXCEEDS_COLOUR if bad else "#ffffff", "weight": 3 if bad else 1.5,
                               "fill": True, "fillColor": colour, "fillOpacity": 0.95, "radius": 7})
            group = group.assign(_popup=popups, _tooltip=[html.escape(str(n)) for n in group["name"]],
                                 _style=styles)
            label = _(STATION_TYPES[kind]) if kind in STATION_TYPES else kind
            self.geojson(group, label, POINTS, point_radius=7)
            entries.append(("pt", colour, label))
        entries.append(("ring", EXCEEDS_COLOUR, _("Exceeds a limit or misses its target")))
        self.legend.append((_("Monitoring stations"), entries))

    def add_gaps(self):
        _ = self._
        coverage = self.table("network_coverage", needs=("county_code", "station_type", "shortfall"))
        exits = self.table("network_river_exits", needs=("exit_id",), geometry=True)
        parts = []
        if coverage is not None and self.counties is not None:
            shortfall = _("Network shortfall")
            short = coverage[pd.to_numeric(coverage["shortfall"], errors="coerce").fillna(0) > 0]
            for code, group in short.groupby("county_code", sort=True):
                county = self.counties[self.counties["code"].astype(str) == str(code)]
                if not len(county):
                    continue
                recs = group.to_dict("records")
                for r in recs:
                    r["station_type"] = _(STATION_TYPES.get(r["station_type"], r["station_type"]))
                text = self.popup(f"{county['name'].iloc[0]}: {shortfall}",
                                  *[self.rows_table(r, GAP_ROWS) for r in recs])
                parts.append(county.assign(_popup=text, _tooltip=html.escape(
                    f"{county['name'].iloc[0]}: {shortfall}"), _style=[{
                        "color": GAP_COLOUR, "weight": 4, "dashArray": "2 6", "fill": False}]))
        if exits is not None and "served" in exits.columns:
            unserved = exits[~exits["served"].fillna(False).astype(bool)]
            if len(unserved):
                title = _("River exit without a section")
                rows = [("exit_id", N_("River exit"), None, None), ("river", N_("River"), None, None),
                        ("county_name", N_("County"), None, None)]
                parts.append(unserved.assign(
                    _popup=[self.popup(title, self.rows_table(r, rows)) for r in
                            unserved.drop(columns="geometry").to_dict("records")],
                    _tooltip=[html.escape(f"{title}: {r}") for r in unserved.get("river", unserved["exit_id"])],
                    _style=[{"color": GAP_COLOUR, "weight": 2, "fill": True, "fillColor": "#ffffff",
                             "fillOpacity": 1, "radius": 5}] * len(unserved)))
        if not parts:
            return
        gaps = pd.concat(parts, ignore_index=True)
        import geopandas as gpd

        # counties as outlines only: they hide nothing and catch clicks only on their edge
        self.geojson(gpd.GeoDataFrame(gaps, geometry="geometry", crs=4326), _("Coverage gaps"), ZONES,
                     point_radius=5)
        self.legend.append((_("Coverage gaps"), [("dash", GAP_COLOUR, _("County with a network shortfall")),
                                                 ("ring", GAP_COLOUR, _("River exit without a section"))]))

    def add_proposed(self):
        _ = self._
        sites = self.table("proposed_sites", needs=("proposal_id",), geometry=True)
        if sites is None or not len(sites):
            return
        recs = sites.drop(columns="geometry").to_dict("records")
        proposed = _("Proposed site")
        for r in recs:
            kind = r.get("station_type")
            r["_type"] = _(STATION_TYPES[kind]) if kind in STATION_TYPES else kind
        styles = [{"color": PROPOSED_COLOUR, "weight": 2.5, "dashArray": "3 3",
                   "fill": True, "fillColor": STATION_COLOURS.get(r.get("station_type"), "#ffffff"), "fillOpacity": 0.35,
                   "radius": 9} for r in recs]
        sites = sites.assign(_popup=[self.popup(_("Proposed site"), self.rows_table(r, PROPOSED_ROWS)) for r in recs],
                             _tooltip=[html.escape(f"{proposed} {r['proposal_id']}") for r in recs],
                             _style=styles)
        self.geojson(sites, _("Proposed sites"), POINTS, point_radius=9)
        self.legend.append((_("Proposed sites"), [("proposed", PROPOSED_COLOUR, _("Proposed site"))]))

    def add_title_and_legend(self):
        _ = self._
        given = (self.results.config.get("given") or {}) if isinstance(self.results.config, dict) else {}
        area = given.get("name")
        title = _("Ecological status web map") + (f" · {area}" if area else "")
        items = []
        for heading, entries in self.legend:
            items.append(f"<b>{html.escape(heading)}</b>")
            for kind, colour, text in entries:
                style = {"box": f"background:{colour}", "pt": f"background:{colour}",
                         "line": f"border:0;border-top:2px dashed {colour};height:0",
                         "dash": f"border:2px dotted {colour};background:#fff",
                         "ring": f"border:2px solid {colour};background:#fff",
                         "proposed": f"border:2px dashed {colour};background:#fff"}[kind]
                cls = " class=pt" if kind in ("pt", "ring", "proposed") else ""
                items.append(f"<div><i{cls} style=\"{style}\"></i>{html.escape(text)}</div>")
        source = _("Data: ecoassess results, {date}").format(
            date=str((self.results.manifest.get("run") or {}).get("ended_utc", ""))[:10])
        crs_note = _("Coordinates: longitude/latitude, WGS 84 (CGCS2000 within centimetres)")
        items.append(f"<div class=note style=\"margin-top:5px;color:#555\">{html.escape(source)}<br>"
                     f"{html.escape(crs_note)}</div>")
        name = self.map.get_name()
        # title and legend are Leaflet controls, so that they stack with the zoom buttons, the scale bar and the
        # layer list instead of covering them; Leaflet's attribution prefix carries a flag and a link to
        # leafletjs.com: plain text on an official map
        script = (f"{name}.attributionControl.setPrefix('Leaflet');\n"
                  f"L.control.scale({{imperial: false, maxWidth: 150}}).addTo({name});\n"
                  f"eaControl({name}, 'topright', 'ea-title', {_js_string(html.escape(title))});\n"
                  f"eaControl({name}, 'bottomleft', 'ea-legend', {_js_string(''.join(items))});")
        element = folium.MacroElement()
        element._template = Template("{% macro script(this, kwargs) %}" + script.replace("{", "{{ '{' }}")
                                     + "{% endmacro %}")
        self.map.add_child(element)


def _js_string(text: str) -> str:
    """``text`` as a JavaScript string literal that is safe inside a <script> element."""
    import json

    return json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


__all__ = ["write_webmap", "external_urls", "LEAFLET_VERSION"]
