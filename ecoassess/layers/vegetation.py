"""Vegetation layers: NDVI and fractional vegetation cover (FVC) by the pixel dichotomy model.

NDVI = (NIR − Red) / (NIR + Red)                                         (Rouse et al. 1974; STANDARDS §3.1)
FVC  = (NDVI − NDVI_soil) / (NDVI_veg − NDVI_soil), clipped to [0, 1]    (STANDARDS §4, linear dichotomy)
NDVI_soil, NDVI_veg = the 5 % and 95 % NDVI quantiles of the valid pixels of the region (cloud- and
water-masked), computed exactly in a streaming pass (:func:`ecoassess.stats.streaming_quantiles`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ecoassess.errors import AllMaskedError

FVC_LOWER_QUANTILE = 0.05
FVC_UPPER_QUANTILE = 0.95


def normalized_difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """(a − b) / (a + b); a zero denominator gives NaN, never ±inf."""
    total = a + b
    out = xr.where(total != 0, (a - b) / total.where(total != 0), np.nan)
    return out.astype("float32")


def ndvi(bands: xr.Dataset) -> xr.DataArray:
    """NDVI from the ``nir`` and ``red`` reflectance of ``bands`` (float32, NaN where either is missing)."""
    out = normalized_difference(bands["nir"], bands["red"])
    out.attrs.update(bands["red"].attrs)
    out.attrs.update({"long_name": "NDVI", "units": "1", "formula": "(nir - red) / (nir + red)"})
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
    from ecoassess.stats import streaming_quantiles

    n_valid = int((valid & np.isfinite(ndvi_layer)).sum().compute())
    if n_valid == 0:
        raise AllMaskedError("no valid NDVI pixel in the region (all cloud, water, nodata or outside)",
                             field="ndvi", expected="at least one clear land pixel")
    lo, hi = streaming_quantiles(ndvi_layer, [FVC_LOWER_QUANTILE, FVC_UPPER_QUANTILE], mask=~valid)
    return FvcEndmembers(float(lo), float(hi), n_valid)


def fvc(ndvi_layer: xr.DataArray, endmembers: FvcEndmembers) -> xr.DataArray:
    """Fractional vegetation cover in [0, 1] (STANDARDS §4, linear pixel dichotomy)."""
    span = endmembers.ndvi_veg - endmembers.ndvi_soil
    if not span > 0:
        raise AllMaskedError(
            f"NDVI has no spread over the valid pixels (5 % = 95 % = {endmembers.ndvi_soil:.4f}); "
            "the dichotomy model needs distinct soil and vegetation NDVI", field="ndvi")
    out = ((ndvi_layer - endmembers.ndvi_soil) / span).clip(0.0, 1.0).astype("float32")
    out.attrs.update({k: v for k, v in ndvi_layer.attrs.items() if k == "grid"})
    out.attrs.update({"long_name": "fractional vegetation cover", "units": "1",
                      "formula": "(ndvi - ndvi_soil) / (ndvi_veg - ndvi_soil), clipped to [0, 1]",
                      "ndvi_soil": endmembers.ndvi_soil, "ndvi_veg": endmembers.ndvi_veg})
    out.name = "fvc"
    return out
