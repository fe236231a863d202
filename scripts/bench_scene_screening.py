"""Benchmark: the demo run and its vegetation stage, for one or more code trees; prints medians of repeats.

Usage: python scripts/bench_scene_screening.py [--code DIR ...] [--repeats 3] [--workdir DIR] [--stage NAME ...]

The sample area of ``ecoassess demo`` is written once (not timed); then, for each code tree (a checkout whose
``ecoassess`` package goes first on PYTHONPATH; default: this one) and each repeat, ``ecoassess.run`` runs in a
fresh subprocess and its manifest timings are read: the run's total and the ``vegetation <year>`` stages.
Repeats are interleaved across the trees, so a noisy shared machine hurts them alike. Figures are printed, never
asserted. ``--stage vegetation`` runs only that stage (and what it needs), for more repeats in the same time.
Written for the reflectance-range screening (issue 18 item 5), whose counts read every band a second time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
import ecoassess
t0 = time.perf_counter()
stages = json.loads(sys.argv[3]) or None
result = ecoassess.run(sys.argv[1], sys.argv[2], quiet=True, **({"stages": stages} if stages else {}))
print(json.dumps({"wall_s": time.perf_counter() - t0, "timings": result.manifest.get("timings", {}),
                  "module": ecoassess.__file__}))
"""


def run_once(code: Path, config: Path, out: Path, stages=None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    shutil.rmtree(out, ignore_errors=True)
    # cwd: `python -c` puts the working directory first on sys.path, before PYTHONPATH; started inside a checkout,
    # every tree would run that checkout's code
    proc = subprocess.run([sys.executable, "-c", CHILD, str(config), str(out), json.dumps(stages or [])],
                          capture_output=True, text=True, env=env, cwd=out.parent)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"run with {code} failed")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    if not Path(child["module"]).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"the run meant for {code} imported {child['module']}")
    stages = child["timings"].get("stages_s", {})
    vegetation = {k: v for k, v in stages.items() if k.split()[0] == "vegetation" and k.split()[-1].isdigit()}
    return {"total_s": child["timings"].get("total_s", child["wall_s"]), "vegetation": vegetation,
            "scene_quality_s": stages.get("scene quality", 0.0), "module": child["module"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, nargs="+", default=[Path(__file__).resolve().parents[1]],
                        help="code trees to compare (each put first on PYTHONPATH)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the sample and results here")
    parser.add_argument("--stage", nargs="+", default=None, help="run only these stages (e.g. vegetation)")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="ecoassess-bench-screening-"))
    work.mkdir(parents=True, exist_ok=True)
    sample = work / "sample"
    try:
        if not (sample / "assessment.yaml").exists():
            subprocess.run([sys.executable, "-m", "ecoassess", "-q", "sample", str(sample)], check=True,
                           env={**os.environ, "PYTHONPATH": str(args.code[0])})
        results: dict[Path, list[dict]] = {code: [] for code in args.code}
        for i in range(args.repeats):
            for j, code in enumerate(args.code):
                r = run_once(code, sample / "assessment.yaml", work / f"out-{j}", args.stage)
                results[code].append(r)
                veg = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(r["vegetation"].items()))
                print(f"repeat {i + 1}, {code}: run {r['total_s']:.1f} s ({veg}; scene quality "
                      f"{r['scene_quality_s']:.1f} s)", file=sys.stderr)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print()
    what = f"stage(s) {', '.join(args.stage)} of the demo sample" if args.stage else "the demo sample"
    print(f"medians of {args.repeats} run(s) of {what} (seconds, from the manifest's timings)")
    print("| code | run s | vegetation s per year (median) | scene quality s | runs (total s) |")
    print("|---|---:|---:|---:|---|")
    for code, runs in results.items():
        per_year = [v for r in runs for v in r["vegetation"].values()]
        years = sorted({k for r in runs for k in r["vegetation"]})
        by_year = ", ".join(f"{y.split()[-1]}: {statistics.median(r['vegetation'][y] for r in runs):.1f}"
                            for y in years)
        totals = ", ".join(f"{r['total_s']:.1f}" for r in runs)
        print(f"| {code} | {statistics.median(r['total_s'] for r in runs):.1f} | "
              f"{statistics.median(per_year):.1f} ({by_year}) | "
              f"{statistics.median(r['scene_quality_s'] for r in runs):.1f} | {totals} |")


if __name__ == "__main__":
    main()
