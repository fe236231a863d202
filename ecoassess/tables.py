"""The county statistics table: column names carry units, checked against ``indices/statistics_table.yaml``.

A wrong unit (``cod_emission_kg`` where tonnes are expected), a missing column, a negative emission, a missing
county or year, a non-numeric value, an empty cell of a required column: each becomes one problem naming the row
(file line) and the column.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

import pandas as pd

from ecoassess.catalog import data_path, load_yaml

log = logging.getLogger(__name__)


def statistics_spec() -> dict:
    """The column spec (quantity -> unit, bounds, label) from ``indices/statistics_table.yaml``."""
    return load_yaml(data_path("indices", "statistics_table.yaml"))


def column_name(quantity: str, spec: dict | None = None) -> str:
    """``cod_emission`` -> ``cod_emission_t``."""
    spec = spec or statistics_spec()
    unit = spec["columns"][quantity]["unit"]
    return f"{quantity}_{unit}" if unit else quantity


def check_statistics_table(table: pd.DataFrame, source, config, *, path: Path) -> list[str]:
    """Problems of a statistics table: units in column names, value ranges, one row per county and year."""
    from ecoassess.readers import code_text, is_full_width, normalise_code

    spec = statistics_spec()
    problems: list[str] = []
    columns = [str(c) for c in table.columns]
    for quantity, meta in spec["columns"].items():
        expected = column_name(quantity, spec)
        if expected in columns:
            problems += _check_values(table, expected, meta, path)
            if not meta.get("optional"):
                problems += _check_filled(table, expected, source, path)
            continue
        wrong = [c for c in columns if c.startswith(quantity + "_") and c != expected]
        if wrong:
            unit = wrong[0][len(quantity) + 1:]
            problems.append(f"{path.name}: column '{wrong[0]}' has unit '{unit}', expected '{meta['unit']}' "
                            f"(rename to '{expected}' after converting the values)")
        elif not meta.get("optional"):
            close = difflib.get_close_matches(expected, columns, n=1, cutoff=0.75)
            hint = f"; is '{close[0]}' meant?" if close else ""
            problems.append(f"{path.name}: column '{expected}' is missing (used by the {meta['used_by']}){hint}")
    field = source.county_field
    codes = table[field].map(normalise_code)
    bad = codes.isna()  # pd.isna, not `is None`: under pandas 3 a text column maps None to NaN
    for line, raw in zip(table.index[bad] + 2, table[field][bad]):
        problems.append(f"{path.name} line {line}, field '{field}': "
                        f"{'an empty cell' if code_text(raw) is None else repr(code_text(raw))} "
                        "is not a 6-digit GB/T 2260 code")
    wide = table[field].map(is_full_width).astype(bool)
    for line, raw, code in zip(table.index[wide] + 2, table[field][wide], codes[wide]):
        log.warning("%s line %d, field '%s': %r is written with full-width digits; read as %s", path.name, line,
                    field, raw, code)
    years = pd.to_numeric(table[source.year_field], errors="coerce")
    study_codes = _study_area_codes(config)
    hint = (f" (line(s) {', '.join(str(i + 2) for i in table.index[bad][:5])} hold no valid code)"
            if bad.any() else "")
    for year in config.years:
        have = set(codes[(years == year) & ~bad])
        missing = sorted(study_codes - have)
        if missing:
            problems.append(f"{path.name}: no row for county {', '.join(missing)} in year {year}{hint}")
    dupes = pd.DataFrame({"_c": codes, "_y": table[source.year_field]})[~bad].duplicated(["_c", "_y"])
    for line in (dupes[dupes].index + 2):
        problems.append(f"{path.name} line {line}: a second row for the same county and year")
    return problems


def _check_values(table: pd.DataFrame, column: str, meta: dict, path: Path) -> list[str]:
    problems = []
    values = pd.to_numeric(table[column], errors="coerce")
    for idx in values.index[values.isna() & table[column].notna()][:5]:
        problems.append(f"{path.name} line {idx + 2}: column '{column}' holds {table[column][idx]!r}, expected a number")
    if "min" in meta:
        for idx in values.index[values < meta["min"]][:5]:
            problems.append(f"{path.name} line {idx + 2}: column '{column}' = {values[idx]:g} is below {meta['min']}")
    if "max" in meta:
        for idx in values.index[values > meta["max"]][:5]:
            problems.append(f"{path.name} line {idx + 2}: column '{column}' = {values[idx]:g} is above {meta['max']}")
    return problems


def _check_filled(table: pd.DataFrame, column: str, source, path: Path) -> list[str]:
    """Empty cells ('', 'n/a', ... which pandas reads as NaN) of a required column, by county and year."""
    empty = table[column].isna()
    problems = [f"{path.name} line {idx + 2}: column '{column}' is empty for county "
                f"{table[source.county_field][idx]} in year {table[source.year_field][idx]}, expected a number"
                for idx in empty.index[empty][:5]]
    if empty.sum() > 5:
        problems.append(f"{path.name}: column '{column}' is empty in {int(empty.sum())} rows (the first 5 are listed)")
    return problems


def _study_area_codes(config) -> set[str]:
    from ecoassess.readers import normalise_code, read_vector

    sa = config.study_area
    table = read_vector(sa.path, sa.layer, columns=[sa.id_field], read_geometry=False, key="study_area")
    return {c for c in table[sa.id_field].map(normalise_code) if c}
