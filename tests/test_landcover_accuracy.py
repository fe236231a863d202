"""Accuracy and error-adjusted areas (issue 21 part 4): the worked example of Olofsson et al. 2014 §5, hand
arithmetic, coverage of the confidence intervals by simulation, the validation-sample drawer, the group split,
and cross-validated accuracy on 120 real Landsat 8 pixels."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from affine import Affine
from pyproj import CRS

from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.landcover.accuracy import (accuracy_summary, allocate_sample, class_pixel_counts, confusion_matrix,
                                          error_adjusted_areas, error_adjusted_areas_by_zone, group_split,
                                          propose_validation_sample)

# Olofsson et al. 2014, Table 8: sample counts, rows = map class, columns = reference class
OLOFSSON_CLASSES = ["deforestation", "forest gain", "stable forest", "stable non-forest"]
OLOFSSON_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
OLOFSSON_PIXELS = [200_000, 150_000, 3_200_000, 6_450_000]
HA_PER_PIXEL = 30 * 30 / 10_000  # 0.09 ha


def olofsson_confusion() -> pd.DataFrame:
    return pd.DataFrame(OLOFSSON_COUNTS, index=OLOFSSON_CLASSES, columns=OLOFSSON_CLASSES)


def olofsson_area_ha() -> pd.Series:
    return pd.Series(OLOFSSON_PIXELS, index=OLOFSSON_CLASSES) * HA_PER_PIXEL


# -- the worked example ---------------------------------------------------------------------------------------------


def test_olofsson_2014_worked_example():
    t = error_adjusted_areas(olofsson_confusion(), olofsson_area_ha())
    # published figures (Olofsson et al. 2014 §5, p. 54)
    assert round(t.attrs["overall"], 3) == 0.947
    assert list(t["users"].round(2)) == [0.88, 0.73, 0.93, 0.96]
    assert list(t["producers"].round(2)) == [0.75, 0.85, 0.93, 0.96]
    half = t["ci_high"] - t["adjusted_area"]
    assert round(t.loc["deforestation", "adjusted_area"]) == 21_158
    assert round(half["deforestation"]) == 6_158
    assert round(t.loc["forest gain", "adjusted_area"]) == 11_686
    assert round(half["forest gain"]) == 3_756
    assert t.attrs["total_area"] == pytest.approx(900_000)  # 10,000,000 pixels × 0.09 ha


def test_olofsson_deforestation_by_hand():
    t = error_adjusted_areas(olofsson_confusion(), olofsson_area_ha())
    row = t.loc["deforestation"]
    # W = 0.02, 0.015, 0.32, 0.645; p̂_.1 = 0.02·66/75 + 0.32·1/165 + 0.645·2/325
    #     = 0.0176 + 0.0019394 + 0.0039692 = 0.0235086; × 900,000 ha = 21,157.8 ha
    assert row["adjusted_area"] == pytest.approx(21_157.76, abs=0.01)
    # V(p̂_.1) = 0.02²·(66/75)(9/75)/74 + 0.32²·(1/165)(164/165)/164 + 0.645²·(2/325)(323/325)/324
    #          = 5.7081e-7 + 3.7612e-6 + 7.8532e-6 = 1.21852e-5 ; SE = 0.0034907 ; × 900,000 = 3,141.6 ha
    assert row["adjusted_area_se"] == pytest.approx(3_141.6, abs=0.2)
    # U_1 = 0.88, V(U_1) = 0.88·0.12/74 = 0.00142703, SE = 0.037776
    assert row["users_se"] == pytest.approx(0.037776, abs=1e-6)
    # eq. 7 in pixels: N̂_.1 = 200000·66/75 + 3.2e6·1/165 + 6.45e6·2/325 = 176000 + 19393.94 + 39692.31 = 235086.25
    # P_1 = 176000/235086.25 = 0.748661
    # term 1 = 200000²·(1-0.748661)²·0.00142703 = 4e10·0.0631713·0.00142703 = 3.60589e6
    # term 2 = 0.748661²·(3.2e6²·(1/165)(164/165)/164 + 6.45e6²·(2/325)(323/325)/324)
    #        = 0.560493·(3.76125e8 + 7.85317e8) = 6.50980e8
    # V = (3.60589e6 + 6.50980e8)/235086.25² = 6.54586e8/5.52655e10 = 0.0118444 ; SE = 0.108832
    assert row["producers"] == pytest.approx(0.748661, abs=1e-6)
    assert row["producers_se"] == pytest.approx(0.108832, abs=2e-6)
    # V(Ô) = Σ W_i² U_i(1-U_i)/(n_i-1) = 0.02²·0.88·0.12/74 + 0.015²·(55/75)(20/75)/74
    #        + 0.32²·(153/165)(12/165)/164 + 0.645²·(313/325)(12/325)/324
    #      = 5.7081e-7 + 5.9459e-7 + 4.2119e-5 + 4.6002e-5 = 8.9287e-5 ; SE = 0.0094492
    assert t.attrs["overall_se"] == pytest.approx(0.0094492, abs=2e-5)


def test_areas_in_any_unit_scale_and_sum_to_the_map():
    ha = error_adjusted_areas(olofsson_confusion(), olofsson_area_ha())
    px = error_adjusted_areas(olofsson_confusion(), dict(zip(OLOFSSON_CLASSES, OLOFSSON_PIXELS)))
    assert np.allclose(px["adjusted_area"] * HA_PER_PIXEL, ha["adjusted_area"])
    assert np.allclose(px["adjusted_area_se"] * HA_PER_PIXEL, ha["adjusted_area_se"])
    assert ha["adjusted_area"].sum() == pytest.approx(900_000)
    assert list(ha.columns[:7]) == ["mapped_area", "adjusted_area", "adjusted_area_se", "ci_low", "ci_high",
                                    "users", "producers"]


def test_summary_weighted_matches_areas_and_unweighted_is_sample_counts():
    w = accuracy_summary(olofsson_confusion(), olofsson_area_ha())
    assert w.weighted and w.overall == pytest.approx(0.946512, abs=1e-6)
    u = accuracy_summary(olofsson_confusion())
    # sample counts: (66 + 55 + 153 + 313) / 640 = 587 / 640
    assert u.overall == pytest.approx(587 / 640)
    assert u.producers["deforestation"] == pytest.approx(66 / 69)
    assert u.users["forest gain"] == pytest.approx(55 / 75)
    assert list(u.table["n_map"]) == [75, 75, 165, 325] and list(u.table["n_reference"]) == [69, 56, 175, 340]
    text = w.text()
    assert "producer's" in text and "0.749" in text and "area-weighted" in text


def test_confidence_level_changes_the_interval_only():
    t90 = error_adjusted_areas(olofsson_confusion(), olofsson_area_ha(), confidence=0.90)
    # z(0.90) = 1.644854
    half = t90.loc["deforestation", "ci_high"] - t90.loc["deforestation", "adjusted_area"]
    assert half == pytest.approx(1.644854 * 3_141.6, abs=1.0)
    with pytest.raises(InputError, match="confidence"):
        error_adjusted_areas(olofsson_confusion(), olofsson_area_ha(), confidence=95)


# -- confusion matrix from real-shaped tables -------------------------------------------------------------------------


def test_confusion_matrix_from_text_codes():
    # codes as they come out of CSV/Excel: text, floats, padded
    m = ["21", 21.0, " 22 ", 22, 41, "41"]
    r = [21, "21", 22.0, 41, "41", " 41"]
    c = confusion_matrix(m, r)
    assert c.index.name == "map" and c.columns.name == "reference"
    assert list(c.index) == [21, 22, 41] and list(c.columns) == [21, 22, 41]
    assert c.loc[21, 21] == 2 and c.loc[22, 22] == 1 and c.loc[22, 41] == 1 and c.loc[41, 41] == 2
    assert c.to_numpy().sum() == 6


def test_confusion_matrix_fixed_classes_add_empty_rows():
    c = confusion_matrix([1, 2], [1, 2], classes=[3, 2, 1])
    assert list(c.index) == [3, 2, 1] and c.loc[3].sum() == 0 and c.loc[1, 1] == 1


def test_confusion_matrix_gap_is_one_clear_error():
    with pytest.raises(InputError) as err:
        confusion_matrix([1, 2, 2, 1], [1, None, "", 1], source="validation.csv")
    text = str(err.value)
    assert "validation.csv" in text and "reference class" in text and "rows 1, 2" in text


def test_confusion_matrix_code_outside_legend():
    with pytest.raises(InputError, match=r"outside the legend: 99 \(rows 2"):
        confusion_matrix([1, 2, 99], [1, 2, 2], classes=[1, 2])


def test_error_adjusted_needs_two_samples_per_mapped_class():
    conf = pd.DataFrame([[10, 0], [1, 0]], index=[1, 2], columns=[1, 2])
    with pytest.raises(InputError, match=r"2 \(1\) have fewer than 2"):
        error_adjusted_areas(conf, {1: 50.0, 2: 50.0})


def test_error_adjusted_mapped_class_without_samples():
    conf = pd.DataFrame([[10, 0], [1, 9]], index=[1, 2], columns=[1, 2])
    with pytest.raises(InputError, match="3 cover 5 of the map"):
        error_adjusted_areas(conf, {1: 50.0, 2: 45.0, 3: 5.0})
    with pytest.raises(InputError, match="no mapped area"):
        error_adjusted_areas(conf, {1: 50.0, 2: 0.0})
    with pytest.raises(InputError, match="not a number"):
        error_adjusted_areas(conf, {1: 50.0, 2: "forty"})


def test_reference_class_missing_from_the_map_gets_an_area():
    # class 3 was never mapped, but 2 of the 10 samples of map class 2 are class 3 on the ground:
    # p̂_.3 = W_2·2/10 = 0.4·0.2 = 0.08 -> 0.08 × 100 km² = 8 km²
    conf = pd.DataFrame({1: [10, 0], 2: [0, 8], 3: [0, 2]}, index=[1, 2])
    t = error_adjusted_areas(conf, {1: 60.0, 2: 40.0})
    assert t.loc[3, "mapped_area"] == 0 and t.loc[3, "adjusted_area"] == pytest.approx(8.0)
    # SE(p̂_.3) = sqrt(0.4²·0.2·0.8/9) = 0.053333 -> 5.3333 km²
    assert t.loc[3, "adjusted_area_se"] == pytest.approx(5.3333, abs=1e-4)
    assert t.loc[3, "producers"] == 0 and np.isnan(t.loc[3, "users"])
    # 8 − 1.96·5.333 < 0: the interval's low end is clipped at 0
    assert t.loc[3, "ci_low"] == 0


# -- coverage of the intervals by simulation ----------------------------------------------------------------------------

#: a synthetic population: 3 map classes (strata) × 3 true classes, pixel counts (rows map, columns truth)
#: every off-diagonal cell holds ≥ 5 % of its stratum, so each is met by several sample units (the normal interval's
#: premise; with 1-3 % slivers of large strata coverage falls to ≈ 0.91, see the module docstring)
POP = np.array([[7_000, 2_000, 1_000],       # map 1: 10,000 px
                [5_000, 40_000, 5_000],      # map 2: 50,000 px
                [10_500, 14_000, 115_500]])  # map 3: 140,000 px


def test_intervals_cover_the_true_area_95_percent_of_the_time():
    """Many stratified random samples (without replacement) from a known map + truth: the true area of each class
    lies in the 95 % interval in about 95 % of them, the estimates are unbiased and so are the accuracies."""
    rng = np.random.default_rng(20140242)
    n_h = [80, 150, 250]
    mapped = pd.Series(POP.sum(axis=1), index=[1, 2, 3])
    true_area = POP.sum(axis=0)                                   # 22,500 / 56,000 / 121,500
    true_pa = np.diag(POP) / true_area                            # 0.3111 / 0.7143 / 0.9506
    true_oa = np.trace(POP) / POP.sum()                           # 162,500 / 200,000 = 0.8125
    reps = 2000
    hit_area = np.zeros(3)
    hit_pa = np.zeros(3)
    hit_oa = 0
    est_sum = np.zeros(3)
    est_sq = np.zeros(3)
    var_sum = np.zeros(3)
    for _ in range(reps):
        counts = np.array([rng.multivariate_hypergeometric(POP[i], n_h[i]) for i in range(3)])
        conf = pd.DataFrame(counts, index=[1, 2, 3], columns=[1, 2, 3])
        t = error_adjusted_areas(conf, mapped)
        hit_area += ((t["ci_low"] <= true_area) & (true_area <= t["ci_high"])).to_numpy()
        est_sum += t["adjusted_area"].to_numpy()
        est_sq += t["adjusted_area"].to_numpy() ** 2
        var_sum += t["adjusted_area_se"].to_numpy() ** 2
        z = t.attrs["z"]
        hit_pa += (np.abs(t["producers"] - true_pa) <= z * t["producers_se"]).to_numpy()
        hit_oa += abs(t.attrs["overall"] - true_oa) <= z * t.attrs["overall_se"]
    coverage = hit_area / reps
    print("coverage area", coverage, "producer's", hit_pa / reps, "overall", hit_oa / reps)
    # binomial SD of a coverage of 0.95 over 2000 runs: sqrt(0.95·0.05/2000) = 0.0049; the normal interval runs
    # slightly short (≈ 0.94); a variance term left out or a W_i where W_i² belongs would leave this band
    assert np.all((coverage > 0.925) & (coverage < 0.97)), coverage
    assert np.all((hit_pa / reps > 0.92) & (hit_pa / reps < 0.97)), hit_pa / reps
    assert 0.925 < hit_oa / reps < 0.97, hit_oa / reps
    # unbiased: mean estimate within 1 % of the truth
    mean = est_sum / reps
    assert np.allclose(mean, true_area, rtol=0.01)
    # the estimated variance (mean SE²) matches the spread of the estimates across samples within 10 %
    spread = est_sq / reps - mean ** 2
    assert np.allclose(var_sum / reps, spread, rtol=0.10), (var_sum / reps, spread)


def test_user_accuracy_interval_covers():
    """eq. 6 for the user's accuracy: the true share of map class 1 that is class 1 (7,000/10,000) is covered."""
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(600):
        counts = np.array([rng.multivariate_hypergeometric(POP[i], 80) for i in range(3)])
        t = error_adjusted_areas(pd.DataFrame(counts, index=[1, 2, 3], columns=[1, 2, 3]),
                                 pd.Series(POP.sum(axis=1), index=[1, 2, 3]))
        hits += abs(t.loc[1, "users"] - 0.7) <= t.attrs["z"] * t.loc[1, "users_se"]
    # 80 of 10,000 without replacement: the finite-population factor is 0.992, so the binomial interval holds;
    # SD of a coverage over 600 runs ≈ 0.009
    assert abs(hits / 600 - 0.95) < 0.025, hits / 600


