"""What a function's code references, read from its source without importing it: the shared
resource definitions it names and the AWS services it creates clients for, through every
`aiplane` module it imports (transitively)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from aiplane_shared import resources

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = (REPO_ROOT, REPO_ROOT / "layers" / "python", REPO_ROOT / "shared")
_CLIENT_CALL = re.compile(r"""client\(\s*["']([a-z0-9-]+)["']""")
_POWERTOOLS = {"get_secret": "secretsmanager", "get_parameter": "ssm"}


def _module_file(module: str) -> Path | None:
    for root in SOURCE_ROOTS:
        base = root.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("aiplane", "functions")}


def module_closure(function: str) -> set[Path]:
    """The source files of a function's handler and everything of ours it imports."""
    seen: set[Path] = set()
    pending = [f"functions.{function}.handler", f"functions.{function}.routes"]
    while pending:
        path = _module_file(pending.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        pending.extend(_imports(_parse(path)))
    return seen


def referenced_resources(function: str) -> set[object]:
    """Shared resource definitions (tables, queues, secrets, buckets, buses) the code names."""
    definitions = {
        name: value
        for name, value in vars(resources).items()
        if isinstance(value, (resources.Table, resources.Queue, resources.Secret, resources.Bucket, resources.EventBus))
    }
    found: set[object] = set()
    for path in module_closure(function):
        for node in ast.walk(_parse(path)):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in definitions:
                found.add(definitions[name])
    return found


def aws_services(function: str) -> set[str]:
    """The AWS services the code creates boto3 clients for (plus Powertools' secret/parameter reads)."""
    found: set[str] = set()
    for path in module_closure(function):
        text = path.read_text()
        found.update(_CLIENT_CALL.findall(text))
        found.update(service for call, service in _POWERTOOLS.items() if f"{call}(" in text)
    return found
