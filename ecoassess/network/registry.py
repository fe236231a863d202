"""The station registry: monitoring sites and their observations, read as offices get them.

:func:`read_sites` reads a site list (CSV in UTF-8 or GBK, Excel, or any vector format: GeoJSON, GeoPackage,
Shapefile points) into a GeoDataFrame in WGS84 (EPSG:4326): ``station_id``, ``name``, ``station_type``,
``county_code`` (as given), ``mapped`` and the type's own fields (river and water body of water sections, land
use and pH of soil points, GB 3096-2008 functional-area class of noise points; ``indices/station_observations.yaml``).
Coordinates declared ``gcj02``/``bd09`` are converted to WGS84 by the iterative inverse (:mod:`ecoassess.china`).
Sites outside the study area (a provincial or national list) are left out and counted; a site without
coordinates but with a county code is kept, not mapped (``mapped`` False).

:func:`read_observations` reads a long table, one row per station and time, units in the column names
(:mod:`ecoassess.network.units`), values as the national networks publish them.

Nothing is dropped silently: ``.rejected`` lists every row or value left out (file, row = file line with the
header as line 1, or feature number of a vector layer; column; value; reason). What makes a whole file
unusable (a missing id column, a duplicate station id, a unit error, swapped or impossible coordinates, no site
in the study area) raises one :class:`~ecoassess.errors.InputError` whose ``problems`` list each problem naming
the file, the row(s) and the column.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecoassess.errors import InputError
from ecoassess.network.units import (_fold, _number, column_kind, column_name, quantities, station_spec,
                                     unit_label)
from ecoassess.readers import code_text, normalise_code, read_table, read_vector

log = logging.getLogger(__name__)

#: file suffixes read as tables; anything else is read as a vector layer
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xls")
#: outside sites further than this from the study area are "far" in the message of a list with none inside
FAR_M = 10_000.0
REJECTED_COLUMNS = ["file", "row", "station_id", "column", "value", "reason", "left_out"]


@dataclass
class Sites:
    """Sites kept (``table``: GeoDataFrame, EPSG:4326), what was rejected, and the sites left out as outside."""

    table: "object"
    rejected: pd.DataFrame
    outside: pd.DataFrame
    station_type: str
    path: Path

    @property
    def outside_count(self) -> int:
        return len(self.outside)


@dataclass
class Observations:
    """Observations kept (``table``: station_id, time, value columns as floats), what was rejected, and the unit
    of each value column."""

    table: pd.DataFrame
    rejected: pd.DataFrame
    units: dict = field(default_factory=dict)
    path: Path | None = None
    #: doubts that do not leave values out (a column whose median looks like another unit), for validate's warnings
    warnings: list = field(default_factory=list)


def _refuse(path: Path, problems: list[str], field_name: str | None = None):
    error = InputError("; ".join(problems), path=path, field=field_name)
    error.problems = list(problems)
    raise error


def _lines(rows) -> str:
    rows = [str(r) for r in rows]
    return ", ".join(rows[:5]) + (" ..." if len(rows) > 5 else "")


def _find(columns, configured: str | None, aliases=()) -> str | None:
    """The column named ``configured`` (exactly, else compared folded), else the first of ``aliases`` present."""
    by_fold = {_fold(c): c for c in columns}
    for name in ([configured] if configured else []) + list(aliases):
        if name in columns:
            return name
        if _fold(name) in by_fold:
            return by_fold[_fold(name)]
    return None


def _read_any(path: Path, *, layer=None, sheet=None, key: str, crs=None, transformation=None):
    """(frame, geometry-or-None, 'line'|'feature') of a table or vector file."""
    if path.suffix.lower() in TABLE_SUFFIXES:
        table = read_table(path, sheet, dtype=str, keep_default_na=False)
        table.columns = [str(c).strip() for c in table.columns]
        return table, None
    gdf = read_vector(path, layer, key=key, crs=crs, transformation=transformation)
    return pd.DataFrame(gdf.drop(columns=gdf.geometry.name)), gdf


def _row_numbers(frame: pd.DataFrame, vector: bool) -> np.ndarray:
    return np.arange(1, len(frame) + 1) if vector else np.arange(2, len(frame) + 2)


class _Rejected:
    def __init__(self, path: Path):
        self.path, self.rows = path, []

    def add(self, row, column, value, reason, left_out="row", station_id=None):
        self.rows.append({"file": self.path.name, "row": int(row), "station_id": station_id, "column": column,
                          "value": None if value is None else str(value), "reason": reason, "left_out": left_out})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=REJECTED_COLUMNS)


# -- sites -------------------------------------------------------------------------------------------------------

def _site_fields(station_type: str) -> dict[str, dict]:
    """``{output name: {names, values, range}}`` of the common and the type's own site columns."""
    spec = station_spec()["site_fields"]
    out = {}
    for name, meta in {**spec["common"], **(spec.get(station_type) or {})}.items():
        out[name] = meta if isinstance(meta, dict) else {"names": meta}
    return out


