"""Benchmark: ecoassess zonal statistics vs exactextract, side by side in the same run.

Generates (once, in --workdir) a SIZE x SIZE float32 raster (tiled 512, DEFLATE, ~2 % NaN, 10 m cells, EPSG:3035),
30 county-like polygons (Voronoi cells, vertices every 200 m) and 3000 small polygons (discs of 50-400 m), then
runs each case in a fresh subprocess (so peak RSS is per case) and prints one table:
case, seconds, Mpx/s, peak RSS, ratio to exactextract (anchor seconds / case seconds; > 1 = faster).
The ten-layer cases read the raster under ten names (symlinks: ten reads and decodes, as for ten bands) and
also compare one ecoassess call with ten separate exactextract calls (the target in ../shared/PERFORMANCE.md).

    python scripts/bench_zonal.py                 # default 6000 x 6000 (36 Mpx), a few minutes
    python scripts/bench_zonal.py --size 10980    # a full Sentinel-2 tile (120.6 Mpx)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RES_M = 10.0
X0, Y0 = 4_000_000.0, 2_500_000.0
CRS = "EPSG:3035"
N_LAYERS = 10


def make_inputs(workdir: Path, size: int) -> tuple[Path, Path, Path]:
    import geopandas as gpd
    import rasterio
    import shapely
    from affine import Affine

    workdir.mkdir(parents=True, exist_ok=True)
    tif = workdir / f"values_{size}.tif"
    counties = workdir / f"counties_{size}.gpkg"
    small = workdir / f"small_{size}.gpkg"
    ext = size * RES_M
    if not tif.exists():
        rng = np.random.default_rng(0)
        profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32", crs=CRS,
                       transform=Affine(RES_M, 0, X0, 0, -RES_M, Y0 + ext), tiled=True, blockxsize=512,
                       blockysize=512, compress="deflate", nodata=float("nan"))
        tmp = tif.with_suffix(".tmp.tif")
        with rasterio.open(tmp, "w", **profile) as dst:
            for r in range(0, size, 512):
                h = min(512, size - r)
                yy = (np.arange(r, r + h) / size)[:, None]
                xx = (np.arange(size) / size)[None, :]
                block = (0.3 + 0.4 * xx * yy + rng.normal(0, 0.1, (h, size))).astype("float32")
                block[rng.random(block.shape) < 0.02] = np.nan
                dst.write(block, 1, window=rasterio.windows.Window(0, r, size, h))
        os.replace(tmp, tif)
    frame = shapely.box(X0, Y0, X0 + ext, Y0 + ext)
    if not counties.exists():
        rng = np.random.default_rng(1)
        pts = shapely.multipoints(rng.uniform([X0, Y0], [X0 + ext, Y0 + ext], (30, 2)))
        cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame))
        cells = shapely.segmentize(shapely.intersection(cells, frame.buffer(-0.37 * RES_M)), 200.0)
        gpd.GeoDataFrame({"code": [f"C{i:02d}" for i in range(len(cells))]}, geometry=cells, crs=CRS).to_file(counties)
    if not small.exists():
        rng = np.random.default_rng(2)
        c = rng.uniform([X0 + 500, Y0 + 500], [X0 + ext - 500, Y0 + ext - 500], (3000, 2))
        discs = shapely.buffer(shapely.points(c), rng.uniform(50, 400, 3000), quad_segs=8)
        gpd.GeoDataFrame({"code": [f"S{i:04d}" for i in range(3000)]}, geometry=discs, crs=CRS).to_file(small)
    for i in range(1, N_LAYERS):  # layers 1..9: the same bytes under other names, so that nothing reads them once
        link = _layer_path(tif, i)
        if not link.exists():
            link.symlink_to(tif.name)
    return tif, counties, small


def _layer_path(tif: Path, i: int) -> Path:
    return tif if i == 0 else tif.with_name(f"{tif.stem}_layer{i}{tif.suffix}")


def run_case(case: str, tif: Path, zones_path: Path) -> dict:
    import geopandas as gpd

    import logging
    import warnings

    import dask  # noqa: F401 - imports outside the timed part
    import rasterio
    from exactextract import exact_extract
    from exactextract.raster import RasterioRasterSource

    from ecoassess.grid import AnalysisGrid, read_on_grid
    from ecoassess.zones import ZoneSet, _windows, zonal_stats

    gdf = gpd.read_file(zones_path)
    t0 = time.perf_counter()
    if case.startswith("exactextract"):
        rasters = [RasterioRasterSource(str(_layer_path(tif, i)), name=f"l{i}")
                   for i in range(N_LAYERS if "10" in case else 1)]
        ops = ["mean", "stdev", "min", "max", "count"]
        if "separate" in case:
            for r in rasters:
                exact_extract(r, gdf, ops, include_cols=["code"], output="pandas")
        else:
            exact_extract(rasters if len(rasters) > 1 else rasters[0], gdf, ops, include_cols=["code"], output="pandas")
    else:
        logging.getLogger("ecoassess").setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
        with rasterio.open(tif) as src:
            grid = AnalysisGrid(src.crs, src.transform, src.width, src.height)

        def layer(i):  # distinct paths: dask would otherwise merge ten reads of one file into one
            return read_on_grid(_layer_path(tif, i), grid, chunk=1024, name=f"l{i}")

        zs = ZoneSet.from_gdf(gdf, grid, id_field="code")
        if case == "ecoassess":
            zonal_stats(zs, {"v": layer(0)})
        elif case == "ecoassess 10 layers, one call":
            zonal_stats(zs, {f"l{i}": layer(i) for i in range(N_LAYERS)})
        elif case == "ecoassess 10 separate calls, no reuse":
            for i in range(N_LAYERS):
                z = ZoneSet.from_gdf(gdf, grid, id_field="code")
                zonal_stats(z, {f"l{i}": layer(i)})
        elif case == "ecoassess 10 separate calls, reuse":
            for i in range(N_LAYERS):
                zonal_stats(zs, {f"l{i}": layer(i)})
        elif case == "ecoassess coverage only":
            chunks = layer(0).data.chunks
            dask.compute([dask.delayed(zs.coverage)(w) for _, _, w in _windows(chunks)])
        else:
            raise ValueError(case)
    secs = time.perf_counter() - t0
    return {"seconds": secs, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


CASES = [
    ("30 counties", "counties", [("exactextract", None), ("ecoassess", "exactextract"),
                                 ("ecoassess coverage only", "")]),
    ("3000 small polygons", "small", [("exactextract", None), ("ecoassess", "exactextract")]),
    ("30 counties x 10 layers", "counties", [("exactextract 10 layers, one call", None),
                                            ("exactextract 10 separate calls", None),
                                            ("ecoassess 10 separate calls, no reuse", "exactextract 10 layers, one call"),
                                            ("ecoassess 10 separate calls, reuse", "exactextract 10 layers, one call"),
                                            ("ecoassess 10 layers, one call", "exactextract 10 layers, one call")]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=6000, help="raster width = height in cells (default 6000)")
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "ecoassess-bench-zonal")
    ap.add_argument("--skip-10", action="store_true", help="skip the ten-layer cases")
    ap.add_argument("--_case", help=argparse.SUPPRESS)
    ap.add_argument("--_zones", help=argparse.SUPPRESS)
    args = ap.parse_args()
    tif, counties, small = make_inputs(args.workdir, args.size)
    if args._case:
        print(json.dumps(run_case(args._case, tif, Path(args._zones))))
        return
    mpx = args.size * args.size / 1e6
    print(f"raster {args.size} x {args.size} = {mpx:.1f} Mpx float32, tiled 512, DEFLATE; {os.cpu_count()} CPUs")
    print(f"{'set':<24} {'case':<40} {'seconds':>8} {'Mpx/s':>7} {'peak GiB':>9} {'× anchor':>9}")
    for label, zkey, cases in CASES:
        if args.skip_10 and "10" in label:
            continue
        zpath = counties if zkey == "counties" else small
        times = {}
        for case, anchor in cases:
            out = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--workdir", str(args.workdir),
                                  "--_case", case, "--_zones", str(zpath)], capture_output=True, text=True,
                                 env={**os.environ, "GDAL_NUM_THREADS": "ALL_CPUS"})
            if out.returncode:
                print(out.stderr[-2000:])
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            times[case] = r["seconds"]
            n_px = mpx * (N_LAYERS if "10" in case else 1)
            ratio = f"{times[anchor] / r['seconds']:.2f}" if anchor in times else "anchor" if anchor is None else "-"
            print(f"{label:<24} {case:<40} {r['seconds']:8.2f} {n_px / r['seconds']:7.1f} "
                  f"{r['peak_rss_gib']:9.2f} {ratio:>9}", flush=True)
        if "ecoassess 10 layers, one call" in times and "ecoassess 10 separate calls, no reuse" in times:
            print(f"{'':<24} ten layers in one call vs ten separate calls (no reuse): "
                  f"{times['ecoassess 10 separate calls, no reuse'] / times['ecoassess 10 layers, one call']:.2f}x")
        if "ecoassess 10 layers, one call" in times and "exactextract 10 separate calls" in times:
            print(f"{'':<24} ten layers in one call vs ten separate exactextract calls (target >= 3x): "
                  f"{times['exactextract 10 separate calls'] / times['ecoassess 10 layers, one call']:.2f}x")


if __name__ == "__main__":
    main()
