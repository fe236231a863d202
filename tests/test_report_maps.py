"""The report's print maps (issue #22 part 1): every map type drawn from a small hand-built results folder, at
300 dpi, without missing glyphs, readable in gray, with NDVI classes that compare across years, in both
languages from the catalog."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from ecoassess.errors import InputError
from ecoassess.grid import china_albers_crs
from ecoassess.report.i18n import translator, untranslated

REPORT = Path(__file__).resolve().parent.parent / "ecoassess" / "report"
ALBERS = china_albers_crs().to_wkt()
RES_M = 100.0


# -- a hand-built results folder ------------------------------------------------------------------------------------

def _counties():
    """Two 10 km × 10 km counties side by side (west: 519901 青岗县, east: 519902 柏溪县) near 104.6°E 30.1°N."""
    from pyproj import Transformer

    x0, y0 = Transformer.from_crs("EPSG:4490", ALBERS, always_xy=True).transform(104.6, 30.1)
    x0, y0 = round(x0, -3), round(y0, -3)
    geoms = [box(x0, y0, x0 + 10_000, y0 + 10_000), box(x0 + 10_000, y0, x0 + 20_000, y0 + 10_000)]
    return gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["青岗县", "柏溪县"]}, geometry=geoms, crs=ALBERS)


def _write_tif(path: Path, data: np.ndarray, bounds, nodata=None, crs=ALBERS, overviews=False):
    import rasterio
    from rasterio.transform import from_bounds

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype=data.dtype, crs=crs,
                       transform=from_bounds(*bounds, w, h), nodata=nodata) as dst:
        dst.write(data, 1)
        if overviews:
            from rasterio.enums import Resampling

            dst.build_overviews([2, 4, 8], Resampling.average)


def _halves(shape, west, east, dtype="float32"):
    a = np.empty(shape, dtype=dtype)
    a[:, : shape[1] // 2] = west
    a[:, shape[1] // 2:] = east
    return a


def build_results(root: Path, *, everything: bool = True) -> Path:
    """A results folder: results.gpkg with the county, red-line and network tables, a few layers, a manifest."""
    import pyogrio

    root.mkdir(parents=True, exist_ok=True)
    counties = _counties()
    xmin, ymin, xmax, ymax = counties.total_bounds
    gpkg = root / "results.gpkg"

    def write(frame, layer):
        pyogrio.write_dataframe(frame, gpkg, layer=layer, driver="GPKG")

    ei = pd.concat([counties.assign(year=2023, ei=[62.0, 48.0], grade=["良", "一般"], is_whole_area=False),
                    counties.assign(year=2024, ei=[76.0, 30.0], grade=["优", "较差"], is_whole_area=False)])
    whole = gpd.GeoDataFrame({"code": ["000000"], "name": ["全区"], "year": [2024], "ei": [55.0], "grade": ["良"],
                              "is_whole_area": [True]}, geometry=[counties.union_all()], crs=ALBERS)
    write(gpd.GeoDataFrame(pd.concat([ei, whole], ignore_index=True), crs=ALBERS), "county_ei")
    if not everything:
        (root / "manifest.json").write_text(json.dumps({"ecoassess_version": "test"}), encoding="utf-8")
        return root
    write(pd.DataFrame({"code": ["519901", "519902"], "years": ["2023-2024"] * 2, "name": ["青岗县", "柏溪县"],
                        "delta_ei": [14.0, -18.0], "change_class": ["显著变好", "显著变差"]}), "county_ei_change")
    # red-line units and two patches (one new, one expanded)
    unit = box(xmin + 2_000, ymin + 2_000, xmin + 8_000, ymin + 8_000)
    write(gpd.GeoDataFrame({"code": ["HX01"], "name": ["青岗山红线"], "year": [2024]}, geometry=[unit], crs=ALBERS),
          "redline_rsei")
    write(gpd.GeoDataFrame({"patch_id": ["P1", "P2"], "change_type": ["new", "expanded"],
                            "location": ["inside", "buffer"]},
                           geometry=[box(xmin + 3_000, ymin + 3_000, xmin + 3_300, ymin + 3_300),
                                     box(xmin + 6_000, ymin + 6_000, xmin + 6_200, ymin + 6_400)], crs=ALBERS),
          "redline_patches")
    # stations in lon/lat, as the network stage writes them
    pts = gpd.GeoSeries([Point(xmin + 2_500, ymin + 5_000), Point(xmin + 12_500, ymin + 5_000),
                         Point(xmin + 15_000, ymin + 2_500)], crs=ALBERS).to_crs("EPSG:4326")
    write(gpd.GeoDataFrame({"station_id": ["A01", "W01", "W02"], "station_type": ["air", "surface_water",
                                                                                 "surface_water"]},
                           geometry=list(pts), crs="EPSG:4326"), "stations")
    write(gpd.GeoDataFrame({"station_id": ["A01"], "year": [2024], "compliant": [False]}, geometry=[pts[0]],
                           crs="EPSG:4326"), "air_station_annual")
    write(gpd.GeoDataFrame({"station_id": ["W01", "W02"], "year": [2024] * 2, "water_class": ["III", "IV"]},
                           geometry=[pts[1], pts[2]], crs="EPSG:4326"), "water_sections")
    write(pd.DataFrame({"county_code": ["519901", "519902", "519902"], "station_type": ["air"] * 3,
                        "rule_id": ["a", "a", "b"], "shortfall": [0.0, 1.0, 2.0]}), "network_coverage")
    write(gpd.GeoDataFrame({"proposal_id": ["P-air-01"], "station_type": ["air"]},
                           geometry=[pts[1]], crs="EPSG:4326"), "proposed_sites")
    # the land-cover accounts the run made (a land-cover map is drawn for the years it accounted)
    write(pd.DataFrame({"zone_set": ["study_area"], "zone_id": ["all"], "year": [2024], "class_code": [11],
                        "area_km2": [1.0]}), "landcover_class_areas")
    # layers at 100 m: NDVI with different ranges in the two years, FVC, RSEI and its grades
    shape = (int((ymax - ymin) / RES_M), int((xmax - xmin) / RES_M))
    bounds = (xmin, ymin, xmax, ymax)
    layers = root / "layers"
    _write_tif(layers / "ndvi_2023.tif", _halves(shape, 0.45, 0.15), bounds, nodata=float("nan"))
    _write_tif(layers / "ndvi_2024.tif", _halves(shape, 0.45, 0.85), bounds, nodata=float("nan"))
    _write_tif(layers / "fvc_2024.tif", _halves(shape, 0.2, 0.8), bounds, nodata=float("nan"))
    _write_tif(layers / "rsei_2024.tif", _halves(shape, 0.35, 0.95), bounds, nodata=float("nan"))
    _write_tif(layers / "rsei_grade_2024.tif", _halves(shape, 2, 5, "uint8"), bounds, nodata=0)
    # land cover (CAS LUCC codes) larger than the study area, outside the results folder as in a real config
    lc = _halves((shape[0] + 20, shape[1] + 20), 21, 51, "uint8")
    _write_tif(root.parent / "inputs" / "lucc_2024.tif", lc,
               (xmin - 1_000, ymin - 1_000, xmax + 1_000, ymax + 1_000), nodata=0)
    manifest = {"ecoassess_version": "test", "run": {"ended_utc": "2026-03-04T05:06:07Z"},
                "config": {"given": {"name": "测试区", "land_cover": {"2024": {
                    "path": str(root.parent / "inputs" / "lucc_2024.tif"), "legend": "cas_lucc"}}}},
                "extra": {"redline": {"before_year": 2023, "after_year": 2024}}}
    (root / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return root


def _draw(results_dir, out_dir, lang):
    from ecoassess.report.figures import draw_report_maps
    from ecoassess.report.results import ResultsFolder

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Glyph.*missing", category=UserWarning)
        return draw_report_maps(ResultsFolder(results_dir), out_dir, lang)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """The zh maps of the hand-built folder, drawn once for the module (missing glyphs are errors)."""
    root = tmp_path_factory.mktemp("report_maps")
    results = build_results(root / "results")
    figures = _draw(results, root / "figures", "zh")
    return results, {f.id: f for f in figures}


EXPECTED = ["ei_grade_2023", "ei_grade_2024", "ei_change_2023_2024", "rsei_2024", "rsei_grade_2024", "ndvi_2023",
            "ndvi_2024", "fvc_2024", "landcover_2024", "redline_patches_2024", "stations", "station_status_2024",
            "network_gaps"]


def test_every_map_type_is_drawn_in_report_order_as_png_and_svg(drawn):
    _, figures = drawn
    assert list(figures) == EXPECTED
    for fig in figures.values():
        assert fig.png.suffix == ".png" and fig.png.stat().st_size > 10_000
        assert fig.pdf is None
        assert fig.svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_png_is_300_dpi_at_the_styled_size(drawn):
    from PIL import Image

    for fig in drawn[1].values():
        with Image.open(fig.png) as im:
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
            assert im.size == (2400, 2100)  # 8 in × 7 in (report_styles.yaml figure) at 300 dpi


def test_chinese_text_is_kept_as_text_in_svg_and_grades_keep_their_standard_names(drawn):
    figures = drawn[1]
    svg = figures["ei_grade_2024"].svg.read_text(encoding="utf-8")
    # caption = title; the legend carries HJ 192 class names with their limits
    assert "2024年各县生态环境状况指数（EI）等级" in svg
    for label in ("优 (≥ 75)", "良 (55–75)", "一般 (35–55)", "较差 (20–35)", "差 (&lt; 20)"):
        assert label in svg
    assert "全区" not in svg  # the whole-area row is no county
    assert "制图日期：2026-03-04" in svg and "测试区" in svg and "坐标系：" in svg and "千米" in svg
    change = figures["ei_change_2023_2024"].svg.read_text(encoding="utf-8")
    assert "显著变好 (ΔEI ≥ 8)" in change and "+14.00" in change and "−18.00" in change


def test_water_sections_carry_their_class_beside_the_symbol(drawn):
    # the GB 3838 colours are not ordered in gray (report_styles.yaml: labelled): the class is written
    svg = drawn[1]["station_status_2024"].svg.read_text(encoding="utf-8")
    assert svg.count("Ⅲ") == 2 and svg.count("Ⅳ") == 2   # once in the legend, once beside the section


def test_red_line_patches_by_change_type_and_buffer_zone(drawn):
    svg = drawn[1]["redline_patches_2024"].svg.read_text(encoding="utf-8")
    assert "新增图斑 (1)" in svg and "扩大图斑 (1)" in svg and "减少图斑" not in svg
    assert "空心符号：位于缓冲区" in svg   # (its count wraps onto the next line)
    assert "2023–2024年生态保护红线单元及人类活动图斑" in svg


def _pixels_of(png, colour: str) -> int:
    from PIL import Image

    rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    with Image.open(png) as im:
        a = np.asarray(im.convert("RGB"))
    return int(np.all(a == rgb, axis=-1).sum())


def test_ndvi_classes_are_fixed_so_that_two_years_compare(drawn):
    # NDVI 0.45 is in the class [0.4, 0.5) of report_styles.yaml (third colour #addd8e) in both years although
    # 2023 ranges over 0.15–0.45 and 2024 over 0.45–0.85; a stretch between each year's extremes would paint it
    # dark in 2023 and light in 2024. A 10 km county at this scale is ~500 × 500 px; a legend swatch ~7 000 px.
    figures = drawn[1]
    p23, p24 = figures["ndvi_2023"].png, figures["ndvi_2024"].png
    assert _pixels_of(p23, "#addd8e") > 100_000 and _pixels_of(p24, "#addd8e") > 100_000
    assert _pixels_of(p23, "#ffffcc") > 100_000 and _pixels_of(p24, "#ffffcc") < 20_000   # 0.15: < 0.2
    assert _pixels_of(p24, "#005a32") > 100_000 and _pixels_of(p23, "#005a32") < 20_000   # 0.85: ≥ 0.8


def test_land_cover_is_drawn_in_the_legend_colours_inside_the_study_area_only(drawn):
    # codes 21 (有林地 #1f7a1f) and 51 (城镇用地 #e31a1c) of layers/cas_lucc.yaml; the raster is 1 km larger than
    # the counties all round, the margin is not drawn
    png = drawn[1]["landcover_2024"].png
    forest, urban = _pixels_of(png, "#1f7a1f"), _pixels_of(png, "#e31a1c")
    assert forest > 100_000 and urban > 100_000
    assert abs(forest - urban) / max(forest, urban) < 0.15   # two equal halves
    svg = drawn[1]["landcover_2024"].svg.read_text(encoding="utf-8")
    assert "有林地" in svg and "城镇用地" in svg and "水田" not in svg  # only the classes present


def test_zh_and_en_captions_come_from_the_catalog(drawn, tmp_path):
    results, zh = drawn
    from ecoassess.report import figures as F
    from ecoassess.report.results import ResultsFolder

    r = ResultsFolder(results)  # only the EI maps in English (drawing all would double the module's time)
    ctx = F._Ctx(r, tmp_path, "en", translator("en", "maps"), F._counties(r), F._source(r, "en"), F._run_date(r))
    old = F.FORMATS
    F.FORMATS = ("png", "svg")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Glyph.*missing", category=UserWarning)
            en = {f.id: f for f in F._ei_grade_maps(ctx)}
    finally:
        F.FORMATS = old
    msgid = "Ecological index (EI) grade by county, {year}"
    assert en["ei_grade_2024"].caption == "Ecological index (EI) grade by county, 2024"
    assert zh["ei_grade_2024"].caption == translator("zh", "maps")(msgid).format(year=2024)
    assert zh["ei_grade_2024"].caption != en["ei_grade_2024"].caption
    svg = en["ei_grade_2024"].svg.read_text(encoding="utf-8")
    assert "excellent (≥ 75)" in svg and "Coordinate system: " in svg and "km" in svg and "优" not in svg


def test_every_message_of_the_maps_is_translated():
    assert untranslated("zh", "maps", [REPORT / "maps.py", REPORT / "figures.py"]) == []


# -- styles: gray print ---------------------------------------------------------------------------------------------

def test_relative_luminance_by_hand():
    from ecoassess.report.styles import relative_luminance

    assert relative_luminance("#ffffff") == pytest.approx(1.0)
    assert relative_luminance("#000000") == 0.0
    # #808080: 128/255 = 0.50196; ((0.50196 + 0.055) / 1.055) ** 2.4 = 0.21586 on every channel
    assert relative_luminance("#808080") == pytest.approx(0.21586, abs=1e-5)
    # pure red: only the red weight 0.2126
    assert relative_luminance("#ff0000") == pytest.approx(0.2126)


def test_every_scheme_stays_apart_in_gray():
    from ecoassess.report.styles import load_styles, relative_luminance, scheme, scheme_names

    step = float(load_styles()["min_luminance_step"])
    assert step >= 0.05
    for name in scheme_names():
        s = scheme(name)
        assert s.source, f"{name}: no source"
        if s.labelled:
            continue  # the class is written beside each symbol (see the station-status test)
        for a, b in itertools.combinations(s.classes, 2):
            apart = abs(relative_luminance(a.colour) - relative_luminance(b.colour)) >= step
            assert apart or a.hatch != b.hatch or a.marker != b.marker, f"{name}: {a.key} and {b.key} look alike"
        if s.ordinal:
            plain = [relative_luminance(c.colour) for c in s.classes if not c.hatch]
            diffs = np.diff(plain)
            assert (diffs > 0).all() or (diffs < 0).all(), f"{name}: gray values not in class order {plain}"
            hatched = [c.hatch for c in s.classes if c.hatch]
            assert len(set(hatched)) == len(hatched), f"{name}: two hatched classes share a pattern"
        for c in s.classes:  # hatch lines must show on their fill: white lines on a dark fill
            if c.hatch:
                lines = c.hatch_colour or load_styles()["lines"]["colours"]["zone"]
                assert abs(relative_luminance(lines) - relative_luminance(c.colour)) >= 0.1, f"{name}: {c.key}"


def test_air_status_colours_are_the_hj633_category_colours():
    from ecoassess.report.styles import scheme

    by_key = scheme("air_status").by_key()
    assert by_key["compliant"].colour == "#00e400"   # HJ 633 level 1 (优): RGB 0, 228, 0
    assert by_key["exceeds"].colour == "#ff0000"     # HJ 633 level 4 (中度污染): RGB 255, 0, 0


def test_fixed_breaks_classify_by_hand():
    from ecoassess.report.styles import bin_index, scheme

    b = scheme("ndvi").breaks
    assert list(bin_index([-0.3, 0.2, 0.45, 0.8, 1.0, np.nan, 1.2], b)) == [0, 1, 2, 6, 6, -1, -1]
    assert list(bin_index([0.29, 0.30, 0.75, 1.0], scheme("fvc").breaks)) == [0, 1, 4, 4]  # SL 190: 30/45/60/75 %


# -- raster reading is bounded --------------------------------------------------------------------------------------

def test_a_large_raster_is_read_at_figure_size(tmp_path):
    from ecoassess.report.figures import read_raster_for_map

    # 2000 × 4000 cells: west half 1.0, east half 3.0; read no finer than 500 across → 8 × 8 blocks averaged
    data = _halves((2000, 4000), 1.0, 3.0)
    path = tmp_path / "big.tif"
    _write_tif(path, data, (0, 0, 400_000, 200_000), overviews=True)
    arr, extent, _crs = read_raster_for_map(path, 500, categorical=False)
    assert arr.shape == (250, 500)
    assert extent == (0, 400_000, 0, 200_000)
    assert np.allclose(arr[:, :250], 1.0) and np.allclose(arr[:, 250:], 3.0)


def test_maps_without_results_are_skipped_without_a_word(tmp_path):
    figures = _draw(build_results(tmp_path / "results", everything=False), tmp_path / "out", "zh")
    assert [f.id for f in figures] == ["ei_grade_2023", "ei_grade_2024"]


def test_an_unreadable_layer_is_named(tmp_path):
    results = build_results(tmp_path / "results", everything=False)
    (results / "layers").mkdir()
    (results / "layers" / "ndvi_2024.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputError, match="ndvi_2024.tif"):
        _draw(results, tmp_path / "out", "zh")


def test_a_geographic_land_cover_raster_is_warped_to_the_map_crs(tmp_path):
    from pyproj import CRS, Transformer

    from ecoassess.report.figures import read_raster_for_map

    # 0.2° × 0.1° in CGCS2000 lon/lat: west half forest (21), east half urban (51)
    path = tmp_path / "lc_geo.tif"
    _write_tif(path, _halves((100, 200), 21, 51, "uint8"), (104.5, 30.0, 104.7, 30.1), nodata=0, crs="EPSG:4490")
    albers = CRS.from_wkt(ALBERS)
    arr, (left, right, bottom, top), crs = read_raster_for_map(path, 150, categorical=True, dst_crs=albers)
    assert CRS.from_wkt(crs.to_wkt()).equals(albers) and max(arr.shape) <= 150
    to_map = Transformer.from_crs("EPSG:4490", albers, always_xy=True)
    (x_w, x_e), (y_w, y_e) = to_map.transform([104.55, 104.65], [30.05, 30.05])
    assert left < x_w < x_e < right and bottom < y_w < top

    def at(x, y):
        col = int((x - left) / (right - left) * arr.shape[1])
        row = int((top - y) / (top - bottom) * arr.shape[0])
        return int(arr[row, col])

    assert at(x_w, y_w) == 21 and at(x_e, y_e) == 51   # classes kept (nearest), not averaged


def test_red_line_units_come_from_the_config_file_when_no_table_has_them(tmp_path):
    import pyogrio

    from ecoassess.report.figures import _redline_units
    from ecoassess.report.results import ResultsFolder

    results = build_results(tmp_path / "results", everything=False)
    units = gpd.GeoDataFrame({"unit_id": ["HX01"], "mc": ["青岗山红线"]}, geometry=[box(104.6, 30.1, 104.65, 30.15)],
                             crs="EPSG:4490")
    pyogrio.write_dataframe(units, tmp_path / "redline.gpkg", driver="GPKG")
    manifest = json.loads((results / "manifest.json").read_text(encoding="utf-8"))
    manifest["config"] = {"given": {"zones": {"redline": {"path": str(tmp_path / "redline.gpkg"), "name_field": "mc"}}}}
    (results / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    got = _redline_units(ResultsFolder(results))
    assert list(got["name"]) == ["青岗山红线"] and got.crs.is_projected


def test_wrapping_counts_chinese_double_and_follows_the_line_breaking_rule():
    from ecoassess.report.maps import wrap_text

    # 7 Chinese characters are 14 units; an opening bracket never ends a line, a closing one never starts it
    assert wrap_text("指北针指向真北（图幅中心）", 14) == "指北针指向真北\n（图幅中心）"
    assert wrap_text("指北针指向真北，图幅中心", 14) == "指北针指向真北，\n图幅中心"
    # Latin words stay whole; a trailing range goes whole onto its own line
    assert wrap_text("other construction land", 20) == "other construction\nland"
    assert wrap_text("明显变差 (−8 < ΔEI ≤ −3)", 20) == "明显变差\n(−8 < ΔEI ≤ −3)"
    assert wrap_text("短", 20) == "短"