# -- sample allocation and drawing ---------------------------------------------------------------------------------------


def test_allocation_of_olofsson_example():
    # §5.1.1 example: n = 640 with 75 for each change class, the remaining 490 shared by area between the stable
    # classes: 490·0.32/0.965 = 162.49 and 490·0.645/0.965 = 327.51 -> 162 and 328 (paper: 165 and 325, rounded)
    n = allocate_sample(pd.Series(OLOFSSON_PIXELS, index=OLOFSSON_CLASSES), 640, min_per_class=75)
    assert list(n) == [75, 75, 162, 328]


def test_allocation_variants():
    px = pd.Series({1: 50_000, 2: 30_000, 3: 15_000, 4: 5_000})
    # proportional: 200 × 0.5/0.3/0.15/0.05 = 100/60/30/10
    assert list(allocate_sample(px, 200, allocation="proportional")) == [100, 60, 30, 10]
    assert list(allocate_sample(px, 200, allocation="equal")) == [50, 50, 50, 50]
    # olofsson, min 50: class 4 (10) and class 3 (30) raised to 50; 100 left for classes 1 and 2 in 5:3
    # -> 62.5 / 37.5 ; class 2's 37.5 < 50 so it is raised too, leaving 50 for class 1
    assert list(allocate_sample(px, 200, min_per_class=50)) == [50, 50, 50, 50]
    # n = 400: proportional 200/120/60/20 -> class 4 raised to 50; 350 for classes 1-3 in 50:30:15
    # -> 184.21 / 110.53 / 55.26 (all ≥ 50); floors 184 + 110 + 55 + 50 = 399, the largest remainder (.53) -> class 2
    assert list(allocate_sample(px, 400, min_per_class=50)) == [184, 111, 55, 50]
    # a class with fewer pixels than the minimum gives all it has (12); the rest is shared
    small = pd.Series({1: 1_000, 2: 12})
    assert list(allocate_sample(small, 100, min_per_class=50)) == [88, 12]
    with pytest.raises(InputError, match="less than 150"):
        allocate_sample(px.iloc[:3], 120, min_per_class=50)
    with pytest.raises(InputError, match="allocation"):
        allocate_sample(px, 100, allocation="neyman")


