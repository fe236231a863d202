"""Benchmark: reading rasters onto the analysis grid, the per-chunk warp of before issue 16 against the fixed-block
warp (finding 4: results must not depend on ``grid.chunk``); prints seconds, never asserts.

Usage: python scripts/bench_warp.py [--sample DIR] [--scale 1] [--chunks 256 1024] [--repeat 3]

Reads three rasters of the bundled sample onto its grid, single-threaded (dask's synchronous scheduler, so the
figures are CPU cost, not parallelism): a Sentinel-2 10 m band (average, 3× downsampling), its 20 m scene
classification (nearest) and the 30 m DEM (bilinear), all in UTM onto the China Albers grid. For each variant it
prints the whole-grid time per chunk size, the time per chunk, and how many cells differ from the same variant read
in one chunk (0 means chunk-independent) and the largest difference from the exact variant:

- ``old``: rasterio WarpedVRT per chunk, GDAL's default 0.125 px approximation (the code before the fix);
- ``block64 exact``: the VRT of the whole grid, 64-cell warp blocks, exact transformation (what ecoassess uses);
- ``block64 err0.001``: the same with a 0.001 px approximation; ``block128/256 exact``: other block sizes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def old_read(path, grid, kind, chunk):
    """The reader before the fix (issue 16, finding 4): one rasterio WarpedVRT per chunk, default tolerance."""
    import dask.array as da
    import rasterio
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    from ecoassess.grid import RESAMPLING_BY_KIND

    class Band:
        ndim, dtype, shape = 2, np.dtype("float32"), grid.shape

        def __getitem__(self, key):
            rows, cols = key
            r0, r1, _ = rows.indices(grid.height)
            c0, c1, _ = cols.indices(grid.width)
            with rasterio.open(path, num_threads=1) as src, \
                    WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                              resampling=RESAMPLING_BY_KIND[kind], src_nodata=src.nodata, nodata=float("nan"),
                              num_threads=1) as vrt:
                return vrt.read(1, window=Window(c0, r0, c1 - c0, r1 - r0)).astype("float32")

    return da.from_array(Band(), chunks=(chunk, chunk), asarray=True, meta=np.empty((0, 0), "float32"),
                         name=f"old-{path}-{kind}-{chunk}")


def new_read(path, grid, kind, chunk, block, max_error):
    import ecoassess.grid as g

    g.WARP_BLOCK, g.WARP_MAX_ERROR_PX = block, max_error  # read when the VRT is built, i.e. in read_on_grid
    return g.read_on_grid(path, grid, kind=kind, dtype="float32", chunk=chunk).data


def timed(arr, repeat):
    import dask

    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        with dask.config.set(scheduler="synchronous"):
            values = arr.compute()
        best = min(best, time.perf_counter() - t0)
    return best, values


def differ(a, b) -> int:
    return int((~((a == b) | (np.isnan(a) & np.isnan(b)))).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=Path, default=None, help="a sample folder (generated when absent)")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--chunks", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    sample = args.sample or Path(tempfile.mkdtemp(prefix="ecoassess-bench-warp-")) / f"sample-x{args.scale}"
    if not (sample / "assessment.yaml").exists():
        subprocess.run([sys.executable, "-m", "ecoassess", "-q", "sample", str(sample), "--scale", str(args.scale)],
                       check=True)
    import ecoassess
    from ecoassess.grid import AnalysisGrid

    cfg = ecoassess.load_config(sample / "assessment.yaml")
    import geopandas as gpd

    grid = AnalysisGrid.from_study_area(gpd.read_file(cfg.study_area.path), cfg.grid.resolution_m)
    scene = sorted((sample / "imagery" / str(cfg.year)).glob("S2*"))[0]
    rasters = [(scene / "B04.tif", "reflectance"), (scene / "SCL.tif", "classes"),
               (sample / "terrain" / "dem.tif", "continuous")]
    variants = [("block64 exact", 64, 0.0), ("old", None, None), ("block64 err0.001", 64, 0.001),
                ("block128 exact", 128, 0.0), ("block256 exact", 256, 0.0)]
    print(f"grid {grid.width} x {grid.height} cells at {grid.resolution:g} m; best of {args.repeat}, one thread")
    for path, kind in rasters:
        print(f"\n{path.name} ({kind})")
        print(f"  {'variant':<18} " + " ".join(f"{'chunk ' + str(c) + ' s':>13} {'ms/chunk':>9}" for c in args.chunks)
              + f" {'cells differing':>16} {'max |d| vs exact':>17}")
        exact = None
        for label, block, max_error in variants:
            cells, line = {}, f"  {label:<18} "
            for chunk in args.chunks:
                arr = old_read(path, grid, kind, chunk) if block is None else \
                    new_read(path, grid, kind, chunk, block, max_error)
                seconds, cells[chunk] = timed(arr, args.repeat)
                line += f"{seconds:>13.3f} {1000 * seconds / arr.npartitions:>9.1f} "
            if label == "block64 exact":
                exact = cells[args.chunks[0]]
            first = cells[args.chunks[0]]
            n = max(differ(first, v) for v in cells.values())
            gap = "" if exact is None else f"{np.nanmax(np.abs(first - exact)):.3g}"
            print(line + f"{n:>16} {gap:>17}")


if __name__ == "__main__":
    main()
