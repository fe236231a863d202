"""The feature stack of a land-cover classification (issue 21 part 2): per season the median composite's bands and
chosen catalog indices (:mod:`ecoassess.spectral`), optionally DEM elevation and slope
(:mod:`ecoassess.layers.terrain`), stacked lazily as one (feature, y, x) float32 array on the analysis grid.

Feature names carry no year (``m5-9:red``, ``m5-9:NDVI``, ``elevation_m``, ``slope_deg``), so a model trained on
one year applies to another year's stack built by the same settings, and a stack built differently is refused by
name (:func:`ecoassess.landcover.classify.check_features`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import dask.array as da
import numpy as np
import xarray as xr

from ecoassess.errors import InputError

TERRAIN_FEATURES = {"elevation": "elevation_m", "slope": "slope_deg"}


@lru_cache(maxsize=1)
def model_defaults() -> dict:
    """``indices/landcover_model.yaml``: the classifier, sample, feature and post-processing defaults."""
    from ecoassess.catalog import data_path, load_yaml

    return load_yaml(data_path("indices", "landcover_model.yaml"))


@dataclass
class FeatureStack:
    """``data``: (feature, y, x) float32, dask-backed, one chunk along ``feature``; ``valid``: True where every
    feature is finite (bool, lazy); ``names``: the feature names in order; ``description``: for the manifest."""

    data: xr.DataArray
    valid: xr.DataArray
    description: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [str(n) for n in self.data["feature"].values]


def season_label(months) -> str:
    """``[5, 6, 7, 8, 9]`` → ``m5-9``; ``[3, 5]`` → ``m3.5`` (runs of consecutive months joined by '-')."""
    runs: list[list[int]] = []
    for m in sorted(set(int(m) for m in months)):
        if runs and m == runs[-1][-1] + 1:
            runs[-1].append(m)
        else:
            runs.append([m])
    return "m" + ".".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def season_features(bands: xr.Dataset, label: str, *, band_roles=None, indices=(), catalog=None
                    ) -> dict[str, xr.DataArray]:
    """``{'<label>:<band>': layer, '<label>:<index>': layer}`` of one season's composite bands (``band_roles``:
    default every band) and catalog ``indices`` (evaluated per chunk in one task, :meth:`IndexCatalog.compute_many`)."""
    from ecoassess.spectral import load_catalog

    roles = list(bands.data_vars) if band_roles is None else list(band_roles)
    missing = [r for r in roles if r not in bands]
    if missing:
        raise InputError(f"season {label}: the composite has no band role(s) {', '.join(missing)}",
                         field="landcover_model.bands", expected=f"roles of the imagery: {', '.join(bands.data_vars)}")
    out = {f"{label}:{r}": bands[r].astype("float32") for r in roles}
    if indices:
        catalog = catalog or load_catalog()
        for name in indices:
            lacking = [b for b in catalog[name].bands if b not in bands]
            if lacking:
                raise InputError(f"index {name} needs band role(s) {', '.join(lacking)}, which the imagery does "
                                 "not have", field="landcover_model.indices",
                                 expected=f"indices over {', '.join(bands.data_vars)}")
        from ecoassess.spectral import bound_to_valid_range

        for name, layer in catalog.compute_many(list(indices), bands).items():
            out[f"{label}:{name}"] = bound_to_valid_range(layer)
    return out


def terrain_features(dem: xr.DataArray, which=("elevation", "slope")) -> dict[str, xr.DataArray]:
    """``elevation_m`` (the DEM, metres) and ``slope_deg`` (Horn 1981, :func:`~ecoassess.layers.terrain.slope_degrees`)."""
    from ecoassess.layers.terrain import slope_degrees

    unknown = [w for w in which if w not in TERRAIN_FEATURES]
    if unknown:
        raise ValueError(f"unknown terrain feature(s) {unknown}; one of {list(TERRAIN_FEATURES)}")
    out = {}
    if "elevation" in which:
        out["elevation_m"] = dem.astype("float32")
    if "slope" in which:
        out["slope_deg"] = slope_degrees(dem).astype("float32")
    return out


def stack_features(layers: dict[str, xr.DataArray], description: dict | None = None) -> FeatureStack:
    """Stack named 2-D layers of one grid into a :class:`FeatureStack` (lazy; chunks of the first layer)."""
    if not layers:
        raise InputError("no feature selected", field="landcover_model", expected="bands, indices or terrain")
    names = list(layers)
    first = layers[names[0]]
    datas = []
    for name in names:
        layer = layers[name]
        if layer.shape != first.shape:
            raise InputError(f"feature {name} is {layer.shape}, not {first.shape} like {names[0]}",
                             field=name, expected="every feature on the analysis grid")
        data = layer.data if isinstance(layer.data, da.Array) else da.from_array(np.asarray(layer.data),
                                                                                  chunks=1024)
        datas.append(data.astype("float32"))
    datas = [datas[0]] + [d.rechunk(datas[0].chunks) for d in datas[1:]]
    data = da.stack(datas, axis=0).rechunk({0: -1})
    stacked = xr.DataArray(data, dims=("feature", *first.dims),
                           coords={"feature": names, **{k: v for k, v in first.coords.items() if k not in ("band", "feature")}},
                           name="features")
    valid = xr.DataArray(da.isfinite(data).all(axis=0), dims=first.dims,
                         coords={k: v for k, v in first.coords.items() if k not in ("band", "feature")},
                         name="features_valid")
    return FeatureStack(stacked, valid, dict(description or {}, features=names))


def build_features(inputs, spec, year: int) -> FeatureStack:
    """The feature stack of ``year`` as ``spec`` (the config's ``landcover_model``) declares it, from the run's
    inputs (:class:`ecoassess.stages.base.RunInputs`): each season the median composite of the year's scenes in its
    months (the year's own composite when the months are ``composite.months``), its bands and indices; then the
    terrain features of ``dem``."""
    from ecoassess.sources import composite

    config = inputs.config
    defaults = model_defaults()["features"]
    if year not in config.imagery:
        raise InputError(f"no imagery for year {year}", field=f"imagery.{year}",
                         expected=f"one of the configured years {sorted(config.imagery)}")
    seasons = [list(s.months) for s in spec.seasons] if spec.seasons else [list(config.composite.months)]
    band_roles = spec.bands if spec.bands is not None else defaults["bands"]
    indices = spec.indices if spec.indices is not None else defaults["indices"]
    layers: dict[str, xr.DataArray] = {}
    described = []
    for months in seasons:
        label = season_label(months)
        if sorted(set(months)) == sorted(set(config.composite.months)):
            comp = inputs.composite(year, "median")
        else:
            comp = composite(inputs.scenes(year), method="median", months=tuple(months),
                             min_clear=config.composite.min_clear)
        layers.update(season_features(comp.bands, label, band_roles=band_roles, indices=indices))
        described.append({"label": label, "months": sorted(set(months)), "scenes": [d.isoformat() for d in comp.dates]})
    if spec.terrain:
        if config.dem is None:
            raise InputError("landcover_model.terrain needs a DEM", field="dem", expected="dem: {path: ...}")
        layers.update(terrain_features(inputs.dem(), spec.terrain))
    description = {"year": year, "seasons": described, "bands": band_roles, "indices": list(indices),
                   "terrain": list(spec.terrain)}
    return stack_features(layers, description)


def sample_features(stack: FeatureStack | xr.DataArray, rows, cols) -> np.ndarray:
    """Feature values at the cells (``rows``, ``cols``) as an (n, features) float32 array; only the chunks holding
    a cell are read."""
    data = stack.data if isinstance(stack, FeatureStack) else stack
    arr = data.data
    rows, cols = np.asarray(rows, "int64"), np.asarray(cols, "int64")
    if isinstance(arr, da.Array):
        values = da.stack([arr[i].vindex[rows, cols] for i in range(arr.shape[0])], axis=1).compute()
    else:
        values = np.asarray(arr)[:, rows, cols].T
    return np.ascontiguousarray(values, dtype="float32")


__all__ = ["FeatureStack", "season_label", "season_features", "terrain_features", "stack_features", "build_features",
           "sample_features", "model_defaults"]
