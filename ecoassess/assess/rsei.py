"""Remote Sensing Ecological Index (RSEI; Xu 2013, STANDARDS §3) on the analysis grid, at any scale.

Steps (settings and class tables in ``indices/rsei.yaml``):

1. Indicators: greenness NDVI, wetness WET (the sensor's tasseled-cap wetness), heat LST (°C, Landsat C2 ST),
   dryness NDBSI = (SI + IBI)/2 — all from the index catalog.
2. Mask cloud/shadow (the composite's clear pixels) and water (MNDWI > threshold, or Otsu's threshold); an
   indicator outside its catalog ``valid_range`` is NaN and its pixel is counted as invalid (``RseiResult.invalid``).
3. Normalise each indicator to [0, 1] with its 0.5 %/99.5 % quantiles (clipped; default) or its min/max over the
   valid pixels of the study area — exact streaming quantiles (``ecoassess.stats``).
4. PCA on the covariance of the four normalised layers (exact streaming covariance); PC1 loadings.
5. Sign: PC1 is flipped **as a whole** by the documented rule (STANDARDS §3.4; Xu & Deng 2022): RSEI0 = 1 − PC1
   only when NDVI and WET both load negatively (when they disagree, NDVI decides); loadings that still disagree
   with the expected signs are reported in ``rsei_pca`` (``loadings_as_expected``, ``warnings``).
   (:func:`orient_pc1`; a rule on the sum of all four signs inverted a mostly-sea scene without a water mask.)
6. RSEI0 = PC1 score; RSEI = (RSEI0 − min)/(max − min) over the valid pixels; five grades.

For two years a joint PCA (normalisation bounds, covariance and rescaling over both years' pixels) keeps the
years comparable; ΔRSEI and change classes by grade difference follow.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import dask.array as da
import numpy as np
import xarray as xr

from ecoassess.catalog import data_path, load_yaml
from ecoassess.assess import rsei_kernels as kernels
from ecoassess.errors import AllMaskedError, EcoassessError, InputError
from ecoassess.materialize import materialize

log = logging.getLogger(__name__)

INDICATORS = ("greenness", "wetness", "heat", "dryness")


class RseiWarning(UserWarning):
    """Something about an RSEI run a reader of its results must know (low variance, unexpected loadings)."""


@lru_cache(maxsize=None)
def rsei_spec() -> dict:
    """``indices/rsei.yaml``: indicators, wetness per sensor, normalisation, grades, change classes."""
    return load_yaml(data_path("indices", "rsei.yaml"))


@dataclass(frozen=True)
class RseiSettings:
    normalisation: str = "percentile"          # 'percentile' | 'minmax'
    lower_quantile: float = 0.005
    upper_quantile: float = 0.995
    water_mask: str = "mndwi"                  # 'mndwi' | 'otsu' | 'none'
    mndwi_threshold: float = 0.0
    wetness_index: str | None = None           # default: by sensor from indices/rsei.yaml

    @classmethod
    def from_spec(cls, **overrides) -> "RseiSettings":
        spec = rsei_spec()
        pct = spec["normalisation"]["percentile"]
        base = dict(normalisation=spec["normalisation"]["default"], lower_quantile=pct["lower"],
                    upper_quantile=pct["upper"], water_mask=spec["water_mask"]["default"],
                    mndwi_threshold=spec["water_mask"]["mndwi_threshold"])
        base.update({k: v for k, v in overrides.items() if v is not None})
        if base["normalisation"] not in ("percentile", "minmax"):
            raise InputError(f"unknown RSEI normalisation {base['normalisation']!r}", field="normalisation",
                             expected="percentile | minmax")
        if base["water_mask"] not in ("mndwi", "otsu", "none"):
            raise InputError(f"unknown RSEI water mask {base['water_mask']!r}", field="water_mask",
                             expected="mndwi | otsu | none")
        return cls(**base)


@dataclass
class RseiResult:
    """One year's RSEI (or one year of a joint run) and everything needed to explain it."""

    year: int | None
    rsei: xr.DataArray                         # float32 in [0, 1], NaN where masked/nodata
    grade: xr.DataArray                        # uint8 1..5 (差 … 优), 0 = no value
    indicators: xr.Dataset                     # raw indicators (ndvi, wet, lst_celsius, ndbsi)
    valid: xr.DataArray                        # bool: pixels that entered the PCA
    water: xr.DataArray | None
    loadings: dict[str, float]
    eigenvalues: list[float]
    pc1_share: float
    flipped: bool
    flip_reason: str                           # why PC1 was (not) flipped, by the documented rule
    bounds: dict[str, tuple[float, float]]     # normalisation bounds per indicator
    rsei0_range: tuple[float, float]
    n_pixels: int
    settings: RseiSettings
    wetness_index: str
    joint: bool = False
    warnings: list[str] = field(default_factory=list)
    cache: object = field(default=None, repr=False)   # keeps materialised indicators alive while layers are used
    #: bool: pixels of ``valid`` given to compute_rsei (clear, inside, not water) left out because an indicator lies
    #: outside its catalog valid_range (NaN in ``indicators`` and ``rsei``)
    invalid: xr.DataArray | None = None

    def summary(self) -> dict:
        """Loadings, eigenvalues, PC1 contribution and settings, for tables and the manifest."""
        return {"year": self.year, "loadings": self.loadings, "eigenvalues": self.eigenvalues,
                "pc1_share": self.pc1_share, "pc1_flipped": self.flipped, "pc1_flip_reason": self.flip_reason,
                "normalisation": self.settings.normalisation,
                "normalisation_quantiles": [self.settings.lower_quantile, self.settings.upper_quantile]
                if self.settings.normalisation == "percentile" else None,
                "bounds": {k: list(v) for k, v in self.bounds.items()}, "rsei0_range": list(self.rsei0_range),
                "n_pixels": self.n_pixels, "wetness_index": self.wetness_index, "water_mask": self.settings.water_mask,
                "joint_pca": self.joint, "warnings": list(self.warnings)}


