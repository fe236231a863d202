"""Landsat Collection 2 Level-2 (surface reflectance + surface temperature) products.

Reference: USGS *Landsat 8-9 Collection 2 Level-2 Science Product Guide* (LSDS-1619) and *Landsat 4-7 C2 L2 Science
Product Guide* (LSDS-1618). Band files, scale factors, spacecraft and date all come from the product's MTL metadata
(``*_MTL.txt`` in ODL, or ``*_MTL.json``); nothing is hard-coded except the band → role table per sensor:

* surface reflectance (unitless) = DN × REFLECTANCE_MULT_BAND_n + REFLECTANCE_ADD_BAND_n
  (group LEVEL2_SURFACE_REFLECTANCE_PARAMETERS; 2.75e-5 and −0.2 in every C2 product so far);
* surface temperature (K) = DN × TEMPERATURE_MULT_BAND_ST_B10 + TEMPERATURE_ADD_BAND_ST_B10
  (group LEVEL2_SURFACE_TEMPERATURE_PARAMETERS; 0.00341802 and 149.0);
* DN 0 is fill in SR and ST bands; QA_PIXEL bit 0 is fill.

Reflectance is not clipped: over water and in shadow real C2 values are slightly negative.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

from ecoassess.errors import InputError, ProductProblems
from ecoassess.grid import DEFAULT_CHUNK, AnalysisGrid, read_on_grid
from ecoassess.sensors import landsat_spacecrafts
from ecoassess.sources import qa as _qa
from ecoassess.sources.reflectance_range import screen_reflectance
from ecoassess.sources.scene import (
    Scene,
    make_dataset,
    maybe_float,
    native_grid,
    parse_date,
    read_scaled,
    wrap_like,
)

log = logging.getLogger(__name__)

#: SPACECRAFT_ID -> (sensor name, {role: reflective band number}, surface-temperature band id), from the band
#: maps in indices/sensors.yaml.
SPACECRAFTS = landsat_spacecrafts()

ROOT = "LANDSAT_METADATA_FILE"
SR_GROUP = "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"
ST_GROUP = "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS"


# -- MTL ------------------------------------------------------------------------------------------------------

_ODL_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$")


def read_mtl(path) -> dict:
    """The MTL metadata as nested dicts ``{GROUP: {KEY: "value", SUBGROUP: {...}}}`` (values are strings).

    Reads the ODL text form (``GROUP = X`` … ``END_GROUP = X``) or the JSON form; both have the root group
    ``LANDSAT_METADATA_FILE``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot be read ({exc})", path=path, expected="a Landsat MTL file") from exc
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"is not valid JSON ({exc})", path=path, expected="a Landsat MTL.json") from exc
        return _stringify(data)
    root: dict = {}
    stack = [root]
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip() == "END":
            continue
        m = _ODL_LINE.match(line)
        if not m:
            raise InputError(f"line {lineno} is not 'KEY = VALUE': {line.strip()[:60]!r}", path=path,
                             expected="a Landsat MTL in ODL text form")
        key, value = m.group(1), m.group(2).strip().strip('"')
        if key == "GROUP":
            group: dict = {}
            stack[-1][value] = group
            stack.append(group)
        elif key == "END_GROUP":
            if len(stack) == 1:
                raise InputError(f"line {lineno}: END_GROUP without GROUP", path=path)
            stack.pop()
        else:
            stack[-1][key] = value
    return root


def _stringify(obj):
    if isinstance(obj, dict):
        return {k: _stringify(v) for k, v in obj.items()}
    return obj if isinstance(obj, str) else str(obj)


