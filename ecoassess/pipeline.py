"""The annual assessment run: config → analysis grid → composites → NDVI/FVC → county tables, map, manifest.

Each stage is a plain function on xarray/geopandas objects; ``run`` strings them together, writes everything
into a :class:`~ecoassess.store.ResultsStore` (so a failed run leaves earlier results untouched) and records a
manifest. A year whose imagery fails (for example every pixel under cloud) is reported and the rest completes,
unless the config says ``run.on_error: stop``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from ecoassess.config import AssessmentConfig, load_config
from ecoassess.errors import EcoassessError, InputError
from ecoassess.grid import AnalysisGrid, rasterize_mask

log = logging.getLogger(__name__)


@dataclass
class VegetationYear:
    """The vegetation layers of one year on the analysis grid, and how they were made."""

    year: int
    ndvi: xr.DataArray
    fvc: xr.DataArray
    masked: xr.DataArray           # bool: observed but never clear, or water
    clear_count: xr.DataArray
    endmembers: object
    n_scenes: int
    composite_method: str


@dataclass
class RunResult:
    out_dir: Path
    grid: AnalysisGrid
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    layers: dict[str, Path] = field(default_factory=dict)
    maps: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


# -- stages ----------------------------------------------------------------------------------------------------

def read_study_area(config: AssessmentConfig) -> gpd.GeoDataFrame:
    """County polygons with a normalised six-digit ``code`` and ``name`` column (plus the original fields)."""
    from ecoassess.validate import normalise_code

    sa = config.study_area
    try:
        gdf = gpd.read_file(sa.path, layer=sa.layer)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot be read as a vector layer ({exc})", path=sa.path) from exc
    gdf = gdf.assign(code=gdf[sa.id_field].map(normalise_code), name=gdf[sa.name_field].astype(str))
    return gdf


def build_grid(config: AssessmentConfig, study_area: gpd.GeoDataFrame) -> AnalysisGrid:
    """The analysis grid over the study area (config.grid: CRS default China Albers, resolution)."""
    grid = AnalysisGrid.from_study_area(study_area, config.grid.resolution_m, config.grid.crs)
    log.info("analysis grid: %d x %d cells of %.6g m (%.1f km x %.1f km)", grid.width, grid.height,
             grid.resolution, grid.width * grid.resolution / 1000, grid.height * grid.resolution / 1000)
    return grid


def open_year_scenes(config: AssessmentConfig, year: int, grid: AnalysisGrid) -> list:
    """Every scene configured for ``year``, opened lazily on ``grid`` with the config's masking."""
    from ecoassess.sources import open_scene

    scenes = []
    for spec in config.imagery.get(year, []):
        options = {"grid": grid, "chunk": config.grid.chunk}
        if spec.kind == "sentinel2_l2a" and config.masking.scl_classes is not None:
            options["mask_scl"] = tuple(config.masking.scl_classes)
        if spec.kind == "landsat_c2l2" and config.masking.landsat_flags is not None:
            options["mask_flags"] = tuple(config.masking.landsat_flags)
        if spec.kind == "geotiff":
            options.update(bands={k: _band_ref(v) for k, v in spec.bands.items()}, date=spec.date,
                           sensor=spec.sensor or "geotiff", scale=spec.scale, offset=spec.offset,
                           nodata=spec.nodata, mask=spec.mask.model_dump() if spec.mask else None)
            scenes.append(open_scene("geotiff", **options))
        else:
            scenes.append(open_scene(spec.kind, path=spec.path, **options))
    return scenes


def _band_ref(ref):
    return {"path": ref.path, "band": ref.band} if hasattr(ref, "band") else ref


def water_mask(config: AssessmentConfig, year: int, grid: AnalysisGrid, bands: xr.Dataset | None) -> xr.DataArray | None:
    """Open water for masking vegetation statistics: from the year's land cover when given, else MNDWI > 0."""
    from ecoassess.grid import read_on_grid
    from ecoassess.layers.vegetation import normalized_difference
    from ecoassess.legends import load_legend

    source = config.land_cover.get(year)
    if source is not None:
        legend = load_legend(source.legend)
        lc = read_on_grid(source.path, grid, band=source.band, kind="classes", crs=source.crs, chunk=config.grid.chunk,
                          name=f"land_cover_{year}")
        return legend.water_mask(lc)
    if bands is not None and "green" in bands and "swir1" in bands:
        mndwi = normalized_difference(bands["green"], bands["swir1"])
        log.info("%d: no land cover given; water masked where MNDWI > 0 (Xu 2006)", year)
        return mndwi > 0
    return None


