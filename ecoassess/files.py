"""Writing and hashing files safely, and the names inside a results folder (shared by store, manifest, resume).

Every output goes through :func:`atomic_path` (written beside its target, moved into place only when complete),
so a killed run never leaves a half-written file under its final name.
"""

from __future__ import annotations

import functools
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path

#: the run's record in every results folder (:mod:`ecoassess.manifest`); it marks the folder as ecoassess's
MANIFEST_NAME = "manifest.json"
#: inside a staging folder: what :mod:`ecoassess.resume` keeps of completed parts (never part of the results)
RESUME_DIR = ".ecoassess-resume"


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


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read ``chunk`` bytes at a time; computed once per process for an unchanged file
    (same path, size and modification time), as the run key and the manifest both need it."""
    st = os.stat(path)
    return _sha256_file(str(Path(path).absolute()), st.st_size, st.st_mtime_ns, chunk)


@functools.lru_cache(maxsize=4096)
def _sha256_file(path: str, size: int, mtime_ns: int, chunk: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


#: The timestamp written into Office files and GeoPackages, so that equal results give equal bytes.
FIXED_TIME = "2000-01-01T00:00:00Z"


def display_width(text) -> int:
    """Width of ``text`` in half-width characters (Excel column units, Word layout): CJK (wide, fullwidth)
    characters count double."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def deterministic_zip(data: bytes) -> bytes:
    """Rewrite an Office file (a zip: .xlsx, .docx) with fixed entry times and fixed document timestamps, so that
    equal input gives equal bytes."""
    import io
    import re
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\g<1>" + FIXED_TIME.encode(), body)
            zi = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, body)
    return out.getvalue()


def office_bytes(document) -> bytes:
    """An openpyxl workbook or python-docx document as the bytes of its file, made deterministic
    (:func:`deterministic_zip`): the same content gives the same file."""
    import io

    buf = io.BytesIO()
    document.save(buf)
    return deterministic_zip(buf.getvalue())


def swap_into(new: Path, target: Path, backup: Path) -> bool:
    """Put the folder ``new`` in place of ``target`` by renames: an existing ``target`` is first renamed to
    ``backup`` (and renamed back when the second rename fails). Returns whether there was a ``target`` — its
    ``backup`` is then the caller's to delete, once the new folder is safely in place."""
    had_old = target.exists()
    if had_old:
        os.rename(target, backup)
    try:
        os.rename(new, target)
    except BaseException:
        if had_old:
            os.rename(backup, target)
        raise
    return had_old