def find_mtl(path) -> Path:
    """The MTL file of a product folder (``*_MTL.txt``, else ``*_MTL.json``), or ``path`` itself if it is one."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise InputError("not found", path=path, expected="a Landsat C2 L2 product folder or its MTL file")
    for pattern in ("*_MTL.txt", "*_MTL.json", "*MTL*.txt", "*MTL*.json"):
        found = sorted(path.glob(pattern))
        if len(found) > 1:
            level2 = [p for p in found if "_L2" in p.name]
            found = level2 if len(level2) == 1 else found
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InputError(f"holds {len(found)} MTL files ({', '.join(p.name for p in found)}); pass one of them",
                             path=path, field="MTL")
    raise InputError("holds no MTL metadata file", path=path, field="MTL",
                     expected="a *_MTL.txt or *_MTL.json file of a Landsat Collection 2 Level-2 product")


def _group(meta: dict, name: str, mtl: Path, required: bool = True) -> dict | None:
    g = meta.get(name)
    if g is None and required:
        raise InputError(f"has no {name} group", path=mtl, field=name,
                         expected="a Landsat Collection 2 Level-2 MTL")
    return g


def _float(group: dict, key: str, group_name: str, mtl: Path) -> float:
    if key not in group:
        raise InputError("has no scale factor for this band", path=mtl, field=f"{group_name}/{key}",
                         expected="the Collection 2 Level-2 scale factors (LSDS-1619)")
    try:
        return float(group[key])
    except ValueError as exc:
        raise InputError(f"value {group[key]!r} is not a number", path=mtl, field=f"{group_name}/{key}") from exc


def _band_file(contents: dict, key: str, folder: Path, mtl: Path, required: bool = True) -> Path | None:
    name = contents.get(key)
    if name is None:
        if required:
            raise InputError("names no file for this band", path=mtl, field=f"PRODUCT_CONTENTS/{key}")
        return None
    p = folder / name
    if not p.exists():
        # accept the lower-case extension some mirrors use
        alt = [q for q in folder.glob(Path(name).stem + ".*") if q.suffix.lower() in (".tif", ".tiff")]
        if alt:
            return alt[0]
        if required:
            raise InputError(f"the band file {name} named in the MTL is missing", path=p,
                             field=f"PRODUCT_CONTENTS/{key}", expected=f"{name} beside {mtl.name}")
        return None
    return p


# -- reader ---------------------------------------------------------------------------------------------------

#: the reflective roles a product must hold unless the caller says otherwise: what every stage reads (NDVI, FVC,
#: MNDWI, tasseled-cap wetness, NDBSI); the coastal band (SR_B1 of OLI) is read only when it is there
REQUIRED_ROLES: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "swir2")


def _band_label(role: str, number: int) -> str:
    return f"SR_B{number}"


def _resolve(path, bands, thermal, needed_by) -> dict:
    """The product's layout (MTL, band files, scale factors) for the bands asked for; ProductProblems listing
    every problem found (not only the first): a band file a stage needs that is missing (naming the stage),
    missing scale factors, unreadable band headers, band files without a CRS or with another CRS than the red
    band's. Bands nobody needs are read when present and skipped when absent."""
    from ecoassess.grid import raster_info

    needed_by = dict(needed_by or {})
    mtl = find_mtl(path)
    folder = mtl.parent
    doc = read_mtl(mtl)
    if ROOT not in doc:
        raise InputError(f"has no {ROOT} group", path=mtl, field=ROOT, expected="a Landsat Collection 2 MTL")
    meta = doc[ROOT]
    contents = _group(meta, "PRODUCT_CONTENTS", mtl)
    image = _group(meta, "IMAGE_ATTRIBUTES", mtl)
    spacecraft = image.get("SPACECRAFT_ID")
    if spacecraft not in SPACECRAFTS:
        raise InputError(f"SPACECRAFT_ID {spacecraft!r} is not a supported Landsat", path=mtl,
                         field="IMAGE_ATTRIBUTES/SPACECRAFT_ID", expected=", ".join(SPACECRAFTS))
    sensor, role_bands, st_band = SPACECRAFTS[spacecraft]
    required = tuple(bands) if bands is not None else REQUIRED_ROLES
    unknown = [r for r in required if r not in role_bands]
    if unknown:
        raise InputError(f"band role(s) {unknown} do not exist on {sensor}", path=mtl, field="bands",
                         expected=f"roles among {', '.join(role_bands)}")
    problems: list[InputError] = []
    date = None
    try:
        date = parse_date(image.get("DATE_ACQUIRED", ""))
    except ValueError as exc:
        problems.append(InputError(str(exc), path=mtl, field="IMAGE_ATTRIBUTES/DATE_ACQUIRED",
                                   expected="YYYY-MM-DD"))

    def need(key: str, name: str | None, label: str, role: str) -> Path | None:
        """The band file of ``key``, None when absent; a problem when a stage needs it."""
        try:
            found = _band_file(contents, key, folder, mtl, required=False)
        except InputError as exc:  # pragma: no cover - _band_file raises only when required
            problems.append(exc)
            return None
        if found is None and role in needed:
            why = needed_by.get(role) or f"the {role} band is read by every stage that uses this product"
            if name is None:
                problems.append(InputError(f"{label} missing: the MTL names no file for it, and {why}", path=mtl,
                                           field=f"PRODUCT_CONTENTS/{key}",
                                           expected=f"a {label} file in the product"))
            else:
                problems.append(InputError(f"{label} missing: {why} (the band file {name} named in the MTL is "
                                           "missing)",
                                           path=folder / name, field=f"PRODUCT_CONTENTS/{key}",
                                           expected=f"{name} beside {mtl.name}"))
        return found

    needed = set(required) | ({"thermal"} if thermal else set())
    sr_params = meta.get(SR_GROUP)
    files: dict[str, Path] = {}
    factors: dict[str, tuple[float, float]] = {}
    for role, n in role_bands.items():
        key = f"FILE_NAME_BAND_{n}"
        f = need(key, contents.get(key), _band_label(role, n), role)
        if f is None:
            if role not in needed:
                log.info("%s: %s (%s) is not in the folder; no stage needs it", mtl.name, _band_label(role, n), role)
            continue
        files[role] = f
    if sr_params is None:
        problems.append(InputError(f"has no {SR_GROUP} group (no surface-reflectance scale factors)", path=mtl,
                                   field=SR_GROUP,
                                   expected="a Collection 2 Level-2 MTL with REFLECTANCE_MULT/ADD_BAND_n"))
    else:
        for role in files:
            n = role_bands[role]
            try:
                factors[role] = (_float(sr_params, f"REFLECTANCE_MULT_BAND_{n}", SR_GROUP, mtl),
                                 _float(sr_params, f"REFLECTANCE_ADD_BAND_{n}", SR_GROUP, mtl))
            except InputError as exc:
                problems.append(exc)

    st_key = f"FILE_NAME_BAND_{st_band}"
    st_file = st_factors = None
    if thermal is not False:
        st_file = need(st_key, contents.get(st_key), st_band, "thermal")
        if st_file is None and thermal is None and contents.get(st_key):
            log.info("%s: %s is not in the folder; no stage needs the surface temperature", mtl.name, st_band)
    if st_file is not None:
        st_params = meta.get(ST_GROUP)
        if st_params is None:
            problems.append(InputError(f"names {st_file.name} but has no {ST_GROUP} group", path=mtl, field=ST_GROUP,
                                       expected=f"TEMPERATURE_MULT/ADD_BAND_{st_band}"))
        else:
            try:
                st_factors = (_float(st_params, f"TEMPERATURE_MULT_BAND_{st_band}", ST_GROUP, mtl),
                              _float(st_params, f"TEMPERATURE_ADD_BAND_{st_band}", ST_GROUP, mtl))
            except InputError as exc:
                problems.append(exc)
    qa_file = _band_file(contents, "FILE_NAME_QUALITY_L1_PIXEL", folder, mtl, required=False)
    radsat_file = _band_file(contents, "FILE_NAME_QUALITY_L1_RADIOMETRIC_SATURATION", folder, mtl, required=False)

    # headers: every band file readable, georeferenced, and in the red band's CRS
    ref_crs = None
    labels = {role: f"{_band_label(role, role_bands[role])} ({role})" for role in files}
    headers = [(labels[r], f) for r, f in files.items()] + ([(st_band, st_file)] if st_file is not None else [])
    headers += [("QA_PIXEL", qa_file)] if qa_file is not None else []
    for label, f in sorted(headers, key=lambda h: h[1] != files.get("red")):
        try:
            info = raster_info(f)
        except InputError as exc:
            problems.append(exc)
            continue
        if info["crs"] is None:
            problems.append(InputError(f"{label} has no CRS", path=f, field="crs",
                                       expected="a georeferenced band file (USGS products are in UTM or polar "
                                                "stereographic; was it converted without its georeference?)"))
        elif ref_crs is None:
            ref_crs = info["crs"]
        elif info["crs"] != ref_crs:
            problems.append(InputError(f"{label} is in {info['crs'].to_string()}, the red band in "
                                       f"{ref_crs.to_string()}", path=f, field="crs",
                                       expected="every band of one product in one CRS"))
    if problems:
        raise ProductProblems([str(p) for p in problems], path=folder)
    return {"mtl": mtl, "folder": folder, "contents": contents, "image": image, "spacecraft": spacecraft,
            "sensor": sensor, "role_bands": role_bands, "st_band": st_band, "date": date, "files": files,
            "factors": factors, "st_file": st_file, "st_factors": st_factors, "qa_file": qa_file,
            "radsat_file": radsat_file}


