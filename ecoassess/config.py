"""The assessment config (``assessment.yaml``): one file says area, years, sources, zones, stations, outputs.

``load_config(path)`` parses the YAML and checks it against the schema below (keys, types, value ranges, the
files named exist) without opening any input; :func:`ecoassess.validate.validate_config` then checks everything
that can be checked without computing (files are readable, fields exist in their layers, codes are GB/T 2260
six-digit codes, dates fall in their year, the grid CRS is equal-area). All problems are collected and raised
together as one :class:`~ecoassess.errors.ConfigError`, each naming the key, the file or field, and what was
expected. Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo,
                      model_validator)

from ecoassess.errors import ConfigError

log = logging.getLogger(__name__)

IMAGERY_KINDS = ("sentinel2_l2a", "landsat_c2l2", "geotiff")
STATION_TYPES = ("air", "surface_water", "drinking_water", "soil", "noise", "ecology_plots")


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Resolve a config path against the config file's folder and require that it exists."""
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    try:
        path = path.resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symlink loop (Python < 3.13), OSError: ELOOP
        raise ValueError(f"{path}: a symlink loop ({exc}); point the link at the real file or folder") from None
    if not path.exists():
        raise ValueError(f"file or folder not found: {path}")
    return path


InputPath = Annotated[Path, AfterValidator(_resolve_path)]


def _legend_ref(value, info: ValidationInfo):
    """A land-cover legend: a shipped name (``cas_lucc``) stays a name; a path (``legends/mine.yaml``) is resolved
    against the config's folder and must exist (it is then an input of the run: hashed in the manifest)."""
    from ecoassess.legends import is_legend_path

    if value is None or not is_legend_path(value):
        return value
    return _resolve_path(Path(value), info)


