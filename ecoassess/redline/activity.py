"""Activity types of human-activity patches and the rules that assign them (``layers/redline_activity_types.yaml``;
STANDARDS §5.2): from the land-cover transition, the index signature and the patch's shape."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError

SIGNALS = ("ndvi_loss", "ndvi_gain", "bsi_gain", "bsi_loss", "ndbi_gain", "ndbi_loss", "water_gain", "water_loss")
CONDITIONS = {"type", "lc_to_any", "lc_from_any", "signals_any", "signals_all", "min_elongation", "max_ndvi_after",
              "land_cover"}
#: how a restored patch is read by the rules: its signals mirrored
MIRROR = {"ndvi_gain": "ndvi_loss", "ndvi_loss": "ndvi_gain", "bsi_gain": "bsi_loss", "bsi_loss": "bsi_gain",
          "ndbi_gain": "ndbi_loss", "ndbi_loss": "ndbi_gain", "water_gain": "water_loss", "water_loss": "water_gain"}


@dataclass(frozen=True)
class PatchFeatures:
    """What the rules look at: majority CAS classes before/after (None without land cover), the signals that fired,
    elongation (area / width²), mean NDVI after the change, whether land cover was given."""

    signals: frozenset
    elongation: float
    ndvi_after: float
    lc_from: int | None = None
    lc_to: int | None = None
    land_cover: bool = False

    def mirrored(self, ndvi_before: float) -> "PatchFeatures":
        """The features a restored patch is typed by: the removed activity's view (the before date as after)."""
        return PatchFeatures(frozenset(MIRROR[s] for s in self.signals), self.elongation, ndvi_before,
                             self.lc_to, self.lc_from, self.land_cover)


@dataclass(frozen=True)
class ActivityTable:
    path: str
    version: str
    types: dict
    rules: list
    hj192_to_cas: dict
    labels: dict

    def name(self, code: str, lang: str = "zh") -> str:
        return self.types[code][lang]

    def classify(self, f: PatchFeatures) -> tuple[str, dict]:
        """The type code of the first rule that matches ``f``, and that rule."""
        for rule in self.rules:
            if _matches(rule, f):
                return rule["type"], rule
        return "other", {"type": "other"}


def _matches(rule: dict, f: PatchFeatures) -> bool:
    if "land_cover" in rule and bool(rule["land_cover"]) != f.land_cover:
        return False
    if "lc_to_any" in rule and f.lc_to not in rule["lc_to_any"]:
        return False
    if "lc_from_any" in rule and f.lc_from not in rule["lc_from_any"]:
        return False
    if "signals_any" in rule and not f.signals & set(rule["signals_any"]):
        return False
    if "signals_all" in rule and not set(rule["signals_all"]) <= f.signals:
        return False
    if "min_elongation" in rule and not f.elongation >= float(rule["min_elongation"]):
        return False
    if "max_ndvi_after" in rule and not f.ndvi_after < float(rule["max_ndvi_after"]):
        return False
    return True


def load_activity_table(path=None) -> ActivityTable:
    """The activity-type table (default ``layers/redline_activity_types.yaml``), checked: every rule names a type of
    the table and known conditions and signals, and ``other`` exists (the type of a patch no rule matches)."""
    path = Path(path) if path is not None else data_path("layers", "redline_activity_types.yaml")
    try:
        raw = load_yaml(path)
    except FileNotFoundError:
        raise InputError("activity-type table not found", path=path, expected="a YAML file") from None
    except Exception as exc:  # noqa: BLE001 - a YAML syntax error, named with the file
        raise InputError(f"not a readable YAML file ({exc})", path=path) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("types"), dict) or not isinstance(raw.get("rules"), list):
        raise InputError("the table needs a 'types' mapping and a 'rules' list", path=path,
                         expected="the layout of layers/redline_activity_types.yaml")
    types = raw["types"]
    if "other" not in types:
        raise InputError("no type 'other' (the type of a patch no rule matches)", path=path, field="types")
    for code, t in types.items():
        missing = [k for k in ("zh", "en", "hj1156") if not isinstance(t, dict) or k not in t]
        if missing:
            raise InputError(f"type {code!r} lacks {', '.join(missing)}", path=path, field=f"types.{code}")
    for i, rule in enumerate(raw["rules"], start=1):
        where = f"rules[{i}]"
        if not isinstance(rule, dict) or rule.get("type") not in types:
            raise InputError(f"rule {i} names no type of the table ({rule!r})", path=path, field=where,
                             expected=", ".join(types))
        unknown = set(rule) - CONDITIONS
        if unknown:
            raise InputError(f"rule {i} has unknown conditions {sorted(unknown)}", path=path, field=where,
                             expected=", ".join(sorted(CONDITIONS)))
        bad = [s for k in ("signals_any", "signals_all") for s in rule.get(k, []) if s not in SIGNALS]
        if bad:
            raise InputError(f"rule {i} names unknown signals {bad}", path=path, field=where,
                             expected=", ".join(SIGNALS))
        for k in ("lc_to_any", "lc_from_any"):
            if k in rule and not all(isinstance(c, int) for c in rule[k]):
                raise InputError(f"rule {i}: {k} must list CAS/LUCC class codes (integers), got {rule[k]!r}",
                                 path=path, field=where, expected="e.g. [51, 52]")
    labels = raw.get("labels") or {}
    return ActivityTable(str(path), str(raw.get("version", "")), types, raw["rules"],
                         {str(k): int(v) for k, v in (raw.get("hj192_to_cas") or {}).items()}, labels)