# -- indicators -------------------------------------------------------------------------------------------------

def wetness_index_for(sensor: str) -> str:
    """The catalog entry that gives WET for ``sensor`` (``indices/rsei.yaml: wetness_by_sensor``)."""
    table = rsei_spec()["wetness_by_sensor"]
    key = sensor.lower().replace("-", "").replace("_", "")
    for name, index in table.items():
        if key.startswith(name):
            return index
    raise InputError(f"no tasseled-cap wetness coefficients are known for sensor '{sensor}'", field="sensor",
                     expected=f"one of {', '.join(table)} (or give wetness_index=...)")


def rsei_indicators(bands: xr.Dataset, thermal_k: xr.DataArray | None, *, sensor: str,
                    wetness_index: str | None = None) -> xr.Dataset:
    """NDVI, WET, LST (°C) and NDBSI from surface reflectance ``bands`` and surface temperature in kelvin."""
    from ecoassess.spectral import load_catalog

    catalog = load_catalog()
    wet_name = wetness_index or wetness_index_for(sensor)
    if thermal_k is None:
        raise InputError("RSEI needs a thermal layer (Landsat C2 surface temperature) for its heat component",
                         field="thermal", expected="a Landsat C2 L2 product or an ST GeoTIFF for the same year")
    missing = [b for b in catalog[wet_name].bands if b not in bands]
    if missing:
        raise InputError(f"wetness {wet_name} needs band role(s) {', '.join(missing)} that the imagery lacks",
                         field=", ".join(missing), expected=f"bands {', '.join(catalog[wet_name].bands)}")
    # the four indicators in one compiled program per chunk (LST from the thermal layer on the same grid)
    found = catalog.compute_many(["NDVI", wet_name, "LST", "NDBSI"], {**bands, "thermal": thermal_k})
    layers = {"ndvi": found["NDVI"], "wet": found[wet_name], "lst_celsius": found["LST"], "ndbsi": found["NDBSI"]}
    out = xr.Dataset(layers)
    out.attrs.update({"wetness_index": wet_name, "sensor": sensor})
    return out