def class_raster(values: np.ndarray, *, nodata=255, crs="EPSG:32650", x0=499_000.0, y0=10_000.0, res=30.0):
    grid = AnalysisGrid(CRS.from_user_input(crs), Affine(res, 0.0, x0, 0.0, -res, y0), values.shape[1],
                        values.shape[0])
    da = grid.wrap(values, name="land_cover")
    da.attrs["_FillValue"] = nodata
    return da


def planted_map(seed=3, shape=(120, 150)):
    rng = np.random.default_rng(seed)
    v = np.full(shape, 3, dtype=np.uint8)
    v[:, :40] = 2
    v[10:20, 60:80] = 1            # a rare class: 200 px
    v[rng.random(shape) < 0.05] = 255  # nodata gaps
    return v


def test_proposed_sample_has_the_allocation_on_the_right_pixels():
    v = planted_map()
    da = class_raster(v)
    s = propose_validation_sample(da, 120, min_per_class=30, seed=1)
    counts = class_pixel_counts(da)
    assert counts.index.tolist() == [1, 2, 3] and 255 not in counts.index
    assert counts.sum() == int((v != 255).sum())
    alloc = allocate_sample(counts, 120, min_per_class=30)
    assert s["map_class"].value_counts().sort_index().tolist() == alloc.tolist()
    # each point is the centre of a pixel of its class; no pixel twice
    col = ((s["x"] - 499_000.0) / 30 - 0.5).round().astype(int)
    row = ((10_000.0 - s["y"]) / 30 - 0.5).round().astype(int)
    assert (v[row, col] == s["map_class"].astype(int)).all()
    assert not pd.Series(list(zip(row, col))).duplicated().any()
    assert s["sample_id"].tolist() == list(range(1, 121))
    assert s["reference_class"].isna().all() and s.crs == CRS.from_epsg(32650)
    assert (s["stratum_pixels"] == s["map_class"].map(counts)).all()
    # rows are shuffled: the map class does not come in blocks
    assert s["map_class"].iloc[:40].nunique() > 1
    # UTM 50N near the equator: x = 500,000 m is the central meridian 117° E, northing = 0.9996 × meridian arc;
    # one degree is 111,320 m of the equator and 110,574 m of the meridian there
    near = s.loc[(s["x"] - 500_000).abs().idxmin()]
    assert near["lon"] == pytest.approx(117 + (near["x"] - 500_000) / (0.9996 * 111_320), abs=2e-5)
    assert near["lat"] == pytest.approx(near["y"] / (0.9996 * 110_574), abs=2e-5)


