"""The annual assessment run: config → analysis grid and zones → the stages of :data:`STAGES` → manifest.

``run`` builds the run context (grid, zones, the inputs opened once, the results store), runs every enabled
stage of :data:`STAGES` in order (:mod:`ecoassess.stages.base` has the contract), writes everything into a
:class:`~ecoassess.store.ResultsStore` (so a failed run leaves earlier results untouched) and records a manifest.
A year whose imagery fails (for example every pixel under cloud) is reported and the rest completes, unless the
config says ``run.on_error: stop``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
from pydantic import BaseModel

from ecoassess.config import AssessmentConfig
from ecoassess.errors import EcoassessError, InputError
from ecoassess.grid import AnalysisGrid
from ecoassess.stages.base import (RunContext, RunInputs, RunResult, check_stage_order, open_year_scenes,
                                   select_stages)
from ecoassess.stages.ei import EiStage
from ecoassess.stages.landcover import LandCoverStage
from ecoassess.stages.network import NetworkStage
from ecoassess.stages.redline import RedlineStage
from ecoassess.stages.rsei import RseiStage
from ecoassess.stages.scene_quality import SceneQualityStage
from ecoassess.stages.vegetation import VegetationStage
from ecoassess.stages.vegetation_change import VegetationChangeStage

__all__ = ["STAGES", "RunResult", "run", "compute_indices", "read_study_area", "build_grid", "read_zone_sets"]

log = logging.getLogger(__name__)


#: The stages of a run, in order (ecoassess/stages/base.py: the contract). Adding a stage = its module + a line here.
STAGES = (VegetationStage(), RseiStage(), EiStage(), LandCoverStage(), VegetationChangeStage(), SceneQualityStage(),
          NetworkStage(), RedlineStage())
check_stage_order(STAGES)


# -- study area, grid, zones -----------------------------------------------------------------------------------

def read_study_area(config: AssessmentConfig) -> gpd.GeoDataFrame:
    """County polygons with a normalised six-digit ``code`` and ``name`` column (plus the original fields)."""
    from ecoassess.readers import normalise_code, read_vector

    sa = config.study_area
    gdf = read_vector(sa.path, sa.layer, key="study_area", crs=sa.crs, transformation=sa.transformation)
    gdf = gdf.assign(code=gdf[sa.id_field].map(normalise_code), name=gdf[sa.name_field].astype(str))
    return gdf

def build_grid(config: AssessmentConfig, study_area: gpd.GeoDataFrame) -> AnalysisGrid:
    """The analysis grid over the study area (config.grid: CRS default China Albers, resolution)."""
    from ecoassess.grid import grid_size_problem

    grid = AnalysisGrid.from_study_area(study_area, config.grid.resolution_m, config.grid.crs)
    # also when the grid is built without validate (build_grid from Python): from the study area's own box
    x0, y0, x1, y1 = study_area.to_crs(grid.crs.to_wkt()).total_bounds
    problem = grid_size_problem(x1 - x0, y1 - y0, config.grid.resolution_m, config.grid.max_cells)
    if problem is not None:
        raise InputError(problem.removeprefix("grid.resolution_m: "), path=config.study_area.path,
                         field="grid.resolution_m", expected="a cell size in metres that suits the study area")
    log.info("analysis grid: %d x %d cells of %.6g m (%.1f km x %.1f km)", grid.width, grid.height,
             grid.resolution, grid.width * grid.resolution / 1000, grid.height * grid.resolution / 1000)
    return grid

def compute_indices(config: AssessmentConfig, names: list[str], out, *, year: int | None = None,
                    catalog=None) -> dict:
    """Catalog indices on the year's composite, written as COGs into ``out`` (atomically, as one results folder).
    ``catalog``: an index catalog YAML of one's own (default: the shipped ``indices/spectral.yaml``)."""
    from ecoassess.cog import default_compression, write_cogs
    from ecoassess.grid import read_on_grid
    from ecoassess.sources import composite
    from ecoassess.spectral import load_catalog, share_outside_range
    from ecoassess.store import ResultsStore

    from ecoassess.validate import ensure_inputs_checked

    catalog = load_catalog(catalog)
    for name in names:
        catalog[name]  # unknown names fail before any work
    ensure_inputs_checked(config)
    year = year or config.year
    if year not in config.imagery:
        raise InputError(f"no imagery for year {year}", field=f"imagery.{year}",
                         expected=f"one of the configured years {sorted(config.imagery)}")
    study_area = read_study_area(config)
    grid = build_grid(config, study_area)
    scenes = open_year_scenes(config, year, grid)
    for name in names:  # before the composite: say which imagery lacks which band
        missing = [b for b in catalog[name].bands if b not in scenes[0].bands]
        if missing:
            raise InputError(f"index {name} needs band role(s) {', '.join(missing)}, which the {year} imagery "
                             f"({scenes[0].sensor}) does not have", field=f"imagery.{year}",
                             expected=f"imagery with {', '.join(catalog[name].bands)}")
    comp = composite(scenes, method="median", months=tuple(config.composite.months),
                     min_clear=config.composite.min_clear)
    layers = catalog.compute_many(names, comp.bands)  # one pass over the composite for all indices
    rels = {name: Path(f"{name.lower()}_{year}.tif") for name in names}
    written = {}
    with ResultsStore(Path(out)) as store, default_compression(config.outputs.compression):
        write_cogs([(layers[name], store.path(rels[name]), {"nodata": float("nan"), "dtype": "float32",
                     "tags": {"formula": catalog[name].formula, "catalog_version": catalog.version}})
                    for name in names])
        for name in names:  # the share outside the valid range, from the written file (no second composite)
            layer = read_on_grid(store.path(rels[name]), grid, dtype="float32")
            written[name] = {"path": Path(out) / rels[name], "valid_range": catalog[name].valid_range,
                             "share_outside_valid_range": share_outside_range(layer, catalog[name].valid_range)}
    return written

