"""Imagery readers (one module per source kind) and per-pixel composites.

Every reader returns a lazy :class:`~ecoassess.sources.scene.Scene` on one analysis grid (or the product's own grid):
float32 surface reflectance per band role, ``valid``/``clear``/``water`` masks and, for Landsat, surface temperature
in kelvin. :func:`composite` turns several scenes into a median composite or the HJ 192-2015 monthly-maximum NDVI.
"""

from __future__ import annotations

from ecoassess.sources.composite import DEFAULT_MONTHS, Composite, composite
from ecoassess.sources.geotiff import open_geotiff_scene
from ecoassess.sources.landsat import open_landsat_c2l2, read_mtl
from ecoassess.sources.qa import DEFAULT_LANDSAT_MASK_FLAGS, DEFAULT_SCL_MASK, LANDSAT_QA_BITS, SCL_CLASSES
from ecoassess.sources.scene import CORE_ROLES, REFLECTANCE_ROLES, Scene, mask_summaries
from ecoassess.sources.sentinel2 import open_sentinel2_l2a

#: Source kinds understood by :func:`open_scene`.
KINDS = ("landsat_c2l2", "sentinel2_l2a", "geotiff")
#: what the ``path`` of a product kind must be (named when an archive is given instead)
_PRODUCT_WHAT = {"landsat_c2l2": "a Landsat Collection 2 Level-2 product folder or its MTL file",
                 "sentinel2_l2a": "a Sentinel-2 L2A SAFE folder, a folder of band COGs or a STAC item"}


def open_scene(kind: str, path=None, grid=None, **options) -> Scene:
    """Open one scene of ``kind`` (``landsat_c2l2 | sentinel2_l2a | geotiff``) on ``grid``.

    ``path`` is the product folder / metadata file / STAC item; for ``geotiff`` pass ``bands={role: file}`` and
    ``date=`` in ``options`` (``path`` is then not used). Other options go to the reader.
    """
    from ecoassess.errors import InputError
    from ecoassess.readers import refuse_archive

    if kind in _PRODUCT_WHAT and path is not None:
        refuse_archive(path, _PRODUCT_WHAT[kind])
    if kind == "landsat_c2l2":
        if path is None:
            raise InputError("a Landsat product needs a path", field="path", expected="a product folder or MTL file")
        return open_landsat_c2l2(path, grid, **options)
    if kind == "sentinel2_l2a":
        if path is None:
            raise InputError("a Sentinel-2 product needs a path", field="path",
                             expected="a SAFE folder, a COG folder or a STAC item")
        return open_sentinel2_l2a(path, grid, **options)
    if kind == "geotiff":
        if "bands" not in options:
            raise InputError("a geotiff scene needs bands={role: file}", field="bands",
                             expected="a mapping of band roles to files")
        bands = options.pop("bands")
        return open_geotiff_scene(bands, grid, **options)
    raise InputError(f"unknown source kind {kind!r}", field="kind", expected=" | ".join(KINDS))


def scene_date_from_metadata(kind: str, path):
    """Acquisition date of a product from its metadata only (no raster is opened), or None for ``geotiff``.

    Landsat: MTL DATE_ACQUIRED; Sentinel-2: SAFE PRODUCT_START_TIME or STAC ``properties.datetime``.
    Raises :class:`~ecoassess.errors.InputError` when the metadata is missing or unreadable.
    """
    from pathlib import Path

    from ecoassess.errors import InputError
    from ecoassess.readers import refuse_archive
    from ecoassess.sources import landsat as _landsat
    from ecoassess.sources import sentinel2 as _s2
    from ecoassess.sources.scene import parse_date

    if kind == "geotiff" or path is None:
        return None
    if kind in _PRODUCT_WHAT:
        refuse_archive(path, _PRODUCT_WHAT[kind])
    if kind == "landsat_c2l2":
        mtl = _landsat.find_mtl(path)
        image = _landsat.read_mtl(mtl).get(_landsat.ROOT, {}).get("IMAGE_ATTRIBUTES", {})
        field, value = "IMAGE_ATTRIBUTES/DATE_ACQUIRED", image.get("DATE_ACQUIRED")
        source = mtl
    elif kind == "sentinel2_l2a":
        path = Path(path)
        if not path.exists():
            raise InputError("not found", path=path)
        if (path.is_dir() and (path / "MTD_MSIL2A.xml").exists()) or path.suffix == ".xml":
            _, source = _s2._find_safe(path)
            field, value = "PRODUCT_START_TIME", _s2._read_mtd(source).get("PRODUCT_START_TIME")
        else:
            import json

            source = _s2._find_item(path)
            try:
                props = json.loads(source.read_text(encoding="utf-8")).get("properties") or {}
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot be read as JSON ({exc})", path=source) from exc
            field, value = "properties.datetime", props.get("datetime") or props.get("start_datetime")
    else:
        raise InputError(f"unknown source kind {kind!r}", field="kind", expected=" | ".join(KINDS))
    try:
        return parse_date(value)
    except ValueError as exc:
        raise InputError(f"acquisition date {value!r} cannot be read", path=source, field=field,
                         expected="an ISO date") from exc


__all__ = [
    "scene_date_from_metadata",
    "KINDS", "open_scene", "open_landsat_c2l2", "open_sentinel2_l2a", "open_geotiff_scene", "read_mtl",
    "Scene", "Composite", "composite", "mask_summaries", "DEFAULT_MONTHS", "CORE_ROLES", "REFLECTANCE_ROLES",
    "DEFAULT_LANDSAT_MASK_FLAGS", "DEFAULT_SCL_MASK", "LANDSAT_QA_BITS", "SCL_CLASSES",
]
