"""The stage contract: what a stage of a run is, the context it runs in, and the inputs it shares (issue 17).

A stage is one module in ``ecoassess/stages/`` holding one :class:`Stage` subclass:

* ``name``: how logs, timings, problems and the resume store name it;
* ``needs``: products of earlier stages it cannot run without; ``uses``: products it takes when present (else it
  makes what it needs itself); ``provides``: the products it leaves in the context for later stages;
* ``enabled(config)``: whether the config asks for it; ``run(ctx)``: the work, writing into ``ctx.store`` and
  recording tables, layers, maps and problems in ``ctx.result``.

:data:`ecoassess.pipeline.STAGES` lists the stages in order; :func:`check_stage_order` proves every ``needs`` is
provided by an earlier stage. Adding a stage = its module + one line in that list + its config model.

Inputs are opened once per run through :class:`RunInputs` (``ctx.inputs``): the scenes of a year, the thermal
product, land cover, vector files. A stage never opens a configured file on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import xarray as xr

from ecoassess.config import AssessmentConfig
from ecoassess.errors import DiskSpaceError, InputError
from ecoassess.grid import AnalysisGrid

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run made: tables, written layers and maps (relative to ``out_dir`` until the run ends), problems."""

    out_dir: Path
    grid: AnalysisGrid
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    layers: dict[str, Path] = field(default_factory=dict)
    maps: dict[str, Path] = field(default_factory=dict)
    #: other outputs a user opens (the red-line ledger workbook, its chips folder), listed in the run summary
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: what a reader of the results must know but did not stop any part (a scene without a cloud mask, ...): in the
    #: manifest's ``warnings`` and the run summary
    warnings: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    #: when a run with problems found complete results of an earlier run in the folder asked for, it leaves them
    #: there and writes its own beside them (``out_dir`` = ``<out>.incomplete``); this is the folder kept
    kept_earlier: Path | None = None
    #: table name → the files (relative to ``out_dir``) it was written to, set when the run ends
    table_files: dict[str, list[str]] = field(default_factory=dict)


#: the columns of the run's ``early_warnings`` table (one row per finding, derived from the result tables by the
#: rules of ``indices/early_warning.yaml``: :func:`ecoassess.report.warnings.derive_warnings`); ``level`` first
#: (警示/关注), so that a reader sorts by it
ALERT_COLUMNS = ("level", "stage", "rule", "county_code", "county_name", "subject_type", "subject_id", "subject_name",
                 "indicator", "value", "limit", "unit", "source", "message")


