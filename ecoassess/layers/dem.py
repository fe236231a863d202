"""The DEM before it becomes slope and erosion: its vertical unit, its voids and plausible heights.

* **Unit.** The height unit is read from the file when it carries one (GDAL's band unit type: a GeoTIFF unit tag,
  or the vertical CRS of a compound CRS — ``metre``, ``foot``, ``US survey foot``, ``ft``, ``m`` ...) and may be
  stated in the config (``dem.z_units``: ``metre | foot | us_survey_foot``). A config that contradicts the file's
  tag is refused; neither means metres (and the assumptions say so). Heights are converted to metres where slope
  is computed (:func:`ecoassess.layers.terrain.slope_degrees`, ``z_units``), exactly (float64).
  A DEM in feet read as metres has 3.28 times the slope: the sample's severe erosion went 60.8 → 155.2 km².
* **Voids.** Without a nodata tag, the classic void values −32768, −32767 (SRTM, int16 DEMs) and −9999 are
  taken as nodata, with a warning naming the file (a −32768 void used as a height is a 30 km cliff).
* **Plausible heights.** Heights outside −500…9000 m (after the unit conversion and the voids) are refused,
  naming the file and ``dem``: a wrong unit, an untagged nodata value, or not a DEM.

The checks read the DEM once, every cell (window by window: memory stays one window of
:data:`SCAN_WINDOW_CELLS` cells; a decimated read missed small voids of large DEMs, which were then interpolated
as heights), cached by file, size and modification time, so ``validate`` and the run share the pass.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr

from ecoassess.errors import InputError

log = logging.getLogger(__name__)

#: ``dem.z_units`` of the config → the unit keys of :data:`ecoassess.layers.terrain.Z_UNITS_M`.
CONFIG_Z_UNITS = {"metre": "m", "foot": "ft", "us_survey_foot": "us_ft"}
#: Spellings of a height unit a raster may carry (GDAL band unit type; vertical CRS unit names), lower case.
_UNIT_TAGS = {
    "m": "m", "metre": "m", "meter": "m", "metres": "m", "meters": "m", "metre (m)": "m",
    "ft": "ft", "foot": "ft", "feet": "ft", "international foot": "ft", "foot (international)": "ft",
    "international feet": "ft",
    "us survey foot": "us_ft", "us_survey_foot": "us_ft", "us survey feet": "us_ft", "ftus": "us_ft",
    "us-ft": "us_ft", "us_ft": "us_ft", "survey foot": "us_ft", "foot_us": "us_ft", "us foot": "us_ft",
    "dm": "dm", "decimetre": "dm", "decimeter": "dm", "cm": "cm", "centimetre": "cm", "centimeter": "cm",
    "mm": "mm", "millimetre": "mm", "millimeter": "mm",
}
_UNIT_WORDS = {"m": "metre", "ft": "foot", "us_ft": "US survey foot", "dm": "decimetre", "cm": "centimetre",
               "mm": "millimetre"}
#: Values DEMs use for voids; without a nodata tag they are taken as nodata (with a warning).
CLASSIC_VOIDS = (-32768.0, -32767.0, -9999.0)
#: Heights (m) a DEM of the Earth's land surface can hold: the Dead Sea shore is −430 m, Everest 8849 m.
PLAUSIBLE_HEIGHT_M = (-500.0, 9000.0)
#: The height and void scan reads the DEM in windows of whole rows of at most this many cells.
SCAN_WINDOW_CELLS = 16_000_000


def unit_of_tag(tag: str | None) -> str | None:
    """The unit key (``m``, ``ft``, ``us_ft``, ...) of a raster's unit tag; None for no tag; ``?`` for a tag that
    is not a length unit ecoassess knows."""
    text = (tag or "").strip().lower()
    if not text:
        return None
    return _UNIT_TAGS.get(text, "?")


@dataclass(frozen=True)
class DemUnits:
    """The DEM's height unit (a key of ``Z_UNITS_M``), the file's tag and where the unit came from (a sentence)."""

    key: str
    tag: str | None
    source: str

    @property
    def word(self) -> str:
        return _UNIT_WORDS.get(self.key, self.key)


def dem_z_units(path, band: int = 1, declared: str | None = None) -> DemUnits:
    """The height unit of band ``band`` of ``path``: its unit tag, ``declared`` (``dem.z_units``: metre, foot,
    us_survey_foot), or metres when neither says. Raises :class:`InputError` when they contradict each other or
    the tag is no length unit and nothing is declared."""
    import rasterio

    if declared is not None and declared not in CONFIG_Z_UNITS:
        raise InputError(f"unknown height unit {declared!r}", field="dem.z_units",
                         expected=" | ".join(CONFIG_Z_UNITS))
    try:
        with rasterio.open(path) as src:
            tag = (src.units[band - 1] if band <= len(src.units) else "") or None
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"cannot be read as a raster ({exc})", path=path, field="dem") from exc
    from_tag = unit_of_tag(tag)
    from_config = CONFIG_Z_UNITS.get(declared) if declared else None
    name = Path(path).name
    if from_tag == "?":
        if from_config is None:
            raise InputError(f"band {band} has the unit tag {tag!r}, which is not a height unit ecoassess knows",
                             path=path, field="dem.z_units",
                             expected="state the unit of the heights with dem.z_units: metre | foot | us_survey_foot")
        log.warning("dem: %s has the unit tag %r, not a length unit; dem.z_units: %s is used", name, tag, declared)
        return DemUnits(from_config, tag, f"dem.z_units: {declared} (the file's unit tag {tag!r} is no length unit)")
    if from_config is not None and from_tag is not None and from_config != from_tag:
        raise InputError(f"dem.z_units says {declared}, but band {band} of the file is tagged {tag!r} "
                         f"({_UNIT_WORDS[from_tag]}): which is right?", path=path, field="dem.z_units",
                         expected=f"dem.z_units matching the file's unit tag, or left out (then {tag!r} is used); "
                                  "fix the file's tag if the config is right")
    if from_tag is not None:
        return DemUnits(from_tag, tag, f"the unit tag {tag!r} of {name}" +
                        (f" (dem.z_units: {declared} agrees)" if from_config else ""))
    if from_config is not None:
        return DemUnits(from_config, None, f"dem.z_units: {declared} ({name} has no unit tag)")
    return DemUnits("m", None, f"{name} has no unit tag and dem.z_units is not set: taken as metres")


@dataclass(frozen=True)
class DemScan:
    """What one pass over a DEM band found: its nodata tag, untagged void values (value → cells), the lowest and
    highest other values (file units; None when there are none) and how many cells were read."""

    nodata: float | None
    voids: dict = field(default_factory=dict)
    low: float | None = None
    high: float | None = None
    cells_read: int = 0


@lru_cache(maxsize=32)
def _scan(path: str, band: int, size: int, mtime_ns: int) -> DemScan:
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as src:
        nodata = src.nodata
        low, high, voids, read = math.inf, -math.inf, {}, 0
        rows = max(1, SCAN_WINDOW_CELLS // max(1, src.width))
        blocks = (src.read(band, window=Window(0, r, src.width, min(rows, src.height - r)))
                  for r in range(0, src.height, rows))
        for block in blocks:
            values = block.astype("float64", copy=False).ravel()
            keep = np.isfinite(values)  # a NaN nodata tag: NaN is nodata, and a void value left in is a height
            if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
                keep &= values != nodata
            elif nodata is None:
                for v in CLASSIC_VOIDS:
                    hit = values == v
                    n = int(hit.sum())
                    if n:
                        voids[v] = voids.get(v, 0) + n
                        keep &= ~hit
            read += values.size
            if keep.any():
                low, high = min(low, float(values[keep].min())), max(high, float(values[keep].max()))
    return DemScan(nodata, voids, None if low == math.inf else low, None if high == -math.inf else high, read)


def scan_dem(path, band: int = 1) -> DemScan:
    """One pass over band ``band`` of a DEM (see :class:`DemScan`); cached by path, size and modification time."""
    st = os.stat(path)
    try:
        return _scan(str(Path(path).resolve()), int(band), st.st_size, st.st_mtime_ns)
    except Exception as exc:  # noqa: BLE001 - any GDAL failure is a problem of this file
        raise InputError(f"band {band} cannot be read ({exc})", path=path, field="dem",
                         expected="an intact single-band DEM raster") from exc


def dem_height_problem(path, scan: DemScan, units: DemUnits) -> str | None:
    """A sentence when the DEM's heights (in metres) leave :data:`PLAUSIBLE_HEIGHT_M`, or it holds no height."""
    from ecoassess.layers.terrain import Z_UNITS_M

    if scan.low is None:
        return f"dem: {path} holds no height (every cell is nodata or a void value)"
    factor = Z_UNITS_M[units.key]
    low_m, high_m = scan.low * factor, scan.high * factor
    lo, hi = PLAUSIBLE_HEIGHT_M
    if lo <= low_m and high_m <= hi:
        return None
    as_read = "" if units.key == "m" else f" ({scan.low:g} to {scan.high:g} {units.word} as stored)"
    hints = []
    if units.key == "m" and units.tag is None and high_m > hi and high_m * Z_UNITS_M["ft"] <= hi:
        hints.append("heights in feet? state dem.z_units: foot")
    if low_m < lo:
        hints.append(f"is {scan.low:g} a nodata value the file does not declare? tag it as the file's nodata")
    hint = "; ".join(hints) or "a wrong dem.z_units, or not a DEM?"
    return (f"dem: {path} holds heights from {low_m:,.6g} to {high_m:,.6g} m{as_read}, outside the "
            f"plausible {lo:g}…{hi:g} m (height unit: {units.source}); {hint}")


