"""Vegetation change between two dates (issue 18 item 7): ΔNDVI, ΔFVC with one pair of end-members, change classes.

ΔNDVI = NDVI_after − NDVI_before; ΔFVC = FVC_after − FVC_before, both FVC from the SAME end-members
(STANDARDS §4: end-members re-fitted for each date can move FVC against NDVI — issue 18 item 6 saw NDVI fall
0.725 → 0.698 across a mud flow while FVC rose 0.748 → 0.754). When the config does not fix them, they are the
5 %/95 % quantiles of the valid NDVI of both dates pooled (:func:`pooled_fvc_endmembers`).
Classes (−2..2) and their breaks: ``indices/vegetation_change.yaml`` (a project convention, configurable).
"""

from __future__ import annotations

from functools import lru_cache

import dask.array as da
import numpy as np
import xarray as xr

from ecoassess.errors import AllMaskedError
from ecoassess.layers.vegetation import FVC_LOWER_QUANTILE, FVC_UPPER_QUANTILE, FvcEndmembers

#: the ``method`` of end-members fitted on both dates together
POOLED_METHOD = "5 %/95 % quantiles of the valid NDVI of both dates pooled (STANDARDS §4)"


@lru_cache(maxsize=None)
def change_spec() -> dict:
    """``indices/vegetation_change.yaml``: default breaks of ΔNDVI and ΔFVC, the five classes, nodata."""
    from ecoassess.catalog import data_path, load_yaml

    return load_yaml(data_path("indices", "vegetation_change.yaml"))


def default_breaks(quantity: str) -> tuple[float, float, float, float]:
    """The shipped breaks of ``quantity`` ('ndvi' or 'fvc')."""
    return tuple(float(b) for b in change_spec()[quantity]["breaks"])


def classify_change(delta: xr.DataArray, breaks, *, name: str = "change_class") -> xr.DataArray:
    """Change class codes (int16) of ``delta`` by four ``breaks`` b0 < b1 <= 0 <= b2 < b3: −2 where Δ <= b0,
    −1 where b0 < Δ <= b1, 0 where b1 < Δ < b2, 1 where b2 <= Δ < b3, 2 where Δ >= b3 (a change equal to a break
    belongs to the larger change, as HJ 192-2015's ΔEI classes, STANDARDS §1.7); the spec's nodata where Δ is NaN."""
    b0, b1, b2, b3 = (float(b) for b in breaks)
    if not (b0 < b1 <= 0 <= b2 < b3):
        raise ValueError(f"change breaks must satisfy b0 < b1 <= 0 <= b2 < b3, got {list(breaks)}")
    nodata = np.int16(change_spec()["nodata"])
    d = delta
    codes = xr.full_like(delta, nodata, dtype="int16")
    for code, where in ((-2, d <= b0), (-1, (d > b0) & (d <= b1)), (0, (d > b1) & (d < b2)),
                        (1, (d >= b2) & (d < b3)), (2, d >= b3)):
        codes = codes.where(~where, np.int16(code))  # NaN compares False everywhere: stays nodata
    codes = codes.astype("int16")
    codes.attrs = {"long_name": f"{name} (-2..2)", "nodata": int(nodata), "breaks": ", ".join(f"{b:g}" for b in breaks)}
    codes.name = name
    return codes


def pooled_fvc_endmembers(ndvi_layers: list[xr.DataArray], valids: list[xr.DataArray]) -> FvcEndmembers:
    """NDVI_soil, NDVI_veg: the exact 5 % and 95 % quantiles of the valid NDVI of every layer taken together
    (each date's own valid pixels), so that FVC of both dates is measured on one scale (STANDARDS §4)."""
    from ecoassess.stats import QuantileRefinement

    layers = [_dask(n) for n in ndvi_layers]
    masks = [~_dask(v).rechunk(n.chunks) for n, v in zip(layers, valids)]
    refinement = QuantileRefinement(["ndvi"], [layers[0].dtype], [FVC_LOWER_QUANTILE, FVC_UPPER_QUANTILE],
                                    value_ranges={"ndvi": (-1.0, 1.0)})
    try:
        lo, hi = refinement.run([da.concatenate(layers, axis=0)], mask=da.concatenate(masks, axis=0))["ndvi"]
    except AllMaskedError:
        raise AllMaskedError("no valid NDVI pixel on either date (all cloud, water, nodata or outside)",
                             field="ndvi", expected="clear land pixels on at least one date") from None
    return FvcEndmembers(float(lo), float(hi), refinement.counts["ndvi"], POOLED_METHOD)


def _dask(arr) -> da.Array:
    data = arr.data if isinstance(arr, xr.DataArray) else arr
    return data if isinstance(data, da.Array) else da.from_array(np.asarray(data))
