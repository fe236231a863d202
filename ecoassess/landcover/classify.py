"""The land-cover classifier (issue 21 part 3): a scikit-learn random forest trained on sample pixels, predicted
chunk by chunk on the lazy grid, saved with the run so that a later year can reuse it.

* Deterministic: ``random_state`` = the config's ``seed``, ``n_jobs=1`` (parallelism comes from dask predicting
  several chunks at once, never from threads inside the forest), training rows in a canonical order (cell row,
  column): same samples + same features + same seed = the same trees and the same map.
* Bounded memory: :func:`predict_classes` is one ``map_blocks`` over the (feature, y, x) stack; inside a chunk the
  pixels go through the forest ``predict_batch`` at a time (``indices/landcover_model.yaml``), so a task holds one
  chunk of features and one batch of class probabilities, whatever the area.
* Saved as ``model.pkl`` (pickle of the estimator) + ``model.json`` (feature names, classes, legend, scikit-learn
  version, SHA-256 of the training samples and of the pickle, parameters, samples per class). :func:`load_model`
  refuses a pickle whose hash differs from its sidecar; :func:`check_features` refuses a feature stack whose
  names differ from the model's. A pickle runs code when loaded: load only models your own runs made.

scikit-learn is an optional dependency (``pip install ecoassess[landcover]``), imported only here, when needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ecoassess.errors import EcoassessError, InputError

log = logging.getLogger(__name__)

MODEL_FILE, SIDECAR_FILE = "model.pkl", "model.json"
FORMAT_VERSION = 1


def _sklearn():
    try:
        import sklearn
        from sklearn.ensemble import RandomForestClassifier
    except ImportError as exc:  # pragma: no cover - the test environment has it
        raise EcoassessError("land-cover classification needs scikit-learn: pip install 'ecoassess[landcover]'"
                             ) from exc
    return sklearn, RandomForestClassifier


@dataclass
class TrainedModel:
    """A fitted classifier and what it was fitted on (the sidecar JSON holds everything but ``estimator``)."""

    estimator: object
    feature_names: list[str]
    classes: list[int]
    legend: str
    sklearn_version: str
    sample_hash: str
    params: dict
    samples_per_class: dict[int, int]
    extra: dict = field(default_factory=dict)

    def sidecar(self) -> dict:
        return {"format_version": FORMAT_VERSION, "kind": "random_forest", "feature_names": self.feature_names,
                "classes": self.classes, "legend": self.legend, "sklearn_version": self.sklearn_version,
                "training_sample_sha256": self.sample_hash, "params": self.params,
                "samples_per_class": {str(k): v for k, v in self.samples_per_class.items()}, **self.extra}


def train_classifier(features: np.ndarray, classes, feature_names, *, legend: str = "cas_lucc", seed: int = 0,
                     n_estimators: int | None = None, min_samples_leaf: int | None = None, sample_hash: str = "",
                     groups=None) -> TrainedModel:
    """Fit a random forest on ``features`` (n, f) and class codes ``classes`` (n,). Rows with a non-finite
    feature are refused (the samples check leaves out masked pixels). Defaults: ``indices/landcover_model.yaml``.
    ``groups`` (polygon of each row): the samples per class are counted as groups."""
    from ecoassess.landcover.features import model_defaults

    sklearn, RandomForestClassifier = _sklearn()
    d = model_defaults()["classifier"]
    X = np.asarray(features, dtype="float32")
    y = np.asarray(classes, dtype="int64")
    if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[1] != len(feature_names):
        raise ValueError(f"features {X.shape} do not match {y.shape[0]} classes and {len(feature_names)} names")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise InputError(f"{int(bad.sum())} training row(s) have a missing feature value", field="features",
                         expected="samples in pixels observed in every feature (check_samples with valid=)")
    if len(np.unique(y)) < 2:
        raise InputError(f"only one class ({int(y[0]) if len(y) else 'none'}) in the training samples",
                         field="class", expected="samples of at least two classes")
    params = {"n_estimators": int(n_estimators or d["n_estimators"]), "max_features": d["max_features"],
              "min_samples_leaf": int(min_samples_leaf or d["min_samples_leaf"]), "random_state": int(seed),
              "n_jobs": 1, "bootstrap": True, "oob_score": True}
    estimator = RandomForestClassifier(**params)
    estimator.fit(X, y)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    per_class = {int(c): int(len(np.unique(groups[y == c]))) for c in np.unique(y)}
    model = TrainedModel(estimator, list(map(str, feature_names)), [int(c) for c in estimator.classes_], legend,
                         sklearn.__version__, sample_hash, params, per_class,
                         {"oob_accuracy": round(float(estimator.oob_score_), 6), "n_pixels": int(len(y))})
    log.info("random forest: %d trees, %d features, %d classes, %d training pixels; out-of-bag accuracy %.3f "
             "(pixels of one polygon are not independent: this is no substitute for a validation sample)",
             params["n_estimators"], X.shape[1], len(model.classes), len(y), estimator.oob_score_)
    return model


def feature_importances(model: TrainedModel):
    """A table of the forest's mean decrease in impurity per feature, largest first."""
    import pandas as pd

    imp = np.asarray(model.estimator.feature_importances_, dtype="float64")
    return (pd.DataFrame({"feature": model.feature_names, "importance": imp.round(6)})
            .sort_values("importance", ascending=False, kind="stable").reset_index(drop=True))


# -- saving and loading --------------------------------------------------------------------------------------------