def test_proposed_sample_is_seeded_and_independent_of_the_band_size():
    da = class_raster(planted_map())
    a = propose_validation_sample(da, 90, min_per_class=20, seed=5, band_rows=7)
    b = propose_validation_sample(da, 90, min_per_class=20, seed=5, band_rows=1000)
    c = propose_validation_sample(da.chunk({"y": 33, "x": 50}), 90, min_per_class=20, seed=5)
    assert a[["x", "y", "map_class"]].equals(b[["x", "y", "map_class"]])
    assert a[["x", "y", "map_class"]].equals(c[["x", "y", "map_class"]])
    d = propose_validation_sample(da, 90, min_per_class=20, seed=6)
    assert not a[["x", "y"]].equals(d[["x", "y"]])


def test_sample_from_drawer_gives_intervals_that_cover_the_planted_truth():
    """End to end: draw with the helper, label from a planted truth, estimate; repeated over 200 seeds the estimates
    centre on the true areas and the 95 % intervals contain them about 95 % of the time."""
    rng = np.random.default_rng(11)
    shape = (100, 100)
    mapped = np.full(shape, 3, dtype=np.uint8)
    mapped[:, :30] = 2
    mapped[40:60, 40:60] = 1
    truth = mapped.copy()
    flip = rng.random(shape)
    truth[(mapped == 1) & (flip < 0.2)] = 3       # 20 % of map class 1 is class 3 on the ground
    truth[(mapped == 2) & (flip < 0.1)] = 1       # 10 % of map class 2 is class 1
    truth[(mapped == 3) & (flip < 0.15)] = 2      # 15 % of map class 3 is class 2
    da = class_raster(mapped, nodata=255)
    true_area = pd.Series(np.bincount(truth.ravel(), minlength=4)[1:], index=[1, 2, 3])
    px = class_pixel_counts(da)
    # 400 / 3000 / 6600 px; 200 units, ≥ 50 each: 50 / 50 / 100 (150·3000/9600 = 46.9 < 50)
    assert allocate_sample(px, 200, min_per_class=50).tolist() == [50, 50, 100]
    hits = np.zeros(3)
    est = []
    reps = 200
    for seed in range(reps):
        s = propose_validation_sample(da, 200, min_per_class=50, seed=seed)
        col = ((s["x"] - 499_000.0) / 30 - 0.5).round().astype(int).to_numpy()
        row = ((10_000.0 - s["y"]) / 30 - 0.5).round().astype(int).to_numpy()
        t = error_adjusted_areas(confusion_matrix(s["map_class"], truth[row, col], classes=[1, 2, 3]), px)
        hits += ((t["ci_low"] <= true_area) & (true_area <= t["ci_high"])).to_numpy()
        est.append(t["adjusted_area"].to_numpy())
    est = np.array(est)
    # unbiased draws: the mean of 200 estimates lies within 3 standard errors of the mean of the truth
    assert np.all(np.abs(est.mean(axis=0) - true_area) < 3 * est.std(axis=0) / np.sqrt(reps))
    # 200 runs: SD of a 0.95 coverage is 0.015; accept 0.90-0.99
    assert np.all((hits / reps > 0.90) & (hits / reps < 0.99)), hits / reps


