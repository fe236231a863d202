"""Checks of a parsed config against its input files, without computing anything (``ecoassess validate``).

Each check returns problems as sentences that name the config key, the file, the field and what was expected.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from pyproj.exceptions import CRSError, ProjError

from pydantic import ValidationError

from ecoassess.config import (AssessmentConfig, SceneSpec, StationSource, TableSource, VectorSource, parse_config,
                              read_config_file)
from ecoassess.errors import ConfigError, InputError
from ecoassess.legends import available_legends
from ecoassess.readers import normalise_code, read_table, read_vector, vector_info

log = logging.getLogger(__name__)

#: land cover and the DEM must cover at least this share of the study area's bounding box
MIN_RASTER_COVER = 0.5


class StudyExtent(NamedTuple):
    """The study area's bounding box in its own CRS, and the analysis grid CRS (metres) for distances."""

    path: Path
    crs: ProjCRS
    bounds: tuple[float, float, float, float]
    grid_crs: ProjCRS


def validate_config(path) -> AssessmentConfig:
    """Load ``path``, check its schema and every input it names (headers and metadata, no pixels); raise
    ConfigError listing every problem at once — also the input problems of the sections whose schema is fine.
    ``path`` may also be a loaded config: its inputs are then checked (once per config object)."""
    if isinstance(path, AssessmentConfig):
        return ensure_inputs_checked(path)
    path = Path(path)
    raw = read_config_file(path)
    try:
        config = parse_config(raw, base_dir=path.parent.resolve(), source=path)
    except ConfigError as schema_error:
        more = _input_problems_beside(schema_error, raw, path)
        if more:
            raise ConfigError(path, schema_error.problems + more) from None
        raise
    config.source_path = path.resolve()
    return ensure_inputs_checked(config)


def ensure_inputs_checked(config: AssessmentConfig) -> AssessmentConfig:
    """``config`` once its inputs are checked; ConfigError listing the problems. Checked again only when the
    config was changed since (e.g. a path edited in a notebook)."""
    state = config.model_dump_json()
    if config._inputs_checked != state:
        problems = check_inputs(config)
        if problems:
            raise ConfigError(config.source_path or "<config>", problems)
        config._input_warnings = input_warnings(config)
        config._inputs_checked = state
    return config


def input_warnings(config: AssessmentConfig) -> list[str]:
    """Doubts about inputs that do not stop a run (each logged as a warning; the run's manifest lists them under
    ``extra.input_warnings``): broken ``.prj`` files, old datums without a transformation, GB/T 2260 codes that are
    unknown, abolished or named otherwise, county areas far from their reference, a layer offset from the study
    area like GCJ-02."""
    from ecoassess.china import gcj_offset_warning, old_datum_warning, prj_problem

    found: list[str] = []
    area = _study_extent(config)
    grid_crs = area.grid_crs if area is not None else None
    sa = config.study_area
    vectors = [("study_area", sa)] + [(f"zones.{n}", z) for n, z in config.zones.items()]
    vectors += [(k, s) for k, s in (("rivers", config.rivers), ("change_truth", config.change_truth)) if s is not None]
    for key, source in vectors:
        if (problem := prj_problem(source.path)) is not None:
            found.append(f"{key}.path: {problem}")
        if grid_crs is not None and source.crs is None:
            try:
                crs = vector_info(source.path, layer=source.layer).get("crs")
            except Exception:  # noqa: BLE001 - named by the checks
                crs = None
            if crs is not None and (w := old_datum_warning(key, source.path, crs, grid_crs, source.transformation)):
                found.append(w)
    for kind, station in config.stations.items():
        from ecoassess.china import is_web_map_crs

        if grid_crs is not None and not is_web_map_crs(station.crs):
            if (w := old_datum_warning(f"stations.{kind}", station.sites, station.crs, grid_crs,
                                       station.transformation)):
                found.append(w)
    found += station_warnings(config)
    found += cloud_mask_warnings(config)
    from ecoassess.redline.checks import redline_warnings

    found += redline_warnings(config)
    try:
        study = read_vector(sa.path, sa.layer, key="study_area", crs=sa.crs, transformation=sa.transformation)
    except InputError:
        study = None
    if study is not None and sa.codes == "gbt2260":
        from ecoassess.admin_codes import code_warnings

        found += code_warnings(((i + 1, normalise_code(c), n) for i, (c, n) in
                                enumerate(zip(study[sa.id_field], study[sa.name_field]))),
                               key="study_area", path=sa.path)
    if study is not None and sa.reference_area_field is not None and sa.reference_area_field in study.columns:
        from ecoassess.admin_codes import area_warnings

        found += area_warnings(study, code_field=sa.id_field, name_field=sa.name_field,
                               reference_field=sa.reference_area_field, key="study_area", path=sa.path)
    if study is not None and study.crs is not None and grid_crs is not None:
        for name, zone in config.zones.items():
            if zone.crs is not None:
                continue  # declared: converted as declared
            try:
                gdf = read_vector(zone.path, zone.layer, key=f"zones.{name}", transformation=zone.transformation)
                w = gcj_offset_warning(f"zones.{name}", zone.path, gdf, study, grid_crs)
            except Exception:  # noqa: BLE001 - an unreadable layer is named by the checks
                w = None
            if w:
                found.append(w)
    for message in found:
        log.warning("%s", message)
    return found


