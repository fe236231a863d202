"""HJ 192-2015 ecological index (EI) as small, explainable functions on per-zone pandas objects.

Every function takes per-zone quantities (Series/DataFrames indexed by zone id) and returns per-zone results with
the intermediate terms, so that a reviewer can recompute any number by hand. All coefficients come from
``indices/hj192_2015.yaml`` (:func:`ecoassess.assess.hj192_coefficients.load_hj192`; pass ``coefficients=`` a path
to a corrected copy or a loaded object). STANDARDS.md §1 is the reference for each formula.

Rules applied everywhere:

* sub-indices are combined **unrounded**; rounding is for display only (:meth:`EiResult.display`);
* a normalised sub-index computed above 100 is taken as 100 (``capping.max`` [C]); each capping is logged (WARNING,
  naming zone and value) and recorded: the ``*_raw`` column keeps the value before, the plain column the value after,
  and :attr:`EiResult.capped` lists them;
* the 环境限制指数 is a constraint on the grade (downgrade / cap), never a numeric addition (:func:`apply_constraint`);
* the whole-area row is computed from whole-area totals (areas, lengths, emissions, pixel-weighted NDVI), not by
  averaging zone EIs (:func:`compute_ei`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ecoassess.assess.hj192_coefficients import Hj192Coefficients, as_coefficients
from ecoassess.errors import InputError

log = logging.getLogger(__name__)

# Unit conversions into the units the coefficients expect (factor multiplies a value in the first unit).
_UNIT_FACTORS = {
    # emissions → t
    ("t", "t"): 1.0, ("kg", "t"): 1e-3, ("kt", "t"): 1e3, ("1e4t", "t"): 1e4,
    # water resources → 10⁶ m³ (bulletins print 亿 m³ = 10⁸ m³ = 100 × 10⁶ m³)
    ("1e6m3", "1e6m3"): 1.0, ("1e8m3", "1e6m3"): 100.0, ("1e4m3", "1e6m3"): 1e-2, ("m3", "1e6m3"): 1e-6,
    # river length → km
    ("km", "km"): 1.0, ("m", "km"): 1e-3,
    # precipitation depth → mm
    ("mm", "mm"): 1.0, ("cm", "mm"): 10.0, ("m", "mm"): 1e3,
    # dimensionless
    ("", ""): 1.0,
}


#: coefficient-file sections the EI uses (their [C] values are listed with every result)
_EI_KEYS = ("composite", "capping", "biological_abundance", "vegetation_cover", "water_network_density", "land_stress",
            "pollution_load")


# -- helpers -----------------------------------------------------------------------------------------------------

def _series(x, index: pd.Index | None, name: str) -> pd.Series:
    """A float Series aligned on ``index`` from a Series, array or scalar."""
    if isinstance(x, pd.Series):
        s = pd.to_numeric(x, errors="coerce").astype(float)
        return s if index is None else s.reindex(index)
    if index is None:
        if np.ndim(x) == 0:
            return pd.Series([float(x)], name=name)
        return pd.Series(np.asarray(x, dtype=float), name=name)
    if np.ndim(x) == 0:
        return pd.Series(float(x), index=index, name=name)
    arr = np.asarray(x, dtype=float)
    if arr.shape != (len(index),):
        raise InputError(f"{len(arr)} values for {len(index)} zones", field=name, expected="one value per zone")
    return pd.Series(arr, index=index, name=name)


def _given(v) -> bool:
    """A value is present (not None / NaN / pd.NA)."""
    if v is None:
        return False
    try:
        return not bool(pd.isna(v))
    except (TypeError, ValueError):
        return True


def _zones(ids, limit: int = 10) -> str:
    ids = [str(i) for i in ids]
    return ", ".join(ids[:limit]) + (f" … ({len(ids)} zones)" if len(ids) > limit else "")


def _positive_area(area: pd.Series, what: str) -> pd.Series:
    bad = area[~(area > 0)]
    if len(bad):
        raise InputError(f"区域面积 is not > 0 for zone(s) {_zones(bad.index)} ({what})", field="area_km2",
                         expected="a positive zone area in km²")
    return area


def cap(values: pd.Series, quantity: str, *, coefficients=None, record: list | None = None) -> pd.Series:
    """``values`` with anything above ``capping.max`` (100) set to it; logged (WARNING) and appended to ``record``
    as ``{zone, quantity, before, after}`` rows. STANDARDS §1.1: a normalised sub-index above 100 is taken as 100 [C].
    """
    co = as_coefficients(coefficients)
    m = co.cap_max
    over = values > m
    if over.any():
        log.warning("%s above %g capped to %g for %d zone(s): %s", quantity, m, m, int(over.sum()),
                    "; ".join(f"{z}: {v:.6g}" for z, v in values[over].items()))
        if record is not None:
            record.extend({"zone": z, "quantity": quantity, "before": float(v), "after": m}
                          for z, v in values[over].items())
    return values.where(~over, m)


def _check_columns(habitat_km2: pd.DataFrame, co: Hj192Coefficients) -> pd.DataFrame:
    """Sub-class areas with every sub-class present (missing → 0); unknown columns are errors (typos)."""
    names = [str(c)[:-4] if str(c).endswith("_km2") else str(c) for c in habitat_km2.columns]
    frame = habitat_km2.set_axis(names, axis=1)
    allowed = set(co.subclasses) | {co.excluded_subclass}
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown:
        raise InputError(f"unknown habitat column(s) {unknown}", field="habitat_km2",
                         expected=f"HJ 192 sub-classes {list(co.subclasses)} (from habitat_areas)")
    frame = frame.reindex(columns=list(co.subclasses), fill_value=0.0).apply(pd.to_numeric, errors="coerce")
    neg = frame.lt(0).any(axis=1)
    if neg.any():
        raise InputError(f"negative habitat area for zone(s) {_zones(frame.index[neg])}", field="habitat_km2",
                         expected="areas ≥ 0 km²")
    return frame.astype(float)


def group_areas(habitat_km2: pd.DataFrame, *, coefficients=None) -> pd.DataFrame:
    """Unweighted first-level class areas (km²): ``<group>_km2`` = Σ of the group's sub-class areas."""
    co = as_coefficients(coefficients)
    hab = _check_columns(habitat_km2, co)
    return pd.DataFrame({f"{g}_km2": hab[list(grp.subclasses)].sum(axis=1) for g, grp in co.groups.items()},
                        index=hab.index)


# -- §1.2 biological abundance -------------------------------------------------------------------------------------

