"""The network stage on the bundled sample (issue 20): the deliberate gaps are found (the county without an air
station, W01's missing August, W99 outside the study area), proposals fall in the gap, warnings carry value, limit
and source, and one station's numbers of each type are recomputed by hand from the sample's own files."""

from __future__ import annotations

import math

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest

from ecoassess.pipeline import run


@pytest.fixture(scope="module")
def sample(shared_sample):
    """The sample (conftest, read-only)."""
    return shared_sample


@pytest.fixture(scope="module")
def result(sample, tmp_path_factory):
    return run(sample, tmp_path_factory.mktemp("out") / "results", stages=["network"])


def _csv(sample, name):
    return pd.read_csv(sample.parent / "stations" / name, dtype={"station_id": str})


def test_only_the_network_stage_ran_and_its_tables_are_written(result):
    assert not result.problems
    assert "county_vegetation" not in result.tables
    out = result.out_dir
    layers = {name for name, _ in pyogrio.list_layers(out / "results.gpkg")}
    assert {"stations", "proposed_sites", "water_sections", "air_station_annual", "network_coverage",
            "network_rejected_rows", "early_warnings"} <= layers
    # the station-day table is CSV only (a province's year of stations is too long for a sheet)
    assert (out / "tables" / "air_daily.csv").is_file() and "air_daily" not in layers
    import openpyxl

    sheets = openpyxl.load_workbook(out / "tables" / "results.xlsx", read_only=True).sheetnames
    assert "air_daily" not in sheets and "water_sections" in sheets
    # and the run summary says so: the files each table is in, not every results file there is
    assert result.table_files["air_daily"] == ["tables/air_daily.csv"]
    assert result.table_files["water_sections"] == ["results.gpkg", "tables/water_sections.csv",
                                                    "tables/results.xlsx"]
    import click
    from click.testing import CliRunner

    from ecoassess.cli import _print_outputs

    lines = CliRunner().invoke(click.command()(lambda: _print_outputs(result))).output.splitlines()
    assert "  table  air_daily: tables/air_daily.csv" in lines, lines
    stations = gpd.read_file(out / "results.gpkg", layer="stations")
    assert stations.crs.to_epsg() == 4326 and stations["station_id"].is_unique


def test_audit_finds_the_county_without_an_air_station_and_the_proposals_go_there(result, sample):
    audit = result.tables["network_coverage"]
    row = audit[(audit["rule_id"] == "county_seat_air_2") & (audit["county_code"] == "519904")].iloc[0]
    assert (row["required"], row["present"], row["shortfall"]) == (2, 0, 2)
    # the other counties: 519901 has A01 + A02 (2 of 2), 519902 and 519903 one each (shortfall 1)
    others = audit[(audit["rule_id"] == "county_seat_air_2") & (audit["county_code"] != "519904")]
    assert dict(zip(others["county_code"], others["shortfall"])) == {"519901": 0, "519902": 1, "519903": 1}
    proposed = result.tables["proposed_sites"]
    air = proposed[proposed["station_type"] == "air"]
    assert len(air) == 2 + 1 + 1              # no network.proposals: as many as the shortfall (2 + 1 + 1)
    first_two = air.iloc[:2]                  # the largest shortfall is closed first
    assert list(first_two["county_code"]) == ["519904", "519904"]
    counties = gpd.read_file(sample.parent / "vectors" / "counties.gpkg").to_crs("EPSG:4326")
    gap = counties.loc[counties["code"] == "519904"].geometry.iloc[0]
    assert all(gap.contains(p) for p in first_two.geometry)
    warnings = result.tables["early_warnings"]
    short = warnings[(warnings["rule"] == "network_shortfall") & (warnings["county_code"] == "519904")
                     & (warnings["indicator"] == "air sites")].iloc[0]
    assert (short["value"], short["limit"]) == (0, 2) and "铜仁市" in short["source"]
    assert "county_seat_air_2" in short["message"]


