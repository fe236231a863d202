"""A finished results folder, read back for the report: its tables (``results.gpkg``), layers and manifest.

The report is drawn only from what a run saved, so ``ecoassess report RESULTS`` re-renders without recomputing.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from ecoassess.errors import InputError
from ecoassess.files import MANIFEST_NAME
from ecoassess.store import GPKG_NAME


class ResultsFolder:
    """Read-only view of a results folder written by ``ecoassess run``.

    ``tables`` lists what ``results.gpkg`` holds; :meth:`table` reads one (a GeoDataFrame when it has
    geometry, a DataFrame otherwise), once. A table the run did not make is simply absent: ``has(name)`` says so,
    and the report says why its section is missing.
    """

    def __init__(self, path):
        self.path = Path(path).expanduser().absolute()
        manifest_path = self.path / MANIFEST_NAME
        if not self.path.is_dir():
            raise InputError(f"{self.path}: no such results folder")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{self.path}: not an ecoassess results folder (no {MANIFEST_NAME}); give the folder "
                             "that `ecoassess run --out` wrote") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{manifest_path}: unreadable manifest ({exc})") from None
        if not isinstance(manifest, dict) or "ecoassess_version" not in manifest:
            raise InputError(f"{manifest_path}: not an ecoassess manifest (no ecoassess_version)")
        self.manifest: dict = manifest
        self._tables: dict = {}

    @cached_property
    def tables(self) -> list[str]:
        """Names of the tables in ``results.gpkg`` (empty when the run wrote none)."""
        import pyogrio

        gpkg = self.path / GPKG_NAME
        if not gpkg.is_file():
            return []
        return [str(name) for name, _ in pyogrio.list_layers(gpkg)]

    def has(self, name: str) -> bool:
        return name in self.tables

    def table(self, name: str):
        """Table ``name`` as written by the run; :class:`InputError` when the run did not make it."""
        if name not in self._tables:
            if not self.has(name):
                raise InputError(f"{self.path / GPKG_NAME}: no table {name!r} (the run did not make it)")
            import pyogrio

            self._tables[name] = pyogrio.read_dataframe(self.path / GPKG_NAME, layer=name)
        return self._tables[name].copy()

    @cached_property
    def layers(self) -> dict[str, Path]:
        """``{name: path}`` of the raster layers (``layers/<name>.tif``)."""
        folder = self.path / "layers"
        return {p.stem: p for p in sorted(folder.glob("*.tif"))} if folder.is_dir() else {}

    @property
    def extra(self) -> dict:
        """The run's stage records in the manifest (``extra``: land cover, red line, network, rsei, ...)."""
        return self.manifest.get("extra") or {}

    @property
    def config(self) -> dict:
        """The run's config as the manifest recorded it."""
        return self.manifest.get("config") or {}

    def file(self, relpath: str) -> Path | None:
        """``relpath`` inside the folder, or None when the run did not write it."""
        p = self.path / relpath
        return p if p.exists() else None
