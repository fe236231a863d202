"""Land-cover samples (issue 21 part 1): reading points/polygons from CSV (UTF-8/GBK), GeoPackage and shapefile,
labels as codes or names, and the checks that set samples aside with file, row and reason."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import Point, box

from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.landcover.samples import check_samples, crosswalk, draw_map_samples, read_samples
from ecoassess.legends import load_legend

ALBERS = china_albers_crs()
#: a 10 x 10 grid of 30 m cells; cell (r, c) has its centre at (X0 + 30c + 15, Y1 - 30r - 15)
X0, Y1 = -40000.0, 3180000.0
GRID = AnalysisGrid(CRS.from_user_input(ALBERS), Affine(30, 0, X0, 0, -30, Y1), 10, 10)


def centre(r, c):
    return X0 + 30 * c + 15, Y1 - 30 * r - 15


def lonlat(r, c):
    return Transformer.from_crs(ALBERS, "EPSG:4490", always_xy=True).transform(*centre(r, c))


def write_csv(path, lines, encoding="utf-8"):
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_a_gbk_csv_with_names_codes_and_text_numbers_is_read_and_every_bad_row_is_named(tmp_path):
    rows = [(0, 0, "有林地"), (1, 1, "21"), (2, 2, "２１"), (3, 3, "Paddy Field"), (4, 4, "12.0"), (5, 5, "竹林"),
            (6, 6, "")]
    lines = ["编号,经度,纬度,类别"]
    for k, (r, c, label) in enumerate(rows):
        lon, lat = lonlat(r, c)
        lines.append(f"S{k},{lon:.9f},{lat:.9f},{label}")
    lines.append("S7,,30.0,21")                    # no longitude
    lines.append("S8,abc,30.0,21")                 # not a number
    path = write_csv(tmp_path / "样本.csv", lines, encoding="gbk")
    s = read_samples(path, class_field="类别", id_field="编号")
    # labels: 有林地 / 21 / full-width ２１ → 21, 'Paddy Field' (English name, any case) → 11, '12.0' → 12
    assert s.gdf["class_code"].tolist()[:5] == [21, 21, 21, 11, 12]
    assert s.gdf["class_code"].isna().tolist()[5:] == [True, True, False, False]   # 竹林 unknown, '' empty
    assert s.gdf["row"].tolist() == list(range(2, 11))   # line numbers: header = line 1
    check = check_samples(s, GRID)
    reasons = dict(zip(check.rejected["row"], check.rejected["reason"]))
    assert reasons[7].startswith("unknown class '竹林'")
    assert reasons[8] == "no class label"
    assert reasons[9].startswith("no coordinates") and reasons[10].startswith("no coordinates")
    assert sorted(check.cells["cell_row"]) == [0, 1, 2, 3, 4]   # each point on the cell it was placed in
    assert (check.cells["cell_row"] == check.cells["cell_col"]).all()
    assert set(check.rejected["file"]) == {str(path)}
    assert any("unknown class" in m and "rows 7" in m for m in check.messages)


def test_outside_masked_duplicate_conflicting_and_too_few_samples_are_set_aside(tmp_path):
    pts = [(0, 0, 21), (0, 0, 21),            # duplicate: row 3 is the second sample of cell (0, 0)
           (1, 1, 21), (1, 1, 12),            # conflicting labels at one cell: both rows set aside
           (2, 2, 21), (3, 3, 21), (4, 4, 21),
           (5, 5, 11),                         # masked cell (5, 5)
           (6, 6, 12), (7, 7, 12), (8, 8, 12),
           (-1, 3, 12),                        # north of the grid
           (9, 9, 31)]                         # class 31: one sample < minimum 2
    lines = ["x,y,class"] + [f"{centre(r, c)[0]},{centre(r, c)[1]},{k}" for r, c, k in pts]
    path = write_csv(tmp_path / "s.csv", lines)
    s = read_samples(path, x_field="x", y_field="y", crs=ALBERS.to_wkt())
    valid = np.ones(GRID.shape, bool)
    valid[5, 5] = False
    check = check_samples(s, GRID, valid=GRID.wrap(valid), min_per_class=2)
    got = {int(r): reason for r, reason in zip(check.rejected["row"], check.rejected["reason"])}
    assert got[3] == "duplicate: the same grid cell as row 2"
    assert got[4].startswith("conflicting labels at one grid cell: row 4 (21), row 5 (12)")
    assert got[5] == got[4]
    assert got[9].startswith("in a masked or unobserved pixel")
    assert got[13] == "outside the imagery (the analysis grid)"
    assert got[14] == "class 31 has only 1 usable sample(s) (at least 2 needed)"
    assert sorted(got) == [3, 4, 5, 9, 13, 14]
    # kept: rows 2, 6, 7, 8 (class 21) and 10, 11, 12 (class 12); class 11 lost its only sample to the mask
    assert check.class_counts() == {12: 3, 21: 4}
    assert check.classes == [12, 21]


def test_sample_hash_does_not_depend_on_the_file_order(tmp_path):
    pts = [(0, 0, 21), (3, 4, 12), (7, 1, 21)]
    a = write_csv(tmp_path / "a.csv", ["x,y,class"] + [f"{centre(r, c)[0]},{centre(r, c)[1]},{k}" for r, c, k in pts])
    b = write_csv(tmp_path / "b.csv", ["x,y,class"] + [f"{centre(r, c)[0]},{centre(r, c)[1]},{k}"
                                                       for r, c, k in pts[::-1]])
    ha = check_samples(read_samples(a, crs=ALBERS.to_wkt()), GRID).sample_hash()
    hb = check_samples(read_samples(b, crs=ALBERS.to_wkt()), GRID).sample_hash()
    assert ha == hb
    c = write_csv(tmp_path / "c.csv", ["x,y,class"] + [f"{centre(r, c)[0]},{centre(r, c)[1]},{k}"
                                                       for r, c, k in [(0, 0, 21), (3, 4, 12), (7, 1, 12)]])
    assert check_samples(read_samples(c, crs=ALBERS.to_wkt()), GRID).sample_hash() != ha


def test_polygons_give_the_cells_whose_centre_they_hold_and_a_tiny_polygon_is_set_aside(tmp_path):
    # rows 2-3, columns 4-6: x from X0+120 to X0+210, y from Y1-120 to Y1-60 (a 10 m margin inside the outer
    # cells' edges keeps every centre of the 2 x 3 block inside, and no other centre)
    big = box(X0 + 125, Y1 - 115, X0 + 205, Y1 - 65)
    tiny = box(X0 + 1, Y1 - 5, X0 + 6, Y1 - 1)       # 5 m x 4 m in the corner of cell (0, 0): no centre
    gdf = gpd.GeoDataFrame({"lc": ["有林地", "12"]}, geometry=[big, tiny], crs=ALBERS)
    path = tmp_path / "poly.gpkg"
    gdf.to_file(path)
    check = check_samples(read_samples(path, class_field="lc"), GRID)
    cells = sorted(zip(check.cells.cell_row, check.cells.cell_col))
    assert cells == [(2, 4), (2, 5), (2, 6), (3, 4), (3, 5), (3, 6)]
    assert set(check.cells.group) == {0} and check.class_counts() == {21: 1}   # one polygon = one sample
    assert check.rejected["row"].tolist() == [2]
    assert check.rejected["reason"].iloc[0].startswith("polygon holds no grid cell centre")


def test_a_gbk_shapefile_without_cpg_reads_its_chinese_labels(tmp_path):
    gdf = gpd.GeoDataFrame({"类型": ["水田", "旱地"]}, geometry=[Point(*centre(1, 1)), Point(*centre(2, 2))],
                           crs=ALBERS)
    path = tmp_path / "pts.shp"
    gdf.to_file(path, encoding="gbk")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    s = read_samples(path, class_field="类型")
    assert s.gdf["class_code"].tolist() == [11, 12]


def test_gcj02_coordinates_are_moved_to_wgs84_before_they_meet_the_grid(tmp_path):
    from ecoassess.china import wgs84_to_gcj02

    lon, lat = lonlat(4, 6)
    glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))   # what a web map shows for that place
    path = write_csv(tmp_path / "gcj.csv", ["lon,lat,class", f"{glon[0]:.9f},{glat[0]:.9f},21"])
    check = check_samples(read_samples(path, crs="gcj02"), GRID)
    assert (int(check.cells.cell_row[0]), int(check.cells.cell_col[0])) == (4, 6)
    # read as if it were WGS84, the ~300-600 m offset of GCJ-02 would put it many cells away or off the grid
    as_is = read_samples(path)
    with pytest.raises(InputError, match="no usable sample"):
        check_samples(as_is, GRID)


def test_missing_columns_and_unknown_crosswalks_are_clear_errors(tmp_path):
    path = write_csv(tmp_path / "s.csv", ["east,north,class", "1,2,21"])
    with pytest.raises(InputError, match=r"s.csv \[x / longitude\]: has no x / longitude column"):
        read_samples(path)
    path = write_csv(tmp_path / "t.csv", ["lon,lat,kind", "104,30,21"])
    with pytest.raises(InputError, match=r"has no column 'class'.*columns are lon, lat, kind"):
        read_samples(path)
    # CLCD classes carry no CAS code in layers/clcd.yaml: labelling CAS maps with CLCD codes is refused by name
    with pytest.raises(InputError, match=r"layers/clcd.yaml \[classes.<code>.cas_lucc\]: no crosswalk to cas_lucc"):
        crosswalk(load_legend("clcd"), load_legend("cas_lucc"))
    assert crosswalk(load_legend("clcd"), load_legend("clcd"))[5] == 5


def test_a_file_with_no_usable_sample_says_why(tmp_path):
    path = write_csv(tmp_path / "s.csv", ["lon,lat,class", "0,0,21", "1,1,99x"])
    with pytest.raises(InputError) as err:
        check_samples(read_samples(path), GRID)
    assert "outside the imagery" in str(err.value) and "unknown class '99x'" in str(err.value)


def test_draw_map_samples_takes_per_class_cells_of_each_class_and_all_of_a_small_one():
    codes = np.full((40, 50), 21, dtype="uint8")
    codes[:10, :] = 11                         # 500 cells of 11
    codes[30:, 40:] = 52                       # 100 cells of 52
    codes[0, 0] = 0                            # nodata
    codes[20, 20:23] = 41                      # 3 cells of 41 (fewer than asked)
    grid = AnalysisGrid(GRID.crs, GRID.transform, 50, 40)
    layer = grid.wrap(xr.DataArray(codes, dims=("y", "x")).chunk(16).data)
    layer.attrs["nodata"] = 0
    pts = draw_map_samples(layer, 25, seed=4)
    assert pts["class"].value_counts().to_dict() == {11: 25, 21: 25, 52: 25, 41: 3}
    assert (codes[pts.cell_row, pts.cell_col] == pts["class"]).all()        # every point on a cell of its class
    assert not pts.duplicated(["cell_row", "cell_col"]).any()
    r, c = (~grid.transform) * (pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    assert np.allclose(r - 0.5, pts.cell_col) and np.allclose(c - 0.5, pts.cell_row)
    again = draw_map_samples(layer, 25, seed=4)
    assert again[["cell_row", "cell_col"]].equals(pts[["cell_row", "cell_col"]])
    assert not draw_map_samples(layer, 25, seed=5)[["cell_row", "cell_col"]].equals(pts[["cell_row", "cell_col"]])