def _input_problems_beside(schema_error: ConfigError, raw: dict, path: Path) -> list[str]:
    """The input checks of the sections without schema errors, so that ``validate`` lists everything at once:
    the faulty top-level sections are left out (not possible for the required ``year`` and ``study_area``, or
    for errors between sections), the rest is parsed again and its inputs checked."""
    locations = getattr(schema_error, "locations", [])
    if not locations or not all(locations):  # an error between sections has no location
        return []
    faulty = {loc[0] for loc in locations}
    if faulty & {"year", "study_area"}:
        return []
    rest = {k: v for k, v in raw.items() if k not in faulty}
    try:
        config = AssessmentConfig.model_validate(rest, context={"base_dir": path.parent.resolve()})
    except ValidationError:
        return []
    config.source_path = path.resolve()
    return [p for p in check_inputs(config) if p not in schema_error.problems]


def check_inputs(config: AssessmentConfig) -> list[str]:
    """All problems found in the inputs named by ``config`` (empty list = ready to run)."""
    problems: list[str] = []
    problems += _check_grid(config)
    study_area_problems = _check_study_area(config)
    problems += study_area_problems
    area = None if study_area_problems else _study_extent(config)
    if area is not None and _looks_like_degrees(area):
        problems.append(f"study_area: {area.path} has coordinates {_fmt_bounds(area.bounds)}, which look like degrees, "
                        f"but its CRS {_crs_name(area.crs)} counts in metres: a wrong CRS label? (expected the CRS "
                        "the coordinates are in, e.g. EPSG:4490)" + _prj_note(area.path))
        area = None  # every raster would seem to miss it: say it once, here
    if area is not None and (zone_problem := _zone_prefix_problem(area)):
        problems.append(zone_problem)
        area = None  # likewise: once, naming the study area, not once per raster
    if area is not None:
        problems += _check_grid_size(config, area)
    for name, zone in config.zones.items():
        problems += _check_vector(f"zones.{name}", zone, required=("id_field",), geometry="polygon")
    if config.rivers is not None:
        problems += _check_vector("rivers", config.rivers, geometry="line",
                                  extra_fields=[config.rivers.length_field] if config.rivers.length_field else [])
    if config.change_truth is not None:
        problems += _check_vector("change_truth", config.change_truth, geometry="polygon")
    for year, raster in config.land_cover.items():
        raster_problems = _check_raster(f"land_cover.{year}", raster.path, raster.crs, area, MIN_RASTER_COVER)
        problems += raster_problems
        # the codes only of a raster known to cover the study area (else its footprint problem says enough)
        problems += _check_legend(year, raster, check_codes=area is not None and not raster_problems)
        problems += _check_map_sidecar(year, raster)
    if config.dem is not None:
        dem_problems = _check_raster("dem", config.dem.path, config.dem.crs, area, MIN_RASTER_COVER)
        if not dem_problems:  # a readable DEM: its height unit, voids and plausible heights
            from ecoassess.layers.dem import dem_problems as _dem_checks

            dem_problems = _dem_checks("dem", config.dem.path, band=config.dem.band, declared=config.dem.z_units)
        problems += dem_problems
    if config.erosion is not None:
        problems += _check_erosion(config, area)
    for year, scenes in config.imagery.items():
        for i, scene in enumerate(scenes):
            problems += _check_scene(f"imagery.{year}[{i}]", scene, year, config.composite.months, area, config)
        if year in config.years or year not in _change_period_years(config):  # a period's own year: no annual composite
            problems += _check_composite_months(f"imagery.{year}", scenes, config.composite.months)
        from ecoassess.sources.duplicates import duplicate_problems

        problems += duplicate_problems(f"imagery.{year}", scenes)
    for year, scene in config.thermal.items():
        problems += _check_scene(f"thermal.{year}", scene, year, None, area, config)
    problems += _check_change_periods(config)
    study = _study_polygons(config) if area is not None else None
    for kind, station in config.stations.items():
        problems += _check_stations(kind, station, study, config.year)
    if config.network is not None:
        problems += _check_network(config)
    if config.statistics is not None:
        # county codes can only be matched against a readable study area
        problems += _check_table("statistics", config.statistics, None if study_area_problems else config)
    if config.constraint_events is not None:
        problems += _check_table("constraint_events", config.constraint_events, None)
    if not any(p.startswith("zones.redline") for p in problems):
        from ecoassess.redline.checks import redline_problems

        problems += redline_problems(config)
    from ecoassess.landcover.checks import landcover_problems

    problems += landcover_problems(config)
    return problems


# -- grid and vectors ------------------------------------------------------------------------------------------

def _prj_note(path) -> str:
    """'; <what is wrong with its .prj>' for a shapefile whose .prj is damaged, else ''."""
    from ecoassess.china import prj_problem

    problem = prj_problem(path)
    return f"; {problem}" if problem else ""


