"""Compute lazy layers once and keep the result for several later passes, in memory or spilled to disk.

Multi-pass statistics (exact quantiles, covariance, min/max, then writing) would otherwise re-read and
re-decode every input band on every pass. ``materialize`` computes the given layers in one pass over the
inputs; when they fit in ``memory_budget_mb`` they stay in memory (``persist``), otherwise each chunk of each
layer is written to its own ``.npy`` file in a temporary folder and read back lazily with memory mapping, so
memory stays bounded by the chunk size whatever the area. The folder is removed when the returned ``Materialized`` object is garbage
collected or closed.
"""

from __future__ import annotations

import contextlib
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

from ecoassess.errors import InputError, space_errors

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET_MB = 256.0
#: spill folders are ``<tmp>/ecoassess-spill-<pid>-<random>``: the pid tells a killed run's folder from a live one's
SPILL_PREFIX = "ecoassess-spill-"


def remove_stale_spill_folders(spill_root: str | Path | None = None) -> list[Path]:
    """Delete the spill folders of ecoassess processes that are no longer alive (a run killed with kill -9 cannot
    remove its own); returns them. Folders of live processes, and of other names, are left alone."""
    import re

    import psutil

    root = Path(spill_root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = re.fullmatch(re.escape(SPILL_PREFIX) + r"(\d+)-\w+", entry.name)
        if not m or not entry.is_dir() or int(m[1]) == os.getpid():
            continue
        pid = int(m[1])
        try:
            alive = psutil.Process(pid).create_time() <= entry.stat().st_ctime + 1.0
        except psutil.NoSuchProcess:
            alive = False
        except (psutil.AccessDenied, OSError):
            alive = True
        if not alive:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        log.warning("removed %d spill folder(s) of stopped ecoassess runs from %s", len(removed), root)
    return removed


class Materialized(dict):
    """``name -> DataArray`` backed by memory or by a spill folder that lives as long as this object."""

    def __init__(self, layers: dict, spill_dir: Path | None, nbytes_in_memory: int = 0, reductions=()):
        super().__init__(layers)
        self.spill_dir = spill_dir
        #: the values of the ``reductions`` computed in the same pass (see :func:`materialize`)
        self.reductions = list(reductions)
        self.nbytes_in_memory = nbytes_in_memory
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(spill_dir), True) if spill_dir else None
        if nbytes_in_memory:
            _IN_MEMORY[id(self)] = nbytes_in_memory
            weakref.finalize(self, _IN_MEMORY.pop, id(self), None)

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


#: bytes held by every in-memory Materialized still alive (by id): the budget is shared by all of them
_IN_MEMORY: dict[int, int] = {}


_BUDGET_OVERRIDE: list[float] = []


def memory_budget_mb() -> float:
    """The in-memory budget for all materialised layers alive at once: the innermost :func:`memory_budget`, else
    ``ECOASSESS_MEMORY_BUDGET_MB``, else 256 MiB."""
    if _BUDGET_OVERRIDE:
        return _BUDGET_OVERRIDE[-1]
    text = os.environ.get("ECOASSESS_MEMORY_BUDGET_MB")
    if text is None:
        return float(DEFAULT_MEMORY_BUDGET_MB)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise InputError(f"is {text!r}", field="ECOASSESS_MEMORY_BUDGET_MB", expected="a number of MiB >= 0")
    return value


@contextlib.contextmanager
def memory_budget(mb: float | None):
    """Use ``mb`` MiB as the budget inside the block (a run's ``run.memory_budget_mb``); None: leave it as it is."""
    if mb is None:
        yield
        return
    _BUDGET_OVERRIDE.append(float(mb))
    try:
        yield
    finally:
        _BUDGET_OVERRIDE.pop()


def in_memory_mb() -> float:
    """MiB held in memory by the materialised layers alive now."""
    return sum(_IN_MEMORY.values()) / 2**20


def materialize(layers: dict[str, xr.DataArray], *, memory_budget_mb: float | None = None,
                spill_root: str | Path | None = None, reductions=()) -> Materialized:
    """Compute ``layers`` (dask-backed, same grid and chunks) in one pass; keep them in memory or spill to disk.

    They stay in memory when they fit in what the budget leaves after the materialised layers still alive
    (:func:`in_memory_mb`), so several stages' caches together never hold more than the budget.
    ``reductions``: dask objects built on the same lazy layers (the first pass of a statistic, say); they are
    computed in the same pass — each chunk is computed once and feeds both — and their values are kept in
    ``Materialized.reductions``.
    """
    if memory_budget_mb is None:
        memory_budget_mb = globals()["memory_budget_mb"]()
    nbytes = sum(arr.data.nbytes for arr in layers.values())
    held = in_memory_mb()
    reductions = list(reductions)
    # with reductions, no graph optimisation: fusing the layers' tasks renames their keys, and the reductions
    # (dask.delayed over the same chunks) would then compute every chunk a second time
    if nbytes <= (memory_budget_mb - held) * 2**20:
        log.debug("keeping %.0f MiB of layers (%s) in memory (budget %.0f MiB, %.0f MiB of it in use)",
                  nbytes / 2**20, ", ".join(layers), memory_budget_mb, held)
        persisted = dask.persist(*[arr.data for arr in layers.values()], *reductions, optimize_graph=not reductions)
        values = dask.compute(*persisted[len(layers):])
        return Materialized({name: arr.copy(data=data) for (name, arr), data in zip(layers.items(), persisted)},
                            None, nbytes, values)
    spill = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=spill_root))
    log.info("materialising %.0f MiB of layers to %s (over the %.0f MiB memory budget, %.0f MiB of it in use)",
             nbytes / 2**20, spill, memory_budget_mb, held)
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
    with space_errors(spill, spill, "spill folder"):
        _, *values = dask.compute(written, *reductions, optimize_graph=not reductions)

    def load(block_info=None, *, index):
        (r0, _), (c0, _) = block_info[None]["array-location"]
        return np.load(spill / f"{r0}_{c0}_{index}.npy", mmap_mode="r")

    out = {}
    for i, (name, arr) in enumerate(layers.items()):
        data = da.map_blocks(load, index=i, chunks=chunks, dtype=arr.dtype, meta=np.empty((0, 0), arr.dtype),
                             name=f"spilled-{name}-{spill.name}")
        out[name] = arr.copy(data=data)
    return Materialized(out, spill, reductions=values)