def biological_abundance(habitat_km2: pd.DataFrame, area_km2, biodiversity_index=None, *, coefficients=None,
                         record: list | None = None) -> pd.DataFrame:
    """生物丰度指数 (STANDARDS §1.2)::

        HQ = A_bio × (0.35·林地 + 0.21·草地 + 0.28·水域湿地 + 0.11·耕地 + 0.04·建设用地 + 0.01·未利用地) / 区域面积
        each first-level "area" = Σ sub-class weight × sub-class area (e.g. 林地 = 0.6·有林地 + 0.25·灌木林地
        + 0.15·疏林地和其他林地; 滩涂湿地 0.6 [C]), A_bio = 511.2642131067
        生物丰度指数 = (BI + HQ)/2 where a biodiversity index BI (HJ 623-2011) is given, else HQ.

    ``habitat_km2``: km² per sub-class (columns from :func:`~ecoassess.assess.landcover.habitat_areas`);
    ``area_km2``: 区域面积; ``biodiversity_index``: per-zone BI in [0, 100], NaN where not available.
    Columns: ``hq_<group>_weighted_km2`` (Σ sub-weight × area), ``hq_weighted_km2`` (Σ group weight × that),
    ``hq_raw``, ``hq`` (capped), ``biodiversity_index``, ``biological_abundance_raw``, ``biological_abundance``.
    """
    co = as_coefficients(coefficients)
    hab = _check_columns(habitat_km2, co)
    area = _positive_area(_series(area_km2, hab.index, "area_km2"), "biological abundance")
    out = pd.DataFrame(index=hab.index)
    total = pd.Series(0.0, index=hab.index)
    for g, grp in co.groups.items():
        weighted = sum(w * hab[s] for s, w in grp.subclasses.items())
        out[f"hq_{g}_weighted_km2"] = weighted
        total = total + grp.weight * weighted
    out["hq_weighted_km2"] = total
    out["hq_raw"] = co.a_bio * total / area
    out["hq"] = cap(out["hq_raw"], "hq", coefficients=co, record=record)
    if biodiversity_index is None:
        bi = pd.Series(np.nan, index=hab.index)
    else:
        bi = _series(biodiversity_index, hab.index, "biodiversity_index")
        bad = bi[(bi < 0) | (bi > 100)]
        if len(bad):
            raise InputError(f"biodiversity index outside [0, 100] for zone(s) {_zones(bad.index)}",
                             field="biodiversity_index", expected="HJ 623-2011 index in [0, 100]")
    out["biodiversity_index"] = bi
    if co.biodiversity_rule == "mean_with_hq":
        out["biological_abundance_raw"] = np.where(bi.notna(), (bi + out["hq"]) / 2.0, out["hq"])
    else:
        out["biological_abundance_raw"] = out["hq"]
    out["biological_abundance"] = cap(out["biological_abundance_raw"], "biological_abundance", coefficients=co,
                                      record=record)
    return out


# -- §1.3 vegetation cover -----------------------------------------------------------------------------------------

def _scale_name(ndvi_scale) -> str:
    if isinstance(ndvi_scale, str):
        s = ndvi_scale.strip().lower().replace("×", "x").replace("_", "").replace("e4", "0000")
        if s in ("x10000", "10000", "int", "integer"):
            return "x10000"
        if s in ("float", "1", "x1"):
            return "float"
    elif isinstance(ndvi_scale, (int, float)) and not isinstance(ndvi_scale, bool):
        if ndvi_scale == 10000:
            return "x10000"
        if ndvi_scale == 1:
            return "float"
    raise InputError(f"unknown NDVI scale {ndvi_scale!r}", field="ndvi_scale",
                     expected="'x10000' (NDVI × 10 000 integers, A_veg = 0.0121165124) or 'float' (NDVI in [−1, 1], "
                              "coefficient 121.165124)")


def vegetation_cover(ndvi_mean, ndvi_scale, *, coefficients=None, record: list | None = None) -> pd.DataFrame:
    """植被覆盖指数 (STANDARDS §1.3)::

        植被覆盖指数 = A_veg × (Σ P_i) / n, P_i = May–Sep mean of monthly max-value NDVI of pixel i
        A_veg = 0.0121165124 for NDVI × 10 000 integers (= 100 / 8253.2); 121.165124 for float NDVI [C]

    ``ndvi_mean``: per-zone mean of P_i in the units named by ``ndvi_scale`` ('x10000' or 'float'). Sanity rule:
    a zone mean below 2 in 'x10000' mode means float NDVI was given — :class:`InputError`; a mean outside [−1, 1]
    in 'float' mode means integers were given — :class:`InputError`. Zones with NaN NDVI stay NaN (warning).
    Columns: ``ndvi_mean``, ``ndvi_scale``, ``a_veg``, ``vegetation_cover_raw``, ``vegetation_cover``.
    """
    co = as_coefficients(coefficients)
    scale = _scale_name(ndvi_scale)
    ndvi = _series(ndvi_mean, None, "ndvi_mean")
    _factor, a = co.ndvi_scales[scale]
    if scale == "x10000":
        low = ndvi[ndvi < co.min_mean_ndvi_x10000]
        if len(low):
            raise InputError(
                f"mean NDVI {', '.join(f'{z}: {v:.6g}' for z, v in list(low.items())[:10])} is below "
                f"{co.min_mean_ndvi_x10000:g} in ×10⁴ mode: float NDVI (−1…1) was given where NDVI × 10 000 integers "
                f"are expected", field="ndvi_scale",
                expected="ndvi_scale='float' for float NDVI, or NDVI × 10 000 values with 'x10000'")
    else:
        high = ndvi[ndvi.abs() > co.max_abs_ndvi_float]
        if len(high):
            raise InputError(
                f"mean NDVI {', '.join(f'{z}: {v:.6g}' for z, v in list(high.items())[:10])} is outside [−1, 1] in "
                f"float mode: NDVI × 10 000 integers were given", field="ndvi_scale",
                expected="ndvi_scale='x10000' for NDVI × 10 000 integers, or float NDVI in [−1, 1]")
    if ndvi.isna().any():
        log.warning("vegetation cover: no NDVI for zone(s) %s (index NaN)", _zones(ndvi.index[ndvi.isna()]))
    out = pd.DataFrame({"ndvi_mean": ndvi, "ndvi_scale": scale, "a_veg": a}, index=ndvi.index)
    out["vegetation_cover_raw"] = a * ndvi
    out["vegetation_cover"] = cap(out["vegetation_cover_raw"], "vegetation_cover", coefficients=co, record=record)
    return out


# -- §1.4 water network density ------------------------------------------------------------------------------------

def wet_year_adjustment(current_1e6m3, long_term_mean_1e6m3, *, coefficients=None) -> pd.DataFrame:
    """DYX wet-year rule (STANDARDS §1.4, [B] single source, off by default)::

        r = current / long-term mean;  r ≤ 1.4 → current;  1.4 < r ≤ 2.4 → mean × (2.4 − r);  r > 2.4 → 0

    Columns ``water_resources_ratio_r`` and ``water_resources_adjusted_1e6m3``.
    """
    co = as_coefficients(coefficients)
    cur = _series(current_1e6m3, None, "water_resources_1e6m3")
    mean = _series(long_term_mean_1e6m3, cur.index, "water_resources_mean_1e6m3")
    r = cur / mean.where(mean > 0)
    adj = np.where(r <= co.wet_year_r_keep_max, cur,
                   np.where(r <= co.wet_year_r_reduce_max, mean * (co.wet_year_r_reduce_max - r), co.wet_year_above))
    adj = pd.Series(adj, index=cur.index).where(r.notna(), cur)
    return pd.DataFrame({"water_resources_ratio_r": r, "water_resources_adjusted_1e6m3": adj})