def test_sample_of_an_unreferenced_or_empty_map_is_an_error():
    with pytest.raises(InputError, match="class_map"):
        propose_validation_sample(xr.DataArray(np.ones((5, 5)), dims=("y", "x")), 5)
    with pytest.raises(InputError, match="no classified pixel"):
        propose_validation_sample(class_raster(np.full((5, 5), 255, dtype=np.uint8)), 5)


# -- per county -------------------------------------------------------------------------------------------------------


def test_one_zone_is_the_whole_area():
    m, r = [], []
    for i, row in enumerate(OLOFSSON_COUNTS):
        for j, n in enumerate(row):
            m += [OLOFSSON_CLASSES[i]] * n
            r += [OLOFSSON_CLASSES[j]] * n
    by_zone = error_adjusted_areas_by_zone(m, r, ["510101"] * len(m),
                                           pd.DataFrame([olofsson_area_ha()], index=["510101"]))
    whole = error_adjusted_areas(olofsson_confusion(), olofsson_area_ha())
    assert by_zone["zone"].unique().tolist() == [510101]
    assert np.allclose(by_zone["adjusted_area"], whole["adjusted_area"])
    assert np.allclose(by_zone["adjusted_area_se"], whole["adjusted_area_se"])
    assert not by_zone["borrowed"].any()


