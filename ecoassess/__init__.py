"""ecoassess: ecological assessment from remote sensing and GIS (NDVI/FVC, RSEI, HJ 192-2015 EI)."""

from __future__ import annotations

from ecoassess._version import __version__
from ecoassess.errors import AllMaskedError, ConfigError, EcoassessError, InputError  # noqa: E402


def load_config(path):
    """Load an assessment config (YAML) and check its schema; no input is opened (cheap). See :mod:`ecoassess.config`."""
    from ecoassess.config import load_config as _load

    return _load(path)


def validate_config(config):
    """Check a config (a path or a loaded config) and every input it names, without computing; returns the config
    or raises ConfigError listing every problem. :func:`run` does this itself. See :mod:`ecoassess.validate`."""
    from ecoassess.validate import validate_config as _validate

    return _validate(config)


def run(config, out, **kwargs):
    """Run the annual assessment described by ``config`` into folder ``out``. See :mod:`ecoassess.pipeline`."""
    from ecoassess.pipeline import run as _run

    return _run(config, out, **kwargs)


__all__ = ["__version__", "load_config", "validate_config", "run", "EcoassessError", "InputError", "ConfigError", "AllMaskedError"]
