"""Quality-band decoding: Landsat Collection 2 QA_PIXEL / QA_RADSAT bits and the Sentinel-2 L2A scene classification.

Landsat: USGS *Landsat 8-9 Collection 2 Level-2 Science Product Guide* (LSDS-1619), table "Pixel Quality Assessment
(QA_PIXEL) Bit Index", and the Landsat 4-7 guide (LSDS-1618), which uses the same bit layout for bits 0-7.
Sentinel-2: ESA *Sentinel-2 Products Specification Document* (PSD, S2-PDGS-TAS-DI-PSD) / *Level-2A Algorithm
Theoretical Basis Document*, table "Scene Classification values" (SCL, 20 m).

All functions work element-wise on numpy or dask arrays (and xarray objects wrapping them), so decoding stays lazy.
"""

from __future__ import annotations

from collections.abc import Iterable

# -- Landsat Collection 2 QA_PIXEL ---------------------------------------------------------------------------

#: Single-bit flags of QA_PIXEL (LSDS-1619 table 6-3). Bit set = condition present.
LANDSAT_QA_BITS: dict[str, int] = {
    "fill": 0,
    "dilated_cloud": 1,
    "cirrus": 2,          # OLI/TIRS only (Landsat 8/9); always 0 for TM/ETM+
    "cloud": 3,
    "cloud_shadow": 4,
    "snow": 5,
    "clear": 6,           # set when neither cloud nor dilated cloud is set (USGS definition)
    "water": 7,
}

#: Two-bit confidence fields of QA_PIXEL: name -> lowest bit. Values 0 none, 1 low, 2 medium (cloud only), 3 high.
LANDSAT_QA_CONFIDENCE: dict[str, int] = {
    "cloud_confidence": 8,
    "cloud_shadow_confidence": 10,
    "snow_ice_confidence": 12,
    "cirrus_confidence": 14,
}

#: Value of QA_PIXEL for fill (only bit 0 set).
LANDSAT_QA_FILL_VALUE = 1

#: Flags a Landsat scene masks by default (the QA flags that make an observation unusable for surface indices).
DEFAULT_LANDSAT_MASK_FLAGS: tuple[str, ...] = ("fill", "dilated_cloud", "cirrus", "cloud", "cloud_shadow", "snow")

#: Extra flag names accepted in ``mask_flags`` besides the QA_PIXEL bits: ``saturated`` (QA_RADSAT bits 0-6,
#: bands 1-7 saturated) and ``water`` (QA_PIXEL bit 7; by default water is kept and reported separately).
LANDSAT_EXTRA_FLAGS = ("saturated",)


def landsat_qa_bit(qa, name: str):
    """Boolean array: QA_PIXEL bit ``name`` (see :data:`LANDSAT_QA_BITS`) is set."""
    if name not in LANDSAT_QA_BITS:
        raise ValueError(f"unknown Landsat QA_PIXEL flag {name!r}; one of {sorted(LANDSAT_QA_BITS)}")
    return (qa & (1 << LANDSAT_QA_BITS[name])) != 0


def landsat_qa_confidence(qa, name: str):
    """Two-bit confidence (0 none, 1 low, 2 medium, 3 high) of ``name`` in :data:`LANDSAT_QA_CONFIDENCE`."""
    if name not in LANDSAT_QA_CONFIDENCE:
        raise ValueError(f"unknown Landsat QA_PIXEL confidence {name!r}; one of {sorted(LANDSAT_QA_CONFIDENCE)}")
    return (qa >> LANDSAT_QA_CONFIDENCE[name]) & 0b11


def landsat_radsat_any(radsat, bands: Iterable[int] = range(1, 8)):
    """Boolean array: QA_RADSAT says any of ``bands`` (1-based reflective band numbers; bit = band - 1) saturated."""
    mask = 0
    for b in bands:
        mask |= 1 << (int(b) - 1)
    return (radsat & mask) != 0


def check_landsat_mask_flags(flags: Iterable[str]) -> tuple[str, ...]:
    """Validate ``mask_flags`` names; returns them as a tuple (ValueError listing the known names otherwise)."""
    flags = tuple(flags)
    known = set(LANDSAT_QA_BITS) - {"clear"} | set(LANDSAT_EXTRA_FLAGS)
    bad = [f for f in flags if f not in known]
    if bad:
        raise ValueError(f"unknown Landsat mask flag(s) {bad}; known: {sorted(known)}")
    return flags


# -- Sentinel-2 L2A scene classification (SCL) ---------------------------------------------------------------

#: SCL class values (ESA L2A PSD / ATBD).
SCL_CLASSES: dict[int, str] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_or_topographic_shadow",
    3: "cloud_shadow",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}

#: SCL classes masked by default: no data, saturated/defective, cloud shadow, clouds (medium, high), cirrus, snow.
DEFAULT_SCL_MASK: frozenset[int] = frozenset({0, 1, 3, 8, 9, 10, 11})

SCL_WATER = 6
SCL_NODATA = 0


def scl_class_values(classes: Iterable[int | str]) -> frozenset[int]:
    """Class values from a mix of SCL values (``8``) and names (``"cloud_medium_probability"``)."""
    by_name = {v: k for k, v in SCL_CLASSES.items()}
    out = set()
    for c in classes:
        if isinstance(c, str) and not c.isdigit():
            if c not in by_name:
                raise ValueError(f"unknown SCL class {c!r}; one of {sorted(by_name)}")
            out.add(by_name[c])
        else:
            v = int(c)
            if v not in SCL_CLASSES:
                raise ValueError(f"unknown SCL class value {v}; valid values are 0..11")
            out.add(v)
    return frozenset(out)


def scl_is(scl, classes: Iterable[int]):
    """Boolean array: SCL value is one of ``classes``."""
    return isin_values(scl, sorted(set(int(c) for c in classes)))


def isin_values(arr, values: Iterable[float]):
    """Boolean array: ``arr`` equals one of ``values`` (element-wise, lazy on dask)."""
    values = [float(v) for v in values]
    if not values:
        return (arr == 0) & False  # all False, same type and shape
    out = arr == values[0]
    for v in values[1:]:
        out = out | (arr == v)
    return out