def run(config, out, *, scheduler: str | None = None, quiet: bool = False, force: bool = False,
        stages=None) -> RunResult:
    """Run the assessment of ``config`` (a loaded config or a path to assessment.yaml) into folder ``out``.

    ``stages``: names of the stages to run (e.g. ``["redline"]``, what ``ecoassess redline`` runs), with the
    stages whose products they need; default every stage of :data:`STAGES` the config enables.

    ``out`` is replaced only when it is empty or holds earlier ecoassess results (:mod:`ecoassess.store`); with
    ``force``, a folder holding other files gets the results in a new subfolder instead of refusing. A run
    killed halfway is resumed by the same run into the same ``out``: its completed parts are reused
    (:mod:`ecoassess.resume`). Every input is checked first (:func:`ecoassess.validate.validate_config`; once per
    config object), so a broken input is named before anything is computed.
    """
    from ecoassess.cog import default_compression
    from ecoassess.manifest import RunTimer, build_manifest, input_files, package_versions, write_manifest
    from ecoassess.materialize import memory_budget, memory_budget_mb, remove_stale_spill_folders
    from ecoassess.resume import Parts, run_key
    from ecoassess.store import ResultsStore, usable_out_dir

    from ecoassess.validate import validate_config

    selected = select_stages(STAGES, stages)   # an unknown stage name is said before the inputs are read
    config = validate_config(config)
    names = None if stages is None else [s.name for s in selected]
    out = usable_out_dir(out, force=force, stages=names)
    timer = RunTimer()
    if config.run.memory_budget_mb is None:
        memory_budget_mb()  # a bad ECOASSESS_MEMORY_BUDGET_MB stops the run here, not halfway through
    remove_stale_spill_folders()
    client = _connect(scheduler or config.run.scheduler)
    not_inputs = _results_folders_of(out)  # an --out inside an input folder: its results are not inputs
    inputs = config_input_paths(config)
    try:
        with timer.stage("run key (input hashes)"):
            key = run_key(config.to_yaml_dict(), input_files(inputs, exclude=not_inputs),
                          {**package_versions(), **_catalog_versions()})
        with ResultsStore(out, run_key=key) as store, memory_budget(config.run.memory_budget_mb), \
                default_compression(config.outputs.compression):
            with timer.stage("study area and grid"):
                study_area = read_study_area(config)
                grid = build_grid(config, study_area)
                opened = RunInputs(config, grid)
                zone_sets = read_zone_sets(config, study_area, grid, opened)
                # every cell a county covers, even in part: the tables weight it by its covered fraction
                inside = zone_sets["county"].covered(chunk=config.grid.chunk)
            result = RunResult(out_dir=out, grid=grid, warnings=opened.warnings)
            store.parts = Parts(store, result, key)
            ctx = RunContext(config, grid, study_area, zone_sets, inside, store, timer, result, opened)
            run_stages(ctx, selected)
            write_alerts(ctx)
            if config.land_cover:  # which map each land-cover year rests on, and its accuracy (issue 21 part 6)
                from ecoassess.landcover.provenance import land_cover_maps

                result.manifest.setdefault("land_cover", {})["maps"] = land_cover_maps(config)
            ctx.products.clear()  # the shared layers and opened inputs are no longer needed: free their memory
            opened.clear()
            result.table_files = dict(store.table_files)
            with timer.stage("manifest"):
                store.flush()  # the workbook, so that the manifest lists and hashes it
                resumed = {"from": store.adopted.name, "parts_s": {k: round(v, 3) for k, v in store.parts.reused.items()}
                           } if store.parts.reused else None
                manifest = build_manifest(
                    config=config.to_yaml_dict(), config_path=config.source_path, inputs=inputs,
                    exclude_inputs=not_inputs, outputs_dir=store.path("."), timings=timer.timings, grid=grid.to_dict(),
                    catalogs=_catalog_versions(), warnings=result.warnings, extra={"problems": result.problems, "memory_budget_mb": memory_budget_mb(),
                                                         "output_compression": config.outputs.compression,
                                                         "recovered": store.recovered, "resumed": resumed,
                                                         "stages": [s.name for s in selected if s.enabled(config)],
                                                         # a run limited by --stage: the report says so, not "not configured"
                                                         "limited_to_stages": names,
                                                         **_encodings(inputs), **_china_notes(config),
                                                         **result.manifest})
                write_manifest(manifest, store.path("manifest.json"))
                result.manifest = manifest
            if config.report.formats:   # a run ends with its report (issue 22); a --stage run's says what it holds
                with timer.stage("report"):
                    render_run_report(config, store, result)
            if result.problems and out.is_dir() and any(out.iterdir()):
                # a run with failed parts never replaces earlier results: its own go beside them
                result.out_dir = store.commit(target=out.with_name(f"{out.name}.incomplete"))
                result.kept_earlier = out
                log.warning("the run had problems: the earlier results in %s are kept; this run's are in %s",
                            out, result.out_dir)
        if resumed:
            log.info("resumed the interrupted run: %d part(s) reused, %.1f s of work saved", len(resumed["parts_s"]),
                     sum(resumed["parts_s"].values()))
        result.layers = {k: result.out_dir / v for k, v in result.layers.items()}
        result.maps = {k: result.out_dir / v for k, v in result.maps.items()}
        result.files = {k: result.out_dir / v for k, v in result.files.items()}
        return result
    finally:
        if client is not None:
            client.close()


