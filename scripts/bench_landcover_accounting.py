"""Benchmark of the land-cover accounting: class areas and one transition matrix over a zone set, at growing sizes.

    python scripts/bench_landcover_accounting.py [--sizes 1024 2048 4096] [--zones 16]

Prints per size the seconds of one year's class areas and of one year pair's transitions (one pass each over the
land cover, chunk by chunk) and the cells per second. Synthetic CAS codes (random patches), a grid of square zones.
"""

from __future__ import annotations

import argparse
import time

import dask
import geopandas as gpd
import numpy as np
import shapely
import xarray as xr

from ecoassess.grid import AnalysisGrid, china_albers_crs
from ecoassess.landcover.accounting import class_areas_km2, transition_table
from ecoassess.legends import load_legend
from ecoassess.zones import ZoneSet

RES = 30.0


def layer(grid: AnalysisGrid, seed: int, chunk: int = 1024) -> xr.DataArray:
    codes = np.array(sorted(load_legend("cas_lucc").classes), dtype="uint8")
    n = grid.height

    def block(block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        rng = np.random.default_rng(seed + r0 * 7919 + c0)
        patch = rng.choice(codes, size=((r1 - r0 + 15) // 16, (c1 - c0 + 15) // 16))
        return np.kron(patch, np.ones((16, 16), "uint8"))[: r1 - r0, : c1 - c0]

    data = dask.array.map_blocks(block, chunks=((chunk,) * (n // chunk), (chunk,) * (n // chunk)), dtype="uint8")
    ys = grid.transform.f - (np.arange(n) + 0.5) * RES
    xs = grid.transform.c + (np.arange(n) + 0.5) * RES
    arr = xr.DataArray(data, dims=("y", "x"), coords={"y": ys, "x": xs})
    arr = arr.rio.write_crs(grid.crs.to_wkt()).rio.write_transform(grid.transform)
    arr.attrs["nodata"] = 0
    return arr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--zones", type=int, default=16, help="zones per side: zones² square zones")
    args = parser.parse_args()
    cas = load_legend("cas_lucc")
    print(f"{'cells':>12} {'zones':>6} {'areas s':>8} {'Mcell/s':>8} {'transitions s':>14} {'Mcell/s':>8}")
    for n in args.sizes:
        x0, y1 = 300_000.0, 3_300_000.0 + n * RES
        grid = AnalysisGrid.from_bounds((x0, y1 - n * RES, x0 + n * RES, y1), RES, china_albers_crs())
        step = n * RES / args.zones
        boxes = [shapely.box(x0 + i * step + 7.0, y1 - (j + 1) * step + 7.0, x0 + (i + 1) * step + 7.0,
                             y1 - j * step + 7.0) for i in range(args.zones) for j in range(args.zones)]
        gdf = gpd.GeoDataFrame({"id": [f"z{k}" for k in range(len(boxes))]}, geometry=boxes, crs=grid.crs.to_wkt())
        zones = ZoneSet.from_gdf(gdf, grid, id_field="id")
        a, b = layer(grid, 1), layer(grid, 2)
        class_areas_km2(zones, a, cas)            # the zones' coverage once (as a run computes it once)
        t0 = time.perf_counter()
        class_areas_km2(zones, b, cas)
        t1 = time.perf_counter()
        transition_table(zones, a, b, cas, zone_set="bench", from_year=1, to_year=2)
        t2 = time.perf_counter()
        cells = n * n
        print(f"{cells:>12,} {len(boxes):>6} {t1 - t0:>8.2f} {cells / (t1 - t0) / 1e6:>8.1f} {t2 - t1:>14.2f} "
              f"{cells / (t2 - t1) / 1e6:>8.1f}")


if __name__ == "__main__":
    main()