def water_network_density(river_length_km, water_area_km2, water_resources_1e6m3, area_km2, *,
                          water_resources_mean_1e6m3=None, wet_year_rule: bool | None = None,
                          cap_mode: str | None = None, coefficients=None, record: list | None = None) -> pd.DataFrame:
    """水网密度指数 (STANDARDS §1.4)::

        水网密度指数 = ( A_riv × 河流长度/区域面积 + A_lak × 水域面积/区域面积 + A_res × 水资源量/区域面积 ) / 3
        A_riv = 84.3704083981 (km), A_lak = 591.7908642005 (km²), A_res = 86.3869548281 (水资源量 in 10⁶ m³ [C];
        bulletins give 10⁸ m³ = × 100)

    Cap at 100 on the mean (default) or on each term (``cap_mode='per_term'``) [C]. With
    ``water_resources_mean_1e6m3`` the ratio r is always reported; the DYX wet-year rule is applied only when
    enabled (``wet_year_rule=True`` or the coefficient file). Columns: inputs, ``water_resources_ratio_r``,
    ``water_resources_used_1e6m3``, ``wnd_river_term``, ``wnd_water_area_term``, ``wnd_water_resources_term``,
    ``water_network_density_raw`` (mean of the uncapped terms), ``water_network_density``.
    """
    co = as_coefficients(coefficients)
    area = _series(area_km2, None, "area_km2")
    _positive_area(area, "water network density")
    idx = area.index
    rl = _series(river_length_km, idx, "river_length_km")
    wa = _series(water_area_km2, idx, "water_area_km2")
    wr = _series(water_resources_1e6m3, idx, "water_resources_1e6m3")
    mode = cap_mode or co.wnd_cap_mode
    if mode not in ("mean", "per_term"):
        raise InputError(f"cap_mode {mode!r}", field="cap_mode", expected="mean or per_term")
    out = pd.DataFrame({"river_length_km": rl, "water_area_km2": wa, "water_resources_1e6m3": wr}, index=idx)
    used = wr
    if water_resources_mean_1e6m3 is not None:
        adj = wet_year_adjustment(wr, _series(water_resources_mean_1e6m3, idx, "water_resources_mean_1e6m3"),
                                  coefficients=co)
        out["water_resources_mean_1e6m3"] = _series(water_resources_mean_1e6m3, idx, "water_resources_mean_1e6m3")
        out["water_resources_ratio_r"] = adj["water_resources_ratio_r"]
        enabled = co.wet_year_enabled if wet_year_rule is None else bool(wet_year_rule)
        if enabled:
            used = adj["water_resources_adjusted_1e6m3"]
            changed = used != wr
            if changed.any():
                log.info("wet-year rule (DYX) changed water resources of zone(s) %s", _zones(idx[changed]))
    elif wet_year_rule:
        raise InputError("the wet-year rule needs the long-term mean water resources",
                         field="water_resources_mean_1e6m3",
                         expected="per-zone long-term mean water resources in 10⁶ m³")
    out["water_resources_used_1e6m3"] = used
    out["wnd_river_term"] = co.a_riv * rl / area
    out["wnd_water_area_term"] = co.a_lak * wa / area
    out["wnd_water_resources_term"] = co.a_res * used / area
    terms = ["wnd_river_term", "wnd_water_area_term", "wnd_water_resources_term"]
    out["water_network_density_raw"] = out[terms].sum(axis=1, skipna=False) / 3.0
    if mode == "per_term":
        capped = [cap(out[t], t, coefficients=co, record=record) for t in terms]
        out["water_network_density"] = sum(capped) / 3.0
    else:
        out["water_network_density"] = cap(out["water_network_density_raw"], "water_network_density",
                                           coefficients=co, record=record)
    return out


# -- §1.5 land stress ----------------------------------------------------------------------------------------------

def land_stress(severe_erosion_km2, moderate_erosion_km2, construction_km2, other_stress_km2, area_km2, *,
                coefficients=None, record: list | None = None) -> pd.DataFrame:
    """土地胁迫指数 (STANDARDS §1.5)::

        土地胁迫指数 = A_ero × (0.4·重度侵蚀面积 + 0.2·中度侵蚀面积 + 0.2·建设用地面积 + 0.2·其他土地胁迫面积) / 区域面积
        A_ero = 236.0435677948; 重度 = 强烈 + 极强烈 + 剧烈, 中度 = 中度 (SL 190-2007) [C];
        建设用地 = 城镇 + 农村居民点 + 其他建设用地

    All areas in km². Columns: the four areas, ``land_stress_weighted_km2``, ``land_stress_raw``, ``land_stress``.
    """
    co = as_coefficients(coefficients)
    area = _series(area_km2, None, "area_km2")
    _positive_area(area, "land stress")
    idx = area.index
    w = co.land_stress_weights
    out = pd.DataFrame({
        "severe_erosion_km2": _series(severe_erosion_km2, idx, "severe_erosion_km2"),
        "moderate_erosion_km2": _series(moderate_erosion_km2, idx, "moderate_erosion_km2"),
        "construction_km2": _series(construction_km2, idx, "construction_km2"),
        "other_stress_km2": _series(other_stress_km2, idx, "other_stress_km2"),
    }, index=idx)
    out["land_stress_weighted_km2"] = (w["severe_erosion"] * out["severe_erosion_km2"]
                                       + w["moderate_erosion"] * out["moderate_erosion_km2"]
                                       + w["construction"] * out["construction_km2"]
                                       + w["other_stress"] * out["other_stress_km2"])
    out["land_stress_raw"] = co.a_ero * out["land_stress_weighted_km2"] / area
    out["land_stress"] = cap(out["land_stress_raw"], "land_stress", coefficients=co, record=record)
    return out


# -- §1.6 pollution load -------------------------------------------------------------------------------------------

def precipitation_volume_1e4m3(precipitation_mm, area_km2) -> pd.Series:
    """区域年降水总量 in 10⁴ m³ = mm × km² × 10³ m³ / 10⁴ m³ = mm × km² × 0.1 (STANDARDS §1.6 [C] unit)."""
    # 1 mm over 1 km² = 10⁻³ m × 10⁶ m² = 10³ m³ = 0.1 × 10⁴ m³
    return _series(precipitation_mm, None, "precipitation_mm") * _series(area_km2, None, "area_km2") * 1e3 / 1e4