def test_w01_missing_august_is_a_gap_row_of_the_water_table(result):
    w01 = result.tables["water_sections"].set_index("station_id").loc["W01"]
    assert (w01["n_samples"], w01["months_sampled"], w01["missing_months"]) == (11, 11, "2024-08")
    complete = result.tables["water_sections"].set_index("station_id").loc["W02"]
    assert (complete["months_sampled"], complete["missing_months"]) == (12, "")


def test_w99_outside_the_study_area_is_reported_with_its_observations(result):
    rejected = result.tables["network_rejected_rows"]
    site = rejected[(rejected["station_id"] == "W99") & (rejected["file"] == "water_sections.csv")]
    assert len(site) == 1 and "outside the study area" in site["reason"].iloc[0]
    obs = rejected[(rejected["station_id"] == "W99") & (rejected["file"] == "water_monthly.csv")]
    assert len(obs) == 12 and obs["reason"].str.contains("outside").all()
    assert "W99" not in set(result.tables["stations"]["station_id"])
    assert "W99" not in set(result.tables["water_sections"]["station_id"])


def test_early_warnings_name_value_limit_and_source(result):
    w = result.tables["early_warnings"]
    assert set(w["stage"]) == {"network"}
    air = w[w["rule"] == "air_annual_limit"]
    assert len(air) and (air["value"].astype(float) > air["limit"].astype(float)).all()
    assert air["source"].str.contains("GB 3095").all() and air["subject_id"].notna().all()
    # W02 (the section below a town) is class IV against its target III: class numbers 4 and 3, so that value
    # and limit stay numeric columns in the GeoPackage too
    w02 = w[(w["rule"] == "water_section_target") & (w["subject_id"] == "W02")].iloc[0]
    assert (w02["value"], w02["limit"], w02["county_code"]) == (4, 3, "519901")
    assert "GB 3838-2002" in w02["source"] and "水质IV类，劣于目标III类" in w02["message"]
    stored = pyogrio.read_dataframe(result.out_dir / "results.gpkg", layer="early_warnings")
    assert stored["value"].dtype == float and stored["limit"].dtype == float
    noise = w[w["rule"] == "noise_limit"]
    assert len(noise) and noise["source"].str.contains("GB 3096-2008").all()


def test_one_air_station_day_by_hand(result):
    """A01 on 2024-01-01: SO2 10, NO2 28, CO 0.9, O3_8h 62, PM10 101, PM2.5 66 (the sample's air_daily.csv).
    HJ 633-2012 Table 1 (24-h rows), IAQI = IAQI_lo + (IAQI_hi − IAQI_lo)(C − BP_lo)/(BP_hi − BP_lo), rounded up:
    SO2 0–50 → 0–50: 10; NO2 0–40 → 0–50: 28·50/40 = 35; CO 0–2 → 0–50: 0.9·25 = 22.5 → 23;
    O3_8h 0–100 → 0–50: 31; PM10 50–150 → 50–100: 50 + 50·51/100 = 75.5 → 76;
    PM2.5 35–75 → 50–100: 50 + 50·31/40 = 88.75 → 89. AQI = 89 (良, level 2), primary pollutant PM2.5."""
    daily = result.tables["air_daily"]
    row = daily[(daily["station_id"] == "A01") & (pd.to_datetime(daily["time"]) == "2024-01-01")].iloc[0]
    got = [row[c] for c in ("iaqi_so2", "iaqi_no2", "iaqi_co", "iaqi_o3_8h", "iaqi_pm10", "iaqi_pm25", "aqi")]
    assert got == [10, 35, 23, 31, 76, 89, 89]
    assert (row["aqi_level"], row["aqi_category_zh"], row["primary_pollutant"]) == (2, "良", "PM2.5")
    assert (row["county_code"], row["aqi_version"]) == ("519901", "HJ 633-2012")


