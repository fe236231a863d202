"""Chinese coordinates as offices get them: GCJ-02 / BD-09 web-map coordinates, old datums (Beijing 1954,
Xi'an 1980) and broken ``.prj`` files.

**GCJ-02** (国测局坐标, AMap, Tencent) is WGS84 longitude/latitude plus a deliberate, smooth offset of 300–500 m in
mainland China. **BD-09** (Baidu) is GCJ-02 with a further polar-coordinate offset. The forward formulas and their
constants are the published ones (semi-major axis 6378245.0 m and eccentricity² 0.00669342162296594323 of the
Krassovsky ellipsoid; the sine series of ``_shift``; Baidu's ``x_pi = π·3000/180``, 0.00002, 0.000003, 0.0065,
0.006), as in eviltransform (googollee/eviltransform, ``transform.py``), prcoords (Artoria2e5/PRCoords) and
coordtransform (wandergis/coordTransform). Inside the bounding box of mainland China only (lon 72.004–137.8347,
lat 0.8293–55.8271, the box those libraries use); outside it both are WGS84 itself.

The inverse (GCJ-02 → WGS84) has no closed form. The "naive" inverse ``w = g − (f(g) − g)`` is off by up to a
few metres, because the offset varies with position; :func:`gcj02_to_wgs84` iterates that step (a fixed point:
``w ← w − (f(w) − g)``) until the change is below 1e-10° (≈ 0.01 mm), which takes 3–5 steps. The BD-09 → GCJ-02
step is inverted the same way. Our own ~40 lines of numpy rather than one of the packages: they work point by
point in Python (prcoords, public domain, last release 2019; eviltransform, 2018) or through a C extension
(coordtransform), none is vectorised over numpy arrays, and the naive inverse is what most of them offer.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: the declared "CRS" names of the Chinese web-map coordinate systems
WEB_MAP_CRS = ("gcj02", "bd09")
_A = 6378245.0                      # Krassovsky semi-major axis, m (the published GCJ-02 constant)
_EE = 0.00669342162296594323        # Krassovsky first eccentricity squared (published GCJ-02 constant)
_X_PI = math.pi * 3000.0 / 180.0    # Baidu's constant
#: the box inside which GCJ-02 shifts coordinates (as in eviltransform / coordtransform)
CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)
#: datums whose reprojection to CGCS2000/WGS84 PROJ does with a zero "ballpark" shift (tens of metres off)
OLD_DATUMS = ("Beijing 1954", "New Beijing", "Xian 1980")
#: the few-hundred-metre band of the GCJ-02 offset, used to recognise it between two layers (m)
GCJ_OFFSET_BAND_M = (100.0, 1000.0)


def _in_china(lon, lat):
    x0, y0, x1, y1 = CHINA_BOX
    return (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)


def _shift(lon, lat):
    """(Δlon, Δlat) in degrees that GCJ-02 adds to WGS84 (lon, lat): the published series."""
    x, y = lon - 105.0, lat - 35.0
    s6, s2 = np.sin(6.0 * x * np.pi), np.sin(2.0 * x * np.pi)
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * s6 + 20.0 * s2) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * s6 + 20.0 * s2) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat):
    """GCJ-02 (lon, lat) of WGS84 (lon, lat), degrees (arrays or scalars); unchanged outside China's box."""
    lon, lat = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    dlon, dlat = _shift(lon, lat)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_bd09(lon, lat):
    """BD-09 (lon, lat) of GCJ-02 (lon, lat): Baidu's published formula."""
    x, y = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _invert(forward, lon, lat, tol: float = 1e-10, max_iter: int = 30):
    """(x, y) with forward(x, y) == (lon, lat) to ``tol`` degrees, by the fixed point x ← x − (f(x) − target)."""
    lon, lat = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    x, y = lon.copy(), lat.copy()
    for _ in range(max_iter):
        fx, fy = forward(x, y)
        ex, ey = fx - lon, fy - lat
        x, y = x - ex, y - ey
        err = np.nanmax(np.abs(np.concatenate([np.ravel(ex), np.ravel(ey)]))) if np.size(ex) else 0.0
        if not err > tol:  # also stops on all-NaN input
            break
    return x, y


def gcj02_to_wgs84(lon, lat):
    """WGS84 (lon, lat) of GCJ-02 (lon, lat) by the iterative inverse (≈ 1e-9° from the true point)."""
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_gcj02(lon, lat):
    """GCJ-02 (lon, lat) of BD-09 (lon, lat), the inverse of :func:`gcj02_to_bd09` iterated to 1e-10°."""
    return _invert(gcj02_to_bd09, lon, lat)


