"""Sentinel-2 L2A-like scenes: 10 m B02/B03/B04/B08, 20 m B11/B12/SCL as COGs, plus an Element84-style STAC item.

DN = round((reflectance + 0.1) × 10000): processing baseline 05.10 carries the BOA_ADD_OFFSET of −1000 in the data,
declared as ``raster:bands`` offset −0.1, scale 0.0001. Clouds are thresholded smooth noise; their shadows are the
same shapes displaced away from the sun and darkened. The SCL band uses the real codes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import Transformer
from scipy import ndimage

from ecoassess.sample import spectra
from ecoassess.sample.io import write_cog
from ecoassess.sample.noise import fractal, upsample
from ecoassess.sample.terrain import Terrain, hillshade
from ecoassess.sample.world import GEO_EPSG, UTM_EPSG, World

MGRS_TILE = ("48", "R", "VU")          # the 100 km square holding 104.6°E 30.1°N
SCL_NODATA, SCL_SHADOW, SCL_VEG, SCL_NOTVEG, SCL_WATER = 0, 3, 4, 5, 6
SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_CIRRUS = 8, 9, 10

BAND_FILES = {"blue": ("B02", 10, 0.49, 0.098, "Blue (band 2)"), "green": ("B03", 10, 0.56, 0.045, "Green (band 3)"),
              "red": ("B04", 10, 0.665, 0.038, "Red (band 4)"), "nir": ("B08", 10, 0.842, 0.145, "NIR 1 (band 8)"),
              "swir16": ("B11", 20, 1.61, 0.143, "SWIR 1 (band 11)"),
              "swir22": ("B12", 20, 2.19, 0.242, "SWIR 2 (band 12)")}


@dataclass(frozen=True)
class SceneSpec:
    date: str                  # YYYY-MM-DD
    platform: str              # sentinel-2a / sentinel-2b
    cloud_fraction: float      # target share of the scene under cloud
    cirrus: bool = False
    orbit_edge: bool = False   # a no-data wedge along the east edge
    shift_m: tuple[float, float] = (0.0, 0.0)   # georeference error (east, north) in metres: misregistration

    @property
    def scene_id(self) -> str:
        sat = "S2A" if self.platform.endswith("a") else "S2B"
        return f"{sat}_{''.join(MGRS_TILE)}_{self.date.replace('-', '')}_0_L2A"


def sun_position(date: str) -> tuple[float, float]:
    """Approximate sun azimuth/elevation (degrees) at 10:30 local solar time, 30.1°N."""
    y, m, d = (int(p) for p in date.split("-"))
    doy = (m - 1) * 30.4 + d
    decl = np.radians(23.44 * np.sin(np.radians(360.0 / 365.0 * (doy - 81))))
    lat, ha = np.radians(30.1), np.radians(-22.5)
    el = np.arcsin(np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(ha))
    az = np.arctan2(-np.sin(ha), np.tan(decl) * np.cos(lat) - np.sin(lat) * np.cos(ha))
    return float((np.degrees(az) + 360) % 360), float(np.degrees(el))


def class_map_10m(world: World, lucc: np.ndarray, rng) -> np.ndarray:
    """Land cover at 10 m: nearest lookup with a smooth sub-pixel jitter, so edges are not 30 m staircases."""
    h10, w10 = world.shape_at(10.0)
    jr = upsample(0.45 * fractal(rng, world.shape, beta=2.6), 3)
    jc = upsample(0.45 * fractal(rng, world.shape, beta=2.6), 3)
    rows = np.clip(((np.arange(h10)[:, None] + 0.5) / 3.0 + jr).astype(int), 0, world.n - 1)
    cols = np.clip(((np.arange(w10)[None, :] + 0.5) / 3.0 + jc).astype(int), 0, world.n - 1)
    return lucc[rows, cols]


def cloud_fields(world: World, rng, spec: SceneSpec, sun_az: float, sun_el: float, res_m: float,
                 forced_cloud: np.ndarray | None = None):
    """Cloud opacity, shadow strength and cirrus opacity (0..1) on a grid of ``res_m``.

    ``forced_cloud``: bool at 30 m, where the scene is under thick cloud whatever the random field says."""
    f = int(round(30.0 / res_m)) if res_m < 30 else 1
    field = fractal(rng, world.shape, beta=3.6)
    if spec.cloud_fraction > 0:
        t = np.quantile(field, 1.0 - spec.cloud_fraction * 1.15)
        alpha = np.clip((field - t) / 0.9, 0.0, 1.0) ** 0.8
    else:
        alpha = np.zeros(world.shape, dtype="float32")
    if forced_cloud is not None:
        alpha = np.maximum(alpha, np.where(forced_cloud, 0.95, 0.0))
    alpha = upsample(alpha.astype("float32"), f)
    height_m = 1800.0
    d = height_m / np.tan(np.radians(sun_el)) / res_m
    drow, dcol = np.cos(np.radians(sun_az)) * d, -np.sin(np.radians(sun_az)) * d
    shadow = ndimage.shift(alpha, (drow, dcol), order=0, mode="constant", cval=0.0)
    if spec.cirrus:
        cf = fractal(rng, (world.n, -(-world.n // 4)), beta=3.0)  # ceil: n need not be a multiple of 4
        cir = np.repeat(cf, 4, axis=1)[:, : world.n]
        cir = upsample(np.clip((cir - 1.0) * 0.12, 0.0, 0.15).astype("float32"), f)
    else:
        cir = np.zeros_like(alpha)
    return alpha, shadow, cir


def to_dn(refl: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((refl + 0.1) * 10000.0), 1, 65535).astype("uint16")


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape
    return a[: h // k * k, : w // k * k].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def write_scene(world: World, terrain: Terrain, cls10: np.ndarray, surface: dict, spec: SceneSpec,
                year_dir: Path, rng, forced_cloud: np.ndarray | None = None) -> Path:
    """Render one scene into ``year_dir/<scene_id>/``; returns the scene folder.

    ``forced_cloud``: bool at 30 m, thick cloud there in this scene (see :func:`cloud_fields`)."""
    folder = year_dir / spec.scene_id
    folder.mkdir(parents=True, exist_ok=True)
    sun_az, sun_el = sun_position(spec.date)
    m, d = int(spec.date[5:7]), int(spec.date[8:10])
    cos_i = hillshade(terrain.slope_deg, terrain.aspect_deg, sun_az, sun_el)
    illum30 = np.clip(1.0 + 0.35 * (cos_i / np.cos(np.radians(90 - sun_el)) - 1.0), 0.55, 1.35)
    illum = upsample(illum30.astype("float32"), 3)
    bands = spectra.surface_reflectance(cls10, spectra.season_position(m, d) + rng.normal(0, 0.05),
                                        surface["greenness"], surface["brightness"], illum)
    alpha, shadow, cirrus = cloud_fields(world, rng, spec, sun_az, sun_el, 10.0, forced_cloud)
    h10, w10 = cls10.shape
    valid = np.ones((h10, w10), dtype=bool)
    if spec.orbit_edge:
        rows = np.arange(h10)[:, None]
        valid = np.arange(w10)[None, :] < w10 * (0.84 + 0.08 * rows / h10)
    out = {}
    for k, name in enumerate(spectra.BANDS):
        r = bands[k] * (1.0 - 0.62 * shadow * (alpha < 0.1))
        r = (1.0 - alpha) * r + alpha * spectra.CLOUD[k]
        r = r + cirrus * (0.9 * spectra.CLOUD[k])
        r += rng.standard_normal(r.shape, dtype=np.float32) * np.float32(0.0008)
        out[name] = r
    # a georeference error moves the declared grid, not the surface: the scene is misregistered by shift_m
    x0, y1 = world.x0 + spec.shift_m[0], world.y1 + spec.shift_m[1]
    transform10, transform20 = Affine(10.0, 0, x0, 0, -10.0, y1), Affine(20.0, 0, x0, 0, -20.0, y1)
    files = {}
    for name, (fname, res, *_rest) in BAND_FILES.items():
        r = out[name] if res == 10 else block_mean(out[name], 2)
        v = valid if res == 10 else valid[::2, ::2]
        dn = np.where(v, to_dn(r), 0).astype("uint16")
        write_cog(folder / f"{fname}.tif", dn, transform10 if res == 10 else transform20, f"EPSG:{UTM_EPSG}",
                  nodata=0, overviews=False)
        files[name] = dn.shape
    # scene classification at 20 m
    a20, s20, c20 = (block_mean(x, 2) for x in (alpha, shadow, cirrus))
    red20, nir20 = block_mean(out["red"], 2), block_mean(out["nir"], 2)
    ndvi = (nir20 - red20) / np.maximum(nir20 + red20, 1e-6)
    cls20 = cls10[::2, ::2]
    scl = np.full(a20.shape, SCL_NOTVEG, dtype="uint8")
    scl[ndvi > 0.35] = SCL_VEG
    scl[np.isin(cls20, list(spectra.WATER)) & (ndvi < 0.2)] = SCL_WATER
    scl[(s20 > 0.3) & (a20 < 0.15)] = SCL_SHADOW
    scl[(c20 > 0.04) & (a20 <= 0.15)] = SCL_CIRRUS
    scl[a20 > 0.15] = SCL_CLOUD_MED
    scl[a20 > 0.55] = SCL_CLOUD_HIGH
    scl[~valid[::2, ::2]] = SCL_NODATA
    write_cog(folder / "SCL.tif", scl, transform20, f"EPSG:{UTM_EPSG}", nodata=0, overview_resampling="nearest")
    item = stac_item(world, spec, scl, valid, files, sun_az, sun_el)
    (folder / f"{spec.scene_id}.json").write_text(json.dumps(item, indent=1, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")
    return folder


def _footprint(world: World, valid: np.ndarray):
    """Lon/lat polygon of the valid-data area (its corners), and bbox."""
    h, w = valid.shape
    x0, y1 = world.x0, world.y1
    res = (world.bounds[2] - x0) / w
    top = np.flatnonzero(valid[0]).max() + 1
    bot = np.flatnonzero(valid[-1]).max() + 1
    pts = [(x0, y1), (x0 + top * res, y1), (x0 + bot * res, y1 - h * res), (x0, y1 - h * res), (x0, y1)]
    tr = Transformer.from_crs(UTM_EPSG, GEO_EPSG, always_xy=True)
    ll = [tuple(round(v, 9) for v in tr.transform(x, y)) for x, y in pts]
    lons, lats = [p[0] for p in ll], [p[1] for p in ll]
    return [list(p) for p in ll], [min(lons), min(lats), max(lons), max(lats)]


def stac_item(world: World, spec: SceneSpec, scl: np.ndarray, valid: np.ndarray, shapes: dict, sun_az: float,
              sun_el: float) -> dict:
    n_all = scl.size
    n_valid = int((scl > 0).sum())

    def pct(*codes):
        return round(100.0 * float(np.isin(scl, codes).sum()) / max(n_valid, 1), 6)

    coords, bbox = _footprint(world, valid)
    sid = spec.scene_id
    x0, y1 = world.x0 + spec.shift_m[0], world.y1 + spec.shift_m[1]
    date = spec.date.replace("-", "")
    props = {
        "created": f"{spec.date}T06:00:00.000Z", "platform": spec.platform, "constellation": "sentinel-2",
        "instruments": ["msi"], "eo:cloud_cover": pct(SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_CIRRUS),
        "proj:epsg": UTM_EPSG, "mgrs:utm_zone": int(MGRS_TILE[0]), "mgrs:latitude_band": MGRS_TILE[1],
        "mgrs:grid_square": MGRS_TILE[2], "grid:code": f"MGRS-{''.join(MGRS_TILE)}",
        "view:sun_azimuth": round(sun_az, 6), "view:sun_elevation": round(sun_el, 6),
        "s2:degraded_msi_data_percentage": 0, "s2:nodata_pixel_percentage": round(100.0 * (n_all - n_valid) / n_all, 6),
        "s2:saturated_defective_pixel_percentage": 0, "s2:dark_features_percentage": 0,
        "s2:cloud_shadow_percentage": pct(SCL_SHADOW), "s2:vegetation_percentage": pct(SCL_VEG),
        "s2:not_vegetated_percentage": pct(SCL_NOTVEG), "s2:water_percentage": pct(SCL_WATER),
        "s2:unclassified_percentage": 0, "s2:medium_proba_clouds_percentage": pct(SCL_CLOUD_MED),
        "s2:high_proba_clouds_percentage": pct(SCL_CLOUD_HIGH), "s2:thin_cirrus_percentage": pct(SCL_CIRRUS),
        "s2:snow_ice_percentage": 0, "s2:product_type": "S2MSI2A", "s2:processing_baseline": "05.10",
        "s2:product_uri": f"{sid[:3]}_MSIL2A_{date}T033541_N0510_R061_T{''.join(MGRS_TILE)}_{date}T071500.SAFE",
        "s2:generation_time": f"{spec.date}T07:15:00.000000Z",
        "s2:reflectance_conversion_factor": round(1 - 0.0334 * np.cos(np.radians(
            (int(spec.date[5:7]) - 1) * 30.4 + int(spec.date[8:10]) - 3) * 360 / 365.25), 9),
        "datetime": f"{spec.date}T03:45:12.024000Z", "s2:sequence": "0",
        "earthsearch:boa_offset_applied": False, "processing:software": {"ecoassess.sample": "1"},
        "ecoassess:synthetic": True,
        "updated": f"{spec.date}T08:00:00.000000+00:00",
    }
    assets = {}
    for name, (fname, res, cw, fwhm, title) in BAND_FILES.items():
        h, w = shapes[name]
        assets[name] = {
            "href": f"./{fname}.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": f"{title} - {res}m",
            "eo:bands": [{"name": name, "common_name": name, "description": title, "center_wavelength": cw,
                          "full_width_half_max": fwhm}],
            "gsd": res, "proj:shape": [h, w], "proj:transform": [res, 0, x0, 0, -res, y1],
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15, "spatial_resolution": res,
                              "scale": 0.0001, "offset": -0.1}],
            "roles": ["data", "reflectance"],
        }
    assets["scl"] = {
        "href": "./SCL.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "title": "Scene classification map (SCL)", "proj:shape": list(scl.shape),
        "proj:transform": [20, 0, x0, 0, -20, y1],
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}], "roles": ["data", "reflectance"],
    }
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": sid, "properties": props,
        "geometry": {"type": "Polygon", "coordinates": [coords]},
        "links": [{"rel": "self", "href": f"./{sid}.json", "type": "application/json"}],
        "assets": assets, "bbox": bbox,
        "stac_extensions": ["https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
                            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
                            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
                            "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
                            "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/projection/v1.0.0/schema.json"],
        "collection": "sentinel-2-l2a",
    }


def surface_fields(world: World, rng) -> dict:
    """Within-class variability of one year's surface at 10 m (greenness, brightness), zero mean, unit std."""
    shape10 = world.shape_at(10.0)
    return {"greenness": fractal(rng, shape10, beta=2.6), "brightness": fractal(rng, shape10, beta=2.5)}
