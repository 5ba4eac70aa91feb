"""The package's import graph: layers only import downward, and no module imports itself back.

Read from the source text (every ``import``, at module level, in a function or under
TYPE_CHECKING), so a lazy import that climbs a layer is caught too. docs/architecture.md
describes the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ddbtrail"
# Lowest first; a module may import its own layer and the ones before it.
LAYERS = ("core", "lake", "evidence", "delivery", "capture", "query", "catalog", "local",
          "health", "api", "cli")
# Top-level modules outside the layer packages, and the layer each belongs to.
# The package itself re-exports the API (lazily), so it sits at the API layer.
TOP_LEVEL = {"ddbtrail": "api", "ddbtrail.resources": "core", "ddbtrail.cost": "core"}


def module_name(path: Path, root: Path = SRC) -> str:
    parts = ["ddbtrail", *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports_of(path: Path, known: set[str], root: Path = SRC) -> set[str]:
    """The ddbtrail modules ``path`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "ddbtrail")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "ddbtrail":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    found.discard(me)
    return {m for m in found if m in known}


def layer_of(module: str) -> str:
    if module in TOP_LEVEL:
        return TOP_LEVEL[module]
    layer = module.split(".")[1]
    assert layer in LAYERS, f"{module} is in no layer: add it to LAYERS or TOP_LEVEL"
    return layer


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) for name, path in mods.items()}


def test_every_module_is_in_a_layer_and_few_sit_outside_packages(
        graph: dict[str, set[str]]) -> None:
    for module in graph:
        layer_of(module)
    outside = [p.name for p in SRC.glob("*.py")]
    assert len(outside) <= 4, outside
    assert {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()} >= set(LAYERS)


def test_no_import_climbs_a_layer(graph: dict[str, set[str]]) -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = sorted(f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)})"
                    for m, targets in graph.items() for t in targets
                    if rank[layer_of(t)] > rank[layer_of(m)])
    assert upward == []


def test_import_graph_has_no_cycles(graph: dict[str, set[str]]) -> None:
    # A package's __init__ may re-export its own modules; that edge is not a cycle.
    def edges(m: str) -> set[str]:
        return {t for t in graph[m] if not t.startswith(m + ".")}

    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges(m)):
            if state.get(t) == 1:
                cycles.append([*path[path.index(t):], t] if t in path else [m, t])
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_guard_sees_an_upward_import(tmp_path: Path) -> None:
    # The checks above are only worth something if an upward import is found at all.
    fake = tmp_path / "ddbtrail" / "core" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from ddbtrail.cli import _app\n", encoding="utf-8")
    known = {"ddbtrail.cli", "ddbtrail.cli._app"}
    assert imports_of(fake, known, tmp_path / "ddbtrail") == {"ddbtrail.cli._app"}
