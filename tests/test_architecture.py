"""The house rules, checked on the source: imports point down the floors, HTTP stays at the
edge, the package root stays small, and no source file grows past 500 lines.

The floors (README, "Architecture"), from the ground up:
- floor: `settings`, `core`;
- adapters: `ingestion` (text extraction), `embedding`, `vectors`, `llm`;
- features: `auth`, `jobs`, `templates`, `grounding`, `search`, `documents`, `refine` (and the
  feature packages added beside them), which may use each other only downwards;
- wiring: `container`, `runtime`, and `migrations` (the schema registry for Alembic);
- doors: `web` (HTTP), `ops` (operator tools) and `cli`; only `cli` sees both others.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pitchcraft"

FLOOR = {"settings", "core"}
ADAPTERS = {"ingestion", "embedding", "vectors", "llm"}
# A feature may import the features listed for it (and what they import), nothing above.
FEATURES: dict[str, set[str]] = {
    "auth": set(),
    "jobs": set(),
    "templates": set(),
    "grounding": set(),
    "search": set(),
    "documents": {"auth", "jobs"},
    "channels": set(),
    "glossary": {"grounding", "documents"},
    "refine": {"jobs", "templates", "search", "grounding", "channels", "glossary"},
    "exports": {"refine"},
    "admin": {"auth", "documents", "refine"},
    "accounts": {"auth", "documents", "jobs", "templates"},
}
WIRING = {"container", "runtime", "migrations"}
DOORS = {"web", "ops", "cli", "app", "__main__"}
# Adapter implementations: only their package's `build_*` factory and the wiring pick them.
IMPLEMENTATIONS = {
    "pitchcraft.vectors.qdrant_edge",
    "pitchcraft.vectors.qdrant_server",
    "pitchcraft.embedding.local",
    "pitchcraft.embedding.openai",
    "pitchcraft.llm.openai",
}
ROOT_MODULES = {"__init__", "__main__", "app", "cli", "container", "runtime", "settings"}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    """Every module this file imports, at any depth (imports inside functions count)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = _modules()
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _internal(names: set[str]) -> set[str]:
    """The pitchcraft modules among `names` (an imported name may be a function)."""
    out = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("pitchcraft."):
            out.add(name)
    return out


def _allowed(src: str, dst: str) -> bool:
    if src == dst or dst in FLOOR:
        return True
    if src in FLOOR:
        return False
    if src in ADAPTERS:
        # The embedder port shares its value types (SparseVec) with the vector port.
        return (src, dst) == ("embedding", "vectors")
    if src in FEATURES:
        return dst in ADAPTERS or dst in _below(src)
    if src in WIRING:
        return dst not in DOORS
    if src == "web":
        return dst != "ops"
    if src == "ops":
        return dst != "web"
    return True  # cli, app, __main__


def _below(feature: str) -> set[str]:
    out: set[str] = set()
    todo = list(FEATURES[feature])
    while todo:
        f = todo.pop()
        if f not in out:
            out.add(f)
            todo.extend(FEATURES.get(f, ()))
    return out


def test_every_package_has_a_floor() -> None:
    packages = {_package(m) for m in MODULES}
    known = FLOOR | ADAPTERS | set(FEATURES) | WIRING | DOORS | {"__init__"}
    assert packages <= known, f"place these on a floor: {sorted(packages - known)}"


def test_imports_point_down_the_floors() -> None:
    wrong = sorted(
        f"{src} imports {dst}"
        for src, names in IMPORTS.items()
        for dst in _internal(names)
        if not _allowed(_package(src), _package(dst))
    )
    assert wrong == []


def test_features_use_adapters_through_their_ports() -> None:
    wrong = sorted(
        f"{src} imports {dst}"
        for src, names in IMPORTS.items()
        if _package(src) in FEATURES
        for dst in _internal(names)
        if dst in IMPLEMENTATIONS
    )
    assert wrong == []


def test_no_package_cycles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for src, names in IMPORTS.items():
        for dst in _internal(names):
            if _package(src) != _package(dst):
                graph[_package(src)].add(_package(dst))

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    cycles = sorted(
        f"{a} <-> {b}" for a, out in graph.items() for b in out if a < b and reaches(b, a)
    )
    assert cycles == []


@pytest.mark.parametrize("library", ["fastapi", "starlette"])
def test_http_is_imported_only_at_the_edge(library: str) -> None:
    outside = sorted(
        module
        for module, names in IMPORTS.items()
        if _package(module) != "web"
        and any(n == library or n.startswith(f"{library}.") for n in names)
    )
    assert outside == []


def test_the_package_root_holds_only_entry_points() -> None:
    loose = {p.stem for p in SRC.glob("*.py")} - ROOT_MODULES
    assert loose == set()


def test_no_source_file_is_over_500_lines() -> None:
    long = sorted(
        f"{path.relative_to(SRC)}: {n} lines"
        for path in SRC.rglob("*.py")
        if "migrations" not in path.parts
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )
    assert long == []