def render_run_report(config: AssessmentConfig, store, result: RunResult) -> None:
    """The report of the run, rendered from its staged results into ``report/<lang>/`` in every configured
    language and format; the manifest is re-written so that it lists the report files. A report that fails is a
    failed part of the run (the results are kept)."""
    import json

    from ecoassess.files import MANIFEST_NAME
    from ecoassess.manifest import write_manifest
    from ecoassess.report import write_report
    from ecoassess.stages.base import record_failure

    spec = config.report
    manifest_path = store.path(MANIFEST_NAME)
    try:
        written = write_report(store.staging, spec.languages, spec.formats, spec.tile_url, spec.tile_attribution,
                               in_place=True)
    except Exception as exc:  # noqa: BLE001 - a broken report must not cost the run's results
        if not isinstance(exc, EcoassessError):
            log.debug("report failed", exc_info=True)
            exc = EcoassessError(f"{type(exc).__name__}: {exc}")
        record_failure(config, result, "report", exc)
    else:
        for key, path in written.items():
            result.files[f"report {key}"] = path.relative_to(store.staging)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["warnings"] = [str(w) for w in result.warnings]
    manifest.setdefault("extra", {})["problems"] = list(result.problems)
    write_manifest(manifest, manifest_path)
    result.manifest = manifest


