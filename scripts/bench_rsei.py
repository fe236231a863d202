"""Benchmark: RSEI end to end (read → indices → PCA → RSEI COG) against just reading and decoding its inputs.

Usage: python scripts/bench_rsei.py [--tiles 1 2 4 8] [--workdir DIR] [--sample DIR] [--compression zstd]

The bundled sample's Landsat 9 C2 L2 product (SR_B1-B7, ST_B10, QA_PIXEL, MTL) is tiled k × k times into larger
products (tiled 512, DEFLATE, like USGS COGs). For each size two fresh subprocesses run:

* ``decode``: plain rasterio reads of the eight input files, whole bands, two threads and GDAL's thread pool
  (the floor: I/O + decompression, nothing else);
* ``read``: the same bands through ecoassess's reader (windowed reads per chunk, DN → reflectance / kelvin with
  fill as NaN, QA bits → clear mask), computed and discarded;
* ``rsei``: the whole RSEI — indicators from the catalog, MNDWI water mask, exact streaming quantiles and
  covariance, PCA, RSEI and grade written as COGs;
* ``encode``: GDAL's own COG driver writing the two output layers (read back into memory first, not timed) with
  the same compression and overviews (the floor for the output side: compression and overviews, nothing else).

It prints Mpx/s (pixels of the product grid), peak RSS, CPU seconds (all threads), and the ratios of RSEI to decode,
to decode + encode (the I/O floor run one after the other: the inputs must be decoded and the outputs encoded), to
the *CPU floor* (decode CPU + encode CPU spread over every core: the best any implementation could do here even if
it computed nothing and overlapped perfectly; ``floor/decode`` shows how far above the decode time that floor already
lies) and to reader. Figures are printed, never
asserted; a quiet machine gives steadier numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

PEAK_RSS = r"""
import resource


def peak_rss_mib():  # VmHWM: this process's own high-water mark (ru_maxrss survives exec from a big parent)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

READ = PEAK_RSS + r"""
import json, sys, time
import dask
from ecoassess.sources import open_landsat_c2l2
t0 = time.perf_counter()
scene = open_landsat_c2l2(sys.argv[1])
layers = [scene.bands[r].data for r in ("blue", "green", "red", "nir", "swir1", "swir2")]
layers += [scene.thermal_k.data, scene.clear.data]
dask.compute(*[x.sum() for x in layers])
print(json.dumps({"seconds": time.perf_counter() - t0, "cells": scene.grid.n_cells,
                  "peak_rss_mib": peak_rss_mib()}))
"""

DECODE = PEAK_RSS + r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import rasterio
from ecoassess.sources import open_landsat_c2l2
scene = open_landsat_c2l2(sys.argv[1])
names = ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "ST_B10", "QA_PIXEL")
files = [p for p in sorted(Path(sys.argv[1]).glob("*.TIF")) if any(p.stem.endswith(n) for n in names)]


def decode(path):
    with rasterio.open(path) as src:
        return int(src.read(1).sum(dtype="int64"))


t0, c0 = time.perf_counter(), time.process_time()
with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), ThreadPoolExecutor(2) as pool:
    list(pool.map(decode, files))
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "cells": scene.grid.n_cells,
                  "files": len(files), "peak_rss_mib": peak_rss_mib()}))
"""

RSEI = PEAK_RSS + r"""
import json, sys, time
import warnings
warnings.simplefilter("ignore")
from pathlib import Path
from ecoassess.assess.rsei import RseiSettings, compute_rsei, rsei_indicators, water_mask
from ecoassess.cog import default_compression, write_cogs
from ecoassess.sources import open_landsat_c2l2
t0, c0 = time.perf_counter(), time.process_time()
scene = open_landsat_c2l2(sys.argv[1])
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
settings = RseiSettings.from_spec()
ind = rsei_indicators(scene.bands, scene.thermal_k, sensor=scene.sensor)
water = water_mask(scene.bands, scene.clear, settings)
result = compute_rsei(ind, scene.clear & ~water, settings=settings)
with default_compression(sys.argv[3]):
    write_cogs([(result.rsei, out / "rsei.tif", {"nodata": float("nan"), "dtype": "float32"}),
                (result.grade, out / "rsei_grade.tif", {"nodata": 0, "dtype": "uint8"})])
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "cells": scene.grid.n_cells,
                  "pc1_share": result.pc1_share, "peak_rss_mib": peak_rss_mib()}))
