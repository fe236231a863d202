"""Does gradient boosting earn its place beside the random forest? (issue 21 part 3)

    python scripts/bench_landcover_boosting.py [--sample DIR] [--per-class 300] [--draws 2] [--trees 200]
                                               [--synthetic 2048]

Compares the project's random forest (``indices/landcover_model.yaml``: 200 trees, sqrt features, leaves to
purity, ``n_jobs=1``) with scikit-learn's ``HistGradientBoostingClassifier`` (200 iterations, learning rate 0.1,
no early stopping, seeded; one OpenMP thread, as the forest runs one thread per dask task) on:

* the sample area (``ecoassess.sample``; 16 planted CAS classes, 2024 median composite: 6 bands + NDVI, MNDWI,
  NDBI + elevation, slope): ``per-class`` training pixels per class drawn from the planted map by
  ``draw_map_samples`` (``draws`` seeds); 5-fold cross-validated accuracy of the training pixels, training time,
  and the share of the whole map (every observed pixel) agreeing with the planted land cover;
* the 120 labelled real Landsat 8 C2 L2 pixels (``../shared/data/landsat8-c2l2-pixel-samples-spyndex``: vegetation,
  urban, water; SR_B1–B7 + ST_B10): 5-fold stratified cross-validation, 10 repeats;
* prediction speed: Mpx/s of ``predict_classes`` (dask threads, chunk by chunk) on a synthetic ``synthetic``²
  stack of 11 features, 16 classes (as ``scripts/bench_landcover.py``), and peak RSS of that process.

Each measurement runs in a child process (its own peak RSS, ``ru_maxrss``).

Measured 2026-12-06 (2 cores shared, load average 6-9: absolute times are slow, the ratios hold), scikit-learn
1.9.1, 300 px per class, draws 1 / 2:

    model              CV acc          map agreement    fit s         peak RSS MB
    random_forest      0.787 / 0.792   0.7332 / 0.7203  10.8 / 4.8    817
    gradient_boosting  0.791 / 0.797   0.7280 / 0.7148  121.2 / 95.9  697
    Landsat 120 px, 5-fold x 10: random forest 0.9942 (worst fold 0.958), gradient boosting 0.9975 (0.958)
    predict 1024² x 11 features: random forest 0.0158 Mpx/s, fit 8.0 s, 355 MB; boosting 0.0053 Mpx/s, fit
    176 s, 339 MB

Gradient boosting is not offered: on the map it agrees less with the planted land cover (-0.005), it trains
10-20 times slower and predicts 3 times slower; the Landsat pixels are separated by both (a difference of about
one pixel in 120 per repeat).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "landsat8-c2l2-pixel-samples-spyndex"


def estimator(kind: str, seed: int, trees: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    if kind == "random_forest":
        return RandomForestClassifier(n_estimators=trees, max_features="sqrt", min_samples_leaf=1, random_state=seed,
                                      n_jobs=1)
    return HistGradientBoostingClassifier(max_iter=trees, learning_rate=0.1, early_stopping=False,
                                          random_state=seed)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sample_area(kind: str, sample: Path, per_class: int, draws: int, trees: int) -> dict:
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from ecoassess.config import LandcoverModelSpec, load_config
    from ecoassess.grid import read_on_grid
    from ecoassess.landcover.features import build_features
    from ecoassess.landcover.samples import draw_map_samples
    from ecoassess.pipeline import build_grid, read_study_area
    from ecoassess.stages.base import RunInputs

    config = load_config(sample / "assessment.yaml")
    grid = build_grid(config, read_study_area(config))
    inputs = RunInputs(config, grid)
    truth = read_on_grid(sample / "landcover" / "lucc_2024.tif", grid, kind="classes", dst_nodata=0)
    truth.attrs["nodata"] = 0
    stack = build_features(inputs, LandcoverModelSpec(terrain=["elevation", "slope"]), 2024)
    X_all = stack.data.values.reshape(len(stack.names), -1).T
    t_all = truth.values.ravel()
    ok = np.isfinite(X_all).all(axis=1) & (t_all != 0)
    out = {"cv": [], "fit_s": [], "map_agreement": [], "predict_mpx_s": []}
    for d in range(draws):
        pts = draw_map_samples(truth, per_class, seed=1 + d)
        rows, cols = pts["cell_row"].to_numpy(), pts["cell_col"].to_numpy()
        X = stack.data.values[:, rows, cols].T
        y = pts["class"].to_numpy().astype(int)
        keep = np.isfinite(X).all(axis=1)
        X, y = X[keep], y[keep]
        cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        out["cv"].append(float(cross_val_score(estimator(kind, 0, trees), X, y, cv=cv).mean()))
        est = estimator(kind, 0, trees)
        t0 = time.perf_counter()
        est.fit(X, y)
        out["fit_s"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pred = est.predict(X_all[ok])
        out["predict_mpx_s"].append(ok.sum() / (time.perf_counter() - t0) / 1e6)
        out["map_agreement"].append(float((pred == t_all[ok]).mean()))
    out["training_pixels"] = int(len(y))
    out["peak_rss_mb"] = _rss_mb()
    return out


def landsat(kind: str, trees: int) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

    df = pd.DataFrame(json.loads((SHARED / "spectral.json").read_text()))
    bands = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "ST_B10"]
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=10, random_state=0)
    t0 = time.perf_counter()
    scores = cross_val_score(estimator(kind, 0, trees), df[bands].to_numpy(), df["class"].to_numpy(), cv=cv)
    return {"cv_mean": float(np.mean(scores)), "cv_min": float(np.min(scores)), "folds": len(scores),
            "seconds": time.perf_counter() - t0}


def predict_speed(kind: str, size: int, trees: int, chunk: int = 1024) -> dict:
    """Training and prediction speed on the synthetic stack of ``bench_landcover.py`` (the same data)."""
    from bench_landcover import seconds_to_predict, synthetic_stack, synthetic_training

    from ecoassess.landcover.classify import TrainedModel

    stack = synthetic_stack(size, 11, chunk)
    X, y = synthetic_training(11)
    est = estimator(kind, 0, trees)
    t0 = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - t0
    names = list(stack.coords["feature"].values)
    model = TrainedModel(est, names, [int(c) for c in est.classes_], "cas_lucc", "", "bench", {}, {})
    seconds = seconds_to_predict(model, stack)
    return {"fit_4000_s": fit_s, "mpx_s": size * size / seconds / 1e6, "seconds": seconds,
            "peak_rss_mb": _rss_mb()}


def child(args) -> dict:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # boosting's OpenMP threads: one, as the forest (parallelism comes from dask)
        if args.task == "sample":
            return sample_area(args.kind, Path(args.sample), args.per_class, args.draws, args.trees)
        if args.task == "landsat":
            return landsat(args.kind, args.trees)
        return predict_speed(args.kind, args.synthetic, args.trees)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", default=None, help="a folder written by ecoassess.sample (default: make one)")
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--trees", type=int, default=200, help="trees of the forest / iterations of boosting")
    parser.add_argument("--synthetic", type=int, default=2048, help="side of the synthetic prediction stack")
    parser.add_argument("--task", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task is not None:
        print(json.dumps(child(args)))
        return
    if args.sample is None:
        import tempfile

        from ecoassess.sample import write_sample

        args.sample = str(Path(write_sample(Path(tempfile.mkdtemp()) / "sample")).parent)

    def run(task, kind):
        cmd = [sys.executable, __file__, "--task", task, "--kind", kind, "--sample", args.sample,
               "--per-class", str(args.per_class), "--draws", str(args.draws), "--trees", str(args.trees),
               "--synthetic", str(args.synthetic)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    kinds = ("random_forest", "gradient_boosting")
    print(f"sample area: {args.per_class} training pixels per class, {args.draws} draws, {args.trees} trees/iterations")
    print(f"{'model':<18} {'CV acc':>14} {'map agreement':>16} {'fit s':>12} {'predict Mpx/s':>14} {'peak RSS MB':>12}")
    for kind in kinds:
        r = run("sample", kind)
        fmt = lambda v, f="{:.3f}": " / ".join(f.format(x) for x in v)  # noqa: E731
        print(f"{kind:<18} {fmt(r['cv']):>14} {fmt(r['map_agreement'], '{:.4f}'):>16} "
              f"{fmt(r['fit_s'], '{:.1f}'):>12} {fmt(r['predict_mpx_s'], '{:.3f}'):>14} {r['peak_rss_mb']:12.0f}",
              flush=True)
    print("\n120 real Landsat 8 pixels (vegetation / urban / water), 5-fold stratified CV x 10 repeats")
    for kind in kinds:
        r = run("landsat", kind)
        print(f"{kind:<18} mean {r['cv_mean']:.4f}  worst fold {r['cv_min']:.3f}  ({r['folds']} folds, "
              f"{r['seconds']:.1f} s)", flush=True)
    print(f"\nprediction, synthetic {args.synthetic}² x 11 features, 16 classes, dask threads, chunks 1024²")
    for kind in kinds:
        r = run("predict", kind)
        print(f"{kind:<18} {r['mpx_s']:.3f} Mpx/s ({r['seconds']:.1f} s), fit on 4000 px {r['fit_4000_s']:.1f} s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
