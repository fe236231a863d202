"""Compare two ecoassess results folders: which files are byte-identical, which layers are identical in value.

    python scripts/compare_results.py RESULTS_A RESULTS_B

Used to check that a restructuring changes nothing (issue 17: byte-identical tables, value-identical layers).
Tables (CSV, Excel sheets, GeoPackage layers) that differ in bytes are compared as data frames; GeoTIFF layers
cell by cell (NaN equal to NaN) with their CRS and transform. Exits 1 when anything differs in value.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SKIP = {"manifest.json"}  # timings, paths and dates differ by design


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _same_raster(a: Path, b: Path) -> str | None:
    import rasterio

    with rasterio.open(a) as sa, rasterio.open(b) as sb:
        if (sa.crs, sa.transform, sa.shape, sa.dtypes) != (sb.crs, sb.transform, sb.shape, sb.dtypes):
            return "grid or dtype differs"
        va, vb = sa.read(), sb.read()
    if not np.array_equal(va, vb, equal_nan=va.dtype.kind == "f"):
        n = int(np.sum(~((va == vb) | (np.isnan(va) & np.isnan(vb)) if va.dtype.kind == "f" else va == vb)))
        return f"{n} cell(s) differ"
    return None


def _same_tables(a: Path, b: Path) -> str | None:
    if a.suffix == ".csv":
        frames = {"": (pd.read_csv(a), pd.read_csv(b))}
    elif a.suffix == ".xlsx":
        xa, xb = pd.read_excel(a, sheet_name=None), pd.read_excel(b, sheet_name=None)
        if set(xa) != set(xb):
            return f"sheets differ: {sorted(set(xa) ^ set(xb))}"
        frames = {k: (xa[k], xb[k]) for k in xa}
    elif a.suffix == ".gpkg":
        import pyogrio

        la = [n for n, _ in pyogrio.list_layers(a)]
        if la != [n for n, _ in pyogrio.list_layers(b)]:
            return "layers differ"
        frames = {n: (pyogrio.read_dataframe(a, layer=n), pyogrio.read_dataframe(b, layer=n)) for n in la}
    else:
        return "bytes differ"
    for name, (fa, fb) in frames.items():
        if not fa.equals(fb):
            return f"table {name or a.name} differs in value"
    return None


def compare(a: Path, b: Path) -> int:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    bad = 0
    for rel in sorted(files_a ^ files_b):
        print(f"only in {'A' if rel in files_a else 'B'}: {rel}")
        bad += 1
    for rel in sorted(files_a & files_b):
        if rel.name in SKIP:
            continue
        if _sha(a / rel) == _sha(b / rel):
            print(f"identical bytes: {rel}")
            continue
        why = _same_raster(a / rel, b / rel) if rel.suffix == ".tif" else _same_tables(a / rel, b / rel)
        if why is None:
            print(f"identical values: {rel}")
        else:
            print(f"DIFFERS: {rel}: {why}")
            bad += 1
    print("no difference in value" if not bad else f"{bad} difference(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(compare(Path(sys.argv[1]), Path(sys.argv[2])))