def water_mask(bands: xr.Dataset, valid: xr.DataArray, settings: RseiSettings) -> xr.DataArray | None:
    """Open water by MNDWI (Xu 2006): MNDWI > threshold, or Otsu's threshold on the valid pixels' MNDWI."""
    from ecoassess.spectral import load_catalog

    if settings.water_mask == "none":
        return None
    mndwi = load_catalog().compute_many(["MNDWI"], bands)["MNDWI"]
    threshold = settings.mndwi_threshold
    if settings.water_mask == "otsu":
        threshold = otsu_threshold(mndwi, valid)
        log.info("RSEI water mask: Otsu threshold on MNDWI = %.4f", threshold)
    return (mndwi > threshold) & valid


def otsu_threshold(layer: xr.DataArray, valid: xr.DataArray, bins: int = 1024, value_range=(-1.0, 1.0)) -> float:
    """Otsu (1979) threshold maximising between-class variance, from a streaming histogram of valid pixels."""
    data = _dask(layer)
    keep = _dask(valid) & da.isfinite(data)
    values = da.where(keep, da.clip(data, *value_range), np.nan)
    hist, edges = da.histogram(values, bins=bins, range=value_range)
    hist = hist.compute().astype("float64")
    if hist.sum() == 0:
        raise AllMaskedError("no valid pixel for the Otsu water threshold", field="mndwi")
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = hist.sum() - w0
    m0 = np.cumsum(hist * centres)
    mu0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mu1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][int(np.argmax(between))])


# -- the index --------------------------------------------------------------------------------------------------

