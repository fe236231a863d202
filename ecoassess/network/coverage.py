"""Coverage audit of the monitoring network (issue 20, part 4): per county and station type, the number of sites
the rules of ``indices/network_coverage.yaml`` require, the number present and the shortfall; where major rivers
leave a county and whether a section serves each exit; what land cover, function zones and red-line area lie
around each site (representativeness).

Rules (STANDARDS §7.6; each carries its source and confidence in the YAML): HJ 664-2013's minimum 城市点 by
built-up population and area (the larger of the two), 2 automatic air stations per county seat and soil points
in every county (铜仁市 2018 plan, local rules), a surface-water section where each major river leaves a county
(a convention built on the same plan). Lengths and areas are computed on the China Albers equal-area projection.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError
from ecoassess.network.overlay import WGS84, _where, _zone_spec, study_counties
from ecoassess.readers import normalise_code

RULES_FILE = "network_coverage.yaml"
AUDIT_COLUMNS = ["county_code", "county_name", "station_type", "rule_id", "scope", "required", "present",
                 "shortfall", "national", "confidence", "source", "note"]
_TRUE = {"true", "1", "yes", "y", "是", "t"}
_FALSE = {"false", "0", "no", "n", "否", "f"}


@lru_cache(maxsize=None)
def _shipped() -> dict:
    return load_yaml(data_path("indices", RULES_FILE))


def load_rules(path=None) -> dict:
    """The coverage definitions: ``indices/network_coverage.yaml`` or a file of one's own with the same keys."""
    spec = _shipped() if path is None else load_yaml(path)
    for key in ("hj664", "rules", "radius_m", "siting"):
        if key not in spec:
            raise InputError(f"no '{key}' section", path=path or RULES_FILE, field=key,
                             expected="the sections of indices/network_coverage.yaml")
    return spec


def _albers():
    from ecoassess.grid import china_albers_crs

    return china_albers_crs()


# -- HJ 664 ---------------------------------------------------------------------------------------------------

def _bracket(x: float, breaks: list, points: list):
    """Points for value ``x`` (lower bound inclusive; the last finite bracket closed); None above it."""
    if x > breaks[-1]:
        return None
    return points[bisect_right(breaks[:-1], x)]


def hj664_min_points(population_10k=None, area_km2=None, table: dict | None = None) -> int | None:
    """HJ 664-2013 minimum number of 城市点 for a built-up area of ``population_10k`` (万人) and ``area_km2``:
    the larger of the two criteria; above the last bracket one point per ``km2_per_point`` km² of built-up
    area, at least ``min_points`` (STANDARDS §7.6). None when neither value is known."""
    t = table or load_rules()["hj664"]
    vals = {}
    for key, x in (("population_10k_breaks", population_10k), ("area_km2_breaks", area_km2)):
        if x is None or (isinstance(x, float) and math.isnan(x)):
            continue
        if x < 0:
            raise InputError(f"negative built-up {key.split('_breaks')[0]}: {x}", field=key.split("_breaks")[0],
                             expected="a value ≥ 0")
        n = _bracket(float(x), t[key], t["points"])
        if n is None:                                       # above the table: by area, at least min_points
            by_area = math.ceil(float(area_km2) / t["km2_per_point"]) if area_km2 is not None and not (
                isinstance(area_km2, float) and math.isnan(area_km2)) else 0
            n = max(int(t["min_points"]), by_area)
        vals[key] = n
    return max(vals.values()) if vals else None


# -- counting sites -------------------------------------------------------------------------------------------

def _norm(v):
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    s = str(v).strip().lower()
    return "true" if s in _TRUE else "false" if s in _FALSE else s


