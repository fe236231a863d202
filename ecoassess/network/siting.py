"""Where new monitoring points help most (issue 20, part 5): for a station type and a number k, k proposed
locations, chosen greedily on a coarse grid of candidate cells (``siting.cell_m``, 300 m) over land cover suited
to the type (``indices/network_coverage.yaml``, through the legend's HJ 192 classes).

Each pick first closes the largest remaining shortfall of the coverage audit (a county with 0 of 2 air
stations before one with 1 of 2; an unserved river exit gets a section on the river just upstream of it), then,
with no shortfall left, maximises the suited area not yet within the type's radius of a site (maximal
coverage; the suited share of a cell stands in for area and population). Deterministic: ties go to the larger
suited share, then the cell further north-west. All choices here are ecoassess conventions [C].
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage
from scipy.spatial import cKDTree

from ecoassess.errors import InputError
from ecoassess.network.coverage import coverage_audit, load_rules
from ecoassess.network.overlay import WGS84, study_counties

log = logging.getLogger(__name__)

PROPOSAL_COLUMNS = ["proposal_id", "station_type", "county_code", "county_name", "rule_id", "reason", "gain_km2",
                    "lon", "lat"]


def _codes_of(legend, classes) -> list[int]:
    from ecoassess.legends import load_legend

    leg = load_legend(legend) if isinstance(legend, str) else legend
    if leg is None:
        raise InputError("a land-cover legend is needed to know which classes suit a station type", field="legend",
                         expected="a legend name of layers/ (e.g. cas_lucc) or a Legend")
    return sorted(c for c, v in leg.classes.items() if v.get("hj192") in set(classes))


def candidate_cells(station_type: str, land_cover, legend, counties, *, rules: dict | None = None,
                    code_field: str = "code", name_field: str = "name") -> pd.DataFrame:
    """The siting grid: one row per coarse cell whose centre lies in a county: x, y (land-cover CRS, m),
    county_code, share (suited share of the cell), eligible (share ≥ min_share and near the ``near`` classes)."""
    from ecoassess.grid import grid_of, single_band

    spec = rules or load_rules()
    sit = spec["siting"]
    if station_type not in sit["types"]:
        raise InputError(f"no siting preferences for station type '{station_type}'", field="station_type",
                         expected=", ".join(sit["types"]))
    t = sit["types"][station_type]
    lc = single_band(land_cover)
    grid = grid_of(lc)
    if not grid.crs.is_projected:
        raise InputError("land cover in geographic coordinates: the siting grid needs metres",
                         path=lc.attrs.get("path", "land cover"), field="crs", expected="a projected CRS (m)")
    f = max(int(round(float(sit["cell_m"]) / grid.resolution)), 1)
    data = np.asarray(lc.values)
    h, w = (data.shape[0] // f) * f, (data.shape[1] // f) * f
    data = data[:h, :w]

    def share(codes):
        m = np.isin(data, codes).astype("float32")
        return m.reshape(h // f, f, w // f, f).mean(axis=(1, 3))

    suited = share(_codes_of(legend, t["classes"]))
    ok = suited >= float(sit["min_share"])
    if t.get("near"):
        near = share(_codes_of(legend, t["near"])) > 0
        cells = int(np.ceil(float(t["near_m"]) / (f * grid.resolution)))
        dist = ndimage.distance_transform_edt(~near) if near.any() else np.full(near.shape, np.inf)
        ok &= dist <= cells
    step = f * grid.resolution
    xs = grid.transform.c + (np.arange(w // f) + 0.5) * step
    ys = grid.transform.f - (np.arange(h // f) + 0.5) * step
    X, Y = np.meshgrid(xs, ys)
    study = study_counties(counties, code_field=code_field, name_field=name_field).to_crs(grid.crs)
    county = np.full(X.shape, None, dtype=object)
    for code, geom in zip(study["county_code"], study.geometry):
        county[shapely.contains_xy(geom, X, Y)] = code
    keep = county != None  # noqa: E711 - elementwise on an object array
    out = pd.DataFrame({"x": X[keep], "y": Y[keep], "county_code": county[keep], "share": suited[keep],
                        "eligible": ok[keep]})
    out.attrs.update(crs=grid.crs, cell_km2=step * step / 1e6, reason=t.get("reason", ""))
    return out


def _needs(audit, station_type: str) -> dict:
    """{county_code: [need, rule_id, present, required, initial need]} for the type: the largest shortfall of
    its rules."""
    t = audit.table
    t = t[t["station_type"].str.split(",").map(lambda s: station_type in s) & (t["scope"] != "river_exit")
          & (t["shortfall"].fillna(0) > 0)]
    out = {}
    for r in t.itertuples(index=False):
        if r.county_code not in out or int(r.shortfall) > out[r.county_code][0]:
            out[r.county_code] = [int(r.shortfall), r.rule_id, int(r.present), int(r.required), int(r.shortfall)]
    return out


def propose_sites(station_type: str, k: int, counties, existing, land_cover, rules: dict | None = None, *,
                  legend="cas_lucc", audit=None, built_up=None, rivers=None, code_field: str = "code",
                  name_field: str = "name") -> gpd.GeoDataFrame:
    """Up to ``k`` proposed sites of ``station_type`` (GeoDataFrame, EPSG:4326, :data:`PROPOSAL_COLUMNS`).

    ``existing``: the overlaid sites (:func:`~ecoassess.network.overlay.overlay_stations`); ``audit``: a
    :class:`~ecoassess.network.coverage.CoverageAudit` (computed from ``existing``, ``built_up`` and ``rivers``
    when not given). Fewer than ``k`` rows when no suited cell is left that adds coverage (logged)."""
    if int(k) < 0:
        raise InputError(f"k = {k}", field="k", expected="a number of sites ≥ 0")
    spec = rules or load_rules()
    audit = audit or coverage_audit(existing, counties, rules=spec, built_up=built_up, rivers=rivers,
                                    code_field=code_field, name_field=name_field)
    cand = candidate_cells(station_type, land_cover, legend, counties, rules=spec, code_field=code_field,
                           name_field=name_field)
    crs, cell_km2 = cand.attrs["crs"], cand.attrs["cell_km2"]
    names = dict(zip(*study_counties(counties, code_field=code_field, name_field=name_field)[
        ["county_code", "county_name"]].T.values))
    radius = float(spec["radius_m"][station_type]["value"])
    xy = cand[["x", "y"]].to_numpy()
    weight = cand["share"].to_numpy(dtype="float64")
    covered = np.zeros(len(cand), dtype=bool)
    tree = cKDTree(xy) if len(xy) else None
    own = existing[(existing["station_type"] == station_type) & existing["mapped"].fillna(False).astype(bool)]
    own = own[~(own.geometry.isna() | own.geometry.is_empty)].to_crs(crs)
    taken = [(p.x, p.y) for p in own.geometry]

    def cover(x, y):
        if tree is not None:
            covered[tree.query_ball_point((x, y), radius)] = True

    for x, y in taken:
        cover(x, y)
    balls = tree.query_ball_point(xy, radius) if tree is not None else []
    eligible = cand["eligible"].to_numpy().copy()
    picks = []

    def best(mask):
        idx = np.flatnonzero(mask & eligible)
        if idx.size == 0:
            return None, 0.0
        gains = np.array([weight[b][~covered[b]].sum() for b in (balls[i] for i in idx)])
        # larger gain, then larger share, then north-west (larger y, smaller x): lexsort's last key is primary
        order = np.lexsort((xy[idx, 0], -xy[idx, 1], -weight[idx], -gains))
        return int(idx[order[0]]), float(gains[order[0]])

    def add(x, y, county, rule_id, reason, gain):
        picks.append({"station_type": station_type, "county_code": county, "county_name": names.get(county),
                      "rule_id": rule_id, "reason": reason, "gain_km2": round(gain * cell_km2, 4), "x": x, "y": y})
        cover(x, y)
        if tree is not None:                                # no second point within half a radius of this one
            eligible[tree.query_ball_point((x, y), radius / 2.0)] = False
        taken.append((x, y))

    for x, y in taken:
        if tree is not None:
            eligible[tree.query_ball_point((x, y), radius / 2.0)] = False
    needs = _needs(audit, station_type)
    exits = audit.exits
    if station_type in ("surface_water",) and len(exits) and "served" in exits.columns:
        todo = exits[~exits["served"]].sort_values(["county_code", "exit_id"])
        pts = gpd.GeoSeries(gpd.points_from_xy(todo["site_lon"], todo["site_lat"]), crs=WGS84).to_crs(crs)
        for e, p in zip(todo.itertuples(index=False), pts):
            if len(picks) >= k:
                break
            add(p.x, p.y, e.county_code, "river_exit_section",
                f"{e.river} leaves {e.county_name} ({e.exit_id}) with no section within reach: a section on the "
                "river just upstream of the boundary", 0.0)
    while len(picks) < k and needs:
        # the largest remaining shortfall; among equals the county that started worse off, then by code
        county = sorted(needs, key=lambda c: (-needs[c][0], -needs[c][4], c))[0]
        need, rule_id, present, required, _ = needs[county]
        i, gain = best(cand["county_code"].to_numpy() == county)
        if i is None:
            log.warning("%s: no suited cell left in %s (%s) for a %s site (rule %s): shortfall left open",
                        station_type, county, names.get(county), station_type, rule_id)
            del needs[county]
            continue
        have = required - need                             # present + the points proposed so far
        add(xy[i, 0], xy[i, 1], county, rule_id,
            f"{names.get(county)}: {have} of {required} required by {rule_id}; {cand.attrs['reason']}", gain)
        needs[county][0] -= 1
        if needs[county][0] <= 0:
            del needs[county]
    while len(picks) < k:
        i, gain = best(np.ones(len(cand), dtype=bool))
        if i is None or gain <= 0:
            log.info("%s: %d of %d sites proposed; no suited cell adds coverage", station_type, len(picks), k)
            break
        add(xy[i, 0], xy[i, 1], cand["county_code"].iloc[i], None,
            f"largest suited area ({cand.attrs['reason']}) not yet within {radius:.0f} m of a {station_type} site",
            gain)
    out = gpd.GeoDataFrame(picks, geometry=gpd.points_from_xy([p["x"] for p in picks], [p["y"] for p in picks]),
                           crs=crs).to_crs(WGS84) if picks else gpd.GeoDataFrame(
        {c: [] for c in PROPOSAL_COLUMNS}, geometry=[], crs=WGS84)
    out["proposal_id"] = [f"P-{station_type}-{i + 1:02d}" for i in range(len(out))]
    out["lon"], out["lat"] = out.geometry.x.round(6), out.geometry.y.round(6)
    return out[[*PROPOSAL_COLUMNS, "geometry"]]


def write_proposals(proposals: gpd.GeoDataFrame, path, layer: str = "proposed_sites") -> Path:
    """Write ``proposals`` as layer ``layer`` of the GeoPackage ``path`` (other layers of an existing file are
    kept). Written to a temporary copy beside it and moved into place when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".gpkg", prefix=f".{path.stem}-", dir=path.parent)
    os.close(fd)
    try:
        if path.exists():
            shutil.copyfile(path, tmp)
        else:
            os.remove(tmp)
        proposals.to_file(tmp, layer=layer, driver="GPKG", mode="w")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
