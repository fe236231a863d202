"""Land-cover accounting across years: class areas per zone and year, transition matrices, net and gross change.

Plain functions on zone sets (:class:`~ecoassess.zones.ZoneSet`) and land-cover layers on their grid; no config.
Every area is a coverage-weighted sum on the equal-area grid (:func:`ecoassess.zones.zonal_class_areas`: a partly
covered cell counts with its covered fraction), in km².

Transition matrix (post-classification comparison): ``T[i, j]`` = area of the zone that is class ``i`` in the
first year and class ``j`` in the second. Both years are coded into one layer ``pair = index(i)·(K₂+1) + index(j)``
(index K = no data: the legend's nodata or outside the raster), whose class areas are the matrix cells, so
``Σ_j T[i, j]`` = the first year's area of ``i`` and ``Σ_i T[i, j]`` = the second year's area of ``j`` exactly
(the no-data row and column included).

Change per class ``c`` over the cells with data in both years (Pontius, Shusas & McEachern 2004, Agriculture,
Ecosystems and Environment 101:251–268, Table 2)::

    persistence = T[c, c]      start = Σ_j T[c, j]      end = Σ_i T[i, c]
    loss = start − persistence         gain = end − persistence
    net change = gain − loss = end − start     gross (total) change = gain + loss     swap = 2·min(gain, loss)
"""

from __future__ import annotations

import logging
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from ecoassess.errors import InputError

log = logging.getLogger(__name__)

#: the class code of "no data" (the legend's nodata, or outside the raster) in the transition tables
NO_DATA = -1
_NO_DATA_NAME = {"zh": "无数据", "en": "no data"}


def transition_pairs(years) -> list[tuple[int, int]]:
    """The year pairs to compare: each consecutive pair and, with three or more years, the first and last."""
    ys = sorted(set(int(y) for y in years))
    pairs = list(zip(ys[:-1], ys[1:]))
    if len(ys) > 2:
        pairs.append((ys[0], ys[-1]))
    return pairs


def _source(layer: xr.DataArray) -> str | None:
    return layer.attrs.get("source") or layer.attrs.get("path")


def class_areas_km2(zones, land_cover: xr.DataArray, legend) -> pd.DataFrame:
    """km² of each legend class per zone (:func:`~ecoassess.zones.zonal_class_areas`: ``class_<code>_km2``,
    ``nodata_km2``, ``area_outside_km2``, ``area_km2``); a code the legend does not define is an InputError naming
    the file, the codes and the legend."""
    from ecoassess.zones import zonal_class_areas

    wide = zonal_class_areas(zones, land_cover, nodata=legend.nodata)
    unknown = legend.unknown_codes(wide.attrs["class_columns"])
    if unknown:
        raise InputError(f"land-cover code(s) {unknown} are not in legend '{legend.name}' ({legend.source})",
                         path=_source(land_cover), field="legend",
                         expected=f"every raster code among the legend's codes {sorted(legend.classes)} or its "
                                  f"nodata {legend.nodata}")
    return wide


def class_area_rows(wide: pd.DataFrame, zones, legend, *, zone_set: str, year: int, lang: str = "zh") -> pd.DataFrame:
    """A :func:`class_areas_km2` table in long form: ``zone_set, zone_id, zone_name, year, class_code, class_name,
    area_km2`` (every legend class, 0 where absent) and per zone ``zone_area_km2``, ``nodata_km2``,
    ``area_outside_km2`` (Σ classes + nodata + outside = zone area)."""
    from ecoassess.assess.landcover import class_columns

    cols = class_columns(wide)
    names = dict(zip(zones.ids, zones.names))
    rows = []
    for zone_id, r in wide.iterrows():
        for code in sorted(legend.classes):
            rows.append({"zone_set": zone_set, "zone_id": str(zone_id), "zone_name": names.get(zone_id),
                         "year": int(year), "class_code": int(code), "class_name": legend.label(code, lang),
                         "area_km2": float(r[cols[code]]) if code in cols else 0.0,
                         "zone_area_km2": float(r["area_km2"]), "nodata_km2": float(r["nodata_km2"]),
                         "area_outside_km2": float(r["area_outside_km2"])})
    return pd.DataFrame(rows)


