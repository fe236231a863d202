"""Styles of the report maps as data (``layers/report_styles.yaml``): figure size, fonts, line widths, class breaks
and colours, each scheme with its source; and the gray value of a colour, so that a scheme can be checked for
print in gray."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ecoassess.catalog import data_path, load_yaml

STYLES_FILE = "report_styles.yaml"


def _has_hatchcolor() -> bool:
    import matplotlib

    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    return (major, minor) >= (3, 10)


_HATCHCOLOR = _has_hatchcolor()


@dataclass(frozen=True)
class MapClass:
    """One class of a scheme: ``key`` (the value in the results: a grade name, a code, a station type),
    ``colour`` (#rrggbb), optional ``hatch`` (matplotlib pattern) and ``marker`` (point symbols)."""
    key: object
    colour: str
    hatch: str | None = None
    marker: str | None = None
    hatch_colour: str | None = None

    def hatch_kw(self) -> dict:
        """Keyword arguments of a patch or polygon plot for this class's hatch (``hatchcolor`` needs matplotlib
        ≥ 3.10; older versions draw the hatch in the edge colour)."""
        if not self.hatch:
            return {}
        kw = {"hatch": self.hatch}
        if self.hatch_colour and _HATCHCOLOR:
            kw["hatchcolor"] = self.hatch_colour
        return kw


@dataclass(frozen=True)
class Scheme:
    name: str
    source: str
    ordinal: bool
    classes: tuple[MapClass, ...]
    #: class limits for binned values (len(classes) + 1 edges; lower ≤ v < upper, the last class includes its upper)
    breaks: tuple[float, ...] | None = None
    labels: tuple[str, ...] | None = None
    labelled: bool = False

    def by_key(self) -> dict:
        return {c.key: c for c in self.classes}


def relative_luminance(colour: str) -> float:
    """Relative luminance of an sRGB colour ``#rrggbb`` (WCAG 2.x: linearised channels, weights 0.2126, 0.7152,
    0.0722) — what a colour becomes on a gray photocopy, 0 black … 1 white."""
    text = colour.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"colour {colour!r} is not #rrggbb")
    channels = [int(text[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def rgb_hex(rgb) -> str:
    """``[r, g, b]`` (0–255) as ``#rrggbb``."""
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


@lru_cache(maxsize=1)
def load_styles() -> dict:
    """The parsed styles file (``layers/report_styles.yaml``)."""
    return load_yaml(data_path("layers", STYLES_FILE))


def _aqi_colours() -> dict[int, str]:
    raw = load_yaml(data_path("indices", "aqi_hj633.yaml"))
    return {int(c["level"]): rgb_hex(c["rgb"]) for c in raw["categories"]}


@lru_cache(maxsize=None)
def scheme(name: str) -> Scheme:
    """Scheme ``name`` of the styles file; colours given as an HJ 633 AQI level are taken from
    ``indices/aqi_hj633.yaml`` (HJ 633 category colours)."""
    raw = load_styles()["schemes"][name]
    if "classes" in raw:
        aqi = None
        classes = []
        for c in raw["classes"]:
            colour = c.get("colour")
            if colour is None and "aqi_level" in c:
                aqi = aqi or _aqi_colours()
                colour = aqi[int(c["aqi_level"])]
            classes.append(MapClass(c["key"], colour, c.get("hatch"), c.get("marker"), c.get("hatch_colour")))
    else:
        classes = [MapClass(i, colour) for i, colour in enumerate(raw["colours"])]
    breaks = tuple(float(b) for b in raw["breaks"]) if "breaks" in raw else None
    if breaks is not None and len(breaks) != len(classes) + 1:
        raise ValueError(f"{STYLES_FILE}: scheme {name!r} has {len(breaks)} breaks for {len(classes)} colours")
    labels = tuple(raw["labels"]) if "labels" in raw else None
    return Scheme(name, " ".join(str(raw.get("source", "")).split()), bool(raw.get("ordinal")), tuple(classes),
                  breaks, labels, bool(raw.get("labelled")))


def colours(name: str) -> tuple[str, ...]:
    """The class colours of scheme ``name``, in the styles file's order (``ei_grade``: 优 … 差)."""
    return tuple(c.colour for c in scheme(name).classes)


def scheme_names() -> list[str]:
    return list(load_styles()["schemes"])


def bin_index(values, breaks):
    """Class index of each value for ``breaks`` (lower ≤ v < upper; the last class includes its upper bound);
    -1 outside every class or not finite."""
    import numpy as np

    v = np.asarray(values, dtype="float64")
    edges = np.asarray(breaks, dtype="float64")
    idx = np.searchsorted(edges, v, side="right") - 1
    idx = np.where(v == edges[-1], len(edges) - 2, idx)
    bad = ~np.isfinite(v) | (v < edges[0]) | (v > edges[-1])
    return np.where(bad, -1, idx)


def break_labels(breaks, digits: int = 2) -> list[str]:
    """``"0.2–0.4"`` per class; the open ends as ``"< 0.2"`` / ``"≥ 0.8"`` when the outer break is the range's
    natural limit (−1 or 0 below, 1 above)."""
    out = []
    n = len(breaks) - 1

    def f(x):
        return f"{x:.{digits}f}".rstrip("0").rstrip(".") if "." in f"{x:.{digits}f}" else f"{x:.{digits}f}"

    for i in range(n):
        lo, hi = breaks[i], breaks[i + 1]
        if i == 0 and lo < 0:
            out.append(f"< {f(hi)}")
        else:
            out.append(f"{f(lo)}–{f(hi)}")
    return out


def figure_style() -> dict:
    return load_styles()["figure"]


def fonts() -> dict:
    return load_styles()["fonts"]


def lines() -> dict:
    return load_styles()["lines"]


__all__ = ["MapClass", "Scheme", "scheme", "scheme_names", "load_styles", "relative_luminance", "bin_index",
           "break_labels", "figure_style", "fonts", "lines", "rgb_hex"]