def run_stages(ctx: RunContext, stages) -> None:
    """Run every enabled stage in order. A stage that fails is recorded as a problem of the run and the next
    stages go on (``run.on_error: stop`` and a full disk stop the run); when no stage completed anything, the run
    fails with every problem listed."""
    for stage in stages:
        reason = stage.skip_reason(ctx.config)
        if reason is not None:
            log.warning("stage %s skipped: %s", stage.name, reason)
            ctx.result.warnings.append(f"stage {stage.name} skipped: {reason}")
            ctx.result.manifest.setdefault("skipped_stages", []).append({"stage": stage.name, "reason": reason})
            continue
        if not stage.enabled(ctx.config):
            log.debug("stage %s: not asked for by the config", stage.name)
            continue
        log.info("stage %s", stage.name)
        try:
            stage.run(ctx)
        except EcoassessError as exc:
            ctx.failed(stage.name, exc)
    if not ctx.result.tables:
        why = ctx.result.problems + [f"{s['stage']} skipped: {s['reason']}"
                                     for s in ctx.result.manifest.get("skipped_stages", [])]
        raise EcoassessError("no part of the run completed:\n  " + "\n  ".join(why or ["the config enables no stage"]))


def write_alerts(ctx: RunContext) -> None:
    """The run's early warnings (预警) as one table, ``early_warnings``: the rules of ``indices/early_warning.yaml``
    applied to the tables of the run (:func:`ecoassess.report.warnings.derive_warnings`), worded in the run's
    language. Written also when empty, so that "no warning" is told apart from "not computed" (a script reading
    it finds it in every results folder)."""
    from ecoassess.report.warnings import derive_warnings
    from ecoassess.stages.common import formats

    # not strict: a table may lack a column for want of data (no SO2 observed all year); the rule file itself was
    # checked when loaded
    table = derive_warnings(ctx.result.tables, lang=ctx.config.outputs.lang, strict=False)
    ctx.store.write_table("early_warnings", table, **formats(ctx.config),
                          description="early warnings (预警) of the run, one row per finding, with level, rule and "
                                      "source (indices/early_warning.yaml)")
    ctx.result.tables["early_warnings"] = table


def _results_folders_of(out: Path):
    """A predicate: whether a path lies in the results folder ``out`` or in its staging/backup folders beside it."""
    def inside(path: Path) -> bool:
        try:
            first = Path(path).absolute().relative_to(out.parent).parts[0]
        except (ValueError, IndexError):
            return False
        return first == out.name or first.startswith(f"{out.name}.")
    return inside

def read_zone_sets(config: AssessmentConfig, study_area: gpd.GeoDataFrame, grid: AnalysisGrid,
                   inputs: RunInputs | None = None) -> dict:
    """Counties, the whole study area (one dissolved zone) and every configured zone set, on the grid.
    ``inputs``: the run's opened inputs (a zone file the stages read again is then read once)."""
    from ecoassess.zones import ZoneSet

    inputs = inputs or RunInputs(config, grid)

    sets = {"county": ZoneSet.from_gdf(study_area, grid, id_field="code", name_field="name", kind="county",
                                       source=config.study_area.path)}
    sets["study_area"] = ZoneSet.from_gdf(_dissolve(sets["county"].gdf, config), grid, id_field="code",
                                          name_field="name", kind="study_area", source=config.study_area.path)
    for name, source in config.zones.items():
        gdf = inputs.vector(source.path, source.layer, key=f"zones.{name}", crs=source.crs,
                            transformation=source.transformation)
        sets[name] = ZoneSet.from_gdf(gdf, grid, id_field=source.id_field, name_field=source.name_field, kind=name,
                                      source=source.path)
    return sets

