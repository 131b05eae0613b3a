"""The layering of ``../shared/DESIGN.md``, read from the source: every ``import`` and
``from ... import`` under ``src/attrib`` (at module level or inside a function alike, since a
function's import is a dependency all the same) points down the layers, and no modules
import each other in a loop."""

from __future__ import annotations

import ast
from pathlib import Path

import attrib

SRC = Path(attrib.__file__).resolve().parent

# core < methods < text, metrics < viz < report, runs < serve < cli (equal ranks: siblings,
# which do not import each other either); data and the top-level modules stand aside
RANKS = {
    "core": 0,
    "methods": 1,
    "text": 2,
    "metrics": 2,
    "viz": 3,
    "report": 4,
    "runs": 4,
    "serve": 5,
    "cli": 6,
}
DRAWING = ("matplotlib", "PIL")


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = ["attrib", *path.relative_to(SRC).with_suffix("").parts]
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def _imports() -> dict[str, set[str]]:
    """module -> every module (or third-party top-level name) it imports."""
    modules = _modules()

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = {}
    for module, (path, package) in modules.items():
        out = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module if package else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}".rstrip(".")
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    out.add(full if full in modules else known(base))
        out.discard(module)
        edges[module] = out
    return edges


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "attrib" and len(parts) > 1 else None


def test_imports_point_down_the_layers():
    wrong = []
    for module, targets in _imports().items():
        here = _layer(module)
        for target in targets:
            there = _layer(target)
            if here in RANKS and there in RANKS and here != there:
                if RANKS[there] >= RANKS[here]:
                    wrong.append(f"{module} -> {target}")
    assert not wrong, "imports up or sideways: " + ", ".join(sorted(wrong))


def test_lower_layers_never_draw():
    """Pictures are drawn in ``viz`` only: core, methods, text and metrics import no drawing
    package (the ``viz`` extra need not be installed for them)."""
    drawing = [
        f"{module} -> {target}"
        for module, targets in _imports().items()
        if RANKS.get(_layer(module) or "", 99) < RANKS["viz"]
        for target in targets
        if target.split(".")[0] in DRAWING
    ]
    assert not drawing


def test_no_import_loops():
    """No two modules need each other (a package's ``__init__`` importing its own modules,
    which import the package's other modules, is not a loop)."""
    edges = _imports()

    def related(a: str, b: str) -> bool:
        return b.startswith(a + ".") or a.startswith(b + ".")

    graph = {m: {t for t in ts if t in edges and not related(m, t)} for m, ts in edges.items()}
    # Tarjan's strongly connected components, iteratively (no recursion limit to meet)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    loops.append(sorted(component))
    assert not loops, f"modules that import each other: {loops}"
