"""The package layout says the architecture: imports point only down, no cycles, no imports hidden in functions.

Read from the source with ``ast`` (nothing is imported), so a violation names the file and the line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "grok_nb"

#: Each layer may import its own layer and the layers below it (a lower number), never above.
LAYERS = {
    "errors": 0, "settings": 0, "loopback": 0, "_version": 0,  # base modules every layer may use
    "api": 1,  # the service's contract, pure
    "jobs": 2,  # a job's lifecycle, policy and budget, pure
    "history": 3,  # everything persisted
    "runtime": 4,  # HTTP, the engine, the scheduler, key sharing
    "client": 5, "sync_client": 5, "backends": 5,  # the public client, and the one place that starts the simulator
    "notebook": 6,  # everything that draws
    "demo": 7, "cli": 7,  # programs
    "__init__": 8,  # the package's front door re-exports from every layer
}
#: The simulator stands apart: it may use the contract and the base modules, nothing else.
SIMULATOR_MAY_USE = {"api", "errors", "settings", "loopback", "_version", "simulator"}

#: Imports allowed inside a function: optional or heavy third-party packages, each with a comment naming it.
HEAVY = {"av", "PIL", "matplotlib", "pandas", "numpy", "psycopg", "psycopg_pool", "redis", "platformdirs",
         "ipywidgets", "IPython", "anywidget", "nbformat", "nest_asyncio2",
         "pyrate_limiter", "filelock"}  # the last two: 0.2 s of imports a Client without a shared budget never needs
#: grok_nb's own modules that may be imported lazily because they pull in heavy packages (with a comment).
HEAVY_OWN = {"grok_nb.simulator", "grok_nb.notebook"}


@dataclass(frozen=True)
class Import:
    source: str  # dotted module doing the import
    target: str  # dotted grok_nb module, or a third-party top-level name
    line: int
    lazy: bool  # inside a function
    commented: bool  # a comment on its line or the line above


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> list[Import]:
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rsplit(".", 1)[0]
    lines = path.read_text().splitlines()
    tree = ast.parse(path.read_text())
    found: list[Import] = []

    def commented(node: ast.stmt) -> bool:
        """A comment on the import's line, or above it (a block of lazy imports shares one comment)."""
        if "#" in lines[node.lineno - 1]:
            return True
        i = node.lineno - 2
        while i >= 0 and lines[i].strip().startswith(("import ", "from ")):
            if "#" in lines[i]:
                return True
            i -= 1
        return i >= 0 and lines[i].strip().startswith("#")

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # annotations only: never executed
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(source, _own(alias.name, known), child.lineno, lazy, commented(child)))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                if mod.startswith("grok_nb"):
                    for alias in child.names:  # `from . import media` names a module
                        sub = f"{mod}.{alias.name}"
                        found.append(Import(source, sub if sub in known else _own(mod, known), child.lineno, lazy,
                                            commented(child)))
                else:
                    found.append(Import(source, mod.split(".")[0], child.lineno, lazy, commented(child)))
            visit(child, inner)

    visit(tree, False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _own(name: str, known: set[str]) -> str:
    """The longest known grok_nb module that ``name`` is, or lies in; third-party names stay as they are."""
    if not name.startswith("grok_nb"):
        return name.split(".")[0]
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def layer_of(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    known = set(modules())
    return [imp for path in modules().values() for imp in imports_of(path, known)]


def test_every_module_belongs_to_a_layer() -> None:
    unknown = sorted({layer_of(m) for m in modules()} - set(LAYERS) - {"simulator"})
    assert not unknown, f"modules outside the layers (add them to a layer folder): {unknown}"


@pytest.mark.slow
def test_imports_point_only_down(graph: list[Import]) -> None:
    wrong = []
    for imp in graph:
        if not imp.target.startswith("grok_nb"):
            continue
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src == "simulator":
            if dst not in SIMULATOR_MAY_USE:
                wrong.append(f"{imp.source}:{imp.line} -> {imp.target} (the simulator may use only api/ and base)")
            continue
        if dst == "simulator":
            if imp.source != "grok_nb.backends" and src not in ("cli", "__init__"):
                wrong.append(f"{imp.source}:{imp.line} -> {imp.target} (only backends.py starts the simulator)")
            continue
        if LAYERS[dst] > LAYERS[src]:
            wrong.append(f"{imp.source}:{imp.line} -> {imp.target} ({src} may not import {dst})")
    assert not wrong, "imports that point up:\n" + "\n".join(wrong)


@pytest.mark.slow
def test_no_import_cycles(graph: list[Import]) -> None:
    edges: dict[str, set[str]] = {}
    for imp in graph:
        if imp.target.startswith("grok_nb") and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    cycles = _cycles(edges)
    assert not cycles, "import cycles (module-level and function-level imports counted):\n" + "\n".join(
        " -> ".join(c) for c in cycles)


def test_function_level_imports_only_for_heavy_optional_packages(graph: list[Import]) -> None:
    wrong = []
    for imp in graph:
        if not imp.lazy:
            continue
        allowed = imp.target in HEAVY or any(imp.target == h or imp.target.startswith(h + ".") for h in HEAVY_OWN)
        if not allowed:
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target} inside a function")
        elif not imp.commented:
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target} lazily without a comment saying why")
    assert not wrong, "\n".join(wrong)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), as a readable path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def test_the_checker_sees_a_cycle_and_an_upward_import() -> None:
    """The rules above would fail on a real violation (so a pass means something)."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    fake = Import("grok_nb.api.models", "grok_nb.runtime.engine", 1, False, False)
    assert LAYERS[layer_of(fake.target)] > LAYERS[layer_of(fake.source)]
