"""Red-line change detection and patch classification (issue 19 parts 2–3): ecoassess.redline.detect.

Scenes: tests/redline_scenes.py (100 × 100 cells of 30 m; a 3×3 block = 9 × 900 m² = 8100 m² = the default MMU).
Expected areas are cell counts × 900 m², or shapely areas of the planted cell blocks cut by the unit polygons.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from ecoassess.errors import AllMaskedError, InputError
from ecoassess.redline.activity import PatchFeatures, load_activity_table
from ecoassess.redline.detect import (PATCH_COLUMNS, UNIT_COLUMNS, change_type_label, clean_mask, detect_patches,
                                      elongation, location_label)
from ecoassess.redline.evidence import hysteresis, robust_location_scale, tolerant_differences
from tests import redline_scenes as S

CELL_M2 = 30.0 * 30.0


def truth_polygon(name):
    (rows, cols), _ = S.PLANTED[name]
    return S.cells(rows.start, rows.stop, cols.start, cols.stop)


def run(after_bands, before_bands, *, lc=True, harvest_lc=True, **kw):
    lc0, lc1 = S.base_landcover(), S.after_landcover()
    extra = {}
    if lc:
        extra = {"land_cover_before": S.landcover_array(lc0), "land_cover_after": S.landcover_array(lc1)}
    extra.update(kw)
    return detect_patches(S.dataset(before_bands, period="2023-07/2023-08"),
                          S.dataset(after_bands, period="2024-07/2024-08"), S.units(), **extra)


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(7)
    lc0, lc1 = S.base_landcover(), S.after_landcover()
    return {"before": S.reflectance(lc0, rng), "after": S.reflectance(lc1, rng, harvest=True),
            "after_growing": S.reflectance(lc1, rng), "same_after": S.reflectance(lc0, rng, harvest=True)}


@pytest.fixture(scope="module")
def with_land_cover(scene):
    return run(scene["after"], scene["before"])


@pytest.fixture(scope="module")
def imagery_only(scene):
    # no land cover, no clear mask, same-season dates (crops growing in both)
    return run(scene["after_growing"], scene["before"], lc=False)


def matched(patches, names, min_share=0.9):
    """Object recall and precision: a planted change of ``names`` is found when detected parts cover ≥ min_share
    of it; a detected part is right when ≥ min_share of it lies on any planted change (one below the MMU that
    misregistration smeared above it is still a real change)."""
    truth = {n: truth_polygon(n) for n in names}
    detected = shapely.union_all(patches.geometry.values) if len(patches) else shapely.Polygon()
    found = {n: detected.intersection(g).area / g.area >= min_share for n, g in truth.items()}
    planted = shapely.union_all([truth_polygon(n) for n in S.PLANTED])
    right = [g.intersection(planted).area / g.area >= min_share for g in patches.geometry]
    return found, right


ABOVE_MMU = ["quarry", "road", "town_growth", "straddle", "at_mmu", "diagonal"]


# -- the whole detection ------------------------------------------------------------------------------------------

def test_planted_patches_found_with_land_cover(with_land_cover):
    p = with_land_cover.patches
    assert list(p.columns) == PATCH_COLUMNS + ["geometry"]
    found, right = matched(p, ABOVE_MMU)
    assert all(found.values()), found                       # recall 6/6 ≥ 0.9
    assert all(right)                                       # precision 1.0: nothing on the harvested cropland
    assert p.crs == S.GRID.crs.to_wkt() or p.crs.equals(S.GRID.crs.to_wkt())
    # harvested cropland (1326 cells: 41×26 + 10×26) and the lake (10×11 = 110 cells) keep their class in the land
    # cover of both dates: seasonal / water level, rejected
    assert with_land_cover.info["seasonal_rejected_m2"] == pytest.approx((41 * 26 + 10 * 26 + 10 * 11) * CELL_M2)
    cropland = shapely.union_all([S.cells(5, 46, 5, 31), S.cells(88, 98, 25, 51)])
    assert all(g.intersection(cropland).area == 0 for g in p.geometry)


def _row(patches, name):
    g = truth_polygon(name)
    hits = patches[patches.geometry.intersection(g).area > 0]
    assert len(hits) >= 1, name
    return hits


def test_types_change_types_and_evidence_with_land_cover(with_land_cover):
    p = with_land_cover.patches
    quarry = _row(p, "quarry").iloc[0]
    assert (quarry.activity_type, quarry.activity_name, quarry.change_type) == ("mining", "采石场", "new")
    assert quarry.location == "inside" and quarry.unit_id == "HX-A"
    assert "ndvi_loss" in quarry.evidence and "lc:21->53" in quarry.evidence
    # 8×8 cells = 64 × 900 = 57 600 m²; the patch is the planted block (noise may add a cell at most)
    assert quarry.area_m2 == pytest.approx(64 * CELL_M2, abs=CELL_M2)
    assert quarry.ndvi_before > 0.7 and quarry.ndvi_after < 0.2 and quarry.fvc_after < quarry.fvc_before
    assert 0.8 <= quarry.confidence <= 1.0
    road = _row(p, "road").iloc[0]
    assert road.activity_type == "transport" and "elongation" in road.evidence
    town = _row(p, "town_growth").iloc[0]
    assert (town.activity_type, town.change_type) == ("settlement", "expanded")   # grows out of the town
    assert set(p.before_period) == {"2023-07/2023-08"} and set(p.after_sensor) == {"sentinel2_l2a"}


def test_imagery_alone_finds_and_types_the_planted_patches(imagery_only):
    p = imagery_only.patches
    found, right = matched(p, ABOVE_MMU)
    assert sum(found.values()) / len(found) >= 0.9 and all(found.values()), found
    assert sum(right) / len(right) >= 0.9
    assert _row(p, "quarry").iloc[0].activity_type == "mining"        # bare after: NDVI < 0.2
    assert _row(p, "road").iloc[0].activity_type == "transport"       # 1 × 41 cells: elongation 41
    town = _row(p, "town_growth").iloc[0]
    assert (town.activity_type, town.change_type) == ("settlement", "expanded")
    # without land cover the land-cover term of the confidence is 0.5: at most 0.4 + 0.3 + 0.3 × 0.5 = 0.85
    assert p.confidence.max() <= 0.85 + 1e-9
    assert imagery_only.info["land_cover"] == {"before": False, "after": False, "legend": "cas_lucc"}


def test_mmu_at_and_below(imagery_only, scene):
    p = imagery_only.patches
    at = _row(p, "at_mmu")
    assert at.area_m2.sum() >= 9 * CELL_M2                            # 3×3 = 8100 m² = the MMU: kept
    below = truth_polygon("below_mmu")                                 # 2×4 = 7200 m² < 8100 m²: dropped
    assert all(g.intersection(below).area == 0 for g in p.geometry)
    assert imagery_only.info["mmu_m2"] == 9 * CELL_M2
    # an MMU just above the detected block's area drops it (noise may have grown it by a cell: 9 or 10 cells)
    assert at.area_m2.sum() <= 10 * CELL_M2
    bigger = run(scene["after_growing"], scene["before"], lc=False, mmu_m2=at.area_m2.sum() + 1.0).patches
    assert all(g.intersection(truth_polygon("at_mmu")).area == 0 for g in bigger.geometry)


def test_patch_straddling_a_unit_edge_is_split_and_adds_up(with_land_cover):
    p = with_land_cover.patches
    parts = _row(p, "straddle")
    assert sorted(parts.location) == ["buffer", "inside"]
    # cols 46–49 inside unit A (4 × 10 cells), cols 50–55 in its buffer (6 × 10 cells)
    detected = shapely.union_all(parts.geometry.values)
    square = truth_polygon("straddle")
    assert detected.symmetric_difference(square).area == pytest.approx(0.0, abs=1e-6)
    by_loc = dict(zip(parts.location, parts.area_m2))
    assert by_loc["inside"] == pytest.approx(4 * 10 * CELL_M2)        # 36 000 m²
    assert by_loc["buffer"] == pytest.approx(6 * 10 * CELL_M2)        # 54 000 m²
    assert set(parts.unit_id) == {"HX-A"}


def test_split_along_a_diagonal_unit_edge_matches_shapely(with_land_cover):
    p = with_land_cover.patches
    parts = _row(p, "diagonal")
    square = truth_polygon("diagonal")
    assert shapely.union_all(parts.geometry.values).symmetric_difference(square).area == pytest.approx(0, abs=1e-6)
    unit_b = S.units().geometry.iloc[1]
    inside = square.intersection(unit_b).area
    # by hand: B's edge runs x = 70 + (row − 40)·25/60 cells; across rows 58…68 it leaves 4.5 → 0.333 cells of
    # cols 72…82 inside: 10 × (4.5 + 0.3333)/2 = 24.1667 cells = 21 750 m²; the rest, 68 250 m², is buffer
    assert inside == pytest.approx(21750.0)
    by_loc = dict(zip(parts.location, parts.area_m2))
    assert by_loc["inside"] == pytest.approx(inside)
    assert by_loc["buffer"] == pytest.approx(square.area - inside)
    assert by_loc["inside"] + by_loc["buffer"] == pytest.approx(100 * CELL_M2)
    assert set(parts.unit_id) == {"HX-B"}                               # the buffer part takes the nearest unit


def test_cloud_over_part_of_a_change(scene):
    after = {k: v.copy() for k, v in scene["after_growing"].items()}
    cloud = np.zeros((S.N, S.N), dtype=bool)
    cloud[8:13, 33:46] = True                                          # rows 8–12 over rows 10–12 of the quarry
    for k, v in zip(S.ROLES, [0.50, 0.49, 0.48, 0.52, 0.36, 0.26]):   # bright cloud reflectance (sample/spectra)
        after[k][cloud] = v
    res = detect_patches(S.dataset(scene["before"]), S.dataset(after, clear=~cloud), S.units())
    # the flag is grown by 90 m = 3 cells (Fmask's dilation): rows 5–15 × cols 30–48 = 11 × 19 = 209 cells
    assert res.info["mask_dilation_px"] == 3
    masked = S.cells(5, 16, 30, 49)
    assert all(g.intersection(masked).area == 0 for g in res.patches.geometry)   # never under the cloud
    quarry = _row(res.patches, "quarry")
    # the observed part only: rows 16–17 × cols 35–42 = 2 × 8 = 16 cells = 14 400 m²
    assert quarry.area_m2.sum() == pytest.approx(16 * CELL_M2, abs=CELL_M2)
    assert "partly_unobserved" in quarry.iloc[0].evidence
    units = res.units.set_index("unit_id")
    assert list(res.units.columns) == UNIT_COLUMNS
    # all 209 cells lie in unit A (cols < 50): 188 100 m² not observable; unit A = 100 × 50 cells = 4.5 km²
    assert units.loc["HX-A", "not_observable_m2"] == pytest.approx(209 * CELL_M2)
    assert units.loc["HX-A", "area_m2"] == pytest.approx(100 * 50 * CELL_M2)
    assert units.loc["HX-A", "observed_m2"] == pytest.approx((5000 - 209) * CELL_M2)
    assert units.loc["HX-B", "not_observable_m2"] == pytest.approx(0.0)
    # the same cloud as no data (NaN, no mask band; not grown): quarry rows 13–17 = 40 cells, 5 × 13 = 65 cells lost
    nan_after = {k: np.where(cloud, np.nan, v).astype("float32") for k, v in after.items()}
    res2 = detect_patches(S.dataset(scene["before"]), S.dataset(nan_after), S.units())
    assert all(g.intersection(S.cells(8, 13, 33, 46)).area == 0 for g in res2.patches.geometry)
    assert _row(res2.patches, "quarry").area_m2.sum() == pytest.approx(40 * CELL_M2, abs=CELL_M2)
    assert res2.units.set_index("unit_id").loc["HX-A", "not_observable_m2"] == pytest.approx(65 * CELL_M2)


def test_half_pixel_misregistration(scene):
    shifted = S.shift_half_pixel(scene["after_growing"])
    res = run(shifted, scene["before"], lc=False)
    # the after date's outlines moved by half a cell: a planted block and its detected patch overlap by about
    # (1 − 0.5/side)² of the block, ≥ 0.75 for every block here but the road (one cell wide: about half)
    found, right = matched(res.patches, ABOVE_MMU, min_share=0.45)
    assert all(found.values()), found
    assert sum(right) / len(right) >= 0.9, res.patches[["area_m2", "evidence"]]
    assert _row(res.patches, "quarry").iloc[0].activity_type == "mining"
    assert _row(res.patches, "road").iloc[0].activity_type == "transport"
    # no change at all, only the half-pixel shift (every edge of the town, lake, fields moves): no patch
    rng = np.random.default_rng(11)
    still = S.shift_half_pixel(S.reflectance(S.base_landcover(), rng))
    assert len(run(still, scene["before"], lc=False).patches) == 0


def test_illumination_and_gain_differences_make_no_patch(scene):
    before = scene["before"]
    rng = np.random.default_rng(5)
    again = S.reflectance(S.base_landcover(), rng)                     # same land, new noise
    # after = 1.15 × before: every index is a ratio of band differences, so unchanged
    brighter = {k: 1.15 * v for k, v in again.items()}
    assert len(run(brighter, before, lc=False).patches) == 0
    # band-specific gains and offsets (another sensor / atmosphere): NDVI shifts scene-wide, the robust
    # standardisation removes the shift
    gains = {"blue": (1.10, 0.010), "green": (1.12, 0.005), "red": (1.20, 0.010), "nir": (1.05, 0.0),
             "swir1": (1.15, -0.005), "swir2": (1.15, 0.0)}
    other = {k: (g * again[k] + o).astype("float32") for k, (g, o) in gains.items()}
    res = run(other, before, lc=False)
    assert len(res.patches) == 0
    assert abs(res.info["difference_stats"]["NDVI"]["median_delta"]) > 0.02


def test_seasonal_only_difference_makes_no_patch(scene):
    res = run(scene["same_after"], scene["before"], lc=False, land_cover_before=S.landcover_array(S.base_landcover()),
              land_cover_after=S.landcover_array(S.base_landcover()))
    assert len(res.patches) == 0
    # land cover of the before date alone also rejects cropland that stays cropland-like
    res = run(scene["same_after"], scene["before"], lc=False, land_cover_before=S.landcover_array(S.base_landcover()))
    assert len(res.patches) == 0


def test_land_cover_transition_alone_is_a_low_confidence_patch():
    # grassland ploughed to dry land looks alike in a growing-season median: only the land cover says so
    rng = np.random.default_rng(4)
    lc0 = S.base_landcover()
    lc1 = lc0.copy()
    lc1[70:86, 41:46] = 12                                              # 16 × 5 cells of grassland in unit A
    bands_b, bands_a = S.reflectance(lc0, rng), S.reflectance(lc0, rng)  # the imagery shows no change
    res = detect_patches(S.dataset(bands_b), S.dataset(bands_a), S.units(),
                         land_cover_before=S.landcover_array(lc0), land_cover_after=S.landcover_array(lc1))
    assert len(res.patches) == 1
    row = res.patches.iloc[0]
    assert (row.activity_type, row.change_type, row.evidence) == ("agriculture", "new", "lc:31->12")
    assert row.area_m2 == pytest.approx(80 * CELL_M2)
    # no spectral seed, no signal, land cover agrees: 0.4·0 + 0.3·0 + 0.3·1 = 0.3
    assert row.confidence == pytest.approx(0.3)
    # the imagery alone sees nothing there
    assert len(detect_patches(S.dataset(bands_b), S.dataset(bands_a), S.units()).patches) == 0


def test_water_level_on_a_water_class_is_not_a_patch():
    rng = np.random.default_rng(9)
    lc = S.base_landcover()
    lc[88:98, 16:20] = 42                                               # the lake's class reaches its high-water line
    dry = lc.copy()
    dry[88:98, 16:20] = 65                                              # the before image: a drawn-down, bare shore
    bands_b, bands_a = S.reflectance(dry, rng), S.reflectance(lc, rng)
    with_lc = detect_patches(S.dataset(bands_b), S.dataset(bands_a), S.units(),
                             land_cover_before=S.landcover_array(lc), land_cover_after=S.landcover_array(lc))
    assert len(with_lc.patches) == 0
    alone = detect_patches(S.dataset(bands_b), S.dataset(bands_a), S.units()).patches
    assert len(alone) == 1 and alone.iloc[0].activity_type == "water" and "water_gain" in alone.iloc[0].evidence


def test_restored_quarry_is_reduced():
    rng = np.random.default_rng(3)
    lc0 = S.base_landcover()
    lc0[20:30, 53:63] = 53                                              # an old quarry in unit A's buffer
    lc1 = S.base_landcover()                                            # planted with forest by the after date
    res = detect_patches(S.dataset(S.reflectance(lc0, rng)), S.dataset(S.reflectance(lc1, rng)), S.units(),
                         land_cover_before=S.landcover_array(lc0), land_cover_after=S.landcover_array(lc1))
    assert len(res.patches) == 1
    row = res.patches.iloc[0]
    assert (row.change_type, row.activity_type, row.location) == ("reduced", "mining", "buffer")
    assert "ndvi_gain" in row.evidence and "lc:53->21" in row.evidence
    assert row.area_m2 == pytest.approx(100 * CELL_M2, abs=CELL_M2)


def test_counties_centroids_and_labels(scene):
    import geopandas as gpd
    from pyproj import Transformer

    west, east = S.cells(0, 100, 0, 40), S.cells(0, 100, 40, 100)
    counties = gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["甲县", "乙县"]}, geometry=[west, east],
                                crs=S.GRID.crs.to_wkt()).to_crs("EPSG:4490")
    res = run(scene["after_growing"], scene["before"], lc=False, counties=counties)
    quarry = _row(res.patches, "quarry").iloc[0]                        # cols 35–42: mostly west of col 40
    assert (quarry.county_code, quarry.county_name) == ("519901", "甲县")
    straddle = _row(res.patches, "straddle")
    assert set(straddle.county_code) == {"519902"}
    # centroid of the quarry block: cell centre (row 14, col 39) corner = x0 + 39·30, y1 − 14·30
    lon, lat = Transformer.from_crs(S.GRID.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(
        S.X0 + 39 * 30.0, S.Y1 - 14 * 30.0)
    assert quarry.centroid_lon == pytest.approx(lon, abs=2e-4) and quarry.centroid_lat == pytest.approx(lat, abs=2e-4)
    assert location_label("buffer") == "缓冲区" and location_label("inside") == "红线内"
    assert [change_type_label(c) for c in ("new", "expanded", "reduced")] == ["新增", "扩大", "减少"]


def test_units_from_a_gbk_shapefile(tmp_path, scene):
    from ecoassess.readers import read_vector

    units = S.units()
    units["unit_id"] = [" 5199001", "5199002 "]                         # text ids with stray spaces
    path = tmp_path / "红线.shp"
    units.to_file(path, encoding="GBK")
    (tmp_path / "红线.cpg").unlink(missing_ok=True)                       # as GBK tools on Windows write it
    read = read_vector(path)
    res = detect_patches(S.dataset(scene["before"]), S.dataset(scene["after_growing"]), read)
    assert set(res.units.unit_id) == {"5199001", "5199002"}
    assert "白云岭水源涵养生态保护红线" in set(res.patches.unit_name)


def test_buffer_zero_keeps_only_inside_parts(scene):
    res = run(scene["after_growing"], scene["before"], lc=False, buffer_m=0.0)
    assert set(res.patches.location) == {"inside"}
    straddle = _row(res.patches, "straddle")
    assert straddle.area_m2.sum() == pytest.approx(40 * CELL_M2)


# -- parts --------------------------------------------------------------------------------------------------------

def test_robust_location_scale_by_hand():
    d = np.array([1, 2, 3, 4, 5, 6, 100], dtype=float)
    # pass 1: median 4, |d − 4| = 3 2 1 0 1 2 96 → MAD 2, σ = 2.9652; |z| < 3 ↔ |d − 4| < 8.8956 drops 100
    # pass 2 over 1…6: median 3.5, |d − 3.5| = 2.5 1.5 .5 .5 1.5 2.5 → MAD 1.5, σ = 1.4826 × 1.5 = 2.2239
    med, sigma = robust_location_scale(d, np.ones(7, bool), sigma_floor=0.01)
    assert med == pytest.approx(3.5) and sigma == pytest.approx(2.2239, abs=1e-4)
    assert robust_location_scale(np.zeros(5), np.ones(5, bool), sigma_floor=0.02) == (0.0, 0.02)


def test_tolerant_difference_ignores_a_shifted_edge_but_not_a_one_cell_road():
    before = np.array([[0.8, 0.8, 0.2, 0.2]] * 3)
    shifted = np.array([[0.8, 0.5, 0.2, 0.2]] * 3)                     # the edge moved half a cell
    dec, _ = tolerant_differences(before, shifted)
    assert dec[1, 1] == pytest.approx(0.5 - 0.2)                        # above the neighbourhood minimum: no loss
    road = np.full((3, 5), 0.8)
    after = road.copy()
    after[:, 2] = 0.15
    dec, inc = tolerant_differences(road, after)
    assert dec[1, 2] == pytest.approx(0.15 - 0.8)                       # below every before neighbour
    assert inc[1, 2] == pytest.approx(0.15 - 0.8)


def test_hysteresis_keeps_only_seeded_regions():
    grow = np.zeros((5, 7), bool)
    grow[1:3, 1:3] = True
    grow[1:4, 5] = True
    seeds = np.zeros_like(grow)
    seeds[2, 2] = True
    assert hysteresis(grow, seeds).sum() == 4


def test_clean_mask_fills_small_holes_and_applies_mmu():
    m = np.zeros((12, 12), bool)
    m[1:6, 1:6] = True
    m[3, 3] = False                                                     # a one-cell hole: filled
    m[9:11, 9:11] = True                                                # 4 cells < MMU 9: dropped
    obs = np.ones_like(m)
    labels = clean_mask(m, obs, mmu_cells=9)
    assert labels.max() == 1 and (labels > 0).sum() == 25
    obs[3, 3] = False                                                   # an unobserved hole stays a hole
    assert (clean_mask(m, obs, mmu_cells=9) > 0).sum() == 24


def test_elongation_by_hand():
    strip = np.zeros((5, 45), bool)
    strip[2, 2:43] = True                                               # 1 × 41: width 1 → 41
    assert elongation(strip) == pytest.approx(41.0)
    wide = np.zeros((7, 34), bool)
    wide[2:5, 2:32] = True                                              # 3 × 30: max distance 2 → width 3 → 90/9
    assert elongation(wide) == pytest.approx(10.0)
    square = np.zeros((9, 9), bool)
    square[2:7, 2:7] = True                                             # 5 × 5: distance 3 → width 5 → 25/25
    assert elongation(square) == pytest.approx(1.0)


def test_activity_rules():
    t = load_activity_table()
    assert set(t.types) == {"agriculture", "settlement", "industry", "mining", "energy", "tourism", "transport",
                            "water", "other"}
    assert t.types["mining"]["hj1156"] == "矿产资源开发"
    f = PatchFeatures(frozenset({"ndvi_loss", "bsi_gain"}), 1.2, 0.15, 21, 53, True)
    assert t.classify(f)[0] == "mining"
    assert t.classify(PatchFeatures(frozenset({"ndvi_loss"}), 1.2, 0.35, 21, 53, True))[0] == "industry"
    assert t.classify(PatchFeatures(frozenset({"ndvi_loss"}), 12.0, 0.35, 21, 53, True))[0] == "transport"
    assert t.classify(PatchFeatures(frozenset({"ndvi_loss"}), 1.0, 0.3, 31, 12, True))[0] == "agriculture"
    assert t.classify(PatchFeatures(frozenset({"water_gain"}), 1.0, -0.2, None, None, False))[0] == "water"
    assert t.classify(PatchFeatures(frozenset({"ndbi_gain"}), 1.0, 0.3, None, None, False))[0] == "settlement"
    assert t.classify(PatchFeatures(frozenset({"ndvi_loss"}), 1.0, 0.5, None, None, False))[0] == "other"
    # a restored quarry is typed by what was removed
    g = PatchFeatures(frozenset({"ndvi_gain", "bsi_loss"}), 1.0, 0.8, 53, 21, True).mirrored(0.15)
    assert t.classify(g)[0] == "mining"


# -- bad input ----------------------------------------------------------------------------------------------------

def test_bad_inputs_give_one_clear_error(scene, tmp_path):
    before, after = S.dataset(scene["before"]), S.dataset(scene["after_growing"])
    with pytest.raises(InputError, match=r"nir"):
        detect_patches(before.drop_vars("nir"), after, S.units())
    text = after.copy()
    text["red"] = S.GRID.wrap(np.full((S.N, S.N), "0.1", dtype=object))
    with pytest.raises(InputError, match=r"\[red\].*text"):
        detect_patches(before, text, S.units())
    with pytest.raises(InputError, match=r"no field 'code'.*unit_id, name"):
        detect_patches(before, after, S.units(), unit_id_field="code")
    dup = S.units()
    dup["unit_id"] = ["HX-A", "HX-A"]
    with pytest.raises(InputError, match=r"HX-A.*more than once"):
        detect_patches(before, after, dup)
    no_crs = S.units().set_crs(None, allow_override=True)
    with pytest.raises(InputError, match=r"no CRS"):
        detect_patches(before, after, no_crs)
    small = after.isel(x=slice(0, 50), y=slice(0, 50))
    with pytest.raises(InputError, match=r"another grid"):
        detect_patches(before, small, S.units())
    lc = S.base_landcover()
    lc[0, 0] = 77
    with pytest.raises(InputError, match=r"77.*cas_lucc"):
        detect_patches(before, after, S.units(), land_cover_before=S.landcover_array(lc))
    cloudy = S.dataset(scene["after_growing"], clear=np.zeros((S.N, S.N), bool))
    with pytest.raises(AllMaskedError, match="observed in both dates"):
        detect_patches(before, cloudy, S.units())
    bad_table = tmp_path / "types.yaml"
    bad_table.write_text("types: {other: {zh: 其他, en: other, hj1156: 其它}}\nrules:\n  - {type: other, "
                         "signals_any: [smoke]}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"rules\[1\].*smoke"):
        detect_patches(before, after, S.units(), activity_table=bad_table)


def test_non_equal_area_grid_is_refused(scene):
    ds = S.dataset(scene["before"])
    utm = ds.rio.write_crs("EPSG:32649")
    with pytest.raises(InputError, match=r"does not preserve area"):
        detect_patches(utm, utm, S.units().set_crs("EPSG:32649", allow_override=True))


def test_activity_table_is_not_a_land_cover_legend():
    from ecoassess.legends import available_legends, load_legend

    assert "redline_activity_types" not in available_legends()
    assert {"cas_lucc", "clcd", "esa_worldcover", "dynamic_world", "corine"} <= set(available_legends())
    with pytest.raises(KeyError, match="unknown land-cover legend"):
        load_legend("redline_activity_types")
