"""The house rules on imports, read from the source: data flows one way (no import cycles anywhere in ``zendeploy/``,
function-level imports included, and no package imports one above it in :data:`FLOORS`), ``search/`` and
``latency/`` never import ``distributed/`` (scale-out is handed in), and the device-side ``profilers/`` never import
the library or PyTorch (they run on a phone or a T4 box)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The library's floors, lowest first: a package may import only packages on lower floors (the package root
# ``zendeploy`` itself, imported for ``__version__``, stands apart). space -> proxies / latency -> search -> export.
FLOORS = ["errors", "io", "registry", "progress", "space", "zoo", "weights", "builder", "cost", "proxies", "convert",
          "latency", "search", "export", "distributed", "demo", "cli", "__main__"]


def _modules(package: str) -> dict[str, Path]:
    mods = {}
    for p in (ROOT / package).rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def _import_graph(package: str) -> dict[str, set[str]]:
    """Module -> modules of ``package`` it imports anywhere in its file (``from pkg import submodule`` is an edge to
    the submodule, not to the package)."""
    mods = _modules(package)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        here = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = here.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1])
                    target = base + ("." + node.module if node.module else "")
                else:
                    target = node.module or ""
                subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods}
                others = [a for a in node.names if f"{target}.{a.name}" not in mods]
                edges[m] |= subs | ({target} if others and target in mods else set())
            elif isinstance(node, ast.Import):
                edges[m] |= {a.name for a in node.names if a.name in mods}
        edges[m].discard(m)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
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
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_in_the_library():
    assert _cycles(_import_graph("zendeploy")) == []


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_package_imports_only_lower_floors():
    edges = _import_graph("zendeploy")
    packages = {_package(m) for m in edges} - {"zendeploy"}
    assert packages == set(FLOORS), "a package is missing from FLOORS (or FLOORS names one that is gone)"
    upward = sorted((m, t) for m, ts in edges.items() for t in ts
                    if "zendeploy" not in (_package(m), _package(t)) and _package(m) != _package(t)
                    and FLOORS.index(_package(t)) > FLOORS.index(_package(m)))
    assert upward == []


def test_search_and_latency_never_import_distributed():
    edges = _import_graph("zendeploy")
    bad = [(m, t) for m, ts in edges.items() for t in ts
           if m.startswith(("zendeploy.search", "zendeploy.latency")) and t.startswith("zendeploy.distributed")]
    assert bad == []


def test_profilers_stay_standalone():
    for path in (ROOT / "profilers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for n in names:
                assert not n.startswith(("zendeploy", "torch")), f"{path.relative_to(ROOT)} imports {n}"
