"""Patch-level accuracy of a run's red-line patches against the sample's planted changes (issue 19 part 7).

    python scripts/redline_accuracy.py RESULTS SAMPLE_DIR_OR_CONFIG [--seasonal truth/seasonal_only.gpkg]

RESULTS: a results folder of a run with the redline stage (its ``redline_patches`` layer and manifest).
SAMPLE_DIR_OR_CONFIG: the sample folder (its assessment.yaml) or any config with ``change_truth`` and
``zones.redline``. The seasonal-only fields default to ``truth/seasonal_only.gpkg`` beside the change truth.
Definitions: ecoassess/redline/accuracy.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    import geopandas as gpd
    import pyogrio

    from ecoassess.config import load_config
    from ecoassess.redline.accuracy import patch_accuracy

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument("config", type=Path, help="the sample folder or a config file")
    p.add_argument("--seasonal", type=Path, default=None)
    a = p.parse_args(argv)
    cfg_path = a.config / "assessment.yaml" if a.config.is_dir() else a.config
    cfg = load_config(cfg_path)
    if cfg.change_truth is None or "redline" not in cfg.zones:
        print(f"{cfg_path}: needs change_truth and zones.redline", file=sys.stderr)
        return 2
    manifest = json.loads((a.results / "manifest.json").read_text(encoding="utf-8"))
    info = manifest["extra"]["redline"]["detection"]
    gpkg = a.results / "results.gpkg"
    if "redline_patches" not in {lyr[0] for lyr in pyogrio.list_layers(gpkg)}:
        print(f"{gpkg}: no redline_patches layer (run the redline stage)", file=sys.stderr)
        return 2
    ledger = gpd.read_file(gpkg, layer="redline_patches")
    zone = cfg.zones["redline"]
    units = gpd.read_file(zone.path, layer=zone.layer)
    truth = gpd.read_file(cfg.change_truth.path, layer=cfg.change_truth.layer)
    seasonal_path = a.seasonal or cfg.change_truth.path.with_name("seasonal_only.gpkg")
    seasonal = gpd.read_file(seasonal_path) if seasonal_path.is_file() else None
    acc = patch_accuracy(ledger, truth, units, mmu_m2=info["mmu_m2"], buffer_m=info["buffer_m"],
                         cell_m2=info["cell_area_m2"], seasonal=seasonal)
    print(acc.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
