"""The run manifest: what went in (config, input files with SHA-256), with what (versions), how long, what came out.

Keys come in a fixed order and file lists are sorted by path, so two runs differ only where they really do
(times, durations, and hashes of files that changed).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ecoassess._version import __version__
from ecoassess.files import RESUME_DIR, atomic_path, sha256_file

MANIFEST_VERSION = 1
_PACKAGES = ("numpy", "pandas", "xarray", "dask", "distributed", "rasterio", "rioxarray", "geopandas", "shapely",
             "pyproj", "numba", "matplotlib", "pyogrio", "openpyxl")


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class RunTimer:
    """Wall-clock timings of a run's stages: ``with timer.stage("composite"): ...`` (repeated stages add up)."""

    def __init__(self):
        self.start_ts = time.time()
        self.end_ts: float | None = None
        self._t0 = time.perf_counter()
        self._seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - t0

    def stop(self) -> None:
        """Mark the end of the run (done by :func:`build_manifest` if not called)."""
        if self.end_ts is None:
            self.end_ts = time.time()
            self._total = time.perf_counter() - self._t0

    @property
    def seconds(self) -> dict[str, float]:
        """Stage → seconds, in the order the stages first ran."""
        return dict(self._seconds)

    @property
    def timings(self) -> "_Timings":
        """Stage → seconds as a dict that still knows its timer (so ``build_manifest`` gets start/end too)."""
        t = _Timings(self._seconds)
        t.timer = self
        return t

    def as_dict(self) -> dict:
        total = getattr(self, "_total", None)
        if total is None:
            total = time.perf_counter() - self._t0
        return {"stages_s": {k: round(v, 3) for k, v in self._seconds.items()}, "total_s": round(total, 3)}


class _Timings(dict):
    timer: RunTimer | None = None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict:
    """Versions of Python, the libraries that shape the numbers, GDAL and PROJ."""
    out = {"python": platform.python_version(), "ecoassess": _ecoassess_version()}
    for name in _PACKAGES:
        out[name] = _version(name)
    try:
        import rasterio

        out["gdal"] = rasterio.__gdal_version__
    except ImportError:  # pragma: no cover
        out["gdal"] = None
    try:
        import pyproj

        out["proj"] = pyproj.proj_version_str
    except ImportError:  # pragma: no cover
        out["proj"] = None
    return out


def _ecoassess_version() -> str:

    return __version__