def compute_rsei(indicators, valid, *, settings: RseiSettings | None = None, years=None,
                 water=None) -> list[RseiResult] | RseiResult:
    """RSEI for one year (Datasets/DataArrays) or jointly for several (lists of them, same grid).

    ``indicators``: Dataset(s) from :func:`rsei_indicators`; ``valid``: bool layer(s) of pixels to use (clear,
    inside the study area, not water). With lists, normalisation bounds, PCA and rescaling are computed over
    all years together (joint PCA) and a list of results is returned.
    """
    from ecoassess.stats import QuantileRefinement, range_reduction, range_results, streaming_range

    settings = settings or RseiSettings.from_spec()
    joint = isinstance(indicators, (list, tuple))
    inds = list(indicators) if joint else [indicators]
    valids = list(valid) if joint else [valid]
    waters = list(water) if isinstance(water, (list, tuple)) else [water] * len(inds)
    years = list(years) if years is not None else [None] * len(inds)
    names = list(inds[0].data_vars)
    spec = rsei_spec()
    expected = {"ndvi": spec["indicators"]["greenness"]["sign"], "wet": spec["indicators"]["wetness"]["sign"],
                "lst_celsius": spec["indicators"]["heat"]["sign"], "ndbsi": spec["indicators"]["dryness"]["sign"]}
    notes: list[str] = []

    # pixels valid in every indicator; the indicators are computed once (one read of the bands) and kept for the
    # later passes, and the first pass of the normalisation bounds (§3: percentiles, or min/max) runs in that
    # same read: a histogram from the catalog's valid ranges (values outside them stay exact), or the ranges
    # an indicator outside its catalog valid_range (NDVI 206 from red −0.010, nir 0.0101) is not a measurement:
    # NaN, so it neither enters the PCA nor stretches the min–max normalisation of every other pixel (issue 18,
    # item 5); the pixels it takes out are counted as invalid
    invalid = [v & _any_outside(ds) for ds, v in zip(inds, valids)]
    inds = [_bounded(ds) for ds in inds]
    usable = [v & _all_finite(ds) for ds, v in zip(inds, valids)]
    percentile = settings.normalisation == "percentile"
    refinement = None
    if percentile:
        ranges = {n: inds[0][n].attrs["valid_range"] for n in names if "valid_range" in inds[0][n].attrs}
        refinement = QuantileRefinement(names, [inds[0][n].dtype for n in names],
                                        [settings.lower_quantile, settings.upper_quantile], value_ranges=ranges)
    first_pass = [(refinement.next_reduction([ds[n] for n in names], ~u) if percentile
                   else range_reduction([ds[n] for n in names], mask=~u)) for ds, u in zip(inds, usable)]
    caches = [materialize({**{n: ds[n] for n in names}, "_usable": u, "_invalid": bad}, reductions=[first])
              for ds, u, bad, first in zip(inds, usable, invalid, first_pass)]
    inds = [xr.Dataset({n: c[n] for n in names}, attrs=ds.attrs) for c, ds in zip(caches, inds)]
    usable = [c["_usable"] for c in caches]
    invalid = [c["_invalid"] for c in caches]
    first_values = [c.reductions[0] for c in caches]
    # every task of the first pass counts the valid values of its layer; the first layer's count is the number of
    # usable pixels (usable implies finite in all four indicators)
    n_pixels = [int(v[0][0]) for v in first_values]
    empty = [str(y) if y is not None else f"#{i + 1}" for i, (y, n) in enumerate(zip(years, n_pixels)) if n == 0]
    if empty:  # one empty year of a joint PCA would give NaN tables for it, silently
        raise AllMaskedError(f"no pixel is clear, non-water and valid in all four RSEI indicators (NDVI, WET, LST, "
                             f"NDBSI) in year(s) {', '.join(empty)}: a thermal band without data, or all masked",
                             field="rsei", expected="clear land pixels in the study area")

    # 3. normalisation bounds over all valid pixels (all years when joint), the four indicators in the same passes
    min_range = float(spec["low_variance"]["min_range"])
    if percentile:
        refinement.take(*first_values)
        found = refinement.run([_stack([ds[n] for ds in inds]) for n in names], mask=~_stack(usable))
    else:
        found = {name: r[1:] for name, r in zip(names, range_results(*first_values))}
    bounds: dict[str, tuple[float, float]] = {name: (float(found[name][0]), float(found[name][1])) for name in names}
    for name, (lo, hi) in bounds.items():
        if not hi - lo > min_range:
            notes.append(f"{name} is (nearly) constant over the valid pixels (range {hi - lo:.3g}); "
                         "its normalised layer is set to 0 and it carries no weight in the PCA")
    normalised = [_normalise(ds, bounds, settings, min_range) for ds in inds]

    # 4. PCA on the covariance of the normalised layers
    cov = _joint_covariance(normalised, usable, names)
    eigenvalues, vectors = cov.pca()
    total = float(np.sum(np.clip(eigenvalues, 0, None)))
    if total <= 0:
        raise EcoassessError("the four normalised RSEI indicators have no variance over the valid pixels; "
                             "RSEI cannot be computed (a uniform scene?)")
    pc1 = vectors[:, 0].copy()
    # 5. whole-component sign, by the documented rule
    flipped, flip_reason = orient_pc1({n: float(pc1[i]) for i, n in enumerate(names)})
    if flipped:
        pc1 = -pc1
    wrong = [n for i, n in enumerate(names) if abs(pc1[i]) > 1e-9 and np.sign(pc1[i]) != expected[n]]
    if wrong:
        notes.append(f"PC1 loadings of {', '.join(wrong)} have the unexpected sign after orienting PC1 "
                     "(NDVI, WET should be positive; LST, NDBSI negative); RSEI may not measure ecology here")
    min_raw = spec["low_variance"].get("min_raw_range", {})
    for name in names:
        spread = bounds[name][1] - bounds[name][0]
        if name in min_raw and min_range < spread < float(min_raw[name]):
            notes.append(f"low variance: {name} spans only {spread:.4g} between its normalisation bounds "
                         f"(< {min_raw[name]}); normalising stretches noise to [0, 1], so its share in PC1 "
                         "says little about ecology here")
    loadings = {n: float(pc1[i]) for i, n in enumerate(names)}
    pc1_share = float(max(eigenvalues[0], 0) / total)

    # 6. RSEI0 = PC1 score, rescaled to [0, 1] over all valid pixels
    rsei0 = [_score(ds, names, u, bounds, settings, min_range, pc1) for ds, u in zip(inds, usable)]
    _, lo0, hi0 = streaming_range(_stack(rsei0))
    if not hi0 - lo0 > 0:
        raise EcoassessError("RSEI0 is constant over the valid pixels; RSEI cannot be rescaled")
    for note in notes:
        warnings.warn(f"RSEI: {note}", RseiWarning, stacklevel=2)
    results = []
    for ds, r0, u, w, n, year, cache, bad in zip(inds, rsei0, usable, waters, n_pixels, years, caches, invalid):
        rsei = r0.copy(data=da.map_blocks(kernels.rescale, r0.data, lo0, hi0, dtype="float32"))
        rsei.attrs = {"long_name": "remote sensing ecological index", "units": "1"}
        rsei.name = "rsei"
        results.append(RseiResult(
            year=year, rsei=rsei, grade=rsei_grade(rsei), indicators=ds, valid=u, water=w, loadings=loadings,
            eigenvalues=[float(e) for e in eigenvalues], pc1_share=pc1_share, flipped=bool(flipped),
            flip_reason=flip_reason, bounds=bounds,
            rsei0_range=(float(lo0), float(hi0)), n_pixels=n, settings=settings,
            wetness_index=ds.attrs.get("wetness_index", ""), joint=joint and len(inds) > 1, warnings=list(notes),
            cache=cache, invalid=bad))
    return results if joint else results[0]


