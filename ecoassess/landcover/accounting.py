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
        if x.dtype.kind in "iu" and x.dtype.itemsize <= 2:  # small integer codes: one lookup table
            info = np.iinfo(x.dtype)
            lut = np.full(int(info.max) - int(info.min) + 1, codes.size, np.int32)
            inside = codes[(codes >= info.min) & (codes <= info.max)]
            lut[inside - info.min] = np.searchsorted(codes, inside)
            return lut[x.astype(np.int64) - info.min] if info.min else lut[x]
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
    from_codes = np.append(codes_a, NO_DATA)
    to_codes = np.append(codes_b, NO_DATA)
    no_data = _NO_DATA_NAME.get(lang, "no data")
    from_names = np.array([legend_before.label(int(c), lang) for c in codes_a] + [no_data], dtype=object)
    to_names = np.array([legend_after.label(int(c), lang) for c in codes_b] + [no_data], dtype=object)
    pairs = np.array(sorted(wide.attrs["class_columns"]), dtype=np.int64)
    km2 = wide[[wide.attrs["class_columns"][p] for p in pairs]].to_numpy(dtype=float).reshape(len(wide), pairs.size)
    zi, pi = np.nonzero(km2 > 0)                      # zone-major: every zone's cells in pair order
    fi, ti = np.divmod(pairs[pi], kb)
    return pd.DataFrame({
        "zone_set": zone_set, "zone_id": np.asarray([str(i) for i in zones.ids], dtype=object)[zi],
        "zone_name": np.asarray(zones.names, dtype=object)[zi], "from_year": int(from_year), "to_year": int(to_year),
        "from_class": from_codes[fi].astype(int), "from_name": from_names[fi], "to_class": to_codes[ti].astype(int),
        "to_name": to_names[ti], "area_km2": km2[zi, pi]})


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
    keys = ["zone_set", "zone_id", "from_year", "to_year"]
    t = transitions[(transitions["from_class"] != NO_DATA) & (transitions["to_class"] != NO_DATA)]
    groups = transitions[keys + ["zone_name"]].drop_duplicates(keys)
    classes = pd.DataFrame({"class_code": sorted(legend.classes)})
    classes["class_name"] = [legend.label(c, lang) for c in classes["class_code"]]
    out = groups.merge(classes, how="cross")

    def total(frame, by, name):
        got = frame.groupby(keys + [by])["area_km2"].sum().rename(name).reset_index()
        return got.rename(columns={by: "class_code"})

    for part in (total(t, "from_class", "start_km2"), total(t, "to_class", "end_km2"),
                 total(t[t["from_class"] == t["to_class"]], "from_class", "persistence_km2")):
        out = out.merge(part, on=keys + ["class_code"], how="left")
    out[["start_km2", "end_km2", "persistence_km2"]] = out[["start_km2", "end_km2", "persistence_km2"]].fillna(0.0)
    out["gain_km2"] = out["end_km2"] - out["persistence_km2"]
    out["loss_km2"] = out["start_km2"] - out["persistence_km2"]
    out["net_change_km2"] = out["gain_km2"] - out["loss_km2"]
    out["gross_change_km2"] = out["gain_km2"] + out["loss_km2"]
    out["swap_km2"] = 2.0 * np.minimum(out["gain_km2"], out["loss_km2"])
    first = ["zone_set", "zone_id", "zone_name", "from_year", "to_year", "class_code", "class_name"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


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