class RunInputs:
    """The configured inputs of one run, each opened at most once and shared by every stage.

    Opening is lazy (headers and metadata; pixels are read when a chunk is computed), so a cached scene costs
    no memory until used. ``opened`` counts the opens per input, for the log and for tests.
    """

    def __init__(self, config: AssessmentConfig, grid: AnalysisGrid):
        self.config, self.grid = config, grid
        self._cache: dict[tuple, Any] = {}
        self.opened: dict[str, int] = {}
        #: notes on the opened inputs for the manifest and the run summary (a scene without a cloud mask)
        self.warnings: list[str] = []

    def _once(self, key: tuple, label: str, make):
        if key not in self._cache:
            self._cache[key] = make()
            self.opened[label] = self.opened.get(label, 0) + 1
        return self._cache[key]

    def scenes(self, year: int) -> list:
        """Every scene configured for ``year`` (``imagery.<year>``), on the grid with the config's masking; a scene
        listed twice is refused (:func:`refuse_duplicate_scenes`)."""
        # checked once per year: every stage and composite asks for the scenes, and the check reads each
        # product's metadata and walks its folder
        self._once(("no duplicate scenes", year), f"duplicate check imagery.{year}",
                   lambda: refuse_duplicate_scenes(self.config, year))
        return [self.scene(spec) for spec in self.config.imagery.get(year, [])]

    def composite(self, year: int, method: str, *, range_counts_later: bool = False):
        """The year's composite (``median`` or ``monthly_max_ndvi``) of its scenes, with ``composite.months`` and
        ``composite.min_clear``; built once per run (lazy: pixels are read when a stage computes it).

        Its scenes are chosen on their mask counts; the range counts of the scenes kept (they read every band) are
        computed here in a pass of their own, unless ``range_counts_later``: then the caller computes them in the
        pass that reads the composite (:func:`~ecoassess.sources.composite.pending_range_counts`), and when the
        composite turns out :attr:`~ecoassess.sources.composite.Composite.stale` calls :meth:`drop_stale_composites`
        and asks again."""
        from ecoassess.sources.composite import pending_range_counts, settle_range_counts

        comp = self._once(("composite", year, method), f"composite {year} {method}",
                          lambda: self._make_composite(year, method))
        if range_counts_later:
            return comp
        pending, _ = pending_range_counts(comp)
        if pending:
            settle_range_counts(pending)
        if self.drop_stale_composites(year):
            return self.composite(year, method)
        return comp

    def _make_composite(self, year: int, method: str):
        from ecoassess.sources import composite

        c = self.config.composite
        return composite(self.scenes(year), method=method, months=tuple(c.months), min_clear=c.min_clear,
                         range_counts_later=True)

    def drop_stale_composites(self, year: int) -> bool:
        """Forget the year's composites when one keeps a scene that has, with its range counts in, no clear pixel;
        made again, they drop it (as the eager check of :func:`~ecoassess.sources.composite` does). True if so."""
        keys = [("composite", year, m) for m in ("median", "monthly_max_ndvi") if ("composite", year, m) in self._cache]
        if not any(self._cache[k].stale for k in keys):
            return False
        log.info("%d: a scene has no clear observation once reflectance outside its physical range is masked; "
                 "the composites of %d are made again without it", year, year)
        for k in keys:
            del self._cache[k]
        return True

    def thermal(self, year: int):
        """The thermal product of ``year`` (``thermal.<year>``), opened like the imagery (same masking)."""
        return self.scene(self.config.thermal[year])

    def scene(self, spec):
        """One configured product (a ``SceneSpec``), opened once however many stages and years list it."""
        label = str(spec.path) if spec.path is not None else ", ".join(sorted(str(_ref_path(b))
                                                                             for b in (spec.bands or {}).values()))
        key = ("scene", spec.model_dump_json())
        return self._once(key, label, lambda: self._noted(spec, open_product(self.config, spec, self.grid)))

    def _noted(self, spec, scene):
        """``scene``, with a warning recorded when it has no cloud mask (every observed pixel then counts as clear:
        clouds and their shadows go into the composites and the tables)."""
        if scene.metadata.get("qa_available") is False:
            imagery, thermal = spec_keys(self.config, spec)
            where = ", ".join(imagery + thermal) or str(spec.path or "a scene")
            why = scene.metadata.get("qa_note") or ("no mask raster given (mask: {path, clear_values | "
                                                    "masked_values}): every observed pixel counts as clear")
            self.warnings.append(f"{where}: no cloud mask for scene {scene.id} ({why})")
        return scene

    def land_cover(self, year: int) -> xr.DataArray | None:
        """The land-cover classes of ``year`` on the grid (nearest neighbour; outside the raster the legend's
        nodata), or None when not configured."""
        source = self.config.land_cover.get(year)
        if source is None:
            return None
        return self._once(("land_cover", year), f"land_cover.{year}", lambda: _read_land_cover(self.config, year,
                                                                                             self.grid))

    def dem(self) -> xr.DataArray:
        """The DEM (``dem``) on the grid, heights in the file's or ``dem.z_units``' unit, voids as nodata."""
        from ecoassess.layers.dem import read_dem

        spec = self.config.dem
        return self._once(("dem",), "dem", lambda: read_dem(spec.path, self.grid, band=spec.band, crs=spec.crs,
                                                            z_units=spec.z_units, chunk=self.config.grid.chunk))

    def raster(self, path, **options) -> xr.DataArray:
        """Another raster (e.g. a RUSLE factor) on the grid, read once per run (:func:`~ecoassess.grid.read_on_grid`)."""
        from ecoassess.grid import read_on_grid

        key = ("raster", str(path), tuple(sorted(options.items())))
        return self._once(key, str(path), lambda: read_on_grid(path, self.grid, chunk=self.config.grid.chunk,
                                                               **options))

    def table(self, path, sheet=None) -> pd.DataFrame:
        """A CSV/Excel table (:func:`ecoassess.readers.read_table`), read once per run; callers get a copy."""
        from ecoassess.readers import read_table

        return self._once(("table", str(path), sheet), str(path), lambda: read_table(path, sheet)).copy()

    def legend(self, year: int):
        """The legend of the year's land cover (``land_cover.<year>.legend``: a shipped ``layers/<legend>.yaml`` or
        the path of the user's legend file)."""
        from ecoassess.legends import load_legend

        return load_legend(self.config.land_cover[year].legend)

    def water(self, year: int) -> xr.DataArray | None:
        """Open water of the year's land cover (its legend's water classes; bool, lazy), or None without land cover."""
        layer = self.land_cover(year)
        return None if layer is None else self.legend(year).water_mask(layer)

    def vector(self, path, layer=None, *, key: str | None = None, crs: str | None = None,
               transformation=None) -> gpd.GeoDataFrame:
        """A vector file (:func:`ecoassess.readers.read_vector`: its text encoding found, declared ``crs`` and
        ``transformation`` applied) read once per run; callers get their own copy, so nothing one stage does to it
        leaks into another. ``key``: config field."""
        from ecoassess.readers import read_vector

        tkey = tuple(transformation) if isinstance(transformation, list) else transformation
        return self._once(("vector", str(path), layer, crs, tkey), str(path),
                          lambda: read_vector(path, layer, key=key, crs=crs, transformation=transformation)).copy()

    def clear(self) -> None:
        self._cache.clear()


