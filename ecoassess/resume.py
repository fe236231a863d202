"""Resuming an interrupted run: completed parts are kept in the staging folder and reused by the same run again.

A *part* is a piece of a stage whose outputs stand on their own: the vegetation layers and table rows of one year,
the RSEI of all years, the HJ 192 EI. When a part completes, :class:`Parts` records what it produced in
``<staging>/.ecoassess-resume/<part>.pkl``: the tables it wrote (the frames themselves), the files it wrote into
the results folder (layers, maps), what it added to the run result, its return value and how long it took.

The staging folder also holds the *run key* (:func:`run_key`): SHA-256 over the config as given, the SHA-256 of
every input file, the ecoassess version, the versions of the libraries that shape the numbers and the versions of
the index catalogs. When a run is killed (kill -9, power cut), its staging folder stays behind. The next run with
the same results folder and the same run key adopts it (:func:`ecoassess.store._adopt_staging`): files of parts
that did not complete are deleted, completed parts are not run again — their tables are written again from the
recorded frames, in the same order, and their files are kept as written — so the results are byte-identical to
an uninterrupted run (the manifest's timings aside; ``extra.resumed`` lists the reused parts and the seconds they
had taken). A different config or a changed input file gives another key: nothing is reused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import pickle
import time
from pathlib import Path

from ecoassess.files import RESUME_DIR, atomic_path, sha256_file

log = logging.getLogger(__name__)

_RUN_FILE = "run.json"


def run_key(config: dict, input_files, versions: dict) -> str:
    """SHA-256 (hex) identifying a run: its config (as given), the content of every input file, the versions."""

    h = hashlib.sha256()
    h.update(json.dumps({"config": config, "versions": versions}, sort_keys=True, default=str).encode())
    for path in sorted(Path(p) for p in input_files):
        h.update(str(path).encode())
        h.update((sha256_file(path) if path.is_file() else "missing").encode())
    return h.hexdigest()


def staging_run_key(staging: Path) -> str | None:
    """The run key recorded in a staging folder, or None (an older version's, or one killed before it wrote it)."""
    try:
        return json.loads((Path(staging) / RESUME_DIR / _RUN_FILE).read_text(encoding="utf-8"))["run_key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _records(staging: Path) -> dict[str, dict]:
    records = {}
    for path in sorted((Path(staging) / RESUME_DIR).glob("*.pkl")):
        if path.name.startswith("."):  # a record being written when the run was killed (files.atomic_path)
            path.unlink(missing_ok=True)
            continue
        try:
            with open(path, "rb") as fh:
                record = pickle.load(fh)  # written by this package into the user's own staging folder
        except Exception:  # noqa: BLE001 - a damaged record: that part runs again
            log.warning("the record of a completed part (%s) cannot be read; that part runs again", path.name)
            path.unlink(missing_ok=True)
            continue
        records[record["name"]] = record
    return records


def keep_completed(staging: Path) -> list[str]:
    """Delete every file of an adopted staging folder but the files of completed parts; returns those parts."""
    staging = Path(staging)
    records = _records(staging)
    keep = {rel for record in records.values() for rel in record["files"]}
    for root, _dirs, names in os.walk(staging, topdown=False):
        for name in names:
            path = Path(root) / name
            rel = path.relative_to(staging).as_posix()
            if rel.split("/", 1)[0] != RESUME_DIR and rel not in keep:
                path.unlink()
        if Path(root) != staging and not any(Path(root).iterdir()):
            Path(root).rmdir()
    return sorted(records)


def _part_file(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16] + ".pkl"


class Parts:
    """Runs the parts of a run, or replays a part that an interrupted run with the same key completed.

    ``result``: the run's result object (``tables``, ``layers``, ``maps`` dicts, ``manifest`` dict, ``problems``,
    ``warnings`` lists); a part's additions to it are recorded and replayed."""

    def __init__(self, store, result, key: str):
        self.store, self.result, self.key = store, result, key
        self.folder = store.staging / RESUME_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.records = _records(store.staging) if staging_run_key(store.staging) == key else {}
        with atomic_path(self.folder / _RUN_FILE) as tmp:
            tmp.write_text(json.dumps({"run_key": key}), encoding="utf-8")
        #: part name -> seconds it took in the run that completed it (parts reused by this run)
        self.reused: dict[str, float] = {}

    def run(self, name: str, fn):
        """``fn()`` as the part ``name``: its return value (replayed from the record when one exists)."""
        record = self.records.get(name)
        if record is not None:
            self._replay(record)
            self.reused[name] = record["seconds"]
            log.info("%s: reused from the interrupted run (it took %.1f s)", name, record["seconds"])
            return record["value"]
        before = self._snapshot()
        self.store.recorder, t0 = [], time.perf_counter()
        try:
            value = fn()
            writes = self.store.recorder
        finally:
            self.store.recorder = None
        record = {"name": name, "value": value, "seconds": time.perf_counter() - t0,
                  "files": sorted({w[1] for w in writes if w[0] == "file"}),
                  "table_writes": [w[1:] for w in writes if w[0] == "table"], **self._delta(before)}
        if record["problems"]:  # a part that failed in part runs again next time (the cause may be gone)
            return value
        with atomic_path(self.folder / _part_file(name)) as tmp:
            with open(tmp, "wb") as fh:
                pickle.dump(record, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return value

    def _snapshot(self) -> dict:
        r = self.result
        return {"tables": dict(r.tables), "layers": dict(r.layers), "maps": dict(r.maps), "result_files": dict(r.files),
                "manifest": copy.deepcopy(r.manifest), "problems": len(r.problems), "warnings": len(r.warnings),
                "registry": dict(self.store._registry)}

    def _delta(self, before: dict) -> dict:
        r = self.result
        changed = {field: {k: v for k, v in getattr(r, field).items() if before[field].get(k) is not v}
                   for field in ("tables", "layers", "maps")}
        # RunResult.files under its own key: a record's "files" are the files the part wrote (keep_completed)
        changed["result_files"] = {k: v for k, v in r.files.items() if before["result_files"].get(k) is not v}
        changed["manifest"] = {k: v for k, v in r.manifest.items() if k not in before["manifest"]
                               or before["manifest"][k] != v}
        for field in ("problems", "warnings"):   # lists the part appended to
            changed[field] = getattr(r, field)[before[field]:]
        changed["registry"] = {k: v for k, v in self.store._registry.items() if before["registry"].get(k) != v}
        return changed

    def _replay(self, record: dict) -> None:
        for name, table, options in record["table_writes"]:
            self.store.write_table(name, table, **options)
        for field in ("tables", "layers", "maps", "manifest"):
            getattr(self.result, field).update(record[field])
        self.result.files.update(record.get("result_files", {}))
        for field in ("problems", "warnings"):
            getattr(self.result, field).extend(record.get(field, []))
        self.store._registry.update(record["registry"])


def run_part(store, name: str, fn):
    """``fn()`` as a resumable part when the store has :class:`Parts` (a pipeline run), else simply ``fn()``."""
    parts = getattr(store, "parts", None)
    return fn() if parts is None else parts.run(name, fn)


__all__ = ["Parts", "run_key", "run_part", "staging_run_key", "keep_completed"]
