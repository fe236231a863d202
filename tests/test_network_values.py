"""Published values (text numbers, missing marks, units, below-detection marks), GB/T 8170 rounding, and the
standards tables' loader (versions by date, each table citing its source)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecoassess.errors import InputError
from ecoassess.network import standards
from ecoassess.network.values import round_gbt8170, to_datetime, to_number


def test_to_number_published_forms():
    s = pd.Series(["35", " 35.5 ", "35 µg/m³", "0.8mg/m3", "—", "-", "", None, "24,000", "1.2e3", "45 dB(A)",
                   "NA", "缺测", 7], name="x")
    out = to_number(s)
    expected = [35, 35.5, 35, 0.8, np.nan, np.nan, np.nan, np.nan, 24000, 1200, 45, np.nan, np.nan, 7]
    np.testing.assert_array_equal(out.to_numpy(), np.array(expected, dtype=float))
    assert to_number(pd.Series([1, 2])).dtype == float


def test_to_number_rejects_text_and_below_detection_by_default():
    with pytest.raises(InputError, match=r"\[pm25_ugm3\].*row 1.*'35a'"):
        to_number(pd.Series(["1", "35a"], name="pm25_ugm3"))
    for mark in ("0.01L", "<0.01", "ND"):
        with pytest.raises(InputError, match="below-detection"):
            to_number(pd.Series([mark], name="cd_mgl"))
    # opt-in: half the detection limit, or missing
    assert list(to_number(pd.Series(["0.01L", "<0.02", "ND(0.004)"]), below_detection="half")) == \
        [0.005, 0.01, 0.002]
    assert to_number(pd.Series(["0.01L"]), below_detection="nan").isna().all()
    with pytest.raises(InputError, match="without the detection limit"):
        to_number(pd.Series(["未检出"]), below_detection="half")


def test_round_gbt8170_half_to_even_on_the_written_value():
    """四舍六入五成双: 0.25 → 0.2, 0.35 → 0.4, 0.15 → 0.2 (as written, though the binary 0.15 is 0.1499…),
    2.051 → 2.1 (a 5 followed by more digits rounds up), 34.5 → 34, 35.5 → 36."""
    np.testing.assert_array_equal(round_gbt8170([0.25, 0.35, 0.15, 2.051, 0.24, np.nan], 1),
                                  [0.2, 0.4, 0.2, 2.1, 0.2, np.nan])
    np.testing.assert_array_equal(round_gbt8170([34.5, 35.5, 75.4, 75.6], 0), [34, 36, 75, 76])


def test_to_datetime_mixed_and_bad():
    d = to_datetime(pd.Series(["2026-03-01", "2026/3/2 13:00"], name="time"))
    assert list(d) == [pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-02 13:00")]
    with pytest.raises(InputError, match=r"\[time\].*row 1"):
        to_datetime(pd.Series(["2026-03-01", "yesterday"], name="time"))


def test_versions_by_date():
    assert list(standards.version_on("aqi", ["2016-05-01", "2026-02-28", "2026-03-01"])) == ["2012", "2012", "2026"]
    assert list(standards.version_on("gb3095", ["2025-12-31", "2026-03-01"])) == ["2012", "2026"]
    with pytest.raises(InputError, match="before"):
        standards.version_on("gb3095", ["2015-06-01"])
    assert standards.check_version("aqi", "HJ 633—2026") == "2026"
    assert standards.check_version("gb3095", 2012) == "2012"


def _confidences(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "confidence" or k.endswith("_confidence"):
                yield v
            yield from _confidences(v)
    elif isinstance(node, list):
        for v in node:
            yield from _confidences(v)


@pytest.mark.parametrize("name", sorted(standards.FILES))
def test_tables_cite_their_source(name):
    """Each file names its STANDARDS section and its standard, and every confidence mark is A, B or C."""
    from ecoassess.catalog import data_path

    text = data_path("indices", standards.FILES[name]).read_text(encoding="utf-8")
    assert "STANDARDS §7" in text and ("Source" in text or "source" in text)
    t = standards.table(name)
    assert t["version"] and ("standard" in t or all("standard" in v for v in t["versions"].values()))
    marks = list(_confidences(t))
    assert marks and set(marks) <= {"A", "B", "C"}


def test_tables_are_consistent():
    """Every breakpoint row rises strictly and has at most 8 values; every GB 3838 'le' item's limits never fall
    from I to V and DO's never rise; soil rows have one value per pH band; both GB 3095 classes list the same
    pollutants."""
    aqi = standards.table("aqi")
    for v in aqi["versions"].values():
        for row in v["rows"].values():
            assert len(row["bp"]) <= len(aqi["iaqi_levels"]) and all(np.diff(row["bp"]) > 0)
    for item, spec in standards.table("water")["items"].items():
        for limits in [spec.get("limits")] + list(spec.get("limits_by_body", {}).values()):
            if limits:
                steps = np.diff(limits)
                assert (steps <= 0).all() if spec["direction"] == "ge" else (steps >= 0).all(), item
    soil = standards.table("soil")
    for rows in soil["screening"].values():
        assert all(len(v) == len(soil["ph_bands"]) for v in rows.values())
    for ver in standards.table("gb3095")["versions"].values():
        for stage in ver["stages"].values():
            assert set(stage["limits"]["1"]) == set(stage["limits"]["2"])
