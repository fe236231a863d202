"""Benchmark of land-cover prediction (issue 21 part 3): megapixels per second and peak memory at growing areas.

    python scripts/bench_landcover.py [--sizes 1024,2048,4096] [--features 11] [--trees 200] [--chunk 1024]

Each size runs in its own process (its peak RSS is its own high-water mark, ``ru_maxrss`` of the child): a
synthetic feature stack of ``features`` float32 layers (lazy, generated chunk by chunk from a seeded generator),
a random forest trained on 4 000 of its pixels (classes from a planted rule, 16 classes like the sample), then the
whole stack predicted chunk by chunk (:func:`ecoassess.landcover.classify.predict_classes`) and reduced to class
counts, so nothing but the chunks in flight is held. Printed per size: pixels, seconds of prediction, Mpx/s, peak
RSS, and the RSS a fully held stack would need. Memory should stay flat as the area grows 16-fold.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def synthetic_stack(size: int, n_features: int, chunk: int):
    """A lazy ``size``² stack of ``n_features`` float32 layers, each chunk from a generator seeded by its place."""
    import dask.array as da
    import numpy as np
    import xarray as xr

    def block(block_info=None):
        (f0, f1), (r0, r1), (c0, c1) = block_info[None]["array-location"]
        return np.random.default_rng([r0, c0]).random((f1 - f0, r1 - r0, c1 - c0), dtype="float32")

    data = da.map_blocks(block, chunks=((n_features,), *da.core.normalize_chunks((chunk, chunk), (size, size))),
                         dtype="float32", meta=np.empty((0, 0, 0), "float32"))
    names = [f"f{i}" for i in range(n_features)]
    return xr.DataArray(data, dims=("feature", "y", "x"), coords={"feature": names})


def synthetic_training(n_features: int):
    """4 000 training pixels; 16 classes from the first two features (a 4 x 4 grid of boxes), like the sample's 16
    CAS classes."""
    import numpy as np

    X = np.random.default_rng(0).random((4000, n_features), dtype="float32")
    return X, 11 + (X[:, 0] * 4).astype(int) * 10 + (X[:, 1] * 4).astype(int)


def seconds_to_predict(model, stack) -> float:
    """Predict ``stack`` chunk by chunk, reduced to class counts (nothing but the chunks in flight is held)."""
    import dask
    import dask.array as da
    import numpy as np

    from ecoassess.landcover.classify import predict_classes

    pred = predict_classes(model, stack)
    counts = da.map_blocks(lambda b: np.bincount(b.ravel(), minlength=256)[None, None, :].astype("int64"),
                           pred.data, new_axis=2, chunks=(1, 1, 256), dtype="int64").sum(axis=(0, 1))
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        total = counts.compute()
    seconds = time.perf_counter() - t0
    assert int(total.sum()) == stack.sizes["y"] * stack.sizes["x"]
    return seconds


def child(size: int, n_features: int, trees: int, chunk: int) -> dict:
    from ecoassess.landcover.classify import train_classifier

    stack = synthetic_stack(size, n_features, chunk)
    X, y = synthetic_training(n_features)
    model = train_classifier(X, y, list(stack.coords["feature"].values), seed=0, n_estimators=trees)
    seconds = seconds_to_predict(model, stack)
    return {"size": size, "pixels": size * size, "seconds": seconds, "mpx_s": size * size / seconds / 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "stack_mb": size * size * n_features * 4 / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1024,2048,4096", help="side lengths in pixels")
    parser.add_argument("--features", type=int, default=11)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.features, args.trees, args.chunk)))
        return
    print(f"land-cover prediction: {args.features} features, {args.trees} trees, chunks {args.chunk}², "
          f"dask threads")
    print(f"{'side':>6} {'Mpx':>7} {'seconds':>8} {'Mpx/s':>7} {'peak RSS MB':>12} {'stack if held MB':>17}")
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--child", str(size), "--features", str(args.features),
                              "--trees", str(args.trees), "--chunk", str(args.chunk)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['size']:>6} {r['pixels'] / 1e6:7.2f} {r['seconds']:8.1f} {r['mpx_s']:7.3f} "
              f"{r['peak_rss_mb']:12.0f} {r['stack_mb']:17.0f}", flush=True)


if __name__ == "__main__":
    main()
