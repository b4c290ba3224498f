"""A small, safe template renderer for `{{.name}}` and `{{.name.field}}`.

It only looks values up (dictionaries and list indexes); nothing in a template can call a
function or evaluate an expression. An unknown name renders as the empty string, like Go's
text/template with a map.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*\.([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)?\s*\}\}")


def render(template: str, variables: dict[str, Any]) -> str:
    def substitute(match: re.Match[str]) -> str:
        path = match.group(1)
        value: Any = variables if path is None else _lookup(variables, path.split("."))
        return to_text(value)

    return _PLACEHOLDER.sub(substitute, template)


def _lookup(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict) and isinstance(value.get("messages"), list):  # a chat history: its last message
        messages = value["messages"]
        return str(messages[-1].get("content") or "") if messages else ""
    return json.dumps(value)
