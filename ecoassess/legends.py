"""Land-cover legends from ``layers/<legend>.yaml``: class codes, names, colours, water flags, HJ 192 classes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import dask.array as da
import numpy as np
import xarray as xr

from ecoassess.catalog import data_dir, load_yaml


@dataclass(frozen=True)
class Legend:
    name: str
    long_name: str
    version: str
    nodata: int | None
    classes: dict[int, dict]

    @property
    def water_codes(self) -> list[int]:
        return sorted(code for code, c in self.classes.items() if c.get("water"))

    def label(self, code: int, lang: str = "zh") -> str:
        return self.classes[code][lang]

    def water_mask(self, land_cover: xr.DataArray) -> xr.DataArray:
        """True where the land-cover class is open water (lazy)."""
        data = land_cover.data
        lib = da if isinstance(data, da.Array) else np
        mask = lib.isin(data, np.asarray(self.water_codes))
        out = land_cover.copy(data=mask)
        out.name = "water"
        out.attrs = {"long_name": "open water"}  # not the land cover's nodata: 0 (dry) is a value of this mask
        return out

    def unknown_codes(self, codes) -> list[int]:
        """Codes present in a raster that the legend does not define (excluding nodata)."""
        return sorted(int(c) for c in codes if int(c) not in self.classes and c != self.nodata)


@lru_cache(maxsize=None)
def available_legends() -> list[str]:
    """Land-cover legends defined in ``layers/`` (one YAML file each, with ``classes``; ``layers/`` also holds other
    tables, e.g. the red-line activity types, which are not legends)."""
    return sorted(p.stem for p in data_dir("layers").glob("*.yaml") if "classes" in (load_yaml(p) or {}))


def load_legend(name: str) -> Legend:
    path = data_dir("layers") / f"{name}.yaml"
    if not path.is_file() or name not in available_legends():
        available = available_legends()
        raise KeyError(f"unknown land-cover legend '{name}' (available: {', '.join(available)})")
    raw = load_yaml(path)
    classes = {int(k): v for k, v in raw["classes"].items()}
    return Legend(raw["name"], raw.get("long_name", raw["name"]), str(raw.get("version", "")), raw.get("nodata"), classes)
