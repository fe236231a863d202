"""Observation values as published: numbers as text, missing-value marks, trailing units; GB/T 8170 rounding."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecoassess.errors import InputError
from ecoassess.network.units import ANY_UNIT, parse_cell


def to_number(series, *, name: str | None = None, path=None, below_detection: str = "error") -> pd.Series:
    """``series`` as floats, each cell read by :func:`ecoassess.network.units.parse_cell` (the registry's reading
    too): numbers pass, text numbers are parsed ('35', ' 35.0 ', '３５', '35 µg/m³', '0.8mg/m3', '24,000'), missing
    marks ('', '-', '—', 'NA', '缺测', …) and NaN become NaN.

    Below-detection marks ('<0.01', '0.01L', 'ND', '未检出'): ``below_detection="error"`` (default) raises,
    ``"half"`` takes half the detection limit (the usual convention for means of surface-water data [C]), ``"nan"``
    makes them missing. Anything else (e.g. '35a') raises an :class:`InputError` naming the column (``name``), the
    row and the text."""
    if below_detection not in ("error", "half", "nan"):
        raise ValueError(f"below_detection must be 'error', 'half' or 'nan', not {below_detection!r}")
    s = pd.Series(series)
    name = name if name is not None else (None if s.name is None else str(s.name))
    if pd.api.types.is_bool_dtype(s.dtype):
        raise InputError("a true/false column where numbers were expected", path=path, field=name,
                         expected="numbers")
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype(float)
    out = np.full(len(s), np.nan)
    for i, (label, v) in enumerate(s.items()):
        cell = parse_cell(v, ANY_UNIT)          # the one cell reading, shared with the station registry
        if cell.why is None:
            out[i] = np.nan if cell.value is None else cell.value
            continue
        if cell.below_detection and below_detection != "error":
            if below_detection == "half" and cell.detection_limit is None:
                raise InputError(f"row {label}: {v!r} is below detection without the detection limit", path=path,
                                 field=name, expected="the limit written with it, e.g. 'ND(0.01)' or '0.01L'")
            out[i] = np.nan if below_detection == "nan" else cell.detection_limit / 2
            continue
        if cell.below_detection:
            raise InputError(f"row {label}: {v!r} is a below-detection mark", path=path, field=name,
                             expected="a number; or read with below_detection='half' (half the detection limit) "
                                      "or 'nan'")
        raise InputError(f"row {label}: {cell.why}", path=path, field=name,
                         expected="a number, optionally followed by its unit, or '', '-', '—' for missing")
    return pd.Series(out, index=s.index, name=s.name)


def round_gbt8170(values, decimals: int) -> np.ndarray:
    """Round to ``decimals`` by GB/T 8170 (四舍六入五成双: a 5 followed by nothing rounds to the even digit), on the
    value as written, so 0.25 → 0.2 and 0.35 → 0.4 at one decimal, 34.5 → 34 and 35.5 → 36 at none, although the
    binary 0.35 is 0.34999…: a scaled value within 1e-9 (relative) of a half is taken as written as that half.
    NaN stays NaN."""
    x = np.asarray(values, dtype=float)
    scale = 10.0 ** decimals
    y = x * scale
    lower = np.floor(y)
    tie = np.abs(y - lower - 0.5) <= 1e-9 * np.maximum(1.0, np.abs(y))
    even = np.where(np.mod(lower, 2) == 0, lower, lower + 1)
    return np.where(tie, even, np.rint(y)) / scale


def check_not_negative(values: pd.Series, *, name: str, path=None) -> None:
    """Raise an :class:`InputError` naming the first row of ``values`` below zero (a concentration or a level
    cannot be negative; a negative value is an instrument/export fault, never to be graded)."""
    bad = values.lt(0)
    if bad.any():
        label = bad.idxmax()
        raise InputError(f"row {label}: negative value {values[label]:g} ({int(bad.sum())} such row(s))", path=path,
                         field=name, expected="a value ≥ 0, or empty / '-' / '—' when missing")


def to_datetime(series, *, name: str | None = None, path=None) -> pd.Series:
    """``series`` as timestamps (time-zone naive), each text read on its own ('2026-03-01', '2026/3/1 13:00' mixed
    in one column). An unreadable or missing entry raises an :class:`InputError` naming the column and the row."""
    s = pd.Series(series)
    name = name if name is not None else (None if s.name is None else str(s.name))
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        d = s
    else:
        d = pd.to_datetime(s.astype("object"), errors="coerce", format="mixed")
    if getattr(d.dt, "tz", None) is not None:
        d = d.dt.tz_localize(None)
    if d.isna().any():
        label = d.index[d.isna()][0]
        raise InputError(f"row {label}: {s[label]!r} is not a date", path=path, field=name,
                         expected="a date or date-time like 2026-03-01 or 2026-03-01 13:00")
    return d
