"""Shared readers of the user's inputs: vector layers (their text encoding found), tables (CSV in UTF-8 or GBK,
Excel), and GB/T 2260 code normalisation.

Every zone vector a run or ``validate`` reads (counties, red-line units, function zones, the study area; rivers
and truth polygons too) goes through :func:`read_vector` / :func:`vector_info`, so that a text encoding is
decided once, in one way, for all of them:

- a GeoPackage or GeoJSON is UTF-8 by its specification: read as it is;
- a shapefile with a ``.cpg`` file: the ``.cpg`` wins (GDAL reads it);
- a shapefile whose DBF header names a code page (language driver id): GDAL reads it;
- a shapefile with neither: GDAL would take the text as ISO-8859-1 and turn Chinese names into mojibake
  (``甲县`` → ``¼×ÏØ``), silently. The DBF's field names and text fields are tried as UTF-8 (strictly), then as
  GB18030 (the superset of GBK / GB2312 that Chinese Windows and ArcGIS write), as the CSV tables already are;
  the encoding found is logged and listed by :func:`input_encodings` (the manifest's ``extra.input_encodings``).

This module imports nothing of ecoassess but :mod:`ecoassess.errors`: ``config``, ``validate``, ``tables`` and
the stages import it, never the other way round.
"""

from __future__ import annotations

import functools
import logging
import re
import struct
import unicodedata
from pathlib import Path

import pandas as pd

from ecoassess.errors import InputError

log = logging.getLogger(__name__)

GB2260_CODE = re.compile(r"^[1-9]\d{5}$")
#: encodings tried, in this order, on a DBF that declares none
DBF_CANDIDATES = ("UTF-8", "GB18030")
#: what GDAL assumes for a DBF that declares no encoding
_GDAL_FALLBACK = "ISO-8859-1"
#: at most this much of a DBF is read to decide its encoding (county files are far smaller)
_SNIFF_BYTES = 64 * 2**20


# -- GB/T 2260 codes ------------------------------------------------------------------------------------------

