"""The sample area's master grid: UTM 48N (EPSG:32648), 30 m cells, centred near 104.6°E 30.1°N.

Every generator works on this grid (or on its 10 m / 20 m refinements for the Sentinel-2 bands). ``scale``
multiplies the pixel count by enlarging the area at the same 30 m resolution: scale=4 doubles the side length.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import Transformer

UTM_EPSG = 32648
GEO_EPSG = 4490
CENTRE_LONLAT = (104.6, 30.1)
BASE_CELLS = 780          # cells per side at scale 1 (23.4 km at 30 m)
RES_M = 30.0


@dataclass(frozen=True)
class World:
    """Grid geometry and the per-component random generators of one sample build."""

    seed: int
    scale: int
    n: int                 # cells per side at 30 m
    x0: float              # west edge, metres (UTM 48N)
    y1: float              # north edge, metres

    @classmethod
    def create(cls, seed: int, scale: int) -> "World":
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        n = int(round(BASE_CELLS * math.sqrt(scale) / 2.0)) * 2
        to_utm = Transformer.from_crs(GEO_EPSG, UTM_EPSG, always_xy=True)
        cx, cy = to_utm.transform(*CENTRE_LONLAT)
        half = n * RES_M / 2.0
        x0 = math.floor((cx - half) / 60.0) * 60.0
        y1 = math.floor((cy + half) / 60.0) * 60.0
        return cls(int(seed), int(scale), n, x0, y1)

    def rng(self, component: str) -> np.random.Generator:
        """An independent generator per component, so one part never shifts another's random stream."""
        return np.random.default_rng([self.seed, zlib.crc32(component.encode("utf-8"))])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def transform(self, res_m: float = RES_M) -> Affine:
        return Affine(res_m, 0.0, self.x0, 0.0, -res_m, self.y1)

    def shape_at(self, res_m: float) -> tuple[int, int]:
        k = int(round(self.n * RES_M / res_m))
        return (k, k)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        side = self.n * RES_M
        return (self.x0, self.y1 - side, self.x0 + side, self.y1)

    @property
    def cell_area_m2(self) -> float:
        return RES_M * RES_M

    def xy(self, rows, cols, res_m: float = RES_M):
        """Cell-centre coordinates (UTM metres) of row/col indices."""
        rows = np.asarray(rows, dtype="float64")
        cols = np.asarray(cols, dtype="float64")
        return self.x0 + (cols + 0.5) * res_m, self.y1 - (rows + 0.5) * res_m

    def rowcol(self, x, y, res_m: float = RES_M):
        x = np.asarray(x, dtype="float64")
        y = np.asarray(y, dtype="float64")
        return np.floor((self.y1 - y) / res_m).astype(int), np.floor((x - self.x0) / res_m).astype(int)