def _check_grid(config: AssessmentConfig) -> list[str]:
    if config.grid.crs is None:
        return []
    from ecoassess.grid import is_equal_area

    try:
        crs = ProjCRS.from_user_input(config.grid.crs)
    except CRSError as exc:
        return [f"grid.crs: '{config.grid.crs}' is not a CRS PROJ understands ({exc})"]
    if not is_equal_area(crs):
        return [f"grid.crs: '{config.grid.crs}' ({crs.name}) is not an equal-area projection; areas in km² would be "
                "wrong (expected e.g. an Albers equal-area conic; omit grid.crs for the China Albers default)"]
    return []


def _check_grid_size(config: AssessmentConfig, area: StudyExtent) -> list[str]:
    """A cell size implausible for the study area (billions of cells, or a handful): refused before computing.

    The polygons are projected to the grid CRS and the cell count is that of their bounding box's whole-cell cover,
    as :meth:`~ecoassess.grid.AnalysisGrid.from_study_area` builds the grid (within a cell per side)."""
    import pyogrio

    from ecoassess.grid import grid_size_problem

    sa = config.study_area
    try:
        gdf = pyogrio.read_dataframe(sa.path, layer=sa.layer, columns=[])
        x0, y0, x1, y1 = (float(v) for v in gdf.to_crs(area.grid_crs.to_wkt()).total_bounds)
    except Exception:  # noqa: BLE001 - unreadable or unplaceable geometry: the study-area checks name it
        return []
    if not all(map(math.isfinite, (x0, y0, x1, y1))):
        return []
    problem = grid_size_problem(x1 - x0, y1 - y0, config.grid.resolution_m, config.grid.max_cells)
    return [problem] if problem else []


def _vector_info(key: str, path: Path, layer: str | None) -> tuple[dict | None, list[str]]:
    try:
        return vector_info(path, layer=layer), []
    except Exception as exc:  # noqa: BLE001 - any GDAL/OGR failure is a problem of this file
        from ecoassess.china import prj_problem

        prj = prj_problem(path)
        return None, [f"{key}.path: {path} cannot be read as a vector layer ({exc})"
                      + (f"; {prj}" if prj else "")]


def _check_vector(key: str, source: VectorSource, *, required=(), geometry: str | None = None,
                  extra_fields=()) -> list[str]:
    info, problems = _vector_info(key, source.path, source.layer)
    if info is None:
        return problems
    fields = list(info["fields"])
    for attr in required:
        if getattr(source, attr) is None:
            problems.append(f"{key}.{attr}: required key is missing (fields in {source.path.name}: {', '.join(fields)})")
    for attr in ("id_field", "name_field", "type_field"):
        value = getattr(source, attr, None)
        if value is not None and value not in fields:
            problems.append(f"{key}.{attr}: field '{value}' does not exist in {source.path} "
                            f"(fields: {', '.join(fields) or 'none'})")
    for value in extra_fields:
        if value not in fields:
            problems.append(f"{key}: field '{value}' does not exist in {source.path} (fields: {', '.join(fields)})")
    from ecoassess.china import is_web_map_crs

    declared = getattr(source, "crs", None)
    if info.get("crs") is None and declared is None:
        from ecoassess.china import prj_problem

        prj = prj_problem(source.path)
        problems.append(f"{key}.path: {source.path} has no CRS (expected a layer with a defined CRS, e.g. EPSG:4490, "
                        f"or declare it with {key}.crs){'; ' + prj if prj else ''}")
    elif declared is not None and not is_web_map_crs(declared):
        try:
            ProjCRS.from_user_input(declared)
        except CRSError:
            problems.append(f"{key}.crs: '{declared}' is not a CRS PROJ understands (expected e.g. EPSG:4490, or "
                            "gcj02 / bd09 for web-map coordinates)")
    elif declared is not None and info.get("crs") is not None and ProjCRS.from_user_input(info["crs"]).is_projected:
        problems.append(f"{key}.crs: {source.path} is declared {declared} (web-map longitude/latitude) but its CRS "
                        f"{_crs_name(info['crs'])} is projected (expected degrees)")
    gtype = (info.get("geometry_type") or "").lower()
    if geometry == "polygon" and gtype and "polygon" not in gtype and gtype != "unknown":
        problems.append(f"{key}.path: {source.path} holds {info['geometry_type']} geometries (expected polygons)")
    if geometry == "line" and gtype and "line" not in gtype and gtype != "unknown":
        problems.append(f"{key}.path: {source.path} holds {info['geometry_type']} geometries (expected lines)")
    if info.get("features", 1) == 0:
        problems.append(f"{key}.path: {source.path} has no features")
    return problems


def _check_study_area(config: AssessmentConfig) -> list[str]:
    sa = config.study_area
    src = VectorSource(path=sa.path, layer=sa.layer, id_field=sa.id_field, name_field=sa.name_field, crs=sa.crs,
                       transformation=sa.transformation)
    problems = _check_vector("study_area", src, geometry="polygon")
    if problems:
        return problems
    try:
        table = read_vector(sa.path, sa.layer, columns=[sa.id_field, sa.name_field], read_geometry=False)
    except InputError as exc:
        return [f"study_area.path: {exc}"]
    codes = table[sa.id_field].map(normalise_code)
    bad = [str(v) for v, c in zip(table[sa.id_field], codes) if pd.isna(c)]  # pandas 3 maps None to NaN
    if bad:
        problems.append(f"study_area.id_field: '{sa.id_field}' in {sa.path.name} holds values that are not GB/T 2260 "
                        f"six-digit codes: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")
    dupes = sorted(set(codes[codes.duplicated() & codes.notna()]))
    if dupes:
        problems.append(f"study_area.id_field: codes appear more than once in {sa.path.name}: {', '.join(dupes)}")
    empty = table[sa.name_field].isna() | (table[sa.name_field].astype(str).str.strip() == "")
    if empty.any():
        problems.append(f"study_area.name_field: {int(empty.sum())} feature(s) of {sa.path.name} have no name in "
                        f"'{sa.name_field}'")
    return problems


