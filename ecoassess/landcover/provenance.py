"""Where a land-cover map comes from (issue 21 part 6): the sidecar JSON a classified map carries, and the record of
every configured land-cover year that the manifest and the ``landcover_sources`` table give.

A map written by ``ecoassess landcover predict`` (``layers/landcover_<year>.tif``) gets a sidecar beside it,
``landcover_<year>.tif.json`` (:func:`sidecar_path`: the map's file name + ``.json``). A sidecar, not GeoTIFF tags:
``landcover assess`` adds the accuracy later, and rewriting a Cloud-Optimized GeoTIFF's tags in place would move its
header; a small JSON is replaced atomically and read without GDAL. It holds:

* ``map_sha256``: the map it describes; a map changed after prediction (edited, re-predicted) no longer matches,
  and its sidecar's model and accuracy are then not claimed for it;
* ``legend``: name, file (``layers/<name>.yaml`` or the user's legend file, which holds the crosswalk to HJ 192 and
  CAS/LUCC classes), version and the file's SHA-256;
* ``model``: kind, file (absolute path of the saved ``model.pkl``), its SHA-256, the training samples' SHA-256,
  the training year, the features;
* ``accuracy``: ``None`` until ``landcover assess`` checks this very map (same SHA-256) against a reference sample;
  then the area-weighted overall accuracy (Olofsson et al. 2014 eq. 1) with its 95 % interval (± 1.96 SE, eq. 5),
  the number of reference samples, user's and producer's accuracy per class and the assess results folder.

The manifest's ``extra.land_cover.maps[<year>]`` (:func:`land_cover_maps`) = ``{file, legend, classified,
model, overall_accuracy, overall_accuracy_ci95, validation_samples}`` (``overall_accuracy_ci95`` = [low, high];
``None`` where unknown; a national product without a sidecar: ``classified`` false).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from ecoassess.errors import InputError
from ecoassess.files import atomic_path, sha256_file

log = logging.getLogger(__name__)

#: the ``format`` value that marks a sidecar as ours (a ``.tif.json`` of some other tool is ignored)
FORMAT = "ecoassess land-cover map"
FORMAT_VERSION = 1
#: the keys of each ``extra.land_cover.maps[<year>]`` entry, in this order
MAP_KEYS = ("file", "legend", "classified", "model", "overall_accuracy", "overall_accuracy_ci95",
            "validation_samples")
Z95 = 1.959963984540054


def sidecar_path(map_path) -> Path:
    """``landcover_2024.tif`` → ``landcover_2024.tif.json`` (beside the map)."""
    map_path = Path(map_path)
    return map_path.with_name(map_path.name + ".json")


def legend_record(legend_ref) -> dict:
    """Name, file, version and SHA-256 of a legend (a shipped name or a legend file's path)."""
    from ecoassess.legends import legend_file, load_legend

    lg = load_legend(legend_ref)
    return {"name": lg.name, "file": lg.source, "version": lg.version, "sha256": sha256_file(legend_file(legend_ref))}


def write_map_sidecar(map_path, model, *, model_json, model_file=None, year: int,
                      prediction: dict | None = None) -> Path:
    """Write the sidecar of a map just predicted by ``model`` (a :class:`~ecoassess.landcover.classify.TrainedModel`)
    whose saved sidecar is ``model_json`` (:func:`~ecoassess.landcover.classify.save_model`); ``model_file``: where
    its ``model.pkl`` will be once the results are in place (default beside ``model_json``). Accuracy ``None``
    (``landcover assess`` fills it in)."""
    meta = json.loads(Path(model_json).read_text(encoding="utf-8"))
    model_file = Path(model_file) if model_file is not None else Path(model_json).with_name(meta["model_file"])
    record = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "year": int(year), "map_sha256": sha256_file(map_path),
        "legend": legend_record(model.legend),
        "model": {"kind": meta.get("kind", "random_forest"), "file": str(model_file.resolve()),
                  "sha256": meta.get("model_sha256"), "training_sample_sha256": meta.get("training_sample_sha256"),
                  "training_year": model.extra.get("training_year"), "feature_names": model.feature_names,
                  "params": model.params},
        "prediction": prediction or {},
        "accuracy": None,
    }
    return _write(sidecar_path(map_path), record)


def _write(path: Path, record: dict) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return path


def read_map_sidecar(map_path) -> dict | None:
    """The sidecar of ``map_path``, or None when it has none (a national product). InputError naming the file for
    a sidecar of ours that cannot be read."""
    path = sidecar_path(map_path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"is not readable JSON ({exc})", path=path,
                         expected="the sidecar ecoassess landcover predict wrote beside the map") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    return record


