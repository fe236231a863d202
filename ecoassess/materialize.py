"""Compute lazy layers once and keep the result for several later passes, in memory or spilled to disk.

Multi-pass statistics (exact quantiles, covariance, min/max, then writing) would otherwise re-read and
re-decode every input band on every pass. ``materialize`` computes the given layers in one pass over the
inputs; when they fit in ``memory_budget_mb`` they stay in memory (``persist``), otherwise each chunk of each
layer is written to its own ``.npy`` file in a temporary folder and read back lazily with memory mapping, so
memory stays bounded by the chunk size whatever the area. The folder is removed when the returned ``Materialized`` object is garbage
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
import numpy as np
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
    # one pass over the inputs; each chunk of each layer goes to its own .npy file (in the layer's dtype), so
    # memory stays one chunk per worker thread whatever the raster's width
    names = list(layers)
    datas = [layers[n].data for n in names]
    datas = [datas[0]] + [d.rechunk(datas[0].chunks) for d in datas[1:]]
    chunks = datas[0].chunks

    def save(*blocks, block_info=None):
        (r0, _), (c0, _) = block_info[0]["array-location"]
        for i, block in enumerate(blocks):
            np.save(spill / f"{r0}_{c0}_{i}.npy", block)
        return np.zeros((1, 1), dtype="uint8")

    written = da.map_blocks(save, *datas, chunks=((1,) * len(chunks[0]), (1,) * len(chunks[1])), dtype="uint8")
    written.compute()

    def load(block_info=None, *, index):
        (r0, _), (c0, _) = block_info[None]["array-location"]
        return np.load(spill / f"{r0}_{c0}_{index}.npy", mmap_mode="r")

    out = {}
    for i, (name, arr) in enumerate(layers.items()):
        data = da.map_blocks(load, index=i, chunks=chunks, dtype=arr.dtype, meta=np.empty((0, 0), arr.dtype),
                             name=f"spilled-{name}-{spill.name}")
        out[name] = arr.copy(data=data)
    return Materialized(out, spill)
