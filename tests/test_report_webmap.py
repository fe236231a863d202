"""The offline web map (issue 22, part 2): one HTML file that needs no network, with the layers whose tables exist,
popups with values formatted for the language and names escaped; opened in headless Chromium as a reader would.

The results folder is built by hand (two counties, a red-line unit with one patch and its chip, three stations, a
coverage gap, a proposed site), so the expected values are known without running the pipeline.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point, box

from ecoassess.errors import InputError
from ecoassess.report.i18n import untranslated
from ecoassess.report.results import ResultsFolder
from ecoassess.report.webmap import CHIP_MAX_PX, external_urls, write_webmap

ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +x_0=0 +y_0=0 +ellps=GRS80 +units=m +no_defs"
#: a county name with markup in it: it must reach the reader as text, never as HTML
TRICKY = "<b>青岗县</b> & co"
PATCH_ID = "HX-519902-2024-0001"


def _write(gpkg: Path, name: str, frame):
    pyogrio.write_dataframe(frame, gpkg, layer=name, driver="GPKG")


def build_results(root: Path, *, only: set[str] | None = None) -> Path:
    """A results folder: ``only`` limits the tables written (None: all)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps({
        "ecoassess_version": "0.1.0", "config": {"given": {"name": "测试区"}},
        "run": {"ended_utc": "2026-01-02T03:04:05Z"}}), encoding="utf-8")
    gpkg = root / "results.gpkg"
    a, b = box(104.0, 30.0, 104.2, 30.2), box(104.2, 30.0, 104.4, 30.2)
    tables = {}
    tables["county_ei"] = gpd.GeoDataFrame({
        "code": ["519901", "519901", "519902", "519902", "000000"],
        "year": [2023, 2024, 2023, 2024, 2024],
        "name": [TRICKY, TRICKY, "柏溪县", "柏溪县", "全区"],
        "is_whole_area": [False, False, False, False, True],
        "ei": [57.71234, 56.01, 65.2, 54.9, 60.0], "grade": ["良", "良", "良", "一般", "良"],
        "biological_abundance": [33.2231, 33.2, 49.7, 49.7, 40.0], "vegetation_cover": [81.77, 75.7, 84.7, 80.0, 80.0],
        "water_network_density": [34.9, 33.7, 30.0, 30.0, 30.0], "land_stress": [29.9, 29.8, 20.0, 20.0, 20.0],
        "pollution_load": [1.2, 1.2, 1.0, 1.0, 1.0], "area_km2": [443.1, 443.1, 443.2, 443.2, 886.3]},
        geometry=[a, a, b, b, box(104.0, 30.0, 104.4, 30.2)], crs=4326).to_crs(ALBERS)
    tables["county_ei_change"] = pd.DataFrame({
        "code": ["519901", "519902"], "years": ["2023-2024", "2023-2024"], "name": [TRICKY, "柏溪县"],
        "ei_baseline": [57.71234, 65.2], "ei": [56.01, 54.9], "delta_ei": [-1.70234, -10.3],
        "change_class": ["略微变差", "显著变差"], "fluctuation_level": ["波动", "剧烈波动"]})
    tables["county_rsei"] = gpd.GeoDataFrame({
        "code": ["519901", "519902"], "year": [2024, 2024], "name": [TRICKY, "柏溪县"],
        "rsei_mean": [0.734, 0.45], "area_km2": [443.1, 443.2]}, geometry=[a, b], crs=4326).to_crs(ALBERS)
    unit = box(104.25, 30.05, 104.35, 30.15)
    tables["redline_rsei"] = gpd.GeoDataFrame({
        "code": ["HX-5199-001"], "year": [2024], "name": ["龙台山生态保护红线"], "area_km2": [106.4],
        "rsei_mean": [0.88]}, geometry=[unit], crs=4326).to_crs(ALBERS)
    tables["redline_patches"] = gpd.GeoDataFrame({
        "patch_id": [PATCH_ID], "change_type": ["new"], "unit_name": ["龙台山生态保护红线"], "county_name": ["柏溪县"],
        "area_m2": [38017.642797], "area_mu": [57.026464], "activity_name": ["采石场"], "confidence": [0.955],
        "first_year": [2024]}, geometry=[box(104.30, 30.10, 104.304, 30.104)], crs=4326).to_crs(ALBERS)
    tables["stations"] = gpd.GeoDataFrame({
        "station_id": ["A01", "W01", "N01"], "name": ["青岗城区<空气>站", "清溪河断面", "柏溪噪声点"],
        "station_type": ["air", "surface_water", "noise"], "county_name": [TRICKY, "柏溪县", "柏溪县"],
        "mapped": [True, True, True]},
        geometry=[Point(104.05, 30.15), Point(104.38, 30.18), Point(104.22, 30.18)], crs=4326)
    tables["air_station_annual"] = gpd.GeoDataFrame({
        "station_id": ["A01"], "name": ["青岗城区<空气>站"], "year": [2024], "pm25_annual_ugm3": [41.0],
        "good_day_ratio": [0.653631], "compliant": [False]}, geometry=[Point(104.05, 30.15)], crs=4326)
    tables["water_sections"] = gpd.GeoDataFrame({
        "station_id": ["W01"], "name": ["清溪河断面"], "year": [2024], "water_class": ["IV"], "target_class": ["III"],
        "meets_target": [False], "tp_mgl": [0.24475]}, geometry=[Point(104.38, 30.18)], crs=4326)
    tables["noise_measurements"] = gpd.GeoDataFrame({
        "station_id": ["N01", "N01"], "quarter": [1, 2], "leq_day_dba": [50.9, 52.7], "leq_night_dba": [42.2, 46.1],
        "meets_day": [True, True], "meets_night": [True, False]},
        geometry=[Point(104.22, 30.18)] * 2, crs=4326)
    tables["network_coverage"] = pd.DataFrame({
        "county_code": ["519901", "519902"], "county_name": [TRICKY, "柏溪县"], "station_type": ["air", "air"],
        "rule_id": ["county_seat_air_2", "county_seat_air_2"], "required": [2.0, 2.0], "present": [2, 1],
        "shortfall": [0.0, 1.0]})
    tables["proposed_sites"] = gpd.GeoDataFrame({
        "proposal_id": ["P-air-01"], "station_type": ["air"], "county_name": ["柏溪县"],
        "rule_id": ["county_seat_air_2"], "reason": ["柏溪县: 1 of 2 required"], "gain_km2": [0.1764]},
        geometry=[Point(104.38, 30.02)], crs=4326)
    for name, frame in tables.items():
        if only is None or name in only:
            _write(gpkg, name, frame)
    if only is None or "redline_patches" in only:
        from PIL import Image

        chips = root / "redline" / "chips"
        chips.mkdir(parents=True)
        Image.new("RGB", (1600, 900), (40, 140, 60)).save(chips / f"{PATCH_ID}.png")
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> ResultsFolder:
    return ResultsFolder(build_results(tmp_path_factory.mktemp("webmap") / "results"))


