"""Benchmark: the annual assessment on the sample area at growing scales; prints pixels/s and peak RSS.

Usage: python scripts/bench_pipeline.py [--scales 1 4 8] [--workdir DIR] [--keep] [--reuse]

For each scale the sample area is generated (not timed), then ``ecoassess.run`` runs in a fresh subprocess
(timed) and reports its own peak resident memory. If memory is bounded, peak RSS stays roughly flat while the
pixel count grows; time should grow linearly with pixels. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
def peak_rss_mib():  # VmHWM: this process's own high-water mark (ru_maxrss survives exec from a big parent)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, yaml
from pathlib import Path
import ecoassess
cfg_path, out, resolution = sys.argv[1], sys.argv[2], float(sys.argv[3])
cfg = ecoassess.load_config(cfg_path)
cfg.grid.resolution_m = resolution
t0 = time.perf_counter()
result = ecoassess.run(cfg, out, quiet=True)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib(),
                  "grid_cells": result.grid.n_cells, "timings": result.manifest.get("timings", {})}))
"""


def input_pixels(config_path: Path) -> int:
    """Pixels of every band file of every scene the config names (what the run reads and decodes)."""
    import rasterio

    import ecoassess

    cfg = ecoassess.load_config(config_path)
    total = 0
    for scenes in cfg.imagery.values():
        for spec in scenes:
            folder = Path(spec.path) if spec.path else None
            files = sorted(folder.glob("*.tif")) + sorted(folder.glob("*.TIF")) if folder else []
            for f in files:
                with rasterio.open(f) as src:
                    total += src.width * src.height * src.count
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep generated samples and results")
    parser.add_argument("--reuse", action="store_true", help="reuse samples already in --workdir")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="ecoassess-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for scale in args.scales:
            sample_dir = work / f"sample-x{scale}"
            t0 = time.perf_counter()
            if not (args.reuse and (sample_dir / "assessment.yaml").exists()):
                subprocess.run([sys.executable, "-m", "ecoassess", "-q", "sample", str(sample_dir), "--scale",
                                str(scale)], check=True)
            config_path = sample_dir / "assessment.yaml"
            gen_s = time.perf_counter() - t0
            import ecoassess

            # the sample's --scale enlarges the area at the same resolution, so the grid grows with the scale
            resolution = ecoassess.load_config(config_path).grid.resolution_m
            n_in = input_pixels(config_path)
            proc = subprocess.run([sys.executable, "-c", CHILD, str(config_path), str(work / f"out-x{scale}"),
                                   str(resolution)], capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"run at scale {scale} failed")
            child = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((scale, gen_s, n_in, child["grid_cells"], resolution, child["seconds"], child["peak_rss_mib"]))
            print(f"scale {scale}: done in {child['seconds']:.1f} s", file=sys.stderr)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print("| scale | input Mpx read | grid Mcells (res m) | run s | input Mpx/s | grid Mcells/s | peak RSS MiB | sample gen s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for scale, gen_s, n_in, cells, res, secs, rss in rows:
        print(f"| {scale} | {n_in / 1e6:.1f} | {cells / 1e6:.2f} ({res:.1f}) | {secs:.1f} | {n_in / 1e6 / secs:.1f} | "
              f"{cells / 1e6 / secs:.2f} | {rss:.0f} | {gen_s:.1f} |")


if __name__ == "__main__":
    main()
