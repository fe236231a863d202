"""Land-cover legends: class codes, names, colours, water flags, HJ 192 classes (``layers/README.md``).

A legend is a shipped name (``layers/<name>.yaml``) or the path of a user's own legend file in the same format;
both pass the same checks (:func:`legend_problems`): every class has names, a ``#rrggbb`` colour, a water flag and
an HJ 192-2015 habitat sub-class (STANDARDS §2.2) or a pending class with a split rule and default, and that
sub-class has a CAS/LUCC code (STANDARDS §2.1; ``hj192_to_cas`` of ``layers/redline_activity_types.yaml``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ecoassess.catalog import data_dir, load_yaml
from ecoassess.errors import InputError

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class UnknownLegend(InputError, KeyError):
    """A legend name that is no shipped legend (a KeyError too, as before legends could be paths)."""

    __str__ = BaseException.__str__


@dataclass(frozen=True)
class Legend:
    name: str
    long_name: str
    version: str
    nodata: int | None
    classes: dict[int, dict]
    #: the legend file (a shipped ``layers/<name>.yaml`` or the user's own file)
    path: str | None = None

    @property
    def source(self) -> str:
        """``layers/<name>.yaml`` for a shipped legend, else the path of the user's legend file."""
        if self.path is not None and Path(self.path).parent != data_dir("layers"):
            return str(self.path)
        return f"layers/{self.name}.yaml"

    @property
    def water_codes(self) -> list[int]:
        return sorted(code for code, c in self.classes.items() if c.get("water"))

    def label(self, code: int, lang: str = "zh") -> str:
        return self.classes[code][lang]

    def water_mask(self, land_cover: xr.DataArray) -> xr.DataArray:
        """True where the land-cover class is open water (lazy)."""
        data = land_cover.data
        lib = da if isinstance(data, da.Array) else np
        mask = lib.isin(data, np.asarray(self.water_codes))
        out = land_cover.copy(data=mask)
        out.name = "water"
        out.attrs = {"long_name": "open water"}  # not the land cover's nodata: 0 (dry) is a value of this mask
        return out

    def unknown_codes(self, codes) -> list[int]:
        """Codes present in a raster that the legend does not define (excluding nodata)."""
        return sorted(int(c) for c in codes if int(c) not in self.classes and c != self.nodata)


@lru_cache(maxsize=None)
def available_legends() -> list[str]:
    """Land-cover legends defined in ``layers/`` (one YAML file each, with ``classes``; ``layers/`` also holds other
    tables, e.g. the red-line activity types, which are not legends)."""
    return sorted(p.stem for p in data_dir("layers").glob("*.yaml") if "classes" in (load_yaml(p) or {}))


def is_legend_path(value) -> bool:
    """Whether a ``land_cover.<year>.legend`` value names a file (a path, or ends in .yaml/.yml) rather than a
    shipped legend."""
    if isinstance(value, Path):
        return True
    text = str(value)
    return text.lower().endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def legend_file(name_or_path) -> Path:
    """The YAML file of a shipped legend name or of a legend path; InputError when there is none."""
    if is_legend_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise InputError("legend file not found", path=path, field="legend",
                             expected=f"a legend YAML file (layers/README.md) or one of {', '.join(available_legends())}")
        return path.resolve()
    if str(name_or_path) not in available_legends():
        raise UnknownLegend(f"unknown land-cover legend '{name_or_path}'", field="legend",
                         expected=f"one of {', '.join(available_legends())}, or the path of a legend YAML file")
    return data_dir("layers") / f"{name_or_path}.yaml"


