"""Small input files that several test modules build the same way."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_statistics_csv(path: Path, codes=("519901", "519902"), years=(2023, 2024)) -> Path:
    """A county statistics table (indices/statistics_table.yaml) with plausible values for every county and year."""
    rows = [{"county_code": code, "year": year, "cod_emission_t": 1000.0, "nh3n_emission_t": 100.0,
             "so2_emission_t": 500.0, "dust_emission_t": 300.0, "nox_emission_t": 800.0,
             "solid_waste_discarded_t": 0.0, "precipitation_mm": 1000.0, "water_resources_1e6m3": 300.0,
             "river_length_km": 120.0} for code in codes for year in years]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_two_counties(root: Path) -> Path:
    """``root/v/counties.gpkg``: two 0.1° counties 甲县 519901 and 乙县 519902 at 104.0–104.2°E, 30.0–30.1°N
    (EPSG:4490), over the synthetic products of the imagery tests; returns ``root``."""
    import geopandas as gpd
    from shapely.geometry import box

    (root / "v").mkdir(exist_ok=True)
    gpd.GeoDataFrame({"code": ["519901", "519902"], "name": ["甲县", "乙县"]},
                     geometry=[box(104.0, 30.0, 104.1, 30.1), box(104.1, 30.0, 104.2, 30.1)],
                     crs="EPSG:4490").to_file(root / "v" / "counties.gpkg")
    return root


def validate_problems(config_path) -> list[str]:
    """The problems ``validate_config`` lists for ``config_path`` (it must refuse the config)."""
    import pytest

    from ecoassess.errors import ConfigError
    from ecoassess.validate import validate_config

    with pytest.raises(ConfigError) as caught:
        validate_config(config_path)
    return caught.value.problems


def link_copy(src: Path, dst: Path) -> Path:
    """A copy of folder ``src`` at ``dst`` whose files are hard links to the originals (instant, no space; copied
    where a link cannot be made). Add files to it and remove them, but replace a file (unlink, then write) rather
    than write into it: writing into a linked file changes the original too."""
    import os
    import shutil

    def link(a, b):
        try:
            os.link(a, b)
        except OSError:   # another file system
            shutil.copy2(a, b)

    return Path(shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True))
