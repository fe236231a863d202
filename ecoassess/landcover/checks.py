"""``validate``'s checks of the ``landcover_model`` section (issue 21): samples readable with their label column,
legends, catalog indices, the years and inputs the features and the update mode need, a saved model's sidecar —
read, not computed. Each problem names the key, the file and what was expected."""

from __future__ import annotations

import json


def landcover_problems(config) -> list[str]:
    spec = config.landcover_model
    if spec is None:
        return []
    from ecoassess.errors import InputError
    from ecoassess.legends import available_legends
    from ecoassess.spectral import load_catalog

    problems: list[str] = []
    legends = available_legends()
    if spec.legend not in legends:
        problems.append(f"landcover_model.legend: unknown legend '{spec.legend}' (expected one of {', '.join(legends)})")
    year = spec.training_year or config.year
    if year not in config.imagery:
        problems.append(f"landcover_model.training_year: no imagery.{year} to build the features from "
                        f"(imagery years: {sorted(config.imagery)})")
    catalog = load_catalog()
    for name in spec.indices or []:
        if name not in catalog:
            problems.append(f"landcover_model.indices: '{name}' is not an index of the catalog (indices/spectral.yaml)")
    if spec.terrain and config.dem is None:
        problems.append("landcover_model.terrain: elevation/slope need a DEM (dem: {path: ...})")
    if spec.update and (config.year - 1 not in config.land_cover or config.year - 1 not in config.imagery):
        problems.append(f"landcover_model.update: needs land_cover.{config.year - 1} and imagery.{config.year - 1} "
                        "(last year's map and its spectral change)")
    if spec.training is None and spec.model is None:
        problems.append("landcover_model: give training samples (training: {path: ...}) or a saved model (model: ...)")
    for key in ("training", "validation"):
        source = getattr(spec, key)
        if source is None:
            continue
        if source.legend not in legends:
            problems.append(f"landcover_model.{key}.legend: unknown legend '{source.legend}' "
                            f"(expected one of {', '.join(legends)})")
            continue
        from ecoassess.landcover.samples import read_samples

        try:
            read_samples(source.path, class_field=source.class_field, legend=source.legend,
                         map_legend=spec.legend if spec.legend in legends else None, id_field=source.id_field,
                         x_field=source.x_field, y_field=source.y_field, crs=source.crs,
                         transformation=source.transformation, layer=source.layer, sheet=source.sheet)
        except InputError as exc:
            problems.append(f"landcover_model.{key}: {exc}")
    if spec.model is not None:
        sidecar = spec.model / "model.json" if spec.model.is_dir() else spec.model.with_name("model.json")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            if not {"feature_names", "classes", "model_sha256"} <= set(meta):
                problems.append(f"landcover_model.model: {sidecar} is not a model sidecar (feature_names, classes, "
                                "model_sha256 expected; written by ecoassess landcover train)")
        except (OSError, ValueError) as exc:
            problems.append(f"landcover_model.model: {sidecar} cannot be read ({exc}); expected the model.json "
                            "ecoassess landcover train writes")
    return problems
