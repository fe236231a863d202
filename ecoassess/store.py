"""The results folder of one run, written atomically as a whole, never over anything ecoassess did not write.

Everything goes into a staging folder beside ``out_dir`` (``<out>.partial-<pid>``). :meth:`ResultsStore.commit`
moves it into place in three renames: staging → ``<out>.ready-<pid>`` (the results are complete), an earlier
``out_dir`` → ``<out>.old-<pid>``, ``<out>.ready-<pid>`` → ``out_dir``; then the old one is deleted.
:meth:`ResultsStore.abort`, or an exception inside ``with ResultsStore(out) as store:``, removes the staging
folder and leaves an earlier ``out_dir`` untouched.

What may be replaced: an empty folder, or an earlier ecoassess results folder — one whose ``manifest.json``
lists every file in it (GIS side files of those files, such as ``.aux.xml`` or ``.ovr``, and OS litter excepted).
Any other existing folder is refused (:class:`OutFolderError`); with ``force=True`` the results go to a new
subfolder ``ecoassess-results`` inside it instead. A symlinked ``out_dir`` is followed: the results land where
it points.

Crash recovery (:func:`recover_interrupted`, called by every store before it starts): leftovers of ecoassess
processes that are no longer alive are cleaned up and the log says so — a commit interrupted between its
renames is completed (``<out>.ready-<pid>`` exists: the new results were complete) or undone (only
``<out>.old-<pid>``: the earlier results are put back); a stale backup is deleted; a stale staging folder is
adopted by a run with the same run key (:mod:`ecoassess.resume`: its completed parts are reused) or deleted.
A live ecoassess process writing the same folder is not disturbed: the second run is refused.

Tables go to ``results.gpkg`` (one layer per table; plain DataFrames as attribute-only layers),
``tables/<name>.csv`` (UTF-8 with BOM, so Excel shows Chinese correctly) and one sheet each in
``tables/results.xlsx`` (written once, by :meth:`ResultsStore.flush` or at commit: rewriting the whole workbook
after every table made a run's table writing grow with the square of the number of tables). CSV and
Excel carry the attributes only; geometries are in the GeoPackage. GeoPackage and workbook are written
deterministically (fixed timestamps), so the same tables give byte-identical files.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import re
import shutil
from pathlib import Path

import pyproj

from ecoassess.errors import EcoassessError, space_errors
from ecoassess.files import (FIXED_TIME, MANIFEST_NAME, RESUME_DIR, atomic_path, display_width, office_bytes,
                             sha256_file, swap_into)

log = logging.getLogger(__name__)

GPKG_NAME = "results.gpkg"
XLSX_RELPATH = "tables/results.xlsx"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


class OutFolderError(EcoassessError):
    """The results folder asked for cannot be used without putting something of the user's at risk."""


#: name of the subfolder the results go to with ``force=True`` when the folder asked for holds other files
FORCED_SUBFOLDER = "ecoassess-results"
#: GIS side files of an output (written by ArcGIS/QGIS/GDAL when a layer is opened) and OS litter: replaceable
#: (not ".xml": that is where ArcGIS keeps metadata the user wrote)
_SIDE_SUFFIXES = (".aux.xml", ".aux", ".ovr", ".msk", "-wal", "-shm", "-journal")
_OS_LITTER = {".DS_Store", "Thumbs.db", "desktop.ini"}
_LEFTOVER = re.compile(r"^(?P<out>.+)\.(?P<what>partial|ready|old)-(?P<pid>\d+)$")