def pollution_load(emissions_t: pd.DataFrame, precipitation_mm, area_km2, *, coefficients=None,
                   record: list | None = None) -> pd.DataFrame:
    """污染负荷指数 (STANDARDS §1.6)::

        污染负荷指数 = 0.20·A_COD·COD/区域年降水总量 + 0.20·A_NH3·氨氮/区域年降水总量 + 0.20·A_SO2·SO2/区域面积
                    + 0.10·A_YFC·烟(粉)尘/区域面积 + 0.20·A_NOX·氮氧化物/区域面积 + 0.10·A_SOL·固体废物丢弃量/区域面积
        A_COD = 4.3937397289, A_NH3 = 40.1764754986, A_SO2 = 0.0648660287, A_YFC = 4.0904459321,
        A_NOX = 0.5103049278, A_SOL = 0.0749894283; emissions in t [C]; 区域年降水总量 in 10⁴ m³ [C]
        = precipitation (mm) × area (km²) × 0.1

    ``emissions_t``: per-zone emissions in t, columns as ``indices/statistics_table.yaml`` (cod_emission_t,
    nh3n_emission_t, so2_emission_t, dust_emission_t, nox_emission_t, solid_waste_discarded_t).
    Columns: the emissions, ``precipitation_mm``, ``precipitation_volume_1e4m3``, ``pli_<term>_term`` (each weighted
    term), ``pollution_load_raw``, ``pollution_load``.
    """
    co = as_coefficients(coefficients)
    area = _series(area_km2, None, "area_km2")
    _positive_area(area, "pollution load")
    idx = area.index
    missing = [t.column for t in co.pollution_terms.values() if t.column not in emissions_t.columns]
    if missing:
        raise InputError(f"emission column(s) {missing} missing", field=missing[0],
                         expected=f"columns {[t.column for t in co.pollution_terms.values()]} in t")
    em = emissions_t.reindex(idx)
    precip = _series(precipitation_mm, idx, "precipitation_mm")
    out = pd.DataFrame(index=idx)
    for t in co.pollution_terms.values():
        out[t.column] = pd.to_numeric(em[t.column], errors="coerce").astype(float)
    neg = out.lt(0).any(axis=1)
    if neg.any():
        raise InputError(f"negative emission for zone(s) {_zones(idx[neg])}", field="emissions_t", expected="t ≥ 0")
    out["precipitation_mm"] = precip
    out["precipitation_volume_1e4m3"] = precipitation_volume_1e4m3(precip, area)
    if any(t.denominator == "precipitation_volume" for t in co.pollution_terms.values()):
        bad = precip[~(precip > 0) & precip.notna()]
        if len(bad):
            raise InputError(f"precipitation is not > 0 for zone(s) {_zones(bad.index)}", field="precipitation_mm",
                             expected="annual precipitation > 0 mm")
    nan_zones = idx[out.isna().any(axis=1)]
    if len(nan_zones):
        log.warning("pollution load: missing emission/precipitation values for zone(s) %s (index NaN)",
                    _zones(nan_zones))
    terms = []
    for name, t in co.pollution_terms.items():
        den = out["precipitation_volume_1e4m3"] if t.denominator == "precipitation_volume" else area
        out[f"pli_{name}_term"] = t.weight * t.a * out[t.column] / den
        terms.append(f"pli_{name}_term")
    out["pollution_load_raw"] = out[terms].sum(axis=1, skipna=False)
    out["pollution_load"] = cap(out["pollution_load_raw"], "pollution_load", coefficients=co, record=record)
    return out


# -- §1.1 composite, §1.7 grades and change ------------------------------------------------------------------------

def ecological_index(sub_indices, *, coefficients=None) -> pd.Series:
    """EI before the constraint (STANDARDS §1.1), from unrounded (capped) sub-indices::

        EI = 0.35·生物丰度 + 0.25·植被覆盖 + 0.15·水网密度 + 0.15·(100 − 土地胁迫) + 0.10·(100 − 污染负荷)

    ``sub_indices``: DataFrame (or dict of Series) with columns biological_abundance, vegetation_cover,
    water_network_density, land_stress, pollution_load.
    """
    co = as_coefficients(coefficients)
    df = pd.DataFrame(sub_indices) if isinstance(sub_indices, dict) else sub_indices
    missing = [k for k in co.composite_weights if k not in df.columns]
    if missing:
        raise InputError(f"sub-index column(s) {missing} missing", field=missing[0],
                         expected=f"columns {list(co.composite_weights)}")
    w = co.composite_weights
    ei = (w["biological_abundance"] * df["biological_abundance"]
          + w["vegetation_cover"] * df["vegetation_cover"]
          + w["water_network_density"] * df["water_network_density"]
          + w["land_stress"] * (100.0 - df["land_stress"])
          + w["pollution_load"] * (100.0 - df["pollution_load"]))
    return ei.rename("ei_before_constraint")


def _grade_index(v: float, co: Hj192Coefficients) -> int | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    tol = co.boundary_tolerance
    for i, g in enumerate(co.grades):
        lower = -math.inf if g["lower"] is None else g["lower"] - tol
        if v >= lower:
            return i
    return len(co.grades) - 1


def grade(ei, *, lang: str = "zh", coefficients=None):
    """EI grade (STANDARDS §1.7): 优 ≥ 75, 良 [55, 75), 一般 [35, 55), 较差 [20, 35), 差 < 20.

    A scalar gives a label (None for NaN); a Series gives a Series of labels.
    """
    co = as_coefficients(coefficients)

    def one(v):
        i = _grade_index(float(v), co) if v is not None else None
        return None if i is None else co.grades[i][lang]

    if isinstance(ei, pd.Series):
        return ei.map(one).rename("grade")
    return one(ei)


def change_class(delta, *, lang: str = "zh", coefficients=None):
    """ΔEI change class (STANDARDS §1.7), ΔEI = EI_year − EI_baseline::

        |ΔEI| < 1 无明显变化; 1 ≤ |ΔEI| < 3 略微变好/变差; 3 ≤ |ΔEI| < 8 明显变好/变差; |ΔEI| ≥ 8 显著变好/变差

    (e.g. 1.0 → 略微变好, 0.999 → 无明显变化, −3 → 明显变差). Scalar → label; Series → Series.
    """
    co = as_coefficients(coefficients)
    return _signed_class(delta, co.change_classes, co.boundary_tolerance, lang, lower_inclusive=True,
                         name="change_class")


def function_zone_change_class(delta, *, lang: str = "zh", coefficients=None):
    """7-class change of a key ecological function zone county (STANDARDS §6.1)::

        |Δ| ≤ 1 基本稳定; 1 < |Δ| ≤ 2 轻微变好/变差; 2 < |Δ| ≤ 4 一般变好/变差; |Δ| > 4 明显变好/变差

    Class names [A]; cut-offs [C] unverified (``function_zone_change_classes.verified`` in the coefficient file,
    carried into every output). Applied to ΔEI. Scalar → label; Series → Series.
    """
    co = as_coefficients(coefficients)
    return _signed_class(delta, co.raw["function_zone_change_classes"]["classes"], co.boundary_tolerance, lang,
                         lower_inclusive=False, name="function_zone_change_class")


def _signed_class(delta, classes: list[dict], tol: float, lang: str, *, lower_inclusive: bool, name: str):
    """The class of |Δ| in ``classes`` (ascending ``lower`` bounds), labelled 变好/变差 by the sign of Δ.

    ``lower_inclusive``: a class starts at its lower bound (|Δ| ≥ lower, HJ 192 §1.7) or just above it
    (|Δ| > lower, the function-zone table). ``tol`` absorbs floating-point error at the boundaries.
    """
    def one(d):
        if d is None or (isinstance(d, float) and math.isnan(d)):
            return None
        a = abs(float(d))
        cls = classes[0]
        for c in classes[1:]:
            if (a >= c["lower"] - tol) if lower_inclusive else (a > c["lower"] + tol):
                cls = c
        if cls["lower"] == 0.0:
            return cls[lang]
        return cls[f"{lang}_better"] if d > 0 else cls[f"{lang}_worse"]

    if isinstance(delta, pd.Series):
        return delta.map(one).rename(name)
    return one(delta)


