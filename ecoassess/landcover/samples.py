"""Training and validation samples for land-cover classification (issue 21 part 1).

A sample file holds points or polygons with a class label: a GeoPackage / shapefile / GeoJSON layer (read through
:func:`ecoassess.readers.read_vector`: GBK shapefiles, declared ``gcj02``/``bd09`` coordinates), or a CSV/Excel
table with coordinate columns (:func:`ecoassess.readers.read_table`: UTF-8 or GBK; coordinates in ``crs``,
default CGCS2000 longitude/latitude EPSG:4490, ``gcj02``/``bd09`` converted to WGS84).

Labels are codes or names (Chinese or English) of a legend in ``layers/`` (default ``cas_lucc``, STANDARDS §2.1):
``21``, ``"21"``, ``21.0``, ``"２１"`` (full width), ``有林地`` and ``forest`` all mean CAS class 21. Labels of
another legend are moved to the map's legend through a crosswalk: a key named after the map's legend in each
class of the sample's legend (``cas_lucc: 21`` in ``layers/<legend>.yaml``).

:func:`check_samples` turns samples into grid cells and sets aside, each with its reason, the samples that cannot
be used: no or unknown label, outside the imagery, in a masked or unobserved pixel, a second sample of one cell
(the first is kept), one cell labelled with two classes (all of them), classes with fewer samples than the
minimum. Row numbers are those a user sees: the line of a CSV (header = line 1), the feature number of a layer
(first feature = 1).
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.legends import Legend, load_legend

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xls")
#: coordinate column names looked for when x_field / y_field are not given (first found wins)
X_NAMES = ("lon", "longitude", "x", "经度", "lng", "东经")
Y_NAMES = ("lat", "latitude", "y", "纬度", "北纬")
#: the columns of the rejected-samples table
REJECTED_COLUMNS = ("file", "row", "sample_id", "label", "class_code", "reason")


@dataclass
class Samples:
    """Samples as read: one row per point or polygon (``row``: the user's row number; ``label``: the text given;
    ``class_code``: the class in the map's legend, <NA> when the label is unknown), geometry in the file's CRS."""

    gdf: gpd.GeoDataFrame
    path: Path
    legend: Legend
    unknown: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REJECTED_COLUMNS)))


@dataclass
class SampleCheck:
    """What :func:`check_samples` keeps and rejects.

    ``cells``: one row per usable grid cell — ``sample_id``, ``row``, ``class_code``, ``group`` (the polygon a cell
    came from, or the point itself: a later split must keep a group on one side), ``cell_row``, ``cell_col``, ``x``,
    ``y`` (cell centre in the grid CRS). ``rejected``: :data:`REJECTED_COLUMNS`. ``messages``: one line per kind
    of rejection, naming the file, rows and what was expected."""

    cells: pd.DataFrame
    rejected: pd.DataFrame
    messages: list[str]
    classes: list[int]

    def class_counts(self) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.cells.groupby("class_code")["group"].nunique().items()}

    def sample_hash(self) -> str:
        """SHA-256 over the kept cells (class, row, column), in a canonical order: the training set's identity."""
        table = self.cells[["class_code", "cell_row", "cell_col"]].astype("int64").sort_values(
            ["cell_row", "cell_col", "class_code"])
        return hashlib.sha256(np.ascontiguousarray(table.to_numpy()).tobytes()).hexdigest()


# -- labels ------------------------------------------------------------------------------------------------------

def _norm(text) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().casefold()


def _label_text(value) -> str | None:
    """The label as text (``21.0`` → ``'21'``), or None for an empty cell."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text or None


def crosswalk(source: Legend, target: Legend) -> dict[int, int]:
    """Class code of ``source`` → class code of ``target``: identity when they are the same legend, else the
    ``<target name>`` key of each source class (``layers/<source>.yaml``). InputError when a class has none."""
    if source.name == target.name:
        return {c: c for c in source.classes}
    out, missing = {}, []
    for code, spec in source.classes.items():
        value = spec.get(target.name)
        if value is None:
            missing.append(code)
        elif int(value) not in target.classes:
            raise InputError(f"class {code} maps to {target.name} code {value}, which {target.name} does not define",
                             path=f"layers/{source.name}.yaml", field=f"classes.{code}.{target.name}",
                             expected=f"one of {sorted(target.classes)}")
        else:
            out[code] = int(value)
    if missing:
        raise InputError(f"no crosswalk to {target.name} for class(es) {missing}", path=f"layers/{source.name}.yaml",
                         field=f"classes.<code>.{target.name}",
                         expected=f"a '{target.name}: <code>' entry in every class to label samples in "
                                  f"{source.name} for a {target.name} map")
    return out


def label_lookup(legend: Legend) -> dict[str, int]:
    """Every accepted spelling of a class of ``legend`` (code, Chinese name, English name; NFKC, case-folded)."""
    lookup = {}
    for code, spec in legend.classes.items():
        for key in (str(code), spec.get("zh"), spec.get("en")):
            if key:
                lookup.setdefault(_norm(key), code)
    return lookup


def parse_labels(values, legend: Legend, target: Legend | None = None) -> pd.Series:
    """Class codes of ``target`` (default ``legend``) for label ``values`` given in ``legend``; <NA> for an empty
    or unknown label and for the legend's nodata code."""
    target = target or legend
    walk = crosswalk(legend, target)
    lookup = label_lookup(legend)
    out = []
    for value in values:
        text = _label_text(value)
        code = None if text is None else lookup.get(_norm(text))
        if code is not None and code != legend.nodata:
            out.append(walk[code])
        else:
            out.append(pd.NA)
    return pd.Series(out, dtype="Int64")


# -- reading -----------------------------------------------------------------------------------------------------

def _column(frame: pd.DataFrame, name: str | None, candidates, path, what: str) -> str:
    if name is not None:
        if name not in frame.columns:
            raise InputError(f"has no column '{name}'", path=path, field=name,
                             expected=f"the {what} column; columns are {', '.join(map(str, frame.columns))}")
        return name
    lower = {str(c).strip().casefold(): c for c in frame.columns}
    for cand in candidates:
        if cand.casefold() in lower:
            return lower[cand.casefold()]
    raise InputError(f"has no {what} column", path=path, field=what,
                     expected=f"one of {', '.join(candidates)} (or name it in the config); columns are "
                              f"{', '.join(map(str, frame.columns))}")


def _numbers(values: pd.Series) -> pd.Series:
    """Coordinates as numbers: text numbers, full-width digits and blanks allowed; anything else NaN."""
    text = values.map(lambda v: None if _label_text(v) is None else _label_text(v).replace(" ", ""))
    return pd.to_numeric(text, errors="coerce")


def read_samples(path, *, class_field: str = "class", legend: str = "cas_lucc", map_legend: str | None = None,
                 id_field: str | None = None, x_field: str | None = None, y_field: str | None = None,
                 crs: str | None = None, transformation=None, layer: str | None = None,
                 sheet: str | None = None) -> Samples:
    """Read a sample file (see the module docstring). ``legend``: the legend the labels are written in;
    ``map_legend``: the legend of the map they train or check (default: the same). A missing file or column is an
    :class:`InputError` naming it; rows without coordinates or with an unknown label are kept with ``class_code``
    <NA> or an empty geometry, for :func:`check_samples` to reject with their row number."""
    from ecoassess.readers import read_table, read_vector

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path=path, expected="a GeoPackage, shapefile or CSV of samples")
    try:
        source = load_legend(legend)
        target = load_legend(map_legend or legend)
    except KeyError as exc:
        raise InputError(str(exc.args[0]), path=path, field="legend") from None
    if path.suffix.lower() in TABLE_SUFFIXES:
        table = read_table(path, sheet=sheet)
        xcol = _column(table, x_field, X_NAMES, path, "x / longitude")
        ycol = _column(table, y_field, Y_NAMES, path, "y / latitude")
        x, y = _numbers(table[xcol]), _numbers(table[ycol])
        gdf = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(x, y), crs=None)
        gdf.loc[x.isna() | y.isna(), "geometry"] = None
        rows = np.arange(len(table)) + 2  # line numbers: the header is line 1
        declared = crs or "EPSG:4490"
    else:
        gdf = read_vector(path, layer)
        rows = np.arange(len(gdf)) + 1    # feature numbers
        declared = crs
    if class_field not in gdf.columns:
        raise InputError(f"has no column '{class_field}'", path=path, field=class_field,
                         expected=f"the class label column; columns are "
                                  f"{', '.join(str(c) for c in gdf.columns if c != 'geometry')}")
    if id_field is not None and id_field not in gdf.columns:
        raise InputError(f"has no column '{id_field}'", path=path, field=id_field, expected="the sample id column")
    if declared is not None or transformation is not None:
        from ecoassess.china import apply_declared

        has = gdf.geometry.notna()
        if path.suffix.lower() in TABLE_SUFFIXES and not _is_web(declared):
            gdf = gdf.set_crs(declared)
        else:
            moved = apply_declared(gdf[has], declared, transformation, path=path, key="samples")
            gdf = gpd.GeoDataFrame(gdf.drop(columns="geometry"), geometry=gpd.GeoSeries([None] * len(gdf),
                                   index=gdf.index, crs=moved.crs))
            gdf.loc[has, "geometry"] = moved.geometry.values
    if gdf.crs is None:
        raise InputError("has no coordinate reference system", path=path, field="crs",
                         expected="a layer with a CRS, or crs given in the config")
    out = gpd.GeoDataFrame({
        "sample_id": (gdf[id_field].astype(str).to_numpy() if id_field else rows.astype(str)),
        "row": rows,
        "label": [(_label_text(v) or "") for v in gdf[class_field]],
        "class_code": parse_labels(gdf[class_field].tolist(), source, target).to_numpy(),
    }, geometry=gdf.geometry.values, crs=gdf.crs)
    return Samples(out, path, target)


