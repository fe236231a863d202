"""The standards' tables (``indices/aqi_hj633.yaml``, ``gb3095.yaml``, ``gb3838_2002.yaml``, ``gb15618_2018.yaml``,
``gb3096_2008.yaml``), loaded once, and the version in force on an observation date (STANDARDS §0, §7)."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import InputError
from ecoassess.network.values import to_datetime

FILES = {"aqi": "aqi_hj633.yaml", "gb3095": "gb3095.yaml", "water": "gb3838_2002.yaml",
         "soil": "gb15618_2018.yaml", "noise": "gb3096_2008.yaml"}


@lru_cache(maxsize=None)
def table(name: str) -> dict:
    """The parsed table ``name`` (one of :data:`FILES`), read once per process. Treat it as read-only."""
    if name not in FILES:
        raise KeyError(f"unknown standards table {name!r}; one of {sorted(FILES)}")
    return load_yaml(data_path("indices", FILES[name]))


def versions(name: str) -> dict[str, pd.Timestamp]:
    """{version: effective date} of a versioned table ('aqi' or 'gb3095'), oldest first."""
    found = {v: pd.Timestamp(d["effective"]) for v, d in table(name)["versions"].items()}
    return dict(sorted(found.items(), key=lambda kv: kv[1]))


def check_version(name: str, version) -> str:
    """``version`` as the table's key ('2012', '2026'); accepts 2026, 'HJ 633—2026', 'GB 3095-2012'."""
    text = str(version)
    for v in versions(name):
        if text == v or text.endswith(v):
            return v
    raise InputError(f"unknown version {version!r}", field="version",
                     expected=" or ".join(versions(name)) + f" ({FILES[name]})")


def version_on(name: str, dates) -> pd.Series:
    """The version of table ``name`` in force on each date: the newest whose effective date is on or before it
    (HJ 633—2026 from 2026-03-01). A date before the oldest version, or a missing date, raises an InputError."""
    dates = pd.Series(dates)
    d = to_datetime(dates, name=str(dates.name) if dates.name is not None else "date/time")
    out = pd.Series(pd.NA, index=d.index, dtype="object")
    for v, start in versions(name).items():
        out[d >= start] = v
    if out.isna().any():
        label = out.index[out.isna()][0]
        oldest, start = next(iter(versions(name).items()))
        raise InputError(f"row {label}: {d[label].date()} is before {table(name)['versions'][oldest]['standard']} "
                         f"took effect ({start.date()})", field="date/time",
                         expected="a later date, or a fixed version= to grade it anyway")
    return out.astype(str)