def load_legend(name_or_path) -> Legend:
    """A shipped legend by name (``cas_lucc``, ``clcd``, ``igbp``, ...) or a legend file by path, checked
    (:func:`legend_problems`); InputError naming the file and every problem."""
    path = legend_file(name_or_path)
    stat = path.stat()
    return _load_checked(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _load_checked(path: str, mtime_ns: int, size: int) -> Legend:
    import yaml

    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # a legend saved by a Chinese Windows editor (GBK / GB18030)
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise InputError("is neither UTF-8 nor GBK text", path=path, field="legend",
                             expected="a legend YAML file saved as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"is not readable YAML ({exc})", path=path, field="legend",
                         expected="a legend YAML file (layers/README.md)") from None
    problems = legend_problems(raw)
    if problems:
        raise InputError("; ".join(problems), path=path, field="legend",
                         expected="a legend as layers/README.md describes (every class: zh, en, color #rrggbb, "
                                  "water, hj192)")
    classes = {int(k): dict(v) for k, v in raw["classes"].items()}
    return Legend(str(raw["name"]), str(raw.get("long_name", raw["name"])), str(raw.get("version", "")),
                  raw.get("nodata"), classes, path)


def _hj192_to_cas() -> dict[str, int]:
    raw = load_yaml(data_dir("layers") / "redline_activity_types.yaml")
    return {str(k): int(v) for k, v in (raw.get("hj192_to_cas") or {}).items()}


def legend_problems(raw) -> list[str]:
    """Every problem of a parsed legend file, as sentences naming the key or class (empty list = usable).

    Checks: ``name``, ``version``, ``nodata`` (an integer or null) and ``classes`` (integer codes, the nodata code not
    among them); per class ``zh``, ``en``, ``color`` (#rrggbb), ``water`` (true/false) and ``hj192`` — an HJ 192
    sub-class of ``indices/hj192_2015.yaml``, ``excluded``, or a pending class with a ``split`` rule of
    ``landcover_splits`` and a ``default`` among its targets (STANDARDS §2.2, §2.3); ``confidence`` A, B or C when
    given; and a CAS/LUCC code for the sub-class (or the default) the class counts as (STANDARDS §2.1).
    """
    from ecoassess.assess.hj192_coefficients import load_hj192

    if not isinstance(raw, dict):
        return ["the file holds no mapping (expected keys name, version, nodata, classes)"]
    problems = [f"'{k}' is missing" for k in ("name", "version", "classes") if raw.get(k) in (None, "")]
    nodata = raw.get("nodata")
    if nodata is not None and (isinstance(nodata, bool) or not isinstance(nodata, int)):
        problems.append(f"nodata {nodata!r} is not an integer code (or null)")
    classes = raw.get("classes")
    if classes is None:
        return problems
    if not isinstance(classes, dict) or not classes:
        return problems + ["'classes' must map each raster code to its class"]
    co = load_hj192()
    finals = set(co.subclasses) | {co.excluded_subclass}
    cas = _hj192_to_cas()
    for key, c in classes.items():
        try:
            code = int(key)
            if isinstance(key, bool) or str(code) != str(key).strip():
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"class {key!r}: the code is not an integer")
            continue
        where = f"class {code}"
        if code == nodata:
            problems.append(f"{where}: is the legend's nodata code")
        if not isinstance(c, dict):
            problems.append(f"{where}: expected a mapping {{zh, en, color, water, hj192}}")
            continue
        for k in ("zh", "en"):
            if not isinstance(c.get(k), str) or not c[k].strip():
                problems.append(f"{where}: '{k}' (class name) is missing")
        colour = c.get("color")
        if not isinstance(colour, str) or not _COLOUR.match(colour):
            problems.append(f"{where}: color {colour!r} is not #rrggbb")
        if not isinstance(c.get("water"), bool):
            problems.append(f"{where}: water {c.get('water')!r} is not true/false")
        if c.get("confidence") is not None and c["confidence"] not in ("A", "B", "C"):
            problems.append(f"{where}: confidence {c['confidence']!r} is not A, B or C")
        target = c.get("hj192")
        if target in finals:
            counted_as = target
        elif target in co.pending_classes:
            rule = co.splits.get(c.get("split"))
            if rule is None:
                problems.append(f"{where}: pending class {target!r} needs a split rule from {sorted(co.splits)}, "
                                f"got {c.get('split')!r}")
                continue
            if c.get("default") not in rule.targets:
                problems.append(f"{where}: default {c.get('default')!r} is not a target of {rule.name} "
                                f"{list(rule.targets)}")
                continue
            counted_as = c["default"]
        else:
            problems.append(f"{where}: hj192 {target!r} is neither an HJ 192 sub-class ({', '.join(sorted(finals))}) "
                            f"nor a pending class ({', '.join(co.pending_classes)})")
            continue
        if counted_as not in cas:
            problems.append(f"{where}: HJ 192 class {counted_as!r} has no CAS/LUCC code (hj192_to_cas of "
                            "layers/redline_activity_types.yaml)")
    return problems


def cas_code(legend: Legend, code: int) -> int:
    """The CAS/LUCC code (STANDARDS §2.1) a class counts as: CAS rasters as they are, other legends through the
    class's HJ 192 sub-class (its default for a pending class) and ``hj192_to_cas``."""
    if legend.name == "cas_lucc":
        return int(code)
    c = legend.classes[int(code)]
    return _hj192_to_cas()[c["default"] if c.get("split") else c["hj192"]]