def vegetation_year(config: AssessmentConfig, year: int, grid: AnalysisGrid, inside: xr.DataArray) -> VegetationYear:
    """Composite the year's scenes, then NDVI and FVC (STANDARDS §4) on the grid, lazily."""
    from ecoassess.layers.vegetation import fvc, fvc_endmembers, ndvi
    from ecoassess.sources import composite

    scenes = open_year_scenes(config, year, grid)
    if not scenes:
        raise InputError(f"no imagery is configured for year {year}", field=f"imagery.{year}")
    comp = composite(scenes, method="median", months=tuple(config.composite.months),
                     min_clear=config.composite.min_clear)
    ndvi_layer = ndvi(comp.bands)
    if config.composite.method == "monthly_max_ndvi":
        monthly = composite(scenes, method="monthly_max_ndvi", months=tuple(config.composite.months),
                            min_clear=config.composite.min_clear)
        ndvi_layer = monthly.ndvi
    water = water_mask(config, year, grid, comp.bands)
    masked = comp.masked if water is None else (comp.masked | (water & ~comp.nodata))
    masked = masked & inside
    valid = np.isfinite(ndvi_layer) & ~masked & inside
    endmembers = fvc_endmembers(ndvi_layer, valid)
    log.info("%d: FVC end-members NDVI_soil = %.4f, NDVI_veg = %.4f over %d valid pixels", year,
             endmembers.ndvi_soil, endmembers.ndvi_veg, endmembers.n_pixels)
    fvc_layer = fvc(ndvi_layer, endmembers)
    for layer in (ndvi_layer, fvc_layer, masked):
        layer.attrs["grid"] = grid
    return VegetationYear(year, ndvi_layer.where(inside), fvc_layer.where(inside), masked, comp.clear_count,
                          endmembers, len(scenes), config.composite.method)


def county_vegetation_table(zones, veg: VegetationYear) -> pd.DataFrame:
    """Per-zone NDVI and FVC statistics with area accounting (valid / masked / nodata / outside, km²)."""
    from ecoassess.zones import zonal_stats

    table = zonal_stats(zones, {"ndvi": veg.ndvi, "fvc": veg.fvc}, masked=veg.masked, stats=("mean", "std", "min", "max"))
    table.insert(0, "year", veg.year)
    table["ndvi_soil"] = veg.endmembers.ndvi_soil
    table["ndvi_veg"] = veg.endmembers.ndvi_veg
    table["composite_method"] = veg.composite_method
    table["n_scenes"] = veg.n_scenes
    return table


# -- the run ---------------------------------------------------------------------------------------------------

def run(config, out, *, scheduler: str | None = None, quiet: bool = False) -> RunResult:
    """Run the assessment of ``config`` (a loaded config or a path to assessment.yaml) into folder ``out``."""
    from ecoassess.manifest import RunTimer, build_manifest, write_manifest
    from ecoassess.store import ResultsStore
    from ecoassess.zones import ZoneSet

    if not isinstance(config, AssessmentConfig):
        config = load_config(config)
    out = Path(out)
    timer = RunTimer()
    client = _connect(scheduler or config.run.scheduler)
    try:
        with ResultsStore(out) as store:
            with timer.stage("study area and grid"):
                study_area = read_study_area(config)
                grid = build_grid(config, study_area)
                counties = ZoneSet.from_gdf(study_area, grid, id_field="code", name_field="name", kind="county",
                                            source=config.study_area.path)
                whole = ZoneSet.from_gdf(_dissolve(counties.gdf, config), grid, id_field="code", name_field="name",
                                         kind="study_area", source=config.study_area.path)
                inside = rasterize_mask(counties.gdf.geometry, grid, chunk=config.grid.chunk)
            result = RunResult(out_dir=out, grid=grid)
            rows = []
            for year in config.years:
                try:
                    with timer.stage(f"vegetation {year}"):
                        veg = vegetation_year(config, year, grid, inside)
                        result.layers.update(_write_layers(store, veg))
                    with timer.stage(f"zonal statistics {year}"):
                        rows.append(pd.concat([county_vegetation_table(counties, veg),
                                               county_vegetation_table(whole, veg)]))
                except EcoassessError as exc:
                    if config.run.on_error == "stop":
                        raise
                    message = f"year {year}: {exc}"
                    log.error(message)
                    result.problems.append(message)
            if not rows:
                raise EcoassessError("no year could be assessed:\n  " + "\n  ".join(result.problems))
            with timer.stage("tables"):
                table = pd.concat(rows)
                table.index.name = "code"
                table = table.reset_index()
                result.tables["county_vegetation"] = table
                geo = counties.gdf[["code", "geometry"]].merge(table, on="code", how="right")
                geo = gpd.GeoDataFrame(geo, geometry="geometry", crs=counties.gdf.crs)
                store.write_table("county_vegetation", geo, **_formats(config))
            if config.outputs.maps:
                with timer.stage("maps"):
                    result.maps.update(_write_maps(store, counties, table, config))
            with timer.stage("manifest"):
                manifest = build_manifest(
                    config=config.to_yaml_dict(), config_path=config.source_path, inputs=config_input_paths(config),
                    outputs_dir=store.path("."), timings=timer.timings, grid=grid.to_dict(),
                    extra={"problems": result.problems,
                           "fvc_endmembers": _endmember_summary(table)})
                write_manifest(manifest, store.path("manifest.json"))
                result.manifest = manifest
        result.layers = {k: out / v for k, v in result.layers.items()}
        result.maps = {k: out / v for k, v in result.maps.items()}
        return result
    finally:
        if client is not None:
            client.close()