def _counts(sites: pd.DataFrame, rule: dict) -> pd.Series:
    """Sites per county that count for ``rule``: of its station types, passing ``count_where`` (a field the
    table lacks, or an empty cell, does not exclude a site)."""
    m = sites["station_type"].isin(rule["station_types"])
    for f, allowed in (rule.get("count_where") or {}).items():
        if f in sites.columns:
            ok = {_norm(a) for a in allowed}
            vals = sites[f].map(_norm)
            m &= vals.isna() | vals.isin(ok)
    return sites.loc[m & sites["county_code"].notna()].groupby("county_code").size()


def _built_up(table, study) -> pd.DataFrame:
    where = _where(table, "built-up table")
    need = ["county_code", "built_up_population_10k", "built_up_area_km2"]
    miss = [c for c in need if c not in table.columns]
    if miss:
        raise InputError(f"the built-up table lacks {', '.join(miss)}", path=where, field=miss[0],
                         expected=", ".join(need) + " (population in 万人, area in km²; one may be empty)")
    out = pd.DataFrame({"county_code": table["county_code"].map(normalise_code)})
    for c in need[1:]:
        vals = pd.to_numeric(table[c], errors="coerce")
        bad = vals.isna() & table[c].notna() & (table[c].astype(str).str.strip() != "") | (vals < 0)
        if bad.any():
            i = int(np.flatnonzero(bad.values)[0])
            raise InputError(f"row {i + 2}: {table[c].iloc[i]!r} is not a number ≥ 0", path=where, field=c,
                             expected="a number ≥ 0 (万人 / km²) or an empty cell")
        out[c] = vals.values
    if out["county_code"].isna().any():
        i = int(np.flatnonzero(out["county_code"].isna().values)[0])
        raise InputError(f"row {i + 2}: {table['county_code'].iloc[i]!r} is not a county code", path=where,
                         field="county_code", expected="six digits")
    return out.set_index("county_code")


def read_built_up(path) -> pd.DataFrame:
    """The county built-up table of ``network.built_up`` (CSV in UTF-8/GBK or Excel), checked as
    :func:`coverage_audit` uses it: county_code, built_up_population_10k (万人), built_up_area_km2 (km²).
    A missing column, a value that is not a number ≥ 0 or a code that is not six digits: an InputError naming
    the file, the row and the column."""
    from ecoassess.readers import read_table

    table = read_table(path, dtype=str, keep_default_na=False)
    table.columns = [str(c).strip() for c in table.columns]
    table.attrs["path"] = str(path)
    _built_up(table, None)
    return table


# -- river exits ----------------------------------------------------------------------------------------------

def _points(geom):
    if geom.is_empty:
        return []
    if geom.geom_type == "Point":
        return [geom]
    if geom.geom_type in ("MultiPoint", "GeometryCollection", "MultiLineString", "LineString"):
        parts = getattr(geom, "geoms", [geom])
        out = []
        for p in parts:
            if p.geom_type == "Point":
                out.append(p)
            elif p.geom_type == "LineString":       # a river along the boundary: its ends are the crossings
                out += [shapely.Point(p.coords[0]), shapely.Point(p.coords[-1])]
        return out
    return []


