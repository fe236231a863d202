import math
import warnings

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Proj
from shapely.geometry import Polygon

from ecoassess.grid import china_albers_crs
from ecoassess.report.fonts import find_cjk_font
from ecoassess.report.maps import ground_m_per_map_unit, nice_scale_length_m, true_north_angle_deg, zone_choropleth

NAMES = ["锦江区", "青羊区", "金牛区", "武侯区", "成华区", "龙泉驿区"]
GLYPH_ERRORS = "error:Glyph.*missing:UserWarning"


def _zones(lon0=103.9, crs="EPSG:4490"):
    geoms = []
    for i in range(2):
        for j in range(3):
            x0, y0 = lon0 + 0.09 * j + 0.01 * i, 30.55 + 0.08 * i
            geoms.append(Polygon([(x0, y0), (x0 + 0.09, y0 + 0.005 * j), (x0 + 0.095, y0 + 0.08), (x0 - 0.005, y0 + 0.085)]))
    gdf = gpd.GeoDataFrame({"name": NAMES, "ei": [62.1, 55.3, np.nan, 70.4, 48.9, 66.0]}, geometry=geoms, crs=crs)
    return gdf.to_crs(china_albers_crs().to_wkt())


def test_nice_scale_length_hand_calculation():
    # a 23.7 km wide map: a quarter is 5.925 km -> the largest 1/2/5 x 10^n below it is 5 km
    assert nice_scale_length_m(23_700) == 5_000
    assert nice_scale_length_m(23_700, fraction=0.5) == 10_000
    assert nice_scale_length_m(850) == 200
    assert nice_scale_length_m(400_000) == 100_000


def test_ground_scale_on_utm_central_meridian_is_the_scale_factor():
    # UTM zone 48N on its central meridian (105°E) at the equator: k0 = 0.9996, so 1 map m = 1/0.9996 ground m
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True).transform(105.0, 0.0)
    assert ground_m_per_map_unit("EPSG:32648", x, y, step=50) == pytest.approx(1 / 0.9996, rel=1e-6)


def test_north_arrow_angle_matches_pyproj_meridian_convergence():
    crs = china_albers_crs()
    proj = Proj(crs.to_wkt())
    for lon, lat in [(118.0, 32.0), (90.0, 40.0), (105.0, 30.0)]:
        x, y = proj(lon, lat)
        expected = proj.get_factors(lon, lat).meridian_convergence
        assert true_north_angle_deg(crs, x, y) == pytest.approx(-expected, abs=1e-3)
    x, y = proj(118.0, 32.0)
    assert true_north_angle_deg(crs, x, y) < -5  # east of 105°E true north leans left on the map


def test_cjk_font_is_found():
    assert find_cjk_font().is_file()


@pytest.mark.filterwarnings(GLYPH_ERRORS)
@pytest.mark.parametrize("lang,classes", [("zh", None),
                                          ("en", [(0, 55, "一般 fair", "#fdae61"), (55, 75, "良 good", "#a6d96a"),
                                                  (75, 100, "优 excellent", "#1a9641")])])
def test_choropleth_png(tmp_path, lang, classes):
    from PIL import Image

    out = zone_choropleth(_zones(), "ei", tmp_path / "ei.png", title="2024年各区生态环境状况指数", legend_label="EI 指数",
                          lang=lang, classes=classes, dpi=100, note="Sentinel-2 L2A，测试数据")
    assert out.is_file() and 30_000 < out.stat().st_size < 3_000_000
    with Image.open(out) as im:
        assert im.size == (800, 700)
        colours = len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0))
    assert colours > 50  # not a blank canvas
    assert [p.name for p in tmp_path.iterdir()] == ["ei.png"]  # no temp file left


def test_missing_glyph_check_really_fires(tmp_path):
    """The GLYPH_ERRORS filter would catch a font without Chinese glyphs (negative control)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, "县", family="DejaVu Sans")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Glyph.*missing", category=UserWarning)
        with pytest.raises(UserWarning, match="missing"):
            fig.savefig(tmp_path / "x.png")


def test_geographic_input_is_reprojected_and_crs_required(tmp_path):
    gdf = _zones().to_crs("EPSG:4490")
    zone_choropleth(gdf, "ei", tmp_path / "a.png", title="t", legend_label="l", dpi=60)
    with pytest.raises(Exception, match="CRS"):
        zone_choropleth(gdf.set_crs(None, allow_override=True), "ei", tmp_path / "b.png", title="t", legend_label="l")
    assert math.isfinite(true_north_angle_deg("EPSG:32648", 500_000, 3_000_000))