def read_sites(spec, study_area, station_type: str) -> Sites:
    """The sites of ``spec`` (a :class:`~ecoassess.config.StationSource`) of ``station_type``; ``study_area``:
    the county polygons (GeoDataFrame; ``attrs['path']`` names it in messages) or None (no location checks)."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    from ecoassess.china import CONVERTED_NOTE, is_web_map_crs, web_map_kind

    key = f"stations.{station_type}"
    path = Path(spec.sites)
    web = web_map_kind(spec.crs) if is_web_map_crs(spec.crs) else None
    try:
        crs = CRS.from_user_input("EPSG:4326" if web else spec.crs)
    except CRSError:
        _refuse(path, [f"{key}.crs: '{spec.crs}' is not a CRS PROJ understands (expected e.g. EPSG:4490, or "
                       "gcj02 / bd09 for coordinates copied from web maps)"], "crs")
    frame, gdf = _read_any(path, layer=getattr(spec, "layer", None), sheet=getattr(spec, "sheet", None),
                           key=f"{key}.sites", transformation=None if web else spec.transformation)
    vector = gdf is not None
    rows = _row_numbers(frame, vector)
    where = "feature" if vector else "line"
    rejected = _Rejected(path)
    columns = list(frame.columns)
    fields = _site_fields(station_type)
    configured = {"station_id": spec.id_field if "id_field" in spec.model_fields_set else None,
                  "name": getattr(spec, "name_field", None), "county_code": getattr(spec, "county_field", None)}
    found, problems = {}, []
    for name, meta in fields.items():
        conf = configured.get(name)
        found[name] = _find(columns, conf, () if conf else meta["names"])
        if conf is not None and found[name] is None:
            attr = {"station_id": "id_field", "name": "name_field", "county_code": "county_field"}[name]
            problems.append(f"{key}.{attr}: column '{conf}' does not exist in {path.name} "
                            f"(columns: {', '.join(columns) or 'none'})")
    if found["station_id"] is None and configured["station_id"] is None:
        problems.append(f"{key}.id_field: column '{spec.id_field}' does not exist in {path.name} "
                        f"(columns: {', '.join(columns) or 'none'}; expected the station id, e.g. "
                        f"{', '.join(fields['station_id']['names'][:4])}, or name it with {key}.id_field)")
    if vector:
        x_name, y_name = "x", "y"
        x, y, given = _vector_xy(gdf, path, key, problems)
        if web and gdf.crs is not None and not CRS.from_user_input(gdf.crs).is_geographic:
            problems.append(f"{key}.crs: {path.name} is declared {web} but its CRS {gdf.crs.name} is projected "
                            f"(expected {web} longitude/latitude in degrees)")
        elif not web and gdf.crs is not None:
            crs = CRS.from_user_input(gdf.crs)  # the file says its CRS; a declaration does not override it
        crs_text = spec.crs if web or gdf.crs is None else crs.to_string()
        used_xy = set()
    else:
        x_name, y_name = spec.x_field, spec.y_field
        x_col, y_col = _find(columns, spec.x_field), _find(columns, spec.y_field)
        crs_text = spec.crs
        if (x_col is None) != (y_col is None):
            attr, missing = ("x_field", spec.x_field) if x_col is None else ("y_field", spec.y_field)
            problems.append(f"{key}.{attr}: column '{missing}' does not exist in {path.name} "
                            f"(columns: {', '.join(columns)})")
        elif x_col is None and found["county_code"] is None and found["station_id"] is not None:
            problems.append(f"{key}: {path.name} has neither coordinates (columns '{spec.x_field}', "
                            f"'{spec.y_field}') nor county codes (expected one of them to place each site)")
        used_xy = {c for c in (x_col, y_col) if c}
    if problems:
        _refuse(path, problems)
    ids = frame[found["station_id"]].map(_id_text)
    if not vector:
        x, y, given = _table_xy(frame, x_col, y_col, rows, rejected, ids)
    keep = ids.notna().to_numpy().copy()
    for j in np.flatnonzero(~keep):
        rejected.add(rows[j], found["station_id"], None, "no station id")
    dupes = ids.duplicated(keep=False).to_numpy() & keep
    for sid in sorted(set(ids[dupes])):
        lines = rows[(ids == sid).to_numpy()]
        problems.append(f"{key}.sites: station id '{sid}' appears on {where}s {_lines(lines)} of {path.name} "
                        f"(column '{found['station_id']}'; expected one row per station)")
    counties = np.full(len(frame), None, dtype=object)
    if found["county_code"] is not None:
        col = found["county_code"]
        for j, raw in enumerate(frame[col]):
            counties[j] = normalise_code(raw)
            if code_text(raw) is not None and counties[j] is None:
                rejected.add(rows[j], col, raw, "not a GB/T 2260 six-digit county code: code left out", "value",
                             ids.iloc[j])
    keep &= ~np.isnan(given)  # one coordinate given, or one not a number: recorded by _table_xy
    has_xy = keep & (given == 1)
    no_place = keep & (given == 0) & np.array([c is None for c in counties])
    for j in np.flatnonzero(no_place):
        rejected.add(rows[j], found["county_code"] or x_name, None,
                     "no coordinates and no county code: the site cannot be placed", station_id=ids.iloc[j])
    keep &= ~no_place
    lon, lat = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    if has_xy.any():
        lon[has_xy], lat[has_xy] = _to_lonlat(web, crs, x[has_xy], y[has_xy])
        if web:
            log.info("%s (%s): %s", key, path.name, CONVERTED_NOTE[web])
    outside = np.zeros(len(frame), dtype=bool)
    if has_xy.any():
        problems += _place(key, path, where, rows, x, y, lon, lat, has_xy, web, crs, study_area,
                           (x_name, y_name, crs_text), outside)
    if problems:
        _refuse(path, problems)
    table = _site_table(frame, found, fields, ids, counties, lon, lat, rows, station_type, rejected, keep,
                        used_xy)
    left_out = outside[keep]
    out_table = table[left_out]
    table = table[~left_out].reset_index(drop=True)
    outside_frame = pd.DataFrame({"station_id": out_table["station_id"].to_numpy(),
                                  "name": out_table["name"].to_numpy(), "row": out_table["source_row"].to_numpy(),
                                  "lon": out_table.geometry.x.to_numpy(), "lat": out_table.geometry.y.to_numpy()})
    if len(outside_frame):
        shown = ", ".join(outside_frame["station_id"].astype(str)[:10]) + (" ..." if len(outside_frame) > 10
                                                                            else "")
        log.info("%s: %d of %d sites in %s lie outside the study area and are left out (%s)", key,
                 len(outside_frame), len(outside_frame) + len(table), path.name, shown)
    unmapped = ~table["mapped"]
    if unmapped.any():
        log.info("%s: %d site(s) of %s have no coordinates: joined to their county by code, not mapped (%s)", key,
                 int(unmapped.sum()), path.name, ", ".join(table.loc[unmapped, "station_id"][:10]))
    sites = Sites(table, rejected.frame(), outside_frame, station_type, path)
    if len(sites.rejected):
        log.warning("%s", rejected_summary(f"{key}.sites", sites.rejected))
    return sites


def _id_text(value):
    text = code_text(value)
    return None if text is None else unicodedata.normalize("NFKC", text).strip() or None


def _to_lonlat(web, crs, x, y):
    from ecoassess.china import web_map_to_wgs84

    if web:
        lon, lat = web_map_to_wgs84(web, x, y)
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return _to_wgs84(crs, x, y)


def _vector_xy(gdf, path, key, problems):
    """x, y of point features and per feature 1.0 (a point) or 0.0 (no geometry: not mapped)."""
    geom = gdf.geometry
    empty = (geom.isna() | geom.is_empty).to_numpy()
    kinds = set(geom[~empty].geom_type)
    n = len(gdf)
    if kinds - {"Point"}:
        problems.append(f"{key}.sites: {path.name} holds {', '.join(sorted(kinds))} geometries (expected points, "
                        "one per site)")
        return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    x, y = np.full(n, np.nan), np.full(n, np.nan)
    x[~empty] = geom[~empty].x.to_numpy(dtype=float)
    y[~empty] = geom[~empty].y.to_numpy(dtype=float)
    return x, y, (~empty).astype(float)


def _coordinate(cell):
    if isinstance(cell, str):
        cell = unicodedata.normalize("NFKC", cell).strip().rstrip("°").strip()
    return _number(cell)


def _table_xy(frame, x_col, y_col, rows, rejected, ids):
    """x, y arrays and per row 1.0 (both given), 0.0 (neither), NaN (rejected: one missing, or not a number)."""
    n = len(frame)
    x, y, given = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    if x_col is None:
        return x, y, given
    for j, (xr, yr) in enumerate(zip(frame[x_col], frame[y_col])):
        (xv, xw), (yv, yw) = _coordinate(xr), _coordinate(yr)
        if xw or yw:
            col, raw, why = (x_col, xr, xw) if xw else (y_col, yr, yw)
            rejected.add(rows[j], col, raw, f"coordinate {why} (expected a number in the CRS's unit, e.g. decimal "
                         "degrees)", station_id=ids.iloc[j])
            given[j] = np.nan
        elif (xv is None) != (yv is None):
            col = x_col if xv is None else y_col
            rejected.add(rows[j], col, None, f"'{col}' is empty while the other coordinate is given",
                         station_id=ids.iloc[j])
            given[j] = np.nan
        elif xv is not None:
            x[j], y[j], given[j] = xv, yv, 1.0
    return x, y, given


def _to_wgs84(crs, x, y):
    from pyproj import CRS, Transformer

    tr = Transformer.from_crs(crs, CRS.from_user_input("EPSG:4326"), always_xy=True)
    with np.errstate(all="ignore"):
        lon, lat = tr.transform(x, y, errcheck=False)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _inside(study_wgs, lon, lat) -> np.ndarray:
    import shapely

    ok = np.isfinite(lon) & np.isfinite(lat)
    out = np.zeros(len(lon), dtype=bool)
    if ok.any():
        out[ok] = shapely.covers(study_wgs, shapely.points(lon[ok], lat[ok]))
    return out


def _range_problems(key, path, where, rows, bad, x, y, names, crs_text) -> list[str]:
    """Longitudes beyond ±180 / latitudes beyond ±90 on the ``bad`` rows, per column."""
    problems = []
    for name, values, limit, what in ((names[0], x, 180, "longitudes"), (names[1], y, 90, "latitudes")):
        hit = bad & (np.abs(np.nan_to_num(values)) > limit)
        if hit.any():
            problems.append(f"{key}.sites: column '{name}' of {path.name} holds values outside [-{limit}, {limit}] "
                            f"on {where}(s) {_lines(rows[hit])} (expected {what}: {key}.crs {crs_text} is "
                            "geographic; coordinates in metres need their projected CRS as the crs)")
    return problems


def _place(key, path, where, rows, x, y, lon, lat, has_xy, web, crs, study_area, names, outside) -> list[str]:
    """Problems of the site positions — impossible for a geographic CRS, swapped (read the other way round the
    site lies in the study area), none in the study area (a wrong CRS) — and the sites outside (``outside`` set
    in place: a provincial or national list). ``names``: (x column, y column, CRS as declared)."""
    import shapely

    x_name, y_name, crs_text = names
    bad_range = np.zeros(len(x), dtype=bool)
    if crs.is_geographic:
        with np.errstate(invalid="ignore"):
            bad_range = has_xy & ((np.abs(x) > 180) | (np.abs(y) > 90))
    if study_area is None or len(study_area) == 0:
        return _range_problems(key, path, where, rows, bad_range, x, y, names[:2], crs_text)
    study_wgs = shapely.union_all(study_area.to_crs("EPSG:4326").geometry.values)
    shapely.prepare(study_wgs)
    inside = has_xy & ~bad_range & _inside(study_wgs, lon, lat)
    swapped = np.zeros(len(x), dtype=bool)
    candidates = has_xy & ~inside
    if candidates.any():
        slon, slat = _to_lonlat(web, crs, y[candidates], x[candidates])
        swapped[candidates] = _inside(study_wgs, slon, slat)
    problems = []
    if swapped.any():
        detail = "".join(p.split(": ", 1)[1].split(" (expected")[0] + "; " for p in
                         _range_problems(key, path, where, rows, swapped, x, y, names[:2], crs_text))
        problems.append(f"{key}.sites: {detail}read the other way round, the site(s) on {where}(s) "
                        f"{_lines(rows[swapped])} of {path.name} lie in the study area: are '{x_name}' and "
                        f"'{y_name}' swapped on these rows? (expected longitude/easting in '{x_name}', "
                        f"latitude/northing in '{y_name}')")
    problems += _range_problems(key, path, where, rows, bad_range & ~swapped, x, y, names[:2], crs_text)
    out = has_xy & ~inside & ~swapped & ~bad_range
    if not inside.any() and not swapped.any() and out.any():
        far = out & (_distance_m(study_area, lon, lat) > FAR_M)
        label = study_area.attrs.get("path")
        study = Path(label).name if label else "the study area layer"
        x0, y0, x1, y1 = study_area.to_crs("EPSG:4326").total_bounds
        n = int(out.sum())
        how = (f"{int(far.sum())} of {n} sites in {path.name} lie more than {FAR_M / 1000:g} km outside the study "
               "area" if far.any() else
               f"all {n} sites in {path.name} lie outside the study area, within {FAR_M / 1000:g} km of it")
        problems.append(f"{key}.sites: {how}, and none lies in it ({study}, bounds "
                        f"{x0:.4f}, {y0:.4f}, {x1:.4f}, {y1:.4f} (WGS84)), on {where}(s) "
                        f"{_lines(rows[far if far.any() else out])}; is {key}.crs '{crs_text}' wrong?")
    outside[:] = out
    return problems


def _distance_m(study_area, lon, lat) -> np.ndarray:
    import shapely
    from pyproj import Transformer

    from ecoassess.grid import china_albers_crs

    albers = china_albers_crs()
    area = shapely.union_all(study_area.to_crs(albers).geometry.values)
    ok = np.isfinite(lon) & np.isfinite(lat)
    out = np.full(len(lon), np.inf)
    if ok.any():
        gx, gy = Transformer.from_crs("EPSG:4326", albers, always_xy=True).transform(lon[ok], lat[ok])
        out[ok] = shapely.distance(area, shapely.points(gx, gy))
    return out


def _site_table(frame, found, fields, ids, counties, lon, lat, rows, station_type, rejected, keep, used_xy):
    import geopandas as gpd
    import shapely

    idx = keep
    out = pd.DataFrame({"station_id": ids[idx].to_numpy(dtype=object)})
    name_col = found.get("name")
    out["name"] = (frame.loc[idx, name_col].map(lambda v: None if code_text(v) is None else str(v).strip())
                   .to_numpy(dtype=object) if name_col else None)
    out["station_type"] = station_type
    out["county_code"] = counties[idx]
    out["mapped"] = np.isfinite(lon[idx])
    used = {c for c in found.values() if c is not None}
    for name, meta in fields.items():
        if name in ("station_id", "name", "county_code"):
            continue
        col = found.get(name)
        values = frame.loc[idx, col] if col else pd.Series([None] * int(idx.sum()))
        out[name] = [_site_value(meta, v, r, col, rejected, sid) for v, r, sid in
                     zip(values, rows[idx], out["station_id"])]
    skip = used | used_xy
    for col in frame.columns:
        if col not in skip and col not in out.columns:
            out[col] = _plain(frame.loc[idx, col]).to_numpy()
    out["source_row"] = rows[idx]
    geometry = [shapely.Point(a, b) if np.isfinite(a) else None for a, b in zip(lon[idx], lat[idx])]
    return gpd.GeoDataFrame(out, geometry=geometry, crs="EPSG:4326")


def _plain(series: pd.Series) -> pd.Series:
    """A column kept as it is: numbers when every filled cell is one (read as text: 400 stays 400), else text."""
    filled = series[series.map(code_text).notna()]
    numbers = pd.to_numeric(filled, errors="coerce")
    if len(filled) and numbers.notna().all():
        return pd.to_numeric(series.where(series.map(code_text).notna()), errors="coerce")
    return series


def _site_value(meta, raw, row, col, rejected, sid):
    """A type-specific site value read by its spec: an allowed value (spellings folded) or a number in range."""
    if code_text(raw) is None:
        return None
    if "values" in meta:
        folded = _fold(raw)
        for value, spellings in meta["values"].items():
            if folded in {_fold(s) for s in spellings}:
                return value
        rejected.add(row, col, raw, f"not one of {', '.join(meta['values'])}: value left out", "value", sid)
        return None
    if "range" in meta:
        value, why = _number(raw)
        lo, hi = meta["range"]
        if why or value is None or not lo <= value <= hi:
            rejected.add(row, col, raw, f"{why or f'outside [{lo}, {hi}]'}: value left out", "value", sid)
            return None
        return value
    return str(raw).strip()


# -- observations ------------------------------------------------------------------------------------------------

def _to_time(cell):
    """A timestamp from a date cell: ``2024-01-15``, ``2024/1/15``, ``2024年1月15日``, ``2024-01`` (a month), an
    Excel date; None when unreadable."""
    if isinstance(cell, (pd.Timestamp, np.datetime64)) or hasattr(cell, "year"):
        return pd.Timestamp(cell)
    text = unicodedata.normalize("NFKC", str(cell)).strip()
    if not text:
        return None
    text = (text.replace("年", "-").replace("月", "-").replace("日", " ").replace("号", " ")
            .replace("/", "-").replace(".", "-").strip().rstrip("-"))
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m", "%Y%m%d"):
        try:
            return pd.Timestamp(pd.to_datetime(text, format=fmt))
        except (ValueError, TypeError):
            continue
    return None


def read_observations(spec, sites: Sites, year: int) -> Observations:
    """The observations of ``spec.observations`` for the ``sites`` read by :func:`read_sites`, in ``year``."""
    key = f"stations.{sites.station_type}"
    path = Path(spec.observations)
    frame, gdf = _read_any(path, sheet=getattr(spec, "sheet", None), key=f"{key}.observations")
    if gdf is not None:
        frame = pd.DataFrame(frame)
    rows = _row_numbers(frame, gdf is not None)
    columns = list(frame.columns)
    problems = []
    id_explicit = "id_field" in spec.model_fields_set
    id_col = _find(columns, spec.id_field, () if id_explicit else station_spec()["site_fields"]["common"]["station_id"])
    time_field = getattr(spec, "time_field", None)
    time_col = _find(columns, time_field, () if time_field else station_spec()["time_fields"])
    if id_col is None:
        problems.append(f"{key}.observations: column '{spec.id_field}' does not exist in {path.name} "
                        f"(columns: {', '.join(columns)}; expected the station id)")
    if time_col is None:
        configured = getattr(spec, "time_field", None)
        problems.append(f"{key}.observations: {path.name} has no time column "
                        f"{repr(configured) if configured else ''} (columns: {', '.join(columns)}; expected one of "
                        f"{', '.join(station_spec()['time_fields'][:4])}, or name it with {key}.time_field)")
    value_columns, passthrough, units, seen = {}, [], {}, {}
    for col in columns:
        if col in (id_col, time_col):
            continue
        kind = column_kind(col, sites.station_type)
        if kind is None:
            passthrough.append(col)
            continue
        if kind.problem:
            problems.append(f"{key}.observations: {path.name} line 1 (header), column '{col}': {kind.problem}")
            continue
        if kind.name in seen:
            problems.append(f"{key}.observations: {path.name} columns '{seen[kind.name]}' and '{col}' hold the "
                            f"same quantity ({kind.name}; expected one column per quantity)")
            continue
        seen[kind.name] = col
        value_columns[col] = kind
        units[kind.name] = unit_label(kind.unit)
    if problems:
        _refuse(path, problems)
    if passthrough:
        log.info("%s: columns %s of %s are not quantities with a unit: kept as they are", key,
                 ", ".join(passthrough), path.name)
    rejected = _Rejected(path)
    out = pd.DataFrame({"station_id": frame[id_col].map(
        lambda v: None if code_text(v) is None else code_text(unicodedata.normalize("NFKC", str(v))))})
    # the values
    for col, kind in value_columns.items():
        out[kind.name] = _values(frame[col], kind, sites.station_type, rows, col, rejected, out["station_id"])
    for col in passthrough:
        out[col] = _plain(frame[col]).to_numpy()
    out["source_row"] = rows
    # the rows
    times = frame[time_col].map(_to_time)
    keep = np.ones(len(frame), dtype=bool)
    known = set(sites.table["station_id"])
    outside = set(sites.outside["station_id"])
    site_rejected = sites.rejected[sites.rejected["left_out"] == "row"].dropna(subset=["station_id"])
    site_reasons = dict(zip(site_rejected["station_id"], site_rejected["reason"]))
    for j, (sid, raw_time, t) in enumerate(zip(out["station_id"], frame[time_col], times)):
        if sid is None:
            rejected.add(rows[j], id_col, None, "no station id")
        elif sid not in known:
            if sid in outside:
                why = f"station {sid} lies outside the study area (left out with its site)"
            elif sid in site_reasons:
                why = f"station {sid}: its site was left out ({site_reasons[sid]})"
            else:
                why = f"station {sid} is not in the site list {sites.path.name}"
            rejected.add(rows[j], id_col, sid, why, station_id=sid)
        elif t is None or pd.isna(t):
            rejected.add(rows[j], time_col, raw_time, "not a date or time (expected e.g. 2024-01-15)", station_id=sid)
        elif t.year != year:
            rejected.add(rows[j], time_col, raw_time, f"{t.date().isoformat()} is not in {year}", station_id=sid)
        else:
            continue
        keep[j] = False
    out["time"] = times
    out = out[keep]
    out = _drop_duplicates(out, list(units), rejected, time_col)
    ordered = ["station_id", "time", *units, *passthrough, "source_row"]
    out = out[ordered].sort_values(["station_id", "time"], kind="stable").reset_index(drop=True)
    out["time"] = pd.to_datetime(out["time"])
    result = Observations(out, rejected.frame(), units, path, _unit_doubts(out, units, sites.station_type, key, path))
    if len(result.rejected):
        log.warning("%s", rejected_summary(f"{key}.observations", result.rejected))
    return result


def _unit_doubts(out: pd.DataFrame, units: dict, station_type: str, key: str, path: Path) -> list[str]:
    """Columns whose median lies outside the quantity's ``typical_median``: values in another unit than the header
    says (mg/m³ under a µg/m³ header gives medians a thousand times too small; ``station_observations.yaml``).
    ``units``: column → unit label."""
    doubts = []
    specs = quantities(station_type)
    for col, unit in units.items():
        quantity = next((q for q in specs if column_name(station_type, q) == col), None)
        typical = (specs.get(quantity) or {}).get("typical_median")
        values = out[col].to_numpy(dtype=float)
        if typical is None or not np.isfinite(values).any():
            continue
        median = float(np.nanmedian(values))
        if not typical[0] <= median <= typical[1]:
            doubts.append(f"{key}.observations: {Path(path).name} column '{col}': median {median:g} {unit} is "
                          f"outside the {typical[0]:g}–{typical[1]:g} {unit} any station records: are the values in "
                          f"another unit than {unit} (mg/m³ and µg/m³ differ 1000-fold)?")
    for doubt in doubts:
        log.warning("%s", doubt)
    return doubts


def _values(series: pd.Series, kind, station_type: str, rows, col: str, rejected: _Rejected, ids) -> np.ndarray:
    """The column as floats: fast for plain numbers, cell by cell (:func:`_number`) for the rest; values out of
    the quantity's plausible range left out."""
    fast = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    out = fast.copy()
    slow = np.flatnonzero(np.isnan(fast))
    for j in slow:
        value, why = _number(series.iloc[j], kind.unit)
        if why:
            rejected.add(rows[j], col, series.iloc[j], f"{why}: value left out", "value", ids.iloc[j])
        out[j] = np.nan if value is None else value
    if kind.quantity is not None:
        lo, hi = quantities(station_type)[kind.quantity].get("range", (-np.inf, np.inf))
        with np.errstate(invalid="ignore"):
            bad = (out < lo) | (out > hi)
        for j in np.flatnonzero(bad):
            unit = unit_label(kind.unit)
            rejected.add(rows[j], col, series.iloc[j], f"outside the plausible range [{lo:g}, {hi:g}]"
                         f"{' ' + unit if unit else ''} of {kind.quantity} (a missing-value code such as -999, or a "
                         "unit error?): value left out", "value", ids.iloc[j])
            out[j] = np.nan
    return out