def river_exits(rivers, counties, sites=None, rule: dict | None = None, *, code_field: str = "code",
                name_field: str = "name", river_name_field: str = "name") -> gpd.GeoDataFrame:
    """Points where a major river (rule ``river_exit_section``) flows out of a county, and the surface-water
    sections within ``exit_distance_m`` of each. River lines must be digitised downstream (from source to
    mouth, as HydroRIVERS and D8 traces are). Columns: exit_id, county_code, county_name, river, sections
    (ids, comma-separated), served, site_lon/site_lat (a point on the river ``min(D/2, 250 m)`` upstream of
    the exit: where a new section would go), geometry (the exit point, EPSG:4326)."""
    rule = rule or next(r for r in load_rules()["rules"] if r["scope"] == "river_exit")
    where = _where(rivers, "rivers")
    if rivers.crs is None:
        raise InputError("the river layer has no CRS", path=where, field="crs", expected="a layer with a CRS")
    albers = _albers()
    study = study_counties(counties, code_field=code_field, name_field=name_field).to_crs(albers)
    riv = rivers.to_crs(albers).reset_index(drop=True)
    major = np.zeros(len(riv), dtype=bool)
    used = False
    for f, lim in ((rule.get("order_field"), rule.get("min_order")),
                   (rule.get("upstream_field"), rule.get("min_upstream_km2"))):
        if f and lim is not None and f in riv.columns:
            major |= (pd.to_numeric(riv[f], errors="coerce") >= lim).fillna(False).values
            used = True
    if not used:
        raise InputError("no stream order or upstream area field to tell major rivers", path=where,
                         field=str(rule.get("order_field")),
                         expected=f"'{rule.get('order_field')}' (Strahler order) or '{rule.get('upstream_field')}' "
                                  "(km²), as named in the river_exit rule")
    riv = riv[major]
    d_m = float(rule["exit_distance_m"])
    names = riv[river_name_field].astype(str) if river_name_field in riv.columns else pd.Series("", index=riv.index)
    records = []
    for river in sorted(set(names)):
        parts = [g for g in riv.geometry[names == river] if g is not None and not g.is_empty]
        lines = []
        for g in parts:
            lines += list(getattr(g, "geoms", [g]))
        merged = shapely.line_merge(shapely.MultiLineString(lines), directed=True)
        for line in getattr(merged, "geoms", [merged]):
            length = line.length
            cands = study.sindex.query(line, predicate="intersects")
            for ci in sorted(cands):
                poly = study.geometry.iloc[ci]
                at = []
                for pt in _points(line.intersection(poly.boundary)):
                    s = line.project(pt)
                    before = line.interpolate(max(s - 1.0, 0.0))
                    after = line.interpolate(min(s + 1.0, length))
                    if poly.contains(before) and not poly.contains(after):
                        at.append(s)
                kept = []
                for s in sorted(set(at), reverse=True):         # downstream first; one exit per D along the river
                    if not kept or kept[-1] - s > d_m:
                        kept.append(s)
                for s in sorted(kept):
                    site = line.interpolate(max(s - min(d_m / 2.0, 250.0), 0.0))
                    records.append({"county_code": study["county_code"].iloc[ci],
                                    "county_name": study["county_name"].iloc[ci], "river": river,
                                    "geometry": line.interpolate(s), "site": site})
    exits = gpd.GeoDataFrame(records, geometry="geometry", crs=albers) if records else gpd.GeoDataFrame(
        {"county_code": [], "county_name": [], "river": [], "site": []}, geometry=[], crs=albers)
    exits = exits.sort_values(["county_code", "river"], kind="stable").reset_index(drop=True)
    exits.insert(0, "exit_id", [f"X-{c}-{i + 1}" for c, i in zip(exits["county_code"],
                                                                  exits.groupby("county_code").cumcount())])
    sec = []
    if sites is not None and len(exits):
        ws = sites[(sites["station_type"].isin(rule["station_types"])) & sites["mapped"].fillna(False).astype(bool)]
        ws = ws[~(ws.geometry.isna() | ws.geometry.is_empty)].to_crs(albers)
        for p in exits.geometry:
            d = ws.geometry.distance(p)
            sec.append(",".join(sorted(ws.loc[d <= d_m, "station_id"].astype(str))))
    else:
        sec = [""] * len(exits)
    exits["sections"] = sec
    exits["served"] = [bool(s) for s in sec]
    site = gpd.GeoSeries(exits["site"], crs=albers).to_crs(WGS84)
    exits["site_lon"], exits["site_lat"] = site.x.round(6).values, site.y.round(6).values
    return exits.drop(columns="site").to_crs(WGS84)


# -- the audit ------------------------------------------------------------------------------------------------