def test_two_counties_by_hand_and_a_borrowed_row():
    # county A: map 1 = 60 km², map 2 = 40 km²; samples: map 1 → 4× ref 1, 1× ref 2; map 2 → 5× ref 2
    # county B: map 1 = 10 km², map 2 = 90 km²; samples: map 1 → 1× ref 1 (too few), map 2 → 3× ref 2, 1× ref 1
    m = [1] * 5 + [2] * 5 + [1] + [2] * 4
    r = [1, 1, 1, 1, 2] + [2] * 5 + [1] + [2, 2, 2, 1]
    zones = ["A"] * 10 + ["B"] * 5
    areas = pd.DataFrame({1: [60.0, 10.0], 2: [40.0, 90.0]}, index=["A", "B"])
    t = error_adjusted_areas_by_zone(m, r, zones, areas).set_index(["zone", "class"])
    # A: Â_1 = 100·(0.6·4/5 + 0.4·0/5) = 48 km²; Â_2 = 100·(0.6·1/5 + 0.4·1) = 52 km²
    assert t.loc[("A", 1), "adjusted_area"] == pytest.approx(48.0)
    assert t.loc[("A", 2), "adjusted_area"] == pytest.approx(52.0)
    # SE(p̂_.1) = sqrt(0.6²·0.8·0.2/4 + 0) = sqrt(0.0144) = 0.12 -> 12 km²
    assert t.loc[("A", 1), "adjusted_area_se"] == pytest.approx(12.0)
    # B: map 1 has 1 sample there -> its row is borrowed from the whole area (5 ref 1, 1 ref 2 of 6):
    # Â_1 = 100·(0.1·5/6 + 0.9·1/4) = 100·(0.083333 + 0.225) = 30.8333 km²
    assert t.loc[("B", 1), "adjusted_area"] == pytest.approx(30.8333, abs=1e-4)
    assert t.loc[("B", 1), "borrowed"] and not t.loc[("B", 2), "borrowed"]
    assert t.loc[("B", 1), "n_map"] == 1  # the county's own count, not the borrowed one
    # each county's adjusted areas add up to its mapped area
    assert t.groupby(level="zone")["adjusted_area"].sum().tolist() == pytest.approx([100.0, 100.0])


