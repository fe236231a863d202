"""The reflectance-range counts ride on the pass that reads the bands (issue 18 item 5, follow-up).

Screening reflectance to −0.2 … 1.6 (``indices/reflectance.yaml``) made ``clear`` depend on every band, so the
composite's clear check read every band, and the materialisation read them all again. Now the check reads the mask
and red bands only; the range counts are reductions of the materialisation; a scene whose clear observations are
all out of range is still dropped as before (the composite is made again without it). The counts below are by hand.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine

from ecoassess.grid import AnalysisGrid, _WarpedBand
from ecoassess.materialize import materialize
from ecoassess.sources import composite, open_geotiff_scene
from ecoassess.sources.composite import pending_range_counts, settle_range_counts
from ecoassess.sources.reflectance_range import REASON
from tests.builders import write_two_counties

UTM = "EPSG:32648"
T8 = Affine(30.0, 0, 500000.0, 0, -30.0, 3300000.0)
GOOD = {"red": 0.05, "nir": 0.40, "green": 0.08, "swir1": 0.20}


def _tif(path, data, transform=T8, nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype, crs=UTM, transform=transform, nodata=nodata) as dst:
        dst.write(data, 1)
    return str(path)


def scene_files(folder, *, out_of_range=False, left_in_dn=False, shift=0.0):
    """An 8 × 8 float GeoTIFF scene (red, nir, green, swir1) with a mask (0 clear, 1 cloud).

    ``out_of_range``: red −0.5 in row 0, nir 2.0 in row 1, clouds at (0, 0) and (2, 0). ``left_in_dn``: every value
    ×10 000, as a GEE export whose scale was not applied (all above 1.6)."""
    folder.mkdir(parents=True, exist_ok=True)
    bands = {}
    for role, value in GOOD.items():
        data = np.full((8, 8), value + shift, "float32")
        if out_of_range:
            if role == "red":
                data[0, :] = -0.5
            if role == "nir":
                data[1, :] = 2.0
        if left_in_dn:
            data = data * 10000
        bands[role] = _tif(folder / f"{role}.tif", data)
    qa = np.zeros((8, 8), "uint8")
    if out_of_range:
        qa[0, 0] = qa[2, 0] = 1
    return bands, {"path": _tif(folder / "qa.tif", qa), "clear_values": [0]}


def open_scene(folder, date, chunk=4, **kwargs):
    bands, mask = scene_files(folder, **kwargs)
    grid = AnalysisGrid(rasterio.crs.CRS.from_user_input(UTM), T8, 8, 8)
    return open_geotiff_scene(bands, grid, date=date, mask=mask, chunk=chunk)


# by hand, scene "a" (out_of_range=True): 64 cells observed; 2 cloudy → 62 clear before the range screening;
# out of range: row 0 (red −0.5) and row 1 (nir 2.0) = 16 cells; clear after = 64 − |{cloud} ∪ {rows 0–1}|
# = 64 − (16 + 1, the cloud at (2, 0); the one at (0, 0) is in row 0) = 47
A_SUMMARY = {"cells": 64, "valid": 64, "clear": 47, "masked": 17,
             "by_reason": {"masked_value": 2, REASON: 16},
             "outside_range": {"red": 8, "nir": 8, "green": 0, "swir1": 0}}


def test_the_deferred_counts_are_the_eager_ones_by_hand(tmp_path):
    a = open_scene(tmp_path / "a", "2024-07-01", out_of_range=True)
    b = open_scene(tmp_path / "b", "2024-07-20", shift=0.01)
    comp = composite([a, b], method="median", months=None, range_counts_later=True)
    assert a._summary is None and a._mask_counts == {"valid": 64, "clear": 62, "by_reason": {"masked_value": 2}}
    pending, tasks = pending_range_counts(comp, comp)  # a composite listed twice: each scene once
    assert [s.date for s in pending] == [dt.date(2024, 7, 1), dt.date(2024, 7, 20)]
    # scene a: clear, its range reason, 4 bands; scene b the same: 2 × 6 reductions
    assert len(tasks) == 12
    cache = materialize({"red": comp.bands["red"], "clear_count": comp.clear_count}, reductions=tasks)
    settle_range_counts(pending, cache.reductions)
    assert a.mask_summary() == A_SUMMARY
    assert b.mask_summary()["outside_range"] == {"red": 0, "nir": 0, "green": 0, "swir1": 0}
    assert b.mask_summary()["clear"] == 64 and not comp.stale
    # the eager pass of a freshly opened scene gives the same counts
    assert open_scene(tmp_path / "a", "2024-07-01", out_of_range=True).mask_summary() == A_SUMMARY
    # the composite itself: rows 0–1 only b is clear (0.06), elsewhere the median of two (0.055); (2, 0) cloudy in a
    red = cache["red"].values
    np.testing.assert_allclose(red[:2], 0.06, rtol=1e-6)
    np.testing.assert_allclose(red[2, 1:], (0.05 + 0.06) / 2, rtol=1e-6)
    assert red[2, 0] == pytest.approx(0.06)
    assert cache["clear_count"].values.sum() == 47 + 64


def test_every_reflectance_band_is_read_once(tmp_path, monkeypatch):
    """Four 4 × 4 chunks per file. Mask counts: the mask and red files (red defines "observed"); the
    materialisation: every file. So red and qa are read twice per chunk, nir, green and swir1 once (before: every
    file twice, the clear check reading all bands for the range screening)."""
    reads = Counter()
    real = _WarpedBand._read

    def counting(self, window):
        reads[(self.path.rsplit("/", 1)[-1], window.col_off, window.row_off)] += 1
        return real(self, window)

    monkeypatch.setattr(_WarpedBand, "_read", counting)
    a = open_scene(tmp_path / "a", "2024-07-01", out_of_range=True)
    comp = composite([a], method="median", months=None, range_counts_later=True)
    pending, tasks = pending_range_counts(comp)
    cache = materialize({"nir": comp.bands["nir"], "clear_count": comp.clear_count}, reductions=tasks)
    settle_range_counts(pending, cache.reductions)
    assert a.mask_summary() == A_SUMMARY
    per_file = Counter()
    for (name, _, _), n in reads.items():
        per_file[name] += n
    assert per_file == {"red.tif": 8, "qa.tif": 8, "nir.tif": 4, "green.tif": 4, "swir1.tif": 4}
    assert set(reads.values()) <= {1, 2}


def test_a_scene_with_every_observation_out_of_range_is_dropped_as_before(tmp_path):
    """A scene left in DN (all values ×10 000): before the range screening all 64 cells are clear, after it none.
    Kept on its mask counts, it makes the composite stale; made again, the composite drops it with the message
    the eager check gives."""
    scenes = [open_scene(tmp_path / "a", "2024-07-01"), open_scene(tmp_path / "dn", "2024-07-10", left_in_dn=True),
              open_scene(tmp_path / "b", "2024-07-20", shift=0.01)]
    comp = composite(scenes, method="median", months=None, range_counts_later=True)
    assert comp.dates == [dt.date(2024, 7, 1), dt.date(2024, 7, 10), dt.date(2024, 7, 20)]
    pending, tasks = pending_range_counts(comp)
    settle_range_counts(pending, materialize({"c": comp.clear_count}, reductions=tasks).reductions)
    assert scenes[1].mask_summary()["clear"] == 0 and scenes[1].mask_summary()["by_reason"][REASON] == 64
    assert comp.stale
    again = composite(scenes, method="median", months=None, range_counts_later=True)
    assert not again.stale and again.dates == [dt.date(2024, 7, 1), dt.date(2024, 7, 20)]
    [dropped] = again.metadata["dropped"]
    assert dropped["date"] == "2024-07-10"
    assert "all 64 observed pixels are masked (reflectance_out_of_range 100.0 %)" in dropped["reason"]
    # the eager check, on freshly opened scenes, drops it with the same words
    fresh = [open_scene(tmp_path / n, d, **kw) for n, d, kw in (("a", "2024-07-01", {}),
                                                                ("dn", "2024-07-10", {"left_in_dn": True}),
                                                                ("b", "2024-07-20", {"shift": 0.01}))]
    eager = composite(fresh, method="median", months=None)
    assert eager.metadata["dropped"] == again.metadata["dropped"] and eager.dates == again.dates


def test_a_scene_without_clear_pixels_before_the_screening_is_dropped_at_once(tmp_path):
    """All cloud: the mask counts say 0 clear, so it is dropped by the check itself (nothing to settle later), and
    its message counts the range reason too (its bands are read for that, once: it is in no composite)."""
    a = open_scene(tmp_path / "a", "2024-07-01")
    bands, _ = scene_files(tmp_path / "cloudy", out_of_range=True)
    grid = AnalysisGrid(rasterio.crs.CRS.from_user_input(UTM), T8, 8, 8)
    cloudy = open_geotiff_scene(bands, grid, date="2024-07-05", chunk=4,
                                mask={"path": _tif(tmp_path / "cloudy" / "all.tif", np.ones((8, 8), "uint8")),
                                      "clear_values": [0]})
    comp = composite([a, cloudy], method="median", months=None, range_counts_later=True)
    assert comp.dates == [dt.date(2024, 7, 1)] and [s.date for s in comp.checked_later] == [dt.date(2024, 7, 1)]
    # 64 cloudy (masked_value 100 %), rows 0–1 out of range: 16 / 64 = 25.0 %
    assert "masked_value 100.0 %, reflectance_out_of_range 25.0 %" in comp.metadata["dropped"][0]["reason"]


# -- the run: a scene left in DN is dropped from the composite, as before --------------------------------------

X0, Y0, RES, W, H = 403000.0, 3331000.0, 200.0, 100, 60  # covers both counties of the area fixture
T_AREA = Affine(RES, 0, X0, 0, -RES, Y0)
GAP_COLS = 10  # the good scenes have no data in columns 0–9 (x 403 000 … 405 000 m); the DN scene covers them


@pytest.fixture
def area(tmp_path):
    """Two counties over the products' footprint (tests/builders.py)."""
    return write_two_counties(tmp_path)


