"""The unit tier runs without moto or network: when only unit tests ran, the embedded AWS must not
have been imported (a unit test that needs it belongs in tests/integration)."""

from __future__ import annotations

import sys
from pathlib import Path

UNIT = Path(__file__).parent


def pytest_sessionfinish(session, exitstatus):
    items = getattr(session, "items", [])
    if items and all(UNIT in Path(item.path).parents for item in items) and "moto" in sys.modules:
        session.exitstatus = 1
        print("\nthe unit tier imported moto: move the test that needs AWS to tests/integration", file=sys.stderr)
