"""The package's structure (issue 17): no import cycles, and dependencies that are what the package imports."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ecoassess"
#: distribution name → the module it installs, where the two differ
MODULE_OF = {"pyyaml": "yaml", "scikit-learn": "sklearn", "python-docx": "docx", "pillow": "PIL"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, module: str, modules) -> set[str]:
    """Every ecoassess module ``module`` imports, anywhere in the file (function-level and TYPE_CHECKING too:
    a lazy import still ties the two modules together)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from ecoassess.x import y`: the module ecoassess.x.y when there is one, else ecoassess.x
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _third_party_imports(*, module_level: bool = False) -> set[str]:
    """Third-party top-level modules the package imports; ``module_level``: only imports run when a module loads
    (statements of the module body, also inside a top-level ``try``/``if``), not those inside functions."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if module_level:
            nodes, todo = [], list(tree.body)
            while todo:
                node = todo.pop()
                nodes.append(node)
                if isinstance(node, (ast.Try, ast.If)):
                    todo += node.body + node.orelse + [s for h in getattr(node, "handlers", []) for s in h.body]
        else:
            nodes = ast.walk(tree)
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "ecoassess"}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _module_name(requirement: str) -> str:
    dist = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
    return MODULE_OF.get(dist, dist.replace("-", "_"))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_package_imports_itself_back_through_others():
    modules = _modules()
    graph = {m: _imports(p, m, modules) for m, p in modules.items()}
    assert graph["ecoassess.pipeline"] >= {"ecoassess.stages.base", "ecoassess.config"}  # the walker sees imports
    cycles = _cycles(graph)
    detail = "\n".join(" -> ".join(c) + "\n    " + "; ".join(f"{m} imports {sorted(graph[m] & set(c))}" for m in c)
                       for c in cycles)
    assert not cycles, f"import cycles:\n{detail}"


def test_every_runtime_dependency_is_imported_by_the_package_and_every_import_declared():
    declared = {_module_name(r) for r in _project()["dependencies"]}
    imported = _third_party_imports()
    assert declared - imported == set(), "declared but never imported (move to an extra or drop)"
    assert _third_party_imports(module_level=True) - declared == set(), \
        "imported when a module loads but not declared as a runtime dependency"
    # an optional dependency is imported only inside the functions that need it, and declared in an extra
    extras = {_module_name(r) for name, reqs in _project()["optional-dependencies"].items() if name != "test"
              for r in reqs}
    assert imported - declared - extras == set(), "imported but declared neither at runtime nor in an extra"


def test_the_module_level_walker_tells_function_imports_apart():
    assert "sklearn" in _third_party_imports() and "sklearn" not in _third_party_imports(module_level=True)


@pytest.mark.parametrize("extra", ["test", "report", "imagery", "landcover"])
def test_optional_extras_are_not_runtime_dependencies(extra):
    runtime = {_module_name(r) for r in _project()["dependencies"]}
    assert not {_module_name(r) for r in _project()["optional-dependencies"][extra]} & runtime
