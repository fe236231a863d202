"""Finding a font that has Chinese glyphs, so that map text never shows empty boxes."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from ecoassess.errors import EcoassessError

#: Family names tried in order (WenQuanYi Micro Hei is what scripts/install_system_packages.sh installs).
CJK_FAMILIES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
                "Source Han Sans CN", "Noto Sans CJK JP", "Microsoft YaHei", "SimHei", "PingFang SC")
_FILE_NAMES = ("wqy-microhei.ttc", "wqy-zenhei.ttc", "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf",
               "NotoSansSC-Regular.otf", "SourceHanSansSC-Regular.otf", "SourceHanSans-Regular.ttc",
               "msyh.ttc", "simhei.ttf", "PingFang.ttc")
_FOLDERS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts", "/System/Library/Fonts",
            "/Library/Fonts", "C:/Windows/Fonts")


@lru_cache(maxsize=1)
def find_cjk_font() -> Path:
    """Path of an installed CJK font (registered with matplotlib), or a clear error saying how to install one."""
    from matplotlib import font_manager

    by_name = {}
    for entry in font_manager.fontManager.ttflist:
        by_name.setdefault(entry.name, entry.fname)
    for family in CJK_FAMILIES:
        if family in by_name:
            return Path(by_name[family])
    for folder in _FOLDERS:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for name in _FILE_NAMES:
            for hit in sorted(root.rglob(name)):
                font_manager.fontManager.addfont(str(hit))
                return hit
    hint = ("run scripts/install_system_packages.sh, or `sudo apt-get install fonts-wqy-microhei`"
            if sys.platform.startswith("linux") else "install a CJK font such as Noto Sans CJK SC")
    raise EcoassessError(f"no CJK font found for Chinese map text (looked for {', '.join(CJK_FAMILIES[:4])}); {hint}")


@lru_cache(maxsize=1)
def cjk_family() -> str:
    """matplotlib family name of :func:`find_cjk_font`."""
    from matplotlib import font_manager

    path = find_cjk_font()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def font_rc() -> dict:
    """rcParams for map text: the CJK font first, DejaVu Sans as fallback for symbols it lacks."""
    return {"font.family": "sans-serif", "font.sans-serif": [cjk_family(), "DejaVu Sans"],
            "axes.unicode_minus": False, "svg.fonttype": "none", "pdf.fonttype": 42}


__all__ = ["find_cjk_font", "cjk_family", "font_rc", "CJK_FAMILIES"]


def symbol_font() -> Path:
    """DejaVu Sans as matplotlib ships it: the fallback for the symbols a CJK font lacks (superscripts such as the
    ⁶ of 10⁶ m³), so that the PDF embeds a glyph for every character."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
