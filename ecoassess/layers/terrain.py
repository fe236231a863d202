"""Terrain layers on the analysis grid: Horn slope and the RUSLE topographic factor LS, lazily and chunked.

Slope (Horn 1981, the 3×3 finite difference used by GDAL ``gdaldem slope`` and ArcGIS)::

    a b c        dz/dx = ((c + 2f + i) − (a + 2d + g)) / (8·Δ)
    d e f        dz/dy = ((g + 2h + i) − (a + 2b + c)) / (8·Δ)
    g h i        slope_deg = atan(√((dz/dx)² + (dz/dy)²)) · 180/π

Δ = grid cell size in metres; z in metres (``z_units`` converts). Computed with ``dask.array.map_overlap``
(depth 1), so every chunk sees its neighbours' edge cells and the result does not depend on the chunking.

Missing neighbours (a NaN DEM cell, or the outside of the grid) are replaced by the value mirrored through
the centre cell, ``z_nb = 2·z_e − z_opposite`` (linear extrapolation: exact for a plane, so a plane keeps its
slope up to the grid edge and next to holes). When the opposite cell is missing too, an orthogonal neighbour
takes ``z_e`` and a diagonal one the plane through the centre and its two (filled) orthogonal neighbours
(so grid corners are exact for a plane as well).
A NaN centre cell gives NaN. ``edges="nan"`` instead makes every cell with a missing neighbour NaN
(``gdaldem`` without ``-compute_edges``).

LS is computed per pixel, without flow routing (which is global and cannot be chunked):

    L = (λ / 22.13)^m                                    λ = horizontal slope length in m (a parameter)
    m = β / (1 + β),  β = (sin θ / 0.0896) / (3·sin^0.8 θ + 0.56)        McCool et al. (1989)
    S = 10.8·sin θ + 0.03            θ < 5°                                 McCool et al. (1987)
        16.8·sin θ − 0.50            5° ≤ θ < 10°                           McCool et al. (1987)
        21.91·sin θ − 0.96           θ ≥ 10°                                Liu et al. (1994), steep slopes

The assumption: every cell lies on a uniform hillslope of length λ (fixed, default from ``indices/rusle.yaml``,
or a layer the user computed elsewhere, e.g. from flow accumulation). This is the usual simplification of
county-scale studies without a flow-routing step; it ignores convergence (hollows, valley floors get the same
λ as spurs) and is stated in the layer's attrs.
"""

from __future__ import annotations

import math
from functools import lru_cache

import dask.array as da
import numpy as np
import xarray as xr

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError
from ecoassess.grid import AnalysisGrid, grid_or_none

#: Metres per DEM height unit.
Z_UNITS_M = {"m": 1.0, "dm": 0.1, "cm": 0.01, "mm": 0.001, "ft": 0.3048, "us_ft": 1200.0 / 3937.0}

#: RUSLE unit-plot length (72.6 ft) in metres.
UNIT_PLOT_LENGTH_M = 22.13

#: S-factor breakpoints in degrees for the "liu_mccool" method.
S_BREAK_MCCOOL_DEG = 5.0
S_BREAK_LIU_DEG = 10.0


@lru_cache(maxsize=None)
def default_slope_length_m() -> float:
    """The default uniform slope length λ (m) of ``indices/rusle.yaml`` (``ls.default_slope_length_m``, [C])."""
    raw = load_yaml(data_path("indices", "rusle.yaml"))
    return float(raw["ls"]["default_slope_length_m"]["value"])


def _grid_and_cell(arr: xr.DataArray, cellsize_m: float | None) -> tuple[AnalysisGrid | None, float]:
    grid = grid_or_none(arr)
    if cellsize_m is not None:
        if not cellsize_m > 0:
            raise ValueError(f"cellsize_m must be > 0, got {cellsize_m}")
        return grid, float(cellsize_m)
    if grid is None:
        raise ValueError(f"DataArray {arr.name!r} carries no grid (no CRS and transform on its coordinates); "
                         "pass cellsize_m")
    if grid.crs.is_geographic:
        raise InputError("the analysis grid is in geographic degrees; slope needs a projected grid in metres",
                         field="grid.crs", expected="an equal-area projected CRS (e.g. China Albers)")
    _, factor = grid.crs.linear_units_factor
    return grid, float(grid.resolution) * float(factor)


