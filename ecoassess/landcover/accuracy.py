"""Map accuracy and error-adjusted areas from a stratified random validation sample (issue 21 part 4).

Estimator: Olofsson, Foody, Herold, Stehman, Woodcock & Wulder (2014), *Good practices for estimating area and
assessing accuracy of land change*, Remote Sensing of Environment 148:42–57 (§4.1.3 and eqs. 2–11; the same
estimators as Olofsson et al. 2013, RSE 129:122–131). The strata are the map classes ``i``; ``n_ij`` is the number
of sample units of map class ``i`` whose reference class is ``j``, ``n_i.`` the sample size of stratum ``i``,
``W_i = A_i / A_tot`` its share of the mapped area. Then

* ``p̂_ij = W_i n_ij / n_i.`` (eq. 4), the estimated area proportion of each cell of the error matrix;
* overall accuracy ``Ô = Σ_j p̂_jj``; user's ``Û_i = p̂_ii / p̂_i.``; producer's ``P̂_j = p̂_jj / p̂_.j`` (eqs. 2–3);
* area ``Â_j = A_tot p̂_.j`` (eq. 9), ``SE(p̂_.j) = sqrt(Σ_i W_i² (n_ij/n_i.)(1 − n_ij/n_i.)/(n_i. − 1))``
  (eq. 10), ``SE(Â_j) = A_tot SE(p̂_.j)`` and the interval ``Â_j ± z SE(Â_j)`` (z = 1.96 for 95 %, eq. 11);
* the interval is the normal (Wald) one of the paper. Simulation (tests/test_landcover_accuracy.py) gives 94–95 %
  coverage when every stratum's share of a class is several sample units; a class whose omission lies as 1–3 %
  slivers of large strata (1–3 expected sample units there) is covered only ≈ 91 % of the time at 95 %;
* variances of the accuracies: ``V(Ô) = Σ_i W_i² Û_i(1 − Û_i)/(n_i. − 1)`` (eq. 5), ``V(Û_i) = Û_i(1 − Û_i)/(n_i. − 1)``
  (eq. 6), and eq. 7 for ``V(P̂_j)`` with ``N̂_.j = Σ_i A_i n_ij / n_i.``.

Kappa is not reported: Olofsson et al. 2014 §4.1.2 (after Pontius & Millones 2011) advise against it.

Per county (or any zone): the map classes are strata over the whole area, so the sample units of stratum ``i``
that fall in county ``c`` are, given their number, a simple random sample of ``i ∩ c`` (post-stratification;
Cochran 1977, *Sampling Techniques*, §5A.9). The same estimator is applied to each county with the county's own
mapped areas ``A_ic`` and the samples in it; the variance is the conditional one (given ``n_ic``). Where a map
class covers part of a county but fewer than two of its samples fall there (no standard error), its row of
proportions is *borrowed* from the whole area (a synthetic estimate: the class is assumed as accurate there as
everywhere) and the row is named in the ``borrowed`` column, so a reviewer sees which figures rest on it.

Sample size per class (``allocate_sample``): Olofsson et al. 2014 §5.1.1 recommend that rare classes get at least
50–100 sample units and the rest be allocated about proportionally to area, between the variance of the area
estimates (proportional) and that of the user's accuracies (equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError

#: Olofsson et al. 2014 §5.1.1: "a minimum of 50 samples" per class (rare classes get 50–100).
MIN_PER_CLASS = 50
ALLOCATIONS = ("olofsson", "proportional", "equal")


# -- class codes ------------------------------------------------------------------------------------------------


def _norm_code(value):
    """A class code as read from a table: ``21``, ``21.0``, ``" 21 "`` and ``"21"`` are all 21; names stay names;
    missing values (None, NaN, "") become None."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return None
        return int(value) if float(value).is_integer() else float(value)
    if isinstance(value, (bool, np.bool_)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    text = str(value).strip()
    if not text or text.lower() in ("nan", "none", "null", "na"):
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def _codes(values, what: str, source) -> list:
    values = list(pd.Series(values).tolist()) if not isinstance(values, list) else values
    out = [_norm_code(v) for v in values]
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        raise InputError(f"{len(missing)} sample(s) have no {what} ({_rows(missing)})", path=source,
                         field=what, expected="a class code in every row")
    return out


def _rows(positions) -> str:
    """'rows 3, 7, 9 (counted from 0)' for a list of row positions (the first ten)."""
    pos = [int(i) for i in positions]
    return "rows " + ", ".join(map(str, pos[:10])) + (" …" if len(pos) > 10 else "") + ", counted from 0"


def _sorted_classes(values) -> list:
    uniq = list(dict.fromkeys(values))
    try:
        return sorted(uniq)
    except TypeError:  # codes and names mixed
        return sorted(uniq, key=str)


# -- confusion matrix and accuracy ------------------------------------------------------------------------------


def confusion_matrix(map_codes, reference_codes, classes=None, *, source=None) -> pd.DataFrame:
    """Counts of sample units by map class (rows, index ``map``) and reference class (columns, ``reference``).

    Codes are compared as read from tables: ``"21"``, ``21.0`` and ``21`` are the same class. ``classes`` fixes the
    order (and adds classes without samples); a code outside it is an :class:`InputError` naming the rows, and so is
    a missing code. ``source`` (the sample file) is named in errors.
    """
    m = _codes(map_codes, "map class", source)
    r = _codes(reference_codes, "reference class", source)
    if len(m) != len(r):
        raise InputError(f"{len(m)} map classes but {len(r)} reference classes", path=source,
                         expected="one of each per sample unit")
    if classes is None:
        order = _sorted_classes(m + r)
    else:
        order = list(dict.fromkeys(_norm_code(c) for c in classes))
        known = set(order)
        for what, vals in (("map class", m), ("reference class", r)):
            bad = [i for i, v in enumerate(vals) if v not in known]
            if bad:
                codes = sorted({str(vals[i]) for i in bad})
                raise InputError(f"{len(bad)} sample(s) have a {what} outside the legend: {', '.join(codes[:10])} "
                                 f"({_rows(bad)})", path=source,
                                 field=what, expected="one of " + ", ".join(str(c) for c in order))
    pos = {c: k for k, c in enumerate(order)}
    counts = np.zeros((len(order), len(order)), dtype=np.int64)
    np.add.at(counts, ([pos[v] for v in m], [pos[v] for v in r]), 1)
    return pd.DataFrame(counts, index=pd.Index(order, name="map"), columns=pd.Index(order, name="reference"))


def _square(confusion: pd.DataFrame) -> pd.DataFrame:
    """The confusion matrix with the same classes, in the same order, on both axes (missing ones count 0)."""
    if not isinstance(confusion, pd.DataFrame):
        raise InputError("the confusion matrix must be a DataFrame (rows map class, columns reference class)")
    conf = confusion.copy()
    conf.index = [_norm_code(c) for c in conf.index]
    conf.columns = [_norm_code(c) for c in conf.columns]
    vals = conf.to_numpy(dtype=float)
    if np.isnan(vals).any() or (vals < 0).any() or not np.allclose(vals, np.round(vals)):
        raise InputError("the confusion matrix must hold counts (whole numbers ≥ 0)")
    order = list(conf.index) + [c for c in conf.columns if c not in set(conf.index)]
    conf = conf.reindex(index=order, columns=order, fill_value=0).astype(np.int64)
    conf.index.name, conf.columns.name = "map", "reference"
    return conf


@dataclass
class _Estimate:
    """Olofsson et al. 2014 estimates for classes ``classes`` (module docstring); areas in the unit of ``area``."""

    classes: list
    area: np.ndarray          # A_i, mapped area per class
    props: np.ndarray         # p̂_ij
    area_adj: np.ndarray      # Â_j
    area_se: np.ndarray       # SE(Â_j)
    users: np.ndarray
    users_se: np.ndarray
    producers: np.ndarray
    producers_se: np.ndarray
    overall: float
    overall_se: float
    n_rows: np.ndarray        # n_i. used for each stratum


def _estimate(rows: np.ndarray, area: np.ndarray, classes: list) -> _Estimate:
    """The stratified estimator of Olofsson et al. 2014 from ``rows`` (k × k counts n_ij: row i gives the
    proportions n_ij / n_i. used for stratum i) and ``area`` (A_i). Strata with A_i = 0 do not count."""
    rows = rows.astype(float)
    area = area.astype(float)
    n_i = rows.sum(axis=1)
    a_tot = area.sum()
    w = area / a_tot
    live = area > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n_i[:, None] > 0, rows / n_i[:, None], 0.0)              # n_ij / n_i.
        props = w[:, None] * share                                                # eq. 4
        var_share = np.where(live[:, None] & (n_i[:, None] > 1),
                             share * (1 - share) / (n_i[:, None] - 1), 0.0)
        p_col = props.sum(axis=0)
        p_row = props.sum(axis=1)
        diag = np.diag(props)
        users = np.where(p_row > 0, diag / p_row, np.nan)
        producers = np.where(p_col > 0, diag / p_col, np.nan)
        se_pcol = np.sqrt((w[:, None] ** 2 * var_share).sum(axis=0))              # eq. 10
        users_var = np.where(live & (n_i > 1), users * (1 - users) / (n_i - 1), np.nan)   # eq. 6
        overall_var = np.nansum(np.where(live, w ** 2 * np.nan_to_num(users_var), 0.0))  # eq. 5
        # eq. 7: V(P̂_j) = [A_j² (1-P̂_j)² Û_j(1-Û_j)/(n_j.-1) + P̂_j² Σ_{i≠j} A_i² s_ij] / N̂_.j²
        n_hat = (area[:, None] * share).sum(axis=0)                               # N̂_.j
        other = (area[:, None] ** 2 * var_share).sum(axis=0) - area ** 2 * np.diag(var_share)
        prod_var = (area ** 2 * (1 - producers) ** 2 * np.nan_to_num(users_var) + producers ** 2 * other) / n_hat ** 2
    return _Estimate(classes=list(classes), area=area, props=props, area_adj=a_tot * p_col, area_se=a_tot * se_pcol,
                     users=users, users_se=np.sqrt(users_var), producers=producers,
                     producers_se=np.sqrt(np.where(n_hat > 0, prod_var, np.nan)), overall=float(diag.sum()),
                     overall_se=float(np.sqrt(overall_var)), n_rows=n_i)


