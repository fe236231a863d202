"""Per-pixel composites of several scenes on one grid: median of clear observations, and the HJ 192-2015 NDVI.

* ``median``: per band, the median of the clear observations of each pixel (NaN where fewer than ``min_clear``).
* ``monthly_max_ndvi``: HJ 192-2015 植被覆盖指数 input — per month in ``months`` the maximum NDVI of clear
  observations (maximum-value composite), then the mean over the months that have at least one clear observation.
  NDVI here is the float ratio (NIR − red)/(NIR + red) in [−1, 1]; HJ 192's A_veg expects ×10⁴ integers
  (STANDARDS.md §1.3), a conversion that belongs to the index layer, not here.

Everything is lazy: counts are dask reductions over the scene axis; medians and maxima are ``map_blocks`` over blocks
of (scenes × chunk × chunk) cells, so memory per task is bounded by ``n_scenes × chunk² × 4`` bytes per band, never
the whole stack. The only eager step is the per-scene clear check (one pass over the mask bands), which drops
scenes without any clear pixel and raises :class:`AllMaskedError` when no scene is left.

Whether a scene has a clear pixel depends on every reflectance band (an observation outside the physical range is
not clear, :mod:`ecoassess.sources.reflectance_range`). With ``range_counts_later=True`` the check reads only the
mask and red bands, and the range counts of the scenes it keeps come from the pass that reads the bands for the
composite (:func:`pending_range_counts`, :func:`settle_range_counts`); a scene that then turns out to have no
clear pixel makes the composite :attr:`Composite.stale`: made again, it drops that scene, as the eager check does.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import xarray as xr

from ecoassess.errors import AllMaskedError, InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.sources.scene import (Scene, make_dataset, mask_counts, mask_summaries, range_count_tasks,
                                     set_range_counts, wrap_like)

log = logging.getLogger(__name__)

METHODS = ("median", "monthly_max_ndvi")
#: May–September, the HJ 192-2015 growing-season months for the NDVI composite.
DEFAULT_MONTHS = (5, 6, 7, 8, 9)


@dataclass
class Composite:
    """Result of :func:`composite`. Counts are int16 per pixel; ``masked`` = observed at least once but fewer than
    ``min_clear`` clear observations; ``nodata`` = never observed; ``bands`` is None for ``monthly_max_ndvi``
    (which fills ``ndvi`` and ``months_count``)."""

    bands: xr.Dataset | None
    clear_count: xr.DataArray
    valid_count: xr.DataArray
    masked: xr.DataArray
    nodata: xr.DataArray
    dates: list[_dt.date]
    method: str
    grid: AnalysisGrid
    ndvi: xr.DataArray | None = None
    months_count: xr.DataArray | None = None
    metadata: dict = field(default_factory=dict)
    #: scenes kept on their mask counts alone (``range_counts_later=True``), whose range counts may still be to come
    checked_later: list = field(default_factory=list, repr=False)

    @property
    def stale(self) -> bool:
        """True when a scene kept on its mask counts has, with its range counts in, no clear pixel: the eager check
        would have dropped it, so this composite must be made again (:func:`composite` then drops it)."""
        return any(s._summary is not None and s.clear_problem() is not None for s in self.checked_later)

    def __repr__(self) -> str:
        what = list(self.bands.data_vars) if self.bands is not None else ["ndvi"]
        return f"Composite({self.method}, {len(self.dates)} scenes, {what}, grid={self.grid.height}x{self.grid.width})"


# -- block functions (numpy, run per dask block) ---------------------------------------------------------------

def _nan_reduce(block, func, **kwargs):
    """``func`` over axis 0 ignoring NaN; pixels with no value at all give NaN without numpy's warning.

    (``warnings.catch_warnings`` is not thread-safe, and dask runs these blocks on threads.)
    """
    empty = np.isnan(block).all(axis=0)
    if empty.any():
        block = np.where(empty[None], 0.0, block)
    out = func(block, axis=0, **kwargs).astype(np.float32)
    out[empty] = np.nan
    return out


def _nanmedian_block(block):
    return _nan_reduce(block, np.nanmedian)


def _nanmax_block(block):
    return _nan_reduce(block, np.nanmax)


def _nanmean_block(block):
    return _nan_reduce(block, np.nanmean, dtype=np.float64)


def _reduce_scenes(layers: list[da.Array], func) -> da.Array:
    """Apply ``func(block[n, y, x]) -> [y, x]`` over the scene axis, one spatial chunk at a time."""
    if len(layers) == 1:
        return layers[0].astype(np.float32)
    stack = da.stack(layers, axis=0).rechunk({0: -1})
    return stack.map_blocks(func, drop_axis=0, dtype=np.float32)


def _count(layers: list[da.Array]) -> da.Array:
    return da.stack(layers, axis=0).sum(axis=0, dtype=np.int16)


def _ndvi(scene: Scene, valid_range) -> da.Array:
    """NDVI of the clear observations of ``scene`` (NaN elsewhere, and outside ``valid_range``)."""
    from ecoassess.layers.vegetation import ndvi as ndvi_of

    ndvi = ndvi_of(scene.bands).data
    keep = scene.clear.data & da.isfinite(ndvi)
    if valid_range is not None:
        keep = keep & (ndvi >= valid_range[0]) & (ndvi <= valid_range[1])
    return da.where(keep, ndvi, np.nan).astype(np.float32)


# -- the composite ---------------------------------------------------------------------------------------------

def composite(scenes, *, method: str = "median", months=DEFAULT_MONTHS, min_clear: int = 1,
              ndvi_range: tuple[float, float] | None = (-1.0, 1.0), check_clear: bool = True,
              range_counts_later: bool = False) -> Composite:
    """Composite ``scenes`` (all on the same grid) by ``method`` over the scenes acquired in ``months``.

    ``months=None`` keeps every scene. ``min_clear``: pixels with fewer clear observations are NaN and count as
    ``masked``. ``ndvi_range`` (monthly_max_ndvi only): NDVI outside it — possible where reflectance is negative,
    e.g. over water — is not a usable observation (None keeps everything). ``check_clear`` drops scenes with no clear
    pixel (logged) and raises :class:`AllMaskedError` if none is left; this is one pass over the mask bands (and
    every reflectance band, for the range screening). ``range_counts_later``: the check reads the mask and red
    bands only; the caller computes the range counts in its own pass over the bands (:func:`pending_range_counts`)
    and makes the composite again when it is :attr:`~Composite.stale`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown composite method {method!r}; one of {METHODS}")
    if min_clear < 1:
        raise ValueError(f"min_clear must be >= 1, got {min_clear}")
    scenes = list(scenes)
    if not scenes:
        raise InputError("no scene to composite", field="scenes", expected="at least one scene")
    from ecoassess.sources.duplicates import duplicate_scene_problems

    repeated = duplicate_scene_problems(scenes)
    if repeated:  # a scene passed twice would count twice (clear count, median, monthly maximum)
        raise InputError("; ".join(repeated), field="scenes", expected="each scene once")
    grid = scenes[0].grid
    for s in scenes[1:]:
        if s.grid != grid:
            raise InputError(f"scene {s.id} is on a different grid than {scenes[0].id} "
                             f"({s.grid.height}x{s.grid.width} @ {s.grid.resolution:.6g} vs "
                             f"{grid.height}x{grid.width} @ {grid.resolution:.6g})", path=s.path, field="grid",
                             expected="every scene opened on the same analysis grid (pass grid= to the readers)")

    dropped: list[dict] = []
    later: list[Scene] = []
    if months is not None:
        months = tuple(sorted(set(int(m) for m in months)))
        kept = []
        for s in scenes:
            if s.date.month in months:
                kept.append(s)
            else:
                log.info("composite: dropping %s (%s): month %d is not in %s", s.id, s.date, s.date.month, months)
                dropped.append({"scene": s.id, "date": s.date.isoformat(), "reason": f"month not in {list(months)}"})
        if not kept:
            raise InputError(f"none of the {len(scenes)} scene(s) was acquired in months {list(months)} "
                             f"(dates: {', '.join(sorted(s.date.isoformat() for s in scenes))})", field="months",
                             expected="scenes inside the compositing months")
        scenes = kept

    if check_clear:
        if range_counts_later:
            # a scene with clear pixels before the range screening is kept until its range counts come in; one
            # without is dropped now (its summary, for the message, reads its bands: it is in no composite)
            later = [s for s, c in zip(scenes, mask_counts(scenes)) if s._summary is None and c["clear"] > 0]
            mask_summaries([s for s in scenes if not any(s is t for t in later)])
        else:
            mask_summaries(scenes)
        kept, problems = [], []
        for s in scenes:
            problem = None if any(s is t for t in later) else s.clear_problem()
            if problem is None:
                kept.append(s)
            else:
                log.warning("composite: dropping %s: %s", s.metadata.get("mask_file") or s.path, problem)
                problems.append(problem)
                dropped.append({"scene": s.id, "date": s.date.isoformat(), "reason": problem})
        if not kept:
            first = scenes[0]
            raise AllMaskedError("no clear observation in any scene: " + " | ".join(problems),
                                 path=first.metadata.get("mask_file") or first.path,
                                 field=first.metadata.get("mask_band"),
                                 expected="at least one scene with clear pixels")
        scenes = kept

    scenes = sorted(scenes, key=lambda s: s.date)
    clear_count = _count([s.clear.data for s in scenes])
    valid_count = _count([s.valid.data for s in scenes])
    enough = clear_count >= min_clear
    masked = (valid_count > 0) & ~enough
    nodata = valid_count == 0

    bands = ndvi = months_count = None
    if method == "median":
        roles = [r for r in scenes[0].roles if all(r in s.bands for s in scenes)]
        missing = sorted({r for s in scenes for r in s.roles} - set(roles))
        if missing:
            log.info("composite: bands %s are not in every scene and are left out", missing)
        arrays = {}
        for role in roles:
            layers = [da.where(s.clear.data, s.bands[role].data, np.nan) for s in scenes]
            med = da.where(enough, _reduce_scenes(layers, _nanmedian_block), np.nan)
            arrays[role] = wrap_like(grid, med, name=role, attrs={**scenes[0].bands[role].attrs,
                                                                  "composite": "median of clear observations"})
        bands = make_dataset(grid, arrays, {"method": method})
    else:
        for s in scenes:
            if "red" not in s.bands or "nir" not in s.bands:
                raise InputError(f"scene {s.id} lacks the red or nir band needed for NDVI", path=s.path,
                                 field="red/nir", expected="red and nir reflectance")
        monthly = []
        used_months = months if months is not None else tuple(sorted({s.date.month for s in scenes}))
        for m in used_months:
            in_month = [s for s in scenes if s.date.month == m]
            if in_month:
                monthly.append(_reduce_scenes([_ndvi(s, ndvi_range) for s in in_month], _nanmax_block))
        stack = monthly
        months_count_d = _count([da.isfinite(x) for x in stack])
        mean = _reduce_scenes(stack, _nanmean_block)
        ndvi = wrap_like(grid, da.where(enough & (months_count_d > 0), mean, np.nan), name="ndvi",
                         attrs={"units": "1", "long_name": "mean over months of the monthly maximum NDVI",
                                "months": list(used_months), "reference": "HJ 192-2015 vegetation cover index input"})
        months_count = wrap_like(grid, months_count_d, name="months_count",
                                 attrs={"long_name": "months with at least one clear NDVI observation"})

    metadata = {
        "method": method,
        "months": list(months) if months is not None else None,
        "min_clear": int(min_clear),
        "scenes": [{"id": s.id, "sensor": s.sensor, "date": s.date.isoformat(), "path": s.path} for s in scenes],
        "dropped": dropped,
        "ndvi_range": list(ndvi_range) if (method == "monthly_max_ndvi" and ndvi_range is not None) else None,
    }
    return Composite(
        bands=bands,
        clear_count=wrap_like(grid, clear_count, name="clear_count", attrs={"long_name": "clear observations"}),
        valid_count=wrap_like(grid, valid_count, name="valid_count", attrs={"long_name": "observations"}),
        masked=wrap_like(grid, masked, name="masked"),
        nodata=wrap_like(grid, nodata, name="nodata"),
        dates=[s.date for s in scenes], method=method, grid=grid, ndvi=ndvi, months_count=months_count,
        metadata=metadata, checked_later=later,
    )


def pending_range_counts(*composites) -> tuple[list[Scene], list]:
    """(the scenes of ``composites`` kept on their mask counts whose range counts are not in yet, the dask
    reductions that count them): compute these in the pass that reads the composites' bands
    (``materialize(layers, reductions=...)``, each chunk read once for both), then :func:`settle_range_counts`."""
    return range_count_tasks([s for c in composites if c is not None for s in c.checked_later])


def settle_range_counts(scenes, values=None) -> None:
    """Give ``scenes`` (from :func:`pending_range_counts`) their range counts: the computed ``values``, or, when
    None, computed here in a pass of their own. Check :attr:`Composite.stale` afterwards."""
    if values is None:
        import dask

        values = dask.compute(*range_count_tasks(scenes)[1])
    set_range_counts(scenes, values)