def test_one_air_station_year_by_hand(result, sample):
    """A02's PM2.5 from the sample's file: annual mean and the HJ 663 95th percentile (k = 1 + (n − 1)·0.95,
    m = X_s + (X_s+1 − X_s)(k − s)), rounded to integers; GB 3095-2012 二级 limits 35 and 75 µg/m³ (A02 is not
    in a red-line unit: 二类区)."""
    obs = _csv(sample, "air_daily.csv")
    x = sorted(obs.loc[(obs["station_id"] == "A02"), "pm25_ugm3"].dropna())
    n = len(x)
    mean = sum(x) / n
    k = 1 + (n - 1) * 0.95
    s = math.floor(k)
    p95 = x[s - 1] + (x[s] - x[s - 1]) * (k - s)
    assert abs(mean - round(mean)) != 0.5 and abs(p95 - round(p95)) != 0.5   # no GB/T 8170 tie here
    row = result.tables["air_station_annual"].set_index("station_id").loc["A02"]
    assert row["n_days_pm25_ugm3"] == n
    assert row["pm25_annual_ugm3"] == round(mean) and row["pm25_p95_ugm3"] == round(p95)
    assert (row["area_class"], row["pm25_annual_limit_ugm3"], row["pm25_p95_limit_ugm3"]) == ("2", 35, 75)
    assert bool(row["pm25_annual_exceeds"]) is (round(mean) > 35)
    assert "二类区" in row["area_class_basis"]


def test_one_water_section_by_hand(result, sample):
    """W01 (river) from the sample's monthly file: annual means of the routine items, each classed by GB 3838-2002
    Table 1 (river TP), the worst class decides."""
    obs = _csv(sample, "water_monthly.csv")
    w01 = obs[obs["station_id"] == "W01"]
    means = {c: w01[c].sum() / len(w01) for c in ("ph", "do_mgl", "codmn_mgl", "cod_mgl", "bod5_mgl", "nh3n_mgl",
                                                   "tp_mgl")}
    limits = {  # I, II, III, IV, V (DO: at least; the rest: at most)
        "do_mgl": [7.5, 6, 5, 3, 2], "codmn_mgl": [2, 4, 6, 10, 15], "cod_mgl": [15, 15, 20, 30, 40],
        "bod5_mgl": [3, 3, 4, 6, 10], "nh3n_mgl": [0.15, 0.5, 1.0, 1.5, 2.0], "tp_mgl": [0.02, 0.1, 0.2, 0.3, 0.4]}
    names = ["I", "II", "III", "IV", "V", "劣V"]

    def cls(item, v):
        ok = [(v >= lim) if item == "do_mgl" else (v <= lim) for lim in limits[item]]
        return next((i for i, good in enumerate(ok) if good), 5)

    classes = {item: cls(item, means[item]) for item in limits}
    classes["ph"] = 0 if 6 <= means["ph"] <= 9 else 5
    worst = max(classes.values())
    row = result.tables["water_sections"].set_index("station_id").loc["W01"]
    for c, v in means.items():
        assert row[c] == pytest.approx(v, rel=1e-12)
    assert row["water_class"] == names[worst]
    deciding = {i.removesuffix("_mgl") for i, k in classes.items() if k == worst}
    assert set(row["deciding_items"].split(",")) == deciding
    assert (row["target_class"], bool(row["meets_target"])) == ("III", worst <= 2)


def test_one_soil_point_and_one_noise_measurement_by_hand(result):
    """S001: paddy, pH 5.36 (≤ 5.5), Cd 0.395 mg/kg: GB 15618-2018 screening (水田, pH ≤ 5.5) 0.3 < 0.395 ≤ control
    1.5 → between → 安全利用类. N01 (class 1: 55/45 dB(A)) on 2024-08-20: day 55.3 → 0.3 dB over, night 48.2 → 3.2."""
    soil = result.tables["soil_points"].set_index("station_id").loc["S001"]
    assert (soil["ph"], soil["cd_mgkg"], soil["cd_screening_mgkg"], soil["cd_control_mgkg"]) == (5.36, 0.395, 0.3, 1.5)
    assert (soil["cd_status"], soil["soil_class"]) == ("between", "安全利用类")
    noise = result.tables["noise_measurements"]
    row = noise[(noise["station_id"] == "N01") & (pd.to_datetime(noise["time"]) == "2024-08-20")].iloc[0]
    assert (row["limit_day_dba"], row["exceed_day_db"], row["limit_night_dba"], row["exceed_night_db"]) == \
        (55, 0.3, 45, 3.2)
    assert not row["meets_day"] and not row["meets_night"]