def _platform() -> dict:
    info = {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
            "platform": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        import psutil

        info["memory_total_bytes"] = psutil.virtual_memory().total
    except ImportError:  # pragma: no cover
        pass
    return info


def _file_entry(path: Path, rel: str | None = None) -> dict:
    name = rel if rel is not None else str(path)
    if not path.is_file():  # a named input that is gone (its failure is in the run's problems): record, don't fail
        return {"path": name, "size_bytes": None, "sha256": None, "missing": True}
    st = path.stat()
    return {"path": name, "size_bytes": st.st_size, "sha256": sha256_file(path)}


def input_files(paths, exclude=None) -> list[Path]:
    files: set[Path] = set()
    for p in paths:
        p = Path(p).absolute()
        if p.is_dir():
            files.update(q for q in p.rglob("*") if q.is_file() and not (exclude and exclude(q)))
        else:
            files.add(p)  # a file, or a missing one that _file_entry records as missing
    return sorted(files)


def _resolved_paths(config: dict, base: Path) -> dict:
    """Config values that name existing files/folders (relative to the config's folder) → absolute paths."""
    found: dict[str, str] = {}

    def walk(node, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, f"{key}[{i}]")
        elif isinstance(node, (str, os.PathLike)) and str(node) and "\n" not in str(node) and len(str(node)) < 4096:
            p = Path(node)
            cand = p if p.is_absolute() else base / p
            try:
                if cand.exists():
                    found[key] = str(cand.resolve())
            except OSError:
                pass

    walk(config, "")
    return found


def _jsonable(node):
    if isinstance(node, dict):
        return {str(k): _jsonable(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_jsonable(v) for v in node]
    if isinstance(node, os.PathLike):
        return str(node)
    if hasattr(node, "item") and not isinstance(node, (str, bytes)):
        try:
            return node.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(node, (str, int, float, bool)) or node is None:
        return node
    return str(node)


def build_manifest(*, config: dict, config_path, inputs, outputs_dir, timings, grid: dict | None = None,
                   extra: dict | None = None, catalogs: dict | None = None, warnings: list | None = None,
                   registry: dict | None = None, exclude_outputs=("manifest.json",), exclude_inputs=None) -> dict:
    """The manifest of one run as a dict (keys in a fixed order).

    ``timings``: a :class:`RunTimer` or its ``.timings`` (both give run start/end too), or a plain dict
    stage → seconds. ``inputs``: files or
    folders (expanded to their files). ``outputs_dir``: every file in it is listed with size and SHA-256
    (except ``exclude_outputs``); ``registry`` (e.g. :attr:`ResultsStore.outputs`) adds kind/description.
    ``catalogs``: name → version of the index/crosswalk catalogs used. ``exclude_inputs``: a predicate on a
    path; files of input folders it is true for are not inputs (the run's own results folder inside one).
    """
    if isinstance(timings, _Timings) and timings.timer is not None:
        timings = timings.timer
    if isinstance(timings, RunTimer):
        timings.stop()
        start, end, timing = _utc(timings.start_ts), _utc(timings.end_ts), timings.as_dict()
    else:
        now = _utc(time.time())
        stages = {str(k): round(float(v), 3) for k, v in dict(timings or {}).items()}
        start, end, timing = now, now, {"stages_s": stages, "total_s": round(sum(stages.values()), 3)}
    config_path = Path(config_path).absolute() if config_path is not None else None
    base = config_path.parent if config_path is not None else Path.cwd()
    cfg = {"path": str(config_path) if config_path else None,
           "sha256": sha256_file(config_path) if config_path and config_path.is_file() else None,
           "given": _jsonable(config), "resolved_paths": _resolved_paths(config, base)}
    outputs_dir = Path(outputs_dir)
    registry = registry or {}
    outputs = []
    for p in sorted(q for q in outputs_dir.rglob("*") if q.is_file()):
        rel = p.relative_to(outputs_dir).as_posix()
        if rel in exclude_outputs or rel.split("/", 1)[0] == RESUME_DIR:
            continue
        entry = _file_entry(p, rel)
        if rel in registry:
            entry.update({"kind": registry[rel].get("kind"), "description": registry[rel].get("description")})
        outputs.append(entry)
    return {
        "manifest_version": MANIFEST_VERSION,
        "ecoassess_version": _ecoassess_version(),
        "run": {"started_utc": start, "ended_utc": end, "command_line": [sys.executable] + sys.argv,
                "working_directory": str(Path.cwd())},
        "config": cfg,
        "grid": _jsonable(grid or {}),
        "inputs": [_file_entry(p) for p in input_files(inputs, exclude=exclude_inputs)],
        "catalogs": {str(k): catalogs[k] for k in sorted(catalogs or {})},
        "packages": package_versions(),
        "platform": _platform(),
        "timings": timing,
        "outputs": outputs,
        "warnings": [str(w) for w in (warnings or [])],
        "extra": _jsonable(extra or {}),
    }


def _json_safe(value):
    """NaN and ±inf (a statistic of a zone without data) as null: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        return _json_safe(value.item())
    return value


def write_manifest(manifest: dict, path) -> Path:
    """Write ``manifest`` as UTF-8 JSON (Chinese kept readable), atomically. Returns ``path``."""

    path = Path(path)
    text = json.dumps(_json_safe(manifest), ensure_ascii=False, indent=2, allow_nan=False, default=str) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


__all__ = ["sha256_file", "RunTimer", "build_manifest", "write_manifest", "package_versions"]