class ResultsStore:
    """A run's results folder, staged beside ``out_dir`` and moved into place by :meth:`commit`.

    ``force``: when ``out_dir`` holds files ecoassess did not write, put the results into a new subfolder
    (``ecoassess-results``, or ``ecoassess-results-2``, ...) instead of refusing. ``run_key``: identifies the run
    (config, input hashes, versions; :func:`ecoassess.resume.run_key`); a stale staging folder of an interrupted
    run with the same key is adopted, so that its completed parts can be reused.
    """

    def __init__(self, out_dir, *, force: bool = False, run_key: str | None = None):
        self.out_dir = usable_out_dir(out_dir, force=force)
        self.recovered = recover_interrupted(self.out_dir) + recover_interrupted(
            self.out_dir.with_name(f"{self.out_dir.name}.incomplete"))
        self.staging = self.out_dir.with_name(f"{self.out_dir.name}.partial-{os.getpid()}")
        if self.staging.exists():  # this process's own leftover (an earlier store in the same process)
            shutil.rmtree(self.staging)
        self.adopted = _adopt_staging(self.out_dir, self.staging, run_key)
        self.staging.mkdir(parents=True, exist_ok=True)
        self._registry: dict[str, dict] = {}
        #: table name → the files it was written to (results.gpkg, tables/<name>.csv, tables/results.xlsx)
        self.table_files: dict[str, list[str]] = {}
        self._sheets: dict[str, object] = {}  # sheet name -> DataFrame (attributes only)
        self._sheet_of: dict[str, str] = {}  # table name -> sheet name
        self._sheets_written = True  # the workbook on disk holds every sheet (none yet: nothing to write)
        self._state = "open"
        #: while a resumable part of the run is recorded (:mod:`ecoassess.resume`): its table writes and files
        self.recorder: list | None = None
        #: the run's resumable parts (:class:`ecoassess.resume.Parts`), set by a pipeline run
        self.parts = None

    # -- context manager -----------------------------------------------------------------------------------------
    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.abort()
        elif self._state == "open":
            self.commit()
        return False

    # -- files ---------------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._state != "open":
            raise EcoassessError(f"results store for {self.out_dir} is already {self._state}")

    def path(self, relpath, *, kind: str | None = None, description: str | None = None) -> Path:
        """Path of ``relpath`` inside the staging folder (parent folders created); registered when ``kind`` given."""
        self._check_open()
        rel = Path(relpath)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"results path must be relative and inside the folder, got {relpath}")
        p = self.staging / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if self.recorder is not None:
            self.recorder.append(("file", rel.as_posix()))
        if kind is not None:
            self.register(rel, kind, description)
        return p

    def register(self, relpath, kind: str, description: str | None = None) -> None:
        """Record an output (relative path → kind, description) for the manifest."""
        self._registry[Path(relpath).as_posix()] = {"kind": kind, "description": description or ""}

    def discard(self, folder) -> None:
        """Remove ``folder`` (relative) from the results being written, files and registrations: what a failed part
        wrote there is not left half-done beside the failure."""
        import shutil

        self._check_open()
        rel = Path(folder).as_posix().rstrip("/")
        shutil.rmtree(self.staging / rel, ignore_errors=True)
        for key in [k for k in self._registry if k == rel or k.startswith(rel + "/")]:
            del self._registry[key]

    @property
    def outputs(self) -> dict[str, dict]:
        """Registered outputs, sorted by relative path."""
        return {k: dict(self._registry[k]) for k in sorted(self._registry)}

    # -- tables --------------------------------------------------------------------------------------------------
    def write_table(self, name: str, table, *, gpkg: bool = True, csv: bool = True, xlsx: bool = True,
                    description: str | None = None) -> None:
        """Write ``table`` (GeoDataFrame or DataFrame) as layer ``name`` of results.gpkg, a CSV and an Excel sheet."""
        import geopandas as gpd
        import pandas as pd

        self._check_open()
        if not re.fullmatch(r"[A-Za-z0-9_\-\u4e00-\u9fff]+", name):
            raise ValueError(f"table name {name!r}: use letters, digits, _ or - (it becomes a layer and file name)")
        if self.recorder is not None:
            self.recorder.append(("table", name, table, {"gpkg": gpkg, "csv": csv, "xlsx": xlsx,
                                                         "description": description}))
            recorder, self.recorder = self.recorder, None  # the table's own files are not parts' files
            try:
                return self.write_table(name, table, gpkg=gpkg, csv=csv, xlsx=xlsx, description=description)
            finally:
                self.recorder = recorder
        is_geo = isinstance(table, gpd.GeoDataFrame) and table.geometry.name in table.columns
        attrs = pd.DataFrame(table.drop(columns=table.geometry.name)) if is_geo else pd.DataFrame(table)
        desc = description or name
        self.table_files[name] = [rel for fmt, rel in (("gpkg", GPKG_NAME), ("csv", f"tables/{name}.csv"),
                                                       ("xlsx", XLSX_RELPATH)) if {"gpkg": gpkg, "csv": csv,
                                                                                   "xlsx": xlsx}[fmt]]
        if gpkg:
            with self._space(GPKG_NAME):
                self._write_gpkg(name, table if is_geo else attrs)
            self.register(GPKG_NAME, "geopackage", "tables and vector layers")
        if csv:
            p = self.path(f"tables/{name}.csv")
            with self._space(f"tables/{name}.csv"), atomic_path(p) as tmp:
                attrs.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")
            self.register(f"tables/{name}.csv", "table", desc)
        if xlsx:
            sheet = self._sheet_name(name)
            self._sheets[sheet] = attrs
            self._sheets_written = False
            self.register(XLSX_RELPATH, "workbook", "all tables, one sheet each")

    def _write_gpkg(self, name: str, frame) -> None:
        import pyogrio

        if getattr(frame, "crs", None) is not None:
            frame = frame.set_crs(_EpsgCachedCRS(frame.crs.to_wkt()), allow_override=True)
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_TIME})
        try:
            path = self.path(GPKG_NAME)
            kwargs = {"layer": name, "driver": "GPKG"}
            if path.exists() and name in {lyr[0] for lyr in pyogrio.list_layers(path)}:
                kwargs["layer_options"] = {"OVERWRITE": "YES"}
            pyogrio.write_dataframe(frame, path, **kwargs)
        finally:
            pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})

    def _space(self, relpath):
        """A full disk (or a file too large for it) while writing ``relpath``: one error naming the file, the
        results folder and the space free there."""
        return space_errors(self.staging / relpath, self.out_dir, "results folder")

    def _sheet_name(self, name: str) -> str:
        """Excel sheet for table ``name``: ≤ 31 characters, no []:*?/\\, unique (``~2`` appended if needed)."""
        if name in self._sheet_of:
            return self._sheet_of[name]
        base = _SHEET_BAD.sub("_", name).strip("'")[:31] or "table"
        cand, i = base, 2
        while cand in self._sheets:
            cand = f"{base[:31 - len(str(i)) - 1]}~{i}"
            i += 1
        self._sheet_of[name] = cand
        return cand

    def flush(self) -> None:
        """Write ``tables/results.xlsx`` with every table so far (before hashing the outputs; commit calls it)."""
        self._check_open()
        if not self._sheets_written:
            with self._space(XLSX_RELPATH):
                self._write_xlsx()
            self._sheets_written = True

    def _write_xlsx(self) -> None:
        from openpyxl import Workbook
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        wb = Workbook()
        wb.remove(wb.active)
        bold = Font(bold=True)
        for sheet, df in self._sheets.items():
            ws = wb.create_sheet(sheet)
            ws.append([str(c) for c in df.columns])
            for cell in ws[1]:
                cell.font = bold
            for row in df.itertuples(index=False, name=None):
                ws.append([_cell(v) for v in row])
            for j, col in enumerate(df.columns, start=1):
                values = [str(col)] + [str(v) for v in df.iloc[:200, j - 1].tolist()]
                ws.column_dimensions[get_column_letter(j)].width = min(60, max(display_width(v) for v in values) + 2)
            ws.freeze_panes = "A2"
        with atomic_path(self.path(XLSX_RELPATH)) as tmp:
            tmp.write_bytes(office_bytes(wb))

    # -- end of the run ------------------------------------------------------------------------------------------
    def commit(self, target=None) -> Path:
        """Move the staging folder to ``out_dir`` — or to ``target``, a folder beside it — replacing an earlier
        results folder there only now. Returns the folder the results are in."""
        self.flush()
        target = self.out_dir if target is None else Path(target).absolute()
        if target.parent != self.out_dir.parent:
            raise ValueError(f"results can only be moved beside {self.out_dir}, not to {target}")
        if target != self.out_dir:
            usable_out_dir(target)  # OUT.incomplete: never over a folder of the user's either
        if not (self.staging / MANIFEST_NAME).exists():  # every results folder says what it holds
            _write_minimal_manifest(self.staging)
        ready = target.with_name(f"{target.name}.ready-{os.getpid()}")
        backup = target.with_name(f"{target.name}.old-{os.getpid()}")
        try:
            for leftover in (ready, backup):
                if leftover.exists():
                    shutil.rmtree(leftover)
            os.rename(self.staging, ready)  # from here on the results are complete: recovery finishes the swap
            shutil.rmtree(ready / RESUME_DIR, ignore_errors=True)
            had_old = swap_into(ready, target, backup)
        except OSError as exc:  # e.g. no permission to replace the folder: say where the results are
            where = ready if ready.exists() else self.staging
            raise EcoassessError(f"the results could not be moved to {target} ({exc.strerror or exc}); they are "
                                 f"complete in {where}") from exc
        self._state = "committed"
        if had_old:
            shutil.rmtree(backup, ignore_errors=True)
        return target

    def abort(self) -> None:
        """Drop everything written so far; an earlier ``out_dir`` is left as it was."""
        if self._state == "open":
            shutil.rmtree(self.staging, ignore_errors=True)
            self._state = "aborted"