def _study_extent(config: AssessmentConfig) -> StudyExtent | None:
    """The study area's bounds from its layer header (None if they cannot be had: nothing to compare with)."""
    from ecoassess.grid import china_albers_crs, is_equal_area

    sa = config.study_area
    info = vector_info(sa.path, layer=sa.layer, force_total_bounds=True)
    bounds = tuple(float(v) for v in info.get("total_bounds") or ())
    if len(bounds) != 4 or not all(map(math.isfinite, bounds)):
        return None
    grid_crs = ProjCRS.from_user_input(china_albers_crs())
    try:
        if config.grid.crs is not None and is_equal_area(config.grid.crs):
            grid_crs = ProjCRS.from_user_input(config.grid.crs)
    except CRSError:
        pass  # _check_grid names a bad grid.crs
    return StudyExtent(sa.path, ProjCRS.from_user_input(info["crs"]), bounds, grid_crs)


def _looks_like_degrees(area: StudyExtent) -> bool:
    """Projected CRS, yet bounds a few units wide inside ±180/±90: degrees under a metre CRS's label."""
    x0, y0, x1, y1 = area.bounds
    return (area.crs.is_projected and -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90
            and (x1 - x0) < 20 and (y1 - y0) < 20)


# -- rasters and scenes ----------------------------------------------------------------------------------------

def _tm_params(crs: ProjCRS) -> dict | None:
    """The Transverse Mercator parameters of a projected CRS (None for any other projection)."""
    op = crs.coordinate_operation
    if not crs.is_projected or op is None or "transverse mercator" not in (op.method_name or "").lower():
        return None
    return {p.name: p.value for p in op.params}