def _encodings(inputs) -> dict:
    """``{"input_encodings": ...}`` when a vector input's text encoding had to be detected (a shapefile without
    .cpg), else nothing: the manifest says which encoding the names were read with."""
    from ecoassess.readers import input_encodings

    found = input_encodings(inputs)
    return {"input_encodings": found} if found else {}

def _china_notes(config: AssessmentConfig) -> dict:
    """``input_warnings`` (validate's doubts that did not stop the run) and ``coordinate_conversions`` (layers
    declared gcj02/bd09 or moved by a configured datum transformation), each only when there are any."""
    from ecoassess.china import CONVERTED_NOTE, is_web_map_crs, web_map_kind

    conversions = {}
    sources = [("study_area", config.study_area), *((f"zones.{n}", z) for n, z in config.zones.items()),
               *((k, s) for k, s in (("rivers", config.rivers), ("change_truth", config.change_truth)) if s),
               *((f"stations.{k}", s) for k, s in config.stations.items())]
    for key, source in sources:
        path = str(getattr(source, "path", None) or getattr(source, "sites"))
        if source.crs is not None and is_web_map_crs(source.crs):
            conversions[key] = {"path": path, "conversion": CONVERTED_NOTE[web_map_kind(source.crs)]}
        elif source.transformation is not None:
            conversions[key] = {"path": path, "conversion": f"datum transformation from the config: "
                                                            f"{source.transformation}"}
    notes = {"input_warnings": list(config._input_warnings)} if config._input_warnings else {}
    return {**notes, **({"coordinate_conversions": conversions} if conversions else {})}

def _catalog_versions() -> dict:
    from ecoassess.assess.rsei import rsei_spec
    from ecoassess.legends import load_legend
    from ecoassess.spectral import load_catalog
    from ecoassess.tables import statistics_spec

    from ecoassess.assess.erosion import rusle_table
    from ecoassess.assess.hj192_coefficients import load_hj192
    from ecoassess.layers.vegetation_change import change_spec
    from ecoassess.legends import available_legends

    from ecoassess.report.warnings import load_rules
    from ecoassess.sources.reflectance_range import reflectance_spec

    versions = {"indices/spectral.yaml": load_catalog().version, "indices/rsei.yaml": rsei_spec()["version"],
                "indices/early_warning.yaml": str(load_rules()["version"]),
                "indices/reflectance.yaml": reflectance_spec()["version"],
                "indices/statistics_table.yaml": statistics_spec()["version"],
                "indices/hj192_2015.yaml": load_hj192().version, "indices/rusle.yaml": rusle_table().get("version", ""),
                "indices/vegetation_change.yaml": change_spec()["version"]}
    versions.update({f"layers/{name}.yaml": load_legend(name).version for name in available_legends()})
    return versions

def _dissolve(gdf: gpd.GeoDataFrame, config: AssessmentConfig) -> gpd.GeoDataFrame:
    name = "全区" if config.outputs.lang == "zh" else "study area"
    return gpd.GeoDataFrame({"code": ["000000"], "name": [name]}, geometry=[gdf.union_all()], crs=gdf.crs)

def config_input_paths(config: AssessmentConfig) -> list[Path]:
    """Every file or folder a config names (for the manifest's input list)."""
    found: list[Path] = []

    def walk(value):
        if isinstance(value, Path):
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                if name != "source_path":
                    walk(getattr(value, name))

    walk(config)
    from ecoassess.landcover.provenance import sidecar_path

    # a classified map's sidecar (its model and accuracy) is part of the input: a later assess changes the run key
    found += [sidecar_path(s.path) for s in config.land_cover.values() if sidecar_path(s.path).is_file()]
    return sorted(set(found))

def _connect(address: str | None):
    if not address:
        return None
    from distributed import Client

    log.info("running on the dask.distributed scheduler at %s", address)
    try:
        return Client(address)
    except (ValueError, OSError, TimeoutError) as exc:
        raise InputError(f"cannot connect to {address!r} ({exc})", field="run.scheduler / --scheduler",
                         expected="the address of a running dask.distributed scheduler, e.g. tcp://10.0.0.5:8786"
                         ) from exc
