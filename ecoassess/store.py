"""The results folder of one run, written atomically as a whole.

Everything goes into a staging folder beside ``out_dir`` (``<out>.partial-<pid>``). :meth:`ResultsStore.commit`
moves it into place; an ``out_dir`` from an earlier run is replaced only then (renamed to ``<out>.old-<pid>``,
staging renamed to ``out_dir``, the old one deleted). :meth:`ResultsStore.abort`, or an exception inside
``with ResultsStore(out) as store:``, removes the staging folder and leaves an earlier ``out_dir`` untouched.
A crash between the two renames of ``commit`` leaves the earlier results at ``<out>.old-<pid>``.

Tables go to ``results.gpkg`` (one layer per table; plain DataFrames as attribute-only layers),
``tables/<name>.csv`` (UTF-8 with BOM, so Excel shows Chinese correctly) and one sheet each in
``tables/results.xlsx`` (written once, by :meth:`ResultsStore.flush` or at commit: rewriting the whole workbook
after every table made a run's table writing grow with the square of the number of tables). CSV and
Excel carry the attributes only; geometries are in the GeoPackage. GeoPackage and workbook are written
deterministically (fixed timestamps), so the same tables give byte-identical files.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pyproj

from ecoassess.errors import EcoassessError

GPKG_NAME = "results.gpkg"
XLSX_RELPATH = "tables/results.xlsx"
_FIXED_TIME = "2000-01-01T00:00:00Z"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


@contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds, delete it otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix if suffix is not None else path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class ResultsStore:
    """A run's results folder, staged beside ``out_dir`` and moved into place by :meth:`commit`."""

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir).absolute()
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise EcoassessError(f"{self.out_dir}: is a file, not a results folder")
        for folder in self.out_dir.parents:  # the staging folder is made beside it: name the user's path, not that
            if folder.exists():
                if not folder.is_dir():
                    raise EcoassessError(f"{folder}: is a file, not a folder; the results folder {self.out_dir} "
                                         "cannot be made there")
                if not os.access(folder, os.W_OK):
                    raise EcoassessError(f"{folder}: no permission to write the results folder {self.out_dir} there")
                break
        self.staging = self.out_dir.with_name(f"{self.out_dir.name}.partial-{os.getpid()}")
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        self._registry: dict[str, dict] = {}
        self._sheets: dict[str, object] = {}  # sheet name -> DataFrame (attributes only)
        self._sheet_of: dict[str, str] = {}  # table name -> sheet name
        self._sheets_written = True  # the workbook on disk holds every sheet (none yet: nothing to write)
        self._state = "open"

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
        if kind is not None:
            self.register(rel, kind, description)
        return p

    def register(self, relpath, kind: str, description: str | None = None) -> None:
        """Record an output (relative path → kind, description) for the manifest."""
        self._registry[Path(relpath).as_posix()] = {"kind": kind, "description": description or ""}

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
        is_geo = isinstance(table, gpd.GeoDataFrame) and table.geometry.name in table.columns
        attrs = pd.DataFrame(table.drop(columns=table.geometry.name)) if is_geo else pd.DataFrame(table)
        desc = description or name
        if gpkg:
            self._write_gpkg(name, table if is_geo else attrs)
            self.register(GPKG_NAME, "geopackage", "tables and vector layers")
        if csv:
            p = self.path(f"tables/{name}.csv")
            with atomic_path(p) as tmp:
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
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _FIXED_TIME})
        try:
            path = self.path(GPKG_NAME)
            kwargs = {"layer": name, "driver": "GPKG"}
            if path.exists() and name in {lyr[0] for lyr in pyogrio.list_layers(path)}:
                kwargs["layer_options"] = {"OVERWRITE": "YES"}
            pyogrio.write_dataframe(frame, path, **kwargs)
        finally:
            pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})

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
                ws.column_dimensions[get_column_letter(j)].width = min(60, max(_text_width(v) for v in values) + 2)
            ws.freeze_panes = "A2"
        buf = io.BytesIO()
        wb.save(buf)
        with atomic_path(self.path(XLSX_RELPATH)) as tmp:
            tmp.write_bytes(_deterministic_zip(buf.getvalue()))

    # -- end of the run ------------------------------------------------------------------------------------------
    def commit(self, target=None) -> Path:
        """Move the staging folder to ``out_dir`` — or to ``target``, a folder beside it — replacing an earlier
        folder there only now. Returns the folder the results are in."""
        self.flush()
        target = self.out_dir if target is None else Path(target).absolute()
        if target.parent != self.out_dir.parent:
            raise ValueError(f"results can only be moved beside {self.out_dir}, not to {target}")
        backup = target.with_name(f"{target.name}.old-{os.getpid()}")
        had_old = target.exists()
        try:
            if had_old:
                if backup.exists():
                    shutil.rmtree(backup)
                os.rename(target, backup)
            try:
                os.rename(self.staging, target)
            except BaseException:
                if had_old:
                    os.rename(backup, target)
                raise
        except OSError as exc:  # e.g. no permission to replace the folder: say where the results are
            raise EcoassessError(f"the results could not be moved to {target} ({exc.strerror or exc}); they are "
                                 f"complete in {self.staging}") from exc
        self._state = "committed"
        if had_old:
            shutil.rmtree(backup, ignore_errors=True)
        return target

    def abort(self) -> None:
        """Drop everything written so far; an earlier ``out_dir`` is left as it was."""
        if self._state == "open":
            shutil.rmtree(self.staging, ignore_errors=True)
            self._state = "aborted"


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


def _text_width(text: str) -> int:
    """Display width in Excel character units: CJK (wide) characters count twice."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _deterministic_zip(data: bytes) -> bytes:
    """Rewrite an .xlsx (zip) with fixed entry times and fixed document timestamps."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\g<1>" + _FIXED_TIME.encode(), body)
            zi = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, body)
    return out.getvalue()


__all__ = ["ResultsStore", "atomic_path", "GPKG_NAME", "XLSX_RELPATH"]