@dataclass
class CoverageAudit:
    """``table``: one row per county × rule (AUDIT_COLUMNS); ``exits``: :func:`river_exits` (empty without
    rivers)."""

    table: pd.DataFrame
    exits: gpd.GeoDataFrame

    def shortfalls(self, station_type: str | None = None) -> pd.DataFrame:
        t = self.table[self.table["shortfall"] > 0]
        return t if station_type is None else t[t["station_type"] == station_type]


def coverage_audit(overlaid, counties, *, rules: dict | None = None, built_up=None, rivers=None,
                   code_field: str = "code", name_field: str = "name",
                   river_name_field: str = "name") -> CoverageAudit:
    """Required, present and shortfall per county × rule. ``overlaid``: :func:`~ecoassess.network.overlay.
    overlay_stations` output (its ``county_code`` counts). ``built_up``: a table county_code,
    built_up_population_10k, built_up_area_km2 for the HJ 664 rule (without it the rule is not checked: rows
    say so). ``rivers``: river lines for the river-exit rule."""
    spec = rules or load_rules()
    study = study_counties(counties, code_field=code_field, name_field=name_field)
    rows = []
    exits = gpd.GeoDataFrame({"exit_id": []}, geometry=[], crs=WGS84)
    bu = _built_up(built_up, study) if built_up is not None else None
    for rule in spec["rules"]:
        counts = _counts(overlaid, rule)
        stype = ",".join(rule["station_types"])
        base = {"station_type": stype, "rule_id": rule["id"], "scope": rule["scope"],
                "national": bool(rule.get("national")), "confidence": rule.get("confidence"),
                "source": rule.get("source")}
        if rule["scope"] == "river_exit":
            if rivers is None:
                continue
            exits = river_exits(rivers, counties, overlaid, rule, code_field=code_field, name_field=name_field,
                                river_name_field=river_name_field)
            for code, name in zip(study["county_code"], study["county_name"]):
                e = exits[exits["county_code"] == code]
                req, pres = int(len(e)) * int(rule["required"]), int(e["served"].sum())
                miss = ", ".join(f"{r} ({i})" for i, r in zip(e.loc[~e["served"], "exit_id"], e.loc[~e["served"], "river"]))
                rows.append({**base, "county_code": code, "county_name": name, "required": req, "present": pres,
                             "shortfall": req - pres,
                             "note": f"exits without a section: {miss}" if miss else rule.get("note")})
            continue
        for code, name in zip(study["county_code"], study["county_name"]):
            present = int(counts.get(code, 0))
            note = rule.get("note")
            if rule["required"] == "hj664":
                if bu is None or code not in bu.index:
                    rows.append({**base, "county_code": code, "county_name": name, "required": None,
                                 "present": present, "shortfall": None,
                                 "note": "no built-up population/area given: not checked"})
                    continue
                b = bu.loc[code]
                req = hj664_min_points(b["built_up_population_10k"], b["built_up_area_km2"], spec["hj664"])
                note = (f"built-up {b['built_up_population_10k']} 万人, {b['built_up_area_km2']} km²; "
                        + (note or ""))
            else:
                req = int(rule["required"])
            rows.append({**base, "county_code": code, "county_name": name, "required": req, "present": present,
                         "shortfall": None if req is None else max(req - present, 0), "note": note})
    table = pd.DataFrame(rows, columns=AUDIT_COLUMNS)
    for c in ("required", "present", "shortfall"):
        table[c] = table[c].astype("Int64")
    return CoverageAudit(table, exits)


# -- representativeness ---------------------------------------------------------------------------------------

def radius_for(station_type: str, rules: dict | None = None) -> float:
    r = (rules or load_rules())["radius_m"]
    if station_type not in r:
        raise InputError(f"no representative radius for station type '{station_type}'", field="station_type",
                         expected=", ".join(r))
    return float(r[station_type]["value"])