#: ``land_cover.<year>.legend``: the name of a shipped legend (``layers/<name>.yaml``) or the path of one's own
LegendRef = Annotated[str | Path | None, AfterValidator(_legend_ref)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


#: 7 Helmert parameters [dx, dy, dz (m), rx, ry, rz (arc-seconds), ds (ppm)], position-vector convention (PROJ's
#: +towgs84), or a PROJ pipeline string from the layer's coordinates to CGCS2000 longitude/latitude (EPSG:4490)
Transformation = Annotated[list[float], Field(min_length=7, max_length=7)] | str


def _check_transformation(value):
    if isinstance(value, str) and "proj=pipeline" not in value.replace(" ", ""):
        raise ValueError("a transformation string must be a PROJ pipeline ('+proj=pipeline +step ...') to CGCS2000 "
                         "longitude/latitude; or give the 7 Helmert parameters [dx, dy, dz, rx, ry, rz, ds]")
    return value


class _Georeferenced(_Strict):
    """``crs``: ``gcj02`` / ``bd09`` for coordinates copied from web maps (converted to WGS84), or the CRS of a
    layer that has none; ``transformation``: the datum transformation of a Beijing 1954 / Xi'an 1980 layer."""

    crs: str | None = None
    transformation: Annotated[Transformation, AfterValidator(_check_transformation)] | None = None


class VectorSource(_Georeferenced):
    """A vector layer (GeoPackage, Shapefile, GeoJSON, ...) and the fields ecoassess reads from it."""

    path: InputPath
    layer: str | None = None
    id_field: str | None = None
    name_field: str | None = None
    type_field: str | None = None


class StudyArea(_Georeferenced):
    """County polygons: ``id_field`` holds GB/T 2260 six-digit codes, ``name_field`` the county names.

    ``codes``: ``gbt2260`` (default) checks the codes against the shipped code table (``layers/gbt2260.csv``);
    ``any`` only requires six digits (codes of one's own). ``reference_area_field``: a field with each county's
    official area in km², compared with the area computed on the equal-area grid."""

    path: InputPath
    layer: str | None = None
    id_field: str
    name_field: str
    codes: Literal["gbt2260", "any"] = "gbt2260"
    reference_area_field: str | None = None


class GridSpec(_Strict):
    """The analysis grid: equal-area ``crs`` (default: CGCS2000 China Albers) and cell size in metres.

    ``max_cells``: the largest grid accepted (default 2·10⁹ cells); a grid above it, or with fewer than 10 cells
    across the study area, is refused before any computing (a cell size in the wrong unit)."""

    crs: str | None = None
    resolution_m: float = Field(30.0, gt=0)
    chunk: int = Field(1024, ge=64, le=8192)
    max_cells: int = Field(2_000_000_000, gt=0)


class BandRef(_Strict):
    """One band of a plain GeoTIFF/netCDF scene: ``path``, ``band`` (1-based), and for this band only ``scale``,
    ``offset`` (physical value = DN × scale + offset) and ``nodata`` (the fill DN), which override the scene's;
    ``crs`` and ``transform`` (six numbers in GDAL GeoTransform order: x origin, pixel width, 0, y origin, 0,
    −pixel height) for a file that carries none."""

    path: InputPath
    band: int = Field(1, ge=1)
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None
    crs: str | None = None
    transform: Annotated[list[float], Field(min_length=6, max_length=6)] | None = None


class SceneMask(_Strict):
    """A mask raster for a plain GeoTIFF scene: list the clear values or the masked values."""

    path: InputPath
    clear_values: list[int] | None = None
    masked_values: list[int] | None = None


class SceneSpec(_Strict):
    """One image: a Landsat C2 L2 product folder, a Sentinel-2 L2A SAFE/COG folder, or plain band files."""

    kind: Literal["sentinel2_l2a", "landsat_c2l2", "geotiff"]
    path: InputPath | None = None
    date: dt.date | None = None
    sensor: str | None = None
    bands: dict[str, InputPath | BandRef] | None = None
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    mask: SceneMask | None = None

    @model_validator(mode="after")
    def _paths_for_kind(self):
        if self.kind == "geotiff":
            if not self.bands:
                raise ValueError("kind 'geotiff' needs 'bands' (band role -> file), e.g. {red: red.tif, nir: nir.tif}")
            if self.date is None:
                raise ValueError("kind 'geotiff' needs the acquisition 'date' (YYYY-MM-DD)")
        elif self.path is None:
            raise ValueError(f"kind '{self.kind}' needs 'path' (the product folder)")
        return self


class CompositeSpec(_Strict):
    """How the scenes of a season become one per-pixel composite."""

    method: Literal["median", "monthly_max_ndvi"] = "median"
    months: list[Annotated[int, Field(ge=1, le=12)]] = Field(default_factory=lambda: [5, 6, 7, 8, 9])
    min_clear: int = Field(1, ge=1)


class FvcSpec(_Strict):
    """FVC end-members (STANDARDS §4): by default the 5 %/95 % NDVI quantiles of each year's valid pixels;
    ``ndvi_soil`` and ``ndvi_veg`` fix them for every year (what comparing years needs: end-members re-fitted each
    year can move FVC against NDVI)."""

    ndvi_soil: float | None = Field(None, ge=-1, le=1)
    ndvi_veg: float | None = Field(None, ge=-1, le=1)

    @model_validator(mode="after")
    def _both(self):
        if (self.ndvi_soil is None) != (self.ndvi_veg is None):
            raise ValueError("give both ndvi_soil and ndvi_veg, or neither (the 5 %/95 % quantiles of each year)")
        if self.ndvi_soil is not None and not self.ndvi_soil < self.ndvi_veg:
            raise ValueError(f"ndvi_soil ({self.ndvi_soil}) must be below ndvi_veg ({self.ndvi_veg})")
        return self


class PeriodSpec(_Strict):
    """One date of a vegetation change: ``{year}`` (that year's composite, as the vegetation stage makes it),
    ``{year, months}`` (the scenes of ``imagery.<year>`` acquired in those months) or ``{start, end}`` (the scenes
    of the imagery years between, acquired from ``start`` to ``end`` inclusive). Two periods may lie in one year:
    before and after an event."""

    year: int | None = Field(None, ge=1972, le=2100)
    months: list[Annotated[int, Field(ge=1, le=12)]] | None = Field(None, min_length=1)
    start: dt.date | None = None
    end: dt.date | None = None

    @model_validator(mode="after")
    def _one_form(self):
        dates = self.start is not None or self.end is not None
        if dates and (self.year is not None or self.months is not None):
            raise ValueError("give either year (and months) or start and end dates, not both")
        if dates and (self.start is None or self.end is None):
            raise ValueError("give both start and end (YYYY-MM-DD)")
        if not dates and self.year is None:
            raise ValueError("give year (and optionally months), or start and end dates (YYYY-MM-DD)")
        if dates and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def span(self, default_months) -> tuple[dt.date, dt.date]:
        """First and last day the period can take scenes from (``default_months``: ``composite.months``)."""
        if self.start is not None:
            return self.start, self.end
        months = sorted(self.months or default_months)
        last = dt.date(self.year + (months[-1] == 12), months[-1] % 12 + 1, 1) - dt.timedelta(days=1)
        return dt.date(self.year, months[0], 1), last

    @property
    def years(self) -> list[int]:
        """The imagery years the period takes scenes from."""
        return [self.year] if self.year is not None else list(range(self.start.year, self.end.year + 1))

    @property
    def whole_year(self) -> bool:
        """Whether the period is the year's own composite (``composite.months``)."""
        return self.year is not None and self.months is None

    def contains(self, date: dt.date, default_months) -> bool:
        if self.start is not None:
            return self.start <= date <= self.end
        return date.year == self.year and date.month in (self.months or default_months)

    @property
    def label(self) -> str:
        """For layer names and tables: ``2024``, ``2024m3-5`` (March to May), ``2024m3.5`` (March and May),
        ``20240301-20240430``."""
        if self.start is not None:
            return f"{self.start:%Y%m%d}-{self.end:%Y%m%d}"
        if self.months is None:
            return str(self.year)
        runs: list[list[int]] = []
        for m in sorted(set(self.months)):
            if runs and m == runs[-1][-1] + 1:
                runs[-1].append(m)
            else:
                runs.append([m])
        return f"{self.year}m" + ".".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _ascending_breaks(value):
    if value is not None and not (value[0] < value[1] <= 0 <= value[2] < value[3]):
        raise ValueError(f"breaks {value} must satisfy b0 < b1 <= 0 <= b2 < b3 (e.g. [-0.2, -0.05, 0.05, 0.2])")
    return value


Breaks = Annotated[list[float], Field(min_length=4, max_length=4), AfterValidator(_ascending_breaks)]


class VegetationChangeSpec(_Strict):
    """ΔNDVI / ΔFVC between two dates (issue 18 item 7). ``before``/``after``: two periods (default: baseline_year
    and year); ``ndvi_breaks``/``fvc_breaks``: the four class breaks (default: indices/vegetation_change.yaml)."""

    enabled: bool = True
    before: PeriodSpec | None = None
    after: PeriodSpec | None = None
    ndvi_breaks: Breaks | None = None
    fvc_breaks: Breaks | None = None

    @model_validator(mode="after")
    def _both(self):
        if (self.before is None) != (self.after is None):
            raise ValueError("give both before and after periods, or neither (baseline_year and year)")
        return self


class MaskingSpec(_Strict):
    """Which quality classes count as not clear (defaults: the readers' defaults)."""

    scl_classes: list[Annotated[int, Field(ge=0, le=11)]] | None = None
    landsat_flags: list[Literal["fill", "dilated_cloud", "cirrus", "cloud", "cloud_shadow", "snow", "water"]] | None = None


class RasterSource(_Strict):
    """A single-band raster input (land cover, DEM); ``crs`` only for files that carry none. ``legend`` (land
    cover): left out for a map of ``ecoassess landcover predict``, the legend its sidecar names."""

    path: InputPath
    band: int = Field(1, ge=1)
    legend: LegendRef = None
    crs: str | None = None


class DemSource(RasterSource):
    """The terrain model; ``z_units``: the unit of its heights (``metre | foot | us_survey_foot``), when the file
    does not say (GDAL band unit type) — a value contradicting the file's tag is refused; neither means metres."""

    z_units: Literal["metre", "foot", "us_survey_foot"] | None = None


class RiverSource(VectorSource):
    """River network lines; ``length_field`` to use a length attribute instead of the geometry."""

    length_field: str | None = None


class StationSource(_Georeferenced):
    """Monitoring sites (one row per site: a CSV/Excel table or a point layer) and optional observations (one row
    per site and time); ``crs`` of the x/y columns (``gcj02`` / ``bd09`` for coordinates copied from web maps:
    converted to WGS84; a point layer's own CRS wins otherwise). ``name_field``, ``county_field``, ``time_field``:
    when left out, the usual names are looked for (``indices/station_observations.yaml``); ``layer`` of a
    multi-layer file, ``sheet`` of a workbook."""

    sites: InputPath
    observations: InputPath | None = None
    id_field: str = "station_id"
    x_field: str = "lon"
    y_field: str = "lat"
    crs: str = "EPSG:4490"
    name_field: str | None = None
    county_field: str | None = None
    time_field: str | None = None
    layer: str | None = None
    sheet: str | None = None


#: the station types of ``stations`` (and of ``network.proposals``)
StationType = Literal["air", "surface_water", "drinking_water", "soil", "noise", "ecology_plots"]


class NetworkSpec(_Strict):
    """The monitoring-network stage (runs when ``stations`` are configured). ``proposals``: {station type: how many
    new sites to propose} (a type left out: as many as its coverage shortfall); ``built_up``: a county table
    (CSV/Excel: ``county_code``, ``built_up_population_10k``, ``built_up_area_km2``) for the HJ 664 minimum of city
    air points; ``aliases``: a table (``alias``, ``current``) of renamed counties (铜仁地区 → 铜仁市)."""

    proposals: dict[StationType, Annotated[int, Field(ge=0, le=1000)]] = Field(default_factory=dict)
    built_up: InputPath | None = None
    aliases: InputPath | None = None


class TableSource(_Strict):
    """A table (CSV or Excel) with one row per county and year."""

    path: InputPath
    county_field: str = "county_code"
    year_field: str = "year"
    sheet: str | None = None


class RseiSpec(_Strict):
    """RSEI settings (defaults in indices/rsei.yaml); computed when ``thermal`` imagery is configured."""

    enabled: bool = True
    normalisation: Literal["percentile", "minmax"] | None = None
    water_mask: Literal["mndwi", "otsu", "none", "land_cover"] | None = None
    joint_pca: bool = True
    wetness_index: str | None = None


class ErosionClassSource(_Strict):
    """A soil-erosion intensity raster in SL 190-2007 classes; ``class_map`` maps its codes to classes 1..6."""

    path: InputPath
    band: int = Field(1, ge=1)
    class_map: dict[int, int] | None = None
    crs: str | None = None


class ErosionSpec(_Strict):
    """Soil erosion for the HJ 192 land-stress index: a given class raster, else a RUSLE estimate from the DEM.

    ``r_factor`` in MJ·mm·ha⁻¹·h⁻¹·a⁻¹ and ``k_factor`` in t·ha·h·ha⁻¹·MJ⁻¹·mm⁻¹ (numbers or raster paths);
    ``region`` picks the SL 190-2007 tolerable soil loss (e.g. southwest_rocky_mountain: 500 t·km⁻²·a⁻¹).
    """

    classes: ErosionClassSource | None = None
    r_factor: float | InputPath | None = None
    k_factor: float | InputPath | None = None
    region: str | None = None
    slope_length_m: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _given_or_estimated(self):
        if self.classes is None and (self.r_factor is None or self.k_factor is None or self.region is None):
            raise ValueError("give either 'classes' (an SL 190-2007 class raster) or 'r_factor', 'k_factor' and "
                             "'region' for a RUSLE estimate")
        return self


class Hj192Spec(_Strict):
    """HJ 192-2015 EI settings.

    ``coefficients``: a corrected copy of indices/hj192_2015.yaml; ``previous_results``: results.gpkg files of
    earlier runs whose ``county_ei`` layer gives the baseline year's EI (when it is not computed in this run) and
    the EI series for the fluctuation flag.
    """

    enabled: bool = True
    coefficients: InputPath | None = None
    previous_results: list[InputPath] = Field(default_factory=list)


class OutputSpec(_Strict):
    """Result formats. ``compression`` of the layer COGs: ``deflate`` (default; every GIS reads it, ArcGIS 10.x
    included) or ``zstd`` (GDAL ≥ 2.3, QGIS 3, ArcGIS Pro 2.x+: ~40 % less time writing float layers, same size)."""

    tables: list[Literal["gpkg", "csv", "xlsx"]] = Field(default_factory=lambda: ["gpkg", "csv", "xlsx"])
    maps: bool = True
    lang: Literal["zh", "en"] = "zh"
    compression: Literal["deflate", "zstd"] = "deflate"


class ReportSpec(_Strict):
    """The county report every run ends with (issue 22): ``languages`` (zh, en), ``formats`` (html, pdf, docx,
    xlsx, webmap; empty: no report), the web map's basemap ``tile_url`` (an XYZ template with {z}, {x}, {y};
    default none, so that the map works offline) and its ``tile_attribution`` (required with a tile URL: the tile
    provider's terms ask for it)."""

    languages: list[Literal["zh", "en"]] = Field(default_factory=lambda: ["zh"])
    formats: list[Literal["html", "pdf", "docx", "xlsx", "webmap"]] = Field(
        default_factory=lambda: ["html", "pdf", "docx", "xlsx", "webmap"])
    tile_url: str | None = None
    tile_attribution: str | None = None

    @model_validator(mode="after")
    def _tiles(self):
        if self.tile_url is not None:
            if not all(part in self.tile_url for part in ("{z}", "{x}", "{y}")):
                raise ValueError(f"tile_url {self.tile_url!r}: expected an XYZ tile URL template with {{z}}, {{x}} "
                                 "and {y}, e.g. https://tiles.example.gov.cn/{z}/{x}/{y}.png")
            if not self.tile_attribution:
                raise ValueError("tile_attribution: required with tile_url (the basemap's source, shown on the map)")
        return self


class RunSpec(_Strict):
    """Execution: ``scheduler`` = a dask.distributed address (default: local threads); failure policy;
    ``memory_budget_mb``: memory for layers kept between passes (default: ``ECOASSESS_MEMORY_BUDGET_MB`` or 256),
    above it they are spilled to disk chunk by chunk."""

    scheduler: str | None = None
    on_error: Literal["continue", "stop"] = "continue"
    memory_budget_mb: float | None = Field(None, ge=0)


class RedlineSpec(_Strict):
    """Red-line encroachment (issue 19; STANDARDS §5): runs when ``zones.redline`` is set and both years have imagery.

    ``before_year`` / ``after_year``: the two dates, each as its season composite (default ``baseline_year`` /
    ``year``; :meth:`AssessmentConfig.redline_years`). ``buffer_m``: the ring around the units reported as 缓冲区 (default
    ``indices/redline_detection.yaml``: 500 m). ``mmu_m2``: minimum mapping unit (default 9 grid cells, 8100 m² at
    30 m: the smallest change holding one pixel whose whole 3×3 neighbourhood changed; see the YAML).
    ``activity_table``: an activity-type table of one's own (default ``layers/redline_activity_types.yaml``).
    ``ledger``: last year's ledger as staff filled it in (.xlsx or .csv; ``ecoassess redline --ledger`` overrides).
    ``chips``: before/after PNGs per patch. ``use_land_cover``: land cover of both years as evidence when present.
    ``max_cells``: the largest window (units + buffer) read into memory at once (both dates; ≈ 0.33 kB per
    cell, measured: ecoassess/stages/redline.py)."""

    before_year: int | None = Field(None, ge=1972, le=2100)
    after_year: int | None = Field(None, ge=1972, le=2100)
    buffer_m: float | None = Field(None, ge=0)
    mmu_m2: float | None = Field(None, gt=0)
    activity_table: InputPath | None = None
    ledger: InputPath | None = None
    chips: bool = True
    use_land_cover: bool = True
    max_cells: int = Field(20_000_000, gt=0)


class SampleSource(_Georeferenced):
    """Land-cover samples (issue 21 part 1): points or polygons with a class label — a GeoPackage / shapefile layer,
    or a CSV / Excel table with coordinate columns ``x_field`` / ``y_field`` (default: lon/lat, x/y, 经度/纬度 ...)
    in ``crs`` (tables: default EPSG:4490; ``gcj02`` / ``bd09`` converted). ``class_field``: the label column
    (codes or names of ``legend``); ``id_field``: a sample id column (default: the row number)."""

    path: InputPath
    class_field: str = "class"
    legend: str = "cas_lucc"
    id_field: str | None = None
    x_field: str | None = None
    y_field: str | None = None
    layer: str | None = None
    sheet: str | None = None


class SeasonSpec(_Strict):
    """One season of the feature stack: the median composite of the year's scenes acquired in ``months``."""

    months: list[Annotated[int, Field(ge=1, le=12)]] = Field(min_length=1)


class LandcoverModelSpec(_Strict):
    """Land-cover classification (issue 21): samples, features, classifier and post-processing. Defaults and their
    sources: ``indices/landcover_model.yaml``.

    ``training``: labelled samples; ``validation``: an independent reference sample (``ecoassess landcover
    assess``; its label column is usually ``reference_class``). ``legend``: the map's legend. ``training_year``:
    the imagery year the training samples describe (default ``year``). Features: ``bands`` (band roles of the
    median composite; default every band the imagery has), ``indices`` (catalog names), ``seasons`` (default one
    season: ``composite.months``), ``terrain`` (``elevation``, ``slope`` from ``dem``). Classifier: a random
    forest of ``n_estimators`` trees, ``min_samples_leaf``, seeded by ``seed`` (deterministic). ``model``: a saved
    model (``model.json`` or its folder) to reuse instead of training. Post-processing: ``mmu_cells`` (sieve;
    1 = none), ``majority_size`` (3 or 5; none by default), ``update`` (change last year's map only where the
    spectral change agrees; needs land cover of the year before)."""

    training: SampleSource | None = None
    validation: SampleSource | None = None
    legend: str = "cas_lucc"
    training_year: int | None = Field(None, ge=1972, le=2100)
    bands: list[str] | None = None
    indices: list[str] | None = None
    seasons: list[SeasonSpec] | None = None
    terrain: list[Literal["elevation", "slope"]] = Field(default_factory=list)
    n_estimators: int | None = Field(None, ge=1, le=5000)
    min_samples_leaf: int | None = Field(None, ge=1)
    seed: int = 0
    min_samples_per_class: int | None = Field(None, ge=1)
    model: InputPath | None = None
    mmu_cells: int | None = Field(None, ge=1)
    majority_size: Literal[3, 5] | None = None
    update: bool = False


class AssessmentConfig(_Strict):
    """The whole assessment: study area, year(s), sources per year, zones, stations, tables, outputs."""

    name: str = "ecoassess assessment"
    year: int = Field(ge=1972, le=2100)
    baseline_year: int | None = Field(None, ge=1972, le=2100)
    study_area: StudyArea
    grid: GridSpec = Field(default_factory=GridSpec)
    imagery: dict[int, list[SceneSpec]] = Field(default_factory=dict)
    composite: CompositeSpec = Field(default_factory=CompositeSpec)
    fvc: FvcSpec = Field(default_factory=FvcSpec)
    vegetation_change: VegetationChangeSpec = Field(default_factory=VegetationChangeSpec)
    rsei: RseiSpec = Field(default_factory=RseiSpec)
    masking: MaskingSpec = Field(default_factory=MaskingSpec)
    thermal: dict[int, SceneSpec] = Field(default_factory=dict)
    land_cover: dict[int, RasterSource] = Field(default_factory=dict)
    dem: DemSource | None = None
    erosion: ErosionSpec | None = None
    hj192: Hj192Spec = Field(default_factory=Hj192Spec)
    rivers: RiverSource | None = None
    zones: dict[str, VectorSource] = Field(default_factory=dict)
    stations: dict[Literal["air", "surface_water", "drinking_water", "soil", "noise", "ecology_plots"],
                   StationSource] = Field(default_factory=dict)
    network: NetworkSpec | None = None
    statistics: TableSource | None = None
    constraint_events: TableSource | None = None
    change_truth: VectorSource | None = None
    redline: RedlineSpec | None = None
    landcover_model: LandcoverModelSpec | None = None
    outputs: OutputSpec = Field(default_factory=OutputSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    run: RunSpec = Field(default_factory=RunSpec)

    # set by load_config, not part of the YAML schema
    source_path: Path | None = Field(None, exclude=True)
    #: set by ecoassess.validate.validate_config: the config (as JSON) whose inputs were all checked
    _inputs_checked: str | None = PrivateAttr(default=None)
    #: doubts about the inputs that do not stop a run (ecoassess.validate.input_warnings), for the manifest
    _input_warnings: list = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _years(self):
        if self.baseline_year is not None and self.baseline_year >= self.year:
            raise ValueError(f"baseline_year {self.baseline_year} must be before year {self.year}")
        if self.imagery and self.year not in self.imagery:
            raise ValueError(f"imagery has years {sorted(self.imagery)} but not the assessment year {self.year}")
        if self.imagery and self.baseline_year is not None and self.baseline_year not in self.imagery:
            raise ValueError(f"imagery has years {sorted(self.imagery)} but not the baseline year {self.baseline_year}"
                             " (its layers and every change output need it; remove baseline_year to assess one year)")
        change = self.vegetation_change
        if change.before is not None:
            for key, period in (("before", change.before), ("after", change.after)):
                missing = [y for y in period.years if y not in self.imagery]
                if missing:
                    raise ValueError(f"vegetation_change.{key} takes scenes from imagery.{missing[0]}, but imagery "
                                     f"has years {sorted(self.imagery)} (list the period's scenes under the year "
                                     "they were acquired in)")
            first_end = change.before.span(self.composite.months)[1]
            second_start = change.after.span(self.composite.months)[0]
            if not first_end < second_start:
                raise ValueError(f"vegetation_change: the before period ({change.before.label}, to {first_end}) must "
                                 f"end before the after period ({change.after.label}, from {second_start}) starts")
        if self.rsei.water_mask == "land_cover":
            lacking = [y for y in self.years if y in self.thermal and y not in self.land_cover]
            if lacking:
                raise ValueError(f"rsei.water_mask is land_cover, but land_cover has no layer for year(s) {lacking} "
                                 "(give one, or use mndwi / otsu)")
        return self

    @model_validator(mode="after")
    def _classified_map_legends(self):
        """``land_cover.<year>`` without a ``legend`` that names a map of ``ecoassess landcover predict``: the legend
        the map was classified in (its sidecar, :mod:`ecoassess.landcover.provenance`)."""
        from ecoassess.landcover.provenance import sidecar_legend
        from ecoassess.legends import is_legend_path

        for source in self.land_cover.values():
            if source.legend is None:
                legend = sidecar_legend(source.path)
                source.legend = Path(legend) if legend is not None and is_legend_path(legend) else legend
        return self

    @property
    def years(self) -> list[int]:
        """The assessment year and, if set, the baseline year (baseline first)."""
        return [y for y in (self.baseline_year, self.year) if y is not None]

    def redline_years(self) -> tuple[int | None, int]:
        """(before, after) years of the red-line comparison: ``redline.before_year`` / ``after_year``, default
        ``baseline_year`` / ``year``. (Named periods, when the config gets them for vegetation change, plug in here.)"""
        spec = self.redline_spec
        before = spec.before_year if spec.before_year is not None else self.baseline_year
        after = spec.after_year if spec.after_year is not None else self.year
        return before, after

    @property
    def redline_spec(self) -> RedlineSpec:
        """The ``redline`` section, or its defaults when the config has none."""
        return self.redline if self.redline is not None else RedlineSpec()

    def to_yaml_dict(self) -> dict:
        """The config as plain data with absolute paths (for the manifest)."""
        return self.model_dump(mode="json", exclude_none=True)


# -- loading ---------------------------------------------------------------------------------------------------

def load_config(path) -> AssessmentConfig:
    """Load ``path`` and check its schema; raise ConfigError listing every schema problem.

    No input is opened, so this is cheap (a notebook can load a config at once); the inputs are checked by
    :func:`ecoassess.validate.validate_config`, which the ``validate`` and ``run`` commands and
    :func:`ecoassess.run` call."""
    path = Path(path)
    config = parse_config(read_config_file(path), base_dir=path.parent.resolve(), source=path)
    config.source_path = path.resolve()
    return config


def read_config_file(path: Path) -> dict:
    """The mapping in a YAML config file; ConfigError when it is missing, a symlink loop, not YAML or not UTF-8."""
    if not path.is_file():
        try:
            path.resolve(strict=False)
        except (RuntimeError, OSError) as exc:  # a symlink loop says so, not "not found"
            raise ConfigError(path, [f"the config file is a symlink loop ({exc}); point the link at the real "
                                     "file"]) from None
        raise ConfigError(path, [f"config file not found: {path}"])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(path, ["the file must hold a mapping of keys (name, year, study_area, ...)"])
    return raw


def parse_config(raw: dict, *, base_dir: Path, source="<config>") -> AssessmentConfig:
    """Schema-check a config mapping; paths resolve against ``base_dir``."""
    try:
        return AssessmentConfig.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        error = ConfigError(source, [_format_error(err) for err in exc.errors()])
        error.locations = [tuple(err.get("loc", ())) for err in exc.errors()]
        raise error from None


def _format_error(err: dict) -> str:
    loc = _format_loc(err.get("loc", ()))
    kind = err.get("type", "")
    msg = err.get("msg", "")
    if kind == "extra_forbidden":
        parent_loc, key = err["loc"][:-1], err["loc"][-1]
        allowed = _allowed_keys(parent_loc)
        hint = ""
        if allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            hint += f" (allowed here: {', '.join(allowed)})"
        return f"{_format_loc(parent_loc)}: unknown key '{key}'{hint}"
    if kind == "missing":
        return f"{loc}: required key is missing"
    msg = msg.removeprefix("Value error, ")
    given = err.get("input")
    if kind.startswith(("date", "int", "float", "literal", "greater", "less")) and not isinstance(given, (dict, list)):
        return f"{loc}: {msg} (got {given!r})"
    return f"{loc}: {msg}"


def _format_loc(loc) -> str:
    """``('imagery', 2024, 0, 'kind')`` -> ``imagery.2024[0].kind``; pydantic's union/validator tags dropped."""
    out = ""
    for part in loc:
        if isinstance(part, str) and (any(c in part for c in "[](),") or part[:1].isupper()):
            continue  # 'function-after[...]', 'BandRef' - internal names of union members
        if isinstance(part, int) and out and not out.endswith(("imagery", "thermal", "land_cover")):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<config>"


def _allowed_keys(loc) -> list[str]:
    """The keys allowed at ``loc`` (walks the schema models)."""
    model: Any = AssessmentConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            continue
        model = _model_of(fields[part].annotation)
    fields = getattr(model, "model_fields", None)
    if not fields:
        return []
    return [name for name, f in fields.items() if not f.exclude]


def _model_of(annotation):
    """The BaseModel class inside an annotation like ``X | None``, ``dict[int, list[X]]``."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
