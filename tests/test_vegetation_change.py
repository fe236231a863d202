"""Vegetation change between two dates (issue 18 item 7): ΔNDVI, ΔFVC with one pair of end-members, change classes,
county_vegetation_change, and two periods inside one year (before/after an event).

The hand-checked area: two 4 km × 4 km counties drawn on the analysis grid itself (CGCS2000 China Albers, 200 m
cells), so every cell lies wholly in one county and each number below is arithmetic on a few values.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import xarray as xr
import yaml
from affine import Affine
from shapely.geometry import box

import ecoassess
from ecoassess.errors import ConfigError
from ecoassess.grid import china_albers_crs
from ecoassess.layers.vegetation_change import classify_change, default_breaks, pooled_fvc_endmembers

RES, W, H, X0, Y1 = 200.0, 40, 20, 0.0, 3_304_000.0   # county A: columns 0-19, county B: columns 20-39
GAP = (slice(5, 7), slice(30, 32))                    # 2 × 2 cells of B not observed after the event
F32 = np.float32


# -- the classes ------------------------------------------------------------------------------------------------

def test_change_classes_follow_the_breaks_and_a_break_belongs_to_the_larger_change():
    # binary fractions, exact in float32: each value sits on or between the breaks -0.5, -0.25, 0.25, 0.5
    delta = xr.DataArray(np.array([[-0.75, -0.5, -0.375, -0.25, -0.125, 0.0, 0.25, 0.375, 0.5, 0.75, np.nan]],
                                  dtype="float32"), dims=("y", "x"))
    got = classify_change(delta, (-0.5, -0.25, 0.25, 0.5)).values[0].tolist()
    assert got == [-2, -2, -1, -1, 0, 0, 1, 1, 2, 2, -99]  # as HJ 192's |ΔEI| < 1 无明显变化, 1 <= |ΔEI| < 3 ...


def test_the_shipped_breaks_and_bad_breaks():
    assert default_breaks("ndvi") == (-0.2, -0.05, 0.05, 0.2)
    assert default_breaks("fvc") == (-0.15, -0.05, 0.05, 0.15)
    delta = xr.DataArray(np.array([[-0.3, -0.1, 0.0, 0.1, 0.3]], dtype="float32"), dims=("y", "x"))
    assert classify_change(delta, default_breaks("ndvi")).values[0].tolist() == [-2, -1, 0, 1, 2]
    with pytest.raises(ValueError, match="b0 < b1 <= 0 <= b2 < b3"):
        classify_change(delta, (0.2, 0.05, -0.05, -0.2))


def test_pooled_end_members_are_numpys_quantiles_of_both_dates_valid_ndvi_together():
    rng = np.random.default_rng(7)
    a, b = rng.uniform(-0.2, 0.9, (64, 80)).astype("float32"), rng.uniform(0.1, 0.95, (64, 80)).astype("float32")
    a[:3] = np.nan                                     # never observed
    va, vb = rng.random((64, 80)) > 0.2, rng.random((64, 80)) > 0.5   # clear, not water
    em = pooled_fvc_endmembers([xr.DataArray(a, dims=("y", "x")).chunk(32), xr.DataArray(b, dims=("y", "x")).chunk(32)],
                               [xr.DataArray(va & np.isfinite(a), dims=("y", "x")).chunk(32),
                                xr.DataArray(vb, dims=("y", "x")).chunk(32)])
    pooled = np.concatenate([a[va & np.isfinite(a)], b[vb]])
    np.testing.assert_allclose([em.ndvi_soil, em.ndvi_veg], np.quantile(pooled, [0.05, 0.95]), rtol=0, atol=1e-7)
    assert em.n_pixels == pooled.size and "pooled" in em.method


# -- a hand-checked area: a mud flow between March and August 2024 --------------------------------------------------

def _write_band(path, data):
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=1, dtype="float32", nodata=-9999.0,
                       crs=china_albers_crs().to_wkt(), transform=Affine(RES, 0, X0, 0, -RES, Y1)) as dst:
        dst.write(data.astype("float32"), 1)
    return path.name


def _scene(root, name, date, red_nir):
    """A plain GeoTIFF scene: ``red_nir`` = (red, nir) reflectance arrays (-9999 = not observed)."""
    red, nir = red_nir
    return {"kind": "geotiff", "date": date, "scale": 1.0, "offset": 0.0, "nodata": -9999.0,
            "bands": {"red": _write_band(root / f"{name}_red.tif", red), "nir": _write_band(root / f"{name}_nir.tif", nir)}}


def _fields(a_left, a_right, b, gap=False):
    """(red, nir) arrays with the given (red, nir) per part: A's left half (columns 0-9), A's right half, B."""
    red, nir = np.empty((H, W)), np.empty((H, W))
    for cols, (r, n) in ((slice(0, 10), a_left), (slice(10, 20), a_right), (slice(20, 40), b)):
        red[:, cols], nir[:, cols] = r, n
    if gap:
        red[GAP], nir[GAP] = -9999.0, -9999.0
    return red, nir


@pytest.fixture(scope="module")
def mudflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("mudflow")
    albers = china_albers_crs().to_wkt()
    (root / "v").mkdir()
    gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["泥石县", "青林县"]},
                     geometry=[box(X0, Y1 - 4000, X0 + 4000, Y1), box(X0 + 4000, Y1 - 4000, X0 + 8000, Y1)],
                     crs=albers).to_file(root / "v" / "counties.gpkg")
    scenes = [
        # before: NDVI 0.5 in A ((0.3 - 0.1)/(0.3 + 0.1)), 0.8 in B ((0.45 - 0.05)/0.5)
        _scene(root, "s0310", "2024-03-10", _fields((0.1, 0.3), (0.1, 0.3), (0.05, 0.45))),
        # in neither period: NDVI -0.5 everywhere; it must not reach the change
        _scene(root, "s0615", "2024-06-15", _fields((0.3, 0.1), (0.3, 0.1), (0.3, 0.1))),
        # after: A's left half buried (NDVI 0), its right half unchanged (0.5), B greener (0.9 = 0.9/1.0), a gap in B
        _scene(root, "s0820", "2024-08-20", _fields((0.2, 0.2), (0.1, 0.3), (0.05, 0.95), gap=True)),
    ]
    cfg = {"year": 2024, "study_area": {"path": "v/counties.gpkg", "id_field": "code", "name_field": "name"},
           "grid": {"resolution_m": RES}, "imagery": {"2024": scenes},
           "vegetation_change": {"before": {"year": 2024, "months": [3]},
                                 "after": {"start": "2024-08-01", "end": "2024-08-31"}},
           "outputs": {"tables": ["csv"], "maps": False}}
    (root / "assessment.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return root


def test_validate_takes_scenes_outside_the_composite_months_that_a_period_uses_without_a_warning(mudflow, caplog):
    with caplog.at_level(logging.WARNING):
        ecoassess.validate_config(ecoassess.load_config(mudflow / "assessment.yaml"))
    skipped = [r.getMessage() for r in caplog.records if "will be skipped" in r.getMessage()]
    assert skipped == []  # 2024-03-10 is outside composite.months (5-9) but is the before period's scene


@pytest.fixture(scope="module")
def mudflow_run(mudflow):
    from ecoassess.pipeline import run

    result = run(mudflow / "assessment.yaml", mudflow / "out")
    assert not result.problems, result.problems
    return result


def test_county_table_by_hand(mudflow_run):
    t = mudflow_run.tables["county_vegetation_change"].set_index("code")
    assert set(t["before"]) == {"2024m3"} and set(t["after"]) == {"20240801-20240831"}
    assert set(t["before_dates"]) == {"2024-03-10"} and set(t["after_dates"]) == {"2024-08-20"}
    # end-members pooled over both dates' 800 + 796 valid cells: sorted NDVI = 200 × 0, 600 × 0.5, 400 × 0.8,
    # 396 × 0.9; numpy 'linear' ranks (n - 1)·q = 1595 · 0.05 = 79.75 → 0 and 1595 · 0.95 = 1515.25 → 0.9
    assert (t["ndvi_soil"].iloc[0], t["ndvi_veg"].iloc[0]) == pytest.approx((0.0, 0.9), abs=1e-6)
    assert "pooled" in t["fvc_endmembers"].iloc[0] and t["fvc_warning"].iloc[0] in ("", np.nan)
    a, b, whole = t.loc["519901"], t.loc["519902"], t.loc["000000"]
    cell = RES * RES / 1e6                            # 0.04 km²
    # A: 400 cells, 200 buried (0.5 → 0) and 200 unchanged (0.5 → 0.5)
    assert (a["area_km2"], a["valid_km2"], a["nodata_km2"], a["masked_km2"]) == pytest.approx((16, 16, 0, 0))
    assert (a["ndvi_before_mean"], a["ndvi_after_mean"], a["ndvi_change_mean"]) == pytest.approx((0.5, 0.25, -0.25),
                                                                                                 abs=1e-6)
    # FVC = NDVI / 0.9: before 0.5/0.9; after (0 + 0.5/0.9)/2
    assert (a["fvc_before_mean"], a["fvc_after_mean"], a["fvc_change_mean"]) == pytest.approx(
        (0.5 / 0.9, 0.25 / 0.9, -0.25 / 0.9), abs=1e-6)
    assert (a["ndvi_marked_decrease_km2"], a["ndvi_stable_km2"]) == pytest.approx((200 * cell, 200 * cell))
    assert (a["fvc_marked_decrease_km2"], a["fvc_stable_km2"]) == pytest.approx((200 * cell, 200 * cell))
    # B: 400 cells, 4 not observed after; ΔNDVI 0.9 - 0.8 = 0.1 (0.05 <= 0.1 < 0.2: slight increase);
    # ΔFVC 1.0 - 0.8/0.9 = 0.111 (0.05 <= 0.111 < 0.15: slight increase)
    assert (b["valid_km2"], b["nodata_km2"]) == pytest.approx((396 * cell, 4 * cell))
    assert (b["ndvi_before_mean"], b["ndvi_after_mean"], b["ndvi_change_mean"]) == pytest.approx((0.8, 0.9, 0.1),
                                                                                                 abs=1e-6)
    assert (b["fvc_before_mean"], b["fvc_after_mean"], b["fvc_change_mean"]) == pytest.approx(
        (0.8 / 0.9, 1.0, 1 - 0.8 / 0.9), abs=1e-6)
    assert b["ndvi_slight_increase_km2"] == pytest.approx(396 * cell) and b["fvc_slight_increase_km2"] == \
        pytest.approx(396 * cell)
    for quantity in ("ndvi", "fvc"):                  # the classes of each county add up to its valid area
        classes = [c for c in t.columns if c.startswith(f"{quantity}_") and c.endswith("_km2")]
        assert len(classes) == 5
        np.testing.assert_allclose(t[classes].sum(axis=1), t["valid_km2"], rtol=1e-9)
    # whole area: means over the 796 cells valid on both dates, not the average of the county means
    assert whole["ndvi_before_mean"] == pytest.approx((400 * 0.5 + 396 * 0.8) / 796, abs=1e-6)
    assert whole["ndvi_after_mean"] == pytest.approx((200 * 0 + 200 * 0.5 + 396 * 0.9) / 796, abs=1e-6)
    assert whole["ndvi_change_mean"] == pytest.approx(-60.4 / 796, abs=1e-6)


def test_layers_by_hand_and_the_unchanged_half_keeps_its_fvc(mudflow_run):
    suffix = "2024m3_20240801-20240831"
    layers = {name: rasterio.open(mudflow_run.layers[f"{name}_{suffix}"]).read(1)
              for name in ("ndvi_change", "ndvi_change_class", "fvc_change", "fvc_change_class")}
    d, c = layers["ndvi_change"], layers["ndvi_change_class"]
    np.testing.assert_allclose(d[:, :10], -0.5, atol=1e-6)
    np.testing.assert_allclose(d[:, 10:20], 0.0, atol=1e-6)
    b = np.ones((H, 20), bool)
    b[GAP[0], slice(10, 12)] = False
    np.testing.assert_allclose(d[:, 20:][b], 0.1, atol=1e-6)
    assert np.isnan(d[GAP]).all() and (c[GAP] == -99).all()
    assert (c[:, :10] == -2).all() and (c[:, 10:20] == 0).all() and (c[:, 20:][b] == 1).all()
    # the unchanged half: NDVI 0.5 on both dates, so FVC must not move. End-members fitted per date would have
    # moved it: before 0.5/0.8 (FVC 0 there), after 0/0.9 (FVC 0.556), a +0.556 "gain" where nothing changed
    np.testing.assert_allclose(layers["fvc_change"][:, 10:20], 0.0, atol=1e-6)
    assert (layers["fvc_change_class"][:, 10:20] == 0).all()
    with rasterio.open(mudflow_run.layers[f"fvc_change_{suffix}"]) as src:
        tags = src.tags()
    assert tags["before_dates"] == "2024-03-10" and "pooled" in tags["fvc_endmembers"]
    assert float(tags["ndvi_veg"]) == pytest.approx(0.9, abs=1e-5)


def test_fixed_end_members_are_used_for_both_dates(mudflow):
    from ecoassess.pipeline import run

    raw = yaml.safe_load((mudflow / "assessment.yaml").read_text(encoding="utf-8"))
    raw["fvc"] = {"ndvi_soil": 0.1, "ndvi_veg": 0.85}
    raw["vegetation_change"]["ndvi_breaks"] = [-0.6, -0.3, 0.2, 0.4]   # a run's own breaks
    path = mudflow / "fixed.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = run(path, mudflow / "out_fixed")
    assert not result.problems, result.problems
    t = result.tables["county_vegetation_change"].set_index("code")
    assert set(t["fvc_endmembers"]) == {"fixed in the config (fvc.ndvi_soil, fvc.ndvi_veg)"}
    b = t.loc["519902"]
    # FVC = (NDVI - 0.1) / 0.75: before (0.8 - 0.1)/0.75 = 0.9333, after (0.9 - 0.1)/0.75 = 1.0667 → clipped to 1
    assert (b["fvc_before_mean"], b["fvc_after_mean"]) == pytest.approx((0.7 / 0.75, 1.0), abs=1e-6)
    # ΔNDVI 0.1 is stable under -0.3 < Δ < 0.2; A's buried half (-0.5) is a slight decrease (-0.6 < -0.5 <= -0.3)
    a = t.loc["519901"]
    assert b["ndvi_stable_km2"] == pytest.approx(396 * 0.04) and a["ndvi_slight_decrease_km2"] == pytest.approx(8)
    assert set(t["ndvi_breaks"]) == {"-0.6, -0.3, 0.2, 0.4"}


# -- the config and validate --------------------------------------------------------------------------------------

def _problems(mudflow, change, name):
    raw = yaml.safe_load((mudflow / "assessment.yaml").read_text(encoding="utf-8"))
    raw["vegetation_change"] = change
    path = mudflow / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        ecoassess.validate_config(path)
    return "\n".join(caught.value.problems)


@pytest.mark.parametrize("change, message", [
    ({"before": {"year": 2024, "months": [4]}, "after": {"year": 2024, "months": [8]}},
     "vegetation_change.before: no scene of imagery.2024 was acquired in the period 2024m4 (2024-04-01 … "
     "2024-04-30); the scenes are of 2024-03-10, 2024-06-15, 2024-08-20"),
    ({"before": {"year": 2024, "months": [8]}, "after": {"year": 2024, "months": [3]}},
     "the before period (2024m8, to 2024-08-31) must end before the after period (2024m3, from 2024-03-01)"),
    ({"before": {"year": 2024, "months": [3]}}, "give both before and after periods"),
    ({"before": {"year": 2024, "months": [3], "start": "2024-03-01"}, "after": {"year": 2024}},
     "give either year (and months) or start and end dates"),
    ({"before": {"start": "2024-03-31", "end": "2024-03-01"}, "after": {"year": 2024}}, "is after end"),
    ({"before": {"year": 2023}, "after": {"year": 2024}}, "takes scenes from imagery.2023, but imagery has years [2024]"),
    ({"ndvi_breaks": [0.2, 0.05, -0.05, -0.2]}, "must satisfy b0 < b1 <= 0 <= b2 < b3"),
    ({"fvc_breaks": ["weit", -0.05, 0.05, 0.15]}, "fvc_breaks"),
    ({"before": {"year": 2024, "month": [3]}, "after": {"year": 2024}}, "month"),
])
def test_bad_periods_and_breaks_are_named(mudflow, change, message):
    text = _problems(mudflow, change, f"bad_{abs(hash(str(change)))}.yaml")
    assert message in text, text
    assert "Traceback" not in text


# -- the sample area: Sentinel-2 products with SCL clouds, water from land cover -----------------------------------

@pytest.fixture(scope="module")
def sample(shared_sample):
    """The sample (seed 0, scale 1; conftest, read-only)."""
    return shared_sample


def test_the_sample_compares_baseline_and_assessment_year_by_default(sample_run):
    """The default run on the sample (conftest's ``sample_run``: ``run(sample, out)``, shared and read-only)."""
    result = sample_run
    assert not result.problems, result.problems
    t = result.tables["county_vegetation_change"]
    assert set(t["before"]) == {"2023"} and set(t["after"]) == {"2024"} and len(t) == 5  # 4 counties + whole area
    classes = [c for c in t.columns if c.startswith("ndvi_") and c.endswith("_km2")]
    np.testing.assert_allclose(t[classes].sum(axis=1), t["valid_km2"], rtol=1e-9)
    np.testing.assert_allclose(t[["valid_km2", "masked_km2", "nodata_km2", "area_outside_km2"]].sum(axis=1),
                               t["area_km2"], rtol=1e-9)
    # ΔNDVI is the difference of the two years' NDVI layers (read back from their COGs) wherever it is defined
    read = {k: rasterio.open(result.layers[k]).read(1) for k in ("ndvi_2023", "ndvi_2024", "ndvi_change_2023_2024")}
    delta = read["ndvi_change_2023_2024"]
    both = np.isfinite(delta)
    assert both.mean() > 0.5
    np.testing.assert_allclose(delta[both], (read["ndvi_2024"] - read["ndvi_2023"])[both], atol=1e-6)
    # cells with NDVI on both dates but no change are masked (water of the land cover, clouds) on either date
    masked_out = np.isfinite(read["ndvi_2023"]) & np.isfinite(read["ndvi_2024"]) & ~both
    assert masked_out.any() and t.set_index("code").loc["000000", "masked_km2"] > 0
    # one pair of end-members for both years (pooled), recorded with the table and the manifest
    assert set(t["fvc_endmembers"]) == {"5 %/95 % quantiles of the valid NDVI of both dates pooled (STANDARDS §4)"}
    assert result.manifest["extra"]["vegetation_change"]["fvc_endmembers"]["ndvi_soil"] == t["ndvi_soil"].iloc[0]


def test_two_periods_inside_one_year_on_the_sample(sample):
    """May 2024 against September 2024 (each one Sentinel-2 scene): ΔNDVI is the two scenes' own NDVI difference,
    computed here with numpy on their clear, non-water pixels."""
    from ecoassess.config import PeriodSpec
    from ecoassess.pipeline import build_grid, read_study_area, read_zone_sets
    from ecoassess.stages.base import RunInputs
    from ecoassess.stages.vegetation_change import period_ndvi, vegetation_change

    config = ecoassess.load_config(sample)
    study_area = read_study_area(config)
    grid = build_grid(config, study_area)
    inputs = RunInputs(config, grid)
    inside = read_zone_sets(config, study_area, grid, inputs)["county"].covered()
    may = period_ndvi(config, "before", PeriodSpec(year=2024, months=[5]), grid, inside, inputs)
    sep = period_ndvi(config, "after", PeriodSpec(year=2024, months=[9]), grid, inside, inputs)
    assert [d.isoformat() for d in may.dates] == ["2024-05-22"] and [d.isoformat() for d in sep.dates] == ["2024-09-04"]
    got = vegetation_change(config, may, sep).ndvi_change.values

    scenes = {s.date.isoformat(): s for s in inputs.scenes(2024)}
    water = inputs.water(2024).values
    def own_ndvi(scene):
        red, nir = scene.bands["red"].values.astype("float64"), scene.bands["nir"].values.astype("float64")
        with np.errstate(all="ignore"):
            value = (nir - red) / (nir + red)
        return np.where(scene.clear.values & ~water & inside.values, value, np.nan)
    expected = own_ndvi(scenes["2024-09-04"]) - own_ndvi(scenes["2024-05-22"])
    assert np.array_equal(np.isfinite(got), np.isfinite(expected))
    assert np.isfinite(got).mean() > 0.3                # clouds of two dates leave less than one year's composite
    np.testing.assert_allclose(got[np.isfinite(got)], expected[np.isfinite(expected)], atol=2e-6)


def test_a_period_across_new_year_takes_scenes_of_both_years_with_the_monthly_max_composite(mudflow):
    """Before = 2023-12-01 … 2024-03-31: the scenes of imagery.2023 and imagery.2024 in it (2023-12-20, 2024-03-10);
    imagery.2023 serves only the period, so its scene outside composite.months is no problem for validate."""
    from ecoassess.pipeline import run

    raw = yaml.safe_load((mudflow / "assessment.yaml").read_text(encoding="utf-8"))
    # December: NDVI 0.7 in A ((0.255 - 0.045)/0.3), 0.8 in B
    raw["imagery"]["2023"] = [_scene(mudflow, "s1220", "2023-12-20", _fields((0.045, 0.255), (0.045, 0.255),
                                                                                (0.05, 0.45)))]
    raw["composite"] = {"method": "monthly_max_ndvi"}
    raw["vegetation_change"] = {"before": {"start": "2023-12-01", "end": "2024-03-31"},
                                "after": {"year": 2024, "months": [8]}}
    path = mudflow / "winter.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = run(path, mudflow / "out_winter")
    assert not result.problems, result.problems
    t = result.tables["county_vegetation_change"].set_index("code")
    assert t.loc["519901", "before_dates"] == "2023-12-20, 2024-03-10" and set(t["before"]) == {"20231201-20240331"}
    a = t.loc["519901"]
    # monthly maximum, then the mean over the months: A (0.7 + 0.5)/2 = 0.6 before; after (0 + 0.5)/2
    assert (a["ndvi_before_mean"], a["ndvi_after_mean"], a["ndvi_change_mean"]) == pytest.approx((0.6, 0.25, -0.35),
                                                                                                 abs=1e-6)
    # buried half 0.6 → 0 (Δ -0.6: marked); other half 0.6 → 0.5 (Δ -0.1: -0.2 < -0.1 <= -0.05, slight)
    assert (a["ndvi_marked_decrease_km2"], a["ndvi_slight_decrease_km2"]) == pytest.approx((8, 8))


@pytest.mark.parametrize("period, label, span", [
    ({"year": 2024}, "2024", ("2024-05-01", "2024-09-30")),                 # composite.months 5-9
    ({"year": 2024, "months": [3, 4, 5]}, "2024m3-5", ("2024-03-01", "2024-05-31")),
    ({"year": 2024, "months": [5, 3, 8, 4]}, "2024m3-5.8", ("2024-03-01", "2024-08-31")),
    ({"year": 2024, "months": [12]}, "2024m12", ("2024-12-01", "2024-12-31")),
    ({"year": 2024, "months": [2]}, "2024m2", ("2024-02-01", "2024-02-29")),  # a leap year
    ({"start": "2023-12-15", "end": "2024-01-10"}, "20231215-20240110", ("2023-12-15", "2024-01-10")),
])
def test_period_labels_and_spans(period, label, span):
    from ecoassess.config import PeriodSpec

    p = PeriodSpec.model_validate(period)
    assert p.label == label and tuple(d.isoformat() for d in p.span([5, 6, 7, 8, 9])) == span