def orient_pc1(loadings: dict[str, float]) -> tuple[bool, str]:
    """Whether to flip PC1 as a whole, and why (STANDARDS §3.4; Xu 2013, Xu & Deng 2022): RSEI0 = 1 − PC1 only
    when the greenness (NDVI) and wetness (WET) indicators both load negatively; when the two disagree, NDVI
    decides (the greenness indicator is the one every RSEI study keeps). LST and NDBSI do not vote: over water or
    bare land they can outweigh NDVI and WET in a sum of signs and invert the whole RSEI."""
    ndvi, wet = loadings.get("ndvi", 0.0), loadings.get("wet", 0.0)
    if ndvi < 0 and wet < 0:
        return True, f"NDVI ({ndvi:+.3f}) and WET ({wet:+.3f}) load negatively: RSEI0 = 1 − PC1"
    if ndvi >= 0 and wet >= 0:
        return False, f"NDVI ({ndvi:+.3f}) and WET ({wet:+.3f}) load positively: RSEI0 = PC1"
    flip = ndvi < 0
    return flip, (f"NDVI ({ndvi:+.3f}) and WET ({wet:+.3f}) disagree: oriented so that NDVI loads positively"
                  + (": RSEI0 = 1 − PC1" if flip else ": RSEI0 = PC1"))


def rsei_grade(rsei: xr.DataArray) -> xr.DataArray:
    """Grade codes 1..5 from ``indices/rsei.yaml`` ([0,0.2) 差 … [0.8,1] 优); 0 where RSEI is NaN."""
    grades = rsei_spec()["grades"]
    dtype = rsei.dtype if rsei.dtype.kind == "f" else np.dtype("float64")
    # class limits in the layer's own precision, as numpy compares a float32 layer with a Python float
    lowers = np.array([g["lower"] for g in grades], dtype)
    uppers = np.array([g["upper"] for g in grades], dtype)
    codes = np.array([g["code"] for g in grades], "uint8")
    data = rsei.data if isinstance(rsei.data, da.Array) else da.from_array(np.asarray(rsei.data), chunks=1024)
    out = rsei.copy(data=da.map_blocks(kernels.grade, data.astype(dtype), lowers, uppers, codes, dtype="uint8"))
    out.attrs = {"long_name": "RSEI grade", "nodata": 0,
                 "classes": {g["code"]: g["zh"] for g in grades}}
    out.name = "rsei_grade"
    return out


