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


def load_yaml(path: str | Path):
    """A YAML file of data definitions, parsed with libyaml's C parser when PyYAML has it (the catalog parses
    ~10x faster than with the pure-Python parser; same YAML 1.1 resolution rules)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