@dataclass
class RunContext:
    """Everything a stage works with: config, grid, zones, shared inputs, the results store and the run's record."""

    config: AssessmentConfig
    grid: AnalysisGrid
    study_area: gpd.GeoDataFrame
    zone_sets: dict            # name → ZoneSet: "county", "study_area" and every configured zone set
    inside: xr.DataArray       # cells any county covers, even in part (the tables weight them by coverage)
    store: Any                 # ecoassess.store.ResultsStore
    timer: Any                 # ecoassess.manifest.RunTimer
    result: RunResult
    inputs: RunInputs
    products: dict[str, Any] = field(default_factory=dict)

    def provide(self, name: str, value) -> None:
        """Leave a product for later stages (declared in the stage's ``provides``). A product holds what was
        computed in this run: parts reused from an interrupted run's staging (:mod:`ecoassess.resume`) are not in
        it, so a stage that ``uses`` a product makes what is missing itself."""
        self.products[name] = value

    def product(self, name: str, default=None):
        """A product of an earlier stage, or ``default`` when no earlier stage made it in this run."""
        return self.products.get(name, default)

    def failed(self, what: str, exc) -> None:
        """Record a failed part of the run, or re-raise when the config says ``run.on_error: stop``."""
        record_failure(self.config, self.result, what, exc)


class Stage:
    """One step of a run (see the module docstring for the contract)."""

    name: str = ""
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    #: what the stage makes from imagery (e.g. "NDVI and FVC"); a stage that sets it is skipped, with that said,
    #: in a run without imagery (a land-cover-only assessment)
    needs_imagery: str = ""

    def enabled(self, config: AssessmentConfig) -> bool:
        return True

    def skip_reason(self, config: AssessmentConfig) -> str | None:
        """Why the stage is skipped although the assessment would include it (said in the log, the manifest's
        ``skipped_stages`` and warnings, and the run summary); None when it runs or is simply not configured."""
        if self.needs_imagery and not config.imagery and not config.thermal:
            return f"needs imagery for {self.needs_imagery}; the run has none (imagery.<year>)"
        return None

    def run(self, ctx: RunContext) -> None:
        raise NotImplementedError(f"stage {self.name!r} has no run()")


def check_stage_order(stages) -> None:
    """Raise ValueError when a stage needs a product that no earlier stage in ``stages`` provides."""
    provided: set[str] = set()
    names: set[str] = set()
    for stage in stages:
        if not stage.name or stage.name in names:
            raise ValueError(f"stage {type(stage).__name__} needs a unique name, got {stage.name!r}")
        names.add(stage.name)
        missing = [n for n in stage.needs if n not in provided]
        if missing:
            raise ValueError(f"stage {stage.name!r} needs {', '.join(missing)}, which no earlier stage provides")
        provided.update(stage.provides)


def select_stages(stages, only=None) -> tuple:
    """The stages of ``stages`` named in ``only`` and every earlier stage whose products they need (transitively),
    in run order; all of them when ``only`` is None. An unknown name is an :class:`InputError` listing the names."""
    stages = tuple(stages)
    if only is None:
        return stages
    names = [s.name for s in stages]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise InputError(f"unknown stage(s) {', '.join(map(repr, unknown))}", field="stages",
                         expected=f"one of {', '.join(names)}")
    wanted = set(only)
    for stage in reversed(stages):          # a stage's needs are provided by earlier stages (check_stage_order)
        if stage.name in wanted:
            wanted.update(s.name for s in stages if set(s.provides) & set(stage.needs))
    return tuple(s for s in stages if s.name in wanted)


# -- opening the configured inputs (what RunInputs caches) ---------------------------------------------------------

def scene_options(config: AssessmentConfig, kind: str, grid: AnalysisGrid) -> dict:
    """Reader options every product of ``kind`` is opened with: the grid, the chunk and the config's masking."""
    options = {"grid": grid, "chunk": config.grid.chunk}
    if kind == "sentinel2_l2a" and config.masking.scl_classes is not None:
        options["mask_scl"] = tuple(config.masking.scl_classes)
    if kind == "landsat_c2l2" and config.masking.landsat_flags is not None:
        options["mask_flags"] = tuple(config.masking.landsat_flags)
    return options