def _z(confidence: float) -> float:
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise InputError(f"confidence {confidence!r} is not a probability", field="confidence",
                         expected="a number between 0 and 1, e.g. 0.95")
    return float(norm.ppf(0.5 + confidence / 2))


def _mapped(mapped_area, classes: list, *, where=None) -> np.ndarray:
    """A_i in ``classes`` order from a Series/dict by class; a class mapped but unknown to the sample is an error."""
    if isinstance(mapped_area, dict):
        mapped_area = pd.Series(mapped_area)
    if not isinstance(mapped_area, pd.Series):
        raise InputError("mapped areas must be a Series or dict: class -> area", field="mapped_area")
    ser = pd.Series(pd.to_numeric(mapped_area, errors="coerce").to_numpy(dtype=float),
                    index=[_norm_code(c) for c in mapped_area.index])
    if ser.index.duplicated().any():
        dup = sorted({str(c) for c in ser.index[ser.index.duplicated()]})
        raise InputError(f"class(es) {', '.join(dup)} listed twice in the mapped areas{where or ''}",
                         field="mapped_area")
    bad = ser.index[ser.isna() | (ser < 0)]
    if len(bad):
        raise InputError(f"mapped area of class(es) {', '.join(str(c) for c in bad)} is not a number ≥ 0"
                         f"{where or ''}", field="mapped_area", expected="an area ≥ 0 per class")
    extra = [c for c in ser.index if c not in set(classes) and ser[c] > 0]
    if extra:
        raise InputError(f"map class(es) {', '.join(str(c) for c in extra)} cover "
                         f"{ser[extra].sum():g} of the map{where or ''} but are not in the validation sample",
                         field="mapped_area", expected="validation samples in every mapped class")
    return ser.reindex(classes, fill_value=0.0).to_numpy(dtype=float)


