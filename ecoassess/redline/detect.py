"""Human-activity patches in and around ecological conservation red-line units between two dates (issue 19, parts
2–3; STANDARDS §5): change evidence, masks, morphological clean-up, patches at or above the MMU, split at unit
boundaries into inside (红线内) and buffer (缓冲区) parts, each typed (activity, change type, confidence).

Thresholds and their sources: ``indices/redline_detection.yaml``; activity types and rules:
``layers/redline_activity_types.yaml``. Works from imagery alone (no land cover, no QA mask). Land cover of both dates is evidence too: a transition into
a class of the activity rules (cropland, water, built-up, bare; ``lc_to_any``) is development, one from such a
class to a natural class restoration, even where the imagery shows little (grassland ploughed in spring looks like
grassland in a May–September median); such patches carry only the land-cover share of the confidence (0.3).
Land cover of the before date (or both) rejects seasonal-only differences: cropland that stays cropland (harvest,
green-up, flooding) and water that stays water (water level), with
the mixed-pixel fringe around such a difference where land cover shows no transition (YAML seasonal.fringe_px).

The two dates are read into memory over the grid they share (a red-line window; the stage chooses the window).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import Transformer
from rasterio import features
from scipy import ndimage
from shapely.geometry import box, shape

from ecoassess.errors import AllMaskedError, InputError
from ecoassess.grid import AnalysisGrid, grid_of, is_equal_area
from ecoassess.redline.activity import ActivityTable, PatchFeatures, load_activity_table
from ecoassess.redline.evidence import EIGHT, change_evidence, load_settings

ROLES = ("blue", "green", "red", "nir", "swir1")
INDICES = ("NDVI", "BSI", "NDBI", "MNDWI")
#: evidence of a human activity (development) and of its removal (restoration)
DEVELOPMENT = ("ndvi_loss", "bsi_gain", "ndbi_gain", "water_gain")
PATCH_COLUMNS = ["area_m2", "unit_id", "unit_name", "location", "county_code", "county_name", "centroid_lon",
                 "centroid_lat", "activity_type", "activity_name", "change_type", "confidence", "evidence",
                 "ndvi_before", "ndvi_after", "fvc_before", "fvc_after", "before_period", "after_period",
                 "before_sensor", "after_sensor", "land_cover_from", "land_cover_to"]
UNIT_COLUMNS = ["unit_id", "unit_name", "area_m2", "observed_m2", "not_observable_m2", "not_observable_share"]


@dataclass
class DetectionResult:
    """``patches``: the shared patch table (one row per patch part; CRS = the grid's equal-area CRS);
    ``units``: per red-line unit its area, the area observed in both dates and the area not observable
    (cloud, shadow, no data in either date, or outside the imagery); ``info``: thresholds, MMU, buffer and the
    robust statistics of each index difference (for the manifest); ``observed``: the cells observed in both dates
    (bool, the grid's shape; for the area not observable of other zones, e.g. unit parts per county:
    :func:`unit_observability`)."""

    patches: gpd.GeoDataFrame
    units: pd.DataFrame
    info: dict = field(default_factory=dict)
    observed: np.ndarray | None = None


# -- inputs ------------------------------------------------------------------------------------------------------

def _name(ds, label: str) -> str:
    return str(ds.attrs.get("path") or ds.attrs.get("source") or label) if hasattr(ds, "attrs") else label


def _plane(arr, what: str, path: str) -> xr.DataArray:
    if "band" in arr.dims and arr.sizes["band"] == 1:
        arr = arr.squeeze("band", drop=True)
    if set(arr.dims) != {"y", "x"}:
        raise InputError(f"has dimensions {tuple(arr.dims)}", path=path, field=what, expected="a 2-D (y, x) layer")
    return arr.transpose("y", "x")


def _grid(ds, label: str) -> AnalysisGrid:
    if not isinstance(ds, xr.Dataset):
        raise InputError(f"is a {type(ds).__name__}", path=label, expected="an xarray.Dataset of band roles")
    try:
        return grid_of(ds)
    except ValueError as exc:
        raise InputError(str(exc), path=_name(ds, label), field="spatial_ref",
                         expected="a layer carrying its grid (rioxarray CRS and transform)") from None


def _same_grid(a: AnalysisGrid, b: AnalysisGrid) -> bool:
    return (a.shape == b.shape and a.crs == b.crs
            and np.allclose(tuple(a.transform)[:6], tuple(b.transform)[:6], rtol=0, atol=1e-6 * a.resolution))


def _bands(ds: xr.Dataset, label: str, dilate_px: int = 0) -> tuple[dict, np.ndarray]:
    """Reflectance per role (float64, NaN = not observed) and where this date was observed: all roles finite,
    ``clear`` True and ``mask`` False, the flagged cells grown by ``dilate_px`` cells (cloud and shadow edges
    that the flags miss; YAML ``mask_dilation_m``)."""
    path = _name(ds, label)
    missing = [r for r in ROLES if r not in ds.data_vars]
    if missing:
        raise InputError(f"lacks band roles {missing} (has {sorted(map(str, ds.data_vars))})", path=path,
                         field=", ".join(missing), expected="reflectance bands " + ", ".join(ROLES))
    out = {}
    for role in ROLES:
        arr = _plane(ds[role], role, path)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise InputError(f"holds {arr.dtype} values (text?)", path=path, field=role,
                             expected="numeric surface reflectance")
        out[role] = np.asarray(arr.values, dtype="float64")
    observed = np.logical_and.reduce([np.isfinite(v) for v in out.values()])
    flagged = np.zeros(observed.shape, dtype=bool)
    for name, clear_when in (("clear", True), ("mask", False)):
        if name in ds.data_vars:
            m = _plane(ds[name], name, path).values
            if not (np.issubdtype(m.dtype, np.number) or m.dtype == bool):
                raise InputError(f"holds {m.dtype} values", path=path, field=name, expected="a boolean mask")
            flag = np.asarray(m, dtype="float64")
            flag = np.where(np.isfinite(flag), flag != 0, False if clear_when else True)
            flagged |= ~flag if clear_when else flag
    if dilate_px > 0 and flagged.any():
        flagged = ndimage.binary_dilation(flagged, structure=EIGHT, iterations=dilate_px)
    observed &= ~flagged
    return out, observed


def _indices(bands: dict) -> dict:
    from ecoassess.spectral import load_catalog

    catalog = load_catalog()
    with np.errstate(divide="ignore", invalid="ignore"):
        return {n: np.asarray(catalog.compute(n, bands), dtype="float64") for n in INDICES}


def _land_cover(arr, grid: AnalysisGrid, legend: str, table: ActivityTable, label: str) -> np.ndarray:
    """The land cover as CAS/LUCC codes (0 = no data): CAS rasters as they are, others via their classes' HJ 192
    sub-class (``hj192_to_cas`` of the activity table)."""
    from ecoassess.legends import load_legend

    if not isinstance(arr, xr.DataArray):
        raise InputError(f"is a {type(arr).__name__}", path=label, expected="an xarray.DataArray of class codes")
    path = str(arr.attrs.get("path") or label)
    arr = _plane(arr, "land cover", path)
    try:
        lc_grid = grid_of(arr)
    except ValueError as exc:
        raise InputError(str(exc), path=path, expected="a layer on the imagery's grid") from None
    if not _same_grid(lc_grid, grid):
        raise InputError("is not on the imagery's grid", path=path, expected=f"grid {grid.shape} {grid.transform}")
    try:
        leg = load_legend(legend)
    except KeyError as exc:
        raise InputError(str(exc.args[0]), path=path, field="legend") from None
    raw = np.asarray(arr.values)
    if not np.issubdtype(raw.dtype, np.number):
        raise InputError(f"holds {raw.dtype} values", path=path, expected=f"integer class codes of {legend}")
    codes = np.where(np.isfinite(raw), raw, -1).astype("int64")
    lut = {}
    for code, c in leg.classes.items():
        if legend == "cas_lucc":
            lut[code] = code
        else:
            hj = c.get("default") if c.get("split") else c.get("hj192")
            lut[code] = table.hj192_to_cas.get(str(hj), table.hj192_to_cas.get(str(c.get("hj192")), 0))
    present = np.unique(codes)
    unknown = [int(c) for c in present if c not in lut and c != -1 and c != leg.nodata]
    if unknown:
        raise InputError(f"holds class codes {unknown[:10]} that legend {legend} does not define", path=path,
                         expected=f"codes {sorted(lut)}")
    out = np.zeros(codes.shape, dtype="int32")
    for code in present:
        if code in lut:
            out[codes == code] = lut[code]
    return out


def prepare_units(units, crs, id_field: str, name_field: str | None) -> gpd.GeoDataFrame:
    label = str(getattr(units, "attrs", {}).get("path", "units")) if isinstance(units, gpd.GeoDataFrame) else "units"
    if not isinstance(units, gpd.GeoDataFrame):
        raise InputError(f"is a {type(units).__name__}", path=label, expected="a GeoDataFrame of red-line units")
    if units.crs is None:
        raise InputError("has no CRS", path=label, field="crs", expected="a layer with a defined CRS")
    for fld in (id_field, name_field):
        if fld and fld not in units.columns:
            raise InputError(f"has no field {fld!r} (fields: {', '.join(map(str, units.columns))})", path=label,
                             field=fld, expected="the unit id / name field")
    if len(units) == 0:
        raise InputError("holds no unit", path=label, expected="at least one red-line unit polygon")
    ids = units[id_field]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise InputError(f"row {row} has no unit id", path=label, field=id_field, expected="an id on every unit")
    ids = ids.astype(str).str.strip()
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputError(f"unit id {dup.iloc[0]!r} occurs more than once (rows {list(np.flatnonzero(ids == dup.iloc[0]))})",
                         path=label, field=id_field, expected="unique unit ids")
    geoms = units.geometry.to_crs(crs.to_wkt())
    out = []
    for row, g in enumerate(geoms):
        if g is None or g.is_empty:
            raise InputError(f"row {row} (unit {ids.iloc[row]}) has no geometry", path=label, field="geometry",
                             expected="a polygon")
        g = shapely.make_valid(g)
        polys = [p for p in getattr(g, "geoms", [g]) if p.geom_type in ("Polygon", "MultiPolygon")]
        if not polys:
            raise InputError(f"row {row} (unit {ids.iloc[row]}) is a {g.geom_type}", path=label, field="geometry",
                             expected="a polygon")
        out.append(shapely.union_all(polys))
    names = units[name_field].astype(str) if name_field else ids
    gdf = gpd.GeoDataFrame({"unit_id": ids.to_numpy(), "unit_name": names.to_numpy()}, geometry=out, crs=geoms.crs)
    # overlapping units: a later unit keeps only what earlier units do not cover (a patch is counted once)
    tree = shapely.STRtree(gdf.geometry.values)
    excl = list(gdf.geometry.values)
    for i in range(len(excl)):
        earlier = [j for j in tree.query(excl[i]) if j < i]
        if earlier:
            excl[i] = excl[i].difference(shapely.union_all([gdf.geometry.values[j] for j in earlier]))
    gdf["geometry"] = excl
    return gdf


def _prepare_counties(counties, crs, code_field: str, name_field: str) -> gpd.GeoDataFrame | None:
    if counties is None:
        return None
    if not isinstance(counties, gpd.GeoDataFrame) or counties.crs is None:
        raise InputError("counties must be a GeoDataFrame with a CRS", path="counties", field="crs")
    for fld in (code_field, name_field):
        if fld not in counties.columns:
            raise InputError(f"has no field {fld!r} (fields: {', '.join(map(str, counties.columns))})",
                             path="counties", field=fld, expected="the county code / name field")
    out = gpd.GeoDataFrame({"county_code": counties[code_field].astype(str).to_numpy(),
                            "county_name": counties[name_field].astype(str).to_numpy()},
                           geometry=counties.geometry.to_crs(crs.to_wkt()).make_valid().to_numpy(),
                           crs=crs.to_wkt())
    return out


# -- raster steps ------------------------------------------------------------------------------------------------

def clean_mask(mask: np.ndarray, observed: np.ndarray, *, mmu_cells: float, fill_holes: bool = True) -> np.ndarray:
    """Fill holes smaller than the MMU (never with unobserved cells), label the 8-connected patches and drop
    those below ``mmu_cells`` cells (no opening, no closing: ``indices/redline_detection.yaml``). Returns int32
    labels (0 = none)."""
    m = mask & observed
    holes, n = ndimage.label(~m) if fill_holes else (None, 0)  # 4-connected background; holes = components not touching the border
    if n:
        sizes = np.bincount(holes.ravel())
        border = np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))
        small = sizes < mmu_cells
        small[border] = False
        small[0] = False
        m |= small[holes] & observed
    labels, n = ndimage.label(m, structure=EIGHT)
    if n:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= mmu_cells
        keep[0] = False
        labels, _ = ndimage.label(keep[labels], structure=EIGHT)
    return labels.astype("int32")


def elongation(patch: np.ndarray) -> float:
    """Area / width² of a patch mask (cells), width = 2 × max distance to the outside − 1: 1 for a square, π/4 for
    a disc, ≈ L/w for a strip (a road); robust to the staircase outline of raster patches."""
    d = ndimage.distance_transform_edt(np.pad(patch, 1))
    width = max(2.0 * float(d.max()) - 1.0, 1.0)
    return float(patch.sum()) / width ** 2


def _fvc(ndvi: np.ndarray, observed: np.ndarray, endmembers) -> tuple[np.ndarray, tuple[float, float]]:
    """FVC by the pixel dichotomy (STANDARDS §4): end-members given, or the 5 %/95 % NDVI quantiles of the
    ``observed`` land pixels of the date (water masked, as ecoassess.layers.vegetation does)."""
    if endmembers is None:
        soil, veg = (float(v) for v in np.quantile(ndvi[observed & np.isfinite(ndvi)], [0.05, 0.95]))
    else:
        soil, veg = (float(v) for v in endmembers)
    span = veg - soil
    if not span > 0:
        return np.full(ndvi.shape, np.nan), (soil, veg)
    return np.clip((ndvi - soil) / span, 0.0, 1.0), (soil, veg)


def _majority(codes: np.ndarray) -> int | None:
    codes = codes[codes > 0]
    return int(np.bincount(codes).argmax()) if codes.size else None


# -- vectors -----------------------------------------------------------------------------------------------------

def _polygons(labels: np.ndarray, grid: AnalysisGrid) -> dict[int, object]:
    """Polygon (union of cell outlines) per label (rasterio.features.shapes, 8-connected)."""
    parts: dict[int, list] = {}
    for geom, value in features.shapes(labels, mask=labels > 0, transform=grid.transform, connectivity=8):
        parts.setdefault(int(value), []).append(shape(geom))
    return {k: shapely.union_all(v) for k, v in parts.items()}


def _polygonal(g):
    if g.is_empty:
        return g
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    polys = [p for p in getattr(g, "geoms", []) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if polys else shapely.Polygon()


def unit_observability(units: gpd.GeoDataFrame, observed: np.ndarray, grid: AnalysisGrid) -> pd.DataFrame:
    """Per unit: area, the area observed in both dates and the area not observable (a masked or no-data cell in
    either date, or outside the imagery), in m² on the equal-area grid; observed + not observable = area."""
    blocked = (~observed).astype("uint8")
    pieces = [shape(g) for g, v in features.shapes(blocked, mask=blocked > 0, transform=grid.transform,
                                                   connectivity=8)]
    not_obs = shapely.union_all(pieces) if pieces else shapely.Polygon()
    footprint = box(*grid.bounds)
    rows = []
    for uid, name, g in zip(units["unit_id"], units["unit_name"], units.geometry):
        area = float(g.area)
        lost = float(g.intersection(not_obs).area) + float(g.difference(footprint).area)
        lost = min(lost, area)
        rows.append({"unit_id": uid, "unit_name": name, "area_m2": area, "observed_m2": area - lost,
                     "not_observable_m2": lost, "not_observable_share": lost / area if area else 0.0})
    return pd.DataFrame(rows, columns=UNIT_COLUMNS)


def _empty_patches(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: pd.Series(dtype="float64" if c in ("area_m2", "centroid_lon", "centroid_lat",
                                                                      "confidence") else "object")
                             for c in PATCH_COLUMNS}, geometry=gpd.GeoSeries([], crs=crs.to_wkt()),
                            crs=crs.to_wkt())


# -- the detection -------------------------------------------------------------------------------------------------

def detect_patches(before: xr.Dataset, after: xr.Dataset, units: gpd.GeoDataFrame, *, counties=None,
                   land_cover_before: xr.DataArray | None = None, land_cover_after: xr.DataArray | None = None,
                   legend: str = "cas_lucc", buffer_m: float | None = None, mmu_m2: float | None = None,
                   activity_table=None, unit_id_field: str = "unit_id", unit_name_field: str | None = "name",
                   county_code_field: str = "code", county_name_field: str = "name",
                   before_period: str | None = None, after_period: str | None = None,
                   before_sensor: str | None = None, after_sensor: str | None = None,
                   fvc_endmembers=None, settings: dict | None = None) -> DetectionResult:
    """Human-activity patches between ``before`` and ``after`` (Datasets of reflectance roles blue, green, red, nir,
    swir1 on one equal-area grid; NaN = not observed; optional boolean ``clear`` (True = clear) and/or ``mask``
    (True = cloud, shadow, ...)) inside ``units`` and within ``buffer_m`` of them.

    A patch is drawn only where both dates were observed; ``result.units`` gives each unit's area not observable.
    ``mmu_m2`` default: ``mmu_cells`` (9) cells of the grid, 8100 m² at 30 m (see the YAML for why); it applies to the
    whole patch, before the split into inside / buffer parts. ``land_cover_*``: class rasters of ``legend`` on the
    same grid; with the before date's alone, cropland stays cropland for the seasonal rule, so construction on
    cropland is then missed: give both dates. Without land cover a harvested field cannot be told from a cleared
    one (nor crop green-up from restoration): compare dates of the same season. ``fvc_endmembers``: (NDVI_soil, NDVI_veg) for both dates, default each date's 5 %/95 % quantiles.
    Periods and sensors default to the Datasets' ``period`` / ``sensor`` attributes. The spectral columns
    (ndvi/fvc before/after), activity, change type and confidence are those of the whole patch, repeated on
    each of its parts.
    """
    s = settings or load_settings()
    table = activity_table if isinstance(activity_table, ActivityTable) else load_activity_table(activity_table)
    grid = _grid(before, "before")
    grid_a = _grid(after, "after")
    if not _same_grid(grid, grid_a):
        raise InputError(f"is on another grid than 'before' ({grid_a.shape} {tuple(grid_a.transform)[:6]} vs "
                         f"{grid.shape} {tuple(grid.transform)[:6]})", path=_name(after, "after"),
                         expected="both dates on one analysis grid (ecoassess.grid.read_on_grid)")
    if not is_equal_area(grid.crs):
        raise InputError(f"is in a CRS that does not preserve area ({grid.crs.to_string()[:60]})",
                         path=_name(before, "before"), field="crs",
                         expected="an equal-area grid (e.g. ecoassess.grid.china_albers_crs())")
    cell = grid.cell_area_m2
    mmu = float(mmu_m2) if mmu_m2 is not None else float(s["mmu_cells"]) * cell
    if not mmu > 0:
        raise InputError(f"mmu_m2 = {mmu_m2}", field="mmu_m2", expected="an area > 0 m²")
    buffer = float(s["buffer_m"] if buffer_m is None else buffer_m)
    if not buffer >= 0:
        raise InputError(f"buffer_m = {buffer_m}", field="buffer_m", expected="a distance >= 0 m")
    units_g = prepare_units(units, grid.crs, unit_id_field, unit_name_field)
    counties_g = _prepare_counties(counties, grid.crs, county_code_field, county_name_field)

    dilate_px = int(np.ceil(float(s["mask_dilation_m"]) / grid.resolution - 1e-9))
    bands_b, obs_b = _bands(before, "before", dilate_px)
    bands_a, obs_a = _bands(after, "after", dilate_px)
    observed = obs_b & obs_a
    idx_b, idx_a = _indices(bands_b), _indices(bands_a)
    for n in INDICES:
        observed &= np.isfinite(idx_b[n]) & np.isfinite(idx_a[n])
    if not observed.any():
        raise AllMaskedError("no pixel is observed in both dates (cloud, shadow or no data everywhere)",
                             path=_name(after, "after"), expected="an overlap of clear pixels between the dates")

    lc_b = None if land_cover_before is None else _land_cover(land_cover_before, grid, legend, table,
                                                              "land_cover_before")
    lc_a = None if land_cover_after is None else _land_cover(land_cover_after, grid, legend, table,
                                                             "land_cover_after")
    both_lc = lc_b is not None and lc_a is not None
    lc_seed = None
    if both_lc:
        lc_seed = (lc_b > 0) & (lc_a > 0) & (lc_b != lc_a)

    ev = change_evidence(idx_b, idx_a, observed, settings=s, extra_seeds=lc_seed)
    grow_z = float(s["hysteresis"]["grow_z"])
    development = np.logical_or.reduce([ev.signals[k] for k in DEVELOPMENT])
    restored = ev.signals["ndvi_gain"] & ((ev.z["BSI"] <= -grow_z) | (ev.z["NDBI"] <= -grow_z)) & ~development
    if both_lc:  # land-cover transitions into / out of the activity classes (module docstring)
        active = np.asarray(sorted({c for r in table.rules for c in r.get("lc_to_any", [])}))
        into = lc_seed & np.isin(lc_a, active) & observed
        development |= into
        restored |= lc_seed & np.isin(lc_b, active) & ~np.isin(lc_a, active) & observed & ~development
    seasonal = np.zeros(observed.shape, dtype=bool)
    fringe = np.zeros(observed.shape, dtype=bool)
    if lc_b is not None:  # the same class kind before and after (or before only): YAML seasonal
        lc_after = lc_a if lc_a is not None else lc_b
        for key in ("cropland_codes", "water_codes"):
            codes = np.asarray(s["seasonal"][key])
            seasonal |= np.isin(lc_b, codes) & np.isin(lc_after, codes)
        fringe_px = int(s["seasonal"].get("fringe_px", 0))
        changing = seasonal & (development | restored)
        if fringe_px > 0 and changing.any():  # the mixed-pixel fringe of a seasonal difference (YAML seasonal)
            near = ndimage.binary_dilation(changing, structure=EIGHT, iterations=fringe_px) & ~seasonal
            fringe = near & (lc_b == lc_after) & (development | restored)
        development &= ~seasonal & ~fringe
        restored &= ~seasonal & ~fringe

    mmu_cells = mmu / cell
    fill = bool(s["morphology"]["fill_holes"])
    water_mndwi = float(s["water_mndwi"])
    fvc_b, em_b = _fvc(idx_b["NDVI"], observed & ~(idx_b["MNDWI"] > water_mndwi), fvc_endmembers)
    fvc_a, em_a = _fvc(idx_a["NDVI"], observed & ~(idx_a["MNDWI"] > water_mndwi), fvc_endmembers)
    ctx = _Context(grid, observed, ev, idx_b, idx_a, fvc_b, fvc_a, lc_b, lc_a, s, table)

    records, geoms = [], []
    for kind, mask in (("development", development), ("restoration", restored & ~development)):
        labels = clean_mask(mask, observed, mmu_cells=mmu_cells, fill_holes=fill)
        if not labels.any():
            continue
        polys = _polygons(labels, grid)
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None or k not in polys:
                continue
            records.append(ctx.describe(labels, k, sl, kind))
            geoms.append(polys[k])

    periods = {"before_period": before_period or before.attrs.get("period"),
               "after_period": after_period or after.attrs.get("period"),
               "before_sensor": before_sensor or before.attrs.get("sensor"),
               "after_sensor": after_sensor or after.attrs.get("sensor")}
    min_part = float(s["min_part_cells"]) * cell
    patches = _split(records, geoms, units_g, counties_g, buffer, min_part, grid, table, periods)
    info = {"mmu_m2": mmu, "buffer_m": buffer, "cell_area_m2": cell, "mask_dilation_px": dilate_px, "settings_version": s.get("version"),
            "activity_table": table.path, "activity_table_version": table.version,
            "land_cover": {"before": lc_b is not None, "after": lc_a is not None, "legend": legend},
            "seasonal_rejected_m2": float((seasonal & observed).sum() * cell),
            "seasonal_fringe_rejected_m2": float((fringe & observed).sum() * cell),
            "fvc_endmembers": {"before": em_b, "after": em_a}, "difference_stats": ev.stats,
            "observed_m2": float(observed.sum() * cell), "grid_m2": float(observed.size * cell)}
    return DetectionResult(patches, unit_observability(units_g, observed, grid), info, observed)


@dataclass
class _Context:
    grid: AnalysisGrid
    observed: np.ndarray
    ev: object
    idx_b: dict
    idx_a: dict
    fvc_b: np.ndarray
    fvc_a: np.ndarray
    lc_b: np.ndarray | None
    lc_a: np.ndarray | None
    s: dict
    table: ActivityTable

    def describe(self, labels: np.ndarray, k: int, sl, kind: str) -> dict:
        """Features, type, change type and confidence of patch ``k`` (means over its cells)."""
        s, ev = self.s, self.ev
        grow_z = float(s["hysteresis"]["grow_z"])
        ring_px = int(s["expanded"]["ring_px"])
        r0, r1 = max(sl[0].start - ring_px, 0), min(sl[0].stop + ring_px, labels.shape[0])
        c0, c1 = max(sl[1].start - ring_px, 0), min(sl[1].stop + ring_px, labels.shape[1])
        win = (slice(r0, r1), slice(c0, c1))
        m = labels[win] == k
        n = int(m.sum())
        # ring: cells within ring_px of the patch; beyond the grid's edge counts as not observed
        pad = ring_px
        mp = np.pad(m, pad)
        ring = ndimage.binary_dilation(mp, structure=EIGHT, iterations=ring_px) & ~mp
        obs_p = np.pad(self.observed[win], pad)
        other = np.pad(labels[win] > 0, pad)
        ring_obs = ring & obs_p & ~other
        ring_observed_share = float((ring & obs_p).sum() / ring.sum()) if ring.sum() else 1.0

        def mean(a):
            v = a[win][m]
            v = v[np.isfinite(v)]
            return float(v.mean()) if v.size else float("nan")

        z = {name: ev.z[name][win][m] for name in ev.z}
        fired = set()
        for name, ev_name in (("NDVI", "ndvi"), ("BSI", "bsi"), ("NDBI", "ndbi"), ("MNDWI", "water")):
            for sign, cond in (("loss", z[name] <= -grow_z), ("gain", z[name] >= grow_z)):
                if name == "MNDWI":
                    cond = cond & ((self.idx_a if sign == "gain" else self.idx_b)[name][win][m]
                                   > float(s["water_mndwi"]))
                if cond.mean() >= 0.5:
                    fired.add(f"{ev_name}_{sign}")
        lc_from = _majority(self.lc_b[win][m]) if self.lc_b is not None else None
        lc_to = _majority(self.lc_a[win][m]) if self.lc_a is not None else None
        elong = elongation(m)
        both_lc = self.lc_b is not None and self.lc_a is not None
        # the rules see the median NDVI: mixed edge cells (a misregistered or smeared outline) barely move it
        ndvi_b_med = float(np.nanmedian(self.idx_b["NDVI"][win][m]))
        ndvi_a_med = float(np.nanmedian(self.idx_a["NDVI"][win][m]))
        # land cover of both dates that shows no transition over the patch (the same majority class before and
        # after: a product that lags, or classes a cell off the imagery at a small patch's edge) says nothing of
        # the activity: the patch is typed, and its change type judged, by the imagery as without land cover
        transition = both_lc and lc_from is not None and lc_to is not None and lc_from != lc_to
        f = PatchFeatures(frozenset(fired), elong, ndvi_a_med, lc_from, lc_to, transition)
        if kind == "restoration":
            f = f.mirrored(ndvi_b_med)
        activity, rule = self.table.classify(f)

        # change type: expanded when the ring already held the same kind of surface in the before date
        if kind == "restoration":
            change = "reduced"
        else:
            if ring_obs.any() and transition:
                same_codes = set(rule.get("lc_to_any", [])) | {lc_to}
                like = np.isin(np.pad(self.lc_b[win], pad), list(same_codes))
            elif ring_obs.any():
                sig = ev.stats
                bsi_after = float(np.nanmedian(self.idx_a["BSI"][win][m]))
                like = ((np.abs(np.pad(self.idx_b["NDVI"][win], pad) - ndvi_a_med)
                         <= grow_z * sig["NDVI"]["sigma_delta"])
                        & (np.abs(np.pad(self.idx_b["BSI"][win], pad) - bsi_after)
                           <= grow_z * sig["BSI"]["sigma_delta"]))
            else:
                like = np.zeros_like(ring)
            share = float((like & ring_obs).sum() / ring_obs.sum()) if ring_obs.any() else 0.0
            change = "expanded" if share >= float(s["expanded"]["min_share"]) else "new"

        # confidence (YAML: confidence)
        cw = s["confidence"]
        seed_names = DEVELOPMENT if kind == "development" else ("ndvi_gain", "bsi_loss", "ndbi_loss")
        seeds = np.logical_or.reduce([ev.seeds[k2][win][m] for k2 in seed_names])
        kinds = {x.split("_")[0] for x in fired}
        if both_lc:
            agree = 1.0 if (lc_from is not None and lc_to is not None and lc_from != lc_to) else float(
                cw["land_cover_unchanged"])
        else:
            agree = float(cw["no_land_cover"])
        conf = (float(cw["w_seed"]) * float(seeds.mean()) + float(cw["w_signals"]) * min(1.0, len(kinds) / 2.0)
                + float(cw["w_land_cover"]) * agree) * ring_observed_share
        order = [x for x in ("ndvi_loss", "ndvi_gain", "bsi_gain", "bsi_loss", "ndbi_gain", "ndbi_loss",
                             "water_gain", "water_loss") if x in fired]
        if lc_from is not None or lc_to is not None:
            order.append(f"lc:{lc_from if lc_from is not None else '?'}->{lc_to if lc_to is not None else '?'}")
        if f.elongation >= 5.0:
            order.append(f"elongation:{f.elongation:.1f}")
        if ring_observed_share < 1.0:
            order.append("partly_unobserved")
        return {"activity_type": activity, "activity_name": self.table.name(activity), "change_type": change,
                "confidence": round(min(max(conf, 0.0), 1.0), 3), "evidence": ",".join(order),
                "ndvi_before": mean(self.idx_b["NDVI"]), "ndvi_after": mean(self.idx_a["NDVI"]),
                "fvc_before": mean(self.fvc_b), "fvc_after": mean(self.fvc_a), "cells": n,
                # the majority CAS/LUCC class of the patch in the land cover of each date (0: no land cover)
                "land_cover_from": int(lc_from or 0), "land_cover_to": int(lc_to or 0)}


def _split(records, geoms, units: gpd.GeoDataFrame, counties, buffer_m: float, min_part_m2: float,
           grid: AnalysisGrid, table: ActivityTable, periods: dict) -> gpd.GeoDataFrame:
    """Each patch cut into its part in each unit (inside) and its part in the buffer ring (nearest unit); parts
    below ``min_part_m2`` (slivers of a cell outline cut by a unit boundary) are dropped; patches wholly beyond
    the buffer are not red-line patches and are left out."""
    if not records:
        return _empty_patches(grid.crs)
    ugeoms = units.geometry.values
    inside = shapely.union_all(ugeoms)
    ring = inside.buffer(buffer_m).difference(inside) if buffer_m > 0 else shapely.Polygon()
    tree = shapely.STRtree(ugeoms)
    rows, out_geoms = [], []
    for rec, g in zip(records, geoms):
        parts = []
        for j in tree.query(g, predicate="intersects"):
            part = _polygonal(g.intersection(ugeoms[j]))
            if part.area >= min_part_m2:
                parts.append((part, j, "inside"))
        if not ring.is_empty:
            part = _polygonal(g.intersection(ring))
            if part.area >= min_part_m2:
                near = tree.query_nearest(part, all_matches=False)
                parts.append((part, int(np.atleast_1d(near)[0]), "buffer"))
        for part, j, loc in parts:
            row = {k: v for k, v in rec.items() if k != "cells"}
            row.update(periods)
            row.update({"area_m2": float(part.area), "unit_id": units["unit_id"].iloc[j],
                        "unit_name": units["unit_name"].iloc[j], "location": loc})
            rows.append(row)
            out_geoms.append(part)
    if not rows:
        return _empty_patches(grid.crs)
    gdf = gpd.GeoDataFrame(rows, geometry=out_geoms, crs=grid.crs.to_wkt())
    cent = gdf.geometry.centroid
    lon, lat = Transformer.from_crs(grid.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(cent.x.values,
                                                                                               cent.y.values)
    gdf["centroid_lon"] = np.round(lon, 6)
    gdf["centroid_lat"] = np.round(lat, 6)
    gdf["county_code"], gdf["county_name"] = None, None
    if counties is not None and len(counties):
        ctree = shapely.STRtree(counties.geometry.values)
        codes, names = [], []
        for g in gdf.geometry:
            hits = ctree.query(g, predicate="intersects")
            if len(hits):
                best = max(hits, key=lambda i: g.intersection(counties.geometry.values[i]).area)
                codes.append(counties["county_code"].iloc[best])
                names.append(counties["county_name"].iloc[best])
            else:
                codes.append(None)
                names.append(None)
        gdf["county_code"], gdf["county_name"] = codes, names
    for c in ("ndvi_before", "ndvi_after", "fvc_before", "fvc_after"):
        gdf[c] = gdf[c].astype("float64").round(4)
    return gdf[PATCH_COLUMNS + ["geometry"]].reset_index(drop=True)


def location_label(location: str, lang: str = "zh", table: ActivityTable | None = None) -> str:
    """红线内 / 缓冲区 (or English) for a ``location`` value."""
    return (table or load_activity_table()).labels["location"][location][lang]


def change_type_label(change_type: str, lang: str = "zh", table: ActivityTable | None = None) -> str:
    """新增 / 扩大 / 减少 (or English) for a ``change_type`` value."""
    return (table or load_activity_table()).labels["change_type"][change_type][lang]