def save_model(model: TrainedModel, folder) -> Path:
    """Write ``folder/model.pkl`` and ``folder/model.json``; return the JSON's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(model.estimator, protocol=5)
    (folder / MODEL_FILE).write_bytes(blob)
    sidecar = {**model.sidecar(), "model_file": MODEL_FILE, "model_sha256": hashlib.sha256(blob).hexdigest()}
    path = folder / SIDECAR_FILE
    path.write_text(json.dumps(sidecar, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def load_model(path) -> TrainedModel:
    """A model saved by :func:`save_model` (``path``: its folder, ``model.json`` or ``model.pkl``)."""
    path = Path(path)
    sidecar_path = path / SIDECAR_FILE if path.is_dir() else path.with_name(SIDECAR_FILE)
    if not sidecar_path.is_file():
        raise InputError("no saved land-cover model here", path=path, field="landcover_model.model",
                         expected=f"a folder holding {SIDECAR_FILE} and {MODEL_FILE} (ecoassess landcover train)")
    try:
        meta = json.loads(sidecar_path.read_text(encoding="utf-8"))
        keys = ("feature_names", "classes", "legend", "model_sha256", "sklearn_version")
        missing = [k for k in keys if k not in meta]
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"is not a model sidecar ({exc})", path=sidecar_path) from None
    if missing:
        raise InputError(f"lacks {', '.join(missing)}", path=sidecar_path, expected="a sidecar written by save_model")
    blob_path = sidecar_path.with_name(meta.get("model_file", MODEL_FILE))
    if not blob_path.is_file():
        raise InputError("file not found", path=blob_path, expected=f"the model beside {sidecar_path.name}")
    blob = blob_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["model_sha256"]:
        raise InputError("does not match its sidecar (SHA-256 differs): the model was replaced or damaged",
                         path=blob_path, expected=f"the model {sidecar_path.name} describes")
    sklearn, _ = _sklearn()
    if meta["sklearn_version"] != sklearn.__version__:
        log.warning("%s was trained with scikit-learn %s, this is %s: predictions may differ; train again to be "
                    "sure", blob_path, meta["sklearn_version"], sklearn.__version__)
    estimator = pickle.loads(blob)  # noqa: S301 - a model this toolkit wrote (hash checked above)
    return TrainedModel(estimator, list(meta["feature_names"]), [int(c) for c in meta["classes"]], meta["legend"],
                        meta["sklearn_version"], meta.get("training_sample_sha256", ""), meta.get("params", {}),
                        {int(k): v for k, v in meta.get("samples_per_class", {}).items()},
                        {k: meta[k] for k in ("oob_accuracy", "n_pixels", "features") if k in meta})


def check_features(model: TrainedModel, names, *, where: str = "landcover_model") -> None:
    """InputError unless ``names`` are the model's features in the model's order (name by name)."""
    names = [str(n) for n in names]
    if names == model.feature_names:
        return
    lacking = [n for n in model.feature_names if n not in names]
    extra = [n for n in names if n not in model.feature_names]
    detail = []
    if lacking:
        detail.append(f"missing {', '.join(lacking)}")
    if extra:
        detail.append(f"not in the model {', '.join(extra)}")
    if not detail:
        detail.append("same features in another order")
    raise InputError("the feature stack does not match the saved model: " + "; ".join(detail), field=where,
                     expected=f"the features the model was trained on: {', '.join(model.feature_names)}")


# -- prediction ----------------------------------------------------------------------------------------------------

def _predict_block(block: np.ndarray, *, estimator, classes: np.ndarray, nodata: int, batch: int) -> np.ndarray:
    """Classes of one (feature, y, x) chunk: nodata where a feature is not finite."""
    nf, h, w = block.shape
    X = block.reshape(nf, h * w).T
    ok = np.isfinite(X).all(axis=1)
    out = np.full(h * w, nodata, dtype=classes.dtype)
    idx = np.flatnonzero(ok)
    for start in range(0, len(idx), batch):
        part = idx[start:start + batch]
        proba = estimator.predict_proba(np.ascontiguousarray(X[part], dtype="float32"))
        out[part] = classes[np.argmax(proba, axis=1)]
    return out.reshape(h, w)


def predict_classes(model: TrainedModel, stack, *, nodata: int = 0, batch: int | None = None,
                    check: bool = True) -> xr.DataArray:
    """The class map of a feature stack (a :class:`~ecoassess.landcover.features.FeatureStack` or a (feature, y, x)
    DataArray), lazy: one task per chunk. ``nodata`` where a feature is missing. uint8 (uint16 for codes > 255)."""
    from ecoassess.landcover.features import FeatureStack, model_defaults

    data = stack.data if isinstance(stack, FeatureStack) else stack
    if check:
        check_features(model, data["feature"].values)
    batch = int(batch or model_defaults()["classifier"]["predict_batch"])
    classes = np.asarray(model.classes, dtype="int64")
    dtype = np.dtype("uint8") if max(classes.max(), nodata) <= 255 else np.dtype("uint16")
    arr = data.data if isinstance(data.data, da.Array) else da.from_array(np.asarray(data.data),
                                                                          chunks=(-1, 1024, 1024))
    arr = arr.rechunk({0: -1})
    out = da.map_blocks(_predict_block, arr, drop_axis=0, dtype=dtype, meta=np.empty((0, 0), dtype),
                        estimator=model.estimator, classes=classes.astype(dtype), nodata=nodata, batch=batch,
                        name=f"landcover-predict-{da.core.tokenize(arr, model.sample_hash, id(model.estimator), nodata)}")
    coords = {k: v for k, v in data.coords.items() if k != "feature"}
    result = xr.DataArray(out, dims=data.dims[1:], coords=coords, name="land_cover")
    result.attrs = {"long_name": "land cover (random forest)", "legend": model.legend, "nodata": nodata,
                    "_FillValue": nodata}
    return result


__all__ = ["TrainedModel", "train_classifier", "feature_importances", "save_model", "load_model", "check_features",
           "predict_classes"]