@pytest.fixture(scope="module")
def pages(results, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pages")
    return {lang: write_webmap(results, out / lang / "webmap.html", lang) for lang in ("zh", "en")}


def _geojson_features(text: str) -> list[dict]:
    """The features folium embedded (``..._add({...});``), decoded."""
    found, decoder = [], json.JSONDecoder()
    for match in re.finditer(r"geo_json_\w+_add\(\{", text):
        data, _ = decoder.raw_decode(text, match.end() - 1)
        found += data["features"]
    return found


def test_the_page_refers_to_nothing_outside_the_file(pages):
    for path in pages.values():
        text = path.read_text(encoding="utf-8")
        assert external_urls(text) == []
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", re.sub(
            r"<script>.*?</script>", "", text, flags=re.S)), "a src/href reaches out of the file"
        assert "cdn.jsdelivr" not in text and "cdnjs" not in text and "jquery" not in text.lower()
        assert "L.tileLayer" not in text  # no basemap unless asked


def test_a_tile_url_gives_a_basemap_and_is_the_only_address_outside(results, tmp_path):
    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    text = write_webmap(results, tmp_path / "m.html", "en", tile_url=url, tile_attribution="Example").read_text(
        encoding="utf-8")
    assert "L.tileLayer" in text and json.dumps(url) in text
    assert external_urls(text) == []  # the template is used by the script, not fetched by the page itself
    with pytest.raises(InputError, match=r"tile_url.*expected: an XYZ template"):
        write_webmap(results, tmp_path / "bad.html", "en", tile_url="https://tiles.example.org/tile.png")