def bd09_to_wgs84(lon, lat):
    """WGS84 (lon, lat) of BD-09 (lon, lat)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def web_map_to_wgs84(kind: str, lon, lat):
    """WGS84 (lon, lat) of coordinates in ``kind`` (``gcj02`` or ``bd09``)."""
    return gcj02_to_wgs84(lon, lat) if kind == "gcj02" else bd09_to_wgs84(lon, lat)


def is_web_map_crs(crs) -> bool:
    return isinstance(crs, str) and crs.strip().lower().replace("-", "") in WEB_MAP_CRS


def web_map_kind(crs: str) -> str:
    return crs.strip().lower().replace("-", "")


CONVERTED_NOTE = {"gcj02": "GCJ-02 (AMap/Tencent) converted to WGS84 (EPSG:4326) by the iterative inverse",
                  "bd09": "BD-09 (Baidu) converted to WGS84 (EPSG:4326) by the iterative inverse"}


# -- declared CRS and datum transformations on a GeoDataFrame ---------------------------------------------------

def helmert_towgs84(params) -> str:
    """``+towgs84=dx,dy,dz,rx,ry,rz,ds`` (m, arc-seconds, ppm; position-vector convention, EPSG method 9606)."""
    return "+towgs84=" + ",".join(f"{float(v):.10g}" for v in params)


def apply_declared(gdf, crs: str | None, transformation=None, *, path=None, key: str | None = None):
    """``gdf`` in the coordinates the config declares: GCJ-02/BD-09 converted to WGS84, a CRS set on a layer that
    has none, and an old-datum layer moved to CGCS2000 by the config's ``transformation`` (a PROJ pipeline string
    from the layer's coordinates to CGCS2000 longitude/latitude, or 7 Helmert parameters to WGS84/CGCS2000)."""
    import shapely
    from pyproj import CRS, Transformer

    where = f"{key or 'layer'} ({path})" if path is not None else (key or "layer")
    if crs is not None and is_web_map_crs(crs):
        kind = web_map_kind(crs)
        if gdf.crs is not None and not CRS.from_user_input(gdf.crs).is_geographic:
            from ecoassess.errors import InputError

            raise InputError(f"is declared {kind} but its CRS {gdf.crs.name} is projected", path=path,
                             field=f"{key}.crs" if key else "crs",
                             expected=f"{kind} longitude/latitude in degrees (a layer labelled EPSG:4326 or none)")

        def convert(xy):
            lon, lat = web_map_to_wgs84(kind, xy[:, 0], xy[:, 1])
            return np.column_stack([lon, lat])

        out = gdf.set_geometry(shapely.transform(gdf.geometry.values, convert), crs=None)
        out = out.set_crs("EPSG:4326", allow_override=True)
        log.info("%s: %s", where, CONVERTED_NOTE[kind])
        return out
    if crs is not None and gdf.crs is None:
        gdf = gdf.set_crs(crs)
    if transformation is not None and gdf.crs is not None:
        if isinstance(transformation, str):
            tr = Transformer.from_pipeline(transformation)

            def move(xy):
                x, y = tr.transform(xy[:, 0], xy[:, 1])
                return np.column_stack([x, y])

            out = gdf.set_geometry(shapely.transform(gdf.geometry.values, move), crs=None)
            log.info("%s: moved to CGCS2000 (EPSG:4490) by the configured PROJ pipeline", where)
            return out.set_crs("EPSG:4490", allow_override=True)
        import warnings

        with warnings.catch_warnings():  # "you will likely lose projection information": not for TM/geographic
            warnings.simplefilter("ignore", UserWarning)
            proj4 = CRS.from_user_input(gdf.crs).to_proj4()
        proj4 = " ".join(t for t in proj4.split() if not t.startswith(("+towgs84", "+nadgrids")))
        bound = CRS.from_proj4(f"{proj4} {helmert_towgs84(transformation)}")
        log.info("%s: moved to WGS84 by the configured 7-parameter transformation %s", where,
                 helmert_towgs84(transformation))
        return gdf.set_crs(bound, allow_override=True).to_crs("EPSG:4326")
    return gdf


def old_datum(crs) -> str | None:
    """The name of an old Chinese datum (Beijing 1954, Xi'an 1980) ``crs`` is on, else None."""
    from pyproj import CRS

    try:
        crs = CRS.from_user_input(crs)
        name = (crs.datum.name if crs.datum is not None else "") or ""
    except Exception:  # noqa: BLE001 - an unreadable CRS is named elsewhere
        return None
    for known in OLD_DATUMS:
        if name.replace("'", "").lower().startswith(known.lower()):
            return name
    return None


def ballpark_only(crs, target) -> bool:
    """Whether PROJ would go from ``crs`` to ``target`` only by a "Ballpark" (zero) datum shift."""
    from pyproj import CRS
    from pyproj.transformer import TransformerGroup

    try:
        group = TransformerGroup(CRS.from_user_input(crs), CRS.from_user_input(target), always_xy=True)
    except Exception:  # noqa: BLE001
        return False
    return bool(group.transformers) and "ballpark" in group.transformers[0].description.lower()


