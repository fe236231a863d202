"""Benchmark: PCA statistics of four float32 layers (the RSEI's covariance) against scikit-learn and dask.

Usage: python scripts/bench_stats.py [--mpx 25 100] [--chunk 1024]

For each size a fresh subprocess per method builds the same four correlated float32 layers (10 % NaN in one of
them, as masked pixels), then computes the covariance / PCA of the pixels valid in all four:

* ``ecoassess``: :func:`ecoassess.stats.streaming_covariance` over 1024² chunks (compiled per-chunk kernel,
  Chan et al. merge) and the eigen-decomposition of the 4 × 4 matrix;
* ``dask``: ``dask.array`` — the (n, 4) matrix of valid pixels and ``da.cov`` of it;
* ``sklearn``: ``sklearn.decomposition.PCA(4).fit`` on the (n, 4) float64 matrix of valid pixels (in float32
  its smallest eigenvalue is off by a factor of 3 here).

It prints seconds, Mpx/s, the peak RSS above the layers themselves (VmHWM minus the RSS after building them)
and the ratio to scikit-learn, and checks that the eigenvalues agree. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np

def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0

method, mpx, chunk = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])


class Chunks:  # the layers as dask sees a file: sliced chunk by chunk on demand (from_array copies a numpy array)
    def __init__(self, x):
        self.x, self.shape, self.dtype, self.ndim = x, x.shape, x.dtype, x.ndim

    def __getitem__(self, key):
        return self.x[key]


def lazy(x):
    return da.from_array(Chunks(x), chunks=chunk, asarray=False, meta=np.empty((0, 0), x.dtype))


# imports (and loading the compiled kernel from numba's cache) happen before the clock starts
if method == "ecoassess":
    import dask.array as da
    from ecoassess.stats import streaming_covariance
    streaming_covariance([np.ones((4, 4), np.float32)] * 4)
elif method == "dask":
    import dask.array as da
else:
    from sklearn.decomposition import PCA
side = int((mpx * 1e6) ** 0.5)
rng = np.random.default_rng(0)
base = [rng.standard_normal((side, side), dtype=np.float32) for _ in range(4)]
layers = [0.6 * base[0] + 0.2, 0.3 * base[0] + 0.5 * base[1], -0.4 * base[0] + 0.2 * base[2] + 30.0,
          base[1] - base[2] + 0.3 * base[3]]
del base
layers[1][rng.random((side, side), dtype=np.float32) < 0.1] = np.nan
with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM to the current RSS: count only the method's memory
    fh.write("5")
before = rss("VmRSS:")
t0 = time.perf_counter()
if method == "ecoassess":
    res = streaming_covariance([lazy(x) for x in layers])
    eig = np.sort(np.linalg.eigvalsh(res.cov))[::-1]
elif method == "dask":
    stack = da.stack([lazy(x).ravel() for x in layers])
    ok = da.isfinite(stack).all(axis=0)
    X = stack[:, ok].astype(np.float64)
    X.compute_chunk_sizes()
    eig = np.sort(np.linalg.eigvalsh(da.cov(X).compute()))[::-1]
else:
    ok = np.all([np.isfinite(x) for x in layers], axis=0)
    X = np.column_stack([x[ok].astype(np.float64) for x in layers])  # float64, as the streaming sums
    eig = PCA(n_components=4).fit(X).explained_variance_
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "mpx": side * side / 1e6, "extra_mib": rss("VmHWM:") - before,
                  "eig": [float(e) for e in eig]}))
"""


def child(method: str, mpx: float, chunk: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, method, str(mpx), str(chunk)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"benchmark child {method} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mpx", type=float, nargs="+", default=[25, 100])
    parser.add_argument("--chunk", type=int, default=1024)
    args = parser.parse_args()
    rows = []
    for mpx in args.mpx:
        runs = {m: child(m, mpx, args.chunk) for m in ("ecoassess", "dask", "sklearn")}
        ref = runs["sklearn"]["eig"]
        for m, r in runs.items():
            agree = max(abs(a - b) / abs(b) for a, b in zip(r["eig"], ref))
            rows.append((r["mpx"], m, r, runs["sklearn"]["seconds"] / r["seconds"], agree))
        print(f"{mpx} Mpx done", file=sys.stderr)
    print()
    print("| Mpx | method | s | Mpx/s | peak MiB above the layers | speed vs sklearn | max rel. diff of eigenvalues |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for mpx, m, r, speed, agree in rows:
        print(f"| {mpx:.0f} | {m} | {r['seconds']:.2f} | {mpx / r['seconds']:.0f} | {r['extra_mib']:.0f} | "
              f"{speed:.1f}× | {agree:.1e} |")


if __name__ == "__main__":
    main()