def void_note(path, scan: DemScan) -> str | None:
    """The untagged void values found (a sentence for the warning and the assumptions), or None."""
    if not scan.voids or scan.nodata is not None:
        return None
    found = ", ".join(f"{n:,} cells of {v:g}" for v, n in sorted(scan.voids.items()))
    return (f"dem: {path} has no nodata tag but holds void values ({found}); they are taken as nodata, not "
            "as heights")


def dem_problems(key: str, path, *, band: int = 1, declared: str | None = None) -> list[str]:
    """``validate``'s DEM checks: unit tag against ``dem.z_units``, heights in the plausible range, voids (a warning
    in the log, not a problem). Sentences name the file and ``key``."""
    try:
        units = dem_z_units(path, band, declared)
        scan = scan_dem(path, band)
    except InputError as exc:
        return [f"{key}: {exc}"]
    note = void_note(path, scan)
    if note:
        log.warning("%s", note)
    problems = []
    if len(scan.voids) > 1 and scan.nodata is None:
        problems.append(f"{key}: {path} holds several void values ({', '.join(f'{v:g}' for v in scan.voids)}) and "
                        "no nodata tag; only one can be taken as nodata (expected one nodata value, tagged)")
    problem = dem_height_problem(path, scan, units)
    return problems + ([problem] if problem else [])