def _index_of(codes: np.ndarray):
    """A per-chunk function: class code → its index in ``codes`` (sorted), len(codes) for anything else."""
    def index(x):
        x = np.asarray(x)
        if x.dtype.kind == "f":
            ok = np.isfinite(x)
            x = np.where(ok, x, codes[0] - 1 if codes.size else 0)
        pos = np.searchsorted(codes, x)
        pos_c = np.minimum(pos, codes.size - 1)
        hit = (pos < codes.size) & (codes[pos_c] == x)
        return np.where(hit, pos_c, codes.size).astype(np.int32)
    return index


def _plane(layer: xr.DataArray) -> xr.DataArray:
    from ecoassess.grid import single_band

    layer = single_band(layer)
    if not isinstance(layer.data, da.Array):
        layer = layer.chunk()
    return layer


def transition_table(zones, before: xr.DataArray, after: xr.DataArray, legend_before, legend_after=None, *,
                     zone_set: str, from_year: int, to_year: int, lang: str = "zh") -> pd.DataFrame:
    """The transition matrix of every zone in long form: ``zone_set, zone_id, zone_name, from_year, to_year,
    from_class, from_name, to_class, to_name, area_km2`` (cells with area > 0; class :data:`NO_DATA` = no data in
    that year). ``legend_after``: the second year's legend when it differs (a cross-tabulation of two legends).
    Codes the legend does not define count as no data: check them first (:func:`class_areas_km2`)."""
    from ecoassess.zones import zonal_class_areas

    legend_after = legend_after or legend_before
    a, b = _plane(before), _plane(after)
    codes_a = np.asarray(sorted(legend_before.classes), dtype=np.int64)
    codes_b = np.asarray(sorted(legend_after.classes), dtype=np.int64)
    kb = codes_b.size + 1
    ia, ib = _index_of(codes_a), _index_of(codes_b)

    def pair(x, y):
        return (ia(x) * np.int32(kb) + ib(y)).astype(np.int32)

    data = da.map_blocks(pair, a.data, b.data.rechunk(a.data.chunks), dtype=np.int32)
    layer = a.copy(data=data)
    layer.name = f"transition_{from_year}_{to_year}"
    layer.attrs = {"nodata": -1}
    wide = zonal_class_areas(zones, layer, nodata=-1)
    names = dict(zip(zones.ids, zones.names))
    from_codes = np.append(codes_a, NO_DATA)
    to_codes = np.append(codes_b, NO_DATA)

    def label(legend, code):
        return _NO_DATA_NAME.get(lang, "no data") if code == NO_DATA else legend.label(int(code), lang)

    rows = []
    for p, col in sorted(wide.attrs["class_columns"].items()):
        fi, ti = divmod(int(p), kb)
        fc, tc = int(from_codes[fi]), int(to_codes[ti])
        for zone_id, km2 in wide[col].items():
            if km2 > 0:
                rows.append({"zone_set": zone_set, "zone_id": str(zone_id), "zone_name": names.get(zone_id),
                             "from_year": int(from_year), "to_year": int(to_year), "from_class": fc,
                             "from_name": label(legend_before, fc), "to_class": tc,
                             "to_name": label(legend_after, tc), "area_km2": float(km2)})
    columns = ["zone_set", "zone_id", "zone_name", "from_year", "to_year", "from_class", "from_name", "to_class",
               "to_name", "area_km2"]
    return pd.DataFrame(rows, columns=columns)


def transition_matrix(transitions: pd.DataFrame, zone_id, from_year: int, to_year: int,
                      zone_set: str | None = None) -> pd.DataFrame:
    """One zone's matrix (rows = from_class, columns = to_class, km²) from a :func:`transition_table`."""
    t = transitions[(transitions["zone_id"] == str(zone_id)) & (transitions["from_year"] == from_year)
                    & (transitions["to_year"] == to_year)]
    if zone_set is not None:
        t = t[t["zone_set"] == zone_set]
    return t.pivot_table(index="from_class", columns="to_class", values="area_km2", aggfunc="sum", fill_value=0.0)


