"""Sensor band maps from ``indices/sensors.yaml``: which band of each product plays which band role.

The readers in ``ecoassess.sources`` build their band tables from here, so supporting another sensor or a
renamed asset is a data change, not a code change.
"""

from __future__ import annotations

from functools import lru_cache


from ecoassess.catalog import data_path, load_yaml


@lru_cache(maxsize=None)
def sensors_spec() -> dict:
    return load_yaml(data_path("indices", "sensors.yaml"))


def landsat_spacecrafts() -> dict[str, tuple[str, dict[str, int], str]]:
    """MTL SPACECRAFT_ID -> (sensor name, {role: reflective band number}, surface-temperature band id)."""
    out = {}
    for name, sensor in sensors_spec()["sensors"].items():
        if "spacecraft_id" not in sensor:
            continue
        numbers = {role: int(band.removeprefix("SR_B")) for role, band in sensor["bands"].items()}
        out[sensor["spacecraft_id"]] = (name, numbers, sensor["thermal"])
    return out


def sentinel2_bands() -> dict[str, tuple[str, int, int]]:
    """Sentinel-2 role -> (band id, native resolution in m, MTD BOA_ADD_OFFSET band_id)."""
    s2 = sensors_spec()["sensors"]["sentinel2"]
    details = s2["band_details"]
    return {role: (band, int(details[band]["resolution_m"]), int(details[band]["mtd_band_index"]))
            for role, band in s2["bands"].items()}


def sentinel2_stac_keys() -> dict[str, tuple[str, ...]]:
    """Sentinel-2 role (and ``scl``) -> STAC asset keys accepted for it, preferred first."""
    s2 = sensors_spec()["sensors"]["sentinel2"]
    details = s2["band_details"]
    keys = {role: tuple(details[band]["stac_keys"]) for role, band in s2["bands"].items()}
    keys["scl"] = tuple(details["SCL"]["stac_keys"])
    return keys