def _is_web(crs) -> bool:
    from ecoassess.china import is_web_map_crs

    return crs is not None and is_web_map_crs(crs)


# -- checking against the grid -----------------------------------------------------------------------------------

def _point_cells(gdf: gpd.GeoDataFrame, grid: AnalysisGrid) -> tuple[np.ndarray, np.ndarray]:
    inv = ~grid.transform
    xs, ys = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    cols, rows = inv * (xs, ys)
    return np.floor(rows).astype("int64"), np.floor(cols).astype("int64")


def _polygon_cells(geom, grid: AnalysisGrid) -> tuple[np.ndarray, np.ndarray]:
    """Grid cells whose centre lies inside ``geom`` (rasterised in the polygon's own window)."""
    from rasterio import features
    from rasterio.windows import from_bounds

    h, w = grid.shape
    win = from_bounds(*geom.bounds, transform=grid.transform)
    r0, c0 = max(int(np.floor(win.row_off)), 0), max(int(np.floor(win.col_off)), 0)
    r1 = min(int(np.ceil(win.row_off + win.height)) + 1, h)
    c1 = min(int(np.ceil(win.col_off + win.width)) + 1, w)
    if r1 <= r0 or c1 <= c0:
        return np.empty(0, "int64"), np.empty(0, "int64")
    burned = features.rasterize([(geom, 1)], out_shape=(r1 - r0, c1 - c0), fill=0, dtype="uint8",
                                transform=grid.window_transform(r0, c0), all_touched=False)
    rr, cc = np.nonzero(burned)
    return rr + r0, cc + c0