def _check_strata(conf: pd.DataFrame, area: np.ndarray, *, where: str = "") -> None:
    n_i = conf.to_numpy().sum(axis=1)
    few = [(c, int(n)) for c, n, a in zip(conf.index, n_i, area) if a > 0 and n < 2]
    if few:
        text = ", ".join(f"{c} ({n})" for c, n in few)
        raise InputError(f"map class(es) {text} have fewer than 2 validation samples{where}: no standard error "
                         "can be estimated", field="map class",
                         expected="at least 2 (Olofsson et al. 2014 §5.1.1 recommend ≥ 50) per mapped class")
    if area.sum() <= 0:
        raise InputError(f"the mapped areas add up to 0{where}", field="mapped_area", expected="a positive total")
    orphans = [c for c, n, a in zip(conf.index, n_i, area) if a == 0 and n > 0]
    if orphans:
        raise InputError(f"samples of map class(es) {', '.join(str(c) for c in orphans)} but the class has no "
                         f"mapped area{where}", field="mapped_area", expected="the area of every sampled map class")


@dataclass
class AccuracySummary:
    """Overall, user's and producer's accuracy with their standard errors; ``table`` has one row per class:
    ``n_map`` (row total), ``n_reference`` (column total), ``n_correct``, ``users``, ``users_se``, ``producers``,
    ``producers_se``. ``weighted`` says whether the map's class areas weighted the estimates."""

    overall: float
    users: pd.Series
    producers: pd.Series
    table: pd.DataFrame
    overall_se: float = float("nan")
    weighted: bool = False
    confusion: pd.DataFrame = field(default=None, repr=False)

    def text(self, digits: int = 3) -> str:
        """The error matrix with its margins and the accuracies, as printed for a reviewer."""
        c = self.confusion
        t = c.astype(object).copy()
        t["total"] = c.sum(axis=1).astype(object)
        t["user's"] = [f"{v:.{digits}f}" for v in self.users]
        t.loc["total"] = list(c.sum(axis=0)) + [int(c.to_numpy().sum()), ""]
        t.loc["producer's"] = [f"{v:.{digits}f}" for v in self.producers] + ["", ""]
        how = "area-weighted (Olofsson et al. 2014)" if self.weighted else "from sample counts"
        return (f"{t.to_string()}\noverall accuracy {self.overall:.{digits}f} "
                f"± {1.96 * self.overall_se:.{digits}f} (95 %), {how}")


