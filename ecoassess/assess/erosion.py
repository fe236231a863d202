"""Soil erosion for the HJ 192-2015 land-stress index: SL 190-2007 classes, given or estimated with RUSLE.

HJ 192 needs the severe (重度 = 强烈 + 极强烈 + 剧烈) and moderate (中度) water-erosion area of each county
(STANDARDS.md §1.5). When the user has an SL 190-2007 class raster it is read with :func:`read_erosion_classes`;
otherwise the annual soil loss is estimated with RUSLE (Renard et al. 1997)::

    A = R · K · LS · C · P                    A in t·ha⁻¹·a⁻¹
    R  rainfall erosivity, MJ·mm·ha⁻¹·h⁻¹·a⁻¹     K  soil erodibility, t·ha·h·ha⁻¹·MJ⁻¹·mm⁻¹
    LS topographic factor (layers/terrain.py)    C  cover-management, P  support practice (indices/rusle.yaml)
    erosion modulus M = 100 · A               M in t·km⁻²·a⁻¹ (1 km² = 100 ha)

and classed by the SL 190-2007 thresholds on M. Every layer and table carries ``erosion_source`` ("given" or
"estimated") and ``estimated`` (bool), and :func:`erosion_statement` gives the sentence the report must print.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError
from ecoassess.grid import DEFAULT_CHUNK, AnalysisGrid, grid_or_none, read_on_grid
from ecoassess.legends import Legend, load_legend

T_HA_TO_T_KM2 = 100.0  # t·ha⁻¹·a⁻¹ × 100 = t·km⁻²·a⁻¹
SOIL_LOSS_UNITS = "t ha-1 a-1"
MODULUS_UNITS = "t km-2 a-1"
_UNIT_ALIASES = {
    "t ha-1 a-1": 1.0, "t/ha/yr": 1.0, "t/ha/a": 1.0, "t ha-1 yr-1": 1.0,
    "t km-2 a-1": 1.0 / T_HA_TO_T_KM2, "t/km2/yr": 1.0 / T_HA_TO_T_KM2, "t/km2/a": 1.0 / T_HA_TO_T_KM2,
    "t km-2 yr-1": 1.0 / T_HA_TO_T_KM2,
}


@lru_cache(maxsize=None)
def rusle_table() -> dict:
    """``indices/rusle.yaml`` (C/P tables, SL 190 thresholds, HJ 192 groups, units), parsed once."""
    return load_yaml(data_path("indices", "rusle.yaml"))


# -- RUSLE ------------------------------------------------------------------------------------------------------

def _describe(name: str, value) -> tuple[str, AnalysisGrid | None]:
    if isinstance(value, xr.DataArray):
        return f"layer {value.name or name}", grid_or_none(value)
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite value >= 0, got {value!r}")
    if name in ("c_factor", "p_factor") and v > 1:
        raise ValueError(f"{name} must be in [0, 1], got {v}")
    if name == "k_factor" and v > 0.1:
        warnings.warn(f"k_factor = {v} looks like US customary units (SI K is usually 0.001-0.08 "
                      "t·ha·h·ha⁻¹·MJ⁻¹·mm⁻¹); multiply US K by 0.1317", UserWarning, stacklevel=3)
    return f"{v:g}", None


def rusle_soil_loss(*, r_factor, k_factor, ls, c_factor, p_factor) -> xr.DataArray:
    """Annual soil loss A = R·K·LS·C·P in t·ha⁻¹·a⁻¹ (lazy, float32, NaN where any factor is NaN).

    Each factor is a number or a layer on the analysis grid; at least one must be a layer. R in
    MJ·mm·ha⁻¹·h⁻¹·a⁻¹, K in t·ha·h·ha⁻¹·MJ⁻¹·mm⁻¹, LS/C/P dimensionless. The result is flagged
    ``erosion_source='estimated'``.
    """
    factors = {"r_factor": r_factor, "k_factor": k_factor, "ls": ls, "c_factor": c_factor, "p_factor": p_factor}
    described, grids = {}, []
    for name, value in factors.items():
        described[name], grid = _describe(name, value)
        if grid is not None:
            grids.append((name, grid))
    layers = [v for v in factors.values() if isinstance(v, xr.DataArray)]
    if not layers:
        raise ValueError("at least one RUSLE factor must be a layer on the analysis grid (e.g. ls)")
    if grids and any(g != grids[0][1] for _, g in grids[1:]):
        names = ", ".join(n for n, _ in grids)
        raise InputError(f"the RUSLE factor layers ({names}) are not on the same analysis grid", field="grid",
                         expected="layers read with read_on_grid on one grid")
    values = list(factors.values())
    first = next(i for i, v in enumerate(values) if isinstance(v, xr.DataArray))
    out = values[first]
    for i, value in enumerate(values):
        if i != first:
            out = out * value
    out = out.astype("float32")
    out.name = "soil_loss_t_ha_yr"
    attrs = {}
    attrs.update({
        "long_name": "annual soil loss (RUSLE)", "units": SOIL_LOSS_UNITS,
        "formula": "A = R * K * LS * C * P", "erosion_source": "estimated", "estimated": True,
        "method": "RUSLE (Renard et al. 1997) with the factors below; not an observed erosion map",
        **{f"{k}_input": v for k, v in described.items()},
    })
    if isinstance(ls, xr.DataArray):
        for key in ("s_method", "m_method", "slope_length_m", "slope_length_source", "assumption"):
            if key in ls.attrs:
                attrs[f"ls_{key}"] = ls.attrs[key]
    out.attrs = attrs
    return out


def estimate_soil_loss(dem: xr.DataArray, land_cover: xr.DataArray, legend, *, r_factor, k_factor,
                       fvc: xr.DataArray | None = None, z_units: str | None = None, slope_length_m=None,
                       s_method: str = "liu_mccool") -> xr.DataArray:
    """RUSLE soil loss (t·ha⁻¹·a⁻¹) from a DEM, land cover and R/K (numbers or layers), all on one grid.

    LS from :func:`ecoassess.layers.terrain.ls_factor`, C and P from the land-cover tables (C from FVC for
    vegetated classes when ``fvc`` is given). Same result as calling the steps one by one; flagged estimated.
    ``z_units``: the DEM's height unit (None: its ``attrs['z_units']``, else metres; see ``slope_degrees``).
    """
    from ecoassess.layers.terrain import ls_factor

    ls = ls_factor(dem, z_units=z_units, slope_length_m=slope_length_m, s_method=s_method)
    c = c_factor_from_land_cover(land_cover, legend, fvc=fvc)
    p = p_factor_from_land_cover(land_cover, legend)
    out = rusle_soil_loss(r_factor=r_factor, k_factor=k_factor, ls=ls, c_factor=c, p_factor=p)
    out.attrs["c_method"] = c.attrs["c_method"]
    out.attrs["legend"] = c.attrs["legend"]
    return out


def erosion_modulus_t_km2_yr(soil_loss_t_ha_yr: xr.DataArray) -> xr.DataArray:
    """Erosion modulus in t·km⁻²·a⁻¹ = 100 × soil loss in t·ha⁻¹·a⁻¹."""
    out = (soil_loss_t_ha_yr * T_HA_TO_T_KM2).astype("float32")
    out.attrs = dict(soil_loss_t_ha_yr.attrs)
    out.attrs.update({"long_name": "soil erosion modulus", "units": MODULUS_UNITS})
    out.name = "erosion_modulus_t_km2_yr"
    return out


# -- C and P from land cover ------------------------------------------------------------------------------------

def _legend(legend) -> Legend:
    return legend if isinstance(legend, Legend) else load_legend(str(legend))


def factor_table(factor: str, legend) -> dict[int, dict]:
    """Per legend code: ``{'value': float (NaN = excluded), 'fvc': bool, 'via': 'cas_code'|'hj192:<class>'}``.

    ``factor``: ``c`` or ``p``. CAS LUCC codes use the per-code table, other legends the HJ 192 sub-class each
    class maps to (for a pending class such as CLCD cropland, its ``default`` sub-class, e.g. dry_land: the
    split by auxiliary data is not applied here). A code found in none raises :class:`InputError` naming it.
    """
    if factor not in ("c", "p"):
        raise ValueError(f"factor must be 'c' or 'p', got {factor!r}")
    leg = _legend(legend)
    section = rusle_table()[f"{factor}_factor"]
    by_code = {int(k): v for k, v in section["by_cas_code"].items()} if leg.name == "cas_lucc" else {}
    by_class = section["by_hj192_class"]
    table, missing = {}, []
    for code, cls in sorted(leg.classes.items()):
        entry, via = by_code.get(code), "cas_code"
        # then the class's HJ 192 sub-class; a pending class (cropland, grass, water, ...) uses its `default`
        for key in ("hj192", "default"):
            if entry is None and cls.get(key) in by_class:
                entry, via = by_class[cls[key]], f"hj192:{cls[key]}" + (" (default)" if key == "default" else "")
        if entry is None:
            missing.append(f"{code} ({cls.get('zh', cls.get('en', '?'))}, hj192={cls.get('hj192')})")
            continue
        v = entry.get(factor)
        table[code] = {"value": float("nan") if v is None else float(v), "fvc": bool(entry.get("fvc", False)),
                       "via": via}
    if missing:
        raise InputError(f"no {factor.upper()} factor for legend '{leg.name}' code(s) {', '.join(missing)}",
                         path=str(data_path("indices", "rusle.yaml")), field=f"{factor}_factor",
                         expected="an entry per CAS code (by_cas_code) or per HJ 192 sub-class (by_hj192_class)")
    return table


def _lookup_block(block: np.ndarray, codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.full(block.shape, np.nan, dtype="float32")
    for code, value in zip(codes, values):
        out[block == code] = value
    return out


def _lookup(land_cover: xr.DataArray, mapping: dict[int, float]) -> xr.DataArray:
    """Lazy code → value lookup; codes not in ``mapping`` (and nodata) give NaN."""
    codes = np.asarray(list(mapping), dtype="float64")
    values = np.asarray(list(mapping.values()), dtype="float32")
    data = land_cover.data
    if isinstance(data, da.Array):
        out = data.map_blocks(_lookup_block, codes=codes, values=values, dtype="float32",
                              meta=np.empty((0, 0), "float32"))
    else:
        out = _lookup_block(np.asarray(data), codes, values)
    res = land_cover.copy(data=out)
    res.attrs = {}
    return res


def _check_codes(land_cover: xr.DataArray, leg: Legend) -> None:
    data = land_cover.data
    present = (da.unique(data).compute() if isinstance(data, da.Array) else np.unique(np.asarray(data)))
    present = [c for c in present.tolist() if not (isinstance(c, float) and math.isnan(c))]
    unknown = leg.unknown_codes(present)
    if unknown:
        raise InputError(f"land-cover code(s) {', '.join(map(str, unknown))} are not in legend '{leg.name}'",
                         path=land_cover.attrs.get("source"), field="land cover codes",
                         expected=f"codes of layers/{leg.name}.yaml")


def cai_c_from_fvc(fvc: xr.DataArray, *, fvc_units: str = "fraction") -> xr.DataArray:
    """C from vegetation cover (Cai et al. 2000): 1 at c = 0, 0.6508 − 0.3436·lg c (c in %), 0 at c ≥ 78.3 %."""
    spec = rusle_table()["c_factor"]["from_fvc"]
    if fvc_units not in ("fraction", "percent"):
        raise ValueError(f"fvc_units must be 'fraction' or 'percent', got {fvc_units!r}")
    pct = fvc * (100.0 if fvc_units == "fraction" else 1.0)
    c = spec["intercept"] - spec["slope"] * np.log10(pct.clip(min=1e-6))
    # DataArray.where, not xr.where with a scalar first: that would drop the grid's coordinate attributes
    c = c.where(~(pct >= spec["full_cover_percent"]), 0.0).where(~(pct <= 0), spec["zero_cover_c"])
    return c.clip(0.0, 1.0).where(fvc.notnull())


def c_factor_from_land_cover(land_cover: xr.DataArray, legend, fvc: xr.DataArray | None = None, *,
                             fvc_units: str = "fraction", check_codes: bool = False) -> xr.DataArray:
    """RUSLE C per pixel from the land-cover table of ``indices/rusle.yaml`` (NaN for excluded/unknown codes).

    With ``fvc`` (growing-season fractional vegetation cover, 0–1 or percent per ``fvc_units``) the classes
    marked ``fvc: true`` (forest, shrub, open forest, grassland) take C from :func:`cai_c_from_fvc` where FVC
    is valid and the table value elsewhere. ``check_codes`` scans the raster once and raises on codes the
    legend does not define.
    """
    leg = _legend(legend)
    table = factor_table("c", leg)
    if check_codes:
        _check_codes(land_cover, leg)
    c = _lookup(land_cover, {k: v["value"] for k, v in table.items()})
    mode = "land-cover table"
    if fvc is not None:
        veg = _lookup(land_cover, {k: 1.0 if v["fvc"] else 0.0 for k, v in table.items()}) == 1.0
        c_fvc = cai_c_from_fvc(fvc, fvc_units=fvc_units)
        c = xr.where(veg & c_fvc.notnull(), c_fvc, c)
        mode = "Cai et al. 2000 from FVC for vegetated classes, land-cover table elsewhere"
    c = c.astype("float32")
    c.name = "c_factor"
    c.attrs = {"long_name": "RUSLE cover-management factor C", "units": "1", "legend": leg.name,
               "c_method": mode, "table": "indices/rusle.yaml c_factor"}
    return c


def p_factor_from_land_cover(land_cover: xr.DataArray, legend, *, check_codes: bool = False) -> xr.DataArray:
    """RUSLE P per pixel from the land-cover table of ``indices/rusle.yaml`` (NaN for excluded/unknown codes)."""
    leg = _legend(legend)
    table = factor_table("p", leg)
    if check_codes:
        _check_codes(land_cover, leg)
    p = _lookup(land_cover, {k: v["value"] for k, v in table.items()}).astype("float32")
    p.name = "p_factor"
    p.attrs.update({"long_name": "RUSLE support-practice factor P", "units": "1", "legend": leg.name,
                    "table": "indices/rusle.yaml p_factor"})
    return p


# -- SL 190-2007 classes -----------------------------------------------------------------------------------------

def sl190_regions() -> dict[str, int]:
    """Region key → 容许土壤流失量 (t·km⁻²·a⁻¹), including aliases."""
    spec = rusle_table()["sl190"]
    out = {k: int(v["value"]) for k, v in spec["tolerance_t_km2_yr"].items()}
    out.update({alias: out[target] for alias, target in spec["region_aliases"].items()})
    return out


def sl190_class_limits(region: str) -> list[dict]:
    """The six SL 190 classes with numeric ``lower`` limits (t·km⁻²·a⁻¹) for ``region``."""
    regions = sl190_regions()
    if region not in regions:
        raise ValueError(f"unknown SL 190 region {region!r}; one of {', '.join(sorted(regions))}")
    tol = regions[region]
    classes = [dict(c) for c in rusle_table()["sl190"]["classes"]]
    for c in classes:
        c["lower"] = float(tol if c["lower"] == "tolerance" else c["lower"])
    lowers = [c["lower"] for c in classes]
    if lowers != sorted(lowers) or len(set(lowers)) != len(lowers):
        raise ValueError(f"SL 190 class limits for {region} are not increasing: {lowers}")
    return classes


def _class_attrs() -> dict:
    classes = rusle_table()["sl190"]["classes"]
    return {"class_labels_zh": {c["code"]: c["zh"] for c in classes},
            "class_labels_en": {c["code"]: c["en"] for c in classes}}


def _classify_block(m: np.ndarray, lowers: np.ndarray) -> np.ndarray:
    valid = np.isfinite(m) & (m >= 0)
    # lowers = lower limits of classes 2..6; side="right": a value on a limit goes to the higher class
    code = np.searchsorted(lowers, np.where(valid, m, 0.0), side="right") + 1
    return np.where(valid, code, 0).astype("uint8")


def erosion_classes(soil_loss: xr.DataArray, *, region: str, units: str | None = None) -> xr.DataArray:
    """SL 190-2007 water-erosion intensity class per pixel (uint8: 1 微度 … 6 剧烈, 0 = nodata).

    ``soil_loss`` in t·ha⁻¹·a⁻¹ (RUSLE output) or t·km⁻²·a⁻¹; ``units`` overrides ``attrs['units']``. Limits on
    M = 100·A (t·km⁻²·a⁻¹): 微度 < T ≤ 轻度 < 2500 ≤ 中度 < 5000 ≤ 强烈 < 8000 ≤ 极强烈 < 15000 ≤ 剧烈, T = the
    region's 容许土壤流失量 (200/500/1000); a value on a limit belongs to the higher class.
    """
    unit = units or soil_loss.attrs.get("units")
    if unit not in _UNIT_ALIASES:
        raise InputError(f"soil-loss layer {soil_loss.name!r} has units {unit!r}", field="units",
                         expected="t ha-1 a-1 (RUSLE) or t km-2 a-1 (pass units=...)")
    to_modulus = T_HA_TO_T_KM2 * _UNIT_ALIASES[unit]
    limits = sl190_class_limits(region)
    lowers = np.asarray([c["lower"] for c in limits[1:]], dtype="float64")
    m = soil_loss.data
    if isinstance(m, da.Array):
        out = (m * to_modulus).map_blocks(_classify_block, lowers=lowers, dtype="uint8",
                                          meta=np.empty((0, 0), "uint8"))
    else:
        out = _classify_block(np.asarray(m, dtype="float64") * to_modulus, lowers)
    res = soil_loss.copy(data=out)
    res.name = "erosion_class_sl190"
    res.attrs = {}
    res.attrs.update({
        "long_name": "SL 190-2007 water-erosion intensity class", "units": "class", "nodata": 0,
        "region": region, "tolerance_t_km2_yr": limits[1]["lower"],
        "lower_limits_t_km2_yr": [c["lower"] for c in limits], "interval_convention": "lower limit inclusive",
        "erosion_source": soil_loss.attrs.get("erosion_source", "unknown"),
        "estimated": bool(soil_loss.attrs.get("estimated", False)),
        **_class_attrs(),
    })
    for key in ("method", "ls_slope_length_m", "ls_s_method", "ls_assumption", "source"):
        if key in soil_loss.attrs:
            res.attrs[key] = soil_loss.attrs[key]
    return res


def read_erosion_classes(path, grid: AnalysisGrid, *, band: int = 1, class_map: dict | None = None,
                         src_nodata=None, kind: str = "classes", chunk: int = DEFAULT_CHUNK,
                         check_codes: bool = True) -> xr.DataArray:
    """A user-supplied SL 190-2007 class raster on ``grid`` (uint8, 1 微度 … 6 剧烈, 0 = nodata), lazily.

    ``class_map`` maps the file's codes to SL 190 codes 1–6 when they differ (e.g. ``{10: 1, 20: 2, ...}``).
    The file's nodata, cells outside it and code 0 (unless mapped) become 0 = nodata. ``kind``: ``classes``
    (nearest) or ``classes_mode`` (mode, better when the file is much finer than the grid). ``check_codes``
    scans the raster once and raises on codes that are neither 1–6 (after ``class_map``) nor nodata.
    Flagged ``erosion_source='given'``.
    """
    raw = read_on_grid(path, grid, band=band, kind=kind, dtype="float64", src_nodata=src_nodata, chunk=chunk,
                       name="erosion_class_sl190")
    mapping = ({int(k): float(v) for k, v in class_map.items()} if class_map is not None
               else {c: float(c) for c in range(1, 7)})
    bad_targets = sorted({v for v in mapping.values() if v not in range(1, 7)})
    if bad_targets:
        raise ValueError(f"class_map targets must be SL 190 codes 1-6, got {bad_targets}")
    if check_codes:
        present = da.unique(raw.data).compute()
        present = [float(c) for c in present.tolist() if math.isfinite(c)]
        # NaN = the file's nodata (or outside it); 0 not in the mapping is taken as nodata too
        unknown = [c for c in present if (int(c) != c or int(c) not in mapping) and c != 0]
        if unknown:
            raise InputError(f"erosion-class raster has code(s) {', '.join(f'{c:g}' for c in unknown)} that are "
                             "not SL 190 classes", path=path, field=f"band {band}",
                             expected="codes 1-6 (微度…剧烈) and nodata, or a class_map for other codings")
    coded = _lookup(raw, mapping)
    data = coded.data
    lib = da if isinstance(data, da.Array) else np
    out = raw.copy(data=lib.where(lib.isnan(data), 0, data).astype("uint8"))
    out.name = "erosion_class_sl190"
    out.attrs = {"long_name": "SL 190-2007 water-erosion intensity class", "units": "class",
                 "nodata": 0, "source": str(path), "erosion_source": "given", "estimated": False,
                 "resampling": raw.attrs.get("resampling"), "reprojected": raw.attrs.get("reprojected"),
                 **_class_attrs()}
    if class_map is not None:
        out.attrs["class_map"] = {int(k): int(v) for k, v in class_map.items()}
    return out


# -- HJ 192 grouping and areas -----------------------------------------------------------------------------------

def hj192_groups() -> dict[str, list[int]]:
    """``{'severe': [4, 5, 6], 'moderate': [3]}`` — HJ 192 重度/中度 erosion as SL 190 class codes."""
    return {k: [int(c) for c in v["codes"]] for k, v in rusle_table()["hj192_groups"].items()}


def hj192_erosion_group(classes: xr.DataArray) -> xr.DataArray:
    """Per pixel: 2 = 重度 (强烈/极强烈/剧烈), 1 = 中度, 0 = other or nodata (uint8, lazy)."""
    groups = hj192_groups()
    mapping = {c: 2.0 for c in groups["severe"]}
    mapping.update({c: 1.0 for c in groups["moderate"]})
    looked = _lookup(classes, mapping).data
    lib = da if isinstance(looked, da.Array) else np
    out = classes.copy(data=lib.where(lib.isnan(looked), 0, looked).astype("uint8"))
    out.name = "hj192_erosion_group"
    out.attrs = {k: v for k, v in classes.attrs.items() if k in ("erosion_source", "estimated", "region")}
    out.attrs.update({"long_name": "HJ 192 erosion group", "class_labels_zh": {0: "其他", 1: "中度侵蚀", 2: "重度侵蚀"},
                      "nodata": None})
    return out


def erosion_areas_by_class(zones, classes: xr.DataArray) -> pd.DataFrame:
    """Per zone: area (km²) of each SL 190 class and the HJ 192 moderate/severe erosion areas.

    ``zones``: a :class:`ecoassess.zones.ZoneSet` on the classes' grid (coverage-weighted areas). Columns:
    ``name, area_km2, sl190_class1_km2 … sl190_class6_km2, erosion_nodata_km2, area_outside_km2,
    moderate_erosion_km2`` (中度), ``severe_erosion_km2`` (强烈+极强烈+剧烈), ``erosion_source``,
    ``erosion_estimated``. Feed ``severe_erosion_km2``/``moderate_erosion_km2`` to the land-stress index.
    """
    from ecoassess.zones import zonal_class_areas

    df = zonal_class_areas(zones, classes, nodata=0)
    colmap = df.attrs["class_columns"]
    out = pd.DataFrame({"name": df["name"], "area_km2": df["area_km2"]}, index=df.index)
    for code in range(1, 7):
        col = next((c for k, c in colmap.items() if float(k) == code), None)
        out[f"sl190_class{code}_km2"] = df[col] if col is not None else 0.0
    other = [c for k, c in colmap.items() if not (float(k) in range(1, 7))]
    out["erosion_nodata_km2"] = df["nodata_km2"] + (df[other].sum(axis=1) if other else 0.0)
    out["area_outside_km2"] = df["area_outside_km2"]
    groups = hj192_groups()
    out["moderate_erosion_km2"] = sum(out[f"sl190_class{c}_km2"] for c in groups["moderate"])
    out["severe_erosion_km2"] = sum(out[f"sl190_class{c}_km2"] for c in groups["severe"])
    out["erosion_source"] = classes.attrs.get("erosion_source", "unknown")
    out["erosion_estimated"] = bool(classes.attrs.get("estimated", False))
    out.attrs.update({"class_labels_zh": _class_attrs()["class_labels_zh"], "hj192_groups": groups,
                      "statement_zh": erosion_statement(classes, lang="zh"),
                      "statement_en": erosion_statement(classes, lang="en")})
    return out


def erosion_statement(layer: xr.DataArray, *, lang: str = "zh") -> str:
    """The sentence the report prints about where the erosion classes came from (given or RUSLE-estimated)."""
    a = layer.attrs
    if a.get("erosion_source") == "given":
        src = a.get("source", "?")
        return (f"土壤侵蚀强度采用提供的 SL 190-2007 分级图（{src}）。" if lang == "zh"
                else f"Soil-erosion intensity classes are taken from the supplied SL 190-2007 class map ({src}).")
    if a.get("erosion_source") == "estimated":
        lam = a.get("ls_slope_length_m", "?")
        region = a.get("region")
        if lang == "zh":
            text = (f"土壤侵蚀强度为 RUSLE 模型估算值（A = R·K·LS·C·P；LS 按坡长 {lam} m 的均匀坡面逐像元计算，"
                    "未做汇流计算），并按 SL 190-2007 分级")
            return text + (f"（{region}）" if region else "") + "，不是实测或调查的侵蚀强度图。"
        text = (f"Soil-erosion intensity is ESTIMATED with RUSLE (A = R·K·LS·C·P; LS per pixel on a uniform "
                f"{lam} m hillslope, no flow routing) and classed by SL 190-2007")
        return text + (f" ({region})" if region else "") + "; it is not a surveyed erosion map."
    return "土壤侵蚀强度数据来源未知。" if lang == "zh" else "The source of the soil-erosion classes is unknown."
