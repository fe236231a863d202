"""Sentinel-2 Level-2A (Sen2Cor bottom-of-atmosphere reflectance) products: SAFE folders and COG + STAC items.

Reference: ESA *Sentinel-2 Products Specification Document* (PSD 14.x, S2-PDGS-TAS-DI-PSD) and the processing
baseline 04.00 notice (January 2022): for baseline ≥ 04.00

    reflectance = (DN + BOA_ADD_OFFSET_b) / BOA_QUANTIFICATION_VALUE      (offset −1000, quantification 10000)

and before 04.00 reflectance = DN / 10000. DN 0 is NO_DATA in every band. Scene classification (SCL, 20 m) classes
are decoded in :mod:`ecoassess.sources.qa`.

Two layouts are read:

* a SAFE folder (``MTD_MSIL2A.xml`` + ``GRANULE/*/IMG_DATA/R10m|R20m|R60m/*_B02_10m.jp2`` …), offsets and
  quantification from ``MTD_MSIL2A.xml``;
* a folder of band COGs with a STAC item (Element84 ``sentinel-2-l2a`` style: assets ``blue, green, red, nir,
  swir16, swir22, scl`` or ``B02 …``; ``properties.datetime``, ``s2:processing_baseline``, ``platform``,
  ``raster:bands`` scale/offset, ``earthsearch:boa_offset_applied``), or the item file itself. Remote hrefs are
  looked up by file name beside the item (nothing is downloaded).

All bands (10, 20 and 60 m) land on ONE grid, by default the native grid of the red band (B04, 10 m).
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

from ecoassess.errors import InputError, ProductProblems
from ecoassess.grid import DEFAULT_CHUNK, AnalysisGrid, read_on_grid
from ecoassess.sources import qa as _qa
from ecoassess.sources.reflectance_range import screen_reflectance
from ecoassess.sensors import sentinel2_bands, sentinel2_stac_keys
from ecoassess.sources.scene import (CORE_ROLES, Scene, make_dataset, maybe_float, native_grid, parse_date,
                                     read_scaled, wrap_like)

log = logging.getLogger(__name__)

#: role -> (band id, native resolution in m, band_id index used by BOA_ADD_OFFSET in MTD_MSIL2A.xml) and the
#: STAC asset keys accepted per role: the band maps of indices/sensors.yaml.
S2_BANDS: dict[str, tuple[str, int, int]] = sentinel2_bands()
STAC_ASSET_KEYS: dict[str, tuple[str, ...]] = sentinel2_stac_keys()
REQUIRED_ROLES = CORE_ROLES
DEFAULT_QUANTIFICATION = 10000.0
DEFAULT_BOA_ADD_OFFSET = -1000.0
OFFSET_BASELINE = (4, 0)


def _baseline_tuple(text) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.match(r"^\s*N?(\d{1,2})\.?(\d{2})\s*$", str(text))
    if not m:
        return None
    return int(m.group(1)), int(m.group(2))


def _sensor_name(platform: str | None) -> str:
    """'sentinel-2a' / 'Sentinel-2A' -> 'sentinel2a'."""
    if not platform:
        return "sentinel2"
    return re.sub(r"[^a-z0-9]", "", platform.lower())


# -- SAFE -----------------------------------------------------------------------------------------------------

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _read_mtd(mtd: Path) -> dict:
    try:
        root = ET.parse(mtd).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"cannot be parsed as XML ({exc})", path=mtd, expected="a Sentinel-2 MTD_MSIL2A.xml") from exc
    out: dict = {"image_files": [], "boa_add_offset": {}}
    for el in root.iter():
        tag = _local(el.tag)
        text = (el.text or "").strip()
        if tag in ("PRODUCT_START_TIME", "PROCESSING_BASELINE", "SPACECRAFT_NAME", "PRODUCT_URI", "PRODUCT_TYPE",
                   "Cloud_Coverage_Assessment", "PROCESSING_LEVEL", "GENERATION_TIME") and tag not in out:
            out[tag] = text
        elif tag in ("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE"):
            out["BOA_QUANTIFICATION_VALUE"] = text
        elif tag == "BOA_ADD_OFFSET":
            out["boa_add_offset"][int(el.get("band_id"))] = float(text)
        elif tag == "IMAGE_FILE":
            out["image_files"].append(text)
    return out


def _find_safe(path: Path) -> tuple[Path, Path]:
    """(SAFE folder, MTD_MSIL2A.xml) from a SAFE folder or its MTD file."""
    if path.is_file():
        return path.parent, path
    for name in ("MTD_MSIL2A.xml", "MTD_SAFL2A.xml"):
        if (path / name).exists():
            return path, path / name
    raise InputError("holds no MTD_MSIL2A.xml", path=path, field="MTD_MSIL2A.xml",
                     expected="a Sentinel-2 L2A SAFE folder")


def _safe_band_file(safe: Path, mtd: Path, image_files: list[str], band_id: str, res: int,
                    required: bool) -> Path | None:
    suffix = f"_{band_id}_{res}m"
    listed = [f for f in image_files if f.endswith(suffix)]
    if listed:
        p = safe / (listed[0] + ".jp2")
        if not p.exists():
            alt = safe / (listed[0] + ".tif")
            if alt.exists():
                return alt
            if required:
                raise InputError(f"band file named in {mtd.name} is missing", path=p, field=band_id,
                                 expected=f"{p.name} in the SAFE folder")
            return None
        return p
    found = sorted(safe.glob(f"GRANULE/*/IMG_DATA/R{res}m/*{suffix}.jp2"))
    if len(found) > 1:
        raise InputError(f"holds {len(found)} granules with {band_id} at {res} m; a L2A SAFE has one", path=safe,
                         field=band_id)
    if found:
        return found[0]
    if required:
        raise InputError(f"has no {band_id} band at {res} m", path=safe, field=band_id,
                         expected=f"GRANULE/*/IMG_DATA/R{res}m/*{suffix}.jp2")
    return None


def _open_safe(path: Path) -> dict:
    safe, mtd = _find_safe(path)
    info = _read_mtd(mtd)
    baseline_text = info.get("PROCESSING_BASELINE")
    baseline = _baseline_tuple(baseline_text)
    if baseline is None:
        raise InputError(f"processing baseline {baseline_text!r} cannot be read", path=mtd,
                         field="PROCESSING_BASELINE", expected="NN.NN, e.g. 04.00")
    if "BOA_QUANTIFICATION_VALUE" not in info:
        raise InputError("has no BOA_QUANTIFICATION_VALUE", path=mtd, field="BOA_QUANTIFICATION_VALUE",
                         expected="the L2A quantification value (10000)")
    quant = float(info["BOA_QUANTIFICATION_VALUE"])
    files, offsets, problems = {}, {}, []   # every problem of the product is said at once (ProductProblems)
    for role, (band_id, res, idx) in S2_BANDS.items():
        required = role in REQUIRED_ROLES
        try:
            f = _safe_band_file(safe, mtd, info["image_files"], band_id, res, required)
            if f is None and role == "coastal":
                f = _safe_band_file(safe, mtd, info["image_files"], band_id, 20, False)
        except InputError as exc:
            problems.append(str(exc))
            continue
        if f is None:
            continue
        files[role] = f
        if baseline >= OFFSET_BASELINE:
            if idx not in info["boa_add_offset"]:
                problems.append(str(InputError(
                    f"baseline {baseline_text} needs BOA_ADD_OFFSET for band_id {idx} ({band_id})", path=mtd,
                    field=f"BOA_ADD_OFFSET[band_id={idx}]",
                    expected="the BOA_ADD_OFFSET_VALUES_LIST of baseline ≥ 04.00 products")))
                continue
            offsets[role] = info["boa_add_offset"][idx]
        else:
            offsets[role] = 0.0
    try:
        scl = _safe_band_file(safe, mtd, info["image_files"], "SCL", 20, False)
    except InputError as exc:
        problems.append(str(exc))
    try:
        date = parse_date(info.get("PRODUCT_START_TIME", ""))
    except ValueError as exc:
        problems.append(str(InputError(str(exc), path=mtd, field="PRODUCT_START_TIME", expected="an ISO date-time")))
    if problems:
        raise ProductProblems(problems, path=safe)
    return {
        "layout": "SAFE", "path": safe, "metadata_file": mtd, "files": files, "scl": scl,
        "quantification": {r: quant for r in files}, "offset_dn": offsets,
        "offset_rule": (f"(DN + BOA_ADD_OFFSET) / {quant:g} from {mtd.name}" if baseline >= OFFSET_BASELINE
                        else f"DN / {quant:g} (baseline {baseline_text} < 04.00: no offset)"),
        "baseline": baseline_text, "platform": info.get("SPACECRAFT_NAME"), "date": date,
        "product_id": (info.get("PRODUCT_URI") or safe.name).removesuffix(".SAFE"),
        "cloud_cover_percent": maybe_float(info.get("Cloud_Coverage_Assessment")),
        "start_time": info.get("PRODUCT_START_TIME"),
    }


# -- STAC item + COGs -----------------------------------------------------------------------------------------

def _find_item(path: Path) -> Path:
    if path.is_file():
        return path
    candidates, broken = [], []
    for p in sorted(path.glob("*.json")):
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except OSError:
            continue
        except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
            broken.append((p, exc))
            continue
        if isinstance(doc, dict) and doc.get("type") == "Feature" and isinstance(doc.get("assets"), dict):
            candidates.append(p)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates and broken:
        # the item is most likely the file that cannot be parsed: say so rather than "no STAC item"
        p, exc = broken[0]
        raise InputError(f"is not valid JSON ({exc})", path=p, expected="the STAC item of the band COGs")
    if not candidates:
        raise InputError("holds neither MTD_MSIL2A.xml nor a STAC item (*.json)", path=path,
                         expected="a Sentinel-2 L2A SAFE folder, or band COGs with their STAC item JSON")
    raise InputError(f"holds {len(candidates)} STAC items ({', '.join(p.name for p in candidates)}); pass one",
                     path=path, field="STAC item")


def _asset_file(item_path: Path, href: str) -> Path:
    """Local file of an asset href: relative to the item, a file:// URL, or a remote URL's file name beside it."""
    parsed = urlparse(href)
    if parsed.scheme in ("", "file"):
        p = Path(parsed.path if parsed.scheme == "file" else href)
        return p if p.is_absolute() else (item_path.parent / p)
    return item_path.parent / Path(parsed.path).name