def _area_scene(folder, date, *, gap: bool, factor: float = 1.0):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(int(date.replace("-", "")))
    bands = {}
    for role, value in GOOD.items():
        data = (value + rng.normal(0, 0.005, (H, W))).astype("float32") * np.float32(factor)
        if gap:
            data[:, :GAP_COLS] = np.nan
        bands[role] = _tif(folder / f"{role}.tif", data, T_AREA, nodata=float("nan"))
    return {"kind": "geotiff", "bands": bands, "date": date}


def test_the_run_drops_a_scene_left_in_dn_and_reports_it(area, caplog):
    from ecoassess.config import load_config
    from ecoassess.pipeline import build_grid, read_study_area, run
    from ecoassess.stages.base import RunInputs

    imagery = [_area_scene(area / "s1", "2024-07-01", gap=True), _area_scene(area / "dn", "2024-07-10", gap=False,
                                                                             factor=10000.0),
               _area_scene(area / "s2", "2024-07-20", gap=True)]
    cfg = {"year": 2024, "study_area": {"path": "v/counties.gpkg", "id_field": "code", "name_field": "name"},
           "grid": {"resolution_m": 200}, "imagery": {"2024": imagery}, "outputs": {"tables": ["csv"], "maps": False}}
    path = area / "assessment.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="ecoassess.stages.base"):
        result = run(path, area / "out")
    assert not result.problems, result.problems
    assert "composites of 2024 are made again without it" in caplog.text  # found by the vegetation pass
    whole = result.tables["county_vegetation"].set_index("code").loc["000000"]
    # the DN scene is dropped: columns 0–9 are never observed by a kept scene → no data, not masked. By hand: the
    # counties start at 104° E = x ≈ 403 550 m (UTM 48N at 30° N), so the gap inside them is ≈ (405 000 − 403 550) m
    # × 11.1 km (0.1° of latitude) ≈ 16.1 km²; kept, the DN scene would make that area "masked" instead
    assert whole["ndvi_masked_km2"] == pytest.approx(0.0, abs=0.5)
    assert 13.0 < whole["ndvi_nodata_km2"] < 19.0
    quality = result.tables["scene_quality"].set_index(["date", "band"])
    assert (quality.loc["2024-07-10", "share_outside"] == 1.0).all()  # 10 000 × 0.05 … 0.40: all above 1.6
    assert (quality.loc["2024-07-01", "outside_cells"] == 0).all()

    # a stage that takes the composite as it is (RSEI, EI) gets the same choice of scenes
    config = load_config(path)
    inputs = RunInputs(config, build_grid(config, read_study_area(config)))
    comp = inputs.composite(2024, "median")
    assert comp.dates == [dt.date(2024, 7, 1), dt.date(2024, 7, 20)] and not comp.stale
    assert inputs.composite(2024, "median") is comp
