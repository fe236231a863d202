"""Where the data definitions live: ``indices/`` and ``layers/`` of a checkout, or ``ecoassess/_data/`` in a wheel."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def data_dir(kind: str) -> Path:
    """The folder of data definitions ``kind`` ('indices' or 'layers')."""
    if kind not in ("indices", "layers"):
        raise ValueError(f"unknown data folder {kind!r}")
    for candidate in (_PACKAGE_DIR / "_data" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"ecoassess data folder '{kind}' not found beside the package ({_PACKAGE_DIR})")


def data_path(kind: str, name: str) -> Path:
    path = data_dir(kind) / name
    if not path.is_file():
        raise FileNotFoundError(f"ecoassess data file {path} is missing")
    return path
