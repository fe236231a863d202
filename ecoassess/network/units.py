"""Observation columns and their units per station type (``indices/station_observations.yaml``), and the reading
of values as the national networks publish them.

A column is ``<quantity>_<unit>`` (``pm25_ugm3``) or ``<name>(<unit>)`` (``PM2.5(μg/m³)``); :func:`column_kind`
says which quantity and unit it holds, or why it is refused: a known quantity with a unit other than the one
its standard uses (``pm25_mgm3``: HJ 633 gives PM2.5 in µg/m³, STANDARDS §7.1) or a unit nobody knows.
:func:`parse_cell` reads one cell (the one implementation, also behind :func:`ecoassess.network.values.to_number`):
numbers as text, full-width digits, ``—``/``-``/empty for missing, a trailing unit (``12 µg/m³``), and says why a
cell is not a number (``0.01L``: below the detection limit).
"""

from __future__ import annotations

import functools
import math
import numbers
import re
import unicodedata
from typing import NamedTuple

from ecoassess.catalog import data_path, load_yaml


@functools.lru_cache(maxsize=1)
def station_spec() -> dict:
    """The station definitions of ``indices/station_observations.yaml``."""
    return load_yaml(data_path("indices", "station_observations.yaml"))


def _fold(text: str) -> str:
    """Text as compared: NFKC (full-width forms, ³ → 3, µ → μ), lower case, no blanks, μ → u."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return re.sub(r"\s+", "", text).replace("μ", "u").replace("µ", "u")


def _fold_name(text: str) -> str:
    """A quantity name as compared: :func:`_fold` without '.', '-', '_'."""
    return re.sub(r"[.\-_]", "", _fold(text))


def unit_label(code: str | None) -> str:
    """``ugm3`` -> ``µg/m³``; '' for a dimensionless quantity."""
    return "" if code is None else station_spec()["units"][code]["label"]


@functools.lru_cache(maxsize=1)
def _unit_suffixes() -> dict[str, str]:
    """Column-name suffix -> unit code (``db`` -> ``dba``)."""
    return {s: code for code, meta in station_spec()["units"].items() for s in meta["suffixes"]}


@functools.lru_cache(maxsize=1)
def _unit_spellings() -> dict[str, str]:
    """Folded unit spelling (``ug/m3``) -> unit code; the suffixes count too."""
    found = {_fold(s): code for code, meta in station_spec()["units"].items() for s in meta["spellings"]}
    found.update({_fold(meta["label"]): code for code, meta in station_spec()["units"].items()})
    return found


def _unit_of(text: str) -> str | None:
    folded = _fold(text)
    return _unit_spellings().get(folded) or _unit_suffixes().get(folded.replace("(", "").replace(")", ""))


def quantities(station_type: str) -> dict[str, dict]:
    """``{quantity: {unit, range, names}}`` of a station type."""
    return station_spec()["quantities"].get(station_type) or {}


def column_name(station_type: str, quantity: str) -> str:
    """The canonical column of a quantity: ``pm25`` -> ``pm25_ugm3``, ``ph`` -> ``ph``."""
    unit = quantities(station_type)[quantity]["unit"]
    return f"{quantity}_{unit}" if unit else quantity


class Column(NamedTuple):
    """What an observation column holds: ``quantity`` (None: not one of the type's quantities), ``unit`` code,
    ``name`` (the canonical column name it is renamed to), ``problem`` (why it is refused) or None."""

    quantity: str | None
    unit: str | None
    name: str
    problem: str | None = None


def column_kind(header, station_type: str) -> Column | None:
    """How an observation column of ``station_type`` is read; None for a column that is no quantity with a unit
    (a remark, a quarter number): it is kept as text."""
    qs = quantities(station_type)
    text = unicodedata.normalize("NFKC", str(header)).strip()
    bracket = re.match(r"^(.*?)[(\[]\s*(.+?)\s*[)\]]$", text.replace("（", "(").replace("）", ")"))
    if bracket:
        name, unit_text = bracket.group(1), bracket.group(2)
        quantity = _quantity_by_name(name, qs)
        unit = _unit_of(unit_text)
        if quantity is None:
            return Column(None, unit, text) if unit else None
        return _judge(station_type, quantity, unit, unit_text, text)
    lower = text.lower()
    for quantity in sorted(qs, key=len, reverse=True):
        if lower == quantity:
            return _judge(station_type, quantity, None, "", text)
        if lower.startswith(quantity + "_"):
            rest = lower[len(quantity) + 1:]
            return _judge(station_type, quantity, _unit_suffixes().get(rest), rest, text)
    quantity = _quantity_by_name(text, qs)
    if quantity is not None and qs[quantity]["unit"] is None:
        return _judge(station_type, quantity, None, "", text)  # "pH值"
    for suffix, unit in sorted(_unit_suffixes().items(), key=lambda kv: -len(kv[0])):
        if lower.endswith("_" + suffix) and len(lower) > len(suffix) + 1:
            return Column(None, unit, text)  # a quantity ecoassess does not grade, with its unit: read as numbers
    return None


def _quantity_by_name(name: str, qs: dict) -> str | None:
    folded = _fold_name(name)
    for quantity, meta in qs.items():
        if folded in {_fold_name(quantity), *(_fold_name(n) for n in meta.get("names", ()))}:
            return quantity
    return None


def _judge(station_type: str, quantity: str, unit: str | None, unit_text: str, header: str) -> Column:
    expected = quantities(station_type)[quantity]["unit"]
    canonical = column_name(station_type, quantity)
    if unit == expected and (unit is not None or not unit_text):
        return Column(quantity, unit, canonical)
    want = (f"{quantity} is expected in {unit_label(expected)} (column '{canonical}')" if expected else
            f"{quantity} is dimensionless (column '{canonical}')")
    if unit is not None:
        return Column(quantity, unit, canonical, f"{want}, not in {unit_label(unit)}: convert the values and name "
                                                 f"the column '{canonical}'")
    if not unit_text:
        return Column(quantity, None, canonical, f"no unit in the column name; {want}")
    return Column(quantity, None, canonical, f"unknown unit '{unit_text}'; {want}")


# -- values ------------------------------------------------------------------------------------------------------

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(rf"^({_NUM})\s*(.*)$")
# below the detection limit: '<0.01', '0.01L', 'ND(0.01)', '未检出(0.01)', 'ND', '未检出' (the limit captured when
# written); a bare trailing 'L' is this mark, never the unit litre
_BELOW_DL = re.compile(rf"^(?:<\s*({_NUM})|({_NUM})\s*L|(?:ND|未检出)\s*\(?\s*({_NUM})?\s*\)?)$", re.IGNORECASE)
#: ``unit`` of :func:`parse_cell` for "a trailing unit may be any known one" (values read without a column unit)
ANY_UNIT = "*"


@functools.lru_cache(maxsize=1)
def _missing() -> frozenset:
    return frozenset(_fold(v) for v in station_spec()["missing_values"])


class Cell(NamedTuple):
    """One cell read: ``value`` (None when missing or not a number), ``why`` it is not a number (None: a number or
    missing), ``below_detection`` (a below-detection mark) and the ``detection_limit`` written with it."""

    value: float | None
    why: str | None = None
    below_detection: bool = False
    detection_limit: float | None = None


def parse_cell(cell, unit: str | None = None) -> Cell:
    """The one reading of a published cell (used by the registry and by :func:`ecoassess.network.values.to_number`).

    Text as published: ``'35'``, ``'３５'`` (full-width), ``'1,234'``, ``'12 µg/m³'``, ``'—'``/``'-'``/``''``/``NA``/
    ``缺测`` (missing; ``indices/station_observations.yaml`` ``missing_values``). A trailing unit must be ``unit``
    (a unit code, None: no unit, :data:`ANY_UNIT`: any unit the YAML knows). ``'0.01L'``, ``'<0.01'``, ``'ND'``,
    ``'ND(0.004)'``, ``'未检出'`` are below a detection limit: not a number, said so, with the limit when written."""
    if cell is None or cell is _pd_na():
        return Cell(None)
    if isinstance(cell, bool) or type(cell).__name__ == "bool_":
        return Cell(None, f"'{cell}' is not a number")
    if isinstance(cell, numbers.Real):
        value = float(cell)
        if math.isnan(value):
            return Cell(None)
        return Cell(value) if math.isfinite(value) else Cell(None, f"'{cell}' is not a finite number")
    raw = str(cell)
    if _fold(raw) in _missing():
        return Cell(None)
    text = unicodedata.normalize("NFKC", raw).strip()
    text = re.sub(r"(?<=\d),(?=\d{3}(?:\D|$))", "", text)  # thousands separators: 24,000
    below = _BELOW_DL.match(text)
    if below or text.startswith("<"):
        limit = next((g for g in below.groups() if g is not None), None) if below else None
        return Cell(None, f"'{raw}' is below the detection limit (expected a number: give the value the network's "
                          "rule sets for it, e.g. half the detection limit)", True,
                    None if limit is None else float(limit))
    match = _NUMBER.match(text)
    if not match:
        return Cell(None, f"'{raw}' is not a number")
    value, rest = float(match.group(1)), match.group(2).strip()
    if not rest:
        return Cell(value)
    given = _unit_of(rest)
    if given is None:
        return Cell(None, f"'{raw}' is not a number (unknown text '{rest}' after it)")
    if unit != ANY_UNIT and given != unit:
        want = f"{unit_label(unit)}" if unit else "no unit"
        return Cell(None, f"'{raw}' is in {unit_label(given)}, expected {want}")
    return Cell(value)


def _pd_na():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return None
    return pd.NA


def _number(cell, unit: str | None = None) -> tuple[float | None, str | None]:
    """(value, None), (None, None) for an empty/missing cell, or (None, why it is not a number): :func:`parse_cell`
    as a pair."""
    parsed = parse_cell(cell, unit)
    return parsed.value, parsed.why