def _sample_valid(valid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``valid`` (bool layer, lazy or not) at the cells; only the chunks holding a sample are read."""
    if valid is None or len(rows) == 0:
        return np.ones(len(rows), bool)
    data = valid.data if isinstance(valid, xr.DataArray) else valid
    import dask.array as da

    if isinstance(data, da.Array):
        return np.asarray(data.vindex[rows, cols].compute(), dtype=bool)
    return np.asarray(data)[rows, cols].astype(bool)


def check_samples(samples: Samples, grid: AnalysisGrid, *, valid=None, min_per_class: int = 1,
                  classes=None) -> SampleCheck:
    """The samples' grid cells and the samples set aside (see the module docstring).

    ``valid``: True where every feature is observed (bool, on ``grid``); ``min_per_class``: the fewest samples (a
    point or a polygon) a class needs; ``classes``: the classes allowed (e.g. a saved model's), default every
    class of the legend. Raises :class:`InputError` when no sample is left."""
    path, gdf = samples.path, samples.gdf
    rejected: list[dict] = []

    def reject(idx, reason: str, code=None):
        r = gdf.loc[idx]
        rejected.append({"file": str(path), "row": int(r["row"]), "sample_id": r["sample_id"], "label": r["label"],
                         "class_code": None if pd.isna(r["class_code"]) else int(r["class_code"]), "reason": reason})

    allowed = set(samples.legend.classes) - {samples.legend.nodata} if classes is None else set(map(int, classes))
    todo = []
    for idx, r in gdf.iterrows():
        if r.geometry is None or r.geometry.is_empty:
            reject(idx, "no coordinates (empty or not a number)")
        elif not r["label"]:
            reject(idx, "no class label")
        elif pd.isna(r["class_code"]):
            reject(idx, f"unknown class '{r['label']}' (not a code or name of legend {samples.legend.name})")
        elif int(r["class_code"]) not in allowed:
            reject(idx, f"class {int(r['class_code'])} is not one of the classes {sorted(allowed)}")
        else:
            todo.append(idx)
    gdf = gdf.loc[todo].to_crs(grid.crs) if todo else gdf.iloc[:0]

    pieces = []
    points = gdf[gdf.geom_type == "Point"]
    if len(points):
        rr, cc = _point_cells(points, grid)
        pieces.append(pd.DataFrame({"index": points.index, "cell_row": rr, "cell_col": cc}))
    for idx, geom in gdf[gdf.geom_type.isin(["Polygon", "MultiPolygon"])].geometry.items():
        rr, cc = _polygon_cells(geom, grid)
        if len(rr) == 0:
            reject(idx, "polygon holds no grid cell centre (smaller than a cell, or outside the imagery)")
        pieces.append(pd.DataFrame({"index": idx, "cell_row": rr, "cell_col": cc}))
    for idx in gdf.index[~gdf.geom_type.isin(["Point", "Polygon", "MultiPolygon"])]:
        reject(idx, f"geometry is a {gdf.geom_type[idx]}, not a point or polygon")
    cells = (pd.concat(pieces, ignore_index=True) if pieces else
             pd.DataFrame({"index": [], "cell_row": [], "cell_col": []}).astype("int64"))
    h, w = grid.shape
    inside = (cells.cell_row >= 0) & (cells.cell_row < h) & (cells.cell_col >= 0) & (cells.cell_col < w)
    for idx in cells.loc[~inside & cells["index"].isin(points.index), "index"]:
        reject(idx, "outside the imagery (the analysis grid)")
    cells = cells[inside].reset_index(drop=True)
    ok = _sample_valid(valid, cells.cell_row.to_numpy(), cells.cell_col.to_numpy())
    masked = cells.loc[~ok]
    cells = cells[ok].reset_index(drop=True)
    for idx in masked["index"].unique():
        if idx in points.index or idx not in set(cells["index"]):
            reject(idx, "in a masked or unobserved pixel (cloud, shadow, no clear observation of every feature)")
    cells["class_code"] = gdf.loc[cells["index"], "class_code"].astype("int64").to_numpy()
    cells["row"] = gdf.loc[cells["index"], "row"].astype("int64").to_numpy()

    # one cell, two labels: every sample labelling it is unusable there; one cell twice: the first is kept
    by_cell = cells.groupby(["cell_row", "cell_col"])["class_code"].transform("nunique")
    conflict = cells[by_cell > 1]
    for (r, c), part in conflict.groupby(["cell_row", "cell_col"]):
        detail = ", ".join(f"row {row} ({code})" for row, code in zip(part["row"], part["class_code"]))
        for idx in part["index"].unique():
            if idx in points.index:
                reject(idx, f"conflicting labels at one grid cell: {detail}")
    cells = cells[by_cell == 1]
    first = cells.drop_duplicates(["cell_row", "cell_col"], keep="first")
    dups = cells.drop(first.index)
    first_row = first.set_index(["cell_row", "cell_col"])["row"]
    for _, d in dups.iterrows():
        if d["index"] in points.index:
            reject(d["index"], f"duplicate: the same grid cell as row {first_row[(d.cell_row, d.cell_col)]}")
    cells = first.reset_index(drop=True)

    counts = cells.groupby("class_code")["index"].nunique()
    few = counts[counts < min_per_class]
    for code, n in few.items():
        for idx in cells.loc[cells.class_code == code, "index"].unique():
            reject(idx, f"class {code} has only {n} usable sample(s) (at least {min_per_class} needed)")
    cells = cells[~cells.class_code.isin(few.index)].reset_index(drop=True)

    xs, ys = grid.transform * (cells.cell_col.to_numpy() + 0.5, cells.cell_row.to_numpy() + 0.5)
    out = pd.DataFrame({"sample_id": gdf.loc[cells["index"], "sample_id"].to_numpy() if len(cells) else [],
                        "row": cells["row"].to_numpy(), "class_code": cells["class_code"].to_numpy(),
                        "group": cells["index"].to_numpy(), "cell_row": cells.cell_row.to_numpy(),
                        "cell_col": cells.cell_col.to_numpy(), "x": xs, "y": ys})
    table = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))
    table = table.drop_duplicates(["row", "reason"]).sort_values("row", kind="stable").reset_index(drop=True)
    messages = _messages(table, path)
    for m in messages:
        log.warning("%s", m)
    if out.empty:
        raise InputError("no usable sample: " + "; ".join(messages), path=path,
                         expected="labelled points or polygons inside the imagery")
    return SampleCheck(out, table, messages, sorted(int(c) for c in out.class_code.unique()))


def _messages(table: pd.DataFrame, path) -> list[str]:
    """One line per kind of rejection: how many, which rows (the first ten), the reason of the first."""
    out = []
    kinds = table["reason"].str.replace(r"\s*\(.*|:.*| \d+ .*|'.*'", "", regex=True)
    for kind, part in table.groupby(kinds, sort=False):
        rows = ", ".join(map(str, part["row"].head(10))) + (" …" if len(part) > 10 else "")
        out.append(f"{path}: {len(part)} sample(s) set aside — {part['reason'].iloc[0]} (rows {rows})")
    return out


# -- training points drawn from an existing map ------------------------------------------------------------------

def draw_map_samples(class_map: xr.DataArray, per_class: int, *, seed: int = 0, nodata=None, classes=None,
                     label_field: str = "class") -> gpd.GeoDataFrame:
    """A stratified random sample of cell centres of ``class_map`` (e.g. last year's or a national land-cover
    product, to train this year's classifier): ``per_class`` cells of each class (all of a smaller class), chosen
    uniformly at random within the class. Chunk by chunk: each cell gets a random key (seeded by ``seed`` and the
    chunk's position), each class keeps its ``per_class`` smallest keys — a uniform sample without replacement —
    so memory is one chunk plus the kept candidates. Points in the map's CRS with ``label_field``, ``cell_row``,
    ``cell_col``, sorted by cell."""
    import dask.array as da

    from ecoassess.grid import grid_of, single_band

    layer = single_band(class_map)
    grid = grid_of(layer)
    nodata = layer.attrs.get("nodata", layer.attrs.get("_FillValue")) if nodata is None else nodata
    data = layer.data if isinstance(layer.data, da.Array) else da.from_array(np.asarray(layer.data), chunks=1024)
    wanted = None if classes is None else np.asarray(list(classes))
    kept: dict[int, pd.DataFrame] = {}
    row_starts = np.cumsum((0,) + data.chunks[0])
    col_starts = np.cumsum((0,) + data.chunks[1])
    for bi in range(len(data.chunks[0])):
        for bj in range(len(data.chunks[1])):
            block = np.asarray(data.blocks[bi, bj].compute())
            keys = np.random.default_rng([seed, bi, bj]).random(block.shape)
            ok = np.ones(block.shape, bool) if nodata is None else block != nodata
            if wanted is not None:
                ok &= np.isin(block, wanted)
            rr, cc = np.nonzero(ok)
            part = pd.DataFrame({"code": block[rr, cc].astype("int64"), "key": keys[rr, cc],
                                 "cell_row": rr + row_starts[bi], "cell_col": cc + col_starts[bj]})
            for code, g in part.groupby("code"):
                merged = pd.concat([kept[code], g]) if code in kept else g
                kept[code] = merged.nsmallest(per_class, "key")
    if not kept:
        raise InputError("the map holds no class cell to sample", field=str(layer.name), expected="a class map")
    table = pd.concat(kept.values()).sort_values(["cell_row", "cell_col"]).reset_index(drop=True)
    xs, ys = grid.transform * (table.cell_col.to_numpy() + 0.5, table.cell_row.to_numpy() + 0.5)
    return gpd.GeoDataFrame({label_field: table.code.to_numpy(), "cell_row": table.cell_row.to_numpy(),
                             "cell_col": table.cell_col.to_numpy()}, geometry=gpd.points_from_xy(xs, ys),
                            crs=grid.crs)


__all__ = ["draw_map_samples", "Samples", "SampleCheck", "read_samples", "check_samples", "parse_labels", "label_lookup", "crosswalk",
           "REJECTED_COLUMNS"]