def change_summary(transitions: pd.DataFrame, legend, *, lang: str = "zh") -> pd.DataFrame:
    """Net and gross change per zone, year pair and class over the cells with data in both years (module
    docstring; Pontius et al. 2004): ``start_km2, end_km2, persistence_km2, gain_km2, loss_km2, net_change_km2
    (= end − start), gross_change_km2 (= gain + loss), swap_km2 (= 2·min(gain, loss))``; every legend class."""
    keys = ["zone_set", "zone_id", "zone_name", "from_year", "to_year"]
    rows = []
    for key, g in transitions.groupby(keys, sort=True, dropna=False):
        sub = g[(g["from_class"] != NO_DATA) & (g["to_class"] != NO_DATA)]
        start = sub.groupby("from_class")["area_km2"].sum()
        end = sub.groupby("to_class")["area_km2"].sum()
        same = sub[sub["from_class"] == sub["to_class"]].groupby("from_class")["area_km2"].sum()
        for code in sorted(legend.classes):
            s, e, p = float(start.get(code, 0.0)), float(end.get(code, 0.0)), float(same.get(code, 0.0))
            gain, loss = e - p, s - p
            rows.append({**dict(zip(keys, key)), "class_code": int(code), "class_name": legend.label(code, lang),
                         "start_km2": s, "end_km2": e, "persistence_km2": p, "gain_km2": gain, "loss_km2": loss,
                         "net_change_km2": gain - loss, "gross_change_km2": gain + loss,
                         "swap_km2": 2.0 * min(gain, loss)})
    return pd.DataFrame(rows)


def habitat_rows(wide: pd.DataFrame, zones, legend, *, zone_set: str, year: int,
                 grass_fvc_areas: pd.DataFrame | None = None, coefficients=None) -> tuple[pd.DataFrame, list[str]]:
    """HJ 192-2015 habitat sub-class areas per zone (STANDARDS §2.2 crosswalk, :func:`~ecoassess.assess.landcover.
    habitat_areas`) in long form: ``zone_set, zone_id, zone_name, year, hj192_group, hj192_class, area_km2``; and
    the crosswalk's assumptions (defaults of unsplit classes, [C] mappings)."""
    from ecoassess.assess.hj192_coefficients import as_coefficients
    from ecoassess.assess.landcover import habitat_areas

    co = as_coefficients(coefficients)
    habitat, assumptions = habitat_areas(wide, legend, grass_fvc_areas=grass_fvc_areas, coefficients=co)
    names = dict(zip(zones.ids, zones.names))
    rows = []
    for zone_id, r in habitat.iterrows():
        for sub in habitat.columns:
            group = co.excluded_subclass if sub == co.excluded_subclass else co.group_of(sub)
            rows.append({"zone_set": zone_set, "zone_id": str(zone_id), "zone_name": names.get(zone_id),
                         "year": int(year), "hj192_group": group, "hj192_class": sub, "area_km2": float(r[sub])})
    return pd.DataFrame(rows), assumptions


def sampled_unknown_codes(path, legend, *, band: int = 1, max_cells: int = 16_000_000) -> list[int]:
    """Codes of the raster at ``path`` that ``legend`` does not define (its nodata and the file's nodata aside).

    The whole band is read when it has at most ``max_cells`` cells, else 64 windows of 256 × 256 cells spread over
    it (a sample: a rare code may still show only at run time, where every cell is checked). An unreadable file
    gives [] (the raster checks name it)."""
    import rasterio
    from rasterio.windows import Window

    try:
        with rasterio.open(Path(path)) as src:
            if band > src.count:
                return []
            if src.width * src.height <= max_cells:
                blocks = [src.read(band)]
            else:
                size = 256
                rows = np.linspace(0, max(src.height - size, 0), 8).astype(int)
                cols = np.linspace(0, max(src.width - size, 0), 8).astype(int)
                blocks = [src.read(band, window=Window(c, r, min(size, src.width), min(size, src.height)))
                          for r in rows for c in cols]
            file_nodata = src.nodatavals[band - 1]
    except rasterio.errors.RasterioError:
        return []
    found = np.unique(np.concatenate([np.unique(b[np.isfinite(b)] if b.dtype.kind == "f" else b) for b in blocks]))
    skip = {v for v in (legend.nodata, file_nodata) if v is not None}
    return [int(c) if float(c).is_integer() else float(c) for c in found
            if c not in skip and not (float(c).is_integer() and int(c) in legend.classes)]
