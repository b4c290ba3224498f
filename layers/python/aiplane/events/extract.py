"""A tiny, safe field extractor for webhook mappings (no expression evaluation).

A field reference is a JSON path into the payload (`$.pull_request.user.login`, `repository.id`,
`commits[0].id`) or a request header (`header:X-GitHub-Event`, case-insensitive).
"""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
HEADER_PREFIX = "header:"


def _steps(path: str) -> list[str | int]:
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    steps: list[str | int] = []
    for name, index in _STEP.findall(text):
        steps.append(int(index) if index else name)
    return steps


def extract(reference: str, payload: Any, headers: dict[str, str]) -> Any:
    """The referenced value, or None when the payload or headers do not hold it."""
    if reference.lower().startswith(HEADER_PREFIX):
        wanted = reference[len(HEADER_PREFIX) :].strip().lower()
        return next((value for name, value in headers.items() if name.lower() == wanted), None)
    value: Any = payload
    for step in _steps(reference):
        if isinstance(step, int) and isinstance(value, list) and step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return None
    return value