def accuracy_summary(confusion: pd.DataFrame, mapped_area=None) -> AccuracySummary:
    """Overall, user's and producer's accuracy of a confusion matrix (rows map, columns reference).

    Without ``mapped_area`` the sample counts are taken as they are (right for a simple random or proportional
    sample). With the map's area per class (any unit) they are the area-weighted estimates of Olofsson et al. 2014
    (eqs. 2–7) that a stratified sample needs: a rare class sampled heavily would otherwise weigh as much as its
    sample, not its area.
    """
    conf = _square(confusion)
    counts = conf.to_numpy()
    classes = list(conf.index)
    weighted = mapped_area is not None
    area = _mapped(mapped_area, classes) if weighted else counts.sum(axis=1).astype(float)
    if counts.sum() == 0:
        raise InputError("the confusion matrix is empty: no validation samples")
    if weighted:
        _check_strata(conf, area)
    est = _estimate(counts, area, classes)
    idx = pd.Index(classes, name="class")
    table = pd.DataFrame({"n_map": counts.sum(axis=1), "n_reference": counts.sum(axis=0),
                          "n_correct": np.diag(counts), "users": est.users, "users_se": est.users_se,
                          "producers": est.producers, "producers_se": est.producers_se}, index=idx)
    return AccuracySummary(overall=est.overall, users=pd.Series(est.users, index=idx, name="users"),
                           producers=pd.Series(est.producers, index=idx, name="producers"), table=table,
                           overall_se=est.overall_se, weighted=weighted, confusion=conf)