def fluctuation_flag(series_by_year, *, coefficients=None):
    """波动 heuristic (STANDARDS §1.7 [C]) on an EI series per zone.

    A *reversal* is two consecutive year-to-year intervals whose ΔEI both have |ΔEI| ≥ 1 and opposite signs (an
    up-down or down-up pattern); the zone is flagged 生态环境敏感 when it has ≥ 1 reversal (both settings in the
    coefficient file). ``fluctuation_level`` grades the largest |ΔEI| with the 1/3/8 thresholds: 稳定 / 波动 /
    较大波动 / 剧烈波动 [C]. Input: a DataFrame (rows = zones, columns = years) or a Series indexed by year (one
    zone). Output: a DataFrame (or, for a Series, a dict) with ``n_intervals, n_reversals, max_abs_delta,
    fluctuation_level, fluctuating, label``.
    """
    co = as_coefficients(coefficients)
    single = isinstance(series_by_year, pd.Series)
    df = series_by_year.to_frame().T if single else series_by_year
    df = df.reindex(columns=sorted(df.columns))
    rows = []
    for zone, vals in df.iterrows():
        v = pd.to_numeric(vals, errors="coerce").dropna().to_numpy(dtype=float)
        d = np.diff(v)
        sig = np.abs(d) >= co.fluctuation_min_abs_delta - co.boundary_tolerance
        rev = int(np.sum(sig[:-1] & sig[1:] & (np.sign(d[:-1]) != np.sign(d[1:])))) if d.size > 1 else 0
        mx = float(np.max(np.abs(d))) if d.size else float("nan")
        level = None
        if not math.isnan(mx):
            for lv in co.fluctuation_levels:
                if mx >= lv["lower"] - co.boundary_tolerance:
                    level = lv["zh"]
        flag = rev >= co.fluctuation_min_reversals
        rows.append({"zone": zone, "n_intervals": int(d.size), "n_reversals": rev, "max_abs_delta": mx,
                     "fluctuation_level": level, "fluctuating": flag,
                     "label": co.fluctuation_flag_label if flag else None})
    out = pd.DataFrame(rows).set_index("zone")
    out.index.name = df.index.name
    out.attrs["heuristic"] = "[C] heuristic, see indices/hj192_2015.yaml fluctuation"
    return out.iloc[0].to_dict() if single else out


# -- §1.8 constraint -------------------------------------------------------------------------------------------------

def _event_rule(ev: dict, co: Hj192Coefficients) -> tuple[str | None, int, str]:
    """(cap_class, downgrade_steps, description of the rule applied) for one event row."""
    names = co.grade_names()
    level = ev.get("level")
    if _given(level):
        lv = int(level)
        if lv not in co.constraint_levels:
            raise InputError(f"constraint level {level!r}", field="level",
                             expected=f"one of {sorted(co.constraint_levels)}")
        cap_cls, steps = co.constraint_levels[lv]
        return cap_cls, steps, f"level {lv} (DYX semantics)"
    explicit_cap = ev.get("cap_class")
    explicit_steps = ev.get("downgrade_steps")
    has_cap = _given(explicit_cap) and str(explicit_cap) != ""
    has_steps = _given(explicit_steps)
    if has_cap or has_steps:
        if has_cap and explicit_cap not in names:
            raise InputError(f"cap_class {explicit_cap!r}", field="cap_class", expected=f"one of {names}")
        return (explicit_cap if has_cap else None), (int(explicit_steps) if has_steps else 0), "explicit in the event"
    et, sev = str(ev.get("event_type", "")), str(ev.get("severity", ""))
    for i, r in enumerate(co.constraint_rules):
        if r.event_type in ("*", et) and r.severity in ("*", sev):
            tag = f"rule {i} ({r.event_type}/{r.severity} [{r.confidence}]{', verify' if r.verify else ''})"
            return r.cap_class, r.downgrade_steps, tag
    known = ", ".join(f"{r.event_type}/{r.severity}" for r in co.constraint_rules)
    raise InputError(f"no constraint rule for event type {et!r} with severity {sev!r} (rules: {known})",
                     field="severity", expected="a severity the rule table knows, or an explicit level / cap_class / "
                                                "downgrade_steps column")


def apply_constraint(ei: pd.Series, events: pd.DataFrame | None, *, zone_field: str = "zone_id",
                     coefficients=None) -> pd.DataFrame:
    """环境限制指数 as a grade constraint (STANDARDS §1.8), never a numeric addition.

    For each event: ``downgrade_steps`` grades down from the EI's grade, then no better than ``cap_class``; DYX
    semantics by default (level 2: one grade down; level 3: one grade down and not 优 or 良; e.g. EI 80 with level
    2 → 74.9, with level 3 → 54.9). When the grade changes, EI becomes the top of the target grade minus 0.1
    (74.9 / 54.9 / 34.9 / 19.9); a zone already at or below the target keeps its EI. A zone with several events
    takes the strictest. ``events``: rows with ``zone_field`` (or the index), ``event_type``, ``severity`` and
    optionally ``level`` or ``cap_class``/``downgrade_steps``; (event_type, severity) is looked up in the rule table
    (``constraint.rules``, [C], marked verify). Events of zones not in ``ei`` are ignored (warning).

    Columns: ``ei_before_constraint``, ``grade_before_constraint``, ``constraint_events``, ``constraint_rule``,
    ``constraint_cap_class``, ``constraint_downgrade_steps``, ``ei``, ``grade``.
    """
    co = as_coefficients(coefficients)
    ei = _series(ei, None, "ei")
    names = co.grade_names()
    out = pd.DataFrame({"ei_before_constraint": ei, "grade_before_constraint": grade(ei, coefficients=co)},
                       index=ei.index)
    out["constraint_events"] = 0
    out["constraint_rule"] = None
    out["constraint_cap_class"] = None
    out["constraint_downgrade_steps"] = 0
    out["ei"] = ei
    if events is not None and len(events):
        ev = events.reset_index() if zone_field not in events.columns and events.index.name == zone_field else events
        if zone_field not in ev.columns:
            raise InputError(f"events table has no zone column {zone_field!r} (columns: {list(ev.columns)})",
                             field=zone_field, expected="the zone id of each event")
        index_set = set(ei.index)
        unknown = sorted({str(z) for z in ev[zone_field] if z not in index_set})
        if unknown:
            log.warning("constraint events for unknown zone(s) ignored: %s", ", ".join(unknown))
        for zone, group in ev[ev[zone_field].isin(index_set)].groupby(zone_field, sort=False):
            v = float(ei.loc[zone])
            gi = _grade_index(v, co)
            best_target, best_desc, best_cap, best_steps = gi, [], None, 0
            for row in group.to_dict("records"):
                cap_cls, steps, desc = _event_rule(row, co)
                if gi is None:
                    continue
                target = min(gi + steps, len(names) - 1)
                if cap_cls is not None:
                    target = max(target, names.index(cap_cls))
                best_desc.append(f"{row.get('event_type', '')}/{row.get('severity', '')} → {desc}: "
                                 f"cap {cap_cls or '—'}, down {steps}")
                if target > best_target or (target == best_target and best_cap is None and cap_cls is not None):
                    best_target, best_cap, best_steps = target, cap_cls, steps
            out.loc[zone, "constraint_events"] = len(group)
            out.loc[zone, "constraint_rule"] = "; ".join(best_desc)
            out.loc[zone, "constraint_cap_class"] = best_cap
            out.loc[zone, "constraint_downgrade_steps"] = best_steps
            if gi is not None and best_target > gi:
                new = co.grades[best_target]["upper"] - co.constraint_value_below
                log.info("constraint: zone %s EI %.4f (%s) → %.1f (%s)", zone, v, names[gi], new, names[best_target])
                out.loc[zone, "ei"] = new
    out["grade"] = grade(out["ei"].astype(float), coefficients=co)
    return out