def _horn_block(block: np.ndarray, *, cell_m: float, z_factor: float, extrapolate: bool) -> np.ndarray:
    """Horn slope (degrees) of the interior of a block padded by one cell on each side."""
    p = block.astype("float64", copy=False) * z_factor
    h, w = p.shape[0] - 2, p.shape[1] - 2
    e = p[1:-1, 1:-1]

    def raw(dr: int, dc: int) -> np.ndarray:
        return p[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]

    def nb(dr: int, dc: int, fallback: np.ndarray) -> np.ndarray:
        v = raw(dr, dc)
        if not extrapolate:
            return v
        opp = raw(-dr, -dc)
        fill = np.where(np.isnan(opp), fallback, 2.0 * e - opp)   # mirror through the centre cell
        return np.where(np.isnan(v), fill, v)

    # orthogonal neighbours first (fallback: flat), then diagonals (fallback: the plane through the centre and
    # the two filled orthogonal neighbours, so that grid corners are exact for a plane too)
    b, hh, d, f = nb(-1, 0, e), nb(1, 0, e), nb(0, -1, e), nb(0, 1, e)
    a, c = nb(-1, -1, b + d - e), nb(-1, 1, b + f - e)
    g, i = nb(1, -1, hh + d - e), nb(1, 1, hh + f - e)
    dzdx = ((c + 2.0 * f + i) - (a + 2.0 * d + g)) / (8.0 * cell_m)
    dzdy = ((g + 2.0 * hh + i) - (a + 2.0 * b + c)) / (8.0 * cell_m)
    interior = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    interior[np.isnan(e)] = np.nan
    out = np.full(p.shape, np.nan, dtype="float32")  # same shape as the padded block; map_overlap trims it
    out[1:-1, 1:-1] = interior
    return out


def dem_z_units_of(dem: xr.DataArray, z_units: str | None) -> str:
    """The height unit to use for ``dem``: ``z_units`` when given, else the DEM's ``attrs['z_units']`` (set by
    :func:`ecoassess.layers.dem.read_dem` from the file's unit tag or the config), else metres. A ``z_units``
    that contradicts the DEM's own attribute is an error (heights would be converted twice, or not at all)."""
    own = dem.attrs.get("z_units")
    if z_units is None:
        return own or "m"
    if own is not None and own != z_units:
        raise ValueError(f"z_units={z_units!r}, but the DEM says its heights are in {own!r} (attrs['z_units'])")
    return z_units


def slope_degrees(dem: xr.DataArray, *, z_units: str | None = None, edges: str = "extrapolate",
                  cellsize_m: float | None = None) -> xr.DataArray:
    """Slope in degrees by Horn (1981), lazily (``map_overlap``, depth 1); NaN where the DEM is NaN.

    ``z_units``: unit of the DEM heights (``m``, ``dm``, ``cm``, ``mm``, ``ft``, ``us_ft``; None: the DEM's
    ``attrs['z_units']``, else ``m``), converted to metres here; the cell size comes from the layer's grid
    (its ``spatial_ref`` transform, metres) or ``cellsize_m``. ``edges``: ``extrapolate`` (default; missing neighbours mirrored through the
    centre cell, see the module docstring) or ``nan``.
    """
    z_units = dem_z_units_of(dem, z_units)
    if z_units not in Z_UNITS_M:
        raise ValueError(f"unknown z_units {z_units!r}; one of {', '.join(Z_UNITS_M)}")
    if edges not in ("extrapolate", "nan"):
        raise ValueError(f"edges must be 'extrapolate' or 'nan', got {edges!r}")
    grid, cell_m = _grid_and_cell(dem, cellsize_m)
    kernel = dict(cell_m=cell_m, z_factor=Z_UNITS_M[z_units], extrapolate=edges == "extrapolate")
    data = dem.data
    if isinstance(data, da.Array):
        data = data.astype("float64")
        out = da.map_overlap(_horn_block, data, depth=1, boundary=np.nan, trim=True, dtype="float32",
                             meta=np.empty((0, 0), "float32"), **kernel)
    else:
        padded = np.pad(np.asarray(data, dtype="float64"), 1, mode="constant", constant_values=np.nan)
        out = _horn_block(padded, **kernel)[1:-1, 1:-1]
    res = dem.copy(data=out)
    res.name = "slope_deg"
    res.attrs = {"long_name": "slope", "units": "degree", "method": "Horn (1981) 3x3",
                 "z_units": z_units, "cellsize_m": cell_m, "edges": edges}
    return res


