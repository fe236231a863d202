"""Landsat 9 Collection 2 Level-2 (L2SP) product for RSEI: SR_B1–B7, ST_B10, QA_PIXEL (30 m) and an MTL.txt.

SR DN = (reflectance + 0.2) / 2.75e-5; ST DN = (T_kelvin − 149) / 0.00341802; DN 0 = fill.
LST by class for a clear July morning (urban/bare ≈ 35–40 °C, forest ≈ 25 °C, water coolest), with a lapse
rate, sunlit/shaded slopes, an urban heat island and TIRS-like blur (~100 m).
QA_PIXEL follows the C2 bit layout: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow,
6 clear, 7 water, 8–9 cloud confidence, 10–11 shadow confidence, 12–13 snow confidence, 14–15 cirrus confidence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pyproj import Transformer
from scipy import ndimage

from ecoassess.sample import spectra
from ecoassess.sample.io import write_cog
from ecoassess.sample.noise import fractal
from ecoassess.sample.scenes import SceneSpec, cloud_fields, sun_position
from ecoassess.sample.terrain import Terrain, hillshade
from ecoassess.sample.world import GEO_EPSG, UTM_EPSG, World

SR_MULT, SR_ADD = 2.75e-05, -0.2
ST_MULT, ST_ADD = 0.00341802, 149.0
WRS_PATH, WRS_ROW = 129, 39

LST_C = {11: 27.0, 12: 31.5, 21: 25.5, 22: 27.0, 23: 28.0, 24: 28.5, 31: 29.0, 32: 31.0, 33: 33.5, 41: 23.5,
         42: 22.5, 43: 22.5, 51: 38.0, 52: 34.0, 53: 39.0, 65: 37.0, 66: 40.0, 112: 36.0}

# QA_PIXEL values (C2 L2, Landsat 8/9)
QA_FILL = 1
_LOW = (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14)          # low confidence for cloud, shadow, snow, cirrus
QA_CLEAR = _LOW | (1 << 6)                                    # 21824
QA_WATER = QA_CLEAR | (1 << 7)                                # 21952
QA_CLOUD = (1 << 3) | (3 << 8) | (1 << 10) | (1 << 12) | (1 << 14) | (1 << 1)   # 22280 + dilated bit
QA_DILATED = (1 << 1) | (1 << 9) | (1 << 10) | (1 << 12) | (1 << 14)
QA_SHADOW = (1 << 4) | (1 << 6) | (1 << 8) | (3 << 10) | (1 << 12) | (1 << 14)   # 23888
QA_CIRRUS = (1 << 2) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 12) | (3 << 14)


def product_id(date: str) -> str:
    acq = date.replace("-", "")
    y, m, d = (int(p) for p in date.split("-"))
    proc = np.datetime64(date) + np.timedelta64(9, "D")
    return f"LC09_L2SP_{WRS_PATH:03d}{WRS_ROW:03d}_{acq}_{str(proc).replace('-', '')}_02_T1"


def write_landsat(world: World, terrain: Terrain, lucc: np.ndarray, date: str, year_dir: Path, rng) -> Path:
    pid = product_id(date)
    folder = year_dir / pid
    folder.mkdir(parents=True, exist_ok=True)
    sun_az, sun_el = sun_position(date)
    m, d = int(date[5:7]), int(date[8:10])
    cos_i = hillshade(terrain.slope_deg, terrain.aspect_deg, sun_az, sun_el)
    cos_z = np.cos(np.radians(90 - sun_el))
    illum = np.clip(1.0 + 0.35 * (cos_i / cos_z - 1.0), 0.55, 1.35)
    g, b = fractal(rng, world.shape, beta=2.2), fractal(rng, world.shape, beta=2.0)
    refl = spectra.surface_reflectance(lucc, spectra.season_position(m, d), g, b, illum)
    spec = SceneSpec(date, "landsat-9", 0.04)
    alpha, shadow, _ = cloud_fields(world, rng, spec, sun_az, sun_el, 30.0)
    cloud = alpha > 0.2
    shadow_m = (shadow > 0.3) & ~cloud
    # surface temperature
    lst = np.vectorize(lambda c: LST_C.get(int(c), 30.0), otypes=["float32"])(np.arange(256))[lucc]
    water = np.isin(lucc, list(spectra.WATER))
    urban = ndimage.gaussian_filter(np.isin(lucc, (51, 53)).astype("float32"), 12.0)
    lst = lst - np.where(water, 0.0, 6.5e-3 * (terrain.dem_m - terrain.dem_m.mean()))   # lapse rate on land
    lst = lst + np.where(water, 0.0, 3.0 * (cos_i - cos_i.mean()) + 3.0 * urban)
    lst = ndimage.gaussian_filter(lst + 0.7 * fractal(rng, world.shape, beta=2.4), 1.3)
    lst = np.where(cloud, (1 - alpha) * lst + alpha * 12.0, lst) - 3.0 * shadow_m
    st_dn = np.clip(np.rint((lst + 273.15 - ST_ADD) / ST_MULT), 1, 65535).astype("uint16")
    # reflective bands B1..B7
    oli = [refl[0] * 1.04 + 0.004, refl[0], refl[1], refl[2], refl[3] * 0.97, refl[4], refl[5]]
    transform = world.transform(30.0)
    crs = f"EPSG:{UTM_EPSG}"
    for k, r in enumerate(oli, start=1):
        cldk = spectra.CLOUD[min(k - 1, 5) if k > 1 else 0]
        r = (1 - alpha) * r * (1 - 0.6 * shadow * (alpha < 0.1)) + alpha * cldk
        r = r + rng.normal(0, 0.002, r.shape)
        dn = np.clip(np.rint((r - SR_ADD) / SR_MULT), 1, 65535).astype("uint16")
        write_cog(folder / f"{pid}_SR_B{k}.TIF", dn, transform, crs, nodata=0, overviews=False)
    write_cog(folder / f"{pid}_ST_B10.TIF", st_dn, transform, crs, nodata=0, overviews=False)
    qa = np.where(water, QA_WATER, QA_CLEAR).astype("uint16")
    dil = ndimage.binary_dilation(cloud, iterations=3) & ~cloud
    qa[shadow_m] = QA_SHADOW
    qa[dil] = QA_DILATED
    qa[cloud] = QA_CLOUD
    write_cog(folder / f"{pid}_QA_PIXEL.TIF", qa, transform, crs, nodata=QA_FILL, overview_resampling="nearest")
    cloud_cover = round(100.0 * float(cloud.mean()), 2)
    (folder / f"{pid}_MTL.txt").write_text(mtl_text(world, pid, date, cloud_cover, sun_az, sun_el), encoding="utf-8")
    return folder


def mtl_text(world: World, pid: str, date: str, cloud_cover: float, sun_az: float, sun_el: float) -> str:
    """An MTL.txt with the group/key layout of a real C2 L2SP product (only files present are listed)."""
    h, w = world.shape
    xmin, ymin, xmax, ymax = world.bounds
    tr = Transformer.from_crs(UTM_EPSG, GEO_EPSG, always_xy=True)
    corners = {"UL": (xmin, ymax), "UR": (xmax, ymax), "LL": (xmin, ymin), "LR": (xmax, ymin)}
    proc = pid.split("_")[4]
    proc_date = f"{proc[:4]}-{proc[4:6]}-{proc[6:]}"
    L = []

    def group(name, items):
        L.append(f"  GROUP = {name}")
        for k, v in items:
            L.append(f"    {k} = {v}")
        L.append(f"  END_GROUP = {name}")

    files = [(f"FILE_NAME_BAND_{k}", f'"{pid}_SR_B{k}.TIF"') for k in range(1, 8)]
    files += [("FILE_NAME_BAND_ST_B10", f'"{pid}_ST_B10.TIF"'),
              ("FILE_NAME_QUALITY_L1_PIXEL", f'"{pid}_QA_PIXEL.TIF"'), ("FILE_NAME_METADATA_ODL", f'"{pid}_MTL.txt"')]
    files += [(f"DATA_TYPE_BAND_{k}", '"UINT16"') for k in range(1, 8)]
    files += [("DATA_TYPE_BAND_ST_B10", '"UINT16"'), ("DATA_TYPE_QUALITY_L1_PIXEL", '"UINT16"')]
    L.append("GROUP = LANDSAT_METADATA_FILE")
    group("PRODUCT_CONTENTS", [("ORIGIN", '"Synthetic sample generated by ecoassess.sample (not USGS data)"'),
                               ("DIGITAL_OBJECT_IDENTIFIER", '"https://doi.org/10.5066/P9OGBGM6"'),
                               ("LANDSAT_PRODUCT_ID", f'"{pid}"'), ("PROCESSING_LEVEL", '"L2SP"'),
                               ("COLLECTION_NUMBER", "02"), ("COLLECTION_CATEGORY", '"T1"'),
                               ("OUTPUT_FORMAT", '"GEOTIFF"')] + files)
    group("IMAGE_ATTRIBUTES", [("SPACECRAFT_ID", '"LANDSAT_9"'), ("SENSOR_ID", '"OLI_TIRS"'), ("WRS_TYPE", 2),
                               ("WRS_PATH", WRS_PATH), ("WRS_ROW", WRS_ROW), ("NADIR_OFFNADIR", '"NADIR"'),
                               ("TARGET_WRS_PATH", WRS_PATH), ("TARGET_WRS_ROW", WRS_ROW),
                               ("DATE_ACQUIRED", date), ("SCENE_CENTER_TIME", '"03:52:41.1234560Z"'),
                               ("STATION_ID", '"LGN"'), ("CLOUD_COVER", f"{cloud_cover:.2f}"),
                               ("CLOUD_COVER_LAND", f"{cloud_cover:.2f}"), ("IMAGE_QUALITY_OLI", 9),
                               ("IMAGE_QUALITY_TIRS", 9), ("ROLL_ANGLE", "-0.001"),
                               ("SUN_AZIMUTH", f"{sun_az:.8f}"), ("SUN_ELEVATION", f"{sun_el:.8f}"),
                               ("EARTH_SUN_DISTANCE", "1.0160000"), ("TIRS_SSM_MODEL", '"FINAL"'),
                               ("TIRS_SSM_POSITION_STATUS", '"ESTIMATED"')])
    proj = [("MAP_PROJECTION", '"UTM"'), ("DATUM", '"WGS84"'), ("ELLIPSOID", '"WGS84"'), ("UTM_ZONE", 48),
            ("GRID_CELL_SIZE_REFLECTIVE", "30.00"), ("GRID_CELL_SIZE_THERMAL", "30.00"),
            ("REFLECTIVE_LINES", h), ("REFLECTIVE_SAMPLES", w), ("THERMAL_LINES", h), ("THERMAL_SAMPLES", w),
            ("ORIENTATION", '"NORTH_UP"')]
    for c, (x, y) in corners.items():
        lon, lat = tr.transform(x, y)
        proj += [(f"CORNER_{c}_LAT_PRODUCT", f"{lat:.5f}"), (f"CORNER_{c}_LON_PRODUCT", f"{lon:.5f}")]
    for c, (x, y) in corners.items():
        proj += [(f"CORNER_{c}_PROJECTION_X_PRODUCT", f"{x:.3f}"), (f"CORNER_{c}_PROJECTION_Y_PRODUCT", f"{y:.3f}")]
    group("PROJECTION_ATTRIBUTES", proj)
    group("LEVEL2_PROCESSING_RECORD", [("ORIGIN", '"Synthetic sample generated by ecoassess.sample"'),
                                       ("LANDSAT_PRODUCT_ID", f'"{pid}"'), ("PROCESSING_LEVEL", '"L2SP"'),
                                       ("OUTPUT_FORMAT", '"GEOTIFF"'), ("DATE_PRODUCT_GENERATED", f"{proc_date}T00:00:00Z"),
                                       ("PROCESSING_SOFTWARE_VERSION", '"LPGS_16.4.0"'),
                                       ("ALGORITHM_SOURCE_SURFACE_REFLECTANCE", '"LaSRC_1.6.0"'),
                                       ("ALGORITHM_SOURCE_SURFACE_TEMPERATURE", '"st_1.5.0"')])
    sr = []
    for k in range(1, 8):
        sr += [(f"REFLECTANCE_MAXIMUM_BAND_{k}", "1.602213"), (f"REFLECTANCE_MINIMUM_BAND_{k}", "-0.199972")]
    for k in range(1, 8):
        sr += [(f"QUANTIZE_CAL_MAX_BAND_{k}", 65535), (f"QUANTIZE_CAL_MIN_BAND_{k}", 1)]
    sr += [(f"REFLECTANCE_MULT_BAND_{k}", "2.75e-05") for k in range(1, 8)]
    sr += [(f"REFLECTANCE_ADD_BAND_{k}", "-0.2") for k in range(1, 8)]
    group("LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", sr)
    group("LEVEL2_SURFACE_TEMPERATURE_PARAMETERS", [("TEMPERATURE_MAXIMUM_BAND_ST_B10", "372.999941"),
                                                    ("TEMPERATURE_MINIMUM_BAND_ST_B10", "149.003418"),
                                                    ("QUANTIZE_CAL_MAXIMUM_BAND_ST_B10", 65535),
                                                    ("QUANTIZE_CAL_MINIMUM_BAND_ST_B10", 1),
                                                    ("TEMPERATURE_MULT_BAND_ST_B10", "0.00341802"),
                                                    ("TEMPERATURE_ADD_BAND_ST_B10", "149.0")])
    group("LEVEL1_PROCESSING_RECORD", [("LANDSAT_PRODUCT_ID", f'"{pid.replace("L2SP", "L1TP")}"'),
                                       ("PROCESSING_LEVEL", '"L1TP"'), ("COLLECTION_CATEGORY", '"T1"'),
                                       ("DATA_SOURCE_ELEVATION", '"GLS2000"')])
    group("LEVEL1_THERMAL_CONSTANTS", [("K1_CONSTANT_BAND_10", "799.0284"), ("K2_CONSTANT_BAND_10", "1329.2405"),
                                       ("K1_CONSTANT_BAND_11", "475.6581"), ("K2_CONSTANT_BAND_11", "1198.3494")])
    group("LEVEL1_PROJECTION_PARAMETERS", [("MAP_PROJECTION", '"UTM"'), ("DATUM", '"WGS84"'), ("ELLIPSOID", '"WGS84"'),
                                           ("UTM_ZONE", 48), ("GRID_CELL_SIZE_REFLECTIVE", "30.00"),
                                           ("GRID_CELL_SIZE_THERMAL", "30.00"), ("ORIENTATION", '"NORTH_UP"'),
                                           ("RESAMPLING_OPTION", '"CUBIC_CONVOLUTION"')])
    L.append("END_GROUP = LANDSAT_METADATA_FILE")
    L.append("END")
    return "\n".join(L) + "\n"