def test_zone_errors():
    areas = pd.DataFrame({1: [60.0], 2: [40.0]}, index=["A"])
    with pytest.raises(InputError, match="zone"):
        error_adjusted_areas_by_zone([1, 1, 2, 2], [1, 1, 2, 2], ["A", "A", "Z", "A"], areas)
    with pytest.raises(InputError, match="lie in no zone"):
        error_adjusted_areas_by_zone([1, 1, 2, 2], [1, 1, 2, 2], ["A", None, "A", "A"], areas)


def test_county_intervals_cover_each_countys_truth():
    """Two counties whose map is of different quality: each county's estimate centres on its own truth, its
    standard error matches the spread of the estimates over repeated samples, and its 95 % interval covers the
    truth about as often as a normal (Wald) interval can (a whole-area error rate would be biased in both)."""
    rng = np.random.default_rng(42)
    # population (map class, county, truth) as pixel lists; county A's map class 1 is 90 % right, county B's 60 %
    parts = [(1, "A", 1, 9_000), (1, "A", 2, 1_000), (1, "B", 1, 6_000), (1, "B", 2, 4_000),
             (2, "A", 2, 36_000), (2, "A", 1, 4_000), (2, "B", 2, 34_000), (2, "B", 1, 6_000)]
    mp = np.concatenate([np.full(n, m) for m, _, _, n in parts])
    zn = np.concatenate([np.full(n, z) for _, z, _, n in parts])
    tr = np.concatenate([np.full(n, t) for _, _, t, n in parts])
    areas = pd.crosstab(zn, mp).astype(float)
    truth = pd.crosstab(zn, tr).stack()          # A: 13,000 / 37,000 ; B: 12,000 / 38,000
    strata = {h: np.flatnonzero(mp == h) for h in (1, 2)}
    reps = 400
    est, var, hits = [], [], 0
    for _ in range(reps):
        pick = np.concatenate([rng.choice(strata[1], 100, replace=False), rng.choice(strata[2], 100, replace=False)])
        t = error_adjusted_areas_by_zone(mp[pick], tr[pick], zn[pick], areas).set_index(["zone", "class"])
        true = truth.reindex(t.index).to_numpy()
        est.append(t["adjusted_area"].to_numpy())
        var.append(t["adjusted_area_se"].to_numpy() ** 2)
        hits += ((t["ci_low"] <= true) & (true <= t["ci_high"])).to_numpy()
    est, var = np.array(est), np.array(var)
    true = truth.reindex(t.index).to_numpy()
    print("county coverage", hits / reps, "mean SE²/variance", var.mean(axis=0) / est.var(axis=0))
    # a single error rate for both counties would put county A's class 1 near 12,500 and B's near 12,500 too
    assert np.all(np.abs(est.mean(axis=0) - true) < 3 * est.std(axis=0) / np.sqrt(reps)), est.mean(axis=0)
    # mean estimated variance vs the variance of the estimates (relative SE of the latter ≈ sqrt(2/399) = 7 %)
    assert np.allclose(var.mean(axis=0), est.var(axis=0), rtol=0.2), (var.mean(axis=0), est.var(axis=0))
    # the Wald interval of ≈ 50 units with 10 % omission covers ≈ 0.92 (Brown, Cai & DasGupta 2001);
    # SD of a coverage over 400 runs ≈ 0.013
    assert np.all((hits / reps > 0.89) & (hits / reps < 0.98)), hits / reps


