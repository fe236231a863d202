"""Compute lazy layers once and keep the result for several later passes, in memory or spilled to disk.

Multi-pass statistics (exact quantiles, covariance, min/max, then writing) would otherwise re-read and
re-decode every input band on every pass. ``materialize`` computes the given layers in one pass over the
inputs; when they fit in ``memory_budget_mb`` they stay in memory (``persist``), otherwise each chunk is
written to a ``.npy`` file in a temporary folder and read back lazily with memory mapping, so memory stays
bounded whatever the area. The folder is removed when the returned ``Materialized`` object is garbage
collected or closed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import weakref
from pathlib import Path

import dask
import dask.array as da
import xarray as xr

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET_MB = 256.0


class Materialized(dict):
    """``name -> DataArray`` backed by memory or by a spill folder that lives as long as this object."""

    def __init__(self, layers: dict, spill_dir: Path | None):
        super().__init__(layers)
        self.spill_dir = spill_dir
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(spill_dir), True) if spill_dir else None

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


def memory_budget_mb() -> float:
    """The in-memory budget for materialised layers: ``ECOASSESS_MEMORY_BUDGET_MB`` or 256 MiB."""
    return float(os.environ.get("ECOASSESS_MEMORY_BUDGET_MB", DEFAULT_MEMORY_BUDGET_MB))


def materialize(layers: dict[str, xr.DataArray], *, memory_budget_mb: float | None = None,
                spill_root: str | Path | None = None) -> Materialized:
    """Compute ``layers`` (dask-backed, same grid and chunks) in one pass; keep them in memory or spill to disk."""
    if memory_budget_mb is None:
        memory_budget_mb = globals()["memory_budget_mb"]()
    nbytes = sum(arr.data.nbytes for arr in layers.values())
    if nbytes <= memory_budget_mb * 2**20:
        persisted = dask.persist(*[arr.data for arr in layers.values()])
        return Materialized({name: arr.copy(data=data) for (name, arr), data in zip(layers.items(), persisted)},
                            None)
    spill = Path(tempfile.mkdtemp(prefix="ecoassess-spill-", dir=spill_root))
    log.info("materialising %.0f MiB of layers to %s (over the %.0f MiB memory budget)", nbytes / 2**20, spill,
             memory_budget_mb)
    # one stack, one pass over the inputs: (layer, y, x) in float32, written strip by strip along y
    names = list(layers)
    stack = da.stack([layers[n].data.astype("float32") for n in names], axis=0)
    da.to_npy_stack(spill / "stack", stack, axis=1)
    stored = da.from_npy_stack(spill / "stack", mmap_mode="r")
    out = {}
    for i, (name, arr) in enumerate(layers.items()):
        data = stored[i].rechunk(arr.data.chunks).astype(arr.dtype)
        out[name] = arr.copy(data=data)
    return Materialized(out, spill)