def _zone_prefix_problem(area: StudyExtent) -> str | None:
    """Gauss-Krüger eastings with the zone number in front (35 500 000 m: zone 35) under the label of a CRS
    without it (false easting 500 000 m, e.g. EPSG:4544 CGCS2000 / 3-degree Gauss-Kruger CM 105E): every layer
    would seem to lie a few thousand kilometres off. None when the coordinates and the label agree."""
    params = _tm_params(area.crs)
    if params is None or params.get("False easting", 0) >= 1e6:
        return None
    x0, _, x1, _ = area.bounds
    zone = int(x0 // 1e6)
    if x0 <= 1e7 or int(x1 // 1e6) != zone:
        return None
    cm = params.get("Longitude of natural origin")
    width = 3 if zone * 3 == cm else 6 if zone * 6 - 3 == cm else None
    if width is None:  # zone digits that do not belong to this central meridian: say what is known
        return (f"study_area: {area.path} has eastings {x0:.0f} to {x1:.0f} m, which look like Gauss-Krüger "
                f"eastings with the zone number {zone} in front, but its CRS {_crs_name(area.crs)} has no zone prefix "
                f"and central meridian {cm:g}°E: a wrong CRS label? (expected the CRS the coordinates are in)")
    likely = _prefixed_crs(area.crs, zone, width)
    label = _crs_name(area.crs)
    label = label if area.crs.name in label else f"{area.crs.name} ({label})"
    return (f"study_area: {area.path} has eastings {x0:.0f} to {x1:.0f} m, which carry the {width}-degree "
            f"Gauss-Krüger zone number {zone} in front ({zone}500000 = zone {zone}, easting 500000), but its CRS "
            f"{label} counts eastings without the zone prefix: a wrong CRS label? (expected the "
            f"zone-prefixed CRS, {likely}; the other layers are not compared with the study area until it is fixed)")


def _prefixed_crs(crs: ProjCRS, zone: int, width: int) -> str:
    """'EPSG:4523 (CGCS2000 / 3-degree Gauss-Kruger zone 35)' for the zone-prefixed twin of ``crs``."""
    name = re.sub(r"Gauss-Kruger CM \d+E", f"Gauss-Kruger zone {zone}", crs.name)
    if name != crs.name:
        try:
            twin = ProjCRS.from_user_input(name)
            code = twin.to_epsg()
            if code is not None:
                return f"EPSG:{code} ({twin.name})"
        except CRSError:
            pass
    return f"the {width}-degree zone {zone} CRS of the same datum (false easting {zone}500000 m)"


def _check_raster(key: str, path: Path, declared_crs: str | None, area: StudyExtent | None = None,
                  min_cover: float = 0.0) -> list[str]:
    from ecoassess.grid import raster_info

    try:
        info = raster_info(path)
    except InputError as exc:
        return [f"{key}.path: {exc}"]
    if info["crs"] is None and declared_crs is None:
        return [f"{key}.path: {path} has no CRS (expected a georeferenced raster, or declare it with {key}.crs)"]
    if area is None:
        return []
    return _check_footprint(key, path, info["crs"] or declared_crs, info["bounds"], area, min_cover)


def _check_legend(year: int, raster, *, check_codes: bool) -> list[str]:
    """``land_cover.<year>.legend``: a shipped legend or a legend file, with the checks of
    :func:`ecoassess.legends.legend_problems`; and the raster's codes (read at a reduced resolution) all in it."""
    from ecoassess.landcover.accounting import sampled_unknown_codes
    from ecoassess.legends import load_legend

    key = f"land_cover.{year}.legend"
    if raster.legend is None:
        return [f"land_cover.{year}: 'legend' is missing (one of {', '.join(available_legends())}, or the path of a "
                "legend YAML file)"]
    try:
        legend = load_legend(raster.legend)
    except InputError as exc:
        return [f"{key}: {exc}"]
    if not check_codes:
        return []
    unknown = sampled_unknown_codes(raster.path, legend, band=raster.band)
    if unknown:
        return [f"land_cover.{year}.path: {raster.path} holds code(s) {unknown} that legend '{legend.name}' "
                f"({legend.source}) does not define (expected every raster code in the legend, codes "
                f"{sorted(legend.classes)}, nodata {legend.nodata})"]
    return []


def _check_map_sidecar(year: int, raster) -> list[str]:
    """A classified map (``ecoassess landcover predict``) is checked as any land-cover raster, and its sidecar
    (:mod:`ecoassess.landcover.provenance`) must be readable and name the legend the config reads the map in."""
    from ecoassess.landcover.provenance import read_map_sidecar, sidecar_path
    from ecoassess.legends import load_legend

    try:
        record = read_map_sidecar(raster.path)
    except InputError as exc:
        return [f"land_cover.{year}.path: {exc}"]
    if record is None or raster.legend is None:
        return []
    try:
        configured = load_legend(raster.legend).name
    except InputError:
        return []  # said by the legend check
    classified = (record.get("legend") or {}).get("name")
    if classified and classified != configured:
        return [f"land_cover.{year}.legend: '{configured}', but {raster.path} was classified in legend "
                f"'{classified}' ({sidecar_path(raster.path).name}; expected legend {classified}, or no legend to "
                "take the map's)"]
    return []


def _crs_name(crs) -> str:
    from ecoassess.grid import _crs_label

    return _crs_label(crs)


def _fmt_bounds(bounds) -> str:
    return "(" + ", ".join(f"{v:.4f}".rstrip("0").rstrip(".") for v in bounds) + ")"


def _check_footprint(key: str, path: Path, crs, bounds, area: StudyExtent, min_cover: float) -> list[str]:
    """A raster whose bounds miss the study area's bounds, or cover less than ``min_cover`` of them.

    The study area's bounding box is transformed (densified) into the raster's CRS and compared there; the
    covered share is that of the bounding box's area in the raster's CRS (a bbox test, not the polygons).
    """
    try:
        crs = ProjCRS.from_user_input(crs)
    except CRSError:
        return [f"{key}.crs: '{crs}' is not a CRS PROJ understands"]
    try:
        sx0, sy0, sx1, sy1 = Transformer.from_crs(area.crs, crs, always_xy=True).transform_bounds(
            *area.bounds, densify_pts=21)
    except ProjError:
        sx0 = sy0 = sx1 = sy1 = math.inf
    x0, x1 = sorted(bounds[0::2])
    y0, y1 = sorted(bounds[1::2])
    dx, dy = min(x1, sx1) - max(x0, sx0), min(y1, sy1) - max(y0, sy0)
    study = f"the study area ({area.path}, bounds {_fmt_bounds(area.bounds)} ({_crs_name(area.crs)}))"
    here = f"{path} covers {_fmt_bounds((x0, y0, x1, y1))} ({_crs_name(crs)})"
    if not (math.isfinite(dx) and math.isfinite(dy) and dx > 0 and dy > 0):
        return [f"{key}: {here}, which does not overlap {study}; wrong CRS declared?"]
    box = (sx1 - sx0) * (sy1 - sy0)
    share = dx * dy / box if box > 0 else 1.0
    if share < min_cover:
        return [f"{key}: {here}, only {share:.0%} of the bounding box of {study} "
                f"(expected at least {min_cover:.0%}); wrong file or CRS?"]
    return []


def _check_erosion(config: AssessmentConfig, area: StudyExtent | None) -> list[str]:
    from ecoassess.assess.erosion import sl190_regions

    erosion, problems = config.erosion, []
    if erosion.classes is not None:
        problems += _check_raster("erosion.classes", erosion.classes.path, erosion.classes.crs, area)
    if erosion.region is not None and erosion.region not in sl190_regions():
        problems.append(f"erosion.region: unknown SL 190-2007 region '{erosion.region}' "
                        f"(expected one of {', '.join(sorted(sl190_regions()))})")
    for key in ("r_factor", "k_factor"):
        value = getattr(erosion, key)
        if isinstance(value, Path):
            problems += _check_raster(f"erosion.{key}", value, None, area)
        elif value is not None and value <= 0:
            problems.append(f"erosion.{key}: {value} must be > 0")
    if erosion.classes is None and config.dem is None:
        problems.append("erosion: a RUSLE estimate needs 'dem' (or give erosion.classes, an SL 190-2007 class raster)")
    return problems


def scene_date(spec: SceneSpec) -> dt.date | None:
    """The acquisition date of a scene from its metadata (MTL DATE_ACQUIRED, STAC datetime, SAFE start time)."""
    if spec.date is not None:
        return spec.date
    from ecoassess.sources import scene_date_from_metadata

    return scene_date_from_metadata(spec.kind, spec.path)


def _open_product(spec: SceneSpec):
    """Open a Sentinel-2 / Landsat product lazily on its own grid, as the run will (no pixel is read): missing band
    files, missing scale factors and unreadable headers raise InputError here instead of in the middle of the run."""
    import warnings

    from ecoassess.sources import open_scene

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the run reports the product's peculiarities; validate only checks
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return open_scene(spec.kind, path=spec.path)
    finally:
        logging.disable(previous)


def _check_landsat(key: str, spec: SceneSpec, area: StudyExtent | None, config: AssessmentConfig | None) -> list[str]:
    """Every problem of a Landsat product for what the configured stages read (missing bands naming the stage that
    needs them, scale factors, band headers and CRS), and whether its red band lies on the study area."""
    from ecoassess.sources.landsat import REQUIRED_ROLES, landsat_band_file, landsat_problems

    needs = {"bands": REQUIRED_ROLES, "thermal": None, "needed_by": None}
    if config is not None:
        from ecoassess.stages.base import product_needs

        needs = product_needs(config, spec)
    problems = [f"{key}.path: {p}" for p in landsat_problems(spec.path, **needs)]
    if area is not None:
        try:  # the red band tells whether the product lies on the study area (also when other bands are missing)
            red = landsat_band_file(spec.path, "red")
        except InputError:
            return problems
        if red is not None:
            problems += [p for p in _check_raster(key, red, None, area) if "has no CRS" not in p]  # said above
    return problems


def _check_composite_months(key: str, scenes: list[SceneSpec], months) -> list[str]:
    """Every scene of a year outside the composite months leaves the year without a composite."""
    if not scenes or not months:
        return []
    dates = []
    for spec in scenes:
        try:
            dates.append(scene_date(spec))
        except InputError:
            return []  # _check_scene names the unreadable metadata
    if all(d is not None and d.month not in months for d in dates):
        when = ", ".join(sorted(d.isoformat() for d in dates))
        return [f"{key}: every scene ({when}) lies outside the composite months {list(months)} "
                "(composite.months): the year would have no composite"]
    return []


def _change_period_years(config: AssessmentConfig) -> set[int]:
    spec = config.vegetation_change
    if not spec.enabled or spec.before is None:
        return set()
    return set(spec.before.years) | set(spec.after.years)


def _in_change_period(config: AssessmentConfig | None, date) -> bool:
    """Whether a scene of ``date`` is taken by a ``vegetation_change`` period (then it is used, even outside the
    composite months)."""
    if config is None or not _change_period_years(config):
        return False
    spec, months = config.vegetation_change, config.composite.months
    return spec.before.contains(date, months) or spec.after.contains(date, months)


def _check_change_periods(config: AssessmentConfig) -> list[str]:
    """Each ``vegetation_change`` period takes at least one scene (dates from the products' metadata)."""
    if not _change_period_years(config):
        return []
    months, problems = config.composite.months, []
    for key in ("before", "after"):
        period = getattr(config.vegetation_change, key)
        dates = []
        for year in period.years:
            for spec in config.imagery.get(year, []):
                try:
                    date = scene_date(spec)
                except InputError:
                    return problems  # _check_scene names the unreadable metadata
                if date is None:
                    return problems  # likewise
                dates.append(date)
        if not any(period.contains(d, months) for d in dates):
            first, last = period.span(months)
            where = ", ".join(f"imagery.{y}" for y in period.years)
            problems.append(f"vegetation_change.{key}: no scene of {where} was acquired in the period {period.label} "
                            f"({first} … {last}); the scenes are of {', '.join(sorted(map(str, dates))) or 'no date'} "
                            "(expected at least one scene acquired in the period)")
    return problems


def _check_band_ref(key: str, ref, area: StudyExtent | None) -> list[str]:
    """One band of a plain GeoTIFF/netCDF scene: readable, the band exists, georeferenced by the file or by the
    ``crs``/``transform`` declared for it (a declaration that contradicts the file is named), on the study area."""
    from ecoassess.grid import declared_info, raster_info

    path = getattr(ref, "path", ref)
    crs, transform, band = getattr(ref, "crs", None), getattr(ref, "transform", None), getattr(ref, "band", 1)
    try:
        info = raster_info(path)
    except InputError as exc:
        return [f"{key}.path: {exc}"]
    problems = []
    if band > info["count"]:
        problems.append(f"{key}.band: {path} has {info['count']} band(s); band {band} was given")
    if crs is not None:
        try:
            declared = ProjCRS.from_user_input(crs)
        except CRSError as exc:
            return problems + [f"{key}.crs: '{crs}' is not a CRS PROJ understands ({exc})"]
        if info["crs"] is not None and not declared.equals(ProjCRS.from_user_input(info["crs"].to_wkt()),
                                                           ignore_axis_order=True):
            problems.append(f"{key}.crs: {path} carries its own CRS {_crs_name(info['crs'])}, but {crs} is declared "
                            f"(expected no crs key for a georeferenced file, or the file's own CRS)")
    elif info["crs"] is None:
        problems.append(f"{key}.path: {path} has no CRS (expected a georeferenced raster, or declare it with "
                        f"{key}.crs, e.g. crs: EPSG:32648)")
    if transform is not None and not info["transform"].is_identity:
        from affine import Affine

        if tuple(info["transform"])[:6] != tuple(Affine.from_gdal(*transform))[:6]:
            problems.append(f"{key}.transform: {path} carries its own transform {info['transform'].to_gdal()}, "
                            f"but {list(transform)} is declared (expected no transform key for a georeferenced file)")
    elif transform is None and info["transform"].is_identity:
        problems.append(f"{key}.path: {path} has no georeference (no geotransform: pixel corners are not placed on "
                        f"the ground; expected a georeferenced raster, or declare it with {key}.transform: [x origin, "
                        "pixel width, 0, y origin, 0, -pixel height])")
    if problems or area is None:
        return problems
    info = declared_info(info, crs, transform)
    return _check_footprint(key, path, info["crs"], info["bounds"], area, 0.0)


def _check_scene(key: str, spec: SceneSpec, year: int, months, area: StudyExtent | None = None,
                 config: AssessmentConfig | None = None) -> list[str]:
    """One configured scene: its band files (all problems of a product at once, the bands the configured stages
    read: :func:`ecoassess.stages.base.product_needs`), its date, its footprint."""
    problems: list[str] = []
    if spec.kind == "geotiff":
        for role, ref in (spec.bands or {}).items():
            problems += _check_band_ref(f"{key}.bands.{role}", ref, area)
    try:
        date = scene_date(spec)
    except InputError as exc:
        return problems + [f"{key}.path: {exc}"]
    if spec.kind == "landsat_c2l2":
        problems += _check_landsat(key, spec, area, config)
    elif spec.kind != "geotiff":
        # the metadata is readable (it gave the date): open the product as the run will (every band file named,
        # scale factors, headers; no pixel is read), and one band tells whether it lies on the study area
        try:
            scene = _open_product(spec)
            if area is not None:  # the red band the reader found tells whether the product lies on the study area
                problems += _check_raster(key, Path(scene.bands["red"].attrs["source"]), None, area)
        except InputError as exc:
            problems += [f"{key}.path: {p}" for p in getattr(exc, "problems", [str(exc)])]
    if date is None:
        return problems + [f"{key}: the acquisition date cannot be read from {spec.path}; give it as '{key}.date'"]
    if date.year != year:
        problems.append(f"{key}: scene {Path(spec.path or '').name or 'bands'} was acquired on {date.isoformat()}, "
                        f"which is not in year {year}")
    elif months and date.month not in months and not _in_change_period(config, date):
        log.warning("%s: scene acquired on %s is outside the composite months %s and will be skipped",
                    key, date.isoformat(), months)
    return problems


# -- tables ----------------------------------------------------------------------------------------------------

def _check_columns(key: str, path: Path, columns, required: dict[str, str]) -> list[str]:
    return [f"{key}.{attr}: column '{col}' does not exist in {path.name} (columns: {', '.join(map(str, columns))})"
            for attr, col in required.items() if col not in columns]


def _check_table(key: str, source: TableSource, config: AssessmentConfig | None) -> list[str]:
    try:
        table = read_table(source.path, source.sheet)
    except InputError as exc:
        return [f"{key}.path: {exc}"]
    problems = _check_columns(key, source.path, table.columns,
                              {"county_field": source.county_field, "year_field": source.year_field})
    if problems or config is None:
        return problems
    from ecoassess.tables import check_statistics_table

    return [f"{key}: {p}" for p in check_statistics_table(table, source, config, path=source.path)]


def _lines(mask: pd.Series) -> str:
    """File lines (header = line 1) of the first five rows where ``mask`` holds, e.g. ``2, 5, 9 ...``."""
    rows = [str(int(i) + 2) for i in mask[mask].index[:5]]
    return ", ".join(rows) + (" ..." if int(mask.sum()) > 5 else "")


def _check_stations(kind: str, source: StationSource, study, year: int) -> list[str]:
    """A station type's sites and observations read as the run reads them (:mod:`ecoassess.network.registry`):
    what makes a file unusable is a problem; rows and values left out are warnings (:func:`station_warnings`)."""
    try:
        _read_stations(kind, source, study, year)
    except InputError as exc:
        return list(getattr(exc, "problems", None) or [f"stations.{kind}: {exc}"])
    return []


def _check_network(config: AssessmentConfig) -> list[str]:
    """The ``network`` section: proposals only for configured station types; the built-up and alias tables read
    as the network stage reads them."""
    from ecoassess.network.coverage import read_built_up
    from ecoassess.network.overlay import read_aliases

    net, problems = config.network, []
    if not config.stations:
        problems.append("network: no stations are configured (the network stage grades and audits stations.<type>; "
                        "expected at least one of stations.air, surface_water, drinking_water, soil, noise, "
                        "ecology_plots)")
    for kind in net.proposals:
        if kind not in config.stations:
            problems.append(f"network.proposals.{kind}: no stations.{kind} is configured (expected proposals only "
                            f"for the configured types: {', '.join(config.stations) or 'none'})")
    for key, reader in (("built_up", read_built_up), ("aliases", read_aliases)):
        path = getattr(net, key)
        if path is not None:
            try:
                reader(path)
            except InputError as exc:
                problems.append(f"network.{key}: {exc}")
    return problems


def station_readings(config: AssessmentConfig, kind: str):
    """(Sites, Observations or None) of ``stations.<kind>`` as validate read them (read again only when a file
    changed): what the network stage grades."""
    return _read_stations(kind, config.stations[kind], _study_polygons(config), config.year)


#: (kind, source, study area, year, file versions) -> (sites, observations) of the last readings
_STATION_READINGS: dict = {}


def _read_stations(kind: str, source: StationSource, study, year: int):
    """(Sites, Observations or None) of a station type, read once per file version and study area."""
    from ecoassess.network.registry import read_observations, read_sites

    def version(path):
        st = Path(path).stat()
        return str(path), st.st_size, st.st_mtime_ns

    key = (kind, source.model_dump_json(), None if study is None else study.attrs.get("key"), year,
           version(source.sites), None if source.observations is None else version(source.observations))
    if key not in _STATION_READINGS:
        sites = read_sites(source, study, kind)
        obs = None if source.observations is None else read_observations(source, sites, year)
        _STATION_READINGS.clear()  # one reading kept: the run after validate reuses it
        _STATION_READINGS[key] = (sites, obs)
    return _STATION_READINGS[key]


def _study_polygons(config: AssessmentConfig):
    """The study area polygons for the station checks (``attrs``: its path and a key of its version), or None."""
    sa = config.study_area
    try:
        study = read_vector(sa.path, sa.layer, key="study_area", crs=sa.crs, transformation=sa.transformation)
        st = Path(sa.path).stat()
    except (InputError, OSError):
        return None
    if study.crs is None:
        return None
    study.attrs["path"] = str(sa.path)
    study.attrs["key"] = (str(sa.path), st.st_size, st.st_mtime_ns, sa.crs, str(sa.transformation))
    return study


def cloud_mask_warnings(config: AssessmentConfig) -> list[str]:
    """Scenes without a cloud mask (a Sentinel-2 product without its SCL file, a Landsat product without QA_PIXEL,
    a GeoTIFF scene without ``mask``): their clouds and shadows count as clear observations, which composites,
    ΔNDVI and the red-line patches then show (the audit found two false patches inside a red line from one scene
    whose SCL.tif was missing from a partial download)."""
    found = []
    for year, scenes in sorted(config.imagery.items()):
        for i, spec in enumerate(scenes):
            key = f"imagery.{year}[{i}]"
            if spec.kind == "geotiff":
                if spec.mask is None:
                    found.append(f"{key}: GeoTIFF scene {spec.date} has no 'mask': no cloud mask — its clouds and "
                                 "shadows count as clear observations (composites, change layers, red-line patches)")
                continue
            try:
                scene = _open_product(spec)
            except InputError:
                continue  # a problem, named by check_inputs
            meta = scene.metadata
            if meta.get("qa_available", True):
                continue
            skipped = meta.get("skipped_assets") or []
            why = (f"its metadata lists the mask ({', '.join(skipped)}) but the file is missing"
                   if any(k.lower() == "scl" for k in skipped) else meta.get("qa_note") or "no mask band")
            found.append(f"{key}: {Path(spec.path).name}: no cloud mask ({why}) — its clouds and shadows count as "
                         "clear observations (composites, change layers, red-line patches); add the mask file or "
                         "leave the scene out")
    return found


def station_warnings(config: AssessmentConfig) -> list[str]:
    """Rows and values of the station files left out (each file's rejected rows, summarised), sites outside the
    study area and sites not mapped: for the log and the manifest's ``extra.input_warnings``."""
    from ecoassess.network.registry import rejected_summary

    found = []
    study = _study_polygons(config)
    for kind, source in config.stations.items():
        try:
            sites, obs = _read_stations(kind, source, study, config.year)
        except InputError:
            continue  # a problem, named by check_inputs
        if len(sites.rejected):
            found.append(rejected_summary(f"stations.{kind}.sites", sites.rejected))
        if sites.outside_count:
            found.append(f"stations.{kind}.sites: {sites.outside_count} of {sites.outside_count + len(sites.table)} "
                         f"sites in {Path(source.sites).name} lie outside the study area and are left out "
                         f"({', '.join(sites.outside['station_id'].astype(str)[:10])})")
        if obs is not None and len(obs.rejected):
            found.append(rejected_summary(f"stations.{kind}.observations", obs.rejected))
        if obs is not None:
            found += obs.warnings
    return found


def load_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot be read as JSON ({exc})", path=path) from exc
