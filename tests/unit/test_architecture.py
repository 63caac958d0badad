"""The package's shape (docs/architecture.md): layers that import downwards only, no import
circle, no module reaching into another's private names, no module over ~450 lines.

Imports inside functions count (a lazy import is still a dependency); imports under
``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "stacfetch"
MAX_LINES = 460

# What each layer may import (besides itself); the front ends on top may import anything.
ALLOWED = {
    "_model": set(),
    "_formats": {"_model"},
    "_engine": {"_model", "_formats"},
    "_display": {"_model"},
    "_run": {"_model", "_formats", "_engine"},
    "_dask": {"_model", "_formats", "_engine", "_run"},
    "_testing": {"_model"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _imports_of(child))
            continue
        yield from _imports_of(node)


def _imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    elif isinstance(node, ast.If) and _is_type_checking(node):
        yield from (n for child in node.orelse for n in _imports_of(child))
    else:
        yield from _imports(node)


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _edges() -> dict[str, set[tuple[str, str, int]]]:
    """module -> {(imported stacfetch module, name or '', line)}."""
    edges: dict[str, set[tuple[str, str, int]]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found: set[tuple[str, str, int]] = set()
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("stacfetch"):
                        found.add((alias.name, "", node.lineno))
                continue
            target = _resolve(module, path, node)
            if not target.startswith("stacfetch"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # ``from . import module``
                    found.add((sub, "", node.lineno))
                else:
                    found.add((target, alias.name, node.lineno))
        edges[module] = found
    return edges


EDGES = _edges()


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else None


def test_the_scan_sees_the_package() -> None:
    assert {"stacfetch._engine.fetch", "stacfetch._run.run", "stacfetch._model.types"} <= set(
        MODULES
    )
    # the scan finds lazy (function-level) imports too: the decoder child imports Arrow lazily
    assert any(t == "stacfetch._formats.arrow" for t, _, _ in EDGES["stacfetch._engine.decoder"])


def test_no_import_circle() -> None:
    graph = {m: {t for t, _, _ in EDGES[m] if t in MODULES and t != m} for m in MODULES}
    # the package's __init__ re-exports the public names: an edge into it from inside would be
    # a circle; edges *out* of it are the public API
    index = 0
    stack: list[str] = []
    on_stack: set[str] = set()
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        nonlocal index
        order[node] = low[node] = index
        index += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in order:
            visit(module)
    assert circles == []


def test_layers_import_downwards_only() -> None:
    wrong = []
    for module, found in EDGES.items():
        layer = _layer(module)
        for target, _, line in found:
            if layer is None or layer not in ALLOWED:
                continue  # the front ends on top
            if target == "stacfetch":
                wrong.append(f"{module}:{line} imports the package root")
                continue
            other = _layer(target)
            if other is None or (other != layer and other not in ALLOWED[layer]):
                wrong.append(f"{module}:{line} ({layer}) imports {target}")
    assert wrong == []


def test_no_module_imports_another_modules_private_names() -> None:
    wrong = [
        f"{module}:{line} imports {name} from {target}"
        for module, found in EDGES.items()
        for target, name, line in found
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert wrong == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module: str) -> None:
    lines = MODULES[module].read_text().count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it by job"
