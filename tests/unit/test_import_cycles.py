"""No import cycle in the domain layer: every module-level import of `aiplane.*` (outside
`if TYPE_CHECKING:`) points down, so any module imports on its own and the layering stays readable."""

from __future__ import annotations

import ast
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "python"


def _module_name(path: Path) -> str:
    parts = path.relative_to(LAYER).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_at_load(tree: ast.Module, modules: set[str]) -> set[str]:
    """The layer's modules a module imports when it loads (not in functions, not for type checking)."""
    found: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
            continue
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
    return found & modules


def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in (LAYER / "aiplane").rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        imported = _imports_at_load(ast.parse(path.read_text()), set(paths))
        # A package's own __init__ runs before its submodules: importing it is not a cycle.
        graph[name] = {other for other in imported if other != name and not name.startswith(other + ".")}
    return graph


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in on_path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        path.append(module)
        on_path.add(module)
        for imported in sorted(graph[module]):
            cycle = visit(imported)
            if cycle:
                return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    return visit(start)


def test_the_domain_layer_has_no_import_cycle():
    graph = _import_graph()
    cycles = {tuple(cycle) for module in sorted(graph) if (cycle := _cycle_from(module, graph))}
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in sorted(cycles))