def open_product(config: AssessmentConfig, spec, grid: AnalysisGrid):
    """One configured product (``imagery.<year>[i]`` or ``thermal.<year>``) opened lazily on ``grid`` with the
    config's masking; a Landsat thermal product gets ``masking.landsat_flags`` like the imagery (its clear mask is
    RSEI's when it carries the optical bands too)."""
    from ecoassess.sources import open_scene

    options = scene_options(config, spec.kind, grid)
    if spec.kind == "landsat_c2l2":
        options.update(product_needs(config, spec))
    if spec.kind == "geotiff":
        options.update(bands={k: band_ref(v) for k, v in spec.bands.items()}, date=spec.date,
                       sensor=spec.sensor or "geotiff", scale=spec.scale, offset=spec.offset,
                       nodata=spec.nodata, mask=spec.mask.model_dump() if spec.mask else None)
        return open_scene("geotiff", **options)
    return open_scene(spec.kind, path=spec.path, **options)


def spec_keys(config: AssessmentConfig, spec) -> tuple[list[str], list[str]]:
    """The config keys that list ``spec``: (``imagery.<year>[i]`` keys, ``thermal.<year>`` keys)."""
    imagery = [f"imagery.{y}[{i}]" for y, specs in config.imagery.items() for i, s in enumerate(specs) if s == spec]
    thermal = [f"thermal.{y}" for y, s in config.thermal.items() if s == spec]
    return imagery, thermal


def product_needs(config: AssessmentConfig, spec) -> dict:
    """What the configured stages read from a Landsat C2 L2 product, as reader options: ``bands`` (SR_B2–SR_B7: the
    vegetation stages' composite, NDVI, FVC and MNDWI, and RSEI's WET and NDBSI), ``thermal`` (the surface
    temperature, needed only when the product is RSEI's ``thermal.<year>``) and ``needed_by`` (who needs each band,
    for the message when it is missing). A band no stage reads may be absent."""
    from ecoassess.sources.landsat import REQUIRED_ROLES

    imagery, thermal = spec_keys(config, spec)
    rsei = config.rsei.enabled and bool(thermal)
    who = []
    if imagery:
        who.append(f"the vegetation stages ({', '.join(imagery)}) need")
    if rsei:
        who.append(f"RSEI ({', '.join(thermal)}) needs")
    who = " and ".join(who) or "every stage that opens this product needs"
    needed_by = {role: f"{who} the {role} reflectance" for role in REQUIRED_ROLES}
    if rsei:
        needed_by["thermal"] = f"RSEI ({', '.join(thermal)}) needs the surface temperature"
    return {"bands": REQUIRED_ROLES, "thermal": True if rsei else None, "needed_by": needed_by}


def open_year_scenes(config: AssessmentConfig, year: int, grid: AnalysisGrid) -> list:
    """Every scene configured for ``year``, opened lazily on ``grid`` with the config's masking (a scene listed
    twice is refused)."""
    refuse_duplicate_scenes(config, year)
    return [open_product(config, spec, grid) for spec in config.imagery.get(year, [])]


def refuse_duplicate_scenes(config: AssessmentConfig, year: int) -> None:
    """InputError when a scene of ``imagery.<year>`` is listed twice (same product id, or GeoTIFF band files of the
    same content): it would count twice in the composite (:mod:`ecoassess.sources.duplicates`)."""
    from ecoassess.errors import InputError
    from ecoassess.sources.duplicates import duplicate_problems

    repeated = duplicate_problems(f"imagery.{year}", config.imagery.get(year, []))
    if repeated:
        raise InputError("; ".join(repeated), path=config.source_path, field=f"imagery.{year}",
                         expected="each scene listed once")


def band_ref(ref):
    """A config band reference as the GeoTIFF reader takes it: a path, or {path, band, scale, offset, nodata, crs,
    transform} with only the keys given (the scene's scale/offset/nodata apply to the others)."""
    if not hasattr(ref, "band"):
        return ref
    return {"path": ref.path, "band": ref.band,
            **{k: v for k, v in ref.model_dump(exclude={"path", "band"}).items() if v is not None}}


def _ref_path(ref):
    return ref.path if hasattr(ref, "path") else ref


def _read_land_cover(config: AssessmentConfig, year: int, grid: AnalysisGrid) -> xr.DataArray:
    from ecoassess.grid import read_on_grid
    from ecoassess.legends import load_legend

    source = config.land_cover[year]
    legend = load_legend(source.legend)
    lc = read_on_grid(source.path, grid, band=source.band, kind="classes", crs=source.crs, chunk=config.grid.chunk,
                      name=f"land_cover_{year}", dst_nodata=legend.nodata)
    lc.attrs["nodata"] = legend.nodata
    return lc


def record_failure(config: AssessmentConfig, result: RunResult, what: str, exc) -> None:
    """Record a failed part of the run (or re-raise when the config says to stop at the first error)."""
    if config.run.on_error == "stop" or isinstance(exc, DiskSpaceError):
        raise exc  # a full disk is not one part's failure: the rest would fail the same way
    message = f"{what}: {exc}"
    log.error(message)
    result.problems.append(message)
