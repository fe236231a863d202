#!/usr/bin/env python
"""Benchmark: NDVI from two uint16 band files → float32 raster, three ways, each in its own subprocess.

(a) ``ecoassess.cog.write_cog`` (lazy read on the grid → COG with overviews, DEFLATE)
(b) rioxarray + dask ``.rio.to_raster`` (tiled 512 DEFLATE GeoTIFF, no overviews)
(c) a hand-written rasterio strip loop, a small thread pool reading/computing strips while the main thread
    writes (tiled 512 DEFLATE GeoTIFF, no overviews)

and two layers that share their inputs, NDVI (float32) and NDVI classes derived from it (uint8), as COGs:
(d) ``ecoassess.cog.write_cogs`` (one pass: the shared graph computed once per chunk) vs
(e) two ``write_cog`` calls (NDVI computed twice)

Inputs are generated in a temporary folder (tiled 512, DEFLATE, a smooth field plus noise). Prints seconds,
Mpx/s, peak RSS (``getrusage`` maxrss of the child process) and ratios to (b) and (c).

    python scripts/bench_write.py                 # 10980 x 10980 (one Sentinel-2 tile at 10 m)
    python scripts/bench_write.py --size 4096 --methods cog,strips
    python scripts/bench_write.py --size 4096 --methods cogs_pair,cog_pair
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("cog", "cog_noovr", "rioxarray", "strips", "cogs_pair", "cog_pair")
LABELS = {"cog": "(a) ecoassess write_cog (COG + overviews)", "cog_noovr": "(a') write_cog, overviews=False", "rioxarray": "(b) rioxarray + dask .rio.to_raster",
          "strips": "(c) rasterio strip loop, thread pool", "cogs_pair": "(d) write_cogs, both layers in one pass",
          "cog_pair": "(e) two write_cog calls"}
PAIRS = ("cogs_pair", "cog_pair")  # two output files: NDVI (float32) and NDVI classes (uint8)
NDVI_CLASS_LIMITS = (0.2, 0.4, 0.6, 0.8)  # classes 1..5; 0 = nodata
CHUNK = 1024


# -- inputs -----------------------------------------------------------------------------------------------------

def generate_bands(folder: Path, size: int) -> tuple[Path, Path]:
    """Two uint16 reflectance-like bands (red, nir), tiled 512, DEFLATE, written strip by strip."""
    import rasterio
    from affine import Affine

    paths = (folder / "red.tif", folder / "nir.tif")
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16", crs="EPSG:32648",
                   transform=Affine(10, 0, 400000, 0, -10, 3400000), tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", nodata=0, bigtiff="IF_SAFER", num_threads="all_cpus")
    x = np.arange(size, dtype="float32")
    with rasterio.open(paths[0], "w", **profile) as red, rasterio.open(paths[1], "w", **profile) as nir:
        for r0 in range(0, size, 512):
            h = min(512, size - r0)
            y = np.arange(r0, r0 + h, dtype="float32")[:, None]
            field = np.sin(x / 700.0) * np.cos(y / 900.0) + 0.3 * np.sin((x + 2 * y) / 150.0)  # -1.3 .. 1.3
            rng = np.random.default_rng(r0)
            noise = rng.normal(0, 60, size=(h, size)).astype("float32")
            red.write((900 - 300 * field + noise).clip(1, 10000).astype("uint16"), 1,
                      window=((r0, r0 + h), (0, size)))
            nir.write((2600 + 900 * field + 1.5 * noise).clip(1, 10000).astype("uint16"), 1,
                      window=((r0, r0 + h), (0, size)))
    return paths


# -- the three writers ------------------------------------------------------------------------------------------

NDVI_TAGS = {"units": "1", "formula": "(N - R) / (N + R)"}


def lazy_ndvi(red: str, nir: str):
    """NDVI on the grid of ``red`` (lazy, dask-backed)."""
    from ecoassess.grid import AnalysisGrid, raster_info, read_on_grid

    info = raster_info(red)
    grid = AnalysisGrid(info["crs"], info["transform"], info["width"], info["height"])
    r = read_on_grid(red, grid, kind="reflectance", dtype="float32", chunk=CHUNK)
    n = read_on_grid(nir, grid, kind="reflectance", dtype="float32", chunk=CHUNK)
    return grid.wrap(((n - r) / (n + r)).data, name="NDVI")


def run_cog(red: str, nir: str, out: str, overviews: bool = True) -> None:
    from ecoassess.cog import write_cog

    write_cog(lazy_ndvi(red, nir), out, tags=NDVI_TAGS, overviews=overviews)


def classes_path(out: str) -> str:
    return str(Path(out).with_name(Path(out).stem + "_classes.tif"))


def run_cog_pair(red: str, nir: str, out: str, together: bool) -> None:
    """NDVI and its classes (uint8, derived from the same lazy NDVI): one write_cogs or two write_cog calls."""
    import dask.array as da

    from ecoassess.cog import write_cog, write_cogs
    from ecoassess.grid import grid_of

    ndvi = lazy_ndvi(red, nir)
    classes = da.where(da.isnan(ndvi.data), 0, da.digitize(ndvi.data, NDVI_CLASS_LIMITS) + 1).astype("uint8")
    layers = [(ndvi, out, {"tags": NDVI_TAGS}),
              (grid_of(ndvi).wrap(classes, name="NDVI class"), classes_path(out), {"nodata": 0, "dtype": "uint8"})]
    if together:
        write_cogs(layers)
    else:
        for arr, path, options in layers:
            write_cog(arr, path, **options)


def run_rioxarray(red: str, nir: str, out: str) -> None:
    import threading

    import rioxarray

    r = rioxarray.open_rasterio(red, chunks={"x": CHUNK, "y": CHUNK}, masked=True, lock=False).squeeze("band", drop=True)
    n = rioxarray.open_rasterio(nir, chunks={"x": CHUNK, "y": CHUNK}, masked=True, lock=False).squeeze("band", drop=True)
    ndvi = ((n - r) / (n + r)).astype("float32")
    ndvi = ndvi.rio.write_crs(r.rio.crs).rio.write_nodata(np.nan, encoded=False)
    ndvi.rio.to_raster(out, tiled=True, blockxsize=512, blockysize=512, compress="DEFLATE", dtype="float32",
                       lock=threading.Lock(), BIGTIFF="IF_SAFER")


def run_strips(red: str, nir: str, out: str) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    local = threading.local()

    def strip(r0: int, h: int, width: int) -> np.ndarray:
        if not hasattr(local, "src"):
            local.src = (rasterio.open(red), rasterio.open(nir))
        window = ((r0, r0 + h), (0, width))
        r = local.src[0].read(1, window=window).astype("float32")
        n = local.src[1].read(1, window=window).astype("float32")
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (n - r) / (n + r)
        v[(r == 0) | (n == 0)] = np.nan
        return v

    with rasterio.open(red) as src:
        profile = src.profile
    profile.update(dtype="float32", nodata=np.nan, compress="deflate", tiled=True, blockxsize=512,
                   blockysize=512, num_threads="all_cpus", bigtiff="IF_SAFER")
    width, height = profile["width"], profile["height"]
    workers = os.cpu_count() or 2
    with rasterio.open(out, "w", **profile) as dst, ThreadPoolExecutor(workers) as pool:
        starts = list(range(0, height, 512))
        futures = {}
        for i, r0 in enumerate(starts):
            futures[i] = pool.submit(strip, r0, min(512, height - r0), width)
            if i >= 2 * workers:  # bounded read-ahead
                j = i - 2 * workers
                dst.write(futures.pop(j).result(), 1, window=((starts[j], starts[j] + 512), (0, width)))
        for j in sorted(futures):
            v = futures.pop(j).result()
            dst.write(v, 1, window=((starts[j], starts[j] + v.shape[0]), (0, width)))


# -- driver -----------------------------------------------------------------------------------------------------

def child(method: str, red: str, nir: str, out: str) -> None:
    runner = {"cog": run_cog, "cog_noovr": lambda *a: run_cog(*a, overviews=False), "rioxarray": run_rioxarray,
              "strips": run_strips, "cogs_pair": lambda *a: run_cog_pair(*a, together=True),
              "cog_pair": lambda *a: run_cog_pair(*a, together=False)}[method]
    # imports are not timed (the same for any raster size); the peak RSS includes them
    import rasterio  # noqa: F401
    if method.startswith("cog"):
        import ecoassess.cog  # noqa: F401
        import ecoassess.grid  # noqa: F401
    elif method == "rioxarray":
        import rioxarray  # noqa: F401
    t0, u0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    runner(red, nir, out)
    seconds = time.perf_counter() - t0
    u1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime)
    peak = u1.ru_maxrss * 1024  # Linux: KiB
    outs = [out] + ([classes_path(out)] if method in PAIRS else [])
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_bytes": peak,
                      "out_bytes": sum(os.path.getsize(o) for o in outs)}))


def check_same(a: str, b: str) -> float:
    """Largest absolute difference between two outputs on a sample window (NaNs must coincide)."""
    import rasterio

    with rasterio.open(a) as fa, rasterio.open(b) as fb:
        w = ((0, min(2048, fa.height)), (0, min(2048, fa.width)))
        x, y = fa.read(1, window=w), fb.read(1, window=w)
    if not np.array_equal(np.isnan(x), np.isnan(y)):
        return float("inf")
    return float(np.nanmax(np.abs(x - y))) if np.isfinite(x).any() else 0.0


def print_table(methods: list[str], results: dict, mpx: float, refs: tuple[str, ...]) -> None:
    """One row a method: seconds, CPU seconds, Mpx/s, peak RSS, output MB and speed ratios to ``refs``."""
    head = f"{'method':46s} {'seconds':>8s} {'CPU s':>6s} {'Mpx/s':>7s} {'peak RSS GiB':>12s} {'out MB':>7s} " + \
        " ".join(f"{'vs ' + LABELS[ref][:3]:>7s}" for ref in refs)
    print(head)
    print("-" * len(head))
    for m in methods:
        r = results[m]
        vs = [f"{results[ref]['seconds'] / r['seconds']:.2f}x" if ref in results else "-" for ref in refs]
        print(f"{LABELS[m]:46s} {r['seconds']:8.1f} {r['cpu_seconds']:6.1f} {mpx / r['seconds']:7.1f} "
              f"{r['peak_rss_bytes'] / 2**30:12.2f} {r['out_bytes'] / 1e6:7.0f} " + " ".join(f"{v:>7s}" for v in vs))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=10980, help="raster width = height in pixels (default 10980)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS))
    p.add_argument("--workdir", help="folder for inputs and outputs (default: a temporary folder)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--red", help=argparse.SUPPRESS)
    p.add_argument("--nir", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.red, args.nir, args.out)
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        p.error(f"unknown methods {sorted(unknown)}")
    with tempfile.TemporaryDirectory(prefix="bench_write-", dir=args.workdir) as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        red, nir = generate_bands(tmp, args.size)
        print(f"inputs: 2 x {args.size} x {args.size} uint16 (tiled 512, DEFLATE) generated in "
              f"{time.perf_counter() - t0:.1f} s; GDAL_NUM_THREADS=ALL_CPUS; {os.cpu_count()} CPUs", flush=True)
        env = dict(os.environ, GDAL_NUM_THREADS="ALL_CPUS")
        repo = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
        results, outs = {}, {}
        for m in methods:
            out = tmp / f"ndvi_{m}.tif"
            proc = subprocess.run([sys.executable, __file__, "--child", m, "--red", str(red), "--nir", str(nir),
                                   "--out", str(out)], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                print(f"{m} failed:\n{proc.stderr}", file=sys.stderr)
                return 1
            results[m] = json.loads(proc.stdout.strip().splitlines()[-1])
            outs[m] = str(out)
            print(f"  {m}: {results[m]['seconds']:.1f} s", flush=True)
        mpx = args.size * args.size / 1e6
        singles = [m for m in methods if m not in PAIRS]
        if singles:
            print()
            print(f"NDVI file -> float32 file, {args.size} x {args.size} = {mpx:.1f} Mpx")
            print_table(singles, results, mpx, ("rioxarray", "strips"))
            print("(ratios > 1 mean faster than the reference. (a) also writes the overview pyramid (+1/3 of the "
                  "pixels);\n (a)/(a') use write_cog's defaults for float layers: floating-point predictor, DEFLATE "
                  "level 1;\n (b)/(c) GDAL's defaults: no predictor, DEFLATE level 6. CPU s = user + system time of "
                  "the process)")
        pairs = [m for m in methods if m in PAIRS]
        if pairs:
            print()
            print(f"NDVI file -> NDVI (float32) + NDVI classes (uint8) COGs, {args.size} x {args.size} = {mpx:.1f} Mpx"
                  f" per layer")
            print_table(pairs, results, mpx, ("cog_pair",))
            if len(pairs) == 2:
                same = all(Path(f(outs[pairs[0]])).read_bytes() == Path(f(outs[pairs[1]])).read_bytes()
                           for f in (str, classes_path))
                print(f"(ratio > 1: faster than two write_cog calls; Mpx/s per layer; (d) and (e) files byte-identical: "
                      f"{'yes' if same else 'NO'})")
        if "cog" in outs:
            for ref in ("rioxarray", "strips"):
                if ref in outs:
                    print(f"max |(a) - {ref}| on a 2048² sample: {check_same(outs['cog'], outs[ref]):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