def _area_table(est: _Estimate, z: float, conf: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"mapped_area": est.area, "adjusted_area": est.area_adj, "adjusted_area_se": est.area_se,
                         "ci_low": np.maximum(est.area_adj - z * est.area_se, 0.0),
                         "ci_high": est.area_adj + z * est.area_se,
                         "users": est.users, "producers": est.producers,
                         "users_se": est.users_se, "producers_se": est.producers_se,
                         "n_map": conf.to_numpy().sum(axis=1), "n_reference": conf.to_numpy().sum(axis=0)},
                        index=pd.Index(est.classes, name="class"))


def error_adjusted_areas(confusion: pd.DataFrame, mapped_area, *, confidence: float = 0.95) -> pd.DataFrame:
    """Error-adjusted area per class with its confidence interval (Olofsson et al. 2014 eqs. 9–11).

    ``confusion``: sample counts, rows map class (the strata), columns reference class. ``mapped_area``: area of
    each map class (Series or dict, any unit: pixels, m², km²). One row per class with ``mapped_area``,
    ``adjusted_area``, ``adjusted_area_se``, ``ci_low``, ``ci_high`` (``adjusted_area ± z·SE``, the low end
    clipped at 0), ``users``, ``producers``, ``users_se``, ``producers_se``, ``n_map``, ``n_reference``, all areas in
    the unit of ``mapped_area``. ``attrs``: ``overall``, ``overall_se``, ``confidence``, ``z``, ``total_area``.
    """
    z = _z(confidence)
    conf = _square(confusion)
    classes = list(conf.index)
    area = _mapped(mapped_area, classes)
    _check_strata(conf, area)
    est = _estimate(conf.to_numpy(), area, classes)
    out = _area_table(est, z, conf)
    out.attrs.update(overall=est.overall, overall_se=est.overall_se, confidence=confidence, z=z,
                     total_area=float(area.sum()))
    return out


def error_adjusted_areas_by_zone(map_codes, reference_codes, zones, mapped_area_by_zone: pd.DataFrame, *,
                                 confidence: float = 0.95, source=None) -> pd.DataFrame:
    """Error-adjusted areas per zone (county, red-line unit, ...) by post-stratification (module docstring).

    ``map_codes``/``reference_codes``/``zones``: one value per sample unit (the zone each falls in).
    ``mapped_area_by_zone``: rows zone, columns map class, the map's area of each class in each zone (any unit).
    Returns the columns of :func:`error_adjusted_areas` with ``zone`` and ``class`` first and ``borrowed`` (True
    where the class's row was borrowed from the whole area because fewer than 2 of its samples lie in the zone).
    Zones absent from ``mapped_area_by_zone`` are an error; a zone with no sample at all is estimated wholly from
    borrowed rows (flagged).
    """
    z = _z(confidence)
    m = _codes(map_codes, "map class", source)
    r = _codes(reference_codes, "reference class", source)
    zs = pd.Series(list(zones)).map(_norm_code)
    if not (len(m) == len(r) == len(zs)):
        raise InputError(f"{len(m)} map classes, {len(r)} reference classes and {len(zs)} zones", path=source,
                         expected="one of each per sample unit")
    if zs.isna().any():
        raise InputError(f"{int(zs.isna().sum())} sample(s) lie in no zone "
                         f"({_rows(np.flatnonzero(zs.isna().to_numpy()))})",
                         path=source, field="zone", expected="the zone of every sample unit")
    areas = mapped_area_by_zone.copy()
    areas.index = [_norm_code(c) for c in areas.index]
    areas.columns = [_norm_code(c) for c in areas.columns]
    unknown = sorted({str(v) for v in zs if v not in set(areas.index)})
    if unknown:
        raise InputError(f"samples lie in zone(s) {', '.join(unknown[:10])} that have no mapped areas", path=source,
                         field="zone", expected="one of " + ", ".join(str(v) for v in areas.index[:10]))
    total = areas.sum(axis=0)
    glob = confusion_matrix(m, r, classes=_sorted_classes(m + r + [c for c in total.index if total[c] > 0]))
    classes = list(glob.index)
    g_area = _mapped(total, classes)
    _check_strata(glob, g_area, where=" over the whole area")
    g_rows = glob.to_numpy()
    frames = []
    m_arr, r_arr = np.array(m, dtype=object), np.array(r, dtype=object)
    for zone in areas.index:
        sel = (zs == zone).to_numpy()
        conf = confusion_matrix(list(m_arr[sel]), list(r_arr[sel]), classes=classes) if sel.any() else \
            pd.DataFrame(0, index=pd.Index(classes, name="map"), columns=pd.Index(classes, name="reference"))
        area = _mapped(areas.loc[zone], classes, where=f" of zone {zone}")
        if area.sum() <= 0:
            continue
        rows = conf.to_numpy().copy()
        borrow = (area > 0) & (rows.sum(axis=1) < 2)
        rows[borrow] = g_rows[borrow]
        est = _estimate(rows, area, classes)
        used = pd.DataFrame(rows, index=conf.index, columns=conf.columns)
        t = _area_table(est, z, used)
        t["n_map"] = conf.to_numpy().sum(axis=1)
        t["n_reference"] = conf.to_numpy().sum(axis=0)
        t["borrowed"] = borrow
        t.insert(0, "zone", zone)
        frames.append(t.reset_index())
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(confidence=confidence, z=z)
    return out