# -- which folder may be replaced ------------------------------------------------------------------------------

def usable_out_dir(out_dir, *, force: bool = False, stages=None) -> Path:
    """The absolute results folder for ``out_dir`` (symlinks followed), or :class:`OutFolderError` when it would
    replace anything ecoassess did not write. With ``force``, such a folder gets a new subfolder for the results.

    ``stages``: the stage names of a run limited to some stages (``ecoassess redline``): it must not replace
    earlier results that hold more (the annual run's layers and tables), so such a folder is refused too."""
    given = Path(out_dir).expanduser()
    try:
        out = given.resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop
        raise OutFolderError(f"{given}: the results folder cannot be resolved ({exc}); a symlink loop?") from exc
    if out.parent == out or not out.name:
        raise OutFolderError(f"{given}: the results folder cannot be the root of a file system; give a folder of "
                             "its own, e.g. --out results/2024")
    if out.exists() and not out.is_dir():
        raise OutFolderError(f"{given}: is a file, not a results folder")
    if out.is_dir():
        foreign = foreign_files(out)
        if foreign:
            if force:
                return _forced_subfolder(out)
            more = f"{len(foreign) - 5}{'+' if len(foreign) >= 20 else ''}"
            shown = ", ".join(foreign[:5]) + (f" and {more} more" if len(foreign) > 5 else "")
            raise OutFolderError(
                f"{given}: holds files that are not results of an earlier ecoassess run, or were changed after it "
                f"({shown}); ecoassess replaces "
                "a results folder as a whole and never deletes what it did not write. Give a new or empty folder, or "
                f"an earlier results folder — or add --force to put the results into a new subfolder "
                f"{FORCED_SUBFOLDER}/ inside it")
        more_stages = _stages_beyond(out, stages)
        if more_stages:
            if force:
                return _forced_subfolder(out)
            raise OutFolderError(
                f"{given}: holds the results of an earlier run with more stages ({', '.join(more_stages)}) than this "
                f"one ({', '.join(stages)}); it would replace them. Give another folder (e.g. {given}-"
                f"{stages[0].replace(' ', '_')}), run the whole assessment, or add --force to put the results into a "
                f"new subfolder {FORCED_SUBFOLDER}/ inside it")
    for folder in out.parents:  # the staging folder is made beside it: name the user's path, not that
        if folder.exists():
            if not folder.is_dir():
                raise OutFolderError(f"{folder}: is a file, not a folder; the results folder {given} cannot be made "
                                     "there")
            if not os.access(folder, os.W_OK):
                raise OutFolderError(f"{folder}: no permission to write the results folder {given} there")
            break
    return out