# -- §1.9 function-zone indicators ---------------------------------------------------------------------------------

def _function_type(t, co: Hj192Coefficients) -> str:
    s = str(t).strip()
    if s in co.function_types:
        return s
    if s in co.function_aliases:
        return co.function_aliases[s]
    raise InputError(f"unknown function-zone type {t!r}", field="function_type",
                     expected=f"one of {list(co.function_types)} or {list(co.function_aliases)}")


def function_zone_indicators(habitat_km2: pd.DataFrame, area_km2, function_type, *, coefficients=None,
                             record: list | None = None) -> pd.DataFrame:
    """HJ 192-2015 §6 function-zone indicators (STANDARDS §1.9): coefficient × first-level area / 区域面积.

    ==========================  =============  =============  =============  ===============
    indicator                   防风固沙        水土保持        水源涵养        生物多样性维护
    ==========================  =============  =============  =============  ===============
    林草地覆盖率 (林+草)          105.4407423028 104.5696957022 –              –
    林地覆盖率                    –              –              104.4277360067 113.3915409910
    草地覆盖率                    –              –              120.5836247438 130.9414691633
    水域湿地面积比                824.4023083265 1418.4397163121 321.4400514304 329.9241174530
    耕地和建设用地面积比 (耕+建)   165.0437365902 150.6477854776 102.7221366204 116.2115049390
    ==========================  =============  =============  =============  ===============

    水源涵养指数 (水源涵养 zones) = 526.7925984400 × (0.45·水域湿地 + 0.35·林地 + 0.20·草地) / 区域面积.
    First-level areas are unweighted sums of sub-class areas. ``function_type``: one type for all zones or a Series
    per zone (English key or Chinese name). Indicators not used by a zone's type are NaN. Each indicator has a
    ``_raw`` column (before the 100-cap) and a capped column.
    """
    co = as_coefficients(coefficients)
    groups = group_areas(habitat_km2, coefficients=co)
    idx = groups.index
    area = _positive_area(_series(area_km2, idx, "area_km2"), "function-zone indicators")
    if isinstance(function_type, pd.Series):
        ftype = function_type.reindex(idx).map(lambda t: _function_type(t, co))
    else:
        ftype = pd.Series(_function_type(function_type, co), index=idx)
    out = pd.concat([pd.DataFrame({"function_type": ftype,
                                   "function_type_zh": ftype.map(co.function_type_zh)}, index=idx), groups], axis=1)
    for ind, gl in co.function_indicators.items():
        coef = ftype.map(lambda t: co.function_types[t].get(ind, np.nan)).astype(float)
        share = sum(groups[f"{g}_km2"] for g in gl) / area
        raw = coef * share
        out[f"{ind}_raw"] = raw
        out[ind] = cap(raw, ind, coefficients=co, record=record)
    has_wci = ftype.isin(co.function_types_with_wci)
    wci = co.wci_a * sum(w * groups[f"{g}_km2"] for g, w in co.wci_weights.items()) / area
    out["water_conservation_index_raw"] = wci.where(has_wci)
    out["water_conservation_index"] = cap(out["water_conservation_index_raw"], "water_conservation_index",
                                          coefficients=co, record=record)
    return out


# -- the whole EI ----------------------------------------------------------------------------------------------------

@dataclass
class EiInputs:
    """Per-zone inputs of :func:`compute_ei` (index = zone id everywhere).

    habitat_km2       km² per HJ 192 sub-class (:func:`ecoassess.assess.landcover.habitat_areas`)
    ndvi_mean         zone mean of the May–Sep monthly-max NDVI, in ``ndvi_scale`` units ('x10000' or 'float')
    statistics        statistics-table rows of the year, index = zone id, columns as indices/statistics_table.yaml
                      (<quantity>_<unit>; other known units are converted, e.g. water_resources_1e8m3 × 100)
    river_length_km   river length per zone (km); default: the statistics column river_length_km
    area_km2          zone area (km²), e.g. ZoneSet.area_km2 − area_outside_km2; 区域面积 = this minus the area the
                      land cover classes as ``excluded`` (sea) when ``subtract_excluded`` (recorded); default:
                      Σ habitat sub-classes (classified land, sea excluded) — recorded
    ndvi_weight       weights of the zone NDVI means for the whole-area mean (valid cells or km²); default area
    severe_erosion_km2, moderate_erosion_km2, other_stress_km2   land-stress areas (km²); None → 0, recorded
    events            constraint events: ``event_zone_field``, event_type, severity
                      [, level | cap_class, downgrade_steps][, year]
    biodiversity_index  per-zone BI (HJ 623-2011); default: statistics column biodiversity_index when present
    water_resources_mean_1e6m3  long-term mean water resources (reports r; used by the wet-year rule if enabled)
    """

    habitat_km2: pd.DataFrame
    ndvi_mean: pd.Series
    ndvi_scale: str
    statistics: pd.DataFrame
    river_length_km: pd.Series | None = None
    area_km2: pd.Series | None = None
    subtract_excluded: bool = True
    ndvi_weight: pd.Series | None = None
    severe_erosion_km2: pd.Series | None = None
    moderate_erosion_km2: pd.Series | None = None
    other_stress_km2: pd.Series | None = None
    events: pd.DataFrame | None = None
    event_zone_field: str = "zone_id"
    biodiversity_index: pd.Series | None = None
    water_resources_mean_1e6m3: pd.Series | None = None
    names: pd.Series | None = None
    year: int | None = None
    whole_area: bool = True
    whole_area_id: object = "total"
    whole_area_name: str = "全域"
    whole_area_biodiversity_index: float | None = None
    assumptions: list[str] = field(default_factory=list)


@dataclass
class EiResult:
    """``table``: one row per zone (+ the whole area) with every intermediate quantity (module docstring);
    ``assumptions``: the defaults and [C] choices the numbers rest on; ``capped``: the 100-cap events;
    ``coefficients``: the coefficient set used (``coefficients.path``, ``coefficients.version``)."""

    table: pd.DataFrame
    assumptions: list[str]
    capped: pd.DataFrame
    coefficients: Hj192Coefficients

    def display(self, decimals: int | None = None) -> pd.DataFrame:
        """The table with float columns rounded for display (computation always uses unrounded values)."""
        d = self.coefficients.display_decimals if decimals is None else decimals
        t = self.table.copy()
        floats = t.select_dtypes(include="float").columns
        t[floats] = t[floats].round(d)
        return t