# -- training / validation split by polygon ---------------------------------------------------------------------------


def polygon_samples(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for cls, n_poly in (("forest", 12), ("water", 8), ("urban", 10)):
        for p in range(n_poly):
            for _ in range(rng.integers(3, 15)):
                rows.append({"polygon": f"{cls[:1].upper()}-{p:02d}", "class_code": cls})
    rows.append({"polygon": "G-00", "class_code": "glacier"})   # one polygon only
    rows.append({"polygon": "G-00", "class_code": "glacier"})
    return pd.DataFrame(rows)


def test_group_split_never_shares_a_polygon():
    s = polygon_samples()
    train, val = group_split(s, "polygon", 0.3, seed=1)
    assert len(train) + len(val) == len(s)
    assert not set(train["polygon"]) & set(val["polygon"])
    for cls in ("forest", "water", "urban"):
        share = (val["class_code"] == cls).sum() / (s["class_code"] == cls).sum()
        assert 0.15 < share < 0.45, (cls, share)
        assert (train["class_code"] == cls).any()
    assert val.attrs["unvalidated"] == ["glacier"] and (train["class_code"] == "glacier").sum() == 2
    again = group_split(s, "polygon", 0.3, seed=1)[1]
    assert again.index.equals(val.index)
    assert not group_split(s, "polygon", 0.3, seed=2)[1].index.equals(val.index)


def test_group_split_bad_input():
    s = polygon_samples()
    with pytest.raises(InputError, match="no column 'poly_id'"):
        group_split(s, "poly_id", 0.3)
    with pytest.raises(InputError, match="test share"):
        group_split(s, "polygon", 30)
    s.loc[3, "polygon"] = None
    with pytest.raises(InputError, match=r"have no polygon \(rows 3, counted from 0\)"):
        group_split(s, "polygon", 0.3)


# -- real Landsat 8 pixels ---------------------------------------------------------------------------------------------


def test_landsat8_pixels_separate_vegetation_urban_water(shared_data):
    folder = shared_data / "landsat8-c2l2-pixel-samples-spyndex"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    df = pd.DataFrame(json.loads((folder / "spectral.json").read_text()))
    assert len(df) == 120
    bands = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "ST_B10"]
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    pred = cross_val_predict(RandomForestClassifier(n_estimators=200, random_state=0), df[bands], df["class"], cv=cv)
    s = accuracy_summary(confusion_matrix(pred, df["class"]))
    print("\n" + s.text())
    assert s.overall >= 0.95
    assert (s.users >= 0.9).all() and (s.producers >= 0.9).all()
    # an independent count: sklearn's own accuracy of the same predictions
    from sklearn.metrics import accuracy_score
    assert s.overall == pytest.approx(accuracy_score(df["class"], pred))
    assert math.isfinite(s.overall_se)