def foreign_files(folder: Path) -> list[str]:
    """Files in ``folder`` that replacing it would lose: everything, unless its manifest lists every file (GIS side
    files of listed files and OS litter excepted) — and a listed file changed since the run wrote it (its size or
    SHA-256 differs from the manifest's: a reviewer's sheet added to the workbook, a corrected table). Empty for
    an empty folder."""
    listed = _manifest_outputs(folder / MANIFEST_NAME)
    if listed is None:  # not a results folder: a few names are enough to say so (a big share is not walked)
        return sorted(p.relative_to(folder).as_posix() for p in itertools.islice(_walk_files(folder), 20))
    files = sorted(p.relative_to(folder).as_posix() for p in _walk_files(folder))

    def ours(rel: str) -> bool:
        if rel in listed or rel == MANIFEST_NAME or rel.rsplit("/", 1)[-1] in _OS_LITTER:
            return True
        return any(rel.endswith(sfx) and rel[: -len(sfx)] in listed for sfx in _SIDE_SUFFIXES) or \
            rel.endswith(".aux.xml") and any(rel.startswith(f"{o}.") for o in listed)

    def changed(rel: str) -> bool:
        size, sha = listed.get(rel, (None, None))
        path = folder / rel
        if size is None or not path.is_file():
            return False
        return path.stat().st_size != size or (sha is not None and sha256_file(path) != sha)

    return ([rel for rel in files if not ours(rel)]
            + [f"{rel} (changed since ecoassess wrote it)" for rel in files if rel in listed and changed(rel)])