def _statistics_column(stats: pd.DataFrame, quantity: str, target_unit: str, idx: pd.Index, *,
                       optional: bool = False) -> pd.Series | None:
    """Column ``<quantity>_<unit>`` of the statistics table converted to ``target_unit`` (explicit factor)."""
    from ecoassess.tables import statistics_spec

    spec = statistics_spec()
    expected_unit = spec["columns"][quantity]["unit"]
    candidates = [expected_unit] + [u for u in spec.get("known_units", []) if u != expected_unit]
    for unit in candidates:
        col = f"{quantity}_{unit}" if unit else quantity
        if col in stats.columns:
            factor = _UNIT_FACTORS.get((unit, target_unit))
            if factor is None:
                raise InputError(f"column '{col}' is in {unit!r}; no conversion to {target_unit!r} is defined",
                                 field=col, expected=f"{quantity}_{expected_unit}")
            if unit != expected_unit:
                log.info("statistics column %s converted to %s (× %g)", col, target_unit, factor)
            s = pd.to_numeric(stats[col], errors="coerce").astype(float).reindex(idx)
            return s * factor
    if optional:
        return None
    raise InputError(f"statistics table has no column '{quantity}_{expected_unit}'",
                     field=f"{quantity}_{expected_unit}", expected="the columns of indices/statistics_table.yaml")


def _emission_frame(stats: pd.DataFrame, idx: pd.Index, co: Hj192Coefficients) -> pd.DataFrame:
    from ecoassess.tables import statistics_spec

    spec = statistics_spec()
    out = {}
    for t in co.pollution_terms.values():
        # the coefficient file names the column in t (e.g. cod_emission_t); find its quantity in the table spec
        quantity = next((q for q, m in spec["columns"].items() if f"{q}_{m['unit']}" == t.column), None)
        if quantity is None:
            if t.column not in stats.columns:
                raise InputError(f"statistics table has no column '{t.column}'", field=t.column)
            out[t.column] = pd.to_numeric(stats[t.column], errors="coerce").astype(float).reindex(idx)
        else:
            # statistics-table unit (t) → the coefficients' emission unit (t): factor 1, kg would be × 1e-3
            out[t.column] = _statistics_column(stats, quantity, co.emission_unit, idx)
    return pd.DataFrame(out, index=idx)


