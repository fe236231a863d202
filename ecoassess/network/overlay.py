"""Stations on the map (issue 20, part 3): each site joined to its county by location, to the zone sets (red-line
units, function zones) and to the land-cover class at its location; summaries per county × type and zone × type.

A county code given with a site is checked against its location and a disagreement is reported (columns
``county_disagrees`` and ``county_check``, and a warning), never silently taken: a mapped site's county is the
one it lies in. An unmapped site (a water section without coordinates) keeps its given county. Given codes
are matched to the study area's counties directly, through an alias table (``{old code or name: current code
or name}``), or through the GB/T 2260 code table's names (``layers/gbt2260.csv``): an abolished code whose
name, without its unit suffix, is the name of one study-area county (522200 铜仁地区 → 铜仁市).
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from ecoassess.admin_codes import code_table, stem
from ecoassess.errors import InputError
from ecoassess.readers import code_text, normalise_code

log = logging.getLogger(__name__)

STATION_TYPES = ("air", "surface_water", "drinking_water", "soil", "noise", "ecology_plots")
SITE_COLUMNS = ("station_id", "station_type", "county_code", "mapped")
WGS84 = "EPSG:4326"


def _where(frame, default: str) -> str:
    return str(getattr(frame, "attrs", {}).get("path") or default)


def study_counties(counties, *, code_field: str = "code", name_field: str = "name") -> gpd.GeoDataFrame:
    """The study area's county polygons as ``county_code`` (six-digit text), ``county_name``, geometry in
    EPSG:4326. Missing fields, a code that is not six digits or a repeated code raise an InputError."""
    where = _where(counties, "counties")
    if counties.crs is None:
        raise InputError("the county layer has no CRS", path=where, field="crs", expected="a layer with a CRS")
    for f in (code_field, name_field):
        if f not in counties.columns:
            raise InputError(f"no field '{f}' in the county layer (fields: {', '.join(map(str, counties.columns))})",
                             path=where, field=f, expected="the county code and name fields")
    codes = counties[code_field].map(normalise_code)
    bad = [f"feature {i + 1} ({code_text(v)!r})" for i, (v, c) in enumerate(zip(counties[code_field], codes))
           if pd.isna(c)]
    if bad:
        raise InputError(f"not a six-digit GB/T 2260 county code: {', '.join(bad[:5])}", path=where,
                         field=code_field, expected="six digits, e.g. 520602")
    dup = sorted(codes[codes.duplicated()].unique())
    if dup:
        raise InputError(f"county code(s) {', '.join(dup)} appear more than once", path=where, field=code_field,
                         expected="one polygon (or multipolygon) per county")
    out = gpd.GeoDataFrame({"county_code": codes.values, "county_name": counties[name_field].astype(str).values},
                           geometry=counties.geometry.values, crs=counties.crs).to_crs(WGS84)
    out.attrs["path"] = where
    return out


def _alias_map(aliases) -> dict[str, str]:
    if aliases is None:
        return {}
    if isinstance(aliases, pd.DataFrame):
        if not {"alias", "current"} <= set(aliases.columns):
            raise InputError("the alias table needs the columns 'alias' and 'current'",
                             path=_where(aliases, "aliases"), field="alias",
                             expected="columns alias (old code or name), current (code or name in the study area)")
        aliases = dict(zip(aliases["alias"], aliases["current"]))
    return {str(k).strip(): str(v).strip() for k, v in dict(aliases).items()}


def read_aliases(path) -> pd.DataFrame:
    """The alias table of ``network.aliases`` (CSV in UTF-8/GBK or Excel; columns ``alias``: an old code or name,
    ``current``: the code or name in the study area), checked: an InputError names a missing column or the row of
    an empty cell."""
    from ecoassess.readers import read_table

    table = read_table(path, dtype=str, keep_default_na=False)
    table.columns = [str(c).strip() for c in table.columns]
    table.attrs["path"] = str(path)
    _alias_map(table)
    for col in ("alias", "current"):
        empty = table[col].str.strip() == ""
        if empty.any():
            raise InputError(f"row {int(np.flatnonzero(empty.values)[0]) + 2}: empty cell", path=path, field=col,
                             expected="an old code or name in 'alias' and the study-area county in 'current'")
    return table


def resolve_county(code, name, study: pd.DataFrame, aliases: dict[str, str]) -> tuple[str | None, str]:
    """The study-area county a given code (or name) stands for, and how it was found (text)."""
    codes = dict(zip(study["county_code"], study["county_name"]))
    by_name = {n: c for c, n in codes.items()}
    code = normalise_code(code)
    if code in codes:
        return code, "code"
    entry = code_table().get(code) if code else None
    keys = [k for k in (code, name, entry["name"] if entry else None) if k]
    for key in keys:
        target = aliases.get(str(key))
        if target is not None:
            found = target if target in codes else by_name.get(target)
            if found:
                return found, f"alias {key} → {codes[found]}"
    for key in [k for k in (name, entry["name"] if entry else None) if k]:
        same = [c for c, n in codes.items() if stem(n) == stem(key) and (code is None or c[:2] == code[:2])]
        if len(same) == 1:
            return same[0], f"{key} is now {codes[same[0]]} ({same[0]})"
    if code is None and not name:
        return None, "no county given"
    return None, f"{code or name} is not a county of the study area"


def _join_smallest(points: gpd.GeoSeries, polygons: gpd.GeoDataFrame, ids) -> np.ndarray:
    """The id (of ``ids``, one per polygon) of the polygon holding each point; None outside. A point in several
    (on a shared edge, or in overlapping zones) takes the smallest id."""
    out = np.full(len(points), None, dtype=object)
    ok = ~(points.isna() | points.is_empty).values
    if not ok.any():
        return out
    pidx, gidx = polygons.sindex.query(points.values[ok], predicate="intersects")
    rows = np.flatnonzero(ok)[pidx]
    for r, i in sorted(zip(rows.tolist(), np.asarray(ids)[gidx].tolist()), reverse=True):
        out[r] = i                                          # the smallest id is written last
    return out


def _locate(points: gpd.GeoSeries, counties: gpd.GeoDataFrame) -> np.ndarray:
    """County code of the polygon holding each point (None outside; on a shared edge the smaller code)."""
    return _join_smallest(points, counties, counties["county_code"].values)


def _zone_spec(name: str, spec):
    """(GeoDataFrame, id field, name field or None) of one zone set."""
    if isinstance(spec, dict):
        gdf, id_field, name_field = spec["gdf"], spec.get("id_field"), spec.get("name_field")
    elif isinstance(spec, tuple):
        gdf, id_field, name_field = (*spec, None)[:3]
    else:
        gdf, id_field, name_field = spec, None, None
    if id_field is None:
        id_field = next((f for f in ("unit_id", "zone_id", f"{name}_id", "id", "code") if f in gdf.columns), None)
    if id_field is None or id_field not in gdf.columns:
        raise InputError(f"zone set '{name}': no id field (fields: {', '.join(map(str, gdf.columns))})",
                         path=_where(gdf, name), field=str(id_field or "id"),
                         expected="unit_id, zone_id or a field named with (gdf, id_field)")
    if gdf.crs is None:
        raise InputError(f"zone set '{name}' has no CRS", path=_where(gdf, name), field="crs",
                         expected="a layer with a CRS")
    if name_field is None and "name" in gdf.columns:
        name_field = "name"
    return gdf.to_crs(WGS84).reset_index(drop=True), id_field, name_field


def _zone_join(points: gpd.GeoSeries, zones: gpd.GeoDataFrame, id_field: str):
    """Zone id of each point (None outside; overlapping zones: the smallest id)."""
    return _join_smallest(points, zones, zones[id_field].astype(str).values)


def land_cover_at(points: gpd.GeoSeries, land_cover, legend=None):
    """Class code (Int64, <NA> off the raster or on nodata) and class name (legend's Chinese label) at each
    point; ``legend``: a :class:`~ecoassess.legends.Legend` or a legend name of ``layers/``."""
    from ecoassess.grid import grid_of, single_band
    from ecoassess.legends import Legend, load_legend

    lc = single_band(land_cover)
    try:
        grid = grid_of(lc)
    except ValueError as exc:
        raise InputError(str(exc), path=lc.attrs.get("path", "land cover"), field="crs",
                         expected="a georeferenced land-cover raster") from exc
    n = len(points)
    codes = pd.array([pd.NA] * n, dtype="Int64")
    ok = ~(points.isna() | points.is_empty).values
    if ok.any():
        xy = points[ok].to_crs(grid.crs)
        col, row = ~grid.transform * (xy.x.values, xy.y.values)
        col, row = np.floor(col).astype(int), np.floor(row).astype(int)
        inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
        import xarray as xr

        vals = lc.isel(y=xr.DataArray(row[inside]), x=xr.DataArray(col[inside])).values
        if isinstance(legend, str):
            legend = load_legend(legend)
        nodata = lc.rio.nodata if hasattr(lc, "rio") else None
        nodata = legend.nodata if nodata is None and isinstance(legend, Legend) else nodata
        got = pd.array([pd.NA if (nodata is not None and v == nodata) or not np.isfinite(v) else int(v)
                        for v in vals.astype("float64")], dtype="Int64")
        idx = np.flatnonzero(ok)[inside]
        codes[idx] = got
    names = [None] * n
    if legend is not None:
        legend = load_legend(legend) if isinstance(legend, str) else legend
        names = [legend.classes.get(int(c), {}).get("zh") if c is not pd.NA else None for c in codes]
    return codes, names


def overlay_stations(sites, counties, zone_sets=None, land_cover=None, legend=None, aliases=None, *,
                     code_field: str = "code", name_field: str = "name") -> gpd.GeoDataFrame:
    """``sites`` (the registry's schema: station_id, station_type, county_code, mapped, geometry) with

    - ``county_code_given`` (as given), ``county_given_as`` (how it was matched to a study-area county),
      ``county_code_located`` (polygon holding the site), ``county_code`` (located for a mapped site, else the
      given county as matched), ``county_name``, ``county_disagrees`` (located ≠ given, both known), and
      ``county_check`` (one line per site saying what was checked);
    - ``<zone>_id`` (and ``<zone>_name``) for each zone set of ``zone_sets`` ({name: gdf | (gdf, id_field) |
      {"gdf", "id_field", "name_field"}});
    - ``land_cover_code``, ``land_cover_name`` when ``land_cover`` (a georeferenced DataArray) is given.

    Output in EPSG:4326, rows in the input order.
    """
    where = _where(sites, "sites")
    missing = [c for c in SITE_COLUMNS if c not in sites.columns]
    if missing:
        raise InputError(f"the site table lacks {', '.join(missing)}", path=where, field=missing[0],
                         expected="the registry's columns " + ", ".join(SITE_COLUMNS))
    if sites.crs is None:
        raise InputError("the site table has no CRS", path=where, field="crs", expected="EPSG:4326")
    study = study_counties(counties, code_field=code_field, name_field=name_field)
    names = dict(zip(study["county_code"], study["county_name"]))
    alias = _alias_map(aliases)
    out = sites.to_crs(WGS84).reset_index(drop=True).copy()
    mapped = out["mapped"].fillna(False).astype(bool).values
    geoms = out.geometry.where(mapped, None)
    located = _locate(geoms, study)
    given_name = out["county_name"] if "county_name" in out.columns else pd.Series([None] * len(out))
    resolved, how = zip(*[resolve_county(c, n if isinstance(n, str) and n.strip() else None, study, alias)
                          for c, n in zip(out["county_code"], given_name)]) if len(out) else ((), ())
    resolved = np.array(resolved, dtype=object)
    out["county_code_given"] = out["county_code"].map(code_text)
    out["county_given_as"] = list(how)
    out["county_code_located"] = located
    final = np.where(mapped, located, resolved)
    out["county_code"] = final
    out["county_name"] = [names.get(c) for c in final]
    disagree = mapped & np.array([g is not None and loc is not None and g != loc
                                  for g, loc in zip(resolved, located)], dtype=bool)
    out["county_disagrees"] = disagree
    checks = []
    for m, g, how_, loc, raw in zip(mapped, resolved, out["county_given_as"], located, out["county_code_given"]):
        if not m:
            checks.append(f"not mapped: given county {g} used" if g else f"not mapped, and {how_}")
        elif loc is None:
            checks.append(f"outside every county of the study area (given {raw or 'none'})")
        elif g is None:
            checks.append(f"located in {loc}; {how_}")
        elif g != loc:
            checks.append(f"located in {loc} {names[loc]}, but given {raw} ({g} {names[g]}): location used")
        else:
            checks.append("given county agrees with the location" + ("" if how_ == "code" else f" ({how_})"))
    out["county_check"] = checks
    if disagree.any():
        rows = out.loc[disagree, ["station_id", "county_check"]]
        log.warning("%s: %d site(s) lie in another county than the one given: %s", where, int(disagree.sum()),
                    "; ".join(f"{s}: {c}" for s, c in rows.head(5).itertuples(index=False)))
    for zname, spec in (zone_sets or {}).items():
        zgdf, id_field, zname_field = _zone_spec(zname, spec)
        ids = _zone_join(geoms, zgdf, id_field)
        out[f"{zname}_id"] = ids
        if zname_field:
            lookup = dict(zip(zgdf[id_field].astype(str), zgdf[zname_field]))
            out[f"{zname}_name"] = [lookup.get(z) for z in ids]
    if land_cover is not None:
        codes, lnames = land_cover_at(geoms, land_cover, legend)
        out["land_cover_code"] = codes
        out["land_cover_name"] = lnames
    out.attrs["path"] = where
    return out


def county_summary(overlaid, counties, *, code_field: str = "code", name_field: str = "name",
                   station_types=None) -> pd.DataFrame:
    """One row per county × station type (every county, also those with no site): ``n_sites``, ``n_mapped``,
    ``n_county_disagrees``; sites in no county of the study area form rows with an empty county_code."""
    study = study_counties(counties, code_field=code_field, name_field=name_field)
    types = list(station_types or [t for t in STATION_TYPES if t in set(overlaid["station_type"])] or
                 sorted(set(overlaid["station_type"])))
    base = pd.MultiIndex.from_product([study["county_code"], types], names=["county_code", "station_type"])
    df = pd.DataFrame({"county_code": overlaid["county_code"].fillna(""), "station_type": overlaid["station_type"],
                       "mapped": overlaid["mapped"].fillna(False).astype(bool),
                       "dis": overlaid["county_disagrees"].astype(bool)})
    g = df.groupby(["county_code", "station_type"]).agg(n_sites=("mapped", "size"), n_mapped=("mapped", "sum"),
                                                        n_county_disagrees=("dis", "sum"))
    extra = g.index[~g.index.isin(base)]
    out = g.reindex(base.append(extra), fill_value=0).reset_index()
    out.insert(1, "county_name", out["county_code"].map(dict(zip(study["county_code"], study["county_name"]))))
    for c in ("n_sites", "n_mapped", "n_county_disagrees"):
        out[c] = out[c].astype(int)
    return out


def zone_summary(overlaid, zone: str, zones=None, *, station_types=None) -> pd.DataFrame:
    """One row per zone × station type of zone set ``zone`` (column ``<zone>_id`` of :func:`overlay_stations`):
    ``n_sites``; with ``zones`` (the zone set as given to the overlay), zones holding no site get rows of 0."""
    col = f"{zone}_id"
    if col not in overlaid.columns:
        raise InputError(f"no column {col}: zone set '{zone}' was not in the overlay", field=col,
                         expected=", ".join(c for c in overlaid.columns if c.endswith("_id")))
    types = list(station_types or [t for t in STATION_TYPES if t in set(overlaid["station_type"])])
    df = overlaid[overlaid[col].notna()]
    g = df.groupby([col, "station_type"]).size().rename("n_sites")
    ids = sorted(set(df[col]))
    if zones is not None:
        zgdf, id_field, _ = _zone_spec(zone, zones)
        ids = sorted(set(zgdf[id_field].astype(str)) | set(ids))
    base = pd.MultiIndex.from_product([ids, types], names=[col, "station_type"])
    return g.reindex(base, fill_value=0).reset_index().astype({"n_sites": int})