def code_text(value) -> str | None:
    """The text of a code cell as written (stripped; ``510100.0`` → ``'510100'``), or None for an empty cell."""
    try:
        import pandas as pd

        if value is None or pd.isna(value):  # None, NaN, pd.NA, NaT: pandas 3 gives NaN for empty text cells
            return None
    except (TypeError, ValueError):  # an array-like cell: not a code
        return str(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def normalise_code(value) -> str | None:
    """A GB/T 2260 code as a six-digit string, or None when ``value`` is not one (``510100`` / ``'510100'``).

    Full-width digits (``５１０１０１``, typed with a Chinese input method) are read as the ASCII digits they stand
    for (Unicode NFKC); :func:`is_full_width` tells the callers that warn about it.
    """
    text = code_text(value)
    if text is None:
        return None
    text = unicodedata.normalize("NFKC", text).strip()
    return text if GB2260_CODE.match(text) and text.isascii() else None


def is_full_width(value) -> bool:
    """Whether a code cell is only a code once NFKC turns full-width characters into ASCII ones."""
    text = code_text(value)
    return text is not None and normalise_code(text) is not None and not GB2260_CODE.match(text)


# -- text encoding of vector files ----------------------------------------------------------------------------

def _dbf_of(path: Path, info: dict | None) -> Path | None:
    """The DBF file holding the attributes of ``path`` (a shapefile or a bare .dbf), or None."""
    suffix = path.suffix.lower()
    if suffix == ".dbf":
        return path
    if suffix != ".shp":
        return None
    for cand in (path.with_suffix(".dbf"), path.with_suffix(".DBF")):
        if cand.is_file():
            return cand
    return None


def _has_cpg(dbf: Path) -> bool:
    return any(dbf.with_suffix(s).is_file() for s in (".cpg", ".CPG"))


def _dbf_texts(dbf: Path) -> list[bytes]:
    """The raw bytes of the DBF's field names and of every value of its character fields (trailing blanks off)."""
    data = dbf.open("rb").read(_SNIFF_BYTES)
    if len(data) < 32:
        return []
    n_records, header_len, record_len = struct.unpack("<IHH", data[4:12])
    fields, pos = [], 32
    offset = 1  # the deletion flag
    texts: list[bytes] = []
    while pos + 32 <= min(header_len, len(data)) and data[pos] != 0x0D:
        desc = data[pos:pos + 32]
        texts.append(desc[:11].split(b"\x00", 1)[0])
        ftype, flen = chr(desc[11]), desc[16]
        if ftype == "C":
            fields.append((offset, flen))
        offset += flen
        pos += 32
    if record_len <= 0:
        return texts
    for i in range(n_records):
        start = header_len + i * record_len
        record = data[start:start + record_len]
        if len(record) < record_len:
            break  # beyond the sniffed bytes
        for off, flen in fields:
            value = record[off:off + flen].rstrip(b" \x00")
            if value:
                texts.append(value)
    return texts


def _decodes(texts: list[bytes], encoding: str) -> bool:
    for raw in texts:
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as exc:
            # a fixed-width DBF field may cut the last multi-byte character of a long name: that is not a sign
            # of another encoding
            if not (exc.reason == "unexpected end of data" and exc.end == len(raw)):
                return False
    return True


def _plausible_char(ch: str) -> bool:
    """A character of the names an office writes: ASCII, CJK ideographs (incl. extension A), CJK punctuation,
    full-width forms."""
    o = ord(ch)
    return (o < 0x80 or 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x3000 <= o <= 0x303F
            or 0xFF00 <= o <= 0xFFEF or ch in "·—…“”‘’")


def _plausible_share(texts: list[bytes], encoding: str) -> float:
    chars = "".join(raw.decode(encoding, errors="ignore") for raw in texts)
    return sum(map(_plausible_char, chars)) / len(chars) if chars else 0.0


@functools.lru_cache(maxsize=256)
def _detect(dbf: str, size: int, mtime_ns: int) -> tuple[str | None, str]:
    """(encoding to pass to GDAL or None to let GDAL decide, how it was decided) for one DBF version."""
    path = Path(dbf)
    if _has_cpg(path):
        return None, "its .cpg file"
    try:
        ldid = path.open("rb").read(32)[29:30]
        texts = _dbf_texts(path)
    except OSError:
        return None, "unreadable"  # the reader names an unreadable file
    if ldid and ldid != b"\x00":
        return None, "the code page in its DBF header"
    if all(t.isascii() for t in texts):
        return None, "ASCII only"
    fitting = [e for e in DBF_CANDIDATES if _decodes(texts, e)]
    if not fitting:
        return None, f"undetermined (no .cpg; neither {' nor '.join(DBF_CANDIDATES)}: read as GDAL's default)"
    if len(fitting) > 1:
        # GBK bytes of many short names are valid UTF-8 too (平山 → 'ƽɽ'): take the reading that gives the text an
        # office writes (Chinese, ASCII), not Latin-extended, Cyrillic or combining marks
        scores = {e: _plausible_share(texts, e) for e in fitting}
        best = max(fitting, key=lambda e: scores[e])  # ties keep the order of DBF_CANDIDATES
        how = (f"detected (no .cpg; valid {' and '.join(fitting)}, and {best} reads as Chinese/ASCII text: "
               f"{scores[best]:.0%} of the characters, {100 * min(scores.values()):.0f} % the other way)")
        return best, how
    return fitting[0], f"detected (no .cpg; the text is valid {fitting[0]})"


def vector_encoding(path, info: dict | None = None) -> tuple[str | None, str]:
    """The encoding to read ``path`` with (None: the file says, or it does not matter) and how it was decided."""
    path = Path(path)
    dbf = _dbf_of(path, info)
    if dbf is None:
        return None, "defined by the format"
    try:
        st = dbf.stat()
    except OSError:
        return None, "unreadable"
    return _detect(str(dbf), st.st_size, st.st_mtime_ns)


_said: set[tuple[str, str]] = set()


def _say(path: Path, encoding: str) -> None:
    key = (str(path), encoding)
    if key in _said:
        return
    _said.add(key)
    if encoding == "GB18030":
        log.info("%s has no .cpg file and its text is not UTF-8: read as GB18030 (GBK); put a %s file holding "
                 "'GBK' beside it to say so", path, Path(path).with_suffix(".cpg").name)
    else:
        log.info("%s has no .cpg file: its text is read as %s", path, encoding)


def _encoding_kw(path: Path) -> dict:
    encoding, how = vector_encoding(path)
    if encoding is None:
        if how.startswith("undetermined") and (str(path), how) not in _said:
            _said.add((str(path), how))
            log.warning("%s: the text encoding of its attributes is %s; names may be garbled: add a .cpg file "
                        "naming the encoding (e.g. GBK or UTF-8)", path, how)
        return {}
    _say(path, encoding)
    return {"encoding": encoding}


def vector_info(path, layer=None, **kwargs) -> dict:
    """``pyogrio.read_info`` with the file's text encoding (field names of a GBK shapefile come out right);
    ``info['encoding']`` is the encoding used. Errors are GDAL's (callers name the key)."""
    import pyogrio

    path = Path(path)
    kw = _encoding_kw(path)
    info = pyogrio.read_info(path, layer=layer, **kw, **kwargs)
    if kw:
        info["encoding"] = kw["encoding"]
    return info


def read_vector(path, layer=None, *, columns=None, read_geometry: bool = True, key: str | None = None,
                crs: str | None = None, transformation=None):
    """A vector layer as a GeoDataFrame (a DataFrame when ``read_geometry`` is False), its text decoded with the
    encoding :func:`vector_encoding` finds. An unreadable file is an :class:`InputError` naming it (and ``key``).

    ``crs`` and ``transformation`` are the config's declarations (:func:`ecoassess.china.apply_declared`):
    ``gcj02`` / ``bd09`` coordinates come back in WGS84, an old-datum layer moved by the given transformation."""
    import pyogrio

    path = Path(path)
    kw = _encoding_kw(path)
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer, columns=columns, read_geometry=read_geometry, **kw)
    except Exception as exc:  # noqa: BLE001 - any GDAL/OGR failure is a problem of this file
        raise InputError(f"cannot be read as a vector layer ({exc})", path=path, field=key) from exc
    if read_geometry and (crs is not None or transformation is not None):
        from ecoassess.china import apply_declared

        gdf = apply_declared(gdf, crs, transformation, path=path, key=key)
    return gdf