def _walk_files(folder: Path):
    """Every file under ``folder`` (symlinks not followed: a link into user data is not a file of the folder)."""
    for root, dirs, names in os.walk(folder, followlinks=False):
        for name in names:
            yield Path(root) / name
        for name in dirs:
            if (Path(root) / name).is_symlink():
                yield Path(root) / name


def _manifest_outputs(path: Path) -> dict[str, tuple] | None:
    """``{path: (size_bytes, sha256)}`` of the outputs an ecoassess manifest lists, or None when ``path`` is not
    one."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or "ecoassess_version" not in manifest:
        return None
    return {o["path"]: (o.get("size_bytes"), o.get("sha256")) for o in manifest.get("outputs", [])
            if isinstance(o, dict) and "path" in o}


def _stages_beyond(folder: Path, stages) -> list[str]:
    """The stages of the earlier results in ``folder`` that a run of only ``stages`` would not make again (``[]``
    when ``stages`` is None: a whole run replaces any earlier one). Results without a record of their stages
    (written before it was kept) count as a whole run."""
    if stages is None:
        return []
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []                              # no earlier results here: nothing to replace
    earlier = (manifest.get("extra") or {}).get("stages")
    if earlier is None:
        return ["the whole assessment"]
    return [s for s in earlier if s not in set(stages)]


def _forced_subfolder(folder: Path) -> Path:
    """``folder/ecoassess-results`` — or ``-2``, ``-3``, ... when that name is taken by something not ecoassess's."""
    for i in range(1, 1000):
        cand = folder / (FORCED_SUBFOLDER if i == 1 else f"{FORCED_SUBFOLDER}-{i}")
        if not cand.exists() or (cand.is_dir() and not foreign_files(cand)):
            log.warning("%s holds files of its own: the results go to %s (--force)", folder, cand)
            return cand
    raise OutFolderError(f"{folder}: no free subfolder name for the results")


def _write_minimal_manifest(folder: Path) -> None:
    """A manifest listing the folder's files (for stores used without a run, e.g. ``indices compute``)."""
    from ecoassess.manifest import build_manifest, write_manifest

    full = build_manifest(config={}, config_path=None, inputs=[], outputs_dir=folder, timings={})
    write_manifest({k: full[k] for k in ("manifest_version", "ecoassess_version", "outputs")}, folder / MANIFEST_NAME)


# -- crash recovery --------------------------------------------------------------------------------------------