# -- the validation sample ----------------------------------------------------------------------------------------


def allocate_sample(pixel_counts: pd.Series, n_total: int, *, min_per_class: int = MIN_PER_CLASS,
                    allocation: str = "olofsson") -> pd.Series:
    """Sample units per map class (stratum) for ``n_total`` units in all.

    ``proportional``: ``n_total × W_i``; ``equal``: the same number per class; ``olofsson`` (§5.1.1): every class
    gets at least ``min_per_class`` (or all its pixels, if fewer) and the rest is shared proportionally to area
    among the classes whose proportional share is larger. Rounded by largest remainders so that the numbers add up
    to ``n_total``; no class gets more units than it has pixels.
    """
    if allocation not in ALLOCATIONS:
        raise InputError(f"unknown allocation {allocation!r}", field="allocation", expected=" or ".join(ALLOCATIONS))
    counts = pd.Series(pixel_counts, dtype=float)
    counts = counts[counts > 0]
    n_total = int(n_total)
    cap = counts.to_numpy()
    if n_total < 1:
        raise InputError(f"sample size {n_total} is not positive", field="n_total", expected="at least 1")
    if n_total > cap.sum():
        raise InputError(f"sample size {n_total} exceeds the {int(cap.sum())} classified pixels", field="n_total")
    k = len(counts)
    if allocation == "equal":
        target = np.full(k, n_total / k)
    elif allocation == "proportional":
        target = n_total * cap / cap.sum()
    else:
        floor = np.minimum(min_per_class, cap)
        if floor.sum() > n_total:
            raise InputError(f"sample size {n_total} is less than {int(floor.sum())}, the minimum of "
                             f"{min_per_class} for each of the {k} classes", field="n_total",
                             expected=f"at least {int(floor.sum())}, or a smaller min_per_class")
        fixed = np.zeros(k, dtype=bool)
        while True:
            free = ~fixed
            rest = n_total - floor[fixed].sum()
            target = np.where(fixed, floor, rest * cap / cap[free].sum())
            newly = free & (target < floor)
            if not newly.any():
                break
            fixed |= newly
    # caps first (a class cannot give more units than it has pixels), then largest remainders
    target = np.minimum(target, cap)
    n = np.floor(target).astype(np.int64)
    while n.sum() < n_total:
        room = n < cap
        frac = np.where(room, target - n, -np.inf)
        if not np.isfinite(frac).any():
            break
        best = int(np.argmax(frac))
        if frac[best] <= 0:  # the capped classes left units over: give them to those with room, by area
            best = int(np.argmax(np.where(room, cap - n, -np.inf)))
        n[best] += 1
        target[best] = max(target[best], n[best])
    return pd.Series(n, index=counts.index, name="n_samples")