def _dissolve(gdf: gpd.GeoDataFrame, config: AssessmentConfig) -> gpd.GeoDataFrame:
    name = "全区" if config.outputs.lang == "zh" else "study area"
    return gpd.GeoDataFrame({"code": ["000000"], "name": [name]}, geometry=[gdf.union_all()], crs=gdf.crs)


def _formats(config: AssessmentConfig) -> dict:
    return {fmt: fmt in config.outputs.tables for fmt in ("gpkg", "csv", "xlsx")}


def _write_layers(store, veg: VegetationYear) -> dict[str, Path]:
    from ecoassess.cog import write_cog

    written = {}
    for name, layer, nodata, dtype in (("ndvi", veg.ndvi, float("nan"), "float32"),
                                       ("fvc", veg.fvc, float("nan"), "float32"),
                                       ("clear_count", veg.clear_count, -1, "int16")):
        rel = Path("layers") / f"{name}_{veg.year}.tif"
        write_cog(layer, store.path(rel), nodata=nodata, dtype=dtype,
                  tags={k: str(v) for k, v in layer.attrs.items() if k in ("long_name", "units", "formula",
                                                                            "ndvi_soil", "ndvi_veg")})
        written[f"{name}_{veg.year}"] = rel
    return written


def _write_maps(store, counties, table: pd.DataFrame, config: AssessmentConfig) -> dict[str, Path]:
    from ecoassess.report.maps import zone_choropleth

    year = config.year if config.year in set(table["year"]) else int(table["year"].max())
    rows = table[(table["year"] == year) & (table["code"] != "000000")]
    gdf = counties.gdf[["code", "name", "geometry"]].merge(rows.drop(columns=["name"], errors="ignore"), on="code")
    zh = config.outputs.lang == "zh"
    rel = Path("maps") / f"ndvi_by_county_{year}.png"
    zone_choropleth(
        gdf, "ndvi_mean", store.path(rel),
        title=f"{year}年各县归一化植被指数(NDVI)均值" if zh else f"Mean NDVI by county, {year}",
        legend_label="NDVI 均值" if zh else "mean NDVI", label_field="name", lang=config.outputs.lang,
        cmap="RdYlGn", note=config.name)
    return {f"ndvi_by_county_{year}": rel}


def _endmember_summary(table: pd.DataFrame) -> dict:
    first = table.drop_duplicates("year").set_index("year")
    return {int(y): {"ndvi_soil": float(r["ndvi_soil"]), "ndvi_veg": float(r["ndvi_veg"])} for y, r in first.iterrows()}


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
        elif hasattr(value, "model_fields"):
            for name in type(value).model_fields:
                if name != "source_path":
                    walk(getattr(value, name))

    walk(config)
    return sorted(set(found))



def _connect(address: str | None):
    if not address:
        return None
    from distributed import Client

    log.info("running on the dask.distributed scheduler at %s", address)
    return Client(address)
