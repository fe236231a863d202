"""The report's shared pieces: numbers per language, the language check, and reading a results folder back."""

from __future__ import annotations

import json

import pytest

from ecoassess.errors import InputError
from ecoassess.report.i18n import check_language, format_number, format_value, translator
from ecoassess.report.model import Figure, Paragraph, Report, Section, Table
from ecoassess.report.results import ResultsFolder


def test_numbers_are_grouped_and_rounded_half_to_even_as_gbt_8170():
    assert format_number(12345.678, "zh", 1) == "12,345.7"
    assert format_number(12345.678, "en", 2) == "12,345.68"
    assert format_number(0.125, "en", 2) == "0.12"       # 五成双: 0.125 → 0.12
    assert format_number(0.135, "en", 2) == "0.14"
    assert format_number(7, "zh") == "7"
    assert format_value(float("nan"), "zh") == "" and format_value(None, "en") == ""
    assert format_value("良", "zh") == "良"


def test_an_unknown_language_is_named_with_the_ones_there_are():
    with pytest.raises(InputError, match="'fr'.*zh, en"):
        check_language("fr")
    assert translator("en", "report")("Ecological index") == "Ecological index"


def test_a_folder_that_is_not_a_results_folder_is_refused_by_name(tmp_path):
    with pytest.raises(InputError, match="no manifest.json"):
        ResultsFolder(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"something": 1}))
    with pytest.raises(InputError, match="not an ecoassess manifest"):
        ResultsFolder(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"ecoassess_version": "x", "extra": {"a": 1}}))
    results = ResultsFolder(tmp_path)
    assert results.tables == [] and not results.has("county_ei") and results.layers == {}
    with pytest.raises(InputError, match="no table 'county_ei'"):
        results.table("county_ei")


def test_tables_and_figures_are_numbered_in_reading_order(tmp_path):
    t1, t2 = Table("a", "A", [], []), Table("b", "B", [], [])
    f1 = Figure("m", "M", tmp_path / "m.png")
    report = Report("zh", "T", "S", "2026-12-06", [
        Section("s1", "one", [Paragraph("p"), t1, Section("s1.1", "sub", [f1, t2])]), Section("s2", "two", missing="x")])
    assert report.tables() == [t1, t2] and report.figures() == [f1]