def slope_steepness_factor(slope_deg: xr.DataArray, *, method: str = "liu_mccool") -> xr.DataArray:
    """RUSLE S factor from slope in degrees (dimensionless); NaN propagates.

    ``liu_mccool`` (default, usual in Chinese studies): 10.8 sin θ + 0.03 (θ < 5°), 16.8 sin θ − 0.50
    (5° ≤ θ < 10°), 21.91 sin θ − 0.96 (θ ≥ 10°) — McCool et al. 1987, Trans. ASAE 30(5):1387; Liu et al.
    1994, Trans. ASAE 37(6):1835 (steep-slope plot data; citation recollected). S jumps by ≈0.42 at 10° (the two
    regressions do not meet). ``mccool``: the original two-part McCool S with the break at a 9 % gradient
    (tan θ < 0.09), as in GRASS ``r.watershed``.
    """
    s = np.sin(np.radians(slope_deg))
    if method == "liu_mccool":
        out = xr.where(slope_deg < S_BREAK_MCCOOL_DEG, 10.8 * s + 0.03,
                       xr.where(slope_deg < S_BREAK_LIU_DEG, 16.8 * s - 0.50, 21.91 * s - 0.96))
    elif method == "mccool":
        out = xr.where(np.tan(np.radians(slope_deg)) < 0.09, 10.8 * s + 0.03, 16.8 * s - 0.50)
    else:
        raise ValueError(f"unknown S-factor method {method!r}; 'liu_mccool' or 'mccool'")
    out = out.where(slope_deg.notnull()).astype("float32")
    out.name = "s_factor"
    out.attrs = {}
    out.attrs.update({"long_name": "RUSLE slope steepness factor S", "units": "1", "s_method": method})
    return out


def slope_length_exponent(slope_deg: xr.DataArray) -> xr.DataArray:
    """McCool et al. (1989) m = β/(1+β), β = (sin θ/0.0896)/(3 sin^0.8 θ + 0.56) (moderate rill/interrill)."""
    s = np.sin(np.radians(slope_deg))
    beta = (s / 0.0896) / (3.0 * s ** 0.8 + 0.56)
    return beta / (1.0 + beta)


def slope_length_factor(slope_deg: xr.DataArray, *, slope_length_m=None, m_exponent: float | None = None
                        ) -> xr.DataArray:
    """RUSLE L factor (dimensionless): L = (λ / 22.13)^m.

    ``slope_length_m`` (λ, horizontal metres): a number (one uniform slope length for every cell), a layer
    on the same grid (e.g. computed elsewhere by flow routing), or None for the default of
    ``indices/rusle.yaml`` (``ls.default_slope_length_m``). ``m_exponent``: None for McCool's slope-dependent
    m (default), or a fixed exponent (e.g. 0.5 as in USLE for slopes ≥ 5 %).
    """
    source = "argument"
    if slope_length_m is None:
        slope_length_m = default_slope_length_m()
        source = "indices/rusle.yaml ls.default_slope_length_m"
    if isinstance(slope_length_m, xr.DataArray):
        lam = slope_length_m.where(slope_length_m >= 0)
        lam_attr = f"layer {slope_length_m.name or 'slope_length_m'}"
    else:
        lam = float(slope_length_m)
        if not lam > 0 or not math.isfinite(lam):
            raise ValueError(f"slope_length_m must be a positive length in metres, got {slope_length_m!r}")
        lam_attr = lam
    m = slope_length_exponent(slope_deg) if m_exponent is None else xr.full_like(slope_deg, float(m_exponent))
    out = ((lam / UNIT_PLOT_LENGTH_M) ** m).where(slope_deg.notnull()).astype("float32")
    out.name = "l_factor"
    out.attrs = {}
    out.attrs.update({"long_name": "RUSLE slope length factor L", "units": "1", "slope_length_m": lam_attr,
                      "slope_length_source": source,
                      "m_method": "McCool et al. 1989" if m_exponent is None else f"fixed m = {m_exponent}"})
    return out


def ls_factor(dem: xr.DataArray, *, z_units: str | None = None, slope_length_m=None, s_method: str = "liu_mccool",
              m_exponent: float | None = None, slope_deg: xr.DataArray | None = None,
              cellsize_m: float | None = None) -> xr.DataArray:
    """RUSLE topographic factor LS = L·S from a DEM (per pixel, no flow routing; see the module docstring).

    Pass ``slope_deg`` to reuse a slope layer already computed from ``dem``. Attrs record the S method, the
    m method, λ and its source, so that the report can state them.
    """
    if slope_deg is None:
        slope_deg = slope_degrees(dem, z_units=z_units, cellsize_m=cellsize_m)
    s = slope_steepness_factor(slope_deg, method=s_method)
    lf = slope_length_factor(slope_deg, slope_length_m=slope_length_m, m_exponent=m_exponent)
    out = (lf * s).astype("float32")
    out.name = "ls_factor"
    out.attrs = {}
    out.attrs.update({
        "long_name": "RUSLE topographic factor LS", "units": "1",
        "s_method": s_method, "m_method": lf.attrs["m_method"], "slope_length_m": lf.attrs["slope_length_m"],
        "slope_length_source": lf.attrs["slope_length_source"],
        "assumption": "per-pixel LS on a uniform hillslope of length slope_length_m (no flow routing)",
    })
    return out
