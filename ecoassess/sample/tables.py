"""County statistics (pollutant emissions, precipitation, water resources, river length) and constraint events,
at magnitudes of Sichuan hill counties scaled to the sample counties' area (~100 km² each)."""

from __future__ import annotations

import pandas as pd


def county_statistics(codes, areas_km2, river_km, urban_share, rng, years=(2023, 2024)) -> pd.DataFrame:
    rows = []
    for code, area, rkm, urb in zip(codes, areas_km2, river_km, urban_share):
        base = {k: v * area / 100.0 for k, v in {"cod": 720.0, "nh3n": 58.0, "so2": 95.0, "dust": 160.0,
                                                 "nox": 210.0, "sw": 4.0}.items()}
        town = 1.0 + 6.0 * urb
        rain = float(rng.normal(960.0, 60.0))
        for y in years:
            trend = 0.97 if y == years[-1] else 1.0
            p = rain * (1.08 if y == 2023 else 0.93) * float(rng.normal(1.0, 0.03))
            rows.append({
                "county_code": code, "year": y,
                "cod_emission_t": round(base["cod"] * trend * float(rng.normal(1, 0.08)), 1),
                "nh3n_emission_t": round(base["nh3n"] * trend * float(rng.normal(1, 0.08)), 1),
                "so2_emission_t": round(base["so2"] * town * trend * float(rng.normal(1, 0.1)), 1),
                "dust_emission_t": round(base["dust"] * town * trend * float(rng.normal(1, 0.1)), 1),
                "nox_emission_t": round(base["nox"] * town * trend * float(rng.normal(1, 0.1)), 1),
                "solid_waste_discarded_t": round(max(0.0, base["sw"] * float(rng.normal(1, 0.5))), 2),
                "precipitation_mm": round(p, 1),
                "water_resources_1e6m3": round(area * p * 0.42 / 1000.0, 2),    # runoff coefficient ~0.42
                "river_length_km": round(rkm, 2),
            })
    return pd.DataFrame(rows)


def constraint_events(codes, year) -> pd.DataFrame:
    return pd.DataFrame([{
        "county_code": codes[min(2, len(codes) - 1)], "year": year, "event_type": "突发环境事件",
        "severity": "较大",
        "description": "（示例）化工企业储罐泄漏致支流河段短时超标，已处置，无人员伤亡",
    }])