def landsat_problems(path, *, bands=None, thermal=None, needed_by=None) -> list[str]:
    """Every problem of a Landsat C2 L2 product for the bands asked for (``[]`` when it can be opened); reads the MTL
    and the band headers, no pixel. Same arguments as :func:`open_landsat_c2l2`."""
    try:
        _resolve(path, bands, thermal, needed_by)
    except ProductProblems as exc:
        return list(exc.problems)
    except InputError as exc:
        return [str(exc)]
    return []


def open_landsat_c2l2(path, grid: AnalysisGrid | None = None, *, bands=None, thermal: bool | None = None,
                      needed_by: dict | None = None, mask_flags=_qa.DEFAULT_LANDSAT_MASK_FLAGS,
                      chunk: int = DEFAULT_CHUNK) -> Scene:
    """Open a Landsat Collection 2 Level-2 product (folder or MTL file) as a lazy :class:`Scene` on ``grid``.

    ``bands``: the reflective roles the product must hold (default :data:`REQUIRED_ROLES`, SR_B2–SR_B7 of OLI);
    the others (the coastal band) are read when present. ``thermal``: True = the surface-temperature band
    (ST_B10 / ST_B6) must be there, False = not read, None = read when present. ``needed_by``: {role or
    ``thermal``: "RSEI (thermal.2024) needs the surface temperature"}, said when that band is missing.
    Every problem of the product is raised at once (:class:`ProductProblems`).

    Without ``grid`` the product's own grid (that of the red SR band) is used. ``mask_flags`` are QA_PIXEL flags
    (``fill, dilated_cloud, cirrus, cloud, cloud_shadow, snow, water``) plus ``saturated`` (QA_RADSAT, bands 1-7)
    that make a valid pixel not clear. Without a QA_PIXEL file, ``valid`` = SR DN ≠ 0 and ``clear`` = ``valid``
    (``metadata['qa_available']`` is False). SR is read with area-average resampling, QA with nearest.
    """
    mask_flags = _qa.check_landsat_mask_flags(mask_flags)
    if bands is not None and "red" not in bands:
        bands = tuple(bands) + ("red",)  # the red band defines the product's grid and its observed pixels
    lay = _resolve(path, bands, thermal, needed_by)
    mtl, folder, contents, image = lay["mtl"], lay["folder"], lay["contents"], lay["image"]
    spacecraft, sensor, role_bands, st_band, date = (lay["spacecraft"], lay["sensor"], lay["role_bands"],
                                                     lay["st_band"], lay["date"])
    files, factors, st_file, st_factors = lay["files"], lay["factors"], lay["st_file"], lay["st_factors"]
    qa_file, radsat_file = lay["qa_file"], lay["radsat_file"]

    if grid is None:
        grid = native_grid(files["red"])

    # -- reflectance and temperature (fill -> NaN before scaling) ---------------------------------------------
    arrays = {}
    for role, f in files.items():
        mult, add = factors[role]
        arrays[role] = read_scaled(f, grid, kind="reflectance", scale=mult, offset=add, src_nodata=0, chunk=chunk,
                                   name=role, attrs={"units": "1", "long_name": f"surface reflectance ({role})",
                                                     "band_file": f.name})
    bands = make_dataset(grid, arrays, {"sensor": sensor})
    thermal = None
    if st_file is not None:
        thermal = read_scaled(st_file, grid, kind="reflectance", scale=st_factors[0], offset=st_factors[1],
                              src_nodata=0, chunk=chunk, name="thermal_k",
                              attrs={"units": "K", "long_name": "surface temperature", "band_file": st_file.name})

    # -- masks ----------------------------------------------------------------------------------------------
    observed = arrays["red"].data == arrays["red"].data  # not NaN: SR DN != 0 and inside the product
    mask_layers = {}
    water = None
    metadata_qa: dict = {}
    if qa_file is not None:
        qa = read_on_grid(qa_file, grid, kind="mask", dtype="uint16", src_nodata=_qa.LANDSAT_QA_FILL_VALUE,
                          dst_nodata=_qa.LANDSAT_QA_FILL_VALUE, chunk=chunk, name="qa_pixel").data
        valid = observed & ~_qa.landsat_qa_bit(qa, "fill")
        for flag in mask_flags:
            if flag == "fill":
                continue
            if flag == "saturated":
                if radsat_file is None:
                    raise InputError("mask flag 'saturated' needs the QA_RADSAT band, which is missing",
                                     path=folder / contents.get("FILE_NAME_QUALITY_L1_RADIOMETRIC_SATURATION", "?"),
                                     field="FILE_NAME_QUALITY_L1_RADIOMETRIC_SATURATION")
                radsat = read_on_grid(radsat_file, grid, kind="mask", dtype="uint16", src_nodata=None,
                                      dst_nodata=0, chunk=chunk, name="qa_radsat").data
                reason = _qa.landsat_radsat_any(radsat)
            else:
                reason = _qa.landsat_qa_bit(qa, flag)
            mask_layers[flag] = wrap_like(grid, reason & valid, name=flag)
        # clear = valid and no mask reason: the QA_PIXEL flags tested together (one AND with their bits, instead
        # of one array per flag OR-ed together; mask_layers keep the per-reason arrays for mask_summary)
        bits = sum(1 << _qa.LANDSAT_QA_BITS[f] for f in mask_flags if f not in ("fill", "saturated"))
        clear = valid & ((qa & np.uint16(bits)) == 0) if bits else valid
        if "saturated" in mask_layers:
            clear = clear & ~mask_layers["saturated"].data
        water = wrap_like(grid, valid & _qa.landsat_qa_bit(qa, "water"), name="water")
        metadata_qa = {"qa_available": True, "qa_file": str(qa_file), "mask_file": str(qa_file),
                       "mask_band": "QA_PIXEL", "mask_flags": list(mask_flags)}
    else:
        valid = observed
        clear = valid
        log.warning("%s: no QA_PIXEL file (%s); valid = SR DN != 0 and no cloud mask is applied", mtl.name,
                    contents.get("FILE_NAME_QUALITY_L1_PIXEL", "not named in the MTL"))
        metadata_qa = {"qa_available": False, "qa_file": None, "mask_file": str(files["red"]), "mask_band": None,
                       "mask_flags": [],
                       "qa_note": "QA_PIXEL absent: valid = SR DN != 0, clear = valid (no cloud/shadow/snow mask)"}

    metadata = {
        "kind": "landsat_c2l2",
        "product_id": contents.get("LANDSAT_PRODUCT_ID") or mtl.name.replace("_MTL.txt", "").replace("_MTL.json", ""),
        "mtl_file": str(mtl),
        "spacecraft_id": spacecraft,
        "sensor_id": image.get("SENSOR_ID"),
        "processing_level": contents.get("PROCESSING_LEVEL"),
        "collection_number": contents.get("COLLECTION_NUMBER"),
        "collection_category": contents.get("COLLECTION_CATEGORY"),
        "wrs_path": image.get("WRS_PATH"),
        "wrs_row": image.get("WRS_ROW"),
        "scene_center_time": image.get("SCENE_CENTER_TIME"),
        "cloud_cover_percent": maybe_float(image.get("CLOUD_COVER")),
        "cloud_cover_land_percent": maybe_float(image.get("CLOUD_COVER_LAND")),
        "band_files": {role: str(f) for role, f in files.items()},
        "band_numbers": {role: role_bands[role] for role in files},
        "reflectance_scale": {role: {"mult": m, "add": a} for role, (m, a) in factors.items()},
        "reflectance_formula": "DN * REFLECTANCE_MULT_BAND_n + REFLECTANCE_ADD_BAND_n (MTL, LSDS-1619); DN 0 = fill",
        "thermal_file": str(st_file) if st_file else None,
        "thermal_band": st_band if st_file else None,
        "thermal_scale": {"mult": st_factors[0], "add": st_factors[1]} if st_factors else None,
        "resampling": {"reflectance": "average", "thermal": "average", "qa": "nearest"},
        **metadata_qa,
    }
    scene = Scene(sensor=sensor, date=date, path=str(folder), bands=bands,
                  valid=wrap_like(grid, valid, name="valid"), clear=wrap_like(grid, clear, name="clear"),
                  water=water, thermal_k=thermal, grid=grid, metadata=metadata, mask_layers=mask_layers)
    # reflectance outside its physical range is not an observation (indices/reflectance.yaml)
    return screen_reflectance(scene)


def landsat_band_file(path, role: str) -> Path | None:
    """The file of band ``role`` (a reflective role or ``thermal``) of a product as its MTL names it, when it is
    there (None otherwise); reads the MTL only."""
    mtl = find_mtl(path)
    meta = read_mtl(mtl).get(ROOT, {})
    spacecraft = meta.get("IMAGE_ATTRIBUTES", {}).get("SPACECRAFT_ID")
    if spacecraft not in SPACECRAFTS:
        return None
    _, role_bands, st_band = SPACECRAFTS[spacecraft]
    key = f"FILE_NAME_BAND_{st_band}" if role == "thermal" else f"FILE_NAME_BAND_{role_bands.get(role)}"
    return _band_file(meta.get("PRODUCT_CONTENTS", {}), key, mtl.parent, mtl, required=False)
