"""Exception types. Every error a user can cause names the file, the field and what was expected."""

from __future__ import annotations

import contextlib
import errno


class EcoassessError(Exception):
    """Base class of every error ecoassess raises on purpose."""


class InputError(EcoassessError):
    """A bad input file: wrong CRS, missing band, corrupt file, everything masked, ...

    ``path`` is the offending file, ``field`` the band/column/key, ``expected`` what would have been valid.
    """

    def __init__(self, message: str, *, path=None, field: str | None = None, expected: str | None = None):
        self.path = None if path is None else str(path)
        self.field = field
        self.expected = expected
        parts = []
        if self.path:
            parts.append(self.path)
        if field:
            parts.append(f"[{field}]")
        head = " ".join(parts)
        text = f"{head}: {message}" if head else message
        if expected:
            text += f" (expected: {expected})"
        super().__init__(text)


class ProductProblems(InputError):
    """Every problem found in one image product at once (missing band files, scale factors, headers, CRS):
    ``problems`` lists them, each a sentence naming the file, the metadata field and what was expected."""

    def __init__(self, problems: list[str], *, path):
        self.problems = list(problems)
        if len(self.problems) == 1:
            Exception.__init__(self, self.problems[0])
            self.path, self.field, self.expected = str(path), None, None
        else:
            super().__init__(f"{len(self.problems)} problems: " + "; ".join(self.problems), path=path)


class ConfigError(EcoassessError):
    """The assessment config has one or more problems; ``problems`` lists them all."""

    def __init__(self, source, problems: list[str]):
        self.source = str(source)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{self.source}: {n} problem{'s' if n != 1 else ''} in the assessment config:\n{lines}")


class AllMaskedError(InputError):
    """Every pixel of a layer is nodata or masked, so no statistic can be computed."""


class DiskSpaceError(EcoassessError):
    """A file could not be written for lack of space (disk full, quota) or because the file system cannot hold a
    file that large (FAT32's 4 GB): names the file, the folder it belongs to and how much space is free there."""


#: errno -> what it means for the user
SPACE_ERRNOS = {errno.ENOSPC: "no space left on the disk", errno.EDQUOT: "the disk quota is used up",
                errno.EFBIG: "the file is larger than the file system allows (FAT32: 4 GB per file)"}
#: the same conditions as GDAL/pyogrio word them in their own exceptions (they carry no errno)
_SPACE_TEXTS = {"No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT,
                "Free disk space available is": errno.ENOSPC,  # GDAL's GTiff check before writing
                "File too large": errno.EFBIG}


def space_errno(exc: BaseException) -> int | None:
    """ENOSPC / EDQUOT / EFBIG when ``exc`` (or an exception it was raised from) is a lack of space, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in SPACE_ERRNOS:
            return exc.errno
        text = str(exc)
        for words, code in _SPACE_TEXTS.items():
            if words in text:
                return code
        exc = exc.__cause__ or exc.__context__
    return None


def _free_space(folder) -> str:
    import shutil
    from pathlib import Path

    folder = Path(folder)
    for cand in (folder, *folder.parents):
        try:
            free = shutil.disk_usage(cand).free
        except OSError:
            continue
        for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
            if free >= size:
                return f"{free / size:.1f} {unit} free there"
        return f"{free} bytes free there"
    return "free space unknown"


def space_message(code: int, path, folder=None, what: str = "folder") -> str:
    """One line: what ran out, the file being written, the folder it belongs to, the space free there, what to do."""
    from pathlib import Path

    folder = Path(folder) if folder is not None else Path(path).parent
    if code == errno.EFBIG:
        advice = "write it to a disk formatted NTFS, exFAT, ext4 or APFS"
    elif what == "spill folder":
        advice = ("free space there, point TMPDIR at a disk with room, or raise --memory-budget-mb so that less "
                  "is spilled")
    else:
        advice = "free some space, or give --out on a disk with room (earlier results are untouched)"
    return f"{SPACE_ERRNOS[code]} while writing {path} ({what} {folder}; {_free_space(folder)}): {advice}"


@contextlib.contextmanager
def space_errors(path, folder=None, what: str = "folder"):
    """Turn a lack of space while writing ``path`` into a :class:`DiskSpaceError` naming it (other errors pass)."""
    try:
        yield
    except DiskSpaceError:
        raise
    except Exception as exc:
        code = space_errno(exc)
        if code is None:
            raise
        raise DiskSpaceError(space_message(code, path, folder, what)) from exc