def rsei_change(base: RseiResult, current: RseiResult) -> tuple[xr.DataArray, xr.DataArray]:
    """ΔRSEI (current − base) and change class codes (−2..2, by grade difference; ``indices/rsei.yaml``)."""
    delta = (current.rsei - base.rsei).astype("float32")
    delta.attrs = {"long_name": "RSEI change", "units": "1",
                   "joint_pca": current.joint and base.joint}
    delta.name = "rsei_change"
    diff = current.grade.astype("int16") - base.grade.astype("int16")
    both = (current.grade > 0) & (base.grade > 0)
    classes = xr.full_like(diff, -99, dtype="int16")
    for c in rsei_spec()["change_classes"]:
        classes = classes.where(~(both & (diff >= c["min_grade_change"]) & (diff <= c["max_grade_change"])),
                                np.int16(c["code"]))  # DataArray.where keeps the grid's coordinate attributes
    classes = classes.astype("int16")
    classes.attrs = {"long_name": "RSEI change class", "nodata": -99}
    classes.name = "rsei_change_class"
    if not (current.joint and base.joint):
        warnings.warn("ΔRSEI between separately computed PCAs is not strictly comparable; use a joint PCA",
                      RseiWarning, stacklevel=2)
    return delta, classes


# -- helpers ----------------------------------------------------------------------------------------------------

def _dask(arr):
    data = arr.data if isinstance(arr, xr.DataArray) else arr
    return data if isinstance(data, da.Array) else da.from_array(np.asarray(data), chunks=1024)


def _stack(layers):
    datas = [_dask(a) for a in layers]
    return datas[0] if len(datas) == 1 else da.concatenate(datas, axis=0)


def _any_outside(ds: xr.Dataset) -> xr.DataArray:
    """Bool: any indicator outside its catalog ``valid_range`` attribute (NaN is never outside)."""
    from ecoassess.spectral import outside_valid_range

    out = None
    for name in ds.data_vars:
        o = outside_valid_range(ds[name])
        out = o if out is None else out | o
    return out


def _bounded(ds: xr.Dataset) -> xr.Dataset:
    """Every indicator with NaN outside its catalog ``valid_range`` (those without one unchanged)."""
    from ecoassess.spectral import bound_to_valid_range

    return xr.Dataset({n: bound_to_valid_range(ds[n]) for n in ds.data_vars}, attrs=ds.attrs)


def _all_finite(ds: xr.Dataset) -> xr.DataArray:
    out = None
    for name in ds.data_vars:
        f = np.isfinite(ds[name])
        out = f if out is None else out & f
    return out


def _normalise(ds: xr.Dataset, bounds, settings: RseiSettings, min_range: float) -> xr.Dataset:
    """Each indicator mapped to [0, 1] with its bounds (:func:`rsei_kernels.normalise`)."""
    out = {}
    clip = settings.normalisation == "percentile"
    for name in ds.data_vars:
        lo, hi = bounds[name]
        data = da.map_blocks(kernels.normalise, _dask(ds[name]), lo, hi, clip, not hi - lo > min_range,
                             dtype="float32")
        out[name] = ds[name].copy(data=data)
    return xr.Dataset(out)


def _joint_covariance(normalised, usable, names):
    from ecoassess.stats import streaming_covariance

    layers = [_stack([ds[n] for ds in normalised]) for n in names]
    return streaming_covariance(layers, mask=~_stack(usable))


def _score(ds: xr.Dataset, names, usable: xr.DataArray, bounds, settings: RseiSettings, min_range: float,
           pc1) -> xr.DataArray:
    """RSEI0 = Σ PC1_j · normalised_j where ``usable`` (float64), NaN elsewhere, normalising on the fly."""
    xs = da.stack([_dask(ds[n]) for n in names])
    u = _dask(usable).rechunk(xs.chunks[1:])
    lo = np.array([bounds[n][0] for n in names], np.float64)
    hi = np.array([bounds[n][1] for n in names], np.float64)
    constant = np.array([not bounds[n][1] - bounds[n][0] > min_range for n in names])
    data = da.map_blocks(kernels.pc1_score, xs, u, lo, hi, settings.normalisation == "percentile", constant,
                         np.asarray(pc1, np.float64), dtype="float64", drop_axis=0)
    return ds[names[0]].copy(data=data)