def compute_ei(inputs: EiInputs, coefficients=None) -> EiResult:
    """HJ 192-2015 EI per zone and for the whole area, with every intermediate quantity.

    Steps: (1) per-zone inputs are assembled and converted to the coefficients' units; (2) the whole-area row is
    built from totals — Σ areas, Σ river length, Σ water resources, Σ emissions, Σ precipitation volume
    (precipitation_mm of the row = Σ(mm·area)/Σ area), NDVI = Σ(mean·weight)/Σ weight, BI = the given whole-area
    value or the area-weighted mean when every zone has one [C]; (3) the five sub-indices (capped at 100, recorded),
    (4) EI = weighted sum of unrounded sub-indices, (5) the constraint (events of the zone; whole-area row: events
    whose zone id is ``whole_area_id``), (6) grade.

    Table columns (index = zone id): ``name, is_whole_area, area_km2, habitat_total_km2``, ``<subclass>_km2`` for
    every HJ 192 sub-class and ``excluded_km2``; biological abundance (``hq_<group>_weighted_km2``,
    ``hq_weighted_km2, hq_raw, hq, biodiversity_index, biological_abundance_raw, biological_abundance``); vegetation
    (``ndvi_mean, ndvi_scale, a_veg, vegetation_cover_raw, vegetation_cover``); water network (``river_length_km,
    water_area_km2, water_resources_1e6m3, [water_resources_mean_1e6m3, water_resources_ratio_r,]
    water_resources_used_1e6m3, wnd_river_term, wnd_water_area_term, wnd_water_resources_term,
    water_network_density_raw, water_network_density``); land stress (``severe_erosion_km2, moderate_erosion_km2,
    construction_km2, other_stress_km2, land_stress_weighted_km2, land_stress_raw, land_stress``); pollution
    (six ``*_emission_t``/``solid_waste_discarded_t``, ``precipitation_mm, precipitation_volume_1e4m3``,
    ``pli_<term>_term``, ``pollution_load_raw, pollution_load``); ``ei_before_constraint, grade_before_constraint,
    constraint_events, constraint_rule, constraint_cap_class, constraint_downgrade_steps, ei, grade, capped``.
    """
    co = as_coefficients(coefficients)
    assumptions = list(inputs.assumptions)
    record: list[dict] = []
    hab = _check_columns(inputs.habitat_km2, co)
    excluded = (pd.to_numeric(inputs.habitat_km2[co.excluded_subclass], errors="coerce").fillna(0.0)
                if co.excluded_subclass in inputs.habitat_km2.columns else pd.Series(0.0, index=hab.index))
    idx = hab.index
    if inputs.whole_area and inputs.whole_area_id in set(idx):
        raise InputError(f"whole-area id {inputs.whole_area_id!r} is also a zone id", field="whole_area_id",
                         expected="an id no zone uses")
    stats = inputs.statistics
    missing = [z for z in idx if z not in set(stats.index)]
    if missing:
        log.warning("statistics table has no row for zone(s) %s (their EI is NaN)", _zones(missing))

    # -- 1. per-zone inputs in the coefficients' units ------------------------------------------------------------
    z = pd.DataFrame(index=idx)
    z["name"] = (inputs.names.reindex(idx) if inputs.names is not None else pd.Series([str(i) for i in idx], index=idx))
    habitat_total = hab.sum(axis=1)
    if inputs.area_km2 is None:
        z["area_km2"] = habitat_total
        assumptions.append("区域面积 = classified land-cover area per zone (Σ habitat sub-classes, sea excluded): "
                           "no zone area given")
    else:
        z["area_km2"] = _series(inputs.area_km2, idx, "area_km2")
        sea = excluded.reindex(idx).fillna(0.0)
        if inputs.subtract_excluded and (sea > 0).any():
            z["area_km2"] = z["area_km2"] - sea
            assumptions.append(f"区域面积 = zone area − area classed as excluded (sea) in zone(s) "
                               f"{_zones(idx[sea > 0])}")
        rel = (habitat_total - z["area_km2"]).abs() / z["area_km2"]
        off = rel[rel > 0.01]
        if len(off):
            assumptions.append(f"land cover classifies an area differing by more than 1 % from 区域面积 in zone(s) "
                               f"{_zones(off.index)} (largest {off.max():.1%}); habitat shares are taken over 区域面积")
    z["habitat_total_km2"] = habitat_total
    for s in co.subclasses:
        z[f"{s}_km2"] = hab[s]
    z["excluded_km2"] = excluded.reindex(idx).fillna(0.0)
    z["ndvi_mean"] = _series(inputs.ndvi_mean, idx, "ndvi_mean")
    if inputs.ndvi_weight is None:
        ndvi_w = z["area_km2"]
        if inputs.whole_area:
            assumptions.append("whole-area NDVI = area-weighted mean of zone means (no valid-cell counts given)")
    else:
        ndvi_w = _series(inputs.ndvi_weight, idx, "ndvi_weight")
    # river length: km (statistics unit km → coefficient unit km)
    if inputs.river_length_km is not None:
        z["river_length_km"] = _series(inputs.river_length_km, idx, "river_length_km")
    else:
        rl = _statistics_column(stats, "river_length", "km", idx, optional=True)
        if rl is None:
            raise InputError("no river length: give EiInputs.river_length_km (from the river layer) or the statistics "
                             "column river_length_km", field="river_length_km", expected="km per zone")
        z["river_length_km"] = rl
    # water resources: statistics unit 1e6m3 → coefficient unit (10⁶ m³ [C]); 亿 m³ columns would be × 100
    z["water_resources_1e6m3"] = _statistics_column(stats, "water_resources", co.water_resources_unit, idx)
    if inputs.water_resources_mean_1e6m3 is not None:
        z["water_resources_mean_1e6m3"] = _series(inputs.water_resources_mean_1e6m3, idx, "water_resources_mean_1e6m3")
    # precipitation: mm (the volume in 10⁴ m³ = mm × km² × 0.1 is formed in pollution_load)
    z["precipitation_mm"] = _statistics_column(stats, "precipitation", "mm", idx)
    em = _emission_frame(stats, idx, co)
    for c in em.columns:
        z[c] = em[c]
    for key, label in (("severe_erosion_km2", "severe (强烈+极强烈+剧烈) erosion area"),
                       ("moderate_erosion_km2", "moderate erosion area"),
                       ("other_stress_km2",
                        "other land-stress area (sandification/salinisation/rocky desertification)")):
        given = getattr(inputs, key)
        if given is None:
            z[key] = 0.0
            assumptions.append(f"{label} not given: taken as 0 km² (land stress understated, EI overstated if any "
                               f"exists)")
        else:
            z[key] = _series(given, idx, key)
    bi = inputs.biodiversity_index
    if bi is None:
        bi = _statistics_column(stats, "biodiversity_index", "", idx, optional=True)
    z["biodiversity_index"] = np.nan if bi is None else _series(bi, idx, "biodiversity_index")
    if z["biodiversity_index"].isna().all():
        assumptions.append("no biodiversity index (HJ 623-2011): 生物丰度指数 = HQ")
    elif z["biodiversity_index"].isna().any():
        assumptions.append(f"no biodiversity index for zone(s) {_zones(idx[z['biodiversity_index'].isna()])}: "
                           f"生物丰度指数 = HQ there")
    z["is_whole_area"] = False

    # -- 2. whole-area row from totals ------------------------------------------------------------------------------
    if inputs.whole_area:
        t = {"name": inputs.whole_area_name, "is_whole_area": True}
        extensive = (["area_km2", "habitat_total_km2", "excluded_km2", "river_length_km", "water_resources_1e6m3",
                      "severe_erosion_km2", "moderate_erosion_km2", "other_stress_km2"]
                     + [f"{s}_km2" for s in co.subclasses] + list(em.columns)
                     + (["water_resources_mean_1e6m3"] if "water_resources_mean_1e6m3" in z else []))
        for c in extensive:
            t[c] = z[c].sum(skipna=False)
        # Σ precipitation volume / Σ area: the row's mm reproduces Σ(mm_i × area_i) exactly
        t["precipitation_mm"] = (z["precipitation_mm"] * z["area_km2"]).sum(skipna=False) / z["area_km2"].sum()
        ok = z["ndvi_mean"].notna() & ndvi_w.notna()
        t["ndvi_mean"] = (z["ndvi_mean"][ok] * ndvi_w[ok]).sum() / ndvi_w[ok].sum() if ok.any() else np.nan
        if inputs.whole_area_biodiversity_index is not None:
            t["biodiversity_index"] = float(inputs.whole_area_biodiversity_index)
        elif z["biodiversity_index"].notna().all():
            t["biodiversity_index"] = float((z["biodiversity_index"] * z["area_km2"]).sum() / z["area_km2"].sum())
            assumptions.append("whole-area biodiversity index = area-weighted mean of the zones' BI [C] "
                               "(no whole-area BI given)")
        else:
            t["biodiversity_index"] = np.nan
        z = pd.concat([z, pd.DataFrame([t], index=pd.Index([inputs.whole_area_id], name=idx.name))])
        z.index.name = idx.name

    # -- 3. sub-indices --------------------------------------------------------------------------------------------
    hab_all = z[[f"{s}_km2" for s in co.subclasses]]
    area = z["area_km2"]
    ba = biological_abundance(hab_all, area, z["biodiversity_index"], coefficients=co, record=record)
    vc = vegetation_cover(z["ndvi_mean"], inputs.ndvi_scale, coefficients=co, record=record)
    water_area = sum(z[f"{s}_km2"] for s in co.water_area_subclasses)
    wnd = water_network_density(z["river_length_km"], water_area, z["water_resources_1e6m3"], area,
                                water_resources_mean_1e6m3=z.get("water_resources_mean_1e6m3"),
                                coefficients=co, record=record)
    if co.wet_year_enabled and "water_resources_mean_1e6m3" in z:
        assumptions.append("wet-year rule (DYX, [B] single source) applied to water resources")
    construction = sum(z[f"{s}_km2"] for s in co.construction_subclasses)
    ls = land_stress(z["severe_erosion_km2"], z["moderate_erosion_km2"], construction, z["other_stress_km2"], area,
                     coefficients=co, record=record)
    pl = pollution_load(z[list(em.columns)], z["precipitation_mm"], area, coefficients=co, record=record)
    subs = pd.DataFrame({"biological_abundance": ba["biological_abundance"],
                         "vegetation_cover": vc["vegetation_cover"],
                         "water_network_density": wnd["water_network_density"],
                         "land_stress": ls["land_stress"], "pollution_load": pl["pollution_load"]})
    ei_raw = ecological_index(subs, coefficients=co)

    # -- 4. constraint ---------------------------------------------------------------------------------------------
    events = inputs.events
    if events is not None and len(events) and inputs.year is not None and "year" in events.columns:
        events = events[pd.to_numeric(events["year"], errors="coerce") == inputs.year]
    con = apply_constraint(ei_raw, events, zone_field=inputs.event_zone_field, coefficients=co)

    # -- 5. the table ----------------------------------------------------------------------------------------------
    head = z[["name", "is_whole_area", "area_km2", "habitat_total_km2"] + [f"{s}_km2" for s in co.subclasses]
             + ["excluded_km2"]]
    table = pd.concat([
        head,
        ba,
        vc,
        wnd,
        ls,
        pl,
        con,
    ], axis=1)
    capped = pd.DataFrame(record, columns=["zone", "quantity", "before", "after"])
    table["capped"] = [", ".join(capped.loc[capped["zone"] == zid, "quantity"]) or None for zid in table.index]
    table.attrs.update({"coefficients": str(co.path), "coefficients_version": co.version, "year": inputs.year})
    unused_veg = "vegetation_cover.a_veg_float" if vc["ndvi_scale"].iloc[0] == "x10000" else "vegetation_cover.a_veg"
    for r in co.unconfirmed().itertuples():
        if not r.key.startswith(_EI_KEYS) or r.key == unused_veg:
            continue
        assumptions.append(f"[C] {r.key} = {r.value} {r.unit}".rstrip() + f" ({r.source})")
    if events is not None and len(events):
        assumptions.append("constraint rule table [C], DYX semantics, marked verify (indices/hj192_2015.yaml)")
    return EiResult(table=table, assumptions=assumptions, capped=capped, coefficients=co)