def _nodata(class_map: xr.DataArray, nodata):
    if nodata is not None:
        return nodata
    for key in ("_FillValue", "nodata"):
        if key in class_map.attrs:
            return class_map.attrs[key]
    try:
        return class_map.rio.nodata
    except Exception:  # no rio accessor metadata
        return None


def _row_bands(class_map: xr.DataArray, nodata, band_rows: int | None):
    """(row offset, 2-D numpy block, valid mask) over bands of rows: memory bounded by one band."""
    arr = class_map
    height = arr.sizes["y"]
    if band_rows is None:
        chunks = arr.chunks
        band_rows = chunks[arr.dims.index("y")][0] if chunks else 512
    for r0 in range(0, height, band_rows):
        block = np.asarray(arr.isel(y=slice(r0, r0 + band_rows)).transpose("y", "x").values)
        valid = np.ones(block.shape, dtype=bool)
        if block.dtype.kind == "f":
            valid &= ~np.isnan(block)
        if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
            valid &= block != nodata
        yield r0, block, valid


def class_pixel_counts(class_map: xr.DataArray, *, nodata=None, band_rows: int | None = None) -> pd.Series:
    """Pixels per class of a class map (nodata and NaN left out), read band by band with bounded memory."""
    total: dict = {}
    for _, block, valid in _row_bands(class_map, _nodata(class_map, nodata), band_rows):
        vals, cnt = np.unique(block[valid], return_counts=True)
        for v, c in zip(vals.tolist(), cnt.tolist()):
            key = _norm_code(v)
            total[key] = total.get(key, 0) + c
    keys = _sorted_classes(total)
    return pd.Series([total[k] for k in keys], index=pd.Index(keys, name="class"), name="pixels", dtype=np.int64)


