"""Plain GeoTIFF / COG band files with a declared band mapping (any sensor, any pre-processed reflectance).

Each role maps to a file, or to ``{"path": ..., "band": 2, "scale": ..., "offset": ..., "nodata": ...}`` for a band
of a multi-band file with its own factors. Physical value = DN × scale + offset, after DN == nodata is set to NaN.
A file without georeference takes ``"crs"`` (and ``"transform"``, GDAL GeoTransform order) from its mapping; a
netCDF band's CF ``grid_mapping``/``crs_wkt`` is read by GDAL itself.
An optional mask raster says which pixels are clear: ``{"path": ..., "band": 1, "clear_values": [...]}`` or
``{"path": ..., "masked_values": [...]}`` (values outside the mask file count as not observed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ecoassess.errors import InputError
from ecoassess.grid import DEFAULT_CHUNK, AnalysisGrid, declared_info, raster_info, read_on_grid
from ecoassess.sources import qa as _qa
from ecoassess.sources.reflectance_range import screen_reflectance
from ecoassess.sources.scene import (
    REFLECTANCE_ROLES,
    Scene,
    make_dataset,
    native_grid,
    parse_date,
    read_scaled,
    wrap_like,
)

log = logging.getLogger(__name__)

#: Role for a surface-temperature band in kelvin (goes to ``Scene.thermal_k``, not to ``Scene.bands``).
THERMAL_ROLE = "thermal_k"
KNOWN_ROLES: tuple[str, ...] = REFLECTANCE_ROLES + (THERMAL_ROLE,)


def _band_spec(role: str, spec, defaults: dict) -> dict:
    if isinstance(spec, (str, Path)):
        spec = {"path": spec}
    if not isinstance(spec, dict) or "path" not in spec:
        raise InputError(f"band {role!r} must be a file path or a mapping with 'path'", field=f"bands.{role}",
                         expected="'B04.tif' or {path: B04.tif, band: 1, scale: 0.0001}")
    unknown = set(spec) - {"path", "band", "scale", "offset", "nodata", "crs", "transform"}
    if unknown:
        raise InputError(f"band {role!r} has unknown key(s) {sorted(unknown)}", field=f"bands.{role}",
                         expected="path, band, scale, offset, nodata, crs, transform")
    out = dict(defaults)
    out.update({k: v for k, v in spec.items() if v is not None or k == "nodata"})
    out["path"] = Path(spec["path"])
    out["band"] = int(spec.get("band", 1))
    out.setdefault("crs", None)
    out.setdefault("transform", None)
    return out


def open_geotiff_scene(bands: dict, grid: AnalysisGrid | None = None, *, date, sensor: str = "geotiff",
                       scale: float = 1.0, offset: float = 0.0, nodata=None, mask: dict | None = None,
                       chunk: int = DEFAULT_CHUNK) -> Scene:
    """A lazy :class:`Scene` from GeoTIFF/COG files: ``bands`` maps roles (``blue, green, red, nir, swir1, swir2,
    coastal, rededge1..3, nir08`` and ``thermal_k`` in kelvin) to files or ``{path, band, scale, offset, nodata}``.

    ``scale``/``offset``/``nodata`` are defaults for every band (``nodata=None``: the file's own nodata tag).
    Without ``grid`` the grid of the red band (else the first band) is used. ``valid`` = the reference band
    (red, else the first) is not nodata and, with a mask, the mask is defined; ``clear`` = valid and the mask
    value is in ``clear_values`` (or not in ``masked_values``).
    """
    if not isinstance(bands, dict) or not bands:
        raise InputError("no band files given", field="bands", expected="a mapping role -> file")
    unknown = [r for r in bands if r not in KNOWN_ROLES]
    if unknown:
        raise InputError(f"unknown band role(s) {unknown}", field="bands",
                         expected=f"roles among {', '.join(KNOWN_ROLES)}")
    try:
        day = parse_date(date)
    except ValueError as exc:
        raise InputError(str(exc), field="date", expected="YYYY-MM-DD") from exc
    defaults = {"scale": float(scale), "offset": float(offset), "nodata": nodata}
    specs = {role: _band_spec(role, spec, defaults) for role, spec in bands.items()}
    for role, s in specs.items():
        info = declared_info(raster_info(s["path"]), s["crs"], s["transform"])  # InputError: missing/unreadable
        if s["band"] < 1 or s["band"] > info["count"]:
            raise InputError(f"has {info['count']} band(s); band {s['band']} was given for role {role!r}",
                             path=s["path"], field=f"bands.{role}.band")
        if s["nodata"] is None:
            s["nodata"] = info["nodata"]
    reflective = [r for r in specs if r != THERMAL_ROLE]
    if not reflective:
        raise InputError("only a thermal band was given", field="bands", expected="at least one reflectance band")
    ref_role = "red" if "red" in specs else reflective[0]
    if grid is None:
        grid = native_grid(specs[ref_role]["path"], specs[ref_role]["crs"], specs[ref_role]["transform"])

    arrays, thermal = {}, None
    for role, s in specs.items():
        arr = read_scaled(s["path"], grid, band=s["band"], kind="reflectance", scale=float(s["scale"]),
                          offset=float(s["offset"]), src_nodata=s["nodata"], chunk=chunk, name=role,
                          crs=s["crs"], transform=s["transform"],
                          attrs={"units": "K" if role == THERMAL_ROLE else "1", "band_file": str(s["path"]),
                                 "file_band": s["band"]})
        if role == THERMAL_ROLE:
            thermal = arr
        else:
            arrays[role] = arr
    ds = make_dataset(grid, arrays, {"sensor": sensor})

    valid = arrays[ref_role].data == arrays[ref_role].data
    mask_layers, mask_meta = {}, {"qa_available": False, "mask_file": str(specs[ref_role]["path"]),
                                  "mask_band": None}
    clear = valid
    if mask is not None:
        if not isinstance(mask, dict) or "path" not in mask:
            raise InputError("mask must be a mapping with 'path'", field="mask",
                             expected="{path: ..., clear_values: [...]} or {path: ..., masked_values: [...]}")
        has_clear, has_masked = mask.get("clear_values") is not None, mask.get("masked_values") is not None
        if has_clear == has_masked:
            raise InputError("mask needs exactly one of clear_values / masked_values", path=mask["path"],
                             field="mask", expected="clear_values: [...] or masked_values: [...]")
        mband = int(mask.get("band") or 1)
        m = read_on_grid(mask["path"], grid, band=mband, kind="mask", dtype="float32",
                         src_nodata=mask.get("nodata"), dst_nodata=float("nan"), chunk=chunk, name="mask").data
        valid = valid & (m == m)
        if has_clear:
            clear = valid & _qa.isin_values(m, mask["clear_values"])
            mask_layers["masked_value"] = wrap_like(grid, valid & ~clear, name="masked_value")
        else:
            for v in mask["masked_values"]:
                name = f"value_{float(v):g}"
                mask_layers[name] = wrap_like(grid, valid & (m == float(v)), name=name)
            clear = valid & ~_qa.isin_values(m, mask["masked_values"])
        mask_meta = {"qa_available": True, "mask_file": str(mask["path"]), "mask_band": f"band {mband}",
                     "mask_rule": {k: list(mask[k]) for k in ("clear_values", "masked_values")
                                   if mask.get(k) is not None}}

    metadata = {
        "kind": "geotiff",
        "product_id": f"{sensor}_{day.isoformat()}",
        "band_files": {r: str(s["path"]) for r, s in specs.items()},
        "band_factors": {r: {"scale": float(s["scale"]), "offset": float(s["offset"]), "nodata": s["nodata"],
                             "band": s["band"], **({"declared_crs": str(s["crs"])} if s["crs"] else {}),
                             **({"declared_transform": list(s["transform"])} if s["transform"] else {})}
                         for r, s in specs.items()},
        "reference_band": ref_role,
        "resampling": {"reflectance": "average", "mask": "nearest"},
        **mask_meta,
    }
    path = str(Path(specs[ref_role]["path"]).parent)
    scene = Scene(sensor=sensor, date=day, path=path, bands=ds, valid=wrap_like(grid, valid, name="valid"),
                  clear=wrap_like(grid, clear, name="clear"), water=None, thermal_k=thermal, grid=grid,
                  metadata=metadata, mask_layers=mask_layers)
    # reflectance outside its physical range is not an observation (indices/reflectance.yaml)
    return screen_reflectance(scene)