def _owner_alive(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` is alive and old enough to have made ``folder`` (a reused pid is not its owner)."""
    import psutil

    if pid == os.getpid():
        return False  # this process's own leftover: no store of ours is still using it (it has its own name)
    try:
        started = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return psutil.pid_exists(pid) if pid > 0 else False
    try:
        changed = folder.lstat().st_ctime
    except OSError:
        return False
    return started <= changed + 1.0


def _leftovers(out_dir: Path) -> list[tuple[str, int, Path]]:
    """``(what, pid, path)`` of the staging/ready/backup folders beside ``out_dir``, this folder's own only."""
    found = []
    try:
        entries = list(out_dir.parent.iterdir())
    except OSError:
        return found
    for entry in entries:
        m = _LEFTOVER.match(entry.name)
        if m and m["out"] == out_dir.name:
            found.append((m["what"], int(m["pid"]), entry))
    order = {"ready": 0, "old": 1, "partial": 2}  # a finished run's results first: its backup is then stale
    return sorted(found, key=lambda t: (t[1], order[t[0]]))


def recover_interrupted(out_dir: Path) -> list[str]:
    """Complete or undo commits of ``out_dir`` that a killed process left half done; delete its stale backups;
    refuse when a live ecoassess process is writing the same folder. Stale staging folders are left for
    :func:`_adopt_staging`. Returns what was done (each also logged)."""
    done: list[str] = []
    for what, pid, path in _leftovers(out_dir):
        if not path.exists():
            continue
        if _owner_alive(pid, path):
            if what == "partial":
                raise OutFolderError(f"{out_dir}: another ecoassess run (process {pid}) is writing this results "
                                     f"folder ({path.name}); wait for it to finish or stop it, or give another --out")
            continue
        if what == "ready":  # that run's results were complete: finish its swap
            old = out_dir.with_name(f"{out_dir.name}.old-{pid}")
            if out_dir.exists():
                if old.exists():  # it was killed after renaming the earlier results away: they are the old ones
                    raise OutFolderError(f"{out_dir}: both {out_dir.name} and {old.name} exist beside a finished run's "
                                         f"{path.name}; check which to keep")
                os.rename(out_dir, old)
            shutil.rmtree(path / RESUME_DIR, ignore_errors=True)
            os.rename(path, out_dir)
            done.append(f"completed the interrupted commit of process {pid}: {out_dir} now holds its finished "
                        "results")
            if old.exists():
                shutil.rmtree(old, ignore_errors=True)
        elif what == "old":
            if out_dir.exists():
                shutil.rmtree(path, ignore_errors=True)
                done.append(f"removed {path.name}, the earlier results that process {pid} had replaced")
            else:
                os.rename(path, out_dir)
                done.append(f"restored the earlier results of {out_dir} from {path.name} (process {pid} was stopped "
                            "in the middle of replacing them)")
    for message in done:
        log.warning("%s", message)
    return done


def _adopt_staging(out_dir: Path, staging: Path, run_key: str | None) -> Path | None:
    """Rename the stale staging folder of a dead run with the same ``run_key`` to ``staging`` (its completed parts
    are kept, the rest deleted) and delete every other stale staging folder of ``out_dir``. Returns the adopted
    folder's old path."""
    from ecoassess import resume

    adopted = None
    for what, pid, path in _leftovers(out_dir):
        if what != "partial" or path == staging or not path.exists() or _owner_alive(pid, path):
            continue
        if adopted is None and run_key is not None and resume.staging_run_key(path) == run_key:
            os.rename(path, staging)
            parts = resume.keep_completed(staging)
            adopted = path
            if parts:
                log.info("resuming the run stopped in %s (process %d): its completed part(s) %s are reused",
                         path.name, pid, ", ".join(parts))
            else:
                log.info("the run stopped in %s (process %d) had completed no part yet: starting afresh", path.name,
                         pid)
            continue
        size_mb = sum(p.stat().st_size for p in _walk_files(path) if p.is_file()) / 2**20
        shutil.rmtree(path, ignore_errors=True)
        log.warning("removed %s, the unfinished results of a stopped run (process %d, %.1f MB)", path.name, pid,
                    size_mb)
    return adopted


class _EpsgCachedCRS(pyproj.CRS):
    """A CRS whose EPSG code is looked up once per process. pyogrio asks for it on every layer it writes, and
    PROJ needs ~0.1 s to establish that a custom CRS (the China Albers analysis CRS) has none — about a second per
    run. The file gets the same SRS either way (the EPSG code if there is one, else the WKT)."""

    def to_epsg(self, min_confidence: int = 70):
        return _epsg_code(self.to_wkt(), min_confidence)


@functools.lru_cache(maxsize=32)
def _epsg_code(wkt: str, min_confidence: int):
    return pyproj.CRS.from_wkt(wkt).to_epsg(min_confidence)


def _cell(v):
    """A value openpyxl can store: NaN/None → empty, numpy scalars → Python, other objects → text."""
    import math

    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (int, float, str, bool)):
        return v
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
        if isinstance(v, pd.Timestamp):
            return v.to_pydatetime().replace(tzinfo=None)
    except ImportError:  # pragma: no cover
        pass
    return str(v)



__all__ = ["ResultsStore", "OutFolderError", "atomic_path", "usable_out_dir", "recover_interrupted", "GPKG_NAME",
           "XLSX_RELPATH", "MANIFEST_NAME"]