def propose_validation_sample(class_map: xr.DataArray, n_total: int, *, min_per_class: int = MIN_PER_CLASS,
                              seed: int = 0, allocation: str = "olofsson", nodata=None,
                              band_rows: int | None = None):
    """A stratified random validation sample of ``n_total`` pixels of ``class_map`` for staff to label.

    Strata are the map classes, sizes from :func:`allocate_sample`; within a class the pixels are drawn at random
    without replacement (seeded: the same map and seed give the same points). Two passes over the map in bands of
    rows, so memory does not grow with its size. Returns a GeoDataFrame of pixel centres in the map's CRS with
    ``sample_id``, ``map_class``, ``x``, ``y``, ``lon``, ``lat`` (WGS 84), ``stratum_pixels`` (the class's pixel
    count, what :func:`error_adjusted_areas` needs) and an empty ``reference_class`` to fill in. The rows are in
    random order, so that labelling them in turn does not reveal the map class: hide ``map_class`` from the
    interpreters (Olofsson et al. 2014 §4.2, blind interpretation).
    """
    import geopandas as gpd
    from pyproj import Transformer

    from ..grid import grid_of

    try:
        grid = grid_of(class_map)
    except ValueError as exc:
        raise InputError(str(exc), field="class_map", expected="a georeferenced (y, x) class raster") from None
    nd = _nodata(class_map, nodata)
    counts = class_pixel_counts(class_map, nodata=nd, band_rows=band_rows)
    if counts.empty:
        raise InputError("the class map has no classified pixel (all nodata)", field="class_map")
    alloc = allocate_sample(counts, n_total, min_per_class=min_per_class, allocation=allocation)
    rng = np.random.default_rng(seed)
    picks = {c: np.sort(rng.choice(int(counts[c]), size=int(alloc[c]), replace=False)) for c in alloc.index}
    seen = dict.fromkeys(alloc.index, 0)
    rows, cols, cls = [], [], []
    for r0, block, valid in _row_bands(class_map, nd, band_rows):
        width = block.shape[1]
        for c in alloc.index:
            want = picks[c]
            lo = np.searchsorted(want, seen[c])
            where = np.flatnonzero(valid & (block == c))
            hi = np.searchsorted(want, seen[c] + where.size)
            if hi > lo:
                flat = where[want[lo:hi] - seen[c]]
                rows.append(r0 + flat // width)
                cols.append(flat % width)
                cls.append(np.full(flat.size, c, dtype=object))
            seen[c] += where.size
    rows_a, cols_a, cls_a = np.concatenate(rows), np.concatenate(cols), np.concatenate(cls)
    canon = np.lexsort((cols_a, rows_a))          # row-major, whatever the band size, then a seeded shuffle
    order = canon[rng.permutation(rows_a.size)]
    rows_a, cols_a, cls_a = rows_a[order], cols_a[order], cls_a[order]
    t = grid.transform
    x = t.c + (cols_a + 0.5) * t.a
    y = t.f + (rows_a + 0.5) * t.e
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    out = gpd.GeoDataFrame({"sample_id": np.arange(1, rows_a.size + 1), "map_class": list(cls_a), "x": x, "y": y,
                            "lon": np.round(lon, 7), "lat": np.round(lat, 7),
                            "stratum_pixels": [int(counts[c]) for c in cls_a],
                            "reference_class": pd.array([pd.NA] * rows_a.size, dtype="Int64")},
                           geometry=gpd.points_from_xy(x, y), crs=grid.crs)
    out.attrs["allocation"] = alloc.to_dict()
    out.attrs["pixel_counts"] = counts.to_dict()
    return out


# -- independent training / validation split ----------------------------------------------------------------------


def group_split(samples: pd.DataFrame, group_col: str, test_share: float, seed: int = 0, *,
                class_col: str = "class_code") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, validation): a split stratified by class in which no group (polygon) has samples on both sides.

    Each group goes wholly to one side (its class is the most frequent class of its samples). Per class, groups are
    taken in a seeded random order into the validation side while that brings its share of the class's samples
    closer to ``test_share``; a class with at least two groups always has one on each side. A class with a single
    group stays wholly in training (it cannot be validated independently): ``validation.attrs["unvalidated"]``
    lists such classes.
    """
    for col in (group_col, class_col):
        if col not in samples.columns:
            raise InputError(f"no column {col!r} in the samples (columns: {', '.join(map(str, samples.columns))})",
                             field=col, expected="the polygon id and class columns")
    if not 0 < test_share < 1:
        raise InputError(f"test share {test_share!r} is not between 0 and 1", field="test_share",
                         expected="e.g. 0.3")
    groups = samples[group_col].map(_norm_code)
    labels = samples[class_col].map(_norm_code)
    for col, ser in ((group_col, groups), (class_col, labels)):
        if ser.isna().any():
            raise InputError(f"{int(ser.isna().sum())} sample(s) have no {col} "
                             f"({_rows(np.flatnonzero(ser.isna().to_numpy()))})",
                             field=col, expected="a value in every row")
    key = groups.astype(str)
    size = key.value_counts()
    major = (pd.DataFrame({"g": key, "c": labels.astype(str)}).groupby("g")["c"]
             .agg(lambda s: s.value_counts().sort_index().idxmax()))
    rng = np.random.default_rng(seed)
    test_groups, unvalidated = set(), []
    for c in sorted(major.unique()):
        gs = sorted(major.index[major == c])
        if len(gs) < 2:
            unvalidated.append(c)
            continue
        gs = [gs[i] for i in rng.permutation(len(gs))]
        target = test_share * sum(size[g] for g in gs)
        taken = 0
        for k, g in enumerate(gs):
            last_for_training = k == len(gs) - 1
            if last_for_training:
                break
            if taken == 0 or abs(taken + size[g] - target) < abs(taken - target):
                test_groups.add(g)
                taken += size[g]
    is_test = key.isin(test_groups).to_numpy()
    train, test = samples.iloc[~is_test].copy(), samples.iloc[is_test].copy()
    test.attrs["unvalidated"] = unvalidated
    return train, test
