"""The report as PDF, laid out from its HTML by WeasyPrint (A4, page numbers, the CJK font embedded).

Issue 22 part 4. The font is given to WeasyPrint by an ``@font-face`` rule pointing at the file that
:func:`ecoassess.report.fonts.find_cjk_font` finds, so the PDF never depends on the fonts of the machine that
opens it (WeasyPrint embeds the subset of glyphs used).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ecoassess.errors import EcoassessError
from ecoassess.files import atomic_path

log = logging.getLogger(__name__)


def font_face_css() -> str:
    """``@font-face`` rules binding the first family of the report's font stack to the installed CJK font file, and
    the symbol fallback of the stack to DejaVu Sans (:func:`ecoassess.report.fonts.symbol_font`)."""
    from ecoassess.report.fonts import find_cjk_font, symbol_font

    url = find_cjk_font().absolute().as_uri()
    rules = [f'@font-face {{ font-family: "{family}"; src: url("{url}"); }}\n'
             for family in ("WenQuanYi Micro Hei", "ecoassess CJK")]
    rules.append(f'@font-face {{ font-family: "ecoassess Symbols"; src: url("{symbol_font().as_uri()}"); }}\n')
    return "".join(rules)


def render_pdf(html_path, pdf_path) -> Path:
    """Write the PDF of the HTML report ``html_path`` to ``pdf_path`` (atomically). Figures are read from the
    paths the HTML gives, relative to its folder. Returns ``pdf_path``."""
    try:
        from weasyprint import CSS, HTML
    except (ImportError, OSError) as exc:  # OSError: the Pango libraries are missing
        raise EcoassessError(f"the PDF report needs WeasyPrint and the Pango libraries ({exc}); run "
                             "scripts/install_system_packages.sh, or leave pdf out of the report formats") from exc
    html_path, pdf_path = Path(html_path), Path(pdf_path)
    for noisy in ("weasyprint", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # the page is laid out as if it lay at a fixed address (its figures fetched from the real folder): WeasyPrint
    # names images by their URL, and the same results must give the same PDF wherever they are staged
    document = HTML(string=html_path.read_text(encoding="utf-8"), base_url=_FIXED_BASE,
                    url_fetcher=_local_fetcher(html_path.parent.absolute().as_uri() + "/"))
    with atomic_path(pdf_path) as tmp:
        document.write_pdf(str(tmp), stylesheets=[CSS(string=font_face_css())])
    return pdf_path


_FIXED_BASE = "file:///ecoassess-report/"


def _local_fetcher(base: str):
    """WeasyPrint's fetcher limited to local files and data: URLs (the report never reaches a network), reading
    what lies under :data:`_FIXED_BASE` from the folder ``base``."""
    from weasyprint.urls import URLFetcher

    class LocalFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if url.startswith(_FIXED_BASE):
                url = base + url[len(_FIXED_BASE):]
            return super().fetch(url, headers)

    return LocalFetcher(allowed_protocols={"file", "data"}, fail_on_errors=True)


__all__ = ["render_pdf", "font_face_css"]