def test_names_from_the_data_are_escaped(pages):
    text = pages["zh"].read_text(encoding="utf-8")
    assert TRICKY not in text and "<空气>" not in text  # never raw markup in the page
    popups = [f["properties"]["_popup"] for f in _geojson_features(text)]
    assert any("&lt;b&gt;青岗县&lt;/b&gt; &amp; co (519901)" in p for p in popups)
    assert any("青岗城区&lt;空气&gt;站" in p for p in popups)


def test_county_popups_hold_ei_and_sub_indices_per_year_and_the_change(pages):
    features = _geojson_features(pages["en"].read_text(encoding="utf-8"))
    county = [f for f in features if "(519901)" in f["properties"]["_popup"]
              and "EI of the baseline year" in f["properties"]["_popup"]]
    assert len(county) == 1
    popup = county[0]["properties"]["_popup"]
    # EI 57.71234 and 56.01 to one decimal, ΔEI −1.70234 to two; years as years; grades and classes in English
    for cell in (">2023<", ">2024<", ">57.7<", ">56.0<", ">-1.70<", ">good<", ">slightly worse<",
                 ">fluctuating<", "Biological abundance index", ">33.2<", "Vegetation cover index", ">81.8<"):
        assert cell in popup, cell
    zh = _geojson_features(pages["zh"].read_text(encoding="utf-8"))
    popup_zh = next(f["properties"]["_popup"] for f in zh if "(519902)" in f["properties"]["_popup"]
                    and "基准年EI" in f["properties"]["_popup"])
    assert ">一般<" in popup_zh and ">显著变差<" in popup_zh and ">-10.30<" in popup_zh and "生物丰度指数" in popup_zh
    assert "全区" not in pages["zh"].read_text(encoding="utf-8")  # the whole-area row is not a county


def test_counties_are_coloured_by_their_latest_grade(pages):
    features = _geojson_features(pages["en"].read_text(encoding="utf-8"))
    ei = {re.search(r"\((5199\d\d)\)", f["properties"]["_popup"]).group(1): f["properties"]["style"]["fillColor"]
          for f in features if "EI of the baseline year" in f["properties"]["_popup"]}
    # 2024: 56.01 is 良 (55 ≤ EI < 75, HJ 192-2015 §1.7), 54.9 is 一般 (35 ≤ EI < 55)
    assert ei == {"519901": "#a6d96a", "519902": "#ffffbf"}


def test_patch_popup_has_its_attributes_and_a_shrunk_chip(pages):
    from PIL import Image

    text = pages["zh"].read_text(encoding="utf-8")
    popup = next(f["properties"]["_popup"] for f in _geojson_features(text) if PATCH_ID in f["properties"]["_popup"])
    assert ">38,018<" in popup and ">57.03<" in popup and ">采石场<" in popup and ">2024<" in popup
    uri = re.search(r'src="data:image/jpeg;base64,([^"]+)"', popup).group(1)
    with Image.open(io.BytesIO(base64.b64decode(uri))) as im:
        # 1600 × 900 shrunk to the longest side CHIP_MAX_PX = 720: 720 × 405
        assert (CHIP_MAX_PX, im.size) == (720, (720, 405))


def test_station_popups_carry_the_values_of_their_type(pages):
    features = _geojson_features(pages["en"].read_text(encoding="utf-8"))
    by_id = {sid: f for f in features for sid in ("A01", "W01", "N01") if f">{sid}<" in f["properties"]["_popup"]
             and f["geometry"]["type"] == "Point"}
    air, water, noise = (by_id[k]["properties"] for k in ("A01", "W01", "N01"))
    assert ">41<" in air["_popup"] and ">0.654<" in air["_popup"] and ">no<" in air["_popup"]
    assert ">IV<" in water["_popup"] and ">0.245<" in water["_popup"]
    assert ">46.1<" in noise["_popup"] and ">52.7<" in noise["_popup"]
    # all three miss a limit or target: their ring says so; the proposed site and gap are there too
    assert {p["style"]["color"] for p in (air, water, noise)} == {"#a50f15"}
    assert any("P-air-01" in f["properties"]["_popup"] for f in features)
    gap = [f["properties"]["_popup"] for f in features if "Network shortfall" in f["properties"]["_popup"]]
    assert len(gap) == 1 and "柏溪县" in gap[0] and ">1<" in gap[0]