def _open_stac(path: Path, boa_offset) -> dict:
    item_path = _find_item(path)
    try:
        item = json.loads(item_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot be read as JSON ({exc})", path=item_path, expected="a STAC item") from exc
    if not isinstance(item, dict) or not isinstance(item.get("assets"), dict):
        raise InputError("has no 'assets'", path=item_path, field="assets", expected="a STAC item (GeoJSON Feature)")
    props = item.get("properties") or {}
    assets = item["assets"]

    dt = props.get("datetime") or props.get("start_datetime")
    try:
        date = parse_date(dt)
    except ValueError as exc:
        raise InputError(str(exc), path=item_path, field="properties.datetime", expected="an ISO date-time") from exc

    baseline_text = props.get("s2:processing_baseline") or props.get("sentinel:processing_baseline")
    baseline = _baseline_tuple(baseline_text)
    product_uri = props.get("s2:product_uri") or ""
    if baseline is None:
        m = re.search(r"_N(\d{4})_", product_uri)
        if m:
            baseline_text = f"{m.group(1)[:2]}.{m.group(1)[2:]}"
            baseline = _baseline_tuple(baseline_text)
    applied = props.get("earthsearch:boa_offset_applied", props.get("sentinel:boa_offset_applied"))

    files, quant, offsets, notes, skipped = {}, {}, {}, [], []
    problems: list[str] = []   # every problem of the product is said at once (ProductProblems)
    for role in list(S2_BANDS) + ["scl"]:
        key = next((k for k in STAC_ASSET_KEYS[role] if k in assets), None)
        required = role in REQUIRED_ROLES
        if key is None:
            if required:
                problems.append(str(InputError(
                    f"has no {role} asset", path=item_path, field=f"assets.{STAC_ASSET_KEYS[role][0]}",
                    expected=f"an asset keyed {' or '.join(STAC_ASSET_KEYS[role])}")))
            continue
        href = assets[key].get("href")
        if not href:
            problems.append(str(InputError("asset has no href", path=item_path, field=f"assets.{key}.href")))
            continue
        f = _asset_file(item_path, href)
        if not f.exists():
            if required:
                problems.append(str(InputError(f"asset {key!r} file is missing (href {href})", path=f,
                                               field=f"assets.{key}", expected=f"{f.name} beside {item_path.name}")))
            else:
                skipped.append(key)
            continue
        files[role] = f
        if role == "scl":
            continue
        rb = (assets[key].get("raster:bands") or [{}])[0]
        scale = rb.get("scale")
        q = DEFAULT_QUANTIFICATION if not scale else round(1.0 / float(scale), 6)
        quant[role] = q
        declared = rb.get("offset")
        declared_dn = None if declared is None else float(declared) * q
        offsets[role], note = _stac_offset(baseline, applied, declared_dn, boa_offset)
        if note and note not in notes:
            notes.append(note)
    if problems:
        raise ProductProblems(problems, path=item_path)
    if skipped:
        log.info("%s: assets %s have no local file and are skipped", item_path.name, ", ".join(skipped))
    scl = files.pop("scl", None)
    return {
        "layout": "STAC", "path": item_path.parent, "metadata_file": item_path, "files": files, "scl": scl,
        "quantification": quant, "offset_dn": offsets, "offset_rule": "; ".join(notes),
        "baseline": baseline_text, "platform": props.get("platform"), "date": date,
        "product_id": item.get("id") or item_path.stem,
        "cloud_cover_percent": maybe_float(props.get("eo:cloud_cover")),
        "start_time": dt, "boa_offset_applied": applied, "skipped_assets": skipped,
    }


def _stac_offset(baseline, applied, declared_dn, override) -> tuple[float, str]:
    """BOA offset in DN for a STAC asset, and a note on the rule used.

    Order: an explicit ``boa_offset`` argument; baseline < 04.00 → 0; offset already applied to the COG
    (``earthsearch:boa_offset_applied`` true) → 0; otherwise the ``raster:bands`` offset, else −1000 (ESA).
    """
    if override is not None:
        return float(override), f"boa_offset={float(override):g} DN given by the caller"
    if baseline is not None and baseline < OFFSET_BASELINE:
        if declared_dn:
            log.warning("baseline < 04.00 but raster:bands declares an offset of %g DN; using 0", declared_dn)
        return 0.0, "DN / quantification (baseline < 04.00: no offset)"
    if applied is True:
        return 0.0, "DN / quantification (earthsearch:boa_offset_applied = true: offset already in the COG)"
    if declared_dn is not None and declared_dn != 0:
        return declared_dn, "(DN + offset) / quantification with offset and scale from raster:bands"
    if baseline is None:
        log.warning("processing baseline unknown and no raster:bands offset: reflectance = DN / quantification")
        return 0.0, "DN / quantification (baseline unknown, no raster:bands offset)"
    if declared_dn == 0:
        log.warning("baseline ≥ 04.00 but raster:bands declares offset 0 and the offset is not marked applied; "
                    "using the ESA BOA_ADD_OFFSET of %g DN", DEFAULT_BOA_ADD_OFFSET)
    return DEFAULT_BOA_ADD_OFFSET, f"(DN {DEFAULT_BOA_ADD_OFFSET:+g}) / quantification (ESA baseline ≥ 04.00 default)"


# -- reader ---------------------------------------------------------------------------------------------------

def open_sentinel2_l2a(path, grid: AnalysisGrid | None = None, *, mask_scl=_qa.DEFAULT_SCL_MASK,
                       chunk: int = DEFAULT_CHUNK, boa_offset: float | None = None) -> Scene:
    """Open a Sentinel-2 L2A product (SAFE folder / MTD_MSIL2A.xml, or COG folder / STAC item) as a lazy Scene.

    ``mask_scl``: SCL classes (values or names) that make a valid pixel not clear; default {0, 1, 3, 8, 9, 10, 11}.
    Water (SCL 6) is reported in ``Scene.water``, not masked. ``boa_offset`` (DN, e.g. 0 or −1000) overrides the
    offset rule for STAC items whose metadata is known to be wrong. Reflectance bands are read with area-average
    resampling (a 20 m pixel split into 10 m cells keeps its value), SCL with nearest.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("not found", path=path, expected="a Sentinel-2 L2A SAFE folder, COG folder or STAC item")
    mask_classes = _qa.scl_class_values(mask_scl)
    is_safe = (path.is_dir() and (path / "MTD_MSIL2A.xml").exists()) or (path.is_file() and path.suffix == ".xml")
    if is_safe and boa_offset is not None:
        raise ValueError("boa_offset only applies to STAC items; a SAFE product's offsets come from MTD_MSIL2A.xml")
    p = _open_safe(path) if is_safe else _open_stac(path, boa_offset)
    files = p["files"]
    if grid is None:
        grid = native_grid(files["red"])

    arrays, problems = {}, []
    for role, f in files.items():
        band_id, res, _ = S2_BANDS[role]
        q, off = p["quantification"][role], p["offset_dn"][role]
        try:
            arrays[role] = read_scaled(f, grid, kind="reflectance", scale=1.0 / q, offset=off / q, src_nodata=0,
                                       chunk=chunk, name=role,
                                       attrs={"units": "1", "long_name": f"surface reflectance ({role}, {band_id})",
                                              "band_file": f.name, "boa_add_offset_dn": off, "quantification": q})
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise ProductProblems(problems, path=p["metadata_file"])
    bands = make_dataset(grid, arrays, {"sensor": _sensor_name(p["platform"])})

    observed = arrays["red"].data == arrays["red"].data
    mask_layers, water = {}, None
    if p["scl"] is not None:
        scl = read_on_grid(p["scl"], grid, kind="classes", dtype="uint8", src_nodata=_qa.SCL_NODATA,
                           dst_nodata=_qa.SCL_NODATA, chunk=chunk, name="scl").data
        valid = observed & (scl != _qa.SCL_NODATA)
        for c in sorted(mask_classes - {_qa.SCL_NODATA}):
            mask_layers[_qa.SCL_CLASSES[c]] = wrap_like(grid, valid & (scl == c), name=_qa.SCL_CLASSES[c])
        clear = valid & ~_qa.scl_is(scl, mask_classes - {_qa.SCL_NODATA})
        water = wrap_like(grid, valid & (scl == _qa.SCL_WATER), name="water")
        qa_meta = {"qa_available": True, "mask_file": str(p["scl"]), "mask_band": "SCL",
                   "mask_scl": sorted(mask_classes)}
    else:
        log.warning("%s: no SCL band; valid = DN != 0 and no cloud mask is applied", p["metadata_file"])
        valid, clear = observed, observed
        qa_meta = {"qa_available": False, "mask_file": str(files["red"]), "mask_band": None, "mask_scl": [],
                   "qa_note": "SCL absent: valid = DN != 0, clear = valid (no cloud/shadow/snow mask)"}

    metadata = {
        "kind": "sentinel2_l2a",
        "layout": p["layout"],
        "product_id": p["product_id"],
        "metadata_file": str(p["metadata_file"]),
        "platform": p["platform"],
        "processing_baseline": p["baseline"],
        "start_time": p["start_time"],
        "cloud_cover_percent": p["cloud_cover_percent"],
        "band_files": {r: str(f) for r, f in files.items()},
        "scl_file": str(p["scl"]) if p["scl"] else None,
        "quantification": dict(p["quantification"]),
        "boa_add_offset_dn": dict(p["offset_dn"]),
        "reflectance_rule": p["offset_rule"],
        "resampling": {"reflectance": "average", "scl": "nearest"},
        **{k: p[k] for k in ("boa_offset_applied", "skipped_assets") if k in p},
        **qa_meta,
    }
    scene = Scene(sensor=_sensor_name(p["platform"]), date=p["date"], path=str(p["path"]), bands=bands,
                  valid=wrap_like(grid, valid, name="valid"), clear=wrap_like(grid, clear, name="clear"),
                  water=water, thermal_k=None, grid=grid, metadata=metadata, mask_layers=mask_layers)
    # reflectance outside its physical range is not an observation (indices/reflectance.yaml)
    return screen_reflectance(scene)