def record_accuracy(map_path, *, summary, samples: int, results_dir=None) -> Path | None:
    """Add the accuracy of ``summary`` (an :class:`~ecoassess.landcover.accuracy.AccuracySummary` of this map
    against ``samples`` reference samples) to the map's sidecar; None (and a log line) when the map has no sidecar
    of ours or is not the map its sidecar describes — the accuracy then stays in the assess results alone."""
    record = read_map_sidecar(map_path)
    if record is None:
        log.info("%s has no ecoassess sidecar (not made by landcover predict): its accuracy is in the assess "
                 "results only", map_path)
        return None
    if record.get("map_sha256") != sha256_file(map_path):
        log.warning("%s differs from the map its sidecar %s describes (changed after prediction): the accuracy is "
                    "not written into the sidecar", map_path, sidecar_path(map_path).name)
        return None
    overall, se = float(summary.overall), float(summary.overall_se)
    ci = None if se != se else [round(max(0.0, overall - Z95 * se), 6), round(min(1.0, overall + Z95 * se), 6)]

    def per_class(series):
        return {str(k): (None if v != v else round(float(v), 6)) for k, v in series.items()}

    record["accuracy"] = {
        "overall_accuracy": round(overall, 6), "overall_accuracy_se": None if se != se else round(se, 6),
        "overall_accuracy_ci95": ci, "validation_samples": int(samples), "area_weighted": bool(summary.weighted),
        "users_accuracy": per_class(summary.users), "producers_accuracy": per_class(summary.producers),
        "estimator": "Olofsson et al. 2014 (stratified, area-weighted; 95 % = ± 1.96 SE)",
        "results": None if results_dir is None else str(Path(results_dir).resolve()),
    }
    return _write(sidecar_path(map_path), record)


def map_source(year: int, source) -> dict:
    """The manifest entry of ``land_cover.<year>`` (``source``: its :class:`~ecoassess.config.RasterSource`)."""
    from ecoassess.legends import load_legend

    path = Path(source.path)
    try:
        legend = load_legend(source.legend).name if source.legend is not None else None
    except InputError:
        legend = str(source.legend)
    entry = dict.fromkeys(MAP_KEYS)
    entry.update(file=str(path), legend=legend, classified=False)
    record = read_map_sidecar(path) if path.is_file() else None
    if record is None:
        return entry
    entry["classified"] = True
    if record.get("map_sha256") != sha256_file(path):
        entry["note"] = (f"{sidecar_path(path).name} describes another map (the file changed after prediction): "
                         "its model and accuracy are not claimed for this one")
        return entry
    model = record.get("model") or {}
    entry["model"] = {k: model.get(k) for k in ("kind", "file", "sha256", "training_sample_sha256", "training_year")}
    entry["legend_file"] = (record.get("legend") or {}).get("file")
    acc = record.get("accuracy") or {}
    entry.update(overall_accuracy=acc.get("overall_accuracy"), overall_accuracy_ci95=acc.get("overall_accuracy_ci95"),
                 validation_samples=acc.get("validation_samples"))
    if record.get("legend") and legend is not None and record["legend"].get("name") != legend:
        entry["note"] = (f"the map was classified in legend {record['legend'].get('name')}, the config reads it as "
                         f"{legend}")
    return entry


def land_cover_maps(config) -> dict[str, dict]:
    """``{year: map_source(...)}`` of every configured land-cover year (year as a string, as JSON has it)."""
    return {str(y): map_source(y, config.land_cover[y]) for y in sorted(config.land_cover)}


def sources_table(maps: dict[str, dict]) -> pd.DataFrame:
    """The ``landcover_sources`` table: one row per land-cover year, what :func:`land_cover_maps` gives."""
    rows = []
    for year, m in maps.items():
        ci = m.get("overall_accuracy_ci95") or [None, None]
        model = m.get("model") or {}
        rows.append({"year": int(year), "file": m["file"], "legend": m["legend"], "classified": bool(m["classified"]),
                     "model_file": model.get("file"), "model_sha256": model.get("sha256"),
                     "overall_accuracy": m.get("overall_accuracy"), "overall_accuracy_ci95_low": ci[0],
                     "overall_accuracy_ci95_high": ci[1], "validation_samples": m.get("validation_samples"),
                     "note": m.get("note")})
    return pd.DataFrame(rows, columns=["year", "file", "legend", "classified", "model_file", "model_sha256",
                                       "overall_accuracy", "overall_accuracy_ci95_low", "overall_accuracy_ci95_high",
                                       "validation_samples", "note"])


def sidecar_legend(map_path) -> str | None:
    """The legend a classified map was predicted in (a shipped name, or its legend file's path), or None."""
    try:
        record = read_map_sidecar(map_path)
    except InputError:
        return None
    if not record or not record.get("legend"):
        return None
    file = str(record["legend"].get("file") or "")
    return file if file and not file.startswith("layers/") else record["legend"].get("name")


__all__ = ["sidecar_path", "write_map_sidecar", "read_map_sidecar", "record_accuracy", "map_source",
           "land_cover_maps", "sources_table", "sidecar_legend", "legend_record", "MAP_KEYS"]