def test_only_the_layers_whose_tables_exist(tmp_path):
    root = build_results(tmp_path / "r", only={"county_ei"})
    text = write_webmap(ResultsFolder(root), tmp_path / "m.html", "en").read_text(encoding="utf-8")
    assert "Counties by EI grade (2024)" in text
    for absent in ("RSEI by county", "Air quality stations", "Red-line unit", "Proposed site", "Coverage gaps"):
        assert absent not in text


def test_a_table_without_a_needed_column_is_named(tmp_path):
    root = build_results(tmp_path / "r", only=set())
    _write(root / "results.gpkg", "county_ei", gpd.GeoDataFrame(
        {"code": ["1"], "year": [2024], "name": ["x"]}, geometry=[box(0, 0, 1, 1)], crs=4326))
    with pytest.raises(InputError, match=r"results.gpkg \[county_ei.ei\]: table 'county_ei' has no column 'ei'"):
        write_webmap(ResultsFolder(root), tmp_path / "m.html", "zh")
    assert not (tmp_path / "m.html").exists()


def test_every_message_has_its_chinese():
    assert untranslated("zh", "webmap", [Path(__file__).parents[1] / "ecoassess/report/webmap.py"]) == []


# -- in a browser ------------------------------------------------------------------------------------------------------


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    seen = {"errors": [], "requests": [], "failed": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("requestfailed", lambda r: seen["failed"].append(r.url))
    page.goto(path.as_uri())
    page.wait_for_selector(".leaflet-control-layers-overlays label")
    return page, seen


def _click_lonlat(page, lon: float, lat: float):
    """Clicks the map at (lon, lat): Leaflet says where that is on the screen."""
    page.evaluate("Object.keys(window).filter(k => k.startsWith('map_')).forEach(k => window[k].closePopup())")
    page.wait_for_selector(".leaflet-popup", state="detached")
    x, y = page.evaluate("""([lat, lon]) => {
        const map = Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])[0];
        const p = map.latLngToContainerPoint([lat, lon]);
        const r = map.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y]; }""", [lat, lon])
    page.mouse.click(x, y)
    page.wait_for_selector(".leaflet-popup-content")
    return page.inner_text(".leaflet-popup-content")


def test_in_chromium_the_map_loads_offline_and_its_popups_open(browser, pages, tmp_path):
    # a copy beside nothing else: the page cannot lean on files next to it
    lonely = tmp_path / "alone.html"
    shutil.copy(pages["zh"], lonely)
    page, seen = _open(browser, lonely)
    try:
        labels = [t.strip() for t in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()]
        assert labels == ["各县生态环境状况等级（2024年）", "各县遥感生态指数RSEI（2024年）", "生态保护红线单元",
                          "生态保护红线内人类活动图斑", "环境空气质量监测站", "地表水监测断面", "声环境监测点位",
                          "监测覆盖缺口", "建议新增点位"]
        legend = page.inner_text(".ea-legend")
        assert "EI等级" in legend and "优 (≥ 75)" in legend
        text = _click_lonlat(page, 104.12, 30.05)  # inside county 519901, away from every station
        assert "(519901)" in text and "57.7" in text and "56.0" in text and "生物丰度指数" in text
        title = page.inner_text(".leaflet-popup-content h4")
        assert title == f"{TRICKY} (519901)"  # the markup is shown as text
        assert page.locator(".leaflet-popup-content b").count() == 0
        text = _click_lonlat(page, 104.302, 30.102)  # the patch
        assert PATCH_ID in text and "采石场" in text
        assert page.evaluate("document.querySelector('.leaflet-popup-content img').naturalWidth") == 720
        # county 519902 has a network shortfall: the gap is drawn as an outline and does not catch the click
        text = _click_lonlat(page, 104.23, 30.02)
        assert "(519902)" in text and "54.9" in text
        # a zone layer switched on last still lies under the stations: the station stays clickable
        page.locator(".leaflet-control-layers-overlays label", has_text="RSEI").locator("input").click()
        text = _click_lonlat(page, 104.05, 30.15)
        assert "A01" in text and "41" in text
        assert seen["errors"] == [] and seen["failed"] == []
        assert [u for u in seen["requests"] if not u.startswith(("file:", "data:"))] == []
    finally:
        page.close()
