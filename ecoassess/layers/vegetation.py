"""Vegetation layers: NDVI and fractional vegetation cover (FVC) by the pixel dichotomy model.

NDVI = (NIR − Red) / (NIR + Red)                                         (Rouse et al. 1974; STANDARDS §3.1)
FVC  = (NDVI − NDVI_soil) / (NDVI_veg − NDVI_soil), clipped to [0, 1]    (STANDARDS §4, linear dichotomy)
NDVI_soil, NDVI_veg = the 5 % and 95 % NDVI quantiles of the valid pixels of the region (cloud- and
water-masked), computed exactly in a streaming pass (:func:`ecoassess.stats.streaming_quantiles`).
"""

from __future__ import annotations

from dataclasses import dataclass

import xarray as xr

from ecoassess.errors import AllMaskedError

FVC_LOWER_QUANTILE = 0.05
FVC_UPPER_QUANTILE = 0.95
#: End-members closer than this give an FVC that stretches a narrow NDVI range to 0–1 [C: project choice; full
#: cover is NDVI ≈ 0.86, bare soil ≈ 0.2 (Carlson & Ripley 1997, STANDARDS §4): a spread under a quarter of that
#: span says the region holds almost no vegetation gradient] — the audit's desert tile had 0.048/0.084.
MIN_ENDMEMBER_SPREAD = 0.2
#: A 95 % NDVI below this is far from full vegetation cover [C: project choice, from the same reference values].
MIN_NDVI_VEG = 0.5


def ndvi(bands: xr.Dataset) -> xr.DataArray:
    """NDVI from the ``nir`` and ``red`` reflectance of ``bands`` (float32, NaN where either is missing or where
    nir + red = 0): the catalog's NDVI (``indices/spectral.yaml``), evaluated per chunk by the compiled program."""
    from ecoassess.spectral import load_catalog

    computed = load_catalog().compute_many(["NDVI"], {"red": bands["red"], "nir": bands["nir"]})["NDVI"]
    out = computed.copy()
    out.attrs = {**bands["red"].attrs, **computed.attrs}
    out.name = "ndvi"
    return out


@dataclass(frozen=True)
class FvcEndmembers:
    """The soil and full-vegetation NDVI of the dichotomy model and where they came from."""

    ndvi_soil: float
    ndvi_veg: float
    n_pixels: int
    method: str = "5 %/95 % quantiles of valid NDVI (STANDARDS §4)"


def fvc_endmembers(ndvi_layer: xr.DataArray, valid: xr.DataArray) -> FvcEndmembers:
    """NDVI_soil and NDVI_veg: the exact 5 % and 95 % quantiles of NDVI over ``valid`` pixels."""
    from ecoassess.stats import QuantileRefinement

    # NDVI's range (-1, 1) starts the histogram at once (a value outside it, from negative reflectance, stays
    # exact); the passes also count the valid pixels
    refinement = QuantileRefinement(["ndvi"], [ndvi_layer.dtype], [FVC_LOWER_QUANTILE, FVC_UPPER_QUANTILE],
                                    value_ranges={"ndvi": (-1.0, 1.0)})
    try:
        lo, hi = refinement.run([ndvi_layer], mask=~valid)["ndvi"]
    except AllMaskedError:
        raise AllMaskedError("no valid NDVI pixel in the region (all cloud, water, nodata or outside)",
                             field="ndvi", expected="at least one clear land pixel") from None
    return FvcEndmembers(float(lo), float(hi), refinement.counts["ndvi"])


def endmember_warning(endmembers: FvcEndmembers) -> str:
    """A sentence when fitted end-members make FVC meaningless (:data:`MIN_ENDMEMBER_SPREAD`,
    :data:`MIN_NDVI_VEG`), else ''. Fixed end-members (``fvc.ndvi_soil``/``ndvi_veg``) are the user's choice."""
    if endmembers.method.startswith("fixed"):
        return ""
    soil, veg = endmembers.ndvi_soil, endmembers.ndvi_veg
    advice = "FVC means little here; fix the end-members for the area (fvc.ndvi_soil, fvc.ndvi_veg)"
    if veg - soil < MIN_ENDMEMBER_SPREAD:
        return (f"NDVI_soil {soil:.3f} and NDVI_veg {veg:.3f} are only {veg - soil:.3f} apart "
                f"(< {MIN_ENDMEMBER_SPREAD}): a mostly bare or uniform area; {advice}")
    if veg < MIN_NDVI_VEG:
        return f"NDVI_veg {veg:.3f} is far below full vegetation cover (< {MIN_NDVI_VEG}); {advice}"
    return ""


def fvc(ndvi_layer: xr.DataArray, endmembers: FvcEndmembers) -> xr.DataArray:
    """Fractional vegetation cover in [0, 1] (STANDARDS §4, linear pixel dichotomy)."""
    span = endmembers.ndvi_veg - endmembers.ndvi_soil
    if not span > 0:
        raise AllMaskedError(
            f"NDVI has no spread over the valid pixels (5 % = 95 % = {endmembers.ndvi_soil:.4f}); "
            "the dichotomy model needs distinct soil and vegetation NDVI", field="ndvi")
    out = ((ndvi_layer - endmembers.ndvi_soil) / span).clip(0.0, 1.0).astype("float32")
    out.attrs.update({"long_name": "fractional vegetation cover", "units": "1",
                      "formula": "(ndvi - ndvi_soil) / (ndvi_veg - ndvi_soil), clipped to [0, 1]",
                      "ndvi_soil": endmembers.ndvi_soil, "ndvi_veg": endmembers.ndvi_veg})
    out.name = "fvc"
    return out
