"""Land-cover accounting (issue 21 part 7): class areas, transition matrices, net and gross change.

Every expected number is computed here by hand: coverage weights of rectangles whose edges lie on grid lines or
half-way across a cell, and numpy cross-tabulations of the class rasters weighted by them.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.landcover.accounting import (NO_DATA, change_summary, class_area_rows, class_areas_km2,
                                            transition_matrix, transition_pairs, transition_table)
from ecoassess.legends import load_legend
from ecoassess.zones import ZoneSet

RES = 30.0
X0, Y1 = 300_000.0, 3_300_900.0
H, W = 30, 40
CELL_KM2 = RES * RES / 1e6            # 0.0009 km²
CAS = load_legend("cas_lucc")


def _grid() -> AnalysisGrid:
    return AnalysisGrid.from_bounds((X0, Y1 - H * RES, X0 + W * RES, Y1), RES, china_albers_crs())


def _layer(grid, values, name="lc", chunk=16) -> xr.DataArray:
    ys = Y1 - (np.arange(H) + 0.5) * RES
    xs = X0 + (np.arange(W) + 0.5) * RES
    arr = xr.DataArray(np.asarray(values), dims=("y", "x"), coords={"y": ys, "x": xs}, name=name)
    arr = arr.rio.write_crs(grid.crs.to_wkt()).rio.write_transform(grid.transform)
    return arr.chunk({"y": chunk, "x": chunk})


def _zones(grid) -> ZoneSet:
    """Zone 'a': columns 0–19 fully (x 300000–300600, all rows); zone 'b': x 300615–301185 × y 3300015–3300885,
    i.e. half of the first and last column (20, 39) and of the first and last row it touches."""
    a = shapely.box(X0, Y1 - H * RES, X0 + 20 * RES, Y1)
    b = shapely.box(X0 + 20.5 * RES, Y1 - H * RES + 0.5 * RES, X0 + 39.5 * RES, Y1 - 0.5 * RES)
    gdf = gpd.GeoDataFrame({"id": ["a", "b"], "name": ["甲", "乙"]}, geometry=[a, b], crs=grid.crs.to_wkt())
    return ZoneSet.from_gdf(gdf, grid, id_field="id", name_field="name", kind="county")


def _weights() -> dict[str, np.ndarray]:
    """The covered fraction of each cell, by hand: 1 inside, 0.5 on a half-covered edge, 0.25 at its corners."""
    wa = np.zeros((H, W))
    wa[:, :20] = 1.0
    col = np.zeros(W)
    col[21:39] = 1.0
    col[20] = col[39] = 0.5
    row = np.ones(H)
    row[0] = row[-1] = 0.5
    return {"a": wa, "b": np.outer(row, col)}


def _three_years(seed=7):
    """Three years of CAS codes with no-data gaps (0) in the second year."""
    rng = np.random.default_rng(seed)
    codes = np.array([11, 12, 21, 31, 42, 51])
    y1 = rng.choice(codes, size=(H, W)).astype("uint8")
    y2 = np.where(rng.random((H, W)) < 0.3, rng.choice(codes, size=(H, W)), y1).astype("uint8")
    y2[5:8, 2:30] = 0                                    # a gap: no data in 2020
    y3 = np.where(rng.random((H, W)) < 0.3, rng.choice(codes, size=(H, W)), y2).astype("uint8")
    y3[y3 == 0] = 21                                     # the gap is mapped again in 2024
    return {2015: y1, 2020: y2, 2024: y3}


def _hand_matrix(w, a, b, classes_a, classes_b):
    """Σ w·[a = i]·[b = j]·cell area, with 0 (no data) as its own row/column, by numpy."""
    m = pd.DataFrame(0.0, index=list(classes_a) + [NO_DATA], columns=list(classes_b) + [NO_DATA])
    ai = np.where(a == 0, NO_DATA, a.astype(int))
    bi = np.where(b == 0, NO_DATA, b.astype(int))
    for i in m.index:
        for j in m.columns:
            m.loc[i, j] = float((w * ((ai == i) & (bi == j))).sum()) * CELL_KM2
    return m


def test_year_pairs_are_consecutive_and_first_to_last():
    assert transition_pairs([2024, 2015, 2020]) == [(2015, 2020), (2020, 2024), (2015, 2024)]
    assert transition_pairs([2023, 2024]) == [(2023, 2024)]
    assert transition_pairs([2024]) == []


def test_three_years_matrices_add_up_to_each_years_class_areas():
    grid = _grid()
    zones = _zones(grid)
    years = _three_years()
    layers = {y: _layer(grid, v) for y, v in years.items()}
    for layer in layers.values():
        layer.attrs["nodata"] = 0
    w = _weights()
    # zone areas by hand: a = 20 × 30 cells; b = 19 × 29 cells (half cells at its edges)
    assert zones.area_km2.tolist() == pytest.approx([600 * CELL_KM2, 19 * 29 * CELL_KM2])
    areas = {y: class_areas_km2(zones, layers[y], CAS) for y in years}
    for (y0, y1) in transition_pairs(years):
        t = transition_table(zones, layers[y0], layers[y1], CAS, zone_set="county", from_year=y0, to_year=y1)
        for zone in ("a", "b"):
            m = transition_matrix(t, zone, y0, y1)
            hand = _hand_matrix(w[zone], years[y0], years[y1], sorted(CAS.classes), sorted(CAS.classes))
            hand = hand.loc[(hand.sum(axis=1) > 0), (hand.sum(axis=0) > 0)].sort_index().sort_index(axis=1)
            pd.testing.assert_frame_equal(m, hand, check_names=False, check_dtype=False, atol=1e-12, rtol=1e-9)
            # rows add up to the first year's class areas, columns to the second's (no-data row/column included)
            for year, sums in ((y0, m.sum(axis=1)), (y1, m.sum(axis=0))):
                wide = areas[year]
                for code, km2 in sums.items():
                    expected = (wide.loc[zone, "nodata_km2"] if code == NO_DATA
                                else wide.loc[zone, f"class_{code}_km2"])
                    assert km2 == pytest.approx(expected, rel=1e-12, abs=1e-15)
            assert m.to_numpy().sum() == pytest.approx(zones.area_km2[list(zones.ids).index(zone)], rel=1e-12)


def test_class_area_rows_account_for_the_whole_zone():
    grid = _grid()
    zones = _zones(grid)
    y2 = _three_years()[2020]
    layer = _layer(grid, y2)
    layer.attrs["nodata"] = 0
    wide = class_areas_km2(zones, layer, CAS)
    rows = class_area_rows(wide, zones, CAS, zone_set="county", year=2020, lang="en")
    assert len(rows) == 2 * len(CAS.classes)             # every legend class, 0 where absent
    a = rows[rows["zone_id"] == "a"]
    # the gap: rows 5–7, columns 2–29 → 3 × 18 cells of zone a (columns 2–19) are no data
    assert a["nodata_km2"].iloc[0] == pytest.approx(3 * 18 * CELL_KM2)
    assert a["area_km2"].sum() + a["nodata_km2"].iloc[0] + a["area_outside_km2"].iloc[0] == pytest.approx(
        a["zone_area_km2"].iloc[0])
    forest = a[a["class_code"] == 21]
    assert forest["class_name"].iloc[0] == "forest"
    assert forest["area_km2"].iloc[0] == pytest.approx(float((_weights()["a"] * (y2 == 21)).sum()) * CELL_KM2)


def test_net_gross_and_swap_by_hand():
    """Pontius et al. 2004 on four cells: 2015 [21, 21, 11, 31] → 2020 [21, 11, 11, 11] in zone a (full cells),
    and a swap 11 ↔ 21 in zone b."""
    grid = _grid()
    zones = _zones(grid)
    before = np.full((H, W), 0, "uint8")
    after = np.full((H, W), 0, "uint8")
    before[0, :4], after[0, :4] = [21, 21, 11, 31], [21, 11, 11, 11]
    before[10, 25:27], after[10, 25:27] = [11, 21], [21, 11]
    t = transition_table(zones, _layer(grid, before), _layer(grid, after), CAS, zone_set="county", from_year=2015,
                         to_year=2020, lang="en")
    s = change_summary(t, CAS, lang="en").set_index(["zone_id", "class_code"])
    c = CELL_KM2
    # zone a, forest 21: start 2 cells, end 1, persistence 1 → loss 1, gain 0, net −1, gross 1, swap 0
    assert s.loc[("a", 21), ["start_km2", "end_km2", "persistence_km2", "gain_km2", "loss_km2"]].tolist() == \
        pytest.approx([2 * c, 1 * c, 1 * c, 0.0, 1 * c])
    assert s.loc[("a", 21), ["net_change_km2", "gross_change_km2", "swap_km2"]].tolist() == \
        pytest.approx([-1 * c, 1 * c, 0.0])
    # paddy 11: start 1, end 3, persistence 1 → gain 2, loss 0, net +2, gross 2
    assert s.loc[("a", 11), ["gain_km2", "loss_km2", "net_change_km2", "gross_change_km2"]].tolist() == \
        pytest.approx([2 * c, 0.0, 2 * c, 2 * c])
    # grass 31: lost its one cell
    assert s.loc[("a", 31), ["net_change_km2", "gross_change_km2"]].tolist() == pytest.approx([-1 * c, 1 * c])
    # zone b: 11 and 21 swap places: gain 1 = loss 1, net 0, gross 2, swap 2
    for code in (11, 21):
        assert s.loc[("b", code), ["gain_km2", "loss_km2", "net_change_km2", "gross_change_km2",
                                   "swap_km2"]].tolist() == pytest.approx([c, c, 0.0, 2 * c, 2 * c])
    # a class absent in both years is listed with zeros
    assert s.loc[("a", 41), "gross_change_km2"] == 0.0
    # the no-data cells (all the rest) are in the transitions, not in the change
    assert (t["from_class"] == NO_DATA).any()


def test_unknown_code_names_the_file_and_the_codes():
    grid = _grid()
    zones = _zones(grid)
    values = np.full((H, W), 21, "uint8")
    values[3, 3] = 77                                     # not a CAS code
    values[20, 30] = 99                                   # sea: a CAS code
    layer = _layer(grid, values)
    layer.attrs.update(nodata=0, source="landcover/lucc_2020.tif")
    with pytest.raises(InputError, match=r"lucc_2020\.tif.*code\(s\) \[77\].*cas_lucc"):
        class_areas_km2(zones, layer, CAS)


def test_float_land_cover_with_nan_gaps():
    """A land-cover raster stored as float with NaN for no data (as a resampled export): NaN is no data."""
    grid = _grid()
    zones = _zones(grid)
    a = np.full((H, W), 21.0)
    b = np.full((H, W), 21.0)
    b[:, :10] = 12.0
    b[0, :] = np.nan
    t = transition_table(zones, _layer(grid, a), _layer(grid, b), CAS, zone_set="county", from_year=2020,
                         to_year=2024)
    m = transition_matrix(t, "a", 2020, 2024)
    # zone a (columns 0–19, 30 rows): row 0 no data (20 cells), columns 0–9 of rows 1–29 → dry land (290 cells)
    assert m.loc[21, NO_DATA] == pytest.approx(20 * CELL_KM2)
    assert m.loc[21, 12] == pytest.approx(290 * CELL_KM2)
    assert m.loc[21, 21] == pytest.approx(290 * CELL_KM2)


def test_two_legends_are_cross_tabulated():
    grid = _grid()
    zones = _zones(grid)
    clcd = load_legend("clcd")
    before = np.full((H, W), 2, "uint8")                  # CLCD forest
    after = np.full((H, W), 21, "uint8")                  # CAS forest
    after[:, :5] = 12
    t = transition_table(zones, _layer(grid, before), _layer(grid, after), clcd, CAS, zone_set="county",
                         from_year=2015, to_year=2020, lang="en")
    m = transition_matrix(t, "a", 2015, 2020)
    assert m.loc[2, 12] == pytest.approx(5 * 30 * CELL_KM2) and m.loc[2, 21] == pytest.approx(15 * 30 * CELL_KM2)
    assert set(t["from_name"]) == {"forest"} and set(t["to_name"]) == {"dry land", "forest"}
