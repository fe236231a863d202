"""The same scene listed twice: found before it is counted twice in a composite.

A composite counts every listed scene as one observation, so a scene listed twice doubles its weight: its clear
observations count twice (``clear_count`` 4 with 3 scenes) and the per-pixel median leans to it (the sample's
whole-area NDVI went from 0.688 to 0.639). Two entries are the same scene when

* **products** (Landsat C2 L2, Sentinel-2 L2A) carry the same product id in their metadata (MTL
  ``LANDSAT_PRODUCT_ID``, SAFE ``PRODUCT_URI``, STAC item ``id``) — whatever folder, copy or symlink they are
  read from — or their largest band file has the same content (one acquisition downloaded twice under two
  product ids, e.g. ``…_0_L2A`` and ``…_1_L2A``: an audit counted it twice). Two products of one tile and date
  with different pixels (a tile split between two datastrips) are distinct and both kept;
* **plain GeoTIFF scenes** have a band of the same role (and band number) whose file has the same content
  (SHA-256) — the same file through two paths, a symlink, a hard link or a copy. A file is hashed in full only
  when another scene has a file of the same size and the same first and last 64 KiB for that role, so that
  distinct scenes cost (almost) no reading.

:func:`duplicate_problems` checks the scenes of a config (``validate``, and so ``run``);
:func:`duplicate_scene_problems` the opened :class:`~ecoassess.sources.scene.Scene` objects a Python user
passes to :func:`~ecoassess.sources.composite` (product ids, and GeoTIFF band files by their resolved path: the
composite reads no file to compare them, and synthetic scenes may share pixel values).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PRODUCT_KINDS = ("landsat_c2l2", "sentinel2_l2a")


@dataclass
class SceneEntry:
    """One listed scene: where it is listed (``key``, e.g. ``imagery.2024[3]``), its kind, the product folder or
    file, the product id from its metadata (products) and its band files ``{role: (file, band number)}``."""

    key: str
    kind: str
    path: Path | None = None
    product_id: str | None = None
    bands: dict[str, tuple[Path, int]] = field(default_factory=dict)


def product_id(kind: str, path) -> str | None:
    """The product id in the metadata of a Landsat / Sentinel-2 product (no raster is opened), or None when it
    cannot be read (the other checks of ``validate`` name unreadable metadata)."""
    import json

    from ecoassess.errors import InputError
    from ecoassess.sources import landsat as _landsat
    from ecoassess.sources import sentinel2 as _s2

    if path is None or kind not in PRODUCT_KINDS:
        return None
    path = Path(path)
    try:
        if kind == "landsat_c2l2":
            mtl = _landsat.find_mtl(path)
            contents = _landsat.read_mtl(mtl).get(_landsat.ROOT, {}).get("PRODUCT_CONTENTS", {})
            return str(contents.get("LANDSAT_PRODUCT_ID") or
                       mtl.name.replace("_MTL.txt", "").replace("_MTL.json", ""))
        if (path.is_dir() and (path / "MTD_MSIL2A.xml").exists()) or path.suffix == ".xml":
            safe, mtd = _s2._find_safe(path)
            return (_s2._read_mtd(mtd).get("PRODUCT_URI") or safe.name).removesuffix(".SAFE")
        item = _s2._find_item(path)
        return str(json.loads(item.read_text(encoding="utf-8")).get("id") or item.stem)
    except (InputError, OSError, ValueError, AttributeError):
        return None


#: the role under which a product's largest band file is compared
PRODUCT_RASTER = "largest band file"


def product_raster(path) -> Path | None:
    """The largest raster file (GeoTIFF / JPEG 2000) of a product folder, or None: its biggest band, which two
    downloads of one acquisition share byte for byte whatever their product ids."""
    if path is None:
        return None
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    best, best_size = None, -1
    for p in root.rglob("*"):
        if p.suffix.lower() in (".tif", ".tiff", ".jp2") and p.is_file():
            size = p.stat().st_size
            if size > best_size:
                best, best_size = p, size
    return best


def entries_of_specs(key: str, specs) -> list[SceneEntry]:
    """:class:`SceneEntry` of the config's scene specs (``imagery.<year>`` list), keyed ``<key>[i]``."""
    out = []
    for i, spec in enumerate(specs):
        bands = {}
        for role, ref in (spec.bands or {}).items():
            bands[role] = (Path(getattr(ref, "path", ref)), int(getattr(ref, "band", 1)))
        if spec.kind in PRODUCT_KINDS and (raster := product_raster(spec.path)) is not None:
            bands[PRODUCT_RASTER] = (raster, 1)
        out.append(SceneEntry(key=f"{key}[{i}]", kind=spec.kind, path=spec.path,
                              product_id=product_id(spec.kind, spec.path), bands=bands))
    return out


def entries_of_scenes(scenes, key: str = "scenes") -> list[SceneEntry]:
    """:class:`SceneEntry` of opened scenes (their metadata: product id, GeoTIFF band files), keyed ``<key>[i]``."""
    out = []
    for i, scene in enumerate(scenes):
        meta = scene.metadata or {}
        kind = meta.get("kind", "")
        bands = {}
        factors = meta.get("band_factors") or {}
        for role, path in (meta.get("band_files") or {}).items():
            bands[role] = (Path(path), int((factors.get(role) or {}).get("band") or 1))
        out.append(SceneEntry(key=f"{key}[{i}]", kind=kind, path=Path(scene.path) if scene.path else None,
                              product_id=meta.get("product_id") if kind in PRODUCT_KINDS else None, bands=bands))
    return out


