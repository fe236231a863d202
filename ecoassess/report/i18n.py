"""Report wording in two languages: gettext message catalogs (one per part of the report) and numbers formatted
for the language by Babel.

Message ids are English; the Chinese wording lives in ``ecoassess/report/locale/zh/LC_MESSAGES/<domain>.po``.
English needs no catalog. Catalogs are compiled in memory (Babel) when first used, so the repository holds only
the editable ``.po`` text. Domains: ``report`` (the document), ``maps``, ``webmap``, ``warnings``.
"""

from __future__ import annotations

import gettext
import io
import math
from functools import lru_cache
from pathlib import Path

from ecoassess.errors import InputError

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
#: Babel locale of each report language (digit grouping, decimal mark).
BABEL_LOCALES = {"zh": "zh_Hans_CN", "en": "en_GB"}
LOCALE_DIR = Path(__file__).with_name("locale")


def check_language(lang: str) -> str:
    """``lang`` when it is a report language, else a clear error naming the ones there are."""
    if lang not in LANGUAGES:
        raise InputError(f"report language {lang!r} is not available; choose one of {', '.join(LANGUAGES)}")
    return lang


def catalog_path(lang: str, domain: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"


@lru_cache(maxsize=None)
def translations(lang: str, domain: str) -> gettext.NullTranslations:
    """The gettext translations of ``domain`` in ``lang`` (English: the message ids themselves)."""
    check_language(lang)
    path = catalog_path(lang, domain)
    if lang == "en" or not path.is_file():
        if lang != "en":
            raise FileNotFoundError(f"no {lang} message catalog for {domain!r}: {path}")
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=domain)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def translator(lang: str, domain: str):
    """``_`` for ``domain`` in ``lang``: ``_("Ecological index")`` → "生态质量指数" in Chinese."""
    return translations(lang, domain).gettext


def ntranslator(lang: str, domain: str):
    """``ngettext`` for ``domain`` in ``lang`` (plural forms; Chinese has one)."""
    return translations(lang, domain).ngettext


def format_number(value, lang: str, digits: int | None = None) -> str:
    """``value`` as the language writes it (grouped thousands; ``digits`` decimals, or as many as it has up to
    6); an empty string for None/NaN."""
    from babel.numbers import format_decimal

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        return str(value)
    if digits is None:
        fmt = "#,##0.######" if not float(value).is_integer() else "#,##0"
    else:
        fmt = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    if math.copysign(1.0, float(value)) < 0 and _rounds_to_zero(value, 6 if digits is None else digits):
        value = 0  # -0.004 at two decimals is "0.00", not "-0.00" (and Excel shows it so)
    return format_decimal(value, format=fmt, locale=BABEL_LOCALES[check_language(lang)], decimal_quantization=True)


def _rounds_to_zero(value, digits: int) -> bool:
    from decimal import ROUND_HALF_EVEN, Decimal

    return Decimal(str(float(value))).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN) == 0


def format_value(value, lang: str, digits: int | None = None) -> str:
    """A table cell as text: numbers by :func:`format_number`, None/NaN as empty, anything else as ``str``."""
    import numbers

    if value is None:
        return ""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return format_number(value, lang, digits)
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def untranslated(lang: str, domain: str, files) -> list[str]:
    """Message ids used in ``files`` (Python via ``_``/``ngettext``; Jinja2 templates via ``_``) that the
    ``lang`` catalog of ``domain`` does not translate — what a test asserts is empty."""
    from babel.messages.extract import extract_from_file
    from babel.messages.pofile import read_po

    with catalog_path(lang, domain).open("rb") as f:
        catalog = read_po(f, locale=lang, domain=domain)
    missing = []
    for path in files:
        path = Path(path)
        method = "python" if path.suffix == ".py" else "ecoassess.report.i18n:extract_jinja"
        for _, msg, _, _ in extract_from_file(method, path):
            msgid = msg[0] if isinstance(msg, tuple) else msg
            entry = catalog.get(msgid)
            if entry is None or not entry.string or (isinstance(entry.string, tuple) and not all(entry.string)):
                missing.append(msgid)
    return sorted(set(missing))


def extract_jinja(fileobj, keywords, comment_tags, options):
    """Babel extractor for Jinja2 templates: ``{{ _("...") }}`` and ``{% trans %}`` blocks (Jinja2's i18n
    extension)."""
    from jinja2 import Environment
    from jinja2.ext import babel_extract

    del Environment  # babel_extract builds its own environment
    yield from babel_extract(fileobj, keywords, comment_tags, {**options, "extensions": "jinja2.ext.i18n"})