"""


ENCODE = r"""
import json, sys, time
from pathlib import Path
import rasterio, rasterio.shutil
from rasterio.io import MemoryFile
out, deflate = Path(sys.argv[1]), sys.argv[2] == "deflate"  # the levels ecoassess uses (cog.py)
seconds = cpu_s = 0.0
for name, options in (("rsei.tif", dict(compress=sys.argv[2], predictor=3, level=1, overview_resampling="average")),
                      ("rsei_grade.tif", dict(compress=sys.argv[2], level=3 if deflate else 1,
                                              overview_resampling="nearest"))):
    with rasterio.open(out / name) as src:
        data, profile = src.read(1), src.profile
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), MemoryFile() as mem:
        with mem.open(driver="GTiff", width=profile["width"], height=profile["height"], count=1, dtype=data.dtype,
                      crs=profile["crs"], transform=profile["transform"], nodata=profile["nodata"]) as ds:
            ds.write(data, 1)
            t0, c0 = time.perf_counter(), time.process_time()
            rasterio.shutil.copy(ds, out / f"gdal_{name}", driver="COG", blocksize=512, **options)
            seconds += time.perf_counter() - t0
            cpu_s += time.process_time() - c0
print(json.dumps({"seconds": seconds, "cpu_s": cpu_s}))
"""


def tiled_product(src: Path, dst: Path, k: int) -> Path:
    """Copy a Landsat C2 L2 product folder with every band tiled k x k times (same georeference origin)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.suffix.upper() != ".TIF":
            shutil.copy(f, dst / f.name)
            continue
        with rasterio.open(f) as s:
            profile = s.profile
            data = s.read(1)
        profile.update(width=s.width * k, height=s.height * k, tiled=True, blockxsize=512, blockysize=512,
                       compress="deflate", driver="GTiff")
        with rasterio.open(dst / f.name, "w", **profile) as d:
            for i in range(k):  # one tile row at a time: bounded memory while writing
                row = np.tile(data, (1, k))
                d.write(row, 1, window=rasterio.windows.Window(0, i * s.height, s.width * k, s.height))
    return dst


def child(code: str, *args) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit("benchmark child failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--sample", type=Path, default=None, help="an existing sample folder (else one is written)")
    parser.add_argument("--compression", choices=["deflate", "zstd"], default="deflate",
                        help="of the output COGs (RSEI and the GDAL encode floor alike)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ecoassess-bench-rsei-"))
    work.mkdir(parents=True, exist_ok=True)
    sample = args.sample
    if sample is None:
        from ecoassess.sample import write_sample

        sample = work / "sample"
        write_sample(sample, seed=0)
    product = sorted((sample / "imagery" / "2024").glob("LC09_*"))[0]
    rows = []
    try:
        for k in args.tiles:
            folder = tiled_product(product, work / f"landsat-x{k}" / product.name, k)
            decode = child(DECODE, folder)
            read = child(READ, folder)
            t0 = time.perf_counter()
            rsei = child(RSEI, folder, work / f"out-x{k}", args.compression)
            encode = child(ENCODE, work / f"out-x{k}", args.compression)
            rows.append((k, decode, read, rsei, encode))
            print(f"tiles {k}x{k}: read {read['seconds']:.1f} s, rsei {rsei['seconds']:.1f} s "
                  f"(wall {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
            shutil.rmtree(work / f"landsat-x{k}", ignore_errors=True)
            shutil.rmtree(work / f"out-x{k}", ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    cores = len(os.sched_getaffinity(0))
    print()
    print(f"output compression: {args.compression}; {cores} cores. CPU floor = (decode CPU + encode CPU) / cores: the "
          "wall time below which no implementation can go on this machine, computing nothing at all")
    print("| tiles | Mpx (grid) | decode s | decode CPU s | encode s | encode CPU s | CPU floor s | floor/decode "
          "| reader s | reader peak MiB | RSEI s | RSEI CPU s | RSEI Mpx/s | RSEI peak MiB | RSEI/decode "
          "| RSEI/(decode+encode) | RSEI/CPU floor | RSEI/reader |")
    print("|---:" * 18 + "|")
    for k, decode, read, rsei, encode in rows:
        mpx = read["cells"] / 1e6
        io_floor = decode["seconds"] + encode["seconds"]
        cpu_floor = max(decode["seconds"], (decode["cpu_s"] + encode["cpu_s"]) / cores)
        print(f"| {k}x{k} | {mpx:.1f} | {decode['seconds']:.2f} | {decode['cpu_s']:.2f} | {encode['seconds']:.2f} | "
              f"{encode['cpu_s']:.2f} | {cpu_floor:.2f} | {cpu_floor / decode['seconds']:.2f} | {read['seconds']:.2f} | "
              f"{read['peak_rss_mib']:.0f} | {rsei['seconds']:.2f} | {rsei['cpu_s']:.2f} | {mpx / rsei['seconds']:.1f} | "
              f"{rsei['peak_rss_mib']:.0f} | {rsei['seconds'] / decode['seconds']:.2f} | {rsei['seconds'] / io_floor:.2f} | "
              f"{rsei['seconds'] / cpu_floor:.2f} | {rsei['seconds'] / read['seconds']:.2f} |")

if __name__ == "__main__":
    main()
