"""The package's import structure: layers import only downwards, no import loops, only viz draws.

Every ``import`` and ``from ... import`` in ``src/attrib`` is read with ``ast``, at module
level and inside functions alike (a deferred import is still a dependency; deferring it
only hides a loop until the function runs). ``from pkg import name`` counts as an import of
the submodule ``pkg.name`` when there is one, so a package ``__init__`` that re-exports its
submodules is not a loop with them.

The layers are DESIGN.md's: ``core < methods < text, metrics < viz < report, runs < serve <
cli``; a module may import its own layer and the layers below, never a layer above nor a
sibling (``text`` and ``metrics`` do not import each other, nor do ``report`` and ``runs``).
``runs`` and ``serve`` may not exist yet; they keep their place. Where the rest sits was
decided by what it imports:

- ``data/`` (embedded demo models and datasets) imports ``core`` and ``methods``: a sibling
  of ``text`` and ``metrics``, above ``methods``, imported only from above (``cli``; ``viz``
  or ``report`` could).
- ``attrib/api.py`` (``explain(model, x, method=...)``) imports ``core``, ``methods`` and
  ``text`` (whose token methods it finds by name, and which register themselves in the
  catalogue when ``attrib.text`` is imported): a sibling of ``viz``; only the facade imports
  it.
- ``attrib/__init__.py``, the public facade, re-exports names from ``core``, ``methods``,
  ``api`` and ``text``: it may import anything below ``cli`` and only ``cli`` may import it
  (a lower layer reaching for ``attrib.X`` would import every layer).

Pictures (matplotlib, PIL) are drawn in ``viz`` only (DESIGN.md: "viz/ every picture").
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "attrib"

# rank of each layer; groups of equal rank are siblings and must not import each other
RANKS = {
    "core": 0,
    "methods": 1,
    "text": 2,
    "metrics": 2,
    "data": 2,
    "api": 3,
    "viz": 3,
    "report": 4,
    "runs": 4,
    "serve": 5,
    "facade": 6,
    "cli": 7,
}
DRAWING = ("matplotlib", "PIL")


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Dotted names of everything ``name`` imports: modules of attrib resolved to the
    deepest module that exists, anything else by its top-level name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(_deepest(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, one level up per extra dot
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                found.add(_deepest(f"{source}.{alias.name}", modules))
    return found


def _deepest(dotted: str, modules: dict[str, Path]) -> str:
    if not dotted.startswith("attrib"):
        return dotted.split(".")[0]
    parts = dotted.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "facade"
    layer = parts[1]
    if layer not in RANKS:
        raise AssertionError(
            f"{module}: {layer!r} has no place in the layers; add it to RANKS (and DESIGN.md)"
        )
    return layer


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing
    itself), each sorted: Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in graph:
                continue
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def violations(graph: dict[str, set[str]] | None = None) -> set[tuple[str, ...]]:
    """Every breach of the three rules in ``graph`` (default: the package's), as tuples
    ``("layer", module, imported)``, ``("picture", module, package)``, ``("loop", *modules)``."""
    graph = _graph() if graph is None else graph
    found: set[tuple[str, ...]] = set()
    for module, imported in graph.items():
        layer = _layer(module)
        for other in imported:
            if other.startswith("attrib"):
                target = _layer(other)
                if target != layer and RANKS[target] >= RANKS[layer]:
                    found.add(("layer", module, other))
            elif other in DRAWING and layer != "viz":
                found.add(("picture", module, other))
    for component in _loops(graph):
        found.add(("loop", *component))
    return found


def test_the_reader_and_the_rules_are_not_vacuous():
    """The reader finds an import inside a function and resolves a name imported from a
    package to its submodule; each rule reports a breach planted in the graph."""
    graph = _graph()
    assert "attrib.viz" in graph["attrib.cli.explain"]  # ``from attrib import viz`` in run()
    assert "attrib.core.grad" in graph["attrib.metrics._rows"]
    assert "attrib.methods" in graph["attrib"]
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} <= set(RANKS)
    planted = {
        **graph,
        "attrib.core.errors": {*graph["attrib.core.errors"], "attrib.core.target", "PIL"},
        "attrib.metrics.similarity": {*graph["attrib.metrics.similarity"], "attrib.text"},
        "attrib.viz.titles": {*graph["attrib.viz.titles"], "attrib"},
    }
    assert violations(planted) - violations(graph) == {
        ("loop", "attrib.core.errors", "attrib.core.target"),
        ("picture", "attrib.core.errors", "PIL"),
        ("layer", "attrib.metrics.similarity", "attrib.text"),  # siblings
        ("layer", "attrib.viz.titles", "attrib"),  # the facade imports every layer
    }


def test_layers_import_downwards_without_loops_and_only_viz_draws():
    found = sorted(violations())
    assert not found, "\n".join(" ".join(v) for v in found)