def read_dem(path, grid, *, band: int = 1, crs=None, z_units: str | None = None, chunk: int = 1024,
             name: str = "dem") -> xr.DataArray:
    """The DEM on ``grid`` (bilinear, lazily), heights as stored, with ``attrs['z_units']`` their unit (a key of
    :data:`~ecoassess.layers.terrain.Z_UNITS_M`, which slope and LS convert to metres) and
    ``attrs['z_units_source']`` where it came from. ``z_units``: the config's ``dem.z_units`` (metre, foot,
    us_survey_foot) or None. Refuses a unit conflict and implausible heights (:class:`InputError`); an untagged
    void value is nodata (warned about, and in ``attrs['voids']``)."""
    from ecoassess.grid import read_on_grid

    units = dem_z_units(path, band, z_units)
    scan = scan_dem(path, band)
    problem = dem_height_problem(path, scan, units)
    if problem is not None:
        raise InputError(problem.removeprefix(f"dem: {path} "), path=path, field="dem",
                         expected=f"heights of {PLAUSIBLE_HEIGHT_M[0]:g}…{PLAUSIBLE_HEIGHT_M[1]:g} m in the stated unit")
    src_nodata = None
    note = void_note(path, scan)
    if note:
        if len(scan.voids) > 1:
            raise InputError(f"holds several void values ({', '.join(f'{v:g}' for v in scan.voids)}) and no nodata "
                             "tag", path=path, field="dem", expected="one nodata value, tagged in the file")
        log.warning("%s", note)
        src_nodata = next(iter(scan.voids))
    dem = read_on_grid(path, grid, band=band, kind="continuous", dtype="float32", crs=crs, chunk=chunk, name=name,
                       src_nodata=src_nodata)
    dem.attrs.update({"z_units": units.key, "z_units_source": units.source,
                      "voids": void_note(Path(path).name, scan) or ""})
    return dem


def dem_notes(dem: xr.DataArray) -> list[str]:
    """The assumptions a DEM read by :func:`read_dem` adds to a run's record (``ei_assumptions``)."""
    from ecoassess.layers.terrain import Z_UNITS_M

    key = dem.attrs.get("z_units", "m")
    word = _UNIT_WORDS.get(key, key)
    factor = Z_UNITS_M[key]
    conversion = "" if key == "m" else f", converted to metres (× {factor:.10g}) for slope"
    notes = [f"DEM heights in {word} ({dem.attrs.get('z_units_source', 'not stated')}){conversion}"]
    if dem.attrs.get("voids"):
        notes.append(dem.attrs["voids"].removeprefix("dem: "))
    return notes