def file_sha256(path) -> str | None:
    """SHA-256 of a file's content (:func:`ecoassess.files.sha256_file`: cached), None when it cannot be read."""
    from ecoassess.files import sha256_file

    try:
        return sha256_file(Path(path).resolve())
    except OSError:
        return None


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


#: bytes read from each end of a file for the quick comparison before a full SHA-256
_PROBE_BYTES = 1 << 16


@lru_cache(maxsize=2048)
def _probe(path: str, size: int, mtime_ns: int) -> bytes:
    with open(path, "rb") as f:
        head = f.read(_PROBE_BYTES)
        if size > 2 * _PROBE_BYTES:
            f.seek(size - _PROBE_BYTES)
        return hashlib.sha256(head + f.read(_PROBE_BYTES)).digest()


def _quick_key(path: Path) -> tuple | None:
    """Size and a hash of the first and last 64 KiB: files that differ here differ (uncompressed tiles of one
    size share their size, not their pixels); None when the file cannot be read."""
    try:
        st = os.stat(path)
        return st.st_size, _probe(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def find_duplicates(entries: list[SceneEntry], *, by_content: bool = True) -> list[tuple[SceneEntry, SceneEntry, str]]:
    """``(entry, earlier entry, why)`` for every entry that repeats an earlier one (each repeat once, against the
    first listing). ``by_content=False``: GeoTIFF band files are compared by their resolved path (symlinks
    followed) instead of their SHA-256 — no file is read."""
    found: dict[str, tuple[SceneEntry, SceneEntry, str]] = {}
    first_of_id: dict[str, SceneEntry] = {}
    for e in entries:
        if e.kind in PRODUCT_KINDS and e.product_id:
            earlier = first_of_id.setdefault(e.product_id, e)
            if earlier is not e:
                where = (f"{earlier.path} and {e.path}" if earlier.path != e.path else f"{e.path}, listed twice")
                found.setdefault(e.key, (e, earlier, f"the same product {e.product_id} ({where})"))
    # plain GeoTIFF scenes: per role and band number, hash in full only the files whose size and ends another
    # scene's file shares
    by_size: dict[tuple, list[tuple[SceneEntry, Path]]] = {}
    candidates: dict[tuple, list[SceneEntry]] = {}
    for e in entries:
        for role, (path, band) in e.bands.items():
            candidates.setdefault((role, band, _size(path)), []).append(e)
    for e in entries:
        if e.key in found:
            continue  # already a repeat by its product id
        for role, (path, band) in e.bands.items():
            size = _size(path)
            if size is None or len(candidates.get((role, band, size), [])) < 2:
                continue  # no other scene has a file of this size for the role: not read at all
            quick = _quick_key(path) if by_content else str(Path(path).resolve())
            if quick is not None:
                by_size.setdefault((role, band, quick), []).append((e, path))
    for (role, band, _), group in by_size.items():
        if len({id(e) for e, _ in group}) < 2:
            continue
        first_of_hash: dict[str, tuple[SceneEntry, Path]] = {}
        for e, path in group:
            digest = file_sha256(path) if by_content else str(Path(path).resolve())
            if digest is None:
                continue
            earlier, earlier_path = first_of_hash.setdefault(digest, (e, path))
            if earlier is e or e.key in found:
                continue
            what = role if role == PRODUCT_RASTER else f"band {role}" + (f" (band {band})" if band != 1 else "")
            same = ("the same file" + ("" if str(path) == str(earlier_path) else f" as {earlier_path}")
                    if Path(path).resolve() == Path(earlier_path).resolve()
                    else f"the same content (SHA-256 {digest[:12]}…) as {earlier_path}")
            found.setdefault(e.key, (e, earlier, f"its {what} {path} is {same}"))
    order = {e.key: i for i, e in enumerate(entries)}
    return sorted(found.values(), key=lambda t: order[t[0].key])


def duplicate_messages(entries: list[SceneEntry], *, by_content: bool = True) -> list[str]:
    """One sentence per repeated entry, naming both entries and the files."""
    return [f"{e.key}: the same scene as {earlier.key}: {why}; a scene listed twice counts twice in the composite "
            f"(clear count, median, NDVI) — remove one of the two entries"
            for e, earlier, why in find_duplicates(entries, by_content=by_content)]


def duplicate_problems(key: str, specs) -> list[str]:
    """Problems of the config's scene list ``key`` (e.g. ``imagery.2024``): entries that repeat another."""
    return duplicate_messages(entries_of_specs(key, specs))


def duplicate_scene_problems(scenes, key: str = "scenes") -> list[str]:
    """Problems of a list of opened scenes (what :func:`~ecoassess.sources.composite` is given): the same product
    id, or GeoTIFF scenes reading the same band file (by resolved path: the composite reads no file to compare;
    copies are found by the config check, :func:`duplicate_problems`)."""
    return duplicate_messages(entries_of_scenes(scenes, key), by_content=False)
