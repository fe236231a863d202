"""The spectral index catalog (``indices/spectral.yaml``) and its evaluation on band layers.

An entry is data: formula over band roles (``indices/sensors.yaml``), constants with defaults, valid range,
reference, input level, worked example. Formulas are parsed by :mod:`ecoassess.formula` (never ``eval``-ed);
a formula may name another index of the catalog (NDBSI = (SI + IBI) / 2), which is expanded on load.
Every entry is checked when the catalog loads: an unknown name, a bad expression or a cycle is an error that
names the entry.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ecoassess import formula as fx
from ecoassess.catalog import data_path, load_yaml
from ecoassess.errors import EcoassessError, InputError
from ecoassess.sensors import sensors_spec


class CatalogError(EcoassessError):
    """An index catalog entry that cannot be used (bad formula, unknown band role, cycle, ...)."""


@dataclass(frozen=True)
class SpectralIndex:
    name: str
    long_name: str
    formula: str
    tree: object = field(repr=False)
    bands: tuple[str, ...]
    constants: dict
    valid_range: tuple[float, float] | None
    reference: str
    input_level: str = ""
    application: str = ""
    units: str = "1"
    sensors: tuple[str, ...] = ()
    spyndex: str | None = None
    example: dict | None = None

    def evaluate(self, values: dict, **constants):
        """Evaluate on numbers or arrays: ``values`` maps band roles to reflectance (thermal: kelvin)."""
        missing = [b for b in self.bands if b not in values]
        if missing:
            raise InputError(f"index {self.name} needs band role(s) {', '.join(missing)}",
                             field=", ".join(missing), expected=f"bands {', '.join(self.bands)}")
        unknown = set(constants) - set(self.constants)
        if unknown:
            raise CatalogError(f"index {self.name} has no constant(s) {', '.join(sorted(unknown))} "
                               f"(constants: {', '.join(self.constants) or 'none'})")
        env = {**self.constants, **constants, **{b: values[b] for b in self.bands}}
        return fx.evaluate(self.tree, env, memo={})


@dataclass(frozen=True)
class IndexCatalog:
    version: str
    path: Path
    roles: tuple[str, ...]
    indices: dict

    def __contains__(self, name):
        return name in self.indices

    def __getitem__(self, name) -> SpectralIndex:
        try:
            return self.indices[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.indices), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CatalogError(f"no index '{name}' in the catalog ({self.path.name}){hint}") from None

    def names(self) -> list[str]:
        return list(self.indices)

    def compute(self, name: str, bands: xr.Dataset | dict, **constants) -> xr.DataArray:
        """Index ``name`` over a Dataset of band roles; float32, NaN where an input is missing or x/0."""
        index = self[name]
        values = {b: bands[b] for b in index.bands if b in bands}
        out = index.evaluate(values, **constants)
        if isinstance(out, xr.DataArray):
            out = self._describe(out.astype("float32"), index, bands[index.bands[0]])
        return out

    def compute_many(self, names: list[str], bands: xr.Dataset | dict) -> dict[str, xr.DataArray]:
        """Several indices over dask-backed band layers of one grid, each chunk evaluated in one task.

        The formulas are compiled into one program (:mod:`ecoassess.formula_vm`, shared subexpressions computed
        once) that runs per chunk inside a single ``map_blocks``: one task per chunk for all indices, every band
        chunk read once, no full-chunk temporaries. On float32 bands (what the readers give) the values are
        those of :meth:`compute`; other dtypes are converted to float32 first. Returns ``{name: float32 layer}``.
        """
        from ecoassess.formula_vm import compile_program, evaluate_program  # numba: only when evaluating

        indices = [self[n] for n in names]
        roles = sorted({b for index in indices for b in index.bands})
        missing = [r for r in roles if r not in bands]
        if missing:
            first = next(i for i in indices if set(i.bands) & set(missing))
            first.evaluate({r: 0.0 for r in roles if r in bands})  # raises the InputError naming the roles
        template = bands[roles[0]]
        datas = [d if isinstance(d, da.Array) else da.from_array(np.asarray(d), chunks=1024)
                 for d in (bands[r].data for r in roles)]
        datas = [datas[0]] + [d.rechunk(datas[0].chunks) for d in datas[1:]]
        program = compile_program([i.tree for i in indices], roles, [i.constants for i in indices])

        def evaluate_chunk(*blocks):
            return evaluate_program(program, list(blocks))

        stacked = da.map_blocks(evaluate_chunk, *datas, new_axis=0, chunks=((len(indices),),) + datas[0].chunks,
                                dtype=np.float32, name=f"indices-{'-'.join(names)}-{da.core.tokenize(*datas)}")
        return {n: self._describe(template.copy(data=stacked[k]), index, template)
                for k, (n, index) in enumerate(zip(names, indices))}

    def _describe(self, out: xr.DataArray, index: SpectralIndex, template: xr.DataArray) -> xr.DataArray:
        out.attrs = {"long_name": index.long_name, "units": index.units, "formula": index.formula,
                     "reference": index.reference, "catalog_version": self.version}
        if index.valid_range is not None:
            out.attrs["valid_range"] = tuple(float(v) for v in index.valid_range)
        out.name = index.name
        return out


def _range_of(layer: xr.DataArray, valid_range):
    if valid_range is None:
        valid_range = layer.attrs.get("valid_range")
    return None if valid_range is None else (float(valid_range[0]), float(valid_range[1]))


def outside_valid_range(layer: xr.DataArray, valid_range=None) -> xr.DataArray:
    """Bool layer: a value of ``layer`` outside ``valid_range`` (default: the layer's catalog ``valid_range``
    attribute; all False without one). NaN is never outside (lazy)."""
    bounds = _range_of(layer, valid_range)
    if bounds is None:
        return xr.zeros_like(layer, dtype=bool)
    return (layer < bounds[0]) | (layer > bounds[1])


def bound_to_valid_range(layer: xr.DataArray, valid_range=None) -> xr.DataArray:
    """``layer`` with NaN where its value lies outside ``valid_range`` (default: its catalog ``valid_range``
    attribute): such a value (NDVI = 206 where red = −0.010 and nir = 0.0101) is not a measurement of the index
    (issue 18, item 5). Attributes and name are kept; ``attrs['bounded_to_valid_range']`` says so."""
    bounds = _range_of(layer, valid_range)
    if bounds is None:
        return layer
    out = layer.where(~outside_valid_range(layer, bounds))
    out.attrs = {**layer.attrs, "valid_range": bounds, "bounded_to_valid_range": "values outside are NaN"}
    out.name = layer.name
    return out


def share_outside_range(layer: xr.DataArray, valid_range) -> float:
    """Share of finite pixels of ``layer`` outside ``valid_range`` (reported, never clipped)."""
    if valid_range is None:
        return 0.0
    lo, hi = valid_range
    finite = np.isfinite(layer)
    n = int(finite.sum().compute() if hasattr(finite.data, "compute") else finite.sum())
    if n == 0:
        return float("nan")
    outside = finite & ((layer < lo) | (layer > hi))
    m = int(outside.sum().compute() if hasattr(outside.data, "compute") else outside.sum())
    return m / n


# -- loading and checking ------------------------------------------------------------------------------------

REQUIRED = ("long_name", "formula", "reference", "example")
ALLOWED = set(REQUIRED) | {"constants", "valid_range", "application", "input_level", "units", "sensors", "spyndex"}


def load_catalog(path: str | Path | None = None) -> IndexCatalog:
    """Load and check the catalog (default: the shipped ``indices/spectral.yaml``); cached until the file changes."""
    path = Path(path) if path else data_path("indices", "spectral.yaml")
    try:
        st = path.stat()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return _load_catalog(path.resolve(), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _load_catalog(path: Path, mtime_ns: int, size: int) -> IndexCatalog:
    import yaml

    roles = tuple(sensors_spec()["roles"])
    try:
        raw = load_yaml(Path(path))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: not a readable YAML file ({exc})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("indices"), dict):
        raise CatalogError(f"{path}: expected a mapping with 'version' and 'indices: {{NAME: entry, ...}}' "
                           "(see indices/README.md)")
    entries = raw["indices"]
    problems: list[str] = []
    trees: dict[str, object] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            problems.append(f"{name}: an entry must be a mapping")
            continue
        for key in REQUIRED:
            if key not in entry:
                problems.append(f"{name}: '{key}' is missing")
        for key in set(entry) - ALLOWED:
            problems.append(f"{name}: unknown key '{key}' (allowed: {', '.join(sorted(ALLOWED))})")
        try:
            trees[name] = fx.parse(entry.get("formula", ""))
        except fx.FormulaError as exc:
            problems.append(f"{name}: bad formula: {exc}")
    if problems:
        raise CatalogError(f"{path}: " + "; ".join(problems))
    expanded: dict[str, object] = {}
    for name in trees:
        try:
            expanded[name] = _expand(name, trees, (), entries)
        except CatalogError as exc:
            problems.append(str(exc))
    indices = {}
    for name, tree in expanded.items():
        entry = entries[name]
        constants = {k: float(v) for k, v in (entry.get("constants") or {}).items()}
        used = fx.names(tree)
        unknown = sorted(used - set(roles) - set(constants) - _inherited_constants(name, entries))
        if unknown:
            problems.append(f"{name}: formula names {', '.join(unknown)}, which is neither a band role "
                            f"({', '.join(roles)}), a constant of the entry nor an index of the catalog")
            continue
        constants = {**_inherited_constant_values(name, entries), **constants}
        bands = tuple(r for r in roles if r in used)
        vr = entry.get("valid_range")
        indices[name] = SpectralIndex(
            name=name, long_name=entry["long_name"], formula=entry["formula"], tree=tree, bands=bands,
            constants=constants, valid_range=tuple(vr) if vr else None, reference=entry["reference"],
            input_level=entry.get("input_level", ""), application=entry.get("application", ""),
            units=entry.get("units", "1"), sensors=tuple(entry.get("sensors") or ()), spyndex=entry.get("spyndex"),
            example=entry.get("example"))
    problems += [p for index in indices.values() if (p := _example_problem(index))]
    if problems:
        raise CatalogError(f"{path}: " + "; ".join(problems))
    return IndexCatalog(version=str(raw.get("version", "")), path=Path(path), roles=roles, indices=indices)


def _example_problem(index: SpectralIndex) -> str | None:
    """The entry's worked example, recomputed from its formula (checked on every load, so an entry whose formula
    and example disagree — a typo in either — never enters a catalog)."""
    example = index.example
    if not isinstance(example, dict) or "inputs" not in example or "expected" not in example:
        return f"{index.name}: 'example' needs inputs (band role: value) and expected"
    try:
        value = float(index.evaluate({k: float(v) for k, v in (example["inputs"] or {}).items()}))
    except (EcoassessError, TypeError, ValueError) as exc:
        return f"{index.name}: the worked example cannot be evaluated ({exc})"
    expected = float(example["expected"])
    if not math.isclose(value, expected, rel_tol=1e-8, abs_tol=1e-9):
        return (f"{index.name}: the worked example gives {value:.10g} from the formula, but expects {expected:.10g}"
                + (f" ({example['working']})" if example.get("working") else ""))
    return None


def _expand(name, trees, stack, entries):
    """Replace names of other indices in ``name``'s tree by their trees (checking for cycles)."""
    if name in stack:
        raise CatalogError(f"{name}: formula refers to itself through {' -> '.join(stack + (name,))}")

    def walk(node):
        if isinstance(node, fx.Name) and node.name in trees and node.name not in (entries[name].get("constants") or {}):
            return _expand(node.name, trees, stack + (name,), entries)
        if isinstance(node, fx.Unary):
            return fx.Unary(node.op, walk(node.operand))
        if isinstance(node, fx.Binary):
            return fx.Binary(node.op, walk(node.left), walk(node.right))
        if isinstance(node, fx.Call):
            return fx.Call(node.func, tuple(walk(a) for a in node.args))
        return node

    return walk(trees[name])


def _referenced(name, entries, seen=()):
    tree = fx.parse(entries[name]["formula"])
    out = []
    for n in fx.names(tree):
        if n in entries and n != name and n not in seen:
            out.append(n)
            out += _referenced(n, entries, seen + (name,))
    return out


def _inherited_constants(name, entries) -> set[str]:
    return set(_inherited_constant_values(name, entries))


def _inherited_constant_values(name, entries) -> dict:
    values = {}
    for ref in _referenced(name, entries):
        values.update({k: float(v) for k, v in (entries[ref].get("constants") or {}).items()})
    return values