def representativeness(overlaid, *, land_cover=None, legend=None, zone_sets=None, rules: dict | None = None,
                       radius_m: dict | None = None) -> pd.DataFrame:
    """What lies within each mapped site's radius (``radius_m`` by type, default ``indices/network_coverage.yaml``):
    long table station_id, station_type, radius_m, layer (``land_cover`` or a zone set's name), class (land-cover
    code or zone id; ``none`` for the part in no zone), name, share (of the valid cells / of the disc's area)."""
    from ecoassess.grid import grid_of, single_band

    spec = rules or load_rules()
    radii = {t: float(v["value"]) for t, v in spec["radius_m"].items()}
    radii.update(radius_m or {})
    sites = overlaid[overlaid["mapped"].fillna(False).astype(bool)]
    sites = sites[~(sites.geometry.isna() | sites.geometry.is_empty)]
    albers = _albers()
    rows = []
    if land_cover is not None:
        from ecoassess.legends import load_legend

        leg = load_legend(legend) if isinstance(legend, str) else legend
        lc = single_band(land_cover)
        grid = grid_of(lc)
        if not grid.crs.is_projected:
            raise InputError("land cover in geographic coordinates: distances need a projected grid",
                             path=lc.attrs.get("path", "land cover"), field="crs", expected="a projected CRS (m)")
        nodata = lc.rio.nodata if lc.rio.nodata is not None else (leg.nodata if leg else None)
        pts = sites.to_crs(grid.crs)
        res = grid.resolution
        for sid, stype, p in zip(sites["station_id"], sites["station_type"], pts.geometry):
            r = radii.get(stype)
            if r is None:
                continue
            c0, r0 = ~grid.transform * (p.x - r, p.y + r)
            c0, r0 = max(int(np.floor(c0)), 0), max(int(np.floor(r0)), 0)
            c1, r1 = ~grid.transform * (p.x + r, p.y - r)
            c1, r1 = min(int(np.ceil(c1)), grid.width), min(int(np.ceil(r1)), grid.height)
            if c1 <= c0 or r1 <= r0:
                continue
            block = np.asarray(lc.isel(y=slice(r0, r1), x=slice(c0, c1)).values)
            xs = grid.transform.c + (np.arange(c0, c1) + 0.5) * res
            ys = grid.transform.f - (np.arange(r0, r1) + 0.5) * res
            inside = np.hypot(xs[None, :] - p.x, ys[:, None] - p.y) <= r
            vals = block[inside]
            if nodata is not None:
                vals = vals[vals != nodata]
            if vals.size == 0:
                continue
            codes, n = np.unique(vals, return_counts=True)
            for c, k in zip(codes.tolist(), n.tolist()):
                rows.append({"station_id": sid, "station_type": stype, "radius_m": r, "layer": "land_cover",
                             "class": str(int(c)), "name": leg.classes.get(int(c), {}).get("zh") if leg else None,
                             "share": k / vals.size})
    for zname, zspec in (zone_sets or {}).items():
        zgdf, id_field, zname_field = _zone_spec(zname, zspec)
        z = zgdf.to_crs(albers)
        pts = sites.to_crs(albers)
        for sid, stype, p in zip(sites["station_id"], sites["station_type"], pts.geometry):
            r = radii.get(stype)
            if r is None:
                continue
            disc = p.buffer(r, quad_segs=32)
            idx = z.sindex.query(disc, predicate="intersects")
            total = disc.area
            covered = 0.0
            for i in sorted(idx, key=lambda j: str(z[id_field].iloc[j])):
                a = z.geometry.iloc[i].intersection(disc).area
                if a <= 0:
                    continue
                covered += a
                rows.append({"station_id": sid, "station_type": stype, "radius_m": r, "layer": zname,
                             "class": str(z[id_field].iloc[i]),
                             "name": z[zname_field].iloc[i] if zname_field else None, "share": a / total})
            rows.append({"station_id": sid, "station_type": stype, "radius_m": r, "layer": zname, "class": "none",
                         "name": None, "share": max(1.0 - covered / total, 0.0)})
    return pd.DataFrame(rows, columns=["station_id", "station_type", "radius_m", "layer", "class", "name", "share"])
