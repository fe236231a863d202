"""How often do the error-adjusted areas' 95 % intervals hold the true planted areas? (issue 21, done-when)

    python scripts/landcover_interval_coverage.py [--sample DIR] [--draws 200] [--size 800] [--per-class 300]

On the sample area: a random forest (the project's defaults, terrain features) trained on ``per-class`` pixels
per class drawn from the planted 2024 land cover, the 2024 map predicted; then ``draws`` validation samples of
``size`` units proposed by the sampling helper (``propose_validation_sample``: stratified by map class, at least
50 per class), labelled from the planted land cover, each giving error-adjusted areas with 95 % intervals
(Olofsson et al. 2014 eqs. 9-11). Printed per class holding more than 5 % of the mapped area ("large"): true
area, mapped area, mean estimate over the draws, the estimate's bias in units of its Monte-Carlo standard error,
the mean of the estimated SE against the SE across draws, and the share of draws whose interval holds the truth.

A bias (mean estimate off the truth by many Monte-Carlo SEs) would mean the estimator or its inputs are wrong
(e.g. mapped areas of another population than the one sampled); an unbiased estimate whose interval covers less
than 95 % has an estimated SE too small or a skewed sampling distribution (few sample units of the class in the
strata that omit it).

Measured 2026-12-06 (the map of the CLI test: 300 px per class, terrain, 200 trees; agreement 0.7406), 200
draws of 800 from seed 1000: coverage of the large classes 11 / 12 / 21 / 24 = 0.950 / 0.960 / 0.960 / 0.980,
bias +0.04 / -0.24 / +0.53 / -0.24 Monte-Carlo SEs (none); small classes 51 / 52 / 53 cover 0.84 / 0.875 / 0.89
with the mean estimated SE below the spread of the estimates (0.58 vs 0.72 km² for 51): variance, not bias. The
CLI test's 20 draws (seeds 100-119) give 18 / 17 / 19 / 16 of 20 on the same map: an unlucky stretch of draws.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", default=None, help="a folder written by ecoassess.sample (default: make one)")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--first-seed", type=int, default=1000, help="seed of the first validation draw")
    parser.add_argument("--map", default=None, help="a map predicted before on the same sample (skip training)")
    args = parser.parse_args()

    import rioxarray
    import yaml

    from ecoassess.config import load_config
    from ecoassess.grid import read_on_grid
    from ecoassess.landcover import accuracy, commands
    from ecoassess.landcover.samples import draw_map_samples
    from ecoassess.pipeline import build_grid, read_study_area

    work = Path(tempfile.mkdtemp())
    if args.sample is None:
        from ecoassess.sample import write_sample

        sample = Path(write_sample(work / "sample")).parent
    else:
        sample = Path(args.sample)
    config = load_config(sample / "assessment.yaml")
    grid = build_grid(config, read_study_area(config))
    truth = read_on_grid(sample / "landcover" / "lucc_2024.tif", grid, kind="classes", dst_nodata=0)
    truth.attrs["nodata"] = 0
    if args.map is None:
        draw_map_samples(truth, args.per_class, seed=1).to_file(work / "train.gpkg")
        raw = yaml.safe_load((sample / "assessment.yaml").read_text(encoding="utf-8"))
        raw["landcover_model"] = {"training": {"path": str(work / "train.gpkg"), "class_field": "class"},
                                  "terrain": ["elevation", "slope"]}
        cfg_path = sample / "coverage.yaml"
        cfg_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        map_path = commands.predict(load_config(cfg_path), work / "pred", year=2024)["map"]
        print(f"map: {map_path}")
    else:
        map_path = Path(args.map)
    areas = commands.mapped_areas(map_path, grid, "cas_lucc").set_index("class_code")["area_km2"]
    mapped = rioxarray.open_rasterio(map_path).squeeze("band", drop=True)
    mapped.attrs["nodata"] = 0
    mv, tv = mapped.values, truth.values
    cell_km2 = grid.cell_area_m2 / 1e6
    true_km2 = pd.Series(tv[mv != 0]).value_counts() * cell_km2
    true_km2 = true_km2[true_km2.index != 0]
    print(f"map: {int((mv != 0).sum())} cells; agreement with the planted land cover "
          f"{float((mv[mv != 0] == tv[mv != 0]).mean()):.4f}; planted nodata under mapped cells: "
          f"{int(((mv != 0) & (tv == 0)).sum())} cells")
    large = true_km2[true_km2 > 0.05 * true_km2.sum()].index
    est = {c: [] for c in true_km2.index}
    se = {c: [] for c in true_km2.index}
    hit = {c: 0 for c in true_km2.index}
    for d in range(args.draws):
        draw = accuracy.propose_validation_sample(mapped, args.size, seed=args.first_seed + d)
        col, row = (~grid.transform) * (draw.geometry.x.to_numpy(), draw.geometry.y.to_numpy())
        ref = tv[np.floor(row).astype(int), np.floor(col).astype(int)]
        keep = ref != 0
        conf = accuracy.confusion_matrix(draw["map_class"].to_numpy()[keep], ref[keep],
                                         classes=sorted(set(areas.index) | set(ref[keep].tolist())))
        adj = accuracy.error_adjusted_areas(conf, areas.reindex(conf.index).fillna(0.0))
        for c in true_km2.index:
            a = adj.loc[c] if c in adj.index else None
            if a is None:
                continue
            est[c].append(float(a["adjusted_area"]))
            se[c].append(float(a["adjusted_area_se"]) if "adjusted_area_se" in adj.columns
                         else float(a["ci_high"] - a["adjusted_area"]) / 1.959963984540054)
            hit[c] += bool(a["ci_low"] <= true_km2[c] <= a["ci_high"])
    print(f"{args.draws} validation draws of {args.size} units (the sampling helper, >= 50 per map class)")
    print(f"{'class':>5} {'true km2':>9} {'mapped':>8} {'mean est':>9} {'bias/MC-SE':>10} {'mean SE':>8} "
          f"{'SD est':>7} {'coverage':>8}")
    for c in sorted(true_km2.index, key=lambda c: -true_km2[c]):
        e = np.asarray(est[c])
        mc_se = e.std(ddof=1) / np.sqrt(len(e))
        mark = " large" if c in large else ""
        print(f"{c:>5} {true_km2[c]:9.3f} {areas.get(c, 0.0):8.3f} {e.mean():9.3f} "
              f"{(e.mean() - true_km2[c]) / mc_se:10.2f} {np.mean(se[c]):8.3f} {e.std(ddof=1):7.3f} "
              f"{hit[c] / len(e):8.3f}{mark}")


if __name__ == "__main__":
    main()