def _drop_duplicates(out: pd.DataFrame, value_cols: list[str], rejected: _Rejected, time_col: str) -> pd.DataFrame:
    """Rows repeating a (station, time): identical repeats are left out beside the first; rows that disagree are
    all left out (which one is right cannot be told)."""
    dup = out.duplicated(["station_id", "time"], keep=False)
    if not dup.any():
        return out
    drop = []
    for (sid, t), group in out[dup].groupby(["station_id", "time"], sort=False):
        lines = group["source_row"].tolist()
        same = group[value_cols].fillna(-np.inf).nunique(dropna=False).le(1).all() if value_cols else True
        when = pd.Timestamp(t).isoformat(sep=" ").removesuffix(" 00:00:00")
        if same:
            for line in lines[1:]:
                rejected.add(line, time_col, when, f"repeats line {lines[0]} (station {sid}, {when}, same values)",
                             station_id=sid)
            drop += list(group.index[1:])
        else:
            for line in lines:
                others = ", ".join(str(v) for v in lines if v != line)
                rejected.add(line, time_col, when, f"station {sid} at {when} also on line(s) {others} with other "
                             "values: all left out (which is right cannot be told)", station_id=sid)
            drop += list(group.index)
    return out.drop(index=drop)


def rejected_summary(what: str, rejected: pd.DataFrame, limit: int = 3) -> str:
    """One line: how many rows/values of which file were left out, and the first few reasons."""
    if rejected.empty:
        return f"{what}: nothing left out"
    rows = int((rejected["left_out"] == "row").sum())
    values = int((rejected["left_out"] == "value").sum())
    parts = [f"{n} {w}{'s' if n != 1 else ''}" for n, w in ((rows, "row"), (values, "value")) if n]
    distinct = rejected.drop_duplicates("reason")
    first = "; ".join(f"row {r.row} column '{r.column}': {r.reason}" for r in distinct.head(limit).itertuples())
    more = " ..." if len(distinct) > limit else ""
    return f"{what}: {' and '.join(parts)} of {rejected['file'].iloc[0]} left out ({first}{more})"