def old_datum_warning(key: str, path, crs, target, transformation=None) -> str | None:
    """A warning when ``crs`` is Beijing 1954 / Xi'an 1980 and no transformation is configured."""
    name = old_datum(crs)
    if name is None or transformation is not None or not ballpark_only(crs, target):
        return None
    return (f"{key}: {path} is on the {name} datum; PROJ would reproject it to the analysis grid (CGCS2000) with "
            "a zero 'ballpark' datum shift, tens of metres off (expected a datum transformation: give "
            f"{key}.transformation, a PROJ pipeline string to CGCS2000 longitude/latitude or the 7 Helmert "
            "parameters [dx, dy, dz, rx, ry, rz, ds] of the area's published Beijing 1954/Xi'an 1980 → "
            "CGCS2000 conversion)")


# -- .prj files ---------------------------------------------------------------------------------------------

def prj_problem(path) -> str | None:
    """What is wrong with the ``.prj`` beside a shapefile, or None (no shapefile, no .prj, or a sound one).

    GDAL and PROJ read a WKT leniently: text after the closing bracket is ignored, and a PROJECTION without its
    PARAMETERs is taken with zero defaults (a Gauss-Krüger on the 0° meridian). Checked here: balanced brackets
    with nothing after them, readable by PROJ, and a projection that has its parameters."""
    from pyproj import CRS

    path = Path(path)
    if path.suffix.lower() != ".shp":
        return None
    prj = next((p for p in (path.with_suffix(".prj"), path.with_suffix(".PRJ")) if p.is_file()), None)
    if prj is None:
        return None
    text = prj.read_bytes().decode("utf-8", errors="replace").strip().lstrip("\ufeff")
    if not text:
        return f"{prj} is empty (expected the WKT of the layer's CRS)"
    depth, end = 0, None
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                end = i
                break
            if depth < 0:
                break
    if end is None:
        return f"{prj} is not a complete WKT (its brackets do not close; expected e.g. GEOGCS[...] or PROJCS[...])"
    if text[end + 1:].strip():
        return (f"{prj} has text after the end of its WKT ('{text[end + 1:end + 21].strip()}...'): a damaged file "
                "(expected one WKT definition)")
    try:
        crs = CRS.from_wkt(text)
    except Exception as exc:  # noqa: BLE001
        return f"{prj} is not a WKT PROJ can read ({exc})"
    if re.search(r"PROJECTION\s*\[", text, re.I) and not re.search(r"PARAMETER\s*\[", text, re.I):
        return (f"{prj} names a projection ({crs.coordinate_operation.method_name if crs.coordinate_operation else '?'})"
                " without its parameters (central meridian, false easting, ...): PROJ would take zeros")
    return None


# -- the GCJ-02 signature between two layers ----------------------------------------------------------------------

def gcj_offset_warning(key: str, path, layer_gdf, reference_gdf, metric_crs, *, max_vertices: int = 4000
                       ) -> str | None:
    """A warning when ``layer_gdf`` lies a consistent few hundred metres off the boundaries of ``reference_gdf``
    (the study area) and converting it as GCJ-02 (or BD-09) brings it onto them.

    The vertices of the layer are compared with the reference boundaries in ``metric_crs``: when their median
    distance is within :data:`GCJ_OFFSET_BAND_M` and the GCJ-02 inverse shrinks it to under a fifth, the layer
    was drawn on a web map. A layer that does not follow the study area's boundaries (red-line units inside the
    counties) has large distances either way and is not flagged."""
    import shapely
    from pyproj import CRS

    if layer_gdf.crs is None or reference_gdf.crs is None or len(layer_gdf) == 0:
        return None
    geo = layer_gdf.to_crs("EPSG:4326")
    pts = shapely.get_coordinates(geo.geometry.values)
    if len(pts) == 0:
        return None
    if len(pts) > max_vertices:
        pts = pts[np.linspace(0, len(pts) - 1, max_vertices).astype(int)]
    if not _in_china(pts[:, 0], pts[:, 1]).all():
        return None
    boundary = shapely.union_all(shapely.boundary(reference_gdf.to_crs(CRS.from_user_input(metric_crs)).geometry.values))
    shapely.prepare(boundary)
    from pyproj import Transformer

    to_metric = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)

    def median_distance(lon, lat):
        x, y = to_metric.transform(lon, lat)
        return float(np.median(shapely.distance(shapely.points(x, y), boundary)))

    as_is = median_distance(pts[:, 0], pts[:, 1])
    lo, hi = GCJ_OFFSET_BAND_M
    if not lo <= as_is <= hi:
        return None
    for kind in WEB_MAP_CRS:
        fixed = median_distance(*web_map_to_wgs84(kind, pts[:, 0], pts[:, 1]))
        if fixed < as_is / 5:
            return (f"{key}: {path} lies a consistent {as_is:.0f} m (median) off the study area's boundaries, and "
                    f"read as {kind.upper().replace('0', '-0', 1)} it falls onto them ({fixed:.0f} m): coordinates "
                    f"from a web map? (expected the CRS the coordinates are in: declare {key}.crs: {kind})")
    return None