def input_encodings(paths) -> dict[str, dict]:
    """For the manifest: ``{path: {"encoding", "how"}}`` of the vector files whose encoding had to be found
    (shapefiles without .cpg and with non-ASCII text); files whose format or .cpg says it are left out."""
    found = {}
    for path in paths:
        path = Path(path)
        if _dbf_of(path, None) is None:
            continue
        encoding, how = vector_encoding(path)
        if how.startswith(("detected", "undetermined")):
            found[str(path)] = {"encoding": encoding or _GDAL_FALLBACK, "how": how}
    return dict(sorted(found.items()))


__all__ = ["GB2260_CODE", "normalise_code", "is_full_width", "code_text", "vector_encoding", "vector_info",
           "read_vector", "input_encodings", "read_table", "refuse_archive"]


# -- archives given where a product folder is expected --------------------------------------------------------

_ARCHIVE_MAGIC = ((b"PK\x03\x04", "ZIP"), (b"PK\x05\x06", "ZIP"), (b"\x1f\x8b", "gzip-compressed (.tar.gz)"),
                  (b"BZh", "bzip2-compressed (.tar.bz2)"), (b"\xfd7zXZ\x00", "xz-compressed (.tar.xz)"),
                  (b"7z\xbc\xaf\x27\x1c", "7-Zip"), (b"Rar!\x1a\x07", "RAR"))


def archive_kind(path) -> str | None:
    """'ZIP', 'tar', ... when ``path`` is an archive file (by its first bytes), else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            head = f.read(262)
    except OSError:
        return None
    for magic, kind in _ARCHIVE_MAGIC:
        if head.startswith(magic):
            return kind
    if head[257:262] == b"ustar":
        return "tar"
    return None


def refuse_archive(path, what: str) -> None:
    """An :class:`InputError` saying how to unpack ``path`` when it is an archive (a downloaded product as it came).

    Archives are not read in place (GDAL's /vsizip/ or /vsitar/ would do for the band files): the readers find a
    product's metadata (MTL, MTD_MSIL2A.xml, STAC item) and band files in its folder, and a lazy, chunked read
    through a compressed archive decompresses the stream again for every chunk. Unpacking once is faster and the
    manifest then hashes the files the run really read.
    """
    kind = archive_kind(path)
    if kind is None:
        return
    path = Path(path)
    stem = path.name
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar", ".7z", ".rar"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    target = path.with_name(stem or f"{path.name}.d")
    command = (f"unzip '{path}' -d '{target}'" if kind == "ZIP" else
               f"mkdir '{target}' && tar -xf '{path}' -C '{target}'" if "tar" in kind or "compressed" in kind else
               f"7z x '{path}' -o'{target}'")
    raise InputError(f"is a {kind} archive, not {what}; unpack it first, e.g. {command}, and give the unpacked "
                     "folder (for Sentinel-2 the *.SAFE folder inside) as the path", path=path)


def _csv_encoding(path: Path) -> str:
    """``utf-8-sig`` or ``gb18030`` for a CSV file (read whole: statistics tables are small)."""
    raw = path.read_bytes()[:_SNIFF_BYTES]
    if raw.startswith(b"\xef\xbb\xbf") or raw.isascii():
        return "utf-8-sig"
    lines = raw.splitlines()
    if not _decodes(lines, "UTF-8"):
        return "gb18030"
    if _decodes(lines, "GB18030") and _plausible_share(lines, "GB18030") > _plausible_share(lines, "UTF-8"):
        return "gb18030"
    return "utf-8-sig"


def read_table(path: Path, sheet: str | None = None, **csv_options) -> pd.DataFrame:
    """Read a CSV or Excel table; a clear InputError if it cannot be read. CSV text is UTF-8 (with or without
    BOM) or GB18030 (the superset of GBK that Excel on Chinese Windows writes): UTF-8 unless the text is not UTF-8,
    or reads as Chinese only in GB18030 (GBK bytes of short names can be valid UTF-8 too)."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".xlsx", ".xls"):
            return pd.read_excel(path, sheet_name=sheet or 0)
        if _csv_encoding(path) == "gb18030":
            table = pd.read_csv(path, encoding="gb18030", **csv_options)
            log.info("%s is not UTF-8 text: read as GB18030/GBK", path.name)
            return table
        return pd.read_csv(path, encoding="utf-8-sig", **csv_options)
    except Exception as exc:  # noqa: BLE001 - parser errors of any kind belong to this file
        raise InputError(f"cannot be read as a table ({exc})", path=path,
                         expected="a CSV (UTF-8 or GBK) or an Excel workbook with a header row") from exc
