"""The three land-cover commands (issue 21 part 10): ``train``, ``predict`` and ``assess`` a classification from the
config's ``landcover_model`` section, each writing one results folder atomically (:class:`ecoassess.store.ResultsStore`)
with its tables, layers and a manifest (features, samples, model, accuracy).

* :func:`train` — training samples read and checked on the grid (rejected ones in ``landcover_rejected_samples``),
  the feature stack of ``training_year``, a random forest fitted and saved as ``model/model.pkl`` +
  ``model/model.json``; tables ``landcover_training_samples`` (per class) and ``landcover_feature_importance``.
* :func:`predict` — the model (trained now, or ``landcover_model.model`` / ``--model``) applied to ``year``'s
  feature stack chunk by chunk, post-processed (update mode, sieve, majority), written as
  ``layers/landcover_<year>.tif`` with its sidecar ``landcover_<year>.tif.json`` (legend, model;
  :mod:`ecoassess.landcover.provenance`); table ``landcover_class_areas`` (mapped km² per class). Name the map in
  ``land_cover.<year>`` of a config to assess with it (the legend may be left out: the sidecar's).
* :func:`assess` — a map checked against the reference sample (``validation``): confusion matrix, accuracies and
  error-adjusted areas with 95 % intervals (Olofsson et al. 2014; :mod:`ecoassess.landcover.accuracy`); the
  overall accuracy, its interval and the sample size also go into the map's sidecar when it has one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd

from ecoassess.errors import InputError

log = logging.getLogger(__name__)


def _context(config):
    from ecoassess.pipeline import build_grid, read_study_area
    from ecoassess.stages.base import RunInputs

    study_area = read_study_area(config)
    grid = build_grid(config, study_area)
    inputs = RunInputs(config, grid)
    inputs.study_area = study_area.to_crs(grid.crs)
    return grid, inputs


def _spec(config):
    if config.landcover_model is None:
        raise InputError("the config has no landcover_model section", path=config.source_path,
                         field="landcover_model", expected="landcover_model: {training: {path: ...}, ...}")
    return config.landcover_model


def _read(source, legend: str, key: str):
    from ecoassess.landcover.samples import read_samples

    if source is None:
        raise InputError("not given", field=f"landcover_model.{key}", expected="{path: samples.gpkg, class_field: ...}")
    return read_samples(source.path, class_field=source.class_field, legend=source.legend, map_legend=legend,
                        id_field=source.id_field, x_field=source.x_field, y_field=source.y_field, crs=source.crs,
                        transformation=source.transformation, layer=source.layer, sheet=source.sheet)


def _manifest(store, config, timer, extra: dict, grid) -> None:
    from ecoassess.manifest import build_manifest, write_manifest
    from ecoassess.pipeline import config_input_paths

    store.flush()
    manifest = build_manifest(config=config.to_yaml_dict(), config_path=config.source_path,
                              inputs=config_input_paths(config), outputs_dir=store.path("."), timings=timer,
                              grid=grid.to_dict(), registry=store.outputs, extra={"landcover": extra})
    write_manifest(manifest, store.path("manifest.json"))


def fit_model(config, inputs, grid):
    """(model, sample check, feature stack) of the config's training samples on ``training_year``'s features."""
    from ecoassess.landcover.classify import train_classifier
    from ecoassess.landcover.features import build_features, model_defaults, sample_features
    from ecoassess.landcover.samples import check_samples

    spec = _spec(config)
    year = spec.training_year or config.year
    stack = build_features(inputs, spec, year)
    samples = _read(spec.training, spec.legend, "training")
    minimum = spec.min_samples_per_class or model_defaults()["samples"]["min_per_class"]
    checked = check_samples(samples, grid, valid=stack.valid, min_per_class=minimum)
    X = sample_features(stack, checked.cells.cell_row, checked.cells.cell_col)
    model = train_classifier(X, checked.cells.class_code, stack.names, legend=spec.legend, seed=spec.seed,
                             n_estimators=spec.n_estimators, min_samples_leaf=spec.min_samples_leaf,
                             sample_hash=checked.sample_hash(), groups=checked.cells.group)
    model.extra["features"] = stack.description
    model.extra["training_year"] = year
    return model, checked, stack


def _training_tables(model, checked, legend) -> pd.DataFrame:
    from ecoassess.legends import load_legend

    lg = load_legend(legend)
    pixels = checked.cells.groupby("class_code").size()
    return pd.DataFrame({"class_code": model.classes,
                         "class_name": [lg.classes[c].get("zh", "") for c in model.classes],
                         "samples": [model.samples_per_class.get(c, 0) for c in model.classes],
                         "pixels": [int(pixels.get(c, 0)) for c in model.classes]})


def train(config, out, *, force: bool = False) -> dict:
    """Train the classifier of ``config`` and save it with the results in ``out`` (module docstring)."""
    from ecoassess.landcover.classify import feature_importances, save_model
    from ecoassess.manifest import RunTimer
    from ecoassess.stages.common import formats
    from ecoassess.store import ResultsStore

    timer = RunTimer()
    spec = _spec(config)
    with ResultsStore(out, force=force) as store:
        with timer.stage("features and samples, training"):
            grid, inputs = _context(config)
            model, checked, _ = fit_model(config, inputs, grid)
        save_model(model, store.path("model"))
        for name in ("model/model.pkl", "model/model.json"):
            store.register(name, "model", "the trained land-cover classifier and its sidecar (features, classes)")
        fmt = formats(config)
        store.write_table("landcover_training_samples", _training_tables(model, checked, spec.legend), **fmt,
                          description="training samples and pixels per class")
        store.write_table("landcover_feature_importance", feature_importances(model), **fmt,
                          description="mean decrease in impurity per feature")
        store.write_table("landcover_rejected_samples", checked.rejected, **fmt,
                          description="training samples set aside, with file, row and reason")
        extra = {"model": model.sidecar(), "rejected_samples": len(checked.rejected), "messages": checked.messages}
        _manifest(store, config, timer, extra, grid)
    return {"out": Path(store.out_dir), "model": model, "rejected": checked.rejected, "messages": checked.messages}


def class_map(config, inputs, grid, model, year: int):
    """The post-processed class map of ``year`` (lazy) and what was done, for the manifest."""
    from ecoassess.landcover.classify import check_features, predict_classes
    from ecoassess.landcover.features import build_features, model_defaults
    from ecoassess.landcover.postprocess import majority_filter, sieve, spectral_change, update_map
    from ecoassess.legends import load_legend

    spec = _spec(config)
    nodata = load_legend(model.legend).nodata or 0
    stack = build_features(inputs, spec, year)
    check_features(model, stack.names, where=f"landcover_model (features of {year})")
    lc = predict_classes(model, stack, nodata=nodata, check=False)
    if getattr(inputs, "study_area", None) is not None:  # the map covers the study area (cell centres inside)
        from ecoassess.grid import rasterize_mask

        inside = rasterize_mask(inputs.study_area.geometry, grid, chunk=config.grid.chunk).data
        lc = lc.copy(data=da.where(inside.rechunk(lc.data.chunks), lc.data, lc.dtype.type(nodata)))
    done = {"year": year, "features": stack.description}
    post = model_defaults()["postprocess"]
    if spec.update:
        before = year - 1
        previous = inputs.land_cover(before)
        if previous is None or before not in config.imagery:
            raise InputError(f"update mode needs land cover and imagery of {before}", field="landcover_model.update",
                             expected=f"land_cover.{before} and imagery.{before}")
        from ecoassess.landcover.features import season_features

        names = post["change_indices"]
        b = season_features(inputs.composite(before, "median").bands, "b", band_roles=[], indices=names)
        a = season_features(inputs.composite(year, "median").bands, "a", band_roles=[], indices=names)
        evidence, stats = spectral_change({n: b[f"b:{n}"] for n in names}, {n: a[f"a:{n}"] for n in names},
                                          z=post["change_z"])
        lc = update_map(previous.astype(lc.dtype).assign_attrs(nodata=nodata), lc, evidence, nodata=nodata)
        done["update"] = {"from_year": before, "indices": stats}
    mmu = spec.mmu_cells or post["mmu_cells"]
    if mmu > 1:
        lc = sieve(lc, mmu, nodata=nodata)
    if spec.majority_size:
        lc = majority_filter(lc, spec.majority_size, nodata=nodata)
    done.update(mmu_cells=mmu, majority_size=spec.majority_size)
    lc.attrs.update(nodata=nodata)
    return lc, done


def predict(config, out, *, year: int | None = None, model_path=None, force: bool = False) -> dict:
    """Classify ``year`` (default the assessment year) and write the map and its class areas into ``out``."""
    from ecoassess.cog import write_cog
    from ecoassess.landcover.classify import load_model, save_model
    from ecoassess.manifest import RunTimer
    from ecoassess.stages.common import formats
    from ecoassess.store import ResultsStore

    timer = RunTimer()
    spec = _spec(config)
    year = year or config.year
    with ResultsStore(out, force=force) as store:
        grid, inputs = _context(config)
        model_path = model_path or spec.model
        with timer.stage("model"):
            if model_path is not None:
                model = load_model(model_path)
            else:
                model, checked, _ = fit_model(config, inputs, grid)
                store.write_table("landcover_rejected_samples", checked.rejected, **formats(config))
            model_json = save_model(model, store.path("model"))
        with timer.stage("classification"):
            lc, done = class_map(config, inputs, grid, model, year)
            rel = f"layers/landcover_{year}.tif"
            write_cog(lc, store.path(rel, kind="layer", description=f"land cover {year} ({model.legend})"),
                      nodata=int(lc.attrs["nodata"]), dtype=str(lc.dtype))
        from ecoassess.landcover.provenance import sidecar_path, write_map_sidecar

        # the map's legend, model and (after ``landcover assess``) accuracy travel with it: its sidecar
        write_map_sidecar(store.path(rel), model, model_json=model_json, year=year, prediction=done,
                          model_file=Path(store.out_dir) / "model" / model_json.with_suffix(".pkl").name)
        store.register(sidecar_path(rel), "layer", f"land cover {year}: legend, model and accuracy of the map")
        areas = mapped_areas(store.path(rel), grid, model.legend)
        store.write_table("landcover_class_areas", areas, **formats(config),
                          description=f"mapped area per class of landcover_{year} (km², equal-area grid)")
        _manifest(store, config, timer, {"model": model.sidecar(), "prediction": done}, grid)
    return {"out": Path(store.out_dir), "map": Path(store.out_dir) / rel, "areas": areas}


def mapped_areas(map_path, grid, legend: str) -> pd.DataFrame:
    """km² per class of a class map on ``grid`` (cells × cell area; chunk by chunk)."""
    from ecoassess.grid import read_on_grid
    from ecoassess.legends import load_legend

    lg = load_legend(legend)
    layer = read_on_grid(map_path, grid, kind="classes", dst_nodata=lg.nodata)
    counts = _class_counts(layer, lg.nodata)
    km2 = grid.cell_area_m2 / 1e6
    return pd.DataFrame({"class_code": list(counts), "class_name": [lg.classes.get(c, {}).get("zh", "") for c in counts],
                         "cells": list(counts.values()),
                         "area_km2": [round(n * km2, 6) for n in counts.values()]})


def _class_counts(layer, nodata) -> dict[int, int]:
    import dask.array as da

    data = layer.data if isinstance(layer.data, da.Array) else da.from_array(np.asarray(layer.data), chunks=1024)
    data = data.ravel() if data.ndim == 2 else data[0].ravel()
    values, counts = da.unique(data, return_counts=True)
    values, counts = da.compute(values, counts)
    return {int(v): int(n) for v, n in zip(values, counts) if nodata is None or v != nodata}


def confusion_table(confusion: pd.DataFrame) -> pd.DataFrame:
    """The confusion matrix as a table: ``map_class``, one column ``reference_<code>`` per reference class, and
    ``total`` (samples of the map class)."""
    table = confusion.copy()
    table.columns = [f"reference_{c}" for c in table.columns]
    table["total"] = table.sum(axis=1)
    table.index = table.index.rename("map_class")
    return table.reset_index()


def assess(config, out, *, map_path, reference=None, class_field: str | None = None, force: bool = False) -> dict:
    """Accuracy of the map at ``map_path`` against the reference sample (``reference`` or
    ``landcover_model.validation``): tables ``landcover_confusion``, ``landcover_accuracy``,
    ``landcover_adjusted_areas`` (Olofsson et al. 2014, 95 % intervals, km²) in ``out``."""
    from ecoassess.config import SampleSource
    from ecoassess.grid import read_on_grid
    from ecoassess.landcover import accuracy
    from ecoassess.landcover.samples import check_samples
    from ecoassess.legends import load_legend
    from ecoassess.manifest import RunTimer
    from ecoassess.stages.common import formats
    from ecoassess.store import ResultsStore

    timer = RunTimer()
    spec = _spec(config)
    source = spec.validation
    if reference is not None:
        source = SampleSource(path=Path(reference).resolve(), class_field=class_field or "reference_class",
                              legend=spec.legend)
    elif class_field is not None and source is not None:
        source = source.model_copy(update={"class_field": class_field})
    lg = load_legend(spec.legend)
    with ResultsStore(out, force=force) as store:
        grid, _ = _context(config)
        layer = read_on_grid(map_path, grid, kind="classes", dst_nodata=lg.nodata)
        samples = _read(source, spec.legend, "validation")
        checked = check_samples(samples, grid, valid=layer != lg.nodata, min_per_class=1)
        mapped = np.asarray(layer.data.vindex[checked.cells.cell_row.to_numpy(), checked.cells.cell_col.to_numpy()]
                            .compute() if hasattr(layer.data, "vindex") else
                            np.asarray(layer.data)[checked.cells.cell_row, checked.cells.cell_col])
        reference_codes = checked.cells.class_code.to_numpy()
        areas = mapped_areas(map_path, grid, spec.legend).set_index("class_code")["area_km2"]
        classes = sorted(set(areas.index) | set(reference_codes.tolist()) | set(mapped.tolist()))
        confusion = accuracy.confusion_matrix(mapped, reference_codes, classes=classes)
        mapped_km2 = areas.reindex(confusion.index).fillna(0.0)
        # a stratified sample (one stratum per map class): accuracies weighted by the mapped areas, Olofsson 2014
        summary = accuracy.accuracy_summary(confusion, mapped_km2)
        adjusted = accuracy.error_adjusted_areas(confusion, mapped_km2)
        fmt = formats(config)
        store.write_table("landcover_confusion", confusion_table(confusion), **fmt,
                          description="sample counts: rows = map class, columns = reference class")
        store.write_table("landcover_accuracy", summary.table.reset_index(), **fmt,
                          description="overall, user's and producer's accuracy")
        store.write_table("landcover_adjusted_areas", adjusted.reset_index(), **fmt,
                          description="error-adjusted area per class, km², 95 % interval (Olofsson et al. 2014)")
        store.write_table("landcover_rejected_samples", checked.rejected, **fmt,
                          description="reference samples set aside, with file, row and reason")
        _manifest(store, config, timer, {"map": str(map_path), "overall_accuracy": float(summary.overall),
                                         "reference_samples": int(len(checked.cells))}, grid)
    from ecoassess.landcover.provenance import record_accuracy

    # after the results are in place: the map's sidecar then names a folder that exists
    sidecar = record_accuracy(map_path, summary=summary, samples=int(len(checked.cells)), results_dir=store.out_dir)
    return {"out": Path(store.out_dir), "confusion": confusion, "summary": summary, "adjusted": adjusted,
            "rejected": checked.rejected, "sidecar": sidecar}


__all__ = ["train", "predict", "assess", "confusion_table", "fit_model", "class_map", "mapped_areas"]
