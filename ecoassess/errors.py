"""Exception types. Every error a user can cause names the file, the field and what was expected."""

from __future__ import annotations


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
